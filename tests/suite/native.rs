//! The protocol on the Windows and macOS stores: natively on macOS and Windows (the GitHub
//! workflow sets DOCKER_CREDENTIAL_HUB_NATIVE_TESTS=1, since these tests use the keychain of
//! whoever runs them, under a unique service name they clean up; support/native.rs), and on
//! Linux the real Windows binary under Wine (support/wine.rs), on both of its stores: the
//! Credential Manager and the `dpapi` file store.
//!
//! Each case checks on every one of those stores: the round trip, docker's exact strings,
//! secrets up to 64 KiB (split over several Credential Manager credentials) and the
//! Credential Manager's clear refusal past that, a secret that looks like the helper's own
//! record of a split value, that a reader racing a writer only ever sees one of the values
//! written, keys that differ in port, path or only in case, very long URLs, a dotted service
//! name, and that `version`, `doctor` and `configure --dry-run` speak the platform's
//! language. What Wine keeps on disk is checked in wine_stores.rs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::support::harness::{
    TestEnv, assert_get, assert_not_found, big_secret, erase_ok, get_pair, list_map, run, run_with,
    store_ok, store_request,
};
use crate::support::output::{describe, stderr, stdout};

/// What the Credential Manager stores per secret, split over several credentials.
const WINCRED_MAX_SECRET: usize = 64 * 1024;

fn store_get_erase_list(p: &dyn TestEnv) {
    let url = "https://registry.example.com/v1/";
    assert_eq!(list_map(p), BTreeMap::new());
    store_ok(p, url, "alice", "s3cret-RoundTrip");
    assert_get(p, url, "alice", "s3cret-RoundTrip");
    assert_eq!(
        list_map(p),
        BTreeMap::from([(url.to_string(), "alice".to_string())])
    );
    store_ok(p, url, "bob", "second");
    assert_get(p, url, "bob", "second");
    erase_ok(p, url);
    assert_not_found(p, url);
    assert_eq!(list_map(p), BTreeMap::new());
    // `<token>` and characters JSON escapes survive.
    store_ok(p, "https://tok.example", "<token>", "a&b\"c\\d");
    let out = run(p, &["get"], b"https://tok.example");
    assert!(
        stdout(&out).contains("\\u003ctoken\\u003e"),
        "{}",
        describe(&out)
    );
    assert_get(p, "https://tok.example", "<token>", "a&b\"c\\d");
}

/// The strings docker matches on, byte for byte, on stdout with exit 1.
fn protocol_errors_are_docker_s_exact_strings(p: &dyn TestEnv) {
    assert_not_found(p, "https://never-stored.example");
    erase_ok(p, "https://never-stored.example");
    for (input, expected) in [
        (
            &br#"{"Username":"u","Secret":"s"}"#[..],
            "no credentials server URL\n",
        ),
        (
            br#"{"ServerURL":"https://x.example","Secret":"s"}"#,
            "no credentials username\n",
        ),
    ] {
        let out = run(p, &["store"], input);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert_eq!(stdout(&out), expected);
    }
    assert_eq!(list_map(p), BTreeMap::new());
}

/// Secrets larger than one Credential Manager blob (2560 bytes) round-trip exactly, up to
/// 64 KiB; the Credential Manager refuses one byte more in one line that points to the dpapi
/// store, keeping what it had. The other stores take it.
fn large_secrets_round_trip_up_to_the_limit(p: &dyn TestEnv) {
    let url = "https://big.example";
    for (seed, size) in [2560, 2561, 10_000, WINCRED_MAX_SECRET]
        .into_iter()
        .enumerate()
    {
        let secret = big_secret(size, seed);
        let user = format!("user-{size}");
        store_ok(p, url, &user, &secret);
        assert_get(p, url, &user, &secret);
        assert_eq!(list_map(p), BTreeMap::from([(url.to_string(), user)]));
    }
    let over = big_secret(WINCRED_MAX_SECRET + 1, 9);
    let out = run(p, &["store"], store_request(url, "u", &over));
    if p.credential_manager() {
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let line = stdout(&out);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(
            line.contains("65537 bytes") && line.contains("at most 65536"),
            "{line}"
        );
        // The way out names the store without a cap.
        assert!(line.contains("configure --backend dpapi"), "{line}");
        assert!(!line.contains(&over[..64]));
        let user = format!("user-{WINCRED_MAX_SECRET}");
        assert_get(p, url, &user, &big_secret(WINCRED_MAX_SECRET, 3));
    } else {
        assert!(out.status.success(), "{}", describe(&out));
        assert_get(p, url, "u", &over);
    }
    // Large to small: the small one, and nothing of the large one, is what is read.
    store_ok(p, url, "small", "tiny");
    assert_get(p, url, "small", "tiny");
    erase_ok(p, url);
    assert_not_found(p, url);
    assert_eq!(list_map(p), BTreeMap::new());
}

