//! A cross-process advisory file lock with a timeout, for the keyutils index and the
//! Hub token refresh. `flock` is released by the kernel when the process dies, so a
//! crashed helper never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct FileLock {
    _file: File,
}

#[derive(Debug)]
pub enum LockError {
    Io(PathBuf, std::io::Error),
    Timeout(PathBuf, Duration),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Io(p, e) => write!(f, "cannot open the lock file {}: {e}", p.display()),
            LockError::Timeout(p, d) => write!(
                f,
                "another docker-credential-hub process held {} for more than {} s; retry, or find the stuck process",
                p.display(),
                d.as_secs()
            ),
        }
    }
}

impl FileLock {
    /// Take the exclusive lock on `path`, waiting at most `timeout`.
    pub fn acquire(path: &Path, timeout: Duration) -> Result<FileLock, LockError> {
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts
            .open(path)
            .map_err(|e| LockError::Io(path.to_path_buf(), e))?;
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(FileLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(LockError::Io(path.to_path_buf(), e));
                }
            }
            if start.elapsed() >= timeout {
                return Err(LockError::Timeout(path.to_path_buf(), timeout));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }
}
