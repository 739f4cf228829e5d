//! Linux kernel keyutils through linux-keyutils-keyring-store: the fallback for headless
//! machines with no Secret Service. Keys live in kernel memory and are gone after a reboot.
//!
//! A kernel key holds at most 32767 bytes. Larger values (64 KiB cloud tokens, a long index)
//! are split into parts under a helper-private service name, and the key itself holds a
//! small manifest naming the parts' generation ([super::parts]); a reader that races a
//! writer retries.
//!
//! keyutils has no search, so `list` reads an index key (server URL → username) that every
//! `store` and `erase` rewrites under a cross-process file lock. `list` also drops index
//! entries whose key has vanished, so a process killed between its two writes can never
//! make docker `get` a key that does not exist.
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
use super::parts::{self, Manifest};
use super::{Keychain, KeychainError, Result, Stored, internal_service};
use crate::deadline::Deadline;
use crate::lock::FileLock;
use crate::secret::Secret;

const INDEX_NAME: &str = "index";

pub struct Keyutils {
    store: Arc<CredentialStore>,
    service: String,
    internal: String,
    parts: String,
    deadline: Deadline,
}

/// The largest value one kernel key holds (a "user" key's payload limit).
const MAX_KEY: usize = 32767;
/// Size of each part of a larger value.
const PART: usize = 32000;

impl Keyutils {
    pub fn open(service: &str, deadline: &Deadline) -> Result<Self> {
        let store: Arc<CredentialStore> = Store::new().map_err(|e| map_error(&e))?;
        let kc = Keyutils {
            store,
            service: service.to_string(),
            internal: internal_service(service),
            parts: format!("{service}:parts"),
            deadline: deadline.clone(),
        };
        // Building an entry touches the session keyring: this is where a seccomp filter
        // (docker's default profile blocks keyctl and add_key) shows up.
        kc.entry(&kc.internal, "probe")?;
        Ok(kc)
    }

    fn entry(&self, service: &str, key: &str) -> Result<Entry> {
        Entry::new_in_store(&self.store, service, key).map_err(|e| map_error(&e))
    }

    fn lock(&self) -> Result<FileLock> {
        Ok(FileLock::acquire_named(
            &format!("keyutils-{}", self.service),
            self.deadline.remaining(),
        )?)
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
            parts::Read::KeptChanging => Err(KeychainError::KeyutilsFailed {
                cause: "a large value kept changing while it was read; retry".into(),
            }),
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

    fn read_index(&self) -> Result<BTreeMap<String, String>> {
        match self.fetch(&self.internal, INDEX_NAME)? {
            None => Ok(BTreeMap::new()),
            // A damaged index is rebuilt from the next store/erase; better an incomplete
            // list than a failing `docker build`.
            Some(bytes) => Ok(serde_json::from_slice(bytes.expose()).unwrap_or_default()),
        }
    }

    fn write_index(&self, index: &BTreeMap<String, String>) -> Result<()> {
        if index.is_empty() {
            self.remove(&self.internal, INDEX_NAME).map(|_| ())
        } else {
            let json = serde_json::to_vec(index).expect("serialising strings cannot fail");
            self.put(&self.internal, INDEX_NAME, &json)
        }
    }

    fn exists(&self, server_url: &str) -> Result<bool> {
        Ok(find(&self.entry(&self.service, server_url)?)?.is_some())
    }
}

fn cred_of(e: &Entry) -> Result<&Cred> {
    e.as_any()
        .downcast_ref::<Cred>()
        .ok_or_else(|| KeychainError::KeyutilsFailed {
            cause: "unexpected keyutils entry type".into(),
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
        return Err(KeychainError::KeyutilsNoAnchor {
            cause: link.to_string(),
        });
    }
    match key.read_to_vec() {
        Ok(v) if v == bytes => Ok(()),
        Ok(_) => Err(KeychainError::KeyutilsFailed {
            cause: "it returned different bytes than were stored; retry".into(),
        }),
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
        KeyError::QuotaExceeded => KeychainError::KeyutilsQuota { cause },
        // EPERM from a seccomp filter (docker's default profile), ENOSYS from podman's.
        KeyError::PermissionDenied | KeyError::Unknown(libc::EPERM | libc::ENOSYS) => {
            KeychainError::KeyutilsDenied { cause }
        }
        KeyError::InvalidArguments | KeyError::InvalidDescription => {
            KeychainError::KeyutilsRejected { cause }
        }
        _ => KeychainError::KeyutilsFailed { cause },
    }
}

pub fn map_error(err: &Error) -> KeychainError {
    match err {
        Error::TooLong(..) | Error::Invalid(..) => KeychainError::KeyutilsRejected {
            cause: platform_text(err),
        },
        Error::PlatformFailure(e) | Error::NoStorageAccess(e) => {
            match e.downcast_ref::<KeyError>() {
                Some(k) => map_key_error(*k),
                None => KeychainError::KeyutilsFailed {
                    cause: platform_text(err),
                },
            }
        }
        _ => KeychainError::KeyutilsFailed {
            cause: platform_text(err),
        },
    }
}

impl Keychain for Keyutils {
    fn store(&self, server_url: &str, cred: &Stored) -> Result<()> {
        let _guard = self.lock()?;
        self.put(&self.service, server_url, cred.encode().expose())?;
        let mut index = self.read_index()?;
        let previous = index.insert(server_url.to_string(), cred.username.clone());
        if previous.as_ref() == Some(&cred.username) {
            return Ok(());
        }
        if let Err(err) = self.write_index(&index) {
            // Without its index entry `list` would never show a new key, so a failed store
            // takes it back out. (A replaced key keeps its new value and its old index entry.)
            if previous.is_none() {
                let _ = self.remove(&self.service, server_url);
            }
            return Err(err);
        }
        Ok(())
    }

    fn get(&self, server_url: &str) -> Result<Option<Stored>> {
        self.fetch(&self.service, server_url)?
            .map(|b| Stored::decode(b.expose()))
            .transpose()
    }

    fn erase(&self, server_url: &str) -> Result<bool> {
        let _guard = self.lock()?;
        let existed = self.remove(&self.service, server_url)?;
        let mut index = self.read_index()?;
        if index.remove(server_url).is_some() {
            self.write_index(&index)?;
        }
        Ok(existed)
    }

    fn list(&self) -> Result<BTreeMap<String, String>> {
        let mut index = self.read_index()?;
        let mut missing = Vec::new();
        for url in index.keys() {
            if !self.exists(url)? {
                missing.push(url.clone());
            }
        }
        for url in missing {
            index.remove(&url);
        }
        Ok(index)
    }

    fn get_internal(&self, name: &str) -> Result<Option<Secret<String>>> {
        self.fetch(&self.internal, name)?
            .map(|b| b.into_text().ok_or(KeychainError::CorruptCache))
            .transpose()
    }

    fn set_internal(&self, name: &str, value: &Secret<String>) -> Result<()> {
        self.put(&self.internal, name, value.expose().as_bytes())
    }

    fn erase_internal(&self, name: &str) -> Result<bool> {
        self.remove(&self.internal, name)
    }
}
