//! Fault injection on the Hub side (Hub misbehaves) and a hung Secret Service.
//!
//! The mock Hub breaks a connection mid-body, sends a truncated JSON body, answers 200 with a
//! token that is not a JWT, or rate limits with `Retry-After: 3600`. Each fault goes through
//! the three commands that talk to Hub: `store` of the Hub key (on the real Secret Service),
//! `login --password-stdin` and `token` with an expired cache (on kernel keyutils). In every
//! case the stored credentials and the cached token are exactly as before (or, for `store`,
//! exactly what was stored), the user gets one clear line, and nothing sleeps past the
//! deadline. Figures go to target/tmp/reliability-hub-faults-*.txt.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::harness::{
    HUB_KEY, TestEnv, assert_get, assert_not_found, list_map, store_request,
};
use crate::support::hub_fixture::NAME;
use crate::support::keyring::{KeyringSession, KeyutilsEnv};
use crate::support::mock_hub::{LOGIN, MockHub, PASSWORD, Reply, USERNAME};
use crate::support::output::{
    assert_one_line_error, assert_one_line_failure, describe, stderr, stdout,
};
use crate::support::{detach_from_terminal, env, report};

/// The Hub deadline every faulty run gets.
const DEADLINE_SECS: u64 = 3;
/// Slack on top of the deadline for process start and keychain work on a busy machine.
const MARGIN: Duration = Duration::from_secs(4);

/// One misbehaviour of Hub and what the user must be told about it.
struct Fault {
    name: &'static str,
    reply: Reply,
    /// Every one of these must appear in the message.
    says: &'static [&'static str],
    /// Hub asked for a wait longer than the deadline: fail at once, no retry.
    immediate: bool,
}

fn faults() -> Vec<Fault> {
    vec![
        Fault {
            name: "connection reset mid-body",
            reply: Reply::ResetMidBody,
            says: &["broke", "tried 3 times"],
            immediate: false,
        },
        Fault {
            name: "truncated JSON body",
            reply: Reply::TruncatedJson,
            says: &["not JSON"],
            immediate: false,
        },
        Fault {
            name: "200 with a non-JWT token",
            reply: Reply::NotJwt,
            says: &["not a JWT"],
            immediate: false,
        },
        Fault {
            name: "429 with Retry-After: 3600",
            reply: Reply::RateLimited { retry_after: 3600 },
            says: &["429", "3600 s"],
            immediate: true,
        },
    ]
}

impl Fault {
    /// The run ended in time: at once for an impossible Retry-After (and without a second
    /// request), otherwise within the deadline plus a margin.
    fn assert_prompt(&self, took: Duration, requests: usize, what: &str) {
        let deadline = Duration::from_secs(DEADLINE_SECS);
        if self.immediate {
            assert!(
                took < deadline,
                "{what}, {}: a 3600 s Retry-After must fail at once, took {took:?}",
                self.name
            );
            assert_eq!(requests, 1, "{what}, {}: no retry", self.name);
        } else {
            assert!(
                took < deadline + MARGIN,
                "{what}, {}: took {took:?} with a {DEADLINE_SECS} s deadline",
                self.name
            );
        }
    }

    fn assert_says(&self, line: &str, what: &str) {
        for s in self.says {
            assert!(
                line.contains(s),
                "{what}, {}: {s:?} missing in {line:?}",
                self.name
            );
        }
        assert!(
            !line.contains("this-is-not-a-jwt") && !line.contains("eyJ"),
            "{what}, {}: the server's token is echoed: {line:?}",
            self.name
        );
    }
}

struct Fixture<E: TestEnv> {
    env: E,
    hub: MockHub,
}

impl<E: TestEnv> Fixture<E> {
    fn new(env: E) -> Fixture<E> {
        Fixture {
            env,
            hub: MockHub::start(),
        }
    }

    /// The helper pointed at the mock Hub, with the fault deadline, in its own session (no
    /// controlling terminal). Returns the output and how long it took.
    fn run(&self, args: &[&str], stdin: impl Into<Vec<u8>>) -> (Output, Duration) {
        let mut cmd = env::helper_process(&self.env.env());
        cmd.env("DOCKER_HUB_API_URL", self.hub.url())
            .env("DOCKER_CREDENTIAL_HUB_TIMEOUT", DEADLINE_SECS.to_string())
            .args(args);
        detach_from_terminal(&mut cmd);
        let start = Instant::now();
        let out = env::bounded(cmd)
            .write_stdin(stdin)
            .output()
            .expect("run the helper");
        let took = start.elapsed();
        let err = stderr(&out);
        for secret in [PASSWORD, NEW_PASSWORD] {
            assert!(!err.contains(secret), "a password on stderr: {err:?}");
        }
        (out, took)
    }

    fn get_answer(&self, url: &str) -> Vec<u8> {
        self.run(&["get"], url).0.stdout
    }

