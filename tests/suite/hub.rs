//! Docker Hub login and the cached Hub JWT, against the loopback mock Hub and real
//! keychains (kernel keyutils under a unique service name per test; the Secret Service on a
//! private D-Bus session where noted): `store` of Docker Hub credentials logs in once and
//! caches the JWT (and only for Docker Hub, with a warning when Hub refuses or is away),
//! `login` with a password, an access token or a two-factor code (never a password in
//! argv), `token` from the cache and its refresh (one login for many callers), `logout` and
//! `erase` dropping the cache, Hub's network failures (rate limits, server errors, hangs,
//! bad bodies, resets, proxies, clear-text http), the debug trace, and the prompts on a real
//! terminal.
//!
//! Every helper run is detached from any controlling terminal (its own session), so "no
//! terminal" paths behave the same under a developer's terminal as under CI. The
//! interactive 2FA tests get a real pseudo-terminal from `script` (util-linux).

use std::io::{Read, Write};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::harness::{TestEnv, assert_get, assert_not_found, list_map, store_request};
use crate::support::keyring::KeyringSession;
use crate::support::mock_hub::{
    ACCESS_TOKEN, AUTH_TOKEN, LOGIN, MockHub, OTP_CODE, PASSWORD, Reply, TWO_FA_LOGIN, USERNAME,
};
use crate::support::output::{assert_one_line_failure, describe, stderr, stdout};
use crate::support::tools::{helper_bin, require_tool};
use crate::support::{detach_from_terminal, env};

use crate::support::hub_fixture::*;

// ------------------------------------------------------------------------------- store

#[test]
fn store_logs_in_once_and_token_then_needs_no_request() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.store_ok(HUB_KEY, USERNAME, PASSWORD);

    let reqs = fx.hub.requests();
    assert_eq!(reqs.len(), 1, "exactly one Hub request: {reqs:?}");
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", LOGIN));
    let body = r.body.as_ref().expect("a JSON body");
    assert_eq!(body["username"], USERNAME);
    assert_eq!(body["password"], PASSWORD);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let ua = r.header("user-agent").unwrap_or_default();
    assert!(
        ua.starts_with("docker-credential-hub/"),
        "User-Agent {ua:?}"
    );

    let jwt = fx.hub.last_issued();
    fx.assert_token(&jwt);
    fx.assert_token(&jwt);
    assert_eq!(
        fx.hub.requests().len(),
        1,
        "token used the cache: zero further requests"
    );

    // The credentials are docker's, untouched; the JWT is not a listed credential.
    assert_get(fx.env.as_ref(), HUB_KEY, USERNAME, PASSWORD);
    let listed = list_map(fx.env.as_ref());
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        vec![HUB_KEY],
        "{listed:?}"
    );
}

#[test]
fn store_on_the_secret_service_caches_the_token_too() {
    let Some(session) = KeyringSession::start() else {
        return;
    };
    let fx = Fixture {
        env: Box::new(session),
        hub: MockHub::start(),
    };
    fx.store_ok(HUB_KEY, USERNAME, PASSWORD);
    assert_eq!(fx.hub.count(LOGIN), 1);
    fx.assert_token_is_latest();
    assert_eq!(
        fx.hub.requests().len(),
        1,
        "token used the Secret Service cache"
    );
    let listed = list_map(fx.env.as_ref());
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        vec![HUB_KEY],
        "{listed:?}"
    );
    // erase drops the cached token with the credentials.
    let out = fx.run(&["erase"], HUB_KEY, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = fx.token();
    assert!(assert_one_line_failure(&out).contains(&format!("`{NAME} login`")));
    assert_eq!(fx.hub.requests().len(), 1);
}

#[test]
fn store_on_a_hub_alias_logs_in_and_token_finds_those_credentials() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.set_short_lived_then_long_lived(|fx| fx.store_ok("docker.io", USERNAME, PASSWORD));
    // The cached token is stale: `token` logs in again with the alias key's credentials.
    fx.assert_token_is_latest();
    assert_eq!(fx.hub.count(LOGIN), 2);
}

impl Fixture {
    /// Run `f` while the mock issues already-expired tokens, then go back to an hour.
    fn set_short_lived_then_long_lived(&self, f: impl FnOnce(&Fixture)) {
        self.hub.set_token_lifetime(-10);
        f(self);
        self.hub.set_token_lifetime(3600);
    }
}

