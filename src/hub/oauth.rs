//! Revoking the refresh token of docker's web login, as `docker logout` does.
//!
//! docker/cli (`internal/oauth/manager/manager.go`, `Logout`) stores the refresh token as
//! `<refresh>..<clientID>` and revokes it only when the secret splits on `..` into exactly
//! two parts; `internal/oauth/api/api.go` (`RevokeToken`) POSTs the form
//! `client_id=<clientID>&token=<refresh>` to `<tenant>/oauth/revoke` and counts anything
//! but HTTP 200 as a failure, explained by the answer's `error_description`.

use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

use super::client::HubError;
use super::http::{self, BodyError, innermost, shown};
use super::redact::sanitize;
use crate::deadline::secs;
use crate::secret::Secret;
use crate::trace;

/// An OAuth error answer is small; a larger one is read no further.
const MAX_BODY: usize = 64 * 1024;

/// The refresh token and the client it was issued to, when `secret` has docker's form.
pub fn split(secret: &str) -> Option<(&str, &str)> {
    let mut parts = secret.split("..");
    let (refresh, client_id) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || refresh.is_empty() || client_id.is_empty() {
        return None;
    }
    Some((refresh, client_id))
}

/// Revoke the refresh token in `secret` (docker's `<refresh>..<clientID>` form) at
/// `DOCKER_HUB_OAUTH_URL`, one try within `timeout`. `Ok(url)` names where it was revoked.
/// The token goes in this request's body and nowhere else, never in a message or the trace.
pub fn revoke(secret: &Secret<String>, timeout: Duration) -> Result<String, HubError> {
    let Some((refresh, client_id)) = split(secret.expose()) else {
        return Err(HubError::Unavailable(
            "the refresh token is not in docker's <token>..<client> form".into(),
        ));
    };
    let tenant = http::OAUTH.endpoint()?;
    let client = tenant.client(timeout)?;
    let url = tenant.join("/oauth/revoke");
    let body = http::form_body(&[("client_id", client_id), ("token", refresh)]);
    let start = Instant::now();
    let sent = client
        .post(&url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(http::wiped_body(&body))
        .send();
    let resp = match sent {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Err(HubError::Unavailable(format!(
                "Docker's login service at {} did not answer within {} s",
                tenant.shown(),
                secs(timeout)
            )));
        }
        Err(e) => {
            return Err(HubError::Unavailable(format!(
                "cannot reach Docker's login service at {}: {}",
                tenant.shown(),
                innermost(&e)
            )));
        }
    };
    let status = resp.status().as_u16();
    trace!(
        "POST {}: HTTP {status} in {} ms",
        shown(&url),
        start.elapsed().as_millis()
    );
    if status == 200 {
        return Ok(tenant.shown());
    }
    let why = match http::read_capped(resp, MAX_BODY) {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|j| Some(j.get("error_description")?.as_str()?.to_string()))
            .map(|t| format!(": {}", sanitize(&t, &[refresh, secret.expose()])))
            .unwrap_or_default(),
        Err(BodyError::Read(_) | BodyError::TooLarge) => String::new(),
    };
    Err(HubError::Unavailable(format!(
        "Docker's login service at {} answered HTTP {status}{why}",
        tenant.shown()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dockers_two_part_form_is_revoked() {
        assert_eq!(split("abc..client"), Some(("abc", "client")));
        // Go's strings.Split: "a...b" is "a" and ".b".
        assert_eq!(split("a...b"), Some(("a", ".b")));
        for other in ["plain", "a..b..c", "..client", "abc..", "", ".."] {
            assert_eq!(split(other), None, "{other}");
        }
    }
}
