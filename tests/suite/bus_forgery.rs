//! A forged Secret Service answer on the real session bus.
//!
//! Any client of the session bus can send a signal to the helper's unique name that carries
//! the serial of the helper's `OpenSession` call as its reply serial, with the forger's own
//! Diffie-Hellman public key in the body: the bus daemon checks the sender of method returns
//! and errors, never what a signal claims. A helper that took the signal for the answer
//! would encrypt the next secret it sends (`CreateItem`) for the forger.
//!
//! Here a forger on the private bus watches as a monitor, and answers the helper's
//! `OpenSession` that way the moment it sees it. To win the race against gnome-keyring it
//! freezes the daemon (SIGSTOP) whenever the daemon has answered the helper, lets it go
//! (SIGCONT) when the helper's next call is not `OpenSession`, and when it is, thaws it only
//! after the bus has routed the forgery. Whether the forgery reached the helper before the
//! real answer is read off the monitor (which sees messages in the order the bus routes
//! them); runs where it did not are retried. The forger then tries to decrypt every secret
//! the helper sends. `store` must still store exactly the secret, and the forger must read
//! nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, U256, U1024};
use zbus::Message;
use zbus::message::Type;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value, as_value};

use crate::support::dbus_peer::Peer;
use crate::support::harness::{assert_get, store};
use crate::support::keyring::KeyringSession;
use crate::support::output::describe;

include!("../../crates/secret-service-client/src/dh_group.rs");

/// Runs of `store` until one where the forgery reached the helper first.
const MAX_RUNS: usize = 10;

/// The forger's half of the key exchange.
struct ForgerKeys {
    private: U256,
    public: Vec<u8>,
}

fn params() -> FixedMontyParams<{ U1024::LIMBS }> {
    FixedMontyParams::new_vartime(Odd::new(U1024::from_be_hex(PRIME_HEX)).unwrap())
}

impl ForgerKeys {
    fn generate() -> ForgerKeys {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).unwrap();
        let private = U256::from_be_slice(&bytes);
        let public = FixedMontyForm::new(&U1024::from_u8(2), &params())
            .pow(&private)
            .retrieve()
            .to_be_bytes();
        let first = public.iter().position(|&b| b != 0).unwrap();
        ForgerKeys {
            private,
            public: public[first..].to_vec(),
        }
    }

    /// The AES key the helper derives if it takes our public key for the service's
    /// (Secret Service API: HKDF-SHA256 of the shared secret, no salt, no info).
    fn shared_key(&self, helper_public: &[u8]) -> [u8; 16] {
        let mut padded = [0u8; 128];
        padded[128 - helper_public.len()..].copy_from_slice(helper_public);
        let shared = FixedMontyForm::new(&U1024::from_be_slice(&padded), &params())
            .pow(&self.private)
            .retrieve()
            .to_be_bytes();
        let (_, hk) = hkdf::Hkdf::<sha2::Sha256>::extract(None, &shared);
        let mut key = [0u8; 16];
        hk.expand(&[], &mut key).unwrap();
        key
    }
}

fn decrypt(key: &[u8; 16], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    use aes::cipher::block_padding::Pkcs7;
    use aes::cipher::{BlockModeDecrypt, KeyIvInit};
    cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
        .ok()?
        .decrypt_padded_vec::<Pkcs7>(data)
        .ok()
}

/// A secret as the Secret Service transfers it: session, IV, ciphertext, content type.
type WireSecret = (OwnedObjectPath, Vec<u8>, Vec<u8>, String);

/// What the forger saw and did during one `store`.
#[derive(Default)]
struct Run {
    /// The helper's unique name and the serial of its `OpenSession`, once seen.
    open_session: Option<(String, u32)>,
    /// Whether the forgery reached the helper before gnome-keyring's answer.
    forgery_first: Option<bool>,
    /// Secrets the helper sent, as far as the forger could decrypt them.
    decrypted: Vec<Vec<u8>>,
    /// How many secrets the helper sent.
    secrets_seen: usize,
}

fn member(msg: &Message) -> String {
    msg.header()
        .member()
        .map(|m| m.to_string())
        .unwrap_or_default()
}

fn sender(msg: &Message) -> String {
    msg.header()
        .sender()
        .map(|m| m.to_string())
        .unwrap_or_default()
}

