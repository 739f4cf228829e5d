//! The command layer: what each command of the binary does around the protocol, the
//! keychains and Docker Hub. The protocol actions (`serve`) answer on stdout, as docker
//! reads them; the commands for people (`login`, `logout`, `token`, `configure`, `doctor`)
//! parse their arguments with one parser ([args]) and return their failure as a value,
//! printed once at the top on stderr. Only this layer names commands in its advice
//! ([advice]).

mod advice;
mod args;
pub mod configure;
pub mod doctor;
mod login;
mod logout;
pub mod serve;
mod token;

use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;

use anyhow::anyhow;

use crate::deadline::Deadline;
use crate::keychain::{self, KeychainError, Opened, Selection};
use crate::{NAME, settings};

pub use advice::explain;
pub use login::login;
pub use logout::logout;
pub use token::token;

/// A failed command: the lines that say what went wrong (the last one ends with the fix),
/// printed once, on stderr, each after the command's prefix; and the exit status.
#[derive(Debug)]
pub struct Failure {
    lines: Vec<String>,
    code: u8,
}

impl Failure {
    /// One line, exit status 1.
    pub fn new(line: impl Display) -> Failure {
        Failure {
            lines: vec![line.to_string()],
            code: 1,
        }
    }

    /// A command line that cannot be run: exit status 2.
    pub fn usage(line: impl Display) -> Failure {
        Failure {
            lines: vec![line.to_string()],
            code: 2,
        }
    }

    /// Nothing more to say (the command's output said it): exit status 1.
    pub fn quiet() -> Failure {
        Failure {
            lines: Vec::new(),
            code: 1,
        }
    }

    /// The same failure, after the lines that detail it (each problem found).
    pub fn after(mut self, details: impl IntoIterator<Item = String>) -> Failure {
        let mut lines: Vec<String> = details.into_iter().collect();
        lines.append(&mut self.lines);
        self.lines = lines;
        self
    }
}

/// The error of a command for people, in its one line: the failure, then its causes.
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::new(format!("{e:#}"))
    }
}

/// Print a command's failure, if any, once: `docker-credential-hub[ command]: line` on
/// stderr.
fn finish(command: Option<&str>, result: Result<(), Failure>) -> ExitCode {
    let Err(failure) = result else {
        return ExitCode::SUCCESS;
    };
    let prefix = match command {
        Some(c) => format!("{NAME} {c}"),
        None => NAME.to_string(),
    };
    let mut err = std::io::stderr().lock();
    for line in &failure.lines {
        let _ = writeln!(err, "{prefix}: {line}");
    }
    ExitCode::from(failure.code)
}

/// The kernel keyring forgets at reboot: one warning line on stderr, from every command
/// that puts credentials there. `stored` says whether they are in it already.
fn warn_if_volatile(command: Option<&str>, selection: &Selection, stored: bool) {
    if !selection.volatile() {
        return;
    }
    let prefix = match command {
        Some(c) => format!("{NAME} {c}"),
        None => NAME.to_string(),
    };
    let state = if stored { "are" } else { "will be kept" };
    eprintln!(
        "{prefix}: warning: credentials {state} in the kernel keyring and will not survive a reboot ({selection}); run `{NAME} doctor` for a persistent setup"
    );
}

/// A keychain failure in a command's words (its advice added), for an `anyhow` chain.
trait Explained<T> {
    fn explained(self, context: &str) -> anyhow::Result<T>;
}

impl<T> Explained<T> for Result<T, KeychainError> {
    fn explained(self, context: &str) -> anyhow::Result<T> {
        self.map_err(|e| anyhow!("{context}: {}", explain(&e)))
    }
}

/// Open the keychain with its calls bounded by a deadline, which the caller renews after
/// anything that takes its own time (a Hub login, a prompt).
fn open_keychain() -> anyhow::Result<(Opened, Selection, Deadline)> {
    let deadline = Deadline::after(settings::timeout());
    let (opened, selection) = keychain::open(&deadline).explained("cannot open the keychain")?;
    Ok((opened, selection, deadline))
}
