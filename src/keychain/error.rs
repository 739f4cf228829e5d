//! Keychain failures as one-line messages that name the cause and the fix.
//! keyring-core errors can carry raw secret bytes (`BadEncoding`, `BadDataFormat`), so
//! they are never formatted with `Debug` and their payloads are never shown.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeychainError {
    /// The keychain cannot be reached or used at all (no bus, no service, blocked syscalls).
    Unavailable(String),
    /// The keychain is there but locked, or wants a prompt that cannot be shown.
    Locked(String),
    /// The keychain refused this particular value (too long, invalid).
    Rejected(String),
    /// An item holds data we did not write.
    Corrupt(String),
    /// Anything else the platform reported.
    Failed(String),
}

impl fmt::Display for KeychainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = match self {
            KeychainError::Unavailable(m)
            | KeychainError::Locked(m)
            | KeychainError::Rejected(m)
            | KeychainError::Corrupt(m)
            | KeychainError::Failed(m) => m,
        };
        // One line, always: platform texts sometimes span several.
        f.write_str(&one_line(msg))
    }
}

impl std::error::Error for KeychainError {}

pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A platform error's text, without any payload that may hold secret bytes.
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
