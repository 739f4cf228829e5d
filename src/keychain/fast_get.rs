//! The fast path of `get` on the Secret Service, the call docker makes on every pull.
//!
//! The store crate opens an encrypted session (a Diffie-Hellman exchange, about 2 ms of
//! gnome-keyring's time) before it can even search. Here the search comes first, on a bare
//! connection, and the session is opened only when there is a secret to fetch: a registry
//! with no credential (every anonymous pull) is answered without any key exchange. The
//! secret still crosses the bus encrypted.
//!
//! Everything runs on this one thread, with blocking reads and writes on the bus socket; zbus
//! builds and parses the messages. A zbus connection needs an async runtime and a reader task
//! (and its async-io backend a reactor thread): for a process that makes three calls and
//! exits, their set-up, wake-ups and memory cost more than the calls (measured: 0.06 ms CPU
//! and 0.7 MiB of resident memory per `get`). Our half of the key pair is computed while the
//! first search is answered.
//!
//! The connection can be opened before the request is read ([connect], then
//! [Connected::get]): the bus daemon accepts and authenticates us while stdin is read and
//! parsed.
//!
//! Anything unusual (no bus, no Secret Service, a locked item) returns `None`, and the
//! caller takes the normal path, which reports or falls back exactly as before.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use secret_service::CallSync;
use secret_service::blocking::{PreparedDh, not_yet_admitted, unix_session_address};
use zbus::Message;
use zbus::message::Type;
use zbus::zvariant::{Endian, OwnedObjectPath, serialized};

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

/// A session bus connection whose handshake is on its way: AUTH, BEGIN and Hello are
/// written, and nothing waits for the bus's answer (as sd-bus does).
pub struct Connected {
    bus: Bus,
}

/// Connect to the session bus and send the handshake; `None` when the bus is not a local
/// socket or does not accept us.
pub fn connect() -> Option<Connected> {
    let address = unix_session_address()?;
    // A non-blocking connect: a bus that has stopped accepting fails here at once, and the
    // normal path, under the watchdog, reports it. Later reads block, under the watchdog.
    let sock = UnixStream::from(mio::net::UnixStream::connect_addr(&address).ok()?);
    sock.set_nonblocking(false).ok()?;
    let hello = Message::method_call("/org/freedesktop/DBus", "Hello")
        .ok()?
        .destination("org.freedesktop.DBus")
        .ok()?
        .interface("org.freedesktop.DBus")
        .ok()?
        .build(&())
        .ok()?;
    // SASL EXTERNAL with our uid, as zbus sends it (hex of its decimal digits).
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    let mut handshake = b"\0AUTH EXTERNAL ".to_vec();
    for digit in uid.to_string().bytes() {
        write!(handshake, "{digit:02x}").ok()?;
    }
    handshake.extend_from_slice(b"\r\nBEGIN\r\n");
    handshake.extend_from_slice(hello.data());
    (&sock).write_all(&handshake).ok()?;
    Some(Connected {
        bus: Bus::new(sock),
    })
}

