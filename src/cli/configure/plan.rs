//! What is there and what would move: the checks that must pass before anything changes.

use std::path::Path;

use super::migrate::{self, Found};
use super::{CREDS_STORE, Failure, Outcome, fail, unchanged_hint};
use crate::NAME;
use crate::docker_config::{self, Loaded};
use crate::keychain::{self, Requested, Selection};
use crate::protocol::client;

/// How hard to try the previous helper: the configured credsStore must work (docker
/// relies on it); docker's auto-detected default store is read when it answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Required,
    BestEffort,
}

/// The previous helper to read credentials from, if any.
pub fn old_helper(loaded: &Loaded, previous: Option<&str>) -> Option<(String, Need)> {
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

/// How to put a directory on PATH, in this platform's words.
pub fn path_hint(dir: &str) -> String {
    if cfg!(windows) {
        format!(
            "add {dir} to your user PATH (Settings → System → About → Advanced system settings → Environment Variables, or `setx PATH \"%PATH%;{dir}\"`) and open a new terminal"
        )
    } else {
        format!("add {dir} to PATH (e.g. in ~/.profile: export PATH=\"{dir}:$PATH\")")
    }
}

/// The directory of this binary, for messages.
pub fn my_dir() -> String {
    std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .ok()
        .as_deref()
        .and_then(Path::parent)
        .map(crate::fs::display)
        .unwrap_or_else(|| "its directory".into())
}

/// docker runs `docker-credential-hub` from its PATH. Switching credsStore while docker
/// cannot find it would break every pull of a private image, so that is refused.
pub fn check_on_path(path: &Path) -> Outcome {
    let me = std::env::current_exe().and_then(std::fs::canonicalize).ok();
    let my_dir = my_dir();
    match crate::trust::program::find(NAME) {
        None => Err(fail(format!(
            "{NAME} is not on PATH, so docker could not run it after the switch; {} and run configure again; {}",
            path_hint(&my_dir),
            unchanged_hint(path)
        ))),
        Some(found) => {
            if std::fs::canonicalize(&found).ok() != me {
                eprintln!(
                    "{NAME} configure: warning: docker will run {}, not this binary ({my_dir}); run `{NAME} doctor`",
                    crate::fs::display(&found)
                );
            }
            Ok(())
        }
    }
}

/// The keychain that forgets at reboot must not silently take the only copy of
/// plaintext credentials. Choosing it explicitly is the user's call (then it warns).
pub fn check_volatile(selection: &Selection, plain: &[Found], path: &Path) -> Outcome {
    if !selection.volatile() {
        return Ok(());
    }
    let explicit = matches!(
        keychain::requested(),
        Ok(Requested::Explicit(keychain::Backend::Keyutils))
    );
    if !explicit && !plain.is_empty() {
        return Err(fail(format!(
            "the only keychain here is the kernel keyring, which forgets everything at reboot ({selection}); moving the {} plaintext credential(s) from config.json there would lose them at the next reboot; \
             start a Secret Service or initialise `pass` (see `{NAME} doctor`), or accept that with DOCKER_CREDENTIAL_HUB_BACKEND=keyutils; {}",
            plain.len(),
            unchanged_hint(path)
        )));
    }
    Ok(())
}

/// The previous credsStore's value wins over a plaintext copy of the same key: it is
/// the one docker was using. Returns the moves and the superseded plaintext entries
/// (with whether they differed).
pub fn merge(from_old: Vec<Found>, plain: Vec<Found>) -> (Vec<Found>, Vec<(Found, bool)>) {
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

/// A credsStore value that is not a helper name cannot be read from.
pub fn check_helper_name(old: &Option<(String, Need)>, path: &Path) -> Result<(), Failure> {
    match old {
        Some((name, _)) if !client::valid_helper_name(name) => Err(fail(format!(
            "\"credsStore\": \"{name}\" is not a helper name (docker runs docker-credential-<name>); fix it in {} and run configure again",
            crate::fs::display(path)
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::migrate::Origin;
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
    fn path_hints_speak_the_platform() {
        let hint = path_hint("/opt/bin");
        if cfg!(windows) {
            assert!(
                hint.contains("setx PATH") && !hint.contains("~/.profile"),
                "{hint}"
            );
        } else {
            assert!(hint.contains("~/.profile"), "{hint}");
        }
    }
}
