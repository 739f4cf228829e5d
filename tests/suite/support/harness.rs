//! The one harness for running the binary under test: `TestEnv` is a private keychain and the
//! environment the helper runs in there (a private gnome-keyring, kernel keyutils, a `pass`
//! store, the Windows binary under Wine, or the native keychain on macOS and Windows), and
//! the functions below run the protocol actions on any of them and check docker's exact
//! answers. A test body written against `&dyn TestEnv` runs on every backend
//! (`on_every_backend!`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use super::env;
use super::output::{assert_no_secret, describe, stdout};

/// The key docker keeps Docker Hub credentials under.
pub const HUB_KEY: &str = "https://index.docker.io/v1/";

/// Everything a test needs from a keychain environment.
pub trait TestEnv: Sync {
    /// The store the helper uses here, for messages: "secret-service", "keyutils", "pass",
    /// "wincred", "dpapi" or "macos-keychain".
    fn backend(&self) -> &'static str;

    /// Every variable the helper gets, and nothing else (support/env.rs).
    fn env(&self) -> Vec<(String, String)>;

    /// The helper under test with exactly `env()`.
    fn cmd(&self) -> assert_cmd::Command {
        env::helper_command(&self.env())
    }

    /// Another program (docker, secret-tool, gpg, …) in this environment.
    fn tool(&self, program: &str) -> std::process::Command {
        env::command(program, &self.env())
    }

    fn home(&self) -> &Path;

    fn docker_config_dir(&self) -> &Path;

    /// The helper as after `./install.sh`: its own directory first on PATH, where docker
    /// finds it (`configure` refuses to switch docker over otherwise).
    fn installed_cmd(&self) -> assert_cmd::Command {
        let mut cmd = self.cmd();
        cmd.env("PATH", env::path_with(&[&env::helper_dir()]));
        cmd
    }

    /// Windows, natively or under Wine, whatever the store.
    fn windows(&self) -> bool {
        matches!(self.backend(), "wincred" | "dpapi")
    }

    /// The Windows Credential Manager (as opposed to the dpapi files or macOS).
    fn credential_manager(&self) -> bool {
        self.backend() == "wincred"
    }

    /// Wine, whose Credential Manager keeps credentials as registry keys.
    fn wine(&self) -> bool {
        false
    }
}

/// The value of the variable `name` the helper gets in `env`.
pub fn var(env: &dyn TestEnv, name: &str) -> String {
    env::get(&env.env(), name)
        .unwrap_or_else(|| panic!("the test environment has no {name}"))
        .to_string()
}

// ---------------------------------------------------------------------------------------
// Running the protocol actions
// ---------------------------------------------------------------------------------------

/// Run `docker-credential-hub <args>` with `stdin`.
pub fn run(env: &dyn TestEnv, args: &[&str], stdin: impl Into<Vec<u8>>) -> Output {
    env.cmd()
        .args(args)
        .write_stdin(stdin)
        .output()
        .expect("run docker-credential-hub")
}

/// Run `docker-credential-hub <args>` with `stdin` and `extra` variables.
pub fn run_with(
    env: &dyn TestEnv,
    extra: &[(&str, &str)],
    args: &[&str],
    stdin: impl Into<Vec<u8>>,
) -> Output {
    env.cmd()
        .envs(extra.iter().copied())
        .args(args)
        .write_stdin(stdin)
        .output()
        .expect("run docker-credential-hub")
}

/// Erase every credential `list` shows, for a keychain shared with other tests or runs
/// (keyutils, Wine's, the native one). Best effort: a failing cleanup must not hide the
/// test's own result.
pub fn erase_all(env: &dyn TestEnv) {
    let Ok(out) = env.cmd().arg("list").output() else {
        return;
    };
    let listed: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    for url in listed.keys() {
        let _ = env.cmd().arg("erase").write_stdin(url.as_bytes()).output();
    }
}

/// The `store` request docker sends.
pub fn store_request(url: &str, user: &str, secret: &str) -> Vec<u8> {
    serde_json::json!({"ServerURL": url, "Username": user, "Secret": secret})
        .to_string()
        .into_bytes()
}

/// `store`, checking that the secret never reaches stderr.
pub fn store(env: &dyn TestEnv, url: &str, user: &str, secret: &str) -> Output {
    let out = run(env, &["store"], store_request(url, user, secret));
    assert_no_secret(&out, secret);
    out
}

