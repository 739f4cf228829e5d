//! The real Windows binary under Debian's Wine, on Wine's Credential Manager and Wine's
//! DPAPI. Wine is evidence, not Windows: it runs the same code path (CredWriteW, CredReadW,
//! CredEnumerateW, CryptProtectData), but its Credential Manager is Wine's, which keeps
//! credentials as registry keys that `wine reg query` shows.
//!
//! Wine 8.0 lacks `bcryptprimitives.dll`, which Rust's std needs at start; a test-only
//! stand-in (tests/wine/bcryptprimitives.c, see its comment) is compiled with mingw into a
//! scratch directory and put on Wine's PATH. It never ships.
//!
//! `WineEnv` is a `TestEnv` (support/harness.rs): the protocol cases of native.rs run on it
//! as on every other keychain. Wine and the Windows binary get an environment of their own
//! like every other program (support/env.rs), with a HOME shared by the one Wine prefix.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use super::env;
use super::harness::{TestEnv, erase_all};
use super::tools::{require_tool, skip};

const WINE: &str = "/usr/lib/wine/wine64";
const TARGET: &str = "x86_64-pc-windows-gnu";

/// Everything the Wine tier needs, made once per test binary.
struct Setup {
    exe: PathBuf,
    dll_dir: PathBuf,
    prefix: PathBuf,
    /// Wine's HOME, as shared as its prefix.
    home: PathBuf,
    /// A Wine program that lives as long as this test binary (see `setup`).
    _keepalive: Option<std::process::Child>,
}

fn tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = tmp().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Windows build: `DOCKER_CREDENTIAL_HUB_WINDOWS_EXE` (`.ci/run` builds it first), else
/// built here into its own target directory.
fn windows_exe() -> Option<PathBuf> {
    if let Some(exe) =
        std::env::var_os("DOCKER_CREDENTIAL_HUB_WINDOWS_EXE").filter(|v| !v.is_empty())
    {
        let exe = PathBuf::from(exe);
        assert!(
            exe.is_file(),
            "DOCKER_CREDENTIAL_HUB_WINDOWS_EXE={} is not a file",
            exe.display()
        );
        return Some(exe);
    }
    // Building is the toolchain's business: rustup and cargo run with the runner's own
    // environment (CARGO_HOME, RUSTUP_HOME), as the build of the suite itself did.
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == TARGET)
        })
        .unwrap_or(false);
    if !installed {
        skip(&format!(
            "the Rust target {TARGET} is not installed, so the Windows binary cannot be built for the Wine tier; run `rustup target add {TARGET}`"
        ));
        return None;
    }
    let target_dir = tmp().join("wine-build");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--locked",
            "--target",
            TARGET,
            "--bin",
            "docker-credential-hub",
        ])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("run cargo build for Windows");
    assert!(status.success(), "cargo build --target {TARGET} failed");
    Some(
        target_dir
            .join(TARGET)
            .join("debug/docker-credential-hub.exe"),
    )
}

