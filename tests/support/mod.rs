//! Test support shared by the integration suites: real components only (a private
//! gnome-keyring on a private D-Bus session, kernel keyutils, the docker CLI), plus the
//! loopback mock of the Docker Hub API.
#![allow(dead_code)]

pub mod keyring;
pub mod mock_hub;
pub mod registry;

/// Record one reliability figure in target/tmp/reliability-NAME.txt; `.ci/run` prints them all
/// and the README quotes them.
pub fn report(name: &str, line: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(
        dir.join(format!("reliability-{name}.txt")),
        format!("{line}\n"),
    )
    .unwrap();
}
