//! A cross-process advisory file lock with a timeout, for work that concurrent helper
//! processes must do one at a time. `flock` is released by the kernel when the process dies,
//! so a crashed helper never leaves a stale lock behind. Lock files live in a directory checked by
//! [crate::paths::runtime_dir] and are opened without following symlinks.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::NAME;
use crate::deadline::secs;

pub struct FileLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{0}")]
    Dir(#[from] crate::paths::DirError),
    #[error(
        "cannot open the lock file {}: {source}; check that it is a regular file you own",
        crate::fs::display(path)
    )]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another {NAME} process held the lock {} for more than {} s; retry, or find the stuck process (`fuser {}`)",
        crate::fs::display(path),
        secs(*waited),
        crate::fs::display(path)
    )]
    Timeout { path: PathBuf, waited: Duration },
}

impl FileLock {
    /// Take the exclusive lock `name` in the runtime directory, waiting at most `timeout`.
    pub fn acquire_named(name: &str, timeout: Duration) -> Result<FileLock, LockError> {
        let dir = crate::paths::runtime_dir()?;
        let file = format!("{}.lock", crate::paths::safe_file_name(name));
        FileLock::acquire(&dir.join(file), timeout)
    }

    /// Take the lock `name` shared with other shared holders (never with an exclusive one).
    #[cfg_attr(not(windows), allow(dead_code))]
    pub fn acquire_named_shared(name: &str, timeout: Duration) -> Result<FileLock, LockError> {
        let dir = crate::paths::runtime_dir()?;
        let file = format!("{}.lock", crate::paths::safe_file_name(name));
        FileLock::acquire_with(&dir.join(file), timeout, true)
    }

    /// Take the exclusive lock on `path`, waiting at most `timeout`.
    pub fn acquire(path: &Path, timeout: Duration) -> Result<FileLock, LockError> {
        FileLock::acquire_with(path, timeout, false)
    }

    fn acquire_with(path: &Path, timeout: Duration, shared: bool) -> Result<FileLock, LockError> {
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
        }
        let file = opts.open(path).map_err(|source| LockError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let attempt = if shared {
                file.try_lock_shared()
            } else {
                file.try_lock()
            };
            match attempt {
                Ok(()) => return Ok(FileLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(LockError::Open {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(LockError::Timeout {
                    path: path.to_path_buf(),
                    waited: timeout,
                });
            }
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_times_out_naming_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let _held = FileLock::acquire(&path, Duration::from_secs(1)).unwrap();
        let e = FileLock::acquire(&path, Duration::from_millis(100))
            .err()
            .unwrap();
        let text = e.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(!text.contains("keychain"), "{text}");
    }

    #[test]
    fn a_symlinked_lock_file_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let link = dir.path().join("x.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(FileLock::acquire(&link, Duration::from_millis(10)).is_err());
        assert!(!target.exists());
    }
}
