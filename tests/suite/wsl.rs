//! `configure --wsl` and `doctor` inside WSL, simulated: `WSL_DISTRO_NAME` is set, and the
//! `docker-credential-hub.exe` on PATH is a small script that runs the real Windows binary
//! under Wine, as WSL interop runs a Windows program. The Linux binary configures docker;
//! the real docker CLI then logs in to a loopback registry through the Windows binary, the
//! credential is in Wine's Credential Manager, `docker logout` removes it, and
//! `configure --undo` puts config.json back. Without a working exe, configure refuses.

use std::process::Output;

use base64::Engine;

use crate::support::harness::{TestEnv, assert_get, assert_not_found, docker};
use crate::support::keyring::KeyutilsEnv;
use crate::support::output::{assert_one_line_failure, describe, stdout};
use crate::support::registry::FakeRegistry;
use crate::support::tools::require_tool;
use crate::support::wine::WineEnv;
use crate::support::{env, script};

const USER: &str = "wsl-user";
const PASSWORD: &str = "Wsl-Pa55word-3c9d";
const DISTRO: &str = "Ubuntu-Test";

/// The Linux side (its HOME and docker config) and a PATH directory for the exe.
struct Wsl {
    linux: KeyutilsEnv,
    bin: tempfile::TempDir,
}

impl Wsl {
    fn new() -> Option<Wsl> {
        Some(Wsl {
            linux: KeyutilsEnv::new()?,
            bin: tempfile::tempdir().unwrap(),
        })
    }

    fn config(&self) -> std::path::PathBuf {
        self.linux.docker_config_dir().join("config.json")
    }

    fn path(&self) -> String {
        env::path_with(&[self.bin.path()])
    }

    /// The Linux binary, as inside WSL.
    fn run(&self, args: &[&str]) -> Output {
        self.linux
            .cmd()
            .env("WSL_DISTRO_NAME", DISTRO)
            .env("PATH", self.path())
            .args(args)
            .output()
            .expect("run docker-credential-hub")
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.config()).unwrap()).unwrap()
    }
}

