//! Docker Hub: the API client (logins, access tokens, the rate limit), the JWT, the token
//! cache with its lock, the refresh-token revoke and the pull quota. The commands that use
//! them (`login`, `token`, `logout`, a Hub `store`, `doctor`) are in [crate::cli].

pub mod cache;
pub mod client;
mod http;
pub mod jwt;
pub mod login;
pub mod oauth;
mod quota;
mod ratelimit;
mod redact;
pub mod tty;

use std::time::Duration;

use crate::keychain::{Keychain, KeychainError, Stored};
use crate::protocol::TOKEN_USERNAME;
use crate::registry;

pub use cache::HUB_JWT;
pub use client::HubError;
pub use quota::PullQuota;

/// The Hub credentials to log in with: docker's Hub key, else any Hub alias key.
pub fn stored_hub_credentials(kc: &dyn Keychain) -> Result<Option<Stored>, KeychainError> {
    if let Some(found) = kc.get(registry::HUB_KEY)? {
        return Ok(Some(found));
    }
    for key in kc.list()?.keys() {
        if key != registry::HUB_KEY
            && registry::is_hub_alias(key)
            && let Some(found) = kc.get(key)?
        {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The state of the cached Hub JWT, for `doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CachedJwt {
    Absent,
    Valid {
        expires_at_unix: u64,
        username: Option<String>,
    },
    Expired {
        expired_at_unix: u64,
    },
    Malformed,
}

/// Inspect the cached JWT (in the internal keychain) without contacting Hub. "Valid" means
/// usable by `token` as is (at least the freshness margin left); a JWT without `exp` counts
/// as malformed.
pub fn cached_jwt_status(internal: &dyn Keychain) -> Result<CachedJwt, KeychainError> {
    let Some(token) = cache::read(internal)? else {
        return Ok(CachedJwt::Absent);
    };
    let Some(exp) = jwt::parse(token.expose()).and_then(|c| c.exp.map(|exp| (exp, c.username)))
    else {
        return Ok(CachedJwt::Malformed);
    };
    let (exp, username) = exp;
    Ok(
        if jwt::is_fresh(
            token.expose(),
            crate::clock::now_unix(),
            jwt::FRESHNESS_MARGIN,
        ) {
            CachedJwt::Valid {
                expires_at_unix: exp,
                username,
            }
        } else {
            CachedJwt::Expired {
                expired_at_unix: exp,
            }
        },
    )
}

/// Check that the Hub API answers (any HTTP status counts), e.g. `Ok("HTTP 200 in 12 ms")`.
/// With the rate limit the answer reported, e.g. `HTTP 200 in 12 ms; rate limit: 170 of 180
/// requests left, the window resets at 14:05:33 CET`.
pub fn ping_api(timeout: Duration) -> Result<String, HubError> {
    let hub = client::Hub::new(timeout)?;
    let (status, elapsed) = hub.ping()?;
    let limit = match hub.rate_limit() {
        Some(r) => format!("; rate limit: {}", r.describe()),
        None => "; no rate-limit headers".into(),
    };
    Ok(format!(
        "HTTP {status} in {} ms{limit}",
        elapsed.as_millis()
    ))
}

/// The Hub API URL in use (`DOCKER_HUB_API_URL` or the default), for `doctor`.
pub fn api_url() -> Result<String, HubError> {
    http::API.endpoint().map(|e| e.shown())
}

/// The pull quota Docker Hub's registry reports for `stored`, the credential under docker's
/// Hub key, or for anonymous pulls from this address when there is none (or it is an
/// identity token, which is no HTTP Basic credential).
pub fn pull_quota(stored: Option<&Stored>, timeout: Duration) -> Result<PullQuota, HubError> {
    let account = stored
        .filter(|s| s.username != TOKEN_USERNAME)
        .map(|s| (s.username.as_str(), &s.secret));
    quota::check(account, timeout)
}

/// Text from a token or from Hub, fit to print: one line, no control characters, bounded.
pub fn printable(text: &str) -> String {
    redact::sanitize(text, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keychain::memory::Memory;
    use crate::keychain::{Backend, Kind};
    use crate::secret::Secret;
    use base64::Engine;

    fn jwt(payload: &str) -> Secret<String> {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        Secret::new(format!(
            "{}.{}.{}",
            b64(r#"{"alg":"RS256","typ":"JWT"}"#),
            b64(payload),
            b64("sig")
        ))
    }

    fn locked() -> KeychainError {
        KeychainError::new(Backend::Pass, Kind::Locked, std::io::Error::other("locked"))
    }

    #[test]
    fn hub_credentials_come_from_the_hub_key_first_then_an_alias() {
        let kc = Memory::default();
        assert_eq!(stored_hub_credentials(&kc).unwrap(), None);
        kc.store("ghcr.io", &Stored::new("x", "y")).unwrap();
        kc.store("docker.io", &Stored::new("alias", "a")).unwrap();
        assert_eq!(
            stored_hub_credentials(&kc).unwrap(),
            Some(Stored::new("alias", "a"))
        );
        kc.store(registry::HUB_KEY, &Stored::new("main", "m"))
            .unwrap();
        assert_eq!(
            stored_hub_credentials(&kc).unwrap(),
            Some(Stored::new("main", "m"))
        );
        *kc.fail.borrow_mut() = Some(locked);
        assert!(stored_hub_credentials(&kc).is_err());
    }

    #[test]
    fn the_cached_jwt_status_reads_expiry_and_username_without_hub() {
        let kc = Memory::default();
        let status = |kc: &Memory| cached_jwt_status(kc).unwrap();
        assert_eq!(status(&kc), CachedJwt::Absent);
        let later = crate::clock::now_unix() + 3600;
        let token = jwt(&format!(r#"{{"exp":{later},"username":"alice"}}"#));
        cache::write(&kc, "alice", &token).unwrap();
        assert_eq!(
            status(&kc),
            CachedJwt::Valid {
                expires_at_unix: later,
                username: Some("alice".into())
            }
        );
        assert!(cache::fresh(&kc).unwrap().is_some());
        // Within the freshness margin counts as expired: `token` would log in again.
        let soon = crate::clock::now_unix() + 10;
        cache::write(&kc, "alice", &jwt(&format!(r#"{{"exp":{soon}}}"#))).unwrap();
        assert_eq!(
            status(&kc),
            CachedJwt::Expired {
                expired_at_unix: soon
            }
        );
        assert!(cache::fresh(&kc).unwrap().is_none());
        cache::write(&kc, "alice", &jwt(r#"{"username":"no-exp"}"#)).unwrap();
        assert_eq!(status(&kc), CachedJwt::Malformed);
        cache::write(&kc, "alice", &Secret::new("not a jwt".into())).unwrap();
        assert_eq!(status(&kc), CachedJwt::Malformed);
        assert!(cache::clear(&kc).unwrap());
        assert_eq!(status(&kc), CachedJwt::Absent);
        *kc.fail.borrow_mut() = Some(locked);
        assert!(cached_jwt_status(&kc).is_err());
    }

    /// A cache entry this version cannot decode (an older version's raw token) is no cache,
    /// not an error; the credentials' invalidation drops it only for Docker Hub's keys.
    #[test]
    fn an_undecodable_cache_is_absent_and_only_hub_keys_invalidate_it() {
        let kc = Memory::default();
        *kc.fail.borrow_mut() = Some(|| KeychainError::corrupt(Backend::Keyutils));
        assert_eq!(cache::read(&kc).unwrap(), None);
        assert_eq!(cached_jwt_status(&kc).unwrap(), CachedJwt::Absent);
        *kc.fail.borrow_mut() = None;
        let token = jwt(r#"{"exp":1}"#);
        cache::write(&kc, "alice", &token).unwrap();
        assert!(!cache::invalidate(&kc, "ghcr.io").unwrap());
        assert!(cache::read(&kc).unwrap().is_some());
        assert!(cache::invalidate(&kc, "docker.io").unwrap());
        assert!(cache::read(&kc).unwrap().is_none());
    }
}
