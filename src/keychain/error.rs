//! Keychain failures. Each variant says what failed; its text is one line that names the
//! cause and the fix. Causes are classified from the platform's own typed errors (D-Bus
//! error names, errno values, keyring-core variants), never from message text.
//! keyring-core errors can carry raw secret bytes (`BadEncoding`, `BadDataFormat`), so they
//! are never formatted with `Debug` and their payloads are never shown.

use std::time::Duration;

use super::Backend;
use crate::NAME;
use crate::deadline::secs;

/// How a failure affects the caller: `doctor`, backend selection and `configure` branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The keychain cannot be reached or used at all.
    Unavailable,
    /// It is there, but locked, or wants a prompt that cannot be shown.
    Locked,
    /// It refused this particular value (too long, invalid, over quota).
    Rejected,
    /// An item holds data we did not write.
    Corrupt,
    /// It did not answer before the deadline.
    Timeout,
    /// Anything else it reported.
    Failed,
}

#[derive(Debug, thiserror::Error)]
pub enum KeychainError {
    #[error(
        "cannot use the Secret Service ({cause}); start gnome-keyring, KWallet or KeePassXC in this session, or set DOCKER_CREDENTIAL_HUB_BACKEND=keyutils; run `{NAME} doctor` for details"
    )]
    SecretServiceUnavailable { cause: String },
    #[error(
        "the D-Bus session bus {address} does not answer ({cause}): DBUS_SESSION_BUS_ADDRESS is left over from another session (an ssh or tmux re-attach?); point it at this session's bus (for example `export DBUS_SESSION_BUS_ADDRESS=unix:path=$XDG_RUNTIME_DIR/bus`) or start one, then retry"
    )]
    SecretServiceBusGone { address: String, cause: String },
    #[error(
        "the Secret Service keyring is locked and no unlock prompt can be shown; unlock it by logging in to your desktop session, or run `gnome-keyring-daemon --replace --unlock` with the keyring password on stdin, then retry"
    )]
    SecretServiceLocked,
    #[error("the Secret Service failed ({cause}); run `{NAME} doctor` for details")]
    SecretServiceFailed { cause: String },

    #[error(
        "kernel keyutils is not permitted here ({cause}); containers block it with seccomp: run a Secret Service (gnome-keyring) in this session, or start the container with a seccomp profile that allows keyctl and add_key"
    )]
    KeyutilsDenied { cause: String },
    #[error(
        "the kernel keyutils quota is exhausted ({cause}); erase unused credentials with `docker logout`, or raise /proc/sys/kernel/keys/maxkeys and maxbytes"
    )]
    KeyutilsQuota { cause: String },
    #[error(
        "kernel keyutils refused the credential ({cause}); a keyutils key holds at most 32767 bytes and its name at most 4095"
    )]
    KeyutilsRejected { cause: String },
    #[error(
        "kernel keyutils cannot keep a key after this process exits (no persistent keyring, user keyring: {cause}); run a Secret Service in this session instead"
    )]
    KeyutilsNoAnchor { cause: String },
    #[error("kernel keyutils failed ({cause}); run `{NAME} doctor` for details")]
    KeyutilsFailed { cause: String },

    #[cfg(target_os = "linux")]
    #[error(transparent)]
    Pass(#[from] super::pass::PassError),

    #[error(
        "the {backend} is locked or not accessible from this session ({cause}); {}",
        unlock_hint(*backend)
    )]
    NativeLocked { backend: Backend, cause: String },
    /// `ERROR_NO_SUCH_LOGON_SESSION`: the logon session has no credential store to write
    /// to. Nothing else is tried: credentials must not end up in another store unasked.
    #[error(
        "the {backend} cannot keep credentials in this logon session ({cause}): a network or SSH logon (such as OpenSSH with key authentication) has none; run `{NAME} configure --backend dpapi` to keep them in files encrypted for your Windows account instead"
    )]
    NoLogonSession { backend: Backend, cause: String },
    #[error(
        "the secret is {size} bytes but {backend} holds at most {max} bytes per secret; use a shorter token"
    )]
    TooLarge {
        backend: Backend,
        size: usize,
        max: usize,
    },
    #[error("the {backend} refused the credential ({cause})")]
    NativeRejected { backend: Backend, cause: String },
    #[error("the {backend} failed ({cause}); run `{NAME} doctor` for details")]
    NativeFailed { backend: Backend, cause: String },

    #[error(
        "the {backend} did not answer within {} s (a hung keychain, or an unlock prompt nobody can answer); run `{NAME} doctor`",
        secs(*limit)
    )]
    Timeout { backend: Backend, limit: Duration },
    #[error(
        "a keychain item of {NAME} does not hold the expected data; store the credential again with `docker login`"
    )]
    Corrupt,
    #[error("a cached value in the keychain is not UTF-8; run `{NAME} logout` and log in again")]
    CorruptCache,
    #[error("{0}")]
    Lock(#[from] crate::lock::LockError),
    /// A path the backend would use fails the trust rule (another user's, a planted link).
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    #[error("{0}")]
    Selection(String),
    /// The recorded backend cannot be used: nothing else is tried.
    #[error(
        "{source}; your credentials are in the {backend} (recorded in {path}), so no other keychain is used: fix it, or move them with `{NAME} configure --backend NAME`"
    )]
    Recorded {
        backend: Backend,
        path: String,
        source: Box<KeychainError>,
    },
}

