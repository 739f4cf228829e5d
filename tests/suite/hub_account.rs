//! The Docker Hub account, end to end, against the mock (as every Docker service) and kernel
//! keyutils: `logout` as `docker logout` does it (the web login's refresh token revoked,
//! then every Hub entry removed, a failed revoke one warning), `token` after logout and
//! with docker's web-login token only for the stored account, the pull quota in `doctor
//! --network` read as Docker documents it, `DOCKER_AUTH_CONFIG` in `doctor`, the service
//! URL variables, the message for a stale two-factor login, and blank passwords. Every run
//! is checked for every password, PAT, JWT, registry token and refresh token on stdout and
//! stderr (except the answer `token` exists to print).

use std::process::Output;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::support::harness::{assert_not_found, list_map, store_request};
use crate::support::hub_fixture::*;
use crate::support::mock_hub::{
    ACCESS_TOKEN, CLIENT_ID, LOGIN, MANIFEST, OTP_CODE, PASSWORD, REGISTRY_TOKEN,
    REGISTRY_TOKEN_QUERY, REVOKE, Reply, TWO_FA_LOGIN, TokenFields, USERNAME, make_jwt_with, now,
};
use crate::support::output::{assert_one_line_failure, describe, stderr, stdout};

const ACCESS_KEY: &str = "https://index.docker.io/v1/access-token";
const REFRESH_KEY: &str = "https://index.docker.io/v1/refresh-token";
/// The refresh token of the tests' web logins: found nowhere but in the revoke request.
const REFRESH: &str = "v1.MockRefreshCanary-8c1f0e2d";

/// What `docker login`'s web login writes through the helper (docker/cli
/// `internal/oauth/manager/manager.go`): the access token and `<refresh>..<clientID>` under
/// the Docker ID, and a generated PAT under the Hub key. Returns the access token.
fn web_login(fx: &Fixture, refresh_secret: &str) -> String {
    let access = make_jwt_with(now() + 3600, USERNAME, 900, &Default::default(), "oauth");
    for (key, secret) in [
        (ACCESS_KEY, access.as_str()),
        (REFRESH_KEY, refresh_secret),
        (HUB_KEY, ACCESS_TOKEN),
    ] {
        let out = fx.run(&["store"], store_request(key, USERNAME, secret), &[]);
        assert!(out.status.success(), "store {key}: {}", describe(&out));
        fx.assert_quiet(&out, &[refresh_secret, &access]);
    }
    access
}

fn logout(fx: &Fixture, extra: &[(&str, &str)], secrets: &[&str]) -> Output {
    let out = fx.run(&["logout"], "", extra);
    assert!(out.status.success(), "logout: {}", describe(&out));
    fx.assert_quiet(&out, secrets);
    out
}

/// Every Hub entry is gone, and `token` says how to log in without asking Hub anything.
fn assert_logged_out(fx: &Fixture) {
    for key in [HUB_KEY, "docker.io", ACCESS_KEY, REFRESH_KEY] {
        assert_not_found(fx.env.as_ref(), key);
    }
    assert!(list_map(fx.env.as_ref()).is_empty());
    let before = fx.hub.requests().len();
    let out = fx.token();
    fx.assert_quiet(&out, &[REFRESH]);
    let line = assert_one_line_failure(&out);
    assert!(line.contains("not logged in to Docker Hub"), "{line}");
    assert!(line.contains(&format!("`{NAME} login`")), "{line}");
    assert_eq!(fx.hub.requests().len(), before, "token asked Hub");
}

// ------------------------------------------------------------------------------ logout

