//! A credential helper that cannot be turned against its user: planted symlinks, someone
//! else's files, untrusted lock directories, hostile Hub answers, clear-text URLs, closed
//! standard descriptors, and the process itself (non-dumpable, position-independent).
//!
//! Tests that need a second uid use the numeric uid 4242, which has no account
//! (`support/other_user.rs`): files are given to it with chown (the suite runs as root in
//! CI) and removed with their temp dirs. `trust.rs` runs the helper as root on that user's
//! HOME, as `sudo -E` does.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::elf;
use crate::support::env::{self, helper_dir};
use crate::support::files_under;
use crate::support::harness::{TestEnv, list_map, store_ok, store_request};
use crate::support::hub_fixture::{Fixture, HUB_KEY};
use crate::support::keyring::{KeyringSession, KeyutilsEnv};
use crate::support::mock_hub::{LOGIN, PASSWORD, Reply, USERNAME};
use crate::support::other_user::{
    OTHER_UID, assert_names_the_owner, chown, is_root, need_root, run_as_other_user,
};
use crate::support::output::{
    assert_one_line_error, assert_one_line_failure, describe, stderr, stdout,
};
use crate::support::tools::{helper_bin, require_tool, skip};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// `configure` in `env`, with this binary on PATH.
fn configure(env: &dyn TestEnv, args: &[&str]) -> Output {
    env.installed_cmd()
        .arg("configure")
        .args(args)
        .output()
        .unwrap()
}

// --------------------------------------------------------------------------------- files

/// Links planted at config.json.bak and config.json.hub-previous (a root `configure` would
/// have created /etc/ld.so.preload through one) are replaced, never followed: their targets
/// keep their bytes, mode and owner.
#[test]
fn configure_replaces_planted_symlinks_and_never_writes_through_them() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let dir = env.docker_config_dir();
    let plain = "aGFyZGVuOmhhcmRlbi1zZWNyZXQtMTExMQ=="; // harden:harden-secret-1111
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths": {{"harden.example": {{"auth": "{plain}"}}}}}}"#),
    )
    .unwrap();
    let victims = tempfile::tempdir().unwrap();
    let mut planted = Vec::new();
    for name in ["config.json.bak", "config.json.hub-previous"] {
        let victim = victims.path().join(format!("victim-of-{name}"));
        std::fs::write(&victim, b"precious bytes").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        if is_root() {
            chown(&victim, OTHER_UID);
        }
        std::os::unix::fs::symlink(&victim, dir.join(name)).unwrap();
        planted.push((dir.join(name), victim));
    }
    let out = configure(&env, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        list_map(&env).get("harden.example").map(String::as_str),
        Some("harden")
    );
    for (link, victim) in planted {
        assert_eq!(
            std::fs::read(&victim).unwrap(),
            b"precious bytes",
            "{}",
            victim.display()
        );
        assert_eq!(mode(&victim), 0o644);
        if is_root() {
            assert_eq!(std::fs::metadata(&victim).unwrap().uid(), OTHER_UID);
        }
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert!(
            meta.file_type().is_file(),
            "{} is still a link",
            link.display()
        );
        assert_eq!(mode(&link), 0o600);
        let text = std::fs::read_to_string(&link).unwrap();
        assert!(!text.contains(plain), "{}: {text}", link.display());
    }
}

