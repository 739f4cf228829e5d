//! A deadline for keychain work. docker waits for the helper with no timeout of its own, so
//! a hung Secret Service (or an unlock prompt nobody can answer) would hang `docker pull`.
//! After the deadline the helper answers with one error line and exits.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct Watchdog {
    done: Arc<AtomicBool>,
}

/// Where the watchdog's message goes: stdout for protocol actions (docker reads only
/// stdout), stderr for human commands (whose stdout may be a token a script captures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Stdout,
    Stderr,
}

impl Watchdog {
    /// Start the clock. `message` is printed on stdout (protocol actions) if it runs out.
    pub fn arm(deadline: Duration, message: String) -> Watchdog {
        Watchdog::arm_on(Channel::Stdout, deadline, message)
    }

    /// Start the clock, printing on `channel` if it runs out.
    pub fn arm_on(channel: Channel, deadline: Duration, message: String) -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        std::thread::spawn(move || {
            std::thread::sleep(deadline);
            if !flag.load(Ordering::SeqCst) {
                match channel {
                    Channel::Stdout => {
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "{message}");
                        let _ = out.flush();
                    }
                    Channel::Stderr => {
                        let _ = writeln!(std::io::stderr().lock(), "{message}");
                    }
                }
                std::process::exit(1);
            }
        });
        Watchdog { done }
    }

    /// The work finished in time.
    pub fn disarm(&self) {
        self.done.store(true, Ordering::SeqCst);
    }
}