fn unlock_hint(backend: Backend) -> &'static str {
    match backend {
        Backend::MacosKeychain => {
            "unlock it with `security unlock-keychain ~/Library/Keychains/login.keychain-db` (over SSH the login keychain stays locked until you do), then retry"
        }
        _ => "unlock it and retry",
    }
}

impl KeychainError {
    /// The Credential Manager in a logon session that has none (`ERROR_NO_SUCH_LOGON_SESSION`).
    pub fn no_logon_session(&self) -> bool {
        match self {
            KeychainError::NoLogonSession { .. } => true,
            KeychainError::Recorded { source, .. } => source.no_logon_session(),
            _ => false,
        }
    }

    pub fn kind(&self) -> Kind {
        use KeychainError as E;
        match self {
            E::Recorded { source, .. } => source.kind(),
            E::SecretServiceUnavailable { .. }
            | E::SecretServiceBusGone { .. }
            | E::KeyutilsDenied { .. }
            | E::KeyutilsNoAnchor { .. }
            | E::Trust(_)
            | E::NoLogonSession { .. }
            | E::Selection(_) => Kind::Unavailable,
            E::SecretServiceLocked | E::NativeLocked { .. } => Kind::Locked,
            E::KeyutilsQuota { .. }
            | E::KeyutilsRejected { .. }
            | E::TooLarge { .. }
            | E::NativeRejected { .. } => Kind::Rejected,
            E::Corrupt | E::CorruptCache => Kind::Corrupt,
            E::Timeout { .. } => Kind::Timeout,
            #[cfg(target_os = "linux")]
            E::Pass(e) => e.kind(),
            E::SecretServiceFailed { .. }
            | E::KeyutilsFailed { .. }
            | E::NativeFailed { .. }
            | E::Lock(_) => Kind::Failed,
        }
    }
}

/// One line, always: platform texts sometimes span several.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

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
    fn every_message_is_one_line_with_a_fix() {
        let cases = [
            KeychainError::SecretServiceLocked,
            KeychainError::Timeout {
                backend: Backend::SecretService,
                limit: Duration::from_secs(2),
            },
            KeychainError::TooLarge {
                backend: Backend::WindowsCredentialManager,
                size: 3000,
                max: 2560,
            },
            KeychainError::NativeLocked {
                backend: Backend::MacosKeychain,
                cause: "User interaction is not allowed.".into(),
            },
        ];
        for e in &cases {
            let text = e.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(text.contains("; "), "no fix in: {text}");
        }
        assert!(cases[1].to_string().contains("did not answer within 2 s"));
        assert!(
            cases[3]
                .to_string()
                .contains("security unlock-keychain ~/Library/Keychains/login.keychain-db")
        );
        assert_eq!(cases[2].kind(), Kind::Rejected);
    }
}
