//! The Docker Hub API client: the login endpoints, access-token creation, retries, rate
//! limits, and one deadline.
//!
//! Endpoints and their answers follow the Hub API spec (docker/docs
//! `content/reference/api/hub/latest.yaml`) and docker/hub-tool `pkg/hub/client.go`.
//! Only the commands that talk to Hub build a `Hub` (login, token, a Hub `store`, doctor);
//! `get`, `list` and `erase` never touch reqwest, so they never pay for its TLS setup.

use std::cell::Cell;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};

use super::http::{
    self, BodyError, Endpoint, bearer_value, innermost, is_timeout, json_body, shown, wiped_body,
};
use super::jwt;
use super::ratelimit::{self, RateLimit};
use super::redact::sanitize_for;
use crate::NAME;
use crate::deadline::{Deadline, secs};
use crate::secret::Secret;
use crate::trace;

const MAX_TRIES: u32 = 3;
/// More than any Hub answer; a larger one is read no further.
const MAX_BODY: usize = 1024 * 1024;
/// How long a `login_2fa_token` is taken to last when it does not say (the spec calls it
/// "short time lived" and gives no figure).
const TWO_FACTOR_LIFETIME: Duration = Duration::from_secs(300);

/// Why Hub gave no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// Hub answered and refused the credentials or the code (HTTP 401), with its reason.
    #[error("{0}")]
    Rejected(String),
    /// Hub could not be reached or gave no usable answer (network, timeout, 429, 5xx,
    /// unexpected body). The text says what happened and what to do.
    #[error("{0}")]
    Unavailable(String),
}

/// The answer to a password login.
#[derive(Debug)]
pub enum PasswordLogin {
    Token(Secret<String>),
    /// The account has 2FA: send this token with the TOTP code to `/v2/users/2fa-login`.
    SecondFactor(TwoFactorToken),
    /// `/v2/users/login` is gone (404 or 410): the spec deprecates it in favour of
    /// `/v2/auth/token`, which also takes a password.
    Removed,
}

/// A `login_2fa_token`, and when it stops being accepted.
#[derive(Debug)]
pub struct TwoFactorToken {
    token: Secret<String>,
    expires: Instant,
}

/// A personal access token Hub just created (`POST /v2/access-tokens`).
pub struct CreatedToken {
    pub token: Secret<String>,
    pub label: String,
    pub scopes: Vec<String>,
}

pub struct Hub {
    http: Client,
    api: Endpoint,
    deadline: Deadline,
    rate_limit: Cell<Option<RateLimit>>,
}

/// A complete answer other than 429/5xx. `body` is `None` when it is not JSON.
struct Answer {
    status: u16,
    /// Which try this answer came to (1 for the first). A later one means an earlier try
    /// may have reached Hub without its answer reaching us.
    attempt: u32,
    content_type: Option<String>,
    body: Option<Value>,
}

impl Answer {
    fn field(&self, name: &str) -> Option<&str> {
        self.body.as_ref()?.get(name)?.as_str()
    }

    /// Hub's own explanation (`detail`, else `message`), made safe to print. Nothing else
    /// of the body is ever quoted.
    fn detail(&self, user: Option<&str>, secrets: &[&str], fallback: &str) -> String {
        let text = self
            .field("detail")
            .or_else(|| self.field("message"))
            .filter(|t| !t.trim().is_empty())
            .unwrap_or(fallback);
        sanitize_for(text, user, secrets)
    }
}

impl Hub {
    /// A client whose whole operation, retries included, must end within `timeout`.
    pub fn new(timeout: Duration) -> Result<Hub, HubError> {
        let api = http::API.endpoint()?;
        let http = api.client(timeout)?;
        Ok(Hub {
            http,
            api,
            deadline: Deadline::after(timeout),
            rate_limit: Cell::new(None),
        })
    }

    /// The API URL, fit for messages.
    pub fn api(&self) -> String {
        self.api.shown()
    }

    /// A person just typed something: the network deadline starts over.
    pub fn renew_deadline(&self) {
        self.deadline.renew();
    }

