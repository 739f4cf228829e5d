//! Docker Hub as it really is (the sources are named in support/mock_hub.rs): rate limits in
//! every shape Hub has sent them, token shapes and lifetimes, the short-lived single-use 2FA
//! token, the deprecated password route going away, the docker CLI's web login keys, and
//! scoped access tokens created by `login --create-token`.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::env;
use crate::support::harness::{assert_get, store_request};
use crate::support::hub_fixture::*;
use crate::support::mock_hub::{
    ACCESS_TOKEN, ACCESS_TOKENS, AUTH_TOKEN, AUTH_TOKEN_LIFETIME, LOGIN, OTP_CODE, PASSWORD,
    RATE_LIMIT, Reply, TWO_FA_LOGIN, USERNAME, make_jwt_with, now,
};
use crate::support::output::{assert_one_line_failure, describe, stderr, stdout};

const ACCESS_KEY: &str = "https://index.docker.io/v1/access-token";
const REFRESH_KEY: &str = "https://index.docker.io/v1/refresh-token";
/// docker/cli `internal/oauth/manager/util.go`: the OAuth client ID the refresh secret ends in.
const CLIENT_ID: &str = "L4v0dmlNBpYUjGGab0C2JtgTgXr1Qz4d";

fn timed(f: impl FnOnce() -> Output) -> (Output, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

/// The `exp` and `iat` claims of a JWT-shaped token.
fn exp_and_iat(token: &str) -> (i64, i64) {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    (v["exp"].as_i64().unwrap(), v["iat"].as_i64().unwrap())
}

// --------------------------------------------------------------------------- rate limits

/// A real 429 carried `retry-after` as a Unix timestamp (docker/hub-feedback#2459): one a
/// second away is waited out, not read as 1.7 billion seconds.
#[test]
fn a_retry_after_timestamp_within_the_deadline_is_waited_out() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub
        .then(LOGIN, Reply::RateLimitedUntil { unix: now() + 2 });
    let (out, took) = timed(|| fx.login(PASSWORD, &[], &[]));
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(fx.hub.count(LOGIN), 2);
    assert!(
        took >= Duration::from_millis(800),
        "the wait was not honoured: {took:?}"
    );
    fx.assert_token_is_latest();
}

/// The older spec's `X-Retry-After` timestamp and an HTTP date are read too.
#[test]
fn x_retry_after_and_http_dates_are_read() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub
        .then(LOGIN, Reply::RateLimitedOldSpec { unix: now() + 2 });
    let (out, took) = timed(|| fx.login(PASSWORD, &[], &[]));
    assert!(out.status.success(), "{}", describe(&out));
    assert!(took >= Duration::from_millis(800), "{took:?}");
    fx.hub
        .then(LOGIN, Reply::RateLimitedHttpDate { unix: now() + 2 });
    let (out, took) = timed(|| fx.login(PASSWORD, &[], &[]));
    assert!(out.status.success(), "{}", describe(&out));
    assert!(took >= Duration::from_millis(800), "{took:?}");
    assert_eq!(fx.hub.count(LOGIN), 4);
}

/// A timestamp beyond the deadline fails at once, saying when to retry in local time.
#[test]
fn a_retry_after_timestamp_beyond_the_deadline_fails_at_once_with_the_local_time() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let until = now() + 3600;
    fx.hub
        .always(LOGIN, Reply::RateLimitedUntil { unix: until });
    let (out, took) = timed(|| fx.login(PASSWORD, &[], &[("DOCKER_CREDENTIAL_HUB_TIMEOUT", "5")]));
    let line = assert_one_line_failure(&out);
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_eq!(fx.hub.count(LOGIN), 1);
    // The local time of `until`, as `date` prints it in the zone the helper ran in.
    let local = env::command("date", &fx.vars())
        .args(["-d", &format!("@{until}"), "+%H:%M:%S"])
        .output()
        .unwrap();
    let local = String::from_utf8_lossy(&local.stdout).trim().to_string();
    assert!(
        line.contains(&format!("until {local}")),
        "{local} not in {line}"
    );
    assert!(line.contains("429") && !line.contains("86400"), "{line}");
}