/// `store` that must succeed silently on stdout.
pub fn store_ok(env: &dyn TestEnv, url: &str, user: &str, secret: &str) {
    let out = store(env, url, user, secret);
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "[{}] store {url:?} failed: {}",
        env.backend(),
        describe(&out)
    );
}

pub fn get(env: &dyn TestEnv, url: &str) -> Output {
    run(env, &["get"], url.as_bytes())
}

pub fn erase(env: &dyn TestEnv, url: &str) -> Output {
    run(env, &["erase"], url.as_bytes())
}

pub fn erase_ok(env: &dyn TestEnv, url: &str) {
    let out = erase(env, url);
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "[{}] erase {url:?} failed: {}",
        env.backend(),
        describe(&out)
    );
}

pub fn list(env: &dyn TestEnv) -> Output {
    run(env, &["list"], "unused")
}

/// `list` parsed; it must succeed.
pub fn list_map(env: &dyn TestEnv) -> BTreeMap<String, String> {
    let out = list(env);
    assert!(
        out.status.success(),
        "[{}] list failed: {}",
        env.backend(),
        describe(&out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("list printed no JSON object ({e}): {}", describe(&out)))
}

/// The exact `get` answer docker-credential-helpers prints (Go's encoder escapes <, >, &).
pub fn get_answer(url: &str, user: &str, secret: &str) -> String {
    let json = serde_json::json!({"ServerURL": url, "Username": user, "Secret": secret});
    // serde_json's `json!` map keeps insertion order (preserve_order is enabled).
    let mut line = json
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    line.push('\n');
    line
}

/// `get` must answer exactly `get_answer(url, user, secret)` with exit 0.
pub fn assert_get(env: &dyn TestEnv, url: &str, user: &str, secret: &str) {
    let out = get(env, url);
    assert_no_secret(&out, secret);
    assert!(
        out.status.success(),
        "[{}] get {url:?} failed: {}",
        env.backend(),
        describe(&out)
    );
    // A secret of 64 KiB in a failure message would hide the message; say where it differs.
    let (got, want) = (stdout(&out), get_answer(url, user, secret));
    if got != want {
        let at = got
            .bytes()
            .zip(want.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        panic!(
            "[{}] get {url:?}: the answer ({} bytes) differs from the expected one ({} bytes) at byte {at}: {}",
            env.backend(),
            got.len(),
            want.len(),
            describe(&out)
        );
    }
}

/// The credential `get` answers: (username, secret).
pub fn get_pair(env: &dyn TestEnv, url: &str) -> (String, String) {
    let out = get(env, url);
    assert!(
        out.status.success(),
        "[{}] get {url:?} failed: {}",
        env.backend(),
        describe(&out)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("get printed no JSON ({e}): {}", describe(&out)));
    assert_eq!(got["ServerURL"], url);
    let field = |k: &str| got[k].as_str().unwrap_or_default().to_string();
    (field("Username"), field("Secret"))
}

/// A secret of `len` printable, varied characters, deterministic for a seed: catches
/// truncation, reordering and parts of two values joined.
pub fn big_secret(len: usize, seed: usize) -> String {
    const ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/=";
    (0..len)
        .map(|i| ALPHABET[(i * 7919 + i / 3 + seed * 31) % ALPHABET.len()] as char)
        .collect()
}

/// docker's exact answer when there is no credential.
pub const NOT_FOUND: &str = "credentials not found in native keychain\n";

/// `get` must give docker's exact not-found answer.
pub fn assert_not_found(env: &dyn TestEnv, url: &str) {
    let out = get(env, url);
    assert_eq!(
        stdout(&out),
        NOT_FOUND,
        "[{}] get {url:?} should be not found: {}",
        env.backend(),
        describe(&out)
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "[{}] get {url:?}",
        env.backend()
    );
}

/// `docker` in `env` with no engine (it logs in client side), the helper first on PATH, and
/// `extra` variables (a `PATH` in `extra` goes first).
pub fn docker(env: &dyn TestEnv, extra: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
    let mut vars = env.env();
    let mut first = Vec::new();
    for (k, v) in extra {
        if *k == "PATH" {
            first.extend(std::env::split_paths(v));
        } else {
            env::set(&mut vars, k, *v);
        }
    }
    first.push(env::helper_dir());
    let first: Vec<&Path> = first.iter().map(|p| p.as_path()).collect();
    env::set(&mut vars, "PATH", env::path_with(&first));
    env::set(&mut vars, "DOCKER_HOST", "unix:///nonexistent.sock");
    env::bounded(env::command("docker", &vars))
        .args(args)
        .write_stdin(stdin)
        .output()
        .expect("run docker")
}
