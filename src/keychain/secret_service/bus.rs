//! A blocking D-Bus client connection to the session bus: SASL EXTERNAL, then method calls
//! and their replies, on this one thread. Every read and write waits at most until the
//! deadline. zbus builds and parses the messages; a zbus connection would need an async
//! runtime and a reader task, which cost a process that makes three calls and exits more
//! than the calls themselves.

use std::io::{Read, Write};
use std::os::unix::net::{SocketAddr, UnixStream};

use zbus::Message;
use zbus::message::Type;
use zbus::zvariant::{Endian, serialized};

use crate::deadline::Deadline;

/// D-Bus error names this client tells apart (the bus daemon's and the Secret Service's).
pub mod names {
    pub const SERVICE_UNKNOWN: &str = "org.freedesktop.DBus.Error.ServiceUnknown";
    pub const NAME_HAS_NO_OWNER: &str = "org.freedesktop.DBus.Error.NameHasNoOwner";
    pub const UNKNOWN_METHOD: &str = "org.freedesktop.DBus.Error.UnknownMethod";
    pub const UNKNOWN_OBJECT: &str = "org.freedesktop.DBus.Error.UnknownObject";
    pub const NO_SUCH_OBJECT: &str = "org.freedesktop.Secret.Error.NoSuchObject";
    pub const IS_LOCKED: &str = "org.freedesktop.Secret.Error.IsLocked";
}

/// What went wrong on the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(
        "no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is unset and there is no $XDG_RUNTIME_DIR/bus"
    )]
    NoAddress,
    #[error("the D-Bus session bus address is not a local socket ({0})")]
    NotLocal(String),
    #[error("cannot connect to the D-Bus session bus {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("the D-Bus session bus refused our authentication")]
    Refused,
    #[error("the D-Bus session bus connection broke: {0}")]
    Io(std::io::Error),
    #[error("no answer from the D-Bus session bus before the deadline")]
    Timeout,
    #[error("a malformed message on the D-Bus session bus: {0}")]
    Malformed(zbus::Error),
    /// An error reply: its D-Bus error name and message.
    #[error("{name}: {message}")]
    Method { name: String, message: String },
}

impl BusError {
    /// The D-Bus error name of an error reply.
    pub fn name(&self) -> Option<&str> {
        match self {
            BusError::Method { name, .. } => Some(name),
            _ => None,
        }
    }

    fn from_io(e: std::io::Error) -> BusError {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => BusError::Timeout,
            _ => BusError::Io(e),
        }
    }
}

impl From<zbus::Error> for BusError {
    fn from(e: zbus::Error) -> Self {
        BusError::Malformed(e)
    }
}

/// The session bus address, as zbus reads it (DBUS_SESSION_BUS_ADDRESS, else
/// `$XDG_RUNTIME_DIR/bus`), as a socket address, with its text for messages.
fn session_address() -> Result<(SocketAddr, String), BusError> {
    use zbus::address::transport::{Transport, UnixSocket};
    let text = std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default();
    let address = zbus::Address::session().map_err(|_| BusError::NoAddress)?;
    let shown = if text.is_empty() {
        address.to_string()
    } else {
        text
    };
    let Transport::Unix(unix) = address.transport() else {
        return Err(BusError::NotLocal(shown));
    };
    let socket = match unix.path() {
        UnixSocket::File(path) => SocketAddr::from_pathname(path),
        UnixSocket::Abstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            use std::os::unix::ffi::OsStrExt;
            SocketAddr::from_abstract_name(name.as_bytes())
        }
        _ => return Err(BusError::NotLocal(shown)),
    };
    let socket = socket.map_err(|source| BusError::Connect {
        address: shown.clone(),
        source,
    })?;
    Ok((socket, shown))
}

/// Whether a session bus is configured at all: an address in the environment, or the
/// socket zbus falls back to.
pub fn configured() -> bool {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty()) {
        return true;
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .is_some_and(|d| std::path::Path::new(&d).join("bus").exists())
}

