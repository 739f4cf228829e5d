//! Operations shared by the backends built on keyring-core `Entry`s.

use keyring_core::{Entry, Error};

use super::{KeychainError, Result, Stored};
use crate::secret::Secret;

/// Read an entry's secret. `Ambiguous` happens when two writers raced to create the same
/// item; every copy holds a complete value, so the first one is as good as any.
pub fn read(entry: &Entry, map: fn(&Error) -> KeychainError) -> Result<Option<Secret<Vec<u8>>>> {
    match entry.get_secret() {
        Ok(bytes) => Ok(Some(Secret::new(bytes))),
        Err(Error::NoEntry) => Ok(None),
        Err(Error::Ambiguous(entries)) => match entries.first().map(|e| e.get_secret()) {
            Some(Ok(bytes)) => Ok(Some(Secret::new(bytes))),
            Some(Err(Error::NoEntry)) | None => Ok(None),
            Some(Err(e)) => Err(map(&e)),
        },
        Err(e) => Err(map(&e)),
    }
}

/// Write an entry's secret, collapsing raced duplicates into one item.
pub fn write(entry: &Entry, bytes: &[u8], map: fn(&Error) -> KeychainError) -> Result<()> {
    match entry.set_secret(bytes) {
        Ok(()) => Ok(()),
        Err(Error::Ambiguous(entries)) => {
            for dup in entries {
                match dup.delete_credential() {
                    Ok(()) | Err(Error::NoEntry) => {}
                    Err(e) => return Err(map(&e)),
                }
            }
            entry.set_secret(bytes).map_err(|e| map(&e))
        }
        Err(e) => Err(map(&e)),
    }
}

/// Delete an entry (every raced duplicate too). `Ok(false)` when there was none.
pub fn delete(entry: &Entry, map: fn(&Error) -> KeychainError) -> Result<bool> {
    match entry.delete_credential() {
        Ok(()) => Ok(true),
        Err(Error::NoEntry) => Ok(false),
        Err(Error::Ambiguous(entries)) => {
            for dup in entries {
                match dup.delete_credential() {
                    Ok(()) | Err(Error::NoEntry) => {}
                    Err(e) => return Err(map(&e)),
                }
            }
            Ok(true)
        }
        Err(e) => Err(map(&e)),
    }
}

pub fn decode(bytes: Option<Secret<Vec<u8>>>) -> Result<Option<Stored>> {
    bytes.map(|b| Stored::decode(b.expose())).transpose()
}

pub fn to_text(bytes: Option<Secret<Vec<u8>>>) -> Result<Option<Secret<String>>> {
    bytes
        .map(|b| {
            String::from_utf8(b.into_inner())
                .map(Secret::new)
                .map_err(|_| KeychainError::Corrupt("a cached value in the keychain is not UTF-8; run `docker-credential-hub logout` and log in again".into()))
        })
        .transpose()
}
