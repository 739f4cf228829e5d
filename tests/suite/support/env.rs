//! The one place where the environment of every program a test runs is made: the helper
//! under test and each tool around it (docker, podman, skopeo, pass, gpg, git, dbus-daemon,
//! gnome-keyring, secret-tool, keyctl, wine, the registry…).
//!
//! Nothing comes from whoever runs the tests. Every command starts from an empty
//! environment; PATH is built from the system's standard directories, never from the
//! runner's PATH; then a test adds exactly the variables it means (its own HOME,
//! XDG_RUNTIME_DIR, DOCKER_CONFIG, D-Bus address, GNUPGHOME, …). So a developer's session
//! bus, docker config, GnuPG home, password store, containers configuration or
//! `DOCKER_AUTH_CONFIG`, and a `docker-credential-hub` they installed with `./install.sh`,
//! never reach a test. `.ci/run` runs the suite after `./install.sh`, with each of those
//! variables set to a poison value, to keep it that way.
//!
//! The test binary itself still reads a few variables of the runner's: its own switches
//! (`CI`, `DOCKER_CREDENTIAL_HUB_TEST_BINARY`, …) and the toolchain that builds the Windows
//! binary for the Wine tier (support/wine.rs).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use super::tools::helper_bin;

/// No single helper run may take longer than this; a hang fails the test instead.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The file name docker looks for on PATH.
pub const HELPER_FILE: &str = if cfg!(windows) {
    "docker-credential-hub.exe"
} else {
    "docker-credential-hub"
};

/// The system's standard program directories, in the order Debian's login PATH has them.
#[cfg(unix)]
fn standard_dirs() -> Vec<PathBuf> {
    [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

/// The system's standard program directories: those of a fresh Windows account.
#[cfg(windows)]
fn standard_dirs() -> Vec<PathBuf> {
    let root = PathBuf::from(system_root());
    vec![
        root.join("System32"),
        root.clone(),
        root.join(r"System32\Wbem"),
        root.join(r"System32\WindowsPowerShell\v1.0"),
    ]
}

/// Where Windows is installed; every Windows program needs `SystemRoot` to start.
#[cfg(windows)]
pub fn system_root() -> String {
    std::env::var("SystemRoot").unwrap_or_else(|_| r"C:\Windows".into())
}

/// PATH for every program a test runs: the standard directories that exist. One that holds a
/// `docker-credential-hub` (`PREFIX=/usr/local ./install.sh` puts one in /usr/local/bin) is
/// replaced by a scratch directory of links to its other programs, so that the only helper a
/// test can find is the one it puts on PATH itself.
pub fn system_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let dirs = without_installed_helper(&standard_dirs(), &scratch_root());
        join(&dirs)
    })
}

/// PATH with `first` ahead of the system's directories.
pub fn path_with(first: &[&Path]) -> String {
    let mut dirs: Vec<PathBuf> = first.iter().map(|d| d.to_path_buf()).collect();
    dirs.extend(std::env::split_paths(system_path()));
    join(&dirs)
}

/// The directory of the binary under test: what `./install.sh` puts on PATH.
pub fn helper_dir() -> PathBuf {
    helper_bin()
        .parent()
        .expect("the binary under test is in a directory")
        .to_path_buf()
}

fn join(dirs: &[PathBuf]) -> String {
    std::env::join_paths(dirs)
        .expect("a PATH directory with a separator in its name")
        .into_string()
        .expect("PATH directories are UTF-8")
}

/// Each of `dirs` that exists, except that one holding the helper is replaced by a
/// directory under `scratch` with a link to everything else it holds.
fn without_installed_helper(dirs: &[PathBuf], scratch: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        if !dir.is_dir() {
            continue;
        }
        if dir.join(HELPER_FILE).symlink_metadata().is_err() {
            out.push(dir.clone());
            continue;
        }
        #[cfg(unix)]
        {
            let copy = scratch.join(i.to_string());
            std::fs::create_dir_all(&copy)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", copy.display()));
            for entry in std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .flatten()
            {
                let name = entry.file_name();
                let link = copy.join(&name);
                if name == OsStr::new(HELPER_FILE) || link.symlink_metadata().is_ok() {
                    continue;
                }
                std::os::unix::fs::symlink(entry.path(), &link)
                    .unwrap_or_else(|e| panic!("cannot link {}: {e}", link.display()));
            }
            out.push(copy);
        }
        // Without links, a system directory that holds a helper is left out.
        #[cfg(not(unix))]
        let _ = (i, scratch);
    }
    out
}

