//! Reading what a command printed, and the shapes every failure must have: a protocol action
//! (store, get, erase, list) fails with one line on stdout, where docker reads it; a human
//! command (login, logout, token, configure, doctor) with one line on stderr and nothing on
//! stdout.

use std::process::Output;

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit status, stdout and stderr for a failure message, each cut to 600 characters.
pub fn describe(out: &Output) -> String {
    let cut = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        if s.chars().count() > 600 {
            let head: String = s.chars().take(600).collect();
            format!("{head}… ({} bytes)", s.len())
        } else {
            s.into_owned()
        }
    };
    format!(
        "status {:?}, stdout {:?}, stderr {:?}",
        out.status.code(),
        cut(&out.stdout),
        cut(&out.stderr)
    )
}

/// A protocol error: exit 1 and exactly one non-empty line on stdout. Returns the line.
pub fn assert_one_line_error(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1: {}",
        describe(out)
    );
    let text = String::from_utf8(out.stdout.clone())
        .unwrap_or_else(|_| panic!("stdout is not UTF-8: {}", describe(out)));
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1 && text.trim().len() > 5,
        "expected exactly one line on stdout: {}",
        describe(out)
    );
    text.trim_end_matches('\n').to_string()
}

/// A human command's failure: exit 1, nothing on stdout (a script capturing `token` must
/// not get an error text), exactly one line on stderr. Returns the line.
pub fn assert_one_line_failure(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1: {}",
        describe(out)
    );
    assert!(
        out.stdout.is_empty(),
        "stdout must be empty: {}",
        describe(out)
    );
    let err = stderr(out);
    assert_eq!(
        err.lines().count(),
        1,
        "expected one stderr line: {}",
        describe(out)
    );
    err.trim_end().to_string()
}

/// stderr reaches the user's terminal and logs: it must never carry the secret.
pub fn assert_no_secret(out: &Output, secret: &str) {
    // Very short secrets could match by accident; the tests use distinctive ones.
    if secret.len() >= 6 {
        assert!(
            !stderr(out).contains(secret),
            "the secret appeared on stderr: {:?}",
            stderr(out)
        );
    }
}