/// docker/cli `Logout`: the refresh token goes to `/oauth/revoke` as the form
/// `client_id=<clientID>&token=<refresh>`, and nowhere else; then the Hub credential and its
/// aliases, both web-login keys and the cached JWT are removed, and stdout says so. Even the
/// debug trace never shows the refresh token.
#[test]
fn logout_revokes_the_refresh_token_then_removes_every_hub_entry() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let refresh_secret = format!("{REFRESH}..{CLIENT_ID}");
    let access = web_login(&fx, &refresh_secret);
    fx.store_ok("docker.io", USERNAME, ACCESS_TOKEN);
    fx.assert_token(&access);

    let out = logout(
        &fx,
        &[("DOCKER_CREDENTIAL_HUB_DEBUG", "1")],
        &[REFRESH, &refresh_secret, &access],
    );
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    for said in [
        "Removed the Docker Hub credentials (",
        HUB_KEY,
        "docker.io",
        "web-login tokens",
        "the cached Hub token",
        &format!("revoked the web login's refresh token at {}", fx.hub.url()),
    ] {
        assert!(text.contains(said), "{said:?} not in {text}");
    }
    assert!(
        !stderr(&out).lines().any(|l| !l.contains("[debug]")),
        "only the trace on stderr: {}",
        describe(&out)
    );

    assert_eq!(
        fx.hub.revoked(),
        [(CLIENT_ID.to_string(), REFRESH.to_string())]
    );
    let requests = fx.hub.requests();
    let revoke: Vec<_> = requests.iter().filter(|r| r.path == REVOKE).collect();
    assert_eq!(revoke.len(), 1);
    assert_eq!(revoke[0].method, "POST");
    assert_eq!(
        revoke[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&revoke[0].raw_body)
        .into_owned()
        .collect();
    assert_eq!(
        fields,
        [
            ("client_id".to_string(), CLIENT_ID.to_string()),
            ("token".to_string(), REFRESH.to_string())
        ]
    );
    for r in requests.iter().filter(|r| r.path != REVOKE) {
        assert!(
            !r.everything().contains(REFRESH),
            "the refresh token went to {}",
            r.path
        );
    }

    assert_logged_out(&fx);
    let out = logout(&fx, &[], &[REFRESH]);
    assert_eq!(
        stdout(&out),
        "Not logged in to Docker Hub: nothing to remove\n"
    );
    assert_eq!(fx.hub.revoked().len(), 1, "nothing left to revoke");
}

/// A revoke that fails (an error status, Hub's OAuth error, no answer within the deadline,
/// a URL that would send the token in clear text) is one warning on stderr; the entries go
/// all the same, and logout succeeds.
#[test]
fn a_failed_revoke_is_one_warning_and_the_entries_go_all_the_same() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let ours = format!("{REFRESH}..{CLIENT_ID}");
    let other_client = format!("{REFRESH}..not-the-docker-cli");
    /// What goes wrong, how the mock answers, the stored refresh secret, extra variables,
    /// and what the warning must say.
    type Case<'a> = (&'a str, Reply, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (
            "an error status",
            Reply::ServerError(500),
            &ours,
            &[],
            "HTTP 500",
        ),
        (
            "an OAuth error",
            Reply::Normal,
            &other_client,
            &[],
            "HTTP 401: Unknown client.",
        ),
        (
            "no answer",
            Reply::Hang,
            &ours,
            &[("DOCKER_CREDENTIAL_HUB_TIMEOUT", "2")],
            "did not answer within 2 s",
        ),
        (
            "clear text",
            Reply::Normal,
            &ours,
            &[("DOCKER_HUB_OAUTH_URL", "http://login.mock.invalid")],
            "DOCKER_HUB_OAUTH_URL (http://login.mock.invalid) is plain http://",
        ),
    ];
    for (case, reply, secret, extra, reason) in cases {
        fx.hub.always(REVOKE, reply);
        let access = web_login(&fx, secret);
        let revokes = fx.hub.count(REVOKE);
        let start = Instant::now();
        let out = logout(&fx, extra, &[REFRESH, secret, &access]);
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{case}: {:?}",
            start.elapsed()
        );
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{case}: {}", describe(&out));
        assert!(
            err.starts_with(&format!(
                "{NAME}: warning: cannot revoke the web login's refresh token: "
            )),
            "{case}: {err}"
        );
        assert!(err.contains(reason), "{case}: {reason:?} not in {err}");
        assert!(
            err.contains("removed from the keychain all the same"),
            "{err}"
        );
        assert!(
            stdout(&out).starts_with("Removed "),
            "{case}: {}",
            describe(&out)
        );
        assert!(
            !stdout(&out).contains("revoked"),
            "{case}: {}",
            describe(&out)
        );
        let expected = if case == "clear text" { 0 } else { 1 };
        assert_eq!(fx.hub.count(REVOKE) - revokes, expected, "{case}");
        assert_logged_out(&fx);
    }
    assert!(fx.hub.revoked().is_empty());
}

/// docker revokes only `<refresh>..<clientID>` (exactly two parts); anything else is removed
/// without a request.
#[test]
fn a_refresh_token_not_in_dockers_form_is_removed_but_not_revoked() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    for secret in ["not-dockers-form", "a..b..c", &format!("..{CLIENT_ID}")] {
        let access = web_login(&fx, secret);
        let out = logout(&fx, &[], &[secret, &access]);
        assert!(stderr(&out).is_empty(), "{}", describe(&out));
        assert!(
            stdout(&out).contains("web-login tokens") && !stdout(&out).contains("revoked"),
            "{}",
            describe(&out)
        );
        assert_logged_out(&fx);
    }
    assert_eq!(fx.hub.count(REVOKE), 0);
}

