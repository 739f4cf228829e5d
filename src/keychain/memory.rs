//! An in-memory keychain for hermetic unit tests of the layers above the backends (as
//! docker-credential-helpers' `memoryStore`). It can be told to fail.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::{Keychain, KeychainError, Result, Stored};

#[derive(Default)]
pub struct Memory {
    creds: RefCell<BTreeMap<String, Stored>>,
    /// When set, every call fails with this (the text of a locked keyring).
    pub fail: RefCell<Option<fn() -> KeychainError>>,
    /// How many calls reached the store.
    pub calls: RefCell<usize>,
}

impl Memory {
    fn check(&self) -> Result<()> {
        *self.calls.borrow_mut() += 1;
        match *self.fail.borrow() {
            Some(make) => Err(make()),
            None => Ok(()),
        }
    }
}

impl Keychain for Memory {
    fn store(&self, server_url: &str, cred: &Stored) -> Result<()> {
        self.check()?;
        self.creds
            .borrow_mut()
            .insert(server_url.to_string(), cred.clone());
        Ok(())
    }

    fn get(&self, server_url: &str) -> Result<Option<Stored>> {
        self.check()?;
        Ok(self.creds.borrow().get(server_url).cloned())
    }

    fn erase(&self, server_url: &str) -> Result<bool> {
        self.check()?;
        Ok(self.creds.borrow_mut().remove(server_url).is_some())
    }

    fn list(&self) -> Result<BTreeMap<String, String>> {
        self.check()?;
        Ok(self
            .creds
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone(), v.username.clone()))
            .collect())
    }
}
