//! The fast path of `get` on the Secret Service, the call docker makes on every pull.
//!
//! The store crate opens an encrypted session (a Diffie-Hellman exchange, about 2 ms of
//! gnome-keyring's time) before it can even search. Here the search comes first, on a bare
//! connection, while our half of the key pair is computed on another thread; the session is
//! opened only when there is a secret to fetch. A registry with no credential (every
//! anonymous pull) is answered without any key exchange. The secret still crosses the bus
//! encrypted.
//!
//! Anything unusual (no bus, no Secret Service, a locked item) returns `None`, and the
//! caller takes the normal path, which reports or falls back exactly as before.

use std::collections::HashMap;

use secret_service::blocking::SecretService;
use zbus::zvariant::OwnedObjectPath;

use super::Stored;

pub enum FastGet {
    Found(Stored),
    NotFound,
}

/// Look up each key in order; `None` when the fast path cannot decide.
pub fn get(service: &str, keys: &[&str]) -> Option<FastGet> {
    let prepared = SecretService::prepare_dh();
    let conn = secret_service::blocking::session_connection().ok()?;
    for key in keys {
        let attrs: HashMap<&str, &str> = HashMap::from([("service", service), ("username", key)]);
        let reply = conn
            .call_method(
                Some("org.freedesktop.secrets"),
                "/org/freedesktop/secrets",
                Some("org.freedesktop.Secret.Service"),
                "SearchItems",
                &(attrs,),
            )
            .ok()?;
        let (unlocked, locked): (Vec<OwnedObjectPath>, Vec<OwnedObjectPath>) =
            reply.body().deserialize().ok()?;
        if !locked.is_empty() {
            // Unlocking may need a prompt: the normal path handles (and reports) that.
            return None;
        }
        // Several items for one key only happen when two writers raced; any is complete.
        if let Some(path) = unlocked.into_iter().next() {
            let ss = SecretService::connect_prepared(conn, prepared).ok()?;
            let bytes = ss.get_item_by_path(path).ok()?.get_secret().ok()?;
            return Stored::decode(&bytes).ok().map(FastGet::Found);
        }
    }
    Some(FastGet::NotFound)
}
