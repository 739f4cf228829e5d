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

/// The same deadline for the one protocol action a process serves, without a thread: a
/// SIGALRM timer whose handler writes the prepared line to stdout and exits. Spawning a
/// thread costs this VM up to a fifth of a millisecond, on every docker pull. Only one such
/// alarm exists per process; `serve` arms it once.
#[cfg(unix)]
pub struct Alarm;

#[cfg(unix)]
static ALARM_MESSAGE: std::sync::OnceLock<(libc::c_int, Vec<u8>)> = std::sync::OnceLock::new();

#[cfg(unix)]
extern "C" fn on_alarm(_: libc::c_int) {
    // Only async-signal-safe calls here: write(2) and _exit(2).
    if let Some((fd, line)) = ALARM_MESSAGE.get() {
        unsafe {
            libc::write(*fd, line.as_ptr().cast(), line.len());
            libc::_exit(1);
        }
    }
    unsafe { libc::_exit(1) }
}

#[cfg(unix)]
impl Alarm {
    /// Arm the alarm; `message` (one line) goes to `channel` if the deadline passes.
    pub fn arm(channel: Channel, deadline: Duration, message: String) -> Alarm {
        let mut line = message.into_bytes();
        line.push(b'\n');
        let fd = match channel {
            Channel::Stdout => 1,
            Channel::Stderr => 2,
        };
        let _ = ALARM_MESSAGE.set((fd, line));
        unsafe {
            libc::signal(libc::SIGALRM, on_alarm as *const () as libc::sighandler_t);
            let timer = libc::itimerval {
                it_interval: libc::timeval {
                    tv_sec: 0,
                    tv_usec: 0,
                },
                it_value: libc::timeval {
                    tv_sec: deadline.as_secs().try_into().unwrap_or(i32::MAX.into()),
                    tv_usec: deadline.subsec_micros().into(),
                },
            };
            libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut());
        }
        Alarm
    }

    /// The work finished in time.
    pub fn disarm(&self) {
        let zero = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            it_value: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
        };
        unsafe {
            libc::setitimer(libc::ITIMER_REAL, &zero, std::ptr::null_mut());
        }
    }
}

/// Elsewhere the alarm is the thread-based watchdog.
#[cfg(not(unix))]
pub struct Alarm(Watchdog);

#[cfg(not(unix))]
impl Alarm {
    pub fn arm(channel: Channel, deadline: Duration, message: String) -> Alarm {
        Alarm(Watchdog::arm_on(channel, deadline, message))
    }

    pub fn disarm(&self) {
        self.0.disarm()
    }
}
