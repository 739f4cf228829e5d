//! `configure [--dry-run] [--undo]`: switch docker over to this helper, moving existing
//! credentials into the keychain first, and back again.
//!
//! Order of work, so that a failure anywhere leaves config.json byte-identical:
//! read everything (config.json, the old helper), store and verify every credential,
//! and only then write the undo record, the backup and finally config.json.
//! Reports go to stdout, problems to stderr, one line each.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use crate::docker_config::{self, CredsStore, Edit, Loaded};
use crate::keychain::{self, Keychain, Requested, Selection};
use crate::migrate::{self, Found, Origin};
use crate::protocol::NAME;
use crate::secret::Secret;
use crate::settings;
use crate::watchdog::{Channel, Watchdog};

/// Our credsStore value: docker runs `docker-credential-hub`.
pub const CREDS_STORE: &str = "hub";
/// Next to config.json: the credsStore value configure replaced, for `--undo`. A key
/// inside config.json would not survive: docker drops unknown keys when it saves.
pub const RECORD_SUFFIX: &str = ".hub-previous";
pub const BACKUP_SUFFIX: &str = ".bak";

const USAGE: &str = "usage: docker-credential-hub configure [--dry-run] [--undo]";

/// Printed, already-reported failure.
struct Failed;

type Outcome = Result<(), Failed>;

pub fn run(args: &[String]) -> ExitCode {
    let (mut dry_run, mut undo) = (false, false);
    for arg in args {
        match arg.as_str() {
            "--dry-run" => dry_run = true,
            "--undo" => undo = true,
            "-h" | "--help" => {
                println!("{USAGE}\n\n{}", HELP.trim());
                return ExitCode::SUCCESS;
            }
            // Not echoed: people paste passwords in odd places.
            _ => {
                eprintln!("{NAME} configure: unknown argument; {USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let outcome = if undo {
        run_undo(dry_run)
    } else {
        run_configure(dry_run)
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed) => ExitCode::from(1),
    }
}

const HELP: &str = "
Sets \"credsStore\": \"hub\" in docker's config.json ($DOCKER_CONFIG/config.json or
~/.docker/config.json). Credentials in plaintext \"auths\" entries and in the previous
credsStore helper are stored in the keychain and read back before anything changes.
  --dry-run   print what would move and change nothing
  --undo      put back the previous credsStore (credentials stay in the keychain)";

fn fail(line: impl std::fmt::Display) -> Failed {
    eprintln!("{NAME} configure: {line}");
    Failed
}

fn unchanged_hint(path: &Path) -> String {
    format!("{} was not changed", path.display())
}

/// Keychain calls can hang (a wedged Secret Service, an unlock prompt nobody can answer):
/// bound each one. Nothing has been written when this fires, so config.json is unchanged.
fn guarded<T>(path: &Path, work: impl FnOnce() -> T) -> T {
    let deadline = settings::timeout();
    let watchdog = Watchdog::arm_on(
        Channel::Stderr,
        deadline,
        format!(
            "{NAME} configure: the keychain did not answer within {} s (a hung Secret Service, or an unlock prompt nobody can answer); {}; run `{NAME} doctor`",
            deadline.as_secs(),
            unchanged_hint(path)
        ),
    );
    let result = work();
    watchdog.disarm();
    result
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| docker_config::CONFIG_FILE.into());
    name.push(suffix);
    path.with_file_name(name)
}

fn load() -> Result<Loaded, Failed> {
    let path = docker_config::config_path().map_err(fail)?;
    docker_config::load(&path).map_err(fail)
}

fn quoted(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("\"{s}\""),
        None => "unset".into(),
    }
}

/// How hard to try the previous helper: the configured credsStore must work (docker
/// relies on it); docker's auto-detected default store is read when it answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Required,
    BestEffort,
}

fn old_helper(loaded: &Loaded, previous: Option<&str>) -> Option<(String, Need)> {
    match previous {
        Some(CREDS_STORE) => None,
        Some(name) => Some((name.to_string(), Need::Required)),
        None if docker_config::cred_helpers(&loaded.doc).is_empty()
            && docker_config::auths(&loaded.doc).is_empty() =>
        {
            migrate::detected_default_store().map(|n| (n, Need::BestEffort))
        }
        None => None,
    }
}

