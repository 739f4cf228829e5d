//! The four protocol actions, as docker-credential-helpers' `HandleCommand` runs them.
//! Everything here returns text for stdout, or the failure, and what it did; the caller
//! prints and exits.

use super::messages::ERR_NOT_FOUND;
use super::wire::{self, Credentials, InputError};
use crate::NAME;
use crate::keychain::{self, Keychain, KeychainError, Stored};
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

    pub fn name(self) -> &'static str {
        match self {
            Action::Store => "store",
            Action::Get => "get",
            Action::Erase => "erase",
            Action::List => "list",
        }
    }
}

/// The answer for stdout, wiped when dropped: a `get` answer holds the secret.
#[derive(Default)]
pub struct Answer(pub String);

impl Drop for Answer {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// What an action changed in the keychain.
#[derive(Debug)]
pub enum Event {
    /// A credential was stored. `changed`, for the keys the caller asked to compare, says
    /// whether it differs from the one stored before.
    Stored {
        creds: Credentials,
        changed: Option<bool>,
    },
    /// The credential of this server URL was erased (or was not there).
    Erased { server_url: String },
}

/// The result of one action, and what it changed.
pub struct Outcome<'k> {
    pub result: Result<Answer, Failure<'k>>,
    pub event: Option<Event>,
}

/// Why an action failed.
#[derive(Debug)]
pub enum Failure<'k> {
    Input(InputError),
    Keychain(KeychainError),
    /// The keychain opened for the action could not be opened.
    Opening(&'k KeychainError),
    NotFound,
}

impl Failure<'_> {
    /// The line for stdout. docker matches three strings exactly: they have no prefix.
    /// `explain` gives a keychain failure in the words of the command that prints it.
    pub fn line(&self, explain: impl Fn(&KeychainError) -> String) -> String {
        match self {
            Failure::NotFound => ERR_NOT_FOUND.to_string(),
            Failure::Input(e) if e.is_docker_string() => e.to_string(),
            Failure::Input(e) => format!("{NAME}: {e}"),
            Failure::Keychain(e) => format!("{NAME}: {}", explain(e)),
            Failure::Opening(e) => format!("{NAME}: {}", explain(e)),
        }
    }
}

impl From<InputError> for Failure<'_> {
    fn from(e: InputError) -> Self {
        Failure::Input(e)
    }
}

impl From<KeychainError> for Failure<'_> {
    fn from(e: KeychainError) -> Self {
        Failure::Keychain(e)
    }
}

/// Run one protocol action on `input` (stdin's bytes) with the keychain that was opened for
/// it. A keychain that failed to open is reported only once the request is known to be
/// valid, so that bad input gets its own answer. For a `store` of a key `compare` picks,
/// the previous value is read first to say whether it changed (a read no other key pays).
pub fn run<'k>(
    action: Action,
    input: &[u8],
    keychain: Result<&dyn Keychain, &'k KeychainError>,
    compare: impl Fn(&str) -> bool,
) -> Outcome<'k> {
    let mut event = None;
    let kc = || keychain.map_err(Failure::Opening);
    let result = match action {
        Action::Store => wire::parse_store(input)
            .map_err(Failure::from)
            .and_then(|creds| {
                let changed = store(kc()?, &creds, &compare)?;
                event = Some(Event::Stored { creds, changed });
                Ok(Answer::default())
            }),
        Action::Get => wire::parse_server_url(input)
            .map_err(Failure::from)
            .and_then(|url| get(kc()?, &url)),
        Action::Erase => wire::parse_server_url(input)
            .map_err(Failure::from)
            .and_then(|url| {
                kc()?.erase(&url)?;
                event = Some(Event::Erased { server_url: url });
                Ok(Answer::default())
            }),
        // `list` ignores stdin: docker writes "unused" there.
        Action::List => kc().and_then(|kc| Ok(Answer(wire::encode_list(&kc.list()?)))),
    };
    Outcome { result, event }
}

/// Store the credential; for a key `compare` picks, whether it differs from the one stored
/// before.
fn store(
    kc: &dyn Keychain,
    creds: &Credentials,
    compare: &impl Fn(&str) -> bool,
) -> Result<Option<bool>, KeychainError> {
    let value = Stored {
        username: creds.username.clone(),
        secret: creds.secret.clone(),
    };
    let changed = match compare(&creds.server_url) {
        true => Some(kc.get(&creds.server_url)?.as_ref() != Some(&value)),
        false => None,
    };
    kc.store(&creds.server_url, &value)?;
    Ok(changed)
}

