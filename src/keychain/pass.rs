//! `pass`, the standard unix password manager (GPG-encrypted files): persistent storage for
//! headless Linux. It drives the real `pass` CLI, in docker-credential-pass's layout, so that
//! an existing store works in place, in both directions:
//!
//! `$PASSWORD_STORE_DIR/docker-credential-helpers/<base64url(ServerURL)>/<Username>.gpg`
//!
//! (URL-safe base64 with padding, as Go's `base64.URLEncoding`). `list` reads the directory
//! tree and runs no gpg at all; `get` decrypts one file. Another keychain service name
//! (`DOCKER_CREDENTIAL_HUB_SERVICE`) lives beside it under `docker-credential-hub.<name>`,
//! and the helper's private values (the Hub JWT cache) under `docker-credential-hub.internal`,
//! where docker-credential-pass, which lists only its own directory, never sees them.
//!
//! Nothing here may prompt: gpg runs with `--batch --no-tty --pinentry-mode=error` (a bare
//! `--batch` still starts pinentry, which hangs on a terminal or a desktop agent), stdin is a
//! pipe, the child has no controlling terminal, and a git-backed store never signs commits.
//! Failures are classified from gpg's machine-readable status lines (`--status-fd=2`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;

use super::{DEFAULT_SERVICE, Keychain, KeychainError, Result, Stored};
use crate::child::{self, ChildError};
use crate::deadline::Deadline;
use crate::lock::FileLock;
use crate::secret::Secret;

/// docker-credential-pass's directory, for the default service.
const DOCKER_PREFIX: &str = "docker-credential-helpers";
const INTERNAL_PREFIX: &str = "docker-credential-hub.internal";
/// gpg must fail instead of asking: no pinentry, no terminal, no network key lookup.
const NO_PROMPT: &str = "--batch --no-tty --pinentry-mode=error --no-auto-key-locate --status-fd=2";

