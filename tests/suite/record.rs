//! No silent switching: the first store records the backend, and a later call that cannot
//! reach it fails naming it (a stale D-Bus address after an ssh or tmux re-attach hid every
//! credential in gnome-keyring and sent the next store to the kernel keyring). An explicit
//! DOCKER_CREDENTIAL_HUB_BACKEND still overrides; `configure --backend` moves credentials.
//! The record is read through the trust rule: a FIFO, a link or a huge file there fails at
//! once, naming it.

use std::collections::BTreeMap;

use crate::support::harness::{NOT_FOUND, TestEnv, assert_get, list_map, store_ok, store_request};
use crate::support::keyring::{KeyringSession, KeyutilsEnv};
use crate::support::output::{assert_one_line_error, describe, stdout};
use crate::support::pass::PassEnv;

const STALE_BUS: &str = "unix:path=/nonexistent/dch-stale-bus";

fn record_of(env: &dyn TestEnv, service_file: &str) -> String {
    std::fs::read_to_string(
        env.home()
            .join(".config/docker-credential-hub")
            .join(service_file),
    )
    .unwrap_or_default()
}

#[test]
fn a_recorded_secret_service_behind_a_stale_bus_fails_naming_it_never_not_found() {
    let Some(ss) = KeyringSession::start() else {
        return;
    };
    store_ok(&ss, "https://kept.example", "u", "kept-secret");
    assert_eq!(record_of(&ss, "backend"), "secret-service\n");
    let stale = |args: &[&str], stdin: &[u8]| {
        ss.cmd()
            .env_remove("DOCKER_CREDENTIAL_HUB_BACKEND")
            .env("DBUS_SESSION_BUS_ADDRESS", STALE_BUS)
            .args(args)
            .write_stdin(stdin.to_vec())
            .output()
            .unwrap()
    };
    for (args, stdin) in [
        (vec!["get"], b"https://kept.example".to_vec()),
        (
            vec!["store"],
            store_request("https://new.example", "u", "new-secret"),
        ),
        (vec!["erase"], b"https://kept.example".to_vec()),
        (vec!["list"], Vec::new()),
    ] {
        let out = stale(&args, &stdin);
        let line = assert_one_line_error(&out);
        assert!(!line.contains(NOT_FOUND.trim_end()), "{args:?}: {line}");
        assert!(
            line.contains("Secret Service") && line.contains("recorded in"),
            "{args:?}: {line}"
        );
        assert!(
            line.contains(STALE_BUS) && line.contains("does not answer"),
            "{args:?}: {line}"
        );
        assert!(
            line.contains("DBUS_SESSION_BUS_ADDRESS"),
            "{args:?}: {line}"
        );
        assert!(!line.contains("new-secret"));
    }
    // Nothing landed anywhere else, and the credential is intact on the real bus.
    assert_get(&ss, "https://kept.example", "u", "kept-secret");
    assert_eq!(list_map(&ss).len(), 1);
    // doctor says why, with the fix.
    let out = ss
        .cmd()
        .env_remove("DOCKER_CREDENTIAL_HUB_BACKEND")
        .env("DBUS_SESSION_BUS_ADDRESS", STALE_BUS)
        .arg("doctor")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("backend record: ") && text.contains("says secret-service"),
        "{text}"
    );
    let kc = text
        .lines()
        .find(|l| l.contains("keychain:"))
        .unwrap_or_default();
    assert!(
        kc.starts_with("FAIL") && kc.contains("export DBUS_SESSION_BUS_ADDRESS="),
        "{text}"
    );
}

