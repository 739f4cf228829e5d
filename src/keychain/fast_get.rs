//! The fast path of `get` on the Secret Service, the call docker makes on every pull.
//!
//! The store crate opens an encrypted session (a Diffie-Hellman exchange, about 2 ms of
//! gnome-keyring's time) before it can even search. Here the search comes first, on a bare
//! connection, while our half of the key pair is computed on another thread; the session is
//! opened only when there is a secret to fetch. A registry with no credential (every
//! anonymous pull) is answered without any key exchange. The secret still crosses the bus
//! encrypted.
//!
//! Everything runs on this one thread: a current-thread tokio runtime drives the socket, and
//! our half of the key pair is computed while the first search is answered. zbus's
//! async-io backend would start a reactor thread that takes the socket's events and wakes
//! this thread for every reply; a helper that lives for four milliseconds pays for that
//! thread and those cross-thread wake-ups on every call.
//!
//! Anything unusual (no bus, no Secret Service, a locked item) returns `None`, and the
//! caller takes the normal path, which reports or falls back exactly as before.

use std::collections::BTreeMap;

use secret_service::blocking::{PreparedDh, connect_unix_session_socket, not_yet_admitted};
use zbus::zvariant::OwnedObjectPath;

use crate::secret::Secret;

pub enum FastGet {
    /// The item's secret as stored, for the caller to decode.
    Found(Secret<Vec<u8>>),
    NotFound,
}

/// Look up each key in order; `None` when the fast path cannot decide.
pub fn get(service: &str, keys: &[&str]) -> Option<FastGet> {
    let stream = connect_unix_session_socket()?;
    stream.set_nonblocking(true).ok()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .ok()?;
    let found = runtime.block_on(async move {
        let stream = tokio::net::UnixStream::from_std(stream).ok()?;
        // The whole handshake goes out in one write, without waiting for the bus's answer:
        // the first search follows in the next (see zbus's `pipelined_handshake`).
        let conn = zbus::connection::Builder::unix_stream(stream)
            .pipelined_handshake()
            .build()
            .await
            .ok()?;
        let found = lookup(&conn, service, keys).await;
        // The process exits right after: skip the connection's orderly shutdown.
        std::mem::forget(conn);
        found
    });
    // Likewise the runtime's; it has nothing left to run.
    std::mem::forget(runtime);
    found
}

async fn lookup(conn: &zbus::Connection, service: &str, keys: &[&str]) -> Option<FastGet> {
    let mut prepared = None;
    for key in keys {
        // (A BTreeMap: a HashMap would seed its hasher from the kernel first.)
        let attrs: BTreeMap<&str, &str> = BTreeMap::from([("service", service), ("username", key)]);
        // The first call of a new client can be refused until gnome-keyring has admitted
        // it (see `secret_service::blocking::wait_until_admitted`): retry briefly. Only a
        // successful search makes it safe to send OpenSession afterwards.
        let body = (&attrs,);
        let mut tries = 0;
        let reply = loop {
            let search = conn.call_method(
                Some("org.freedesktop.secrets"),
                "/org/freedesktop/secrets",
                Some("org.freedesktop.Secret.Service"),
                "SearchItems",
                &body,
            );
            // The search is sent on its first poll; our half of the key pair is computed
            // while the bus and gnome-keyring answer (a fraction of a millisecond each).
            let reply = if prepared.is_none() {
                let (reply, keypair) =
                    futures_lite::future::zip(search, async { PreparedDh::now() }).await;
                prepared = Some(keypair);
                reply
            } else {
                search.await
            };
            match reply {
                Ok(reply) => break reply,
                Err(e) if not_yet_admitted(&e) && tries < 200 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
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
            let bytes = secret_service::fetch_secret(conn, &path, prepared?)
                .await
                .ok()?;
            return Some(FastGet::Found(Secret::new(bytes)));
        }
    }
    Some(FastGet::NotFound)
}
