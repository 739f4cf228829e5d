//! A real `pass` store for the tests: a throwaway GPG key (ed25519, no passphrase unless
//! asked) in a temporary GNUPGHOME, `pass init`, and on drop the gpg-agent killed and every
//! file removed. Nothing of the developer's GnuPG or password store is touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use super::env;
use super::harness::TestEnv;
use super::keyring::{keychain_vars, private_dir};
use super::tools::require_tool;

pub struct PassEnv {
    root: TempDir,
    pub fingerprint: String,
    docker_config: PathBuf,
    home: PathBuf,
    runtime: PathBuf,
}

impl PassEnv {
    /// A store encrypted for a new key without a passphrase; `None` (after a loud SKIP)
    /// when pass or gpg are missing.
    pub fn new() -> Option<PassEnv> {
        PassEnv::with_passphrase(None)
    }

    /// A store whose key has `passphrase`, with no gpg-agent holding it: decrypting needs a
    /// passphrase that may not be asked for.
    pub fn with_passphrase(passphrase: Option<&str>) -> Option<PassEnv> {
        if !require_tool("pass") || !require_tool("gpg") || !require_tool("gpgconf") {
            return None;
        }
        // Short: gpg-agent's socket path must fit in 108 bytes.
        let root = tempfile::Builder::new()
            .prefix("dchp")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let mut env = PassEnv {
            docker_config: private_dir(&root.path().join("docker")),
            home: private_dir(&root.path().join("h")),
            runtime: private_dir(&root.path().join("r")),
            fingerprint: String::new(),
            root,
        };
        private_dir(&env.gnupg());
        // Passphrase hashing tuned for speed: a throwaway key.
        std::fs::write(env.gnupg().join("gpg-agent.conf"), "s2k-count 65536\n").unwrap();
        let fingerprint = init_store(
            &|program| env.tool(program),
            "Pass Test <pass-test@example.invalid>",
            passphrase,
        );
        if passphrase.is_some() {
            // Forget the passphrase the key generation left in the agent.
            env.kill_agent();
        }
        env.fingerprint = fingerprint;
        Some(env)
    }

    pub fn gnupg(&self) -> PathBuf {
        self.root.path().join("g")
    }

    pub fn store_dir(&self) -> PathBuf {
        self.root.path().join("store")
    }

    pub fn kill_agent(&self) {
        let _ = self
            .tool("gpgconf")
            .args(["--kill", "all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A new GPG key for `user_id` (with `passphrase`, or none) and `pass init` with it, each
/// program made by `tool` (the environment, and the user it runs as). Returns the key's
/// fingerprint.
pub fn init_store(
    tool: &dyn Fn(&str) -> Command,
    user_id: &str,
    passphrase: Option<&str>,
) -> String {
    let mut keygen = tool("gpg");
    keygen.args(["--batch", "--quiet"]);
    match passphrase {
        Some(p) => keygen.args(["--pinentry-mode", "loopback", "--passphrase", p]),
        None => keygen.args(["--passphrase", ""]),
    };
    keygen.args([
        "--quick-generate-key",
        user_id,
        "future-default",
        "default",
        "never",
    ]);
    let out = keygen.output().expect("run gpg");
    assert!(out.status.success(), "gpg key generation failed: {out:?}");
    let out = tool("gpg")
        .args(["--batch", "--with-colons", "--list-secret-keys"])
        .output()
        .expect("run gpg");
    let fingerprint = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .expect("a fingerprint");
    let out = tool("pass")
        .args(["init", &fingerprint])
        .output()
        .expect("run pass");
    assert!(out.status.success(), "pass init failed: {out:?}");
    fingerprint
}

impl TestEnv for PassEnv {
    fn env(&self) -> Vec<(String, String)> {
        let mut env = keychain_vars(&self.home, &self.runtime, &self.docker_config, "pass");
        env.extend([
            ("GNUPGHOME".into(), self.gnupg().display().to_string()),
            (
                "PASSWORD_STORE_DIR".into(),
                self.store_dir().display().to_string(),
            ),
        ]);
        env
    }

    /// gpg, pass or docker-credential-pass in this store's environment, reading no stdin.
    fn tool(&self, program: &str) -> std::process::Command {
        let mut c = env::command(program, &self.env());
        c.stdin(Stdio::null());
        c
    }

    fn home(&self) -> &Path {
        &self.home
    }

    fn docker_config_dir(&self) -> &Path {
        &self.docker_config
    }

    fn backend(&self) -> &'static str {
        "pass"
    }
}

impl Drop for PassEnv {
    fn drop(&mut self) {
        self.kill_agent();
    }
}
