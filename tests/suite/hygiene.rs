//! Secret hygiene: every command path, success and failure, runs with unique
//! canary secrets — a password, an access token (`dckr_pat_…`), a 2FA code, plaintext
//! config.json secrets, an old helper's secret, docker's web-login tokens (the access token
//! and the refresh token `logout` revokes), a `DOCKER_AUTH_CONFIG` credential, and JWTs
//! and registry tokens from the mock that carry a canary claim and a canary in their
//! signature — in normal and in
//! `DOCKER_CREDENTIAL_HUB_DEBUG=1` mode, on the real Secret Service (and the debug mode
//! once more on kernel keyutils).
//!
//! Then every stdout (except the protocol's own `get` answer and the `token` answer, which
//! are checked to be exactly the secret they must carry), every stderr with the debug trace,
//! and every file under the temporary HOME, XDG_RUNTIME_DIR and DOCKER_CONFIG (config.json,
//! its backup and undo record included) is scanned for every canary, raw and base64. No
//! canary may appear anywhere. Also: no command takes a secret in argv, and every file the
//! helper writes is private although the helper runs with umask 000.
//! Figures go to target/tmp/reliability-hygiene-*.txt.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Output;

use crate::support::harness::{HUB_KEY, NOT_FOUND, TestEnv, get_answer, store_request, var};
use crate::support::keyring::{KeyringSession, KeyutilsEnv, UNREACHABLE_HUB as HUB_DOWN};
use crate::support::mock_hub::{
    AUTH_TOKEN, CLIENT_ID, LOGIN, MANIFEST, MockHub, REVOKE, TWO_FA_LOGIN, USERNAME, make_jwt_with,
    now,
};
use crate::support::output::{describe, stdout};
use crate::support::{env, file_mode, files_under, report, script};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

const OTHER_KEY: &str = "ghcr.io";
const OTHER_USER: &str = "ghuser";
const DEBUG_MARK: &str = "docker-credential-hub[debug]";

/// Unique secrets for one run: nothing else on the machine contains them.
struct Canaries {
    password: String,
    access_token: String,
    other: String,
    wrong: String,
    otp: String,
    wrong_otp: String,
    plain_auth: String,
    plain_password: String,
    plain_idtoken: String,
    old_helper: String,
    argv: String,
    claim: String,
    signature: String,
    refresh: String,
    auth_config: String,
}

impl Canaries {
    fn new(mode: &str) -> Canaries {
        // Letters and digits only, so that every encoded form of a canary stays findable.
        let u = crate::support::unique_name(mode).replace('-', "x");
        let c = |what: &str| format!("Canary{what}{u}");
        Canaries {
            password: c("Password"),
            access_token: format!("dckr_pat_{}", c("AccessToken")),
            other: c("OtherRegistry"),
            wrong: c("WrongPassword"),
            otp: c("Otp"),
            wrong_otp: c("WrongOtp"),
            plain_auth: c("PlainAuth"),
            plain_password: c("PlainPassword"),
            plain_idtoken: c("PlainIdToken"),
            old_helper: c("OldHelper"),
            argv: c("Argv"),
            claim: c("JwtClaim"),
            signature: c("JwtSignature"),
            refresh: c("RefreshToken"),
            auth_config: c("AuthConfig"),
        }
    }

    fn named(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("password", &self.password),
            ("access token", &self.access_token),
            ("other registry secret", &self.other),
            ("wrong password", &self.wrong),
            ("2FA code", &self.otp),
            ("wrong 2FA code", &self.wrong_otp),
            ("config.json auth", &self.plain_auth),
            ("config.json password", &self.plain_password),
            ("config.json identitytoken", &self.plain_idtoken),
            ("old helper secret", &self.old_helper),
            ("argv secret", &self.argv),
            ("JWT claim", &self.claim),
            ("JWT signature tag", &self.signature),
            ("web-login refresh token", &self.refresh),
            ("DOCKER_AUTH_CONFIG secret", &self.auth_config),
        ]
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    Ok,
    Fail,
    /// The exit status depends on the machine (doctor's checklist).
    Any,
}

/// Something captured for the final scan.
struct Captured {
    what: String,
    bytes: Vec<u8>,
}

