//! docker-credential-hub: a Docker credential helper on the OS keychain, with a Docker
//! Hub login that keeps a JWT ready for scripts.
//!
//! Layers, from the wire inwards: `protocol` (the credential-helper protocol: parsing,
//! answers, serving one action, and a client for other helpers), the human commands
//! (`hub::cli`, `configure`, `doctor`), and `keychain` (one trait, one module per
//! backend), which knows neither the protocol nor Docker Hub.

mod child;
pub mod configure;
mod deadline;
mod docker_config;
pub mod doctor;
mod fs;
pub mod hub;
pub mod keychain;
mod lock;
mod migrate;
mod paths;
pub mod process;
pub mod protocol;
mod registry;
mod secret;
mod settings;
mod trust;
#[cfg(test)]
mod wipe_check;

pub use deadline::Deadline;
pub use secret::Secret;

/// The program's name, as docker runs it and as every message names it.
pub const NAME: &str = "docker-credential-hub";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
