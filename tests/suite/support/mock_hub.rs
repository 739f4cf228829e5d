//! A loopback mock of the Docker Hub login API — the one stand-in this project allows,
//! because the real Hub cannot be reached from the test machines. Each behaviour names its
//! source: the Hub API spec (docker/docs `content/reference/api/hub/latest.yaml`, its older
//! "beta" and newer "2-beta" versions), docker/hub-tool (`pkg/hub/client.go`), docker/cli
//! (`internal/oauth`) and Hub's public feedback tracker (docker/hub-feedback).
//!
//! - `POST /v2/users/login` {username, password} → 200 {token}, or 401 {detail,
//!   login_2fa_token} (spec `PostUsersLoginErrorResponse`; the 2FA detail text is
//!   hub-tool's `SecondFactorDetailMessage`). Deprecated in the spec; `Reply::Gone` makes it
//!   404/410.
//! - `POST /v2/users/2fa-login` {login_2fa_token, code} → 200 {token} or 401 {detail}. The
//!   spec calls `login_2fa_token` "short time lived": here it expires (5 min by default) and
//!   works once. The spec gives no format; it is JWT-shaped here, with its `exp`. A stale
//!   token (expired or used) gets the very same 401 {detail} as a wrong code: the spec
//!   documents no other refusal for this route and Hub's wording for it is unconfirmed, so
//!   the conservative mock gives the client nothing but the status to go on.
//! - `POST /v2/auth/token` {identifier, secret} → 200 {access_token}, which "expires in 10
//!   minutes" (spec `AuthCreateTokenResponse`); the secret may be a PAT or a password (spec).
//!   401 {errinfo, detail, message} (spec `components/responses/unauthorized`).
//! - `POST /v2/access-tokens` (Bearer) {token_label, scopes} → 201 `accessToken` (spec), 400
//!   `ValueError` {fields, text}, 401 {detail, message}, and 403 {message: "token issued from
//!   personal access token", errinfo} for a JWT that came from a PAT (docker/hub-feedback#2438).
//! - Tokens carry the account in the namespaced claim `"https://hub.docker.com": {username,
//!   email, uuid, ...}` with `sub` an identity-provider id (docker/cli
//!   `internal/oauth/manager/manager_test.go`; trufflehog's Docker Hub detector reads both
//!   routes' tokens so).
//! - Every answer carries `X-RateLimit-Limit`, `-Remaining` and `-Reset` (spec "Rate
//!   Limiting"). A 429 carries `Retry-After` in seconds (newer spec), or, as a real one did
//!   (docker/hub-feedback#2459), a Unix timestamp equal to `x-ratelimit-reset`, or the older
//!   spec's `X-Retry-After` timestamp.
//!
//!
//! Beyond the Hub API, the services `logout` and `doctor --network` use:
//!
//! - `POST /oauth/revoke`, form-encoded `client_id` and `token`: Docker's login service
//!   (docker/cli `internal/oauth/api/api.go`, `RevokeToken`, which counts only 200 as
//!   success). 200 with an empty body, also for a token it does not know (RFC 7009 §2.2:
//!   "the authorization server responds with HTTP status code 200 if the token has been
//!   revoked successfully or if the client submitted an invalid token"); a `client_id` other
//!   than the docker CLI's (`internal/oauth/manager/util.go`) is 401 `invalid_client` with
//!   an `error_description`, the OAuth error shape `tryDecodeOAuthError` reads.
//! - `GET /token?service=registry.docker.io&scope=repository:ratelimitpreview/test:pull`:
//!   the registry's token service (docker/docs `content/manuals/docker-hub/usage/pulls.md`).
//!   HTTP Basic is checked against the account (password or PAT; a password of a 2FA
//!   account is refused, as docker/hub-feedback#1981 reports for `docker login`), no
//!   credentials get an anonymous token; a failed authentication is 401 (distribution's
//!   `docs/content/spec/auth/token.md`). The answer carries `token` and `access_token`
//!   (that spec allows either or both; `set_registry_token_fields` picks), `expires_in`
//!   and `issued_at`.
//! - `HEAD /v2/ratelimitpreview/test/manifests/latest` with that Bearer token: 200 with
//!   `ratelimit-limit`/`ratelimit-remaining` as `N;w=21600` and `docker-ratelimit-source`
//!   (the client's IP for anonymous pulls, an account id otherwise), as the same page shows;
//!   by default 100 per 6 hours per address anonymously and 200 for the account (the page's
//!   table for unauthenticated and Personal users). `set_pull_limit` changes them, `None`
//!   sends no headers (a paid plan: "no pull rate limit"). A missing or unknown token is 401.
//!
//! The Hub API's `X-RateLimit-*` headers are on the Hub API's answers only.
//!
//! It records every request, and can be scripted per endpoint to misbehave:
//!
//! ```ignore
//! let hub = MockHub::start();
//! hub.then(LOGIN, Reply::RateLimited { retry_after: 1 }); // next login: 429, then normal
//! hub.always(LOGIN, Reply::ServerError(500));             // every login: 500
//! hub.enable_two_factor();                                 // 401 + login_2fa_token, code 123456
//! assert_eq!(hub.count(LOGIN), 1);
//! ```
//!
//! HTTP/1.1 on a std `TcpListener`, one thread per connection, `Connection: close` on every
//! answer. Requests sent through an HTTP proxy (absolute-form targets) are recorded too.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub const LOGIN: &str = "/v2/users/login";
pub const TWO_FA_LOGIN: &str = "/v2/users/2fa-login";
pub const AUTH_TOKEN: &str = "/v2/auth/token";
pub const ACCESS_TOKENS: &str = "/v2/access-tokens";
pub const REVOKE: &str = "/oauth/revoke";
pub const REGISTRY_TOKEN: &str = "/token";
pub const MANIFEST: &str = "/v2/ratelimitpreview/test/manifests/latest";
/// The query of Docker's documented token request for the pull quota.
pub const REGISTRY_TOKEN_QUERY: &str =
    "service=registry.docker.io&scope=repository:ratelimitpreview/test:pull";