/// One mode's world: a private keychain, a mock Hub issuing canary JWTs, and a directory
/// with a misbehaving old credential helper.
struct World<'a> {
    env: &'a dyn TestEnv,
    hub: MockHub,
    debug: bool,
    c: Canaries,
    tools: tempfile::TempDir,
    captured: RefCell<Vec<Captured>>,
    paths: RefCell<BTreeSet<String>>,
    runs: RefCell<usize>,
    files_scanned: RefCell<usize>,
    /// Secrets made here rather than by the mock (docker's web-login access tokens).
    made: RefCell<Vec<String>>,
}

impl<'a> World<'a> {
    fn new(env: &'a dyn TestEnv, debug: bool) -> World<'a> {
        let c = Canaries::new(if debug { "Debug" } else { "Normal" });
        let hub = MockHub::start();
        hub.set_password(&c.password);
        hub.set_access_token(&c.access_token);
        hub.set_otp_code(&c.otp);
        hub.set_claim("canary", &c.claim);
        hub.set_signature_tag(&c.signature);
        World {
            env,
            hub,
            debug,
            c,
            tools: tempfile::tempdir().unwrap(),
            captured: RefCell::default(),
            paths: RefCell::default(),
            runs: RefCell::new(0),
            files_scanned: RefCell::new(0),
            made: RefCell::default(),
        }
    }

    fn runtime_dir(&self) -> PathBuf {
        PathBuf::from(var(self.env, "XDG_RUNTIME_DIR"))
    }

    /// The helper as docker or a person runs it: this binary first on PATH (configure
    /// insists), the old helper next, no controlling terminal, and umask 000 so that only
    /// the helper's own choice of modes keeps its files private.
    fn command(
        &self,
        args: &[&str],
        extra: &[(&str, &str)],
        unset: &[&str],
    ) -> assert_cmd::Command {
        let mut cmd = env::helper_process(&self.env.env());
        cmd.env(
            "PATH",
            env::path_with(&[&env::helper_dir(), self.tools.path()]),
        )
        .env("DOCKER_HUB_API_URL", self.hub.url())
        .env("DOCKER_HUB_OAUTH_URL", self.hub.url())
        .env("DOCKER_HUB_AUTH_URL", self.hub.url())
        .env("DOCKER_HUB_REGISTRY_URL", self.hub.url())
        .env("DOCKER_CREDENTIAL_HUB_TIMEOUT", "5")
        .envs(extra.iter().copied())
        .args(args);
        if self.debug {
            cmd.env("DOCKER_CREDENTIAL_HUB_DEBUG", "1");
        }
        for name in unset {
            cmd.env_remove(name);
        }
        // SAFETY: setsid and umask are async-signal-safe and touch no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::umask(0);
                Ok(())
            });
        }
        env::bounded(cmd)
    }

    fn exec(
        &self,
        path: &str,
        args: &[&str],
        stdin: impl Into<Vec<u8>>,
        extra: &[(&str, &str)],
        unset: &[&str],
        expect: Expect,
    ) -> Output {
        let out = self
            .command(args, extra, unset)
            .write_stdin(stdin)
            .output()
            .expect("run the helper");
        let ok = out.status.success();
        assert!(
            match expect {
                Expect::Ok => ok,
                Expect::Fail => !ok && out.status.code().is_some(),
                Expect::Any => out.status.code().is_some(),
            },
            "{path}: expected {expect:?}: {}",
            describe(&out)
        );
        self.paths.borrow_mut().insert(path.to_string());
        *self.runs.borrow_mut() += 1;
        // stderr (with the debug trace) never carries a secret, whatever the command.
        self.capture(format!("{path}: stderr"), &out.stderr);
        out
    }

    /// Run one command path; its stdout and stderr both go to the scan.
    fn run(&self, path: &str, args: &[&str], stdin: impl Into<Vec<u8>>, expect: Expect) -> Output {
        self.run_with(path, args, stdin, &[], expect)
    }

    fn run_with(
        &self,
        path: &str,
        args: &[&str],
        stdin: impl Into<Vec<u8>>,
        extra: &[(&str, &str)],
        expect: Expect,
    ) -> Output {
        let out = self.exec(path, args, stdin, extra, &[], expect);
        self.capture(format!("{path}: stdout"), &out.stdout);
        out
    }

    /// A run whose stdout is the secret by design (`get`, `token`): it must be exactly
    /// `answer`, and only its stderr goes to the scan.
    fn run_answer(&self, path: &str, args: &[&str], stdin: impl Into<Vec<u8>>, answer: &str) {
        let out = self.exec(path, args, stdin, &[], &[], Expect::Ok);
        assert_eq!(stdout(&out), answer, "{path}");
    }

    fn capture(&self, what: String, bytes: &[u8]) {
        self.captured.borrow_mut().push(Captured {
            what,
            bytes: bytes.to_vec(),
        });
    }

    /// Every regular file under HOME, XDG_RUNTIME_DIR and DOCKER_CONFIG, for the scan.
    fn capture_files(&self, checkpoint: &str) {
        let roots = [
            self.env.home().to_path_buf(),
            self.runtime_dir(),
            self.env.docker_config_dir().to_path_buf(),
        ];
        for root in roots {
            for file in files_under(&root) {
                // A file may vanish between listing and reading (a temp file renamed).
                if let Ok(bytes) = std::fs::read(&file) {
                    self.capture(format!("{checkpoint}: file {}", file.display()), &bytes);
                    *self.files_scanned.borrow_mut() += 1;
                }
            }
        }
    }

    /// The helper's files are private: its runtime directory 0700, its lock files, and
    /// config.json with its backup and undo record without any group or other bits.
    fn check_modes(&self, checkpoint: &str) -> usize {
        let mut checked = 0;
        let lock_dir = self.runtime_dir().join("docker-credential-hub");
        assert_eq!(
            file_mode(&lock_dir),
            0o700,
            "{checkpoint}: {}",
            lock_dir.display()
        );
        checked += 1;
        for file in files_under(&lock_dir) {
            assert_eq!(
                file_mode(&file) & 0o077,
                0,
                "{checkpoint}: {} is readable by others",
                file.display()
            );
            checked += 1;
        }
        for name in ["config.json", "config.json.bak", "config.json.hub-previous"] {
            let file = self.env.docker_config_dir().join(name);
            if file.exists() {
                assert_eq!(
                    file_mode(&file) & 0o077,
                    0,
                    "{checkpoint}: {} is readable by others",
                    file.display()
                );
                checked += 1;
            }
        }
        let leftovers: Vec<_> = std::fs::read_dir(self.env.docker_config_dir())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .map(|e| e.path())
            .collect();
        assert!(
            leftovers.is_empty(),
            "{checkpoint}: temp files left: {leftovers:?}"
        );
        checked
    }

    /// Every form in which a secret could leak: the canaries raw and in base64, docker's
    /// `auth` encoding of user:secret, and every token and login_2fa_token the mock issued,
    /// whole and by part (payload, signature).
    fn needles(&self) -> Vec<(String, String)> {
        let mut needles = Vec::new();
        for (name, value) in self.c.named() {
            needles.push((name.to_string(), value.to_string()));
            needles.push((format!("{name} (base64)"), STANDARD.encode(value)));
            needles.push((format!("{name} (base64url)"), URL_SAFE_NO_PAD.encode(value)));
            for user in [USERNAME, OTHER_USER, "plainuser", "olduser"] {
                needles.push((
                    format!("{name} (auth of {user})"),
                    STANDARD.encode(format!("{user}:{value}")),
                ));
            }
        }
        for (i, jwt) in self.hub.issued().into_iter().enumerate() {
            let parts: Vec<String> = jwt.split('.').map(str::to_string).collect();
            assert_eq!(parts.len(), 3, "the mock issues header.payload.signature");
            needles.push((format!("JWT #{i} payload"), parts[1].clone()));
            needles.push((format!("JWT #{i} signature"), parts[2].clone()));
            needles.push((format!("JWT #{i}"), jwt));
        }
        for (i, t) in self.hub.login_2fa_tokens().into_iter().enumerate() {
            needles.push((format!("login_2fa_token #{i}"), t));
        }
        let made = self.made.borrow().clone();
        for (what, tokens) in [
            ("registry token", self.hub.registry_tokens()),
            ("web-login access token", made),
        ] {
            for (i, jwt) in tokens.into_iter().enumerate() {
                let parts: Vec<String> = jwt.split('.').map(str::to_string).collect();
                needles.push((format!("{what} #{i} payload"), parts[1].clone()));
                needles.push((format!("{what} #{i} signature"), parts[2].clone()));
                needles.push((format!("{what} #{i}"), jwt));
            }
        }
        needles
    }

    /// Scan everything captured; returns (leaks, outputs scanned, needles).
    fn scan(&self) -> (Vec<String>, usize, usize) {
        let needles = self.needles();
        self.check_the_scanner(&needles);
        let captured = self.captured.borrow();
        let mut leaks = Vec::new();
        for cap in captured.iter() {
            for name in found(&needles, &cap.bytes) {
                leaks.push(format!("{} holds the {name}", cap.what));
            }
        }
        (leaks, captured.len(), needles.len())
    }

    /// The scan must see what it is looking for: the answers it skips (a `token` answer,
    /// a plaintext config.json) would be caught.
    fn check_the_scanner(&self, needles: &[(String, String)]) {
        let jwt = self.latest_jwt();
        let payload = jwt.split('.').nth(1).unwrap().to_string();
        let auth = format!(
            r#"{{"auths":{{"x":{{"auth":"{}"}}}}}}"#,
            STANDARD.encode(format!("plainuser:{}", self.c.plain_auth))
        );
        for planted in [jwt, payload, auth, format!("echo {}", self.c.claim)] {
            assert!(
                !found(needles, planted.as_bytes()).is_empty(),
                "the scan misses {planted:?}"
            );
        }
    }

    /// The issued tokens so far; the last one is what `token` must print.
    fn latest_jwt(&self) -> String {
        self.hub.last_issued()
    }
}

