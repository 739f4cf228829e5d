//! Docker Hub: the API client, the JWT, and the token cache with its lock.

mod cache;
pub mod cli;
mod client;
mod http;
pub mod jwt;
mod login;
mod logout;
mod oauth;
mod quota;
mod ratelimit;
mod redact;
mod tty;

use std::time::Duration;

use anyhow::Context;

use crate::NAME;
use crate::keychain::{Keychain, KeychainError, Stored};
use crate::protocol::{Credentials, TOKEN_USERNAME};
use crate::registry;
use crate::secret::Secret;
use crate::settings;

pub use cache::HUB_JWT;
pub use client::HubError;
pub use quota::PullQuota;

/// Called after a successful `store` of Docker Hub's key. It logs in to the Hub API and
/// caches the JWT, unless the credentials are the ones the cached JWT came from and it is
/// still fresh; any failure is one warning line on stderr, never a failed store.
pub fn after_store(kc: &dyn Keychain, creds: &Credentials, changed: bool) {
    if creds.username == TOKEN_USERNAME {
        return;
    }
    if !changed && matches!(cache::fresh(kc), Ok(Some(_))) {
        crate::trace!(
            "the stored Hub credentials are unchanged and the cached JWT is fresh: no Hub login"
        );
        return;
    }
    if let Err(problem) = login_and_cache(kc, &creds.username, &creds.secret) {
        eprintln!(
            "{NAME}: warning: the credentials are stored, but no Docker Hub API token was obtained: {problem:#}; run `{NAME} login` to get one later"
        );
    }
}

fn login_and_cache(
    kc: &dyn Keychain,
    username: &str,
    secret: &Secret<String>,
) -> anyhow::Result<()> {
    let timeout = settings::timeout();
    // Serialise with concurrent `token` refreshes; without the lock the login still helps.
    let _lock = cache::lock(timeout)
        .inspect_err(|e| crate::trace!("continuing without the Hub token lock: {e}"))
        .ok()
        .flatten();
    let hub = client::Hub::new(timeout)?;
    let jwt = login::obtain_jwt(&hub, username, secret, login::SecondFactor::Prompt)?;
    cache::write(kc, &jwt).context("cannot cache the token in the keychain")
}

/// The Hub credentials to log in with: docker's Hub key, else any Hub alias key.
fn stored_hub_credentials(kc: &dyn Keychain) -> Result<Option<Stored>, KeychainError> {
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
    Error(String),
}

/// Inspect the cached JWT without contacting Hub. "Valid" means usable by `token` as is
/// (at least the 60 s freshness margin left); a JWT without `exp` counts as malformed.
pub fn cached_jwt_status(kc: &dyn Keychain) -> CachedJwt {
    let token = match cache::read(kc) {
        Ok(Some(t)) => t,
        Ok(None) => return CachedJwt::Absent,
        Err(e) => return CachedJwt::Error(e.to_string()),
    };
    let Some(claims) = jwt::parse(token.expose()) else {
        return CachedJwt::Malformed;
    };
    let Some(exp) = claims.exp else {
        return CachedJwt::Malformed;
    };
    if jwt::is_fresh(token.expose(), jwt::now_unix(), jwt::FRESHNESS_MARGIN) {
        CachedJwt::Valid {
            expires_at_unix: exp,
            username: claims.username,
        }
    } else {
        CachedJwt::Expired {
            expired_at_unix: exp,
        }
    }
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

/// The pull quota Docker Hub's registry reports for the account stored under docker's Hub
/// key, or for anonymous pulls from this address when there is none (or it is an identity
/// token, which is no HTTP Basic credential). `kc` is `None` when the keychain cannot be
/// opened: the check is then anonymous too.
pub fn pull_quota(kc: Option<&dyn Keychain>, timeout: Duration) -> Result<PullQuota, HubError> {
    let stored = match kc {
        Some(kc) => kc.get(registry::HUB_KEY).map_err(|e| {
            HubError::Unavailable(format!(
                "cannot read the stored Docker Hub credentials: {e}"
            ))
        })?,
        None => None,
    };
    let account = stored
        .as_ref()
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
        *kc.fail.borrow_mut() = Some(|| KeychainError::SecretServiceLocked);
        assert!(stored_hub_credentials(&kc).is_err());
    }

    #[test]
    fn the_cached_jwt_status_reads_expiry_and_username_without_hub() {
        let kc = Memory::default();
        assert_eq!(cached_jwt_status(&kc), CachedJwt::Absent);
        let later = jwt::now_unix() + 3600;
        cache::write(
            &kc,
            &jwt(&format!(r#"{{"exp":{later},"username":"alice"}}"#)),
        )
        .unwrap();
        assert_eq!(
            cached_jwt_status(&kc),
            CachedJwt::Valid {
                expires_at_unix: later,
                username: Some("alice".into())
            }
        );
        assert!(cache::fresh(&kc).unwrap().is_some());
        // Within the freshness margin counts as expired: `token` would log in again.
        let soon = jwt::now_unix() + 10;
        cache::write(&kc, &jwt(&format!(r#"{{"exp":{soon}}}"#))).unwrap();
        assert_eq!(
            cached_jwt_status(&kc),
            CachedJwt::Expired {
                expired_at_unix: soon
            }
        );
        assert!(cache::fresh(&kc).unwrap().is_none());
        cache::write(&kc, &jwt(r#"{"username":"no-exp"}"#)).unwrap();
        assert_eq!(cached_jwt_status(&kc), CachedJwt::Malformed);
        cache::write(&kc, &Secret::new("not a jwt".into())).unwrap();
        assert_eq!(cached_jwt_status(&kc), CachedJwt::Malformed);
        assert!(cache::clear(&kc).unwrap());
        assert_eq!(cached_jwt_status(&kc), CachedJwt::Absent);
        *kc.fail.borrow_mut() = Some(|| KeychainError::SecretServiceLocked);
        assert!(matches!(cached_jwt_status(&kc), CachedJwt::Error(_)));
    }
}
