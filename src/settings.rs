//! Environment settings shared by every command.

use std::time::Duration;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// `DOCKER_CREDENTIAL_HUB_TIMEOUT=SECONDS`: the deadline for one Hub operation (retries
/// included) and for each call to another credential helper. Invalid values fall back to
/// the default rather than failing a `docker pull`.
pub fn timeout() -> Duration {
    std::env::var("DOCKER_CREDENTIAL_HUB_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 86_400.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// `DOCKER_CREDENTIAL_HUB_DEBUG=1` turns on a trace on stderr, with secrets redacted.
pub fn debug_enabled() -> bool {
    matches!(
        std::env::var("DOCKER_CREDENTIAL_HUB_DEBUG").as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

/// Print one trace line on stderr when debugging is on. Callers never pass secrets.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => {
        if $crate::settings::debug_enabled() {
            eprintln!("docker-credential-hub[debug]: {}", format!($($arg)*));
        }
    };
}