/// The docker CLI's OAuth client (docker/cli `internal/oauth/manager/util.go`).
pub const CLIENT_ID: &str = "L4v0dmlNBpYUjGGab0C2JtgTgXr1Qz4d";
/// The pull-limit window Docker documents: 6 hours.
pub const PULL_WINDOW: u64 = 21600;
/// The lifetime of `/v2/auth/token` tokens: "This expires in 10 minutes" (spec).
pub const AUTH_TOKEN_LIFETIME: i64 = 600;
/// The rate-limit window the mock reports (docker/hub-feedback#2459 showed a limit of 180).
pub const RATE_LIMIT: u64 = 180;

/// The account the mock knows by default.
pub const USERNAME: &str = "mockuser";
pub const PASSWORD: &str = "correct-horse-battery-staple";
pub const ACCESS_TOKEN: &str = "dckr_pat_MockPersonalAccessToken0123456789";
pub const OTP_CODE: &str = "123456";
pub const MFA_DETAIL: &str = "Require secondary authentication on MFA enabled account";

/// What the mock does with one request to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Behave like Hub: check the credentials against the account.
    Normal,
    /// 429 with `Retry-After: N` (seconds, the newer spec).
    RateLimited { retry_after: u64 },
    /// 429 with `retry-after` and `x-ratelimit-reset` both the Unix time N, as a real 429
    /// did (docker/hub-feedback#2459).
    RateLimitedUntil { unix: i64 },
    /// 429 with only the older spec's `X-Retry-After: <Unix time>`.
    RateLimitedOldSpec { unix: i64 },
    /// 429 with `Retry-After` as an HTTP date (RFC 9110 allows it).
    RateLimitedHttpDate { unix: i64 },
    /// This status (404 or 410) with a small JSON body: a removed route.
    Gone(u16),
    /// 401 with this `detail` and another field that must never be quoted.
    Unauthorized { detail: String, other: String },
    /// 200 with a body that never ends (until the client hangs up).
    Endless,
    /// Handle the request as Hub would (so a single-use token is used up), then answer
    /// this status (5xx) instead, as a gateway does when the answer is lost on the way back
    /// (RFC 9110 §9.2.2: a POST is not idempotent, and a retry may find its effect done).
    ProcessedThen(u16),
    /// This status (5xx) with a small JSON body.
    ServerError(u16),
    /// Read the request, then never answer (until the mock is dropped).
    Hang,
    /// 200 with an HTML page.
    Garbage,
    /// 200 with a JSON body cut short (the Content-Length matches what is sent).
    TruncatedJson,
    /// Promise a 200 JSON body, send part of it, then reset the connection (TCP RST).
    ResetMidBody,
    /// 200 whose token field holds something that is not a JWT.
    NotJwt,
    /// Behave like Hub, but only after this many milliseconds (a slow login that concurrent
    /// callers pile up behind).
    Slow(u64),
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path, also when the request came through a proxy in absolute form.
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    /// The request target exactly as sent (absolute `http://host/path` via a proxy).
    pub target: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Option<Value>,
    /// The body as sent.
    pub raw_body: Vec<u8>,
    /// The client's address.
    pub peer: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// A field of a form-encoded body.
    pub fn form(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(&self.raw_body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Username and password of an HTTP Basic `Authorization`.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        let encoded = self.header("authorization")?.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        Some((user.to_string(), password.to_string()))
    }

    /// Everything this request carried, as text, for leak checks.
    pub fn everything(&self) -> String {
        let mut all = format!("{} {}\n", self.method, self.target);
        for (k, v) in &self.headers {
            all.push_str(&format!("{k}: {v}\n"));
        }
        all.push_str(&String::from_utf8_lossy(&self.raw_body));
        all
    }
}

