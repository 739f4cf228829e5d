//! A session bus that refuses our authentication.
//!
//! `get` (and `token`) send the whole D-Bus handshake and then their first call without
//! waiting for the bus to accept them (crates/secret-service-client/src/bus.rs). When the bus
//! says REJECTED instead of OK, that answer must fail the pending call at once and be
//! reported in one line: never a hang until the deadline, never "credentials not found". A
//! real dbus-daemon that only allows the ANONYMOUS mechanism refuses the EXTERNAL
//! authentication every client here uses.

use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};

use crate::support::env;
use crate::support::harness::NOT_FOUND;
use crate::support::keyring::bus_config;
use crate::support::output::{assert_one_line_error, describe, stderr};
use crate::support::tools::require_tool;
/// Long enough that running into it fails the assertions below (they reject its message).
const DEADLINE_SECS: &str = "20";

struct RefusingBus {
    child: Child,
    address: String,
    dir: tempfile::TempDir,
}

impl RefusingBus {
    fn start() -> RefusingBus {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            bus_config(dir.path(), "<auth>ANONYMOUS</auth>\n  <allow_anonymous/>"),
        )
        .expect("write bus config");
        let mut child = env::command("dbus-daemon", &env::base_vars(dir.path(), dir.path()))
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut address = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut address)
            .expect("read the bus address");
        let address = address.trim().to_string();
        assert!(
            address.starts_with("unix:"),
            "dbus-daemon printed no address: {address:?}"
        );
        RefusingBus {
            child,
            address,
            dir,
        }
    }

    fn helper(&self, args: &[&str], stdin: &str) -> Output {
        let home = self.dir.path().join("home");
        let runtime = self.dir.path().join("run");
        for d in [&home, &runtime] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        env::helper_command(&env::base_vars(&home, &runtime))
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("DOCKER_CREDENTIAL_HUB_BACKEND", "secret-service")
            .env("DOCKER_CREDENTIAL_HUB_TIMEOUT", DEADLINE_SECS)
            .write_stdin(stdin)
            .output()
            .expect("run docker-credential-hub")
    }
}

impl Drop for RefusingBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The one line must name the problem, not claim a missing credential or a timeout.
fn assert_names_the_bus(line: &str, out: &Output) {
    assert_ne!(
        line,
        NOT_FOUND.trim_end(),
        "a refused bus is not a missing credential: {}",
        describe(out)
    );
    assert!(
        !line.contains("did not answer within"),
        "the refusal must end the call at once, not at the deadline: {}",
        describe(out)
    );
    assert!(
        line.contains("Secret Service") || line.contains("D-Bus") || line.contains("bus"),
        "the line must say the session bus / Secret Service is the problem: {}",
        describe(out)
    );
}

#[test]
fn a_bus_that_refuses_authentication_fails_get_and_token_in_one_line() {
    if !require_tool("dbus-daemon") {
        return;
    }
    let bus = RefusingBus::start();

    let out = bus.helper(&["get"], "https://registry.example.com/v1/");
    let line = assert_one_line_error(&out);
    assert_names_the_bus(&line, &out);

    let out = bus.helper(&["token"], "");
    assert_eq!(out.status.code(), Some(1), "token: {}", describe(&out));
    assert!(
        out.stdout.is_empty(),
        "token printed no token: {}",
        describe(&out)
    );
    let err = stderr(&out);
    assert_eq!(
        err.matches('\n').count(),
        1,
        "one stderr line: {}",
        describe(&out)
    );
    assert_names_the_bus(err.trim_end(), &out);
}
