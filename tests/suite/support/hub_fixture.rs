//! The world of a Hub test: a private keychain and a mock Hub, and the assertions every Hub
//! tier shares.

use std::process::Output;

use super::detach_from_terminal;
use super::env;
use super::harness::{TestEnv, store_request};
use super::keyring::KeyutilsEnv;
use super::mock_hub::{ACCESS_TOKEN, MockHub, OTP_CODE, PASSWORD, USERNAME};
use super::output::{describe, stderr, stdout};

pub use super::harness::HUB_KEY;
pub const NAME: &str = "docker-credential-hub";
/// Where `login` takes the two-factor code from.
pub const OTP_ENV: &str = "DOCKER_CREDENTIAL_HUB_OTP";
/// The variables that point the helper at Docker's services.
pub const URL_VARS: [&str; 4] = [
    "DOCKER_HUB_API_URL",
    "DOCKER_HUB_OAUTH_URL",
    "DOCKER_HUB_AUTH_URL",
    "DOCKER_HUB_REGISTRY_URL",
];

/// One test's world: a private keychain and a mock Hub.
pub struct Fixture {
    pub env: Box<dyn TestEnv>,
    pub hub: MockHub,
}

impl Fixture {
    /// keyutils under a unique service name; `None` after a loud SKIP when the kernel denies it.
    pub fn keyutils() -> Option<Fixture> {
        let env = KeyutilsEnv::new()?;
        Some(Fixture {
            env: Box::new(env),
            hub: MockHub::start(),
        })
    }

    /// The variables every helper run gets: the keychain's, plus the mock as every Docker
    /// service (Hub API, login service, token service, registry).
    pub fn vars(&self) -> Vec<(String, String)> {
        let mut vars = self.env.env();
        vars.retain(|(k, _)| !URL_VARS.contains(&k.as_str()));
        vars.extend(URL_VARS.iter().map(|v| (v.to_string(), self.hub.url())));
        vars
    }

    /// The helper, in its own session (no controlling terminal), with `extra` variables.
    pub fn cmd(&self, args: &[&str], extra: &[(&str, &str)]) -> assert_cmd::Command {
        let mut cmd = env::helper_process(&self.vars());
        cmd.envs(extra.iter().copied()).args(args);
        detach_from_terminal(&mut cmd);
        env::bounded(cmd)
    }

    pub fn run(&self, args: &[&str], stdin: impl Into<Vec<u8>>, extra: &[(&str, &str)]) -> Output {
        let out = self
            .cmd(args, extra)
            .write_stdin(stdin)
            .output()
            .expect("run docker-credential-hub");
        // Only `get` and `token` answer with a secret, on stdout.
        if matches!(args.first(), Some(&"get" | &"token")) {
            self.assert_no_secrets(&out);
        } else {
            self.assert_quiet(&out, &[]);
        }
        out
    }

    pub fn store(&self, url: &str, user: &str, secret: &str) -> Output {
        self.run(&["store"], store_request(url, user, secret), &[])
    }

    /// `store` that must succeed (exit 0, nothing on stdout) without any Hub warning.
    pub fn store_ok(&self, url: &str, user: &str, secret: &str) {
        let out = self.store(url, user, secret);
        assert!(
            out.status.success() && out.stdout.is_empty(),
            "store failed: {}",
            describe(&out)
        );
        assert!(
            !stderr(&out).contains("Docker Hub"),
            "unexpected Hub warning: {}",
            describe(&out)
        );
    }

    pub fn token(&self) -> Output {
        self.run(&["token"], "", &[])
    }

    /// `token` must succeed and print exactly `expected` and a newline.
    pub fn assert_token(&self, expected: &str) {
        let out = self.token();
        assert!(out.status.success(), "token failed: {}", describe(&out));
        assert_eq!(stdout(&out), format!("{expected}\n"), "{}", describe(&out));
    }

    /// `token` must print the newest token the mock issued (read after the run). Returns it.
    pub fn assert_token_is_latest(&self) -> String {
        let out = self.token();
        assert!(out.status.success(), "token failed: {}", describe(&out));
        let latest = self.hub.last_issued();
        assert_eq!(stdout(&out), format!("{latest}\n"), "{}", describe(&out));
        latest
    }

    /// `login --username USER --password-stdin [more]` with `password` and a newline on stdin.
    pub fn login(&self, password: &str, more: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut args = vec!["login", "--username", USERNAME, "--password-stdin"];
        args.extend_from_slice(more);
        self.run(&args, format!("{password}\n"), extra)
    }

    /// Every secret the mock knows of: the password, the access token, the 2FA code, every
    /// token, login_2fa_token and registry token it issued, every refresh token sent to be
    /// revoked.
    fn known_secrets(&self) -> Vec<String> {
        let mut secrets = vec![
            PASSWORD.to_string(),
            ACCESS_TOKEN.to_string(),
            OTP_CODE.to_string(),
        ];
        secrets.extend(self.hub.issued());
        secrets.extend(self.hub.login_2fa_tokens());
        secrets.extend(self.hub.registry_tokens());
        secrets.extend(self.hub.revoked().into_iter().map(|(_, t)| t));
        secrets
    }

    /// No secret the mock knows of may reach stderr.
    pub fn assert_no_secrets(&self, out: &Output) {
        assert_none_in("stderr", &stderr(out), &self.known_secrets());
    }

    /// For a command whose answer is no secret (everything but `get` and `token`): neither
    /// stdout nor stderr holds a secret the mock knows of, nor any of `more` (a refresh
    /// token, a password the mock never saw).
    pub fn assert_quiet(&self, out: &Output, more: &[&str]) {
        let mut secrets = self.known_secrets();
        secrets.extend(more.iter().map(|s| s.to_string()));
        assert_none_in("stderr", &stderr(out), &secrets);
        assert_none_in("stdout", &stdout(out), &secrets);
    }
}

/// None of `secrets`, and nothing JWT-like, in `text`.
fn assert_none_in(which: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "a secret ({}…) appeared on {which}: {text:?}",
            &s[..6.min(s.len())]
        );
    }
    // A JWT's header is the same for every token; no part of one may leak either.
    assert!(
        !text.contains("eyJ"),
        "something JWT-like appeared on {which}: {text:?}"
    );
}

/// The lines of stderr that are the Hub warning of a `store` (the keyutils "not persistent"
/// warning is another line and not counted).
pub fn hub_warnings(out: &Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| l.contains("Docker Hub"))
        .map(str::to_string)
        .collect()
}

pub fn assert_store_warned(out: &Output, about: &str) {
    assert!(
        out.status.success(),
        "store must succeed: {}",
        describe(out)
    );
    assert!(out.stdout.is_empty(), "{}", describe(out));
    let warnings = hub_warnings(out);
    assert_eq!(warnings.len(), 1, "one Hub warning line: {}", describe(out));
    let w = &warnings[0];
    assert!(w.contains("warning"), "{w}");
    assert!(
        w.contains(&format!("`{NAME} login`")),
        "the warning names the fix: {w}"
    );
    assert!(w.contains(about), "the warning says {about:?}: {w}");
}