/// A secret that happens to read like the helper's own record of a split value is kept as
/// it is, never followed.
fn a_secret_that_looks_like_a_manifest_is_kept_as_it_is(p: &dyn TestEnv) {
    for secret in ["dch-parts:abc:2", "dch-parts:18f0-1-0:1"] {
        store_ok(p, "https://lookalike.example", "u", secret);
        assert_get(p, "https://lookalike.example", "u", secret);
    }
    erase_ok(p, "https://lookalike.example");
    assert_not_found(p, "https://lookalike.example");
}

/// One process alternately stores two 60 KiB values while another keeps reading: every
/// answer is one of the two whole (username and secret together), never a mix and never an
/// error.
fn a_reader_never_sees_a_mix_of_two_large_values(p: &dyn TestEnv) {
    reader_sees_only_whole_values(p, 60 * 1024, 10);
}

/// The same with values that fit one credential: the username and the secret are written,
/// and read, together (one `CredWriteW`, one `CredReadW` in the Credential Manager). Not run
/// on Wine's Credential Manager: Wine keeps a credential's fields as separate registry values
/// and writes them one by one, so under Wine even one `CredWriteW` can be read half-done.
fn a_reader_never_sees_a_mix_of_two_small_values(p: &dyn TestEnv) {
    reader_sees_only_whole_values(p, 1000, 40);
}

/// `stores` stores alternating two values of `size` bytes (and two usernames) while a
/// reader reads until the writer is done.
fn reader_sees_only_whole_values(p: &dyn TestEnv, size: usize, stores: usize) {
    let url = "https://race.example";
    let a = ("alice".to_string(), big_secret(size, 1));
    let b = ("bob".to_string(), big_secret(size, 2));
    store_ok(p, url, &a.0, &a.1);
    let done = AtomicBool::new(false);
    let (reads, saw_a, saw_b) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            for i in 0..stores {
                let (user, secret) = if i % 2 == 0 { &b } else { &a };
                store_ok(p, url, user, secret);
            }
            done.store(true, Ordering::SeqCst);
        });
        let (mut reads, mut saw_a, mut saw_b) = (0, 0, 0);
        while !done.load(Ordering::SeqCst) || reads < 3 {
            if writer.is_finished() && !done.load(Ordering::SeqCst) {
                break; // the writer panicked; joined below
            }
            let got = get_pair(p, url);
            reads += 1;
            if got == a {
                saw_a += 1;
            } else if got == b {
                saw_b += 1;
            } else {
                done.store(true, Ordering::SeqCst);
                panic!(
                    "read {reads}: a mix: username {:?} with a secret of {} bytes that is neither value",
                    got.0,
                    got.1.len()
                );
            }
        }
        writer.join().expect("the writer failed");
        (reads, saw_a, saw_b)
    });
    assert_eq!(reads, saw_a + saw_b);
    assert_get(p, url, &a.0, &a.1);
    eprintln!("{reads} reads during {stores} stores: {saw_a} saw one value, {saw_b} the other");
    erase_ok(p, url);
}

fn ports_and_paths_are_kept_apart(p: &dyn TestEnv) {
    let keys = [
        "https://host.example",
        "https://host.example:5000",
        "https://host.example:5000/v2/",
        "https://host.example/v1/access-token",
        "http://host.example",
    ];
    for (i, k) in keys.iter().enumerate() {
        store_ok(p, k, &format!("user{i}"), &format!("secret{i}"));
    }
    for (i, k) in keys.iter().enumerate() {
        assert_get(p, k, &format!("user{i}"), &format!("secret{i}"));
    }
    assert_eq!(list_map(p).len(), keys.len());
    erase_ok(p, keys[1]);
    assert_not_found(p, keys[1]);
    assert_get(p, keys[2], "user2", "secret2");
}

/// docker's keys are exact: two URLs that differ only in case are two credentials, although
/// Credential Manager compares target names ignoring case (and Windows file names too).
fn urls_that_differ_only_in_case_are_kept_apart(p: &dyn TestEnv) {
    let (a, b) = ("https://Registry.example/V1", "https://registry.example/v1");
    store_ok(p, a, "upper", "UPPER-secret");
    store_ok(p, b, "lower", "lower-secret");
    assert_get(p, a, "upper", "UPPER-secret");
    assert_get(p, b, "lower", "lower-secret");
    assert_not_found(p, "https://REGISTRY.example/v1");
    let listed = list_map(p);
    assert_eq!(listed.get(a).map(String::as_str), Some("upper"));
    assert_eq!(listed.get(b).map(String::as_str), Some("lower"));
    erase_ok(p, a);
    assert_get(p, b, "lower", "lower-secret");
}

