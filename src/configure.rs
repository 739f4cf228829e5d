//! `configure`: switch docker over to this helper, migrating existing credentials.

use std::process::ExitCode;

pub fn run(_args: &[String]) -> ExitCode {
    eprintln!("docker-credential-hub: configure is not implemented yet");
    ExitCode::from(1)
}
