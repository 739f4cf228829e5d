//! One trust rule for every path the helper uses, tested the way an attacker on the same
//! machine would: root runs the helper with another user's HOME (`sudo -E docker pull`, or
//! sudo set up to keep HOME). That user (the throwaway uid 4242) has a real GPG key and a
//! `pass` store made as them, and plants hooks, agents and links in it. Root must not run
//! anything of theirs, must not write or empty anything in their tree, and must say so in
//! one line that names the path, its owner and "run it as them". The owner, and root on its
//! own files, keep working: their store (git-backed too) works as before.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use tempfile::TempDir;

use crate::support::env;
use crate::support::harness::{TestEnv, get_answer, list_map, store_request};
use crate::support::keyring::{KeyutilsEnv, UNREACHABLE_HUB};
use crate::support::other_user::{
    OTHER_UID, assert_names_the_owner, chown, need_root, run_as_other_user,
};
use crate::support::output::{
    assert_one_line_error, assert_one_line_failure, describe, stderr, stdout,
};
use crate::support::pass::{PassEnv, init_store};
use crate::support::tools::{helper_bin, require_tool};

const URL: &str = "https://victim.example";
const THEIR_SECRET: &str = "their-secret-4242";
const ROOTS_SECRET: &str = "roots-secret-0000";

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Write `text` as `uid`'s file with `mode`.
fn write_as(path: &Path, text: &str, uid: u32, mode: u32) {
    std::fs::write(path, text).unwrap();
    chmod(path, mode);
    chown(path, uid);
}

fn entry_dir(store: &Path, url: &str) -> PathBuf {
    store
        .join("docker-credential-helpers")
        .join(base64::engine::general_purpose::URL_SAFE.encode(url))
}

/// Every path under `dir` (links not followed) with its owner, mode and content (or link
/// target): two snapshots are equal when nothing was created, written or removed.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            // gpg-agent's sockets come and go with the agent, which is not ours to judge.
            if m.file_type().is_socket() {
                continue;
            }
            let content = if m.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else if m.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                todo.push(p.clone());
                Vec::new()
            };
            out.insert(p, (m.uid(), m.mode(), content));
        }
    }
    out
}

/// The second user's HOME as `sudo -E` hands it to root: owned by uid 4242, with a GPG key
/// and a `pass` store made as them, and their runtime directory. Drop stops every gpg-agent
/// started for it and removes it all.
struct Victim {
    root: TempDir,
    home: PathBuf,
    run: PathBuf,
    /// World-writable, outside their tree: hooks and agents leave their marks here.
    marks: PathBuf,
}

impl Victim {
    /// `None` (after a loud SKIP) without root, pass or gpg.
    fn new(git: bool) -> Option<Victim> {
        if !need_root("running the helper on a second user's HOME")
            || !require_tool("pass")
            || !require_tool("gpg")
            || !require_tool("gpgconf")
            || (git && !require_tool("git"))
        {
            return None;
        }
        // Short: gpg-agent's socket path must fit in 108 bytes.
        let root = tempfile::Builder::new()
            .prefix("dchv")
            .tempdir_in("/tmp")
            .unwrap();
        chmod(root.path(), 0o755);
        let v = Victim {
            home: root.path().join("h"),
            run: root.path().join("r"),
            marks: root.path().join("marks"),
            root,
        };
        for d in [&v.home, &v.run] {
            std::fs::create_dir(d).unwrap();
            chmod(d, 0o700);
            chown(d, OTHER_UID);
        }
        std::fs::create_dir(&v.marks).unwrap();
        chmod(&v.marks, 0o1777);
        init_store(
            &|program| v.as_them(program),
            "Victim <victim@example.invalid>",
            None,
        );
        if git {
            write_as(
                &v.home.join(".gitconfig"),
                "[user]\n\tname = Victim\n\temail = victim@example.invalid\n",
                OTHER_UID,
                0o644,
            );
            let out = v.as_them("pass").args(["git", "init"]).output().unwrap();
            assert!(out.status.success(), "pass git init: {out:?}");
        }
        v.kill_agents();
        Some(v)
    }

    fn store(&self) -> PathBuf {
        self.home.join(".password-store")
    }

