//! Load: 8 concurrent workers run a random mix of store, get, erase and list over 50 keys
//! for 30 seconds (SOAK_SECONDS overrides) against one real gnome-keyring, and again against
//! kernel keyutils. Each worker owns a disjoint share of the keys, so it can check every
//! answer against an exact model of its keys while the others run; `list` is checked for
//! the worker's own keys, and the full state against the union of the models at the end.
//!
//! `DOCKER_CREDENTIAL_HUB_SKIP_SOAK=1` skips both in an everyday `cargo test`; with `CI`
//! set the switch is ignored, so `.ci/run` always soaks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::harness::{
    TestEnv, assert_get, erase_ok, get_answer, list_map, run, store_request,
};
use crate::support::keyring::{KeyringSession, KeyutilsEnv};
use crate::support::output::{describe, stdout};
use crate::support::report;
use crate::support::rng::{Rng, clock_seed};

const WORKERS: usize = 8;

/// The two soaks take turns: run side by side, the keyutils one (many processes a second)
/// would starve gnome-keyring of CPU and the Secret Service figure would measure the
/// machine, not the helper.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
const KEYS: usize = 50;

fn url(i: usize) -> String {
    // Ports and paths differ too, so neighbouring keys on one host must stay apart.
    format!("https://soak-{}.example:{}/v{}/", i % 7, 5000 + i, i % 3)
}

#[derive(Default)]
struct Tally {
    ops: u64,
    not_found_agreed: u64,
    errors: Vec<String>,
}

fn worker(
    env: &dyn TestEnv,
    w: usize,
    seed: u64,
    deadline: Instant,
) -> (Tally, BTreeMap<String, (String, String)>) {
    let mine: Vec<usize> = (0..KEYS).filter(|i| i % WORKERS == w).collect();
    let mut rng = Rng::new(seed);
    let mut model: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut t = Tally::default();
    let fail = |t: &mut Tally, what: String| t.errors.push(what);
    while Instant::now() < deadline {
        let key = url(mine[rng.below(mine.len() as u64) as usize]);
        let roll = rng.below(100);
        if roll < 30 {
            let user = format!("user-{w}-{}", rng.below(1000));
            let secret = format!("secret-{:016x}", rng.next());
            let out = run(env, &["store"], store_request(&key, &user, &secret));
            if out.status.code() == Some(0) && out.stdout.is_empty() {
                model.insert(key, (user, secret));
            } else {
                fail(&mut t, format!("store {key}: {}", describe(&out)));
            }
        } else if roll < 65 {
            let out = run(env, &["get"], key.clone());
            match model.get(&key) {
                Some((user, secret)) => {
                    let want = get_answer(&key, user, secret);
                    if out.status.code() != Some(0) || stdout(&out) != want {
                        fail(
                            &mut t,
                            format!("get {key}: want {want:?}, {}", describe(&out)),
                        );
                    }
                }
                None => {
                    if out.status.code() == Some(1)
                        && stdout(&out) == "credentials not found in native keychain\n"
                    {
                        t.not_found_agreed += 1;
                    } else {
                        fail(
                            &mut t,
                            format!("get {key}: want not found, {}", describe(&out)),
                        );
                    }
                }
            }
        } else if roll < 85 {
            let out = run(env, &["erase"], key.clone());
            if out.status.code() == Some(0) && out.stdout.is_empty() {
                model.remove(&key);
            } else {
                fail(&mut t, format!("erase {key}: {}", describe(&out)));
            }
        } else {
            let out = run(env, &["list"], "unused");
            match serde_json::from_slice::<BTreeMap<String, String>>(&out.stdout) {
                Ok(listed) if out.status.code() == Some(0) => {
                    for i in &mine {
                        let k = url(*i);
                        let want = model.get(&k).map(|(u, _)| u);
                        if listed.get(&k) != want {
                            fail(
                                &mut t,
                                format!("list: {k} is {:?}, model says {want:?}", listed.get(&k)),
                            );
                        }
                    }
                }
                _ => fail(&mut t, format!("list: {}", describe(&out))),
            }
        }
        t.ops += 1;
    }
    (t, model)
}

/// True when the developer asked to skip the soaks and this is not CI.
fn skipped() -> bool {
    if std::env::var_os("DOCKER_CREDENTIAL_HUB_SKIP_SOAK").is_none() {
        return false;
    }
    if std::env::var_os("CI").is_some() {
        eprintln!("DOCKER_CREDENTIAL_HUB_SKIP_SOAK is ignored because CI is set");
        return false;
    }
    eprintln!("SKIP: soak (DOCKER_CREDENTIAL_HUB_SKIP_SOAK is set)");
    true
}

fn soak(env: &dyn TestEnv, name: &str) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let seed0 = clock_seed(0);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|w| {
                s.spawn(move || {
                    worker(env, w, seed0.wrapping_add(w as u64 * 0x9E37_79B9), deadline)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut expected = BTreeMap::new();
    let (mut ops, mut agreed, mut errors) = (0, 0, Vec::new());
    for (t, model) in results {
        ops += t.ops;
        agreed += t.not_found_agreed;
        errors.extend(t.errors);
        expected.extend(model);
    }
    // The full state at the end: list, and every entry's secret.
    let listed = list_map(env);
    let want: BTreeMap<String, String> = expected
        .iter()
        .map(|(k, (u, _))| (k.clone(), u.clone()))
        .collect();
    assert_eq!(
        listed, want,
        "final list differs from the model (seed {seed0})"
    );
    for (k, (u, s)) in &expected {
        assert_get(env, k, u, s);
    }
    let line = format!(
        "soak {name}: {WORKERS} workers x {seconds} s over {KEYS} keys: {ops} operations, {:.0} ops/s, {} unexpected errors, {agreed} not-found answers the model agreed with",
        ops as f64 / elapsed,
        errors.len()
    );
    report(&format!("soak-{name}"), &line);
    assert!(
        errors.is_empty(),
        "seed {seed0}: {} errors, first: {:#?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(ops > WORKERS as u64 * 10, "too few operations: {ops}");
    for k in expected.keys() {
        erase_ok(env, k);
    }
}

#[test]
fn soak_secret_service() {
    if skipped() {
        return;
    }
    let Some(session) = KeyringSession::start() else {
        return;
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        soak(&session, "secret-service")
    }));
    if let Err(e) = result {
        eprintln!(
            "gnome-keyring alive: {}; its log:\n{}",
            session.keyring_alive(),
            session.keyring_log()
        );
        std::panic::resume_unwind(e);
    }
}

#[test]
fn soak_keyutils() {
    if skipped() {
        return;
    }
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    soak(&env, "keyutils");
}