#[test]
fn only_docker_hub_credentials_trigger_a_login() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    for (url, user) in [
        ("ghcr.io", USERNAME),
        ("https://index.docker.io/v1/access-token", USERNAME),
        ("https://index.docker.io/v1/refresh-token", USERNAME),
        ("http://index.docker.io/v1/", USERNAME),
        (HUB_KEY, "<token>"),
    ] {
        fx.store_ok(url, user, PASSWORD);
    }
    for url in ["ghcr.io", HUB_KEY] {
        let out = fx.run(&["get"], url, &[]);
        assert!(out.status.success(), "{}", describe(&out));
    }
    let out = fx.run(&["list"], "", &[]);
    assert!(out.status.success());
    let out = fx.run(&["erase"], "ghcr.io", &[]);
    assert!(out.status.success());
    assert!(fx.hub.requests().is_empty(), "{:?}", fx.hub.requests());
}

/// docker refuses an empty password, but the protocol allows one: there is nothing to log
/// in with, so the credential is stored and Hub is not asked.
#[test]
fn a_hub_credential_with_an_empty_secret_is_stored_without_a_login() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.store_ok(HUB_KEY, USERNAME, "");
    assert_get(fx.env.as_ref(), HUB_KEY, USERNAME, "");
    assert!(fx.hub.requests().is_empty(), "{:?}", fx.hub.requests());
}

#[test]
fn an_access_token_uses_the_auth_token_endpoint() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.store_ok(HUB_KEY, USERNAME, ACCESS_TOKEN);
    assert_eq!(
        fx.hub.count(LOGIN),
        0,
        "an access token never goes to /v2/users/login"
    );
    assert_eq!(fx.hub.count(AUTH_TOKEN), 1);
    let body = fx.hub.requests()[0].body.clone().expect("JSON body");
    assert_eq!(body["identifier"], USERNAME);
    assert_eq!(body["secret"], ACCESS_TOKEN);
    fx.assert_token_is_latest();
    assert_eq!(fx.hub.requests().len(), 1);
}

#[test]
fn store_while_hub_is_down_keeps_the_credentials_and_warns() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    // A port with nothing listening: connection refused on every try.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = fx.run(
        &["store"],
        store_request(HUB_KEY, USERNAME, PASSWORD),
        &[("DOCKER_HUB_API_URL", &url)],
    );
    assert_store_warned(&out, "cannot reach Docker Hub");
    assert_get(fx.env.as_ref(), HUB_KEY, USERNAME, PASSWORD);
}

#[test]
fn store_with_a_wrong_password_still_stores_and_shows_hubs_reason() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let out = fx.store(HUB_KEY, USERNAME, "not-the-password");
    assert_store_warned(&out, "Incorrect authentication credentials");
    assert!(!stderr(&out).contains("not-the-password"));
    assert_get(fx.env.as_ref(), HUB_KEY, USERNAME, "not-the-password");
}

#[test]
fn store_for_a_2fa_account_without_a_terminal_warns() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.enable_two_factor();
    let out = fx.store(HUB_KEY, USERNAME, PASSWORD);
    assert_store_warned(&out, "two-factor");
    assert_eq!(fx.hub.count(TWO_FA_LOGIN), 0, "no code was sent");
    assert_get(fx.env.as_ref(), HUB_KEY, USERNAME, PASSWORD);
}

#[test]
fn store_with_a_non_jwt_answer_caches_nothing() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.then(LOGIN, Reply::NotJwt);
    let out = fx.store(HUB_KEY, USERNAME, PASSWORD);
    assert_store_warned(&out, "not a JWT");
    assert!(!stderr(&out).contains("this-is-not-a-jwt"));
    // Nothing was cached: token has to log in.
    fx.assert_token_is_latest();
    assert_eq!(fx.hub.count(LOGIN), 2);
}

// ------------------------------------------------------------------------------- login

#[test]
fn login_stores_the_credentials_and_the_token() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let out = fx.login(PASSWORD, &[], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), "Login Succeeded\n");
    assert_get(fx.env.as_ref(), HUB_KEY, USERNAME, PASSWORD);
    fx.assert_token_is_latest();
    assert_eq!(fx.hub.requests().len(), 1);
}

