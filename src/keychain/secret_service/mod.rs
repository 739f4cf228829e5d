//! The freedesktop Secret Service (GNOME Keyring, KWallet, KeePassXC), through our own small
//! blocking client: pure Rust, secrets encrypted on the bus.
//!
//! Each credential is one item in the default collection with the attributes `service`
//! (ours), `username` (the server URL) and `docker_username` (the registry username, for
//! people reading the keyring); its secret is the payload, which names the server URL too.
//! So every action is a search plus at most two calls:
//! - `get`: SearchItems, then (only when found) OpenSession and GetSecret;
//! - `store`: SearchItems, OpenSession, CreateItem (replacing an item with the same
//!   attributes), then deleting any other item for the key;
//! - `erase`: SearchItems, then Delete;
//! - `list`: SearchItems, OpenSession and one GetSecret, whatever the number of registries.
//!
//! `list` must not read every item (200 registries cost a GetSecrets of 200 secrets), so
//! `store` and `erase` also keep an index item (server URL → username and item path) under a
//! cross-process file lock. `list` trusts an index entry only while its item path is among
//! the search results, and reads any item the index does not know (a store interrupted
//! between its writes), whose payload names its URL.
//!
//! Two writers racing to create one key can leave two items; the newest wins everywhere
//! (`get`, `list`), and the next `store` or `erase` removes the rest. An item gnome-keyring
//! left without a secret (killed between saving the item and its secret) is absent.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use super::{Backend, Keychain, KeychainError, NoSecretService, Result, Stored, internal_service};
use crate::deadline::Deadline;
use crate::lock::FileLock;
use crate::secret::Secret;
use secret_service_client::{
    BusError, Client, Error as CallError, ExposeSecret, ExposeSecretMut, OwnedObjectPath,
    SecretBytes, newest_first, session_bus_configured,
};
use serde::{Deserialize, Serialize};

const USERNAME_ATTR: &str = "docker_username";
const INDEX_NAME: &str = "index";

/// One index entry: the registry username and the object path of the item.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
struct Indexed {
    #[serde(rename = "u")]
    username: String,
    #[serde(rename = "p")]
    path: String,
}

type Index = BTreeMap<String, Indexed>;

pub struct SecretService {
    client: RefCell<Client>,
    service: String,
    internal: String,
    deadline: Deadline,
}

/// What `auto` learned from trying the Secret Service.
pub enum Probe {
    Answers(Box<SecretService>),
    Absent(NoSecretService),
    /// A Secret Service is there but failed: report it, do not fall back.
    Broken(KeychainError),
}

/// The client waits at most the time left of our shared deadline, renewals included.
fn time_left(deadline: &Deadline) -> impl Fn() -> std::time::Duration + 'static {
    let deadline = deadline.clone();
    move || deadline.remaining()
}

/// A secret from the client, moved (not copied) into our wrapper.
fn into_secret(mut bytes: SecretBytes) -> Secret<Vec<u8>> {
    Secret::new(std::mem::take(bytes.expose_secret_mut()))
}

fn map_error(e: CallError, deadline: &Deadline) -> KeychainError {
    match e {
        CallError::Locked => KeychainError::SecretServiceLocked,
        CallError::Bus(BusError::Timeout) => KeychainError::Timeout {
            backend: Backend::SecretService,
            limit: deadline.limit(),
        },
        // An address from the environment that nobody listens on.
        CallError::Bus(BusError::Connect { address, source })
            if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty()) =>
        {
            KeychainError::SecretServiceBusGone {
                address,
                cause: source.to_string(),
            }
        }
        e if e.is_absent() => KeychainError::SecretServiceUnavailable {
            cause: e.to_string(),
        },
        CallError::Bus(e) if e.is_not_a_bus() => KeychainError::SecretServiceUnavailable {
            cause: e.to_string(),
        },
        e => KeychainError::SecretServiceFailed {
            cause: e.to_string(),
        },
    }
}

impl SecretService {
    /// Connect to the session bus; the handshake is sent, not yet answered.
    pub fn connect(service: &str, deadline: &Deadline) -> Result<SecretService> {
        if !session_bus_configured() {
            return Err(map_error(CallError::Bus(BusError::NoAddress), deadline));
        }
        let client = Client::connect(time_left(deadline)).map_err(|e| map_error(e, deadline))?;
        Ok(SecretService {
            client: RefCell::new(client),
            service: service.to_string(),
            internal: internal_service(service),
            deadline: deadline.clone(),
        })
    }

