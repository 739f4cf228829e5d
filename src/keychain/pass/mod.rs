//! `pass`, the standard unix password manager (GPG-encrypted files): persistent storage for
//! headless Linux. It drives the real `pass` CLI, in docker-credential-pass's layout, so that
//! an existing store works in place, in both directions:
//!
//! `$PASSWORD_STORE_DIR/docker-credential-helpers/<base64url(ServerURL)>/<Username>.gpg`
//!
//! (URL-safe base64 with padding, as Go's `base64.URLEncoding`). `list` reads the directory
//! tree and runs no gpg at all; `get` decrypts one file. Another keychain service name
//! (`DOCKER_CREDENTIAL_HUB_SERVICE`) lives beside it under `docker-credential-hub.<name>`,
//! and the internal service name of each under `docker-credential-hub.internal/<name>`,
//! where docker-credential-pass, which lists only its own directory, never sees them.
//!
//! Nothing here may prompt: gpg runs with `--batch --no-tty --pinentry-mode=error` (a bare
//! `--batch` still starts pinentry, which hangs on a terminal or a desktop agent), stdin is a
//! pipe, the child has no controlling terminal, and a git-backed store never signs commits.
//! Failures are classified from gpg's machine-readable status lines (`--status-fd=2`,
//! `status.rs`).
//!
//! Nothing of anyone else runs either: the store and everything in it that is used, and
//! GNUPGHOME, pass the trust rule first (`store.rs`); `pass`, gpg and git start from an
//! empty environment with extensions, git hooks and signing turned off.

mod status;
mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;

use super::{
    Backend, DEFAULT_SERVICE, Keychain, KeychainError, Kind, Opened, Result, Stored, internal_of,
    internal_service,
};
use crate::child::{self, ChildError};
use crate::deadline::Deadline;
use crate::lock::FileLock;
use crate::secret::Secret;
use crate::trust::{self, Expect, TrustError};

use status::{decrypt_error, encrypt_error, first_line};
pub use store::{Found, Store, inspect, store_dir};

