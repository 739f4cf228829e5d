//! `doctor`: the checklist's lines and exit status on real setups: a healthy Secret
//! Service, no D-Bus at all (the keyutils fallback), a wrong credsStore, a locked
//! collection, and the binary docker would run.

use std::path::PathBuf;
use std::process::Output;

use crate::support::env::{self, helper_dir};
use crate::support::harness::{TestEnv, list_map};
use crate::support::keyring::{KeyringSession, KeyutilsEnv};
use crate::support::mock_hub::{MockHub, PASSWORD, USERNAME};
use crate::support::output::{describe, stderr, stdout};
use crate::support::script;
use crate::support::tools::{helper_bin, on_path, require_tool};

fn write_config(env: &dyn TestEnv, text: &str) -> PathBuf {
    let path = env.docker_config_dir().join("config.json");
    std::fs::write(&path, text).unwrap();
    path
}

/// `doctor` with the built binary first on PATH, as after `./install.sh`.
fn doctor(env: &dyn TestEnv, args: &[&str]) -> Output {
    env.installed_cmd()
        .arg("doctor")
        .args(args)
        .output()
        .expect("run doctor")
}

fn lines(out: &Output) -> Vec<String> {
    stdout(out).lines().map(str::to_string).collect()
}

/// The one line that starts with `prefix`.
fn line<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    let found: Vec<&String> = lines.iter().filter(|l| l.starts_with(prefix)).collect();
    assert_eq!(
        found.len(),
        1,
        "want one line starting {prefix:?} in:\n{}",
        lines.join("\n")
    );
    found[0]
}

