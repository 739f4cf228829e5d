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
//! - `list`: SearchItems, OpenSession and GetSecrets: one search and one read, whatever the
//!   number of registries.
//!
//! Two writers racing to create one key can leave two items; the newest wins everywhere
//! (`get`, `list`), and the next `store` or `erase` removes the rest. An item gnome-keyring
//! left without a secret (killed between saving the item and its secret) is absent.

mod bus;
mod client;
mod session;

use std::cell::RefCell;
use std::collections::BTreeMap;

use zbus::zvariant::OwnedObjectPath;

use self::bus::BusError;
use self::client::{CallError, Client, newest_first};
use super::{Backend, Keychain, KeychainError, NoSecretService, Result, Stored, internal_service};
use crate::deadline::Deadline;
use crate::secret::Secret;

const USERNAME_ATTR: &str = "docker_username";

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

fn map_error(e: CallError, deadline: &Deadline) -> KeychainError {
    match e {
        CallError::Locked => KeychainError::SecretServiceLocked,
        CallError::Bus(BusError::Timeout) => KeychainError::Timeout {
            backend: Backend::SecretService,
            limit: deadline.limit(),
        },
        e if e.is_absent() => KeychainError::SecretServiceUnavailable {
            cause: e.to_string(),
        },
        CallError::Bus(e @ (BusError::Io(_) | BusError::Refused)) => {
            KeychainError::SecretServiceUnavailable {
                cause: e.to_string(),
            }
        }
        e => KeychainError::SecretServiceFailed {
            cause: e.to_string(),
        },
    }
}

impl SecretService {
    /// Connect to the session bus; the handshake is sent, not yet answered.
    pub fn connect(service: &str, deadline: &Deadline) -> Result<SecretService> {
        if !bus::configured() {
            return Err(map_error(CallError::Bus(BusError::NoAddress), deadline));
        }
        let client = Client::connect(deadline).map_err(|e| map_error(e, deadline))?;
        Ok(SecretService {
            client: RefCell::new(client),
            service: service.to_string(),
            internal: internal_service(service),
            deadline: deadline.clone(),
        })
    }

    /// Whether a Secret Service answers here (a search nobody's items match).
    pub fn probe(service: &str, deadline: &Deadline) -> Probe {
        if !bus::configured() {
            return Probe::Absent(NoSecretService::NoBus);
        }
        let mut client = match Client::connect(deadline) {
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
            Err(e)
                if e.is_absent()
                    || matches!(e, CallError::Bus(BusError::Io(_) | BusError::Refused)) =>
            {
                Probe::Absent(absence(&e, Some(client.bus_address())))
            }
            Err(e) => Probe::Broken(map_error(e, deadline)),
        }
    }

    fn err(&self, e: CallError) -> KeychainError {
        map_error(e, &self.deadline)
    }

    /// The items for `key` under `service`, newest first; a locked one is an error.
    fn find(&self, service: &str, key: &str) -> Result<Vec<OwnedObjectPath>> {
        let attrs = BTreeMap::from([("service", service), ("username", key)]);
        let found = self
            .client
            .borrow_mut()
            .search(&attrs)
            .map_err(|e| self.err(e))?;
        if !found.locked.is_empty() {
            return Err(KeychainError::SecretServiceLocked);
        }
        let mut paths = found.unlocked;
        newest_first(&mut paths);
        Ok(paths)
    }

    /// The newest complete secret for `key`.
    fn read(&self, service: &str, key: &str) -> Result<Option<Secret<Vec<u8>>>> {
        for path in self.find(service, key)? {
            match self.client.borrow_mut().secret(&path) {
                Ok(bytes) if !bytes.expose().is_empty() => return Ok(Some(bytes)),
                // Left empty by a daemon killed mid-create, or erased meanwhile.
                Ok(_) | Err(CallError::Vanished) => {}
                Err(e) => return Err(self.err(e)),
            }
        }
        Ok(None)
    }

    /// Write the newest item for `key` in place (its path, which `list` and other
    /// processes know, stays), or create one; remove raced duplicates.
    fn write(
        &self,
        service: &str,
        key: &str,
        label: &str,
        username: &str,
        bytes: &[u8],
    ) -> Result<()> {
        let before = self.find(service, key)?;
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
                Ok(()) if username.is_empty() => true,
                Ok(()) => match client.set_attributes(item, &attrs) {
                    Ok(()) | Err(CallError::Vanished) => true,
                    Err(e) => return Err(err(e)),
                },
                Err(CallError::Vanished) => false,
                Err(e) => return Err(err(e)),
            },
            None => false,
        };
        if !updated {
            client.create(label, &attrs, bytes).map_err(err)?;
        }
        for old in rest {
            client.delete(old).map_err(err)?;
        }
        Ok(())
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
        CallError::Bus(e @ (BusError::Io(_) | BusError::Refused | BusError::NotLocal(_))) => {
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
        self.write(
            &self.service,
            server_url,
            &format!("Docker credentials for {server_url}"),
            &cred.username,
            cred.encode_for(server_url).expose(),
        )
    }

    fn get(&self, server_url: &str) -> Result<Option<Stored>> {
        self.read(&self.service, server_url)?
            .map(|b| Stored::decode(b.expose()))
            .transpose()
    }

    fn erase(&self, server_url: &str) -> Result<bool> {
        self.remove(&self.service, server_url)
    }

    fn list(&self) -> Result<BTreeMap<String, String>> {
        let attrs = BTreeMap::from([("service", self.service.as_str())]);
        let mut client = self.client.borrow_mut();
        let found = client.search(&attrs).map_err(|e| self.err(e))?;
        if !found.locked.is_empty() {
            return Err(KeychainError::SecretServiceLocked);
        }
        let mut paths = found.unlocked;
        // Oldest first, so that the newest item of a key is inserted last and wins.
        newest_first(&mut paths);
        paths.reverse();
        let secrets = client.secrets(&paths).map_err(|e| self.err(e))?;
        let mut out = BTreeMap::new();
        for path in &paths {
            // Missing: erased between the search and the read.
            let Some(bytes) = secrets.get(path) else {
                continue;
            };
            if bytes.expose().is_empty() {
                continue;
            }
            // Not written by us (or damaged): `get` could not serve it, so docker must not
            // be told about it.
            let Ok((stored, url)) = Stored::decode_with_url(bytes.expose()) else {
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
    }

    fn erase_internal(&self, name: &str) -> Result<bool> {
        self.remove(&self.internal, name)
    }
}
