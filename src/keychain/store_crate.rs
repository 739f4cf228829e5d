//! What the macOS and Windows backends share: keyring-core's store crates, whose calls take
//! no timeout and may wait for a person (a keychain prompt), so each call runs on a worker
//! thread and the caller waits at most until the deadline.

use std::sync::Arc;
use std::sync::mpsc;

use keyring_core::{CredentialStore, Entry, Error};

use super::{Backend, KeychainError, Result};
use crate::deadline::Deadline;
#[cfg(target_os = "macos")]
use crate::secret::Secret;

/// Run `work` on a worker thread; wait for it at most until the deadline.
pub fn bounded<T: Send + 'static>(
    store: &Arc<CredentialStore>,
    deadline: &Deadline,
    backend: Backend,
    work: impl FnOnce(&Arc<CredentialStore>) -> Result<T> + Send + 'static,
) -> Result<T> {
    let store = store.clone();
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(work(&store));
    });
    match rx.recv_timeout(deadline.remaining()) {
        // The worker has sent its answer and is ending: wait for that, so that the process
        // never exits with it still running. Wine's wineserver kills a thread still running at
        // exit with SIGKILL, which takes the whole process down: the answer is printed, but
        // the exit status docker sees is a signal.
        Ok(result) => {
            let _ = worker.join();
            result
        }
        Err(_) => Err(KeychainError::timeout(backend, deadline.limit())),
    }
}

/// The entry's secret; `None` when there is no such entry.
#[cfg(target_os = "macos")]
pub fn read(
    entry: &Entry,
    map_error: fn(&Error) -> KeychainError,
) -> Result<Option<Secret<Vec<u8>>>> {
    match entry.get_secret() {
        Ok(bytes) => Ok(Some(Secret::new(bytes))),
        Err(Error::NoEntry) => Ok(None),
        Err(e) => Err(map_error(&e)),
    }
}

/// Delete the entry; `Ok(false)` when there was none.
pub fn delete(entry: &Entry, map_error: fn(&Error) -> KeychainError) -> Result<bool> {
    match entry.delete_credential() {
        Ok(()) => Ok(true),
        Err(Error::NoEntry) => Ok(false),
        Err(e) => Err(map_error(&e)),
    }
}
