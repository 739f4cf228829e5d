//! docker-credential-hub: a Docker credential helper on the OS keychain, with a Docker
//! Hub login that keeps a JWT ready for scripts.

pub mod configure;
pub mod docker_config;
pub mod doctor;
pub mod helper;
pub mod hub;
pub mod keychain;
pub mod lock;
pub mod migrate;
pub mod paths;
pub mod protocol;
pub mod registry;
pub mod secret;
pub mod serve;
pub mod settings;
pub mod watchdog;
