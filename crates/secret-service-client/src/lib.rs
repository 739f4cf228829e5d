//! A small blocking client for the freedesktop Secret Service (GNOME Keyring, KWallet,
//! KeePassXC) on the D-Bus session bus: one thread, no async runtime, every wait bounded by
//! the caller's deadline, and secrets encrypted on the bus (`dh-ietf1024-sha256-aes128-cbc-pkcs7`).
//!
//! It exists because a process that makes three calls and exits pays more for a zbus
//! connection (an executor thread, proxies, property reads, `AddMatch`) than for the calls.
//! zbus still builds and parses every message; the socket, the SASL handshake and the
//! matching of replies are here (`bus`), the calls in `client`, the key exchange and AES in
//! `session`.
//!
//! The API is what a credential store needs and no more: [Client::connect], then
//! [Client::search], [Client::secret] and [Client::secrets], [Client::attributes],
//! [Client::create], [Client::set_secret], [Client::set_attributes] and [Client::delete].
//! Items are created in the default collection. What the items mean (their attributes,
//! labels and secrets) is the caller's business.
//!
//! Linux only: elsewhere the crate is empty.
#![cfg(target_os = "linux")]

mod bus;
mod client;
mod session;

use std::time::{Duration, Instant};

pub use bus::BusError;
pub use client::{Client, Error, Found, newest_first};
pub use session::SessionError;
/// An object path on the bus: an item's, in this API.
pub use zbus::zvariant::OwnedObjectPath;

/// A secret read from the service: its `Debug` prints `[REDACTED]`, and it is wiped from
/// memory when dropped. `ExposeSecret` reads it; `ExposeSecretMut` can move the bytes out
/// into the caller's own wrapper without a copy.
pub type SecretBytes = secrecy::SecretBox<Vec<u8>>;
pub use secrecy::{ExposeSecret, ExposeSecretMut};

/// How long the caller still allows. It is asked afresh before every read and write on the
/// bus, so a deadline that the caller shares with other work, or renews, holds as it stands
/// at each wait. An [Instant] is a fixed deadline; a closure can be anything else.
pub trait TimeLeft {
    /// The time left; zero once the deadline has passed.
    fn time_left(&self) -> Duration;
}

impl TimeLeft for Instant {
    fn time_left(&self) -> Duration {
        self.saturating_duration_since(Instant::now())
    }
}

impl<F: Fn() -> Duration> TimeLeft for F {
    fn time_left(&self) -> Duration {
        self()
    }
}

/// Whether a session bus is configured at all: an address in `DBUS_SESSION_BUS_ADDRESS`,
/// or the socket `$XDG_RUNTIME_DIR/bus` that clients fall back to.
pub fn session_bus_configured() -> bool {
    bus::configured()
}
