//! The macOS login Keychain, through apple-native-keyring-store.
//!
//! One generic password per key (service, account = server URL) holding the payload, plus
//! an index item (server URL → username) that `store` and `erase` keep, so that `list`
//! reads one secret, not one per registry: each read may raise a keychain access prompt.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error};

use super::error::platform_text;
use super::store_crate::{self, bounded};
use super::{Backend, Keychain, KeychainError, Result, Stored, internal_service};
use crate::deadline::Deadline;
use crate::secret::Secret;

const BACKEND: Backend = Backend::MacosKeychain;
const INDEX: &str = "index";

pub struct MacosKeychain {
    store: Arc<CredentialStore>,
    service: String,
    internal: String,
    deadline: Deadline,
}

fn map_error(err: &Error) -> KeychainError {
    let cause = platform_text(err);
    match err {
        Error::NoStorageAccess(_) => KeychainError::NativeLocked {
            backend: BACKEND,
            cause,
        },
        Error::PlatformFailure(e) if needs_unlock(e.as_ref()) => KeychainError::NativeLocked {
            backend: BACKEND,
            cause,
        },
        Error::TooLong(..) | Error::Invalid(..) => KeychainError::NativeRejected {
            backend: BACKEND,
            cause,
        },
        _ => KeychainError::NativeFailed {
            backend: BACKEND,
            cause,
        },
    }
}

/// errSecInteractionNotAllowed (a locked keychain over SSH), errSecAuthFailed and
/// userCanceled: the keychain wants a person to unlock it.
fn needs_unlock(e: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    e.downcast_ref::<security_framework::base::Error>()
        .is_some_and(|e| matches!(e.code(), -25308 | -25293 | -128))
}

fn read(entry: &Entry) -> Result<Option<Secret<Vec<u8>>>> {
    store_crate::read(entry, map_error)
}

fn delete(entry: &Entry) -> Result<bool> {
    store_crate::delete(entry, map_error)
}

fn entry(store: &Arc<CredentialStore>, service: &str, key: &str) -> Result<Entry> {
    Entry::new_in_store(store, service, key).map_err(|e| map_error(&e))
}

fn read_index(store: &Arc<CredentialStore>, internal: &str) -> Result<BTreeMap<String, String>> {
    // A damaged index only costs prompts: `list` reads the items it does not name.
    Ok(read(&entry(store, internal, INDEX)?)?
        .and_then(|b| serde_json::from_slice(b.expose()).ok())
        .unwrap_or_default())
}

fn write_index(
    store: &Arc<CredentialStore>,
    internal: &str,
    index: &BTreeMap<String, String>,
) -> Result<()> {
    let e = entry(store, internal, INDEX)?;
    if index.is_empty() {
        return delete(&e).map(|_| ());
    }
    let json = serde_json::to_vec(index).expect("serialising strings cannot fail");
    e.set_secret(&json).map_err(|e| map_error(&e))
}

impl MacosKeychain {
    pub fn open(service: &str, deadline: &Deadline) -> Result<Self> {
        let store: Arc<CredentialStore> =
            apple_native_keyring_store::keychain::Store::new().map_err(|e| map_error(&e))?;
        Ok(MacosKeychain {
            store,
            service: service.to_string(),
            internal: internal_service(service),
            deadline: deadline.clone(),
        })
    }

    fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Arc<CredentialStore>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        bounded(&self.store, &self.deadline, BACKEND, work)
    }

    /// Serialises index updates of concurrent `store`s and `erase`s.
    fn index_lock(&self) -> Result<crate::lock::FileLock> {
        Ok(crate::lock::FileLock::acquire_named(
            &format!("macos-keychain-{}", self.service),
            self.deadline.remaining(),
        )?)
    }
}

impl Keychain for MacosKeychain {
    fn store(&self, server_url: &str, cred: &Stored) -> Result<()> {
        let _guard = self.index_lock()?;
        let (service, internal) = (self.service.clone(), self.internal.clone());
        let (key, cred) = (server_url.to_string(), cred.clone());
        self.bounded(move |store| {
            entry(store, &service, &key)?
                .set_secret(cred.encode().expose())
                .map_err(|e| map_error(&e))?;
            let mut index = read_index(store, &internal)?;
            if index.get(&key) != Some(&cred.username) {
                index.insert(key, cred.username.clone());
                write_index(store, &internal, &index)?;
            }
            Ok(())
        })
    }

    fn get(&self, server_url: &str) -> Result<Option<Stored>> {
        let (service, key) = (self.service.clone(), server_url.to_string());
        self.bounded(move |store| {
            read(&entry(store, &service, &key)?)?
                .map(|b| Stored::decode(b.expose()))
                .transpose()
        })
    }

    fn erase(&self, server_url: &str) -> Result<bool> {
        let _guard = self.index_lock()?;
        let (service, internal) = (self.service.clone(), self.internal.clone());
        let key = server_url.to_string();
        self.bounded(move |store| {
            let existed = delete(&entry(store, &service, &key)?)?;
            let mut index = read_index(store, &internal)?;
            if index.remove(&key).is_some() {
                write_index(store, &internal, &index)?;
            }
            Ok(existed)
        })
    }

    fn list(&self) -> Result<BTreeMap<String, String>> {
        let (service, internal) = (self.service.clone(), self.internal.clone());
        self.bounded(move |store| {
            let spec = HashMap::from([("service", service.as_str())]);
            // The search reads attributes only: no secret, no prompt.
            let found = Entry::search_in_store(store, &spec).map_err(|e| map_error(&e))?;
            let index = read_index(store, &internal)?;
            let mut out = BTreeMap::new();
            for item in found {
                let Some((svc, url)) = item.get_specifiers() else {
                    continue;
                };
                if svc != service {
                    continue;
                }
                let username = match index.get(&url) {
                    Some(u) => u.clone(),
                    // Stored by a process that died before its index write: read the item.
                    None => match read(&item)? {
                        Some(bytes) => match Stored::decode(bytes.expose()) {
                            Ok(s) => s.username,
                            Err(_) => continue,
                        },
                        None => continue,
                    },
                };
                out.insert(url, username);
            }
            Ok(out)
        })
    }

    fn get_internal(&self, name: &str) -> Result<Option<Secret<String>>> {
        let (service, key) = (self.internal.clone(), name.to_string());
        self.bounded(move |store| {
            read(&entry(store, &service, &key)?)?
                .map(|b| b.into_text().ok_or(KeychainError::CorruptCache))
                .transpose()
        })
    }

    fn set_internal(&self, name: &str, value: &Secret<String>) -> Result<()> {
        let (service, key, value) = (self.internal.clone(), name.to_string(), value.clone());
        self.bounded(move |store| {
            entry(store, &service, &key)?
                .set_secret(value.expose().as_bytes())
                .map_err(|e| map_error(&e))
        })
    }

    fn erase_internal(&self, name: &str) -> Result<bool> {
        let (service, key) = (self.internal.clone(), name.to_string());
        self.bounded(move |store| delete(&entry(store, &service, &key)?))
    }
}
