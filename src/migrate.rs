//! Finding the credentials a machine already has, so `configure` can move them into the
//! keychain before docker switches over: plaintext `auths` entries in config.json, and
//! the previous `credsStore` helper, spoken to exactly as docker speaks to it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Map, Value};

use crate::docker_config;
use crate::helper::HUB_JWT;
use crate::keychain::{Keychain, Stored};
use crate::protocol::{self, ERR_NOT_FOUND};
use crate::registry;

/// docker's marker username for an identity token (docker/cli `native_store.go`).
pub const TOKEN_USERNAME: &str = "<token>";

/// docker runs `docker-credential-<suffix>`.
pub const HELPER_PREFIX: &str = "docker-credential-";

/// Where a credential was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Auths,
    Helper(String),
}

impl Origin {
    pub fn describe(&self) -> String {
        match self {
            Origin::Auths => "config.json \"auths\"".into(),
            Origin::Helper(name) => format!("{HELPER_PREFIX}{name}"),
        }
    }
}

/// One credential to migrate. `Debug` redacts the secret (`Stored` holds a `Secret`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub key: String,
    pub cred: Stored,
    pub origin: Origin,
}

impl Found {
    /// `ghcr.io (username bob)`: never the secret.
    pub fn describe(&self) -> String {
        if self.cred.username == TOKEN_USERNAME {
            format!("{} (identity token)", self.key)
        } else {
            format!("{} (username {})", self.key, self.cred.username)
        }
    }
}

/// The credentials in config.json `auths`, read as docker reads them, keyed exactly as
/// they appear. Entries docker could not read either are returned as problems.
pub fn from_auths(doc: &Value) -> (Vec<Found>, Vec<String>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for (key, entry) in docker_config::auths(doc) {
        match from_entry(entry) {
            Ok(Some(cred)) => found.push(Found {
                key: key.to_string(),
                cred,
                origin: Origin::Auths,
            }),
            Ok(None) => {}
            Err(why) => problems.push(format!(
                "config.json \"auths\".\"{key}\" {why}; run `docker login {key}` again after removing that entry, or delete it"
            )),
        }
    }
    (found, problems)
}

fn text<'a>(entry: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    match docker_config::field(entry, name) {
        None => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!(
            "has a \"{name}\" that is a JSON {}, not a string",
            docker_config::kind(other)
        )),
    }
}

/// One `auths` entry: the identity token wins (docker's native store sends it as
/// `<token>`), then `auth`, then `username`/`password`. `Ok(None)`: no secret here.
fn from_entry(entry: &Map<String, Value>) -> Result<Option<Stored>, String> {
    let token = text(entry, "identitytoken")?;
    let auth = text(entry, "auth")?;
    let username = text(entry, "username")?;
    let password = text(entry, "password")?;
    if !token.is_empty() {
        return Ok(Some(Stored::new(TOKEN_USERNAME, token)));
    }
    if !auth.is_empty() {
        let (user, pass) = decode_auth(auth)?;
        return Ok(Some(Stored::new(user, pass)));
    }
    if !username.is_empty() {
        return Ok(Some(Stored::new(username, password)));
    }
    if !password.is_empty() {
        return Err("has a password but no username".into());
    }
    Ok(None)
}

/// docker/cli `decodeAuth`: standard base64 of `user:password`, split at the first `:`,
/// NULs trimmed from the password. Errors never include the decoded text.
pub fn decode_auth(auth: &str) -> Result<(String, String), String> {
    // Go's decoder skips CR and LF inside base64.
    let cleaned: String = auth.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|_| "has an \"auth\" that is not valid base64".to_string())?;
    let text = String::from_utf8(bytes)
        .map_err(|_| "has an \"auth\" that does not decode to text".to_string())?;
    match text.split_once(':') {
        Some((user, pass)) if !user.is_empty() => {
            Ok((user.to_string(), pass.trim_matches('\0').to_string()))
        }
        _ => Err("has an \"auth\" that is not base64 of user:password".into()),
    }
}

/// A failed call to another credential helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    Missing,
    Spawn(String),
    Timeout(Duration),
    Failed(String),
}

