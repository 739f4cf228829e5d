//! Random, corrupted and truncated bus messages through the client's real reader, on a real
//! socket: a fake bus accepts the client's connection, reads its handshake and its call, and
//! answers with a stream built from real replies (right and wrong serials and senders,
//! signals, errors, headers and arrays that claim any length), then cut short anywhere and
//! with bytes flipped, then hangs up.
//!
//! Whatever the stream, the call returns (an answer or an error) and never panics, and no
//! single allocation made while the client reads is larger than [CAP], whatever sizes the
//! messages claim (up to D-Bus's 128 MiB and beyond). A counting global allocator, armed on
//! the calling thread only for the call, proves the second.
#![cfg(target_os = "linux")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::num::NonZeroU32;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use secret_service_client::{BusError, Client, Error};
use zbus::Message;
use zbus::zvariant::{Endian, OwnedObjectPath, serialized};

/// The largest allocation the reader may make while reading this test's streams, which are
/// at most a few KiB: its own buffer and a copy of one message, never what a header claims.
const CAP: usize = 64 << 10;

/// The system allocator, noting the largest single request of a thread while it is armed.
struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: a thread being torn down has no locals left, and is never armed.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            LARGEST.with(|l| l.set(l.get().max(size)));
        }
    });
}

// SAFETY: every call is passed on unchanged to the system allocator; the thread-locals are
// const-initialised `Cell`s without destructors, so touching them never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Run `f` with the allocator armed on this thread; the largest allocation it made.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    ARMED.with(|a| a.set(true));
    let out = f();
    ARMED.with(|a| a.set(false));
    (out, LARGEST.with(|l| l.get()))
}

const BUS: &str = "org.freedesktop.DBus";
const OWNER: &str = ":1.5";
const SASL_OK: &[u8] = b"OK 0123456789abcdef0123456789abcdef\r\n";

/// The one fake bus of this test binary: a listening socket (abstract, so nothing is left
/// on disk) that the session bus address points at, set before any client connects.
fn listener() -> &'static UnixListener {
    static LISTENER: OnceLock<UnixListener> = OnceLock::new();
    LISTENER.get_or_init(|| {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("secret-service-client-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixListener::bind_addr(&addr).unwrap();
        // SAFETY: set once, under the OnceLock, before any client of this test binary reads
        // it; nothing else in this binary reads or writes the environment.
        unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", format!("unix:abstract={name}")) };
        listener
    })
}

/// One connection at a time: each call accepts the connection it just made.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Read the bus end of a connection: the SASL lines, then whole messages.
struct Peer {
    sock: UnixStream,
    inbox: Vec<u8>,
}

impl Peer {
    fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self.sock.read(&mut chunk).unwrap();
        assert!(n > 0, "the client hung up during its handshake");
        self.inbox.extend_from_slice(&chunk[..n]);
    }

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

    /// One message the client sent (the client's messages are well formed).
    fn message(&mut self) -> Message {
        loop {
            if self.inbox.len() >= 16 {
                let field = |at: usize| {
                    u32::from_le_bytes(self.inbox[at..at + 4].try_into().unwrap()) as usize
                };
                assert_eq!(self.inbox[0], b'l', "the client writes little-endian");
                let len = (16 + field(12)).next_multiple_of(8) + field(4);
                if self.inbox.len() >= len {
                    let bytes: Vec<u8> = self.inbox.drain(..len).collect();
                    let data = serialized::Data::new(
                        bytes,
                        serialized::Context::new_dbus(Endian::Little, 0),
                    );
                    // SAFETY: `from_bytes` checks the bytes; they are the client's own message.
                    return unsafe { Message::from_bytes(data) }.unwrap();
                }
            }
            self.fill();
        }
    }
}

/// The serials the client used: its `GetNameOwner` and its call.
struct Serials {
    ask: Message,
    call: Message,
}

/// One piece of what the fake bus sends.
#[derive(Debug, Clone)]
enum Piece {
    /// The bus daemon's answer to `GetNameOwner`: this owner, or NameHasNoOwner.
    Owner(Option<String>),
    /// A method return to the call, from `sender`, listing `paths` (unlocked, locked).
    Reply {
        sender: String,
        unlocked: Vec<String>,
        locked: Vec<String>,
        serial_ok: bool,
    },
    /// An error reply to the call.
    Error {
        sender: String,
        name: String,
        text: String,
    },
    /// A signal that carries the call's serial as its reply serial.
    Signal {
        sender: String,
    },
    /// A method return whose fixed header claims these lengths (fields, body), with the
    /// bytes of a real message after them.
    Claims {
        fields: u32,
        body: u32,
    },
    /// A method return whose body's first array claims this many bytes.
    ArrayClaims(u32),
    Garbage(Vec<u8>),
}

