//! Choosing the keychain backend: `DOCKER_CREDENTIAL_HUB_BACKEND=auto|secret-service|keyutils`.

use super::{Keychain, KeychainError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    SecretService,
    Keyutils,
    Native,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::SecretService => "Secret Service",
            Backend::Keyutils => "kernel keyutils",
            #[cfg(target_os = "macos")]
            Backend::Native => "macOS Keychain",
            #[cfg(not(target_os = "macos"))]
            Backend::Native => "Windows Credential Manager",
        }
    }
}

/// Which backend was chosen and why, for `doctor` and for the fallback warning.
#[derive(Debug, Clone)]
pub struct Selection {
    pub backend: Backend,
    pub reason: String,
    /// Set when the chosen store forgets everything at reboot (keyutils).
    pub volatile: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    Auto,
    SecretService,
    Keyutils,
}

pub fn requested() -> Result<Requested> {
    match std::env::var("DOCKER_CREDENTIAL_HUB_BACKEND").as_deref() {
        Err(_) | Ok("") | Ok("auto") => Ok(Requested::Auto),
        Ok("secret-service") | Ok("secretservice") => Ok(Requested::SecretService),
        Ok("keyutils") => Ok(Requested::Keyutils),
        Ok(_) => Err(KeychainError::Failed(
            "DOCKER_CREDENTIAL_HUB_BACKEND must be auto, secret-service or keyutils; unset it to pick automatically".into(),
        )),
    }
}

/// Open the backend the environment asks for.
pub fn open() -> Result<(Box<dyn Keychain>, Selection)> {
    open_with(requested()?)
}

/// Open the requested backend under the configured service name.
pub fn open_with(req: Requested) -> Result<(Box<dyn Keychain>, Selection)> {
    open_in(req, &super::service_name())
}

/// Open the requested backend under an explicit service name (the library API used by
/// in-process tests, which cannot safely change the environment).
#[cfg(target_os = "linux")]
pub fn open_in(req: Requested, service: &str) -> Result<(Box<dyn Keychain>, Selection)> {
    use super::keyutils::Keyutils;
    use super::secret_service::{SecretService, unavailable};

    let keyutils = |reason: String| -> Result<(Box<dyn Keychain>, Selection)> {
        let kc = Keyutils::open(service, crate::settings::timeout())?;
        let sel = Selection {
            backend: Backend::Keyutils,
            reason,
            volatile: true,
        };
        Ok((Box::new(kc), sel))
    };
    let secret_service = |reason: String| -> std::result::Result<
        (Box<dyn Keychain>, Selection),
        keyring_core::Error,
    > {
        let kc = SecretService::connect(service)?;
        let sel = Selection {
            backend: Backend::SecretService,
            reason,
            volatile: false,
        };
        Ok((Box::new(kc), sel))
    };

    match req {
        Requested::Keyutils => keyutils("DOCKER_CREDENTIAL_HUB_BACKEND=keyutils".into()),
        Requested::SecretService => {
            // Name the real cause instead of zbus's "cannot connect to $XDG_RUNTIME_DIR/bus".
            if !session_bus_configured() {
                return Err(unavailable(
                    "no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is unset and there is no $XDG_RUNTIME_DIR/bus",
                ));
            }
            secret_service("DOCKER_CREDENTIAL_HUB_BACKEND=secret-service".into())
                .map_err(|e| super::secret_service::map_connect_error(&e))
        }
        Requested::Auto => {
            if !session_bus_configured() {
                return keyutils(
                    "auto: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset and there is no $XDG_RUNTIME_DIR/bus), so no Secret Service".into(),
                )
                .map_err(|e| with_context(e, "no D-Bus session bus for the Secret Service"));
            }
            match secret_service("auto: a Secret Service answers on the D-Bus session bus".into()) {
                Ok(found) => Ok(found),
                Err(e) => {
                    let text = super::error::platform_text(&e);
                    if no_secret_service(&text) {
                        keyutils(format!(
                            "auto: no Secret Service on the session bus ({text})"
                        ))
                        .map_err(|ke| with_context(ke, &format!("no Secret Service ({text})")))
                    } else {
                        Err(unavailable(&text))
                    }
                }
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn with_context(err: KeychainError, ss: &str) -> KeychainError {
    KeychainError::Unavailable(format!("no keychain is usable: {ss}, and {err}"))
}

/// Whether opening the keychain may talk to a daemon that can hang (the Secret Service, the
/// macOS and Windows keychains). Kernel keyutils answers or fails at once.
pub fn may_block() -> bool {
    #[cfg(target_os = "linux")]
    return match requested() {
        Ok(Requested::Keyutils) => false,
        Ok(Requested::Auto) => session_bus_configured(),
        _ => true,
    };
    #[cfg(not(target_os = "linux"))]
    return true;
}

/// zbus reads DBUS_SESSION_BUS_ADDRESS, and without it `$XDG_RUNTIME_DIR/bus`.
#[cfg(target_os = "linux")]
fn session_bus_configured() -> bool {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty()) {
        return true;
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .is_some_and(|d| std::path::Path::new(&d).join("bus").exists())
}

/// Errors that mean "there is no Secret Service here", as opposed to one that is broken.
#[cfg(target_os = "linux")]
fn no_secret_service(text: &str) -> bool {
    [
        "ServiceUnknown",
        "not provided by any .service files",
        "No such file or directory",
        "Connection refused",
        "os error 2",
        "os error 111",
        "NameHasNoOwner",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

#[cfg(any(target_os = "macos", target_os = "windows"))]
pub fn open_in(req: Requested, service: &str) -> Result<(Box<dyn Keychain>, Selection)> {
    if req != Requested::Auto {
        return Err(KeychainError::Failed(
            "DOCKER_CREDENTIAL_HUB_BACKEND=secret-service and keyutils exist only on Linux; unset it".into(),
        ));
    }
    let kc = super::native::Native::open(service)?;
    let sel = Selection {
        backend: Backend::Native,
        reason: "the operating system's keychain".into(),
        volatile: false,
    };
    Ok((Box::new(kc), sel))
}