impl Connected {
    /// Look up each key in order; `None` when the fast path cannot decide.
    pub fn get(mut self, service: &str, keys: &[&str]) -> Option<FastGet> {
        let bus = &mut self.bus;
        let mut prepared = None;
        for key in keys {
            // (A BTreeMap: a HashMap would seed its hasher from the kernel first.)
            let attrs: BTreeMap<&str, &str> =
                BTreeMap::from([("service", service), ("username", key)]);
            // The first call of a new client can be refused until gnome-keyring has admitted
            // it (see `secret_service::blocking::wait_until_admitted`): retry briefly. Only a
            // successful search makes it safe to send OpenSession afterwards.
            let mut tries = 0;
            let reply = loop {
                let search = Message::method_call("/org/freedesktop/secrets", "SearchItems")
                    .ok()?
                    .destination("org.freedesktop.secrets")
                    .ok()?
                    .interface("org.freedesktop.Secret.Service")
                    .ok()?
                    .build(&(&attrs,))
                    .ok()?;
                bus.send(&search).ok()?;
                // Our half of the key pair is computed while the search is answered.
                if prepared.is_none() {
                    prepared = Some(PreparedDh::now());
                }
                match bus.reply_to(&search) {
                    Ok(reply) => break reply,
                    Err(secret_service::Error::Zbus(e)) if not_yet_admitted(&e) && tries < 200 => {
                        tries += 1;
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
                let bytes = secret_service::fetch_secret_sync(bus, &path, prepared?).ok()?;
                return Some(FastGet::Found(Secret::new(bytes)));
            }
        }
        Some(FastGet::NotFound)
    }
}

/// The client end of a D-Bus connection, with blocking I/O on this thread: zbus's own
/// connection needs an async runtime and a reader task, which cost a short-lived helper more
/// than the few calls it makes. zbus still builds and parses every message.
struct Bus {
    sock: UnixStream,
    /// Bytes read and not yet taken as messages.
    inbox: Vec<u8>,
    /// Whether the bus's SASL answer ("OK <guid>") has been read.
    authenticated: bool,
}

impl Bus {
    /// A bus connection on `sock`, whose SASL answer is still to be read.
    fn new(sock: UnixStream) -> Bus {
        Bus {
            sock,
            inbox: Vec::with_capacity(4096),
            authenticated: false,
        }
    }

    /// Read more bytes from the bus; end of stream is an error.
    fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = (&self.sock).read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.inbox.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// The next message from the bus (after its SASL answer, on the first call).
    fn next_message(&mut self) -> Result<Message, secret_service::Error> {
        while !self.authenticated {
            if let Some(end) = self.inbox.windows(2).position(|w| w == b"\r\n") {
                if !self.inbox.starts_with(b"OK ") {
                    return Err(zbus::Error::Handshake("the bus refused us".into()).into());
                }
                self.inbox.drain(..end + 2);
                self.authenticated = true;
            } else {
                self.fill().map_err(zbus::Error::from)?;
            }
        }
        loop {
            if let Some((len, endian)) = message_size(&self.inbox)?
                && self.inbox.len() >= len
            {
                let rest = self.inbox.split_off(len);
                let bytes = std::mem::replace(&mut self.inbox, rest);
                let data = serialized::Data::new(bytes, serialized::Context::new_dbus(endian, 0));
                // SAFETY: `from_bytes` is unsafe only because the bytes may be malformed; it
                // checks them as zbus's own socket reader does (the same `from_raw_parts`).
                return Ok(unsafe { Message::from_bytes(data) }?);
            }
            self.fill().map_err(zbus::Error::from)?;
        }
    }
}

impl secret_service::CallSync for Bus {
    fn send(&mut self, call: &Message) -> Result<(), secret_service::Error> {
        (&self.sock)
            .write_all(call.data())
            .map_err(zbus::Error::from)?;
        Ok(())
    }

    fn reply_to(&mut self, call: &Message) -> Result<Message, secret_service::Error> {
        let serial = call.primary_header().serial_num();
        loop {
            // Other messages (the Hello reply, the NameAcquired signal) are skipped.
            let msg = self.next_message()?;
            if msg.header().reply_serial() == Some(serial) {
                return match msg.message_type() {
                    Type::Error => Err(zbus::Error::from(msg).into()),
                    _ => Ok(msg),
                };
            }
        }
    }
}

/// The whole size of the message that `buf` starts with, once its fixed header is in:
/// 16 bytes, then the header fields padded to 8, then the body.
fn message_size(buf: &[u8]) -> Result<Option<(usize, Endian)>, zbus::Error> {
    let Some(head) = buf.get(..16) else {
        return Ok(None);
    };
    let endian = match head[0] {
        b'l' => Endian::Little,
        b'B' => Endian::Big,
        _ => return Err(zbus::Error::IncorrectEndian),
    };
    let field = |at: usize| {
        let bytes = [head[at], head[at + 1], head[at + 2], head[at + 3]];
        match endian {
            Endian::Little => u32::from_le_bytes(bytes),
            Endian::Big => u32::from_be_bytes(bytes),
        }
    };
    // In u64: two u32 lengths cannot overflow it (a 32-bit usize could).
    let len = (16 + u64::from(field(12))).next_multiple_of(8) + u64::from(field(4));
    // The D-Bus limit; anything larger is not a message.
    if len > 128 << 20 {
        return Err(zbus::Error::ExcessData);
    }
    Ok(Some((len as usize, endian)))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    use proptest::prelude::*;
    use secret_service::CallSync;
    use zbus::Message;

    use super::{Bus, message_size};

    fn search_call() -> Message {
        Message::method_call("/org/freedesktop/secrets", "SearchItems")
            .unwrap()
            .destination("org.freedesktop.secrets")
            .unwrap()
            .build(&("a body long enough to need padding",))
            .unwrap()
    }

    #[test]
    fn message_size_reads_the_fixed_header() {
        let msg = search_call();
        let bytes: &[u8] = msg.data();
        let (len, _) = message_size(bytes).unwrap().unwrap();
        assert_eq!(len, bytes.len());
        // Only the first 16 bytes are needed; fewer is "not yet".
        assert_eq!(message_size(&bytes[..16]).unwrap().unwrap().0, bytes.len());
        assert!(message_size(&bytes[..15]).unwrap().is_none());
        let mut bad = bytes.to_vec();
        bad[0] = b'x';
        assert!(message_size(&bad).is_err());
        // A body length beyond D-Bus's 128 MiB limit is refused, not allocated for.
        let mut huge = bytes.to_vec();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(message_size(&huge).is_err());
        // Both lengths at their maximum: refused, without overflowing.
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(message_size(&huge).is_err());
    }

    #[test]
    fn message_size_reads_big_endian_headers() {
        // The fixed header of a big-endian method return: 40-byte fields, 12-byte body.
        let mut head = vec![b'B', 2, 0, 1];
        head.extend_from_slice(&12u32.to_be_bytes());
        head.extend_from_slice(&7u32.to_be_bytes());
        head.extend_from_slice(&37u32.to_be_bytes());
        // 16 + 37 = 53, padded to 56, plus the body.
        assert_eq!(message_size(&head).unwrap().unwrap().0, 68);
    }

    /// The bus's SASL answer, then messages split across writes and interleaved with others:
    /// the reply to our call is the one returned, and an error reply is an error.
    #[test]
    fn replies_are_matched_to_their_call_across_partial_reads() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut bus = Bus::new(ours);
        let call = search_call();
        let other = Message::signal(
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameAcquired",
        )
        .unwrap()
        .build(&(":1.7",))
        .unwrap();
        let reply = Message::method_return(&call.header())
            .unwrap()
            .build(&(vec!["/org/freedesktop/secrets/collection/login/1"],))
            .unwrap();
        let mut stream = b"OK 0123456789abcdef0123456789abcdef\r\n".to_vec();
        stream.extend_from_slice(other.data());
        stream.extend_from_slice(reply.data());
        let writer = std::thread::spawn(move || {
            for piece in stream.chunks(7) {
                theirs.write_all(piece).unwrap();
                theirs.flush().unwrap();
            }
            theirs
        });
        let got = bus.reply_to(&call).unwrap();
        assert_eq!(
            got.header().reply_serial(),
            Some(call.primary_header().serial_num())
        );
        let (paths,): (Vec<String>,) = got.body().deserialize().unwrap();
        assert_eq!(paths, ["/org/freedesktop/secrets/collection/login/1"]);

        let mut theirs = writer.join().unwrap();
        let second = search_call();
        let refusal = Message::error(&second.header(), "org.freedesktop.DBus.Error.UnknownMethod")
            .unwrap()
            .build(&("not yet",))
            .unwrap();
        theirs.write_all(refusal.data()).unwrap();
        match bus.reply_to(&second) {
            Err(secret_service::Error::Zbus(e)) => {
                assert!(secret_service::blocking::not_yet_admitted(&e), "{e}")
            }
            other => panic!(
                "expected the error reply, got {:?}",
                other.map(|m| m.header().reply_serial())
            ),
        }
    }

    #[test]
    fn a_refused_handshake_is_an_error() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut bus = Bus::new(ours);
        let call = search_call();
        let reply = Message::method_return(&call.header())
            .unwrap()
            .build(&())
            .unwrap();
        // Even followed by what looks like the reply, a refusal is not an answer.
        theirs.write_all(b"REJECTED EXTERNAL\r\n").unwrap();
        theirs.write_all(reply.data()).unwrap();
        assert!(bus.reply_to(&call).is_err());
    }

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
