//! Test support shared by the tiers: the environment every program runs in (`env`), the one
//! harness for running the binary under test on any keychain (`harness`, `output`), the
//! private keychains themselves (`keyring`, `pass`, `wine`, `native`), the tools a tier
//! needs (`tools`), and the loopback stand-ins (`mock_hub`, `registry`, `dbus_peer`).

/// One `#[test]` per backend for each shared test body `fn name(env: &dyn TestEnv)`, in a
/// module per backend: `on_backends!([secret_service, keyutils], needs ["docker"], [a, b])`
/// runs `a` and `b` on the private Secret Service and on keyutils, each after checking that
/// docker is installed. The backends are the `@env` arms below: the Linux keychains, the
/// Windows binary under Wine on either of its stores, and the native keychain of macOS and
/// Windows. `#[macro_use] mod support;` brings it in.
#[allow(unused_macros)]
macro_rules! on_backends {
    ([$($backend:ident),+ $(,)?], needs $needs:expr, $names:tt) => {
        $(on_backends!(@module $backend, $needs, $names);)+
    };
    (@module $backend:ident, $needs:expr, [$($name:ident),+ $(,)?]) => {
        mod $backend {
            $(
                #[test]
                fn $name() {
                    let needs: &[&str] = &$needs;
                    if !needs.iter().all(|tool| crate::support::tools::require_tool(tool)) {
                        return;
                    }
                    if let Some(env) = on_backends!(@env $backend) {
                        super::$name(&env);
                    }
                }
            )+
        }
    };
    (@env secret_service) => { crate::support::keyring::KeyringSession::start() };
    (@env keyutils) => { crate::support::keyring::KeyutilsEnv::new() };
    (@env pass) => { crate::support::pass::PassEnv::new() };
    (@env wine_wincred) => { crate::support::wine::WineEnv::new() };
    (@env wine_dpapi) => { crate::support::wine::WineEnv::with_backend("dpapi") };
    (@env native_keychain) => { crate::support::native::NativeEnv::new(None) };
    (@env native_dpapi) => { crate::support::native::NativeEnv::new(Some("dpapi")) };
}

/// One `#[test]` per Linux backend (the real gnome-keyring, kernel keyutils and `pass`) for
/// each shared test body `fn name(env: &dyn TestEnv)`.
#[allow(unused_macros)]
macro_rules! on_every_backend {
    ($($name:ident),+ $(,)?) => {
        on_backends!([secret_service, keyutils, pass], needs [], [$($name),+]);
    };
}

#[cfg(target_os = "linux")]
pub mod dbus_peer;
#[cfg(target_os = "linux")]
pub mod elf;
// env, harness and output are shared by every platform; most of each serves the tiers that
// only Linux runs.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub mod env;
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub mod harness;
#[cfg(target_os = "linux")]
pub mod hub_fixture;
#[cfg(target_os = "linux")]
pub mod keyring;
#[cfg(target_os = "linux")]
pub mod mock_hub;
#[cfg(any(target_os = "macos", windows))]
pub mod native;
#[cfg(target_os = "linux")]
pub mod other_user;
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub mod output;
#[cfg(target_os = "linux")]
pub mod pass;
#[cfg(target_os = "linux")]
pub mod registry;
#[cfg(target_os = "linux")]
pub mod rng;
pub mod tools;
#[cfg(target_os = "linux")]
pub mod wine;

/// A name no other test, and no other run, uses: `prefix`, this process and a counter.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

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

#[cfg(target_os = "linux")]
/// A small executable shell script named `name` in `dir`.
pub fn script(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[cfg(target_os = "linux")]
/// Every regular file under `dir`; links are not followed.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                todo.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}
