//! The pull quota, read as Docker documents it (docker/docs
//! `content/manuals/docker-hub/usage/pulls.md`, "View pull rate and limit"): a token for
//! `repository:ratelimitpreview/test:pull` from the registry's token service, with HTTP
//! Basic for an account or anonymously, then a HEAD of that image's manifest, which does
//! not count as a pull. Its `ratelimit-limit` and `ratelimit-remaining` headers
//! (`100;w=21600`: 100 pulls per 21600 s) say the limit and what is left, and
//! `docker-ratelimit-source` whom it is counted against (the client's IP address for
//! anonymous pulls). No such headers means no limit.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap};
use serde_json::Value;

use super::client::HubError;
use super::http::{self, BodyError, Endpoint, innermost, is_timeout, shown};
use super::redact::sanitize_for;
use crate::deadline::{Deadline, secs};
use crate::secret::Secret;
use crate::trace;

/// The token request of Docker's page, for the image Docker keeps for this check.
const TOKEN_PATH: &str =
    "/token?service=registry.docker.io&scope=repository:ratelimitpreview/test:pull";
const MANIFEST_PATH: &str = "/v2/ratelimitpreview/test/manifests/latest";
/// The manifest types docker itself asks for (a registry may refuse a manifest request that
/// accepts none of its types).
const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";
/// A token answer is a few KB; a larger one is read no further.
const MAX_BODY: usize = 64 * 1024;

/// One `ratelimit-*` value: a count, and the window in seconds when it says (`;w=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub count: u64,
    pub window: Option<u64>,
}

/// What the registry said about pulls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullQuota {
    /// The account the check authenticated as; `None` for an anonymous check.
    pub account: Option<String>,
    pub limit: Option<Policy>,
    pub remaining: Option<Policy>,
    /// `docker-ratelimit-source`, made printable.
    pub source: Option<String>,
}

impl PullQuota {
    fn from_headers(headers: &HeaderMap, account: Option<&str>) -> PullQuota {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        PullQuota {
            account: account.map(str::to_string),
            limit: text("ratelimit-limit").and_then(parse_policy),
            remaining: text("ratelimit-remaining").and_then(parse_policy),
            source: text("docker-ratelimit-source")
                .map(|s| sanitize_for(s, None, &[]))
                .filter(|s| !s.is_empty()),
        }
    }

    /// No pulls left in the window.
    pub fn exhausted(&self) -> bool {
        self.remaining.is_some_and(|r| r.count == 0)
    }

    /// True when the limit counted is the per-address one for anonymous pulls.
    pub fn per_address(&self) -> bool {
        match &self.source {
            Some(s) => s.parse::<IpAddr>().is_ok(),
            None => self.account.is_none(),
        }
    }

    /// `187 of 200 pulls left per 6 hours, counted against the account alice`, or
    /// `no pull limit for the account alice (...)`.
    pub fn describe(&self) -> String {
        let Some(limit) = self.limit.or(self.remaining) else {
            return match &self.account {
                Some(user) => format!(
                    "no pull limit for the account {user} (Docker Hub sent no rate-limit headers: a paid plan, or an unlimited image or address)"
                ),
                None => "no pull limit for anonymous pulls from this address (Docker Hub sent no rate-limit headers)".into(),
            };
        };
        let counts = match (self.remaining, self.limit) {
            (Some(r), Some(l)) => format!("{} of {} pulls left", r.count, l.count),
            (Some(r), None) => format!("{} pulls left", r.count),
            (None, _) => format!("a limit of {} pulls", limit.count),
        };
        let window = self
            .limit
            .and_then(|l| l.window)
            .or(self.remaining.and_then(|r| r.window))
            .map(|w| format!(" per {}", window_words(w)))
            .unwrap_or_default();
        let whose = match (&self.source, &self.account) {
            (Some(ip), _) if self.per_address() => {
                format!("the per-address limit for anonymous pulls from {ip}")
            }
            (_, Some(user)) => format!("counted against the account {user}"),
            (Some(source), None) => format!("counted against {source}"),
            (None, None) => "the per-address limit for anonymous pulls".into(),
        };
        format!("{counts}{window}, {whose}")
    }
}

/// `100;w=21600` (and the draft standard's list form `100, 100;w=21600`): the first count,
/// and the first window given.
fn parse_policy(value: &str) -> Option<Policy> {
    let mut count = None;
    let mut window = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let n = parts.next().and_then(|n| n.trim().parse::<u64>().ok());
        count = count.or(n);
        for p in parts {
            if let Some(w) = p.trim().strip_prefix("w=") {
                window = window.or(w.trim().parse::<u64>().ok());
            }
        }
    }
    count.map(|count| Policy { count, window })
}

/// `6 hours`, `hour`, `30 minutes`, `90 seconds`.
fn window_words(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s > 0 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s > 0 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    if n == 1 {
        unit.to_string()
    } else {
        format!("{n} {unit}s")
    }
}

