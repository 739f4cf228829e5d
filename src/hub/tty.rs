//! Prompts on the controlling terminal itself. docker runs the helper with stdin and
//! stdout piped, so the terminal — not stdin — is where a person can answer.

use std::io::{self, BufRead, Write};

use crate::secret::Secret;

#[cfg(unix)]
const TTY_IN: &str = "/dev/tty";
#[cfg(unix)]
const TTY_OUT: &str = "/dev/tty";
#[cfg(windows)]
const TTY_IN: &str = "CONIN$";
#[cfg(windows)]
const TTY_OUT: &str = "CONOUT$";

/// True when this process has a terminal a person can type into.
pub fn available() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(TTY_IN)
        .is_ok()
}

/// Ask for a visible answer (a username). Returns the line without its newline.
pub fn prompt_visible(prompt: &str) -> io::Result<String> {
    let mut out = std::fs::OpenOptions::new().write(true).open(TTY_OUT)?;
    out.write_all(prompt.as_bytes())?;
    out.flush()?;
    let input = std::fs::File::open(TTY_IN)?;
    let mut line = String::new();
    io::BufReader::new(input).read_line(&mut line)?;
    Ok(line.trim().to_string())
}

/// Ask for a hidden answer (a password, a 2FA code): the terminal does not echo it.
pub fn prompt_hidden(prompt: &str) -> io::Result<Secret<String>> {
    rpassword::prompt_password(prompt).map(Secret::new)
}