/// `doctor --network` shows the rate limit Hub reported.
#[test]
fn doctor_network_shows_the_rate_limit_headers() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let out = fx.run(&["doctor", "--network"], "", &[]);
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains("Docker Hub API"))
        .unwrap_or_else(|| panic!("{}", describe(&out)));
    assert!(
        line.contains(&format!(
            "rate limit: {} of {RATE_LIMIT} requests left",
            RATE_LIMIT - 1
        )),
        "{line}"
    );
    assert!(line.contains("the window resets at"), "{line}");
}

// ------------------------------------------------------------------- no needless logins

/// docker runs `store` on every `docker login`, with the same credentials: while the cached
/// JWT is fresh that costs no Hub request (Hub's login rate limit locks an account for
/// minutes). New credentials do log in again.
#[test]
fn storing_unchanged_hub_credentials_makes_no_hub_request() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.store_ok(HUB_KEY, USERNAME, PASSWORD);
    assert_eq!(fx.hub.count(LOGIN), 1);
    for _ in 0..3 {
        fx.store_ok(HUB_KEY, USERNAME, PASSWORD);
    }
    assert_eq!(fx.hub.requests().len(), 1, "{:#?}", fx.hub.requests());
    fx.assert_token_is_latest();
    // A changed secret is a new login.
    fx.store_ok(HUB_KEY, USERNAME, ACCESS_TOKEN);
    assert_eq!(fx.hub.count(AUTH_TOKEN), 1);
    // And an expired cache is refreshed by the next store even when nothing changed.
    fx.hub.set_token_lifetime(-10);
    fx.store_ok(HUB_KEY, USERNAME, PASSWORD);
    fx.store_ok(HUB_KEY, USERNAME, PASSWORD);
    assert_eq!(fx.hub.count(LOGIN), 3);
}

// ------------------------------------------------------------------------ token shapes

/// Real tokens name the account in the namespaced `https://hub.docker.com` claim, with `sub`
/// an identity-provider id: `doctor` names the user, never `samlp|…`.
#[test]
fn doctor_names_the_user_from_the_namespaced_claim() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let out = fx.login(PASSWORD, &[], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = fx.run(&["doctor"], "", &[]);
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains("cached Hub JWT"))
        .unwrap_or_else(|| panic!("{}", describe(&out)));
    assert!(line.contains(&format!("for {USERNAME}:")), "{line}");
    assert!(!text.contains("samlp"), "{text}");
}

/// `/v2/auth/token` tokens expire in 10 minutes (spec): a PAT user's cached token is
/// reused until the freshness margin, then one login fetches the next.
#[test]
fn pat_tokens_live_ten_minutes_and_are_renewed_once_stale() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let out = fx.login(ACCESS_TOKEN, &[], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let first = fx.hub.last_issued();
    let (exp, iat) = exp_and_iat(&first);
    assert_eq!(exp - iat, AUTH_TOKEN_LIFETIME);
    fx.assert_token(&first);
    assert_eq!(fx.hub.count(AUTH_TOKEN), 1);
    // The cycle a PAT user sees: a token 62 s from expiry is still handed out, then, two
    // seconds on, inside the 60 s margin, replaced by exactly one new login.
    fx.hub.set_auth_token_lifetime(62);
    fx.hub.set_access_token("dckr_pat_second");
    fx.store_ok(HUB_KEY, USERNAME, "dckr_pat_second");
    let short = fx.hub.last_issued();
    fx.assert_token(&short);
    std::thread::sleep(Duration::from_secs(3));
    let renewed = fx.assert_token_is_latest();
    assert_ne!(renewed, short);
    fx.assert_token(&renewed);
}

// ----------------------------------------------------------------------- second factor

/// The `login_2fa_token` is short-lived: a code sent after it expired is not the code's
/// fault, and the message says to start the login again.
#[test]
fn an_expired_two_factor_token_says_start_again_and_blames_no_code() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.enable_two_factor();
    fx.hub.set_two_factor_lifetime(1);
    // Hub takes its time with the code: the token expires while the request is on its way.
    fx.hub.then(TWO_FA_LOGIN, Reply::Slow(2000));
    let out = fx.login(PASSWORD, &[], &[(OTP_ENV, OTP_CODE)]);
    let line = assert_one_line_failure(&out);
    assert!(line.contains("start the login again"), "{line}");
    assert!(!line.contains("rejected the two-factor code"), "{line}");
    assert_eq!(fx.hub.count(TWO_FA_LOGIN), 1);
    // A token that expired before the code was typed is not even sent.
    fx.hub.set_two_factor_lifetime(-1);
    let out = fx.login(PASSWORD, &[], &[(OTP_ENV, OTP_CODE)]);
    let line = assert_one_line_failure(&out);
    assert!(line.contains("start the login again"), "{line}");
    assert_eq!(fx.hub.count(TWO_FA_LOGIN), 1);
}

