//! The Docker Hub API client: three login endpoints, retries, and one deadline.
//!
//! Only the commands that talk to Hub build a `Hub` (login, token, a Hub `store`, doctor);
//! `get`, `list` and `erase` never touch reqwest, so they never pay for its TLS setup.

use std::cell::Cell;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde_json::{Value, json};

use super::jwt;
use crate::secret::Secret;
use crate::trace;
use crate::{NAME, VERSION};

pub const DEFAULT_API: &str = "https://hub.docker.com";
const MAX_TRIES: u32 = 3;
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BODY: usize = 1024 * 1024;

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
    SecondFactor(Secret<String>),
}

pub struct Hub {
    http: Client,
    api: String,
    timeout: Duration,
    deadline: Cell<Instant>,
}

/// `DOCKER_HUB_API_URL` (the variable docker's hub-tool reads), else Docker Hub itself.
pub fn api_url() -> Result<String, HubError> {
    let raw = std::env::var("DOCKER_HUB_API_URL")
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_API.to_string());
    let lower = raw.to_ascii_lowercase();
    let host = lower
        .split_once("://")
        .map_or("", |(_, rest)| rest.trim_matches('/'));
    if !(lower.starts_with("https://") || lower.starts_with("http://")) || host.is_empty() {
        return Err(HubError::Unavailable(
            "DOCKER_HUB_API_URL must be an https:// (or http://) URL such as https://hub.docker.com; fix or unset it".into(),
        ));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

/// The API URL for messages: without any `user:password@` part.
pub(crate) fn shown(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..scheme_end + 3], &rest[at + 1..]),
        None => url.to_string(),
    }
}

