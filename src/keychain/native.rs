//! macOS Keychain and Windows Credential Manager. These cannot be built or run on the
//! project's Linux CI, so this file is deliberately thin: everything it does goes through
//! the same keyring-core `Entry` calls the Linux backends use.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error};

use super::error::platform_text;
use super::{Keychain, KeychainError, Result, Stored, entry, internal_service};
use crate::secret::Secret;

/// Windows Credential Manager stores at most this many bytes of secret (CRED_MAX_CREDENTIAL_BLOB_SIZE).
#[cfg(target_os = "windows")]
const MAX_SECRET: Option<usize> = Some(2560);
#[cfg(not(target_os = "windows"))]
const MAX_SECRET: Option<usize> = None;

pub struct Native {
    store: Arc<CredentialStore>,
    service: String,
    internal: String,
}

impl Native {
    pub fn open(service: &str) -> Result<Self> {
        #[cfg(target_os = "macos")]
        let store: Arc<CredentialStore> =
            apple_native_keyring_store::keychain::Store::new().map_err(|e| map_error(&e))?;
        #[cfg(target_os = "windows")]
        let store: Arc<CredentialStore> =
            windows_native_keyring_store::store::Store::new().map_err(|e| map_error(&e))?;
        Ok(Native {
            store,
            service: service.to_string(),
            internal: internal_service(service),
        })
    }

    fn entry(&self, service: &str, key: &str) -> Result<Entry> {
        Entry::new_in_store(&self.store, service, key).map_err(|e| map_error(&e))
    }

    fn search_spec(&self) -> HashMap<&str, String> {
        #[cfg(target_os = "windows")]
        return HashMap::from([("pattern", format!(r"^.*\.{}$", regex_escape(&self.service)))]);
        #[cfg(not(target_os = "windows"))]
        return HashMap::from([("service", self.service.clone())]);
    }
}

#[cfg(target_os = "windows")]
fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn map_error(err: &Error) -> KeychainError {
    let text = platform_text(err);
    match err {
        Error::NoStorageAccess(_) => KeychainError::Locked(format!(
            "the keychain is locked or not accessible from this session ({text}); unlock it and retry"
        )),
        Error::TooLong(..) | Error::Invalid(..) => {
            KeychainError::Rejected(format!("the keychain refused the credential: {text}"))
        }
        _ => KeychainError::Failed(format!("the keychain failed ({text})")),
    }
}

fn check_size(bytes: &[u8]) -> Result<()> {
    match MAX_SECRET {
        Some(max) if bytes.len() > max => Err(KeychainError::Rejected(format!(
            "the credential is {} bytes but Windows Credential Manager holds at most {max}; use a shorter token",
            bytes.len()
        ))),
        _ => Ok(()),
    }
}

impl Keychain for Native {
    fn store(&self, server_url: &str, cred: &Stored) -> Result<()> {
        let payload = cred.encode();
        check_size(payload.expose())?;
        entry::write(
            &self.entry(&self.service, server_url)?,
            payload.expose(),
            map_error,
        )
    }

    fn get(&self, server_url: &str) -> Result<Option<Stored>> {
        entry::decode(entry::read(
            &self.entry(&self.service, server_url)?,
            map_error,
        )?)
    }

    fn erase(&self, server_url: &str) -> Result<bool> {
        entry::delete(&self.entry(&self.service, server_url)?, map_error)
    }

    fn list(&self) -> Result<BTreeMap<String, String>> {
        let spec = self.search_spec();
        let spec: HashMap<&str, &str> = spec.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut out = BTreeMap::new();
        for item in Entry::search_in_store(&self.store, &spec).map_err(|e| map_error(&e))? {
            let Some((service, url)) = item.get_specifiers() else {
                continue;
            };
            if service != self.service {
                continue;
            }
            if let Some(stored) = entry::decode(entry::read(&item, map_error)?)? {
                out.insert(url, stored.username);
            }
        }
        Ok(out)
    }

    fn get_internal(&self, name: &str) -> Result<Option<Secret<String>>> {
        entry::to_text(entry::read(&self.entry(&self.internal, name)?, map_error)?)
    }

    fn set_internal(&self, name: &str, value: &Secret<String>) -> Result<()> {
        check_size(value.expose().as_bytes())?;
        entry::write(
            &self.entry(&self.internal, name)?,
            value.expose().as_bytes(),
            map_error,
        )
    }

    fn erase_internal(&self, name: &str) -> Result<bool> {
        entry::delete(&self.entry(&self.internal, name)?, map_error)
    }
}
