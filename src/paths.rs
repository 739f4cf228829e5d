//! Where the helper keeps its few files, and the checks that make those directories safe
//! to trust: lock files in the user's runtime directory, the backend record in the user's
//! configuration directory.

use std::path::PathBuf;

use crate::NAME;
use crate::trust::{Expect, TrustError};

/// No place for lock files.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error(
        "neither XDG_RUNTIME_DIR nor HOME is set, so there is no place for lock files; set one of them"
    )]
    NoBase,
    #[error("{0}")]
    Untrusted(#[from] TrustError),
}

const LOCK_DIR: Expect = Expect::dir("the lock directory").private();

/// The lock directory: `docker-credential-hub` in `$XDG_RUNTIME_DIR`, else in
/// `/run/user/<uid>`, else `~/.cache/docker-credential-hub`, else
/// `docker-credential-hub-<uid>` in the temporary directory. A place that is not the
/// effective user's (another user's runtime directory or home under `sudo -E`) is passed
/// over, so nothing is created in their tree; the lock directory itself is created mode 0700
/// and must be ours and writable by nobody else, or it is an error.
pub fn runtime_dir() -> Result<PathBuf, DirError> {
    let mut first_refusal = None;
    for (base, dir) in lock_dir_candidates() {
        if !base.is_dir() {
            continue;
        }
        if let Err(e) = crate::trust::check_place(&base, "the place for lock files") {
            crate::trace!("lock files are not kept there: {e}");
            first_refusal.get_or_insert(e);
            continue;
        }
        crate::trust::create_private_dir(&dir, LOCK_DIR)?;
        return Ok(dir);
    }
    Err(first_refusal.map_or(DirError::NoBase, DirError::Untrusted))
}

/// (a directory that must exist and be ours or root's, the lock directory in it).
fn lock_dir_candidates() -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        let run = PathBuf::from(run);
        out.push((run.clone(), run.join(NAME)));
    }
    #[cfg(unix)]
    {
        let run = PathBuf::from(format!("/run/user/{}", crate::fs::euid()));
        out.push((run.clone(), run.join(NAME)));
    }
    if let Some(home) = home_dir() {
        out.push((home.clone(), home.join(".cache").join(NAME)));
    }
    #[cfg(unix)]
    {
        let tmp = std::env::temp_dir();
        out.push((
            tmp.clone(),
            tmp.join(format!("{NAME}-{}", crate::fs::euid())),
        ));
    }
    out
}

/// The user's home directory (`USERPROFILE` on Windows).
pub fn home_dir() -> Option<PathBuf> {
    #[cfg(windows)]
    let var = "USERPROFILE";
    #[cfg(not(windows))]
    let var = "HOME";
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `$XDG_CONFIG_HOME`, else `~/.config` (`%APPDATA%` on Windows).
pub fn config_home() -> Option<PathBuf> {
    #[cfg(windows)]
    if let Some(appdata) = std::env::var_os("APPDATA").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(appdata));
    }
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home_dir().map(|h| h.join(".config")))
}

/// `name` reduced to characters safe in a file name (lock files are named after the
/// keychain service, which the user may set to anything).
pub fn safe_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_shared_or_linked_lock_directory_is_refused_with_its_fix() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("locks");
        crate::trust::create_private_dir(&dir, LOCK_DIR).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let e = crate::trust::create_private_dir(&dir, LOCK_DIR).unwrap_err();
        assert!(e.to_string().contains("chmod 700"), "{e}");

        let link = root.path().join("link");
        std::os::unix::fs::symlink(root.path(), &link).unwrap();
        let e = crate::trust::create_private_dir(&link, LOCK_DIR).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
    }
}
