//! `configure` itself: read everything, move and verify every credential, then write the
//! undo record, the backup and config.json, in that order.

use std::path::Path;

use super::migrate::{self, AuthsProblem, Found, Origin};
use super::plan::{self, Need};
use super::{
    BACKUP_SUFFIX, CREDS_STORE, Failure, Outcome, RECORD_SUFFIX, containers, fail, load, report,
    sibling, unchanged_hint,
};
use crate::NAME;
use crate::cli::{explain, warn_if_volatile};
use crate::deadline::Deadline;
use crate::docker_config::{self, CredsStore, Edit, Loaded};
use crate::keychain::{self, Opened, ProbeError, record};
use crate::settings;

pub fn run(dry_run: bool) -> Outcome {
    let loaded = load()?;
    let path = loaded.path.clone();
    let previous = docker_config::creds_store(&loaded.doc).map(str::to_string);
    let (plain, problems) = migrate::from_auths(&loaded.doc);

    if previous.as_deref() == Some(CREDS_STORE) && plain.is_empty() && problems.is_empty() {
        let wiring = if dry_run {
            containers::planned()
        } else {
            containers::wire()
        };
        println!(
            "Already configured: {} has \"credsStore\": \"hub\" and no plaintext credentials; nothing changed.",
            crate::fs::display(&path)
        );
        report::cred_helpers(&loaded, "note:");
        report::containers(&wiring);
        return Ok(());
    }
    refuse_problems(&problems, &path)?;
    plan::check_on_path(&path)?;
    let old = plan::old_helper(&loaded, previous.as_deref());
    plan::check_helper_name(&old, &path)?;

    let deadline = Deadline::after(settings::timeout());
    let (opened, selection) = keychain::open(&deadline).map_err(|e| {
        fail(format!(
            "cannot use the keychain: {}; {}",
            explain(&e),
            unchanged_hint(&path)
        ))
    })?;
    plan::check_volatile(&selection, &plain, &path)?;
    warn_if_volatile(Some("configure"), &selection, false);

    if dry_run {
        return report::dry_run(&loaded, previous.as_deref(), &plain, old, &selection);
    }

    let from_old = match &old {
        Some((name, need)) => read_old_helper(name, *need, &path)?,
        None => Vec::new(),
    };
    let (moves, superseded) = plan::merge(from_old, plain);
    move_into_keychain(&opened, &deadline, &moves, &path)?;
    if let Err(e) = record::write(&keychain::service_name(), selection.backend) {
        return Err(fail(format!(
            "the credentials are in the keychain, but {e}; {}",
            unchanged_hint(&path)
        )));
    }

    let strip = plaintext_keys(&moves, &superseded);
    write_all(&loaded, previous.as_deref(), &strip, CREDS_STORE)?;
    let wiring = containers::wire();
    report::done(
        &loaded,
        previous.as_deref(),
        &selection,
        &moves,
        &superseded,
    );
    report::containers(&wiring);
    Ok(())
}

/// `auths` entries docker could not read either stop configure before anything changes.
pub fn refuse_problems(problems: &[AuthsProblem], path: &Path) -> Outcome {
    if problems.is_empty() {
        return Ok(());
    }
    Err(fail(format!(
        "{}; fix the entries above and run configure again",
        unchanged_hint(path)
    ))
    .after(problems.iter().map(|p| p.to_string())))
}

/// The strip list of config.json: moved plaintext entries and superseded plaintext copies.
pub fn plaintext_keys(moves: &[Found], superseded: &[(Found, bool)]) -> Vec<String> {
    moves
        .iter()
        .filter(|f| f.origin == Origin::Auths)
        .map(|f| f.key.clone())
        .chain(superseded.iter().map(|(f, _)| f.key.clone()))
        .collect()
}

/// Every credential of the previous helper, read completely before anything is stored.
pub fn read_old_helper(name: &str, need: Need, path: &Path) -> Result<Vec<Found>, Failure> {
    match migrate::from_helper(name, settings::timeout()) {
        Ok((found, vanished)) => {
            for key in vanished {
                eprintln!(
                    "{NAME} configure: warning: docker-credential-{name} lists {key} but has no credential for it; skipped"
                );
            }
            Ok(found)
        }
        Err(e) if need == Need::Required => Err(fail(format!(
            "{}; nothing was stored; fix the problem above and run configure again",
            unchanged_hint(path)
        ))
        .after([format!(
            "cannot read the credentials of the previous credsStore: {e}"
        )])),
        Err(e) => {
            eprintln!(
                "{NAME} configure: warning: docker's default store could not be read, so credentials it may hold were not moved ({e}); run `docker login` again for any registry that asks"
            );
            Ok(Vec::new())
        }
    }
}