#[test]
fn login_password_stdin_strips_exactly_one_newline() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    // CRLF counts as one newline.
    let out = fx.run(
        &["login", "-u", USERNAME, "--password-stdin"],
        format!("{PASSWORD}\r\n"),
        &[],
    );
    assert!(out.status.success(), "{}", describe(&out));
    // A second newline is part of the password, and Hub refuses it.
    let out = fx.run(
        &["login", "-u", USERNAME, "--password-stdin"],
        format!("{PASSWORD}\n\n"),
        &[],
    );
    assert_one_line_failure(&out);
    let sent: Vec<String> = fx
        .hub
        .requests()
        .iter()
        .map(|r| {
            r.body.as_ref().unwrap()["password"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(sent, vec![PASSWORD.to_string(), format!("{PASSWORD}\n")]);
}

#[test]
fn login_with_a_wrong_password_fails_and_stores_nothing() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let out = fx.login("wrong-password-123", &[], &[]);
    let line = assert_one_line_failure(&out);
    assert!(
        line.contains("Incorrect authentication credentials"),
        "{line}"
    );
    assert!(line.contains("nothing was stored"), "{line}");
    assert!(!line.contains("wrong-password-123"), "{line}");
    assert_not_found(fx.env.as_ref(), HUB_KEY);
}

#[test]
fn login_with_an_access_token() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let out = fx.login(ACCESS_TOKEN, &[], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(fx.hub.count(AUTH_TOKEN), 1);
    assert_eq!(fx.hub.count(LOGIN), 0);
    assert_get(fx.env.as_ref(), HUB_KEY, USERNAME, ACCESS_TOKEN);
    fx.assert_token_is_latest();
}

#[test]
fn login_refuses_passwords_in_arguments_without_echoing_them() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    for args in [
        vec![
            "login",
            "--username",
            USERNAME,
            "--password",
            "argv-secret-1",
        ],
        vec!["login", "--username", USERNAME, "--password=argv-secret-1"],
        vec!["login", "-u", USERNAME, "-p", "argv-secret-1"],
        vec!["login", "-u", USERNAME, "argv-secret-1"],
    ] {
        let out = fx.run(&args, "", &[]);
        let line = assert_one_line_failure(&out);
        assert!(!line.contains("argv-secret-1"), "{line}");
        assert!(line.contains("--password-stdin"), "{line}");
    }
    assert!(fx.hub.requests().is_empty());
}

#[test]
fn login_without_a_terminal_names_the_flags_it_needs() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let out = fx.run(&["login"], "", &[]);
    assert!(assert_one_line_failure(&out).contains("--username"));
    let out = fx.run(&["login", "--username", USERNAME], "", &[]);
    assert!(assert_one_line_failure(&out).contains("--password-stdin"));
    assert!(fx.hub.requests().is_empty());
}

#[test]
fn login_with_otp_completes_two_factor() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.enable_two_factor();
    let out = fx.login(PASSWORD, &[], &[(OTP_ENV, OTP_CODE)]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), "Login Succeeded\n");

    let reqs = fx.hub.requests();
    assert_eq!(
        reqs.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
        [LOGIN, TWO_FA_LOGIN]
    );
    let second = reqs[1].body.clone().unwrap();
    assert_eq!(second["code"], OTP_CODE);
    assert_eq!(
        second["login_2fa_token"],
        fx.hub.login_2fa_tokens()[0].as_str()
    );

    assert_get(fx.env.as_ref(), HUB_KEY, USERNAME, PASSWORD);
    fx.assert_token_is_latest();
    assert_eq!(fx.hub.requests().len(), 2);
}

#[test]
fn login_with_a_wrong_code_fails_and_stores_nothing() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.enable_two_factor();
    let out = fx.login(PASSWORD, &[], &[(OTP_ENV, "654321")]);
    let line = assert_one_line_failure(&out);
    assert!(line.contains("two-factor code"), "{line}");
    assert!(!line.contains("654321"), "{line}");
    assert_eq!(fx.hub.count(TWO_FA_LOGIN), 1);
    assert_not_found(fx.env.as_ref(), HUB_KEY);
}

#[test]
fn a_code_variable_that_is_no_code_is_refused_before_hub_is_asked() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.enable_two_factor();
    let out = fx.login(PASSWORD, &[], &[(OTP_ENV, "my password!")]);
    let line = assert_one_line_failure(&out);
    assert!(line.contains(OTP_ENV), "{line}");
    assert!(!line.contains("password!"), "{line}");
    assert!(fx.hub.requests().is_empty(), "nothing is sent");
    let out = fx.login(PASSWORD, &["--otp", OTP_CODE], &[]);
    let line = assert_one_line_failure(&out);
    assert!(line.contains(OTP_ENV), "{line}");
    assert!(!line.contains(OTP_CODE), "{line}");
    assert!(fx.hub.requests().is_empty(), "nothing is sent");
    assert_not_found(fx.env.as_ref(), HUB_KEY);
}