// ------------------------------------------------------------------------------- token

/// The web login's access token speaks for the account stored under the Hub key: never
/// without a Hub credential, never for another account.
#[test]
fn token_uses_the_web_login_token_only_for_the_stored_account() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let access = make_jwt_with(now() + 3600, USERNAME, 901, &Default::default(), "oauth");
    fx.store_ok(ACCESS_KEY, USERNAME, &access);
    let out = fx.token();
    let line = assert_one_line_failure(&out);
    assert!(line.contains("not logged in to Docker Hub"), "{line}");
    assert!(line.contains(&format!("`{NAME} login`")), "{line}");
    fx.assert_quiet(&out, &[&access]);
    assert!(fx.hub.requests().is_empty());

    // Another account's access token: the stored credential logs in instead.
    let other = make_jwt_with(now() + 3600, "someone-else", 902, &Default::default(), "x");
    fx.store_ok(ACCESS_KEY, "someone-else", &other);
    fx.store_ok(HUB_KEY, USERNAME, PASSWORD);
    let jwt = fx.assert_token_is_latest();
    assert_ne!(jwt, other);

    // The same account's: used as it is.
    fx.store_ok(ACCESS_KEY, USERNAME, &access);
    let before = fx.hub.requests().len();
    fx.assert_token(&access);
    assert_eq!(fx.hub.requests().len(), before);
}

// ------------------------------------------------------------------------------- login

/// `docker login` counts a password that is empty once whitespace is trimmed as none
/// (docker/cli `cli/command/registry.go`): refused before any Hub request, nothing stored.
#[test]
fn login_refuses_empty_and_blank_passwords_before_asking_hub() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    for stdin in ["", "\n", "   \n", "\t\r\n", " \u{a0} \n"] {
        let out = fx.run(&["login", "-u", USERNAME, "--password-stdin"], stdin, &[]);
        let line = assert_one_line_failure(&out);
        assert!(
            line.contains("empty or only whitespace") && line.contains("--password-stdin"),
            "{stdin:?}: {line}"
        );
        fx.assert_quiet(&out, &[]);
    }
    assert!(fx.hub.requests().is_empty(), "{:?}", fx.hub.requests());
    assert_not_found(fx.env.as_ref(), HUB_KEY);
    // Blanks around a real password are part of it, as in docker.
    let out = fx.run(
        &["login", "-u", USERNAME, "--password-stdin"],
        format!(" {PASSWORD}\n"),
        &[],
    );
    assert_one_line_failure(&out);
    assert_eq!(
        fx.hub.requests()[0].body.as_ref().unwrap()["password"],
        format!(" {PASSWORD}")
    );
}

// ----------------------------------------------------------------------- second factor

/// The mock answers a stale login token exactly as a wrong code (see its header), so the
/// helper tells them apart by what it knows: a refusal that answers a retry, after a try
/// whose answer was lost, means the single-use token was spent; another 4xx means Hub no
/// longer knows the login. Either way the message says to start again and blames no code.
#[test]
fn a_stale_two_factor_login_says_start_again_and_blames_no_code() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.enable_two_factor();
    let otp = [(OTP_ENV, OTP_CODE)];

    fx.hub.then(TWO_FA_LOGIN, Reply::ProcessedThen(502));
    let out = fx.login(PASSWORD, &[], &otp);
    let line = assert_one_line_failure(&out);
    assert!(line.contains("used up by an earlier try"), "{line}");
    assert!(
        line.contains(&format!("start the login again with `{NAME} login`")),
        "{line}"
    );
    assert!(!line.contains("rejected the two-factor code"), "{line}");
    assert_eq!(fx.hub.count(TWO_FA_LOGIN), 2, "one try, one retry");
    fx.assert_quiet(&out, &[]);

    fx.hub.then(TWO_FA_LOGIN, Reply::Gone(410));
    let out = fx.login(PASSWORD, &[], &otp);
    let line = assert_one_line_failure(&out);
    assert!(
        line.contains("no longer accepts this two-factor login (HTTP 410"),
        "{line}"
    );
    assert!(line.contains("start the login again"), "{line}");
    fx.assert_quiet(&out, &[]);
    assert_not_found(fx.env.as_ref(), HUB_KEY);

    // A fresh token refused at the first try is the code's fault, and says so.
    let out = fx.login(PASSWORD, &[], &[(OTP_ENV, "000000")]);
    let line = assert_one_line_failure(&out);
    assert!(line.contains("rejected the two-factor code"), "{line}");
    fx.assert_quiet(&out, &["000000"]);
}

// ----------------------------------------------------------------------- the pull quota

