//! macOS Keychain and Windows Credential Manager, through keyring-core and their store crates.
//!
//! Their APIs take no timeout and may wait for a person (a keychain prompt), so each call runs
//! on a worker thread and the caller waits at most until the deadline.
//!
//! - **Windows**: one generic credential per key, its target name from [native_names] (exact
//!   and case-distinct), the secret alone as its blob (so the 2560-byte limit is the secret's)
//!   and the registry username in its UserName field. `list` reads no secret.
//! - **macOS**: one generic password per key (service, account = server URL) holding the
//!   payload, plus an index item (server URL → username) that `store` and `erase` keep, so
//!   that `list` reads one secret, not one per registry: each read may raise a keychain
//!   access prompt.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::mpsc;

use keyring_core::{CredentialStore, Entry, Error};

use super::error::platform_text;
#[cfg(target_os = "windows")]
use super::native_names;
use super::{Backend, Keychain, KeychainError, Result, Stored, internal_service};
use crate::deadline::Deadline;
use crate::secret::Secret;

#[cfg(target_os = "macos")]
const BACKEND: Backend = Backend::MacosKeychain;
#[cfg(target_os = "windows")]
const BACKEND: Backend = Backend::WindowsCredentialManager;

pub struct Native {
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
        #[cfg(target_os = "macos")]
        Error::PlatformFailure(e) if macos_needs_unlock(e.as_ref()) => {
            KeychainError::NativeLocked {
                backend: BACKEND,
                cause,
            }
        }
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
#[cfg(target_os = "macos")]
fn macos_needs_unlock(e: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    e.downcast_ref::<security_framework::base::Error>()
        .is_some_and(|e| matches!(e.code(), -25308 | -25293 | -128))
}

impl Native {
    pub fn open(service: &str, deadline: &Deadline) -> Result<Self> {
        #[cfg(target_os = "macos")]
        let store: Arc<CredentialStore> =
            apple_native_keyring_store::keychain::Store::new().map_err(|e| map_error(&e))?;
        #[cfg(target_os = "windows")]
        let store: Arc<CredentialStore> =
            windows_native_keyring_store::Store::new().map_err(|e| map_error(&e))?;
        Ok(Native {
            store,
            service: service.to_string(),
            internal: internal_service(service),
            deadline: deadline.clone(),
        })
    }

    /// Run `work` on a worker thread; wait for it at most until the deadline.
    fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Arc<CredentialStore>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(work(&store));
        });
        rx.recv_timeout(self.deadline.remaining())
            .unwrap_or(Err(KeychainError::Timeout {
                backend: BACKEND,
                limit: self.deadline.limit(),
            }))
    }
}

fn read(entry: &Entry) -> Result<Option<Secret<Vec<u8>>>> {
    match entry.get_secret() {
        Ok(bytes) => Ok(Some(Secret::new(bytes))),
        Err(Error::NoEntry) => Ok(None),
        Err(e) => Err(map_error(&e)),
    }
}

fn delete(entry: &Entry) -> Result<bool> {
    match entry.delete_credential() {
        Ok(()) => Ok(true),
        Err(Error::NoEntry) => Ok(false),
        Err(e) => Err(map_error(&e)),
    }
}

// ------------------------------------------------------------------------------ Windows

#[cfg(target_os = "windows")]
fn entry(store: &Arc<CredentialStore>, service: &str, key: &str) -> Result<Option<Entry>> {
    let target = native_names::target(service, key);
    if !native_names::target_fits(&target) {
        return Ok(None);
    }
    let mods = HashMap::from([("target", target.as_str())]);
    Entry::new_in_store_with_modifiers(store, service, key, &mods)
        .map(Some)
        .map_err(|e| map_error(&e))
}

#[cfg(target_os = "windows")]
fn too_long_key(key: &str) -> KeychainError {
    KeychainError::NativeRejected {
        backend: BACKEND,
        cause: format!(
            "a server URL of {} characters is longer than Credential Manager's target names allow",
            key.chars().count()
        ),
    }
}

#[cfg(target_os = "windows")]
fn check_secret(secret: &[u8]) -> Result<()> {
    native_names::check_secret(secret).map_err(|(size, max)| KeychainError::TooLarge {
        backend: BACKEND,
        size,
        max,
    })
}

#[cfg(target_os = "windows")]
fn put(
    store: &Arc<CredentialStore>,
    service: &str,
    key: &str,
    secret: &[u8],
    user: &str,
) -> Result<()> {
    let entry = entry(store, service, key)?.ok_or_else(|| too_long_key(key))?;
    if user.encode_utf16().count() > native_names::MAX_USERNAME {
        return Err(KeychainError::NativeRejected {
            backend: BACKEND,
            cause: format!(
                "the username is longer than Credential Manager's {} characters",
                native_names::MAX_USERNAME
            ),
        });
    }
    // "No such entry" while writing: Wine keeps credentials as registry keys, whose names
    // hold at most 255 characters.
    let lost = |e: Error| match e {
        Error::NoEntry => KeychainError::NativeFailed {
            backend: BACKEND,
            cause: format!(
                "it did not keep the credential; its target name has {} characters",
                native_names::target(service, key).chars().count()
            ),
        },
        e => map_error(&e),
    };
    entry.set_secret(secret).map_err(lost)?;
    entry
        .update_attributes(&HashMap::from([("username", user)]))
        .map_err(lost)
}