/// `sudo docker-credential-hub configure` with HOME kept: config.json belongs to someone
/// else, and nothing of root's may end up in a file they can read. Refused, naming the owner;
/// nothing changes. The same for a symlinked config.json whose target is theirs.
#[test]
fn configure_on_another_users_config_is_refused_and_changes_nothing() {
    if !need_root("the second-uid configure test") {
        return;
    }
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let dir = env.docker_config_dir();
    let config = dir.join("config.json");
    let original = br#"{"auths": {"theirs.example": {"auth": "dGhlaXJzOnRoZWlyLXNlY3JldA=="}}}"#;
    std::fs::write(&config, original).unwrap();
    chown(&config, OTHER_UID);
    let out = configure(&env, &[]);
    assert_names_the_owner(&assert_one_line_failure(&out), &config);
    assert_eq!(std::fs::read(&config).unwrap(), original);
    assert_eq!(std::fs::metadata(&config).unwrap().uid(), OTHER_UID);
    assert!(
        !dir.join("config.json.bak").exists() && !dir.join("config.json.hub-previous").exists()
    );
    assert!(list_map(&env).is_empty(), "credentials were moved");

    // config.json ours, but a link to their file.
    let theirs = tempfile::tempdir().unwrap();
    let target = theirs.path().join("docker.json");
    std::fs::rename(&config, &target).unwrap();
    std::os::unix::fs::symlink(&target, &config).unwrap();
    let out = configure(&env, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains(&format!("uid {OTHER_UID}")),
        "{}",
        describe(&out)
    );
    assert_eq!(std::fs::read(&target).unwrap(), original);
}

// -------------------------------------------------------------------------- lock files

fn lock_dir(env: &KeyutilsEnv) -> std::path::PathBuf {
    env.runtime_dir().join("docker-credential-hub")
}

/// A lock directory others can write to, or that is not ours, or a lock file that is a
/// link, is refused with one line naming the path and the fix.
#[test]
fn an_untrusted_lock_directory_is_refused_naming_the_path_and_the_fix() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    store_ok(&env, "https://first.example", "u", "s");
    let dir = lock_dir(&env);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = env
        .cmd()
        .arg("store")
        .write_stdin(store_request("https://second.example", "u", "lock-secret"))
        .output()
        .unwrap();
    let line = assert_one_line_error(&out);
    assert!(
        line.contains(&dir.display().to_string()) && line.contains("chmod 700"),
        "{line}"
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();

    if is_root() {
        chown(&dir, OTHER_UID);
        let out = env
            .cmd()
            .arg("store")
            .write_stdin(store_request("https://second.example", "u", "lock-secret"))
            .output()
            .unwrap();
        let line = assert_one_line_error(&out);
        assert!(line.contains(&format!("uid {OTHER_UID}")), "{line}");
        chown(&dir, 0);
    }

    // A lock file planted as a symlink is not followed.
    let lock = dir.join(format!(
        "keyutils-{}.lock",
        env.service().replace(['.', ':'], "_")
    ));
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("target");
    let _ = std::fs::remove_file(&lock);
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    let out = env
        .cmd()
        .arg("store")
        .write_stdin(store_request("https://second.example", "u", "lock-secret"))
        .output()
        .unwrap();
    let line = assert_one_line_error(&out);
    assert!(line.contains("cannot open the lock file"), "{line}");
    assert!(!target.exists());
    std::fs::remove_file(&lock).unwrap();
    store_ok(&env, "https://second.example", "u", "s");
}

/// A lock held too long is named in the error; it is not "the keychain did not answer".
/// On the Secret Service (whose calls can hang, and which the old watchdog covered) and on
/// keyutils.
#[test]
fn a_lock_timeout_names_the_lock() {
    let Some(ku) = KeyutilsEnv::new() else {
        return;
    };
    let Some(ss) = KeyringSession::start() else {
        return;
    };
    let ku_lock = lock_dir(&ku).join(format!("keyutils-{}.lock", ku.service()));
    let ss_lock = ss
        .runtime_dir()
        .join("docker-credential-hub")
        .join("secret-service-docker-credential-hub.lock");
    for (env, lock) in [
        (&ku as &dyn TestEnv, ku_lock),
        (&ss as &dyn TestEnv, ss_lock),
    ] {
        store_ok(env, "https://first.example", "u", "s");
        let held = std::fs::OpenOptions::new().write(true).open(&lock).unwrap();
        held.lock().unwrap();
        let start = Instant::now();
        let out = env
            .cmd()
            .env("DOCKER_CREDENTIAL_HUB_TIMEOUT", "1")
            .arg("store")
            .write_stdin(store_request("https://second.example", "u", "s"))
            .output()
            .unwrap();
        let line = assert_one_line_error(&out);
        assert!(start.elapsed() < Duration::from_secs(10));
        assert!(
            line.contains(&lock.display().to_string()),
            "{}: {line}",
            env.backend()
        );
        assert!(!line.contains("keychain did not answer"), "{line}");
        drop(held);
    }
}