fn doctor_network(fx: &Fixture, extra: &[(&str, &str)], secrets: &[&str]) -> Output {
    let out = fx.run(&["doctor", "--network"], "", extra);
    assert!(out.status.code().is_some(), "{}", describe(&out));
    fx.assert_quiet(&out, secrets);
    // doctor went on to its end.
    let text = stdout(&out);
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.starts_with(&format!("{NAME} doctor: "))),
        "{text}"
    );
    assert!(text.contains("Docker Hub API"), "{text}");
    out
}

/// The one pull-quota line.
fn quota_line(out: &Output) -> String {
    let text = stdout(out);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("pull quota")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    lines[0].to_string()
}

/// docker/docs `usage/pulls.md`: a token for `ratelimitpreview/test` with the stored
/// credential as HTTP Basic, then a HEAD of its manifest with that token; the line gives
/// remaining, limit and window, and whom the limit counts.
#[test]
fn doctor_network_reads_the_pull_quota_of_the_stored_account() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.store_ok(HUB_KEY, USERNAME, PASSWORD);
    fx.hub.set_pull_limit(false, Some((200, 187)));
    let out = doctor_network(&fx, &[], &[]);
    assert_eq!(
        quota_line(&out),
        format!(
            "ok   pull quota: 187 of 200 pulls left per 6 hours, counted against the account {USERNAME}"
        )
    );
    let requests = fx.hub.requests();
    let token_req = requests.iter().find(|r| r.path == REGISTRY_TOKEN).unwrap();
    assert_eq!(token_req.method, "GET");
    assert_eq!(token_req.query, REGISTRY_TOKEN_QUERY);
    assert_eq!(
        token_req.basic_auth(),
        Some((USERNAME.to_string(), PASSWORD.to_string()))
    );
    let head = requests.iter().find(|r| r.path == MANIFEST).unwrap();
    assert_eq!(head.method, "HEAD", "a HEAD does not count as a pull");
    assert_eq!(
        head.header("authorization"),
        Some(format!("Bearer {}", fx.hub.registry_tokens()[0]).as_str())
    );

    // Used up: a warning with the fix.
    fx.hub.set_pull_limit(false, Some((200, 0)));
    let line = quota_line(&doctor_network(&fx, &[], &[]));
    assert!(
        line.starts_with("warn pull quota: 0 of 200 pulls left"),
        "{line}"
    );
    assert!(
        line.contains("fix: wait for the window to move on"),
        "{line}"
    );

    // No headers: no limit. Either token field is read.
    fx.hub.set_pull_limit(false, None);
    for fields in [TokenFields::AccessTokenOnly, TokenFields::TokenOnly] {
        fx.hub.set_registry_token_fields(fields);
        let line = quota_line(&doctor_network(&fx, &[], &[]));
        assert!(
            line.starts_with(&format!(
                "ok   pull quota: no pull limit for the account {USERNAME}"
            )),
            "{fields:?}: {line}"
        );
    }
}

/// Without a stored Hub credential the check is anonymous, and the limit is the one of this
/// address (`docker-ratelimit-source` is the client's IP).
#[test]
fn doctor_network_reads_the_anonymous_quota_without_a_credential() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.set_pull_limit(true, Some((100, 76)));
    let out = doctor_network(&fx, &[], &[]);
    assert_eq!(
        quota_line(&out),
        "ok   pull quota: 76 of 100 pulls left per 6 hours, the per-address limit for anonymous pulls from 127.0.0.1"
    );
    let token_req = fx
        .hub
        .requests()
        .into_iter()
        .find(|r| r.path == REGISTRY_TOKEN)
        .unwrap();
    assert_eq!(token_req.header("authorization"), None);
    fx.hub.set_pull_limit(true, Some((100, 0)));
    let line = quota_line(&doctor_network(&fx, &[], &[]));
    assert!(line.starts_with("warn "), "{line}");
    assert!(line.contains(&format!("`{NAME} login`")), "{line}");
}