/// This test process's scratch directory for PATH links (made only when needed); those of
/// earlier runs whose process is gone are removed.
fn scratch_root() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    #[cfg(unix)]
    if let Ok(entries) = std::fs::read_dir(tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix("system-path-")
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            // SAFETY: kill with signal 0 only asks whether the process exists.
            let gone = unsafe { libc::kill(pid, 0) } != 0
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
            if gone {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    tmp.join(format!("system-path-{}", std::process::id()))
}

/// The variables every test environment starts from: the system PATH, a HOME and runtime
/// directory of the test's own, and a UTF-8 locale.
pub fn base_vars(home: &Path, runtime: &Path) -> Vec<(String, String)> {
    vec![
        ("PATH".into(), system_path().into()),
        ("HOME".into(), home.display().to_string()),
        ("XDG_RUNTIME_DIR".into(), runtime.display().to_string()),
        ("LANG".into(), "C.UTF-8".into()),
    ]
}

/// `vars` with `name` set to `value` (replacing an earlier value).
pub fn set(vars: &mut Vec<(String, String)>, name: &str, value: impl Into<String>) {
    vars.retain(|(k, _)| k != name);
    vars.push((name.into(), value.into()));
}

/// The value of `name` in `vars`.
pub fn get<'v>(vars: &'v [(String, String)], name: &str) -> Option<&'v str> {
    vars.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `program` with nothing inherited: an empty environment but for the system PATH (on
/// Windows also the variables every program needs to start), then `vars`, which may
/// replace PATH.
pub fn command(program: impl AsRef<OsStr>, vars: &[(String, String)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.env_clear().env("PATH", system_path());
    #[cfg(windows)]
    cmd.env("SystemRoot", system_root())
        .env("windir", system_root());
    cmd.envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd
}

/// The helper under test with exactly `vars`.
pub fn helper_process(vars: &[(String, String)]) -> std::process::Command {
    command(helper_bin(), vars)
}

/// The helper under test with exactly `vars`, bounded by `COMMAND_TIMEOUT`.
pub fn helper_command(vars: &[(String, String)]) -> assert_cmd::Command {
    bounded(helper_process(vars))
}

/// `cmd` as an `assert_cmd` command bounded by `COMMAND_TIMEOUT`.
pub fn bounded(cmd: std::process::Command) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::from_std(cmd);
    cmd.timeout(COMMAND_TIMEOUT);
    cmd
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// An installed helper in a system directory never reaches PATH, and every other program
    /// of that directory still does.
    #[test]
    fn a_directory_holding_an_installed_helper_is_replaced_by_links_to_its_other_programs() {
        let root = tempfile::tempdir().unwrap();
        let (installed, plain, missing) = (
            root.path().join("local-bin"),
            root.path().join("bin"),
            root.path().join("absent"),
        );
        for d in [&installed, &plain] {
            std::fs::create_dir(d).unwrap();
        }
        for f in [HELPER_FILE, "docker"] {
            std::fs::write(installed.join(f), "#!/bin/sh\n").unwrap();
        }
        std::fs::write(plain.join("gpg"), "#!/bin/sh\n").unwrap();
        let scratch = root.path().join("scratch");

        let dirs = without_installed_helper(&[installed.clone(), missing, plain.clone()], &scratch);

        assert_eq!(dirs.len(), 2, "{dirs:?}");
        assert_eq!(
            dirs[1], plain,
            "a directory without a helper is used as it is"
        );
        assert!(dirs[0].starts_with(&scratch), "{dirs:?}");
        assert!(!dirs[0].join(HELPER_FILE).exists());
        assert_eq!(
            std::fs::read_link(dirs[0].join("docker")).unwrap(),
            installed.join("docker")
        );
    }
}
