//! The cached Hub JWT, an ordinary entry of the internal keychain (the backend opened on the
//! internal service name, which `list` never shows), and the lock that makes concurrent
//! refreshes collapse into one Hub login. Everything that changes the cache goes through
//! here.

use std::time::Duration;

use super::jwt;
use crate::keychain::{Keychain, KeychainError, Kind, Stored, service_name};
use crate::lock::{FileLock, LockError};
use crate::registry;
use crate::secret::Secret;
use crate::trace;

/// The key of the cached Docker Hub JWT in the internal keychain.
pub const HUB_JWT: &str = "hub-jwt";

/// The cached JWT, if any. An entry this version cannot decode (one an older version wrote,
/// or a damaged one) is no cache: it costs one Hub login, never an error.
pub fn read(internal: &dyn Keychain) -> Result<Option<Secret<String>>, KeychainError> {
    match internal.get(HUB_JWT) {
        Ok(found) => Ok(found.map(|s| s.secret)),
        Err(e) if e.kind() == Kind::Corrupt => {
            trace!("cache miss: the cached Hub JWT is in a form this version does not read");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Cache `token`, the JWT of the Hub account `account`.
pub fn write(
    internal: &dyn Keychain,
    account: &str,
    token: &Secret<String>,
) -> Result<(), KeychainError> {
    let entry = Stored {
        username: account.to_string(),
        secret: token.clone(),
    };
    internal.store(HUB_JWT, &entry)
}

/// Drop the cached JWT; `Ok(false)` when there was none.
pub fn clear(internal: &dyn Keychain) -> Result<bool, KeychainError> {
    internal.erase(HUB_JWT)
}

/// The credentials under `key` changed or went: when `key` is one of Docker Hub's, the
/// cached JWT may belong to another account (or to none), so it goes.
pub fn invalidate(internal: &dyn Keychain, key: &str) -> Result<bool, KeychainError> {
    if !registry::is_hub_alias(key) {
        return Ok(false);
    }
    trace!("the Docker Hub credentials changed: the cached Hub JWT goes");
    clear(internal)
}

/// Copy the cached JWT to another backend's internal keychain. It is derived, so a failure
/// only costs a login.
pub fn copy(from: &dyn Keychain, to: &dyn Keychain) {
    if let Ok(Some(entry)) = from.get(HUB_JWT) {
        let _ = to.store(HUB_JWT, &entry);
    }
}

/// The cached JWT if it stays valid for at least the freshness margin.
pub fn fresh(internal: &dyn Keychain) -> Result<Option<Secret<String>>, KeychainError> {
    Ok(if_fresh(read(internal)?))
}

/// `token` if it stays valid for at least the freshness margin; the reason goes to the trace.
pub fn if_fresh(token: Option<Secret<String>>) -> Option<Secret<String>> {
    let Some(token) = token else {
        trace!("cache miss: no cached Hub JWT");
        return None;
    };
    let now = crate::clock::now_unix();
    if jwt::is_fresh(token.expose(), now, jwt::FRESHNESS_MARGIN) {
        let exp = jwt::parse(token.expose())
            .and_then(|c| c.exp)
            .unwrap_or(now);
        trace!(
            "cache hit: the cached Hub JWT is valid for {} s more",
            exp - now
        );
        return Some(token);
    }
    match jwt::parse(token.expose()).map(|c| c.exp) {
        None => trace!("cache miss: the cached Hub JWT is malformed"),
        Some(None) => trace!("cache miss: the cached Hub JWT has no expiry"),
        Some(Some(exp)) => trace!(
            "cache miss: the cached Hub JWT expires in {} s (less than {} s)",
            exp as i64 - now as i64,
            jwt::FRESHNESS_MARGIN.as_secs()
        ),
    }
    None
}

/// Take the per-keychain-service refresh lock. Waiters get the holder's whole Hub deadline
/// plus a margin, since the holder is bounded by that same deadline. `Ok(None)` when there
/// is no runtime or home directory: the work goes on unserialised. A lock directory that
/// cannot be trusted is an error.
pub fn lock(hub_timeout: Duration) -> Result<Option<FileLock>, LockError> {
    let name = format!("hub-token-{}", service_name());
    let start = std::time::Instant::now();
    match FileLock::acquire_named(&name, hub_timeout + Duration::from_secs(10)) {
        Ok(lock) => {
            trace!(
                "took the Hub token lock in {} ms",
                start.elapsed().as_millis()
            );
            Ok(Some(lock))
        }
        // No HOME and no runtime directory: nothing to lock with; the work goes on.
        Err(LockError::Dir(crate::paths::DirError::NoBase)) => {
            trace!("no Hub token lock: no runtime or home directory");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