    /// Whether a Secret Service answers here (a search nobody's items match).
    pub fn probe(service: &str, deadline: &Deadline) -> Probe {
        if !session_bus_configured() {
            return Probe::Absent(NoSecretService::NoBus);
        }
        let mut client = match Client::connect(time_left(deadline)) {
            Ok(c) => c,
            Err(e) => return Probe::Absent(absence(&e, None)),
        };
        let probe = BTreeMap::from([("docker-credential-hub", "admission")]);
        match client.search(&probe) {
            Ok(_) => Probe::Answers(Box::new(SecretService {
                client: RefCell::new(client),
                service: service.to_string(),
                internal: internal_service(service),
                deadline: deadline.clone(),
            })),
            Err(e) if e.is_absent() || matches!(&e, CallError::Bus(b) if b.is_not_a_bus()) => {
                Probe::Absent(absence(&e, Some(client.bus_address())))
            }
            Err(e) => Probe::Broken(map_error(e, deadline)),
        }
    }

    fn err(&self, e: CallError) -> KeychainError {
        map_error(e, &self.deadline)
    }

    /// The items with these attributes; a locked one is an error, never "not there".
    fn search_unlocked(&self, attrs: &BTreeMap<&str, &str>) -> Result<Vec<OwnedObjectPath>> {
        let found = self
            .client
            .borrow_mut()
            .search(attrs)
            .map_err(|e| self.err(e))?;
        if !found.locked.is_empty() {
            return Err(KeychainError::SecretServiceLocked);
        }
        Ok(found.unlocked)
    }

    /// The items for `key` under `service`, newest first; a locked one is an error.
    fn find(&self, service: &str, key: &str) -> Result<Vec<OwnedObjectPath>> {
        let attrs = BTreeMap::from([("service", service), ("username", key)]);
        let mut paths = self.search_unlocked(&attrs)?;
        newest_first(&mut paths);
        Ok(paths)
    }

    /// The newest complete secret for `key`.
    fn read(&self, service: &str, key: &str) -> Result<Option<Secret<Vec<u8>>>> {
        for path in self.find(service, key)? {
            match self.client.borrow_mut().secret(&path) {
                Ok(bytes) if !bytes.expose_secret().is_empty() => {
                    return Ok(Some(into_secret(bytes)));
                }
                // Left empty by a daemon killed mid-create, or erased meanwhile.
                Ok(_) | Err(CallError::Vanished) => {}
                Err(e) => return Err(self.err(e)),
            }
        }
        Ok(None)
    }

    /// Write the newest item for `key` in place (its path, which `list` and other
    /// processes know, stays), or create one; remove raced duplicates. The item's path.
    fn write(
        &self,
        service: &str,
        key: &str,
        label: &str,
        username: &str,
        bytes: &[u8],
    ) -> Result<OwnedObjectPath> {
        let before = self.find(service, key)?;
        self.write_over(&before, service, key, label, username, bytes)
    }

    fn write_over(
        &self,
        before: &[OwnedObjectPath],
        service: &str,
        key: &str,
        label: &str,
        username: &str,
        bytes: &[u8],
    ) -> Result<OwnedObjectPath> {
        let mut attrs = BTreeMap::from([("service", service), ("username", key)]);
        if !username.is_empty() {
            attrs.insert(USERNAME_ATTR, username);
        }
        let mut client = self.client.borrow_mut();
        let err = |e| map_error(e, &self.deadline);
        let mut rest = before.iter();
        let updated = match rest.next() {
            Some(item) => match client.set_secret(item, bytes) {
                // The secret first: a kill before the attribute write leaves only the
                // informative `docker_username` stale, never the credential.
                Ok(()) if username.is_empty() => Some(item.clone()),
                Ok(()) => match client.set_attributes(item, &attrs) {
                    Ok(()) | Err(CallError::Vanished) => Some(item.clone()),
                    Err(e) => return Err(err(e)),
                },
                Err(CallError::Vanished) => None,
                Err(e) => return Err(err(e)),
            },
            None => None,
        };
        let path = match updated {
            Some(path) => path,
            None => client.create(label, &attrs, bytes).map_err(err)?,
        };
        for old in rest.filter(|p| **p != path) {
            client.delete(old).map_err(err)?;
        }
        Ok(path)
    }

    /// Serialises index updates of one service across processes.
    fn lock(&self) -> Result<FileLock> {
        Ok(FileLock::acquire_named(
            &format!("secret-service-{}", self.service),
            self.deadline.remaining(),
        )?)
    }

    fn read_index(&self) -> Result<Index> {
        let bytes = self.read(&self.internal, INDEX_NAME)?;
        // A damaged index only costs speed: `list` reads the items it does not name.
        Ok(bytes
            .and_then(|b| serde_json::from_slice(b.expose()).ok())
            .unwrap_or_default())
    }

    fn write_index(&self, index: &Index) -> Result<()> {
        if index.is_empty() {
            return self.remove(&self.internal, INDEX_NAME).map(|_| ());
        }
        let json = serde_json::to_vec(index).expect("serialising strings cannot fail");
        let label = format!("docker-credential-hub {INDEX_NAME}");
        self.write(&self.internal, INDEX_NAME, &label, "", &json)
            .map(|_| ())
    }

