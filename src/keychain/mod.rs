//! The one small trait between the commands and the keychains (the size of docker's
//! `Helper`: store, get, erase, list), the backends behind it, and backend selection.
//! Nothing here knows the wire protocol, Docker Hub or the commands.

mod error;
#[cfg(any(target_os = "linux", target_os = "macos"))]
mod index;
#[cfg(any(target_os = "linux", target_os = "windows", test))]
mod parts;
mod payload;
pub mod record;
mod select;

#[cfg(test)]
pub mod memory;

#[cfg(target_os = "linux")]
mod keyutils;
#[cfg(target_os = "linux")]
mod pass;
#[cfg(target_os = "linux")]
mod secret_service;

#[cfg(target_os = "windows")]
mod dpapi;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(any(target_os = "windows", test))]
pub mod native_names;
#[cfg(any(target_os = "macos", target_os = "windows"))]
mod store_crate;
#[cfg(target_os = "windows")]
mod wincred;
#[cfg(target_os = "windows")]
mod windows;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[cfg(target_os = "windows")]
pub use dpapi::DpapiError;
pub use error::{KeychainError, Kind};
#[cfg(target_os = "linux")]
pub use keyutils::KeyutilsError;
#[cfg(target_os = "macos")]
pub use macos::MacosError;
#[cfg(any(target_os = "windows", test))]
pub use native_names::WindowsError;
#[cfg(target_os = "linux")]
pub use pass::PassError;
pub use payload::Stored;
#[cfg(target_os = "linux")]
pub use secret_service::SecretServiceError;
pub use select::{
    Backend, NoSecretService, Reason, Requested, Selection, open, open_backend, open_in, requested,
};

pub type Result<T> = std::result::Result<T, KeychainError>;

/// The default keychain service name. `DOCKER_CREDENTIAL_HUB_SERVICE` overrides it, which
/// keeps independent credential sets apart (the test suites use it on the shared kernel
/// keyring).
pub const DEFAULT_SERVICE: &str = crate::NAME;

/// The helper's own entries live under their own service name so that `list`, which docker
/// follows with a `get` per key, never sees them. Backends keep their index there too.
pub fn internal_service(service: &str) -> String {
    format!("{service}{INTERNAL_SUFFIX}")
}

const INTERNAL_SUFFIX: &str = ":internal";

/// `pass` keeps the entries of a service's internal name apart from every other service.
#[cfg(target_os = "linux")]
fn internal_of(service: &str) -> Option<&str> {
    service.strip_suffix(INTERNAL_SUFFIX)
}

/// The password store `pass` uses here (`$PASSWORD_STORE_DIR`, else `~/.password-store`).
pub fn pass_store_dir() -> Option<std::path::PathBuf> {
    #[cfg(target_os = "linux")]
    return pass::store_dir();
    #[cfg(not(target_os = "linux"))]
    None
}

/// Why the password store here is not used although it is initialised (it fails the trust
/// rule: another user's, under `sudo -E`), for `doctor`.
pub fn untrusted_pass_store() -> Option<crate::trust::TrustError> {
    #[cfg(target_os = "linux")]
    if let pass::Found::Untrusted(e) = pass::inspect() {
        return Some(e);
    }
    None
}

pub fn service_name() -> String {
    std::env::var("DOCKER_CREDENTIAL_HUB_SERVICE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SERVICE.to_string())
}

/// What every backend provides. Keys are full server URLs, compared exactly.
pub trait Keychain {
    /// Add or replace the credential for `server_url`.
    fn store(&self, server_url: &str, cred: &Stored) -> Result<()>;
    /// The credential stored under exactly `server_url`, if any.
    fn get(&self, server_url: &str) -> Result<Option<Stored>>;
    /// Remove the credential; `Ok(false)` when there was none.
    fn erase(&self, server_url: &str) -> Result<bool>;
    /// Every stored server URL with its username, exactly as stored.
    fn list(&self) -> Result<BTreeMap<String, String>>;
}

/// A backend, opened once: the credentials docker sees, and the same backend under the
/// internal service name, for the helper's own entries. Both views share the backend's one
/// connection.
pub struct Opened {
    pub creds: Box<dyn Keychain>,
    pub internal: Box<dyn Keychain>,
}

/// The first of `keys` that holds a credential, with that key.
pub fn get_first(kc: &dyn Keychain, keys: &[&str]) -> Result<Option<(String, Stored)>> {
    for key in keys {
        if let Some(found) = kc.get(key)? {
            return Ok(Some((key.to_string(), found)));
        }
    }
    Ok(None)
}

/// Why a write, read back and delete of a test entry failed.
#[derive(Debug)]
pub enum ProbeError {
    Write(KeychainError),
    Read(KeychainError),
    /// It read back something else, or nothing.
    Differs,
    Delete(KeychainError),
}

/// Write a throwaway entry named `name` (in the internal view: `list` never shows it), read
/// it back and delete it; how long that took.
pub fn probe(kc: &dyn Keychain, name: &str) -> std::result::Result<Duration, ProbeError> {
    let value = Stored::new("probe", format!("{name}-{:?}", Instant::now()));
    let start = Instant::now();
    kc.store(name, &value).map_err(ProbeError::Write)?;
    let back = kc.get(name);
    let erased = kc.erase(name);
    let took = start.elapsed();
    match back.map_err(ProbeError::Read)? {
        Some(v) if v == value => {}
        _ => return Err(ProbeError::Differs),
    }
    erased.map_err(ProbeError::Delete)?;
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_leaves_nothing_and_says_which_step_failed() {
        let kc = memory::Memory::default();
        probe(&kc, "probe-1").unwrap();
        assert!(kc.list().unwrap().is_empty());
        *kc.fail.borrow_mut() = Some(|| KeychainError::corrupt(Backend::Pass));
        assert!(matches!(probe(&kc, "probe-2"), Err(ProbeError::Write(_))));
    }
}