/// What went wrong with the password store.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error(
        "`pass` is not installed; install it (apt-get install pass) or choose another backend with DOCKER_CREDENTIAL_HUB_BACKEND"
    )]
    NotInstalled,
    #[error(
        "the password store {} is not initialised; run `pass init <your GPG key id>` (or set PASSWORD_STORE_DIR to your store)",
        crate::fs::display(dir)
    )]
    Uninitialised { dir: PathBuf },
    #[error(
        "gpg cannot decrypt {entry}: the secret key it was encrypted for is not in your keyring (GNUPGHOME); import it with `gpg --import`, or re-encrypt the store with `pass init <key id>`"
    )]
    KeyMissing { entry: String },
    #[error(
        "gpg cannot decrypt {entry} without the key's passphrase, and it may not ask for it here; unlock the key once in a terminal (`pass show {entry}`) so that gpg-agent caches it, or use a key without a passphrase on servers"
    )]
    Locked { entry: String },
    #[error(
        "gpg cannot encrypt for the key in .gpg-id: its public key is not in your keyring, or not trusted; import it with `gpg --import`, or run `pass init <key id>` with a key you have"
    )]
    PublicKeyMissing,
    #[error("the pass backend cannot store {0}")]
    Unsupported(&'static str),
    #[error("pass {action} failed ({cause}); run `docker-credential-hub doctor` for details")]
    Failed { action: &'static str, cause: String },
}

impl PassError {
    pub fn kind(&self) -> super::Kind {
        match self {
            PassError::NotInstalled | PassError::Uninitialised { .. } => super::Kind::Unavailable,
            PassError::KeyMissing { .. } | PassError::Locked { .. } => super::Kind::Locked,
            PassError::PublicKeyMissing | PassError::Unsupported(_) => super::Kind::Rejected,
            PassError::Failed { .. } => super::Kind::Failed,
        }
    }
}

/// `$PASSWORD_STORE_DIR`, else `~/.password-store` (pass's own default).
pub fn store_dir() -> Option<PathBuf> {
    std::env::var_os("PASSWORD_STORE_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| crate::paths::home_dir().map(|h| h.join(".password-store")))
}

/// Whether an initialised password store exists (its `.gpg-id`), and `pass` to use it.
pub fn initialised() -> bool {
    store_dir().is_some_and(|d| d.join(".gpg-id").is_file()) && on_path("pass")
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

pub struct Pass {
    dir: PathBuf,
    prefix: String,
    internal: String,
    service: String,
    deadline: Deadline,
}

/// The directory name of a server URL: Go's `base64.URLEncoding` (URL-safe, padded).
fn encode_url(url: &str) -> String {
    URL_SAFE.encode(url.as_bytes())
}

fn decode_url(name: &str) -> Option<String> {
    String::from_utf8(URL_SAFE.decode(name).ok()?).ok()
}

impl Pass {
    pub fn open(service: &str, deadline: &Deadline) -> Result<Pass> {
        let dir = store_dir().ok_or(PassError::Uninitialised {
            dir: PathBuf::from("~/.password-store"),
        })?;
        if !on_path("pass") {
            return Err(PassError::NotInstalled.into());
        }
        if !dir.join(".gpg-id").is_file() {
            return Err(PassError::Uninitialised { dir }.into());
        }
        let prefix = if service == DEFAULT_SERVICE {
            DOCKER_PREFIX.to_string()
        } else {
            format!(
                "docker-credential-hub.{}",
                crate::paths::safe_file_name(service)
            )
        };
        Ok(Pass {
            dir,
            prefix,
            internal: format!(
                "{INTERNAL_PREFIX}/{}",
                crate::paths::safe_file_name(service)
            ),
            service: service.to_string(),
            deadline: deadline.clone(),
        })
    }

    /// Readers and writers of one store and service take turns: gpg rewrites files in
    /// place, so a reader racing a writer can see half a file.
    fn lock(&self) -> Result<FileLock> {
        Ok(FileLock::acquire_named(
            &format!("pass-{}", self.service),
            self.deadline.remaining(),
        )?)
    }

    /// Run `pass ARGS`, never prompting, with `input` on stdin.
    fn pass(
        &self,
        args: &[&str],
        input: &[u8],
        action: &'static str,
    ) -> Result<child::ChildOutput> {
        let mut cmd = Command::new("pass");
        cmd.args(args)
            .env("PASSWORD_STORE_DIR", &self.dir)
            .env("PASSWORD_STORE_GPG_OPTS", gpg_opts())
            // The user's `commit.gpgsign` would have git sign (and prompt) outside pass's
            // gpg options in a git-backed store.
            .env("GIT_CONFIG_COUNT", "2")
            .env("GIT_CONFIG_KEY_0", "commit.gpgsign")
            .env("GIT_CONFIG_VALUE_0", "false")
            .env("GIT_CONFIG_KEY_1", "pass.signcommits")
            .env("GIT_CONFIG_VALUE_1", "false")
            .env_remove("GPG_TTY");
        detach(&mut cmd);
        child::run(cmd, input, self.deadline.remaining()).map_err(|e| match e {
            ChildError::Missing => PassError::NotInstalled.into(),
            ChildError::Spawn(e) => PassError::Failed {
                action,
                cause: e.to_string(),
            }
            .into(),
            ChildError::Timeout => KeychainError::Timeout {
                backend: super::Backend::Pass,
                limit: self.deadline.limit(),
            },
        })
    }

    /// The first username (byte order, as docker-credential-pass picks it) under `dir`.
    fn username_in(dir: &Path) -> Option<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".gpg").map(str::to_string))
            .collect();
        names.sort();
        names.into_iter().next()
    }

    fn show(&self, entry: &str) -> Result<Option<Secret<Vec<u8>>>> {
        let out = self.pass(&["show", entry], b"", "show")?;
        if out.success {
            return Ok(Some(Secret::new(out.stdout)));
        }
        // Erased by another writer (the lock keeps this rare): not there.
        if !self.dir.join(format!("{entry}.gpg")).is_file() {
            return Ok(None);
        }
        Err(decrypt_error(entry, &out).into())
    }

    fn insert(&self, entry: &str, secret: &[u8]) -> Result<()> {
        let out = self.pass(
            &["insert", "--force", "--multiline", entry],
            secret,
            "insert",
        )?;
        if out.success {
            return Ok(());
        }
        Err(encrypt_error(&out).into())
    }

    fn remove(&self, entry: &str, recursive: bool) -> Result<()> {
        let flags = if recursive { "-rf" } else { "-f" };
        let out = self.pass(&["rm", flags, entry], b"", "rm")?;
        if out.success
            || !self.dir.join(entry).exists() && !self.dir.join(format!("{entry}.gpg")).exists()
        {
            return Ok(());
        }
        Err(PassError::Failed {
            action: "rm",
            cause: first_line(&out.stderr),
        }
        .into())
    }

    fn url_dir(&self, url: &str) -> String {
        format!("{}/{}", self.prefix, encode_url(url))
    }
}

/// pass splits PASSWORD_STORE_GPG_OPTS on spaces: the user's options, then ours, which win.
fn gpg_opts() -> String {
    let user = std::env::var("PASSWORD_STORE_GPG_OPTS").unwrap_or_default();
    format!("{user} {NO_PROMPT}").trim().to_string()
}

