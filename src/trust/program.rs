//! Programs are paths too. `pass`, gpg, git and other credential helpers are found on PATH,
//! and under `sudo -E` PATH can name the invoking user's own directories: a `pass` in their
//! `~/bin` would run as root. Only directories that pass the rule are searched, only
//! executables that pass it are run, and children get a PATH of those directories alone.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[cfg(unix)]
use super::Expect;

/// Where programs are looked for when PATH holds no directory that can be trusted.
#[cfg(unix)]
const FALLBACK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

#[cfg(unix)]
const PATH_DIR: Expect = Expect::dir("the PATH directory").link_ok().root_ok();
#[cfg(unix)]
const PROGRAM: Expect = Expect::file("the program").link_ok().root_ok();

/// The directories of PATH that pass the rule, in order, each once. Empty and relative
/// entries (the current directory) are never searched.
#[cfg(unix)]
pub fn path_dirs() -> Vec<PathBuf> {
    let raw = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = trusted(&raw);
    if dirs.is_empty() {
        dirs = trusted(&OsString::from(FALLBACK_PATH));
    }
    dirs
}

#[cfg(unix)]
fn trusted(raw: &std::ffi::OsStr) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for dir in std::env::split_paths(raw) {
        if !dir.is_absolute() || dirs.contains(&dir) {
            continue;
        }
        match super::check(&dir, PATH_DIR) {
            Ok(Some(_)) => dirs.push(dir),
            Ok(None) => {}
            Err(e) => crate::trace!("not searched for programs: {e}"),
        }
    }
    dirs
}

#[cfg(not(unix))]
pub fn path_dirs() -> Vec<PathBuf> {
    let raw = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&raw)
        .filter(|d| !d.as_os_str().is_empty())
        .collect()
}

/// The first program `name` on PATH that the helper may run, as `exec.LookPath` finds it (on
/// Windows with the extensions of `PATHEXT`: `docker-credential-hub.exe`), searching only the
/// directories and programs that pass the rule: under `sudo -E`, the invoking user's `~/bin`
/// is not searched.
pub fn find(name: &str) -> Option<PathBuf> {
    let dirs = std::env::join_paths(path_dirs()).ok()?;
    which::which_in_global(name, Some(dirs))
        .ok()?
        .find(|p| usable(p))
}

/// PATH for a child: the trusted directories only.
pub fn child_path() -> OsString {
    std::env::join_paths(path_dirs()).unwrap_or_default()
}

/// Whether `path` is a program the helper may run: an executable regular file of the
/// effective user's or root's, writable by nobody else, in a directory that passes the
/// rule (links to such a file are fine).
#[cfg(unix)]
pub fn usable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    match super::check(path, PROGRAM) {
        Ok(Some(real)) => {
            std::fs::metadata(real).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
        }
        Ok(None) => false,
        Err(e) => {
            crate::trace!("not run: {e}");
            false
        }
    }
}

#[cfg(not(unix))]
pub fn usable(path: &Path) -> bool {
    path.is_file()
}
