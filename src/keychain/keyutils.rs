//! Linux kernel keyutils through linux-keyutils-keyring-store: the fallback for headless
//! machines with no Secret Service. Keys live in kernel memory and are gone after a reboot.
//!
//! A kernel key holds at most 32767 bytes. Larger values (64 KiB cloud tokens, a long index)
//! are split into parts under a helper-private service name, and the key itself holds a
//! small manifest naming the parts' generation ([super::parts]); a reader that races a
//! writer retries.
//!
//! keyutils has no search, so `list` reads an index key (server URL → username,
//! [super::index]) that every `store` and `erase` rewrites under a cross-process file lock.
//! `list` also drops index entries whose key has vanished, so a process killed between its
//! two writes can never make docker `get` a key that does not exist.
//!
//! The store links each key into the user's persistent keyring as well as the session
//! keyring. Where the kernel denies that link (AccessDenied), the key is still in the session
//! keyring: we treat the write as done and read it back from the session keyring directly.

use std::collections::BTreeMap;
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error};
use linux_keyutils::{Key, KeyError, KeyRing, KeyRingIdentifier};
use linux_keyutils_keyring_store::{Cred, Store};

use super::error::platform_text;
use super::index::{self, Backing, Index};
use super::parts::{self, Manifest};
use super::{Backend, Keychain, KeychainError, Kind, Opened, Result, Stored, internal_service};
use crate::deadline::Deadline;
use crate::lock::FileLock;
use crate::secret::Secret;

const BACKEND: Backend = Backend::Keyutils;

/// What went wrong with kernel keyutils.
#[derive(Debug, thiserror::Error)]
pub enum KeyutilsError {
    #[error(
        "kernel keyutils is not permitted here ({cause}); containers block it with seccomp: run a Secret Service (gnome-keyring) in this session, or start the container with a seccomp profile that allows keyctl and add_key"
    )]
    Denied { cause: String },
    #[error("the kernel keyutils quota is exhausted ({cause})")]
    Quota { cause: String },
    #[error(
        "kernel keyutils refused the credential ({cause}); a keyutils key holds at most 32767 bytes and its name at most 4095"
    )]
    Rejected { cause: String },
    #[error(
        "kernel keyutils cannot keep a key after this process exits (no persistent keyring, user keyring: {cause}); run a Secret Service in this session instead"
    )]
    NoAnchor { cause: String },
    #[error("kernel keyutils failed ({cause})")]
    Failed { cause: String },
}

impl From<KeyutilsError> for KeychainError {
    fn from(e: KeyutilsError) -> KeychainError {
        let kind = match e {
            KeyutilsError::Denied { .. } | KeyutilsError::NoAnchor { .. } => Kind::Unavailable,
            KeyutilsError::Quota { .. } => Kind::Full,
            KeyutilsError::Rejected { .. } => Kind::Rejected,
            KeyutilsError::Failed { .. } => Kind::Failed,
        };
        KeychainError::new(BACKEND, kind, e)
    }
}

/// One view of kernel keyutils: the keys of one service name, and its index.
pub struct Keyutils {
    store: Arc<CredentialStore>,
    service: String,
    /// Where this view's index lives.
    index_service: String,
    parts: String,
    deadline: Deadline,
}

/// The largest value one kernel key holds (a "user" key's payload limit).
const MAX_KEY: usize = 32767;
/// Size of each part of a larger value.
const PART: usize = 32000;

impl Keyutils {
    /// The credentials and the internal service, over one store.
    pub fn open(service: &str, deadline: &Deadline) -> Result<Opened> {
        let store: Arc<CredentialStore> = Store::new().map_err(|e| map_error(&e))?;
        let view = |service: String| Keyutils {
            store: store.clone(),
            index_service: internal_service(&service),
            parts: format!("{service}:parts"),
            service,
            deadline: deadline.clone(),
        };
        let creds = view(service.to_string());
        // Building an entry touches the session keyring: this is where a seccomp filter
        // (docker's default profile blocks keyctl and add_key) shows up.
        creds.entry(&creds.index_service, "probe")?;
        Ok(Opened {
            creds: Box::new(creds),
            internal: Box::new(view(internal_service(service))),
        })
    }

    fn entry(&self, service: &str, key: &str) -> Result<Entry> {
        Entry::new_in_store(&self.store, service, key).map_err(|e| map_error(&e))
    }

    fn part(&self, user: &str, generation: &str, i: usize) -> Result<Entry> {
        self.entry(&self.parts, &format!("{user}#{generation}.{i}"))
    }

