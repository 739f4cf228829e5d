//! The one deadline mechanism: a point in time that every wait derives its timeout from.
//!
//! docker waits for a helper with no timeout of its own, so a hung Secret Service, a
//! keychain prompt nobody can answer or a stuck lock holder would hang `docker pull`. Nothing
//! here interrupts anything: socket reads and writes, lock waits, child processes, HTTP
//! requests and calls into OS keychain APIs each wait at most [Deadline::remaining], and
//! report a timeout as an ordinary error.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A shared deadline. Clones share it, so renewing it (after a person typed something, or
/// between the independent steps of `configure`) renews it for every holder.
#[derive(Clone, Debug)]
pub struct Deadline {
    at: Arc<Mutex<Instant>>,
    limit: Duration,
}

impl Deadline {
    /// A deadline `limit` from now.
    pub fn after(limit: Duration) -> Deadline {
        Deadline {
            at: Arc::new(Mutex::new(Instant::now() + limit)),
            limit,
        }
    }

    /// The time left, zero once it has passed.
    pub fn remaining(&self) -> Duration {
        self.at().saturating_duration_since(Instant::now())
    }

    pub fn expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// The full length of the deadline, for messages ("within 30 s").
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Start the full length over from now.
    pub fn renew(&self) {
        *self.at.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now() + self.limit;
    }

    fn at(&self) -> Instant {
        *self.at.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `30` or `2.5`: a duration in seconds, for messages.
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_deadline_and_renew_restarts_it() {
        let d = Deadline::after(Duration::from_millis(20));
        let other = d.clone();
        std::thread::sleep(Duration::from_millis(30));
        assert!(other.expired());
        d.renew();
        assert!(!other.expired());
        assert!(other.remaining() <= Duration::from_millis(20));
        assert_eq!(other.limit(), Duration::from_millis(20));
    }

    #[test]
    fn seconds_read_naturally() {
        assert_eq!(secs(Duration::from_secs(30)), "30");
        assert_eq!(secs(Duration::from_millis(2500)), "2.5");
    }
}