/// The client end of a session bus connection.
pub struct Bus {
    sock: UnixStream,
    /// Bytes read and not yet taken as messages.
    inbox: Vec<u8>,
    /// Whether the bus's SASL answer ("OK <guid>") has been read.
    authenticated: bool,
    deadline: Deadline,
    /// The bus address as configured, for messages.
    pub address: String,
}

impl Bus {
    /// Connect and send the handshake. Nothing waits for the bus's answer here (as sd-bus
    /// clients do): the first reply read checks it. Inside Flatpak, whose bus proxy has
    /// mishandled pipelined authentication, the answer is awaited before `BEGIN`.
    pub fn connect(deadline: &Deadline) -> Result<Bus, BusError> {
        let (socket, address) = session_address()?;
        // Non-blocking: a bus that has stopped accepting fails at once instead of hanging.
        let sock = mio::net::UnixStream::connect_addr(&socket)
            .map(UnixStream::from)
            .map_err(|source| BusError::Connect {
                address: address.clone(),
                source,
            })?;
        sock.set_nonblocking(false).map_err(BusError::Io)?;
        let mut bus = Bus {
            sock,
            inbox: Vec::with_capacity(4096),
            authenticated: false,
            deadline: deadline.clone(),
            address,
        };
        let hello = Message::method_call("/org/freedesktop/DBus", "Hello")?
            .destination("org.freedesktop.DBus")?
            .interface("org.freedesktop.DBus")?
            .build(&())?;
        // SASL EXTERNAL with our uid, as hex of its decimal digits (as zbus sends it).
        // SAFETY: geteuid cannot fail and touches no memory.
        let uid = unsafe { libc::geteuid() };
        let mut auth = b"\0AUTH EXTERNAL ".to_vec();
        for digit in uid.to_string().bytes() {
            auth.extend_from_slice(format!("{digit:02x}").as_bytes());
        }
        auth.extend_from_slice(b"\r\n");
        let mut rest = b"BEGIN\r\n".to_vec();
        rest.extend_from_slice(hello.data());
        if std::path::Path::new("/.flatpak-info").exists() {
            bus.write(&auth)?;
            bus.read_auth_answer()?;
            bus.write(&rest)?;
        } else {
            auth.extend_from_slice(&rest);
            bus.write(&auth)?;
        }
        Ok(bus)
    }

    /// Send `call` and wait for its reply; an error reply is `BusError::Method`.
    pub fn call(&mut self, call: &Message) -> Result<Message, BusError> {
        self.send(call)?;
        self.reply_to(call)
    }

    /// Write a message to the bus.
    pub fn send(&mut self, call: &Message) -> Result<(), BusError> {
        self.write(call.data())
    }