/// Store and verify each credential; stop at the first failure. With nothing to move,
/// prove the keychain takes writes, since docker will store its next login there. Each
/// credential gets the whole deadline.
fn move_into_keychain(
    opened: &Opened,
    deadline: &Deadline,
    moves: &[Found],
    path: &Path,
) -> Outcome {
    let fix = format!("fix the problem above (see `{NAME} doctor`) and run configure again");
    move_each(moves, "the keychain", &fix, path, |found| {
        deadline.renew();
        migrate::store_verified(opened, found)
    })?;
    if moves.is_empty() {
        deadline.renew();
        let name = format!("configure-probe-{}", std::process::id());
        let problem = match keychain::probe(opened.internal.as_ref(), &name) {
            Ok(_) | Err(ProbeError::Delete(_)) => return Ok(()),
            Err(ProbeError::Write(e) | ProbeError::Read(e)) => explain(&e),
            Err(ProbeError::Differs) => "a test value did not read back".into(),
        };
        return Err(fail(format!(
            "the keychain does not accept writes, so docker could not store logins through this helper: {problem}; {}",
            unchanged_hint(path)
        )));
    }
    Ok(())
}

/// Move each credential into `place` with `store` (which stores it and reads it back), in
/// order; the first failure stops it, and says what is there already. `fix` ends its line.
pub fn move_each<E: std::fmt::Display>(
    moves: &[Found],
    place: &str,
    fix: &str,
    path: &Path,
    mut store: impl FnMut(&Found) -> Result<(), E>,
) -> Outcome {
    let mut done: Vec<&str> = Vec::new();
    for found in moves {
        if let Err(e) = store(found) {
            let problem = format!(
                "cannot move {} from {} to {place}: {e}",
                found.describe(),
                found.origin.describe()
            );
            let kept = if done.is_empty() {
                "nothing was stored".to_string()
            } else {
                format!(
                    "{} credential(s) already copied to {place} stay there ({})",
                    done.len(),
                    done.join(", ")
                )
            };
            return Err(fail(format!("{}; {kept}; {fix}", unchanged_hint(path))).after([problem]));
        }
        done.push(&found.key);
    }
    Ok(())
}

/// Write the undo record, the backup, then config.json with `"credsStore": creds_store`,
/// refusing if config.json changed since it was read (a `docker login` running at the same
/// time). The record and the backup replace whatever is at their paths (a planted symlink is
/// replaced, never followed); only config.json's own symlink is followed, as docker does.
pub fn write_all(
    loaded: &Loaded,
    previous: Option<&str>,
    strip: &[String],
    creds_store: &str,
) -> Outcome {
    let path = &loaded.path;
    let io_fail = |what: &str, p: &Path, e: std::io::Error| {
        fail(format!(
            "cannot write {what} {}: {e}; {}; check the directory's permissions and run configure again",
            crate::fs::display(p),
            unchanged_hint(path)
        ))
    };
    docker_config::create_dir_of(path).map_err(|e| {
        fail(format!(
            "{e}; {}; run configure again",
            unchanged_hint(path)
        ))
    })?;
    if previous != Some(creds_store) {
        let record = sibling(path, RECORD_SUFFIX);
        let body = serde_json::json!({ "credsStore": previous });
        crate::fs::replace(&record, &docker_config::to_bytes(&body))
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
        crate::fs::replace(&backup, &bytes).map_err(|e| io_fail("the backup", &backup, e))?;
    }
    let plan = Edit {
        creds_store: CredsStore::Set(creds_store.into()),
        strip: strip.to_vec(),
    };
    let new = docker_config::to_bytes(&docker_config::edit(loaded.doc.clone(), &plan));
    replace_config(loaded, &new)
}

/// Replace config.json with `new`, unless it changed since it was read.
pub fn replace_config(loaded: &Loaded, new: &[u8]) -> Outcome {
    let path = &loaded.path;
    let now = docker_config::read(path, docker_config::CONFIG_JSON)
        .ok()
        .flatten();
    if now != loaded.original {
        return Err(fail(format!(
            "{} changed while configure ran (a docker login?); it was left as it is now: run configure again",
            crate::fs::display(path)
        )));
    }
    docker_config::write_config(path, new).map_err(|e| {
        fail(format!(
            "cannot write {}: {e}; {}; check the directory's permissions and run configure again",
            crate::fs::display(path),
            unchanged_hint(path)
        ))
    })
}
