//! `token`: print a valid Docker Hub JWT for scripts: docker's web-login token while it is
//! fresh, else the cached one, else a new login with the stored credentials, one login for
//! all the processes that ask at once.

use std::io::Write;

use anyhow::{anyhow, bail};

use super::args::usage_or_none;
use super::login::OTP_ENV;
use super::{Explained, Failure, explain, finish, open_keychain};
use crate::hub::client::{Hub, HubError};
use crate::hub::login::{self, LoginError, SecondFactor};
use crate::hub::{cache, jwt, stored_hub_credentials};
use crate::keychain::{Keychain, KeychainError};
use crate::protocol::TOKEN_USERNAME;
use crate::registry::{ACCESS_TOKEN_KEY, HUB_KEY};
use crate::secret::Secret;
use crate::{NAME, settings};

const USAGE: &str = "Usage: docker-credential-hub token

Prints a valid Docker Hub API token (a JWT, for `Authorization: Bearer`) on stdout: docker's
web-login token while it is fresh and for the stored account, else the cached one while at
least 60 s of validity remain, else a new login with the stored credentials. Not logged in,
it prints nothing on stdout and says to run `docker-credential-hub login`.";

pub fn token(args: &[String]) -> std::process::ExitCode {
    finish(None, run(args))
}

fn run(list: &[String]) -> Result<(), Failure> {
    if usage_or_none(list, "token", USAGE)? {
        return Ok(());
    }
    crate::process::harden();
    let jwt = run_token()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", jwt.expose())
        .and_then(|_| out.flush())
        .map_err(|e| Failure::new(format!("cannot write the token to stdout: {e}")))
}

fn run_token() -> anyhow::Result<Secret<String>> {
    let (opened, _, deadline) = open_keychain()?;
    let (kc, internal) = (opened.creds.as_ref(), opened.internal.as_ref());
    if let Some(jwt) = web_login_token(kc).explained("cannot read the Docker Hub credentials")? {
        return Ok(jwt);
    }
    let cached = || cache::fresh(internal).explained("cannot read the cached Hub token");
    if let Some(jwt) = cached()? {
        return Ok(jwt);
    }
    let timeout = settings::timeout();
    let _lock = cache::lock(timeout)?;
    // Another process may have refreshed the token while we waited for the lock.
    deadline.renew();
    if let Some(jwt) = cached()? {
        return Ok(jwt);
    }
    let creds = stored_hub_credentials(kc)
        .explained("cannot read the Docker Hub credentials")?
        .ok_or_else(|| anyhow!("not logged in to Docker Hub; run `{NAME} login`"))?;
    if creds.username == TOKEN_USERNAME {
        bail!(
            "the stored Docker Hub credential is an identity token, which cannot log in to the Hub API; run `{NAME} login`"
        );
    }
    let hub = Hub::new(timeout)?;
    let jwt = login::obtain_jwt(&hub, &creds.username, &creds.secret, SecondFactor::Prompt)
        .map_err(|e| match e {
            LoginError::Hub(HubError::Rejected(m)) => {
                anyhow!("{m}; the stored credentials no longer work: run `{NAME} login`")
            }
            // The password was good; the message says what to do about the second step.
            LoginError::Hub(e) | LoginError::SecondFactor(e) => anyhow!(e),
            LoginError::NeedsCode => anyhow!(
                "the Docker Hub token expired and this account uses two-factor authentication, but there is no terminal to ask for the code; run `{OTP_ENV}=CODE {NAME} login` with the current code, or log in with a personal access token"
            ),
            LoginError::Prompt(e) => anyhow!("cannot read the two-factor code from the terminal ({e})"),
        })?;
    // The token is good even if caching it fails: hand it out, and say so.
    deadline.renew();
    if let Err(e) = cache::write(internal, &creds.username, &jwt) {
        eprintln!(
            "{NAME}: warning: cannot cache the Hub token in the keychain: {}",
            explain(&e)
        );
    }
    Ok(jwt)
}

/// The OAuth access token a `docker login` web login (docker CLI 27.2 and later) stored
/// under `https://index.docker.io/v1/access-token`, while it stays fresh for the margin, and
/// only when a Hub credential is stored for the same account. Its refresh token is never used:
/// nothing in Docker's code refreshes it (docker/cli `internal/oauth/manager`).
fn web_login_token(kc: &dyn Keychain) -> Result<Option<Secret<String>>, KeychainError> {
    let Some(access) = kc.get(ACCESS_TOKEN_KEY)? else {
        return Ok(None);
    };
    if !jwt::is_fresh(
        access.secret.expose(),
        crate::clock::now_unix(),
        jwt::FRESHNESS_MARGIN,
    ) {
        crate::trace!("the web login's access token is not fresh");
        return Ok(None);
    }
    // docker's web login stores the account's credential under the Hub key with it; without
    // that credential (logged out, or erased) the token is a leftover and speaks for nobody.
    match kc.get(HUB_KEY)? {
        None => {
            crate::trace!("the web login's access token is not used: no Docker Hub credential");
            return Ok(None);
        }
        Some(hub) if hub.username != access.username => {
            crate::trace!("the web login's access token belongs to another account");
            return Ok(None);
        }
        Some(_) => {}
    }
    crate::trace!("using the web login's access token");
    Ok(Some(access.secret))
}
