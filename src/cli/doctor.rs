//! `doctor [--network]`: a checklist, one line per check, of what docker will run and
//! whether the keychain works, with the cause and the exact fix for each problem.
//! Exit status 0 when nothing failed (warnings included), 1 otherwise.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::args::{Arg, Args, is_help};
use super::configure::{CREDS_STORE, WSL_CREDS_STORE};
use super::{Failure, explain, finish};
use crate::deadline::Deadline;
use crate::docker_config;
use crate::hub::{self, CachedJwt, cached_jwt_status};
use crate::keychain::{
    self, Backend, Keychain, KeychainError, Kind, NoSecretService, Opened, ProbeError, Reason,
    Requested, Selection,
};
use crate::protocol;
use crate::protocol::client::{self, HELPER_PREFIX};
use crate::registry::HUB_KEY;
use crate::secret::Secret;
use crate::{NAME, clock, settings};

const USAGE: &str = "usage: docker-credential-hub doctor [--network]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Info,
    Warn,
    Fail,
}

#[derive(Default)]
struct Report {
    failures: usize,
    warnings: usize,
}

impl Report {
    fn line(&mut self, status: Status, text: impl AsRef<str>) {
        let tag = match status {
            Status::Ok => "ok  ",
            Status::Info => "info",
            Status::Warn => {
                self.warnings += 1;
                "warn"
            }
            Status::Fail => {
                self.failures += 1;
                "FAIL"
            }
        };
        println!("{tag} {}", text.as_ref());
    }
}

pub fn run(args: &[String]) -> ExitCode {
    finish(Some("doctor"), doctor(args))
}

fn doctor(list: &[String]) -> Result<(), Failure> {
    let mut network = false;
    let mut args = Args::new(list);
    while let Some(arg) = args.next() {
        if is_help(&arg) {
            println!(
                "{USAGE}\n\nChecks which binary docker runs, config.json, the keychain (with a write/read/delete probe)\nand the cached Hub JWT; --network also asks the Docker Hub API whether it answers and\nreads the pull quota of the stored account (or of anonymous pulls) from the registry."
            );
            return Ok(());
        }
        match arg {
            Arg::Opt {
                name,
                attached: false,
            } if name == "--network" => network = true,
            _ => return Err(Failure::usage(format!("unknown argument; {USAGE}"))),
        }
    }
    // It opens the keychain and reads a test entry back, like every command that holds a
    // secret.
    crate::process::harden();
    let mut r = Report::default();
    check_binary(&mut r);
    check_config(&mut r);
    check_auth_config(&mut r);
    check_wsl(&mut r);
    // A wedged keychain must not hang doctor: each check waits at most the deadline.
    check_containers(&mut r);
    let deadline = Deadline::after(settings::timeout());
    check_record(&mut r);
    let opened = check_keychain(&mut r, &deadline);
    if let Some(opened) = &opened {
        deadline.renew();
        check_probe(&mut r, opened.internal.as_ref());
        deadline.renew();
        check_jwt(&mut r, opened.internal.as_ref());
    }
    if network {
        check_network(&mut r);
        // The quota check reads the stored Hub credential after the ping's wait.
        deadline.renew();
        check_pull_quota(&mut r, opened.as_ref().map(|o| o.creds.as_ref()));
    }
    if r.failures == 0 {
        println!(
            "{NAME} doctor: everything works{}",
            if r.warnings > 0 {
                " (see the warnings above)"
            } else {
                ""
            }
        );
        Ok(())
    } else {
        println!("{NAME} doctor: {} check(s) failed", r.failures);
        Err(Failure::quiet())
    }
}

fn check_network(r: &mut Report) {
    match hub::ping_api(settings::timeout()) {
        Ok(what) => r.line(
            Status::Ok,
            format!(
                "Docker Hub API {} answers: {what}",
                hub::api_url().unwrap_or_default()
            ),
        ),
        Err(e) => r.line(
            Status::Fail,
            format!(
                "Docker Hub API: {e} — fix: check the network connection, HTTPS_PROXY/NO_PROXY and DOCKER_HUB_API_URL"
            ),
        ),
    }
}

