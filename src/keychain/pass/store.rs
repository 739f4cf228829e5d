//! Finding the password store, and deciding whether it may be used: the store, its `.gpg-id`
//! and `.git`, GNUPGHOME and gpg's configuration files in it, and the git configuration in
//! HOME all go through the trust rule. Under `sudo -E` every one of them is the invoking
//! user's, and using them would run that user's hooks and agents as root, encrypt root's
//! secrets to their key and write into their tree; so a store that fails is not used.

use std::path::{Path, PathBuf};

use super::PassError;
use crate::trust::{self, Expect, TrustError};

const STORE: Expect = Expect::dir("the password store").link_ok();
const GPG_ID: Expect = Expect::file("the password store's .gpg-id");
const GIT_DIR: Expect = Expect::dir("the password store's git repository");
const GIT_CONFIG: Expect = Expect::file("the password store's git configuration");
const GNUPG_HOME: Expect = Expect::dir("GNUPGHOME").link_ok().private();
/// gpg's own files may be root's (after a `sudo gpg`), never another user's.
const GNUPG_CONF: Expect = Expect::file("gpg's configuration").link_ok().root_ok();
const HOME: Expect = Expect::dir("HOME").link_ok();
const GIT_GLOBAL: Expect = Expect::file("git's configuration").link_ok().root_ok();

/// The files gpg, gpg-agent, dirmngr and scdaemon read in GNUPGHOME (`gpg.conf-2.2` and
/// `gpg.conf-2` are read before `gpg.conf`): each names programs they start.
fn is_gnupg_conf(name: &str) -> bool {
    name.ends_with(".conf") || name.starts_with("gpg.conf-")
}

/// `$PASSWORD_STORE_DIR`, else `~/.password-store` (pass's own default).
pub fn store_dir() -> Option<PathBuf> {
    std::env::var_os("PASSWORD_STORE_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| crate::paths::home_dir().map(|h| h.join(".password-store")))
}

/// A password store that passed the rule, with what its children may be given.
#[derive(Clone)]
pub struct Store {
    pub dir: PathBuf,
    pub program: PathBuf,
    pub gnupg: Option<PathBuf>,
    /// HOME for the children, when it is the effective user's.
    pub home: Option<PathBuf>,
    /// `XDG_CONFIG_HOME` for git, when it is set and its git configuration passes.
    pub xdg_config: Option<PathBuf>,
    /// git may read the user's global configuration (it passed the rule).
    pub git_global: bool,
}

/// What `auto`, `DOCKER_CREDENTIAL_HUB_BACKEND=pass` and `doctor` find.
pub enum Found {
    /// No initialised store, or no `pass`.
    Absent(PassError),
    /// A store is there, but fails the rule.
    Untrusted(TrustError),
    Ready(Store),
}

/// Look for the store and check it.
pub fn inspect() -> Found {
    let Some(dir) = store_dir() else {
        return Found::Absent(PassError::Uninitialised {
            dir: PathBuf::from("~/.password-store"),
        });
    };
    let Some(program) = crate::trust::program::find("pass") else {
        return Found::Absent(PassError::NotInstalled);
    };
    match check(&dir) {
        Ok(true) => {}
        Ok(false) => return Found::Absent(PassError::Uninitialised { dir }),
        Err(e) => return Found::Untrusted(e),
    }
    let gnupg = match gnupg_home()
        .map(|g| check_gnupg(&g).map(|()| g))
        .transpose()
    {
        Ok(g) => g,
        Err(e) => return Found::Untrusted(e),
    };
    let (home, xdg_config, git_global) = git_settings();
    Found::Ready(Store {
        dir,
        program,
        gnupg,
        home,
        xdg_config,
        git_global,
    })
}

/// The store, its `.gpg-id` and its `.git`: `Ok(false)` when it is not initialised.
fn check(dir: &Path) -> Result<bool, TrustError> {
    if trust::check(dir, STORE)?.is_none() || trust::check(&dir.join(".gpg-id"), GPG_ID)?.is_none()
    {
        return Ok(false);
    }
    if trust::check(&dir.join(".git"), GIT_DIR)?.is_some() {
        trust::check(&dir.join(".git").join("config"), GIT_CONFIG)?;
    }
    Ok(true)
}

/// `$GNUPGHOME`, else `~/.gnupg`, as gpg finds it.
fn gnupg_home() -> Option<PathBuf> {
    std::env::var_os("GNUPGHOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| crate::paths::home_dir().map(|h| h.join(".gnupg")))
}

/// GNUPGHOME is ours and writable by nobody else (gpg creates it when missing, so then the
/// place it would go must be ours), and so is every configuration file in it.
fn check_gnupg(gnupg: &Path) -> Result<(), TrustError> {
    let Some(real) = trust::check(gnupg, GNUPG_HOME)? else {
        return trust::place_to_write(gnupg, GNUPG_HOME);
    };
    let entries = std::fs::read_dir(&real).map_err(|e| TrustError::io(GNUPG_HOME, gnupg, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().is_some_and(is_gnupg_conf) {
            trust::check(&gnupg.join(&name), GNUPG_CONF)?;
        }
    }
    Ok(())
}

/// HOME for the children, `XDG_CONFIG_HOME` for git, and whether git may read the global
/// configuration there (a git-backed store commits with the user's name and email from it;
/// someone else's could name an fsmonitor, filter or pager program, so it is left out then).
/// A file that does not exist counts only if nobody else could create it before git reads
/// it.
fn git_settings() -> (Option<PathBuf>, Option<PathBuf>, bool) {
    let home = crate::paths::home_dir().filter(|h| matches!(trust::check(h, HOME), Ok(Some(_))));
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let mut files = Vec::new();
    if let Some(h) = &home {
        files.push(h.join(".gitconfig"));
        files.push(h.join(".config").join("git").join("config"));
    }
    if let Some(x) = &xdg {
        files.push(x.join("git").join("config"));
    }
    let global = home.is_some()
        && files
            .iter()
            .all(|f| match trust::child_config(f, GIT_GLOBAL) {
                Ok(()) => true,
                Err(e) => {
                    crate::trace!("git's global configuration is not given to pass: {e}");
                    false
                }
            });
    (home, if global { xdg } else { None }, global)
}