    /// The `cached Hub JWT` line of `doctor`, which inspects the cache without using it.
    fn cached_jwt_line(&self) -> String {
        let (out, _) = self.run(&["doctor"], "");
        stdout(&out)
            .lines()
            .find(|l| l.contains("cached Hub JWT"))
            .unwrap_or_else(|| panic!("doctor printed no cached Hub JWT line: {}", describe(&out)))
            .to_string()
    }
}

const NEW_PASSWORD: &str = "a-new-password-for-the-fault-runs";

/// A human command's failure (`assert_one_line_failure`) whose line names the helper.
fn one_stderr_line(out: &Output, what: &str) -> String {
    let line = assert_one_line_failure(out);
    assert!(line.starts_with(&format!("{NAME}: ")), "{what}: {line:?}");
    line
}

// ------------------------------------------------------------------------------- store

#[test]
fn store_of_the_hub_key_keeps_the_credentials_whatever_hub_does() {
    let Some(session) = KeyringSession::start() else {
        return;
    };
    let fx = Fixture::new(session);
    let (out, _) = fx.run(
        &["store"],
        store_request("ghcr.io", "ghuser", "ghcr-secret-1"),
    );
    assert!(out.status.success(), "{}", describe(&out));
    let other = fx.get_answer("ghcr.io");

    let mut survived = 0;
    let mut slowest = Duration::ZERO;
    for (i, fault) in faults().iter().enumerate() {
        fx.hub.always(LOGIN, fault.reply.clone());
        let before = fx.hub.count(LOGIN);
        // A password of its own per fault: `get` proves this very store went through.
        let password = format!("{NEW_PASSWORD}-{i}");
        let (out, took) = fx.run(&["store"], store_request(HUB_KEY, USERNAME, &password));
        let what = "store";
        assert!(
            out.status.success(),
            "{what}, {}: {}",
            fault.name,
            describe(&out)
        );
        assert!(out.stdout.is_empty(), "{what}: {}", describe(&out));
        let err = stderr(&out);
        assert_eq!(
            err.lines().count(),
            1,
            "one warning line: {}",
            describe(&out)
        );
        assert!(
            err.starts_with(&format!("{NAME}: warning: "))
                && err.contains(&format!("`{NAME} login`")),
            "{err:?}"
        );
        fault.assert_says(&err, what);
        assert!(!err.contains(&password), "the password on stderr: {err:?}");
        fault.assert_prompt(took, fx.hub.count(LOGIN) - before, what);
        slowest = slowest.max(took);

        assert_get(&fx.env, HUB_KEY, USERNAME, &password);
        assert_eq!(
            fx.get_answer("ghcr.io"),
            other,
            "another credential changed"
        );
        // Nothing was cached from the bad answer, and the stale token went with the old
        // credentials.
        let line = fx.cached_jwt_line();
        assert!(
            line.contains("cached Hub JWT: none"),
            "{}: {line}",
            fault.name
        );
        survived += 1;
    }
    assert_eq!(
        list_map(&fx.env).into_keys().collect::<Vec<_>>(),
        ["ghcr.io", HUB_KEY]
    );
    report(
        "hub-faults-store",
        &format!(
            "Hub faults during `store` of the Hub key (Secret Service): {survived}/{} survived (reset mid-body, truncated JSON, non-JWT token, Retry-After 3600): credentials stored exactly, one warning line, exit 0; slowest {:.1} s with a {DEADLINE_SECS} s deadline",
            faults().len(),
            slowest.as_secs_f64()
        ),
    );
}

// ------------------------------------------------------------------------------- login

#[test]
fn login_stores_nothing_and_changes_nothing_whatever_hub_does() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let fx = Fixture::new(env);
    let login = |password: &str| {
        fx.run(
            &["login", "--username", USERNAME, "--password-stdin"],
            format!("{password}\n"),
        )
    };
    let mut survived = 0;
    let mut slowest = Duration::ZERO;

    // No credentials before: none after.
    for fault in faults() {
        fx.hub.always(LOGIN, fault.reply.clone());
        let before = fx.hub.count(LOGIN);
        let (out, took) = login(PASSWORD);
        let line = one_stderr_line(&out, "login");
        fault.assert_says(&line, "login");
        assert!(line.contains("nothing was stored"), "{line}");
        fault.assert_prompt(took, fx.hub.count(LOGIN) - before, "login");
        slowest = slowest.max(took);
        assert_not_found(&fx.env, HUB_KEY);
        assert!(list_map(&fx.env).is_empty());
        survived += 1;
    }

    // Earlier credentials and their cached token: untouched, byte for byte.
    fx.hub.always(LOGIN, Reply::Normal);
    let (out, _) = login(PASSWORD);
    assert!(out.status.success(), "{}", describe(&out));
    let jwt = fx.hub.last_issued();
    let creds = fx.get_answer(HUB_KEY);
    for fault in faults() {
        fx.hub.always(LOGIN, fault.reply.clone());
        let before = fx.hub.count(LOGIN);
        let (out, took) = login(NEW_PASSWORD);
        let line = one_stderr_line(&out, "login over earlier credentials");
        fault.assert_says(&line, "login over earlier credentials");
        fault.assert_prompt(took, fx.hub.count(LOGIN) - before, "login");
        slowest = slowest.max(took);
        assert_eq!(fx.get_answer(HUB_KEY), creds, "{}", fault.name);
        assert_get(&fx.env, HUB_KEY, USERNAME, PASSWORD);
        // The cached token is the same and still used without asking Hub.
        let requests = fx.hub.requests().len();
        let (out, _) = fx.run(&["token"], "");
        assert_eq!(stdout(&out), format!("{jwt}\n"));
        assert_eq!(fx.hub.requests().len(), requests);
        survived += 1;
    }
    report(
        "hub-faults-login",
        &format!(
            "Hub faults during `login` (keyutils): {survived}/{} survived (4 faults, with and without earlier credentials): nothing stored, earlier credentials and token unchanged, one stderr line; slowest {:.1} s with a {DEADLINE_SECS} s deadline",
            2 * faults().len(),
            slowest.as_secs_f64()
        ),
    );
}

