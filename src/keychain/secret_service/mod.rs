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
//! `list` must not read every item, so `store` and `erase` also keep an index item (server
//! URL → username and item path, [super::index]). `list` trusts an index entry only while
//! its item path is among the search results, and reads any item the index does not know (a
//! store interrupted between its writes), whose payload names its URL.
//!
//! One connection serves both views of [Opened]: the credentials and the internal service.
//!
//! Two writers racing to create one key can leave two items; the newest wins everywhere
//! (`get`, `list`), and the next `store` or `erase` removes the rest. An item gnome-keyring
//! left without a secret (killed between saving the item and its secret) is absent.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::index::{self, Backing, Index};
use super::{
    Backend, Keychain, KeychainError, Kind, NoSecretService, Opened, Result, Stored,
    internal_service,
};
use crate::deadline::Deadline;
use crate::lock::FileLock;
use crate::secret::Secret;
use secret_service_client::{
    BusError, Client, Error as CallError, ExposeSecret, ExposeSecretMut, OwnedObjectPath,
    SecretBytes, newest_first, session_bus_configured,
};

const BACKEND: Backend = Backend::SecretService;
const USERNAME_ATTR: &str = "docker_username";

/// What went wrong with the Secret Service.
#[derive(Debug, thiserror::Error)]
pub enum SecretServiceError {
    #[error(
        "cannot use the Secret Service ({cause}); start gnome-keyring, KWallet or KeePassXC in this session, or set DOCKER_CREDENTIAL_HUB_BACKEND=keyutils"
    )]
    Absent { cause: String },
    #[error(
        "the D-Bus session bus {address} does not answer ({cause}): DBUS_SESSION_BUS_ADDRESS is left over from another session (an ssh or tmux re-attach?); point it at this session's bus (for example `export DBUS_SESSION_BUS_ADDRESS=unix:path=$XDG_RUNTIME_DIR/bus`) or start one, then retry"
    )]
    BusGone { address: String, cause: String },
    #[error(
        "the Secret Service keyring is locked and no unlock prompt can be shown; unlock it by logging in to your desktop session, or run `gnome-keyring-daemon --replace --unlock` with the keyring password on stdin, then retry"
    )]
    Locked,
    /// The session bus is another user's (root run with their environment, `sudo -E`).
    #[error(
        "the D-Bus session bus {address} belongs to {owner}, not to {you}: its Secret Service keeps their credentials, not yours; run it as them, or unset DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR"
    )]
    NotYours {
        address: String,
        owner: String,
        you: String,
    },
    #[error("the Secret Service failed ({cause})")]
    Failed { cause: String },
}

impl From<SecretServiceError> for KeychainError {
    fn from(e: SecretServiceError) -> KeychainError {
        let kind = match e {
            SecretServiceError::Absent { .. } => Kind::Absent,
            SecretServiceError::BusGone { .. } | SecretServiceError::NotYours { .. } => {
                Kind::Unavailable
            }
            SecretServiceError::Locked => Kind::Locked,
            SecretServiceError::Failed { .. } => Kind::Failed,
        };
        KeychainError::new(BACKEND, kind, e)
    }
}

/// One view of the Secret Service: the items of one service name, and its index.
pub struct SecretService {
    client: Rc<RefCell<Client>>,
    service: String,
    /// Where this view's index lives.
    index_service: String,
    deadline: Deadline,
}

/// What `auto` learned from trying the Secret Service.
pub enum Probe {
    Answers(Opened),
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
    use SecretServiceError as E;
    match e {
        CallError::Locked => E::Locked.into(),
        CallError::Bus(BusError::Timeout) => KeychainError::timeout(BACKEND, deadline.limit()),
        CallError::Bus(BusError::NotOurs { address, uid }) => E::NotYours {
            address,
            owner: crate::trust::owner_name(uid),
            you: crate::trust::owner_name(crate::fs::euid()),
        }
        .into(),
        // An address from the environment that nobody listens on.
        CallError::Bus(BusError::Connect { address, source })
            if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty()) =>
        {
            E::BusGone {
                address,
                cause: source.to_string(),
            }
            .into()
        }
        e if e.is_absent() => E::Absent {
            cause: e.to_string(),
        }
        .into(),
        CallError::Bus(e) if e.is_not_a_bus() => E::Absent {
            cause: e.to_string(),
        }
        .into(),
        e => E::Failed {
            cause: e.to_string(),
        }
        .into(),
    }
}

