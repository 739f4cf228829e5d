//! `configure` itself: read everything, move and verify every credential, then write the
//! undo record, the backup and config.json, in that order.

use std::path::Path;

use super::plan::{self, Need};
use super::{
    BACKUP_SUFFIX, CREDS_STORE, Failed, Outcome, RECORD_SUFFIX, containers, fail, load, report,
    sibling, unchanged_hint,
};
use crate::NAME;
use crate::deadline::Deadline;
use crate::docker_config::{self, CredsStore, Edit, Loaded};
use crate::keychain::{self, Keychain, record};
use crate::migrate::{self, AuthsProblem, Found, Origin};
use crate::secret::Secret;
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
        report::containers(&wiring, dry_run);
        return Ok(());
    }
    refuse_problems(&problems, &path)?;
    plan::check_on_path(&path)?;
    let old = plan::old_helper(&loaded, previous.as_deref());
    plan::check_helper_name(&old, &path)?;

    let deadline = Deadline::after(settings::timeout());
    let (kc, selection) = keychain::open(&deadline).map_err(|e| {
        fail(format!(
            "cannot use the keychain: {e}; {}",
            unchanged_hint(&path)
        ))
    })?;
    plan::check_volatile(&selection, &plain, &path)?;

    if dry_run {
        return report::dry_run(&loaded, previous.as_deref(), &plain, old, &selection);
    }

    let from_old = match &old {
        Some((name, need)) => read_old_helper(name, *need, &path)?,
        None => Vec::new(),
    };
    let (moves, superseded) = plan::merge(from_old, plain);
    move_into_keychain(kc.as_ref(), &deadline, &moves, &path)?;
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
    report::containers(&wiring, false);
    Ok(())
}

/// `auths` entries docker could not read either stop configure before anything changes.
pub fn refuse_problems(problems: &[AuthsProblem], path: &Path) -> Outcome {
    if problems.is_empty() {
        return Ok(());
    }
    for p in problems {
        eprintln!("{NAME} configure: {p}");
    }
    Err(fail(format!(
        "{}; fix the entries above and run configure again",
        unchanged_hint(path)
    )))
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
pub fn read_old_helper(name: &str, need: Need, path: &Path) -> Result<Vec<Found>, Failed> {
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
/// prove the keychain takes writes, since docker will store its next login there. Each
/// credential gets the whole deadline.
fn move_into_keychain(
    kc: &dyn Keychain,
    deadline: &Deadline,
    moves: &[Found],
    path: &Path,
) -> Outcome {
    let mut done: Vec<&str> = Vec::new();
    for found in moves {
        deadline.renew();
        if let Err(e) = migrate::store_verified(kc, found) {
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
        deadline.renew();
        probe(kc).map_err(|e| {
            fail(format!(
                "the keychain does not accept writes, so docker could not store logins through this helper: {e}; {}",
                unchanged_hint(path)
            ))
        })?;
    }
    Ok(())
}

/// A write, read and delete of a throwaway internal value.
fn probe(kc: &dyn Keychain) -> anyhow::Result<()> {
    let name = format!("configure-probe-{}", std::process::id());
    let value = Secret::new(format!("probe-{}", std::process::id()));
    kc.set_internal(&name, &value)?;
    let back = kc.get_internal(&name);
    let _ = kc.erase_internal(&name);
    match back? {
        Some(v) if v == value => Ok(()),
        _ => anyhow::bail!("a test value did not read back"),
    }
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
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        crate::trust::create_private_dir(dir, docker_config::CONFIG_DIR).map_err(|e| {
            fail(format!(
                "{e}; {}; run configure again",
                unchanged_hint(path)
            ))
        })?;
    }
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
