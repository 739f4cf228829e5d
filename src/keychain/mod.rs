//! The one small trait between the protocol and the OS keychains, and backend selection.

mod deadline;
mod entry;
mod error;
#[cfg(target_os = "linux")]
pub mod fast_get;
mod payload;
mod select;

#[cfg(target_os = "linux")]
mod keyutils;
#[cfg(target_os = "linux")]
mod secret_service;

#[cfg(any(target_os = "macos", target_os = "windows"))]
mod native;

use std::collections::BTreeMap;

use crate::secret::Secret;

pub use deadline::Deadline;
pub use error::KeychainError;
pub use payload::Stored;
pub use select::{Backend, Requested, Selection, may_block, open, open_in, open_with, requested};

pub type Result<T> = std::result::Result<T, KeychainError>;

/// The default keychain service name. `DOCKER_CREDENTIAL_HUB_SERVICE` overrides it, which
/// keeps independent credential sets apart (the test suites use it on the shared kernel
/// keyring).
pub const DEFAULT_SERVICE: &str = "docker-credential-hub";

/// Internal entries (the cached Hub JWT) live under their own service name so that
/// `list`, which docker follows with a `get` per key, never sees them.
pub fn internal_service(service: &str) -> String {
    format!("{service}:internal")
}

pub fn service_name() -> String {
    std::env::var("DOCKER_CREDENTIAL_HUB_SERVICE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SERVICE.to_string())
}

/// The cross-process lock that serialises index updates of one backend and service.
pub fn index_lock(name: &str, timeout: std::time::Duration) -> Result<crate::lock::FileLock> {
    let dir = crate::paths::runtime_dir().map_err(|e| {
        KeychainError::Failed(format!(
            "cannot create the runtime directory for the index lock: {e}; set XDG_RUNTIME_DIR or HOME"
        ))
    })?;
    let safe = crate::paths::safe_file_name(name);
    crate::lock::FileLock::acquire(&dir.join(format!("{safe}.lock")), timeout)
        .map_err(|e| KeychainError::Failed(e.to_string()))
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
}