pub struct HelperOutput {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// More than any helper's answer; a runaway helper cannot fill our memory.
const OUTPUT_CAP: u64 = 16 * 1024 * 1024;

/// Run `program action` with `input` on stdin, as docker-credential-helpers' client does,
/// and give up after `timeout`: the child is killed, and pipes a grandchild may still hold
/// are abandoned rather than waited for.
pub fn run_helper(
    program: &str,
    action: &str,
    input: &[u8],
    timeout: Duration,
) -> Result<HelperOutput, CallError> {
    let deadline = Instant::now() + timeout;
    let mut child = Command::new(program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => CallError::Missing,
            _ => CallError::Spawn(e.to_string()),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let data = input.to_vec();
        // A helper that never reads stdin must not block us: write from a thread.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    let (tx, rx) = mpsc::channel::<(u8, Vec<u8>)>();
    for (which, pipe) in [
        (
            0u8,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            1u8,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        let tx = tx.clone();
        if let Some(pipe) = pipe {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.take(OUTPUT_CAP).read_to_end(&mut buf);
                let _ = tx.send((which, buf));
            });
        }
    }
    drop(tx);
    let kill = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
        CallError::Timeout(timeout)
    };
    let (mut stdout, mut stderr) = (None, None);
    while stdout.is_none() || stderr.is_none() {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((0, bytes)) => stdout = Some(bytes),
            Ok((_, bytes)) => stderr = Some(bytes),
            Err(_) => return Err(kill(&mut child)),
        }
    }
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => return Err(kill(&mut child)),
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(CallError::Spawn(e.to_string())),
        }
    };
    Ok(HelperOutput {
        success: status.success(),
        code: status.code(),
        stdout: stdout.unwrap_or_default(),
        stderr: stderr.unwrap_or_default(),
    })
}

/// A credsStore value names a program suffix, never a path.
pub fn valid_helper_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\', '\0'])
}

/// One line from a failed helper's output, for the report. Only failures are quoted.
fn first_line(out: &HelperOutput) -> String {
    let pick = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| l.chars().take(200).collect::<String>())
    };
    pick(&out.stdout)
        .or_else(|| pick(&out.stderr))
        .unwrap_or_else(|| "no output".into())
}

fn call_error(program: &str, action: &str, e: CallError) -> String {
    match e {
        CallError::Missing => format!(
            "`{program}` is not on PATH, so docker cannot read the credentials it holds either; \
             install it and run configure again, or, if you no longer need those credentials, \
             delete the \"credsStore\" line from config.json first"
        ),
        CallError::Spawn(why) => format!("cannot run `{program} {action}`: {why}"),
        CallError::Timeout(t) => format!(
            "`{program} {action}` did not answer within {} s (DOCKER_CREDENTIAL_HUB_TIMEOUT) and was stopped; \
             check that `{program} list` works on its own (is its keychain unlocked?), or raise DOCKER_CREDENTIAL_HUB_TIMEOUT",
            fmt_secs(t)
        ),
        CallError::Failed(why) => format!("`{program} {action}` failed: {why}"),
    }
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

/// `docker-credential-<name> list`: server URL → username. docker writes "unused" to
/// its stdin.
pub fn helper_list(name: &str, timeout: Duration) -> Result<Vec<(String, String)>, String> {
    let program = format!("{HELPER_PREFIX}{name}");
    let out = run_helper(&program, "list", b"unused", timeout)
        .map_err(|e| call_error(&program, "list", e))?;
    if !out.success {
        return Err(call_error(
            &program,
            "list",
            CallError::Failed(format!("exit {}: {}", code(&out), first_line(&out))),
        ));
    }
    let map: Map<String, Value> = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "`{program} list` printed something that is not a JSON object (line {} column {}); check that it works on its own",
            e.line(),
            e.column()
        )
    })?;
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
        .collect())
}

fn code(out: &HelperOutput) -> String {
    out.code
        .map(|c| c.to_string())
        .unwrap_or_else(|| "by signal".into())
}

/// `docker-credential-<name> get` with the raw key on stdin, no newline (as docker sends
/// it). `Ok(None)` when the helper answers docker's not-found message.
pub fn helper_get(name: &str, key: &str, timeout: Duration) -> Result<Option<Stored>, String> {
    let program = format!("{HELPER_PREFIX}{name}");
    let out = run_helper(&program, "get", key.as_bytes(), timeout)
        .map_err(|e| call_error(&program, &format!("get {key}"), e))?;
    if !out.success {
        if String::from_utf8_lossy(&out.stdout).trim() == ERR_NOT_FOUND {
            return Ok(None);
        }
        return Err(call_error(
            &program,
            &format!("get {key}"),
            CallError::Failed(format!("exit {}: {}", code(&out), first_line(&out))),
        ));
    }
    // The answer holds the secret: never quote it, even when it is malformed.
    let creds = protocol::parse_store(&out.stdout).map_err(|_| {
        format!(
            "`{program} get` for {key} printed something that is not a credential; check that it works on its own"
        )
    })?;
    Ok(Some(Stored {
        username: creds.username,
        secret: creds.secret,
    }))
}

