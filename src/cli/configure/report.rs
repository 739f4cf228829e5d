//! What `configure` did, or would do (`--dry-run`), on stdout.

use super::containers::Wiring;
use super::migrate::{Found, Origin};
use super::plan::Need;
use super::{BACKUP_SUFFIX, CREDS_STORE, Failure, Outcome, quoted, sibling};
use crate::NAME;
use crate::docker_config::{self, Loaded};
use crate::keychain::Selection;
use crate::protocol::{TOKEN_USERNAME, client};
use crate::settings;

pub fn cred_helpers(loaded: &Loaded, verb: &str) {
    for (registry, helper) in docker_config::cred_helpers(&loaded.doc) {
        println!(
            "{verb} credHelpers \"{registry}\": \"{helper}\" (per-registry helpers take precedence over credsStore; {registry} keeps using docker-credential-{helper})"
        );
    }
}

pub fn containers(wiring: &Wiring) {
    for line in &wiring.done {
        println!("{line}");
    }
    for warning in &wiring.warnings {
        eprintln!("{NAME} configure: warning: {warning}");
    }
}

pub fn done(
    loaded: &Loaded,
    previous: Option<&str>,
    selection: &Selection,
    moves: &[Found],
    superseded: &[(Found, bool)],
) {
    let path = &loaded.path;
    println!(
        "Config: {} (keychain: {}, {selection})",
        crate::fs::display(path),
        selection.backend.name(),
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
    cred_helpers(loaded, "kept");
    if loaded.original.is_some() {
        println!(
            "backup: {} (the previous config.json without the secrets now in the keychain)",
            crate::fs::display(&sibling(path, BACKUP_SUFFIX))
        );
    }
    let was = if previous == Some(CREDS_STORE) {
        "already \"hub\"".to_string()
    } else {
        format!("was {}", quoted(previous))
    };
    println!("Configured: \"credsStore\": \"hub\" ({was}). Undo with `{NAME} configure --undo`.");
}

pub fn dry_run(
    loaded: &Loaded,
    previous: Option<&str>,
    plain: &[Found],
    old: Option<(String, Need)>,
    selection: &Selection,
) -> Outcome {
    let path = &loaded.path;
    println!("Dry run: nothing is changed.");
    println!(
        "Config: {} (keychain: {}, {selection})",
        crate::fs::display(path),
        selection.backend.name(),
    );
    let mut old_keys = Vec::new();
    let mut would_fail = None;
    if let Some((name, need)) = old {
        match client::helper_list(&name, settings::timeout()) {
            Ok(list) => {
                for (key, username) in list {
                    let who = if username == TOKEN_USERNAME {
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
                would_fail = Some(Failure::new(format!("configure would fail: {e}")));
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
    cred_helpers(loaded, "would keep");
    if loaded.original.is_some() {
        println!(
            "would write backup {}",
            crate::fs::display(&sibling(path, BACKUP_SUFFIX))
        );
    } else {
        println!("would create {} with mode 0600", crate::fs::display(path));
    }
    if previous == Some(CREDS_STORE) {
        println!("would keep \"credsStore\": \"hub\"");
    } else {
        println!(
            "would set \"credsStore\": \"hub\" (now {})",
            quoted(previous)
        );
    }
    containers(&super::containers::planned());
    would_fail.map_or(Ok(()), Err)
}
