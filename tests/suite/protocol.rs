//! The docker credential-helper protocol, byte for byte, against the real keychains: every
//! case runs on a private gnome-keyring Secret Service, on kernel keyutils and on `pass`.
//! Round trips, docker's exact answers and error strings, Go's JSON escaping, keys kept
//! apart by scheme, port and path, Docker Hub's aliases, refused invocations and bad input
//! (each leaving the stored credentials as they were), 100 KiB secrets and parallel stores.
//! Then the invocations that need no keychain (`version`, `--help`), no D-Bus at all, and a
//! locked or stopped Secret Service.

use std::collections::BTreeMap;

use crate::support::env;
use crate::support::harness::*;
use crate::support::keyring::KeyringSession;
use crate::support::output::{assert_no_secret, assert_one_line_error, describe, stderr, stdout};
use crate::support::tools::require_tool;
use docker_credential_hub::protocol::USAGE;

on_every_backend!(
    store_get_erase_list_round_trip,
    missing_server_url_is_refused,
    missing_username_is_refused,
    empty_secret_is_allowed,
    store_trims_nothing,
    newlines_inside_store_json_are_dropped,
    store_keys_match_case_insensitively,
    unknown_store_keys_are_ignored,
    second_store_replaces_the_first,
    get_trims_surrounding_whitespace,
    get_not_found_is_the_exact_docker_string,
    erase_of_a_missing_entry_succeeds,
    list_is_braces_when_empty_and_keys_are_exact,
    token_username_round_trips_with_go_escaping,
    ports_and_paths_on_one_host_are_kept_apart,
    http_and_https_are_kept_apart,
    hub_token_keys_are_separate_entries,
    hub_aliases_resolve_to_the_hub_key,
    hub_key_is_never_returned_for_other_urls,
    unknown_action_is_refused,
    extra_arguments_are_refused_and_not_echoed,
    empty_stdin_is_refused,
    invalid_json_is_refused,
    json_that_is_not_an_object_is_refused,
    stdin_over_one_mib_is_refused,
    invalid_utf8_is_refused,
    nul_byte_in_server_url_is_refused,
    large_secret,
    parallel_stores_and_erases,
);

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Store one entry so "nothing was stored" checks compare against a non-empty list.
fn baseline(env: &dyn TestEnv) -> BTreeMap<String, String> {
    store_ok(env, "https://baseline.example", "base", "baseline-secret");
    let before = list_map(env);
    assert_eq!(before, map(&[("https://baseline.example", "base")]));
    before
}

fn assert_unchanged(env: &dyn TestEnv, before: &BTreeMap<String, String>, case: &str) {
    assert_eq!(
        &list_map(env),
        before,
        "[{}] {case} changed the stored credentials",
        env.backend()
    );
}

// --- round trips -------------------------------------------------------------------------

fn store_get_erase_list_round_trip(env: &dyn TestEnv) {
    let url = "https://registry.example.com";
    assert_eq!(stdout(&list(env)), "{}\n");
    let out = store(env, url, "alice", "s3cret-RoundTrip");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "store printed {:?}", stdout(&out));
    assert_get(env, url, "alice", "s3cret-RoundTrip");
    let out = list(env);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "{\"https://registry.example.com\":\"alice\"}\n"
    );
    erase_ok(env, url);
    assert_not_found(env, url);
    assert_eq!(stdout(&list(env)), "{}\n");
}

fn missing_server_url_is_refused(env: &dyn TestEnv) {
    let before = baseline(env);
    for input in [
        r#"{"Username":"u","Secret":"missing-url-secret"}"#,
        r#"{"ServerURL":"","Username":"u","Secret":"missing-url-secret"}"#,
        r#"{"ServerURL":null,"Username":"u","Secret":"missing-url-secret"}"#,
    ] {
        let out = run(env, &["store"], input);
        assert_no_secret(&out, "missing-url-secret");
        assert_eq!(
            assert_one_line_error(&out),
            "no credentials server URL",
            "{input}"
        );
    }
    assert_unchanged(env, &before, "a store without ServerURL");
}

