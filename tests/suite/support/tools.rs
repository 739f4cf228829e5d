//! Finding the binary under test and the tools a tier needs, on every platform.

use std::io::Write;
use std::path::PathBuf;

/// The `docker-credential-hub` binary under test: the one cargo built for the tests, or the
/// one named by DOCKER_CREDENTIAL_HUB_TEST_BINARY (`.ci/run` points it at the release build
/// from scripts/build-release.sh, the binary users install, and runs every tier again).
pub fn helper_bin() -> PathBuf {
    match std::env::var_os("DOCKER_CREDENTIAL_HUB_TEST_BINARY") {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "DOCKER_CREDENTIAL_HUB_TEST_BINARY={} is not a file",
                path.display()
            );
            path
        }
        _ => PathBuf::from(env!("CARGO_BIN_EXE_docker-credential-hub")),
    }
}

#[cfg(target_os = "linux")]
fn package_of(tool: &str) -> &'static str {
    match tool {
        "dbus-daemon" | "dbus-send" => "dbus-daemon",
        "dbus-monitor" => "dbus-bin",
        "gnome-keyring-daemon" => "gnome-keyring",
        "secret-tool" => "libsecret-tools",
        "docker-credential-secretservice" => "golang-docker-credential-helpers",
        "keyctl" => "keyutils",
        "git" => "git",
        "docker" => "docker.io (or docker-ce-cli from download.docker.com)",
        "script" => "util-linux",
        "strace" => "strace",
        "hyperfine" => "hyperfine",
        "qemu-aarch64" => "qemu-user",
        _ => "the package that provides it",
    }
}

#[cfg(target_os = "linux")]
pub fn on_path(name: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(name)))
}

#[cfg(target_os = "linux")]
fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Say loudly that a test cannot run here. With `CI` set, a skip is a failure.
pub fn skip(reason: &str) {
    let msg = format!("SKIP: {reason}");
    if std::env::var_os("CI").is_some() {
        panic!("{msg} (CI is set, so missing test tiers fail instead of skipping)");
    }
    // Written to the stderr handle directly: the test harness captures `eprintln!` of
    // passing tests, and a skip must be seen.
    let _ = writeln!(std::io::stderr(), "\n!!!!!!!! {msg} !!!!!!!!\n");
}

/// True when `name` is on PATH. Otherwise a loud SKIP line (or, under CI, a panic).
#[cfg(target_os = "linux")]
pub fn require_tool(name: &str) -> bool {
    if on_path(name) {
        return true;
    }
    skip(&format!(
        "{name} not installed; install it with apt-get install -y {}",
        package_of(name)
    ));
    false
}