fn path_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9_]{1,8}", 1..4).prop_map(|parts| format!("/{}", parts.join("/")))
}

fn sender_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(OWNER.to_string()),
        1 => Just(BUS.to_string()),
        1 => Just(":1.66".to_string()),
    ]
}

fn piece_strategy() -> impl Strategy<Value = Piece> {
    prop_oneof![
        3 => prop::option::weighted(0.9, Just(OWNER.to_string())).prop_map(Piece::Owner),
        4 => (
            sender_strategy(),
            prop::collection::vec(path_strategy(), 0..6),
            prop::collection::vec(path_strategy(), 0..3),
            prop::bool::weighted(0.8),
        )
            .prop_map(|(sender, unlocked, locked, serial_ok)| Piece::Reply {
                sender,
                unlocked,
                locked,
                serial_ok,
            }),
        1 => (
            sender_strategy(),
            prop_oneof![
                Just("org.freedesktop.DBus.Error.UnknownMethod".to_string()),
                Just("org.freedesktop.Secret.Error.IsLocked".to_string()),
                Just("org.freedesktop.DBus.Error.ServiceUnknown".to_string()),
                "[a-z]{1,6}\\.[a-z]{1,6}",
            ],
            "[ -~]{0,40}",
        )
            .prop_map(|(sender, name, text)| Piece::Error { sender, name, text }),
        1 => sender_strategy().prop_map(|sender| Piece::Signal { sender }),
        1 => (any::<u32>(), any::<u32>()).prop_map(|(fields, body)| Piece::Claims { fields, body }),
        1 => prop_oneof![any::<u32>(), (1u32 << 20)..(128u32 << 20)].prop_map(Piece::ArrayClaims),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Piece::Garbage),
    ]
}

fn search_reply(
    serials: &Serials,
    sender: &str,
    unlocked: &[String],
    locked: &[String],
    serial_ok: bool,
) -> Message {
    let paths = |p: &[String]| -> Vec<OwnedObjectPath> {
        p.iter()
            .map(|p| OwnedObjectPath::try_from(p.clone()).unwrap())
            .collect()
    };
    let mut reply = Message::method_return(&serials.call.header())
        .unwrap()
        .sender(sender)
        .unwrap();
    if !serial_ok {
        let other = serials
            .call
            .primary_header()
            .serial_num()
            .get()
            .wrapping_add(1)
            .max(1);
        reply = reply.reply_serial(NonZeroU32::new(other));
    }
    reply.build(&(paths(unlocked), paths(locked))).unwrap()
}

fn bytes_of(piece: &Piece, serials: &Serials) -> Vec<u8> {
    match piece {
        Piece::Owner(Some(owner)) => Message::method_return(&serials.ask.header())
            .unwrap()
            .sender(BUS)
            .unwrap()
            .build(&(owner.as_str(),))
            .unwrap()
            .data()
            .to_vec(),
        Piece::Owner(None) => Message::error(
            &serials.ask.header(),
            "org.freedesktop.DBus.Error.NameHasNoOwner",
        )
        .unwrap()
        .sender(BUS)
        .unwrap()
        .build(&("no such name",))
        .unwrap()
        .data()
        .to_vec(),
        Piece::Reply {
            sender,
            unlocked,
            locked,
            serial_ok,
        } => search_reply(serials, sender, unlocked, locked, *serial_ok)
            .data()
            .to_vec(),
        Piece::Error { sender, name, text } => {
            Message::error(&serials.call.header(), name.as_str())
                .unwrap()
                .sender(sender.as_str())
                .unwrap()
                .build(&(text.as_str(),))
                .unwrap()
                .data()
                .to_vec()
        }
        Piece::Signal { sender } => Message::signal("/", "org.example.Forger", "Forged")
            .unwrap()
            .sender(sender.as_str())
            .unwrap()
            .reply_serial(Some(serials.call.primary_header().serial_num()))
            .build(&(vec!["/forged"],))
            .unwrap()
            .data()
            .to_vec(),
        Piece::Claims { fields, body } => {
            let mut bytes = search_reply(serials, OWNER, &["/a".into()], &[], true)
                .data()
                .to_vec();
            bytes[4..8].copy_from_slice(&body.to_le_bytes());
            bytes[12..16].copy_from_slice(&fields.to_le_bytes());
            bytes
        }
        Piece::ArrayClaims(claim) => {
            let msg = search_reply(serials, OWNER, &["/a/b".into(), "/c".into()], &[], true);
            let mut bytes = msg.data().to_vec();
            // The body starts after the header fields, padded to 8; its first u32 is the
            // byte length of the first array.
            let fields = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
            let body = (16 + fields).next_multiple_of(8);
            bytes[body..body + 4].copy_from_slice(&claim.to_le_bytes());
            bytes
        }
        Piece::Garbage(bytes) => bytes.clone(),
    }
}

