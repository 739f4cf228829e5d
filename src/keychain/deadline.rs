//! A keychain whose every call is bounded by a deadline, for the human commands (`login`,
//! `token`, `logout`): a wedged Secret Service must not hang a script waiting for a token.
//! The message goes to stderr so that a captured `token` output is never an error text.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Keychain, Result, Stored};
use crate::protocol::NAME;
use crate::secret::Secret;
use crate::watchdog::{Channel, Watchdog};

pub struct Deadline {
    inner: Box<dyn Keychain>,
    limit: Duration,
}

impl Deadline {
    pub fn new(inner: Box<dyn Keychain>, limit: Duration) -> Deadline {
        Deadline { inner, limit }
    }

    fn guard<T>(&self, work: impl FnOnce(&dyn Keychain) -> T) -> T {
        let watchdog = Watchdog::arm_on(
            Channel::Stderr,
            self.limit,
            format!(
                "{NAME}: the keychain did not answer within {} s (a hung Secret Service, or an unlock prompt nobody can answer); run `{NAME} doctor`",
                self.limit.as_secs()
            ),
        );
        let result = work(self.inner.as_ref());
        watchdog.disarm();
        result
    }
}

impl Keychain for Deadline {
    fn store(&self, server_url: &str, cred: &Stored) -> Result<()> {
        self.guard(|k| k.store(server_url, cred))
    }
    fn get(&self, server_url: &str) -> Result<Option<Stored>> {
        self.guard(|k| k.get(server_url))
    }
    fn erase(&self, server_url: &str) -> Result<bool> {
        self.guard(|k| k.erase(server_url))
    }
    fn list(&self) -> Result<BTreeMap<String, String>> {
        self.guard(|k| k.list())
    }
    fn get_internal(&self, name: &str) -> Result<Option<Secret<String>>> {
        self.guard(|k| k.get_internal(name))
    }
    fn set_internal(&self, name: &str, value: &Secret<String>) -> Result<()> {
        self.guard(|k| k.set_internal(name, value))
    }
    fn erase_internal(&self, name: &str) -> Result<bool> {
        self.guard(|k| k.erase_internal(name))
    }
}