fn get<'k>(kc: &dyn Keychain, url: &str) -> Result<Answer, Failure<'k>> {
    match keychain::get_first(kc, &registry::lookup_keys(url))? {
        Some((_, found)) => Ok(Answer(wire::encode_get(
            url,
            &found.username,
            &found.secret,
        ))),
        None => Err(Failure::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keychain::memory::Memory;
    use crate::keychain::{Backend, Kind};

    fn run_on<'k>(kc: &Memory, action: Action, input: &str) -> Outcome<'k> {
        run(action, input.as_bytes(), Ok(kc), |_| false)
    }

    /// The line as a command prints it, with the keychain's own words.
    fn text(out: &Outcome) -> String {
        match &out.result {
            Ok(answer) => answer.0.clone(),
            Err(f) => f.line(|e| e.to_string()),
        }
    }

    fn locked() -> KeychainError {
        KeychainError::new(
            Backend::Pass,
            Kind::Locked,
            std::io::Error::other("it is locked"),
        )
    }

    #[test]
    fn store_get_erase_list_round_trip_on_memory() {
        let kc = Memory::default();
        let out = run_on(
            &kc,
            Action::Store,
            r#"{"ServerURL":"https://r.example","Username":"u","Secret":"s"}"#,
        );
        assert_eq!(text(&out), "");
        assert!(matches!(
            out.event,
            Some(Event::Stored { changed: None, .. })
        ));
        let out = run_on(&kc, Action::Get, "https://r.example");
        assert_eq!(
            text(&out),
            "{\"ServerURL\":\"https://r.example\",\"Username\":\"u\",\"Secret\":\"s\"}\n"
        );
        assert_eq!(
            text(&run_on(&kc, Action::List, "unused")),
            "{\"https://r.example\":\"u\"}\n"
        );
        let out = run_on(&kc, Action::Erase, "https://r.example");
        assert!(out.result.is_ok());
        assert!(
            matches!(&out.event, Some(Event::Erased { server_url }) if server_url == "https://r.example")
        );
        let out = run_on(&kc, Action::Get, "https://r.example");
        assert!(out.result.is_err());
        assert_eq!(text(&out), "credentials not found in native keychain");
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
        assert!(
            out.result
                .as_ref()
                .is_ok_and(|a| a.0.contains(watch.canary()))
        );
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
            text(&out),
            "{\"ServerURL\":\"docker.io\",\"Username\":\"alice\",\"Secret\":\"pw\"}\n"
        );
    }

    #[test]
    fn a_store_of_a_compared_key_says_whether_it_changed_and_others_read_nothing() {
        let kc = Memory::default();
        let compare = |key: &str| key == "hub";
        let req = r#"{"ServerURL":"hub","Username":"u","Secret":"s"}"#;
        let changed = |out: Outcome| match out.event {
            Some(Event::Stored { changed, .. }) => changed,
            _ => panic!("no store"),
        };
        let out = run(Action::Store, req.as_bytes(), Ok(&kc), compare);
        assert_eq!(changed(out), Some(true));
        let out = run(Action::Store, req.as_bytes(), Ok(&kc), compare);
        assert_eq!(changed(out), Some(false));
        let other = r#"{"ServerURL":"hub","Username":"u","Secret":"t"}"#;
        let out = run(Action::Store, other.as_bytes(), Ok(&kc), compare);
        assert_eq!(changed(out), Some(true));
        let calls = *kc.calls.borrow();
        let out = run(
            Action::Store,
            br#"{"ServerURL":"ghcr.io","Username":"u","Secret":"s"}"#,
            Ok(&kc),
            compare,
        );
        assert_eq!(changed(out), None);
        assert_eq!(*kc.calls.borrow(), calls + 1, "one store, no read");
    }

    #[test]
    fn bad_input_never_touches_the_keychain_and_gets_the_exact_strings() {
        let kc = Memory::default();
        let out = run_on(&kc, Action::Store, r#"{"Username":"u"}"#);
        assert_eq!(text(&out), "no credentials server URL");
        let out = run_on(&kc, Action::Store, r#"{"ServerURL":"h"}"#);
        assert_eq!(text(&out), "no credentials username");
        let out = run_on(&kc, Action::Get, "  ");
        assert_eq!(text(&out), "no credentials server URL");
        assert_eq!(*kc.calls.borrow(), 0);
    }

    #[test]
    fn a_keychain_that_failed_to_open_is_reported_after_the_input_is_checked() {
        let err = locked();
        let out = run(Action::Get, b"", Err(&err), |_| false);
        assert_eq!(text(&out), "no credentials server URL");
        let out = run(Action::Get, b"https://r", Err(&err), |_| false);
        assert_eq!(text(&out), "docker-credential-hub: it is locked");
    }

    #[test]
    fn keychain_failures_are_one_prefixed_line_in_the_commands_words() {
        let kc = Memory::default();
        *kc.fail.borrow_mut() = Some(locked);
        for action in [Action::Get, Action::Erase, Action::List] {
            let out = run_on(&kc, action, "https://r");
            let line = out.result.err().unwrap().line(|e| format!("{e}; advice"));
            assert_eq!(line, "docker-credential-hub: it is locked; advice");
            assert!(out.event.is_none());
        }
    }
}
