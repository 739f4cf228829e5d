//! The fast path of `get` on the Secret Service, the call docker makes on every pull.
//!
//! The store crate opens an encrypted session (a Diffie-Hellman exchange, about 2 ms of
//! gnome-keyring's time) before it can even search. Here the search comes first, on a bare
//! connection, while our half of the key pair is computed on another thread; the session is
//! opened only when there is a secret to fetch. A registry with no credential (every
//! anonymous pull) is answered without any key exchange. The secret still crosses the bus
//! encrypted.
//!
//! The connection's executor runs on this thread (zbus's `internal_executor(false)`): a
//! blocking zbus connection hands every reply from its own executor thread to the caller,
//! and a short-lived helper pays for that thread and those wake-ups on every call.
//!
//! Anything unusual (no bus, no Secret Service, a locked item) returns `None`, and the
//! caller takes the normal path, which reports or falls back exactly as before.

use std::collections::HashMap;

use secret_service::SecretService;
use secret_service::blocking::{
    SecretService as Blocking, connect_unix_session_socket, not_yet_admitted,
};
use zbus::zvariant::OwnedObjectPath;

use super::Stored;

pub enum FastGet {
    Found(Stored),
    NotFound,
}

/// Look up each key in order; `None` when the fast path cannot decide.
pub fn get(service: &str, keys: &[&str]) -> Option<FastGet> {
    let prepared = Blocking::prepare_dh();
    let stream = connect_unix_session_socket()?;
    let conn = async_io::block_on(
        zbus::connection::Builder::async_io_unix_stream(stream)
            .internal_executor(false)
            .build(),
    )
    .ok()?;
    let executor = conn.executor().clone();
    // The work, raced against a loop that ticks the connection's executor on this thread.
    let ticker = async {
        loop {
            executor.tick().await;
        }
    };
    let work = async move {
        for key in keys {
            let attrs: HashMap<&str, &str> =
                HashMap::from([("service", service), ("username", key)]);
            // The first call of a new client can be refused until gnome-keyring has admitted
            // it (see `secret_service::blocking::wait_until_admitted`): retry briefly. Only a
            // successful search makes it safe to send OpenSession afterwards.
            let mut tries = 0;
            let reply = loop {
                match conn
                    .call_method(
                        Some("org.freedesktop.secrets"),
                        "/org/freedesktop/secrets",
                        Some("org.freedesktop.Secret.Service"),
                        "SearchItems",
                        &(&attrs,),
                    )
                    .await
                {
                    Ok(reply) => break reply,
                    Err(e) if not_yet_admitted(&e) && tries < 200 => {
                        tries += 1;
                        async_io::Timer::after(std::time::Duration::from_millis(1)).await;
                    }
                    Err(_) => return None,
                }
            };
            let (unlocked, locked): (Vec<OwnedObjectPath>, Vec<OwnedObjectPath>) =
                reply.body().deserialize().ok()?;
            if !locked.is_empty() {
                // Unlocking may need a prompt: the normal path handles (and reports) that.
                return None;
            }
            // Several items for one key only happen when two writers raced; any is complete.
            if let Some(path) = unlocked.into_iter().next() {
                let ss = SecretService::connect_prepared(conn, prepared).await.ok()?;
                let bytes = ss
                    .get_item_by_path(path)
                    .await
                    .ok()?
                    .get_secret()
                    .await
                    .ok()?;
                return Stored::decode(&bytes).ok().map(FastGet::Found);
            }
        }
        Some(FastGet::NotFound)
    };
    async_io::block_on(futures_lite::future::or(work, ticker))
}
