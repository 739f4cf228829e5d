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

/// The Debian package that installs `tool`.
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
        "script" | "setpriv" => "util-linux",
        "pass" => "pass",
        "gpg" | "gpgconf" => "gnupg",
        "podman" => "podman",
        "skopeo" => "skopeo",
        "docker-registry" => "docker-registry",
        "htpasswd" => "apache2-utils",
        "docker-credential-pass" => "golang-docker-credential-helpers",
        "x86_64-w64-mingw32-gcc" => "gcc-mingw-w64-x86-64",
        "strace" => "strace",
        "hyperfine" => "hyperfine",
        "qemu-aarch64" => "qemu-user",
        _ => "the package that provides it",
    }
}

/// Whether `name` is a program in the system PATH every test gets (support/env.rs).
pub fn on_path(name: &str) -> bool {
    std::env::split_paths(super::env::system_path()).any(|dir| is_executable(&dir.join(name)))
}

#[cfg(unix)]
fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &std::path::Path) -> bool {
    path.is_file()
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

/// True when `name` is in the system PATH. Otherwise a loud SKIP line (or, under CI, a panic).
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