fn report_cred_helpers(loaded: &Loaded, verb: &str) {
    for (registry, helper) in docker_config::cred_helpers(&loaded.doc) {
        println!(
            "{verb} credHelpers \"{registry}\": \"{helper}\" (per-registry helpers take precedence over credsStore; {registry} keeps using docker-credential-{helper})"
        );
    }
}

fn run_configure(dry_run: bool) -> Outcome {
    let loaded = load()?;
    let path = loaded.path.clone();
    let previous = docker_config::creds_store(&loaded.doc).map(str::to_string);
    let (plain, problems) = migrate::from_auths(&loaded.doc);

    if previous.as_deref() == Some(CREDS_STORE) && plain.is_empty() && problems.is_empty() {
        println!(
            "Already configured: {} has \"credsStore\": \"hub\" and no plaintext credentials; nothing changed.",
            path.display()
        );
        report_cred_helpers(&loaded, "note:");
        return Ok(());
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{NAME} configure: {p}");
        }
        return Err(fail(format!(
            "{}; fix the entries above and run configure again",
            unchanged_hint(&path)
        )));
    }
    check_on_path(&path)?;
    let old = old_helper(&loaded, previous.as_deref());
    if let Some((name, _)) = &old
        && !migrate::valid_helper_name(name)
    {
        return Err(fail(format!(
            "\"credsStore\": \"{name}\" is not a helper name (docker runs docker-credential-<name>); fix it in {} and run configure again",
            path.display()
        )));
    }

    let (kc, selection) = guarded(&path, keychain::open).map_err(|e| {
        fail(format!(
            "cannot use the keychain: {e}; {}",
            unchanged_hint(&path)
        ))
    })?;
    check_volatile(&selection, &plain, &path)?;

    if dry_run {
        return dry_run_report(&loaded, previous.as_deref(), &plain, old, &selection);
    }

    let from_old = match &old {
        Some((name, need)) => read_old_helper(name, *need, &path)?,
        None => Vec::new(),
    };
    let (moves, superseded) = merge(from_old, plain);
    move_into_keychain(kc.as_ref(), &moves, &path)?;

    let strip: Vec<String> = moves
        .iter()
        .filter(|f| f.origin == Origin::Auths)
        .map(|f| f.key.clone())
        .chain(superseded.iter().map(|(f, _)| f.key.clone()))
        .collect();
    write_all(&loaded, previous.as_deref(), &strip)?;
    print_report(
        &loaded,
        previous.as_deref(),
        &selection,
        &moves,
        &superseded,
    );
    Ok(())
}

/// Every credential of the previous helper, read completely before anything is stored.
fn read_old_helper(name: &str, need: Need, path: &Path) -> Result<Vec<Found>, Failed> {
    match migrate::from_helper(name, settings::timeout()) {
        Ok((found, vanished)) => {
            for key in vanished {
                eprintln!(
                    "{NAME} configure: warning: docker-credential-{name} lists {key} but has no credential for it; skipped"
                );
            }
            Ok(found)
        }
        Err(e) if need == Need::Required => {
            eprintln!(
                "{NAME} configure: cannot read the credentials of the previous credsStore: {e}"
            );
            Err(fail(format!(
                "{}; nothing was stored; fix the problem above and run configure again",
                unchanged_hint(path)
            )))
        }
        Err(e) => {
            eprintln!(
                "{NAME} configure: warning: docker's default store could not be read, so credentials it may hold were not moved ({e}); run `docker login` again for any registry that asks"
            );
            Ok(Vec::new())
        }
    }
}

/// Store and verify each credential; stop at the first failure. With nothing to move,
/// prove the keychain takes writes, since docker will store its next login there.
fn move_into_keychain(kc: &dyn Keychain, moves: &[Found], path: &Path) -> Outcome {
    let mut done: Vec<&str> = Vec::new();
    for found in moves {
        if let Err(e) = guarded(path, || migrate::store_verified(kc, found)) {
            eprintln!(
                "{NAME} configure: cannot move {} from {} to the keychain: {e}",
                found.describe(),
                found.origin.describe()
            );
            let kept = if done.is_empty() {
                "nothing was stored".to_string()
            } else {
                format!(
                    "{} credential(s) already copied to the keychain stay there ({})",
                    done.len(),
                    done.join(", ")
                )
            };
            return Err(fail(format!(
                "{}; {kept}; fix the problem above (see `{NAME} doctor`) and run configure again",
                unchanged_hint(path)
            )));
        }
        done.push(&found.key);
    }
    if moves.is_empty() {
        guarded(path, || probe(kc)).map_err(|e| {
            fail(format!(
                "the keychain does not accept writes, so docker could not store logins through this helper: {e}; {}",
                unchanged_hint(path)
            ))
        })?;
    }
    Ok(())
}