/// The pull quota of the stored Hub account (or of anonymous pulls from here), read as
/// Docker documents it; a service that fails is one line, and the checks go on. Without a
/// keychain the check is anonymous.
fn check_pull_quota(r: &mut Report, kc: Option<&dyn Keychain>) {
    let stored = match kc.map(|kc| kc.get(HUB_KEY)).transpose() {
        Ok(stored) => stored.flatten(),
        Err(e) => {
            return r.line(
                Status::Warn,
                format!(
                    "pull quota: cannot check it: cannot read the stored Docker Hub credentials: {}",
                    explain(&e)
                ),
            );
        }
    };
    match hub::pull_quota(stored.as_ref(), settings::timeout()) {
        Ok(q) if q.exhausted() => r.line(
            Status::Warn,
            format!(
                "pull quota: {} — fix: wait for the window to move on{}",
                q.describe(),
                if q.per_address() {
                    format!(", or log in (`docker login` or `{NAME} login`) to pull on your account's quota")
                } else {
                    String::new()
                }
            ),
        ),
        Ok(q) => r.line(Status::Ok, format!("pull quota: {}", q.describe())),
        Err(hub::HubError::Rejected(m)) => r.line(
            Status::Fail,
            format!(
                "pull quota: {m} — fix: log in again with a current password or access token: `docker login` or `{NAME} login`"
            ),
        ),
        Err(hub::HubError::Unavailable(m)) => r.line(
            Status::Warn,
            format!("pull quota: cannot check it: {m} — fix: {NETWORK_FIX}"),
        ),
    }
}

const NETWORK_FIX: &str = "check the network connection, HTTPS_PROXY/NO_PROXY, DOCKER_HUB_AUTH_URL and DOCKER_HUB_REGISTRY_URL";

const AUTH_CONFIG_VAR: &str = "DOCKER_AUTH_CONFIG";

/// docker CLI 28.3 and later reads credentials from `DOCKER_AUTH_CONFIG` before any
/// credential store (docker/cli `cli/config/configfile/file.go`, `GetCredentialsStore`): a
/// non-empty value is loaded as config.json is, its `auths` answer first and the configured
/// store only for the rest, and a value it cannot load is ignored whole. Only the registries
/// it names are shown, never a value.
fn check_auth_config(r: &mut Report) {
    let Some(raw) = std::env::var_os(AUTH_CONFIG_VAR).filter(|v| !v.is_empty()) else {
        return;
    };
    let fix = format!("fix: unset {AUTH_CONFIG_VAR}, or correct it");
    match auth_config_registries(raw.as_encoded_bytes()) {
        Err(why) => r.line(
            Status::Warn,
            format!("{AUTH_CONFIG_VAR} is set but {why}, so docker ignores all of it — {fix}"),
        ),
        Ok(registries) if registries.is_empty() => r.line(
            Status::Warn,
            format!(
                "{AUTH_CONFIG_VAR} is set but holds no registries; docker (CLI 28.3 and later) reads it before this helper — fix: unset {AUTH_CONFIG_VAR}"
            ),
        ),
        Ok(registries) => r.line(
            Status::Warn,
            format!(
                "{AUTH_CONFIG_VAR} is set: docker (CLI 28.3 and later) takes the credentials for {} from it, not from this helper — fix: unset {AUTH_CONFIG_VAR} to use the keychain for them",
                registries.join(", ")
            ),
        ),
    }
}

