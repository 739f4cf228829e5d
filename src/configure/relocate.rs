//! `configure --backend NAME` (placeholder until it lands).

use super::{Outcome, fail};
use crate::keychain::Backend;

pub fn run(backend: Backend, _dry_run: bool) -> Outcome {
    Err(fail(format!(
        "moving to the {backend} is not available yet"
    )))
}
