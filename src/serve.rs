//! Serving one protocol action: read stdin, answer on stdout, exit. This is what docker runs
//! on every pull, push and build, so it also decides what may be skipped on the hot path.

use std::io::Write;

use crate::helper::{self, Action};
use crate::protocol::{self, NAME};
use crate::watchdog::{Alarm, Channel};
use crate::{hub, keychain, settings};

/// Protocol errors go to stdout: docker captures only stdout.
fn protocol_error(line: &str) -> ! {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    std::process::exit(1)
}

pub fn serve(action: Action) -> ! {
    // Only a daemon can hang; kernel keyutils answers at once, so skip the watchdog there.
    let may_block = keychain::may_block();
    // `get` (every pull) on the Secret Service: connect before reading the request, so that
    // the bus accepts and authenticates us meanwhile.
    let early_bus = match action {
        Action::Get if may_block => helper::connect_early(),
        _ => None,
    };
    let input = if action == Action::List {
        Vec::new()
    } else {
        match protocol::read_input(&mut std::io::stdin().lock()) {
            Ok(bytes) => bytes,
            Err(e) => protocol_error(&format!("{NAME}: {e}")),
        }
    };
    let deadline = settings::timeout();
    let watchdog = may_block.then(|| {
        Alarm::arm(
            Channel::Stdout,
            deadline,
            format!(
                "{NAME}: the keychain did not answer within {} s (a hung Secret Service, or an unlock prompt nobody can answer); run `{NAME} doctor`",
                deadline.as_secs()
            ),
        )
    });
    let mut selection = None;
    let mut open = || {
        let (kc, sel) = keychain::open()?;
        selection = Some(sel);
        Ok(kc)
    };
    let fast = early_bus.and_then(|bus| helper::fast_get(&input, bus));
    let outcome = fast.unwrap_or_else(|| helper::run(action, &input, &mut open));
    if let Some(w) = &watchdog {
        w.disarm();
    }
    if let Some(sel) = &selection
        && sel.volatile
        && action == Action::Store
        && outcome.code == 0
    {
        eprintln!(
            "{NAME}: warning: credentials are in the kernel keyring and will not survive a reboot ({}); run `{NAME} doctor` for a persistent setup",
            sel.reason
        );
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(outcome.stdout.as_bytes());
    let _ = out.flush();
    drop(out);
    // The credential is safely stored before Hub is contacted; Hub problems only warn.
    if let (Some(creds), Some(kc)) = (&outcome.stored, &outcome.keychain) {
        hub::after_store(kc.as_ref(), creds);
    }
    // Exit without tearing down the D-Bus connection and its executor threads: the answer
    // is out, and orderly shutdown only adds latency to every docker pull.
    std::process::exit(outcome.code)
}