/// The registries (keys of `auths`) a `DOCKER_AUTH_CONFIG` value holds, made printable, or
/// why docker cannot load it: not config.json's shape, or an `auth` that is not base64 of
/// `user:password` with a user (docker/cli `configfile/file.go`, `decodeAuth`).
fn auth_config_registries(bytes: &[u8]) -> Result<Vec<String>, String> {
    use base64::Engine;
    let doc = docker_config::parse(bytes).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (registry, entry) in docker_config::auths(&doc) {
        let shown = crate::hub::printable(registry);
        match docker_config::field(entry, "auth") {
            None => {}
            Some(serde_json::Value::String(auth)) if auth.is_empty() => {}
            Some(serde_json::Value::String(auth)) => {
                // Go's base64 decoder skips line breaks; the secret half is wiped after.
                let text: String = auth.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(text.as_bytes())
                    .map(Secret::new)
                    .ok();
                let has_user = decoded
                    .as_ref()
                    .and_then(|d| d.expose().iter().position(|&b| b == b':'))
                    .is_some_and(|colon| colon > 0);
                if !has_user {
                    return Err(format!(
                        "its \"auth\" for {shown} is not base64 of user:password"
                    ));
                }
            }
            Some(_) => return Err(format!("its \"auth\" for {shown} is not a string")),
        }
        out.push(shown);
    }
    Ok(out)
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Which `docker-credential-hub` docker will run, and whether it is this one.
fn check_binary(r: &mut Report) {
    let me = std::env::current_exe().map(|p| canonical(&p)).ok();
    let my_dir = me
        .as_deref()
        .and_then(Path::parent)
        .map(crate::fs::display)
        .unwrap_or_else(|| "its directory".into());
    let ours = protocol::version_line();
    match crate::trust::program::find(NAME) {
        None => r.line(
            Status::Fail,
            format!("{NAME} is not on PATH, so docker cannot run it — fix: add {my_dir} to PATH, or install with ./install.sh"),
        ),
        Some(found) if Some(canonical(&found)) == me => r.line(
            Status::Ok,
            format!("docker runs {} ({ours}), this binary", crate::fs::display(&found)),
        ),
        Some(found) => {
            let theirs = other_version(&found);
            let same = theirs.as_deref() == Some(ours.as_str());
            let status = if same { Status::Warn } else { Status::Fail };
            r.line(
                status,
                format!(
                    "docker runs {} ({}), not this binary ({ours}) — fix: put {my_dir} first on PATH, or reinstall with ./install.sh",
                    crate::fs::display(&found),
                    theirs.as_deref().unwrap_or("version unknown")
                ),
            );
        }
    }
}

fn other_version(path: &Path) -> Option<String> {
    let out = client::run_helper(
        &path.to_string_lossy(),
        "version",
        b"",
        Duration::from_secs(5),
    )
    .ok()?;
    let text = String::from_utf8_lossy(out.stdout.expose());
    let line = text.lines().next()?.trim();
    (out.success && !line.is_empty()).then(|| line.chars().take(100).collect())
}

/// The config file in use, whether `credsStore` points here, and `credHelpers`.
fn check_config(r: &mut Report) {
    let path = match docker_config::config_path() {
        Ok(p) => p,
        Err(e) => return r.line(Status::Fail, format!("config: {e}")),
    };
    let fix = format!("fix: run `{NAME} configure`");
    let loaded = match docker_config::load(&path) {
        Ok(l) => l,
        Err(e) => return r.line(Status::Fail, format!("config: {e}")),
    };
    if loaded.original.is_none() {
        r.line(
            Status::Fail,
            format!(
                "config {} does not exist, so docker does not use this helper — {fix}",
                path.display()
            ),
        );
        return;
    }
    match docker_config::creds_store(&loaded.doc) {
        Some(CREDS_STORE) => r.line(
            Status::Ok,
            format!(
                "config {}: \"credsStore\": \"hub\", docker uses this helper",
                path.display()
            ),
        ),
        Some(WSL_CREDS_STORE) => r.line(
            Status::Ok,
            format!(
                "config {}: \"credsStore\": \"{WSL_CREDS_STORE}\", docker runs the Windows binary docker-credential-hub.exe (`{NAME} configure --wsl`)",
                path.display()
            ),
        ),
        Some(other) => r.line(
            Status::Fail,
            format!(
                "config {}: \"credsStore\" is \"{other}\", so docker uses docker-credential-{other}, not this helper — {fix}",
                path.display()
            ),
        ),
        None => r.line(
            Status::Fail,
            format!(
                "config {}: no \"credsStore\", so docker does not use this helper — {fix}",
                path.display()
            ),
        ),
    }
    let plaintext: Vec<&str> = docker_config::auths(&loaded.doc)
        .into_iter()
        .filter(|(_, e)| docker_config::has_secret_fields(e))
        .map(|(k, _)| k)
        .collect();
    if !plaintext.is_empty() {
        r.line(
            Status::Warn,
            format!(
                "config.json holds plaintext credentials for {} — {fix} to move them into the keychain",
                plaintext.join(", ")
            ),
        );
    }
    let helpers = docker_config::cred_helpers(&loaded.doc);
    if helpers.is_empty() {
        r.line(
            Status::Ok,
            "credHelpers: none, every registry uses credsStore",
        );
    }
    for (registry, helper) in helpers {
        if helper == CREDS_STORE {
            r.line(
                Status::Ok,
                format!("credHelpers: {registry} uses this helper"),
            );
        } else if crate::trust::program::find(&format!("{HELPER_PREFIX}{helper}")).is_none() {
            r.line(
                Status::Warn,
                format!(
                    "credHelpers: {registry} uses docker-credential-{helper}, which is not on PATH — fix: install it, or remove \"{registry}\" from \"credHelpers\""
                ),
            );
        } else {
            r.line(
                Status::Info,
                format!(
                    "credHelpers: {registry} uses docker-credential-{helper}, not this helper (a per-registry override)"
                ),
            );
        }
    }
}

/// Inside WSL (which sets WSL_DISTRO_NAME): which store docker uses, and how to share the
/// Windows one.
fn check_wsl(r: &mut Report) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let Some(distro) = std::env::var("WSL_DISTRO_NAME")
        .ok()
        .filter(|d| !d.is_empty())
    else {
        return;
    };
    let store = docker_config::config_path()
        .ok()
        .and_then(|p| docker_config::load(&p).ok())
        .and_then(|l| docker_config::creds_store(&l.doc).map(str::to_string));
    let (status, line) = wsl_line(&crate::hub::printable(&distro), store.as_deref());
    r.line(status, line);
}

