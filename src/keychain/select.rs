//! Choosing the backend: `DOCKER_CREDENTIAL_HUB_BACKEND`, else the backend recorded by the
//! first successful `store` (or by `configure`), else what this machine offers.
//!
//! Once credentials are stored in a backend, a later call must not quietly use another: a
//! stale `DBUS_SESSION_BUS_ADDRESS` after an ssh re-attach would otherwise hide every
//! credential in gnome-keyring (docker pulls anonymously) and send the next `store` to the
//! kernel keyring. So a recorded backend that cannot be reached is an error naming it.

use std::fmt;

use super::{KeychainError, Opened, Result, record};
use crate::deadline::Deadline;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    SecretService,
    Pass,
    Keyutils,
    MacosKeychain,
    WindowsCredentialManager,
    /// Files encrypted with DPAPI: for logon sessions the Credential Manager cannot persist.
    Dpapi,
}

impl Backend {
    pub const ALL: [Backend; 6] = [
        Backend::SecretService,
        Backend::Pass,
        Backend::Keyutils,
        Backend::MacosKeychain,
        Backend::WindowsCredentialManager,
        Backend::Dpapi,
    ];

    /// For people: "Secret Service", "kernel keyutils".
    pub fn name(self) -> &'static str {
        match self {
            Backend::SecretService => "Secret Service",
            Backend::Pass => "pass password store",
            Backend::Keyutils => "kernel keyutils",
            Backend::MacosKeychain => "macOS Keychain",
            Backend::WindowsCredentialManager => "Windows Credential Manager",
            Backend::Dpapi => "DPAPI file store",
        }
    }

    /// For `DOCKER_CREDENTIAL_HUB_BACKEND`, `configure --backend` and the record file.
    pub fn id(self) -> &'static str {
        match self {
            Backend::SecretService => "secret-service",
            Backend::Pass => "pass",
            Backend::Keyutils => "keyutils",
            Backend::MacosKeychain => "macos-keychain",
            Backend::WindowsCredentialManager => "wincred",
            Backend::Dpapi => "dpapi",
        }
    }

    pub fn parse(id: &str) -> Option<Backend> {
        match id {
            "secretservice" => Some(Backend::SecretService),
            "osxkeychain" | "keychain" => Some(Backend::MacosKeychain),
            "windows-credential-manager" => Some(Backend::WindowsCredentialManager),
            _ => Backend::ALL.into_iter().find(|b| b.id() == id),
        }
    }

    /// Whether this platform has the backend at all.
    pub fn exists_here(self) -> bool {
        match self {
            Backend::SecretService | Backend::Pass | Backend::Keyutils => {
                cfg!(target_os = "linux")
            }
            Backend::MacosKeychain => cfg!(target_os = "macos"),
            Backend::WindowsCredentialManager | Backend::Dpapi => cfg!(windows),
        }
    }

    /// The store forgets everything at reboot.
    pub fn volatile(self) -> bool {
        self == Backend::Keyutils
    }

    /// The backends this platform has, comma-separated, for messages.
    pub fn choices() -> String {
        Backend::ALL
            .into_iter()
            .filter(|b| b.exists_here())
            .map(Backend::id)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the environment asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    Auto,
    Explicit(Backend),
}

/// `DOCKER_CREDENTIAL_HUB_BACKEND`.
pub fn requested() -> Result<Requested> {
    match std::env::var("DOCKER_CREDENTIAL_HUB_BACKEND").as_deref() {
        Err(_) | Ok("") | Ok("auto") => Ok(Requested::Auto),
        Ok(id) => match Backend::parse(id) {
            Some(b) if b.exists_here() => Ok(Requested::Explicit(b)),
            _ => Err(KeychainError::selection(format!(
                "DOCKER_CREDENTIAL_HUB_BACKEND must be auto or one of {}; unset it to pick automatically",
                Backend::choices()
            ))),
        },
    }
}

/// Why a Secret Service was not used by `auto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoSecretService {
    /// No session bus is configured at all.
    NoBus,
    /// `DBUS_SESSION_BUS_ADDRESS` names a bus that does not answer.
    BusUnreachable { address: String, cause: String },
    /// The bus answers but nobody serves org.freedesktop.secrets.
    NotOnBus { cause: String },
    /// The session bus is another user's, so nothing was sent to it.
    NotYours { address: String, owner: String },
}

impl fmt::Display for NoSecretService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoSecretService::NoBus => f.write_str(
                "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset and there is no $XDG_RUNTIME_DIR/bus), so no Secret Service",
            ),
            NoSecretService::BusUnreachable { address, cause } => write!(
                f,
                "the D-Bus session bus {address} does not answer ({cause}), so no Secret Service"
            ),
            NoSecretService::NotOnBus { cause } => {
                write!(f, "no Secret Service on the session bus ({cause})")
            }
            NoSecretService::NotYours { address, owner } => write!(
                f,
                "the D-Bus session bus {address} belongs to {owner}, not to you, so its Secret Service is not used"
            ),
        }
    }
}

/// Why the backend in use was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `DOCKER_CREDENTIAL_HUB_BACKEND` names it.
    Explicit,
    /// An earlier `store` or `configure` recorded it.
    Recorded,
    /// `auto`: the first one this machine offers.
    Found,
    /// `auto`: no Secret Service, and this is the next one.
    Fallback(NoSecretService),
}

/// Which backend was chosen and why, for `doctor` and for the reboot warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub backend: Backend,
    pub reason: Reason,
}

impl Selection {
    pub fn volatile(&self) -> bool {
        self.backend.volatile()
    }
}

