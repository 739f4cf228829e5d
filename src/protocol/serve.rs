//! Serving one protocol action: read stdin, answer on stdout, exit. This is what docker runs
//! on every pull, push and build.

use std::io::Write;
use std::process::ExitCode;

use super::actions::{self, Action};
use super::wire;
use crate::deadline::Deadline;
use crate::keychain::{self, Reason, record};
use crate::{NAME, hub, settings};

pub fn serve(action: Action, extra: &[String]) -> ExitCode {
    // Never echo extra arguments: a user may have put a password there.
    if !extra.is_empty() {
        return super::error_line(&format!(
            "{NAME}: {} takes no arguments; it reads its request from stdin",
            match action {
                Action::Store => "store",
                Action::Get => "get",
                Action::Erase => "erase",
                Action::List => "list",
            }
        ));
    }
    crate::process::harden();
    let deadline = Deadline::after(settings::timeout());
    // The keychain is opened before the request is read: a Secret Service connection is
    // then authenticated by the bus while stdin is read and parsed.
    let opened = keychain::open(&deadline);
    let input = if action == Action::List {
        Default::default()
    } else {
        match wire::read_input(&mut std::io::stdin().lock()) {
            Ok(bytes) => bytes,
            Err(e) => return super::error_line(&format!("{NAME}: {e}")),
        }
    };
    let outcome = actions::run(
        action,
        input.expose(),
        opened.as_ref().map(|(kc, _)| kc.as_ref()),
    );
    if action == Action::Store
        && outcome.code == 0
        && let Ok((_, selection)) = &opened
    {
        if selection.volatile() {
            eprintln!(
                "{NAME}: warning: credentials are in the kernel keyring and will not survive a reboot ({selection}); run `{NAME} doctor` for a persistent setup"
            );
        }
        // The first successful store decides where credentials live from now on.
        if selection.reason != Reason::Recorded
            && let Err(e) = record::write_if_absent(&keychain::service_name(), selection.backend)
        {
            crate::trace!("the backend in use was not recorded: {e}");
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(outcome.stdout.as_bytes());
    let _ = out.flush();
    drop(out);
    // The credential is safely stored before Hub is contacted; Hub problems only warn.
    if let (Some((creds, changed)), Ok((kc, _))) = (&outcome.stored_hub, &opened) {
        deadline.renew();
        hub::after_store(kc.as_ref(), creds, *changed);
    }
    ExitCode::from(outcome.code)
}
