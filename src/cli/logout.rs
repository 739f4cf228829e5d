//! `logout`, as `docker logout` does it for Docker Hub (docker/cli
//! `cli/command/registry/logout.go` and `internal/oauth/manager/manager.go`): the Hub
//! credential and its aliases, docker's web-login tokens and the cached JWT all go, and the
//! web login's refresh token is revoked at Docker's login service.

use super::args::usage_or_none;
use super::{Explained, Failure, finish, open_keychain};
use crate::hub::{cache, oauth};
use crate::registry::{self, ACCESS_TOKEN_KEY, HUB_KEY, REFRESH_TOKEN_KEY};
use crate::{NAME, settings, trace};

const USAGE: &str = "Usage: docker-credential-hub logout

Does for Docker Hub what `docker logout` does: removes the credential stored under
https://index.docker.io/v1/ and its aliases (docker.io, ...), docker's web-login tokens and the
cached Hub token, revoking the web login's refresh token first, and says on one line what
it removed.";

pub fn logout(args: &[String]) -> std::process::ExitCode {
    finish(None, run(args))
}

fn run(list: &[String]) -> Result<(), Failure> {
    if usage_or_none(list, "logout", USAGE)? {
        return Ok(());
    }
    crate::process::harden();
    let removed = run_logout()?;
    println!("{}", removed.summary());
    Ok(())
}

/// What a logout removed.
#[derive(Debug, Default, PartialEq, Eq)]
struct Removed {
    /// Docker's Hub key and any alias key `token` would fall back to.
    keys: Vec<String>,
    /// The web login's access token and refresh token (either).
    web_login: bool,
    jwt: bool,
    /// Where the refresh token was revoked.
    revoked_at: Option<String>,
}

impl Removed {
    /// One line for stdout.
    fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.keys.is_empty() {
            parts.push(format!(
                "the Docker Hub credentials ({})",
                self.keys.join(", ")
            ));
        }
        if self.web_login {
            parts.push("docker's web-login tokens (access-token, refresh-token)".into());
        }
        if self.jwt {
            parts.push("the cached Hub token".into());
        }
        if parts.is_empty() {
            return "Not logged in to Docker Hub: nothing to remove".into();
        }
        let last = parts.pop().unwrap_or_default();
        let list = if parts.is_empty() {
            last
        } else {
            format!("{} and {last}", parts.join(", "))
        };
        let revoked = self
            .revoked_at
            .as_ref()
            .map(|at| format!("; revoked the web login's refresh token at {at}"))
            .unwrap_or_default();
        format!("Removed {list}{revoked}")
    }
}

fn run_logout() -> anyhow::Result<Removed> {
    let (opened, _, deadline) = open_keychain()?;
    let kc = opened.creds.as_ref();
    // Best effort: a refresh finishing after us would cache a token for a logged-out user.
    let _lock = cache::lock(settings::timeout()).ok();
    let what = "cannot remove the Docker Hub credentials";
    let mut removed = Removed::default();
    // Revoked while it is still in the keychain (docker/cli erases it first), so that a
    // logout interrupted here can be run again and still revoke it. A failed revoke is a
    // warning, and the entries go all the same.
    if let Some(refresh) = kc.get(REFRESH_TOKEN_KEY).explained(what)? {
        if oauth::split(refresh.secret.expose()).is_some() {
            match oauth::revoke(&refresh.secret, settings::timeout()) {
                Ok(at) => removed.revoked_at = Some(at),
                Err(e) => eprintln!(
                    "{NAME}: warning: cannot revoke the web login's refresh token: {e}; it is removed from the keychain all the same, but Docker may accept it until it expires"
                ),
            }
            deadline.renew();
        } else {
            trace!("the stored refresh token is not in docker's form: removed, not revoked");
        }
    }
    if kc.erase(HUB_KEY).explained(what)? {
        removed.keys.push(HUB_KEY.into());
    }
    for key in kc.list().explained(what)?.keys() {
        if registry::is_hub_alias(key) && kc.erase(key).explained(what)? {
            removed.keys.push(key.clone());
        }
    }
    for key in [ACCESS_TOKEN_KEY, REFRESH_TOKEN_KEY] {
        removed.web_login |= kc.erase(key).explained(what)?;
    }
    removed.jwt = cache::clear(opened.internal.as_ref()).explained(what)?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_what_went() {
        assert_eq!(
            Removed::default().summary(),
            "Not logged in to Docker Hub: nothing to remove"
        );
        let r = Removed {
            keys: vec![HUB_KEY.into(), "docker.io".into()],
            web_login: true,
            jwt: true,
            revoked_at: Some("https://login.docker.com".into()),
        };
        assert_eq!(
            r.summary(),
            "Removed the Docker Hub credentials (https://index.docker.io/v1/, docker.io), docker's web-login tokens (access-token, refresh-token) and the cached Hub token; revoked the web login's refresh token at https://login.docker.com"
        );
        let r = Removed {
            jwt: true,
            ..Removed::default()
        };
        assert_eq!(r.summary(), "Removed the cached Hub token");
    }
}
