//! Serving one protocol action: read the request from stdin and run the action. This is
//! what docker runs on every pull, push and build; the command that serves it prints the
//! outcome and decides what follows.

use super::actions::{self, Action, Failure, Outcome};
use super::wire;
use crate::keychain::{Keychain, KeychainError};

/// Read the request (`list` has none) and run `action` on the keychain opened for it. For a
/// `store` of a key `compare` picks, the outcome says whether the value changed.
pub fn serve<'k>(
    action: Action,
    keychain: Result<&dyn Keychain, &'k KeychainError>,
    compare: impl Fn(&str) -> bool,
) -> Outcome<'k> {
    let input = if action == Action::List {
        Default::default()
    } else {
        match wire::read_input(&mut std::io::stdin().lock()) {
            Ok(bytes) => bytes,
            Err(e) => {
                return Outcome {
                    result: Err(Failure::Input(e)),
                    event: None,
                };
            }
        }
    };
    actions::run(action, input.expose(), keychain, compare)
}
