//! Windows Credential Manager, through windows-native-keyring-store.
//!
//! One generic credential per key, its target name from [native_names] (exact and
//! case-distinct), and the registry username in its UserName field. `list` reads no secret.
//!
//! A secret of at most 2560 bytes (`CRED_MAX_CREDENTIAL_BLOB_SIZE`) is the credential's blob
//! by itself. A larger one (up to 64 KiB) is split ([super::parts]): the payload (username
//! and secret, so that a `get` never pairs one write's secret with another's username) goes
//! into parts of at most 2560 bytes, each a credential of a helper-private service whose
//! target names the URL and the generation, and the key's own credential holds the manifest.
//! Writers hold a lock, and every write and erase deletes the parts no manifest names, so a
//! shrunk, erased or interrupted value leaves none behind.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use keyring_core::{CredentialStore, Entry, Error};

use super::native_names::{self, MAX_BLOB, WindowsError, map_error};
use super::parts;
use super::store_crate::{self, bounded};
use super::wincred;
use super::{Backend, Keychain, KeychainError, Kind, Opened, Result, Stored, internal_service};
use crate::deadline::Deadline;
use crate::lock::FileLock;
use crate::secret::Secret;

const BACKEND: Backend = Backend::WindowsCredentialManager;
/// The lock of [CredentialManager::lock].
const LOCK: &str = "wincred";

/// One view of the Credential Manager: the credentials of one service name.
pub struct CredentialManager {
    store: Arc<CredentialStore>,
    service: String,
    deadline: Deadline,
}

fn delete(entry: &Entry) -> Result<bool> {
    store_crate::delete(entry, map_error)
}

