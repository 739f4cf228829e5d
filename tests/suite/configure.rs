//! `configure`: migration into the keychain and the switch of docker's config.json, with
//! real keychains, the real docker CLI and Debian's docker-credential-secretservice.
//! Every failure path must leave config.json byte-identical.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::env;
use crate::support::harness::*;
use crate::support::keyring::{KeyringSession, KeyutilsEnv};
use crate::support::output::{assert_no_secret, describe, stderr, stdout};
use crate::support::registry::FakeRegistry;
use crate::support::tools::require_tool;
use crate::support::{file_mode, script};
use base64::Engine;
use serde_json::Value;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn config_path(env: &dyn TestEnv) -> PathBuf {
    env.docker_config_dir().join("config.json")
}

fn sidecar(env: &dyn TestEnv, suffix: &str) -> PathBuf {
    env.docker_config_dir().join(format!("config.json{suffix}"))
}

/// `docker-credential-hub configure ARGS` as after `./install.sh`, with `extra_path` after
/// the helper's directory on PATH and extra vars.
fn configure_with(
    env: &dyn TestEnv,
    args: &[&str],
    extra_path: Option<&Path>,
    vars: &[(&str, &str)],
) -> Output {
    let mut cmd = env.installed_cmd();
    cmd.arg("configure").args(args);
    if let Some(dir) = extra_path {
        cmd.env("PATH", env::path_with(&[&env::helper_dir(), dir]));
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("run configure")
}

fn configure(env: &dyn TestEnv, args: &[&str]) -> Output {
    configure_with(env, args, None, &[])
}

fn assert_ok(out: &Output, what: &str) {
    assert!(out.status.success(), "{what} failed: {}", describe(out));
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// Neither the secrets, nor their base64 forms, nor any secret field.
fn assert_no_secrets(text: &str, secrets: &[&str], what: &str) {
    for s in secrets {
        assert!(!text.contains(s), "{what} holds a secret: {text}");
        assert!(
            !text.contains(&b64(s)),
            "{what} holds a base64 secret: {text}"
        );
    }
    let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    for (key, entry) in doc["auths"].as_object().into_iter().flatten() {
        for field in entry.as_object().unwrap().keys() {
            assert!(
                !["auth", "username", "password", "identitytoken"]
                    .contains(&field.to_ascii_lowercase().as_str()),
                "{what}: auths.{key} still has {field}: {text}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Migration from plaintext `auths`, then the real docker CLI through the helper
// ---------------------------------------------------------------------------------------

const PLAIN_SECRETS: [&str; 4] = [
    "Hub-Secret-1111",
    "IdToken-Secret-2222",
    "Alice-Secret-3333",
    "Bob-Secret-4444",
];

fn plaintext_fixture() -> String {
    format!(
        r#"{{
	"auths": {{
		"{HUB_KEY}": {{"auth": "{}", "email": "hub@example.com"}},
		"ghcr.io": {{"identitytoken": "IdToken-Secret-2222"}},
		"registry.example.com:5000": {{"username": "alice", "password": "Alice-Secret-3333"}},
		"quay.io": {{"auth": "{}"}},
		"already.example.com": {{}}
	}},
	"psFormat": "table {{{{.ID}}}}\t{{{{.Image}}}}",
	"x-unknown-tool": {{"nested": [1, 2.5, {{"b": null, "a": true}}]}},
	"currentContext": "default",
	"proxies": {{"default": {{"httpProxy": "http://proxy:3128"}}}}
}}"#,
        b64("hubuser:Hub-Secret-1111"),
        b64("bob:Bob-Secret-4444")
    )
}

fn assert_plaintext_migrated(env: &dyn TestEnv) {
    assert_get(env, HUB_KEY, "hubuser", "Hub-Secret-1111");
    assert_get(env, "ghcr.io", "<token>", "IdToken-Secret-2222");
    assert_get(
        env,
        "registry.example.com:5000",
        "alice",
        "Alice-Secret-3333",
    );
    assert_get(env, "quay.io", "bob", "Bob-Secret-4444");
}

on_every_backend!(plaintext_auths_move_to_the_keychain_then_docker_logs_in_and_out);

fn plaintext_auths_move_to_the_keychain_then_docker_logs_in_and_out(env: &dyn TestEnv) {
    let path = config_path(env);
    let fixture = plaintext_fixture();
    std::fs::write(&path, &fixture).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before: Value = serde_json::from_str(&fixture).unwrap();

    let out = configure(env, &[]);
    assert_ok(&out, "configure");
    for secret in PLAIN_SECRETS {
        assert_no_secret(&out, secret);
        assert!(!stdout(&out).contains(secret), "{}", describe(&out));
    }
    let report = stdout(&out);
    for line in [
        format!("moved {HUB_KEY} (username hubuser) from config.json \"auths\""),
        "moved ghcr.io (identity token)".to_string(),
        "moved registry.example.com:5000 (username alice)".to_string(),
        "moved quay.io (username bob)".to_string(),
        "Configured: \"credsStore\": \"hub\" (was unset)".to_string(),
    ] {
        assert!(
            report.contains(&line),
            "missing {line:?}: {}",
            describe(&out)
        );
    }
    assert!(!report.contains("already.example.com"), "{report}");

    // Every credential is served by `get`.
    assert_plaintext_migrated(env);

    // config.json: no secret, every other key kept, in order, credsStore appended.
    let raw = std::fs::read_to_string(&path).unwrap();
    assert_no_secrets(&raw, &PLAIN_SECRETS, "config.json");
    let after: Value = serde_json::from_str(&raw).unwrap();
    let mut want_keys = keys(&before);
    want_keys.push("credsStore".into());
    assert_eq!(keys(&after), want_keys, "{raw}");
    for k in keys(&before).iter().filter(|k| *k != "auths") {
        assert_eq!(after[k], before[k], "{k} changed: {raw}");
    }
    assert_eq!(
        keys(&after["x-unknown-tool"]["nested"][2]),
        ["b", "a"],
        "{raw}"
    );
    assert_eq!(keys(&after["auths"]), keys(&before["auths"]), "{raw}");
    assert_eq!(
        after["auths"][HUB_KEY],
        serde_json::json!({"email": "hub@example.com"})
    );
    for k in [
        "ghcr.io",
        "registry.example.com:5000",
        "quay.io",
        "already.example.com",
    ] {
        assert_eq!(after["auths"][k], serde_json::json!({}), "{k}: {raw}");
    }
    assert_eq!(after["credsStore"], "hub");
    assert_eq!(file_mode(&path), 0o600, "config.json mode");

    // The backup: the previous content minus the secrets, mode 0600.
    let bak = sidecar(env, ".bak");
    assert_eq!(file_mode(&bak), 0o600, "config.json.bak mode");
    let bak_raw = std::fs::read_to_string(&bak).unwrap();
    assert_no_secrets(&bak_raw, &PLAIN_SECRETS, "config.json.bak");
    let bak_doc: Value = serde_json::from_str(&bak_raw).unwrap();
    assert_eq!(keys(&bak_doc), keys(&before), "{bak_raw}");
    assert!(bak_doc.get("credsStore").is_none(), "{bak_raw}");
    assert_eq!(bak_doc["psFormat"], before["psFormat"]);

    // The real docker CLI now logs in and out through the helper.
    if !require_tool("docker") {
        return;
    }
    const USER: &str = "reg-user";
    const PASSWORD: &str = "Reg-Pa55word-9d1c";
    let registry = FakeRegistry::start(USER, PASSWORD);
    let addr = registry.addr();
    let out = docker(
        env,
        &[],
        &["login", &addr, "-u", USER, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert_ok(&out, "docker login");
    assert!(
        stdout(&out).contains("Login Succeeded"),
        "{}",
        describe(&out)
    );
    assert_get(env, &addr, USER, PASSWORD);
    let raw = std::fs::read_to_string(&path).unwrap();
    assert_no_secrets(&raw, &[PASSWORD], "config.json after docker login");
    assert_no_secrets(&raw, &PLAIN_SECRETS, "config.json after docker login");

    let out = docker(env, &[], &["logout", &addr], "");
    assert_ok(&out, "docker logout");
    assert_not_found(env, &addr);
    // The migrated credentials are untouched by the other registry's logout.
    assert_plaintext_migrated(env);
}

// ---------------------------------------------------------------------------------------
// Migration from Debian's docker-credential-secretservice, and --undo back to it
// ---------------------------------------------------------------------------------------

fn secretservice(env: &dyn TestEnv, action: &str, stdin: &[u8]) -> Output {
    env::bounded(env.tool("docker-credential-secretservice"))
        .arg(action)
        .write_stdin(stdin)
        .output()
        .expect("run docker-credential-secretservice")
}

#[test]
fn the_previous_secretservice_helper_is_migrated_and_undo_puts_it_back() {
    if !require_tool("docker-credential-secretservice") {
        return;
    }
    let Some(env) = KeyringSession::start() else {
        return;
    };
    let entries = [
        (HUB_KEY, "hubuser", "SS-Hub-Secret-7777"),
        ("ghcr.io", "<token>", "SS-Token-Secret-8888"),
        ("localhost:5000", "local", "SS-Local-Secret-9999"),
    ];
    for (url, user, secret) in entries {
        let out = secretservice(&env, "store", &store_request(url, user, secret));
        assert_ok(&out, "docker-credential-secretservice store");
    }
    let path = config_path(&env);
    let fixture = format!(
        "{{\n\t\"auths\": {{\n\t\t\"{HUB_KEY}\": {{}},\n\t\t\"ghcr.io\": {{}},\n\t\t\"localhost:5000\": {{}}\n\t}},\n\t\"credsStore\": \"secretservice\",\n\t\"credHelpers\": {{\"gcr.io\": \"gcloud\"}}\n}}"
    );
    std::fs::write(&path, &fixture).unwrap();

    let out = configure(&env, &[]);
    assert_ok(&out, "configure");
    let report = stdout(&out);
    for (url, _, secret) in entries {
        assert!(
            report.contains(&format!("moved {url} ("))
                && report.contains("from docker-credential-secretservice"),
            "{url} not reported: {}",
            describe(&out)
        );
        assert_no_secret(&out, secret);
        assert!(!report.contains(secret));
    }
    assert!(
        report.contains("kept credHelpers \"gcr.io\": \"gcloud\""),
        "{report}"
    );
    assert!(report.contains("(was \"secretservice\")"), "{report}");

    // Every entry is now served by docker-credential-hub.
    for (url, user, secret) in entries {
        assert_get(&env, url, user, secret);
    }
    let listed = list_map(&env);
    assert_eq!(
        listed.keys().map(String::as_str).collect::<Vec<_>>(),
        ["ghcr.io", HUB_KEY, "localhost:5000"]
    );
    // The old helper's own entries are left where they were.
    let out = secretservice(&env, "list", b"unused");
    let old: Value = serde_json::from_slice(&out.stdout).expect("secretservice list");
    assert_eq!(old.as_object().map(|m| m.len()), Some(3), "{old}");

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(doc["credsStore"], "hub");
    assert_eq!(keys(&doc), ["auths", "credsStore", "credHelpers"]);
    assert_eq!(doc["credHelpers"]["gcr.io"], "gcloud");
    // Nothing moved out of config.json, so the backup is the previous file itself.
    assert_eq!(
        std::fs::read_to_string(sidecar(&env, ".bak")).unwrap(),
        fixture
    );

    // --undo puts "secretservice" back; the credentials stay in the keychain.
    let out = configure(&env, &["--undo"]);
    assert_ok(&out, "configure --undo");
    let text = stdout(&out);
    assert!(
        text.contains("put back \"credsStore\": \"secretservice\""),
        "{text}"
    );
    assert!(text.contains("docker-credential-hub erase"), "{text}");
    assert!(text.contains("docker logout"), "{text}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(doc["credsStore"], "secretservice");
    assert_eq!(keys(&doc), ["auths", "credsStore", "credHelpers"]);
    assert!(!sidecar(&env, ".hub-previous").exists());
    for (url, user, secret) in entries {
        assert_get(&env, url, user, secret);
    }
    let out = configure(&env, &["--undo"]);
    assert_ok(&out, "second configure --undo");
    assert!(
        stdout(&out).contains("Nothing to undo"),
        "{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------------------
// Failure paths: config.json stays byte-identical, exit status non-zero
// ---------------------------------------------------------------------------------------

fn assert_untouched(env: &dyn TestEnv, original: &[u8], out: &Output) {
    assert_eq!(
        std::fs::read(config_path(env)).unwrap(),
        original,
        "config.json changed: {}",
        describe(out)
    );
    assert!(!sidecar(env, ".bak").exists(), "a backup was written");
    assert!(
        !sidecar(env, ".hub-previous").exists(),
        "an undo record was written"
    );
    assert_ne!(out.status.code(), Some(0), "{}", describe(out));
    assert!(
        stderr(out).contains("config.json was not changed"),
        "{}",
        describe(out)
    );
}

#[test]
fn an_old_helper_that_fails_leaves_config_json_byte_identical() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let bin = tempfile::tempdir().unwrap();
    script(
        bin.path(),
        "docker-credential-broken",
        r#"case "$1" in
  list) printf '{"broken.example.com":"u"}' ;;
  get) echo "the keychain of this helper exploded"; exit 1 ;;
  *) exit 1 ;;
esac"#,
    );
    script(
        bin.path(),
        "docker-credential-brokenlist",
        r#"echo "cannot open the store"; exit 3"#,
    );
    for (helper, expect) in [
        (
            "broken",
            "`docker-credential-broken get broken.example.com` failed: exit 1: the keychain of this helper exploded",
        ),
        (
            "brokenlist",
            "`docker-credential-brokenlist list` failed: exit 3: cannot open the store",
        ),
    ] {
        let original = format!(
            "{{\"credsStore\": \"{helper}\", \"auths\": {{\"plain.example.com\": {{\"auth\": \"{}\"}}}}, \"k\": 1}}",
            b64("p:Plain-Secret-5555")
        );
        std::fs::write(config_path(&env), &original).unwrap();
        let out = configure_with(&env, &[], Some(bin.path()), &[]);
        assert_untouched(&env, original.as_bytes(), &out);
        assert!(stderr(&out).contains(expect), "{}", describe(&out));
        assert_no_secret(&out, "Plain-Secret-5555");
        // Nothing was read completely, so nothing was stored.
        assert_eq!(list_map(&env), Default::default());
    }
    // A credsStore whose helper is not installed at all.
    let original = r#"{"credsStore": "not-installed-xyz"}"#;
    std::fs::write(config_path(&env), original).unwrap();
    let out = configure(&env, &[]);
    assert_untouched(&env, original.as_bytes(), &out);
    assert!(
        stderr(&out).contains("`docker-credential-not-installed-xyz` is not on PATH"),
        "{}",
        describe(&out)
    );
}

#[test]
fn an_old_helper_that_hangs_is_stopped_after_the_timeout() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let bin = tempfile::tempdir().unwrap();
    script(
        bin.path(),
        "docker-credential-hangs",
        r#"case "$1" in
  list) printf '{"hang.example.com":"u"}' ;;
  get) exec sleep 300 ;;
esac"#,
    );
    script(bin.path(), "docker-credential-hangslist", "exec sleep 300");
    for helper in ["hangs", "hangslist"] {
        let original = format!("{{\"credsStore\": \"{helper}\"}}");
        std::fs::write(config_path(&env), &original).unwrap();
        let start = Instant::now();
        let out = configure_with(
            &env,
            &[],
            Some(bin.path()),
            &[("DOCKER_CREDENTIAL_HUB_TIMEOUT", "2")],
        );
        let took = start.elapsed();
        assert_untouched(&env, original.as_bytes(), &out);
        assert!(
            stderr(&out).contains("did not answer within 2 s"),
            "{}",
            describe(&out)
        );
        // Generous: the bound is 2 s per call; a hang would take 300 s.
        assert!(took < Duration::from_secs(60), "took {took:?}");
    }
}

#[test]
fn a_keychain_that_refuses_a_write_leaves_config_json_byte_identical() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    // A kernel key's name holds at most 4095 bytes; values of any size are split into
    // parts, so an over-long registry name is what keyutils refuses.
    let long_host = format!("big-{}.example.com", "x".repeat(5000));
    let big = "B".repeat(400);
    let original = format!(
        r#"{{"auths": {{"small.example.com": {{"auth": "{}"}}, "{long_host}": {{"username": "big", "password": "{big}"}}}}}}"#,
        b64("s:Small-Secret-6666")
    );
    std::fs::write(config_path(&env), &original).unwrap();
    let out = configure(&env, &[]);
    assert_untouched(&env, original.as_bytes(), &out);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot move {long_host} (username big)")) && err.contains("4095"),
        "{}",
        describe(&out)
    );
    assert!(!err.contains("BBBBBBBBBB"), "the secret reached stderr");
    assert_no_secret(&out, "Small-Secret-6666");
    // What was stored before the failure stays stored, and the report says so.
    assert!(
        err.contains(
            "1 credential(s) already copied to the keychain stay there (small.example.com)"
        ),
        "{err}"
    );
    assert_get(&env, "small.example.com", "s", "Small-Secret-6666");
}

