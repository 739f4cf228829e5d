//! A blocking D-Bus client connection to the session bus: SASL EXTERNAL, then method calls
//! and their replies, on this one thread. Every read and write waits at most until the
//! deadline. zbus builds and parses the messages; a zbus connection would need an async
//! runtime and a reader task, which cost a process that makes three calls and exits more
//! than the calls themselves.
//!
//! Any peer on the session bus can send us a message, and a signal may carry any reply
//! serial it likes: the bus daemon checks that a method return or error answers a call we
//! made to its sender, but not what a signal claims. So a reply is taken only when it is a
//! method return or an error, carries our call's serial, and comes from the unique name
//! that owns the service's well-known name (asked with `GetNameOwner`, written with the
//! handshake so that its answer costs no round trip), or, for an error, from the bus daemon
//! itself (whose name no client can take). Otherwise a forged `OpenSession` answer would
//! give the forger the key of every secret we send.

use std::io::{Read, Write};
use std::num::NonZeroU32;
use std::os::unix::net::{SocketAddr, UnixStream};

use zbus::Message;
use zbus::message::Type;
use zbus::zvariant::{Endian, serialized};

use crate::TimeLeft;

/// D-Bus error names this client tells apart (the bus daemon's and the Secret Service's).
pub(crate) mod names {
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
    /// The socket is served by another user: their bus, which would see and answer every
    /// call (under `sudo -E`, root's would go to the user whose session it is).
    #[error("the D-Bus session bus {address} is run by uid {uid}, not by us")]
    NotOurs { address: String, uid: u32 },
    #[error("the D-Bus session bus refused our authentication")]
    Refused,
    #[error(
        "the D-Bus session bus answered our authentication with a line longer than {MAX_AUTH_LINE} bytes, which no D-Bus daemon sends"
    )]
    OverlongHandshake,
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

    /// The connection broke, or what answers is not a working D-Bus daemon.
    pub fn is_not_a_bus(&self) -> bool {
        matches!(
            self,
            BusError::Io(_) | BusError::Refused | BusError::OverlongHandshake
        )
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

/// The bus daemon's own name: the sender of its replies, which no client can claim.
const BUS_NAME: &str = "org.freedesktop.DBus";
/// The longest SASL line we read. The bus answers "OK <32 hex digits>"; a peer that sends
/// an endless line fails at once instead of being buffered until the deadline.
pub const MAX_AUTH_LINE: usize = 4096;
/// How many replies that cannot be checked yet (their sender's ownership is still being
/// asked) are kept for one call. On a real bus there is at most one.
const MAX_HELD: usize = 4;

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

/// The uid of the process that listens on the other end of `sock` (`SO_PEERCRED`: the
/// credentials it had when it called `listen`).
fn peer_uid(sock: &UnixStream) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero ucred is valid for getsockopt to fill in.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` describe a buffer of the size SO_PEERCRED writes.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred.uid)
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

/// Who may answer our calls to the service.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    /// `GetNameOwner` is on its way: the serial of that call.
    Asked(NonZeroU32),
    /// The unique name that owned the service's name when the bus last told us.
    Known(String),
    /// Nobody owned it when the bus last told us.
    Nobody,
}

/// The client end of a session bus connection, for calls to one service.
pub struct Bus {
    sock: UnixStream,
    /// Bytes read and not yet taken as messages.
    inbox: Vec<u8>,
    /// How much of `inbox` has been searched for the end of the SASL answer.
    scanned: usize,
    /// Whether the bus's SASL answer ("OK <guid>") has been read.
    authenticated: bool,
    deadline: Box<dyn TimeLeft>,
    /// The well-known name of the service this connection calls.
    service: &'static str,
    owner: Owner,
    /// The bus address as configured, for messages.
    pub address: String,
}

/// `GetNameOwner(name)`, to the bus daemon.
fn get_name_owner(name: &str) -> Result<Message, BusError> {
    Ok(
        Message::method_call("/org/freedesktop/DBus", "GetNameOwner")?
            .destination(BUS_NAME)?
            .interface(BUS_NAME)?
            .build(&(name,))?,
    )
}

/// An error reply as `BusError::Method`, a method return as itself.
fn into_result(msg: Message) -> Result<Message, BusError> {
    if msg.message_type() != Type::Error {
        return Ok(msg);
    }
    let name = msg
        .header()
        .error_name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let message = msg.body().deserialize::<String>().unwrap_or_default();
    Err(BusError::Method { name, message })
}

fn sender(msg: &Message) -> Option<String> {
    msg.header().sender().map(|s| s.to_string())
}

impl Bus {
    /// Connect to the session bus for calls to `service`, and send the handshake. Nothing
    /// waits for the bus's answer here (as sd-bus clients do): the first reply read checks
    /// it. Inside Flatpak, whose bus proxy has mishandled pipelined authentication, the
    /// answer is awaited before `BEGIN`.
    pub fn connect(deadline: Box<dyn TimeLeft>, service: &'static str) -> Result<Bus, BusError> {
        let (socket, address) = session_address()?;
        // Non-blocking: a bus that has stopped accepting fails at once instead of hanging.
        let sock = mio::net::UnixStream::connect_addr(&socket)
            .map(UnixStream::from)
            .map_err(|source| BusError::Connect {
                address: address.clone(),
                source,
            })?;
        sock.set_nonblocking(false).map_err(BusError::Io)?;
        // Nothing is sent to a bus another user runs. The kernel says who listens, whatever
        // the address (a path anywhere, or an abstract name, which has no owner to check).
        let uid = peer_uid(&sock).map_err(BusError::Io)?;
        // SAFETY: geteuid cannot fail and touches no memory.
        if uid != unsafe { libc::geteuid() } {
            return Err(BusError::NotOurs { address, uid });
        }
        Bus::start(sock, deadline, address, service)
    }

    /// Send the handshake on a connected socket: AUTH, BEGIN, `Hello` and the
    /// `GetNameOwner` of `service`, in one write.
    fn start(
        sock: UnixStream,
        deadline: Box<dyn TimeLeft>,
        address: String,
        service: &'static str,
    ) -> Result<Bus, BusError> {
        let hello = Message::method_call("/org/freedesktop/DBus", "Hello")?
            .destination(BUS_NAME)?
            .interface(BUS_NAME)?
            .build(&())?;
        let ask = get_name_owner(service)?;
        let mut bus = Bus {
            sock,
            inbox: Vec::with_capacity(4096),
            scanned: 0,
            authenticated: false,
            deadline,
            service,
            owner: Owner::Asked(ask.primary_header().serial_num()),
            address,
        };
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
        rest.extend_from_slice(ask.data());
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

    /// Wait for the reply to `call`; an error reply is `BusError::Method`. Everything else
    /// is skipped: the Hello reply, signals (whatever reply serial they carry), and replies
    /// from anyone but the service's owner (see the module comment).
    pub fn reply_to(&mut self, call: &Message) -> Result<Message, BusError> {
        let serial = call.primary_header().serial_num();
        let to_bus = call
            .header()
            .destination()
            .is_some_and(|d| d.as_str() == BUS_NAME);
        // Replies whose sender is not known to own the name yet, kept until the bus says.
        let mut held: Vec<Message> = Vec::new();
        let mut asked_again = false;
        loop {
            let msg = self.next_message()?;
            if !matches!(msg.message_type(), Type::MethodReturn | Type::Error) {
                continue;
            }
            let reply_serial = msg.header().reply_serial();
            let from = sender(&msg);
            let from_bus = from.as_deref() == Some(BUS_NAME);
            if let Owner::Asked(asked) = self.owner
                && reply_serial == Some(asked)
                && from_bus
            {
                self.owner = match into_result(msg) {
                    Ok(reply) => match reply.body().deserialize::<String>() {
                        Ok(name) => Owner::Known(name),
                        Err(_) => Owner::Nobody,
                    },
                    // NameHasNoOwner: the call itself gets the bus's own answer
                    // (ServiceUnknown), or starts the service if it is activatable.
                    Err(_) => Owner::Nobody,
                };
                if let Owner::Known(owner) = &self.owner
                    && let Some(at) = held.iter().position(|m| sender(m).as_ref() == Some(owner))
                {
                    return into_result(held.swap_remove(at));
                }
                if !held.is_empty() && !asked_again {
                    asked_again = true;
                    self.ask_owner()?;
                }
                continue;
            }
            if reply_serial != Some(serial) {
                continue;
            }
            // The bus daemon answers calls to itself, and fails calls it cannot deliver
            // (ServiceUnknown, or NoReply when the service dies before answering).
            if from_bus && (to_bus || msg.message_type() == Type::Error) {
                return into_result(msg);
            }
            if to_bus {
                continue;
            }
            if let Owner::Known(owner) = &self.owner
                && from.as_ref() == Some(owner)
            {
                return into_result(msg);
            }
            if held.len() < MAX_HELD {
                held.push(msg);
            }
            // The name may have changed hands since we asked (a service started by this
            // very call, or restarted): ask once more, then only its owner's reply counts.
            if !matches!(self.owner, Owner::Asked(_)) && !asked_again {
                asked_again = true;
                self.ask_owner()?;
            }
        }
    }

    /// Send `GetNameOwner` for the service; `reply_to` reads the answer.
    fn ask_owner(&mut self) -> Result<(), BusError> {
        let ask = get_name_owner(self.service)?;
        self.owner = Owner::Asked(ask.primary_header().serial_num());
        self.send(&ask)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), BusError> {
        let left = self.time_left()?;
        self.sock
            .set_write_timeout(Some(left))
            .map_err(BusError::Io)?;
        (&self.sock).write_all(bytes).map_err(BusError::from_io)
    }

    fn time_left(&self) -> Result<std::time::Duration, BusError> {
        let left = self.deadline.time_left();
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

    /// Read the bus's SASL answer, one line. Each byte is searched once, and a line longer
    /// than `MAX_AUTH_LINE` is an error as soon as it is seen.
    fn read_auth_answer(&mut self) -> Result<(), BusError> {
        while !self.authenticated {
            // From one byte back: the chunk before may have ended between `\r` and `\n`.
            let from = self.scanned.saturating_sub(1);
            let found = self.inbox[from..].windows(2).position(|w| w == b"\r\n");
            match found.map(|at| from + at) {
                Some(end) if end <= MAX_AUTH_LINE => {
                    if !self.inbox.starts_with(b"OK ") {
                        return Err(BusError::Refused);
                    }
                    self.inbox.drain(..end + 2);
                    self.authenticated = true;
                }
                Some(_) => return Err(BusError::OverlongHandshake),
                None if self.inbox.len() > MAX_AUTH_LINE => {
                    return Err(BusError::OverlongHandshake);
                }
                None => {
                    self.scanned = self.inbox.len();
                    self.fill()?;
                }
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
                let msg = unsafe { Message::from_bytes(data) }?;
                check_header_names(&msg)?;
                return Ok(msg);
            }
            self.fill()?;
        }
    }
}

/// Check every name in the header fields as `Message::header` will read it back.
/// `from_bytes` lets some malformed names through (a sender that is not a unique name),
/// and `header()` then panics on them (docs/upstream.md): here they are an error instead.
fn check_header_names(msg: &Message) -> Result<(), BusError> {
    use zbus::names::{BusName, ErrorName, InterfaceName, MemberName, UniqueName};
    use zbus::zvariant::{ObjectPath, Value};
    // The array of fields (its length first) follows the 12 bytes of the primary header.
    let bytes = msg.data().slice(12..);
    let (fields, _): (Vec<(u8, Value<'_>)>, _) = bytes.deserialize().map_err(zbus::Error::from)?;
    for (code, value) in &fields {
        let text = match value {
            Value::Str(s) => s.as_str(),
            Value::ObjectPath(p) => p.as_str(),
            _ => continue,
        };
        // The header field codes of the D-Bus specification ("Header Fields").
        let checked = match code {
            1 => ObjectPath::try_from(text)
                .map(drop)
                .map_err(zbus::Error::from),
            2 => InterfaceName::try_from(text)
                .map(drop)
                .map_err(zbus::Error::from),
            3 => MemberName::try_from(text)
                .map(drop)
                .map_err(zbus::Error::from),
            4 => ErrorName::try_from(text)
                .map(drop)
                .map_err(zbus::Error::from),
            6 => BusName::try_from(text).map(drop).map_err(zbus::Error::from),
            7 => UniqueName::try_from(text)
                .map(drop)
                .map_err(zbus::Error::from),
            _ => Ok(()),
        };
        checked?;
    }
    Ok(())
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
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    use proptest::prelude::*;
    use zbus::Message;

    use super::{BUS_NAME, Bus, BusError, MAX_AUTH_LINE, Owner, message_size, names};

    const SERVICE: &str = "org.freedesktop.secrets";
    /// The unique name that owns `SERVICE` on the test bus.
    const OWNER: &str = ":1.5";
    /// Another peer on the bus.
    const FORGER: &str = ":1.66";
    const SASL_OK: &[u8] = b"OK 0123456789abcdef0123456789abcdef\r\n";

    fn search_call() -> Message {
        Message::method_call("/org/freedesktop/secrets", "SearchItems")
            .unwrap()
            .destination(SERVICE)
            .unwrap()
            .build(&("a body long enough to need padding",))
            .unwrap()
    }

    /// A client bus on `sock` whose handshake is already sent and whose service owner is
    /// already known to be `OWNER`.
    fn bus_on(sock: UnixStream, deadline: Duration) -> Bus {
        Bus {
            sock,
            inbox: Vec::new(),
            scanned: 0,
            authenticated: false,
            deadline: Box::new(Instant::now() + deadline),
            service: SERVICE,
            owner: Owner::Known(OWNER.into()),
            address: "test".into(),
        }
    }

    /// A method return to `call` from `sender`, with `paths` as its body.
    fn search_reply(call: &Message, sender: &str, paths: &[&str]) -> Message {
        Message::method_return(&call.header())
            .unwrap()
            .sender(sender)
            .unwrap()
            .build(&(paths.to_vec(),))
            .unwrap()
    }

    fn paths_of(reply: &Message) -> Vec<String> {
        let (paths,): (Vec<String>,) = reply.body().deserialize().unwrap();
        paths
    }

    /// The bus end of a socket pair: reads what the client wrote, answers as dbus-daemon.
    struct FakeBus {
        sock: UnixStream,
        inbox: Vec<u8>,
    }

    impl FakeBus {
        fn new(sock: UnixStream) -> FakeBus {
            FakeBus {
                sock,
                inbox: Vec::new(),
            }
        }

        fn fill(&mut self) {
            let mut chunk = [0u8; 4096];
            let n = self.sock.read(&mut chunk).unwrap();
            assert!(n > 0, "the client closed the connection");
            self.inbox.extend_from_slice(&chunk[..n]);
        }

        /// One SASL line the client sent, without its `\r\n`.
        fn line(&mut self) -> Vec<u8> {
            loop {
                if let Some(end) = self.inbox.windows(2).position(|w| w == b"\r\n") {
                    let line = self.inbox[..end].to_vec();
                    self.inbox.drain(..end + 2);
                    return line;
                }
                self.fill();
            }
        }

        /// One message the client sent.
        fn message(&mut self) -> Message {
            loop {
                if let Some((len, endian)) = message_size(&self.inbox).unwrap()
                    && self.inbox.len() >= len
                {
                    let bytes: Vec<u8> = self.inbox.drain(..len).collect();
                    let data = zbus::zvariant::serialized::Data::new(
                        bytes,
                        zbus::zvariant::serialized::Context::new_dbus(endian, 0),
                    );
                    // SAFETY: as in `Bus::next_message`; zbus checks the bytes.
                    return unsafe { Message::from_bytes(data) }.unwrap();
                }
                self.fill();
            }
        }

        fn send(&mut self, msg: &Message) {
            self.sock.write_all(msg.data()).unwrap();
        }

        /// Read the client's handshake (AUTH, BEGIN, Hello, GetNameOwner) and check it.
        /// Returns the GetNameOwner call.
        fn read_handshake(&mut self) -> Message {
            assert!(self.line().starts_with(b"\0AUTH EXTERNAL "));
            assert_eq!(self.line(), b"BEGIN");
            let hello = self.message();
            assert_eq!(hello.header().member().unwrap().as_str(), "Hello");
            let ask = self.message();
            self.check_get_name_owner(&ask);
            ask
        }

        fn check_get_name_owner(&self, ask: &Message) {
            assert_eq!(ask.header().member().unwrap().as_str(), "GetNameOwner");
            assert_eq!(ask.header().destination().unwrap().as_str(), BUS_NAME);
            let name: String = ask.body().deserialize().unwrap();
            assert_eq!(name, SERVICE);
        }

        /// The bus daemon's answer to a GetNameOwner call: `owner`, or NameHasNoOwner.
        fn answer_owner(&mut self, ask: &Message, owner: Option<&str>) {
            let reply = match owner {
                Some(owner) => Message::method_return(&ask.header())
                    .unwrap()
                    .sender(BUS_NAME)
                    .unwrap()
                    .build(&(owner,))
                    .unwrap(),
                None => Message::error(&ask.header(), names::NAME_HAS_NO_OWNER)
                    .unwrap()
                    .sender(BUS_NAME)
                    .unwrap()
                    .build(
                        &("Could not get owner of name 'org.freedesktop.secrets': no such name",),
                    )
                    .unwrap(),
            };
            self.send(&reply);
        }
    }

    /// A client that has sent its handshake for real (`Bus::start`), and the bus end.
    fn started(deadline: Duration) -> (Bus, FakeBus) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let bus = Bus::start(
            ours,
            Box::new(Instant::now() + deadline),
            "test".into(),
            SERVICE,
        )
        .unwrap();
        (bus, FakeBus::new(theirs))
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
        let other = Message::signal("/org/freedesktop/DBus", BUS_NAME, "NameAcquired")
            .unwrap()
            .sender(BUS_NAME)
            .unwrap()
            .build(&(":1.7",))
            .unwrap();
        let reply = search_reply(
            &call,
            OWNER,
            &["/org/freedesktop/secrets/collection/login/1"],
        );
        let mut stream = SASL_OK.to_vec();
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
        assert_eq!(
            paths_of(&got),
            ["/org/freedesktop/secrets/collection/login/1"]
        );

        let mut theirs = writer.join().unwrap();
        let second = search_call();
        let refusal = Message::error(&second.header(), names::UNKNOWN_METHOD)
            .unwrap()
            .sender(OWNER)
            .unwrap()
            .build(&("not yet",))
            .unwrap();
        theirs.write_all(refusal.data()).unwrap();
        match bus.reply_to(&second) {
            Err(e) => {
                assert_eq!(e.name(), Some(names::UNKNOWN_METHOD));
                assert!(e.to_string().contains("not yet"), "{e}");
            }
            Ok(m) => panic!(
                "expected the error reply, got {:?}",
                m.header().reply_serial()
            ),
        }
    }

    /// The forgery of the security review: another peer sends a *signal* addressed to us
    /// that carries our call's serial as its reply serial (the bus daemon lets signals
    /// through unchecked), ahead of the service's answer. It is skipped; the real answer
    /// is returned.
    #[test]
    fn a_signal_carrying_our_reply_serial_is_not_a_reply() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut bus = bus_on(ours, Duration::from_secs(10));
        let call = search_call();
        let forged = Message::signal("/", "org.example.Forger", "Forged")
            .unwrap()
            .sender(FORGER)
            .unwrap()
            .reply_serial(Some(call.primary_header().serial_num()))
            .build(&(vec!["/forged"],))
            .unwrap();
        // Even a signal from the owner itself is not a reply.
        let from_owner = Message::signal("/", "org.example.Forger", "Forged")
            .unwrap()
            .sender(OWNER)
            .unwrap()
            .reply_serial(Some(call.primary_header().serial_num()))
            .build(&(vec!["/forged-too"],))
            .unwrap();
        let real = search_reply(&call, OWNER, &["/real"]);
        let mut stream = SASL_OK.to_vec();
        for msg in [&forged, &from_owner, &real] {
            stream.extend_from_slice(msg.data());
        }
        theirs.write_all(&stream).unwrap();
        let got = bus.reply_to(&call).unwrap();
        assert_eq!(paths_of(&got), ["/real"]);
    }

    /// A method return with our serial from a peer that does not own the service's name is
    /// not taken: the bus is asked again who owns the name (it may have changed hands), and
    /// only the owner's answer is returned.
    #[test]
    fn a_method_return_from_another_sender_is_not_accepted() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let mut bus = bus_on(ours, Duration::from_secs(10));
        let call = search_call();
        let wrong = search_reply(&call, FORGER, &["/forged"]);
        let real = search_reply(&call, OWNER, &["/real"]);
        let fake = std::thread::spawn(move || {
            let mut fake = FakeBus::new(theirs);
            fake.sock.write_all(SASL_OK).unwrap();
            fake.send(&wrong);
            let ask = fake.message();
            fake.check_get_name_owner(&ask);
            fake.answer_owner(&ask, Some(OWNER));
            fake.send(&real);
            fake
        });
        let got = bus.reply_to(&call).unwrap();
        assert_eq!(paths_of(&got), ["/real"]);
        drop(fake.join().unwrap());
    }

    /// With only the wrong sender's return, the call is never answered: it runs into the
    /// deadline instead of taking the forgery.
    #[test]
    fn a_lone_method_return_from_another_sender_times_out() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let mut bus = bus_on(ours, Duration::from_millis(300));
        let call = search_call();
        let wrong = search_reply(&call, FORGER, &["/forged"]);
        let fake = std::thread::spawn(move || {
            let mut fake = FakeBus::new(theirs);
            fake.sock.write_all(SASL_OK).unwrap();
            fake.send(&wrong);
            let ask = fake.message();
            fake.answer_owner(&ask, Some(OWNER));
            fake
        });
        match bus.reply_to(&call) {
            Err(BusError::Timeout) => {}
            Err(e) => panic!("expected a timeout, got {e}"),
            Ok(m) => panic!("took a reply from {:?}", m.header().sender()),
        }
        drop(bus);
        drop(fake.join().unwrap());
    }

    /// The owner is asked with the handshake, in the same write (no round trip of its own),
    /// and its answer is awaited before any reply is taken, even one that arrives first.
    #[test]
    fn the_owner_is_asked_with_the_handshake() {
        let (mut bus, mut fake) = started(Duration::from_secs(10));
        let call = search_call();
        bus.send(&call).unwrap();
        let ask = fake.read_handshake();
        let sent = fake.message();
        assert_eq!(
            sent.primary_header().serial_num(),
            call.primary_header().serial_num()
        );
        fake.sock.write_all(SASL_OK).unwrap();
        // Out of order, to show that nothing is taken before the owner is known: the
        // service's reply, the forger's, then the bus's answer.
        fake.send(&search_reply(&call, FORGER, &["/forged"]));
        fake.send(&search_reply(&call, OWNER, &["/real"]));
        fake.answer_owner(&ask, Some(OWNER));
        let got = bus.reply_to(&call).unwrap();
        assert_eq!(paths_of(&got), ["/real"]);
        // Once known, the owner is not asked again.
        let second = search_call();
        bus.send(&second).unwrap();
        fake.send(&search_reply(&second, OWNER, &["/second"]));
        assert_eq!(paths_of(&bus.reply_to(&second).unwrap()), ["/second"]);
        assert_eq!(
            fake.message().primary_header().serial_num(),
            second.primary_header().serial_num()
        );
    }

    /// Nobody owns the name: the bus daemon's own error for the call (ServiceUnknown) is
    /// the answer, as it was before the owner was asked.
    #[test]
    fn without_an_owner_the_bus_daemons_error_is_the_answer() {
        let (mut bus, mut fake) = started(Duration::from_secs(10));
        let call = search_call();
        bus.send(&call).unwrap();
        let ask = fake.read_handshake();
        fake.sock.write_all(SASL_OK).unwrap();
        fake.answer_owner(&ask, None);
        let unknown = Message::error(&call.header(), names::SERVICE_UNKNOWN)
            .unwrap()
            .sender(BUS_NAME)
            .unwrap()
            .build(&("The name org.freedesktop.secrets was not provided by any .service files",))
            .unwrap();
        fake.send(&unknown);
        let e = bus.reply_to(&call).unwrap_err();
        assert_eq!(e.name(), Some(names::SERVICE_UNKNOWN), "{e}");
    }

    /// Nobody owned the name when asked, and the call started the service (D-Bus
    /// activation): its reply is taken once the bus confirms that it now owns the name.
    #[test]
    fn a_service_started_by_the_call_is_confirmed_then_accepted() {
        let (mut bus, mut fake) = started(Duration::from_secs(10));
        let call = search_call();
        bus.send(&call).unwrap();
        let ask = fake.read_handshake();
        fake.message();
        fake.sock.write_all(SASL_OK).unwrap();
        fake.answer_owner(&ask, None);
        fake.send(&search_reply(&call, ":1.9", &["/activated"]));
        let confirm = std::thread::spawn(move || {
            let again = fake.message();
            fake.check_get_name_owner(&again);
            fake.answer_owner(&again, Some(":1.9"));
            fake
        });
        assert_eq!(paths_of(&bus.reply_to(&call).unwrap()), ["/activated"]);
        drop(confirm.join().unwrap());
    }

    /// The same, with the service's reply read before the bus's first answer: it is held,
    /// and taken once the bus, asked again, names its sender.
    #[test]
    fn a_reply_held_while_nobody_owned_the_name_is_confirmed() {
        let (mut bus, mut fake) = started(Duration::from_secs(10));
        let call = search_call();
        bus.send(&call).unwrap();
        let ask = fake.read_handshake();
        fake.message();
        fake.sock.write_all(SASL_OK).unwrap();
        fake.send(&search_reply(&call, ":1.9", &["/activated"]));
        fake.answer_owner(&ask, None);
        let confirm = std::thread::spawn(move || {
            let again = fake.message();
            fake.check_get_name_owner(&again);
            fake.answer_owner(&again, Some(":1.9"));
            fake
        });
        assert_eq!(paths_of(&bus.reply_to(&call).unwrap()), ["/activated"]);
        drop(confirm.join().unwrap());
    }

    /// A reply to a call to the bus daemon counts only from the bus daemon.
    #[test]
    fn replies_to_bus_calls_come_from_the_bus_daemon() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut bus = bus_on(ours, Duration::from_secs(10));
        let call = Message::method_call("/org/freedesktop/DBus", "GetId")
            .unwrap()
            .destination(BUS_NAME)
            .unwrap()
            .interface(BUS_NAME)
            .unwrap()
            .build(&())
            .unwrap();
        let answer = |sender: &str, id: &str| {
            Message::method_return(&call.header())
                .unwrap()
                .sender(sender)
                .unwrap()
                .build(&(id,))
                .unwrap()
        };
        let mut stream = SASL_OK.to_vec();
        stream.extend_from_slice(answer(OWNER, "from-the-service").data());
        stream.extend_from_slice(answer(BUS_NAME, "from-the-bus").data());
        theirs.write_all(&stream).unwrap();
        let got: String = bus.reply_to(&call).unwrap().body().deserialize().unwrap();
        assert_eq!(got, "from-the-bus");
    }

    #[test]
    fn a_refused_handshake_is_an_error() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut bus = bus_on(ours, Duration::from_secs(10));
        let call = search_call();
        let reply = search_reply(&call, OWNER, &[]);
        // Even followed by what looks like the reply, a refusal is not an answer.
        theirs.write_all(b"REJECTED EXTERNAL\r\n").unwrap();
        theirs.write_all(reply.data()).unwrap();
        assert!(matches!(bus.reply_to(&call), Err(BusError::Refused)));
    }

    /// The end of the SASL answer may arrive split between two reads.
    #[test]
    fn a_handshake_line_split_between_reads_is_read() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut bus = bus_on(ours, Duration::from_secs(10));
        let call = search_call();
        let reply = search_reply(&call, OWNER, &["/split"]);
        let writer = std::thread::spawn(move || {
            theirs.write_all(&SASL_OK[..SASL_OK.len() - 1]).unwrap();
            // Give the client a chance to read the part before `\n` on its own.
            std::thread::sleep(Duration::from_millis(50));
            theirs.write_all(b"\n").unwrap();
            theirs.write_all(reply.data()).unwrap();
            theirs
        });
        assert_eq!(paths_of(&bus.reply_to(&call).unwrap()), ["/split"]);
        drop(writer.join().unwrap());
    }

    /// A peer that sends an endless line instead of the SASL answer fails the call as soon
    /// as the line is longer than any bus sends, long before the deadline.
    #[test]
    fn an_endless_handshake_line_fails_at_once() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let deadline = Duration::from_secs(10);
        let mut bus = bus_on(ours, deadline);
        let writer = std::thread::spawn(move || {
            let chunk = vec![b'A'; 64 << 10];
            // Until the client hangs up.
            while theirs.write_all(&chunk).is_ok() {}
        });
        let start = Instant::now();
        let got = bus.reply_to(&search_call());
        let took = start.elapsed();
        assert!(
            matches!(got, Err(BusError::OverlongHandshake)),
            "expected the overlong-line error, got {:?}",
            got.map(|m| m.header().reply_serial())
        );
        assert!(
            took < deadline / 2,
            "took {took:?} of a {deadline:?} deadline"
        );
        let line = BusError::OverlongHandshake.to_string();
        assert!(
            line.contains(&MAX_AUTH_LINE.to_string()) && !line.contains('\n'),
            "{line}"
        );
        drop(bus);
        writer.join().unwrap();
    }

    /// zbus parses a sender that is no unique name, and would panic when the header is read
    /// (our release build aborts on a panic): such a message is a malformed-message error.
    #[test]
    fn a_sender_that_is_no_unique_name_is_an_error_not_a_panic() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut bus = bus_on(ours, Duration::from_secs(10));
        let call = search_call();
        let mut reply = search_reply(&call, OWNER, &["/real"]).data().to_vec();
        // ":1.5" becomes "x1.5": same length, so every offset stays right.
        let at = reply
            .windows(4)
            .position(|w| w == OWNER.as_bytes())
            .unwrap();
        reply[at] = b'x';
        let mut stream = SASL_OK.to_vec();
        stream.extend_from_slice(&reply);
        theirs.write_all(&stream).unwrap();
        match bus.reply_to(&call) {
            Err(BusError::Malformed(e)) => assert!(e.to_string().contains("unique name"), "{e}"),
            Err(e) => panic!("expected a malformed message, got {e}"),
            Ok(m) => panic!("took {:?}", m.header().reply_serial()),
        }
    }

    /// The caller's time left is asked before each wait, not fixed at connect: a deadline
    /// that has run out fails the call at once, and once the caller renews it the same
    /// connection works again.
    #[test]
    fn the_time_left_is_asked_afresh_before_each_wait() {
        use std::cell::Cell;
        use std::rc::Rc;
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let left = Rc::new(Cell::new(Duration::ZERO));
        let mut bus = bus_on(ours, Duration::ZERO);
        bus.deadline = Box::new({
            let left = left.clone();
            move || left.get()
        });
        let call = search_call();
        theirs.write_all(SASL_OK).unwrap();
        assert!(matches!(bus.reply_to(&call), Err(BusError::Timeout)));
        left.set(Duration::from_secs(10));
        theirs
            .write_all(search_reply(&call, OWNER, &["/renewed"]).data())
            .unwrap();
        assert_eq!(paths_of(&bus.reply_to(&call).unwrap()), ["/renewed"]);
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
            let mut stream = SASL_OK.to_vec();
            stream.extend_from_slice(&bytes);
            theirs.write_all(&stream).unwrap();
            drop(theirs);
            let _ = bus.reply_to(&search_call());
        }
    }
}
