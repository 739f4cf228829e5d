//! Fault injection on the real Secret Service, each test on its own private
//! gnome-keyring and D-Bus session, with the loopback mock Hub where Hub is involved:
//! - the daemon killed between operations: every action fails with one clear line, and a
//!   restarted daemon serves everything stored before;
//! - the daemon SIGKILLed while concurrent stores and erases run: after a restart nothing
//!   is half-written and nothing acknowledged is lost;
//! - a locked collection: the commands not covered by protocol.rs (list, login,
//!   token, logout, configure, doctor) fail clearly and promptly and write nothing.
//!
//! Figures go to target/tmp/reliability-*.txt, which `.ci/run` prints.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::harness::*;
use crate::support::keyring::KeyringSession;
use crate::support::mock_hub::{ACCESS_TOKEN, LOGIN, MockHub, PASSWORD, USERNAME};
use crate::support::output::{
    assert_one_line_error, assert_one_line_failure, describe, stderr, stdout,
};
use crate::support::rng::Rng;
use crate::support::tools::require_tool;
use crate::support::{detach_from_terminal, env, report};

const SERVICE: &str = "docker-credential-hub";
const INTERNAL_SERVICE: &str = "docker-credential-hub:internal";

/// A human command (login, token, logout, configure, doctor) as a user would run it: the
/// helper's directory on PATH, the mock Hub, and no controlling terminal (its own session),
/// so nothing can wait on a prompt. Returns the output and how long it took.
fn human(
    s: &KeyringSession,
    hub: &MockHub,
    args: &[&str],
    stdin: &str,
    extra: &[(&str, &str)],
) -> (Output, Duration) {
    let mut cmd = env::helper_process(&s.env());
    cmd.env("PATH", env::path_with(&[&env::helper_dir()]))
        .env("DOCKER_HUB_API_URL", hub.url())
        .envs(extra.iter().copied())
        .args(args);
    detach_from_terminal(&mut cmd);
    let started = Instant::now();
    let out = env::bounded(cmd)
        .write_stdin(stdin)
        .output()
        .expect("run docker-credential-hub");
    (out, started.elapsed())
}

fn login(s: &KeyringSession, hub: &MockHub, secret: &str) -> Output {
    human(
        s,
        hub,
        &["login", "--username", USERNAME, "--password-stdin"],
        &format!("{secret}\n"),
        &[],
    )
    .0
}

/// One Secret Service item as `secret-tool search --all` shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Item {
    path: String,
    /// Every `key = value` line but the object path: label, secret, timestamps, attributes.
    fields: BTreeMap<String, String>,
}

impl Item {
    fn attr(&self, name: &str) -> Option<&str> {
        self.fields
            .get(&format!("attribute.{name}"))
            .map(String::as_str)
    }
}

/// Every item of `service` in the private keyring, read with libsecret's own tool, so the
/// check does not depend on the code under test.
fn items(s: &KeyringSession, service: &str) -> Vec<Item> {
    // secret-tool prints the secret on stdout and the attributes on stderr; a line-buffered
    // stdout merged with stderr keeps each item's lines together.
    let out = s
        .tool("sh")
        .args([
            "-c",
            r#"stdbuf -oL secret-tool search --all service "$1" 2>&1"#,
            "sh",
        ])
        .arg(service)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run secret-tool");
    parse_items(&stdout(&out))
}

fn parse_items(text: &str) -> Vec<Item> {
    let mut found: Vec<Item> = Vec::new();
    for line in text.lines() {
        if let Some(path) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            found.push(Item {
                path: path.to_string(),
                fields: BTreeMap::new(),
            });
        } else if let (Some(item), Some((k, v))) = (found.last_mut(), line.split_once(" = ")) {
            // gnome-keyring does not save an item's schema, so a restarted daemon shows none.
            if k != "schema" {
                item.fields.insert(k.trim().to_string(), v.to_string());
            }
        }
    }
    found.sort();
    found
}

// --------------------------------------------------------------------------------------
// a. killed between operations
// --------------------------------------------------------------------------------------

