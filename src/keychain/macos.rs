//! The macOS login Keychain, through apple-native-keyring-store.
//!
//! One generic password per key (service, account = server URL) holding the payload, plus
//! an index item (server URL → username, [super::index]) that `store` and `erase` keep, so
//! that `list` reads one secret, not one per registry: each read may raise a keychain access
//! prompt. `list` finds the items by a search that reads attributes only (no prompt), and
//! reads an item only when the index does not name it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error};

use super::error::platform_text;
use super::index::{self, Backing, Index};
use super::store_crate::{self, bounded};
use super::{Backend, Keychain, KeychainError, Kind, Opened, Result, Stored, internal_service};
use crate::deadline::Deadline;
use crate::lock::FileLock;
use crate::secret::Secret;

const BACKEND: Backend = Backend::MacosKeychain;

/// What went wrong with the macOS Keychain.
#[derive(Debug, thiserror::Error)]
pub enum MacosError {
    #[error(
        "the {BACKEND} is locked or not accessible from this session ({cause}); unlock it with `security unlock-keychain ~/Library/Keychains/login.keychain-db` (over SSH the login keychain stays locked until you do), then retry"
    )]
    Locked { cause: String },
    #[error("the {BACKEND} refused the credential ({cause})")]
    Rejected { cause: String },
    #[error("the {BACKEND} failed ({cause})")]
    Failed { cause: String },
}

impl From<MacosError> for KeychainError {
    fn from(e: MacosError) -> KeychainError {
        let kind = match e {
            MacosError::Locked { .. } => Kind::Locked,
            MacosError::Rejected { .. } => Kind::Rejected,
            MacosError::Failed { .. } => Kind::Failed,
        };
        KeychainError::new(BACKEND, kind, e)
    }
}

/// One view of the login Keychain: the items of one service name, and its index.
pub struct MacosKeychain {
    store: Arc<CredentialStore>,
    service: String,
    /// Where this view's index lives.
    index_service: String,
    deadline: Deadline,
}

fn map_error(err: &Error) -> KeychainError {
    let cause = platform_text(err);
    match err {
        Error::NoStorageAccess(_) => MacosError::Locked { cause },
        Error::PlatformFailure(e) if needs_unlock(e.as_ref()) => MacosError::Locked { cause },
        Error::TooLong(..) | Error::Invalid(..) => MacosError::Rejected { cause },
        _ => MacosError::Failed { cause },
    }
    .into()
}

/// errSecInteractionNotAllowed (a locked keychain over SSH), errSecAuthFailed and
/// userCanceled: the keychain wants a person to unlock it.
fn needs_unlock(e: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    e.downcast_ref::<security_framework::base::Error>()
        .is_some_and(|e| matches!(e.code(), -25308 | -25293 | -128))
}

fn read(entry: &Entry) -> Result<Option<Secret<Vec<u8>>>> {
    store_crate::read(entry, map_error)
}

fn delete(entry: &Entry) -> Result<bool> {
    store_crate::delete(entry, map_error)
}

fn entry(store: &Arc<CredentialStore>, service: &str, key: &str) -> Result<Entry> {
    Entry::new_in_store(store, service, key).map_err(|e| map_error(&e))
}

impl MacosKeychain {
    /// The credentials and the internal service, over one store.
    pub fn open(service: &str, deadline: &Deadline) -> Result<Opened> {
        let store: Arc<CredentialStore> =
            apple_native_keyring_store::keychain::Store::new().map_err(|e| map_error(&e))?;
        let view = |service: String| MacosKeychain {
            store: store.clone(),
            index_service: internal_service(&service),
            service,
            deadline: deadline.clone(),
        };
        Ok(Opened {
            creds: Box::new(view(service.to_string())),
            internal: Box::new(view(internal_service(service))),
        })
    }

    fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Arc<CredentialStore>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        bounded(&self.store, &self.deadline, BACKEND, work)
    }

    /// Read the item of `key` of `service`, on a worker thread.
    fn read_item(&self, service: &str, key: &str) -> Result<Option<Secret<Vec<u8>>>> {
        let (service, key) = (service.to_string(), key.to_string());
        self.bounded(move |store| read(&entry(store, &service, &key)?))
    }

    /// Write the item of `key` of `service`, on a worker thread.
    fn write_item(&self, service: &str, key: &str, bytes: Secret<Vec<u8>>) -> Result<()> {
        let (service, key) = (service.to_string(), key.to_string());
        self.bounded(move |store| {
            entry(store, &service, &key)?
                .set_secret(bytes.expose())
                .map_err(|e| map_error(&e))
        })
    }

    /// Delete the item of `key` of `service`, on a worker thread.
    fn delete_item(&self, service: &str, key: &str) -> Result<bool> {
        let (service, key) = (service.to_string(), key.to_string());
        self.bounded(move |store| delete(&entry(store, &service, &key)?))
    }
}

/// This view's index: an item of the internal service, its writers serialised across
/// processes.
impl Backing for MacosKeychain {
    const ENUMERATES: bool = true;

    fn lock(&self) -> Result<FileLock> {
        FileLock::acquire_named(
            &format!("macos-keychain-{}", self.service),
            self.deadline.remaining(),
        )
        .map_err(|e| KeychainError::lock(BACKEND, e))
    }

    fn load(&self) -> Result<Option<Secret<Vec<u8>>>> {
        self.read_item(&self.index_service, index::NAME)
    }

    fn save(&self, bytes: &[u8]) -> Result<()> {
        self.write_item(
            &self.index_service,
            index::NAME,
            Secret::new(bytes.to_vec()),
        )
    }

    fn clear(&self) -> Result<()> {
        self.delete_item(&self.index_service, index::NAME)
            .map(|_| ())
    }
}

impl Keychain for MacosKeychain {
    fn store(&self, server_url: &str, cred: &Stored) -> Result<()> {
        let write = || {
            self.write_item(&self.service, server_url, cred.encode())
                .map(|()| None)
        };
        index::store(self, server_url, &cred.username, write, || {})
    }

    fn get(&self, server_url: &str) -> Result<Option<Stored>> {
        self.read_item(&self.service, server_url)?
            .map(|b| Stored::decode(b.expose()).map_err(|_| KeychainError::corrupt(BACKEND)))
            .transpose()
    }

    fn erase(&self, server_url: &str) -> Result<bool> {
        index::erase(self, server_url, || {
            self.delete_item(&self.service, server_url)
        })
    }

    fn list(&self) -> Result<BTreeMap<String, String>> {
        let service = self.service.clone();
        // The search reads attributes only: no secret, no prompt.
        let found: BTreeSet<String> = self.bounded(move |store| {
            let spec = HashMap::from([("service", service.as_str())]);
            let items = Entry::search_in_store(store, &spec).map_err(|e| map_error(&e))?;
            Ok(items
                .iter()
                .filter_map(|item| item.get_specifiers())
                .filter(|(svc, _)| *svc == service)
                .map(|(_, url)| url)
                .collect())
        })?;
        let mut out = Index::read(self)?.confirmed(|url, _| Ok(found.contains(url)))?;
        for url in found {
            if out.contains_key(&url) {
                continue;
            }
            // Stored by a process that died before its index write: read the item.
            let Some(bytes) = self.read_item(&self.service, &url)? else {
                continue;
            };
            if let Ok(stored) = Stored::decode(bytes.expose()) {
                out.insert(url, stored.username);
            }
        }
        Ok(out)
    }
}
