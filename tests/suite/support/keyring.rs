//! Private keychains for the integration tests, each one test's own:
//! - `KeyringSession`: a private D-Bus session bus with its own gnome-keyring Secret Service,
//!   unlocked at start, in a fresh temporary HOME. The developer's keychain is never touched.
//! - `KeyutilsEnv`: kernel keyutils under a unique keychain service name, erased on drop.
//!
//! Both are a `TestEnv` (support/harness.rs), as is `PassEnv` (support/pass.rs), so one test
//! body runs on every backend.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::env;
use super::harness::{TestEnv, erase_all};
use super::tools::{on_path, require_tool, skip};

/// The keyring password, fed on stdin without a newline (as `printf %s` would).
const KEYRING_PASSWORD: &str = "dch-test-keyring-password";
/// How long a daemon may take to come up when the machine is busy with parallel tests.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Nothing listens on the discard port of loopback, so a Hub login attempt made after
/// storing a Docker Hub key, a revoke or a pull-quota check fails at once instead of leaving
/// the machine.
pub const UNREACHABLE_HUB: &str = "http://127.0.0.1:9";

/// What the helper gets on a private keychain: the base variables (support/env.rs), its own
/// docker config, the backend, and every Docker service unreachable.
pub fn keychain_vars(
    home: &Path,
    runtime: &Path,
    docker_config: &Path,
    backend: &str,
) -> Vec<(String, String)> {
    let mut vars = env::base_vars(home, runtime);
    vars.extend([
        ("DOCKER_CONFIG".into(), docker_config.display().to_string()),
        ("DOCKER_CREDENTIAL_HUB_BACKEND".into(), backend.into()),
    ]);
    vars.extend(
        [
            "DOCKER_HUB_API_URL",
            "DOCKER_HUB_OAUTH_URL",
            "DOCKER_HUB_AUTH_URL",
            "DOCKER_HUB_REGISTRY_URL",
        ]
        .into_iter()
        .map(|k| (k.to_string(), UNREACHABLE_HUB.to_string())),
    );
    vars
}

pub fn private_dir(path: &Path) -> PathBuf {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    path.to_path_buf()
}

// ---------------------------------------------------------------------------------------
// Secret Service: private dbus-daemon + gnome-keyring
// ---------------------------------------------------------------------------------------

/// A private D-Bus session with an unlocked gnome-keyring. Drop stops both daemons and
/// removes every file.
pub struct KeyringSession {
    bus_address: String,
    bus: Child,
    /// dbus-daemon prints its address here; kept open so it never sees a closed pipe.
    _bus_stdout: BufReader<ChildStdout>,
    keyring: Mutex<Option<Child>>,
    home: PathBuf,
    runtime: PathBuf,
    docker_config: PathBuf,
    logs: PathBuf,
    // Last: removed after the daemons are gone.
    _root: TempDir,
}

/// A bus configuration without service directories: no D-Bus activation, so a client call
/// can never start a second, locked gnome-keyring behind our back, and a killed daemon
/// stays killed (fault-injection tests depend on that). `auth` is the `<auth>` section:
/// what clients may authenticate with.
pub fn bus_config(socket_dir: &Path, auth: &str) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={}</listen>
  {}
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        socket_dir.display(),
        auth
    )
}

