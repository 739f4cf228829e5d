//! From stored credentials to a Hub JWT: access tokens go to `/v2/auth/token`, passwords
//! to `/v2/users/login`, with the second factor (`/v2/users/2fa-login`) when Hub asks for
//! it. The spec deprecates `/v2/users/login` in favour of `/v2/auth/token`, which takes a
//! password too: when the old route answers 404 or 410, the password goes there.

use super::client::{Hub, HubError, PasswordLogin};
use super::tty;
use crate::secret::Secret;
use crate::trace;

/// Prefixes of Docker personal and organisation access tokens.
const ACCESS_TOKEN_PREFIXES: [&str; 2] = ["dckr_pat_", "dckr_oat_"];

pub const CODE_PROMPT: &str = "2FA required, please provide the 6 digit code: ";

/// Where the 2FA code comes from if Hub asks for one.
pub enum SecondFactor<'a> {
    /// Given up front (`DOCKER_CREDENTIAL_HUB_OTP`).
    Code(&'a Secret<String>),
    /// Ask on the terminal, if there is one.
    Prompt,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Hub(#[from] HubError),
    /// The second step failed: the code, or a stale two-factor login. The stored password
    /// itself was accepted.
    #[error(transparent)]
    SecondFactor(HubError),
    /// Hub wants a 2FA code and there is no terminal to ask for it.
    #[error("Docker Hub asks for a two-factor code and no terminal is available to type it")]
    NeedsCode,
    /// The terminal prompt itself failed (closed, interrupted).
    #[error("the two-factor code prompt failed ({0})")]
    Prompt(std::io::Error),
}

pub fn is_access_token(secret: &str) -> bool {
    ACCESS_TOKEN_PREFIXES.iter().any(|p| secret.starts_with(p))
}

/// Log in and return the JWT. Never prints the secret, the code or the token.
pub fn obtain_jwt(
    hub: &Hub,
    username: &str,
    secret: &Secret<String>,
    second: SecondFactor,
) -> Result<Secret<String>, LoginError> {
    if is_access_token(secret.expose()) {
        trace!("the secret is an access token: using /v2/auth/token");
        return Ok(hub.access_token(username, secret)?);
    }
    trace!("the secret is a password: using /v2/users/login");
    let login_2fa_token = match hub.password_login(username, secret)? {
        PasswordLogin::Token(jwt) => return Ok(jwt),
        PasswordLogin::Removed => return Ok(hub.access_token(username, secret)?),
        PasswordLogin::SecondFactor(t) => t,
    };
    let code = match second {
        SecondFactor::Code(code) => code.clone(),
        SecondFactor::Prompt => {
            if !tty::available() {
                return Err(LoginError::NeedsCode);
            }
            let code = tty::prompt_hidden(CODE_PROMPT).map_err(LoginError::Prompt)?;
            hub.renew_deadline();
            Secret::new(code.expose().trim().to_string())
        }
    };
    hub.second_factor(&login_2fa_token, &code)
        .map_err(LoginError::SecondFactor)
}