#[test]
fn an_explicit_backend_still_overrides_the_record() {
    let Some(ss) = KeyringSession::start() else {
        return;
    };
    store_ok(&ss, "https://ss.example", "u", "ss-secret");
    let service = crate::support::unique_name("dch-override");
    let out = ss
        .cmd()
        .env("DOCKER_CREDENTIAL_HUB_SERVICE", &service)
        .env("DOCKER_CREDENTIAL_HUB_BACKEND", "keyutils")
        .arg("store")
        .write_stdin(store_request("https://ku.example", "u", "ku-secret"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let out = ss
        .cmd()
        .env("DOCKER_CREDENTIAL_HUB_SERVICE", &service)
        .env("DOCKER_CREDENTIAL_HUB_BACKEND", "keyutils")
        .arg("get")
        .write_stdin("https://ku.example")
        .output()
        .unwrap();
    assert!(stdout(&out).contains("ku-secret"), "{}", describe(&out));
    let _ = ss
        .cmd()
        .env("DOCKER_CREDENTIAL_HUB_SERVICE", &service)
        .env("DOCKER_CREDENTIAL_HUB_BACKEND", "keyutils")
        .arg("erase")
        .write_stdin("https://ku.example")
        .output();
    // The default service's record is untouched.
    assert_eq!(record_of(&ss, "backend"), "secret-service\n");
}

/// keyutils to pass: copied, verified, recorded, erased from keyutils; and an interrupted
/// move (the record still says where it came from) is finished by running it again.
#[test]
fn configure_backend_moves_every_credential_and_finishes_an_interrupted_move() {
    let Some(env) = PassEnv::new() else {
        return;
    };
    let service = crate::support::unique_name("dch-move");
    let run = |backend: Option<&str>, args: &[&str], stdin: &[u8]| {
        let mut cmd = env.cmd();
        cmd.env("DOCKER_CREDENTIAL_HUB_SERVICE", &service)
            .env_remove("DOCKER_CREDENTIAL_HUB_BACKEND");
        if let Some(b) = backend {
            cmd.env("DOCKER_CREDENTIAL_HUB_BACKEND", b);
        }
        cmd.args(args).write_stdin(stdin.to_vec()).output().unwrap()
    };
    let list_in = |backend: &str| -> BTreeMap<String, String> {
        serde_json::from_slice(&run(Some(backend), &["list"], b"").stdout).unwrap()
    };
    let creds = [
        ("https://one.example", "alice", "secret-one"),
        ("ghcr.io", "bob", "secret-two"),
        (
            "https://index.docker.io/v1/access-token",
            "carol",
            "secret-three",
        ),
    ];
    for (url, user, secret) in creds {
        let out = run(
            Some("keyutils"),
            &["store"],
            &store_request(url, user, secret),
        );
        assert!(out.status.success(), "{}", describe(&out));
    }
    let record_file = format!("backend.{service}");
    assert_eq!(record_of(&env, &record_file), "keyutils\n");

    let out = run(None, &["configure", "--backend", "pass", "--dry-run"], b"");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(list_in("pass").len(), 0, "a dry run moved something");

    let out = run(None, &["configure", "--backend", "pass"], b"");
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(text.contains("3 credential(s) moved"), "{text}");
    assert_eq!(record_of(&env, &record_file), "pass\n");
    assert_eq!(list_in("keyutils"), BTreeMap::new());
    for (url, user, secret) in creds {
        let out = run(None, &["get"], url.as_bytes());
        let got: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", describe(&out)));
        assert_eq!(
            (got["Username"].as_str(), got["Secret"].as_str()),
            (Some(user), Some(secret))
        );
    }

    // An interrupted move back: the record names its source, which still holds a copy.
    let out = run(
        Some("keyutils"),
        &["store"],
        &store_request("https://late.example", "dave", "secret-late"),
    );
    assert!(out.status.success(), "{}", describe(&out));
    std::fs::write(
        env.home()
            .join(".config/docker-credential-hub")
            .join(&record_file),
        "pass\nmoving-from keyutils\n",
    )
    .unwrap();
    let out = run(None, &["configure", "--backend", "pass"], b"");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(record_of(&env, &record_file), "pass\n");
    assert_eq!(list_in("keyutils"), BTreeMap::new());
    assert_eq!(list_in("pass").len(), 4);
    let out = run(None, &["configure", "--backend", "pass"], b"");
    assert!(stdout(&out).contains("Already using"), "{}", describe(&out));
}

/// The record is read without following a link and without blocking, capped at 1 KiB: a
/// FIFO (which hung every docker call), a symlink and a 1 MiB file each fail at once with
/// one line naming the file, for every protocol action; doctor says the same.
#[test]
fn a_fifo_a_symlink_or_a_huge_file_as_the_record_fails_at_once_naming_it() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let dir = env.home().join(".config/docker-credential-hub");
    std::fs::create_dir_all(&dir).unwrap();
    let record = dir.join(format!(
        "backend.{}",
        env.service().replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
            "_"
        )
    ));
    let target = dir.join("elsewhere");
    std::fs::write(&target, "keyutils\n").unwrap();
    let plant: [(&str, &dyn Fn()); 3] = [
        ("a FIFO", &|| {
            let c = std::ffi::CString::new(record.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        }),
        ("a symlink", &|| {
            std::os::unix::fs::symlink(&target, &record).unwrap();
        }),
        ("larger than 1024 bytes", &|| {
            std::fs::write(&record, vec![b'k'; 1024 * 1024]).unwrap();
        }),
    ];
    for (what, make) in plant {
        let _ = std::fs::remove_file(&record);
        make();
        for (args, stdin) in [
            (vec!["get"], b"https://r.example".to_vec()),
            (
                vec!["store"],
                store_request("https://r.example", "u", "record-secret"),
            ),
            (vec!["list"], Vec::new()),
        ] {
            let start = std::time::Instant::now();
            let out = env
                .cmd()
                .env_remove("DOCKER_CREDENTIAL_HUB_BACKEND")
                .env("DOCKER_CREDENTIAL_HUB_TIMEOUT", "20")
                .timeout(std::time::Duration::from_secs(40))
                .args(&args)
                .write_stdin(stdin)
                .output()
                .unwrap();
            let line = assert_one_line_error(&out);
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "{what}, {args:?}: took {:?}",
                start.elapsed()
            );
            assert!(
                line.contains(&record.display().to_string()) && line.contains(what),
                "{what}, {args:?}: {line}"
            );
        }
        let out = env
            .cmd()
            .env_remove("DOCKER_CREDENTIAL_HUB_BACKEND")
            .timeout(std::time::Duration::from_secs(40))
            .arg("doctor")
            .output()
            .unwrap();
        let text = stdout(&out);
        assert!(
            text.lines().any(|l| l.starts_with("FAIL backend record: ")
                && l.contains(&record.display().to_string())),
            "{what}: {text}"
        );
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"keyutils\n");
}