/// The names of the needles in `bytes`.
fn found<'n>(needles: &'n [(String, String)], bytes: &[u8]) -> Vec<&'n str> {
    needles
        .iter()
        .filter(|(_, needle)| contains(bytes, needle.as_bytes()))
        .map(|(name, _)| name.as_str())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------
// The command paths
// ---------------------------------------------------------------------------------------

fn protocol_paths(w: &World) {
    let c = &w.c;
    w.run(
        "store, other key",
        &["store"],
        store_request(OTHER_KEY, OTHER_USER, &c.other),
        Expect::Ok,
    );
    w.run(
        "store, Hub key, password (Hub login)",
        &["store"],
        store_request(HUB_KEY, USERNAME, &c.password),
        Expect::Ok,
    );
    assert_eq!(w.hub.count(LOGIN), 1, "the Hub store logged in");
    w.run_answer(
        "get, found (other key)",
        &["get"],
        OTHER_KEY,
        &get_answer(OTHER_KEY, OTHER_USER, &c.other),
    );
    w.run_answer(
        "get, found (Hub key)",
        &["get"],
        HUB_KEY,
        &get_answer(HUB_KEY, USERNAME, &c.password),
    );
    w.run_answer(
        "get, found (Hub alias)",
        &["get"],
        "docker.io",
        &get_answer("docker.io", USERNAME, &c.password),
    );
    let out = w.run(
        "get, not found",
        &["get"],
        "nothing.example.com",
        Expect::Fail,
    );
    assert_eq!(stdout(&out), NOT_FOUND);
    w.run("get, bad input (empty)", &["get"], "", Expect::Fail);
    // A store request sent to `get` by mistake carries a secret.
    w.run(
        "get, bad input (a store request)",
        &["get"],
        store_request("https://mistake.example", "u", &c.password),
        Expect::Fail,
    );
    let mut truncated = store_request("https://x.example", "u", &c.password);
    truncated.truncate(truncated.len() - 2);
    w.run(
        "store, bad input (truncated JSON)",
        &["store"],
        truncated,
        Expect::Fail,
    );
    w.run(
        "store, bad input (no ServerURL)",
        &["store"],
        format!(r#"{{"Username":"u","Secret":"{}"}}"#, c.password),
        Expect::Fail,
    );
    w.run(
        "store, bad input (no Username)",
        &["store"],
        format!(
            r#"{{"ServerURL":"https://x.example","Secret":"{}"}}"#,
            c.password
        ),
        Expect::Fail,
    );
    let mut not_utf8 = format!(
        r#"{{"ServerURL":"https://x.example","Username":"u","Secret":"{}"#,
        c.password
    )
    .into_bytes();
    not_utf8.extend_from_slice(b"\xff\xfe\"}");
    w.run(
        "store, bad input (not UTF-8)",
        &["store"],
        not_utf8,
        Expect::Fail,
    );
    w.run(
        "store, bad input (not an object)",
        &["store"],
        format!(r#"["{}"]"#, c.password),
        Expect::Fail,
    );
    w.run("list", &["list"], "unused", Expect::Ok);
    for v in ["version", "--version", "-v", "help", "--help", "-h"] {
        w.run(v, &[v], "", Expect::Ok);
    }
    w.run("no arguments", &[], "", Expect::Fail);
    w.run(
        "unknown action",
        &["frobnicate"],
        store_request(HUB_KEY, USERNAME, &c.password),
        Expect::Fail,
    );
    w.run(
        "store, Hub key, access token (/v2/auth/token)",
        &["store"],
        store_request(HUB_KEY, USERNAME, &c.access_token),
        Expect::Ok,
    );
    assert_eq!(
        w.hub.count(AUTH_TOKEN),
        1,
        "the access token went to /v2/auth/token"
    );
    w.run_answer(
        "token, cached",
        &["token"],
        "",
        &format!("{}\n", w.latest_jwt()),
    );
    w.run_with(
        "store, Hub key, Hub down",
        &["store"],
        store_request(HUB_KEY, USERNAME, &c.password),
        &[
            ("DOCKER_HUB_API_URL", HUB_DOWN),
            ("DOCKER_CREDENTIAL_HUB_TIMEOUT", "1"),
        ],
        Expect::Ok,
    );
    w.run(
        "store, Hub key, Hub rejects the password",
        &["store"],
        store_request(HUB_KEY, USERNAME, &c.wrong),
        Expect::Ok,
    );
    w.run("erase, other key", &["erase"], OTHER_KEY, Expect::Ok);
    w.run("erase, Hub key", &["erase"], HUB_KEY, Expect::Ok);
    w.run("erase, bad input (empty)", &["erase"], "", Expect::Fail);
}

fn login(w: &World, path: &str, secret: &str, more: &[&str], expect: Expect) -> Output {
    let mut args = vec!["login", "--username", USERNAME, "--password-stdin"];
    args.extend_from_slice(more);
    w.run(path, &args, format!("{secret}\n"), expect)
}

/// A login with the two-factor code in the environment, where `login` reads it.
fn login_otp(w: &World, path: &str, secret: &str, code: &str, expect: Expect) -> Output {
    let args = ["login", "--username", USERNAME, "--password-stdin"];
    let env = [("DOCKER_CREDENTIAL_HUB_OTP", code)];
    w.run_with(path, &args, format!("{secret}\n"), &env, expect)
}

/// `login` while the mock issues already-expired tokens: the cached token is stale.
fn login_with_a_stale_token(w: &World) {
    w.hub.set_token_lifetime(-10);
    login(
        w,
        "login, password (token expires)",
        &w.c.password,
        &[],
        Expect::Ok,
    );
    w.hub.set_token_lifetime(3600);
}

fn hub_paths(w: &World) {
    let c = &w.c;
    let out = login(w, "login, password", &c.password, &[], Expect::Ok);
    assert_eq!(stdout(&out), "Login Succeeded\n");
    login(w, "login, wrong password", &c.wrong, &[], Expect::Fail);
    login(w, "login, access token", &c.access_token, &[], Expect::Ok);
    w.run(
        "login, no username and no terminal",
        &["login"],
        "",
        Expect::Fail,
    );
    w.run(
        "login, no password and no terminal",
        &["login", "--username", USERNAME],
        "",
        Expect::Fail,
    );
    w.run("login --help", &["login", "--help"], "", Expect::Ok);
    w.run(
        "login, empty stdin",
        &["login", "-u", USERNAME, "--password-stdin"],
        "",
        Expect::Fail,
    );

    // Token refresh: the cached token is stale, `token` logs in with the stored password.
    login_with_a_stale_token(w);
    let before = w.hub.count(LOGIN);
    let out = w.exec("token, refresh", &["token"], "", &[], &[], Expect::Ok);
    assert_eq!(w.hub.count(LOGIN), before + 1, "token refreshed");
    assert_eq!(stdout(&out), format!("{}\n", w.latest_jwt()));
    w.run_answer(
        "token, cached after refresh",
        &["token"],
        "",
        &format!("{}\n", w.latest_jwt()),
    );

    // Refresh failures.
    login_with_a_stale_token(w);
    w.run_with(
        "token, Hub down",
        &["token"],
        "",
        &[
            ("DOCKER_HUB_API_URL", HUB_DOWN),
            ("DOCKER_CREDENTIAL_HUB_TIMEOUT", "1"),
        ],
        Expect::Fail,
    );
    w.hub.set_password(&c.wrong);
    w.run(
        "token, Hub rejects the stored password",
        &["token"],
        "",
        Expect::Fail,
    );
    w.hub.set_password(&c.password);

    // Two-factor authentication.
    w.hub.enable_two_factor();
    login_otp(w, "login, 2FA with a code", &c.password, &c.otp, Expect::Ok);
    assert!(w.hub.count(TWO_FA_LOGIN) >= 1);
    login_otp(
        w,
        "login, 2FA with a wrong code",
        &c.password,
        &c.wrong_otp,
        Expect::Fail,
    );
    login(
        w,
        "login, 2FA without a code and no terminal",
        &c.password,
        &[],
        Expect::Fail,
    );
    w.run(
        "store, Hub key, 2FA and no terminal",
        &["store"],
        store_request(HUB_KEY, USERNAME, &c.password),
        Expect::Ok,
    );
    w.hub.set_token_lifetime(-10);
    login_otp(
        w,
        "login, 2FA with a code (token expires)",
        &c.password,
        &c.otp,
        Expect::Ok,
    );
    w.hub.set_token_lifetime(3600);
    w.run(
        "token, 2FA refresh and no terminal",
        &["token"],
        "",
        Expect::Fail,
    );
    w.hub.disable_two_factor();

    // docker's web login: its access token answers `token`, and `logout` revokes its
    // refresh token (once at the mock, once at a login service that is down).
    for (path, oauth) in [
        ("logout, web login revoked", w.hub.url()),
        ("logout, web login, revoke fails", HUB_DOWN.to_string()),
    ] {
        let access = web_login(w);
        w.run_answer("token, web login", &["token"], "", &format!("{access}\n"));
        w.run_with(
            path,
            &["logout"],
            "",
            &[("DOCKER_HUB_OAUTH_URL", &oauth)],
            Expect::Ok,
        );
    }
    assert_eq!(
        w.hub.revoked(),
        [(CLIENT_ID.to_string(), c.refresh.clone())],
        "one revoke reached the mock"
    );
    assert!(w.hub.count(REVOKE) == 1);

    login(
        w,
        "login, password (before logout)",
        &c.password,
        &[],
        Expect::Ok,
    );
    w.run("logout", &["logout"], "", Expect::Ok);
    w.run("logout, nothing to remove", &["logout"], "", Expect::Ok);
    w.run("token, not logged in", &["token"], "", Expect::Fail);
}

/// What `docker login`'s web login stores through the helper (docker/cli
/// `internal/oauth/manager/manager.go`), with the world's canaries; returns the access token.
fn web_login(w: &World) -> String {
    let n = w.made.borrow().len() as u64;
    let mut claims = serde_json::Map::new();
    claims.insert("canary".into(), w.c.claim.clone().into());
    let access = make_jwt_with(now() + 3600, USERNAME, 900 + n, &claims, &w.c.signature);
    w.made.borrow_mut().push(access.clone());
    let refresh = format!("{}..{CLIENT_ID}", w.c.refresh);
    for (key, secret) in [
        ("https://index.docker.io/v1/access-token", access.as_str()),
        ("https://index.docker.io/v1/refresh-token", refresh.as_str()),
        (HUB_KEY, w.c.password.as_str()),
    ] {
        w.run(
            "store, web login",
            &["store"],
            store_request(key, USERNAME, secret),
            Expect::Ok,
        );
    }
    access
}

fn configure_paths(w: &World) -> usize {
    let c = &w.c;
    let config = w.env.docker_config_dir().join("config.json");

    // An old helper that lists a credential, then answers `get` with a broken credential
    // that holds its secret: configure must fail without quoting it.
    script(
        w.tools.path(),
        "docker-credential-broken",
        &format!(
            r#"case "$1" in
  list) printf '{{"broken.example.com":"olduser"}}' ;;
  get) printf '{{"ServerURL":"broken.example.com","Username":"olduser","Secret":"{}"' ;;
  *) exit 1 ;;
esac"#,
            c.old_helper
        ),
    );
    std::fs::write(&config, r#"{"credsStore": "broken"}"#).unwrap();
    w.run(
        "configure, dry run, old helper",
        &["configure", "--dry-run"],
        "",
        Expect::Any,
    );
    w.run(
        "configure, the old helper answers garbage",
        &["configure"],
        "",
        Expect::Fail,
    );

    // Plaintext credentials in config.json: migration, dry run, undo.
    let auth = STANDARD.encode(format!("plainuser:{}", c.plain_auth));
    std::fs::write(
        &config,
        format!(
            r#"{{
	"auths": {{
		"plain.example.com": {{"auth": "{auth}"}},
		"reg.example.com:5000": {{"username": "reguser", "password": "{}"}},
		"idtoken.example.com": {{"identitytoken": "{}"}}
	}},
	"psFormat": "table"
}}"#,
            c.plain_password, c.plain_idtoken
        ),
    )
    .unwrap();
    w.run(
        "configure --dry-run, plaintext auths",
        &["configure", "--dry-run"],
        "",
        Expect::Ok,
    );
    w.run(
        "configure, plaintext auths (migration)",
        &["configure"],
        "",
        Expect::Ok,
    );
    w.run_answer(
        "get, migrated from config.json",
        &["get"],
        "plain.example.com",
        &get_answer("plain.example.com", "plainuser", &c.plain_auth),
    );
    w.capture_files("after configure");
    let mut modes = w.check_modes("after configure");
    for suffix in [".bak", ".hub-previous"] {
        let file = w
            .env
            .docker_config_dir()
            .join(format!("config.json{suffix}"));
        assert!(file.exists(), "configure wrote {}", file.display());
    }
    w.run(
        "configure, already configured",
        &["configure"],
        "",
        Expect::Ok,
    );
    w.run(
        "configure --undo --dry-run",
        &["configure", "--undo", "--dry-run"],
        "",
        Expect::Ok,
    );
    w.run("configure --undo", &["configure", "--undo"], "", Expect::Ok);
    w.run(
        "configure --undo, nothing to undo",
        &["configure", "--undo"],
        "",
        Expect::Ok,
    );
    w.run("configure --help", &["configure", "--help"], "", Expect::Ok);

    // A DOCKER_CONFIG that does not exist yet: configure creates it private.
    let fresh = w.env.home().join("fresh-docker");
    let fresh_str = fresh.display().to_string();
    let out = w.exec(
        "configure, new DOCKER_CONFIG",
        &["configure"],
        "",
        &[("DOCKER_CONFIG", &fresh_str)],
        &[],
        Expect::Ok,
    );
    w.capture("configure, new DOCKER_CONFIG: stdout".into(), &out.stdout);
    assert_eq!(file_mode(&fresh), 0o700, "{}", fresh.display());
    assert_eq!(file_mode(&fresh.join("config.json")) & 0o077, 0);
    modes += 2;
    modes
}

