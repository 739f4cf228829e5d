//! The `pass` backend against the real `pass`, gpg and Debian's docker-credential-pass: the
//! same store works in place in both directions, nothing ever prompts, an undecryptable store
//! is a clear error (never "not found"), and `auto` finds it. (The whole protocol suite runs
//! on it too: `on_every_backend!` in protocol.rs.)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::harness::{NOT_FOUND, TestEnv, assert_get, list_map, store_ok, store_request};
use crate::support::mock_hub::{MockHub, PASSWORD, USERNAME};
use crate::support::output::{assert_one_line_error, describe, stderr, stdout};
use crate::support::pass::PassEnv;
use crate::support::tools::{helper_bin, require_tool};

fn peer(env: &PassEnv, action: &str, stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = env
        .tool("docker-credential-pass")
        .arg(action)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run docker-credential-pass");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Stored by Debian's docker-credential-pass, read by us; stored by us, read by it. The
/// layout is its own: `docker-credential-helpers/<base64url(URL)>/<Username>.gpg`.
#[test]
fn an_existing_docker_credential_pass_store_works_in_both_directions() {
    let Some(env) = PassEnv::new() else {
        return;
    };
    if !require_tool("docker-credential-pass") {
        return;
    }
    let theirs = "https://r.example:5000/v1/";
    let out = peer(
        &env,
        "store",
        &store_request(theirs, "bob", "s3cr3t-theirs"),
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        env.store_dir()
            .join("docker-credential-helpers/aHR0cHM6Ly9yLmV4YW1wbGU6NTAwMC92MS8=/bob.gpg")
            .is_file()
    );
    assert_get(&env, theirs, "bob", "s3cr3t-theirs");
    let ours = "https://x.example/~??/";
    store_ok(&env, ours, "<token>", "s3cr3t-ours");
    let out = peer(&env, "get", ours.as_bytes());
    assert!(out.status.success(), "{out:?}");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["Username"], "<token>");
    assert_eq!(got["Secret"], "s3cr3t-ours");
    let out = peer(&env, "list", b"");
    let listed: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed, list_map(&env));
    assert_eq!(listed.len(), 2);
    // Erased by it, gone for us; and the other way round.
    let out = peer(&env, "erase", theirs.as_bytes());
    assert!(out.status.success(), "{out:?}");
    let out = env.cmd().arg("get").write_stdin(theirs).output().unwrap();
    assert_eq!(stdout(&out), NOT_FOUND);
    let out = env.cmd().arg("erase").write_stdin(ours).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let out = peer(&env, "list", b"");
    assert_eq!(stdout(&out).trim(), "{}");
}

/// The cached Hub JWT is a pass entry too, but docker-credential-pass (and `list`) never
/// see it.
#[test]
fn the_hub_jwt_cache_is_hidden_from_list() {
    let Some(env) = PassEnv::new() else {
        return;
    };
    let hub = MockHub::start();
    let out = env
        .cmd()
        .env("DOCKER_HUB_API_URL", hub.url())
        .arg("store")
        .write_stdin(store_request(
            "https://index.docker.io/v1/",
            USERNAME,
            PASSWORD,
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(hub.issued().len(), 1, "the store logged in");
    let out = env
        .cmd()
        .env("DOCKER_HUB_API_URL", hub.url())
        .arg("token")
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), hub.last_issued());
    assert_eq!(hub.issued().len(), 1, "token came from the cache");
    assert_eq!(list_map(&env).len(), 1);
    if require_tool("docker-credential-pass") {
        let out = peer(&env, "list", b"");
        let listed: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
    }
}

