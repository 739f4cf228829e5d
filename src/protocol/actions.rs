//! The four protocol actions, as docker-credential-helpers' `HandleCommand` runs them.
//! Everything here returns text for stdout; `serve` prints it and exits.

use super::messages::ERR_NOT_FOUND;
use super::wire::{self, Credentials, InputError};
use crate::NAME;
use crate::hub::HUB_JWT;
use crate::keychain::{Keychain, KeychainError, Stored};
use crate::registry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Store,
    Get,
    Erase,
    List,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "store" => Some(Action::Store),
            "get" => Some(Action::Get),
            "erase" => Some(Action::Erase),
            "list" => Some(Action::List),
            _ => None,
        }
    }
}

/// The result of one action: what to print on stdout (wiped when dropped: a `get` answer
/// holds the secret), and the exit status.
pub struct Outcome {
    pub stdout: String,
    pub code: u8,
    /// For a successful `store` of Docker Hub's key: the credentials, and whether they
    /// differ from what was stored before (a Hub login may follow).
    pub stored_hub: Option<(Credentials, bool)>,
}

/// The answer is wiped, whatever it held.
impl Drop for Outcome {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.stdout);
    }
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Keychain(#[from] KeychainError),
    #[error("{ERR_NOT_FOUND}")]
    NotFound,
}

impl Failure {
    fn line(&self) -> String {
        match self {
            // docker matches these three strings exactly: no prefix.
            Failure::NotFound => ERR_NOT_FOUND.to_string(),
            Failure::Input(e) if e.is_docker_string() => e.to_string(),
            Failure::Input(e) => format!("{NAME}: {e}"),
            Failure::Keychain(e) => format!("{NAME}: {e}"),
        }
    }
}

/// Run one protocol action on `input` (stdin's bytes) with the keychain that was opened for
/// it. A keychain that failed to open is reported only once the request is known to be
/// valid, so that bad input gets its own answer.
pub fn run(
    action: Action,
    input: &[u8],
    keychain: Result<&dyn Keychain, &KeychainError>,
) -> Outcome {
    let mut stored_hub = None;
    let kc = || keychain.map_err(|e| Failure::Keychain(clone_error(e)));
    let result = match action {
        Action::Store => wire::parse_store(input)
            .map_err(Failure::from)
            .and_then(|creds| {
                if let Some(changed) = store(kc()?, &creds)? {
                    stored_hub = Some((creds, changed));
                }
                Ok(String::new())
            }),
        Action::Get => wire::parse_server_url(input)
            .map_err(Failure::from)
            .and_then(|url| get(kc()?, &url)),
        Action::Erase => wire::parse_server_url(input)
            .map_err(Failure::from)
            .and_then(|url| erase(kc()?, &url)),
        // `list` ignores stdin: docker writes "unused" there.
        Action::List => kc().and_then(|kc| Ok(wire::encode_list(&kc.list()?))),
    };
    match result {
        Ok(stdout) => Outcome {
            stdout,
            code: 0,
            stored_hub,
        },
        Err(f) => {
            let mut line = f.line();
            line.push('\n');
            Outcome {
                stdout: line,
                code: 1,
                stored_hub: None,
            }
        }
    }
}

/// The opening error, once more: it is reported by value.
fn clone_error(e: &KeychainError) -> KeychainError {
    KeychainError::Selection(e.to_string())
}

/// Store the credential. For Docker Hub's key, `Some(changed)`: whether it differs from the
/// one stored before. New Hub credentials make the cached JWT stale (it may belong to another
/// account); unchanged ones keep it, so that re-running `docker login` costs no Hub login.
fn store(kc: &dyn Keychain, creds: &Credentials) -> Result<Option<bool>, Failure> {
    let value = Stored {
        username: creds.username.clone(),
        secret: creds.secret.clone(),
    };
    if !registry::is_hub_alias(&creds.server_url) {
        kc.store(&creds.server_url, &value)?;
        return Ok(None);
    }
    let changed = kc.get(&creds.server_url)?.as_ref() != Some(&value);
    kc.store(&creds.server_url, &value)?;
    if changed {
        kc.erase_internal(HUB_JWT)?;
    }
    Ok(Some(changed))
}

fn get(kc: &dyn Keychain, url: &str) -> Result<String, Failure> {
    match kc.get_first(&registry::lookup_keys(url))? {
        Some((_, found)) => Ok(wire::encode_get(url, &found.username, &found.secret)),
        None => Err(Failure::NotFound),
    }
}