    /// The rate limit the last answer reported, if it did.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit.get()
    }

    /// `POST /v2/users/login`: a password (or access token used as a password).
    pub fn password_login(
        &self,
        username: &str,
        password: &Secret<String>,
    ) -> Result<PasswordLogin, HubError> {
        let body = json_body(&[("username", username), ("password", password.expose())]);
        let answer = self.post("/v2/users/login", body, None)?;
        let secrets = [password.expose().as_str()];
        match answer.status {
            200 => self.jwt_from(&answer, "token").map(PasswordLogin::Token),
            401 => {
                let two_fa = answer
                    .field("login_2fa_token")
                    .filter(|t| !t.is_empty())
                    .map(|t| TwoFactorToken {
                        expires: two_factor_expiry(t),
                        token: Secret::new(t.to_string()),
                    });
                match two_fa {
                    Some(t) => {
                        trace!("Hub requires a second factor for this account");
                        Ok(PasswordLogin::SecondFactor(t))
                    }
                    None => Err(HubError::Rejected(format!(
                        "Docker Hub rejected the username or password: {}",
                        answer.detail(Some(username), &secrets, "HTTP 401")
                    ))),
                }
            }
            404 | 410 => {
                trace!(
                    "/v2/users/login answered HTTP {}: logging in through /v2/auth/token",
                    answer.status
                );
                Ok(PasswordLogin::Removed)
            }
            _ => Err(self.unexpected(&answer, Some(username), &secrets)),
        }
    }

    /// `POST /v2/users/2fa-login`: the second step, with the TOTP code.
    ///
    /// The spec documents only `401 {detail}` for a refusal, and Hub's wording for a
    /// `login_2fa_token` that expired or was already used is unconfirmed, so its text decides
    /// nothing. A stale login token is told from a wrong code by what is known for sure: the
    /// token's own expiry (its `exp` when it is a JWT), a refusal that answered a repeated
    /// try (the first may have reached Hub and used up the single-use token before its
    /// answer was lost), and a refusal by another 4xx status (Hub no longer knows the login).
    pub fn second_factor(
        &self,
        login: &TwoFactorToken,
        code: &Secret<String>,
    ) -> Result<Secret<String>, HubError> {
        if Instant::now() >= login.expires {
            return Err(two_factor_stale(Stale::Expired));
        }
        let body = json_body(&[
            ("login_2fa_token", login.token.expose()),
            ("code", code.expose()),
        ]);
        let secrets = [login.token.expose().as_str(), code.expose()];
        let answer = self.post("/v2/users/2fa-login", body, None)?;
        let detail = |fallback: &str| answer.detail(None, &secrets, fallback);
        match answer.status {
            200 => self.jwt_from(&answer, "token"),
            // The code arrived too late to tell: the token, not the code, is what expired.
            401 if Instant::now() >= login.expires => Err(two_factor_stale(Stale::Expired)),
            401 if answer.attempt > 1 => {
                trace!("the second factor was refused on try {}", answer.attempt);
                Err(two_factor_stale(Stale::UsedByAnEarlierTry))
            }
            401 => Err(HubError::Rejected(format!(
                "Docker Hub rejected the two-factor code: {}; codes change every 30 s: start the login again and type the current one",
                detail("HTTP 401")
            ))),
            400 | 403 | 404 | 410 => Err(two_factor_stale(Stale::Refused(format!(
                "HTTP {}: {}",
                answer.status,
                detail("no explanation given")
            )))),
            _ => Err(self.unexpected(&answer, None, &secrets)),
        }
    }

    /// `POST /v2/auth/token`: an access token (or, per the spec, a password) for a JWT.
    pub fn access_token(
        &self,
        identifier: &str,
        secret: &Secret<String>,
    ) -> Result<Secret<String>, HubError> {
        let body = json_body(&[("identifier", identifier), ("secret", secret.expose())]);
        let answer = self.post("/v2/auth/token", body, None)?;
        let secrets = [secret.expose().as_str()];
        match answer.status {
            200 | 201 => self.jwt_from(&answer, "access_token"),
            401 | 403 => Err(HubError::Rejected(format!(
                "Docker Hub rejected the credentials for {identifier:?}: {}; check that the password or access token is current and belongs to that account or organisation",
                answer.detail(
                    Some(identifier),
                    &secrets,
                    &format!("HTTP {}", answer.status)
                )
            ))),
            _ => Err(self.unexpected(&answer, Some(identifier), &secrets)),
        }
    }

    /// `POST /v2/access-tokens` with the Bearer JWT: a new personal access token.
    pub fn create_access_token(
        &self,
        jwt: &Secret<String>,
        label: &str,
        scopes: &[String],
    ) -> Result<CreatedToken, HubError> {
        let body = json!({"token_label": label, "scopes": scopes});
        let body = Secret::new(serde_json::to_vec(&body).expect("a JSON value always serialises"));
        let answer = self.post("/v2/access-tokens", body, Some(jwt))?;
        let secrets = [jwt.expose().as_str()];
        match answer.status {
            200 | 201 => {
                let token = answer.field("token").unwrap_or("");
                if token.is_empty() {
                    return Err(HubError::Unavailable(format!(
                        "Docker Hub answered HTTP {} to the access-token request without a token; is DOCKER_HUB_API_URL ({}) the Hub API?",
                        answer.status,
                        self.api()
                    )));
                }
                let scopes = answer
                    .body
                    .as_ref()
                    .and_then(|b| b.get("scopes"))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(|s| sanitize_for(s, None, &[token]))
                            .collect()
                    })
                    .unwrap_or_else(|| scopes.to_vec());
                Ok(CreatedToken {
                    token: Secret::new(token.to_string()),
                    label: answer
                        .field("token_label")
                        .map(|l| sanitize_for(l, None, &[token]))
                        .unwrap_or_else(|| label.to_string()),
                    scopes,
                })
            }
            // The spec's ValueError: {fields, text}.
            400 => {
                let text = answer
                    .field("text")
                    .map(|t| sanitize_for(t, None, &secrets))
                    .unwrap_or_else(|| answer.detail(None, &secrets, "HTTP 400"));
                Err(HubError::Rejected(format!(
                    "Docker Hub refused to create the access token: {text}; check --scopes (repo:admin, repo:write, repo:read, repo:public_read)"
                )))
            }
            401 => Err(HubError::Rejected(format!(
                "Docker Hub refused to create an access token with this login: {}; log in with your password (not an access token) to create one",
                answer.detail(None, &secrets, "HTTP 401")
            ))),
            _ => Err(self.unexpected(&answer, None, &secrets)),
        }
    }

    /// One harmless GET, no retries: any HTTP answer means the API is reachable.
    pub fn ping(&self) -> Result<(u16, Duration), HubError> {
        let url = self.api.join("/v2/");
        let start = Instant::now();
        let result = self
            .http
            .get(&url)
            .timeout(self.deadline.remaining().max(Duration::from_millis(1)))
            .send();
        let elapsed = start.elapsed();
        match result {
            Ok(resp) => {
                self.note_rate_limit(&resp);
                trace!(
                    "GET {}: HTTP {} in {} ms",
                    shown(&url),
                    resp.status().as_u16(),
                    elapsed.as_millis()
                );
                Ok((resp.status().as_u16(), elapsed))
            }
            Err(e) if e.is_timeout() => Err(self.timed_out()),
            Err(e) => Err(HubError::Unavailable(format!(
                "cannot reach Docker Hub at {}: {}",
                self.api(),
                innermost(&e)
            ))),
        }
    }

    fn note_rate_limit(&self, resp: &Response) {
        if let Some(r) = RateLimit::from_headers(resp.headers()) {
            trace!("rate limit: {}", r.describe());
            self.rate_limit.set(Some(r));
        }
    }

    fn request(
        &self,
        url: &str,
        body: &Secret<Vec<u8>>,
        bearer: Option<&Secret<String>>,
    ) -> RequestBuilder {
        let mut req = self
            .http
            .post(url)
            .timeout(self.deadline.remaining())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .body(wiped_body(body));
        if let Some(jwt) = bearer {
            let value = bearer_value(jwt)
                // A JWT is base64url and dots; anything else is no token to send.
                .unwrap_or_else(|| HeaderValue::from_static("Bearer invalid"));
            req = req.header(AUTHORIZATION, value);
        }
        req
    }

    /// POST a JSON body, retrying 429 (when its retry time falls within the deadline), 5xx
    /// and broken connections, at most `MAX_TRIES` times and never past the deadline.
    /// Transport errors are reported by their root cause only, which never contains the
    /// request body.
    fn post(
        &self,
        path: &str,
        bytes: Secret<Vec<u8>>,
        bearer: Option<&Secret<String>>,
    ) -> Result<Answer, HubError> {
        let url = self.api.join(path);
        let shown_url = shown(&url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if self.deadline.expired() {
                return Err(self.timed_out());
            }
            let start = Instant::now();
            let sent = self.request(&url, &bytes, bearer).send();
            let ms = || start.elapsed().as_millis();
            let (problem, wait) = match sent {
                Err(e) if e.is_timeout() => {
                    trace!(
                        "POST {shown_url}: no answer after {} ms (try {attempt}/{MAX_TRIES})",
                        ms()
                    );
                    return Err(self.timed_out());
                }
                Err(e) if e.is_builder() => {
                    return Err(HubError::Unavailable(format!(
                        "DOCKER_HUB_API_URL ({}) is not a usable URL ({}); fix or unset it",
                        self.api(),
                        innermost(&e)
                    )));
                }
                Err(e) => {
                    let what = innermost(&e);
                    trace!(
                        "POST {shown_url}: {what} after {} ms (try {attempt}/{MAX_TRIES})",
                        ms()
                    );
                    (
                        format!("cannot reach Docker Hub at {}: {what}", self.api()),
                        backoff(attempt),
                    )
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    self.note_rate_limit(&resp);
                    trace!(
                        "POST {shown_url}: HTTP {status} in {} ms (try {attempt}/{MAX_TRIES})",
                        ms()
                    );
                    if status == 429 {
                        let wait = self.rate_limited(&resp, attempt)?;
                        (
                            "Docker Hub is rate limiting requests (HTTP 429)".to_string(),
                            wait,
                        )
                    } else if status >= 500 {
                        (
                            format!("Docker Hub answered HTTP {status} (a server error)"),
                            backoff(attempt),
                        )
                    } else {
                        match self.read_body(resp) {
                            Ok((content_type, body)) => {
                                return Ok(Answer {
                                    status,
                                    attempt,
                                    content_type,
                                    body,
                                });
                            }
                            Err(BodyError::TooLarge) => {
                                return Err(HubError::Unavailable(format!(
                                    "Docker Hub's answer (HTTP {status}) is larger than {} MiB, which no Hub answer is; reading stopped there; is DOCKER_HUB_API_URL ({}) the Hub API, or is a proxy in the way?",
                                    MAX_BODY >> 20,
                                    self.api()
                                )));
                            }
                            Err(BodyError::Read(e)) if is_timeout(&e) => {
                                return Err(self.timed_out());
                            }
                            Err(BodyError::Read(e)) => {
                                let what = innermost(&e);
                                trace!("POST {shown_url}: body broken off: {what}");
                                (
                                    format!(
                                        "the connection to Docker Hub broke while reading its answer ({what})"
                                    ),
                                    backoff(attempt),
                                )
                            }
                        }
                    }
                }
            };
            if attempt >= MAX_TRIES {
                return Err(HubError::Unavailable(format!(
                    "{problem} (tried {MAX_TRIES} times); try again later"
                )));
            }
            if wait >= self.deadline.remaining() {
                return Err(HubError::Unavailable(format!(
                    "{problem}, and no time is left to retry within the {} s deadline; try again later or raise DOCKER_CREDENTIAL_HUB_TIMEOUT",
                    secs(self.deadline.limit())
                )));
            }
            trace!("retrying in {} ms", wait.as_millis());
            std::thread::sleep(wait);
        }
    }

    /// How long to wait before retrying a 429, or the error to fail with at once when its
    /// retry time is beyond the deadline.
    fn rate_limited(&self, resp: &Response, attempt: u32) -> Result<Duration, HubError> {
        let now = crate::clock::now_unix();
        let Some(at) = ratelimit::retry_at(resp.headers(), now) else {
            return Ok(backoff(attempt));
        };
        let wait = ratelimit::wait_until(at, now);
        if wait < self.deadline.remaining() && attempt < MAX_TRIES {
            trace!("Hub asks to retry in {} s", wait.as_secs());
            return Ok(wait);
        }
        Err(HubError::Unavailable(format!(
            "Docker Hub is rate limiting requests (HTTP 429) until {} (in {} s), later than the {} s deadline allows; retry after that time, or raise DOCKER_CREDENTIAL_HUB_TIMEOUT",
            ratelimit::local_time(at),
            wait.as_secs(),
            secs(self.deadline.limit())
        )))
    }

    /// The body, read while it streams and never past the cap: a huge or endless answer
    /// costs at most `MAX_BODY` of memory and ends at once.
    fn read_body(&self, resp: Response) -> Result<(Option<String>, Option<Value>), BodyError> {
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| sanitize_for(s, None, &[]));
        let bytes = http::read_capped(resp, MAX_BODY)?;
        Ok((content_type, serde_json::from_slice(&bytes).ok()))
    }

    fn timed_out(&self) -> HubError {
        HubError::Unavailable(format!(
            "Docker Hub at {} did not answer within {} s; check the network and proxy settings, or raise DOCKER_CREDENTIAL_HUB_TIMEOUT",
            self.api(),
            secs(self.deadline.limit())
        ))
    }

    /// The JWT in `field` of a success answer; a body that is not JSON, lacks the field,
    /// or carries something that is not a JWT is an error (and nothing gets cached).
    fn jwt_from(&self, answer: &Answer, field: &str) -> Result<Secret<String>, HubError> {
        if answer.body.is_none() {
            return Err(self.not_json(answer));
        }
        let token = answer.field(field).unwrap_or("");
        if token.is_empty() {
            return Err(HubError::Unavailable(format!(
                "Docker Hub answered HTTP {} without a {field:?} in its answer; is DOCKER_HUB_API_URL ({}) the Hub API?",
                answer.status,
                self.api()
            )));
        }
        if jwt::parse(token).is_none() {
            return Err(HubError::Unavailable(format!(
                "Docker Hub answered HTTP {} but its {field:?} is not a JWT; nothing was cached; is DOCKER_HUB_API_URL ({}) the Hub API?",
                answer.status,
                self.api()
            )));
        }
        Ok(Secret::new(token.to_string()))
    }

    fn not_json(&self, answer: &Answer) -> HubError {
        HubError::Unavailable(format!(
            "Docker Hub answered HTTP {} with a body that is not JSON (Content-Type {:?}); is DOCKER_HUB_API_URL ({}) the Hub API, or is a proxy in the way?",
            answer.status,
            answer.content_type.as_deref().unwrap_or("none"),
            self.api()
        ))
    }

    fn unexpected(&self, answer: &Answer, user: Option<&str>, secrets: &[&str]) -> HubError {
        if answer.body.is_none() {
            return self.not_json(answer);
        }
        HubError::Unavailable(format!(
            "Docker Hub answered HTTP {}: {}",
            answer.status,
            answer.detail(user, secrets, "no explanation given")
        ))
    }
}