const BACKEND: Backend = Backend::Pass;

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
    /// The store, a path in it or GNUPGHOME fails the trust rule (another user's, a link).
    #[error(transparent)]
    Untrusted(#[from] TrustError),
    #[error("pass {action} failed ({cause})")]
    Failed { action: &'static str, cause: String },
}

impl From<PassError> for KeychainError {
    fn from(e: PassError) -> KeychainError {
        let kind = match e {
            PassError::NotInstalled | PassError::Uninitialised { .. } | PassError::Untrusted(_) => {
                Kind::Unavailable
            }
            PassError::KeyMissing { .. } | PassError::Locked { .. } => Kind::Locked,
            PassError::PublicKeyMissing | PassError::Unsupported(_) => Kind::Rejected,
            PassError::Failed { .. } => Kind::Failed,
        };
        KeychainError::new(BACKEND, kind, e)
    }
}

/// A path that fails the trust rule, as this backend's error.
fn untrusted(e: TrustError) -> KeychainError {
    PassError::Untrusted(e).into()
}

/// Settings given to git through `GIT_CONFIG_*`, which win over every configuration file:
/// no hook of the store's repository runs, no fsmonitor program starts, nothing is signed
/// (signing would prompt, and names a key and a program), and no global attributes file
/// (read from `$XDG_CONFIG_HOME/git` or `~/.config/git` whatever the global configuration
/// is) can ask for a filter.
const GIT_OVERRIDES: [(&str, &str); 6] = [
    ("core.hooksPath", "/dev/null"),
    ("core.attributesFile", "/dev/null"),
    ("core.fsmonitor", "false"),
    ("commit.gpgsign", "false"),
    ("tag.gpgsign", "false"),
    ("pass.signcommits", "false"),
];

const ENTRY_DIR: Expect = Expect::dir("the password store directory");
const ENTRY: Expect = Expect::file("the password store entry");
const GPG_ID: Expect = Expect::file("the password store's .gpg-id");

/// One view of the password store: the entries of one service name.
pub struct Pass {
    store: Store,
    prefix: String,
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
    /// The store this environment names, once it has passed the trust rule.
    pub fn open(service: &str, deadline: &Deadline) -> Result<Opened> {
        match inspect() {
            Found::Ready(store) => Ok(Pass::with_store(store, service, deadline)),
            Found::Untrusted(e) => Err(untrusted(e)),
            Found::Absent(e) => Err(e.into()),
        }
    }

    /// The credentials and the internal service of a store [inspect] found ready.
    pub fn with_store(store: Store, service: &str, deadline: &Deadline) -> Opened {
        let view = |store: Store, service: String| Pass {
            store,
            prefix: prefix(&service),
            service,
            deadline: deadline.clone(),
        };
        Opened {
            internal: Box::new(view(store.clone(), internal_service(service))),
            creds: Box::new(view(store, service.to_string())),
        }
    }

    fn dir(&self) -> &Path {
        &self.store.dir
    }

    /// The directories from the store down to `rel_dir` (those that exist) are real
    /// directories of ours, and so is any `.gpg-id` in them (pass encrypts for the nearest).
    fn check_dirs(&self, rel_dir: &str) -> Result<()> {
        let mut sub = PathBuf::new();
        for name in rel_dir.split('/') {
            sub.push(name);
            if !trust::check_within(self.dir(), &sub, ENTRY_DIR).map_err(untrusted)? {
                break;
            }
            trust::check_within(self.dir(), &sub.join(".gpg-id"), GPG_ID).map_err(untrusted)?;
        }
        Ok(())
    }

    /// `entry` (`<dir>/<name>`, without `.gpg`) and the directories on the way to it.
    fn check_entry(&self, entry: &str) -> Result<()> {
        if let Some((rel_dir, _)) = entry.rsplit_once('/') {
            self.check_dirs(rel_dir)?;
        }
        trust::check_within(self.dir(), Path::new(&format!("{entry}.gpg")), ENTRY)
            .map_err(untrusted)?;
        Ok(())
    }

    /// Readers and writers of one store and service take turns: gpg rewrites files in
    /// place, so a reader racing a writer can see half a file.
    fn lock(&self) -> Result<FileLock> {
        FileLock::acquire_named(&format!("pass-{}", self.service), self.deadline.remaining())
            .map_err(|e| KeychainError::lock(BACKEND, e))
    }

    /// Run `pass ARGS`, never prompting, with `input` on stdin, in an environment built
    /// from nothing.
    fn pass(
        &self,
        args: &[&str],
        input: &[u8],
        action: &'static str,
    ) -> Result<child::ChildOutput> {
        let store = &self.store;
        let mut cmd = child::minimal(&store.program);
        cmd.args(args)
            .env("PASSWORD_STORE_DIR", &store.dir)
            .env("PASSWORD_STORE_GPG_OPTS", NO_PROMPT)
            .env("PASSWORD_STORE_ENABLE_EXTENSIONS", "false")
            .env("GIT_CONFIG_COUNT", GIT_OVERRIDES.len().to_string());
        for (i, (key, value)) in GIT_OVERRIDES.iter().enumerate() {
            cmd.env(format!("GIT_CONFIG_KEY_{i}"), key)
                .env(format!("GIT_CONFIG_VALUE_{i}"), value);
        }
        if let Some(gnupg) = &store.gnupg {
            cmd.env("GNUPGHOME", gnupg);
        }
        if let Some(home) = &store.home {
            cmd.env("HOME", home);
        }
        if let Some(xdg) = &store.xdg_config {
            cmd.env("XDG_CONFIG_HOME", xdg);
        }
        if !store.git_global {
            cmd.env("GIT_CONFIG_GLOBAL", "/dev/null");
        }
        if let Some(umask) = umask() {
            cmd.env("PASSWORD_STORE_UMASK", umask);
        }
        child::run(cmd, input, self.deadline.remaining()).map_err(|e| match e {
            ChildError::Missing => PassError::NotInstalled.into(),
            ChildError::Spawn(e) => PassError::Failed {
                action,
                cause: e.to_string(),
            }
            .into(),
            ChildError::Timeout => KeychainError::timeout(BACKEND, self.deadline.limit()),
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
        self.check_entry(entry)?;
        let out = self.pass(&["show", entry], b"", "show")?;
        if out.success {
            return Ok(Some(out.stdout));
        }
        // Erased by another writer (the lock keeps this rare): not there.
        if !self.dir().join(format!("{entry}.gpg")).is_file() {
            return Ok(None);
        }
        Err(decrypt_error(entry, &out).into())
    }

    fn insert(&self, entry: &str, secret: &[u8]) -> Result<()> {
        // gpg writes the entry through a link, and `mkdir -p` makes directories through one.
        self.check_entry(entry)?;
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

    /// `pass rm`; with `recursive`, `entry` is a directory, which `rm -rf DIR/` would follow
    /// if it were a link: it and everything in it must be real and ours.
    fn remove(&self, entry: &str, recursive: bool) -> Result<()> {
        if recursive {
            self.check_dirs(entry)?;
            trust::check_tree(&self.dir().join(entry), ENTRY).map_err(untrusted)?;
        } else {
            self.check_entry(entry)?;
        }
        let flags = if recursive { "-rf" } else { "-f" };
        let out = self.pass(&["rm", flags, entry], b"", "rm")?;
        if out.success
            || !self.dir().join(entry).exists() && !self.dir().join(format!("{entry}.gpg")).exists()
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

/// The directory of a service's entries: docker-credential-pass's for the default service,
/// one of ours for another, and for a service's internal name one under
/// `docker-credential-hub.internal`, apart from every service a user may name.
fn prefix(service: &str) -> String {
    let safe = crate::paths::safe_file_name;
    if service == DEFAULT_SERVICE {
        DOCKER_PREFIX.to_string()
    } else if let Some(base) = internal_of(service) {
        format!("{INTERNAL_PREFIX}/{}", safe(base))
    } else {
        format!("docker-credential-hub.{}", safe(service))
    }
}

/// `PASSWORD_STORE_UMASK` as the user set it, when it is an octal mode that keeps what pass
/// creates unwritable by group and others (pass's default is 077). The caller's
/// `PASSWORD_STORE_GPG_OPTS` is never passed on: an option such as `--agent-program` or
/// `--homedir` names a program or a directory, and under `sudo -E` the environment is
/// another user's.
fn umask() -> Option<String> {
    std::env::var("PASSWORD_STORE_UMASK").ok().filter(|u| {
        (3..=4).contains(&u.len())
            && u.bytes().all(|b| (b'0'..=b'7').contains(&b))
            && u32::from_str_radix(u, 8).is_ok_and(|m| m & 0o022 == 0o022)
    })
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
        if let Ok(others) = std::fs::read_dir(self.dir().join(&dir)) {
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
        self.check_dirs(&dir)?;
        let Some(username) = Self::username_in(&self.dir().join(&dir)) else {
            return Ok(None);
        };
        let Some(bytes) = self.show(&format!("{dir}/{username}"))? else {
            return Ok(None);
        };
        let mut secret = bytes
            .into_text()
            .ok_or_else(|| KeychainError::corrupt(BACKEND))?;
        // As docker-credential-pass reads: trailing line breaks are not part of the secret.
        let kept = secret.expose().trim_end_matches(['\n', '\r']).len();
        secret.expose_mut().truncate(kept);
        Ok(Some(Stored { username, secret }))
    }

    fn erase(&self, server_url: &str) -> Result<bool> {
        let _guard = self.lock()?;
        let dir = self.url_dir(server_url);
        if !self.dir().join(&dir).is_dir() {
            return Ok(false);
        }
        self.remove(&dir, true)?;
        Ok(true)
    }

    fn list(&self) -> Result<BTreeMap<String, String>> {
        let _guard = self.lock()?;
        let mut out = BTreeMap::new();
        self.check_dirs(&self.prefix)?;
        let Ok(entries) = std::fs::read_dir(self.dir().join(&self.prefix)) else {
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
    fn services_and_their_internal_names_get_directories_of_their_own() {
        assert_eq!(prefix(DEFAULT_SERVICE), "docker-credential-helpers");
        assert_eq!(prefix("team.a"), "docker-credential-hub.team_a");
        assert_eq!(
            prefix(&internal_service(DEFAULT_SERVICE)),
            "docker-credential-hub.internal/docker-credential-hub"
        );
        // A user's service whose name looks like another's internal one stays apart.
        assert_ne!(prefix(&internal_service("a")), prefix("a_internal"));
    }

    #[test]
    fn names_that_would_be_paths_and_trailing_line_breaks_are_refused() {
        assert!(check_storable("org/bot", "s").is_err());
        assert!(check_storable("..", "s").is_err());
        assert!(check_storable("u", "s\n").is_err());
        assert!(check_storable("<token>", "a b c").is_ok());
    }
}