/// No controlling terminal for the child: gpg and pinentry cannot open /dev/tty.
fn detach(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("[GNUPG:]"))
        .map(|l| {
            crate::keychain::error::one_line(l)
                .chars()
                .take(200)
                .collect()
        })
        .unwrap_or_else(|| "no output".into())
}

/// gpg's status lines (doc/DETAILS), `[GNUPG:] KEYWORD ARGS`: the first argument of the
/// lines with `keyword`.
fn status_args(out: &child::ChildOutput, keyword: &str) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("[GNUPG:] "))
        .filter_map(|r| {
            let mut words = r.split(' ');
            (words.next() == Some(keyword)).then(|| words.next().unwrap_or("").to_string())
        })
        .collect()
}

fn status(out: &child::ChildOutput, keyword: &str) -> bool {
    !status_args(out, keyword).is_empty()
}

/// NO_SECKEY, or DECRYPTION_FAILED with no key considered: the secret key is not there.
/// DECRYPTION_FAILED for a key gpg found (KEY_CONSIDERED), or a failed public-key decryption
/// (ERROR pkdecrypt_failed): the key is there but locked, and may not ask for its passphrase.
fn decrypt_error(entry: &str, out: &child::ChildOutput) -> PassError {
    let entry = entry.to_string();
    let failed = status(out, "DECRYPTION_FAILED");
    let considered = status(out, "KEY_CONSIDERED");
    if status(out, "NO_SECKEY") || (failed && !considered) {
        PassError::KeyMissing { entry }
    } else if status_args(out, "ERROR")
        .iter()
        .any(|a| a == "pkdecrypt_failed")
        || (failed && considered)
    {
        PassError::Locked { entry }
    } else {
        PassError::Failed {
            action: "show",
            cause: first_line(&out.stderr),
        }
    }
}

/// INV_RECP: the recipient of .gpg-id cannot be used (no public key, or not trusted).
fn encrypt_error(out: &child::ChildOutput) -> PassError {
    if status(out, "INV_RECP") {
        PassError::PublicKeyMissing
    } else {
        PassError::Failed {
            action: "insert",
            cause: first_line(&out.stderr),
        }
    }
}

fn check_storable(username: &str, secret: &str) -> Result<()> {
    if username.contains('/') || username == "." || username == ".." {
        return Err(PassError::Unsupported(
            "a username with '/' or a username of '.' or '..' (it names a file in the store)",
        )
        .into());
    }
    if secret.ends_with(['\n', '\r']) {
        return Err(PassError::Unsupported("a secret that ends in a line break (docker-credential-pass drops trailing line breaks when it reads)").into());
    }
    Ok(())
}

impl Keychain for Pass {
    fn store(&self, server_url: &str, cred: &Stored) -> Result<()> {
        check_storable(&cred.username, cred.secret.expose())?;
        let _guard = self.lock()?;
        let dir = self.url_dir(server_url);
        let entry = format!("{dir}/{}", cred.username);
        self.insert(&entry, cred.secret.expose().as_bytes())?;
        // One username per server URL: docker-credential-pass would return the first.
        if let Ok(others) = std::fs::read_dir(self.dir.join(&dir)) {
            for other in others.flatten() {
                let name = other.file_name().to_string_lossy().into_owned();
                if let Some(user) = name.strip_suffix(".gpg")
                    && user != cred.username
                {
                    self.remove(&format!("{dir}/{user}"), false)?;
                }
            }
        }
        Ok(())
    }

    fn get(&self, server_url: &str) -> Result<Option<Stored>> {
        let _guard = self.lock()?;
        let dir = self.url_dir(server_url);
        let Some(username) = Self::username_in(&self.dir.join(&dir)) else {
            return Ok(None);
        };
        let Some(bytes) = self.show(&format!("{dir}/{username}"))? else {
            return Ok(None);
        };
        let mut secret = bytes.into_text().ok_or(KeychainError::Corrupt)?;
        // As docker-credential-pass reads: trailing line breaks are not part of the secret.
        let kept = secret.expose().trim_end_matches(['\n', '\r']).len();
        secret.expose_mut().truncate(kept);
        Ok(Some(Stored { username, secret }))
    }

    fn erase(&self, server_url: &str) -> Result<bool> {
        let _guard = self.lock()?;
        let dir = self.url_dir(server_url);
        if !self.dir.join(&dir).is_dir() {
            return Ok(false);
        }
        self.remove(&dir, true)?;
        Ok(true)
    }

    fn list(&self) -> Result<BTreeMap<String, String>> {
        let _guard = self.lock()?;
        let mut out = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(self.dir.join(&self.prefix)) else {
            return Ok(out);
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            // Not a name docker-credential-pass (or we) wrote: skipped, not fatal.
            let Some(url) = e.file_name().to_str().and_then(decode_url) else {
                continue;
            };
            if let Some(user) = Self::username_in(&e.path()) {
                out.insert(url, user);
            }
        }
        Ok(out)
    }