/// Why a two-factor login cannot be finished, whatever the code.
enum Stale {
    Expired,
    UsedByAnEarlierTry,
    /// Hub refused the login token itself (a 4xx other than 401), with its words.
    Refused(String),
}

fn two_factor_stale(why: Stale) -> HubError {
    let why = match why {
        Stale::Expired => "the two-factor login expired before the code reached Docker Hub (its login token lasts only a short time)".to_string(),
        Stale::UsedByAnEarlierTry => "the two-factor login token was used up by an earlier try whose answer was lost (it works only once), so Docker Hub refused the retry".to_string(),
        Stale::Refused(what) => format!("Docker Hub no longer accepts this two-factor login ({what})"),
    };
    HubError::Rejected(format!(
        "{why}; the code is not at fault: start the login again with `{NAME} login`"
    ))
}

/// When a `login_2fa_token` expires: its own `exp` when it is a JWT, else a few minutes.
fn two_factor_expiry(token: &str) -> Instant {
    let now = Instant::now();
    match jwt::parse(token).and_then(|c| c.exp) {
        Some(exp) => {
            let left = exp.saturating_sub(crate::clock::now_unix());
            now + Duration::from_secs(left)
        }
        None => now + TWO_FACTOR_LIFETIME,
    }
}

/// 0.5 s, then 1 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64 << (attempt.saturating_sub(1)).min(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_millis(1000));
    }

    #[test]
    fn a_two_factor_token_that_is_a_jwt_expires_with_it() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let past = format!(
            "{}.{}.{}",
            b64("{}"),
            b64(&format!("{{\"exp\":{}}}", crate::clock::now_unix() - 10)),
            b64("s")
        );
        assert!(two_factor_expiry(&past) <= Instant::now());
        let opaque = two_factor_expiry("not-a-jwt");
        assert!(opaque > Instant::now() + Duration::from_secs(200));
    }
}