// ------------------------------------------------------------------------------ network

/// An endless body is read no further than the cap: one line, memory far below 64 MiB, and
/// the command ends within the deadline.
#[test]
fn an_endless_hub_body_is_capped_while_it_streams() {
    if !Path::new("/usr/bin/time").exists() {
        skip("/usr/bin/time is not installed; install it with apt-get install -y time");
        return;
    }
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.always(LOGIN, Reply::Endless);
    let report = tempfile::NamedTempFile::new().unwrap();
    let start = Instant::now();
    let out = env::command("/usr/bin/time", &fx.vars())
        .arg("-o")
        .arg(report.path())
        .args(["-f", "%M"])
        .arg(helper_bin())
        .args(["login", "--username", USERNAME, "--password-stdin"])
        .env("DOCKER_CREDENTIAL_HUB_TIMEOUT", "20")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("{PASSWORD}\n").as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("larger than 1 MiB"), "{err}");
    let peak_kib: u64 = std::fs::read_to_string(report.path())
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

/// Hub's text is quoted only from `detail`/`message`, without control characters, cut short,
/// and with no form of the secret: raw, JSON-escaped, base64 of it or of `user:secret`.
#[test]
fn hub_error_text_carries_no_form_of_the_secret() {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let forms = [
        PASSWORD.to_string(),
        serde_json::to_string(PASSWORD)
            .unwrap()
            .trim_matches('"')
            .to_string(),
        STANDARD.encode(PASSWORD),
        STANDARD.encode(format!("{USERNAME}:{PASSWORD}")),
        URL_SAFE_NO_PAD.encode(format!("{USERNAME}:{PASSWORD}")),
    ];
    let detail = format!(
        "\x1b[31mno\x07 {} {}",
        forms.join(" and "),
        "padding ".repeat(60)
    );
    fx.hub.then(
        LOGIN,
        Reply::Unauthorized {
            detail,
            other: "other-field-text-never-quoted".into(),
        },
    );
    let out = fx.login(PASSWORD, &[], &[]);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    for f in &forms {
        assert!(!err.contains(f.as_str()), "{f} in {err}");
    }
    assert!(!err.chars().any(|c| c.is_control() && c != '\n'), "{err:?}");
    assert!(!err.contains("other-field-text-never-quoted"), "{err}");
    assert!(
        err.chars().count() < 400,
        "{} chars: {err}",
        err.chars().count()
    );
}

/// What `doctor` prints of a token's claims is sanitised the same way.
#[test]
fn doctor_sanitises_the_username_claim() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    fx.hub.set_claim_json(
        "https://hub.docker.com",
        serde_json::json!({"username": "evil\x1b]0;pwned\x07\nFAIL fake line"}),
    );
    let out = fx.login(PASSWORD, &[], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = fx.run(&["doctor"], "", &[]);
    let text = stdout(&out);
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
    assert!(!text.lines().any(|l| l.starts_with("FAIL fake")), "{text}");
    assert!(text.contains("for evil ]0;pwned FAIL fake line"), "{text}");
}

// ----------------------------------------------------------------------------- process

/// With fds 1 and 2 closed at start, no file the helper opens takes their place: a Hub
/// store with the debug trace writes nothing into its lock files or its record.
#[test]
fn closed_standard_descriptors_never_become_files() {
    let Some(fx) = Fixture::keyutils() else {
        return;
    };
    let mut cmd = env::helper_process(&fx.vars());
    cmd.arg("store")
        .env("DOCKER_CREDENTIAL_HUB_DEBUG", "1")
        .stdin(Stdio::piped());
    // SAFETY: close(2) is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(1);
            libc::close(2);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&store_request(HUB_KEY, USERNAME, PASSWORD))
            .unwrap();
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(fx.hub.count(LOGIN), 1, "the store did its Hub login");
    let runtime = env::get(&fx.vars(), "XDG_RUNTIME_DIR").unwrap().to_string();
    let files: Vec<_> = [
        fx.env.home(),
        Path::new(&runtime),
        fx.env.docker_config_dir(),
    ]
    .into_iter()
    .flat_map(files_under)
    .collect();
    assert!(
        files.iter().any(|f| f.to_string_lossy().ends_with(".lock")),
        "{files:?}"
    );
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let expected_empty = f.to_string_lossy().ends_with(".lock");
        assert!(
            !text.contains("docker-credential-hub") && (!expected_empty || bytes.is_empty()),
            "{} holds {text:?}",
            f.display()
        );
    }
}

