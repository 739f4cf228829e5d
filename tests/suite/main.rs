//! The integration suite: one test binary, a module per tier. Every tier runs the built
//! binary (through `assert_cmd`) against real components: a private gnome-keyring on a
//! private D-Bus session, kernel keyutils, `pass` with a throwaway GPG key, the docker CLI,
//! podman and skopeo against a loopback registry, the Windows binary under Wine, and the
//! aarch64 release binary under qemu-user. The loopback mock of the Docker Hub API is the
//! one stand-in (the real Hub cannot be reached from CI); `support/mock_hub.rs` cites the
//! source of each of its behaviours.
//!
//! Nothing a test runs inherits the environment of whoever runs the suite
//! (`support/env.rs`), and every tier runs the binary through one harness, `TestEnv`
//! (`support/harness.rs`), whatever the keychain.
//!
//! Tiers that need Linux (Secret Service, keyutils, seccomp, uids) or Unix are gated to it;
//! on other systems the native-keychain tier runs instead.

#[macro_use]
mod support;

#[cfg(target_os = "linux")]
mod aarch64;
#[cfg(target_os = "linux")]
mod bus_auth;
#[cfg(target_os = "linux")]
mod bus_forgery;
#[cfg(target_os = "linux")]
mod bus_traffic;
#[cfg(target_os = "linux")]
mod cli;
#[cfg(target_os = "linux")]
mod configure;
#[cfg(target_os = "linux")]
mod configure_kill;
#[cfg(target_os = "linux")]
mod containers;
#[cfg(target_os = "linux")]
mod docker_cli;
#[cfg(target_os = "linux")]
mod doctor;
#[cfg(target_os = "linux")]
mod hardening;
#[cfg(target_os = "linux")]
mod hub;
#[cfg(target_os = "linux")]
mod hub_account;
#[cfg(target_os = "linux")]
mod hub_faults;
#[cfg(target_os = "linux")]
mod hub_fidelity;
#[cfg(target_os = "linux")]
mod hygiene;
#[cfg(target_os = "linux")]
mod keyring_faults;
#[cfg(target_os = "linux")]
mod keyutils_faults;
mod native;
#[cfg(target_os = "linux")]
mod pass_backend;
#[cfg(target_os = "linux")]
mod properties;
#[cfg(target_os = "linux")]
mod protocol;
#[cfg(target_os = "linux")]
mod record;
#[cfg(target_os = "linux")]
mod soak;
#[cfg(target_os = "linux")]
mod token_load;
#[cfg(target_os = "linux")]
mod trust;
#[cfg(target_os = "linux")]
mod wine_stores;
#[cfg(target_os = "linux")]
mod wsl;