fn missing_username_is_refused(env: &dyn TestEnv) {
    let before = baseline(env);
    for input in [
        r#"{"ServerURL":"https://nouser.example","Secret":"missing-user-secret"}"#,
        r#"{"ServerURL":"https://nouser.example","Username":"","Secret":"missing-user-secret"}"#,
    ] {
        let out = run(env, &["store"], input);
        assert_no_secret(&out, "missing-user-secret");
        assert_eq!(
            assert_one_line_error(&out),
            "no credentials username",
            "{input}"
        );
    }
    assert_unchanged(env, &before, "a store without Username");
}

fn empty_secret_is_allowed(env: &dyn TestEnv) {
    store_ok(env, "https://empty.example", "u", "");
    assert_get(env, "https://empty.example", "u", "");
    let out = run(
        env,
        &["store"],
        r#"{"ServerURL":"https://nosecret.example","Username":"v"}"#,
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_get(env, "https://nosecret.example", "v", "");
}

fn store_trims_nothing(env: &dyn TestEnv) {
    store_ok(
        env,
        "https://trim.example",
        "  spaced user ",
        " \tpass word\t ",
    );
    assert_get(
        env,
        "https://trim.example",
        "  spaced user ",
        " \tpass word\t ",
    );
    // The key keeps its spaces too: `list` shows it exactly as stored.
    store_ok(
        env,
        " https://spaced-key.example ",
        "k",
        "spaced-key-secret",
    );
    let listed = list_map(env);
    assert_eq!(
        listed.get(" https://spaced-key.example "),
        Some(&"k".to_string())
    );
    assert!(!listed.contains_key("https://spaced-key.example"));
}

fn newlines_inside_store_json_are_dropped(env: &dyn TestEnv) {
    // Go reads the request line by line and joins the lines: CR LF and LF vanish, even
    // inside a string; a lone CR stays. The trailing newline is optional.
    let input = "{\"ServerURL\":\r\n\"https://crlf.example\",\n\"Username\":\"u\",\r\n\"Secret\":\"se\r\ncr\net\"}\r\n";
    let out = run(env, &["store"], input);
    assert!(out.status.success(), "{}", describe(&out));
    assert_get(env, "https://crlf.example", "u", "secret");

    let no_newline = r#"{"ServerURL":"https://nonl.example","Username":"u","Secret":"a\rb"}"#;
    let out = run(env, &["store"], no_newline);
    assert!(out.status.success(), "{}", describe(&out));
    assert_get(env, "https://nonl.example", "u", "a\rb");
}

fn store_keys_match_case_insensitively(env: &dyn TestEnv) {
    let out = run(
        env,
        &["store"],
        r#"{"serverurl":"https://case.example","USERNAME":"Bob","sEcReT":"Case-Secret"}"#,
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_get(env, "https://case.example", "Bob", "Case-Secret");
}

fn unknown_store_keys_are_ignored(env: &dyn TestEnv) {
    let out = run(
        env,
        &["store"],
        r#"{"Extra":{"nested":[1,2,{"x":null}]},"ServerURL":"https://extra.example","Username":"u","Secret":"extra-secret","Email":"a@b.c","n":5}"#,
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_get(env, "https://extra.example", "u", "extra-secret");
    assert_eq!(list_map(env), map(&[("https://extra.example", "u")]));
}

fn second_store_replaces_the_first(env: &dyn TestEnv) {
    store_ok(env, "https://replace.example", "first", "first-secret");
    store_ok(env, "https://replace.example", "second", "second-secret");
    assert_get(env, "https://replace.example", "second", "second-secret");
    assert_eq!(list_map(env), map(&[("https://replace.example", "second")]));
    // One erase removes it: there are no leftover copies.
    erase_ok(env, "https://replace.example");
    assert_not_found(env, "https://replace.example");
}

fn get_trims_surrounding_whitespace(env: &dyn TestEnv) {
    store_ok(env, "https://ws.example", "u", "ws-secret");
    let out = get(env, " \t https://ws.example \r\n");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        stdout(&out),
        get_answer("https://ws.example", "u", "ws-secret")
    );
    let out = erase(env, "  https://ws.example\n");
    assert!(out.status.success(), "{}", describe(&out));
    assert_not_found(env, "https://ws.example");
}

fn get_not_found_is_the_exact_docker_string(env: &dyn TestEnv) {
    let out = get(env, "https://never-stored.example");
    assert_eq!(out.stdout, NOT_FOUND.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    // docker treats this as an anonymous pull: nothing may reach the user's terminal.
    assert!(out.stderr.is_empty(), "{}", describe(&out));
    // Also after erase.
    store_ok(env, "https://gone.example", "u", "gone-secret");
    erase_ok(env, "https://gone.example");
    let out = get(env, "https://gone.example");
    assert_eq!(out.stdout, NOT_FOUND.as_bytes());
    assert_eq!(out.status.code(), Some(1));
}

fn erase_of_a_missing_entry_succeeds(env: &dyn TestEnv) {
    let out = erase(env, "https://missing.example");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(out.stdout.is_empty());
    // Twice in a row, as docker logout does with URL variants.
    store_ok(env, "https://twice.example", "u", "twice-secret");
    erase_ok(env, "https://twice.example");
    erase_ok(env, "https://twice.example");
}

fn list_is_braces_when_empty_and_keys_are_exact(env: &dyn TestEnv) {
    let out = list(env);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"{}\n");
    let entries = [
        ("registry.example:5000", "u1"),
        ("https://registry.example/v2/", "u2"),
        ("http://insecure.example", "u3"),
        ("UPPER.Example.COM", "u4"),
        ("https://ünïcode.example", "ü5"),
        ("localhost", "u6"),
    ];
    for (url, user) in entries {
        store_ok(env, url, user, &format!("secret-for-{user}"));
    }
    assert_eq!(list_map(env), map(&entries));
    // list ignores stdin entirely.
    let out = run(env, &["list"], "garbage that is not a URL");
    assert!(out.status.success());
    // Every listed key answers `get` (docker follows list with one get per key).
    for (url, user) in entries {
        assert_get(env, url, user, &format!("secret-for-{user}"));
    }
    // Exact bytes for a small case: Go's map encoding, sorted keys.
    for (url, _) in entries {
        erase_ok(env, url);
    }
    store_ok(env, "b.example", "bob", "b-secret");
    store_ok(env, "a.example", "amy", "a-secret");
    assert_eq!(
        stdout(&list(env)),
        "{\"a.example\":\"amy\",\"b.example\":\"bob\"}\n"
    );
}

fn token_username_round_trips_with_go_escaping(env: &dyn TestEnv) {
    store_ok(
        env,
        "https://tok.example",
        "<token>",
        "identity-token-value",
    );
    let out = get(env, "https://tok.example");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        stdout(&out),
        "{\"ServerURL\":\"https://tok.example\",\"Username\":\"\\u003ctoken\\u003e\",\"Secret\":\"identity-token-value\"}\n"
    );
    assert_eq!(
        stdout(&list(env)),
        "{\"https://tok.example\":\"\\u003ctoken\\u003e\"}\n"
    );
    assert_eq!(list_map(env), map(&[("https://tok.example", "<token>")]));
}

fn ports_and_paths_on_one_host_are_kept_apart(env: &dyn TestEnv) {
    let keys = [
        "reg.example",
        "reg.example:5000",
        "reg.example:5001",
        "https://reg.example",
        "https://reg.example:5000",
        "https://reg.example/v2/",
        "https://reg.example/team-a/",
        "https://reg.example/team-b/",
    ];
    for (i, url) in keys.iter().enumerate() {
        store_ok(env, url, &format!("user{i}"), &format!("secret-number-{i}"));
    }
    for (i, url) in keys.iter().enumerate() {
        assert_get(env, url, &format!("user{i}"), &format!("secret-number-{i}"));
    }
    for other in [
        "reg.example:5002",
        "https://reg.example:5001",
        "https://reg.example/",
        "https://reg.example/team-c/",
        "reg.example/v2/",
    ] {
        assert_not_found(env, other);
    }
    erase_ok(env, "reg.example:5000");
    assert_not_found(env, "reg.example:5000");
    assert_get(env, "reg.example:5001", "user2", "secret-number-2");
    assert_get(env, "reg.example", "user0", "secret-number-0");
    assert_eq!(list_map(env).len(), keys.len() - 1);
}

fn http_and_https_are_kept_apart(env: &dyn TestEnv) {
    store_ok(env, "http://scheme.example", "plain", "plain-secret");
    assert_not_found(env, "https://scheme.example");
    assert_not_found(env, "scheme.example");
    store_ok(env, "https://scheme.example", "tls", "tls-secret");
    assert_get(env, "http://scheme.example", "plain", "plain-secret");
    assert_get(env, "https://scheme.example", "tls", "tls-secret");
    erase_ok(env, "https://scheme.example");
    assert_get(env, "http://scheme.example", "plain", "plain-secret");
}

/// docker's web login (CLI 27.2+) stores its OAuth tokens under the Docker ID, the refresh
/// secret as `<refresh>..<clientID>` (docker/cli `internal/oauth/manager/manager.go`).
fn hub_token_keys_are_separate_entries(env: &dyn TestEnv) {
    let access = "https://index.docker.io/v1/access-token";
    let refresh = "https://index.docker.io/v1/refresh-token";
    let refresh_secret = "refresh-token-value..L4v0dmlNBpYUjGGab0C2JtgTgXr1Qz4d";
    store_ok(env, HUB_KEY, "hubuser", "hub-password-1");
    store_ok(env, access, "hubuser", "access-token-value");
    store_ok(env, refresh, "hubuser", refresh_secret);
    assert_get(env, HUB_KEY, "hubuser", "hub-password-1");
    assert_get(env, access, "hubuser", "access-token-value");
    assert_get(env, refresh, "hubuser", refresh_secret);
    assert_eq!(
        list_map(env),
        map(&[
            (HUB_KEY, "hubuser"),
            (access, "hubuser"),
            (refresh, "hubuser")
        ])
    );
    erase_ok(env, HUB_KEY);
    assert_not_found(env, HUB_KEY);
    assert_get(env, access, "hubuser", "access-token-value");
    assert_get(env, refresh, "hubuser", refresh_secret);
}

fn hub_aliases_resolve_to_the_hub_key(env: &dyn TestEnv) {
    store_ok(env, HUB_KEY, "hubuser", "hub-alias-secret");
    for alias in [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "https://docker.io",
        "https://index.docker.io",
        "https://registry-1.docker.io",
        "docker.io/v1/",
        "index.docker.io/v1/",
        "https://index.docker.io/v1",
        "https://docker.io/v1/",
        "https://registry-1.docker.io/v1/",
    ] {
        // The answer names the URL docker asked for, as docker-credential-helpers does.
        assert_get(env, alias, "hubuser", "hub-alias-secret");
    }
}

fn hub_key_is_never_returned_for_other_urls(env: &dyn TestEnv) {
    store_ok(env, HUB_KEY, "hubuser", "hub-strict-secret");
    for other in [
        "http://index.docker.io/v1/",
        "http://docker.io",
        "https://index.docker.io:443/v1/",
        "docker.io:5000",
        "https://index.docker.io/v1/access-token",
        "https://index.docker.io/v1/refresh-token",
        "https://index.docker.io/v2/",
        "https://registry-1.docker.io/v2/",
        "evil-docker.io",
        "docker.io.evil.example",
        "https://user@index.docker.io/v1/",
        "ghcr.io",
    ] {
        assert_not_found(env, other);
    }
    // Never the other way round: an alias key does not answer for the Hub key.
    erase_ok(env, HUB_KEY);
    store_ok(env, "docker.io", "aliasuser", "alias-key-secret");
    assert_not_found(env, HUB_KEY);
    assert_not_found(env, "index.docker.io");
    assert_get(env, "docker.io", "aliasuser", "alias-key-secret");
}

// --- invocation errors -------------------------------------------------------------------

fn unknown_action_is_refused(env: &dyn TestEnv) {
    let before = baseline(env);
    for action in ["frobnicate", "STORE", "Get", "--store"] {
        let out = run(
            env,
            &[action],
            store_request("https://u.example", "u", "unknown-action-secret"),
        );
        assert_no_secret(&out, "unknown-action-secret");
        assert_eq!(
            assert_one_line_error(&out),
            format!("docker-credential-hub: unknown action: {action}")
        );
    }
    assert_unchanged(env, &before, "an unknown action");
}

fn extra_arguments_are_refused_and_not_echoed(env: &dyn TestEnv) {
    let before = baseline(env);
    let extra = "hunter2-in-argv";
    for action in ["store", "get", "erase", "list"] {
        let stdin = if action == "store" {
            store_request("https://argv.example", "u", "argv-secret")
        } else {
            b"https://baseline.example".to_vec()
        };
        let out = run(env, &[action, extra], stdin);
        let line = assert_one_line_error(&out);
        assert!(
            !line.contains(extra),
            "{action}: extra argument echoed: {line}"
        );
        assert!(
            !stderr(&out).contains(extra),
            "{action}: extra argument on stderr"
        );
        assert_no_secret(&out, "argv-secret");
    }
    assert_unchanged(env, &before, "an action with extra arguments");
}

// --- bad input ---------------------------------------------------------------------------

fn empty_stdin_is_refused(env: &dyn TestEnv) {
    let before = baseline(env);
    for input in ["", "\n", "  \r\n\t"] {
        let out = run(env, &["store"], input);
        assert_one_line_error(&out);
        for action in ["get", "erase"] {
            let out = run(env, &[action], input);
            assert_eq!(
                assert_one_line_error(&out),
                "no credentials server URL",
                "{action} {input:?}"
            );
        }
    }
    assert_unchanged(env, &before, "empty stdin");
}

fn invalid_json_is_refused(env: &dyn TestEnv) {
    let before = baseline(env);
    for input in [
        r#"{"ServerURL":"https://bad.example","Username":"u","Secret":"topsecret-json"#,
        r#"{"ServerURL":"https://bad.example","Username":"u","Secret":topsecret-json}"#,
        r#"{"ServerURL":"https://bad.example",,"Secret":"topsecret-json"}"#,
        r#"ServerURL=https://bad.example Secret=topsecret-json"#,
        r#"{"ServerURL":5,"Username":"u","Secret":"topsecret-json"}"#,
    ] {
        let out = run(env, &["store"], input);
        let line = assert_one_line_error(&out);
        assert!(
            !line.contains("topsecret"),
            "error echoes the input: {line}"
        );
        assert_no_secret(&out, "topsecret-json");
    }
    assert_unchanged(env, &before, "invalid JSON");
}

fn json_that_is_not_an_object_is_refused(env: &dyn TestEnv) {
    let before = baseline(env);
    for input in [
        r#"["https://arr.example","u","array-secret"]"#,
        r#""https://str.example""#,
        "42",
        "true",
        "null",
    ] {
        let out = run(env, &["store"], input);
        assert_one_line_error(&out);
    }
    assert_unchanged(env, &before, "JSON that is not an object");
}

fn stdin_over_one_mib_is_refused(env: &dyn TestEnv) {
    const MIB: usize = 1024 * 1024;
    let before = baseline(env);
    let head = r#"{"ServerURL":"https://big.example","Username":"u","Secret":""#;
    let tail = r#""}"#;
    for total in [MIB + 1, 2 * MIB] {
        let mut input = head.as_bytes().to_vec();
        input.resize(total - tail.len(), b'A');
        input.extend_from_slice(tail.as_bytes());
        assert_eq!(input.len(), total);
        let out = run(env, &["store"], input);
        let line = assert_one_line_error(&out);
        assert!(line.contains("1 MiB"), "{line}");
        assert!(!stderr(&out).contains("AAAAAAAAAAAAAAAA"));
    }
    let mut url = b"https://big.example/".to_vec();
    url.resize(MIB + 1, b'a');
    for action in ["get", "erase"] {
        let out = run(env, &[action], url.clone());
        assert!(assert_one_line_error(&out).contains("1 MiB"));
    }
    assert_unchanged(env, &before, "stdin over 1 MiB");
}

fn invalid_utf8_is_refused(env: &dyn TestEnv) {
    let before = baseline(env);
    let store_input: &[u8] =
        b"{\"ServerURL\":\"https://utf.example\",\"Username\":\"u\xff\xfe\",\"Secret\":\"utf8-secret\"}";
    let out = run(env, &["store"], store_input);
    let line = assert_one_line_error(&out);
    assert!(line.contains("UTF-8"), "{line}");
    for action in ["get", "erase"] {
        let out = run(env, &[action], b"https://baseline\xff.example".as_slice());
        assert!(assert_one_line_error(&out).contains("UTF-8"));
    }
    assert_unchanged(env, &before, "invalid UTF-8");
}

fn nul_byte_in_server_url_is_refused(env: &dyn TestEnv) {
    let before = baseline(env);
    for input in [
        r#"{"ServerURL":"https://nul.example\u0000evil","Username":"u","Secret":"nul-secret"}"#,
        r#"{"ServerURL":"\u0000","Username":"u","Secret":"nul-secret"}"#,
    ] {
        let out = run(env, &["store"], input);
        assert!(assert_one_line_error(&out).contains("NUL"));
        assert_no_secret(&out, "nul-secret");
    }
    for action in ["get", "erase"] {
        let out = run(env, &[action], b"https://baseline.example\0x".as_slice());
        assert!(assert_one_line_error(&out).contains("NUL"));
    }
    assert_unchanged(env, &before, "a NUL byte in ServerURL");
}

// --- size and concurrency ----------------------------------------------------------------

fn large_secret(env: &dyn TestEnv) {
    // 64 KiB: the Go helpers break here (bufio.Scanner's 64 KiB line limit). On keyutils a
    // key holds at most 32767 bytes, so the helper splits the value into parts.
    let secret = big_secret(64 * 1024, 0);
    let out = store(env, "https://large.example", "u", &secret);
    assert!(out.status.success(), "{}", describe(&out));
    assert_get(env, "https://large.example", "u", &secret);
    assert_eq!(list_map(env), map(&[("https://large.example", "u")]));
    // Replacing it with a small value, then a larger one again, never mixes the two.
    store_ok(env, "https://large.example", "u2", "small");
    assert_get(env, "https://large.example", "u2", "small");
    let bigger = big_secret(100 * 1024, 0);
    store_ok(env, "https://large.example", "u3", &bigger);
    assert_get(env, "https://large.example", "u3", &bigger);
    erase_ok(env, "https://large.example");
    assert_not_found(env, "https://large.example");
    assert_eq!(list_map(env), BTreeMap::new());
}

fn parallel_stores_and_erases(env: &dyn TestEnv) {
    const N: usize = 32;
    let url = |i: usize| format!("https://parallel-{i}.example:5000");
    let outputs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                s.spawn(move || {
                    store(
                        env,
                        &url(i),
                        &format!("user{i}"),
                        &format!("par-secret-{i}"),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, out) in outputs.iter().enumerate() {
        assert!(out.status.success(), "store {i}: {}", describe(out));
    }
    let expected: BTreeMap<String, String> = (0..N).map(|i| (url(i), format!("user{i}"))).collect();
    assert_eq!(list_map(env), expected);
    for i in [0, N / 2, N - 1] {
        assert_get(
            env,
            &url(i),
            &format!("user{i}"),
            &format!("par-secret-{i}"),
        );
    }
    let outputs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|i| s.spawn(move || erase(env, &url(i))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, out) in outputs.iter().enumerate() {
        assert!(out.status.success(), "erase {i}: {}", describe(out));
    }
    assert_eq!(stdout(&list(env)), "{}\n");
}

// --- invocations that need no keychain ----------------------------------------------------

/// The helper with a HOME and runtime directory of its own and nothing else: no keychain,
/// no D-Bus.
fn bare() -> (tempfile::TempDir, assert_cmd::Command) {
    let dir = tempfile::tempdir().unwrap();
    let cmd = env::helper_command(&env::base_vars(dir.path(), dir.path()));
    (dir, cmd)
}

#[test]
fn version_prints_name_and_cargo_version() {
    let expected = format!("docker-credential-hub v{}\n", env!("CARGO_PKG_VERSION"));
    for arg in ["version", "-v", "--version"] {
        let (_dir, mut cmd) = bare();
        let out = cmd.arg(arg).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{arg}");
        assert_eq!(stdout(&out), expected, "{arg}");
    }
}

#[test]
fn help_prints_usage_and_succeeds() {
    for arg in ["-h", "--help"] {
        let (_dir, mut cmd) = bare();
        let out = cmd.arg(arg).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{arg}");
        let out = stdout(&out);
        assert_eq!(out.lines().next(), Some(USAGE), "{arg}");
        for action in ["store", "get", "erase", "list", "version"] {
            assert!(out.contains(action), "{arg} does not mention {action}");
        }
    }
}

#[test]
fn no_action_prints_the_usage_line_and_fails() {
    assert!(USAGE.starts_with("Usage: docker-credential-hub <store|get|erase|list|version"));
    let (_dir, mut cmd) = bare();
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), format!("{USAGE}\n"));
}

#[test]
fn secret_service_without_any_dbus_is_a_clear_error() {
    for (action, stdin) in [
        (
            "store",
            store_request("https://nobus.example", "u", "no-bus-secret"),
        ),
        ("get", b"https://nobus.example".to_vec()),
        ("erase", b"https://nobus.example".to_vec()),
        ("list", Vec::new()),
    ] {
        let (_dir, mut cmd) = bare();
        let out = cmd
            .env("DOCKER_CREDENTIAL_HUB_BACKEND", "secret-service")
            .arg(action)
            .write_stdin(stdin)
            .output()
            .unwrap();
        let line = assert_one_line_error(&out);
        assert!(line.contains("Secret Service"), "{action}: {line}");
        assert!(
            line.contains("no D-Bus session bus"),
            "{action}: the cause (no D-Bus session bus) is not named: {line}"
        );
        assert!(
            line.contains("DOCKER_CREDENTIAL_HUB_BACKEND=keyutils"),
            "{action}: no fix offered: {line}"
        );
        assert_ne!(format!("{line}\n"), NOT_FOUND);
        assert_no_secret(&out, "no-bus-secret");
        assert!(!line.contains("no-bus-secret"));
    }
}

// --- Secret Service faults ------------------------------------------------------------------

#[test]
fn locked_collection_is_a_clear_error_and_stores_nothing() {
    let Some(s) = KeyringSession::start() else {
        return;
    };
    store_ok(&s, "https://locked.example", "u", "locked-secret-1");
    s.lock_collection();

    let out = get(&s, "https://locked.example");
    let line = assert_one_line_error(&out);
    assert_ne!(
        format!("{line}\n"),
        NOT_FOUND,
        "a locked keyring is not 'not found'"
    );
    assert!(line.contains("locked"), "{line}");

    let out = store(&s, "https://new.example", "u2", "locked-secret-2");
    let line = assert_one_line_error(&out);
    assert!(line.contains("locked"), "{line}");
    assert!(!line.contains("locked-secret-2"));

    let out = erase(&s, "https://locked.example");
    assert!(assert_one_line_error(&out).contains("locked"));

    // list may fail (one line) or answer from attributes, but never panic or print junk.
    let out = list(&s);
    if !out.status.success() {
        assert_one_line_error(&out);
    }

    // After an unlock the keyring holds exactly what it held before the lock.
    s.restart_keyring_daemon();
    assert_eq!(list_map(&s), map(&[("https://locked.example", "u")]));
    assert_get(&s, "https://locked.example", "u", "locked-secret-1");
}

#[test]
fn stopped_secret_service_is_an_error_not_not_found() {
    let Some(s) = KeyringSession::start() else {
        return;
    };
    store_ok(&s, "https://stopped.example", "u", "stopped-secret");
    s.kill_keyring_daemon();
    for action in ["get", "erase", "list"] {
        let out = run(&s, &[action], "https://stopped.example");
        let line = assert_one_line_error(&out);
        assert_ne!(format!("{line}\n"), NOT_FOUND, "{action}");
        assert!(line.contains("Secret Service"), "{action}: {line}");
    }
    let out = store(&s, "https://other.example", "u", "stopped-secret-2");
    assert_one_line_error(&out);
    s.restart_keyring_daemon();
    assert_get(&s, "https://stopped.example", "u", "stopped-secret");
    assert_eq!(list_map(&s), map(&[("https://stopped.example", "u")]));
}

#[test]
fn credentials_live_in_the_private_gnome_keyring() {
    let Some(s) = KeyringSession::start() else {
        return;
    };
    if !require_tool("secret-tool") {
        return;
    }
    store_ok(&s, "https://visible.example", "u", "visible-secret");
    let out = s
        .tool("secret-tool")
        .args(["search", "--all", "service", "docker-credential-hub"])
        .output()
        .unwrap();
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(all.contains("https://visible.example"), "{all}");
    assert!(all.contains("visible-secret"), "{all}");
}