fn stand_in_dll() -> PathBuf {
    let dir = scratch("wine-dll");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wine/bcryptprimitives.c");
    let out = env::command("x86_64-w64-mingw32-gcc", &[])
        .args(["-shared", "-O2", "-s", "-o"])
        .arg(dir.join("bcryptprimitives.dll"))
        .arg(&source)
        .arg("-ladvapi32")
        .output()
        .expect("run x86_64-w64-mingw32-gcc");
    assert!(
        out.status.success(),
        "building the stand-in DLL failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn setup() -> Option<&'static Setup> {
    static SETUP: OnceLock<Option<Setup>> = OnceLock::new();
    SETUP
        .get_or_init(|| {
            if !Path::new(WINE).exists() {
                skip("Wine is not installed; install it with apt-get install -y wine wine64");
                return None;
            }
            if !require_tool("x86_64-w64-mingw32-gcc") {
                return None;
            }
            let exe = windows_exe()?;
            let dll_dir = stand_in_dll();
            let prefix = tmp().join("wine-prefix");
            let mut setup = Setup {
                exe,
                dll_dir,
                prefix,
                home: scratch("wine-home"),
                _keepalive: None,
            };
            if !setup.prefix.join("system.reg").exists() {
                let status = setup
                    .wine(WINE)
                    .args(["wineboot", "--init"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("run wineboot");
                assert!(status.success(), "wineboot --init failed");
            }
            // One wineserver for the whole run. Wine starts a server, and its services
            // (services.exe, winedevice.exe, and wineboot when the prefix changed), with the
            // first program after the last server exited; they inherit that program's pipes
            // and keep them open, so that reading its output never ends. A server exits a few
            // seconds after its last client, and the suite has longer gaps between Wine tests.
            // So a client lives as long as this test binary: `cmd` waiting on a stdin that
            // closes when the binary exits (then `cmd`, and the server after it, exit too).
            setup._keepalive = setup
                .wine(WINE)
                .arg("cmd")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok();
            // Wait until the services run, started by a program whose output is /dev/null.
            let status = setup
                .wine(WINE)
                .args(["cmd", "/c", "exit"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("start Wine's services");
            assert!(status.success(), "wine cmd /c exit failed");
            Some(setup)
        })
        .as_ref()
}

impl Setup {
    /// What every Wine program gets: Wine's HOME and prefix, the stand-in DLL and the exe
    /// on Wine's PATH, no debug channels, and no Mono or Gecko installation attempts.
    fn vars(&self) -> Vec<(String, String)> {
        let exe_dir = self.exe.parent().unwrap_or(Path::new("."));
        let mut vars = env::base_vars(&self.home, &self.home);
        vars.retain(|(k, _)| k != "XDG_RUNTIME_DIR");
        vars.extend([
            ("WINEPREFIX".into(), self.prefix.display().to_string()),
            ("WINEDEBUG".into(), "-all".into()),
            ("WINEDLLOVERRIDES".into(), "mscoree,mshtml=".into()),
            (
                "WINEPATH".into(),
                format!("{};{}", self.dll_dir.display(), exe_dir.display()),
            ),
        ]);
        vars
    }

    fn wine(&self, program: &str) -> Command {
        env::command(program, &self.vars())
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A Unix path as Wine sees it: a `Z:` path.
pub fn windows_path(p: &Path) -> String {
    format!("Z:{}", p.display()).replace('/', "\\")
}

/// The Windows binary under Wine, with a keychain service name no other test uses.
pub struct WineEnv {
    setup: &'static Setup,
    pub service: String,
    pub docker_config: tempfile::TempDir,
    /// `DOCKER_CREDENTIAL_HUB_BACKEND`, when the test chooses one.
    pub backend: Option<&'static str>,
}

/// One credential in Wine's Credential Manager, as `wine reg query` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WineCredential {
    pub target: String,
    pub username: String,
    /// Wine keeps the blob encrypted at its own length.
    pub blob_len: usize,
}

/// Parse `wine reg query "HKCU\Software\Wine\Credential Manager" /s`.
fn parse_credentials(text: &str) -> Vec<WineCredential> {
    let mut out: Vec<WineCredential> = Vec::new();
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        if let Some((_, target)) = line.split_once("\\Credential Manager\\Generic: ") {
            out.push(WineCredential {
                target: target.to_string(),
                username: String::new(),
                blob_len: 0,
            });
            continue;
        }
        let Some(cred) = out.last_mut() else {
            continue;
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["Password", "REG_BINARY", hex] => cred.blob_len = hex.len() / 2,
            ["Password", "REG_BINARY"] => cred.blob_len = 0,
            ["UserName", "REG_SZ", rest @ ..] => cred.username = rest.join(" "),
            _ => {}
        }
    }
    out
}

impl WineEnv {
    pub fn new() -> Option<WineEnv> {
        Self::with(None)
    }

    /// With `DOCKER_CREDENTIAL_HUB_BACKEND=backend`.
    pub fn with_backend(backend: &'static str) -> Option<WineEnv> {
        Self::with(Some(backend))
    }

    fn with(backend: Option<&'static str>) -> Option<WineEnv> {
        let setup = setup()?;
        Some(WineEnv {
            setup,
            service: super::unique_name("dch-wine"),
            docker_config: tempfile::tempdir().unwrap(),
            backend,
        })
    }

    /// The Windows binary under Wine, as a process to spawn (`cmd()` is the same, bounded).
    pub fn command(&self) -> Command {
        let mut c = env::command(WINE, &self.env());
        c.arg(&self.setup.exe);
        c
    }

    /// The Wine prefix every Wine test shares.
    pub fn prefix(&self) -> &Path {
        &self.setup.prefix
    }

    /// A Wine program (`reg`, `cmd`) in the shared prefix.
    pub fn wine_tool(&self, args: &[&str]) -> Output {
        self.setup
            .wine(WINE)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run wine64")
    }

    /// A shell script named `name` in `dir` that runs the Windows binary under Wine with
    /// this environment's service (and backend), as WSL interop runs a `.exe` from PATH.
    pub fn wrapper_script(&self, dir: &Path, name: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let cmd = self.command();
        // Exactly this environment, as `command()` has it: nothing of the caller's.
        let mut script = String::from("#!/bin/sh\nexec env -i");
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                script.push_str(&format!(
                    " {}={}",
                    k.to_string_lossy(),
                    shell_quote(&v.to_string_lossy())
                ));
            }
        }
        script.push_str(&format!(
            " {}",
            shell_quote(&cmd.get_program().to_string_lossy())
        ));
        for a in cmd.get_args() {
            script.push_str(&format!(" {}", shell_quote(&a.to_string_lossy())));
        }
        script.push_str(" \"$@\"\n");
        let path = dir.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Every credential of this test's service in Wine's Credential Manager: its own, its
    /// internal ones, and the parts of either.
    pub fn credentials(&self) -> Vec<WineCredential> {
        let out = self.wine_tool(&[
            "reg",
            "query",
            r"HKCU\Software\Wine\Credential Manager",
            "/s",
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        // A service's targets are `docker-credential-hub|<service>[:internal][:parts]|…`.
        let mine = format!("|{}", self.service);
        parse_credentials(&text)
            .into_iter()
            .filter(|c| {
                c.target
                    .strip_prefix("docker-credential-hub")
                    .is_some_and(|rest| {
                        rest.strip_prefix(&mine)
                            .is_some_and(|tail| tail.starts_with('|') || tail.starts_with(':'))
                    })
            })
            .collect()
    }
}

impl TestEnv for WineEnv {
    fn backend(&self) -> &'static str {
        self.backend.unwrap_or("wincred")
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut vars = self.setup.vars();
        vars.extend([
            ("DOCKER_CREDENTIAL_HUB_SERVICE".into(), self.service.clone()),
            ("DOCKER_CREDENTIAL_HUB_TIMEOUT".into(), "30".into()),
            // A Unix path is a Z: path to Wine.
            (
                "DOCKER_CONFIG".into(),
                windows_path(self.docker_config.path()),
            ),
        ]);
        if let Some(b) = self.backend {
            vars.push(("DOCKER_CREDENTIAL_HUB_BACKEND".into(), b.into()));
        }
        vars
    }

    fn cmd(&self) -> assert_cmd::Command {
        env::bounded(self.command())
    }

    fn home(&self) -> &Path {
        &self.setup.home
    }

    fn docker_config_dir(&self) -> &Path {
        self.docker_config.path()
    }

    fn windows(&self) -> bool {
        true
    }

    fn wine(&self) -> bool {
        true
    }
}

impl Drop for WineEnv {
    /// Erase whatever the test left under its service name.
    fn drop(&mut self) {
        erase_all(self);
    }
}