/// The quota for `account` (username and password or PAT), or anonymously, within `timeout`
/// for both requests together. `Rejected` when the token service refuses the account's
/// credentials; `Unavailable` when either service cannot be reached or gives no usable answer.
pub fn check(
    account: Option<(&str, &Secret<String>)>,
    timeout: Duration,
) -> Result<PullQuota, HubError> {
    let auth = http::AUTH.endpoint()?;
    let registry = http::REGISTRY.endpoint()?;
    let deadline = Deadline::after(timeout);
    let token = registry_token(&auth, account, &deadline)?;
    let headers = manifest_headers(&registry, &token, &deadline)?;
    Ok(PullQuota::from_headers(&headers, account.map(|a| a.0)))
}

fn left(deadline: &Deadline) -> Duration {
    deadline.remaining().max(Duration::from_millis(1))
}

/// A transport failure, by its root cause (which names no URL and carries no credential).
fn unreachable(what: &str, at: &Endpoint, e: &reqwest::Error, deadline: &Deadline) -> HubError {
    if e.is_timeout() {
        return timed_out(what, at, deadline);
    }
    HubError::Unavailable(format!(
        "cannot reach {what} at {}: {}",
        at.shown(),
        innermost(e)
    ))
}

fn timed_out(what: &str, at: &Endpoint, deadline: &Deadline) -> HubError {
    HubError::Unavailable(format!(
        "{what} at {} did not answer within {} s",
        at.shown(),
        secs(deadline.limit())
    ))
}

fn registry_token(
    auth: &Endpoint,
    account: Option<(&str, &Secret<String>)>,
    deadline: &Deadline,
) -> Result<Secret<String>, HubError> {
    const WHAT: &str = "Docker Hub's token service";
    let client: Client = auth.client(deadline.limit())?;
    let url = auth.join(TOKEN_PATH);
    let mut req = client.get(&url).timeout(left(deadline));
    if let Some((user, secret)) = account {
        let value = http::basic_value(user, secret).ok_or_else(|| {
            HubError::Unavailable(
                "the stored Docker Hub username cannot go in an HTTP header".into(),
            )
        })?;
        req = req.header(AUTHORIZATION, value);
    }
    let start = Instant::now();
    let resp = req
        .send()
        .map_err(|e| unreachable(WHAT, auth, &e, deadline))?;
    let status = resp.status().as_u16();
    trace!(
        "GET {} ({}): HTTP {status} in {} ms",
        shown(&url),
        if account.is_some() {
            "as the stored account"
        } else {
            "anonymously"
        },
        start.elapsed().as_millis()
    );
    let body = match http::read_capped(resp, MAX_BODY) {
        Ok(b) => Secret::new(b),
        Err(BodyError::Read(e)) if is_timeout(&e) => return Err(timed_out(WHAT, auth, deadline)),
        Err(BodyError::Read(e)) => {
            return Err(HubError::Unavailable(format!(
                "the connection to {WHAT} at {} broke while reading its answer ({})",
                auth.shown(),
                innermost(&e)
            )));
        }
        Err(BodyError::TooLarge) => {
            return Err(HubError::Unavailable(format!(
                "{WHAT} at {} answered more than {} KiB, which no token answer is; is {} right?",
                auth.shown(),
                MAX_BODY >> 10,
                auth.var()
            )));
        }
    };
    let json: Option<Value> = serde_json::from_slice(body.expose()).ok();
    let user = account.map(|a| a.0);
    let secrets: Vec<&str> = account.map(|a| a.1.expose().as_str()).into_iter().collect();
    let why = json
        .as_ref()
        .and_then(explanation)
        .map(|t| format!(": {}", sanitize_for(t, user, &secrets)))
        .unwrap_or_default();
    match status {
        200 => {
            // The distribution token spec allows `token`, `access_token` or both.
            let token = json
                .as_ref()
                .and_then(|j| {
                    ["token", "access_token"]
                        .iter()
                        .find_map(|f| j.get(*f)?.as_str().filter(|t| !t.is_empty()))
                })
                .ok_or_else(|| {
                    HubError::Unavailable(format!(
                        "{WHAT} at {} answered HTTP 200 without a token; is {} right?",
                        auth.shown(),
                        auth.var()
                    ))
                })?;
            Ok(Secret::new(token.to_string()))
        }
        401 if account.is_some() => Err(HubError::Rejected(format!(
            "{WHAT} refused the stored credentials of {}{why}, so docker pull and push fail with them too",
            user.unwrap_or_default()
        ))),
        _ => Err(HubError::Unavailable(format!(
            "{WHAT} at {} answered HTTP {status}{why}",
            auth.shown()
        ))),
    }
}

/// The explanation in a token-service or registry error body: `details` (auth.docker.io),
/// `detail`, `message`, or the distribution spec's `errors[0].message`. Never anything else.
fn explanation(body: &Value) -> Option<&str> {
    ["details", "detail", "message", "error_description"]
        .iter()
        .find_map(|f| body.get(*f)?.as_str())
        .or_else(|| body.get("errors")?.get(0)?.get("message")?.as_str())
        .filter(|t| !t.trim().is_empty())
}