/// Watch the bus and forge, until `done`.
fn forge(
    session: &KeyringSession,
    monitor: &mut Peer,
    forger: &mut Peer,
    keys: &ForgerKeys,
    done: &AtomicBool,
) -> Run {
    let mut run = Run::default();
    // gnome-keyring's unique name (the sender of its answers), and the helper's.
    let mut keyring: Option<String> = None;
    let mut helper: Option<String> = None;
    let mut frozen = false;
    let mut key: Option<[u8; 16]> = None;
    let thaw = |frozen: &mut bool| {
        if *frozen {
            session.continue_keyring_daemon();
            *frozen = false;
        }
    };
    while !done.load(Ordering::SeqCst) {
        let Some(msg) = monitor.next_within(Duration::from_millis(50)) else {
            continue;
        };
        let header = msg.header();
        let destination = header.destination().map(|d| d.to_string());
        match msg.message_type() {
            Type::MethodCall
                if destination.as_deref() == Some("org.freedesktop.secrets")
                    && sender(&msg) != forger.unique_name =>
            {
                helper.get_or_insert_with(|| sender(&msg));
                match member(&msg).as_str() {
                    "OpenSession" if run.open_session.is_none() => {
                        let body = msg.body();
                        let (_, public): (String, as_value::Deserialize<Vec<u8>>) =
                            body.deserialize().unwrap();
                        key = Some(keys.shared_key(&public.0));
                        let serial = msg.primary_header().serial_num();
                        run.open_session = Some((sender(&msg), serial.get()));
                        let forged = Message::signal(
                            "/org/freedesktop/secrets",
                            "org.freedesktop.Secret.Service",
                            "OpenSession",
                        )
                        .unwrap()
                        .destination(sender(&msg))
                        .unwrap()
                        .reply_serial(Some(serial))
                        .build(&(
                            Value::from(keys.public.clone()),
                            ObjectPath::try_from("/org/freedesktop/secrets/session/forged")
                                .unwrap(),
                        ))
                        .unwrap();
                        forger.send(&forged);
                        forger.sync();
                        thaw(&mut frozen);
                    }
                    "CreateItem" | "SetSecret" => {
                        let secret: WireSecret = if member(&msg) == "CreateItem" {
                            let (_, secret, _): (HashMap<String, OwnedValue>, WireSecret, bool) =
                                msg.body().deserialize().unwrap();
                            secret
                        } else {
                            let (secret,): (WireSecret,) = msg.body().deserialize().unwrap();
                            secret
                        };
                        run.secrets_seen += 1;
                        if let Some(plain) =
                            key.as_ref().and_then(|k| decrypt(k, &secret.1, &secret.2))
                        {
                            run.decrypted.push(plain);
                        }
                        thaw(&mut frozen);
                    }
                    _ => thaw(&mut frozen),
                }
            }
            Type::MethodReturn | Type::Error | Type::Signal
                if destination.is_some() && destination == helper =>
            {
                if let Some((_, serial)) = &run.open_session
                    && header.reply_serial().map(|s| s.get()) == Some(*serial)
                    && run.forgery_first.is_none()
                {
                    run.forgery_first = Some(sender(&msg) == forger.unique_name);
                }
                if msg.message_type() == Type::MethodReturn
                    && sender(&msg) != forger.unique_name
                    && sender(&msg) != "org.freedesktop.DBus"
                {
                    keyring.get_or_insert_with(|| sender(&msg));
                    // The daemon has answered the helper: hold it until the helper's next
                    // call shows whether that is the one to forge the answer of.
                    if run.open_session.is_none() && !frozen {
                        session.stop_keyring_daemon();
                        frozen = true;
                    }
                }
            }
            _ => {}
        }
    }
    thaw(&mut frozen);
    run
}

#[test]
fn a_forged_open_session_answer_gets_no_secret() {
    let Some(session) = KeyringSession::start() else {
        return;
    };
    let mut monitor = Peer::monitor(session.bus_address());
    let mut forger = Peer::connect(session.bus_address());
    let keys = ForgerKeys::generate();
    let mut forged_first = 0;
    for attempt in 0..MAX_RUNS {
        let url = format!("https://forgery-{attempt}.example");
        let canary = format!("forgery-canary-{attempt}-5b1e0c7d");
        let done = AtomicBool::new(false);
        let (out, run) = std::thread::scope(|scope| {
            let watcher = scope.spawn(|| forge(&session, &mut monitor, &mut forger, &keys, &done));
            // The monitor and the forger are in place: both said Hello before.
            let out = store(&session, &url, "forgery-user", &canary);
            done.store(true, Ordering::SeqCst);
            (out, watcher.join().expect("the forger panicked"))
        });
        session.continue_keyring_daemon();
        for plain in &run.decrypted {
            assert!(
                !String::from_utf8_lossy(plain).contains(&canary),
                "the forger decrypted the secret the helper sent (run {attempt})"
            );
        }
        assert!(
            out.status.success() && out.stdout.is_empty(),
            "store failed with the forger on the bus (run {attempt}): {}",
            describe(&out)
        );
        assert_get(&session, &url, "forgery-user", &canary);
        assert!(
            run.open_session.is_some(),
            "the forger never saw the helper's OpenSession (run {attempt})"
        );
        assert!(
            run.secrets_seen >= 1,
            "the forger saw no secret being sent (run {attempt})"
        );
        match run.forgery_first {
            Some(true) => {
                forged_first += 1;
                break;
            }
            Some(false) => eprintln!("run {attempt}: gnome-keyring answered first; again"),
            None => panic!("the monitor saw no answer to OpenSession (run {attempt})"),
        }
    }
    assert!(
        forged_first > 0,
        "in {MAX_RUNS} runs the forgery never reached the helper before gnome-keyring's answer"
    );
}