/// Which fields a registry token answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFields {
    Both,
    TokenOnly,
    AccessTokenOnly,
}

struct State {
    username: String,
    password: String,
    access_token: String,
    /// PATs created through `/v2/access-tokens`, with their scopes.
    created_tokens: Vec<(String, Vec<String>)>,
    /// Issued JWTs that came from a PAT (which `/v2/access-tokens` refuses).
    pat_jwts: Vec<String>,
    two_factor: bool,
    token_lifetime: i64,
    auth_token_lifetime: i64,
    two_fa_lifetime: i64,
    /// Requests answered so far in this rate-limit window.
    rate_used: u64,
    rate_reset: i64,
    /// The 2FA code `/v2/users/2fa-login` accepts.
    otp_code: String,
    /// Extra claims put in the payload of every issued token (hygiene canaries).
    extra_claims: serde_json::Map<String, Value>,
    /// Mixed into the signature part of every issued token.
    signature_tag: String,
    /// Scripted replies, consumed one per request, before `always`.
    queued: HashMap<String, VecDeque<Reply>>,
    always: HashMap<String, Reply>,
    requests: Vec<Request>,
    issued: Vec<String>,
    /// Every login_2fa_token handed out.
    pending_2fa: Vec<String>,
    /// Those already used once.
    used_2fa: Vec<String>,
    /// `(client_id, token)` of every revoke request.
    revoked: Vec<(String, String)>,
    /// Registry tokens handed out, with the account they were issued to.
    registry_tokens: Vec<(String, Option<String>)>,
    registry_token_fields: TokenFields,
    /// `(limit, remaining)` for the account and for anonymous pulls; `None`: no headers.
    pull_limit_account: Option<(u64, u64)>,
    pull_limit_anonymous: Option<(u64, u64)>,
}

pub struct MockHub {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    serial: Arc<AtomicU64>,
}

