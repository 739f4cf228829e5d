//! The protocol actions docker runs (`store`, `get`, `erase`, `list`), and what follows
//! them here: the backend record after the first store, the reboot warning, and for Docker
//! Hub's credentials the cached JWT (invalidated when they change or go) and a Hub login
//! after they are stored. Answers and errors go to stdout, which is all docker reads.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use super::{explain, warn_if_volatile};
use crate::deadline::Deadline;
use crate::hub::client::Hub;
use crate::hub::{cache, login};
use crate::keychain::{self, Keychain, Opened, Reason, Selection, record};
use crate::protocol::{self, Action, Credentials, Event, Failure, TOKEN_USERNAME};
use crate::secret::Secret;
use crate::{NAME, registry, settings, trace};

pub fn serve(action: Action, extra: &[String]) -> ExitCode {
    // Never echo extra arguments: a user may have put a password there.
    if !extra.is_empty() {
        return protocol::error_line(&format!(
            "{NAME}: {} takes no arguments; it reads its request from stdin",
            action.name()
        ));
    }
    crate::process::harden();
    let deadline = Deadline::after(settings::timeout());
    // The keychain is opened before the request is read: a Secret Service connection is
    // then authenticated by the bus while stdin is read and parsed.
    let opened = keychain::open(&deadline);
    let creds = opened.as_ref().map(|(o, _)| o.creds.as_ref());
    // Docker Hub's credentials are compared with what was stored: the cached JWT and a
    // Hub login depend on whether they changed. No other key pays for the read.
    let mut outcome = protocol::serve(action, creds, registry::is_hub_alias);
    if let (Ok(_), Ok((opened, selection))) = (&outcome.result, &opened)
        && let Err(e) = after_action(opened, selection, outcome.event.as_ref())
    {
        outcome.result = Err(Failure::Keychain(e));
    }
    let mut out = std::io::stdout().lock();
    let code = match &outcome.result {
        Ok(answer) => {
            let _ = out.write_all(answer.0.as_bytes());
            0
        }
        Err(failure) => {
            let _ = writeln!(out, "{}", failure.line(explain));
            1
        }
    };
    let _ = out.flush();
    drop(out);
    // The credential is safely stored before Hub is contacted; Hub problems only warn.
    if let (
        Ok(_),
        Some(Event::Stored {
            creds,
            changed: Some(changed),
        }),
        Ok((opened, _)),
    ) = (&outcome.result, &outcome.event, &opened)
    {
        deadline.renew();
        hub_login_after_store(opened, creds, *changed);
    }
    ExitCode::from(code)
}

/// After an action that succeeded: the cached JWT goes when Docker Hub's credentials
/// changed or went; a store warns when its backend will not last a reboot, and the first
/// one records its backend.
fn after_action(
    opened: &Opened,
    selection: &Selection,
    event: Option<&Event>,
) -> Result<(), keychain::KeychainError> {
    match event {
        Some(Event::Stored { creds, changed }) => {
            if *changed == Some(true) {
                cache::invalidate(opened.internal.as_ref(), &creds.server_url)?;
            }
            warn_if_volatile(None, selection, true);
            // The first successful store decides where credentials live from now on.
            if selection.reason != Reason::Recorded
                && let Err(e) =
                    record::write_if_absent(&keychain::service_name(), selection.backend)
            {
                trace!("the backend in use was not recorded: {e}");
            }
        }
        Some(Event::Erased { server_url }) => {
            cache::invalidate(opened.internal.as_ref(), server_url)?;
        }
        None => {}
    }
    Ok(())
}

/// Why no Hub login follows the store of these credentials, if none does.
fn no_login_because(
    creds: &Credentials,
    changed: bool,
    fresh: impl FnOnce() -> bool,
) -> Option<&'static str> {
    if !registry::is_hub_alias(&creds.server_url) {
        return Some("they are not Docker Hub's");
    }
    if creds.username == TOKEN_USERNAME {
        return Some("an identity token cannot log in to the Hub API");
    }
    if creds.secret.expose().is_empty() {
        return Some("the secret is empty, so there is nothing to log in with");
    }
    if !changed && fresh() {
        return Some("they are unchanged and the cached JWT is fresh");
    }
    None
}

/// After a store of Docker Hub's credentials: log in to the Hub API and cache the JWT,
/// unless there is no need or nothing to log in with; any failure is one warning line on
/// stderr, never a failed store.
fn hub_login_after_store(opened: &Opened, creds: &Credentials, changed: bool) {
    let internal = opened.internal.as_ref();
    let fresh = || matches!(cache::fresh(internal), Ok(Some(_)));
    if let Some(why) = no_login_because(creds, changed, fresh) {
        trace!("no Hub login after the store: {why}");
        return;
    }
    if let Err(problem) = login_and_cache(internal, &creds.username, &creds.secret) {
        eprintln!(
            "{NAME}: warning: the credentials are stored, but no Docker Hub API token was obtained: {problem:#}; run `{NAME} login` to get one later"
        );
    }
}

fn login_and_cache(
    internal: &dyn Keychain,
    username: &str,
    secret: &Secret<String>,
) -> anyhow::Result<()> {
    let timeout = settings::timeout();
    // Serialise with concurrent `token` refreshes; without the lock the login still helps.
    let _lock = cache::lock(timeout)
        .inspect_err(|e| trace!("continuing without the Hub token lock: {e}"))
        .ok()
        .flatten();
    let hub = Hub::new(timeout)?;
    let jwt = login::obtain_jwt(&hub, username, secret, login::SecondFactor::Prompt)?;
    cache::write(internal, username, &jwt)
        .map_err(|e| anyhow::anyhow!(explain(&e)))
        .context("cannot cache the token in the keychain")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(url: &str, user: &str, secret: &str) -> Credentials {
        Credentials {
            server_url: url.into(),
            username: user.into(),
            secret: Secret::new(secret.into()),
        }
    }

    #[test]
    fn a_hub_login_follows_only_new_usable_hub_credentials() {
        let hub = registry::HUB_KEY;
        assert_eq!(
            no_login_because(&creds(hub, "alice", "pw"), true, || true),
            None
        );
        assert_eq!(
            no_login_because(&creds("docker.io", "alice", "pw"), false, || false),
            None
        );
        for (c, changed, fresh) in [
            (creds("ghcr.io", "alice", "pw"), true, false),
            (creds(hub, TOKEN_USERNAME, "tok"), true, false),
            (creds(hub, "alice", ""), true, false),
            (creds(hub, "alice", "pw"), false, true),
        ] {
            assert!(no_login_because(&c, changed, || fresh).is_some(), "{c:?}");
        }
    }
}