fn print_report(
    loaded: &Loaded,
    previous: Option<&str>,
    selection: &Selection,
    moves: &[Found],
    superseded: &[(Found, bool)],
) {
    let path = &loaded.path;
    println!(
        "Config: {} (keychain: {}, {})",
        path.display(),
        selection.backend.name(),
        selection.reason
    );
    for f in moves {
        let tail = match &f.origin {
            Origin::Auths => "",
            Origin::Helper(_) => "; its copy there is left in place",
        };
        println!(
            "moved {} from {} to the keychain{tail}",
            f.describe(),
            f.origin.describe()
        );
    }
    for (plain, differs) in superseded {
        if *differs {
            println!(
                "removed the plaintext copy of {} from config.json: docker was using the one in the previous credsStore, which differs",
                plain.key
            );
        }
    }
    report_cred_helpers(loaded, "kept");
    if loaded.original.is_some() {
        println!(
            "backup: {} (the previous config.json without the secrets now in the keychain)",
            sibling(path, BACKUP_SUFFIX).display()
        );
    }
    let was = if previous == Some(CREDS_STORE) {
        "already \"hub\"".to_string()
    } else {
        format!("was {}", quoted(previous))
    };
    println!("Configured: \"credsStore\": \"hub\" ({was}). Undo with `{NAME} configure --undo`.");
}

/// docker runs `docker-credential-hub` from its PATH. Switching credsStore while docker
/// cannot find it would break every pull of a private image, so that is refused.
fn check_on_path(path: &Path) -> Outcome {
    let me = std::env::current_exe().and_then(std::fs::canonicalize).ok();
    let my_dir = me
        .as_deref()
        .and_then(Path::parent)
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| "its directory".into());
    match migrate::find_program(NAME) {
        None => Err(fail(format!(
            "{NAME} is not on PATH, so docker could not run it after the switch; add {my_dir} to PATH (e.g. in ~/.profile: export PATH=\"{my_dir}:$PATH\") and run configure again; {}",
            unchanged_hint(path)
        ))),
        Some(found) => {
            if std::fs::canonicalize(&found).ok() != me {
                eprintln!(
                    "{NAME} configure: warning: docker will run {}, not this binary ({my_dir}); run `{NAME} doctor`",
                    found.display()
                );
            }
            Ok(())
        }
    }
}

/// The keychain that forgets at reboot must not silently take the only copy of
/// plaintext credentials. Choosing it explicitly is the user's call.
fn check_volatile(selection: &Selection, plain: &[Found], path: &Path) -> Outcome {
    if !selection.volatile {
        return Ok(());
    }
    let explicit = matches!(keychain::requested(), Ok(Requested::Keyutils));
    if !explicit && !plain.is_empty() {
        return Err(fail(format!(
            "the only keychain here is the kernel keyring, which forgets everything at reboot ({}); moving the {} plaintext credential(s) from config.json there would lose them at the next reboot; \
             start a Secret Service (see `{NAME} doctor`), or accept that with DOCKER_CREDENTIAL_HUB_BACKEND=keyutils; {}",
            selection.reason,
            plain.len(),
            unchanged_hint(path)
        )));
    }
    eprintln!(
        "{NAME} configure: warning: credentials will be kept in the kernel keyring and will not survive a reboot ({}); run `{NAME} doctor` for a persistent setup",
        selection.reason
    );
    Ok(())
}

/// The previous credsStore's value wins over a plaintext copy of the same key: it is
/// the one docker was using. Returns the moves and the superseded plaintext entries
/// (with whether they differed).
fn merge(from_old: Vec<Found>, plain: Vec<Found>) -> (Vec<Found>, Vec<(Found, bool)>) {
    let mut superseded = Vec::new();
    let mut moves = from_old;
    for p in plain {
        match moves.iter().find(|m| m.key == p.key) {
            Some(m) => {
                let differs = m.cred != p.cred;
                superseded.push((p, differs));
            }
            None => moves.push(p),
        }
    }
    (moves, superseded)
}