impl MockHub {
    /// Start a mock Hub on 127.0.0.1 with the default account, tokens valid for an hour.
    pub fn start() -> MockHub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the mock Hub");
        let addr = listener.local_addr().unwrap();
        let hub = MockHub {
            addr,
            state: Arc::new(Mutex::new(State {
                username: USERNAME.into(),
                password: PASSWORD.into(),
                access_token: ACCESS_TOKEN.into(),
                created_tokens: Vec::new(),
                pat_jwts: Vec::new(),
                two_factor: false,
                token_lifetime: 3600,
                auth_token_lifetime: AUTH_TOKEN_LIFETIME,
                two_fa_lifetime: 300,
                rate_used: 0,
                rate_reset: now() + 3600,
                otp_code: OTP_CODE.into(),
                extra_claims: serde_json::Map::new(),
                signature_tag: String::new(),
                queued: HashMap::new(),
                always: HashMap::new(),
                requests: Vec::new(),
                issued: Vec::new(),
                pending_2fa: Vec::new(),
                used_2fa: Vec::new(),
                revoked: Vec::new(),
                registry_tokens: Vec::new(),
                registry_token_fields: TokenFields::Both,
                pull_limit_account: Some((200, 200)),
                pull_limit_anonymous: Some((100, 100)),
            })),
            stop: Arc::new(AtomicBool::new(false)),
            serial: Arc::new(AtomicU64::new(0)),
        };
        let (state, stop, serial) = (hub.state.clone(), hub.stop.clone(), hub.serial.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (state, stop, serial) = (state.clone(), stop.clone(), serial.clone());
                thread::spawn(move || serve(conn, &state, &stop, &serial));
            }
        });
        hub
    }

    /// The base URL to put in `DOCKER_HUB_API_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// The account now requires a 2FA code (`OTP_CODE`) after the password.
    pub fn enable_two_factor(&self) {
        self.with(|s| s.two_factor = true);
    }

    /// Seconds from issue to `exp` for new tokens of the password routes (`/v2/users/login`,
    /// `/v2/users/2fa-login`) and `/v2/auth/token`; negative issues already-expired tokens.
    pub fn set_token_lifetime(&self, seconds: i64) {
        self.with(|s| {
            s.token_lifetime = seconds;
            s.auth_token_lifetime = seconds;
        });
    }

    /// Seconds from issue to `exp` of `/v2/auth/token` tokens only (600 by default).
    pub fn set_auth_token_lifetime(&self, seconds: i64) {
        self.with(|s| s.auth_token_lifetime = seconds);
    }

    /// Seconds a `login_2fa_token` stays valid (300 by default).
    pub fn set_two_factor_lifetime(&self, seconds: i64) {
        self.with(|s| s.two_fa_lifetime = seconds);
    }

    /// The PATs created through `/v2/access-tokens`, with their scopes.
    pub fn created_tokens(&self) -> Vec<(String, Vec<String>)> {
        self.with(|s| s.created_tokens.clone())
    }

    pub fn set_password(&self, password: &str) {
        self.with(|s| s.password = password.into());
    }

    /// The account's personal access token (must start with `dckr_pat_` to be used as one).
    pub fn set_access_token(&self, token: &str) {
        self.with(|s| s.access_token = token.into());
    }

    /// The account no longer asks for a second factor.
    pub fn disable_two_factor(&self) {
        self.with(|s| s.two_factor = false);
    }

    /// The 2FA code the mock accepts instead of `OTP_CODE`.
    pub fn set_otp_code(&self, code: &str) {
        self.with(|s| s.otp_code = code.into());
    }

    /// Every token issued from now on carries the claim `name: value` in its payload.
    pub fn set_claim(&self, name: &str, value: &str) {
        self.with(|s| {
            s.extra_claims
                .insert(name.into(), Value::String(value.into()))
        });
    }

    /// Every token issued from now on carries the claim `name` with this JSON value.
    pub fn set_claim_json(&self, name: &str, value: Value) {
        self.with(|s| s.extra_claims.insert(name.into(), value));
    }

    /// Every token issued from now on has `tag` inside its (base64url) signature part.
    pub fn set_signature_tag(&self, tag: &str) {
        self.with(|s| s.signature_tag = tag.into());
    }

    /// The next request to `path` gets `reply`; later ones go on as before.
    pub fn then(&self, path: &str, reply: Reply) -> &Self {
        self.with(|s| s.queued.entry(path.into()).or_default().push_back(reply));
        self
    }

    /// Every request to `path` (after any queued replies) gets `reply`.
    pub fn always(&self, path: &str, reply: Reply) -> &Self {
        self.with(|s| s.always.insert(path.into(), reply));
        self
    }

    pub fn requests(&self) -> Vec<Request> {
        self.with(|s| s.requests.clone())
    }

    /// How many requests reached `path`.
    pub fn count(&self, path: &str) -> usize {
        self.with(|s| s.requests.iter().filter(|r| r.path == path).count())
    }

    /// Every token handed out, in order.
    pub fn issued(&self) -> Vec<String> {
        self.with(|s| s.issued.clone())
    }

    pub fn last_issued(&self) -> String {
        self.issued().pop().expect("the mock Hub issued no token")
    }

    /// Every `login_2fa_token` handed out.
    pub fn login_2fa_tokens(&self) -> Vec<String> {
        self.with(|s| s.pending_2fa.clone())
    }

    /// `(client_id, token)` of every revoke request, in order.
    pub fn revoked(&self) -> Vec<(String, String)> {
        self.with(|s| s.revoked.clone())
    }

    /// Every registry token handed out, in order.
    pub fn registry_tokens(&self) -> Vec<String> {
        self.with(|s| s.registry_tokens.iter().map(|(t, _)| t.clone()).collect())
    }

    pub fn set_registry_token_fields(&self, fields: TokenFields) {
        self.with(|s| s.registry_token_fields = fields);
    }

    /// `(limit, remaining)` per 6 hours for the account (`anonymous` false) or for
    /// anonymous pulls; `None` sends no rate-limit headers.
    pub fn set_pull_limit(&self, anonymous: bool, limit: Option<(u64, u64)>) {
        self.with(|s| {
            if anonymous {
                s.pull_limit_anonymous = limit;
            } else {
                s.pull_limit_account = limit;
            }
        });
    }
}

