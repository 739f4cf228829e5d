//! The cached Hub JWT (an internal keychain entry, invisible to `list`) and the lock that
//! makes concurrent refreshes collapse into one Hub login.

use std::time::Duration;

use super::jwt;
use crate::keychain::{Keychain, KeychainError, service_name};
use crate::lock::{FileLock, LockError};
use crate::secret::Secret;
use crate::trace;

/// Name of the internal keychain value that caches the Docker Hub JWT.
pub const HUB_JWT: &str = "hub-jwt";

pub fn read(kc: &dyn Keychain) -> Result<Option<Secret<String>>, KeychainError> {
    kc.get_internal(HUB_JWT)
}

pub fn write(kc: &dyn Keychain, token: &Secret<String>) -> Result<(), KeychainError> {
    kc.set_internal(HUB_JWT, token)
}

pub fn clear(kc: &dyn Keychain) -> Result<bool, KeychainError> {
    kc.erase_internal(HUB_JWT)
}

/// The cached JWT if it stays valid for at least the freshness margin.
pub fn fresh(kc: &dyn Keychain) -> Result<Option<Secret<String>>, KeychainError> {
    Ok(if_fresh(read(kc)?))
}

/// `token` if it stays valid for at least the freshness margin; the reason goes to the trace.
pub fn if_fresh(token: Option<Secret<String>>) -> Option<Secret<String>> {
    let Some(token) = token else {
        trace!("cache miss: no cached Hub JWT");
        return None;
    };
    let now = jwt::now_unix();
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
