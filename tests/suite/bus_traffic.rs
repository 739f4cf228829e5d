//! What a `get` says on the bus, watched by `dbus-monitor` on the private session.
//!
//! docker calls `get` on every pull, so a found `get` is three calls to the Secret Service
//! and no more: SearchItems, then (only when something was found) OpenSession with the
//! encrypted algorithm, then GetSecret; a not-found `get` is the search alone. An extra call
//! would leave every answer right, only slower, and no other test would notice. This one
//! does, and checks on the wire that the secret never crosses the bus in the clear.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::harness::{TestEnv, assert_get, assert_not_found, store_ok};
use crate::support::keyring::KeyringSession;
use crate::support::tools::require_tool;

const FOUND: &str = "https://traffic.example/v1/";
const MISSING: &str = "https://missing.traffic.example/v1/";
/// The secret stored: it must appear nowhere in the bus traffic, as text or as bytes.
const CANARY: &str = "canary-7f3a9c1e-plaintext";

/// `dbus-monitor` on a session bus, its output collected line by line.
struct Monitor {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Monitor {
    /// Start monitoring; returns once the monitor is in place (its connection has become a
    /// monitor, which the bus announces by taking its name away: NameLost).
    fn start(session: &KeyringSession) -> Monitor {
        let mut child = session
            .tool("dbus-monitor")
            .args(["--address", session.bus_address()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-monitor");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let monitor = Monitor { child, lines };
        monitor.wait_for("the monitor to be in place", |log| {
            log.iter().any(|l| l.contains("member=NameLost"))
        });
        monitor
    }

    /// Wait (up to 10 s) until `done` holds for the lines so far.
    fn wait_for(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        let start = Instant::now();
        loop {
            if done(&self.lines.lock().unwrap()) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "timed out waiting for {what}; dbus-monitor printed:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One method call as dbus-monitor prints its header line.
#[derive(Debug)]
struct Call {
    sender: String,
    destination: String,
    member: String,
    line_index: usize,
}

fn field<'l>(line: &'l str, name: &str) -> Option<&'l str> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    let rest = &line[start..];
    Some(rest.split([' ', ';']).next().unwrap_or(rest))
}

fn calls(lines: &[String]) -> Vec<Call> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("method call "))
        .map(|(i, l)| Call {
            sender: field(l, "sender").unwrap_or_default().to_string(),
            destination: field(l, "destination").unwrap_or_default().to_string(),
            member: field(l, "member").unwrap_or_default().to_string(),
            line_index: i,
        })
        .collect()
}

/// The Secret Service calls of each client, in the order the clients appeared.
fn secret_service_calls_by_client(lines: &[String]) -> Vec<(String, Vec<String>)> {
    let mut clients: Vec<(String, Vec<String>)> = Vec::new();
    for call in calls(lines)
        .into_iter()
        .filter(|c| c.destination == "org.freedesktop.secrets")
    {
        match clients
            .iter_mut()
            .find(|(sender, _)| *sender == call.sender)
        {
            Some((_, members)) => members.push(call.member),
            None => clients.push((call.sender, vec![call.member])),
        }
    }
    clients
}

/// The canary as dbus-monitor would print it inside an "array of bytes [ .. ]" dump, once
/// line breaks and indentation are squeezed to single spaces.
fn canary_as_monitor_bytes() -> String {
    CANARY
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn get_is_three_calls_on_an_encrypted_session_and_not_found_is_one() {
    if !require_tool("dbus-monitor") {
        return;
    }
    let Some(session) = KeyringSession::start() else {
        return;
    };
    store_ok(&session, FOUND, "alice", CANARY);
    let monitor = Monitor::start(&session);

    assert_get(&session, FOUND, "alice", CANARY);
    assert_not_found(&session, MISSING);
    // The monitor prints asynchronously: wait for the second client's search.
    monitor.wait_for("both searches", |log| {
        calls(log)
            .iter()
            .filter(|c| c.member == "SearchItems")
            .count()
            >= 2
    });
    // And for the answer to the GetSecret (a struct), so that the secret's bytes are in.
    monitor.wait_for("the GetSecret answer", |log| {
        log.iter().any(|l| l.trim() == "struct {")
    });
    let lines = monitor.lines();
    let log = lines.join("\n");

    let clients = secret_service_calls_by_client(&lines);
    let expected = vec![
        vec!["SearchItems", "OpenSession", "GetSecret"],
        vec!["SearchItems"],
    ];
    assert_eq!(
        clients.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>(),
        expected,
        "Secret Service calls per client (found get, then not-found get); the bus saw:\n{log}"
    );

    // OpenSession asks for the encrypted algorithm: its first argument follows its header.
    let open = calls(&lines)
        .into_iter()
        .find(|c| c.member == "OpenSession")
        .expect("an OpenSession call");
    assert_eq!(
        lines[open.line_index + 1].trim(),
        "string \"dh-ietf1024-sha256-aes128-cbc-pkcs7\"",
        "OpenSession must ask for the encrypted session; the bus saw:\n{log}"
    );

    // And the secret is nowhere on the bus: not as text, not as a byte dump.
    let squeezed = log.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        !log.contains(CANARY),
        "the secret crossed the bus as text:\n{log}"
    );
    assert!(
        !squeezed.contains(&canary_as_monitor_bytes()),
        "the secret crossed the bus as plain bytes:\n{log}"
    );
}

/// The checks above must be able to fail: the byte-dump form of the canary is what
/// dbus-monitor prints for a plain (unencrypted) secret.
#[test]
fn the_canary_check_recognises_a_plain_byte_dump() {
    let mut dump = String::from("      array of bytes [\n        ");
    for (i, b) in format!("{{\"Secret\":\"{CANARY}\"}}").bytes().enumerate() {
        dump.push_str(&format!("{b:02x}"));
        dump.push_str(if i % 23 == 22 { "\n         " } else { " " });
    }
    dump.push_str("\n      ]");
    let squeezed = dump.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(squeezed.contains(&canary_as_monitor_bytes()), "{dump}");
}

/// A `store` creates its item on the default collection's own path, which it asks for with
/// `ReadAlias`, never on the alias path `/aliases/default`: gnome-keyring resolves an alias
/// path on its D-Bus worker thread from a table its main thread rewrites whenever a client
/// connects, and under concurrent clients such a create now and then lands on a path of
/// freed memory (UnknownMethod). ReadAlias is answered on the main thread.
#[test]
fn store_creates_on_the_collection_path_it_read_not_on_the_alias() {
    if !require_tool("dbus-monitor") {
        return;
    }
    let Some(session) = KeyringSession::start() else {
        return;
    };
    let monitor = Monitor::start(&session);
    store_ok(&session, FOUND, "alice", CANARY);
    monitor.wait_for("the CreateItem calls", |log| {
        calls(log)
            .iter()
            .filter(|c| c.member == "CreateItem")
            .count()
            >= 2
    });
    let lines = monitor.lines();
    let log = lines.join("\n");
    let creates: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("method call ") && l.contains("member=CreateItem"))
        .filter_map(|l| field(l, "path"))
        .collect();
    assert!(!creates.is_empty(), "no CreateItem on the bus:\n{log}");
    for path in &creates {
        assert_eq!(
            *path, "/org/freedesktop/secrets/collection/login",
            "CreateItem must go to the collection's own path; the bus saw:\n{log}"
        );
    }
    let read_alias = calls(&lines)
        .iter()
        .filter(|c| c.member == "ReadAlias")
        .count();
    assert!(
        read_alias >= 1,
        "the collection's path comes from ReadAlias; the bus saw:\n{log}"
    );
    assert_get(&session, FOUND, "alice", CANARY);
}