impl KeyringSession {
    /// Start a private session, or `None` (after a loud SKIP) when the daemons are missing.
    pub fn start() -> Option<KeyringSession> {
        if !require_tool("dbus-daemon")
            || !require_tool("dbus-send")
            || !require_tool("gnome-keyring-daemon")
        {
            return None;
        }
        let root = tempfile::Builder::new()
            .prefix("dch-ss-")
            .tempdir()
            .expect("temp dir");
        let home = private_dir(&root.path().join("home"));
        let runtime = private_dir(&root.path().join("run"));
        let docker_config = private_dir(&root.path().join("docker"));
        let logs = private_dir(&root.path().join("logs"));
        let conf = root.path().join("bus.conf");
        std::fs::write(&conf, bus_config(&runtime, "<auth>EXTERNAL</auth>"))
            .expect("write bus.conf");

        let mut bus = env::command("dbus-daemon", &env::base_vars(&home, &runtime))
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file(&logs.join("dbus-daemon.log")))
            .spawn()
            .expect("start dbus-daemon");
        let mut bus_stdout = BufReader::new(bus.stdout.take().expect("piped stdout"));
        let mut bus_address = String::new();
        let _ = bus_stdout.read_line(&mut bus_address);
        let bus_address = bus_address.trim().to_string();
        if bus_address.is_empty() {
            let _ = bus.kill();
            let _ = bus.wait();
            panic!(
                "dbus-daemon printed no address; its log: {}",
                read_log(&logs.join("dbus-daemon.log"))
            );
        }
        let session = KeyringSession {
            bus_address,
            bus,
            _bus_stdout: bus_stdout,
            keyring: Mutex::new(None),
            home,
            runtime,
            docker_config,
            logs,
            _root: root,
        };
        session.restart_keyring_daemon();
        Some(session)
    }

    /// What gnome-keyring wrote on stderr, for failure messages.
    pub fn keyring_log(&self) -> String {
        read_log(&self.logs.join("gnome-keyring.log"))
    }

    /// Whether the gnome-keyring daemon is still running.
    pub fn keyring_alive(&self) -> bool {
        let mut slot = self.keyring.lock().unwrap_or_else(|p| p.into_inner());
        matches!(slot.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn bus_address(&self) -> &str {
        &self.bus_address
    }

    pub fn runtime_dir(&self) -> &Path {
        &self.runtime
    }

    /// Variables for the daemons and D-Bus tools (no helper-specific ones).
    fn base_env(&self) -> Vec<(String, String)> {
        let mut vars = env::base_vars(&self.home, &self.runtime);
        env::set(
            &mut vars,
            "DBUS_SESSION_BUS_ADDRESS",
            self.bus_address.clone(),
        );
        vars
    }

    /// Stop the gnome-keyring daemon (SIGKILL) and wait until the bus has noticed.
    pub fn kill_keyring_daemon(&self) {
        let mut slot = self.keyring.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut child) = slot.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        while self.secrets_name_owned() {
            assert!(
                Instant::now() < deadline,
                "org.freedesktop.secrets still owned after killing gnome-keyring"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Freeze the gnome-keyring daemon (SIGSTOP), as a wedged daemon would be: it keeps its
    /// bus name, so calls reach it and are never answered. `continue_keyring_daemon` thaws it.
    pub fn stop_keyring_daemon(&self) {
        self.signal_keyring_daemon(libc::SIGSTOP);
    }

    /// Thaw a daemon frozen by `stop_keyring_daemon` (SIGCONT).
    pub fn continue_keyring_daemon(&self) {
        self.signal_keyring_daemon(libc::SIGCONT);
    }

    fn signal_keyring_daemon(&self, signal: i32) {
        let slot = self.keyring.lock().unwrap_or_else(|p| p.into_inner());
        let child = slot.as_ref().expect("no gnome-keyring daemon is running");
        let pid = i32::try_from(child.id()).expect("pid fits in pid_t");
        // SAFETY: kill(2) on our own child, which is not reaped while we hold the slot lock.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {signal}) failed: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Start a fresh gnome-keyring on the same bus with the same HOME and password, so the
    /// login collection (and everything stored in it) comes back unlocked. Any running
    /// daemon is killed first.
    pub fn restart_keyring_daemon(&self) {
        self.kill_keyring_daemon();
        // gnome-keyring-daemon has been seen, rarely, to exit at start before any client call
        // under the parallel test load: start it again, saying why on stderr, since that is
        // the daemon's own start-up, not the behaviour under test.
        for attempt in 1..=3 {
            match self.spawn_keyring_daemon() {
                Ok(child) => {
                    *self.keyring.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
                    return;
                }
                Err(why) if attempt < 3 => eprintln!("retrying gnome-keyring-daemon: {why}"),
                Err(why) => panic!("{why}"),
            }
        }
    }

    /// Start gnome-keyring and wait until it serves an unlocked default collection; `Err` when
    /// it exits first.
    fn spawn_keyring_daemon(&self) -> Result<std::process::Child, String> {
        let mut child = env::command("gnome-keyring-daemon", &self.base_env())
            // --foreground keeps it our child: we know its pid and reap it on drop.
            .args(["--foreground", "--unlock", "--components=secrets"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log_file(&self.logs.join("gnome-keyring.log")))
            .spawn()
            .expect("start gnome-keyring-daemon");
        {
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin
                .write_all(KEYRING_PASSWORD.as_bytes())
                .expect("write keyring password");
            // Dropping stdin sends EOF: gnome-keyring reads the password up to it.
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "gnome-keyring-daemon exited at start ({status}); its log: {}",
                    read_log(&self.logs.join("gnome-keyring.log"))
                ));
            }
            if self.default_collection_locked() == Some(false) {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "gnome-keyring did not serve an unlocked default collection within {READY_TIMEOUT:?}; its log: {}",
                    read_log(&self.logs.join("gnome-keyring.log"))
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(child)
    }

    /// Lock the default (login) collection through the Secret Service API, and check that
    /// it really is locked afterwards. Unlocking needs a prompt, which headless sessions
    /// cannot show; `restart_keyring_daemon` unlocks it again.
    pub fn lock_collection(&self) {
        let out = self.dbus_send(&[
            "--dest=org.freedesktop.secrets",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.Lock",
            "array:objpath:/org/freedesktop/secrets/aliases/default",
        ]);
        assert!(
            out.status.success(),
            "Secret Service Lock failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            self.default_collection_locked(),
            Some(true),
            "the default collection is not locked after Lock"
        );
    }

    /// The `Locked` property of the default collection; `None` if it cannot be read.
    pub fn default_collection_locked(&self) -> Option<bool> {
        let out = self.dbus_send(&[
            "--dest=org.freedesktop.secrets",
            "/org/freedesktop/secrets/aliases/default",
            "org.freedesktop.DBus.Properties.Get",
            "string:org.freedesktop.Secret.Collection",
            "string:Locked",
        ]);
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("boolean true") {
            Some(true)
        } else if text.contains("boolean false") {
            Some(false)
        } else {
            None
        }
    }

    fn secrets_name_owned(&self) -> bool {
        let out = self.dbus_send(&[
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            "string:org.freedesktop.secrets",
        ]);
        String::from_utf8_lossy(&out.stdout).contains("boolean true")
    }

    fn dbus_send(&self, args: &[&str]) -> Output {
        env::command("dbus-send", &self.base_env())
            .args(["--session", "--print-reply", "--reply-timeout=5000"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run dbus-send")
    }
}

impl TestEnv for KeyringSession {
    fn env(&self) -> Vec<(String, String)> {
        let mut env = keychain_vars(
            &self.home,
            &self.runtime,
            &self.docker_config,
            "secret-service",
        );
        env::set(
            &mut env,
            "DBUS_SESSION_BUS_ADDRESS",
            self.bus_address.clone(),
        );
        env
    }

    fn home(&self) -> &Path {
        &self.home
    }

    fn docker_config_dir(&self) -> &Path {
        &self.docker_config
    }

    fn backend(&self) -> &'static str {
        "secret-service"
    }
}

impl Drop for KeyringSession {
    fn drop(&mut self) {
        if let Some(mut child) = self
            .keyring
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

fn log_file(path: &Path) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// keyutils: the shared session keyring, kept apart by a unique service name
// ---------------------------------------------------------------------------------------

/// The keyutils backend under a keychain service name no other test (or process) uses.
/// Drop erases every entry `list` shows, so the kernel keyring does not fill up.
pub struct KeyutilsEnv {
    service: String,
    home: PathBuf,
    runtime: PathBuf,
    docker_config: PathBuf,
    _root: TempDir,
}

impl KeyutilsEnv {
    /// `None` (after a loud SKIP) when the kernel denies keyutils, e.g. under a seccomp filter.
    pub fn new() -> Option<KeyutilsEnv> {
        let service = super::unique_name("dch-test");
        let root = tempfile::Builder::new()
            .prefix("dch-ku-")
            .tempdir()
            .expect("temp dir");
        let env = KeyutilsEnv {
            service,
            home: private_dir(&root.path().join("home")),
            runtime: private_dir(&root.path().join("run")),
            docker_config: private_dir(&root.path().join("docker")),
            _root: root,
        };
        let probe = env.cmd().arg("list").output().expect("run list");
        if probe.status.success() {
            return Some(env);
        }
        let text = String::from_utf8_lossy(&probe.stdout).into_owned();
        if text.contains("not permitted") {
            skip(&format!(
                "the kernel denies keyutils here (seccomp?), so the keyutils tests cannot run: {}",
                text.trim()
            ));
            return None;
        }
        panic!(
            "keyutils probe `list` failed: stdout {text:?}, stderr {:?}",
            String::from_utf8_lossy(&probe.stderr)
        );
    }

    /// The keychain service name (`DOCKER_CREDENTIAL_HUB_SERVICE`) no other test uses.
    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn runtime_dir(&self) -> &Path {
        &self.runtime
    }
}

impl TestEnv for KeyutilsEnv {
    fn env(&self) -> Vec<(String, String)> {
        let mut env = keychain_vars(&self.home, &self.runtime, &self.docker_config, "keyutils");
        env::set(
            &mut env,
            "DOCKER_CREDENTIAL_HUB_SERVICE",
            self.service.clone(),
        );
        env
    }

    fn home(&self) -> &Path {
        &self.home
    }

    fn docker_config_dir(&self) -> &Path {
        &self.docker_config
    }

    fn backend(&self) -> &'static str {
        "keyutils"
    }
}

impl Drop for KeyutilsEnv {
    fn drop(&mut self) {
        erase_all(self);
        self.invalidate_leftovers();
    }
}

impl KeyutilsEnv {
    /// Invalidate every kernel key still carrying our service name: keys `erase` cannot
    /// reach (a ServerURL with surrounding spaces, since `erase` trims its input) and
    /// internal ones. The helper links its keys into the user's persistent keyring, which
    /// lives for days and counts against the user's key quota, so leftovers would pile up.
    fn invalidate_leftovers(&self) {
        let Ok(proc_keys) = std::fs::read_to_string("/proc/keys") else {
            return;
        };
        let (user_key, internal_key) = (
            format!("@{}: ", self.service),
            format!("@{}:internal: ", self.service),
        );
        let ids: Vec<String> = proc_keys
            .lines()
            .filter(|l| l.contains(&user_key) || l.contains(&internal_key))
            .filter_map(|l| l.split_whitespace().next())
            .map(|id| format!("0x{id}"))
            .collect();
        if ids.is_empty() || !on_path("keyctl") {
            return;
        }
        // A key may only be invalidated by a process that possesses it: join a fresh
        // session keyring, link the persistent keyring into it, then invalidate.
        let _ = env::command("keyctl", &env::base_vars(&self.home, &self.runtime))
            .args(["session", "-", "sh", "-c"])
            .arg(r#"keyctl get_persistent @s >/dev/null && for id; do keyctl invalidate "$id"; done"#)
            .arg("sh")
            .args(&ids)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