fn wsl_line(distro: &str, creds_store: Option<&str>) -> (Status, String) {
    let share = format!(
        "to share the Windows store with docker on Windows, put docker-credential-hub.exe on the Windows PATH and run `{NAME} configure --wsl`"
    );
    match creds_store {
        Some(WSL_CREDS_STORE) => (
            Status::Ok,
            format!(
                "WSL ({distro}): docker uses the Windows store through docker-credential-hub.exe, shared with docker on Windows"
            ),
        ),
        Some(CREDS_STORE) => (
            Status::Info,
            format!(
                "WSL ({distro}): docker uses this Linux binary's keychain, apart from Windows — {share}"
            ),
        ),
        Some(other) => (
            Status::Info,
            format!(
                "WSL ({distro}): docker uses docker-credential-{other}, apart from Windows — {share}"
            ),
        ),
        None => (
            Status::Info,
            format!(
                "WSL ({distro}): docker keeps credentials in config.json, apart from Windows — {share}"
            ),
        ),
    }
}

/// The Credential Manager cannot persist in network and SSH logon sessions: say so in
/// doctor's words, with the fix, instead of a bare probe failure.
fn no_logon_session_line(e: &KeychainError) -> Option<String> {
    let no_session =
        e.kind() == Kind::Unavailable && e.backend() == Some(Backend::WindowsCredentialManager);
    no_session.then(|| {
        format!(
            "logon session: this is a network or SSH logon session, where the Windows Credential Manager cannot keep credentials (ERROR_NO_SUCH_LOGON_SESSION) — fix: run `{NAME} configure --backend dpapi` to keep them in files encrypted for your Windows account"
        )
    })
}

/// podman, skopeo and buildah ignore credsStore: are they wired to this helper?
fn check_containers(r: &mut Report) {
    match super::configure::containers_status() {
        Some((true, line)) => r.line(Status::Ok, line),
        Some((false, line)) => r.line(Status::Warn, line),
        None => {}
    }
}

