//! Where the helper keeps its few files, and the checks that make those directories safe
//! to trust: lock files in the user's runtime directory, the backend record in the user's
//! configuration directory.

use std::path::{Path, PathBuf};

use crate::NAME;

/// A directory that cannot be trusted with our files, or cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error(
        "neither XDG_RUNTIME_DIR nor HOME is set, so there is no place for lock files; set one of them"
    )]
    NoBase,
    #[error(
        "cannot create {}: {source}; check the permissions of its parent",
        crate::fs::display(path)
    )]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is a symlink, and {NAME} does not follow links for its lock files; remove it (`rm {}`) and retry",
        crate::fs::display(path),
        crate::fs::display(path)
    )]
    Symlink { path: PathBuf },
    #[error(
        "{} belongs to {owner}, not to you; remove it as that user, or run {NAME} as {owner}",
        crate::fs::display(path)
    )]
    NotOwned { path: PathBuf, owner: String },
    #[error(
        "{} is writable by other users, who could swap its lock files; run `chmod 700 {}` and retry",
        crate::fs::display(path),
        crate::fs::display(path)
    )]
    SharedWrite { path: PathBuf },
}

/// `$XDG_RUNTIME_DIR/docker-credential-hub`, else `~/.cache/docker-credential-hub`: created
/// with mode 0700 and checked before any lock file is opened in it.
pub fn runtime_dir() -> Result<PathBuf, DirError> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .or_else(|| home_dir().map(|h| h.join(".cache")))
        .ok_or(DirError::NoBase)?;
    let dir = base.join(NAME);
    private_dir(&dir)?;
    Ok(dir)
}

/// Create `dir` (mode 0700) if needed, then check it is a directory of ours that nobody
/// else can write to.
pub fn private_dir(dir: &Path) -> Result<(), DirError> {
    crate::fs::create_private_dir(dir).map_err(|source| DirError::Create {
        path: dir.to_path_buf(),
        source,
    })?;
    check_private(dir)
}

#[cfg(unix)]
fn check_private(dir: &Path) -> Result<(), DirError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir).map_err(|source| DirError::Create {
        path: dir.to_path_buf(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        return Err(DirError::Symlink {
            path: dir.to_path_buf(),
        });
    }
    if meta.uid() != crate::fs::euid() {
        return Err(DirError::NotOwned {
            path: dir.to_path_buf(),
            owner: crate::fs::user_name(meta.uid()),
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(DirError::SharedWrite {
            path: dir.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_dir: &Path) -> Result<(), DirError> {
    Ok(())
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
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_shared_or_linked_directory_is_refused_with_its_fix() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("locks");
        private_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = private_dir(&dir).unwrap_err();
        assert!(matches!(e, DirError::SharedWrite { .. }), "{e}");
        assert!(e.to_string().contains("chmod 700"), "{e}");

        let link = root.path().join("link");
        std::os::unix::fs::symlink(root.path(), &link).unwrap();
        let e = private_dir(&link).unwrap_err();
        assert!(matches!(e, DirError::Symlink { .. }), "{e}");
    }
}