#[test]
fn a_killed_daemon_fails_every_action_in_one_line_and_loses_nothing() {
    let Some(s) = KeyringSession::start() else {
        return;
    };
    if !require_tool("secret-tool") {
        return;
    }
    let hub = MockHub::start();
    let entries = [
        (
            "https://registry.example.com",
            "alice",
            "kill-secret-aaaa1111",
        ),
        ("localhost:5000", "bob", "kill-secret-bbbb2222"),
        ("ghcr.io", "carol", "kill-secret-cccc3333"),
    ];
    for (url, user, secret) in entries {
        store_ok(&s, url, user, secret);
    }
    let out = login(&s, &hub, PASSWORD);
    assert!(out.status.success(), "login: {}", describe(&out));
    let jwt = hub.last_issued();
    let logins = hub.count(LOGIN);
    let before = items(&s, SERVICE);
    assert_eq!(before.len(), entries.len() + 1, "{before:#?}");

    s.kill_keyring_daemon();
    let mut failed = 0;

    // Protocol actions: docker reads one line on stdout; a dead keychain is not "not found".
    let new_secret = "kill-secret-new-4444";
    for (action, stdin) in [
        (
            "store",
            store_request("https://new.example", "dave", new_secret),
        ),
        ("get", b"https://registry.example.com".to_vec()),
        ("get", b"https://never-stored.example".to_vec()),
        ("erase", b"localhost:5000".to_vec()),
        ("list", Vec::new()),
    ] {
        let out = run(&s, &[action], stdin);
        let line = assert_one_line_error(&out);
        assert_ne!(format!("{line}\n"), NOT_FOUND, "{action}: {line}");
        assert!(
            line.contains("Secret Service") && line.contains("org.freedesktop.secrets"),
            "{action}: the cause (no Secret Service on the bus) is not named: {line}"
        );
        assert!(!line.contains(new_secret) && !stderr(&out).contains(new_secret));
        failed += 1;
    }

    // Human commands: one line on stderr, stdout empty.
    for (what, args, stdin) in [
        ("token", vec!["token"], String::new()),
        (
            "login",
            vec!["login", "--username", USERNAME, "--password-stdin"],
            format!("{ACCESS_TOKEN}\n"),
        ),
        ("logout", vec!["logout"], String::new()),
    ] {
        let (out, _) = human(&s, &hub, &args, &stdin, &[]);
        let line = assert_one_line_failure(&out);
        assert!(line.contains("Secret Service"), "{what}: {line}");
        assert!(!line.contains(ACCESS_TOKEN) && !line.contains(&jwt));
        failed += 1;
    }
    assert_eq!(hub.count(LOGIN), logins, "no Hub login without a keychain");

    s.restart_keyring_daemon();
    let mut want: BTreeMap<String, String> = entries
        .iter()
        .map(|(u, n, _)| (u.to_string(), n.to_string()))
        .collect();
    want.insert(HUB_KEY.into(), USERNAME.into());
    assert_eq!(list_map(&s), want);
    for (url, user, secret) in entries {
        assert_get(&s, url, user, secret);
    }
    assert_get(&s, HUB_KEY, USERNAME, PASSWORD);
    assert_not_found(&s, "https://new.example");
    assert_eq!(items(&s, SERVICE), before, "the keyring items changed");
    let (out, _) = human(&s, &hub, &["token"], "", &[]);
    assert!(out.status.success(), "token: {}", describe(&out));
    assert_eq!(stdout(&out), format!("{jwt}\n"), "the cached token is gone");
    assert_eq!(hub.count(LOGIN), logins);

    report(
        "keyring-killed-between",
        &format!(
            "fault gnome-keyring killed between operations: {failed} of {failed} calls (store, get x2, erase, list, token, login, logout) failed with one line naming the Secret Service, 0 said not-found; after a restart all {} entries and the cached Hub token intact",
            entries.len() + 1
        ),
    );
}

// --------------------------------------------------------------------------------------
// b. killed during operations
// --------------------------------------------------------------------------------------

/// What a key may hold: `None` (absent) or `(username, secret)`.
type State = Option<(String, String)>;

/// The states a key may be in after the operations so far. A call that succeeded leaves
/// exactly its result; a call that failed (the daemon died under it) may or may not have
/// taken effect, but must not have left anything else.
#[derive(Default)]
struct Model {
    allowed: BTreeMap<String, Vec<State>>,
}