#[test]
fn a_locked_collection_refuses_the_write_and_leaves_config_json_byte_identical() {
    if !require_tool("dbus-send") {
        return;
    }
    let Some(env) = KeyringSession::start() else {
        return;
    };
    let original = plaintext_fixture();
    std::fs::write(config_path(&env), &original).unwrap();
    env.lock_collection();
    let out = configure_with(&env, &[], None, &[("DOCKER_CREDENTIAL_HUB_TIMEOUT", "10")]);
    assert_untouched(&env, original.as_bytes(), &out);
    assert!(stderr(&out).contains("locked"), "{}", describe(&out));
    for secret in PLAIN_SECRETS {
        assert_no_secret(&out, secret);
    }
}

#[test]
fn invalid_json_is_refused_with_line_and_column() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let original = "{\n  \"auths\": {\"x\": {\"auth\": \"c2VjcmV0LXZhbHVl\"}}\n  \"credsStore\": \"desktop\"\n}";
    std::fs::write(config_path(&env), original).unwrap();
    let out = configure(&env, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(
        std::fs::read(config_path(&env)).unwrap(),
        original.as_bytes()
    );
    let err = stderr(&out);
    assert!(
        err.contains("is not valid JSON (syntax error at line 3 column 3)"),
        "{err}"
    );
    assert!(!err.contains("c2VjcmV0LXZhbHVl"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!sidecar(&env, ".bak").exists());
}

#[test]
fn the_kernel_keyring_fallback_is_not_trusted_with_plaintext_credentials() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let original = plaintext_fixture();
    std::fs::write(config_path(&env), &original).unwrap();
    // auto, with no D-Bus at all: the backend falls back to keyutils on its own.
    let mut cmd = env.installed_cmd();
    cmd.arg("configure")
        .env_remove("DOCKER_CREDENTIAL_HUB_BACKEND");
    let out = cmd.output().unwrap();
    assert_untouched(&env, original.as_bytes(), &out);
    let err = stderr(&out);
    assert!(err.contains("forgets everything at reboot"), "{err}");
    assert!(
        err.contains("DOCKER_CREDENTIAL_HUB_BACKEND=keyutils"),
        "{err}"
    );
    assert_eq!(list_map(&env), Default::default());
}