fn manifest_headers(
    registry: &Endpoint,
    token: &Secret<String>,
    deadline: &Deadline,
) -> Result<HeaderMap, HubError> {
    const WHAT: &str = "Docker Hub's registry";
    let client: Client = registry.client(deadline.limit())?;
    let url = registry.join(MANIFEST_PATH);
    let bearer = http::bearer_value(token).ok_or_else(|| {
        HubError::Unavailable(
            "Docker Hub's token service answered a token that cannot go in an HTTP header".into(),
        )
    })?;
    let start = Instant::now();
    let resp = client
        .head(&url)
        .header(AUTHORIZATION, bearer)
        .header(ACCEPT, MANIFEST_TYPES)
        .timeout(left(deadline))
        .send()
        .map_err(|e| unreachable(WHAT, registry, &e, deadline))?;
    let status = resp.status().as_u16();
    trace!(
        "HEAD {}: HTTP {status} in {} ms",
        shown(&url),
        start.elapsed().as_millis()
    );
    match status {
        // 429: over the limit, and the headers say by how much.
        200 | 429 => Ok(resp.headers().clone()),
        _ => Err(HubError::Unavailable(format!(
            "{WHAT} at {} answered HTTP {status} to the manifest request",
            registry.shown()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn reads_the_documented_headers() {
        // The example of docker/docs `usage/pulls.md`.
        let h = headers(&[
            ("ratelimit-limit", "100;w=21600"),
            ("ratelimit-remaining", "20;w=21600"),
            ("docker-ratelimit-source", "192.0.2.1"),
        ]);
        let q = PullQuota::from_headers(&h, None);
        assert_eq!(
            q.limit,
            Some(Policy {
                count: 100,
                window: Some(21600)
            })
        );
        assert!(q.per_address() && !q.exhausted());
        assert_eq!(
            q.describe(),
            "20 of 100 pulls left per 6 hours, the per-address limit for anonymous pulls from 192.0.2.1"
        );
    }

    #[test]
    fn an_account_limit_names_the_account() {
        let h = headers(&[
            ("ratelimit-limit", "200;w=21600"),
            ("ratelimit-remaining", "0;w=21600"),
            ("docker-ratelimit-source", "c0ffee00-account-id"),
        ]);
        let q = PullQuota::from_headers(&h, Some("alice"));
        assert!(!q.per_address() && q.exhausted());
        assert_eq!(
            q.describe(),
            "0 of 200 pulls left per 6 hours, counted against the account alice"
        );
        // An IPv6 /64 source is per address too, even for a check that sent credentials.
        let h = headers(&[
            ("ratelimit-limit", "100;w=21600"),
            ("docker-ratelimit-source", "2001:db8::1"),
        ]);
        let q = PullQuota::from_headers(&h, Some("alice"));
        assert!(q.per_address());
        assert!(
            q.describe()
                .starts_with("a limit of 100 pulls per 6 hours, the per-address")
        );
    }

    #[test]
    fn no_headers_means_no_limit() {
        let q = PullQuota::from_headers(&HeaderMap::new(), Some("alice"));
        assert!(
            q.describe()
                .starts_with("no pull limit for the account alice")
        );
        let q = PullQuota::from_headers(&HeaderMap::new(), None);
        assert!(
            q.describe()
                .starts_with("no pull limit for anonymous pulls")
        );
        assert!(!q.exhausted());
    }

    #[test]
    fn policies_and_windows_parse() {
        assert_eq!(
            parse_policy("100, 100;w=21600"),
            Some(Policy {
                count: 100,
                window: Some(21600)
            })
        );
        assert_eq!(
            parse_policy(" 7 "),
            Some(Policy {
                count: 7,
                window: None
            })
        );
        assert_eq!(parse_policy("lots"), None);
        assert_eq!(parse_policy(""), None);
        assert_eq!(window_words(21600), "6 hours");
        assert_eq!(window_words(3600), "hour");
        assert_eq!(window_words(1800), "30 minutes");
        assert_eq!(window_words(90), "90 seconds");
        assert_eq!(window_words(0), "0 seconds");
    }

    #[test]
    fn a_hostile_source_is_made_printable() {
        let h = headers(&[
            ("ratelimit-limit", "1"),
            ("docker-ratelimit-source", "a\tb"),
        ]);
        let q = PullQuota::from_headers(&h, None);
        assert_eq!(q.source.as_deref(), Some("a b"));
    }

    #[test]
    fn error_bodies_are_read_by_their_explanation_only() {
        let j: Value = serde_json::json!({"details": "incorrect username or password", "x": "y"});
        assert_eq!(explanation(&j), Some("incorrect username or password"));
        let j: Value = serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]});
        assert_eq!(explanation(&j), Some("authentication required"));
        assert_eq!(explanation(&serde_json::json!({"token": "t"})), None);
    }
}