/// What the fake bus does to the stream after building it.
#[derive(Debug, Clone)]
struct Damage {
    /// Keep this fraction of the stream (1.0: all of it).
    keep: f64,
    /// (position as a fraction of the stream, xor mask) for each flipped byte.
    flips: Vec<(f64, u8)>,
    /// Whether the SASL answer is the bus's "OK" line (else the stream starts with the pieces).
    sasl_ok: bool,
}

fn damage_strategy() -> impl Strategy<Value = Damage> {
    (
        prop_oneof![1 => Just(1.0), 2 => 0.0..1.0f64],
        prop::collection::vec((0.0..1.0f64, 1..=255u8), 0..4),
        prop::bool::weighted(0.95),
    )
        .prop_map(|(keep, flips, sasl_ok)| Damage {
            keep,
            flips,
            sasl_ok,
        })
}

/// One connection: the client searches, the fake bus answers with `pieces` after `damage`,
/// then hangs up. The call's outcome and the largest allocation it made.
fn one_call(pieces: Vec<Piece>, damage: Damage) -> (Result<usize, Error>, usize) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let deadline = Instant::now() + Duration::from_secs(10);
    let listener = listener();
    let mut client = Client::connect(deadline).expect("connect to the fake bus");
    let (sock, _) = listener.accept().unwrap();
    let fake = std::thread::spawn(move || {
        let mut peer = Peer {
            sock,
            inbox: Vec::new(),
        };
        assert!(peer.line().starts_with(b"\0AUTH EXTERNAL "));
        assert_eq!(peer.line(), b"BEGIN");
        let _hello = peer.message();
        let ask = peer.message();
        let call = peer.message();
        let serials = Serials { ask, call };
        let mut stream = if damage.sasl_ok {
            SASL_OK.to_vec()
        } else {
            Vec::new()
        };
        for piece in &pieces {
            stream.extend_from_slice(&bytes_of(piece, &serials));
        }
        let keep = ((stream.len() as f64) * damage.keep) as usize;
        stream.truncate(keep);
        for (at, mask) in &damage.flips {
            if !stream.is_empty() {
                let i = ((stream.len() as f64) * at) as usize % stream.len();
                stream[i] ^= mask;
            }
        }
        // The client may hang up first (a refused handshake); that is not the fake's failure.
        let _ = peer.sock.write_all(&stream);
    });
    let attributes = BTreeMap::from([("service", "fuzz")]);
    let (found, largest) = largest_allocation(|| client.search(&attributes));
    drop(client);
    fake.join().expect("the fake bus");
    (found.map(|f| f.unlocked.len() + f.locked.len()), largest)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn damaged_streams_never_panic_or_allocate_beyond_the_cap(
        pieces in prop::collection::vec(piece_strategy(), 0..8),
        damage in damage_strategy(),
    ) {
        let (outcome, largest) = one_call(pieces, damage);
        prop_assert!(largest <= CAP, "an allocation of {largest} bytes while reading ({outcome:?})");
        // A deadline of 10 s and a peer that hangs up: never a timeout.
        prop_assert!(!matches!(outcome, Err(Error::Bus(BusError::Timeout))), "{outcome:?}");
    }
}

/// The stream the property's generator makes most rarely, on its own: a message header
/// that claims the largest body D-Bus allows, then a hang-up. The claim is refused or
/// waited for, never allocated.
#[test]
fn a_header_claiming_the_largest_message_allocates_nothing_like_it() {
    let (outcome, largest) = one_call(
        vec![
            Piece::Owner(Some(OWNER.into())),
            Piece::Claims {
                fields: 64,
                body: (128 << 20) - 1024,
            },
        ],
        Damage {
            keep: 1.0,
            flips: Vec::new(),
            sasl_ok: true,
        },
    );
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(largest <= CAP, "an allocation of {largest} bytes");
}

/// The allocator does see the reader: an intact answer of about 15 KiB (300 item paths)
/// is held whole in one buffer while it is parsed, and that buffer is counted.
#[test]
fn the_counting_allocator_sees_the_reader() {
    let paths: Vec<String> = (0..300)
        .map(|i| format!("/org/freedesktop/secrets/collection/login/{i}"))
        .collect();
    let (outcome, largest) = one_call(
        vec![
            Piece::Owner(Some(OWNER.into())),
            Piece::Reply {
                sender: OWNER.into(),
                unlocked: paths,
                locked: Vec::new(),
                serial_ok: true,
            },
        ],
        Damage {
            keep: 1.0,
            flips: Vec::new(),
            sasl_ok: true,
        },
    );
    assert_eq!(outcome.unwrap(), 300);
    assert!((12 << 10..=CAP).contains(&largest), "{largest}");
}