/// Which backend the first store (or configure) recorded, so that no later call quietly
/// uses another.
fn check_record(r: &mut Report) {
    let service = keychain::service_name();
    let path = keychain::record::path_text();
    let recorded = match keychain::record::read(&service) {
        Ok(b) => b,
        Err(e) => {
            let (problem, fix) = e.problem_and_fix();
            return r.line(
                Status::Fail,
                format!("backend record: {problem} — fix: {fix}"),
            );
        }
    };
    match (recorded, keychain::requested()) {
        (Some(b), Ok(Requested::Explicit(e))) if e != b => r.line(
            Status::Warn,
            format!(
                "backend record: {path} says {}, but DOCKER_CREDENTIAL_HUB_BACKEND={} overrides it — fix: unset it, or move the credentials with `{NAME} configure --backend {}`",
                b.id(),
                e.id(),
                e.id()
            ),
        ),
        (Some(b), _) => {
            let moving = keychain::record::moving_from(&service)
                .ok()
                .flatten()
                .map(|f| format!("; a move from the {f} was interrupted — fix: run `{NAME} configure --backend {}` again", b.id()))
                .unwrap_or_default();
            let status = if moving.is_empty() { Status::Info } else { Status::Warn };
            r.line(
                status,
                format!("backend record: {path} says {} (the backend your credentials are in; no other is used){moving}", b.id()),
            )
        }
        (None, _) => r.line(
            Status::Info,
            format!("backend record: none yet ({path}); the first store records the backend it used"),
        ),
    }
}

/// The backend, why it was chosen, and what to do when it will not last.
fn check_keychain(r: &mut Report, deadline: &Deadline) -> Option<Opened> {
    match keychain::open(deadline) {
        Err(e) => {
            r.line(Status::Fail, format!("keychain: {}", explain(&e)));
            None
        }
        Ok((opened, sel)) => {
            if sel.volatile() {
                r.line(
                    Status::Warn,
                    format!(
                        "keychain: {} ({sel}); credentials will not survive a reboot — fix: {}",
                        sel.backend.name(),
                        volatile_fix(&sel)
                    ),
                );
            } else {
                r.line(
                    Status::Ok,
                    format!("keychain: {} ({sel})", sel.backend.name()),
                );
            }
            if sel.backend == Backend::Pass {
                r.line(Status::Info, pass_store_line());
            } else if let Some(e) = keychain::untrusted_pass_store() {
                let (problem, fix) = e.problem_and_fix();
                r.line(
                    Status::Warn,
                    format!("pass store: not used, because {problem} — fix: {fix}"),
                );
            }
            Some(opened)
        }
    }
}

/// The password store in use and the key it encrypts for.
fn pass_store_line() -> String {
    let dir = keychain::pass_store_dir().unwrap_or_default();
    let gpg_id = crate::trust::Expect::file("the password store's .gpg-id");
    let key = crate::trust::read_file(&dir.join(".gpg-id"), gpg_id, 64 * 1024)
        .ok()
        .flatten()
        .map(|k| {
            let text = String::from_utf8_lossy(&k).into_owned();
            crate::hub::printable(text.lines().next().unwrap_or(""))
        })
        .unwrap_or_else(|| "none".into());
    format!(
        "pass store: {} (encrypted for {key}; gpg never prompts here: a locked key fails with the unlock command)",
        crate::fs::display(&dir)
    )
}

