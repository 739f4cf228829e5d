//! The fast path of `get` on the Secret Service, the call docker makes on every pull.
//!
//! The store crate opens an encrypted session (a Diffie-Hellman exchange, about 2 ms of
//! gnome-keyring's time) before it can even search. Here the search comes first, on a bare
//! connection, and the session is opened only when there is a secret to fetch: a registry
//! with no credential (every anonymous pull) is answered without any key exchange. The
//! secret still crosses the bus encrypted.
//!
//! Everything runs on this one thread: a current-thread tokio runtime drives the socket, and
//! our half of the key pair is computed while the first search is answered. zbus's async-io
//! backend would start a reactor thread that takes the socket's events and wakes this thread
//! for every reply; a short-lived helper pays for that thread and those cross-thread wake-ups
//! on every call.
//!
//! The connection can be opened before the request is read ([connect], then
//! [Connected::get]): the bus daemon accepts and authenticates us while stdin is read and
//! parsed.
//!
//! Anything unusual (no bus, no Secret Service, a locked item) returns `None`, and the
//! caller takes the normal path, which reports or falls back exactly as before.

use std::collections::BTreeMap;
use std::mem::ManuallyDrop;

use secret_service::blocking::{PreparedDh, not_yet_admitted, unix_session_address};
use zbus::zvariant::OwnedObjectPath;

use crate::secret::Secret;

pub enum FastGet {
    /// The item's secret as stored, for the caller to decode.
    Found(Secret<Vec<u8>>),
    NotFound,
}

/// Look up each key in order; `None` when the fast path cannot decide.
pub fn get(service: &str, keys: &[&str]) -> Option<FastGet> {
    connect()?.get(service, keys)
}

/// A session bus connection whose handshake is on its way: AUTH, BEGIN and Hello are written,
/// and nothing waits for the bus's answer (see zbus's `pipelined_handshake`). Never dropped:
/// the process exits right after using it, and orderly shutdown would only add latency.
pub struct Connected {
    runtime: ManuallyDrop<tokio::runtime::Runtime>,
    conn: ManuallyDrop<zbus::Connection>,
}

/// Connect to the session bus and send the handshake; `None` when the bus is not a local
/// socket or does not accept us.
pub fn connect() -> Option<Connected> {
    let address = unix_session_address()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .ok()?;
    let conn = runtime.block_on(async {
        // A non-blocking connect: a bus that has stopped accepting fails here at once, and
        // the normal path, under the watchdog, reports it.
        let stream = tokio::net::UnixStream::connect_addr(&address.into())
            .await
            .ok()?;
        zbus::connection::Builder::unix_stream(stream)
            .pipelined_handshake()
            .build()
            .await
            .ok()
    })?;
    Some(Connected {
        runtime: ManuallyDrop::new(runtime),
        conn: ManuallyDrop::new(conn),
    })
}

impl Connected {
    /// Look up each key in order; `None` when the fast path cannot decide.
    pub fn get(self, service: &str, keys: &[&str]) -> Option<FastGet> {
        self.runtime.block_on(lookup(&self.conn, service, keys))
    }
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
                    // The runtime has nothing else to do meanwhile (and no timer driver to
                    // set up on every call): the thread itself can wait.
                    std::thread::sleep(std::time::Duration::from_millis(1));
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// Our public key comes from a table precomputed at build time (vendor/secret-service,
    /// build.rs): it must equal plain exponentiation, edge exponents included.
    #[test]
    fn generator_table_agrees_with_exponentiation_at_the_edges() {
        let mut one = [0u8; 32];
        one[31] = 1;
        let mut top_bit = [0u8; 32];
        top_bit[0] = 0x80;
        let mut every_digit = [0u8; 32];
        for (i, byte) in every_digit.iter_mut().enumerate() {
            *byte = (i as u8 % 16) * 0x11;
        }
        for private in [[0u8; 32], one, top_bit, [0xff; 32], every_digit] {
            let (table, plain) = secret_service::public_key_both_ways(&private);
            assert_eq!(table, plain, "exponent {private:02x?}");
        }
    }

    proptest! {
        #[test]
        fn generator_table_agrees_with_exponentiation(private in any::<[u8; 32]>()) {
            let (table, plain) = secret_service::public_key_both_ways(&private);
            prop_assert_eq!(table, plain);
        }
    }
}