impl Drop for MockHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// A JWT-shaped token (header.payload.signature, all base64url without padding), with extra
/// payload claims and `tag` mixed into the signature.
pub fn make_jwt_with(
    exp: i64,
    username: &str,
    serial: u64,
    extra_claims: &serde_json::Map<String, Value>,
    tag: &str,
) -> String {
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "mock"});
    let mut payload = json!({
        "exp": exp,
        "iat": now(),
        "iss": "https://login.docker.com/",
        "sub": format!("samlp|mock|{username}-{serial}"),
        "https://hub.docker.com": {
            "username": username,
            "email": format!("{username}@mock.example"),
            "uuid": format!("0000-mock-{serial}"),
            "source": "mock",
        },
        "jti": format!("mock-{serial}"),
    });
    if let Some(map) = payload.as_object_mut() {
        map.extend(extra_claims.clone());
    }
    let signature = URL_SAFE_NO_PAD.encode(format!("mock-signature-{serial}-{}{tag}", now()));
    format!("{}.{}.{signature}", b64(&header), b64(&payload))
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ------------------------------------------------------------------------------ server

fn serve(mut conn: TcpStream, state: &Mutex<State>, stop: &AtomicBool, serial: &AtomicU64) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(request) = read_request(&conn) else {
        return;
    };
    let (reply, limits) = {
        let mut s = state.lock().unwrap();
        s.requests.push(request.clone());
        // Spec "Rate Limiting": every answer of the Hub API says how much of the window is
        // left. The login service and the registry are other services.
        let hub_api = ![REVOKE, REGISTRY_TOKEN, MANIFEST].contains(&request.path.as_str());
        if now() >= s.rate_reset {
            s.rate_used = 0;
            s.rate_reset = now() + 3600;
        }
        let limits = if hub_api {
            s.rate_used += 1;
            vec![
                ("X-RateLimit-Limit", RATE_LIMIT.to_string()),
                (
                    "X-RateLimit-Remaining",
                    RATE_LIMIT.saturating_sub(s.rate_used).to_string(),
                ),
                ("X-RateLimit-Reset", s.rate_reset.to_string()),
            ]
        } else {
            Vec::new()
        };
        let queued = s
            .queued
            .get_mut(&request.path)
            .and_then(VecDeque::pop_front);
        let reply = queued
            .or_else(|| s.always.get(&request.path).cloned())
            .unwrap_or(Reply::Normal);
        (reply, limits)
    };
    if let Reply::Slow(millis) = reply {
        thread::sleep(Duration::from_millis(millis));
    }
    let with = |extra: &[(&'static str, String)]| {
        let mut all = limits.clone();
        all.extend_from_slice(extra);
        all
    };
    match reply {
        Reply::Normal | Reply::Slow(_) => match normal(&request, state, serial) {
            Answer::Json(status, body) => respond_json(&mut conn, status, &with(&[]), &body),
            Answer::Empty(status, headers) => respond_empty(&mut conn, status, &with(&headers)),
        },
        Reply::ProcessedThen(status) => {
            let _ = normal(&request, state, serial);
            let body = json!({"detail": "bad gateway"});
            respond_json(&mut conn, status, &with(&[]), &body);
        }
        Reply::RateLimited { retry_after } => {
            let body = json!({"detail": "Too Many Requests"});
            respond_json(
                &mut conn,
                429,
                &with(&[("Retry-After", retry_after.to_string())]),
                &body,
            );
        }
        Reply::RateLimitedUntil { unix } => {
            let body = json!({"detail": "Too Many Requests"});
            let mut headers: Vec<(&str, String)> = limits
                .iter()
                .filter(|(k, _)| *k != "X-RateLimit-Reset")
                .cloned()
                .collect();
            headers.push(("x-ratelimit-reset", unix.to_string()));
            headers.push(("retry-after", unix.to_string()));
            respond_json(&mut conn, 429, &headers, &body);
        }
        Reply::RateLimitedOldSpec { unix } => {
            let body = json!({"detail": "Too Many Requests"});
            respond_json(
                &mut conn,
                429,
                &with(&[("X-Retry-After", unix.to_string())]),
                &body,
            );
        }
        Reply::RateLimitedHttpDate { unix } => {
            let body = json!({"detail": "Too Many Requests"});
            respond_json(
                &mut conn,
                429,
                &with(&[("Retry-After", http_date(unix))]),
                &body,
            );
        }
        Reply::Gone(status) => {
            let body = json!({"detail": "Not Found"});
            respond_json(&mut conn, status, &with(&[]), &body);
        }
        Reply::Unauthorized { detail, other } => {
            let body =
                json!({"detail": detail, "errinfo": {"other": other}, "login_2fa_token": null});
            respond_json(&mut conn, 401, &with(&[]), &body);
        }
        Reply::Endless => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            if conn.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = format!("10000\r\n{}\r\n", "[".repeat(0x10000));
            let start = Instant::now();
            while !stop.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(120) {
                if conn.write_all(chunk.as_bytes()).is_err() {
                    return;
                }
            }
        }
        Reply::ServerError(status) => {
            let body = json!({"detail": "internal error"});
            respond_json(&mut conn, status, &with(&[]), &body);
        }
        Reply::Hang => {
            let start = Instant::now();
            while !stop.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(120) {
                thread::sleep(Duration::from_millis(50));
            }
        }
        Reply::Garbage => {
            let page =
                b"<html><body><h1>502 Bad Gateway</h1>hello from a captive portal</body></html>";
            respond(&mut conn, 200, &with(&[]), "text/html", page);
        }
        Reply::TruncatedJson => {
            respond(
                &mut conn,
                200,
                &with(&[]),
                "application/json",
                br#"{"token": "eyJhbGciOi"#,
            );
        }
        Reply::ResetMidBody => {
            let body = token_body(&request.path, &"x".repeat(400));
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body.as_bytes()[..body.len() / 3]);
            let _ = conn.flush();
            thread::sleep(Duration::from_millis(50));
            reset(conn);
        }
        Reply::NotJwt => {
            let body = token_body(&request.path, "this-is-not-a-jwt");
            respond(
                &mut conn,
                200,
                &with(&[]),
                "application/json",
                body.as_bytes(),
            );
        }
    }
}

