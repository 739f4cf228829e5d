//! docker-credential-hub: a Docker credential helper on the OS keychain, with a Docker
//! Hub login that keeps a JWT ready for scripts.
//!
//! Layers, from the outside in: `cli` (the commands: the protocol actions docker runs, and
//! `login`, `logout`, `token`, `configure`, `doctor`), then `protocol` (the
//! credential-helper protocol: parsing, answers, the four actions, and a client for other
//! helpers), `hub` (the Docker Hub API client and the token cache), and `keychain` (one
//! four-method trait, one module per backend). The protocol knows nothing of Docker Hub, and
//! the keychains know neither the protocol, nor Docker Hub, nor the commands.

mod child;
pub mod cli;
mod clock;
mod deadline;
mod docker_config;
mod fs;
pub mod hub;
mod json;
pub mod keychain;
mod lock;
mod paths;
pub mod process;
pub mod protocol;
mod registry;
mod secret;
mod settings;
mod text;
mod trust;
#[cfg(test)]
mod wipe_check;

pub use deadline::Deadline;
pub use secret::Secret;

/// The program's name, as docker runs it and as every message names it.
pub const NAME: &str = "docker-credential-hub";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
