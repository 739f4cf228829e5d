//! The aarch64 Linux release binary, built with the release workflow's own build step
//! (`.ci/run` runs it and names the result in DOCKER_CREDENTIAL_HUB_AARCH64_BINARY): it is
//! static-pie (ELF type ET_DYN, no PT_INTERP), and under qemu-user it answers store, get,
//! list and erase exactly on the private Secret Service (qemu-user has no keyctl, so not on
//! the kernel keyring). Without the variable the tier skips loudly; under CI it fails.

use std::path::{Path, PathBuf};

use crate::support::elf::{EM_AARCH64, assert_static_pie};
use crate::support::env;
use crate::support::harness::{
    TestEnv, assert_get, assert_not_found, erase_ok, list_map, store_ok,
};
use crate::support::keyring::KeyringSession;
use crate::support::tools::{require_tool, skip};

const VARIABLE: &str = "DOCKER_CREDENTIAL_HUB_AARCH64_BINARY";

fn aarch64_binary() -> Option<PathBuf> {
    match std::env::var_os(VARIABLE).filter(|v| !v.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "{VARIABLE}={} is not a file",
                path.display()
            );
            Some(path)
        }
        None => {
            skip(&format!(
                "{VARIABLE} is not set, so the aarch64 release binary is not checked; .ci/run builds it with the release workflow's command and sets it"
            ));
            None
        }
    }
}

/// The aarch64 binary under qemu-aarch64, on a private Secret Service.
struct UnderQemu<'a> {
    session: &'a KeyringSession,
    binary: &'a Path,
}

impl TestEnv for UnderQemu<'_> {
    fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = env::command("qemu-aarch64", &self.env());
        cmd.arg(self.binary);
        env::bounded(cmd)
    }

    fn env(&self) -> Vec<(String, String)> {
        self.session.env()
    }

    fn home(&self) -> &Path {
        self.session.home()
    }

    fn docker_config_dir(&self) -> &Path {
        self.session.docker_config_dir()
    }

    fn backend(&self) -> &'static str {
        "secret-service, aarch64 under qemu"
    }
}

#[test]
fn the_aarch64_release_binary_is_static_pie() {
    let Some(binary) = aarch64_binary() else {
        return;
    };
    assert_static_pie(&binary, EM_AARCH64);
}

#[test]
fn the_aarch64_release_binary_round_trips_under_qemu() {
    let Some(binary) = aarch64_binary() else {
        return;
    };
    if !require_tool("qemu-aarch64") {
        return;
    }
    let Some(session) = KeyringSession::start() else {
        return;
    };
    let env = UnderQemu {
        session: &session,
        binary: &binary,
    };
    let url = "https://registry.aarch64.example:5000";
    store_ok(&env, url, "arm-user", "arm-secret-<&>-0001");
    assert_get(&env, url, "arm-user", "arm-secret-<&>-0001");
    // The item is in the real keyring: the host's binary reads the same answer.
    assert_get(&session, url, "arm-user", "arm-secret-<&>-0001");
    assert_eq!(
        list_map(&env),
        [(url.to_string(), "arm-user".to_string())].into()
    );
    erase_ok(&env, url);
    assert_not_found(&env, url);
    assert!(list_map(&env).is_empty());
}