/// The mock itself: a `login_2fa_token` works once.
#[test]
fn the_mock_accepts_a_two_factor_token_once() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.enable_two_factor();
    let out = fx.login(PASSWORD, &[], &[(OTP_ENV, OTP_CODE)]);
    assert!(out.status.success(), "{}", describe(&out));
    let token = fx.hub.login_2fa_tokens().pop().unwrap();
    let body = serde_json::json!({"login_2fa_token": token, "code": OTP_CODE}).to_string();
    let reply = raw_post(&fx.hub.url(), TWO_FA_LOGIN, &body);
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
}

/// A plain HTTP POST to the mock, for checking the mock's own behaviour.
fn raw_post(base: &str, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    let _ = conn.read_to_string(&mut reply);
    reply
}

// ------------------------------------------------------------------ a removed password route

/// The spec deprecates `/v2/users/login` for `/v2/auth/token`, which takes a password too:
/// when the old route answers 404 or 410, the password goes to the new one.
#[test]
fn a_removed_password_route_falls_back_to_auth_token() {
    for status in [404, 410] {
        let Some(fx) = Fixture::keyutils() else {
            return;
        };
        fx.hub.always(LOGIN, Reply::Gone(status));
        let out = fx.login(PASSWORD, &[], &[]);
        assert!(out.status.success(), "HTTP {status}: {}", describe(&out));
        assert_eq!(fx.hub.count(AUTH_TOKEN), 1);
        let req = fx
            .hub
            .requests()
            .into_iter()
            .find(|r| r.path == AUTH_TOKEN)
            .unwrap();
        let body = req.body.unwrap();
        assert_eq!(body["identifier"], USERNAME);
        assert_eq!(body["secret"], PASSWORD);
        fx.assert_token_is_latest();
    }
}

// -------------------------------------------------------------- the docker CLI's web login

/// What `docker login` (CLI 27.2+, device-code flow) writes through the helper: the access
/// token, `<refresh>..<clientID>`, and a generated PAT, all under the Docker ID
/// (docker/cli `internal/oauth/manager/manager.go`).
fn web_login(fx: &Fixture, access: &str, refresh: &str, pat: &str) {
    for (key, secret) in [
        (ACCESS_KEY, access.to_string()),
        (REFRESH_KEY, format!("{refresh}..{CLIENT_ID}")),
        (HUB_KEY, pat.to_string()),
    ] {
        let out = fx.run(&["store"], store_request(key, USERNAME, &secret), &[]);
        assert!(out.status.success(), "store {key}: {}", describe(&out));
    }
}

/// While the web login's access token is fresh, `token` prints it with no Hub request.
#[test]
fn token_prints_the_web_logins_fresh_access_token_without_a_request() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let access = make_jwt_with(now() + 3600, USERNAME, 900, &Default::default(), "oauth");
    web_login(&fx, &access, "refresh-secret-0123", ACCESS_TOKEN);
    let before = fx.hub.requests().len();
    fx.assert_token(&access);
    assert_eq!(fx.hub.requests().len(), before);
    // Never the refresh token, in any request.
    for r in fx.hub.requests() {
        let text = r.body.map(|b| b.to_string()).unwrap_or_default();
        assert!(!text.contains("refresh-secret-0123"), "{text}");
    }
}

/// Once the access token is stale (60 s margin), `token` logs in with the PAT the CLI
/// stored under `https://index.docker.io/v1/`, through `/v2/auth/token`.
#[test]
fn a_stale_web_login_token_is_replaced_through_the_stored_pat() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let access = make_jwt_with(now() + 30, USERNAME, 901, &Default::default(), "oauth");
    // The PAT's store logs in at once; let the token it caches be stale already, so that
    // `token` has to log in itself.
    fx.hub.set_token_lifetime(-10);
    web_login(&fx, &access, "refresh-secret-4567", ACCESS_TOKEN);
    fx.hub.set_token_lifetime(3600);
    let logins = fx.hub.count(AUTH_TOKEN);
    let token = fx.assert_token_is_latest();
    assert_ne!(token, access);
    assert_eq!(fx.hub.count(AUTH_TOKEN), logins + 1);
    let last = fx.hub.requests().pop().unwrap();
    assert_eq!(last.path, AUTH_TOKEN);
    assert_eq!(last.body.unwrap()["secret"], ACCESS_TOKEN);
    for r in fx.hub.requests() {
        let text = r.body.map(|b| b.to_string()).unwrap_or_default();
        assert!(!text.contains("refresh-secret-4567"), "{text}");
        assert!(!text.contains(&access), "the access token was sent: {text}");
    }
}