fn doctor_paths(w: &World) {
    login(
        w,
        "login, password (for doctor)",
        &w.c.password,
        &[],
        Expect::Ok,
    );
    w.run("doctor", &["doctor"], "", Expect::Any);
    let heads = w.hub.count(MANIFEST);
    let out = w.run(
        "doctor --network",
        &["doctor", "--network"],
        "",
        Expect::Any,
    );
    let text = stdout(&out);
    assert!(
        text.contains("cached Hub JWT for"),
        "doctor looked at the cached JWT: {}",
        describe(&out)
    );
    assert!(
        text.contains("ok   pull quota: ") && w.hub.count(MANIFEST) == heads + 1,
        "doctor read the pull quota with the stored password: {}",
        describe(&out)
    );
    w.run_with(
        "doctor --network, quota services down",
        &["doctor", "--network"],
        "",
        &[
            ("DOCKER_HUB_AUTH_URL", HUB_DOWN),
            ("DOCKER_CREDENTIAL_HUB_TIMEOUT", "1"),
        ],
        Expect::Any,
    );
    w.hub.set_password(&w.c.wrong);
    w.run(
        "doctor --network, stored password refused",
        &["doctor", "--network"],
        "",
        Expect::Any,
    );
    w.hub.set_password(&w.c.password);
    let auth = STANDARD.encode(format!("{USERNAME}:{}", w.c.auth_config));
    for (path, value) in [
        (
            "doctor, DOCKER_AUTH_CONFIG",
            format!(r#"{{"auths":{{"{HUB_KEY}":{{"auth":"{auth}"}}}}}}"#),
        ),
        (
            "doctor, DOCKER_AUTH_CONFIG malformed",
            format!(r#"{{"auths":{{"{HUB_KEY}":{{"auth":"{auth}"#),
        ),
    ] {
        let out = w.run_with(
            path,
            &["doctor"],
            "",
            &[("DOCKER_AUTH_CONFIG", &value)],
            Expect::Any,
        );
        assert!(
            stdout(&out).contains("warn DOCKER_AUTH_CONFIG is set"),
            "{path}: {}",
            describe(&out)
        );
    }
    w.run("doctor --help", &["doctor", "--help"], "", Expect::Ok);
}

/// No command takes a secret in argv: each refuses, and never repeats it.
fn argv_paths(w: &World) -> usize {
    let x = w.c.argv.as_str();
    let requests = w.hub.requests().len();
    let inline = format!("--password={x}");
    let cases: Vec<Vec<&str>> = vec![
        vec!["login", "--username", USERNAME, "--password", x],
        vec!["login", "--username", USERNAME, &inline],
        vec!["login", "-u", USERNAME, "-p", x],
        vec!["login", "-u", USERNAME, x],
        vec!["login", x],
        vec!["login", "--password-stdin", x],
        vec!["store", x],
        vec!["get", x],
        vec!["erase", x],
        vec!["list", x],
        vec!["token", x],
        vec!["logout", x],
        vec!["configure", x],
        vec!["doctor", x],
        vec![x],
    ];
    for args in &cases {
        let path = format!("argv: {}", args.join(" ").replace(x, "<secret>"));
        // Stdin holds a usable request, so only the argument can be what is refused.
        let stdin = if args[0] == "store" {
            store_request("https://argv.example", "u", &w.c.other)
        } else if args[0] == "login" {
            format!("{}\n", w.c.password).into_bytes()
        } else {
            b"https://argv.example".to_vec()
        };
        w.run(&path, args, stdin, Expect::Fail);
    }
    assert_eq!(
        w.hub.requests().len(),
        requests,
        "a refused command contacted Hub"
    );
    let out = w.run("list", &["list"], "", Expect::Ok);
    assert!(
        !stdout(&out).contains("argv.example"),
        "a refused store stored something"
    );
    cases.len()
}

// ---------------------------------------------------------------------------------------

fn exercise(env: &dyn TestEnv, debug: bool) {
    let w = World::new(env, debug);
    let label = if debug { "debug" } else { "normal" };
    protocol_paths(&w);
    hub_paths(&w);
    let mut modes = configure_paths(&w);
    doctor_paths(&w);
    let argv_cases = argv_paths(&w);

    // Without XDG_RUNTIME_DIR the lock goes under ~/.cache, private too.
    let out = w.exec(
        "login, no XDG_RUNTIME_DIR",
        &["login", "--username", USERNAME, "--password-stdin"],
        format!("{}\n", w.c.password),
        &[],
        &["XDG_RUNTIME_DIR"],
        Expect::Ok,
    );
    w.capture("login, no XDG_RUNTIME_DIR: stdout".into(), &out.stdout);
    let cache_dir = w.env.home().join(".cache/docker-credential-hub");
    assert_eq!(file_mode(&cache_dir), 0o700, "{}", cache_dir.display());
    for file in files_under(&cache_dir) {
        assert_eq!(file_mode(&file) & 0o077, 0, "{}", file.display());
        modes += 1;
    }

    w.capture_files("at the end");
    modes += w.check_modes("at the end");

    let trace_lines: usize = w
        .captured
        .borrow()
        .iter()
        .map(|c| {
            String::from_utf8_lossy(&c.bytes)
                .matches(DEBUG_MARK)
                .count()
        })
        .sum();
    if debug {
        assert!(
            trace_lines > 20,
            "the debug trace is on: {trace_lines} lines"
        );
    } else {
        assert_eq!(
            trace_lines, 0,
            "no trace without DOCKER_CREDENTIAL_HUB_DEBUG"
        );
    }

    let (leaks, outputs, needles) = w.scan();
    let paths = w.paths.borrow().len();
    let runs = *w.runs.borrow();
    let files = *w.files_scanned.borrow();
    assert!(
        leaks.is_empty(),
        "{} leak(s) in {label} mode:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
    report(
        &format!("hygiene-{}-{label}", env.backend()),
        &format!(
            "Secret hygiene, {label} mode on {}: {paths} command paths in {runs} runs ({argv_cases} argv-secret refusals), {outputs} outputs and files ({files} file snapshots) scanned for {needles} canary forms, {trace_lines} debug trace lines, {modes} file modes checked (umask 000): {} leaks",
            env.backend(),
            leaks.len()
        ),
    );
}

#[test]
fn no_canary_leaks_in_normal_mode() {
    if let Some(session) = KeyringSession::start() {
        exercise(&session, false);
    }
}

#[test]
fn no_canary_leaks_in_debug_mode() {
    if let Some(session) = KeyringSession::start() {
        exercise(&session, true);
    }
}

#[test]
fn no_canary_leaks_on_keyutils_in_debug_mode() {
    if let Some(env) = KeyutilsEnv::new() {
        exercise(&env, true);
    }
}
