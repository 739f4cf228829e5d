//! Keychain failures: which backend failed, what kind of failure it is, and the backend's own
//! error. Each backend has an error type of its own whose text says what went wrong and what
//! the platform needs (unlock it, start a daemon, a smaller value). Causes are classified
//! from the platform's own typed errors (D-Bus error names, errno values, keyring-core
//! variants), never from message text. keyring-core errors can carry raw secret bytes
//! (`BadEncoding`, `BadDataFormat`), so they are never formatted with `Debug` and their
//! payloads are never shown.
//!
//! No backend names a command of this program: the commands branch on the [Kind] (and the
//! backend) and add their own advice where they print the error.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use super::Backend;
use crate::NAME;
use crate::deadline::secs;
use crate::lock::LockError;
#[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
use crate::text::one_line;
use crate::trust::TrustError;

type Source = Box<dyn Error + Send + Sync + 'static>;

/// What kind of failure it is: what the commands branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nothing serves this keychain here (no Secret Service answers on the session bus).
    Absent,
    /// It cannot be used from here: a stale bus address, a seccomp filter, a logon session
    /// without a store, a path that fails the trust rule, nowhere to keep lock files.
    Unavailable,
    /// It is there, but locked, or wants a prompt that cannot be shown.
    Locked,
    /// It refused this particular value (too long, invalid).
    Rejected,
    /// It has no room left: a quota is used up.
    Full,
    /// An item holds data we did not write.
    Corrupt,
    /// It did not answer before the deadline.
    Timeout,
    /// Another process of this helper held the keychain's lock past the deadline.
    Busy,
    /// Anything else it reported.
    Failed,
}

/// A keychain failure. Its text is the backend's one line; the commands print it with their
/// advice added.
#[derive(Debug)]
pub struct KeychainError {
    backend: Option<Backend>,
    kind: Kind,
    source: Source,
    /// The record that named this backend, when it was the recorded backend that failed:
    /// then nothing else is tried.
    recorded: Option<String>,
}

impl KeychainError {
    pub fn new(backend: Backend, kind: Kind, source: impl Into<Source>) -> KeychainError {
        KeychainError {
            backend: Some(backend),
            kind,
            source: source.into(),
            recorded: None,
        }
    }

    /// No backend could be chosen or opened (a bad `DOCKER_CREDENTIAL_HUB_BACKEND`, a
    /// backend this system does not have).
    pub fn selection(text: impl Into<String>) -> KeychainError {
        KeychainError {
            backend: None,
            kind: Kind::Unavailable,
            source: Box::new(Text(text.into())),
            recorded: None,
        }
    }

    /// The backend did not answer within the deadline.
    pub fn timeout(backend: Backend, limit: Duration) -> KeychainError {
        KeychainError::new(backend, Kind::Timeout, Timeout { backend, limit })
    }

    /// An item of the backend holds data this helper did not write.
    pub fn corrupt(backend: Backend) -> KeychainError {
        KeychainError::new(backend, Kind::Corrupt, Corrupt)
    }

    /// The backend's cross-process lock could not be taken.
    pub fn lock(backend: Backend, e: LockError) -> KeychainError {
        let kind = match e {
            LockError::Timeout { .. } => Kind::Busy,
            LockError::Dir(_) | LockError::Open { .. } => Kind::Unavailable,
        };
        KeychainError::new(backend, kind, e)
    }

    /// A path the backend (or the choice of one) would use fails the trust rule.
    pub fn trust(backend: Option<Backend>, e: TrustError) -> KeychainError {
        KeychainError {
            backend,
            kind: Kind::Unavailable,
            source: Box::new(e),
            recorded: None,
        }
    }

    /// The backend whose failure this is; `None` when none was chosen yet.
    pub fn backend(&self) -> Option<Backend> {
        self.backend
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The backend's own words: what went wrong and what the platform needs.
    pub fn problem(&self) -> String {
        self.source.to_string()
    }

    /// When the backend that failed is the recorded one: it, and the record's path.
    pub fn recorded(&self) -> Option<(Backend, &str)> {
        Some((self.backend?, self.recorded.as_deref()?))
    }

    /// The recorded backend failed: nothing else is tried.
    pub(super) fn in_record(mut self, backend: Backend, path: String) -> KeychainError {
        self.backend = Some(backend);
        self.recorded = Some(path);
        self
    }

    #[cfg(test)]
    pub fn in_record_for_test(self, backend: Backend, path: &str) -> KeychainError {
        self.in_record(backend, path.to_string())
    }

    /// The same failure, its text preceded by `prefix`.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(super) fn after(self, prefix: String) -> KeychainError {
        KeychainError {
            source: Box::new(Text(format!("{prefix}{}", self.source))),
            ..self
        }
    }
}

impl fmt::Display for KeychainError {
    /// The backend's line (and the record that named it), without the commands' advice.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some((backend, path)) = self.recorded() {
            write!(
                f,
                "; your credentials are in the {backend} (recorded in {path}), so no other keychain is used"
            )?;
        }
        Ok(())
    }
}

/// The text is the whole error: its source is not repeated in a chain of causes.
impl Error for KeychainError {}

/// A failure told in words.
#[derive(Debug)]
struct Text(String);

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Text {}

/// A backend that did not answer before the deadline.
#[derive(Debug, thiserror::Error)]
#[error(
    "the {backend} did not answer within {} s (a hung keychain, or an unlock prompt nobody can answer)",
    secs(*limit)
)]
struct Timeout {
    backend: Backend,
    limit: Duration,
}

/// An item that does not hold what this helper writes.
#[derive(Debug, thiserror::Error)]
#[error("a keychain item of {NAME} does not hold the expected data")]
pub struct Corrupt;

/// A keyring-core error's text, without any payload that may hold secret bytes.
#[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
pub fn platform_text(err: &keyring_core::Error) -> String {
    use keyring_core::Error as E;
    match err {
        E::PlatformFailure(e) | E::NoStorageAccess(e) => one_line(&e.to_string()),
        E::NoEntry => "no such entry".into(),
        E::BadEncoding(_) => "the stored data is not UTF-8".into(),
        E::BadDataFormat(_, _) => "the stored data is malformed".into(),
        E::BadStoreFormat(r) => one_line(r),
        E::TooLong(name, len) => format!("{name} is longer than the platform limit of {len}"),
        E::Invalid(name, why) => format!("{name} is invalid: {why}"),
        E::Ambiguous(items) => format!("{} items match", items.len()),
        E::NoDefaultStore => "no credential store".into(),
        E::NotSupportedByStore(what) => one_line(what),
        _ => "unknown keychain error".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_the_backends_and_a_record_adds_where_it_is() {
        let e = KeychainError::timeout(Backend::SecretService, Duration::from_secs(2));
        assert_eq!(e.kind(), Kind::Timeout);
        assert_eq!(
            e.to_string(),
            "the Secret Service did not answer within 2 s (a hung keychain, or an unlock prompt nobody can answer)"
        );
        let e = e.in_record(Backend::SecretService, "/r".into());
        assert_eq!(e.recorded(), Some((Backend::SecretService, "/r")));
        assert!(e.to_string().ends_with(
            "; your credentials are in the Secret Service (recorded in /r), so no other keychain is used"
        ));
        let e = KeychainError::corrupt(Backend::Pass).after("no keychain is usable: ".into());
        assert_eq!(e.kind(), Kind::Corrupt);
        assert_eq!(e.backend(), Some(Backend::Pass));
        assert!(
            e.problem()
                .starts_with("no keychain is usable: a keychain item")
        );
        assert!(!e.to_string().contains(&format!("`{NAME} ")), "{e}");
    }
}
