//! The docker credential-helper protocol: the wire format and its exact strings, the four
//! actions, serving one of them to docker, and a client for other helpers. It knows the
//! keychain trait and nothing of Docker Hub or of what the commands do around an action.

mod actions;
pub mod client;
pub mod messages;
mod serve;
mod wire;

use std::io::Write;
use std::process::ExitCode;

use crate::{NAME, VERSION};

pub use actions::{Action, Answer, Event, Failure, Outcome, run};
pub use messages::{ERR_NOT_FOUND, TOKEN_USERNAME, USAGE};
pub use serve::serve;
pub use wire::{Credentials, parse_store};

/// Protocol errors go to stdout: docker captures only stdout.
pub(crate) fn error_line(line: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    ExitCode::from(1)
}

pub fn usage_error() -> ExitCode {
    error_line(USAGE)
}

pub fn version_line() -> String {
    format!("{NAME} v{VERSION}")
}

pub fn version() -> ExitCode {
    println!("{}", version_line());
    ExitCode::SUCCESS
}

pub fn help() -> ExitCode {
    println!("{USAGE}\n\n{}", HELP.trim_end());
    ExitCode::SUCCESS
}

/// A typo is worth repeating; anything else may be a secret typed in the wrong place.
pub fn unknown_action(word: &str) -> ExitCode {
    if looks_like_a_word(word) {
        error_line(&format!("{NAME}: unknown action: {word}"))
    } else {
        error_line(&format!(
            "{NAME}: unknown action (not shown, in case it is a secret); run `{NAME} help`"
        ))
    }
}

/// Letters and dashes only, and short: a mistyped action or option, not a password.
fn looks_like_a_word(arg: &str) -> bool {
    (1..=24).contains(&arg.len()) && arg.chars().all(|c| c.is_ascii_alphabetic() || c == '-')
}

const HELP: &str = "
Docker runs the protocol actions; they read the request on stdin:
  store     save the credential given as JSON {\"ServerURL\",\"Username\",\"Secret\"}
  get       print the credential for the server URL given on stdin
  erase     remove the credential for the server URL given on stdin
  list      print every server URL with its username
  version   print the version

Commands for people and scripts (errors on stderr):
  login [--username U] [--password-stdin] [--create-token [--scopes S,...]]
            log in to Docker Hub; stores the credentials and caches a Hub JWT
  token     print a valid Docker Hub JWT (for `Authorization: Bearer`)
  logout    forget the Docker Hub credentials, docker's web-login tokens and the cached
            JWT, revoking the web login's refresh token first
  configure [--dry-run] [--undo] [--backend NAME]
            switch docker (and podman, skopeo, buildah) over to this helper, moving
            existing credentials into the keychain
  doctor [--network]
            check the whole setup, one line per check

Environment:
  DOCKER_CREDENTIAL_HUB_BACKEND=NAME   keychain: auto (default); secret-service, pass or
                                       keyutils on Linux, macos-keychain, wincred
  DOCKER_CREDENTIAL_HUB_SERVICE=NAME   a separate set of credentials (default docker-credential-hub)
  DOCKER_CREDENTIAL_HUB_OTP=CODE       the two-factor code for `login` without a terminal
  DOCKER_CREDENTIAL_HUB_TIMEOUT=SECONDS keychain, network and helper deadline (default 30)
  DOCKER_CREDENTIAL_HUB_DEBUG=1        trace on stderr, secrets redacted
  DOCKER_HUB_API_URL=URL               Docker Hub API (default https://hub.docker.com)
  DOCKER_HUB_OAUTH_URL=URL             Docker's login service, where `logout` revokes
                                       (default https://login.docker.com)
  DOCKER_HUB_AUTH_URL=URL              the registry's token service, for the pull quota
                                       (default https://auth.docker.io)
  DOCKER_HUB_REGISTRY_URL=URL          the registry, for the pull quota
                                       (default https://registry-1.docker.io)
                                       (each https://, or http:// to this machine only)
";