#[test]
fn login_for_a_2fa_account_without_terminal_or_code_names_the_code_variable() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.enable_two_factor();
    let out = fx.login(PASSWORD, &[], &[]);
    let line = assert_one_line_failure(&out);
    assert!(line.contains(OTP_ENV), "{line}");
    assert_eq!(fx.hub.count(TWO_FA_LOGIN), 0);
    assert_not_found(fx.env.as_ref(), HUB_KEY);
}

// ------------------------------------------------------------------------------- token

#[test]
fn token_without_credentials_names_login() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let line = assert_one_line_failure(&fx.token());
    assert!(line.contains(&format!("`{NAME} login`")), "{line}");
    assert!(fx.hub.requests().is_empty());
}

#[test]
fn an_expired_cached_token_is_replaced_by_one_login() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.set_short_lived_then_long_lived(|fx| fx.store_ok(HUB_KEY, USERNAME, PASSWORD));
    let stale = fx.hub.last_issued();
    let out = fx.token();
    assert!(out.status.success(), "{}", describe(&out));
    let fresh = fx.hub.last_issued();
    assert_ne!(stale, fresh);
    assert_eq!(stdout(&out), format!("{fresh}\n"));
    assert_eq!(fx.hub.count(LOGIN), 2);
    // The new token was cached.
    fx.assert_token(&fresh);
    assert_eq!(fx.hub.count(LOGIN), 2);
}

#[test]
fn a_nearly_expired_cached_token_is_refreshed_but_one_with_a_minute_left_is_not() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    // 30 s left: less than the 60 s margin.
    fx.hub.set_token_lifetime(30);
    fx.store_ok(HUB_KEY, USERNAME, PASSWORD);
    // The refreshed token has 2 minutes left: good enough to reuse.
    fx.hub.set_token_lifetime(120);
    fx.assert_token_is_latest();
    assert_eq!(fx.hub.count(LOGIN), 2);
    fx.assert_token_is_latest();
    assert_eq!(fx.hub.count(LOGIN), 2);
}

#[test]
fn a_malformed_cached_token_counts_as_expired() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    if !require_tool("keyctl") {
        return;
    }
    fx.store_ok(HUB_KEY, USERNAME, PASSWORD);
    // Overwrite the cached JWT in the kernel keyring with garbage, with keyctl.
    let service = crate::support::harness::var(fx.env.as_ref(), "DOCKER_CREDENTIAL_HUB_SERVICE");
    overwrite_keyutils_key(
        fx.env.as_ref(),
        &format!("keyring:hub-jwt@{service}:internal"),
        "eyJnot.a-valid.jwt!",
    );
    fx.assert_token_is_latest();
    assert_eq!(
        fx.hub.count(LOGIN),
        2,
        "the malformed token was replaced by a login"
    );
}

/// Replace the payload of the keyutils key `description`. The helper links its keys into
/// the session keyring and the user's persistent keyring; look in this session first, then
/// in a fresh session with the persistent keyring attached (as the helper itself does).
fn overwrite_keyutils_key(env: &dyn TestEnv, description: &str, payload: &str) {
    let script = r#"id=$(keyctl search @s user "$1" 2>/dev/null) || exit 3; printf %s "$2" | keyctl pupdate "$id""#;
    let run = |prefix: &[&str], script: &str| {
        env.tool(prefix[0])
            .args(&prefix[1..])
            .args(["sh", "-c", script, "sh", description, payload])
            .output()
            .expect("run keyctl")
    };
    if run(&["env"], script).status.success() {
        return;
    }
    let in_new_session = format!("keyctl get_persistent @s >/dev/null; {script}");
    let out = run(&["keyctl", "session", "-"], &in_new_session);
    assert!(
        out.status.success(),
        "cannot find the key {description:?}: {out:?}"
    );
}

