//! The Secret Service calls, on one blocking [Bus] connection: no proxies,
//! no property reads beyond what is needed, and the encrypted session opened only when a
//! secret has to cross the bus.
//!
//! gnome-keyring (42 and 50 at least) admits a new client in an idle callback that method
//! dispatch can beat: a first `SearchItems` then fails with UnknownMethod, and a first
//! `OpenSession` aborts the daemon ("assertion 'client' failed" in
//! gkd_secret_service_get_pkcs11_session; Ubuntu bug 2162595). So the first call on every
//! connection is a search, retried until it is answered, and only then may a session open.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use zbus::Message;
use zbus::zvariant::{OwnedObjectPath, Value, as_value};

use crate::bus::{Bus, BusError, names};
use crate::session::{self, AesKey, KeyPair, SessionError};
use crate::{SecretBytes, TimeLeft};

const DESTINATION: &str = "org.freedesktop.secrets";
const SERVICE_PATH: &str = "/org/freedesktop/secrets";
const SERVICE_IFACE: &str = "org.freedesktop.Secret.Service";
const ITEM_IFACE: &str = "org.freedesktop.Secret.Item";
const COLLECTION_IFACE: &str = "org.freedesktop.Secret.Collection";
/// The default collection (usually `login`), through its alias.
const DEFAULT_ALIAS: &str = "/org/freedesktop/secrets/aliases/default";
const CONTENT_TYPE: &str = "application/octet-stream";
/// How often a not-yet-admitted client's first search is retried, a millisecond apart.
const ADMISSION_TRIES: u32 = 200;

/// A failed Secret Service call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The item or collection is locked, or the call would need a prompt.
    #[error("the keyring is locked")]
    Locked,
    /// The object is gone (erased by another process between two calls).
    #[error("the item no longer exists")]
    Vanished,
    #[error("an unexpected answer from the Secret Service: {0}")]
    Unexpected(String),
}

impl Error {
    fn from_bus(e: BusError) -> Error {
        match e.name() {
            Some(names::IS_LOCKED) => Error::Locked,
            Some(names::NO_SUCH_OBJECT | names::UNKNOWN_OBJECT) => Error::Vanished,
            _ => Error::Bus(e),
        }
    }

    /// For a call on an item's path: gnome-keyring answers UnknownMethod ("Object does not
    /// exist at path") for an item that another process deleted after our search.
    fn from_item_call(e: BusError) -> Error {
        match e.name() {
            Some(names::UNKNOWN_METHOD) => Error::Vanished,
            _ => Error::from_bus(e),
        }
    }

    /// The bus or the service is not there at all (as opposed to being broken).
    pub fn is_absent(&self) -> bool {
        match self {
            Error::Bus(
                BusError::NoAddress
                | BusError::NotLocal(_)
                | BusError::Connect { .. }
                | BusError::NotOurs { .. },
            ) => true,
            Error::Bus(e) => matches!(
                e.name(),
                Some(names::SERVICE_UNKNOWN | names::NAME_HAS_NO_OWNER)
            ),
            _ => false,
        }
    }
}

type Result<T> = std::result::Result<T, Error>;

/// A secret as the service transfers it: session, IV, ciphertext, content type.
type WireSecret = (OwnedObjectPath, Vec<u8>, Vec<u8>, String);

/// A search's answer: the items found, in unlocked and locked collections.
pub struct Found {
    pub unlocked: Vec<OwnedObjectPath>,
    pub locked: Vec<OwnedObjectPath>,
}

/// A connection to the Secret Service, with its encrypted session once one is needed.
pub struct Client {
    bus: Bus,
    admitted: bool,
    /// Our half of the key exchange, computed while the first search is answered.
    keys: Option<KeyPair>,
    session: Option<(OwnedObjectPath, AesKey)>,
    /// The default collection's own path, once `ReadAlias` has named it.
    default_collection: Option<OwnedObjectPath>,
}

