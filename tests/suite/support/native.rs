//! The operating system's own keychain on macOS and Windows, under a unique service name
//! that is cleaned up on drop. It is the keychain of whoever runs the tests, so the tier
//! runs only with DOCKER_CREDENTIAL_HUB_NATIVE_TESTS=1 (the GitHub workflow sets it on its
//! throwaway runners).
//!
//! The environment is the test's own like everywhere else (support/env.rs), with the one
//! exception the keychain itself needs: on macOS the runner's HOME, through which the
//! Security framework finds the login keychain. Docker's config, the backend record and (on
//! Windows) the profile and application-data directories are the test's own.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::env;
use super::harness::{TestEnv, erase_all};
use super::tools::skip;

pub struct NativeEnv {
    service: String,
    /// `DOCKER_CREDENTIAL_HUB_BACKEND`, when the test chooses one.
    backend: Option<&'static str>,
    home: PathBuf,
    docker_config: PathBuf,
    root: TempDir,
}

impl NativeEnv {
    /// The native keychain (`auto`), or the store `backend`; `None` after a loud SKIP unless
    /// DOCKER_CREDENTIAL_HUB_NATIVE_TESTS is set.
    pub fn new(backend: Option<&'static str>) -> Option<NativeEnv> {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            eprintln!(
                "SKIP: the Secret Service, pass, keyutils, docker CLI, podman, Hub and hardening tiers need Linux and are compiled out here; .ci/run runs them on Linux"
            )
        });
        if std::env::var_os("DOCKER_CREDENTIAL_HUB_NATIVE_TESTS").is_none() {
            skip(
                "the native-keychain tier uses this machine's own keychain; set DOCKER_CREDENTIAL_HUB_NATIVE_TESTS=1 to run it",
            );
            return None;
        }
        let root = tempfile::Builder::new()
            .prefix("dch-native-")
            .tempdir()
            .unwrap();
        for d in [
            "docker",
            "config",
            "profile",
            "appdata",
            "localappdata",
            "tmp",
        ] {
            std::fs::create_dir(root.path().join(d)).unwrap();
        }
        let home = if cfg!(windows) {
            root.path().join("profile")
        } else {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
        };
        Some(NativeEnv {
            service: super::unique_name("dch-native"),
            backend,
            home,
            docker_config: root.path().join("docker"),
            root,
        })
    }

    fn dir(&self, name: &str) -> String {
        self.root.path().join(name).display().to_string()
    }
}

impl TestEnv for NativeEnv {
    fn backend(&self) -> &'static str {
        self.backend.unwrap_or(if cfg!(windows) {
            "wincred"
        } else {
            "macos-keychain"
        })
    }

    fn env(&self) -> Vec<(String, String)> {
        // The helper on PATH: `doctor` and `configure` look for it there, as docker does.
        let mut vars = vec![
            ("PATH".into(), env::path_with(&[&env::helper_dir()])),
            (
                "DOCKER_CONFIG".into(),
                self.docker_config.display().to_string(),
            ),
            ("DOCKER_CREDENTIAL_HUB_SERVICE".into(), self.service.clone()),
        ];
        if cfg!(windows) {
            // What every Windows program expects to find, read from the system itself.
            for name in [
                "SystemDrive",
                "ComSpec",
                "PATHEXT",
                "OS",
                "PROCESSOR_ARCHITECTURE",
                "NUMBER_OF_PROCESSORS",
                "USERNAME",
                "USERDOMAIN",
                "COMPUTERNAME",
                "ProgramData",
            ] {
                if let Ok(value) = std::env::var(name) {
                    vars.push((name.into(), value));
                }
            }
            vars.extend([
                ("USERPROFILE".into(), self.dir("profile")),
                ("APPDATA".into(), self.dir("appdata")),
                ("LOCALAPPDATA".into(), self.dir("localappdata")),
                ("TEMP".into(), self.dir("tmp")),
                ("TMP".into(), self.dir("tmp")),
            ]);
        } else {
            vars.extend([
                ("HOME".into(), self.home.display().to_string()),
                ("XDG_CONFIG_HOME".into(), self.dir("config")),
                ("TMPDIR".into(), self.dir("tmp")),
                ("LANG".into(), "C.UTF-8".into()),
            ]);
        }
        if let Some(b) = self.backend {
            vars.push(("DOCKER_CREDENTIAL_HUB_BACKEND".into(), b.into()));
        }
        vars
    }

    fn home(&self) -> &Path {
        &self.home
    }

    fn docker_config_dir(&self) -> &Path {
        &self.docker_config
    }
}

impl Drop for NativeEnv {
    /// Erase whatever the test left in the keychain under its service name.
    fn drop(&mut self) {
        erase_all(self);
    }
}