#[cfg(target_os = "windows")]
impl Keychain for Native {
    fn store(&self, server_url: &str, cred: &Stored) -> Result<()> {
        check_secret(cred.secret.expose().as_bytes())?;
        let (service, key, cred) = (self.service.clone(), server_url.to_string(), cred.clone());
        self.bounded(move |store| {
            put(
                store,
                &service,
                &key,
                cred.secret.expose().as_bytes(),
                &cred.username,
            )
        })
    }

    fn get(&self, server_url: &str) -> Result<Option<Stored>> {
        let (service, key) = (self.service.clone(), server_url.to_string());
        self.bounded(move |store| {
            let Some(entry) = entry(store, &service, &key)? else {
                return Ok(None);
            };
            let Some(secret) = read(&entry)? else {
                return Ok(None);
            };
            let username = entry
                .get_attributes()
                .map_err(|e| map_error(&e))?
                .remove("username")
                .unwrap_or_default();
            let secret = secret.into_text().ok_or(KeychainError::Corrupt)?;
            Ok(Some(Stored { username, secret }))
        })
    }

    fn erase(&self, server_url: &str) -> Result<bool> {
        let (service, key) = (self.service.clone(), server_url.to_string());
        self.bounded(move |store| match entry(store, &service, &key)? {
            Some(entry) => delete(&entry),
            None => Ok(false),
        })
    }

    fn list(&self) -> Result<BTreeMap<String, String>> {
        let service = self.service.clone();
        self.bounded(move |store| {
            let pattern = format!("^{}", regex_escape(&native_names::service_prefix(&service)));
            let spec = HashMap::from([("pattern", pattern.as_str())]);
            let mut out = BTreeMap::new();
            for item in Entry::search_in_store(store, &spec).map_err(|e| map_error(&e))? {
                let mut attrs = match item.get_attributes() {
                    Ok(a) => a,
                    Err(Error::NoEntry) => continue,
                    Err(e) => return Err(map_error(&e)),
                };
                let target = attrs.remove("target_name").unwrap_or_default();
                if let Some((svc, url)) = native_names::parse(&target)
                    && svc == service
                {
                    out.insert(url, attrs.remove("username").unwrap_or_default());
                }
            }
            Ok(out)
        })
    }

    fn get_internal(&self, name: &str) -> Result<Option<Secret<String>>> {
        let (service, key) = (self.internal.clone(), name.to_string());
        self.bounded(move |store| match entry(store, &service, &key)? {
            Some(entry) => read(&entry)?
                .map(|b| b.into_text().ok_or(KeychainError::CorruptCache))
                .transpose(),
            None => Ok(None),
        })
    }

    fn set_internal(&self, name: &str, value: &Secret<String>) -> Result<()> {
        check_secret(value.expose().as_bytes())?;
        let (service, key, value) = (self.internal.clone(), name.to_string(), value.clone());
        self.bounded(move |store| put(store, &service, &key, value.expose().as_bytes(), ""))
    }

    fn erase_internal(&self, name: &str) -> Result<bool> {
        let (service, key) = (self.internal.clone(), name.to_string());
        self.bounded(move |store| match entry(store, &service, &key)? {
            Some(entry) => delete(&entry),
            None => Ok(false),
        })
    }
}

/// A regular expression matching `s` literally (the store's search takes a pattern).
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

// -------------------------------------------------------------------------------- macOS

#[cfg(target_os = "macos")]
const INDEX: &str = "index";

#[cfg(target_os = "macos")]
fn entry(store: &Arc<CredentialStore>, service: &str, key: &str) -> Result<Entry> {
    Entry::new_in_store(store, service, key).map_err(|e| map_error(&e))
}

#[cfg(target_os = "macos")]
fn read_index(store: &Arc<CredentialStore>, internal: &str) -> Result<BTreeMap<String, String>> {
    // A damaged index only costs prompts: `list` reads the items it does not name.
    Ok(read(&entry(store, internal, INDEX)?)?
        .and_then(|b| serde_json::from_slice(b.expose()).ok())
        .unwrap_or_default())
}

#[cfg(target_os = "macos")]
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

#[cfg(target_os = "macos")]
impl Native {
    /// Serialises index updates of concurrent `store`s and `erase`s.
    fn index_lock(&self) -> Result<crate::lock::FileLock> {
        Ok(crate::lock::FileLock::acquire_named(
            &format!("macos-keychain-{}", self.service),
            self.deadline.remaining(),
        )?)
    }
}

#[cfg(target_os = "macos")]
impl Keychain for Native {
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