#[test]
fn a_healthy_secret_service_setup_passes() {
    let Some(env) = KeyringSession::start() else {
        return;
    };
    let path = write_config(&env, r#"{"credsStore": "hub"}"#);
    // podman and skopeo wired by the user's own drop-in, which doctor accepts as ours.
    let drop_ins = env.home().join(".config/containers/registries.conf.d");
    std::fs::create_dir_all(&drop_ins).unwrap();
    std::fs::write(
        drop_ins.join("10-mine.conf"),
        "credential-helpers = [\"hub\"]\n",
    )
    .unwrap();
    let out = doctor(&env, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let l = lines(&out);
    let me = std::fs::canonicalize(helper_bin()).unwrap();
    assert_eq!(
        line(&l, "ok   docker runs "),
        format!(
            "ok   docker runs {} (docker-credential-hub v{}), this binary",
            helper_dir().join("docker-credential-hub").display(),
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(me.exists());
    assert_eq!(
        line(&l, "ok   config "),
        format!(
            "ok   config {}: \"credsStore\": \"hub\", docker uses this helper",
            path.display()
        )
    );
    line(&l, "ok   credHelpers: none");
    if on_path("podman") {
        assert!(line(&l, "ok   podman/skopeo: ").ends_with("10-mine.conf names this helper"));
    }
    assert!(
        line(&l, "ok   keychain: ").starts_with("ok   keychain: Secret Service ("),
        "{l:?}"
    );
    assert!(line(&l, "ok   probe: ").contains("wrote, read back and deleted a test entry in"));
    line(&l, "info cached Hub JWT: none");
    assert_eq!(
        l.last().unwrap(),
        "docker-credential-hub doctor: everything works",
        "{l:#?}"
    );
    assert!(
        !l.iter()
            .any(|x| x.starts_with("FAIL") || x.starts_with("warn")),
        "{l:?}"
    );

    // The probe cleaned up after itself.
    assert_eq!(list_map(&env), Default::default());
    if require_tool("secret-tool") {
        let found = env
            .tool("secret-tool")
            .args([
                "search",
                "--all",
                "service",
                "docker-credential-hub:internal",
            ])
            .output()
            .unwrap();
        let text = stdout(&found) + &stderr(&found);
        assert!(
            !text.contains("doctor-probe"),
            "probe entry left behind: {text}"
        );
    }
}

#[test]
fn no_dbus_at_all_warns_that_keyutils_forgets_at_reboot_and_says_the_fix() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    write_config(&env, r#"{"credsStore": "hub"}"#);
    // auto, no DBUS_SESSION_BUS_ADDRESS and no $XDG_RUNTIME_DIR/bus: the fallback path.
    let mut cmd = env.installed_cmd();
    cmd.arg("doctor")
        .env_remove("DOCKER_CREDENTIAL_HUB_BACKEND")
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "warnings only: {}",
        describe(&out)
    );
    let l = lines(&out);
    let kc = line(&l, "warn keychain: ");
    assert!(
        kc.starts_with("warn keychain: kernel keyutils (auto: no D-Bus session bus"),
        "{kc}"
    );
    assert!(
        kc.contains("credentials will not survive a reboot — fix: "),
        "{kc}"
    );
    assert!(
        kc.contains(
            "`export DBUS_SESSION_BUS_ADDRESS=$(dbus-daemon --session --fork --print-address=1)`"
        ),
        "{kc}"
    );
    assert!(
        kc.contains("`gnome-keyring-daemon --unlock --components=secrets --daemonize`"),
        "{kc}"
    );
    assert!(
        kc.contains(
            "`pass init <your GPG key id>`, then `docker-credential-hub configure --backend pass`"
        ),
        "{kc}"
    );
    assert!(line(&l, "ok   probe: ").contains("wrote, read back and deleted"));
    assert_eq!(
        l.last().unwrap(),
        "docker-credential-hub doctor: everything works (see the warnings above)"
    );

    // A stale bus address left over from another session gets its own diagnosis.
    let mut cmd = env.installed_cmd();
    cmd.arg("doctor")
        .env_remove("DOCKER_CREDENTIAL_HUB_BACKEND")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/dch-bus");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let l = lines(&out);
    let kc = line(&l, "warn keychain: ");
    assert!(
        kc.contains("DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/dch-bus does not answer"),
        "{kc}"
    );
}

#[test]
fn a_wrong_creds_store_fails_and_says_how_to_fix_it() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let path = write_config(&env, r#"{"credsStore": "secretservice"}"#);
    let out = doctor(&env, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let l = lines(&out);
    assert_eq!(
        line(&l, "FAIL config "),
        format!(
            "FAIL config {}: \"credsStore\" is \"secretservice\", so docker uses docker-credential-secretservice, not this helper — fix: run `docker-credential-hub configure`",
            path.display()
        )
    );
    assert_eq!(
        l.last().unwrap(),
        "docker-credential-hub doctor: 1 check(s) failed"
    );

    // No config at all is the same failure with the same fix.
    std::fs::remove_file(&path).unwrap();
    let out = doctor(&env, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        line(&lines(&out), "FAIL config ").ends_with("does not exist, so docker does not use this helper — fix: run `docker-credential-hub configure`"),
        "{}",
        describe(&out)
    );

    // Fixed: everything passes.
    write_config(&env, r#"{"credsStore": "hub"}"#);
    let out = doctor(&env, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

#[test]
fn cred_helpers_and_leftover_plaintext_are_reported() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let helpers = tempfile::tempdir().unwrap();
    script(helpers.path(), "docker-credential-present", "exit 0");
    write_config(
        &env,
        r#"{"credsStore":"hub","credHelpers":{"gcr.io":"present","x.example.com":"nope-missing","mine.example.com":"hub"},"auths":{"a.example.com":{"auth":"dTpMZWZ0b3Zlci1TZWNyZXQ="}}}"#,
    );
    let mut cmd = env.cmd();
    cmd.arg("doctor")
        .env("PATH", env::path_with(&[&helper_dir(), helpers.path()]));
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let l = lines(&out);
    line(
        &l,
        "info credHelpers: gcr.io uses docker-credential-present, not this helper",
    );
    line(
        &l,
        "warn credHelpers: x.example.com uses docker-credential-nope-missing, which is not on PATH",
    );
    line(&l, "ok   credHelpers: mine.example.com uses this helper");
    line(
        &l,
        "warn config.json holds plaintext credentials for a.example.com — fix: run `docker-credential-hub configure`",
    );
    let all = stdout(&out);
    assert!(!all.contains("Leftover-Secret") && !all.contains("dTpMZWZ0b3Zlci1TZWNyZXQ="));
}

#[test]
fn the_binary_docker_runs_must_be_on_path_and_this_one() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    write_config(&env, r#"{"credsStore": "hub"}"#);
    // Not on PATH at all.
    let out = env.cmd().arg("doctor").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let l = lines(&out);
    assert!(
        line(&l, "FAIL docker-credential-hub is not on PATH").contains(&format!(
            "fix: add {} to PATH",
            std::fs::canonicalize(helper_dir()).unwrap().display()
        )),
        "{l:?}"
    );

    // Another, older docker-credential-hub first on PATH.
    let other = tempfile::tempdir().unwrap();
    script(
        other.path(),
        "docker-credential-hub",
        "echo 'docker-credential-hub v0.0.1'",
    );
    let mut cmd = env.cmd();
    cmd.arg("doctor")
        .env("PATH", env::path_with(&[other.path()]));
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let l = lines(&out);
    let found = line(&l, "FAIL docker runs ");
    assert!(
        found.contains("(docker-credential-hub v0.0.1), not this binary")
            && found.contains("put ")
            && found.contains("first on PATH"),
        "{found}"
    );
}

#[test]
fn a_locked_collection_fails_the_probe_with_cause_and_fix() {
    if !require_tool("dbus-send") {
        return;
    }
    let Some(env) = KeyringSession::start() else {
        return;
    };
    write_config(&env, r#"{"credsStore": "hub"}"#);
    env.lock_collection();
    let mut cmd = env.installed_cmd();
    cmd.arg("doctor").env("DOCKER_CREDENTIAL_HUB_TIMEOUT", "10");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let l = lines(&out);
    let probe = line(&l, "FAIL probe: ");
    assert!(probe.contains("locked"), "{probe}");
    assert!(
        probe.contains("gnome-keyring-daemon --replace --unlock"),
        "{probe}"
    );
}

/// Log in to the mock Hub so a JWT is cached, as `docker-credential-hub login` does.
fn login(env: &dyn TestEnv, hub: &MockHub) {
    let out = env
        .cmd()
        .args(["login", "--username", USERNAME, "--password-stdin"])
        .env("DOCKER_HUB_API_URL", hub.url())
        .write_stdin(format!("{PASSWORD}\n"))
        .output()
        .unwrap();
    assert!(out.status.success(), "login: {}", describe(&out));
}

fn doctor_with_hub(env: &dyn TestEnv, hub_url: &str, args: &[&str]) -> Output {
    let mut cmd = env.installed_cmd();
    cmd.arg("doctor")
        .args(args)
        .env("DOCKER_HUB_API_URL", hub_url)
        .env("DOCKER_CREDENTIAL_HUB_TIMEOUT", "10");
    cmd.output().expect("run doctor")
}

#[test]
fn the_cached_hub_jwt_shows_its_expiry_never_itself() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    write_config(&env, r#"{"credsStore": "hub"}"#);
    let hub = MockHub::start();
    login(&env, &hub);
    let jwt = hub.last_issued();
    let out = doctor_with_hub(&env, &hub.url(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let l = lines(&out);
    let cached = line(&l, "ok   cached Hub JWT");
    assert!(
        cached.starts_with(&format!("ok   cached Hub JWT for {USERNAME}: valid until "))
            && cached.contains(" UTC (in "),
        "{cached}"
    );
    let all = stdout(&out) + &stderr(&out);
    assert!(!all.contains(&jwt), "the JWT was printed");
    assert!(
        !all.contains(jwt.split('.').nth(1).unwrap()),
        "the JWT payload was printed"
    );
    assert_eq!(
        hub.count(crate::support::mock_hub::LOGIN),
        1,
        "doctor must not log in"
    );

    // An expired one says so, and that `token` refreshes it.
    hub.set_token_lifetime(-120);
    login(&env, &hub);
    let out = doctor_with_hub(&env, &hub.url(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let l = lines(&out);
    assert!(
        line(&l, "info cached Hub JWT: expired at ")
            .ends_with("UTC; the next `docker-credential-hub token` logs in again"),
        "{l:?}"
    );
}

#[test]
fn network_check_reports_whether_the_hub_api_answers() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    write_config(&env, r#"{"credsStore": "hub"}"#);
    let hub = MockHub::start();
    let out = doctor_with_hub(&env, &hub.url(), &["--network"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let l = lines(&out);
    assert!(
        line(&l, "ok   Docker Hub API ")
            .starts_with(&format!("ok   Docker Hub API {} answers: HTTP ", hub.url())),
        "{l:?}"
    );
    assert!(
        hub.requests().iter().any(|r| r.path == "/v2/"),
        "{:?}",
        hub.requests()
    );

    // Nothing listens on the discard port: the check fails with the fix.
    let out = doctor_with_hub(&env, "http://127.0.0.1:9", &["--network"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let l = lines(&out);
    let fail = line(&l, "FAIL Docker Hub API: ");
    assert!(fail.contains("127.0.0.1:9"), "{fail}");
    assert!(fail.contains("fix: check the network connection"), "{fail}");
    // Without --network, Hub is never contacted.
    let before = hub.requests().len();
    let out = doctor_with_hub(&env, &hub.url(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(hub.requests().len(), before);
    assert!(!stdout(&out).contains("Docker Hub API"));
}