fn volatile_fix(sel: &Selection) -> String {
    const START: &str = "`gnome-keyring-daemon --unlock --components=secrets --daemonize` (apt-get install gnome-keyring; type the keyring password, then Ctrl-D)";
    if matches!(
        keychain::requested(),
        Ok(Requested::Explicit(Backend::Keyutils))
    ) {
        return "you chose it with DOCKER_CREDENTIAL_HUB_BACKEND=keyutils; unset that variable once a Secret Service runs in this session".into();
    }
    let new_bus =
        "`export DBUS_SESSION_BUS_ADDRESS=$(dbus-daemon --session --fork --print-address=1)`";
    let headless = format!(
        "; on a machine without a desktop, `pass` keeps them on disk instead: `pass init <your GPG key id>`, then `{NAME} configure --backend pass`"
    );
    let fix = match &sel.reason {
        Reason::Fallback(NoSecretService::BusUnreachable { .. }) => {
            let bus = std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default();
            format!(
                "DBUS_SESSION_BUS_ADDRESS={bus} does not answer (left over from another session?); start a new bus with {new_bus}, then {START}"
            )
        }
        // Root with another user's environment (`sudo -E`): their bus is theirs.
        Reason::Fallback(NoSecretService::NotYours { .. }) => {
            return "run it as them, or as yourself without their environment (`sudo` without -E)"
                .into();
        }
        Reason::Fallback(NoSecretService::NoBus) => format!(
            "start a session bus with {new_bus} (or log in to a desktop session), then {START}"
        ),
        _ => format!(
            "start a Secret Service on the session bus: {START}, or KeePassXC with Secret Service integration"
        ),
    };
    fix + &headless
}

/// Write, read back and delete a throwaway entry of the internal keychain, timed.
fn check_probe(r: &mut Report, internal: &dyn Keychain) {
    let name = format!("doctor-probe-{}", std::process::id());
    match keychain::probe(internal, &name) {
        Ok(took) => r.line(
            Status::Ok,
            format!(
                "probe: wrote, read back and deleted a test entry in {:.1} ms",
                took.as_secs_f64() * 1000.0
            ),
        ),
        Err(ProbeError::Write(e)) => {
            let line = no_logon_session_line(&e)
                .unwrap_or_else(|| format!("probe: cannot write a test entry: {}", explain(&e)));
            r.line(Status::Fail, line)
        }
        Err(ProbeError::Read(e)) => r.line(
            Status::Fail,
            format!("probe: cannot read a test entry back: {}", explain(&e)),
        ),
        Err(ProbeError::Differs) => r.line(
            Status::Fail,
            format!("probe: a test entry read back wrong or missing — fix: run `{NAME} doctor` again; if it persists, the keychain is not keeping what it is given"),
        ),
        Err(ProbeError::Delete(e)) => r.line(
            Status::Fail,
            format!("probe: cannot delete a test entry: {}", explain(&e)),
        ),
    }
}

fn check_jwt(r: &mut Report, internal: &dyn Keychain) {
    let now = clock::now_unix();
    let status = match cached_jwt_status(internal) {
        Ok(status) => status,
        Err(e) => {
            return r.line(
                Status::Fail,
                format!("cached Hub JWT: cannot read it: {}", explain(&e)),
            );
        }
    };
    match status {
        CachedJwt::Absent => r.line(
            Status::Info,
            format!("cached Hub JWT: none (`{NAME} login` or `docker login` gets one)"),
        ),
        CachedJwt::Valid {
            expires_at_unix,
            username,
        } => r.line(
            Status::Ok,
            format!(
                "cached Hub JWT{}: valid until {} ({})",
                username
                    .map(|u| format!(" for {}", crate::hub::printable(&u)))
                    .unwrap_or_default(),
                utc(expires_at_unix),
                in_words(expires_at_unix.saturating_sub(now))
            ),
        ),
        CachedJwt::Expired { expired_at_unix } => r.line(
            Status::Info,
            format!(
                "cached Hub JWT: expired at {}; the next `{NAME} token` logs in again",
                utc(expired_at_unix)
            ),
        ),
        CachedJwt::Malformed => r.line(
            Status::Warn,
            format!("cached Hub JWT: malformed — fix: run `{NAME} token` (it replaces it) or `{NAME} login`"),
        ),
    }
}