fn call(path: &str, iface: &str, member: &str) -> zbus::message::Builder<'static> {
    Message::method_call(path.to_string(), member.to_string())
        .and_then(|b| b.destination(DESTINATION))
        .and_then(|b| b.interface(iface.to_string()))
        .expect("static names are valid")
}

/// Object paths in creation order: gnome-keyring numbers items upwards within a collection,
/// so of several items for one key (two writers raced) the newest is the last.
pub fn newest_first(paths: &mut [OwnedObjectPath]) {
    paths.sort_by(|a, b| {
        let key = |p: &OwnedObjectPath| (p.as_str().len(), p.as_str().to_string());
        key(b).cmp(&key(a))
    });
}

impl Client {
    /// Connect to the session bus; the handshake is on its way, not yet answered. Every
    /// read and write on this connection waits at most `deadline`'s time left.
    pub fn connect(deadline: impl TimeLeft + 'static) -> Result<Client> {
        Ok(Client {
            bus: Bus::connect(Box::new(deadline), DESTINATION)?,
            admitted: false,
            keys: None,
            session: None,
            default_collection: None,
        })
    }

    pub fn bus_address(&self) -> &str {
        &self.bus.address
    }

    /// `SearchItems` over every collection. The first search of a connection is also its
    /// admission probe (see the module comment).
    pub fn search(&mut self, attributes: &BTreeMap<&str, &str>) -> Result<Found> {
        let mut tries = 0;
        let reply = loop {
            let search = call(SERVICE_PATH, SERVICE_IFACE, "SearchItems")
                .build(&(attributes,))
                .map_err(BusError::from)?;
            self.bus.send(&search)?;
            if self.keys.is_none() {
                self.keys = Some(KeyPair::generate()?);
            }
            match self.bus.reply_to(&search) {
                Ok(reply) => break reply,
                Err(e)
                    if !self.admitted
                        && e.name() == Some(names::UNKNOWN_METHOD)
                        && tries < ADMISSION_TRIES =>
                {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(Error::from_bus(e)),
            }
        };
        self.admitted = true;
        let (unlocked, locked): (Vec<OwnedObjectPath>, Vec<OwnedObjectPath>) =
            reply.body().deserialize().map_err(BusError::from)?;
        Ok(Found { unlocked, locked })
    }

    fn keys(&mut self) -> Result<&KeyPair> {
        if self.keys.is_none() {
            self.keys = Some(KeyPair::generate()?);
        }
        Ok(self.keys.as_ref().expect("just set"))
    }

    /// Send `OpenSession` and wait for the session's path and the server's key.
    fn open_session(&mut self) -> Result<(OwnedObjectPath, Vec<u8>)> {
        assert!(self.admitted, "a session is opened only after a search");
        let public = self.keys()?.public_bytes();
        // The key as a typed variant: a `Value` would hold each byte as a `Value`.
        let open = call(SERVICE_PATH, SERVICE_IFACE, "OpenSession")
            .build(&(session::ALGORITHM, as_value::Serialize(&public)))
            .map_err(BusError::from)?;
        let reply = self.bus.call(&open).map_err(Error::from_bus)?;
        let body = reply.body();
        let (server, path): (as_value::Deserialize<Vec<u8>>, OwnedObjectPath) =
            body.deserialize().map_err(BusError::from)?;
        Ok((path, server.0))
    }

    /// The session, opened on first use.
    fn session(&mut self) -> Result<&(OwnedObjectPath, AesKey)> {
        if self.session.is_none() {
            let (path, server) = self.open_session()?;
            let key = self.keys()?.shared_key(&server)?;
            self.session = Some((path, key));
        }
        Ok(self.session.as_ref().expect("just set"))
    }

    fn decrypt(key: &AesKey, secret: &WireSecret) -> Result<SecretBytes> {
        Ok(key.decrypt(&secret.1, &secret.2)?)
    }

    /// One item's secret. When no session is open yet, `GetSecret` (which needs only the
    /// session's path) is sent before the shared key is derived, so the key is computed while
    /// the service answers.
    pub fn secret(&mut self, item: &OwnedObjectPath) -> Result<SecretBytes> {
        if let Some((path, key)) = &self.session {
            let get = call(item.as_str(), ITEM_IFACE, "GetSecret")
                .build(&(path,))
                .map_err(BusError::from)?;
            let reply = self.bus.call(&get).map_err(Error::from_item_call)?;
            let (secret,): (WireSecret,) = reply.body().deserialize().map_err(BusError::from)?;
            return Self::decrypt(key, &secret);
        }
        let (path, server) = self.open_session()?;
        let get = call(item.as_str(), ITEM_IFACE, "GetSecret")
            .build(&(&path,))
            .map_err(BusError::from)?;
        self.bus.send(&get)?;
        let key = self.keys()?.shared_key(&server)?;
        let reply = self.bus.reply_to(&get).map_err(Error::from_item_call);
        self.session = Some((path, key));
        let (secret,): (WireSecret,) = reply?.body().deserialize().map_err(BusError::from)?;
        let key = &self.session.as_ref().expect("just set").1;
        Self::decrypt(key, &secret)
    }

    /// The secrets of several items in one call. Items that vanished meanwhile are missing
    /// from the answer.
    pub fn secrets(
        &mut self,
        items: &[OwnedObjectPath],
    ) -> Result<HashMap<OwnedObjectPath, SecretBytes>> {
        if items.is_empty() {
            return Ok(HashMap::new());
        }
        let (path, _) = self.session()?;
        let get = call(SERVICE_PATH, SERVICE_IFACE, "GetSecrets")
            .build(&(items, path))
            .map_err(BusError::from)?;
        let reply = self.bus.call(&get).map_err(Error::from_bus)?;
        let secrets: HashMap<OwnedObjectPath, WireSecret> =
            reply.body().deserialize().map_err(BusError::from)?;
        let key = &self.session.as_ref().expect("opened above").1;
        secrets
            .into_iter()
            .map(|(item, secret)| Ok((item, Self::decrypt(key, &secret)?)))
            .collect()
    }

    /// The attributes of one item; `Vanished` if it is gone.
    pub fn attributes(&mut self, item: &OwnedObjectPath) -> Result<HashMap<String, String>> {
        let get = call(item.as_str(), "org.freedesktop.DBus.Properties", "Get")
            .build(&(ITEM_IFACE, "Attributes"))
            .map_err(BusError::from)?;
        let reply = self.bus.call(&get).map_err(Error::from_item_call)?;
        let value: zbus::zvariant::OwnedValue =
            reply.body().deserialize().map_err(BusError::from)?;
        HashMap::<String, String>::try_from(value)
            .map_err(|_| Error::Unexpected("item attributes are not a string map".into()))
    }

    /// The default collection's own path, asked once per connection with `ReadAlias` (the
    /// alias path when there is no default collection, so that the service's own answer to
    /// the create stays what it was).
    ///
    /// Why not simply call `CreateItem` on `/aliases/default`: gnome-keyring rewrites a call
    /// on an alias path to the collection's path in a message filter on its D-Bus worker
    /// thread, reading its alias table there, while its main thread replaces that table's
    /// entry (and frees the old string) each time a new client connects
    /// (gkd-secret-service.c: `rewrite_default_alias` against `update_default`). With
    /// clients coming and going, the rewritten path is now and then freed memory, and the
    /// create fails with UnknownMethod on a path of garbage. `ReadAlias` is answered on the
    /// main thread.
    fn default_collection(&mut self) -> Result<OwnedObjectPath> {
        if let Some(path) = &self.default_collection {
            return Ok(path.clone());
        }
        let read = call(SERVICE_PATH, SERVICE_IFACE, "ReadAlias")
            .build(&("default",))
            .map_err(BusError::from)?;
        let reply = self.bus.call(&read).map_err(Error::from_bus)?;
        let path: OwnedObjectPath = reply.body().deserialize().map_err(BusError::from)?;
        let path = if path.as_str() == "/" {
            OwnedObjectPath::try_from(DEFAULT_ALIAS).expect("a valid object path")
        } else {
            path
        };
        self.default_collection = Some(path.clone());
        Ok(path)
    }

    /// Create an item in the default collection, replacing one with the same attributes.
    pub fn create(
        &mut self,
        label: &str,
        attributes: &BTreeMap<&str, &str>,
        secret: &[u8],
    ) -> Result<OwnedObjectPath> {
        let collection = self.default_collection()?;
        let (path, key) = self.session()?;
        let (iv, data) = key.encrypt(secret)?;
        let attributes: HashMap<&str, &str> = attributes.iter().map(|(k, v)| (*k, *v)).collect();
        let properties: HashMap<&str, Value> = HashMap::from([
            ("org.freedesktop.Secret.Item.Label", Value::from(label)),
            (
                "org.freedesktop.Secret.Item.Attributes",
                Value::from(attributes),
            ),
        ]);
        let wire = (path, iv.to_vec(), data, CONTENT_TYPE);
        let create = call(collection.as_str(), COLLECTION_IFACE, "CreateItem")
            .build(&(properties, wire, true))
            .map_err(BusError::from)?;
        let reply = self.bus.call(&create).map_err(Error::from_bus)?;
        let (item, prompt): (OwnedObjectPath, OwnedObjectPath) =
            reply.body().deserialize().map_err(BusError::from)?;
        // A prompt means the collection is locked: nobody can answer one here.
        if prompt.as_str() != "/" || item.as_str() == "/" {
            return Err(Error::Locked);
        }
        Ok(item)
    }

    /// Replace an existing item's secret; `Vanished` if it is gone.
    pub fn set_secret(&mut self, item: &OwnedObjectPath, secret: &[u8]) -> Result<()> {
        let (path, key) = self.session()?;
        let (iv, data) = key.encrypt(secret)?;
        let wire = (path, iv.to_vec(), data, CONTENT_TYPE);
        let set = call(item.as_str(), ITEM_IFACE, "SetSecret")
            .build(&(wire,))
            .map_err(BusError::from)?;
        self.bus.call(&set).map_err(Error::from_item_call)?;
        Ok(())
    }

    /// Replace an existing item's attributes; `Vanished` if it is gone.
    pub fn set_attributes(
        &mut self,
        item: &OwnedObjectPath,
        attributes: &BTreeMap<&str, &str>,
    ) -> Result<()> {
        let attributes: HashMap<&str, &str> = attributes.iter().map(|(k, v)| (*k, *v)).collect();
        let set = call(item.as_str(), "org.freedesktop.DBus.Properties", "Set")
            .build(&(ITEM_IFACE, "Attributes", Value::from(attributes)))
            .map_err(BusError::from)?;
        self.bus.call(&set).map_err(Error::from_item_call)?;
        Ok(())
    }

    /// Delete an item; `false` when it was already gone.
    pub fn delete(&mut self, item: &OwnedObjectPath) -> Result<bool> {
        let delete = call(item.as_str(), ITEM_IFACE, "Delete")
            .build(&())
            .map_err(BusError::from)?;
        match self.bus.call(&delete).map_err(Error::from_item_call) {
            Ok(reply) => {
                let prompt: OwnedObjectPath = reply.body().deserialize().map_err(BusError::from)?;
                if prompt.as_str() != "/" {
                    return Err(Error::Locked);
                }
                Ok(true)
            }
            Err(Error::Vanished) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_item_sorts_first() {
        let mut paths: Vec<OwnedObjectPath> = ["/c/login/9", "/c/login/10", "/c/login/2"]
            .iter()
            .map(|p| OwnedObjectPath::try_from(p.to_string()).unwrap())
            .collect();
        newest_first(&mut paths);
        let got: Vec<&str> = paths.iter().map(|p| p.as_str()).collect();
        assert_eq!(got, ["/c/login/10", "/c/login/9", "/c/login/2"]);
    }
}