/// A URL longer than Credential Manager's 513-character user names is an ordinary key; one
/// longer than any target name is simply not there.
fn long_urls_are_keys_or_not_found(p: &dyn TestEnv) {
    let long = format!("https://long.example/{}", "p".repeat(600));
    assert_not_found(p, &long);
    erase_ok(p, &long);
    if p.wine() && p.credential_manager() {
        // Wine keeps credentials as registry keys, whose names hold 255 characters (Windows
        // allows 32767): the store fails in one line that says so, and nothing is left.
        let out = run(p, &["store"], store_request(&long, "u", "long-url-secret"));
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let line = stdout(&out);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.contains("did not keep the credential"), "{line}");
        assert_not_found(p, &long);
    } else {
        store_ok(p, &long, "u", "long-url-secret");
        assert_get(p, &long, "u", "long-url-secret");
        assert!(list_map(p).contains_key(&long));
        erase_ok(p, &long);
    }
    let huge = format!("https://huge.example/{}", "q".repeat(40_000));
    assert_not_found(p, &huge);
    erase_ok(p, &huge);
}

/// A service name with dots (Credential Manager's store crate splits target names at the
/// last dot) keeps its entries listable.
fn a_dotted_service_name_lists_its_entries(p: &dyn TestEnv) {
    let env = [("DOCKER_CREDENTIAL_HUB_SERVICE", "dch.team.v2")];
    let url = "https://dotted.example";
    let out = run_with(
        p,
        &env,
        &["store"],
        store_request(url, "dot", "dotted-secret"),
    );
    assert!(out.status.success(), "{}", describe(&out));
    let out = run_with(p, &env, &["list"], b"");
    assert_eq!(
        stdout(&out),
        format!("{{\"{url}\":\"dot\"}}\n"),
        "{}",
        describe(&out)
    );
    let out = run_with(p, &env, &["erase"], url.as_bytes());
    assert!(out.status.success(), "{}", describe(&out));
    let out = run_with(p, &env, &["list"], b"");
    assert_eq!(stdout(&out), "{}\n");
}

/// `version`, `doctor` and `configure --dry-run` run, find this very binary on PATH, and
/// speak the platform's language (no `\\?\` paths, no Unix shell hints on Windows).
fn version_doctor_and_configure_dry_run(p: &dyn TestEnv) {
    let out = run(p, &["version"], b"");
    assert!(
        stdout(&out).starts_with("docker-credential-hub v"),
        "{}",
        describe(&out)
    );
    let out = run(p, &["doctor"], b"");
    let all = stdout(&out) + &stderr(&out);
    let runs = all
        .lines()
        .find(|l| l.contains(" docker runs "))
        .unwrap_or_else(|| panic!("no 'docker runs' line: {all}"));
    assert!(runs.ends_with(", this binary"), "{runs}");
    assert!(all.contains("keychain: "), "{all}");
    assert!(all.contains("probe: wrote, read back and deleted"), "{all}");
    assert!(!all.contains(r"\\?\"), "{all}");
    let out = run(p, &["configure", "--dry-run"], b"");
    let all = stdout(&out) + &stderr(&out);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(all.contains("Dry run: nothing is changed."), "{all}");
    assert!(all.contains("would set \"credsStore\": \"hub\""), "{all}");
    assert!(!all.contains(r"\\?\"), "{all}");
    if p.windows() {
        assert!(
            !all.contains("~/.profile") && !all.contains("printf %s"),
            "{all}"
        );
    }
}

/// Every case above, on each of `backends`.
macro_rules! every_case_on {
    ($($backend:ident),+) => {
        on_backends!(
            [$($backend),+],
            needs [],
            [
                store_get_erase_list,
                protocol_errors_are_docker_s_exact_strings,
                large_secrets_round_trip_up_to_the_limit,
                a_secret_that_looks_like_a_manifest_is_kept_as_it_is,
                a_reader_never_sees_a_mix_of_two_large_values,
                ports_and_paths_are_kept_apart,
                urls_that_differ_only_in_case_are_kept_apart,
                long_urls_are_keys_or_not_found,
                a_dotted_service_name_lists_its_entries,
                version_doctor_and_configure_dry_run,
            ]
        );
    };
}

// The Windows binary under Wine, on the Credential Manager (`auto`) and the dpapi files.
#[cfg(target_os = "linux")]
every_case_on!(wine_wincred, wine_dpapi);

// The platform's own keychain, which `auto` picks.
#[cfg(any(target_os = "macos", windows))]
every_case_on!(native_keychain);

// The dpapi file store, natively.
#[cfg(windows)]
every_case_on!(native_dpapi);

/// Small values: on every store whose writes are whole (see the case's comment).
mod small_values {
    use super::a_reader_never_sees_a_mix_of_two_small_values;

    #[cfg(target_os = "linux")]
    on_backends!(
        [wine_dpapi],
        needs [],
        [a_reader_never_sees_a_mix_of_two_small_values]
    );

    #[cfg(any(target_os = "macos", windows))]
    on_backends!(
        [native_keychain],
        needs [],
        [a_reader_never_sees_a_mix_of_two_small_values]
    );

    #[cfg(windows)]
    on_backends!(
        [native_dpapi],
        needs [],
        [a_reader_never_sees_a_mix_of_two_small_values]
    );
}