    /// Wait for the reply to `call`; other messages (the Hello reply, signals) are skipped.
    pub fn reply_to(&mut self, call: &Message) -> Result<Message, BusError> {
        let serial = call.primary_header().serial_num();
        loop {
            let msg = self.next_message()?;
            if msg.header().reply_serial() != Some(serial) {
                continue;
            }
            if msg.message_type() == Type::Error {
                let name = msg
                    .header()
                    .error_name()
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                let message = msg.body().deserialize::<String>().unwrap_or_default();
                return Err(BusError::Method { name, message });
            }
            return Ok(msg);
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), BusError> {
        let left = self.time_left()?;
        self.sock
            .set_write_timeout(Some(left))
            .map_err(BusError::Io)?;
        (&self.sock).write_all(bytes).map_err(BusError::from_io)
    }

    fn time_left(&self) -> Result<std::time::Duration, BusError> {
        let left = self.deadline.remaining();
        if left.is_zero() {
            return Err(BusError::Timeout);
        }
        Ok(left)
    }

    /// Read more bytes from the bus; end of stream is an error.
    fn fill(&mut self) -> Result<(), BusError> {
        let left = self.time_left()?;
        self.sock
            .set_read_timeout(Some(left))
            .map_err(BusError::Io)?;
        let mut chunk = [0u8; 4096];
        let n = (&self.sock).read(&mut chunk).map_err(BusError::from_io)?;
        if n == 0 {
            return Err(BusError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        self.inbox.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn read_auth_answer(&mut self) -> Result<(), BusError> {
        while !self.authenticated {
            if let Some(end) = self.inbox.windows(2).position(|w| w == b"\r\n") {
                if !self.inbox.starts_with(b"OK ") {
                    return Err(BusError::Refused);
                }
                self.inbox.drain(..end + 2);
                self.authenticated = true;
            } else {
                self.fill()?;
            }
        }
        Ok(())
    }

    /// The next message from the bus (after its SASL answer, on the first call).
    fn next_message(&mut self) -> Result<Message, BusError> {
        self.read_auth_answer()?;
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
            self.fill()?;
        }
    }
}

/// The whole size of the message that `buf` starts with, once its fixed header is in:
/// 16 bytes, then the header fields padded to 8, then the body.
fn message_size(buf: &[u8]) -> Result<Option<(usize, Endian)>, BusError> {
    let Some(head) = buf.get(..16) else {
        return Ok(None);
    };
    let endian = match head[0] {
        b'l' => Endian::Little,
        b'B' => Endian::Big,
        _ => return Err(zbus::Error::IncorrectEndian.into()),
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
        return Err(zbus::Error::ExcessData.into());
    }
    Ok(Some((len as usize, endian)))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use proptest::prelude::*;
    use zbus::Message;

    use super::{Bus, BusError, message_size};
    use crate::deadline::Deadline;

    fn search_call() -> Message {
        Message::method_call("/org/freedesktop/secrets", "SearchItems")
            .unwrap()
            .destination("org.freedesktop.secrets")
            .unwrap()
            .build(&("a body long enough to need padding",))
            .unwrap()
    }

    fn bus_on(sock: UnixStream, deadline: Duration) -> Bus {
        Bus {
            sock,
            inbox: Vec::new(),
            authenticated: false,
            deadline: Deadline::after(deadline),
            address: "test".into(),
        }
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
    /// the reply to our call is the one returned, and an error reply is an error with its name.
    #[test]
    fn replies_are_matched_to_their_call_across_partial_reads() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut bus = bus_on(ours, Duration::from_secs(10));
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
        let refusal = Message::error(&second.header(), super::names::UNKNOWN_METHOD)
            .unwrap()
            .build(&("not yet",))
            .unwrap();
        theirs.write_all(refusal.data()).unwrap();
        match bus.reply_to(&second) {
            Err(e) => {
                assert_eq!(e.name(), Some(super::names::UNKNOWN_METHOD));
                assert!(e.to_string().contains("not yet"), "{e}");
            }
            Ok(m) => panic!(
                "expected the error reply, got {:?}",
                m.header().reply_serial()
            ),
        }
    }

    #[test]
    fn a_refused_handshake_is_an_error() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut bus = bus_on(ours, Duration::from_secs(10));
        let call = search_call();
        let reply = Message::method_return(&call.header())
            .unwrap()
            .build(&())
            .unwrap();
        // Even followed by what looks like the reply, a refusal is not an answer.
        theirs.write_all(b"REJECTED EXTERNAL\r\n").unwrap();
        theirs.write_all(reply.data()).unwrap();
        assert!(matches!(bus.reply_to(&call), Err(BusError::Refused)));
    }

    /// A peer that never answers costs at most the deadline, and says so.
    #[test]
    fn a_silent_bus_times_out_at_the_deadline() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let mut bus = bus_on(ours, Duration::from_millis(200));
        let start = std::time::Instant::now();
        assert!(matches!(
            bus.reply_to(&search_call()),
            Err(BusError::Timeout)
        ));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(150), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    proptest! {
        /// Whatever bytes the bus sends after the handshake, reading never panics.
        #[test]
        fn arbitrary_bus_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let (ours, mut theirs) = UnixStream::pair().unwrap();
            let mut bus = bus_on(ours, Duration::from_millis(50));
            let mut stream = b"OK 0123456789abcdef0123456789abcdef\r\n".to_vec();
            stream.extend_from_slice(&bytes);
            theirs.write_all(&stream).unwrap();
            drop(theirs);
            let _ = bus.reply_to(&search_call());
        }
    }
}