impl fmt::Display for Selection {
    /// The reason, as `doctor` and the warnings print it in parentheses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Reason::Explicit => write!(f, "DOCKER_CREDENTIAL_HUB_BACKEND={}", self.backend.id()),
            Reason::Recorded => write!(f, "recorded in {} by the first store", record::path_text()),
            Reason::Found => match self.backend {
                Backend::SecretService => {
                    f.write_str("auto: a Secret Service answers on the D-Bus session bus")
                }
                Backend::Pass => f.write_str("auto: an initialised password store exists"),
                _ => f.write_str("the operating system's keychain"),
            },
            Reason::Fallback(why) => write!(f, "auto: {why}"),
        }
    }
}

/// Open the backend that this environment selects, with every call bounded by `deadline`.
pub fn open(deadline: &Deadline) -> Result<(Opened, Selection)> {
    open_in(requested()?, &super::service_name(), deadline)
}

/// Open the requested backend under an explicit service name.
pub fn open_in(req: Requested, service: &str, deadline: &Deadline) -> Result<(Opened, Selection)> {
    let (backend, reason) = match req {
        Requested::Explicit(b) => (b, Reason::Explicit),
        Requested::Auto => {
            match record::read(service).map_err(|e| KeychainError::trust(None, e))? {
                Some(b) if b.exists_here() => (b, Reason::Recorded),
                _ => return auto(service, deadline),
            }
        }
    };
    let opened = open_backend(backend, service, deadline).map_err(|e| match reason {
        Reason::Recorded => e.in_record(backend, record::path_text()),
        _ => e,
    })?;
    Ok((opened, Selection { backend, reason }))
}

/// Open one backend by name, without any fallback.
pub fn open_backend(backend: Backend, service: &str, deadline: &Deadline) -> Result<Opened> {
    #[cfg(target_os = "linux")]
    match backend {
        Backend::SecretService => {
            return super::secret_service::SecretService::connect(service, deadline);
        }
        Backend::Keyutils => return super::keyutils::Keyutils::open(service, deadline),
        Backend::Pass => return super::pass::Pass::open(service, deadline),
        _ => {}
    }
    #[cfg(target_os = "macos")]
    if backend == Backend::MacosKeychain {
        return super::macos::MacosKeychain::open(service, deadline);
    }
    #[cfg(windows)]
    match backend {
        Backend::WindowsCredentialManager => {
            return super::windows::CredentialManager::open(service, deadline);
        }
        Backend::Dpapi => return super::dpapi::Dpapi::open(service, deadline),
        _ => {}
    }
    let _ = (service, deadline);
    Err(KeychainError::selection(format!(
        "the {backend} does not exist on this system; choose one of {}",
        Backend::choices()
    )))
}

/// `auto` with nothing recorded: the Secret Service if one answers, then `pass` if an
/// initialised password store exists, then kernel keyutils.
#[cfg(target_os = "linux")]
fn auto(service: &str, deadline: &Deadline) -> Result<(Opened, Selection)> {
    use super::secret_service::{Probe, SecretService};
    let why = match SecretService::probe(service, deadline) {
        Probe::Answers(opened) => {
            let sel = Selection {
                backend: Backend::SecretService,
                reason: Reason::Found,
            };
            return Ok((opened, sel));
        }
        Probe::Absent(why) => why,
        Probe::Broken(e) => return Err(e),
    };
    // A store that fails the trust rule (another user's, under `sudo -E`) is passed over
    // as if there were none; `doctor` says why.
    match super::pass::inspect() {
        super::pass::Found::Ready(store) => {
            let opened = super::pass::Pass::with_store(store, service, deadline);
            let sel = Selection {
                backend: Backend::Pass,
                reason: Reason::Fallback(why),
            };
            return Ok((opened, sel));
        }
        super::pass::Found::Untrusted(e) => crate::trace!("auto: the pass store is not used: {e}"),
        super::pass::Found::Absent(_) => {}
    }
    match super::keyutils::Keyutils::open(service, deadline) {
        Ok(opened) => Ok((
            opened,
            Selection {
                backend: Backend::Keyutils,
                reason: Reason::Fallback(why),
            },
        )),
        Err(e) => Err(e.after(format!("no keychain is usable: {why}, and "))),
    }
}

#[cfg(any(target_os = "macos", windows))]
fn auto(service: &str, deadline: &Deadline) -> Result<(Opened, Selection)> {
    let backend = if cfg!(target_os = "macos") {
        Backend::MacosKeychain
    } else {
        Backend::WindowsCredentialManager
    };
    let opened = open_backend(backend, service, deadline)?;
    Ok((
        opened,
        Selection {
            backend,
            reason: Reason::Found,
        },
    ))
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn auto(_service: &str, _deadline: &Deadline) -> Result<(Opened, Selection)> {
    Err(KeychainError::selection(
        "this operating system has no keychain docker-credential-hub can use",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_ids_round_trip_and_docker_names_are_accepted() {
        for b in Backend::ALL {
            assert_eq!(Backend::parse(b.id()), Some(b));
        }
        assert_eq!(
            Backend::parse("secretservice"),
            Some(Backend::SecretService)
        );
        assert_eq!(Backend::parse("osxkeychain"), Some(Backend::MacosKeychain));
        assert_eq!(Backend::parse("nope"), None);
    }

    #[test]
    fn reasons_read_as_doctor_prints_them() {
        let sel = Selection {
            backend: Backend::Keyutils,
            reason: Reason::Fallback(NoSecretService::NoBus),
        };
        assert!(sel.to_string().starts_with("auto: no D-Bus session bus"));
        assert!(sel.volatile());
        let sel = Selection {
            backend: Backend::Keyutils,
            reason: Reason::Explicit,
        };
        assert_eq!(sel.to_string(), "DOCKER_CREDENTIAL_HUB_BACKEND=keyutils");
    }
}
