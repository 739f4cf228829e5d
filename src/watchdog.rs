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

impl Watchdog {
    /// Start the clock. `message` is printed on stdout (protocol actions) if it runs out.
    pub fn arm(deadline: Duration, message: String) -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        std::thread::spawn(move || {
            std::thread::sleep(deadline);
            if !flag.load(Ordering::SeqCst) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{message}");
                let _ = out.flush();
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