    fn get_internal(&self, name: &str) -> Result<Option<Secret<String>>> {
        let _guard = self.lock()?;
        let entry = format!("{}/{}", self.internal, crate::paths::safe_file_name(name));
        if !self.dir.join(format!("{entry}.gpg")).is_file() {
            return Ok(None);
        }
        self.show(&entry)?
            .map(|b| b.into_text().ok_or(KeychainError::CorruptCache))
            .transpose()
    }

    fn set_internal(&self, name: &str, value: &Secret<String>) -> Result<()> {
        let _guard = self.lock()?;
        let entry = format!("{}/{}", self.internal, crate::paths::safe_file_name(name));
        self.insert(&entry, value.expose().as_bytes())
    }

    fn erase_internal(&self, name: &str) -> Result<bool> {
        let _guard = self.lock()?;
        let entry = format!("{}/{}", self.internal, crate::paths::safe_file_name(name));
        if !self.dir.join(format!("{entry}.gpg")).is_file() {
            return Ok(false);
        }
        self.remove(&entry, false)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's base64.URLEncoding: URL-safe alphabet, padded (docker-credential-pass).
    #[test]
    fn urls_encode_as_docker_credential_pass_does() {
        assert_eq!(
            encode_url("https://r.example:5000/v1/"),
            "aHR0cHM6Ly9yLmV4YW1wbGU6NTAwMC92MS8="
        );
        assert_eq!(
            encode_url("https://x.example/~??/"),
            "aHR0cHM6Ly94LmV4YW1wbGUvfj8_Lw=="
        );
        assert_eq!(
            decode_url("aHR0cHM6Ly94LmV4YW1wbGUvfj8_Lw==").as_deref(),
            Some("https://x.example/~??/")
        );
        assert_eq!(decode_url("not base64!"), None);
    }

    #[test]
    fn names_that_would_be_paths_and_trailing_line_breaks_are_refused() {
        assert!(check_storable("org/bot", "s").is_err());
        assert!(check_storable("..", "s").is_err());
        assert!(check_storable("u", "s\n").is_err());
        assert!(check_storable("<token>", "a b c").is_ok());
    }

    #[test]
    fn gpg_status_lines_classify_decryption_failures() {
        let out = |stderr: &str| child::ChildOutput {
            success: false,
            code: Some(2),
            stdout: Vec::new(),
            stderr: stderr.as_bytes().to_vec(),
        };
        let missing = out(
            "[GNUPG:] ENC_TO 1234 18 0\n[GNUPG:] NO_SECKEY 1234\ngpg: decryption failed: No secret key\n",
        );
        assert!(matches!(
            decrypt_error("e", &missing),
            PassError::KeyMissing { .. }
        ));
        let locked = out(
            "[GNUPG:] KEY_CONSIDERED ABCD 0\n[GNUPG:] ERROR pkdecrypt_failed 67108949\ngpg: decryption failed: No secret key\n",
        );
        assert!(matches!(
            decrypt_error("e", &locked),
            PassError::Locked { .. }
        ));
        // What gpg 2.2 under pass (--quiet) prints: locked, then missing.
        let locked = out(
            "[GNUPG:] ENC_TO 96 18 0\n[GNUPG:] KEY_CONSIDERED 5370 0\n[GNUPG:] BEGIN_DECRYPTION\n[GNUPG:] DECRYPTION_FAILED\ngpg: decryption failed: No secret key\n[GNUPG:] END_DECRYPTION\n",
        );
        assert!(matches!(
            decrypt_error("e", &locked),
            PassError::Locked { .. }
        ));
        let missing = out(
            "[GNUPG:] ENC_TO 05 18 0\n[GNUPG:] BEGIN_DECRYPTION\n[GNUPG:] DECRYPTION_FAILED\ngpg: decryption failed: No secret key\n[GNUPG:] END_DECRYPTION\n",
        );
        assert!(matches!(
            decrypt_error("e", &missing),
            PassError::KeyMissing { .. }
        ));
        let other = out("gpg: no valid OpenPGP data found.\n");
        assert!(matches!(
            decrypt_error("e", &other),
            PassError::Failed { .. }
        ));
        let no_pub =
            out("[GNUPG:] INV_RECP 0 ABCD\ngpg: [stdin]: encryption failed: No public key\n");
        assert!(matches!(
            encrypt_error(&no_pub),
            PassError::PublicKeyMissing
        ));
    }
}
