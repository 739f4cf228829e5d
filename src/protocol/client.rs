//! The caller's side of the protocol: running another credential helper exactly as docker
//! does (docker-credential-helpers `client/`), with a deadline docker itself does not have,
//! found on PATH in trusted directories only ([crate::trust::program::find]).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use super::messages::ERR_NOT_FOUND;
use super::wire;
use crate::child::ChildError;
use crate::deadline::secs;
use crate::keychain::Stored;
use crate::secret::Secret;

/// docker runs `docker-credential-<suffix>`.
pub const HELPER_PREFIX: &str = "docker-credential-";

pub use crate::child::ChildOutput as HelperOutput;

/// A failed call to another credential helper.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error(
        "`{program}` is not on PATH, so docker cannot read the credentials it holds either; install it and run configure again, or, if you no longer need those credentials, delete the \"credsStore\" line from config.json first"
    )]
    Missing { program: String },
    #[error("cannot run `{program} {action}`: {why}")]
    Spawn {
        program: String,
        action: String,
        why: String,
    },
    #[error(
        "`{program} {action}` did not answer within {} s (DOCKER_CREDENTIAL_HUB_TIMEOUT) and was stopped; check that `{program} list` works on its own (is its keychain unlocked?), or raise DOCKER_CREDENTIAL_HUB_TIMEOUT",
        secs(*after)
    )]
    Timeout {
        program: String,
        action: String,
        after: Duration,
    },
    #[error("`{program} {action}` failed: exit {code}: {line}")]
    Failed {
        program: String,
        action: String,
        code: String,
        line: String,
    },
    #[error(
        "`{program} {action}` printed something that is not {what}; check that it works on its own"
    )]
    Garbled {
        program: String,
        action: String,
        what: &'static str,
    },
}

/// Run `program action` with `input` on stdin, as docker-credential-helpers' client does,
/// and give up after `timeout`. `program` is a name looked up on PATH, or a path; either
/// way only a program that passes the trust rule is run.
pub fn run_helper(
    program: &str,
    action: &str,
    input: &[u8],
    timeout: Duration,
) -> Result<HelperOutput, CallError> {
    let missing = || CallError::Missing {
        program: program.to_string(),
    };
    let path = if program.contains(['/', '\\']) {
        let path = PathBuf::from(program);
        if !crate::trust::program::usable(&path) {
            return Err(missing());
        }
        path
    } else {
        crate::trust::program::find(program).ok_or_else(missing)?
    };
    let mut command = crate::child::inheriting(&path);
    command.arg(action);
    crate::child::run(command, input, timeout).map_err(|e| match e {
        ChildError::Missing => missing(),
        ChildError::Spawn(e) => CallError::Spawn {
            program: program.to_string(),
            action: action.to_string(),
            why: e.to_string(),
        },
        ChildError::Timeout => CallError::Timeout {
            program: program.to_string(),
            action: action.to_string(),
            after: timeout,
        },
    })
}

/// A credsStore value names a program suffix, never a path.
pub fn valid_helper_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\', '\0'])
}

/// One line from a failed helper's output, for the report: stdout's, else stderr's.
fn first_line(out: &HelperOutput) -> String {
    crate::text::first_line(out.stdout.expose(), |_| false)
        .or_else(|| crate::text::first_line(&out.stderr, |_| false))
        .unwrap_or_else(|| "no output".into())
}

fn failed(program: &str, action: &str, out: &HelperOutput) -> CallError {
    CallError::Failed {
        program: program.to_string(),
        action: action.to_string(),
        code: out
            .code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "by signal".into()),
        line: first_line(out),
    }
}

/// `docker-credential-<name> list`: server URL → username. docker writes "unused" to
/// its stdin.
pub fn helper_list(name: &str, timeout: Duration) -> Result<Vec<(String, String)>, CallError> {
    let program = format!("{HELPER_PREFIX}{name}");
    let out = run_helper(&program, "list", b"unused", timeout)?;
    if !out.success {
        return Err(failed(&program, "list", &out));
    }
    let map: Map<String, Value> =
        serde_json::from_slice(out.stdout.expose()).map_err(|_| CallError::Garbled {
            program: program.clone(),
            action: "list".into(),
            what: "a JSON object",
        })?;
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
        .collect())
}

/// `docker-credential-<name> get` with the raw key on stdin, no newline (as docker sends
/// it). `Ok(None)` when the helper answers docker's not-found message.
pub fn helper_get(name: &str, key: &str, timeout: Duration) -> Result<Option<Stored>, CallError> {
    let program = format!("{HELPER_PREFIX}{name}");
    let action = format!("get {key}");
    let out = run_helper(&program, "get", key.as_bytes(), timeout).map_err(|e| match e {
        CallError::Timeout { after, .. } => CallError::Timeout {
            program: program.clone(),
            action: action.clone(),
            after,
        },
        e => e,
    })?;
    if !out.success {
        if String::from_utf8_lossy(out.stdout.expose()).trim() == ERR_NOT_FOUND {
            return Ok(None);
        }
        return Err(failed(&program, &action, &out));
    }
    // The answer holds the secret: never quote it, even when it is malformed.
    let creds = wire::parse_store(out.stdout.expose()).map_err(|_| CallError::Garbled {
        program: program.clone(),
        action: format!("get for {key}"),
        what: "a credential",
    })?;
    Ok(Some(Stored {
        username: creds.username,
        secret: creds.secret,
    }))
}

/// `docker-credential-<name> store` with the credential on stdin, as docker sends it.
pub fn helper_store(
    name: &str,
    key: &str,
    cred: &Stored,
    timeout: Duration,
) -> Result<(), CallError> {
    let program = format!("{HELPER_PREFIX}{name}");
    let request = Secret::new(wire::encode_get(key, &cred.username, &cred.secret).into_bytes());
    let out = run_helper(&program, "store", request.expose(), timeout)?;
    if !out.success {
        // A helper's error line names the problem, never the secret.
        return Err(failed(&program, &format!("store {key}"), &out));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_names_are_suffixes_not_paths() {
        assert!(valid_helper_name("secretservice"));
        assert!(valid_helper_name("ecr-login"));
        assert!(!valid_helper_name("../x"));
        assert!(!valid_helper_name(""));
    }

    #[test]
    fn a_missing_helper_is_reported_as_missing() {
        let err = run_helper(
            "docker-credential-does-not-exist-xyz",
            "list",
            b"",
            Duration::from_secs(1),
        )
        .err();
        assert!(matches!(err, Some(CallError::Missing { .. })), "{err:?}");
    }
}
