//! Test support shared by the integration suites: real components only (a private
//! gnome-keyring on a private D-Bus session, kernel keyutils, the docker CLI), plus the
//! loopback mock of the Docker Hub API.

/// Generate one `#[test]` per backend (real gnome-keyring, real keyutils, real pass) for each shared
/// test body `fn name(env: &dyn TestEnv)`; `#[macro_use] mod support;` brings it in.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod secret_service {
            $(
                #[test]
                fn $name() {
                    if let Some(env) = super::KeyringSession::start() {
                        super::$name(&env);
                    }
                }
            )*
        }
        mod keyutils {
            $(
                #[test]
                fn $name() {
                    if let Some(env) = super::KeyutilsEnv::new() {
                        super::$name(&env);
                    }
                }
            )*
        }
        mod pass {
            $(
                #[test]
                fn $name() {
                    if let Some(env) = crate::support::pass::PassEnv::new() {
                        super::$name(&env);
                    }
                }
            )*
        }
    };
}

#[cfg(target_os = "linux")]
pub mod dbus_peer;
#[cfg(target_os = "linux")]
pub mod elf;
#[cfg(target_os = "linux")]
pub mod hub_fixture;
#[cfg(target_os = "linux")]
pub mod keyring;
#[cfg(target_os = "linux")]
pub mod mock_hub;
#[cfg(target_os = "linux")]
pub mod other_user;
#[cfg(target_os = "linux")]
pub mod pass;
#[cfg(target_os = "linux")]
pub mod registry;
pub mod tools;
#[cfg(target_os = "linux")]
pub mod wine;

#[cfg(target_os = "linux")]
/// Record one reliability figure in target/tmp/reliability-NAME.txt; `.ci/run` prints them all
/// and the README quotes them.
pub fn report(name: &str, line: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(
        dir.join(format!("reliability-{name}.txt")),
        format!("{line}\n"),
    )
    .unwrap();
}

#[cfg(target_os = "linux")]
/// Start the child in a new session: no controlling terminal, so /dev/tty cannot be opened
/// and no prompt can appear, as under docker.
pub fn detach_from_terminal(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

#[cfg(target_os = "linux")]
/// A file's permission bits.
pub fn file_mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}