impl CredentialManager {
    /// The credentials and the internal service, over one store.
    pub fn open(service: &str, deadline: &Deadline) -> Result<Opened> {
        let store: Arc<CredentialStore> =
            windows_native_keyring_store::Store::new().map_err(|e| map_error(&e))?;
        let view = |service: String| CredentialManager {
            store: store.clone(),
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

    /// Held exclusively by every write and erase: one writer never deletes the parts
    /// another is writing. Held shared by `list`, so that no credential is created while it
    /// enumerates: Wine's CredEnumerateW sizes its buffer in one pass over the registry and
    /// fills it in a second, and a credential created in between overruns the buffer (the
    /// process then hangs or crashes). Enumeration spans every service, so the lock is one
    /// per user.
    fn lock(&self, shared: bool) -> Result<FileLock> {
        let limit = self.deadline.remaining();
        let taken = if shared {
            FileLock::acquire_named_shared(LOCK, limit)
        } else {
            FileLock::acquire_named(LOCK, limit)
        };
        taken.map_err(|e| KeychainError::lock(BACKEND, e))
    }
}

/// The credential with this exact target name.
fn by_target(store: &Arc<CredentialStore>, target: &str) -> Result<Option<Entry>> {
    if !native_names::target_fits(target) {
        return Ok(None);
    }
    let mods = HashMap::from([("target", target)]);
    Entry::new_in_store_with_modifiers(store, "", "", &mods)
        .map(Some)
        .map_err(|e| map_error(&e))
}

fn entry(store: &Arc<CredentialStore>, service: &str, key: &str) -> Result<Option<Entry>> {
    by_target(store, &native_names::target(service, key))
}

fn too_long_key(key: &str) -> KeychainError {
    WindowsError::Rejected {
        cause: format!(
            "a server URL of {} characters is longer than Credential Manager's target names allow",
            key.chars().count()
        ),
    }
    .into()
}

fn check_secret(secret: &[u8]) -> Result<()> {
    native_names::check_secret(secret)
        .map_err(|(size, max)| WindowsError::TooLarge { size, max }.into())
}

/// Set a credential's blob and UserName, in one write ([wincred]). "Not found" while
/// writing: Wine keeps credentials as registry keys, whose names hold at most 255 characters.
fn write(target: &str, blob: &[u8], user: &str) -> Result<()> {
    wincred::write(target, user, blob).map_err(|code| {
        if code == windows_sys::Win32::Foundation::ERROR_NOT_FOUND {
            WindowsError::Failed {
                cause: format!(
                    "it did not keep the credential; its target name has {} characters",
                    target.len()
                ),
            }
            .into()
        } else {
            wincred::failure(code)
        }
    })
}

/// A credential's blob, `None` when there is none.
fn read_blob(target: &str) -> Result<Option<Secret<Vec<u8>>>> {
    Ok(wincred::read(target)?.map(|(blob, _)| blob))
}

/// Store `key` of `service`: `whole` as the blob when it fits one credential, else
/// `payload()` split into parts. Then delete every part the new manifest does not name.
fn put(
    store: &Arc<CredentialStore>,
    service: &str,
    key: &str,
    user: &str,
    whole: &[u8],
    payload: impl FnOnce() -> Secret<Vec<u8>>,
) -> Result<()> {
    let target = native_names::target(service, key);
    if !native_names::target_fits(&target) {
        return Err(too_long_key(key));
    }
    if user.encode_utf16().count() > native_names::MAX_USERNAME {
        return Err(WindowsError::Rejected {
            cause: format!(
                "the username is longer than Credential Manager's {} characters",
                native_names::MAX_USERNAME
            ),
        }
        .into());
    }
    let keep = if parts::must_split(whole, MAX_BLOB) {
        let payload = payload();
        let manifest = parts::write_split(
            payload.expose(),
            MAX_BLOB,
            |m, i, part| {
                let t = native_names::part_target(service, key, &m.generation, i);
                if !native_names::target_fits(&t) {
                    return Err(too_long_key(key));
                }
                write(&t, part, "")
            },
            |m, i| {
                let t = native_names::part_target(service, key, &m.generation, i);
                if let Ok(Some(e)) = by_target(store, &t) {
                    let _ = delete(&e);
                }
            },
            |head| write(&target, head, user),
        )?;
        Some(manifest.generation)
    } else {
        write(&target, whole, user)?;
        None
    };
    sweep(store, service, key, keep.as_deref())
}

/// Delete the parts of `key`'s values other than generation `keep`: those of the value just
/// replaced, and any a writer left behind when it was interrupted.
fn sweep(store: &Arc<CredentialStore>, service: &str, key: &str, keep: Option<&str>) -> Result<()> {
    let prefix = native_names::part_prefix(service, key);
    let pattern = format!("^{}", regex_escape(&prefix));
    let spec = HashMap::from([("pattern", pattern.as_str())]);
    for item in Entry::search_in_store(store, &spec).map_err(|e| map_error(&e))? {
        let target = match item.get_attributes() {
            Ok(mut attrs) => attrs.remove("target_name").unwrap_or_default(),
            Err(Error::NoEntry) => continue,
            Err(e) => return Err(map_error(&e)),
        };
        let stale = native_names::part_generation(&prefix, &target)
            .is_some_and(|g| keep.is_none_or(|k| !g.eq_ignore_ascii_case(k)));
        if stale {
            delete(&item)?;
        }
    }
    Ok(())
}

/// Delete `key` of `service` and its parts: the credential first, so that no reader
/// follows its manifest into parts that are going.
fn remove(store: &Arc<CredentialStore>, service: &str, key: &str) -> Result<bool> {
    let Some(main) = entry(store, service, key)? else {
        return Ok(false);
    };
    let existed = delete(&main)?;
    sweep(store, service, key, None)?;
    Ok(existed)
}

/// What a read found, and for a value stored whole, the credential's UserName.
struct Found {
    read: parts::Read,
    username: String,
}

/// Read `key` of `service`, joining its parts when it was split. A reader that meets a
/// writer's deletions starts over, a bounded number of times: a part gone, or (under Wine)
/// `ERROR_KEY_DELETED` from a credential deleted while it was being read.
fn fetch(service: &str, key: &str, deadline: &Deadline) -> Result<Found> {
    let target = native_names::target(service, key);
    if !native_names::target_fits(&target) {
        return Ok(Found {
            read: parts::Read::Absent,
            username: String::new(),
        });
    }
    let pause = Duration::from_millis(5);
    let again = |attempt: u32| {
        let more = attempt < RETRIES && deadline.remaining() > pause * 4;
        if more {
            std::thread::sleep(pause);
        }
        more
    };
    let mut attempt = 0;
    loop {
        // The UserName that came with the blob, from the same read.
        let username = std::cell::RefCell::new(String::new());
        let found = parts::read(
            || {
                Ok(wincred::read(&target)?.map(|(blob, user)| {
                    *username.borrow_mut() = user;
                    blob
                }))
            },
            |m, i| read_blob(&native_names::part_target(service, key, &m.generation, i)),
            again,
        )
        .map(|read| {
            let username = match &read {
                parts::Read::Whole(_) => username.take(),
                _ => String::new(),
            };
            Found { read, username }
        });
        match found {
            Err(e) if e.kind() == Kind::Failed => {
                attempt += 1;
                if !again(attempt) {
                    return Err(e);
                }
            }
            other => return other,
        }
    }
}

/// How often a reader starts over. Each time a writer finished a whole store meanwhile; a
/// part still missing after this many is gone for good.
const RETRIES: u32 = 50;

fn kept_changing() -> KeychainError {
    WindowsError::PartMissing.into()
}

impl Keychain for CredentialManager {
    fn store(&self, server_url: &str, cred: &Stored) -> Result<()> {
        check_secret(cred.secret.expose().as_bytes())?;
        let _guard = self.lock(false)?;
        let (service, key, cred) = (self.service.clone(), server_url.to_string(), cred.clone());
        self.bounded(move |store| {
            put(
                store,
                &service,
                &key,
                &cred.username,
                cred.secret.expose().as_bytes(),
                || cred.encode(),
            )
        })
    }

    fn get(&self, server_url: &str) -> Result<Option<Stored>> {
        let (service, key) = (self.service.clone(), server_url.to_string());
        let deadline = self.deadline.clone();
        self.bounded(move |_| {
            let found = fetch(&service, &key, &deadline)?;
            match found.read {
                parts::Read::Absent => Ok(None),
                parts::Read::Joined(payload) => Stored::decode(payload.expose())
                    .map(Some)
                    .map_err(|_| KeychainError::corrupt(BACKEND)),
                parts::Read::KeptChanging => Err(kept_changing()),
                parts::Read::Whole(secret) => {
                    let secret = secret
                        .into_text()
                        .ok_or_else(|| KeychainError::corrupt(BACKEND))?;
                    Ok(Some(Stored {
                        username: found.username,
                        secret,
                    }))
                }
            }
        })
    }

    fn erase(&self, server_url: &str) -> Result<bool> {
        let _guard = self.lock(false)?;
        let (service, key) = (self.service.clone(), server_url.to_string());
        self.bounded(move |store| remove(store, &service, &key))
    }

    fn list(&self) -> Result<BTreeMap<String, String>> {
        let _guard = self.lock(true)?;
        let service = self.service.clone();
        self.bounded(move |store| {
            let pattern = format!("^{}", regex_escape(&native_names::service_prefix(&service)));
            let spec = HashMap::from([("pattern", pattern.as_str())]);
            let mut out = BTreeMap::new();
            for item in Entry::search_in_store(store, &spec).map_err(|e| map_error(&e))? {
                let mut attrs = match item.get_attributes() {
                    Ok(a) => a,
                    Err(Error::NoEntry) => continue,
                    Err(e) => return Err(map_error(&e)),
                };
                let target = attrs.remove("target_name").unwrap_or_default();
                if let Some((svc, url)) = native_names::parse(&target)
                    && svc == service
                {
                    out.insert(url, attrs.remove("username").unwrap_or_default());
                }
            }
            Ok(out)
        })
    }
}

/// A regular expression matching `s` literally (the store's search takes a pattern).
fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