// ------------------------------------------------------------------- scoped access tokens

/// `login --create-token` after a password (and 2FA) login: Hub creates a PAT with the
/// default scopes and this machine's label, the PAT (not the password) is stored for docker,
/// and a later `token` logs in with it, needing no code. The PAT is never printed.
#[test]
fn login_create_token_stores_a_scoped_pat_and_token_uses_it() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.enable_two_factor();
    // The login's JWT goes stale two seconds after the login, so that `token` logs in again.
    fx.hub.set_token_lifetime(62);
    let out = fx.login(PASSWORD, &["--create-token"], &[(OTP_ENV, OTP_CODE)]);
    assert!(out.status.success(), "{}", describe(&out));
    let created = fx.hub.created_tokens();
    assert_eq!(created.len(), 1);
    let (pat, scopes) = &created[0];
    assert_eq!(scopes, &["repo:read".to_string(), "repo:write".to_string()]);
    let req = fx
        .hub
        .requests()
        .into_iter()
        .find(|r| r.path == ACCESS_TOKENS)
        .unwrap();
    let label = req.body.as_ref().unwrap()["token_label"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(label.starts_with("docker-credential-hub on "), "{label}");
    assert!(
        req.header("authorization")
            .unwrap()
            .starts_with("Bearer ey")
    );
    let text = stdout(&out);
    assert!(
        text.contains(&label) && text.contains("repo:read, repo:write"),
        "{text}"
    );
    assert!(!text.contains(pat.as_str()) && !stderr(&out).contains(pat.as_str()));
    assert_get(fx.env.as_ref(), HUB_KEY, USERNAME, pat);
    // The next login needs no code: the PAT goes to /v2/auth/token.
    fx.hub.set_token_lifetime(3600);
    std::thread::sleep(Duration::from_secs(3));
    let two_fa = fx.hub.count(TWO_FA_LOGIN);
    fx.assert_token_is_latest();
    assert_eq!(fx.hub.count(TWO_FA_LOGIN), two_fa);
    let last = fx.hub.requests().pop().unwrap();
    assert_eq!(last.path, AUTH_TOKEN);
    assert_eq!(last.body.unwrap()["secret"], pat.as_str());
}

#[test]
fn login_create_token_with_chosen_scopes_and_clear_refusals() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let out = fx.login(PASSWORD, &["--create-token", "--scopes", "repo:read"], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(fx.hub.created_tokens()[0].1, ["repo:read".to_string()]);
    // 400 (the spec's ValueError): one line with Hub's text and the fix; nothing stored.
    let before = fx.hub.created_tokens().len();
    let out = fx.login(
        PASSWORD,
        &["--create-token", "--scopes", "repo:everything"],
        &[],
    );
    let line = assert_one_line_failure(&out);
    assert!(line.contains("invalid scope: repo:everything"), "{line}");
    assert!(
        line.contains("--scopes") && line.contains("nothing was stored"),
        "{line}"
    );
    assert_eq!(fx.hub.created_tokens().len(), before);
    assert_get(
        fx.env.as_ref(),
        HUB_KEY,
        USERNAME,
        &fx.hub.created_tokens()[0].0,
    );
    // An access token cannot create access tokens: refused before anything is sent.
    let requests = fx.hub.requests().len();
    let out = fx.login(ACCESS_TOKEN, &["--create-token"], &[]);
    let line = assert_one_line_failure(&out);
    assert!(line.contains("needs your password"), "{line}");
    assert_eq!(fx.hub.requests().len(), requests);
    // 401: a login Hub no longer honours for token creation.
    fx.hub.then(ACCESS_TOKENS, Reply::Gone(401));
    let out = fx.login(PASSWORD, &["--create-token"], &[]);
    let line = assert_one_line_failure(&out);
    assert!(line.contains("refused to create an access token"), "{line}");
}
