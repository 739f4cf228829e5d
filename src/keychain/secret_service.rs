//! The freedesktop Secret Service (GNOME Keyring, KWallet, KeePassXC) through
//! zbus-secret-service-keyring-store: pure Rust, secrets DH-encrypted on the bus.
//!
//! Each credential is one item in the default collection with the attributes
//! `service` (ours), `username` (the server URL: the store's name for the entry's user)
//! and `docker_username` (the registry username).
//!
//! `list` must not cost a D-Bus round trip per item (200 registries took 350 ms that way),
//! so `store` and `erase` also maintain an index item (server URL → username and item path)
//! under a cross-process file lock. `list` is then one search plus one read: it trusts an
//! index entry only while its item path is among the search results, and reads any item
//! the index does not know (a store interrupted between its writes).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use keyring_core::{CredentialStore, Entry, Error};
use serde::{Deserialize, Serialize};
use zbus_secret_service_keyring_store::Store;
use zbus_secret_service_keyring_store::cred::Wrapper;

use super::error::platform_text;
use super::{Keychain, KeychainError, Result, Stored, entry, internal_service};
use crate::lock::FileLock;
use crate::secret::Secret;

const USERNAME_ATTR: &str = "docker_username";
const INDEX_NAME: &str = "index";

pub struct SecretService {
    store: Arc<CredentialStore>,
    service: String,
    internal: String,
    lock_timeout: Duration,
}

/// One index entry: the registry username and the object path of the item.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
struct Indexed {
    #[serde(rename = "u")]
    username: String,
    #[serde(rename = "p")]
    path: String,
}

type Index = BTreeMap<String, Indexed>;

impl SecretService {
    /// Connect to the session bus and open an encrypted session with the service.
    pub fn connect(service: &str) -> std::result::Result<Self, Error> {
        let store: Arc<CredentialStore> = Store::new()?;
        Ok(SecretService {
            store,
            service: service.to_string(),
            internal: internal_service(service),
            lock_timeout: crate::settings::timeout(),
        })
    }

    fn lock(&self) -> Result<FileLock> {
        crate::keychain::index_lock(
            &format!("secret-service-{}", self.service),
            self.lock_timeout,
        )
    }

    fn read_index(&self) -> Result<Index> {
        let bytes = entry::read(&self.internal_entry(INDEX_NAME)?, map_error)?;
        // A damaged index only costs speed: `list` falls back to reading attributes.
        Ok(bytes
            .and_then(|b| serde_json::from_slice(b.expose()).ok())
            .unwrap_or_default())
    }

    fn write_index(&self, index: &Index) -> Result<()> {
        let e = self.internal_entry(INDEX_NAME)?;
        if index.is_empty() {
            entry::delete(&e, map_error).map(|_| ())
        } else {
            let json = serde_json::to_vec(index).expect("serialising strings cannot fail");
            entry::write(&e, &json, map_error)
        }
    }

    /// URL and username of an item the index does not know, from the item itself.
    fn unindexed(&self, item: &Entry) -> Result<Option<(String, String)>> {
        let attrs = match item.get_attributes() {
            Ok(a) => a,
            // Erased by another process between the search and now.
            Err(e) if vanished(&e) => return Ok(None),
            Err(e) => return Err(map_error(&e)),
        };
        let Some(url) = attrs.get("username") else {
            return Ok(None);
        };
        // The payload, not the `docker_username` attribute: a store interrupted between
        // writing the secret and the attribute leaves the attribute stale, and `list` must
        // name the username `get` returns. Unindexed items are rare, so the read is cheap.
        let username = match item.get_secret() {
            Ok(bytes) => match Stored::decode(&bytes) {
                Ok(s) => s.username,
                // Not written by us (or damaged): `get` could not serve it, so docker must
                // not be told about it.
                Err(_) => return Ok(None),
            },
            Err(e) if vanished(&e) => return Ok(None),
            Err(e) => return Err(map_error(&e)),
        };
        Ok(Some((url.clone(), username)))
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

/// An item that a concurrent `erase` deleted after our search found it: gnome-keyring
/// answers calls on its old object path with "Object does not exist".
fn vanished(err: &Error) -> bool {
    match err {
        Error::NoEntry => true,
        Error::PlatformFailure(e) | Error::NoStorageAccess(e) => {
            let text = e.to_string();
            text.contains("Object does not exist") || text.contains("UnknownObject")
        }
        _ => false,
    }
}

/// The D-Bus object path of the item behind an entry, when it is a found item.
fn item_path(e: &Entry) -> Option<String> {
    e.as_any().downcast_ref::<Wrapper>().map(|w| w.get_path())
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
        let _guard = self.lock()?;
        let mut index = self.read_index()?;
        // Replacing an item keeps its path, so an index entry naming the old username would
        // still be trusted if we died (or the daemon did) before the index write below;
        // drop it first: until the new entry is in, `list` reads the item itself.
        if index
            .get(server_url)
            .is_some_and(|i| i.username != cred.username)
        {
            index.remove(server_url);
            self.write_index(&index)?;
        }
        entry::write(&e, cred.encode().expose(), map_error)?;
        let attrs = HashMap::from([(USERNAME_ATTR, cred.username.as_str())]);
        e.update_attributes(&attrs).map_err(|e| map_error(&e))?;
        let path = item_path(&e.get_credential().map_err(|e| map_error(&e))?);
        let new = path.map(|path| Indexed {
            username: cred.username.clone(),
            path,
        });
        if index.get(server_url) != new.as_ref() {
            match new {
                Some(n) => index.insert(server_url.to_string(), n),
                None => index.remove(server_url),
            };
            self.write_index(&index)?;
        }
        Ok(())
    }

    fn get(&self, server_url: &str) -> Result<Option<Stored>> {
        let e = self.cred_entry(server_url)?;
        match entry::read(&e, map_error)? {
            // gnome-keyring saves a new item before its secret: a daemon killed in between
            // leaves it empty. Its store failed, and `list` skips it, so it is not there.
            Some(bytes) if bytes.expose().is_empty() => Ok(None),
            bytes => entry::decode(bytes),
        }
    }

    fn erase(&self, server_url: &str) -> Result<bool> {
        let e = self.cred_entry(server_url)?;
        let _guard = self.lock()?;
        let existed = entry::delete(&e, map_error)?;
        let mut index = self.read_index()?;
        if index.remove(server_url).is_some() {
            self.write_index(&index)?;
        }
        Ok(existed)
    }

    fn list(&self) -> Result<BTreeMap<String, String>> {
        let spec = HashMap::from([("service", self.service.as_str())]);
        let found = Entry::search_in_store(&self.store, &spec).map_err(|e| map_error(&e))?;
        let index = self.read_index()?;
        let by_path: HashMap<&str, (&String, &Indexed)> = index
            .iter()
            .map(|(url, i)| (i.path.as_str(), (url, i)))
            .collect();
        let mut out = BTreeMap::new();
        for item in &found {
            match item_path(item).as_deref().and_then(|p| by_path.get(p)) {
                Some((url, indexed)) => {
                    out.insert((*url).clone(), indexed.username.clone());
                }
                None => {
                    if let Some((url, username)) = self.unindexed(item)? {
                        out.insert(url, username);
                    }
                }
            }
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