// ---------------------------------------------------------------------------------------
// --dry-run, repeat runs, --undo, a missing config
// ---------------------------------------------------------------------------------------

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let original = plaintext_fixture();
    std::fs::write(config_path(&env), &original).unwrap();
    let out = configure(&env, &["--dry-run"]);
    assert_ok(&out, "configure --dry-run");
    let text = stdout(&out);
    assert!(text.starts_with("Dry run: nothing is changed."), "{text}");
    for line in [
        format!(
            "would move {HUB_KEY} (username hubuser) from config.json \"auths\" to the keychain"
        ),
        "would move ghcr.io (identity token) from config.json \"auths\"".into(),
        "would move registry.example.com:5000 (username alice)".into(),
        "would move quay.io (username bob)".into(),
        "would write backup".into(),
        "would set \"credsStore\": \"hub\" (now unset)".into(),
    ] {
        assert!(text.contains(&line), "missing {line:?}: {text}");
    }
    for secret in PLAIN_SECRETS {
        assert!(!text.contains(secret));
        assert_no_secret(&out, secret);
    }
    assert_eq!(
        std::fs::read(config_path(&env)).unwrap(),
        original.as_bytes()
    );
    assert!(!sidecar(&env, ".bak").exists());
    assert!(!sidecar(&env, ".hub-previous").exists());
    assert_eq!(list_map(&env), Default::default());
}

