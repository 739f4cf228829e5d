//! Dispatch only: argv to a command, its status to the exit code.

use std::process::ExitCode;

use docker_credential_hub::cli;
use docker_credential_hub::protocol::{self, Action};

fn main() -> ExitCode {
    // Arguments that are not valid Unicode cannot name a command; never echo them.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let Some(first) = args.first() else {
        return protocol::usage_error();
    };
    match first.as_str() {
        "-h" | "--help" | "help" => protocol::help(),
        "-v" | "--version" | "version" => protocol::version(),
        "login" => cli::login(&args[1..]),
        "logout" => cli::logout(&args[1..]),
        "token" => cli::token(&args[1..]),
        "configure" => cli::configure::run(&args[1..]),
        "doctor" => cli::doctor::run(&args[1..]),
        word => match Action::parse(word) {
            Some(action) => cli::serve::serve(action, &args[1..]),
            None => protocol::unknown_action(word),
        },
    }
}
