//! The advice the commands add to a keychain failure where they print it: the backends say
//! what went wrong and what the platform needs, and only this layer names a command (ours,
//! or docker's), chosen by the kind of failure and the backend.

use crate::NAME;
use crate::keychain::{Backend, KeychainError, Kind};

/// A keychain failure as every command prints it: the backend's line, the advice for its
/// kind, and when the recorded backend failed, that nothing else is tried and how to move.
pub fn explain(e: &KeychainError) -> String {
    let mut line = e.problem();
    line.push_str(&advice(e.kind(), e.backend()));
    if let Some((backend, path)) = e.recorded() {
        line.push_str(&format!(
            "; your credentials are in the {backend} (recorded in {path}), so no other keychain is used: fix it, or move them with `{NAME} configure --backend NAME`"
        ));
    }
    line
}

fn advice(kind: Kind, backend: Option<Backend>) -> String {
    match (kind, backend) {
        // The backend could only say that it failed (or that nothing answers): `doctor`
        // checks everything around it.
        (Kind::Failed | Kind::Absent, _) => format!("; run `{NAME} doctor` for details"),
        (Kind::Timeout, _) => format!("; run `{NAME} doctor`"),
        (Kind::Corrupt, _) => "; store the credential again with `docker login`".into(),
        // The Credential Manager in a logon session that has none: the dpapi store works.
        (Kind::Unavailable, Some(Backend::WindowsCredentialManager)) => format!(
            "; run `{NAME} configure --backend {}` to keep them in files encrypted for your Windows account instead",
            Backend::Dpapi.id()
        ),
        // A value the Credential Manager refuses (over its 64 KiB, or invalid): the dpapi
        // store's files take a value of any size.
        (Kind::Rejected, Some(Backend::WindowsCredentialManager)) => format!(
            "; `{NAME} configure --backend {}` keeps credentials in files encrypted for your Windows account instead, which hold a secret of any size",
            Backend::Dpapi.id()
        ),
        // Room comes back when credentials go; the limits themselves are the system's.
        (Kind::Full, Some(Backend::Keyutils)) => "; erase unused credentials with `docker logout`, or raise /proc/sys/kernel/keys/maxkeys and maxbytes".into(),
        (Kind::Full, _) => "; erase unused credentials with `docker logout`".into(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keychain::native_names::WindowsError;
    use std::time::Duration;

    /// Every line reads exactly as it did when the backends wrote the advice themselves.
    #[test]
    fn the_lines_are_those_the_backends_printed_before() {
        let c = || "CAUSE".to_string();
        let recorded = |e: KeychainError, b: Backend| e.in_record_for_test(b, "/r/backend");
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut cases: Vec<(KeychainError, &str)> = vec![
            (
                WindowsError::NoLogonSession { cause: c() }.into(),
                "the Windows Credential Manager cannot keep credentials in this logon session (CAUSE): a network or SSH logon (such as OpenSSH with key authentication) has none; run `docker-credential-hub configure --backend dpapi` to keep them in files encrypted for your Windows account instead",
            ),
            (
                WindowsError::TooLarge {
                    size: 70000,
                    max: 65536,
                }
                .into(),
                "the secret is 70000 bytes but Windows Credential Manager holds at most 65536 bytes per secret; use a shorter token; `docker-credential-hub configure --backend dpapi` keeps credentials in files encrypted for your Windows account instead, which hold a secret of any size",
            ),
            (
                WindowsError::Rejected { cause: c() }.into(),
                "the Windows Credential Manager refused the credential (CAUSE); `docker-credential-hub configure --backend dpapi` keeps credentials in files encrypted for your Windows account instead, which hold a secret of any size",
            ),
            (
                WindowsError::Failed { cause: c() }.into(),
                "the Windows Credential Manager failed (CAUSE); run `docker-credential-hub doctor` for details",
            ),
            (
                KeychainError::timeout(Backend::SecretService, Duration::from_secs(2)),
                "the Secret Service did not answer within 2 s (a hung keychain, or an unlock prompt nobody can answer); run `docker-credential-hub doctor`",
            ),
            (
                KeychainError::timeout(Backend::Pass, Duration::from_secs(2)),
                "the pass password store did not answer within 2 s (a hung keychain, or an unlock prompt nobody can answer); run `docker-credential-hub doctor`",
            ),
            (
                KeychainError::corrupt(Backend::Keyutils),
                "a keychain item of docker-credential-hub does not hold the expected data; store the credential again with `docker login`",
            ),
            (KeychainError::selection("SEL"), "SEL"),
            (
                recorded(
                    WindowsError::NoLogonSession { cause: c() }.into(),
                    Backend::WindowsCredentialManager,
                ),
                "the Windows Credential Manager cannot keep credentials in this logon session (CAUSE): a network or SSH logon (such as OpenSSH with key authentication) has none; run `docker-credential-hub configure --backend dpapi` to keep them in files encrypted for your Windows account instead; your credentials are in the Windows Credential Manager (recorded in /r/backend), so no other keychain is used: fix it, or move them with `docker-credential-hub configure --backend NAME`",
            ),
        ];
        #[cfg(target_os = "linux")]
        {
            use crate::keychain::{KeyutilsError, PassError, SecretServiceError};
            let gone = || SecretServiceError::BusGone {
                address: "unix:path=/x".into(),
                cause: c(),
            };
            cases.extend([
                (
                    SecretServiceError::Absent { cause: c() }.into(),
                    "cannot use the Secret Service (CAUSE); start gnome-keyring, KWallet or KeePassXC in this session, or set DOCKER_CREDENTIAL_HUB_BACKEND=keyutils; run `docker-credential-hub doctor` for details",
                ),
                (
                    gone().into(),
                    "the D-Bus session bus unix:path=/x does not answer (CAUSE): DBUS_SESSION_BUS_ADDRESS is left over from another session (an ssh or tmux re-attach?); point it at this session's bus (for example `export DBUS_SESSION_BUS_ADDRESS=unix:path=$XDG_RUNTIME_DIR/bus`) or start one, then retry",
                ),
                (
                    SecretServiceError::Locked.into(),
                    "the Secret Service keyring is locked and no unlock prompt can be shown; unlock it by logging in to your desktop session, or run `gnome-keyring-daemon --replace --unlock` with the keyring password on stdin, then retry",
                ),
                (
                    SecretServiceError::Failed { cause: c() }.into(),
                    "the Secret Service failed (CAUSE); run `docker-credential-hub doctor` for details",
                ),
                (
                    KeyutilsError::Denied { cause: c() }.into(),
                    "kernel keyutils is not permitted here (CAUSE); containers block it with seccomp: run a Secret Service (gnome-keyring) in this session, or start the container with a seccomp profile that allows keyctl and add_key",
                ),
                (
                    KeyutilsError::Quota { cause: c() }.into(),
                    "the kernel keyutils quota is exhausted (CAUSE); erase unused credentials with `docker logout`, or raise /proc/sys/kernel/keys/maxkeys and maxbytes",
                ),
                (
                    KeyutilsError::Rejected { cause: c() }.into(),
                    "kernel keyutils refused the credential (CAUSE); a keyutils key holds at most 32767 bytes and its name at most 4095",
                ),
                (
                    KeyutilsError::NoAnchor { cause: c() }.into(),
                    "kernel keyutils cannot keep a key after this process exits (no persistent keyring, user keyring: CAUSE); run a Secret Service in this session instead",
                ),
                (
                    KeyutilsError::Failed { cause: c() }.into(),
                    "kernel keyutils failed (CAUSE); run `docker-credential-hub doctor` for details",
                ),
                (
                    PassError::Failed {
                        action: "show",
                        cause: c(),
                    }
                    .into(),
                    "pass show failed (CAUSE); run `docker-credential-hub doctor` for details",
                ),
                (
                    PassError::NotInstalled.into(),
                    "`pass` is not installed; install it (apt-get install pass) or choose another backend with DOCKER_CREDENTIAL_HUB_BACKEND",
                ),
                (
                    recorded(
                        SecretServiceError::Absent { cause: c() }.into(),
                        Backend::SecretService,
                    ),
                    "cannot use the Secret Service (CAUSE); start gnome-keyring, KWallet or KeePassXC in this session, or set DOCKER_CREDENTIAL_HUB_BACKEND=keyutils; run `docker-credential-hub doctor` for details; your credentials are in the Secret Service (recorded in /r/backend), so no other keychain is used: fix it, or move them with `docker-credential-hub configure --backend NAME`",
                ),
                (
                    recorded(gone().into(), Backend::SecretService),
                    "the D-Bus session bus unix:path=/x does not answer (CAUSE): DBUS_SESSION_BUS_ADDRESS is left over from another session (an ssh or tmux re-attach?); point it at this session's bus (for example `export DBUS_SESSION_BUS_ADDRESS=unix:path=$XDG_RUNTIME_DIR/bus`) or start one, then retry; your credentials are in the Secret Service (recorded in /r/backend), so no other keychain is used: fix it, or move them with `docker-credential-hub configure --backend NAME`",
                ),
            ]);
        }
        for (e, line) in &cases {
            assert_eq!(explain(e), *line);
            // The backend's own words name no command of ours.
            assert!(!e.to_string().contains(&format!("`{NAME} ")), "{e}");
        }
    }
}