#[test]
fn thirty_two_parallel_token_calls_make_exactly_one_login() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.set_short_lived_then_long_lived(|fx| fx.store_ok(HUB_KEY, USERNAME, PASSWORD));
    assert_eq!(fx.hub.count(LOGIN), 1);

    let outputs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|_| s.spawn(|| fx.cmd(&["token"], &[]).output().expect("run token")))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        fx.hub.count(LOGIN),
        2,
        "exactly one refresh login for 32 token calls"
    );
    let fresh = fx.hub.last_issued();
    for out in &outputs {
        fx.assert_no_secrets(out);
        assert!(out.status.success(), "{}", describe(out));
        assert_eq!(stdout(out), format!("{fresh}\n"));
    }
}

#[test]
fn a_2fa_account_whose_token_expired_gets_told_to_log_in_with_a_code() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.enable_two_factor();
    fx.hub.set_token_lifetime(-10);
    let out = fx.login(PASSWORD, &[], &[(OTP_ENV, OTP_CODE)]);
    assert!(out.status.success(), "{}", describe(&out));
    let line = assert_one_line_failure(&fx.token());
    assert!(
        line.contains(&format!("`{OTP_ENV}=CODE {NAME} login")),
        "{line}"
    );
    assert_eq!(
        fx.hub.count(TWO_FA_LOGIN),
        1,
        "no code was sent without a terminal"
    );
}

#[test]
fn token_when_the_stored_password_no_longer_works_names_login() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.set_short_lived_then_long_lived(|fx| fx.store_ok(HUB_KEY, USERNAME, PASSWORD));
    fx.hub.set_password("changed-on-the-website");
    let line = assert_one_line_failure(&fx.token());
    assert!(
        line.contains("Incorrect authentication credentials"),
        "{line}"
    );
    assert!(line.contains(&format!("`{NAME} login`")), "{line}");
}

// ------------------------------------------------------------------------------ logout

#[test]
fn logout_erases_credentials_and_token_and_is_idempotent() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let out = fx.login(PASSWORD, &[], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    for _ in 0..2 {
        let out = fx.run(&["logout"], "", &[]);
        assert!(out.status.success(), "{}", describe(&out));
    }
    assert_not_found(fx.env.as_ref(), HUB_KEY);
    let line = assert_one_line_failure(&fx.token());
    assert!(line.contains(&format!("`{NAME} login`")), "{line}");
    assert_eq!(
        fx.hub.requests().len(),
        1,
        "the cached token went with the credentials"
    );
}

#[test]
fn erase_of_the_hub_key_drops_the_cached_token() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.store_ok(HUB_KEY, USERNAME, PASSWORD);
    let out = fx.run(&["erase"], HUB_KEY, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_one_line_failure(&fx.token());
    assert_eq!(fx.hub.requests().len(), 1);
}

// ------------------------------------------------------------------- network behaviour

/// `login` with `extra` variables; returns the output and how long it took.
fn timed_login(fx: &Fixture, extra: &[(&str, &str)]) -> (Output, Duration) {
    let start = Instant::now();
    let out = fx.login(PASSWORD, &[], extra);
    (out, start.elapsed())
}

#[test]
fn rate_limit_with_retry_after_is_waited_out() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.then(LOGIN, Reply::RateLimited { retry_after: 1 });
    let (out, took) = timed_login(&fx, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(fx.hub.count(LOGIN), 2);
    assert!(
        took >= Duration::from_secs(1),
        "Retry-After was not honoured: {took:?}"
    );
    fx.assert_token_is_latest();
}

#[test]
fn a_retry_after_beyond_the_deadline_fails_at_once_naming_the_wait() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub
        .always(LOGIN, Reply::RateLimited { retry_after: 120 });
    let (out, took) = timed_login(&fx, &[("DOCKER_CREDENTIAL_HUB_TIMEOUT", "5")]);
    let line = assert_one_line_failure(&out);
    assert!(line.contains("120 s"), "{line}");
    assert!(line.contains("429"), "{line}");
    assert_eq!(
        fx.hub.count(LOGIN),
        1,
        "no retry that cannot finish in time"
    );
    assert!(
        took < Duration::from_secs(5),
        "it did not fail at once: {took:?}"
    );
}

#[test]
fn three_server_errors_give_a_clear_error() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.always(LOGIN, Reply::ServerError(500));
    let (out, _) = timed_login(&fx, &[]);
    let line = assert_one_line_failure(&out);
    assert!(
        line.contains("HTTP 500") && line.contains("tried 3 times"),
        "{line}"
    );
    assert_eq!(fx.hub.count(LOGIN), 3);
    assert_not_found(fx.env.as_ref(), HUB_KEY);
}

