//! `doctor`: a checklist of what docker will run and whether the keychain works.

use std::process::ExitCode;

pub fn run(_args: &[String]) -> ExitCode {
    eprintln!("docker-credential-hub: doctor is not implemented yet");
    ExitCode::from(1)
}