impl Model {
    fn apply(&mut self, key: &str, result: State, succeeded: bool) {
        let allowed = self.allowed.entry(key.to_string()).or_insert(vec![None]);
        if succeeded {
            *allowed = vec![result];
        } else if !allowed.contains(&result) {
            allowed.push(result);
        }
    }
}

const WORKERS: usize = 4;
const KEYS_PER_WORKER: usize = 4;
const ROUNDS: usize = 6;

fn key_of(worker: usize, k: usize) -> String {
    format!("https://w{worker}-k{k}.example")
}

/// What `get` answers now, as a state; any answer but a credential or not-found fails.
fn observed(s: &KeyringSession, key: &str) -> State {
    let out = get(s, key);
    if out.status.success() {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("get {key}: not JSON ({e}): {}", describe(&out)));
        assert_eq!(v["ServerURL"], key, "{}", describe(&out));
        Some((
            v["Username"].as_str().unwrap().to_string(),
            v["Secret"].as_str().unwrap().to_string(),
        ))
    } else {
        assert_eq!(
            stdout(&out),
            NOT_FOUND,
            "get {key} after restart: {}",
            describe(&out)
        );
        None
    }
}

#[test]
fn a_daemon_killed_mid_operation_leaves_nothing_half_written() {
    let Some(s) = KeyringSession::start() else {
        return;
    };
    if !require_tool("secret-tool") {
        return;
    }
    let model = Mutex::new(Model::default());
    let (mut ops, mut ok_ops, mut failed_ops, mut checked, mut in_flight) = (0, 0, 0, 0, 0);
    let (mut unfinished, mut stale_labels) = (0, 0);
    for round in 0..ROUNDS {
        let stop = AtomicBool::new(false);
        let (done, failures) = (AtomicUsize::new(0), AtomicUsize::new(0));
        // Failed calls that had started before the SIGKILL went out.
        let (killed_at, cut) = (Mutex::new(None::<Instant>), AtomicUsize::new(0));
        let mut rng = Rng::seeded(round as u64);
        // Kill after a random 0.3–1.2 s of work: far longer than one call, so several are
        // in flight at that moment.
        let kill_after = Duration::from_millis(300 + rng.below(900));
        let bad_errors = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for w in 0..WORKERS {
                let (s, model, stop, done, failures, bad_errors, killed_at, cut) = (
                    &s,
                    &model,
                    &stop,
                    &done,
                    &failures,
                    &bad_errors,
                    &killed_at,
                    &cut,
                );
                scope.spawn(move || {
                    let mut rng = Rng::seeded((round * WORKERS + w + 1) as u64);
                    let mut seq = 0;
                    while !stop.load(Ordering::SeqCst) {
                        seq += 1;
                        let key = key_of(w, rng.below(KEYS_PER_WORKER as u64) as usize);
                        let started = Instant::now();
                        let (out, result) = if rng.below(10) < 7 {
                            let user = format!("user-{w}-{round}-{seq}");
                            let secret = format!("mid-secret-{w}-{round}-{seq}");
                            let out = run(s, &["store"], store_request(&key, &user, &secret));
                            (out, Some((user, secret)))
                        } else {
                            (erase(s, &key), None)
                        };
                        let succeeded = out.status.success() && out.stdout.is_empty();
                        if !succeeded {
                            failures.fetch_add(1, Ordering::SeqCst);
                            if killed_at.lock().unwrap().is_some_and(|k| started < k) {
                                cut.fetch_add(1, Ordering::SeqCst);
                            }
                            let text = stdout(&out);
                            if out.status.code() != Some(1)
                                || text.lines().count() != 1
                                || !text.contains("Secret Service")
                            {
                                bad_errors.lock().unwrap().push(describe(&out));
                            }
                        }
                        done.fetch_add(1, Ordering::SeqCst);
                        model.lock().unwrap().apply(&key, result, succeeded);
                    }
                });
            }
            std::thread::sleep(kill_after);
            let before_kill = done.load(Ordering::SeqCst);
            *killed_at.lock().unwrap() = Some(Instant::now());
            s.kill_keyring_daemon();
            // Let every worker run into the dead daemon at least once before stopping.
            let deadline = Instant::now() + Duration::from_secs(20);
            while failures.load(Ordering::SeqCst) < WORKERS && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            stop.store(true, Ordering::SeqCst);
            assert!(
                before_kill > 0,
                "round {round}: no call finished before the kill"
            );
        });
        let bad = bad_errors.into_inner().unwrap();
        assert!(
            bad.is_empty(),
            "round {round}: failures that are not one clear line: {bad:#?}"
        );
        let (n, f) = (done.load(Ordering::SeqCst), failures.load(Ordering::SeqCst));
        assert!(
            f >= WORKERS,
            "round {round}: only {f} calls met the dead daemon"
        );
        ops += n;
        failed_ops += f;
        in_flight += cut.load(Ordering::SeqCst);
        ok_ops += n - f;

        s.restart_keyring_daemon();
        let listed = list_map(&s);
        let found = items(&s, SERVICE);
        let mut model = model.lock().unwrap();
        let keys: BTreeSet<String> = (0..WORKERS)
            .flat_map(|w| (0..KEYS_PER_WORKER).map(move |k| key_of(w, k)))
            .collect();
        for key in &keys {
            let state = observed(&s, key);
            let allowed = model.allowed.get(key).cloned().unwrap_or(vec![None]);
            assert!(
                allowed.contains(&state),
                "round {round}: {key} holds {state:?}, which no call could have left (allowed: {allowed:?})"
            );
            // list and get agree, and the keyring holds exactly one complete item.
            assert_eq!(
                listed.get(key),
                state.as_ref().map(|(u, _)| u),
                "round {round}: list and get disagree on {key}"
            );
            let mine: Vec<&Item> = found
                .iter()
                .filter(|i| i.attr("username") == Some(key.as_str()))
                .collect();
            match &state {
                None => {
                    // gnome-keyring saves a new item before its secret; killed in between,
                    // it leaves an empty item. The store reported failure, and get (above)
                    // and list treat the item as absent; anything else would be partial.
                    for item in &mine {
                        assert!(
                            item.fields["secret"].is_empty(),
                            "round {round}: {key}: {item:#?}"
                        );
                        unfinished += 1;
                    }
                }
                Some((user, secret)) => {
                    assert_eq!(mine.len(), 1, "round {round}: {key}: {mine:#?}");
                    let payload: serde_json::Value =
                        serde_json::from_str(&mine[0].fields["secret"]).unwrap_or_else(|e| {
                            panic!("round {round}: {key}: item secret is not the payload: {e}")
                        });
                    assert_eq!(payload["Username"], user.as_str(), "round {round}: {key}");
                    assert_eq!(payload["Secret"], secret.as_str(), "round {round}: {key}");
                    // The `docker_username` attribute is written after the secret, so a kill
                    // in between leaves it stale; only a label, which list does not rely on.
                    if mine[0].attr("docker_username") != Some(user.as_str()) {
                        stale_labels += 1;
                    }
                }
            }
            model.allowed.insert(key.clone(), vec![state]);
            checked += 1;
        }
        let extra: Vec<&String> = listed.keys().filter(|k| !keys.contains(*k)).collect();
        assert!(
            extra.is_empty(),
            "round {round}: unknown keys listed: {extra:?}"
        );
        let complete = found
            .iter()
            .filter(|i| !i.fields["secret"].is_empty())
            .count();
        assert_eq!(
            complete,
            listed.len(),
            "round {round}: stray items: {found:#?}"
        );
    }
    report(
        "keyring-killed-during",
        &format!(
            "fault gnome-keyring SIGKILLed during concurrent stores/erases: {ROUNDS} rounds, {WORKERS} workers, {ops} calls ({ok_ops} succeeded, {failed_ops} failed in one line, {in_flight} of them started before the kill); {checked} key states checked after restart: list = get = an acknowledged or in-flight write for every key, 0 lost; {unfinished} items gnome-keyring left empty (treated as absent), {stale_labels} stale username attributes"
        ),
    );
}