// ------------------------------------------------------------------------------- token

#[test]
fn token_with_an_expired_cache_fails_cleanly_whatever_hub_does() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let fx = Fixture::new(env);
    // Log in while the mock hands out already-expired tokens: the cache is stale.
    fx.hub.set_token_lifetime(-10);
    let (out, _) = fx.run(&["store"], store_request(HUB_KEY, USERNAME, PASSWORD));
    assert!(out.status.success(), "{}", describe(&out));
    fx.hub.set_token_lifetime(3600);
    let creds = fx.get_answer(HUB_KEY);
    let stale = fx.cached_jwt_line();
    assert!(stale.contains("cached Hub JWT: expired at"), "{stale}");

    let mut survived = 0;
    let mut slowest = Duration::ZERO;
    for fault in faults() {
        fx.hub.always(LOGIN, fault.reply.clone());
        let before = fx.hub.count(LOGIN);
        let (out, took) = fx.run(&["token"], "");
        let line = one_stderr_line(&out, "token");
        fault.assert_says(&line, "token");
        fault.assert_prompt(took, fx.hub.count(LOGIN) - before, "token");
        slowest = slowest.max(took);
        assert_eq!(fx.get_answer(HUB_KEY), creds, "{}", fault.name);
        // The stale token is still the cached one: nothing from the bad answer replaced it.
        assert_eq!(fx.cached_jwt_line(), stale, "{}", fault.name);
        survived += 1;
    }

    // Once Hub behaves, the same credentials log in again.
    fx.hub.always(LOGIN, Reply::Normal);
    let (out, _) = fx.run(&["token"], "");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), format!("{}\n", fx.hub.last_issued()));
    assert_get(&fx.env, HUB_KEY, USERNAME, PASSWORD);
    report(
        "hub-faults-token",
        &format!(
            "Hub faults during `token` with an expired cache (keyutils): {survived}/{} survived: credentials and cached token unchanged, stdout empty, one stderr line; slowest {:.1} s with a {DEADLINE_SECS} s deadline",
            faults().len(),
            slowest.as_secs_f64()
        ),
    );
}

// ------------------------------------------------------------------ a hung Secret Service

#[test]
fn a_frozen_secret_service_hangs_neither_get_nor_token() {
    let Some(session) = KeyringSession::start() else {
        return;
    };
    let fx = Fixture::new(session);
    let (out, _) = fx.run(
        &["login", "--username", USERNAME, "--password-stdin"],
        format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", describe(&out));
    let jwt = fx.hub.last_issued();
    let session = &fx.env;

    session.stop_keyring_daemon();
    let deadline = Duration::from_secs(DEADLINE_SECS);
    let (get, get_took) = fx.run(&["get"], HUB_KEY);
    let (token, token_took) = fx.run(&["token"], "");
    session.continue_keyring_daemon();

    let line = assert_one_line_error(&get);
    assert!(
        line.contains(&format!("did not answer within {DEADLINE_SECS} s"))
            && line.contains("doctor"),
        "{line}"
    );
    assert!(get_took < deadline + MARGIN, "get took {get_took:?}");
    let line = one_stderr_line(&token, "token");
    assert!(
        line.contains(&format!("did not answer within {DEADLINE_SECS} s")),
        "{line}"
    );
    assert!(token_took < deadline + MARGIN, "token took {token_took:?}");

    // Thawed, the same daemon answers again with everything intact.
    assert_get(&fx.env, HUB_KEY, USERNAME, PASSWORD);
    let (out, _) = fx.run(&["token"], "");
    assert_eq!(stdout(&out), format!("{jwt}\n"));
    assert_eq!(fx.hub.requests().len(), 1, "the cached token was used");
    report(
        "hub-faults-hung-keyring",
        &format!(
            "Frozen gnome-keyring (SIGSTOP): 2/2 survived: `get` answered one stdout line in {:.1} s, `token` one stderr line in {:.1} s ({DEADLINE_SECS} s deadline); all intact after SIGCONT",
            get_took.as_secs_f64(),
            token_took.as_secs_f64()
        ),
    );
}