/// When either service fails, or its URL is refused, one line says so and doctor goes on;
/// refused credentials are a failure (docker pull fails with them too), never shown.
#[test]
fn doctor_network_says_in_one_line_when_a_quota_service_fails() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.store_ok(HUB_KEY, USERNAME, PASSWORD);
    let url = fx.hub.url();

    fx.hub.always(REGISTRY_TOKEN, Reply::ServerError(503));
    let line = quota_line(&doctor_network(&fx, &[], &[]));
    assert_eq!(
        line,
        format!(
            "warn pull quota: cannot check it: Docker Hub's token service at {url} answered HTTP 503: internal error — fix: check the network connection, HTTPS_PROXY/NO_PROXY, DOCKER_HUB_AUTH_URL and DOCKER_HUB_REGISTRY_URL"
        )
    );
    fx.hub.always(REGISTRY_TOKEN, Reply::Normal);

    fx.hub.always(MANIFEST, Reply::Hang);
    let start = Instant::now();
    let line = quota_line(&doctor_network(
        &fx,
        &[("DOCKER_CREDENTIAL_HUB_TIMEOUT", "3")],
        &[],
    ));
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    assert!(
        line.contains(&format!(
            "Docker Hub's registry at {url} did not answer within 3 s"
        )),
        "{line}"
    );
    fx.hub.always(MANIFEST, Reply::Normal);

    let wrong = "not-the-password-Qx7";
    let out = fx.store(HUB_KEY, USERNAME, wrong);
    assert!(out.status.success(), "{}", describe(&out));
    fx.assert_quiet(&out, &[wrong]);
    let out = doctor_network(&fx, &[], &[wrong]);
    let line = quota_line(&out);
    assert!(
        line.starts_with(&format!(
            "FAIL pull quota: Docker Hub's token service refused the stored credentials of {USERNAME}: incorrect username or password"
        )),
        "{line}"
    );
    assert!(line.contains("`docker login`"), "{line}");

    let requests = fx.hub.count(REGISTRY_TOKEN);
    for var in ["DOCKER_HUB_AUTH_URL", "DOCKER_HUB_REGISTRY_URL"] {
        let line = quota_line(&doctor_network(
            &fx,
            &[(var, "http://quota.mock.invalid")],
            &[wrong],
        ));
        assert!(
            line.contains(&format!(
                "{var} (http://quota.mock.invalid) is plain http://"
            )),
            "{line}"
        );
    }
    assert_eq!(fx.hub.count(REGISTRY_TOKEN), requests, "nothing was sent");
}

// --------------------------------------------------------------------- DOCKER_AUTH_CONFIG

/// docker CLI 28.3+ answers from `DOCKER_AUTH_CONFIG` before any credential store
/// (docker/cli `configfile/file.go`): doctor names the variable and its registries in one
/// warning, never a secret; a value docker cannot load is one line too, not a failure.
#[test]
fn doctor_warns_about_docker_auth_config_without_showing_its_secrets() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let canary = "AuthConfigCanary-5d2e";
    let auth = STANDARD.encode(format!("{USERNAME}:{canary}"));
    let config = format!(
        r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"ghcr.io":{{"auth":"{auth}"}}}}}}"#
    );
    let plain = fx.run(&["doctor"], "", &[]);
    let out = fx.run(&["doctor"], "", &[("DOCKER_AUTH_CONFIG", &config)]);
    fx.assert_quiet(&out, &[canary, &auth]);
    let text = stdout(&out);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("DOCKER_AUTH_CONFIG"))
        .collect();
    assert_eq!(
        lines,
        [
            "warn DOCKER_AUTH_CONFIG is set: docker (CLI 28.3 and later) takes the credentials for https://index.docker.io/v1/, ghcr.io from it, not from this helper — fix: unset DOCKER_AUTH_CONFIG to use the keychain for them"
        ]
    );
    assert_eq!(out.status.code(), plain.status.code());

    for (value, why) in [
        ("{not json", "is not valid JSON"),
        (
            r#"{"auths":{"ghcr.io":{"auth":"bm9jb2xvbg=="}}}"#,
            "not base64 of user:password",
        ),
    ] {
        let out = fx.run(&["doctor"], "", &[("DOCKER_AUTH_CONFIG", value)]);
        fx.assert_quiet(&out, &["bm9jb2xvbg=="]);
        let text = stdout(&out);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("DOCKER_AUTH_CONFIG"))
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert!(
            lines[0].starts_with("warn DOCKER_AUTH_CONFIG is set but "),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].contains(why) && lines[0].contains("docker ignores all of it"),
            "{}",
            lines[0]
        );
        assert_eq!(out.status.code(), plain.status.code(), "{}", describe(&out));
        assert!(
            text.lines()
                .last()
                .unwrap()
                .starts_with(&format!("{NAME} doctor: ")),
            "{text}"
        );
    }
    assert!(fx.hub.requests().is_empty());
}

// ------------------------------------------------------------------------------- help

#[test]
fn help_lists_the_service_variables() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let out = fx.run(&["help"], "", &[]);
    assert!(out.status.success());
    for var in URL_VARS {
        assert!(stdout(&out).contains(&format!("{var}=URL")), "{var}");
    }
    assert_eq!(fx.hub.count(LOGIN), 0);
}