/// RFC 9110's IMF-fixdate for a Unix time: `Thu, 01 May 2025 22:02:18 GMT`.
fn http_date(unix: i64) -> String {
    let ts = jiff::Timestamp::from_second(unix).expect("a Unix time within jiff's range");
    jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&ts)
        .expect("an RFC 9110 date")
}

/// `{"token": t}` for the login endpoints, `{"access_token": t}` for /v2/auth/token.
fn token_body(path: &str, token: &str) -> String {
    let field = if path == AUTH_TOKEN {
        "access_token"
    } else {
        "token"
    };
    json!({ field: token }).to_string()
}

/// The scopes `createAccessTokenRequest` allows (spec).
const SCOPES: [&str; 4] = ["repo:admin", "repo:write", "repo:read", "repo:public_read"];

/// What a service answers: JSON, or headers alone (a HEAD, an empty 200).
enum Answer {
    Json(u16, Value),
    Empty(u16, Vec<(&'static str, String)>),
}

/// The account's PAT, or one it created.
fn is_pat(s: &State, secret: &str) -> bool {
    secret == s.access_token || s.created_tokens.iter().any(|(t, _)| t == secret)
}

/// The behaviour of the service `req` is for.
fn normal(req: &Request, state: &Mutex<State>, serial: &AtomicU64) -> Answer {
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", REVOKE) => revoke(req, state),
        ("GET", REGISTRY_TOKEN) => registry_token(req, state, serial),
        ("HEAD" | "GET", MANIFEST) => manifest(req, state),
        _ => {
            let (status, body) = hub_api(req, state, serial);
            Answer::Json(status, body)
        }
    }
}

/// Docker's login service revoking a refresh token (see the module header).
fn revoke(req: &Request, state: &Mutex<State>) -> Answer {
    let form = req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let client_id = req.form("client_id").unwrap_or_default();
    let token = req.form("token").unwrap_or_default();
    if !form || token.is_empty() {
        return Answer::Json(
            400,
            json!({"error": "invalid_request", "error_description": "a form with client_id and token is required"}),
        );
    }
    if client_id != CLIENT_ID {
        return Answer::Json(
            401,
            json!({"error": "invalid_client", "error_description": "Unknown client."}),
        );
    }
    state.lock().unwrap().revoked.push((client_id, token));
    Answer::Empty(200, Vec::new())
}

/// The registry's token service (see the module header).
fn registry_token(req: &Request, state: &Mutex<State>, serial: &AtomicU64) -> Answer {
    let query: HashMap<String, String> = url::form_urlencoded::parse(req.query.as_bytes())
        .into_owned()
        .collect();
    if query.get("service").map(String::as_str) != Some("registry.docker.io")
        || !query.contains_key("scope")
    {
        return Answer::Json(400, json!({"details": "service and scope are required"}));
    }
    let mut s = state.lock().unwrap();
    let refused = json!({"details": "incorrect username or password"});
    let account = match (req.header("authorization"), req.basic_auth()) {
        (None, _) => None,
        (Some(_), None) => return Answer::Json(401, refused),
        (Some(_), Some((user, password))) => {
            let by_password = password == s.password && !s.two_factor;
            if user != s.username || !(by_password || is_pat(&s, &password)) {
                return Answer::Json(401, refused);
            }
            Some(user)
        }
    };
    let n = serial.fetch_add(1, Ordering::SeqCst);
    let token = make_jwt_with(
        now() + 300,
        account.as_deref().unwrap_or("anonymous"),
        n,
        &s.extra_claims,
        &format!("registry{}", s.signature_tag),
    );
    s.registry_tokens.push((token.clone(), account));
    let issued_at = jiff::Timestamp::now().to_string();
    let body = match s.registry_token_fields {
        TokenFields::Both => {
            json!({"token": token, "access_token": token, "expires_in": 300, "issued_at": issued_at})
        }
        TokenFields::TokenOnly => {
            json!({"token": token, "expires_in": 300, "issued_at": issued_at})
        }
        TokenFields::AccessTokenOnly => {
            json!({"access_token": token, "expires_in": 300, "issued_at": issued_at})
        }
    };
    Answer::Json(200, body)
}

/// The registry's manifest of Docker's rate-limit image (see the module header).
fn manifest(req: &Request, state: &Mutex<State>) -> Answer {
    let s = state.lock().unwrap();
    let bearer = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "));
    let Some(account) = bearer.and_then(|b| {
        s.registry_tokens
            .iter()
            .find(|(t, _)| t == b)
            .map(|(_, a)| a.clone())
    }) else {
        return Answer::Empty(
            401,
            vec![(
                "WWW-Authenticate",
                r#"Bearer realm="/token",service="registry.docker.io",scope="repository:ratelimitpreview/test:pull:pull""#.into(),
            )],
        );
    };
    let (limit, source) = match &account {
        Some(user) => (s.pull_limit_account, format!("mock-account-id-{user}")),
        None => (s.pull_limit_anonymous, req.peer.clone()),
    };
    let mut headers = vec![
        (
            "Docker-Content-Digest",
            "sha256:0000000000000000000000000000000000000000000000000000000000000000".into(),
        ),
        (
            "Docker-Distribution-Api-Version",
            "registry/2.0".to_string(),
        ),
    ];
    if let Some((limit, remaining)) = limit {
        headers.push(("ratelimit-limit", format!("{limit};w={PULL_WINDOW}")));
        headers.push((
            "ratelimit-remaining",
            format!("{remaining};w={PULL_WINDOW}"),
        ));
        headers.push(("docker-ratelimit-source", source));
    }
    Answer::Empty(200, headers)
}

/// Hub's API behaviour for the account.
fn hub_api(req: &Request, state: &Mutex<State>, serial: &AtomicU64) -> (u16, Value) {
    let mut s = state.lock().unwrap();
    let field = |name: &str| {
        req.body
            .as_ref()
            .and_then(|b| b.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let issue = |s: &mut State, lifetime: i64| {
        let n = serial.fetch_add(1, Ordering::SeqCst);
        let token = make_jwt_with(
            now() + lifetime,
            &s.username,
            n,
            &s.extra_claims,
            &s.signature_tag,
        );
        s.issued.push(token.clone());
        token
    };
    let bad_creds =
        json!({"detail": "Incorrect authentication credentials", "login_2fa_token": null});
    let unauthorized = |detail: &str| json!({"errinfo": {}, "detail": detail, "message": detail});
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", LOGIN) => {
            let password = field("password");
            if field("username") != s.username || (password != s.password && !is_pat(&s, &password))
            {
                (401, bad_creds)
            } else if s.two_factor && password == s.password {
                let n = serial.fetch_add(1, Ordering::SeqCst);
                let lifetime = s.two_fa_lifetime;
                let t = make_jwt_with(
                    now() + lifetime,
                    "login-2fa",
                    n,
                    &serde_json::Map::new(),
                    "2fa",
                );
                s.pending_2fa.push(t.clone());
                (401, json!({"detail": MFA_DETAIL, "login_2fa_token": t}))
            } else {
                let lifetime = s.token_lifetime;
                let token = issue(&mut s, lifetime);
                if is_pat(&s, &password) {
                    s.pat_jwts.push(token.clone());
                }
                (200, json!({"token": token}))
            }
        }
        ("POST", TWO_FA_LOGIN) => {
            let t = field("login_2fa_token");
            // "Short time lived" (spec), and good for one attempt.
            let live = s.pending_2fa.contains(&t)
                && !s.used_2fa.contains(&t)
                && claims_exp(&t).is_some_and(|exp| exp > now());
            if !t.is_empty() {
                s.used_2fa.push(t);
            }
            if !live || field("code") != s.otp_code {
                (
                    401,
                    json!({"detail": "Incorrect authentication credentials"}),
                )
            } else {
                let lifetime = s.token_lifetime;
                (200, json!({"token": issue(&mut s, lifetime)}))
            }
        }
        ("POST", AUTH_TOKEN) => {
            let secret = field("secret");
            if field("identifier") != s.username {
                (401, unauthorized("invalid username or access token"))
            } else if is_pat(&s, &secret) {
                let lifetime = s.auth_token_lifetime;
                let token = issue(&mut s, lifetime);
                s.pat_jwts.push(token.clone());
                (200, json!({"access_token": token}))
            } else if secret == s.password && s.two_factor {
                // The spec is silent on passwords of 2FA accounts here.
                (
                    401,
                    unauthorized(
                        "this account uses two-factor authentication: use a personal access token",
                    ),
                )
            } else if secret == s.password {
                let lifetime = s.auth_token_lifetime;
                (200, json!({"access_token": issue(&mut s, lifetime)}))
            } else {
                (401, unauthorized("invalid username or access token"))
            }
        }
        ("POST", ACCESS_TOKENS) => {
            let bearer = req
                .header("authorization")
                .and_then(|h| h.strip_prefix("Bearer "))
                .unwrap_or("")
                .to_string();
            if !s.issued.contains(&bearer) || claims_exp(&bearer).is_none_or(|e| e <= now()) {
                return (401, unauthorized("authentication required"));
            }
            if s.pat_jwts.contains(&bearer) {
                return (
                    403,
                    json!({"message": "token issued from personal access token", "errinfo": {}}),
                );
            }
            let label = field("token_label");
            let scopes: Vec<String> = req
                .body
                .as_ref()
                .and_then(|b| b.get("scopes"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let bad_scope = scopes.iter().find(|sc| !SCOPES.contains(&sc.as_str()));
            if label.is_empty()
                || label.chars().count() > 100
                || scopes.is_empty()
                || bad_scope.is_some()
            {
                let text = match bad_scope {
                    Some(sc) => format!("invalid scope: {sc}"),
                    None => "token_label and scopes are required".into(),
                };
                return (
                    400,
                    json!({"fields": {"scopes": [text.clone()]}, "text": text}),
                );
            }
            let n = serial.fetch_add(1, Ordering::SeqCst);
            let token = format!("dckr_pat_mockcreated{n:04}{}", now());
            s.created_tokens.push((token.clone(), scopes.clone()));
            (
                201,
                json!({
                    "uuid": format!("0000-token-{n}"),
                    "client_id": "mock",
                    "creator_ip": "127.0.0.1",
                    "creator_ua": req.header("user-agent").unwrap_or(""),
                    "created_at": "2026-12-01T00:00:00Z",
                    "last_used": null,
                    "generated_by": "manual",
                    "is_active": true,
                    "token": token,
                    "token_label": label,
                    "scopes": scopes,
                }),
            )
        }
        (_, "/v2/") | (_, "/v2") => (200, json!({})),
        _ => (404, json!({"detail": "object not found"})),
    }
}

/// The `exp` of a JWT-shaped token, read without checking anything.
fn claims_exp(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_i64()
}

fn read_request(conn: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    // Absolute form (`http://host:port/path`) is what a client sends to a proxy.
    let path = match target.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or("/".to_string(), |i| rest[i..].to_string()),
        None => target.clone(),
    };
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (path, String::new()),
    };
    Some(Request {
        method,
        path,
        query,
        target,
        headers,
        body: serde_json::from_slice(&body).ok(),
        raw_body: body,
        peer: conn
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default(),
    })
}

fn respond_json(conn: &mut TcpStream, status: u16, extra: &[(&str, String)], body: &Value) {
    respond(
        conn,
        status,
        extra,
        "application/json",
        body.to_string().as_bytes(),
    );
}

/// Headers and no body: a HEAD's answer, or an empty one.
fn respond_empty(conn: &mut TcpStream, status: u16, extra: &[(&str, String)]) {
    respond(conn, status, extra, "application/json", b"");
}

fn respond(
    conn: &mut TcpStream,
    status: u16,
    extra: &[(&str, String)],
    content_type: &str,
    body: &[u8],
) {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        410 => "Gone",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Write);
    // Let the client read everything before the socket closes.
    let mut sink = [0u8; 512];
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
}

/// Close with an RST instead of a FIN: SO_LINGER on with a zero timeout, then close.
/// std has no stable `set_linger`, so call setsockopt directly (Linux constants).
#[cfg(target_os = "linux")]
fn reset(conn: TcpStream) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Linger {
        l_onoff: i32,
        l_linger: i32,
    }
    unsafe extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    let linger = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a correctly sized, live `struct linger`.
    let rc = unsafe {
        setsockopt(
            conn.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            &linger,
            std::mem::size_of::<Linger>() as u32,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER) failed");
    drop(conn);
}

#[cfg(not(target_os = "linux"))]
fn reset(conn: TcpStream) {
    drop(conn);
}
