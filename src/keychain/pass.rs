//! The `pass` password store (placeholder until the backend lands).

use std::collections::BTreeMap;

use super::{Keychain, KeychainError, Result, Stored};
use crate::deadline::Deadline;
use crate::secret::Secret;

pub struct Pass;

/// Whether an initialised password store exists.
pub fn initialised() -> bool {
    false
}

impl Pass {
    pub fn open(_service: &str, _deadline: &Deadline) -> Result<Pass> {
        Err(KeychainError::Selection(
            "the pass backend is not available yet".into(),
        ))
    }
}

impl Keychain for Pass {
    fn store(&self, _: &str, _: &Stored) -> Result<()> {
        unreachable!()
    }
    fn get(&self, _: &str) -> Result<Option<Stored>> {
        unreachable!()
    }
    fn erase(&self, _: &str) -> Result<bool> {
        unreachable!()
    }
    fn list(&self) -> Result<BTreeMap<String, String>> {
        unreachable!()
    }
    fn get_internal(&self, _: &str) -> Result<Option<Secret<String>>> {
        unreachable!()
    }
    fn set_internal(&self, _: &str, _: &Secret<String>) -> Result<()> {
        unreachable!()
    }
    fn erase_internal(&self, _: &str) -> Result<bool> {
        unreachable!()
    }
}