/// A key with a passphrase and no agent holding it: no pinentry, no terminal, no hang; one
/// line within the deadline that is not "not found" and says how to unlock. The same for a
/// store whose secret key is missing.
#[test]
fn an_undecryptable_store_answers_at_once_with_the_fix_and_never_prompts() {
    let Some(env) = PassEnv::with_passphrase(Some("a-passphrase-nobody-types")) else {
        return;
    };
    store_ok(&env, "https://locked.example", "u", "locked-secret");
    env.kill_agent();
    for action in ["get", "list-then-get"] {
        let start = Instant::now();
        let out = env
            .cmd()
            .env("DOCKER_CREDENTIAL_HUB_TIMEOUT", "20")
            .arg("get")
            .write_stdin("https://locked.example")
            .output()
            .unwrap();
        let took = start.elapsed();
        let line = assert_one_line_error(&out);
        assert!(took < Duration::from_secs(10), "{action}: {took:?}");
        assert!(!line.contains(NOT_FOUND.trim_end()), "{line}");
        assert!(
            line.contains("passphrase") && line.contains("pass show"),
            "{line}"
        );
        assert!(!line.contains("locked-secret"));
    }
    // list needs no decryption at all.
    assert_eq!(list_map(&env).len(), 1);

    // The secret key gone from the keyring: another clear line.
    let Some(other) = PassEnv::new() else {
        return;
    };
    let entry_dir = env.store_dir().join("docker-credential-helpers");
    let target = other.store_dir().join("docker-credential-helpers");
    std::fs::create_dir_all(&target).unwrap();
    for e in std::fs::read_dir(&entry_dir).unwrap().flatten() {
        let dest = target.join(e.file_name());
        std::fs::create_dir_all(&dest).unwrap();
        for f in std::fs::read_dir(e.path()).unwrap().flatten() {
            std::fs::copy(f.path(), dest.join(f.file_name())).unwrap();
        }
    }
    let out = other
        .cmd()
        .arg("get")
        .write_stdin("https://locked.example")
        .output()
        .unwrap();
    let line = assert_one_line_error(&out);
    assert!(
        line.contains("not in your keyring") && line.contains("gpg --import"),
        "{line}"
    );
    assert!(!line.contains(NOT_FOUND.trim_end()), "{line}");
}

/// `auto` with no D-Bus session bus and an initialised password store picks pass (no reboot
/// warning: it persists), records it, and `doctor` says so.
#[test]
fn auto_prefers_an_initialised_password_store_over_keyutils() {
    let Some(env) = PassEnv::new() else {
        return;
    };
    let out = env
        .cmd()
        .env_remove("DOCKER_CREDENTIAL_HUB_BACKEND")
        .arg("store")
        .write_stdin(store_request("https://auto.example", "u", "auto-secret"))
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}",
        describe(&out)
    );
    assert!(!stderr(&out).contains("reboot"), "{}", describe(&out));
    assert!(
        env.store_dir()
            .join("docker-credential-helpers")
            .read_dir()
            .unwrap()
            .next()
            .is_some()
    );
    let record = env.home().join(".config/docker-credential-hub/backend");
    assert_eq!(std::fs::read_to_string(&record).unwrap(), "pass\n");
    let out = env
        .cmd()
        .env_remove("DOCKER_CREDENTIAL_HUB_BACKEND")
        .arg("doctor")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("keychain: pass password store (recorded in"),
        "{text}"
    );
    assert!(
        text.contains("pass store: ") && text.contains(&env.fingerprint),
        "{text}"
    );
    assert!(
        text.contains("backend record: ") && text.contains("says pass"),
        "{text}"
    );
}

/// The protocol path never inherits a terminal or stdin: pass runs detached even when the
/// helper itself has a terminal (run under `script`, a real pty).
#[test]
fn pass_never_reaches_the_terminal() {
    let Some(env) = PassEnv::with_passphrase(Some("another-passphrase")) else {
        return;
    };
    if !require_tool("script") {
        return;
    }
    store_ok(&env, "https://tty.example", "u", "tty-secret");
    env.kill_agent();
    let helper = helper_bin();
    let start = Instant::now();
    let out = env
        .tool("script")
        .args(["-qec"])
        .arg(format!(
            "printf https://tty.example | {} get",
            helper.display()
        ))
        .arg("/dev/null")
        .env("GPG_TTY", "/dev/tty")
        .output()
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let text = stdout(&out);
    assert!(text.contains("passphrase"), "{text}");
    assert!(
        !text.contains("Passphrase:") && !text.contains("Please enter"),
        "{text}"
    );
}