impl Hub {
    /// A client whose whole operation, retries included, must end within `timeout`.
    pub fn new(timeout: Duration) -> Result<Hub, HubError> {
        let api = api_url()?;
        // reqwest is built with `rustls-no-provider`: pick ring once per process. An
        // error only means a provider is installed already, which is what we want.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Proxies: reqwest reads HTTP(S)_PROXY/ALL_PROXY/NO_PROXY itself. Certificates:
        // rustls-platform-verifier, i.e. the OS trust store, so corporate CAs work.
        let http = Client::builder()
            .user_agent(format!("{NAME}/{VERSION}"))
            .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
            .timeout(timeout)
            // Never resend a password body to wherever a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                HubError::Unavailable(format!("cannot set up the HTTPS client: {}", innermost(&e)))
            })?;
        Ok(Hub {
            http,
            api,
            timeout,
            deadline: Cell::new(Instant::now() + timeout),
        })
    }

    /// The API URL, fit for messages.
    pub fn api(&self) -> String {
        shown(&self.api)
    }

    /// A person just typed something: the network deadline starts over.
    pub fn renew_deadline(&self) {
        self.deadline.set(Instant::now() + self.timeout);
    }

    fn remaining(&self) -> Duration {
        self.deadline
            .get()
            .saturating_duration_since(Instant::now())
    }

    /// `POST /v2/users/login`: a password (or access token used as a password).
    pub fn password_login(
        &self,
        username: &str,
        password: &Secret<String>,
    ) -> Result<PasswordLogin, HubError> {
        let body = json!({"username": username, "password": password.expose()});
        let answer = self.post("/v2/users/login", &body)?;
        match answer.status {
            200 => self.jwt_from(&answer, "token").map(PasswordLogin::Token),
            401 => {
                let two_fa = answer
                    .field("login_2fa_token")
                    .filter(|t| !t.is_empty())
                    .map(|t| Secret::new(t.to_string()));
                match two_fa {
                    Some(t) => {
                        trace!("Hub requires a second factor for this account");
                        Ok(PasswordLogin::SecondFactor(t))
                    }
                    None => Err(HubError::Rejected(format!(
                        "Docker Hub rejected the username or password: {}",
                        answer.detail(&[password.expose()], "HTTP 401")
                    ))),
                }
            }
            _ => Err(self.unexpected(&answer, &[password.expose()])),
        }
    }

    /// `POST /v2/users/2fa-login`: the second step, with the TOTP code.
    pub fn second_factor(
        &self,
        login_2fa_token: &Secret<String>,
        code: &Secret<String>,
    ) -> Result<Secret<String>, HubError> {
        let body = json!({"login_2fa_token": login_2fa_token.expose(), "code": code.expose()});
        let secrets = [login_2fa_token.expose().as_str(), code.expose()];
        let answer = self.post("/v2/users/2fa-login", &body)?;
        match answer.status {
            200 => self.jwt_from(&answer, "token"),
            401 => Err(HubError::Rejected(format!(
                "Docker Hub rejected the two-factor code: {}; codes expire after about 30 s, try again with a fresh one",
                answer.detail(&secrets, "HTTP 401")
            ))),
            _ => Err(self.unexpected(&answer, &secrets)),
        }
    }

    /// `POST /v2/auth/token`: a personal or organisation access token for a short-lived JWT.
    pub fn access_token(
        &self,
        identifier: &str,
        secret: &Secret<String>,
    ) -> Result<Secret<String>, HubError> {
        let body = json!({"identifier": identifier, "secret": secret.expose()});
        let answer = self.post("/v2/auth/token", &body)?;
        match answer.status {
            200 | 201 => self.jwt_from(&answer, "access_token"),
            401 | 403 => Err(HubError::Rejected(format!(
                "Docker Hub rejected the access token for {identifier:?}: {}; check that the token is active and belongs to that account or organisation",
                answer.detail(&[secret.expose()], &format!("HTTP {}", answer.status))
            ))),
            _ => Err(self.unexpected(&answer, &[secret.expose()])),
        }
    }

    /// One harmless GET, no retries: any HTTP answer means the API is reachable.
    pub fn ping(&self) -> Result<(u16, Duration), HubError> {
        let url = format!("{}/v2/", self.api);
        let start = Instant::now();
        let result = self
            .http
            .get(&url)
            .timeout(self.remaining().max(Duration::from_millis(1)))
            .send();
        let elapsed = start.elapsed();
        match result {
            Ok(resp) => {
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

    /// POST a JSON body, retrying 429 (after Retry-After), 5xx and broken connections,
    /// at most `MAX_TRIES` times and never past the deadline. Transport errors are reported
    /// by their root cause only, which never contains the request body.
    fn post(&self, path: &str, body: &Value) -> Result<Answer, HubError> {
        let url = format!("{}{path}", self.api);
        let shown_url = shown(&url);
        let bytes = serde_json::to_vec(body).expect("a JSON value always serialises");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = self.remaining();
            if remaining.is_zero() {
                return Err(self.timed_out());
            }
            let start = Instant::now();
            let sent = self
                .http
                .post(&url)
                .timeout(remaining)
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json")
                .body(bytes.clone())
                .send();
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
                    trace!(
                        "POST {shown_url}: HTTP {status} in {} ms (try {attempt}/{MAX_TRIES})",
                        ms()
                    );
                    if status == 429 {
                        let wait = retry_after(resp.headers());
                        self.check_rate_limit(wait, attempt)?;
                        (
                            "Docker Hub is rate limiting requests (HTTP 429)".to_string(),
                            wait.unwrap_or_else(|| backoff(attempt)),
                        )
                    } else if status >= 500 {
                        (
                            format!("Docker Hub answered HTTP {status} (a server error)"),
                            backoff(attempt),
                        )
                    } else {
                        match read_body(resp) {
                            Ok((content_type, body)) => {
                                return Ok(Answer {
                                    status,
                                    content_type,
                                    body,
                                });
                            }
                            Err(e) if e.is_timeout() => return Err(self.timed_out()),
                            Err(e) => {
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
            if wait >= self.remaining() {
                return Err(HubError::Unavailable(format!(
                    "{problem}, and no time is left to retry within the {} s deadline; try again later or raise DOCKER_CREDENTIAL_HUB_TIMEOUT",
                    secs(self.timeout)
                )));
            }
            trace!("retrying in {} ms", wait.as_millis());
            std::thread::sleep(wait);
        }
    }

    /// A 429 whose Retry-After cannot be honoured fails now, naming the wait.
    fn check_rate_limit(&self, wait: Option<Duration>, attempt: u32) -> Result<(), HubError> {
        let Some(wait) = wait else { return Ok(()) };
        if attempt >= MAX_TRIES || wait < self.remaining() {
            return Ok(());
        }
        Err(HubError::Unavailable(format!(
            "Docker Hub is rate limiting requests (HTTP 429) and asks to wait {} s, longer than the {} s deadline allows; wait and retry, or raise DOCKER_CREDENTIAL_HUB_TIMEOUT",
            secs(wait),
            secs(self.timeout)
        )))
    }

    fn timed_out(&self) -> HubError {
        HubError::Unavailable(format!(
            "Docker Hub at {} did not answer within {} s; check the network and proxy settings, or raise DOCKER_CREDENTIAL_HUB_TIMEOUT",
            self.api(),
            secs(self.timeout)
        ))
    }

    /// The JWT in `field` of a success answer; a body that is not JSON, lacks the field,
    /// or carries something that is not a JWT is an error (and nothing gets cached).
    fn jwt_from(&self, answer: &Answer, field: &str) -> Result<Secret<String>, HubError> {
        let Some(body) = &answer.body else {
            return Err(self.not_json(answer));
        };
        let token = body.get(field).and_then(Value::as_str).unwrap_or("");
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

    fn unexpected(&self, answer: &Answer, secrets: &[&str]) -> HubError {
        if answer.body.is_none() {
            return self.not_json(answer);
        }
        HubError::Unavailable(format!(
            "Docker Hub answered HTTP {}: {}",
            answer.status,
            answer.detail(secrets, "no explanation given")
        ))
    }
}

/// A complete answer other than 429/5xx. `body` is `None` when it is not JSON.
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: Option<Value>,
}

impl Answer {
    fn field(&self, name: &str) -> Option<&str> {
        self.body.as_ref()?.get(name)?.as_str()
    }

    /// Hub's own explanation (`detail`, else `message`), made safe to print: one line,
    /// bounded, and with anything we sent scrubbed out.
    fn detail(&self, secrets: &[&str], fallback: &str) -> String {
        let text = self
            .field("detail")
            .or_else(|| self.field("message"))
            .filter(|t| !t.trim().is_empty())
            .unwrap_or(fallback);
        sanitize(text, secrets)
    }
}

fn read_body(resp: Response) -> reqwest::Result<(Option<String>, Option<Value>)> {
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| sanitize(s, &[]));
    let bytes = resp.bytes()?;
    if bytes.len() > MAX_BODY {
        return Ok((content_type, None));
    }
    Ok((content_type, serde_json::from_slice(&bytes).ok()))
}

/// Text from the server, fit for one line of an error message.
pub(crate) fn sanitize(text: &str, secrets: &[&str]) -> String {
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        s = s.replace(secret, "REDACTED");
    }
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// `Retry-After: <seconds>`. (HTTP dates are not used by Hub; they fall back to backoff.)
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: u64 = v.parse().ok()?;
    Some(Duration::from_secs(secs.min(86_400)))
}

/// 0.5 s, then 1 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64 << (attempt.saturating_sub(1)).min(4))
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s:.1}")
    }
}

/// The root cause of a reqwest error ("Connection refused (os error 111)"), which names
/// no URL and so cannot carry credentials embedded in one.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    sanitize(&cur.to_string(), &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_scrubs_secrets_and_control_characters() {
        let s = sanitize("bad\npassword hunter2\x1b[31m!", &["hunter2", ""]);
        assert_eq!(s, "bad password REDACTED [31m!");
        assert!(sanitize(&"x".repeat(500), &[]).chars().count() <= 201);
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "-1".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn api_urls_are_shown_without_credentials() {
        assert_eq!(
            shown("https://u:p@hub.example/x@y"),
            "https://hub.example/x@y"
        );
        assert_eq!(shown("http://127.0.0.1:80"), "http://127.0.0.1:80");
    }

    #[test]
    fn backoff_grows() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_millis(1000));
    }

    #[test]
    fn secs_is_readable() {
        assert_eq!(secs(Duration::from_secs(30)), "30");
        assert_eq!(secs(Duration::from_millis(2500)), "2.5");
    }
}