/// The process is non-dumpable while it holds secrets: with PR_SET_DUMPABLE 0 the kernel
/// makes the files in /proc/<pid> root's even for another user's process, where they would
/// be theirs.
/// Each command is caught while it waits (for stdin, a hung old helper, or a silent Hub).
#[test]
fn commands_that_read_secrets_are_not_dumpable() {
    if !need_root("the dumpable check (it runs the helper as a second uid)")
        || !require_tool("keyctl")
    {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    let run = root.path().join("run");
    let bin = root.path().join("bin");
    for d in [&home, &run, &bin] {
        std::fs::create_dir(d).unwrap();
        chown(d, OTHER_UID);
    }
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // An old credsStore helper that never answers, for `configure` to wait on.
    let hung = bin.join("docker-credential-hung");
    std::fs::write(&hung, "#!/bin/sh\nsleep 30\n").unwrap();
    std::fs::set_permissions(&hung, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(home.join("config.json"), r#"{"credsStore": "hung"}"#).unwrap();
    chown(&home.join("config.json"), OTHER_UID);
    let cases: [(&[&str], &str); 7] = [
        (&["store"], "a protocol action"),
        (&["get"], "a protocol action"),
        (&["erase"], "a protocol action"),
        (&["login", "--username", "u", "--password-stdin"], "login"),
        (&["configure"], "configure"),
        (&["token"], "token"),
        // doctor opens the keychain and reads a probe back; it waits on the silent Hub.
        (&["doctor", "--network"], "doctor"),
    ];
    let helper_dir = helper_dir();
    // An "https Hub" that accepts connections and never answers: `token` waits on it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_hub = format!("https://{}", silent.local_addr().unwrap());
    for (args, what) in cases {
        // In a session keyring of its own (and so of the other uid): `keyctl session -`
        // joins one and then execs the helper, which keeps the pid.
        let mut cmd = env::command("keyctl", &env::base_vars(&home, &run));
        cmd.args(["session", "-"])
            .arg(helper_bin())
            .args(args)
            .env("DOCKER_CONFIG", &home)
            .env("PATH", env::path_with(&[&bin, &helper_dir]))
            .env("DOCKER_CREDENTIAL_HUB_BACKEND", "keyutils")
            .env(
                "DOCKER_CREDENTIAL_HUB_SERVICE",
                format!("dch-dump-{}", std::process::id()),
            )
            .env("DOCKER_HUB_API_URL", &silent_hub)
            .env("DOCKER_CREDENTIAL_HUB_TIMEOUT", "30")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        run_as_other_user(&mut cmd);
        if args == ["token"] {
            // `token` needs stored credentials to log in with (and so wait on the network).
            let mut store = env::command("keyctl", &[]);
            store
                .args(["session", "-"])
                .arg(helper_bin())
                .arg("store")
                .envs(
                    cmd.get_envs()
                        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
                )
                .env("DOCKER_CREDENTIAL_HUB_TIMEOUT", "1")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            run_as_other_user(&mut store);
            let mut s = store.spawn().unwrap();
            {
                use std::io::Write;
                s.stdin
                    .take()
                    .unwrap()
                    .write_all(&store_request(
                        "https://index.docker.io/v1/",
                        "u",
                        "dckr_pat_dumptest",
                    ))
                    .unwrap();
            }
            s.wait().unwrap();
        }
        let mut child = cmd.spawn().unwrap();
        let proc = format!("/proc/{}", child.id());
        // Wait until it runs as the other uid and has made itself non-dumpable, or not.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut owner = None;
        while Instant::now() < deadline {
            let status = std::fs::read_to_string(format!("{proc}/status")).unwrap_or_default();
            let runs_as_other = status
                .lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("4242"));
            if runs_as_other {
                std::thread::sleep(Duration::from_millis(300));
                owner = std::fs::metadata(format!("{proc}/environ"))
                    .ok()
                    .map(|m| m.uid());
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            owner,
            Some(0),
            "{what} ({args:?}): /proc/<pid> belongs to uid {owner:?}: the process is dumpable"
        );
    }
}

/// The binary is position-independent (static-pie is fine), so ASLR covers its own image.
/// The release binary (DOCKER_CREDENTIAL_HUB_TEST_BINARY, which `.ci/run` points at the
/// build of scripts/build-release.sh) is static-pie: no program interpreter either.
#[test]
fn the_binary_is_position_independent() {
    let binary = helper_bin();
    if std::env::var_os("DOCKER_CREDENTIAL_HUB_TEST_BINARY").is_some_and(|v| !v.is_empty()) {
        let machine = match std::env::consts::ARCH {
            "x86_64" => elf::EM_X86_64,
            "aarch64" => elf::EM_AARCH64,
            _ => elf::read(&binary).machine,
        };
        elf::assert_static_pie(&binary, machine);
        return;
    }
    assert!(
        elf::read(&binary).position_independent,
        "{} is not position-independent",
        binary.display()
    );
}

// --------------------------------------------------------------- config.json as docker reads

/// docker reads `"Auths"` as `auths`, and merges a repeated `auths` object: every entry
/// moves to the keychain, and neither config.json nor its backup keeps a secret.
#[test]
fn capitalised_and_repeated_auths_all_move_and_leave_no_plaintext() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let dir = env.docker_config_dir();
    let a = "YWxwaGE6YWxwaGEtc2VjcmV0LTAwMDE="; // alpha:alpha-secret-0001
    let b = "YmV0YTpiZXRhLXNlY3JldC0wMDAy"; // beta:beta-secret-0002
    let c = "Z2FtbWE6Z2FtbWEtc2VjcmV0LTAwMDM="; // gamma:gamma-secret-0003
    std::fs::write(
        dir.join("config.json"),
        format!(
            r#"{{"auths": {{"a.example": {{"auth": "{a}"}}}}, "Auths": {{"b.example": {{"auth": "{b}"}}}}, "auths": {{"c.example": {{"auth": "{c}"}}}}}}"#
        ),
    )
    .unwrap();
    let out = configure(&env, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let listed = list_map(&env);
    for (url, user) in [
        ("a.example", "alpha"),
        ("b.example", "beta"),
        ("c.example", "gamma"),
    ] {
        assert_eq!(
            listed.get(url).map(String::as_str),
            Some(user),
            "{listed:?}"
        );
    }
    for name in ["config.json", "config.json.bak"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        for secret in [a, b, c, "secret-000"] {
            assert!(!text.contains(secret), "{name}: {text}");
        }
    }
}

/// For the record: the write path never chowns (there is no code for it), so a planted
/// link to another user's file cannot hand that user root's bytes either.
#[test]
fn no_file_written_by_configure_is_handed_to_another_uid() {
    if !need_root("the chown check") {
        return;
    }
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let dir = env.docker_config_dir();
    std::fs::write(dir.join("config.json"), "{}").unwrap();
    let victim = tempfile::NamedTempFile::new().unwrap();
    chown(victim.path(), OTHER_UID);
    std::os::unix::fs::symlink(victim.path(), dir.join("config.json.bak")).unwrap();
    let out = configure(&env, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        assert_eq!(
            meta.uid(),
            0,
            "{} belongs to {}",
            entry.path().display(),
            meta.uid()
        );
    }
    assert_eq!(std::fs::read(victim.path()).unwrap(), b"");
}
