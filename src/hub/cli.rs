//! `login`, `token` and `logout`: the human-facing Hub commands (errors go to stderr).

use std::process::ExitCode;

pub fn login(_args: &[String]) -> ExitCode {
    eprintln!("docker-credential-hub: login is not implemented yet");
    ExitCode::from(1)
}

pub fn token(_args: &[String]) -> ExitCode {
    eprintln!("docker-credential-hub: token is not implemented yet");
    ExitCode::from(1)
}

pub fn logout(_args: &[String]) -> ExitCode {
    eprintln!("docker-credential-hub: logout is not implemented yet");
    ExitCode::from(1)
}