    /// Store a value of any size under (service, user). Writers hold the index lock.
    fn put(&self, service: &str, user: &str, bytes: &[u8]) -> Result<()> {
        let main = self.entry(service, user)?;
        let old = read(&main)?.and_then(|v| Manifest::parse(v.expose()));
        if parts::must_split(bytes, MAX_KEY) {
            parts::write_split(
                bytes,
                PART,
                |m, i, chunk| write(&self.part(user, &m.generation, i)?, chunk),
                |m, i| self.drop_part(user, &m.generation, i),
                |head| write(&main, head),
            )?;
        } else {
            write(&main, bytes)?;
        }
        if let Some(old) = old {
            self.drop_parts(user, &old);
        }
        Ok(())
    }

    /// Read a value stored by `put`. Retries when a concurrent writer replaced the parts
    /// between reading the manifest and reading them.
    fn fetch(&self, service: &str, user: &str) -> Result<Option<Secret<Vec<u8>>>> {
        let main = self.entry(service, user)?;
        let found = parts::read(
            || read(&main),
            |m, i| read(&self.part(user, &m.generation, i)?),
            |attempt| attempt < 5,
        )?;
        match found {
            parts::Read::Absent => Ok(None),
            parts::Read::Whole(v) | parts::Read::Joined(v) => Ok(Some(v)),
            parts::Read::KeptChanging => Err(KeyutilsError::Failed {
                cause: "a large value kept changing while it was read; retry".into(),
            }
            .into()),
        }
    }

    /// Delete a value stored by `put`, parts included.
    fn remove(&self, service: &str, user: &str) -> Result<bool> {
        let main = self.entry(service, user)?;
        let old = read(&main)?.and_then(|v| Manifest::parse(v.expose()));
        let existed = delete(&main)?;
        if let Some(old) = old {
            self.drop_parts(user, &old);
        }
        Ok(existed)
    }

    fn drop_parts(&self, user: &str, manifest: &Manifest) {
        for i in 0..manifest.count {
            self.drop_part(user, &manifest.generation, i);
        }
    }

    fn drop_part(&self, user: &str, generation: &str, i: usize) {
        if let Ok(e) = self.part(user, generation, i) {
            let _ = delete(&e);
        }
    }

    fn exists(&self, server_url: &str) -> Result<bool> {
        Ok(find(&self.entry(&self.service, server_url)?)?.is_some())
    }
}

/// This view's index: a key of the internal service (split like any other value), its
/// writers serialised across processes.
impl Backing for Keyutils {
    const ENUMERATES: bool = false;

    fn lock(&self) -> Result<FileLock> {
        FileLock::acquire_named(
            &format!("keyutils-{}", self.service),
            self.deadline.remaining(),
        )
        .map_err(|e| KeychainError::lock(BACKEND, e))
    }

    fn load(&self) -> Result<Option<Secret<Vec<u8>>>> {
        self.fetch(&self.index_service, index::NAME)
    }

    fn save(&self, bytes: &[u8]) -> Result<()> {
        self.put(&self.index_service, index::NAME, bytes)
    }

    fn clear(&self) -> Result<()> {
        self.remove(&self.index_service, index::NAME).map(|_| ())
    }
}

fn cred_of(e: &Entry) -> Result<&Cred> {
    e.as_any().downcast_ref::<Cred>().ok_or_else(|| {
        KeyutilsError::Failed {
            cause: "unexpected keyutils entry type".into(),
        }
        .into()
    })
}

fn absent(e: &KeyError) -> bool {
    matches!(
        e,
        KeyError::KeyDoesNotExist | KeyError::KeyRevoked | KeyError::KeyExpired
    )
}

/// The user keyring: the anchor that keeps a key alive after this process exits when the
/// kernel refuses the persistent-keyring link. A process started outside a login session
/// (CI runners, cron, `docker exec`) gets a session keyring of its own that dies with it,
/// so without an anchor the key would vanish although `store` succeeded.
fn user_keyring() -> std::result::Result<KeyRing, KeyError> {
    KeyRing::from_special_id(KeyRingIdentifier::User, false)
}

/// Find the key in the session keyring (which reaches the persistent keyring when it is
/// linked), else through the user keyring. The user keyring is linked into our session
/// keyring first: keys are only searchable by a process that possesses them, and
/// possession flows from the session keyring.
fn find(e: &Entry) -> Result<Option<Key>> {
    let cred = cred_of(e)?;
    match cred.session.search(&cred.description) {
        Ok(key) => return Ok(Some(key)),
        Err(err) if !absent(&err) && err != KeyError::AccessDenied => {
            return Err(map_key_error(err));
        }
        Err(_) => {}
    }
    let Ok(user) = user_keyring() else {
        return Ok(None);
    };
    if cred.session.link_keyring(user).is_err() {
        return Ok(None);
    }
    match cred.session.search(&cred.description) {
        Ok(key) => Ok(Some(key)),
        Err(err) if absent(&err) || err == KeyError::AccessDenied => Ok(None),
        Err(err) => Err(map_key_error(err)),
    }
}