fn erase(kc: &dyn Keychain, url: &str) -> Result<String, Failure> {
    kc.erase(url)?;
    if registry::is_hub_alias(url) {
        kc.erase_internal(HUB_JWT)?;
    }
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keychain::memory::Memory;

    fn run_on(kc: &Memory, action: Action, input: &str) -> Outcome {
        run(action, input.as_bytes(), Ok(kc))
    }

    #[test]
    fn store_get_erase_list_round_trip_on_memory() {
        let kc = Memory::default();
        let out = run_on(
            &kc,
            Action::Store,
            r#"{"ServerURL":"https://r.example","Username":"u","Secret":"s"}"#,
        );
        assert_eq!((out.code, out.stdout.as_str()), (0, ""));
        let out = run_on(&kc, Action::Get, "https://r.example");
        assert_eq!(
            out.stdout,
            "{\"ServerURL\":\"https://r.example\",\"Username\":\"u\",\"Secret\":\"s\"}\n"
        );
        assert_eq!(
            run_on(&kc, Action::List, "unused").stdout,
            "{\"https://r.example\":\"u\"}\n"
        );
        assert_eq!(run_on(&kc, Action::Erase, "https://r.example").code, 0);
        let out = run_on(&kc, Action::Get, "https://r.example");
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (1, "credentials not found in native keychain\n")
        );
    }

    /// The answer is built in one buffer that never grows, and wiped when dropped: no freed
    /// block holds the secret afterwards.
    #[test]
    fn the_get_answer_leaves_no_copy_of_the_secret_in_freed_memory() {
        let watch = crate::wipe_check::Watch::new();
        let kc = Memory::default();
        kc.store("https://r.example", &Stored::new("u", watch.canary()))
            .unwrap();
        let out = run_on(&kc, Action::Get, "https://r.example");
        assert_eq!(out.code, 0);
        assert!(out.stdout.contains(watch.canary()));
        drop(out);
        drop(kc);
        assert_eq!(watch.freed_copies(), 0);
    }

    #[test]
    fn a_hub_alias_is_served_from_the_hub_key() {
        let kc = Memory::default();
        kc.store(registry::HUB_KEY, &Stored::new("alice", "pw"))
            .unwrap();
        let out = run_on(&kc, Action::Get, "docker.io");
        assert_eq!(
            out.stdout,
            "{\"ServerURL\":\"docker.io\",\"Username\":\"alice\",\"Secret\":\"pw\"}\n"
        );
    }

    #[test]
    fn restoring_unchanged_hub_credentials_keeps_the_cached_jwt() {
        use crate::secret::Secret;
        let kc = Memory::default();
        let req = r#"{"ServerURL":"https://index.docker.io/v1/","Username":"u","Secret":"s"}"#;
        let out = run_on(&kc, Action::Store, req);
        assert!(out.stored_hub.as_ref().is_some_and(|(_, changed)| *changed));
        kc.set_internal(HUB_JWT, &Secret::new("jwt".into()))
            .unwrap();
        let out = run_on(&kc, Action::Store, req);
        assert!(
            out.stored_hub
                .as_ref()
                .is_some_and(|(_, changed)| !*changed)
        );
        assert!(kc.get_internal(HUB_JWT).unwrap().is_some());
        let other = r#"{"ServerURL":"https://index.docker.io/v1/","Username":"u","Secret":"t"}"#;
        run_on(&kc, Action::Store, other);
        assert!(kc.get_internal(HUB_JWT).unwrap().is_none());
        let out = run_on(
            &kc,
            Action::Store,
            r#"{"ServerURL":"ghcr.io","Username":"u","Secret":"s"}"#,
        );
        assert!(out.stored_hub.is_none());
    }

    #[test]
    fn bad_input_never_touches_the_keychain_and_gets_the_exact_strings() {
        let kc = Memory::default();
        let out = run_on(&kc, Action::Store, r#"{"Username":"u"}"#);
        assert_eq!(out.stdout, "no credentials server URL\n");
        let out = run_on(&kc, Action::Store, r#"{"ServerURL":"h"}"#);
        assert_eq!(out.stdout, "no credentials username\n");
        let out = run_on(&kc, Action::Get, "  ");
        assert_eq!(out.stdout, "no credentials server URL\n");
        assert_eq!(*kc.calls.borrow(), 0);
    }

    #[test]
    fn a_keychain_that_failed_to_open_is_reported_after_the_input_is_checked() {
        let err = KeychainError::SecretServiceLocked;
        let out = run(Action::Get, b"", Err(&err));
        assert_eq!(out.stdout, "no credentials server URL\n");
        let out = run(Action::Get, b"https://r", Err(&err));
        assert!(
            out.stdout
                .starts_with("docker-credential-hub: the Secret Service keyring is locked"),
            "{}",
            out.stdout
        );
        assert_eq!(out.stdout.lines().count(), 1);
    }

    #[test]
    fn keychain_failures_are_one_prefixed_line() {
        let kc = Memory::default();
        *kc.fail.borrow_mut() = Some(|| KeychainError::SecretServiceLocked);
        for action in [Action::Get, Action::Erase, Action::List] {
            let out = run_on(&kc, action, "https://r");
            assert_eq!(out.code, 1);
            assert!(
                out.stdout.starts_with("docker-credential-hub: "),
                "{}",
                out.stdout
            );
            assert!(!out.stdout.contains(ERR_NOT_FOUND));
        }
    }
}
