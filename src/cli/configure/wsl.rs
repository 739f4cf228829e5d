//! `configure --wsl`, run by the Linux binary inside WSL: docker there runs the Windows
//! binary through WSL interop (`"credsStore": "hub.exe"` makes it run
//! `docker-credential-hub.exe` from PATH), so docker in WSL and docker on Windows share the
//! Windows store. The credentials docker in WSL has now (plaintext `auths`, the previous
//! credsStore, this helper's own Linux keychain) move into the Windows store through the
//! exe, spoken to with the protocol, exactly as plain `configure` moves them into the
//! keychain: store, read back, and only then touch config.json. `--undo` reverses it.

use std::path::Path;

use super::migrate::{self, Found};
use super::plan::{self, Need};
use super::{CREDS_STORE, Failure, Outcome, WSL_CREDS_STORE, apply, fail, load, unchanged_hint};
use crate::NAME;
use crate::docker_config;
use crate::protocol::client::{self, HELPER_PREFIX};
use crate::settings;

/// What docker in WSL runs for `"credsStore": "hub.exe"`.
const EXE: &str = "docker-credential-hub.exe";

fn install_hint() -> String {
    format!(
        "download the Windows binary (docker-credential-hub-windows-x86_64.exe from the release page), save it as {EXE} in a folder on your Windows PATH (WSL appends the Windows PATH to its own) and run `{NAME} configure --wsl` again"
    )
}

/// docker-credential-hub.exe must be on PATH and answer `version` as this helper does:
/// after the switch, docker runs it for every pull.
fn check_exe(path: &Path) -> Outcome {
    let Some(found) = crate::trust::program::find(EXE) else {
        return Err(fail(format!(
            "{EXE} is not on PATH, so docker in WSL could not run it; {}; {}",
            install_hint(),
            unchanged_hint(path)
        )));
    };
    let shown = crate::fs::display(&found);
    match client::run_helper(
        &found.to_string_lossy(),
        "version",
        b"",
        settings::timeout(),
    ) {
        Ok(out)
            if out.success
                && String::from_utf8_lossy(out.stdout.expose())
                    .starts_with(&format!("{NAME} v")) =>
        {
            Ok(())
        }
        Ok(_) => Err(fail(format!(
            "{shown} does not answer `version` as {NAME} does; {}; {}",
            install_hint(),
            unchanged_hint(path)
        ))),
        Err(e) => Err(fail(format!(
            "{e}; {}; {}",
            install_hint(),
            unchanged_hint(path)
        ))),
    }
}

/// Store one credential through the exe and read it back: only a credential that reads
/// back identical counts as moved.
fn store_verified(found: &Found) -> Result<(), String> {
    let name = WSL_CREDS_STORE;
    let timeout = settings::timeout();
    client::helper_store(name, &found.key, &found.cred, timeout).map_err(|e| e.to_string())?;
    match client::helper_get(name, &found.key, timeout).map_err(|e| e.to_string())? {
        Some(back) if back == found.cred => Ok(()),
        Some(_) => Err(format!(
            "{HELPER_PREFIX}{name} returned a different value when read back"
        )),
        None => Err(format!(
            "{HELPER_PREFIX}{name} did not return the credential when read back"
        )),
    }
}

/// Store and verify each credential in the Windows store; stop at the first failure. With
/// nothing to move, check that the store answers at all.
fn move_to_windows(moves: &[Found], path: &Path) -> Outcome {
    let fix = format!(
        "fix the problem above (`{EXE} doctor` from Windows explains the store) and run configure --wsl again"
    );
    apply::move_each(moves, "the Windows store", &fix, path, store_verified)?;
    if moves.is_empty() {
        client::helper_list(WSL_CREDS_STORE, settings::timeout()).map_err(|e| {
            fail(format!(
                "the Windows store does not answer, so docker could not store logins through it: {e}; {}",
                unchanged_hint(path)
            ))
        })?;
    }
    Ok(())
}

pub fn run(dry_run: bool) -> Outcome {
    if !cfg!(target_os = "linux") {
        return Err(fail(format!(
            "--wsl is for the Linux binary inside WSL; here, run `{NAME} configure`"
        )));
    }
    let loaded = load()?;
    let path = loaded.path.clone();
    let previous = docker_config::creds_store(&loaded.doc).map(str::to_string);
    let (plain, problems) = migrate::from_auths(&loaded.doc);
    if previous.as_deref() == Some(WSL_CREDS_STORE) && plain.is_empty() && problems.is_empty() {
        println!(
            "Already configured: {} has \"credsStore\": \"{WSL_CREDS_STORE}\" and no plaintext credentials; nothing changed.",
            crate::fs::display(&path)
        );
        return Ok(());
    }
    apply::refuse_problems(&problems, &path)?;
    check_exe(&path)?;
    let old = match previous.as_deref() {
        Some(WSL_CREDS_STORE) => None,
        // This helper on the Linux side: its credentials move to Windows too.
        Some(CREDS_STORE) => Some((CREDS_STORE.to_string(), Need::Required)),
        other => plan::old_helper(&loaded, other),
    };
    plan::check_helper_name(&old, &path)?;
    if dry_run {
        return dry_run_report(&path, previous.as_deref(), &plain, old);
    }
    let from_old = match &old {
        Some((name, need)) => apply::read_old_helper(name, *need, &path)?,
        None => Vec::new(),
    };
    let (moves, superseded) = plan::merge(from_old, plain);
    move_to_windows(&moves, &path)?;
    let strip = apply::plaintext_keys(&moves, &superseded);
    apply::write_all(&loaded, previous.as_deref(), &strip, WSL_CREDS_STORE)?;
    println!(
        "Config: {} (credentials in the Windows store, through {EXE})",
        crate::fs::display(&path)
    );
    for f in &moves {
        println!(
            "moved {} from {} to the Windows store",
            f.describe(),
            f.origin.describe()
        );
    }
    println!(
        "Configured: \"credsStore\": \"{WSL_CREDS_STORE}\" (was {}): docker in WSL uses the Windows store, shared with docker on Windows. Undo with `{NAME} configure --undo`.",
        super::quoted(previous.as_deref())
    );
    Ok(())
}

fn dry_run_report(
    path: &Path,
    previous: Option<&str>,
    plain: &[Found],
    old: Option<(String, Need)>,
) -> Outcome {
    println!("Dry run: nothing is changed.");
    if let Some((name, need)) = old {
        match client::helper_list(&name, settings::timeout()) {
            Ok(list) => {
                for (key, _) in list {
                    println!(
                        "would move {key} from {HELPER_PREFIX}{name} to the Windows store; its copy there stays"
                    );
                }
            }
            Err(e) if need == Need::Required => {
                return Err(Failure::new(format!("configure --wsl would fail: {e}")));
            }
            Err(e) => eprintln!(
                "{NAME} configure: warning: docker's default store could not be read ({e}); credentials it may hold would not move"
            ),
        }
    }
    for f in plain {
        println!(
            "would move {} from {} to the Windows store",
            f.describe(),
            f.origin.describe()
        );
    }
    println!(
        "would set \"credsStore\": \"{WSL_CREDS_STORE}\" in {} (now {})",
        crate::fs::display(path),
        super::quoted(previous)
    );
    Ok(())
}
