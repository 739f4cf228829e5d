//! `configure` SIGKILLed at random points: config.json is always exactly the old
//! document or exactly the complete new one — never a mix, never empty, never invalid —
//! a new one only once every credential it no longer holds is in the keychain, and no
//! file left behind holds a plaintext secret. Real kernel keyutils (fast enough for many
//! runs); the figures go to target/tmp/reliability-configure-kill.txt.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::harness::{TestEnv, assert_get};
use crate::support::keyring::KeyutilsEnv;
use crate::support::rng::{Rng, clock_seed};
use crate::support::{env, report};
use base64::Engine;
use serde_json::{Map, Value};

const ITERATIONS: usize = 150;
/// The kill delays span this multiple of a typical full run, so some runs also finish first.
const SPAN: f64 = 1.1;

/// (registry, username docker will get, secret) of each plaintext entry.
const CREDS: [(&str, &str, &str); 5] = [
    (
        "https://index.docker.io/v1/",
        "hubuser",
        "Kill-Hub-Secret-1111",
    ),
    ("ghcr.io", "<token>", "Kill-IdToken-Secret-2222"),
    (
        "registry.example.com:5000",
        "alice",
        "Kill-Alice-Secret-3333",
    ),
    ("quay.io", "bob", "Kill-Bob-Secret-4444"),
    ("localhost:5000", "carol", "Kill-Carol-Secret-5555"),
];

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The starting config.json: plaintext entries in each of docker's shapes, an entry
/// without secrets, and keys configure must not touch, in an order it must keep.
fn old_document() -> String {
    format!(
        r#"{{
	"x-first": {{"keep": ["me", 1, null]}},
	"auths": {{
		"{}": {{"auth": "{}", "email": "hub@example.com"}},
		"{}": {{"identitytoken": "{}"}},
		"{}": {{"username": "alice", "password": "{}"}},
		"{}": {{"auth": "{}"}},
		"{}": {{"auth": "{}", "serveraddress": "localhost:5000"}},
		"keep.example.com": {{}}
	}},
	"psFormat": "table {{{{.ID}}}}",
	"ключ": "значение",
	"credHelpers": {{"gcr.io": "gcloud"}},
	"proxies": {{"default": {{"httpProxy": "http://proxy:3128"}}}}
}}"#,
        CREDS[0].0,
        b64(&format!("{}:{}", CREDS[0].1, CREDS[0].2)),
        CREDS[1].0,
        CREDS[1].2,
        CREDS[2].0,
        CREDS[2].2,
        CREDS[3].0,
        b64(&format!("{}:{}", CREDS[3].1, CREDS[3].2)),
        CREDS[4].0,
        b64(&format!("{}:{}", CREDS[4].1, CREDS[4].2)),
    )
}

/// Everything that would expose a credential if found in a file.
fn secret_needles() -> Vec<String> {
    let mut needles = Vec::new();
    for (_, user, secret) in CREDS {
        needles.push(secret.to_string());
        needles.push(b64(&format!("{user}:{secret}")));
    }
    needles
}