/// A write, read and delete of a throwaway internal value.
fn probe(kc: &dyn Keychain) -> Result<(), String> {
    let name = format!("configure-probe-{}", std::process::id());
    let value = Secret::new(format!("probe-{}", std::process::id()));
    kc.set_internal(&name, &value).map_err(|e| e.to_string())?;
    let back = kc.get_internal(&name).map_err(|e| e.to_string());
    let _ = kc.erase_internal(&name);
    match back? {
        Some(v) if v == value => Ok(()),
        _ => Err("a test value did not read back".into()),
    }
}

fn dry_run_report(
    loaded: &Loaded,
    previous: Option<&str>,
    plain: &[Found],
    old: Option<(String, Need)>,
    selection: &Selection,
) -> Outcome {
    let path = &loaded.path;
    println!("Dry run: nothing is changed.");
    println!(
        "Config: {} (keychain: {}, {})",
        path.display(),
        selection.backend.name(),
        selection.reason
    );
    let mut old_keys = Vec::new();
    let mut failed = false;
    if let Some((name, need)) = old {
        match migrate::helper_list(&name, settings::timeout()) {
            Ok(list) => {
                for (key, username) in list {
                    let who = if username == migrate::TOKEN_USERNAME {
                        "identity token".to_string()
                    } else {
                        format!("username {username}")
                    };
                    println!(
                        "would move {key} ({who}) from docker-credential-{name} to the keychain; its copy there stays"
                    );
                    old_keys.push(key);
                }
            }
            Err(e) if need == Need::Required => {
                eprintln!("{NAME} configure: configure would fail: {e}");
                failed = true;
            }
            Err(e) => eprintln!(
                "{NAME} configure: warning: docker's default store could not be read ({e}); credentials it may hold would not move"
            ),
        }
    }
    for f in plain {
        if old_keys.contains(&f.key) {
            println!(
                "would remove the plaintext copy of {} from config.json (docker uses the previous credsStore's copy)",
                f.key
            );
        } else {
            println!(
                "would move {} from {} to the keychain",
                f.describe(),
                f.origin.describe()
            );
        }
    }
    report_cred_helpers(loaded, "would keep");
    if loaded.original.is_some() {
        println!(
            "would write backup {}",
            sibling(path, BACKUP_SUFFIX).display()
        );
    } else {
        println!("would create {} with mode 0600", path.display());
    }
    if previous == Some(CREDS_STORE) {
        println!("would keep \"credsStore\": \"hub\"");
    } else {
        println!(
            "would set \"credsStore\": \"hub\" (now {})",
            quoted(previous)
        );
    }
    if failed { Err(Failed) } else { Ok(()) }
}

/// Write the undo record, the backup, then config.json, refusing if config.json changed
/// since it was read (a `docker login` running at the same time).
fn write_all(loaded: &Loaded, previous: Option<&str>, strip: &[String]) -> Outcome {
    let path = &loaded.path;
    let io_fail = |what: &str, p: &Path, e: std::io::Error| {
        fail(format!(
            "cannot write {what} {}: {e}; {}; check the directory's permissions and run configure again",
            p.display(),
            unchanged_hint(path)
        ))
    };
    if previous != Some(CREDS_STORE) {
        let record = sibling(path, RECORD_SUFFIX);
        let body = serde_json::json!({ "credsStore": previous });
        docker_config::write_atomic(&record, &docker_config::to_bytes(&body))
            .map_err(|e| io_fail("the undo record", &record, e))?;
    }
    if let Some(original) = &loaded.original {
        let backup = sibling(path, BACKUP_SUFFIX);
        let bytes = if strip.is_empty() {
            original.clone()
        } else {
            let plan = Edit {
                creds_store: CredsStore::Keep,
                strip: strip.to_vec(),
            };
            docker_config::to_bytes(&docker_config::edit(loaded.doc.clone(), &plan))
        };
        docker_config::write_atomic(&backup, &bytes)
            .map_err(|e| io_fail("the backup", &backup, e))?;
    }
    let plan = Edit {
        creds_store: CredsStore::Set(CREDS_STORE.into()),
        strip: strip.to_vec(),
    };
    let new = docker_config::to_bytes(&docker_config::edit(loaded.doc.clone(), &plan));
    replace_config(loaded, &new)
}

