//! The commands for people each answer `--help` (and `-h`) with their usage on stdout and
//! exit 0, without touching the keychain or the network; `help` itself is not taken for it.

use crate::support::harness::run;
use crate::support::keyring::KeyutilsEnv;
use crate::support::output::describe;

const COMMANDS: [&str; 5] = ["login", "logout", "token", "configure", "doctor"];

#[test]
fn every_command_prints_its_usage_for_help() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    for command in COMMANDS {
        for flag in ["--help", "-h"] {
            let out = run(&env, &[command, flag], "");
            let what = format!("{command} {flag}: {}", describe(&out));
            assert!(out.status.success(), "{what}");
            assert!(out.stderr.is_empty(), "{what}");
            let text = String::from_utf8_lossy(&out.stdout);
            let first = text.lines().next().unwrap_or_default();
            assert!(
                first.to_ascii_lowercase().starts_with("usage:")
                    && first.contains(&format!("docker-credential-hub {command}")),
                "{what}"
            );
            // The usage and nothing else: no check ran, nothing was asked or printed.
            assert!(
                !text.contains("Login Succeeded") && !text.contains("ok   "),
                "{what}"
            );
        }
        // An argument that is not an option stays an error, and is never repeated.
        let out = run(&env, &[command, "help-hunter2"], "");
        assert!(!out.status.success(), "{command}: {}", describe(&out));
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("hunter2"),
            "{command}: {}",
            describe(&out)
        );
    }
}