#[test]
fn configure_wsl_moves_credentials_into_the_windows_store_and_docker_uses_it() {
    if !require_tool("docker") {
        return;
    }
    let (Some(wsl), Some(win)) = (Wsl::new(), WineEnv::new()) else {
        return;
    };
    win.wrapper_script(wsl.bin.path(), "docker-credential-hub.exe");
    let old_auth = base64::engine::general_purpose::STANDARD.encode("old-user:old-plaintext-pass");
    std::fs::write(
        wsl.config(),
        format!(r#"{{"auths":{{"old.example:5000":{{"auth":"{old_auth}"}}}}}}"#),
    )
    .unwrap();

    // 1. configure --wsl: the plaintext credential moves into the Windows store.
    let out = wsl.run(&["configure", "--wsl"]);
    assert!(out.status.success(), "{}", describe(&out));
    let said = stdout(&out);
    assert!(
        said.contains("moved old.example:5000 (username old-user)")
            && said.contains("\"credsStore\": \"hub.exe\""),
        "{said}"
    );
    let config = wsl.config_json();
    assert_eq!(config["credsStore"], "hub.exe");
    assert_eq!(config["auths"]["old.example:5000"], serde_json::json!({}));
    assert_get(&win, "old.example:5000", "old-user", "old-plaintext-pass");

    // 2. The real docker CLI logs in through docker-credential-hub.exe.
    let registry = FakeRegistry::start(USER, PASSWORD);
    let addr = registry.addr();
    let bin = wsl.bin.path().display().to_string();
    let extra = [("PATH", bin.as_str()), ("WSL_DISTRO_NAME", DISTRO)];
    let out = docker(
        &wsl.linux,
        &extra,
        &["login", &addr, "-u", USER, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "docker login: {}", describe(&out));
    assert!(
        registry
            .requests()
            .iter()
            .any(|r| r.path == "/v2/" && r.authorized),
        "docker never authenticated: {:?}",
        registry.requests()
    );
    assert!(
        !std::fs::read_to_string(wsl.config())
            .unwrap()
            .contains(PASSWORD)
    );

    // 3. The credential is in Wine's Credential Manager.
    assert_get(&win, &addr, USER, PASSWORD);
    let target = format!("docker-credential-hub|{}|{addr}", win.service);
    assert!(
        win.credentials()
            .iter()
            .any(|c| c.target == target && c.username == USER),
        "{:?}",
        win.credentials()
    );
    let out = wsl.run(&["doctor"]);
    let said = stdout(&out);
    assert!(
        said.contains(&format!(
            "ok   WSL ({DISTRO}): docker uses the Windows store through docker-credential-hub.exe"
        )),
        "{said}"
    );

    // 4. docker logout removes it.
    let out = docker(&wsl.linux, &extra, &["logout", &addr], "");
    assert!(out.status.success(), "docker logout: {}", describe(&out));
    assert_not_found(&win, &addr);
    assert!(!win.credentials().iter().any(|c| c.target == target));

    // configure --undo puts back what was there: no credsStore.
    let out = wsl.run(&["configure", "--undo"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(wsl.config_json().get("credsStore"), None);
    // It says where the credentials stay: in the Windows store, read by the Windows binary.
    assert!(
        stdout(&out).contains("docker-credential-hub.exe list"),
        "{}",
        describe(&out)
    );
}

#[test]
fn configure_wsl_refuses_without_a_working_windows_binary() {
    let Some(wsl) = Wsl::new() else {
        return;
    };
    let before = r#"{"auths":{"x.example":{"auth":"eDp5"}}}"#;
    std::fs::write(wsl.config(), before).unwrap();
    let unchanged = |wsl: &Wsl| {
        assert_eq!(std::fs::read_to_string(wsl.config()).unwrap(), before);
    };

    let out = wsl.run(&["configure", "--wsl"]);
    let line = assert_one_line_failure(&out);
    assert!(
        line.contains("docker-credential-hub.exe is not on PATH")
            && line.contains("Windows PATH")
            && line.contains("was not changed"),
        "{line}"
    );
    unchanged(&wsl);

    // Something else by that name: it must answer `version` as this helper does.
    script(
        wsl.bin.path(),
        "docker-credential-hub.exe",
        "echo 'some other program'",
    );
    let out = wsl.run(&["configure", "--wsl"]);
    let line = assert_one_line_failure(&out);
    assert!(
        line.contains("does not answer `version`") && line.contains("was not changed"),
        "{line}"
    );
    unchanged(&wsl);
}

#[test]
fn doctor_in_wsl_says_how_to_share_the_windows_store() {
    let Some(wsl) = Wsl::new() else {
        return;
    };
    std::fs::write(wsl.config(), r#"{"credsStore":"hub"}"#).unwrap();
    let out = wsl.run(&["doctor"]);
    let said = stdout(&out);
    let line = said
        .lines()
        .find(|l| l.contains("WSL ("))
        .unwrap_or_else(|| panic!("no WSL line: {said}"));
    assert!(
        line.starts_with(&format!(
            "info WSL ({DISTRO}): docker uses this Linux binary's keychain"
        )) && line.ends_with("run `docker-credential-hub configure --wsl`"),
        "{line}"
    );
    // Outside WSL, no such line.
    let out = wsl.linux.cmd().arg("doctor").output().expect("run doctor");
    assert!(!stdout(&out).contains("WSL ("));
}

/// Credentials this helper kept on the Linux side (`"credsStore": "hub"`) move into the
/// Windows store as plain `configure` moves a previous store's, and `--undo` puts "hub" back.
#[test]
fn configure_wsl_moves_what_the_linux_helper_kept() {
    let (Some(wsl), Some(win)) = (Wsl::new(), WineEnv::new()) else {
        return;
    };
    win.wrapper_script(wsl.bin.path(), "docker-credential-hub.exe");
    // docker-credential-hub on PATH is this binary, as `./install.sh` leaves it.
    std::os::unix::fs::symlink(
        crate::support::tools::helper_bin(),
        wsl.bin.path().join("docker-credential-hub"),
    )
    .unwrap();
    let (url, user, secret) = ("linux.example:5000", "linux-user", "linux-secret-7f2c");
    crate::support::harness::store_ok(&wsl.linux, url, user, secret);
    std::fs::write(wsl.config(), r#"{"credsStore":"hub"}"#).unwrap();

    let out = wsl.run(&["configure", "--wsl"]);
    assert!(out.status.success(), "{}", describe(&out));
    let said = stdout(&out);
    assert!(
        said.contains(&format!("moved {url} (username {user})")) && !said.contains(secret),
        "{said}"
    );
    assert_eq!(wsl.config_json()["credsStore"], "hub.exe");
    assert_get(&win, url, user, secret);

    let out = wsl.run(&["configure", "--undo"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(wsl.config_json()["credsStore"], "hub");
}