#[test]
fn a_second_run_changes_nothing_and_undo_removes_the_key() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let path = config_path(&env);
    let original = format!(
        r#"{{"auths":{{"a.example.com":{{"auth":"{}"}}}},"z":1}}"#,
        b64("ua:Undo-Secret-1212")
    );
    std::fs::write(&path, &original).unwrap();
    assert_ok(&configure(&env, &[]), "configure");
    let configured = std::fs::read(&path).unwrap();
    let backup = std::fs::read(sidecar(&env, ".bak")).unwrap();

    let out = configure(&env, &[]);
    assert_ok(&out, "second configure");
    assert!(
        stdout(&out).starts_with("Already configured:") && stdout(&out).contains("nothing changed"),
        "{}",
        describe(&out)
    );
    assert_eq!(std::fs::read(&path).unwrap(), configured);
    assert_eq!(std::fs::read(sidecar(&env, ".bak")).unwrap(), backup);

    let out = configure(&env, &["--undo", "--dry-run"]);
    assert_ok(&out, "configure --undo --dry-run");
    assert!(
        stdout(&out).contains("would have removed \"credsStore\""),
        "{}",
        describe(&out)
    );
    assert_eq!(std::fs::read(&path).unwrap(), configured);

    let out = configure(&env, &["--undo"]);
    assert_ok(&out, "configure --undo");
    let text = stdout(&out);
    assert!(
        text.contains("removed \"credsStore\" (there was none before configure)"),
        "{text}"
    );
    assert!(
        text.contains("printf %s REGISTRY | docker-credential-hub erase"),
        "{text}"
    );
    assert!(text.contains("docker logout"), "{text}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(keys(&doc), ["auths", "z"]);
    assert_eq!(doc["auths"]["a.example.com"], serde_json::json!({}));
    assert_eq!(file_mode(&path), 0o600);
    // Credentials stay in the keychain.
    assert_get(&env, "a.example.com", "ua", "Undo-Secret-1212");
}