fn replace_config(loaded: &Loaded, new: &[u8]) -> Outcome {
    let path = &loaded.path;
    let now = std::fs::read(path).ok();
    if now != loaded.original {
        return Err(fail(format!(
            "{} changed while configure ran (a docker login?); it was left as it is now: run configure again",
            path.display()
        )));
    }
    docker_config::write_atomic(path, new).map_err(|e| {
        fail(format!(
            "cannot write {}: {e}; {}; check the directory's permissions and run configure again",
            path.display(),
            unchanged_hint(path)
        ))
    })
}

/// The recorded previous credsStore: `None` without a record, `Some(None)` when there
/// was no credsStore before.
fn read_record(path: &Path) -> Option<Option<String>> {
    let bytes = std::fs::read(sibling(path, RECORD_SUFFIX)).ok()?;
    let doc: Value = serde_json::from_slice(&bytes).ok()?;
    match doc.get("credsStore") {
        Some(Value::String(s)) if !s.is_empty() => Some(Some(s.clone())),
        Some(Value::Null) | None => Some(None),
        Some(_) => None,
    }
}

fn run_undo(dry_run: bool) -> Outcome {
    let loaded = load()?;
    let path = loaded.path.clone();
    let current = docker_config::creds_store(&loaded.doc);
    if current != Some(CREDS_STORE) {
        println!(
            "Nothing to undo: {} has \"credsStore\" {}, not \"hub\"; nothing changed.",
            path.display(),
            quoted(current)
        );
        return Ok(());
    }
    let record = read_record(&path);
    let change = match &record {
        Some(Some(prev)) if prev != CREDS_STORE => CredsStore::Set(prev.clone()),
        _ => CredsStore::Remove,
    };
    let what = match (&change, &record) {
        (CredsStore::Set(prev), _) => format!("put back \"credsStore\": \"{prev}\""),
        (_, Some(_)) => "removed \"credsStore\" (there was none before configure)".to_string(),
        _ => "removed \"credsStore\" (no record of an earlier value was found)".to_string(),
    };
    if dry_run {
        println!("Dry run: nothing is changed.");
        println!("would have {what} in {}", path.display());
        return Ok(());
    }
    let plan = Edit {
        creds_store: change,
        strip: Vec::new(),
    };
    let new = docker_config::to_bytes(&docker_config::edit(loaded.doc.clone(), &plan));
    replace_config(&loaded, &new)?;
    let _ = std::fs::remove_file(sibling(&path, RECORD_SUFFIX));
    println!("Undone: {what} in {}.", path.display());
    println!(
        "Your credentials stay in the keychain, where docker no longer looks. List them with `{NAME} list`; erase one with `printf %s REGISTRY | {NAME} erase` (or run `docker logout REGISTRY` while configured)."
    );
    println!(
        "Registries whose credentials were plaintext in config.json before configure need `docker login` again."
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keychain::Stored;

    fn found(key: &str, user: &str, secret: &str, origin: Origin) -> Found {
        Found {
            key: key.into(),
            cred: Stored::new(user, secret),
            origin,
        }
    }

    #[test]
    fn the_previous_helper_wins_over_plaintext_copies() {
        let old = Origin::Helper("secretservice".into());
        let (moves, superseded) = merge(
            vec![
                found("a", "u", "s", old.clone()),
                found("b", "u", "s", old.clone()),
            ],
            vec![
                found("a", "u", "s", Origin::Auths),
                found("b", "u", "other", Origin::Auths),
                found("c", "v", "t", Origin::Auths),
            ],
        );
        let keys: Vec<_> = moves
            .iter()
            .map(|f| (f.key.as_str(), f.origin.clone()))
            .collect();
        assert_eq!(keys, [("a", old.clone()), ("b", old), ("c", Origin::Auths)]);
        let sup: Vec<_> = superseded
            .iter()
            .map(|(f, d)| (f.key.as_str(), *d))
            .collect();
        assert_eq!(sup, [("a", false), ("b", true)]);
    }

    #[test]
    fn sidecar_files_sit_next_to_config_json() {
        let p = Path::new("/x/.docker/config.json");
        assert_eq!(
            sibling(p, BACKUP_SUFFIX),
            Path::new("/x/.docker/config.json.bak")
        );
        assert_eq!(
            sibling(p, RECORD_SUFFIX),
            Path::new("/x/.docker/config.json.hub-previous")
        );
    }
}
