//! Test support shared by the integration suites: real components only (a private
//! gnome-keyring on a private D-Bus session, kernel keyutils, the docker CLI), plus the
//! loopback mock of the Docker Hub API.
#![allow(dead_code)]

pub mod keyring;
pub mod mock_hub;
pub mod registry;