#[test]
fn a_missing_config_is_created_with_mode_0600() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    // Not even the directory exists yet.
    let dir = env.docker_config_dir().join("fresh");
    let out = env
        .installed_cmd()
        .arg("configure")
        .env("DOCKER_CONFIG", &dir)
        .output()
        .unwrap();
    assert_ok(&out, "configure");
    let path = dir.join("config.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc, serde_json::json!({"credsStore": "hub"}));
    assert_eq!(file_mode(&path), 0o600);
    assert_eq!(file_mode(&dir), 0o700);
    assert!(
        !dir.join("config.json.bak").exists(),
        "no previous content to back up"
    );
    assert!(
        stdout(&out).contains("Configured: \"credsStore\": \"hub\" (was unset)"),
        "{}",
        describe(&out)
    );
}

#[test]
fn configure_refuses_when_docker_could_not_find_the_helper() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let original = r#"{"auths": {}, "k": "v"}"#;
    std::fs::write(config_path(&env), original).unwrap();
    // The test environment's PATH holds neither the built binary nor one installed on this
    // machine (support/env.rs).
    let out = env.cmd().arg("configure").output().unwrap();
    assert_untouched(&env, original.as_bytes(), &out);
    assert!(
        stderr(&out).contains("docker-credential-hub is not on PATH, so docker could not run it"),
        "{}",
        describe(&out)
    );
}