/// Every credential the old helper holds, or the first failure.
pub fn from_helper(name: &str, timeout: Duration) -> Result<(Vec<Found>, Vec<String>), String> {
    let mut found = Vec::new();
    let mut vanished = Vec::new();
    for (key, _) in helper_list(name, timeout)? {
        match helper_get(name, &key, timeout)? {
            Some(cred) => found.push(Found {
                key,
                cred,
                origin: Origin::Helper(name.to_string()),
            }),
            None => vanished.push(key),
        }
    }
    Ok((found, vanished))
}

/// docker/cli `DetectDefaultStore`: with no credsStore, no credHelpers and no auths,
/// docker itself uses the platform's helper when it is on PATH.
pub fn detected_default_store() -> Option<String> {
    let name = if cfg!(target_os = "macos") {
        "osxkeychain"
    } else if cfg!(windows) {
        "wincred"
    } else if find_program("pass").is_some() {
        "pass"
    } else {
        "secretservice"
    };
    find_program(&format!("{HELPER_PREFIX}{name}")).map(|_| name.to_string())
}

/// The first executable `name` on PATH, as `exec.LookPath` finds it.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file() || p.with_extension("exe").is_file()
}

/// Store one credential and read it back. Only a credential that reads back identical
/// counts as moved.
pub fn store_verified(kc: &dyn Keychain, found: &Found) -> Result<(), String> {
    kc.store(&found.key, &found.cred)
        .map_err(|e| e.to_string())?;
    match kc.get(&found.key) {
        Ok(Some(back)) if back == found.cred => {}
        Ok(Some(_)) => {
            return Err("the keychain returned a different value when read back; run `docker-credential-hub doctor`".into());
        }
        Ok(None) => {
            return Err("the keychain did not return the credential when read back; run `docker-credential-hub doctor`".into());
        }
        Err(e) => return Err(e.to_string()),
    }
    // As `store` does: a cached Hub JWT may belong to another account.
    if registry::is_hub_alias(&found.key) {
        kc.erase_internal(HUB_JWT).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn auths_are_read_as_docker_reads_them() {
        let doc = json!({"auths": {
            "https://index.docker.io/v1/": {"auth": b64("alice:pa:ss\0")},
            "ghcr.io": {"identitytoken": "tok", "auth": b64("x:y")},
            "quay.io": {"username": "bob", "password": "pw"},
            "empty.io": {},
            "mail.io": {"email": "a@b"},
            "nopass.io": {"username": "carol"}
        }});
        let (found, problems) = from_auths(&doc);
        assert!(problems.is_empty(), "{problems:?}");
        let got: Vec<(&str, &str, &str)> = found
            .iter()
            .map(|f| {
                (
                    f.key.as_str(),
                    f.cred.username.as_str(),
                    f.cred.secret.expose().as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("https://index.docker.io/v1/", "alice", "pa:ss"),
                ("ghcr.io", "<token>", "tok"),
                ("quay.io", "bob", "pw"),
                ("nopass.io", "carol", ""),
            ]
        );
        assert!(found.iter().all(|f| f.origin == Origin::Auths));
        assert_eq!(found[1].describe(), "ghcr.io (identity token)");
        assert_eq!(found[2].describe(), "quay.io (username bob)");
    }

    #[test]
    fn unreadable_entries_are_problems_that_never_quote_the_secret() {
        let doc = json!({"auths": {
            "a": {"auth": "!!!notbase64secret"},
            "b": {"auth": b64("nocolonsecret")},
            "c": {"auth": b64(":emptyusersecret")},
            "d": {"password": "lonelysecret"},
            "e": {"auth": 5}
        }});
        let (found, problems) = from_auths(&doc);
        assert!(found.is_empty());
        assert_eq!(problems.len(), 5);
        for p in &problems {
            assert!(!p.contains("secret"), "{p}");
        }
    }

    #[test]
    fn auth_base64_tolerates_line_breaks_like_go() {
        let enc = b64("user:password-long-enough-to-wrap");
        let wrapped = format!("{}\r\n{}", &enc[..10], &enc[10..]);
        assert_eq!(
            decode_auth(&wrapped).unwrap(),
            ("user".into(), "password-long-enough-to-wrap".into())
        );
    }

    #[test]
    fn helper_names_are_suffixes_not_paths() {
        assert!(valid_helper_name("secretservice"));
        assert!(valid_helper_name("ecr-login"));
        assert!(!valid_helper_name("../x"));
        assert!(!valid_helper_name(""));
    }

    #[test]
    fn a_missing_helper_is_reported_as_missing() {
        let err = run_helper(
            "docker-credential-does-not-exist-xyz",
            "list",
            b"",
            Duration::from_secs(1),
        )
        .err();
        assert_eq!(err, Some(CallError::Missing));
    }
}