// --------------------------------------------------------------------------------------
// c. a locked collection
// --------------------------------------------------------------------------------------

#[test]
fn a_locked_collection_fails_every_command_promptly_and_writes_nothing() {
    let Some(s) = KeyringSession::start() else {
        return;
    };
    if !require_tool("secret-tool") || !require_tool("dbus-send") {
        return;
    }
    let hub = MockHub::start();
    store_ok(&s, "https://locked.example", "lu", "locked-secret-5555");
    let out = login(&s, &hub, PASSWORD);
    assert!(out.status.success(), "login: {}", describe(&out));
    let jwt = hub.last_issued();
    let config = s.docker_config_dir().join("config.json");
    let plain = "bG9ja2VkOmxvY2tlZC1wbGFpbi02NjY2"; // locked:locked-plain-6666
    let original = format!(
        "{{\n\t\"auths\": {{\n\t\t\"plain.example\": {{\n\t\t\t\"auth\": \"{plain}\"\n\t\t}}\n\t}},\n\t\"psFormat\": \"table\"\n}}"
    );
    std::fs::write(&config, &original).unwrap();
    let before = (items(&s, SERVICE), items(&s, INTERNAL_SERVICE));
    assert!(!before.1.is_empty(), "no cached token item to watch");

    s.lock_collection();
    // Well under the watchdog: a failure must come from the lock, not from a deadline.
    let limit = Duration::from_secs(20);
    let timeout = [("DOCKER_CREDENTIAL_HUB_TIMEOUT", "20")];
    let mut checked = Vec::new();

    let list = s
        .cmd()
        .env("DOCKER_CREDENTIAL_HUB_TIMEOUT", "20")
        .arg("list")
        .output();
    let out = list.unwrap();
    let line = assert_one_line_error(&out);
    assert!(line.contains("locked"), "list: {line}");
    checked.push("list");

    for (what, args, stdin) in [
        (
            "login",
            vec!["login", "--username", USERNAME, "--password-stdin"],
            format!("{ACCESS_TOKEN}\n"),
        ),
        ("token", vec!["token"], String::new()),
        ("logout", vec!["logout"], String::new()),
    ] {
        let (out, took) = human(&s, &hub, &args, &stdin, &timeout);
        let line = assert_one_line_failure(&out);
        assert!(line.contains("locked"), "{what}: {line}");
        assert!(took < limit, "{what} took {took:?}");
        assert!(!line.contains(ACCESS_TOKEN) && !line.contains(&jwt));
        checked.push(what);
    }

    let (out, took) = human(&s, &hub, &["configure"], "", &timeout);
    assert_eq!(out.status.code(), Some(1), "configure: {}", describe(&out));
    assert!(stderr(&out).contains("locked"), "{}", describe(&out));
    assert!(
        !stderr(&out).contains("did not answer"),
        "{}",
        describe(&out)
    );
    assert!(took < limit, "configure took {took:?}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), original);
    for sidecar in ["config.json.bak", "config.json.hub-previous"] {
        assert!(!s.docker_config_dir().join(sidecar).exists(), "{sidecar}");
    }
    checked.push("configure");

    let (out, took) = human(&s, &hub, &["doctor"], "", &timeout);
    assert_eq!(out.status.code(), Some(1), "doctor: {}", describe(&out));
    let probe = stdout(&out)
        .lines()
        .find(|l| l.starts_with("FAIL probe"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no FAIL probe line: {}", describe(&out)));
    assert!(probe.contains("locked"), "{probe}");
    assert!(took < limit, "doctor took {took:?}");
    checked.push("doctor");

    // Nothing answered an unlock prompt behind our back, and nothing was written.
    assert_eq!(s.default_collection_locked(), Some(true));
    s.restart_keyring_daemon();
    let after = (items(&s, SERVICE), items(&s, INTERNAL_SERVICE));
    assert_eq!(after, before, "the keyring changed while locked");
    assert_get(&s, HUB_KEY, USERNAME, PASSWORD);
    assert_get(&s, "https://locked.example", "lu", "locked-secret-5555");
    let (out, _) = human(&s, &hub, &["token"], "", &[]);
    assert_eq!(stdout(&out), format!("{jwt}\n"), "{}", describe(&out));

    report(
        "keyring-locked",
        &format!(
            "fault locked collection: {} commands ({}) failed promptly naming the lock, 0 prompts, 0 writes (keyring items identical after unlock); store/get/erase in tests/protocol.rs",
            checked.len(),
            checked.join(", ")
        ),
    );
}
