//! The freedesktop Secret Service (GNOME Keyring, KWallet, KeePassXC) through
//! zbus-secret-service-keyring-store: pure Rust, secrets DH-encrypted on the bus.
//!
//! Each credential is one item in the default collection with the attributes
//! `service` (ours), `username` (the server URL: the store's name for the entry's user)
//! and `docker_username` (the registry username), so `list` reads attributes only and
//! never decrypts a secret.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error};
use zbus_secret_service_keyring_store::Store;

use super::error::platform_text;
use super::{Keychain, KeychainError, Result, Stored, entry, internal_service};
use crate::secret::Secret;

const USERNAME_ATTR: &str = "docker_username";

pub struct SecretService {
    store: Arc<CredentialStore>,
    service: String,
    internal: String,
}

impl SecretService {
    /// Connect to the session bus and open an encrypted session with the service.
    pub fn connect(service: &str) -> std::result::Result<Self, Error> {
        let store: Arc<CredentialStore> = Store::new()?;
        Ok(SecretService {
            store,
            service: service.to_string(),
            internal: internal_service(service),
        })
    }

    fn entry(&self, service: &str, key: &str, label: &str) -> Result<Entry> {
        let mods = HashMap::from([("label", label)]);
        Entry::new_in_store_with_modifiers(&self.store, service, key, &mods)
            .map_err(|e| map_error(&e))
    }

    fn cred_entry(&self, server_url: &str) -> Result<Entry> {
        self.entry(
            &self.service,
            server_url,
            &format!("Docker credentials for {server_url}"),
        )
    }

    fn internal_entry(&self, name: &str) -> Result<Entry> {
        self.entry(
            &self.internal,
            name,
            &format!("docker-credential-hub {name}"),
        )
    }
}

pub fn map_error(err: &Error) -> KeychainError {
    let text = platform_text(err);
    match err {
        Error::NoStorageAccess(_) => KeychainError::Locked(format!(
            "the Secret Service keyring is locked and no unlock prompt can be shown ({text}); \
             unlock it by logging in to your desktop session, or run \
             `gnome-keyring-daemon --replace --unlock` with the keyring password on stdin, then retry"
        )),
        Error::TooLong(..) | Error::Invalid(..) => {
            KeychainError::Rejected(format!("the Secret Service refused the credential: {text}"))
        }
        _ => unavailable(&text),
    }
}

pub fn unavailable(text: &str) -> KeychainError {
    KeychainError::Unavailable(format!(
        "cannot use the Secret Service ({text}); start gnome-keyring, KWallet or KeePassXC \
         in this session, or set DOCKER_CREDENTIAL_HUB_BACKEND=keyutils; \
         run `docker-credential-hub doctor` for details"
    ))
}

impl Keychain for SecretService {
    fn store(&self, server_url: &str, cred: &Stored) -> Result<()> {
        let e = self.cred_entry(server_url)?;
        entry::write(&e, cred.encode().expose(), map_error)?;
        let attrs = HashMap::from([(USERNAME_ATTR, cred.username.as_str())]);
        e.update_attributes(&attrs).map_err(|e| map_error(&e))
    }

    fn get(&self, server_url: &str) -> Result<Option<Stored>> {
        let e = self.cred_entry(server_url)?;
        entry::decode(entry::read(&e, map_error)?)
    }

    fn erase(&self, server_url: &str) -> Result<bool> {
        entry::delete(&self.cred_entry(server_url)?, map_error)
    }

    fn list(&self) -> Result<BTreeMap<String, String>> {
        let spec = HashMap::from([("service", self.service.as_str())]);
        let found = Entry::search_in_store(&self.store, &spec).map_err(|e| map_error(&e))?;
        let mut out = BTreeMap::new();
        for item in found {
            let attrs = match item.get_attributes() {
                Ok(a) => a,
                // Erased by another process between the search and now.
                Err(Error::NoEntry) => continue,
                Err(e) => return Err(map_error(&e)),
            };
            let Some(url) = attrs.get("username") else {
                continue;
            };
            let username = match attrs.get(USERNAME_ATTR) {
                Some(u) => u.clone(),
                // Written by a store that was interrupted before it set the attribute.
                None => match entry::decode(entry::read(&item, map_error)?)? {
                    Some(s) => s.username,
                    None => continue,
                },
            };
            out.insert(url.clone(), username);
        }
        Ok(out)
    }

    fn get_internal(&self, name: &str) -> Result<Option<Secret<String>>> {
        entry::to_text(entry::read(&self.internal_entry(name)?, map_error)?)
    }

    fn set_internal(&self, name: &str, value: &Secret<String>) -> Result<()> {
        entry::write(
            &self.internal_entry(name)?,
            value.expose().as_bytes(),
            map_error,
        )
    }

    fn erase_internal(&self, name: &str) -> Result<bool> {
        entry::delete(&self.internal_entry(name)?, map_error)
    }
}

/// Connecting failed: say why in terms a user can act on.
pub fn map_connect_error(err: &Error) -> KeychainError {
    unavailable(&platform_text(err))
}