fn read(e: &Entry) -> Result<Option<Secret<Vec<u8>>>> {
    match e.get_secret() {
        Ok(v) => Ok(Some(Secret::new(v))),
        // The store only looks in the session keyring and wants the persistent link; the
        // key may be anchored in the user keyring instead.
        Err(Error::NoEntry | Error::NoStorageAccess(_)) => match find(e)? {
            Some(key) => key
                .read_to_vec()
                .map(|v| Some(Secret::new(v)))
                .map_err(map_key_error),
            None => Ok(None),
        },
        Err(err) => Err(map_error(&err)),
    }
}

fn write(e: &Entry, bytes: &[u8]) -> Result<()> {
    let cred = cred_of(e)?;
    let linked_persistent = match e.set_secret(bytes) {
        Ok(()) => cred.persistent.is_some(),
        // add_key succeeded and only the persistent link was refused.
        Err(Error::NoStorageAccess(_)) => false,
        Err(err) => return Err(map_error(&err)),
    };
    let key = cred
        .session
        .search(&cred.description)
        .map_err(map_key_error)?;
    // Anchor the key in the user keyring as well, so it outlives this process even where
    // the persistent keyring is missing or refused. Without either anchor, fail loudly
    // rather than report a store that vanishes when we exit.
    if let Err(link) = user_keyring().and_then(|u| u.link_key(key))
        && !linked_persistent
    {
        let _ = key.invalidate();
        return Err(KeyutilsError::NoAnchor {
            cause: link.to_string(),
        }
        .into());
    }
    match key.read_to_vec() {
        Ok(v) if v == bytes => Ok(()),
        Ok(_) => Err(KeyutilsError::Failed {
            cause: "it returned different bytes than were stored; retry".into(),
        }
        .into()),
        Err(err) => Err(map_key_error(err)),
    }
}

fn delete(e: &Entry) -> Result<bool> {
    match find(e)? {
        // Invalidation removes the key from every keyring that links it.
        Some(key) => key.invalidate().map(|_| true).map_err(map_key_error),
        None => Ok(false),
    }
}

/// Classify by the kernel's errno, as linux-keyutils reports it.
fn map_key_error(e: KeyError) -> KeychainError {
    let cause = format!("{e:?}");
    match e {
        KeyError::QuotaExceeded => KeyutilsError::Quota { cause },
        // EPERM from a seccomp filter (docker's default profile), ENOSYS from podman's.
        KeyError::PermissionDenied | KeyError::Unknown(libc::EPERM | libc::ENOSYS) => {
            KeyutilsError::Denied { cause }
        }
        KeyError::InvalidArguments | KeyError::InvalidDescription => {
            KeyutilsError::Rejected { cause }
        }
        _ => KeyutilsError::Failed { cause },
    }
    .into()
}

pub fn map_error(err: &Error) -> KeychainError {
    match err {
        Error::TooLong(..) | Error::Invalid(..) => KeyutilsError::Rejected {
            cause: platform_text(err),
        }
        .into(),
        Error::PlatformFailure(e) | Error::NoStorageAccess(e) => {
            match e.downcast_ref::<KeyError>() {
                Some(k) => map_key_error(*k),
                None => KeyutilsError::Failed {
                    cause: platform_text(err),
                }
                .into(),
            }
        }
        _ => KeyutilsError::Failed {
            cause: platform_text(err),
        }
        .into(),
    }
}

impl Keychain for Keyutils {
    fn store(&self, server_url: &str, cred: &Stored) -> Result<()> {
        let write = || {
            self.put(&self.service, server_url, cred.encode().expose())
                .map(|()| None)
        };
        let take_back = || {
            let _ = self.remove(&self.service, server_url);
        };
        index::store(self, server_url, &cred.username, write, take_back)
    }

    fn get(&self, server_url: &str) -> Result<Option<Stored>> {
        self.fetch(&self.service, server_url)?
            .map(|b| Stored::decode(b.expose()).map_err(|_| KeychainError::corrupt(BACKEND)))
            .transpose()
    }

    fn erase(&self, server_url: &str) -> Result<bool> {
        index::erase(self, server_url, || self.remove(&self.service, server_url))
    }

    fn list(&self) -> Result<BTreeMap<String, String>> {
        Index::read(self)?.confirmed(|url, _| self.exists(url))
    }
}
