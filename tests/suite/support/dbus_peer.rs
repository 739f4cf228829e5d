//! A raw peer on a test's private session bus, for tests that play another client of the
//! bus (an attacker): its own SASL handshake on its own socket, messages built and parsed by
//! zbus, and nothing between it and the bus daemon. It can become a monitor (the private
//! bus's policy allows eavesdropping) to see every message, or send whatever it likes.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use zbus::Message;
use zbus::zvariant::{Endian, serialized};

const BUS_NAME: &str = "org.freedesktop.DBus";

pub struct Peer {
    sock: UnixStream,
    inbox: Vec<u8>,
    /// The unique name the bus gave this connection.
    pub unique_name: String,
}

/// A call to the bus daemon itself.
fn bus_call(member: &'static str) -> zbus::message::Builder<'static> {
    Message::method_call("/org/freedesktop/DBus", member)
        .unwrap()
        .destination(BUS_NAME)
        .unwrap()
}

impl Peer {
    /// Connect to `address` (`unix:path=...`, as a private dbus-daemon prints it),
    /// authenticate and say Hello.
    pub fn connect(address: &str) -> Peer {
        let path = address
            .strip_prefix("unix:path=")
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_else(|| panic!("not a unix:path= bus address: {address}"));
        let sock = UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {path}: {e}"));
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut peer = Peer {
            sock,
            inbox: Vec::new(),
            unique_name: String::new(),
        };
        // SAFETY: geteuid cannot fail and touches no memory.
        let uid = unsafe { libc::geteuid() };
        let hex: String = uid
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        peer.sock
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())
            .unwrap();
        let answer = peer.line();
        assert!(answer.starts_with("OK "), "the bus refused us: {answer:?}");
        peer.sock.write_all(b"BEGIN\r\n").unwrap();
        let hello = bus_call("Hello")
            .interface(BUS_NAME)
            .unwrap()
            .build(&())
            .unwrap();
        let reply = peer.call(&hello);
        peer.unique_name = reply.body().deserialize().unwrap();
        peer
    }

    /// Connect and become a monitor of every message on the bus.
    pub fn monitor(address: &str) -> Peer {
        let mut peer = Peer::connect(address);
        let become_monitor = bus_call("BecomeMonitor")
            .interface("org.freedesktop.DBus.Monitoring")
            .unwrap()
            .build(&(Vec::<&str>::new(), 0u32))
            .unwrap();
        peer.call(&become_monitor);
        peer
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 16 << 10];
        let n = self.sock.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.inbox.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(end) = self.inbox.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.inbox[..end]).into_owned();
                self.inbox.drain(..end + 2);
                return line;
            }
            self.fill().expect("read the SASL answer");
        }
    }

    /// The next message, or `None` when none arrives within `wait`.
    pub fn next_within(&mut self, wait: Duration) -> Option<Message> {
        self.sock.set_read_timeout(Some(wait)).unwrap();
        let msg = loop {
            if let Some(len) = message_len(&self.inbox)
                && self.inbox.len() >= len
            {
                let endian = if self.inbox[0] == b'B' {
                    Endian::Big
                } else {
                    Endian::Little
                };
                let bytes: Vec<u8> = self.inbox.drain(..len).collect();
                let data = serialized::Data::new(bytes, serialized::Context::new_dbus(endian, 0));
                // SAFETY: `from_bytes` is unsafe only because the bytes may be malformed;
                // zbus checks them. They come from the bus daemon.
                break Some(unsafe { Message::from_bytes(data) }.expect("a valid message"));
            }
            match self.fill() {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break None;
                }
                Err(e) => panic!("the bus connection broke: {e}"),
            }
        };
        self.sock
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        msg
    }

    pub fn send(&mut self, msg: &Message) {
        self.sock.write_all(msg.data()).unwrap();
    }

    /// Send a call and wait for its reply (other messages are dropped); an error reply
    /// fails the test.
    pub fn call(&mut self, msg: &Message) -> Message {
        self.send(msg);
        let serial = msg.primary_header().serial_num();
        loop {
            let reply = self
                .next_within(Duration::from_secs(20))
                .expect("no reply from the bus within 20 s");
            if reply.header().reply_serial() != Some(serial) {
                continue;
            }
            assert_ne!(
                reply.message_type(),
                zbus::message::Type::Error,
                "the call failed: {:?}",
                reply.header().error_name()
            );
            return reply;
        }
    }

    /// A round trip to the bus daemon: everything this peer sent before has been routed
    /// by the time it returns (the daemon handles a connection's messages in order).
    pub fn sync(&mut self) {
        let get_id = bus_call("GetId")
            .interface(BUS_NAME)
            .unwrap()
            .build(&())
            .unwrap();
        self.call(&get_id);
    }
}

/// The whole length of the message at the start of `buf`, once its fixed header is in:
/// 16 bytes, the header fields padded to 8, then the body.
fn message_len(buf: &[u8]) -> Option<usize> {
    let head = buf.get(..16)?;
    let field = |at: usize| {
        let bytes = [head[at], head[at + 1], head[at + 2], head[at + 3]];
        if head[0] == b'B' {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        }
    };
    Some((16 + field(12) as usize).next_multiple_of(8) + field(4) as usize)
}