/// A document as text, in its key order (`Value`'s `==` ignores key order).
fn ordered(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

/// The old document with every `auths` entry's secret fields removed and, when given,
/// `credsStore` set: what configure must write, worked out independently of its code.
fn expected(old: &str, creds_store: Option<&str>) -> Value {
    let mut doc: Map<String, Value> = serde_json::from_str(old).unwrap();
    if let Some(Value::Object(auths)) = doc.get_mut("auths") {
        for entry in auths.values_mut() {
            if let Value::Object(fields) = entry {
                fields.retain(|k, _| {
                    !["auth", "username", "password", "identitytoken"].contains(&k.as_str())
                });
            }
        }
    }
    if let Some(name) = creds_store {
        doc.insert("credsStore".into(), Value::String(name.into()));
    }
    Value::Object(doc)
}

struct World {
    env: KeyutilsEnv,
    dir: PathBuf,
    config: PathBuf,
}

impl World {
    fn configure(&self) -> Command {
        let mut cmd = env::helper_process(&self.env.env());
        // configure refuses to switch unless docker can find the helper on PATH.
        cmd.env("PATH", env::path_with(&[&env::helper_dir()]))
            .arg("configure")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// Back to the starting point: the old config.json and no backup or undo record.
    fn reset(&self, old: &str) {
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        std::fs::write(&self.config, old).unwrap();
    }
}

#[derive(Default, Debug)]
struct Tally {
    old: usize,
    new: usize,
    finished_first: usize,
    backups: usize,
    records: usize,
    strays: usize,
}

#[test]
fn configure_killed_at_random_points_leaves_the_old_or_the_new_config() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let dir = env.docker_config_dir().to_path_buf();
    let world = World {
        config: dir.join("config.json"),
        dir,
        env,
    };
    let old = old_document();
    let needles = secret_needles();
    let want_new = expected(&old, Some("hub"));
    let want_backup = expected(&old, None);

    // Complete runs: the new document, and how long a run takes.
    let mut runs = Vec::new();
    let mut new_bytes = Vec::new();
    for _ in 0..5 {
        world.reset(&old);
        let started = Instant::now();
        let status = world.configure().status().unwrap();
        runs.push(started.elapsed());
        assert!(status.success(), "configure failed without a kill");
        new_bytes = std::fs::read(&world.config).unwrap();
        let doc: Value = serde_json::from_slice(&new_bytes).unwrap();
        assert_eq!(ordered(&doc), ordered(&want_new), "the configured document");
    }
    runs.sort();
    let full_run = runs[runs.len() / 2];
    let span = full_run.mul_f64(SPAN);

    let seed = clock_seed(0);
    let mut rng = Rng::new(seed);
    let mut t = Tally::default();
    let started = Instant::now();
    for i in 0..ITERATIONS {
        world.reset(&old);
        let delay = span.mul_f64(rng.next_f64());
        let mut child = world.configure().spawn().unwrap();
        std::thread::sleep(delay);
        // SIGKILL; harmless if it already exited (it is not reaped until `wait`).
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.code().is_some() {
            t.finished_first += 1;
        }
        let case = format!("iteration {i} (kill after {delay:?}, seed {seed}, {status})");

        // config.json: exactly one of the two documents.
        let now = std::fs::read(&world.config).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert!(!now.is_empty(), "{case}: config.json is empty");
        let parsed: Value = serde_json::from_slice(&now)
            .unwrap_or_else(|e| panic!("{case}: config.json is not valid JSON: {e}"));
        if now == old.as_bytes() {
            t.old += 1;
        } else {
            assert_eq!(
                now,
                new_bytes,
                "{case}: config.json is neither the old nor the new document: {}",
                ordered(&parsed)
            );
            t.new += 1;
            // Nothing is lost: a config without the plaintext means the keychain has it.
            for (url, user, secret) in CREDS {
                assert_get(&world.env, url, user, secret);
            }
        }

        // Whatever else is in the directory: complete, and without a plaintext secret.
        for entry in std::fs::read_dir(&world.dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let body = std::fs::read(&path).unwrap();
            let body_text = String::from_utf8_lossy(&body);
            if name != "config.json" {
                for needle in &needles {
                    assert!(
                        !body_text.contains(needle.as_str()),
                        "{case}: {name} holds a plaintext secret"
                    );
                }
            }
            match name.as_str() {
                "config.json" => {}
                "config.json.bak" => {
                    t.backups += 1;
                    let doc: Value = serde_json::from_slice(&body)
                        .unwrap_or_else(|e| panic!("{case}: the backup is not JSON: {e}"));
                    assert_eq!(ordered(&doc), ordered(&want_backup), "{case}: the backup");
                }
                "config.json.hub-previous" => {
                    t.records += 1;
                    let doc: Value = serde_json::from_slice(&body)
                        .unwrap_or_else(|e| panic!("{case}: the undo record is not JSON: {e}"));
                    assert_eq!(doc, serde_json::json!({"credsStore": null}), "{case}");
                }
                // An atomic write cut before its rename: a private temp file.
                _ if name.starts_with('.') && name.contains(".tmp-") => {
                    use std::os::unix::fs::PermissionsExt;
                    t.strays += 1;
                    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                    assert_eq!(mode, 0o600, "{case}: {name} is readable by others");
                }
                _ => panic!("{case}: unexpected file {name}"),
            }
        }
    }
    let took = started.elapsed();
    assert_eq!(t.old + t.new, ITERATIONS);
    // The delays span the whole run, so both outcomes must show up; if not, the test
    // did not exercise what it claims.
    assert!(t.old > 0 && t.new > 0, "{t:?}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    report(
        "configure-kill",
        &format!(
            "fault configure SIGKILLed at random points: {ITERATIONS} runs (kills spread over 0–{span:?}, a full run takes {full_run:?}): config.json old {} / new {} ({} finished before the kill), 0 mixed, empty or invalid; new always with every credential in the keychain; {} backups, {} undo records and {} temp files left behind, none with a plaintext secret",
            t.old, t.new, t.finished_first, t.backups, t.records, t.strays
        ),
    );
}