impl SecretService {
    /// Connect to the session bus; the handshake is sent, not yet answered.
    pub fn connect(service: &str, deadline: &Deadline) -> Result<Opened> {
        if !session_bus_configured() {
            return Err(map_error(CallError::Bus(BusError::NoAddress), deadline));
        }
        let client = Client::connect(time_left(deadline)).map_err(|e| map_error(e, deadline))?;
        Ok(SecretService::views(client, service, deadline))
    }

    /// The credentials and the internal service, over one connection.
    fn views(client: Client, service: &str, deadline: &Deadline) -> Opened {
        let client = Rc::new(RefCell::new(client));
        let view = |service: String| SecretService {
            client: client.clone(),
            index_service: internal_service(&service),
            service,
            deadline: deadline.clone(),
        };
        Opened {
            creds: Box::new(view(service.to_string())),
            internal: Box::new(view(internal_service(service))),
        }
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
            Ok(_) => Probe::Answers(SecretService::views(client, service, deadline)),
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
            return Err(SecretServiceError::Locked.into());
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

/// This view's index: an item of the internal service, its writers serialised across
/// processes.
impl Backing for SecretService {
    const ENUMERATES: bool = true;

    fn lock(&self) -> Result<FileLock> {
        FileLock::acquire_named(
            &format!("secret-service-{}", self.service),
            self.deadline.remaining(),
        )
        .map_err(|e| KeychainError::lock(BACKEND, e))
    }

    fn load(&self) -> Result<Option<Secret<Vec<u8>>>> {
        self.read(&self.index_service, index::NAME)
    }

    fn save(&self, bytes: &[u8]) -> Result<()> {
        let label = format!("docker-credential-hub {}", index::NAME);
        self.write(&self.index_service, index::NAME, &label, "", bytes)
            .map(|_| ())
    }

    fn clear(&self) -> Result<()> {
        self.remove(&self.index_service, index::NAME).map(|_| ())
    }
}

/// Why connecting or the first call failed, for `auto`'s fallback.
fn absence(e: &CallError, address: Option<&str>) -> NoSecretService {
    match e {
        CallError::Bus(BusError::NoAddress) => NoSecretService::NoBus,
        CallError::Bus(BusError::NotOurs { address, uid }) => NoSecretService::NotYours {
            address: address.clone(),
            owner: crate::trust::owner_name(*uid),
        },
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
        let write = || {
            self.write_over(
                &before,
                &self.service,
                server_url,
                &format!("Docker credentials for {server_url}"),
                &cred.username,
                cred.encode_for(server_url).expose(),
            )
            .map(|path| Some(path.as_str().to_string()))
        };
        index::store(self, server_url, &cred.username, write, || {})
    }

    fn get(&self, server_url: &str) -> Result<Option<Stored>> {
        self.read(&self.service, server_url)?
            .map(|b| Stored::decode(b.expose()).map_err(|_| KeychainError::corrupt(BACKEND)))
            .transpose()
    }

    fn erase(&self, server_url: &str) -> Result<bool> {
        let found = self.find(&self.service, server_url)?;
        if found.is_empty() {
            return Ok(false);
        }
        index::erase(self, server_url, || {
            let mut existed = false;
            for path in &found {
                existed |= self
                    .client
                    .borrow_mut()
                    .delete(path)
                    .map_err(|e| self.err(e))?;
            }
            Ok(existed)
        })
    }

    fn list(&self) -> Result<BTreeMap<String, String>> {
        let attrs = BTreeMap::from([("service", self.service.as_str())]);
        let unlocked = self.search_unlocked(&attrs)?;
        let index = Index::read(self)?;
        let by_path = index.by_item();
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
                out.insert(url.to_string(), indexed.username.clone());
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
}