    /// `program` as uid 4242 in their own environment.
    fn as_them(&self, program: &str) -> Command {
        let mut c = env::command(program, &env::base_vars(&self.home, &self.run));
        c.stdin(Stdio::null());
        run_as_other_user(&mut c);
        c
    }

    /// The helper as uid 4242, on their own store.
    fn helper_as_them(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut c = self.as_them(helper_bin().to_str().unwrap());
        c.args(args)
            .env("DOCKER_CREDENTIAL_HUB_BACKEND", "pass")
            .env("DOCKER_HUB_API_URL", UNREACHABLE_HUB)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            // `list` exits without reading stdin.
            let _ = child.stdin.take().unwrap().write_all(stdin);
        }
        child.wait_with_output().unwrap()
    }

    /// Their own `store` of THEIR_SECRET for URL, which must succeed.
    fn store_their_secret(&self) {
        let out = self.helper_as_them(&["store"], &store_request(URL, "victim", THEIR_SECRET));
        assert!(out.status.success(), "{}", describe(&out));
    }

    /// The helper as root with their HOME, as `sudo -E` runs it (sudo sets SUDO_UID, which
    /// git takes as leave to trust their repository). Their runtime directory is added where
    /// a test is about it.
    fn as_root(&self, backend: Option<&str>) -> assert_cmd::Command {
        let mut env = vec![
            ("PATH".to_string(), env::system_path().to_string()),
            ("HOME".into(), self.home.display().to_string()),
            ("SUDO_UID".into(), OTHER_UID.to_string()),
            ("SUDO_GID".into(), OTHER_UID.to_string()),
            // Where root's fallback lock directory goes (removed with the test).
            ("TMPDIR".into(), self.root.path().display().to_string()),
            ("DOCKER_HUB_API_URL".into(), UNREACHABLE_HUB.into()),
            ("LANG".into(), "C.UTF-8".into()),
        ];
        if let Some(b) = backend {
            env.push(("DOCKER_CREDENTIAL_HUB_BACKEND".into(), b.into()));
        }
        env::helper_command(&env)
    }

    /// `args` as root on their store (`DOCKER_CREDENTIAL_HUB_BACKEND=pass`), with `stdin`.
    fn root_runs(&self, args: &[&str], stdin: impl Into<Vec<u8>>) -> Output {
        self.as_root(Some("pass"))
            .args(args)
            .write_stdin(stdin)
            .output()
            .expect("run docker-credential-hub")
    }

    fn kill_agents(&self) {
        let _ = self
            .as_them("gpgconf")
            .args(["--kill", "all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // One root may have started on their GNUPGHOME.
        let _ = env::command("gpgconf", &[])
            .args(["--kill", "all"])
            .env("GNUPGHOME", self.home.join(".gnupg"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    fn mark(&self, name: &str) -> PathBuf {
        self.marks.join(name)
    }

    /// A script of theirs that leaves `mark` when anyone runs it.
    fn planted_script(&self, name: &str, mark: &Path) -> PathBuf {
        let script = self.home.join(name);
        write_as(
            &script,
            &format!("#!/bin/sh\ntouch '{}'\nexit 1\n", mark.display()),
            OTHER_UID,
            0o755,
        );
        script
    }

    /// Nothing in their tree belongs to root.
    fn assert_nothing_of_roots_in_their_tree(&self) {
        for (path, (uid, _, _)) in snapshot(&self.home) {
            assert_eq!(uid, OTHER_UID, "{} was made by root", path.display());
        }
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        self.kill_agents();
    }
}

/// Exit 1 and one line (on stdout for a protocol action) naming `path`, uid 4242 and the fix.
fn assert_refused(out: &Output, path: &Path) -> String {
    let line = assert_one_line_error(out);
    assert_names_the_owner(&line, path);
    line
}

// ------------------------------------------------------------ the review's three recipes

/// Recipe 1: `store` as root into their git-backed store. Their pre-commit hook would run
/// as root, and root's password would be encrypted to their key into a file they read.
#[test]
fn store_runs_none_of_their_git_hooks_and_writes_nothing_in_their_tree() {
    let Some(v) = Victim::new(true) else {
        return;
    };
    let mark = v.mark("hook-ran");
    let hook = v.store().join(".git/hooks/pre-commit");
    write_as(
        &hook,
        &format!("#!/bin/sh\ntouch '{}'\n", mark.display()),
        OTHER_UID,
        0o755,
    );
    let before = snapshot(&v.home);
    let out = v.root_runs(&["store"], store_request(URL, "root", ROOTS_SECRET));
    assert!(!mark.exists(), "their hook ran as root");
    assert_refused(&out, &v.store());
    assert_eq!(snapshot(&v.home), before, "their tree changed");
    v.assert_nothing_of_roots_in_their_tree();
}

/// Recipe 2: `get` as root on their store. The `agent-program` of their gpg.conf would run
/// as root when gpg starts an agent to decrypt.
#[test]
fn get_runs_no_agent_program_of_theirs() {
    let Some(v) = Victim::new(false) else {
        return;
    };
    v.store_their_secret();
    v.kill_agents();
    let mark = v.mark("agent-ran");
    let script = v.planted_script("agent.sh", &mark);
    write_as(
        &v.home.join(".gnupg/gpg.conf"),
        &format!("agent-program {}\n", script.display()),
        OTHER_UID,
        0o600,
    );
    let before = snapshot(&v.home);
    let out = v.root_runs(&["get"], URL);
    assert!(!mark.exists(), "their agent-program ran as root");
    assert_refused(&out, &v.store());
    assert!(!stdout(&out).contains(THEIR_SECRET));
    assert_eq!(snapshot(&v.home), before, "their tree changed");
}

/// Recipe 3: `erase` as root after they replaced the entry directory with a link to a
/// root-owned directory: `pass rm -rf DIR/` would empty it.
#[test]
fn erase_never_follows_their_link_into_a_directory_of_roots() {
    let Some(v) = Victim::new(false) else {
        return;
    };
    v.store_their_secret();
    let precious = v.root.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("keep"), b"root's file").unwrap();
    let entry = entry_dir(&v.store(), URL);
    std::fs::remove_dir_all(&entry).unwrap();
    std::os::unix::fs::symlink(&precious, &entry).unwrap();
    chown(&entry, OTHER_UID);
    let out = v.root_runs(&["erase"], URL);
    assert!(
        precious.join("keep").exists(),
        "root's directory was emptied through their link"
    );
    assert_refused(&out, &v.store());
}

// ---------------------------------------------------------- refusals, auto and doctor

/// DOCKER_CREDENTIAL_HUB_BACKEND=pass: every protocol action refuses with one line on
/// stdout, a human command with one line on stderr; their tree is untouched.
#[test]
fn an_explicit_pass_backend_on_their_store_refuses_every_command() {
    let Some(v) = Victim::new(false) else {
        return;
    };
    let before = snapshot(&v.home);
    for (args, stdin) in [
        (vec!["store"], store_request(URL, "root", ROOTS_SECRET)),
        (vec!["get"], URL.as_bytes().to_vec()),
        (vec!["erase"], URL.as_bytes().to_vec()),
        (vec!["list"], b"unused".to_vec()),
    ] {
        let out = v.root_runs(&args, stdin);
        assert_refused(&out, &v.store());
        assert!(out.stderr.is_empty(), "{args:?}: {}", describe(&out));
    }
    let out = v.root_runs(&["token"], "");
    assert_names_the_owner(&assert_one_line_failure(&out), &v.store());
    assert_eq!(snapshot(&v.home), before, "their tree changed");
}

/// A record of theirs saying `pass` is not believed: one line naming it. And a record of
/// root's own saying `pass` (XDG_CONFIG_HOME elsewhere) still refuses their store.
#[test]
fn a_recorded_pass_refuses_their_store() {
    let Some(v) = Victim::new(false) else {
        return;
    };
    // Their own first store records `pass` in their tree.
    v.store_their_secret();
    let record = v.home.join(".config/docker-credential-hub/backend");
    assert_eq!(std::fs::read_to_string(&record).unwrap(), "pass\n");
    v.kill_agents();
    let before = snapshot(&v.home);
    let out = v
        .as_root(None)
        .arg("get")
        .write_stdin(URL)
        .output()
        .unwrap();
    assert_refused(&out, &record);
    assert!(!stdout(&out).contains(THEIR_SECRET));

    let roots = tempfile::tempdir().unwrap();
    let own_record = roots.path().join("docker-credential-hub/backend");
    std::fs::create_dir_all(own_record.parent().unwrap()).unwrap();
    std::fs::write(&own_record, "pass\n").unwrap();
    let out = v
        .as_root(None)
        .env("XDG_CONFIG_HOME", roots.path())
        .arg("get")
        .write_stdin(URL)
        .output()
        .unwrap();
    let line = assert_refused(&out, &v.store());
    assert!(line.contains("recorded in"), "{line}");
    assert_eq!(snapshot(&v.home), before, "their tree changed");
}

/// `auto` passes over their store as if there were none (kernel keyutils, as with no store
/// at all), keeps its locks and its record out of their tree, and `doctor` says why.
#[test]
fn auto_passes_over_their_store_and_doctor_says_why() {
    let Some(v) = Victim::new(false) else {
        return;
    };
    // Its service name and its cleanup of the kernel keyring.
    let Some(ku) = KeyutilsEnv::new() else {
        return;
    };
    let service = ku.service().to_string();
    let before = snapshot(&v.home);
    let before_run = snapshot(&v.run);
    let root = |args: &[&str], stdin: &[u8]| {
        v.as_root(None)
            .env("XDG_RUNTIME_DIR", &v.run)
            .env("DOCKER_CREDENTIAL_HUB_SERVICE", &service)
            .args(args)
            .write_stdin(stdin.to_vec())
            .output()
            .unwrap()
    };
    let out = root(&["store"], &store_request(URL, "root", ROOTS_SECRET));
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains("kernel keyring"),
        "{}",
        describe(&out)
    );
    let out = root(&["get"], URL.as_bytes());
    assert_eq!(stdout(&out), get_answer(URL, "root", ROOTS_SECRET));
    let out = root(&["doctor"], b"");
    let text = stdout(&out);
    let keychain = text.lines().find(|l| l.contains("keychain:")).unwrap_or("");
    assert!(keychain.contains("kernel keyutils"), "{text}");
    let why = text
        .lines()
        .find(|l| l.contains("pass store"))
        .unwrap_or_else(|| panic!("doctor does not say why: {text}"));
    assert!(why.starts_with("warn"), "{why}");
    assert_names_the_owner(why, &v.store());
    let out = root(&["erase"], URL.as_bytes());
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(snapshot(&v.home), before, "their tree changed");
    assert_eq!(
        snapshot(&v.run),
        before_run,
        "their runtime directory changed"
    );
    // Root's locks went to a directory of root's.
    assert!(
        v.root
            .path()
            .join("docker-credential-hub-0")
            .symlink_metadata()
            .is_ok_and(|m| m.uid() == 0 && m.mode() & 0o777 == 0o700)
    );
}

/// Their session bus (in their runtime directory, or named by DBUS_SESSION_BUS_ADDRESS) is
/// theirs: root sends it nothing, neither a chosen Secret Service nor `auto`'s probe, says so
/// in one line naming the socket, its owner and the fix, and `auto` goes on to keyutils.
#[test]
fn root_sends_nothing_to_their_session_bus() {
    let Some(v) = Victim::new(false) else {
        return;
    };
    if !require_tool("python3") {
        return;
    }
    let Some(ku) = KeyutilsEnv::new() else {
        return;
    };
    let service = ku.service().to_string();
    // Their bus: a socket of theirs that records every byte anyone sends it.
    let socket = v.run.join("bus");
    let heard = v.home.join("heard");
    /// Stopped however the test ends.
    struct Listener(std::process::Child);
    impl Drop for Listener {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let listener = v
        .as_them("python3")
        .args([
            "-c",
            r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(16)
open(sys.argv[2], "wb").close()
while True:
    c, _ = s.accept()
    c.settimeout(2)
    try:
        data = c.recv(65536)
    except OSError:
        data = b""
    with open(sys.argv[2], "ab") as f:
        f.write(data)
    c.close()
"#,
        ])
        .arg(&socket)
        .arg(&heard)
        .spawn()
        .map(Listener)
        .unwrap();
    let started = Instant::now();
    while !heard.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the listener did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let address = format!("unix:path={}", socket.display());
    let root = |backend: Option<&str>, bus: (&str, &str), args: &[&str], stdin: &[u8]| {
        v.as_root(backend)
            .env(bus.0, bus.1)
            .env("DOCKER_CREDENTIAL_HUB_SERVICE", &service)
            .args(args)
            .write_stdin(stdin.to_vec())
            .output()
            .unwrap()
    };
    let run = v.run.display().to_string();
    for bus in [
        ("XDG_RUNTIME_DIR", run.as_str()),
        ("DBUS_SESSION_BUS_ADDRESS", &address),
    ] {
        // Chosen: refused in one line.
        let out = root(
            Some("secret-service"),
            bus,
            &["store"],
            &store_request(URL, "root", ROOTS_SECRET),
        );
        let line = assert_one_line_error(&out);
        assert_names_the_owner(&line, &socket);
        // `auto`: their bus is passed over, and keyutils keeps root's credential.
        let out = root(
            None,
            bus,
            &["store"],
            &store_request(URL, "root", ROOTS_SECRET),
        );
        assert!(out.status.success(), "{}", describe(&out));
        let out = root(None, bus, &["get"], URL.as_bytes());
        assert_eq!(stdout(&out), get_answer(URL, "root", ROOTS_SECRET));
        let out = root(None, bus, &["doctor"], b"");
        let text = stdout(&out);
        let keychain = text.lines().find(|l| l.contains("keychain:")).unwrap_or("");
        assert!(
            keychain.contains("kernel keyutils") && keychain.contains(&format!("uid {OTHER_UID}")),
            "{text}"
        );
        let out = root(None, bus, &["erase"], URL.as_bytes());
        assert!(out.status.success(), "{}", describe(&out));
    }
    drop(listener);
    let got = std::fs::read(&heard).unwrap();
    assert!(
        got.is_empty(),
        "their bus was sent {} bytes: {:?}",
        got.len(),
        String::from_utf8_lossy(&got[..got.len().min(80)])
    );
}

/// Root on its own store, with parts of another user's environment kept (`sudo -E`, or
/// `--preserve-env`): their gpg options, umask and git configuration directory are not
/// used. Their agent program does not run, nothing root's pass creates is writable by
/// others, and their global git attributes (`* filter=x`) do not reach root's git, which
/// defines a filter `x` of its own.
#[test]
fn roots_store_takes_no_gpg_options_umask_or_git_files_of_theirs() {
    if !need_root("their files") || !require_tool("git") {
        return;
    }
    // One at a time, so that each one's effect shows on its own.
    for kept in [
        "PASSWORD_STORE_GPG_OPTS",
        "PASSWORD_STORE_UMASK",
        "XDG_CONFIG_HOME",
    ] {
        root_keeps_one_of_their_variables(kept);
    }
}

fn root_keeps_one_of_their_variables(kept: &str) {
    let Some(env) = PassEnv::new() else {
        return;
    };
    let theirs = tempfile::Builder::new()
        .prefix("dchx")
        .tempdir_in("/tmp")
        .unwrap();
    chmod(theirs.path(), 0o755);
    chown(theirs.path(), OTHER_UID);
    let git_dir = theirs.path().join("git");
    std::fs::create_dir(&git_dir).unwrap();
    chown(&git_dir, OTHER_UID);
    write_as(
        &git_dir.join("attributes"),
        "* filter=x\n",
        OTHER_UID,
        0o644,
    );
    let agent_ran = env.home().join("agent-ran");
    let agent = theirs.path().join("agent.sh");
    write_as(
        &agent,
        &format!("#!/bin/sh\ntouch '{}'\nexit 1\n", agent_ran.display()),
        OTHER_UID,
        0o755,
    );
    // Root's own filter, which only their attributes would apply.
    let filter_ran = env.home().join("filter-ran");
    let filter = env.home().join("filter.sh");
    std::fs::write(
        &filter,
        format!("#!/bin/sh\ntouch '{}'\ncat\n", filter_ran.display()),
    )
    .unwrap();
    chmod(&filter, 0o755);
    std::fs::write(
        env.home().join(".gitconfig"),
        format!(
            "[user]\n\tname = Root\n\temail = root@example.invalid\n[filter \"x\"]\n\tclean = {}\n",
            filter.display()
        ),
    )
    .unwrap();
    let out = env
        .tool("pass")
        .env("HOME", env.home())
        .args(["git", "init"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    env.kill_agent();
    let theirs_all = [
        (
            "PASSWORD_STORE_GPG_OPTS",
            format!("--agent-program={}", agent.display()),
        ),
        ("PASSWORD_STORE_UMASK", "000".to_string()),
        ("XDG_CONFIG_HOME", theirs.path().display().to_string()),
    ];
    let (name, value) = theirs_all.iter().find(|(k, _)| *k == kept).unwrap();
    let root = |args: &[&str], stdin: &str| {
        let mut c = env.cmd();
        c.env(name, value);
        c.args(args)
            .write_stdin(stdin.to_string())
            .output()
            .unwrap()
    };
    let out = root(
        &["store"],
        &String::from_utf8(store_request(URL, "root", ROOTS_SECRET)).unwrap(),
    );
    assert!(out.status.success(), "{kept}: {}", describe(&out));
    for path in [
        env.store_dir().join("docker-credential-helpers"),
        entry_dir(&env.store_dir(), URL),
    ] {
        let mode = std::fs::metadata(&path).unwrap().mode();
        assert_eq!(
            mode & 0o022,
            0,
            "{kept}: {} has mode {mode:o}",
            path.display()
        );
    }
    env.kill_agent();
    let got = root(&["get"], URL);
    let out = root(&["erase"], URL);
    assert!(!agent_ran.exists(), "{kept}: root ran their agent program");
    assert!(
        !filter_ran.exists(),
        "{kept}: their git attributes reached root's git"
    );
    assert_eq!(
        stdout(&got),
        get_answer(URL, "root", ROOTS_SECRET),
        "{kept}: {}",
        describe(&got)
    );
    assert!(out.status.success(), "{kept}: {}", describe(&out));
    env.kill_agent();
}

/// `sudo configure` with HOME kept and no ~/.docker: refused, and nothing is created in
/// their home (a root-owned ~/.docker would lock them out of their own docker).
#[test]
fn sudo_configure_with_their_home_and_no_docker_dir_creates_nothing() {
    if !need_root("configure on a second user's HOME") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    std::fs::create_dir(&home).unwrap();
    chown(&home, OTHER_UID);
    let out = env::helper_command(&[
        ("PATH".into(), env::path_with(&[&env::helper_dir()])),
        ("HOME".into(), home.display().to_string()),
        ("DOCKER_CREDENTIAL_HUB_BACKEND".into(), "keyutils".into()),
        ("LANG".into(), "C.UTF-8".into()),
    ])
    .arg("configure")
    .output()
    .unwrap();
    assert_names_the_owner(&assert_one_line_failure(&out), &home);
    assert_eq!(
        std::fs::read_dir(&home).unwrap().count(),
        0,
        "made in their home"
    );
}

/// A `registries.conf.d` planted as a link is not written through; configure says so and
/// still switches docker over.
#[test]
fn a_planted_registries_conf_d_link_is_not_written_through() {
    if !require_tool("podman") {
        return;
    }
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let containers = env.home().join(".config/containers");
    std::fs::create_dir_all(&containers).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let link = containers.join("registries.conf.d");
    std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
    std::fs::write(env.docker_config_dir().join("config.json"), "{}").unwrap();
    let out = env.installed_cmd().arg("configure").output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out) + &stderr(&out);
    assert!(
        text.contains(&link.display().to_string()) && text.contains("symlink"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "written through the link"
    );
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
}

// ------------------------------------------------------------- root on its own store

/// Programs come from trusted directories only: a `pass` in a PATH directory of another
/// user's is never run, and the real one is.
#[test]
fn a_pass_in_someone_elses_path_directory_never_runs() {
    if !need_root("a PATH directory of a second user") {
        return;
    }
    let Some(env) = PassEnv::new() else {
        return;
    };
    let theirs = tempfile::tempdir().unwrap();
    chmod(theirs.path(), 0o755);
    let bin = theirs.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let mark = theirs.path().join("fake-pass-ran");
    write_as(
        &bin.join("pass"),
        &format!(
            "#!/bin/sh\ntouch '{}'\nexec /usr/bin/pass \"$@\"\n",
            mark.display()
        ),
        OTHER_UID,
        0o755,
    );
    chown(&bin, OTHER_UID);
    let path = env::path_with(&[&bin]);
    let run = |args: &[&str], stdin: &[u8]| {
        env.cmd()
            .env("PATH", &path)
            .args(args)
            .write_stdin(stdin.to_vec())
            .output()
            .unwrap()
    };
    let out = run(&["store"], &store_request(URL, "root", ROOTS_SECRET));
    assert!(out.status.success(), "{}", describe(&out));
    let out = run(&["get"], URL.as_bytes());
    assert_eq!(stdout(&out), get_answer(URL, "root", ROOTS_SECRET));
    assert!(!mark.exists(), "the other user's pass ran");
}

/// In one's own store, every path used is checked too: a linked entry directory is not
/// followed by `erase`, an entry or `.gpg-id` of someone else's and a gpg.conf of someone
/// else's are refused, each with one line naming it.
#[test]
fn every_path_used_in_your_own_store_is_checked() {
    if !need_root("files of a second user in one's own store") {
        return;
    }
    let Some(env) = PassEnv::new() else {
        return;
    };
    let run = |args: &[&str], stdin: &[u8]| {
        env.cmd()
            .args(args)
            .write_stdin(stdin.to_vec())
            .output()
            .unwrap()
    };
    let out = run(&["store"], &store_request(URL, "root", ROOTS_SECRET));
    assert!(out.status.success(), "{}", describe(&out));

    // A linked entry directory: refused, and what it points at survives.
    let entry = entry_dir(&env.store_dir(), URL);
    let moved = env.store_dir().join("moved");
    std::fs::rename(&entry, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &entry).unwrap();
    let out = run(&["erase"], URL.as_bytes());
    let line = assert_one_line_error(&out);
    assert!(
        line.contains(&entry.display().to_string()) && line.contains("symlink"),
        "{line}"
    );
    assert!(moved.join("root.gpg").is_file());
    std::fs::remove_file(&entry).unwrap();
    std::fs::rename(&moved, &entry).unwrap();

    // Someone else's entry, .gpg-id and gpg.conf.
    let gpg_conf = env.gnupg().join("gpg.conf");
    std::fs::write(&gpg_conf, "").unwrap();
    for (path, args, stdin) in [
        (entry.join("root.gpg"), "get", URL.as_bytes().to_vec()),
        (
            env.store_dir().join(".gpg-id"),
            "store",
            store_request(URL, "root", ROOTS_SECRET),
        ),
        (gpg_conf.clone(), "get", URL.as_bytes().to_vec()),
    ] {
        chown(&path, OTHER_UID);
        let out = run(&[args], &stdin);
        let line = assert_refused(&out, &path);
        assert!(!line.contains(ROOTS_SECRET), "{line}");
        chown(&path, 0);
    }
    // A GNUPGHOME of someone else's.
    let theirs = tempfile::tempdir().unwrap();
    chown(theirs.path(), OTHER_UID);
    let out = env
        .cmd()
        .env("GNUPGHOME", theirs.path())
        .arg("get")
        .write_stdin(URL)
        .output()
        .unwrap();
    let line = assert_refused(&out, theirs.path());
    assert!(
        line.starts_with("docker-credential-hub: GNUPGHOME "),
        "{line}"
    );
    let out = run(&["get"], URL.as_bytes());
    assert_eq!(stdout(&out), get_answer(URL, "root", ROOTS_SECRET));
}

// ----------------------------------------------------------------------- the controls

/// The owner of a git-backed store keeps using it through the helper: store, get, list and
/// erase work and commit with their git identity; no hook of the repository runs, for them
/// either.
#[test]
fn the_owner_keeps_using_their_git_backed_store() {
    let Some(v) = Victim::new(true) else {
        return;
    };
    let mark = v.mark("owners-hook-ran");
    write_as(
        &v.store().join(".git/hooks/pre-commit"),
        &format!("#!/bin/sh\ntouch '{}'\n", mark.display()),
        OTHER_UID,
        0o755,
    );
    let commits = || {
        let out = v
            .as_them("git")
            .args(["-C"])
            .arg(v.store())
            .args(["rev-list", "--count", "HEAD"])
            .output()
            .unwrap();
        stdout(&out)
            .trim()
            .parse::<u32>()
            .unwrap_or_else(|_| panic!("{out:?}"))
    };
    let start = commits();
    v.store_their_secret();
    let out = v.helper_as_them(&["get"], URL.as_bytes());
    assert_eq!(
        stdout(&out),
        get_answer(URL, "victim", THEIR_SECRET),
        "{}",
        describe(&out)
    );
    let out = v.helper_as_them(&["list"], b"unused");
    let listed: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.get(URL).map(String::as_str), Some("victim"));
    let out = v.helper_as_them(&["erase"], URL.as_bytes());
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!entry_dir(&v.store(), URL).exists());
    assert!(commits() >= start + 2, "the store's commits were not made");
    let log = v
        .as_them("git")
        .arg("-C")
        .arg(v.store())
        .args(["log", "-1", "--format=%ae"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&log.stdout).trim(),
        "victim@example.invalid"
    );
    assert!(!mark.exists(), "a repository hook ran");
}

/// Root on its own git-backed store, with root's own HOME: everything works and commits, no
/// fsmonitor of its configuration starts, and the repository's configuration is checked.
#[test]
fn root_on_its_own_git_backed_store_works() {
    let Some(env) = PassEnv::new() else {
        return;
    };
    if !require_tool("git") {
        return;
    }
    // An fsmonitor is a program git starts; the one set here must not run.
    let mark = env.home().join("fsmonitor-ran");
    let fsmonitor = env.home().join("fsmonitor.sh");
    std::fs::write(
        &fsmonitor,
        format!("#!/bin/sh\ntouch '{}'\n", mark.display()),
    )
    .unwrap();
    chmod(&fsmonitor, 0o755);
    std::fs::write(
        env.home().join(".gitconfig"),
        "[user]\n\tname = Root\n\temail = root@example.invalid\n",
    )
    .unwrap();
    let out = env
        .tool("pass")
        .env("HOME", env.home())
        .args(["git", "init"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::write(
        env.home().join(".gitconfig"),
        format!(
            "[user]\n\tname = Root\n\temail = root@example.invalid\n[core]\n\tfsmonitor = {}\n",
            fsmonitor.display()
        ),
    )
    .unwrap();
    let commits = || {
        let log = env
            .tool("git")
            .arg("-C")
            .arg(env.store_dir())
            .args(["log", "--format=%ae"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&log.stdout)
            .lines()
            .filter(|l| *l == "root@example.invalid")
            .count()
    };
    let before = commits();
    let start = Instant::now();
    let out = env
        .cmd()
        .arg("store")
        .write_stdin(store_request(URL, "root", ROOTS_SECRET))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let out = env.cmd().arg("get").write_stdin(URL).output().unwrap();
    assert_eq!(stdout(&out), get_answer(URL, "root", ROOTS_SECRET));
    assert_eq!(list_map(&env).len(), 1);
    let out = env.cmd().arg("erase").write_stdin(URL).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        commits() >= before + 2,
        "the store and the erase were not committed"
    );
    assert!(start.elapsed() < Duration::from_secs(60));
    assert!(!mark.exists(), "git ran the configured fsmonitor");
    // The repository's configuration is checked like the rest of the store.
    if crate::support::other_user::is_root() {
        let config = env.store_dir().join(".git/config");
        chown(&config, OTHER_UID);
        let out = env.cmd().arg("get").write_stdin(URL).output().unwrap();
        assert_refused(&out, &config);
        chown(&config, 0);
    }
}