#[test]
fn a_server_error_then_success_is_retried() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.then(LOGIN, Reply::ServerError(503));
    let (out, _) = timed_login(&fx, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(fx.hub.count(LOGIN), 2);
}

#[test]
fn a_server_that_never_answers_fails_within_the_timeout() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.always(LOGIN, Reply::Hang);
    let timeout = [("DOCKER_CREDENTIAL_HUB_TIMEOUT", "2")];
    let (out, took) = timed_login(&fx, &timeout);
    let line = assert_one_line_failure(&out);
    assert!(line.contains("did not answer within 2 s"), "{line}");
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // `store` (which docker waits on) is bounded the same way, and still succeeds.
    let start = Instant::now();
    let out = fx.run(
        &["store"],
        store_request(HUB_KEY, USERNAME, PASSWORD),
        &timeout,
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "store took {:?}",
        start.elapsed()
    );
    assert_store_warned(&out, "did not answer within 2 s");
    assert_get(fx.env.as_ref(), HUB_KEY, USERNAME, PASSWORD);
}

#[test]
fn a_body_that_is_not_json_is_a_clear_error() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    for reply in [Reply::Garbage, Reply::TruncatedJson] {
        fx.hub.then(LOGIN, reply.clone());
        let (out, _) = timed_login(&fx, &[]);
        let line = assert_one_line_failure(&out);
        assert!(line.contains("not JSON"), "{reply:?}: {line}");
        assert!(
            !line.contains("captive portal"),
            "the body is not echoed: {line}"
        );
    }
    assert_eq!(fx.hub.count(LOGIN), 2, "a bad body is not retried");
    assert_not_found(fx.env.as_ref(), HUB_KEY);
}

#[test]
fn a_connection_reset_mid_body_is_retried_then_reported() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.then(LOGIN, Reply::ResetMidBody);
    let (out, _) = timed_login(&fx, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(fx.hub.count(LOGIN), 2);

    fx.hub.always(LOGIN, Reply::ResetMidBody);
    let (out, _) = timed_login(&fx, &[]);
    let line = assert_one_line_failure(&out);
    assert!(
        line.contains("broke") && line.contains("tried 3 times"),
        "{line}"
    );
    assert_eq!(fx.hub.count(LOGIN), 5);
}

#[test]
fn a_success_without_a_jwt_is_an_error() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.then(AUTH_TOKEN, Reply::NotJwt);
    let out = fx.login(ACCESS_TOKEN, &[], &[]);
    let line = assert_one_line_failure(&out);
    assert!(line.contains("not a JWT"), "{line}");
    assert_not_found(fx.env.as_ref(), HUB_KEY);
}

/// An https Hub is reached through the proxy from the environment: the mock, as the
/// proxy, receives the CONNECT for a host that does not resolve (the TLS handshake it cannot
/// do then fails the login). NO_PROXY is honoured too.
#[test]
fn the_https_proxy_from_the_environment_is_used() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let proxy = fx.hub.url();
    let out = fx.login(
        PASSWORD,
        &[],
        &[
            ("DOCKER_HUB_API_URL", "https://hub.mock.invalid"),
            ("HTTPS_PROXY", &proxy),
        ],
    );
    assert_one_line_failure(&out);
    let reqs = fx.hub.requests();
    assert!(!reqs.is_empty(), "nothing reached the proxy");
    assert!(
        reqs.iter()
            .all(|r| r.method == "CONNECT" && r.target == "hub.mock.invalid:443"),
        "{reqs:#?}"
    );
    let before = reqs.len();
    let out = fx.login(
        PASSWORD,
        &[],
        &[
            ("DOCKER_HUB_API_URL", "https://hub.mock.invalid"),
            ("HTTPS_PROXY", &proxy),
            ("NO_PROXY", "hub.mock.invalid"),
        ],
    );
    assert_one_line_failure(&out);
    assert_eq!(fx.hub.requests().len(), before, "NO_PROXY was not honoured");
}

