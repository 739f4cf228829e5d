//! Windows Credential Manager, through windows-native-keyring-store.
//!
//! One generic credential per key, its target name from [native_names] (exact and
//! case-distinct), the secret alone as its blob (so the 2560-byte limit is the secret's)
//! and the registry username in its UserName field. `list` reads no secret.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error};

use super::error::platform_text;
use super::native_names;
use super::store_crate::{self, bounded};
use super::{Backend, Keychain, KeychainError, Result, Stored, internal_service};
use crate::deadline::Deadline;
use crate::secret::Secret;

const BACKEND: Backend = Backend::WindowsCredentialManager;

pub struct CredentialManager {
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

fn read(entry: &Entry) -> Result<Option<Secret<Vec<u8>>>> {
    store_crate::read(entry, map_error)
}

fn delete(entry: &Entry) -> Result<bool> {
    store_crate::delete(entry, map_error)
}

impl CredentialManager {
    pub fn open(service: &str, deadline: &Deadline) -> Result<Self> {
        let store: Arc<CredentialStore> =
            windows_native_keyring_store::Store::new().map_err(|e| map_error(&e))?;
        Ok(CredentialManager {
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
}

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

fn too_long_key(key: &str) -> KeychainError {
    KeychainError::NativeRejected {
        backend: BACKEND,
        cause: format!(
            "a server URL of {} characters is longer than Credential Manager's target names allow",
            key.chars().count()
        ),
    }
}

fn check_secret(secret: &[u8]) -> Result<()> {
    native_names::check_secret(secret).map_err(|(size, max)| KeychainError::TooLarge {
        backend: BACKEND,
        size,
        max,
    })
}

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

impl Keychain for CredentialManager {
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