/// `2025-03-01 12:00:00 UTC`.
fn utc(unix: u64) -> String {
    let Ok(ts) = jiff::Timestamp::from_second(i64::try_from(unix).unwrap_or(i64::MAX)) else {
        return format!("{unix} (Unix time, beyond the calendar)");
    };
    ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn in_words(secs: u64) -> String {
    match secs {
        0..=119 => format!("in {secs} s"),
        120..=7199 => format!("in {} min", secs / 60),
        _ => format!("in {} h {} min", secs / 3600, secs / 60 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_logon_session_is_one_doctor_line_with_the_dpapi_fix() {
        use crate::keychain::WindowsError;
        let cause = || "Windows ERROR_NO_SUCH_LOGON_SESSION".to_string();
        let e: KeychainError = WindowsError::NoLogonSession { cause: cause() }.into();
        let recorded: KeychainError = WindowsError::NoLogonSession { cause: cause() }.into();
        let recorded = recorded.in_record_for_test(Backend::WindowsCredentialManager, "backend");
        for e in [&e, &recorded] {
            let line = no_logon_session_line(e).expect("a logon-session line");
            assert!(!line.contains('\n'), "{line}");
            assert!(line.contains("network or SSH logon session"), "{line}");
            assert!(
                line.ends_with("— fix: run `docker-credential-hub configure --backend dpapi` to keep them in files encrypted for your Windows account"),
                "{line}"
            );
        }
        let other: KeychainError = WindowsError::Failed {
            cause: "Windows error code 5".into(),
        }
        .into();
        assert_eq!(no_logon_session_line(&other), None);
    }

    #[test]
    fn wsl_lines_say_which_store_docker_uses_and_how_to_share_windows() {
        let (status, line) = wsl_line("Ubuntu", Some("hub.exe"));
        assert_eq!(status, Status::Ok);
        assert!(
            line.contains("WSL (Ubuntu): docker uses the Windows store"),
            "{line}"
        );
        for (store, says) in [
            (Some("hub"), "this Linux binary's keychain"),
            (Some("pass"), "docker-credential-pass"),
            (None, "config.json"),
        ] {
            let (status, line) = wsl_line("Ubuntu", store);
            assert_eq!(status, Status::Info, "{line}");
            assert!(line.contains(says), "{line}");
            assert!(
                line.ends_with("run `docker-credential-hub configure --wsl`"),
                "{line}"
            );
        }
    }

    #[test]
    fn utc_dates_are_right() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
        assert!(utc(u64::MAX).contains("beyond the calendar"));
    }

    #[test]
    fn docker_auth_config_names_registries_and_refuses_what_docker_ignores() {
        let ok = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpTZWNyZXQtMQ=="},"ghcr.io":{"identitytoken":"x"}}}"#;
        assert_eq!(
            auth_config_registries(ok).unwrap(),
            ["https://index.docker.io/v1/", "ghcr.io"]
        );
        // Go matches the key case-insensitively; an empty `auth` is no credential.
        assert_eq!(
            auth_config_registries(br#"{"AUTHS":{"r.example":{"auth":""}}}"#).unwrap(),
            ["r.example"]
        );
        assert!(auth_config_registries(b"   ").unwrap().is_empty());
        for (bad, why) in [
            (&b"{not json"[..], "not valid JSON"),
            (br#"["a"]"#, "not an object"),
            (br#"{"auths":{"r":{"auth":"!!!"}}}"#, "not base64"),
            // base64 of "nocolon" and of ":secret" (no user).
            (br#"{"auths":{"r":{"auth":"bm9jb2xvbg=="}}}"#, "not base64"),
            (br#"{"auths":{"r":{"auth":"OnNlY3JldA=="}}}"#, "not base64"),
            (br#"{"auths":{"r":{"auth":7}}}"#, "not a string"),
        ] {
            let e = auth_config_registries(bad).unwrap_err();
            assert!(e.contains(why), "{e}");
            assert!(!e.contains("secret") && !e.contains("bm9j"), "{e}");
        }
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(in_words(59), "in 59 s");
        assert_eq!(in_words(600), "in 10 min");
        assert_eq!(in_words(3 * 3600 + 120), "in 3 h 2 min");
    }
}