/// A password, token or PAT never travels in clear text: plain http:// is for loopback
/// only. To any other host every command that would send one refuses in one line, sends
/// nothing (not even to the proxy the environment names), and `store` still stores.
#[test]
fn plain_http_to_another_host_sends_no_secret_not_even_through_a_proxy() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let proxy = fx.hub.url();
    let cleartext = [
        ("DOCKER_HUB_API_URL", "http://hub.mock.invalid"),
        ("HTTP_PROXY", proxy.as_str()),
        ("http_proxy", proxy.as_str()),
        ("ALL_PROXY", proxy.as_str()),
    ];
    let out = fx.login(PASSWORD, &[], &cleartext);
    let line = assert_one_line_failure(&out);
    assert!(line.contains("https is required"), "{line}");
    assert_not_found(fx.env.as_ref(), HUB_KEY);

    let out = fx.run(
        &["store"],
        store_request(HUB_KEY, USERNAME, PASSWORD),
        &cleartext,
    );
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}",
        describe(&out)
    );
    assert!(
        stderr(&out).contains("https is required"),
        "{}",
        describe(&out)
    );
    assert_get(fx.env.as_ref(), HUB_KEY, USERNAME, PASSWORD);

    let out = fx.run(&["token"], "", &cleartext);
    let line = assert_one_line_failure(&out);
    assert!(line.contains("https is required"), "{line}");
    assert!(out.stdout.is_empty());

    assert_eq!(fx.hub.requests().len(), 0, "{:#?}", fx.hub.requests());
}

#[test]
fn the_debug_trace_shows_endpoints_statuses_and_cache_use_but_no_secret() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let debug = [("DOCKER_CREDENTIAL_HUB_DEBUG", "1")];
    let out = fx.run(
        &["store"],
        store_request(HUB_KEY, USERNAME, PASSWORD),
        &debug,
    );
    assert!(out.status.success(), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains("/v2/users/login") && err.contains("HTTP 200"),
        "{err}"
    );
    let out = fx.run(&["token"], "", &debug);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(stderr(&out).contains("cache hit"), "{}", stderr(&out));
    // `Fixture::run` already checked that no secret reached stderr.
}

// -------------------------------------------------------------- interactive (a real pty)

/// A helper run under `script`, which gives it a pseudo-terminal as controlling terminal.
struct Pty {
    child: std::process::Child,
    input: std::process::ChildStdin,
    transcript: mpsc::Receiver<u8>,
    seen: String,
}

impl Pty {
    fn spawn(fx: &Fixture, shell_cmd: &str) -> Option<Pty> {
        if !require_tool("script") {
            return None;
        }
        let mut cmd = env::command("script", &fx.vars());
        cmd.args(["-qec", shell_cmd, "/dev/null"])
            .env("TERM", "dumb")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        detach_from_terminal(&mut cmd);
        let mut child = cmd.spawn().expect("start script");
        let input = child.stdin.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                for b in &buf[..n] {
                    let _ = tx.send(*b);
                }
            }
        });
        Some(Pty {
            child,
            input,
            transcript: rx,
            seen: String::new(),
        })
    }

    /// Wait until the terminal shows `text`, then type `answer` and Enter.
    fn answer(&mut self, text: &str, answer: &str) {
        self.wait_for(text);
        // Give the helper time to switch the terminal to no-echo after printing the prompt.
        std::thread::sleep(Duration::from_millis(500));
        self.input
            .write_all(format!("{answer}\n").as_bytes())
            .unwrap();
        self.input.flush().unwrap();
    }

    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.seen.contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.transcript.recv_timeout(left) {
                Ok(b) => self.seen.push(b as char),
                Err(_) => panic!(
                    "the terminal never showed {text:?}; it showed {:?}",
                    self.seen
                ),
            }
        }
    }

    /// Wait for the end; returns everything the terminal showed and script's exit status.
    fn finish(mut self) -> (String, std::process::ExitStatus) {
        let status = self.child.wait().unwrap();
        while let Ok(b) = self.transcript.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(b as char);
        }
        (self.seen, status)
    }
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn login_prompts_for_password_and_code_on_the_terminal() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.enable_two_factor();
    let bin = sh_quote(&helper_bin().display().to_string());
    let Some(mut pty) = Pty::spawn(&fx, &format!("{bin} login --username {USERNAME}")) else {
        return;
    };
    pty.answer("Password: ", PASSWORD);
    pty.answer("2FA required", OTP_CODE);
    let (shown, status) = pty.finish();
    assert!(
        status.success(),
        "login failed; the terminal showed {shown:?}"
    );
    assert!(shown.contains("Login Succeeded"), "{shown:?}");
    assert!(
        !shown.contains(PASSWORD),
        "the password was echoed: {shown:?}"
    );
    assert!(!shown.contains(OTP_CODE), "the code was echoed: {shown:?}");
    assert_eq!(fx.hub.count(TWO_FA_LOGIN), 1);
    assert_get(fx.env.as_ref(), HUB_KEY, USERNAME, PASSWORD);
    fx.assert_token_is_latest();
}