    fn remove(&self, service: &str, key: &str) -> Result<bool> {
        let mut existed = false;
        for path in self.find(service, key)? {
            existed |= self
                .client
                .borrow_mut()
                .delete(&path)
                .map_err(|e| self.err(e))?;
        }
        Ok(existed)
    }
}

/// Why connecting or the first call failed, for `auto`'s fallback.
fn absence(e: &CallError, address: Option<&str>) -> NoSecretService {
    match e {
        CallError::Bus(BusError::NoAddress) => NoSecretService::NoBus,
        CallError::Bus(BusError::Connect { address, source }) => NoSecretService::BusUnreachable {
            address: address.clone(),
            cause: source.to_string(),
        },
        CallError::Bus(e) if e.is_not_a_bus() || matches!(e, BusError::NotLocal(_)) => {
            NoSecretService::BusUnreachable {
                address: address.unwrap_or_default().to_string(),
                cause: e.to_string(),
            }
        }
        e => NoSecretService::NotOnBus {
            cause: e.to_string(),
        },
    }
}

impl Keychain for SecretService {
    fn store(&self, server_url: &str, cred: &Stored) -> Result<()> {
        let before = self.find(&self.service, server_url)?;
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
        let path = self.write_over(
            &before,
            &self.service,
            server_url,
            &format!("Docker credentials for {server_url}"),
            &cred.username,
            cred.encode_for(server_url).expose(),
        )?;
        let new = Indexed {
            username: cred.username.clone(),
            path: path.as_str().to_string(),
        };
        if index.get(server_url) != Some(&new) {
            index.insert(server_url.to_string(), new);
            self.write_index(&index)?;
        }
        Ok(())
    }

    fn get(&self, server_url: &str) -> Result<Option<Stored>> {
        self.read(&self.service, server_url)?
            .map(|b| Stored::decode(b.expose()))
            .transpose()
    }

    fn erase(&self, server_url: &str) -> Result<bool> {
        let found = self.find(&self.service, server_url)?;
        if found.is_empty() {
            return Ok(false);
        }
        let _guard = self.lock()?;
        let mut existed = false;
        for path in &found {
            existed |= self
                .client
                .borrow_mut()
                .delete(path)
                .map_err(|e| self.err(e))?;
        }
        let mut index = self.read_index()?;
        if index.remove(server_url).is_some() {
            self.write_index(&index)?;
        }
        Ok(existed)
    }

    fn list(&self) -> Result<BTreeMap<String, String>> {
        let attrs = BTreeMap::from([("service", self.service.as_str())]);
        let unlocked = self.search_unlocked(&attrs)?;
        let index = self.read_index()?;
        let by_path: HashMap<&str, (&String, &Indexed)> = index
            .iter()
            .map(|(url, i)| (i.path.as_str(), (url, i)))
            .collect();
        let mut paths = unlocked;
        // Oldest first, so that the newest item of a key is inserted last and wins.
        newest_first(&mut paths);
        paths.reverse();
        let unindexed: Vec<OwnedObjectPath> = paths
            .iter()
            .filter(|p| !by_path.contains_key(p.as_str()))
            .cloned()
            .collect();
        let mut client = self.client.borrow_mut();
        let secrets = client.secrets(&unindexed).map_err(|e| self.err(e))?;
        let mut out = BTreeMap::new();
        for path in &paths {
            if let Some((url, indexed)) = by_path.get(path.as_str()) {
                out.insert((*url).clone(), indexed.username.clone());
                continue;
            }
            // Missing: erased between the search and the read.
            let Some(bytes) = secrets.get(path) else {
                continue;
            };
            if bytes.expose_secret().is_empty() {
                continue;
            }
            // Not written by us (or damaged): `get` could not serve it, so docker must not
            // be told about it.
            let Ok((stored, url)) = Stored::decode_with_url(bytes.expose_secret()) else {
                continue;
            };
            let url = match url {
                Some(url) => url,
                // Written before the payload named its URL: the item's attribute does.
                None => match client.attributes(path) {
                    Ok(mut a) => match a.remove("username") {
                        Some(url) => url,
                        None => continue,
                    },
                    Err(CallError::Vanished) => continue,
                    Err(e) => return Err(map_error(e, &self.deadline)),
                },
            };
            out.insert(url, stored.username);
        }
        Ok(out)
    }

    fn get_internal(&self, name: &str) -> Result<Option<Secret<String>>> {
        self.read(&self.internal, name)?
            .map(|b| b.into_text().ok_or(KeychainError::CorruptCache))
            .transpose()
    }

    fn set_internal(&self, name: &str, value: &Secret<String>) -> Result<()> {
        self.write(
            &self.internal,
            name,
            &format!("docker-credential-hub {name}"),
            "",
            value.expose().as_bytes(),
        )
        .map(|_| ())
    }

    fn erase_internal(&self, name: &str) -> Result<bool> {
        self.remove(&self.internal, name)
    }
}
