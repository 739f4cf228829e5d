//! The one small trait between the commands and the keychains, the backends behind it, and
//! backend selection. Nothing here knows the wire protocol or Docker Hub.

mod error;
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
mod windows;

use std::collections::BTreeMap;

use crate::secret::Secret;

pub use error::{KeychainError, Kind};
pub use payload::Stored;
pub use select::{
    Backend, NoSecretService, Reason, Requested, Selection, open, open_backend, open_in, requested,
};

pub type Result<T> = std::result::Result<T, KeychainError>;

/// The default keychain service name. `DOCKER_CREDENTIAL_HUB_SERVICE` overrides it, which
/// keeps independent credential sets apart (the test suites use it on the shared kernel
/// keyring).
pub const DEFAULT_SERVICE: &str = crate::NAME;

/// Internal entries (the cached Hub JWT) live under their own service name so that
/// `list`, which docker follows with a `get` per key, never sees them.
pub fn internal_service(service: &str) -> String {
    format!("{service}:internal")
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

    /// Helper-private values (the Hub JWT cache), invisible to `list`.
    fn get_internal(&self, name: &str) -> Result<Option<Secret<String>>>;
    fn set_internal(&self, name: &str, value: &Secret<String>) -> Result<()>;
    fn erase_internal(&self, name: &str) -> Result<bool>;

    /// The first of `keys` that holds a credential, with that key. The default asks each in
    /// turn; a backend may do better.
    fn get_first(&self, keys: &[&str]) -> Result<Option<(String, Stored)>> {
        for key in keys {
            if let Some(found) = self.get(key)? {
                return Ok(Some((key.to_string(), found)));
            }
        }
        Ok(None)
    }
}