#[test]
fn login_asks_for_the_username_visibly() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let bin = sh_quote(&helper_bin().display().to_string());
    let Some(mut pty) = Pty::spawn(&fx, &format!("{bin} login")) else {
        return;
    };
    pty.answer("Username: ", USERNAME);
    pty.answer("Password: ", PASSWORD);
    let (shown, status) = pty.finish();
    assert!(
        status.success(),
        "login failed; the terminal showed {shown:?}"
    );
    assert!(
        shown.contains(USERNAME),
        "the username is echoed: {shown:?}"
    );
    assert!(!shown.contains(PASSWORD), "{shown:?}");
    assert_get(fx.env.as_ref(), HUB_KEY, USERNAME, PASSWORD);
}

#[test]
fn store_prompts_for_the_code_on_the_terminal_while_docker_pipes_stdin() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.enable_two_factor();
    let dir = tempfile::tempdir().unwrap();
    let request = dir.path().join("request.json");
    std::fs::write(&request, store_request(HUB_KEY, USERNAME, PASSWORD)).unwrap();
    let bin = sh_quote(&helper_bin().display().to_string());
    let shell = format!("{bin} store < {}", sh_quote(&request.display().to_string()));
    let Some(mut pty) = Pty::spawn(&fx, &shell) else {
        return;
    };
    pty.answer("2FA required", OTP_CODE);
    let (shown, status) = pty.finish();
    assert!(
        status.success(),
        "store failed; the terminal showed {shown:?}"
    );
    assert!(
        !shown.contains("warning: the credentials are stored"),
        "{shown:?}"
    );
    assert_eq!(fx.hub.count(TWO_FA_LOGIN), 1);
    fx.assert_token_is_latest();
    assert_eq!(fx.hub.requests().len(), 2);
}

#[test]
fn token_prompts_for_the_code_when_a_2fa_token_expired() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.enable_two_factor();
    fx.hub.set_token_lifetime(-10);
    let out = fx.login(PASSWORD, &[], &[(OTP_ENV, OTP_CODE)]);
    assert!(out.status.success(), "{}", describe(&out));
    fx.hub.set_token_lifetime(3600);
    let bin = sh_quote(&helper_bin().display().to_string());
    let Some(mut pty) = Pty::spawn(&fx, &format!("{bin} token")) else {
        return;
    };
    pty.answer("2FA required", OTP_CODE);
    let (shown, status) = pty.finish();
    assert!(
        status.success(),
        "token failed; the terminal showed {shown:?}"
    );
    let fresh = fx.hub.last_issued();
    assert!(
        shown.contains(&fresh),
        "the new token is printed: {shown:?}"
    );
    assert_eq!(fx.hub.count(TWO_FA_LOGIN), 2);
    fx.assert_token(&fresh);
}

/// A second factor that fails during `token`'s refresh is about the two-factor login, not
/// the stored password: a stale login token says to start again and never claims the
/// credentials stopped working.
#[test]
fn token_whose_two_factor_login_went_stale_says_start_again() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.enable_two_factor();
    fx.hub.set_token_lifetime(-10);
    let out = fx.login(PASSWORD, &[], &[(OTP_ENV, OTP_CODE)]);
    assert!(out.status.success(), "{}", describe(&out));
    fx.hub.set_token_lifetime(3600);
    // Hub uses the login token up, but its answer is lost: the retry is refused.
    fx.hub.then(TWO_FA_LOGIN, Reply::ProcessedThen(502));
    let bin = sh_quote(&helper_bin().display().to_string());
    let Some(mut pty) = Pty::spawn(&fx, &format!("{bin} token")) else {
        return;
    };
    pty.answer("2FA required", OTP_CODE);
    let (shown, status) = pty.finish();
    assert!(!status.success(), "the terminal showed {shown:?}");
    assert!(
        shown.contains("start the login again") && shown.contains("the code is not at fault"),
        "{shown:?}"
    );
    assert!(!shown.contains("no longer work"), "{shown:?}");
    assert!(
        !shown.contains(OTP_CODE) && !shown.contains("eyJ"),
        "{shown:?}"
    );
    assert_eq!(
        fx.hub.count(TWO_FA_LOGIN),
        3,
        "the login, then a try and its retry"
    );
}
