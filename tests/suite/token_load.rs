//! Load: 200 `token` processes started together with an expired cached JWT make
//! exactly one Hub login; every one exits 0 and prints the same token; none times out.
//! Real processes on kernel keyutils against the loopback mock Hub. The figures go to
//! target/tmp/reliability-token-load.txt.

use std::fs::File;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::harness::{HUB_KEY, TestEnv, store_request};
use crate::support::keyring::KeyutilsEnv;
use crate::support::mock_hub::{LOGIN, MockHub, PASSWORD, Reply, USERNAME};
use crate::support::output::describe;
use crate::support::{detach_from_terminal, env, report};

const CALLS: usize = 200;
/// Generous: far longer than the one login, since waiters may queue behind all the others
/// on a small machine. Lock waiters get this plus 10 s.
const TIMEOUT_SECS: u64 = 60;
/// Past this the test kills what is left and fails, rather than hang.
const GIVE_UP: Duration = Duration::from_secs(TIMEOUT_SECS + 60);

struct Call {
    child: Child,
    stdout: std::path::PathBuf,
    stderr: std::path::PathBuf,
    started: Instant,
    took: Option<Duration>,
    status: Option<std::process::ExitStatus>,
}

#[test]
fn two_hundred_token_calls_with_an_expired_cache_make_one_login() {
    let Some(env) = KeyutilsEnv::new() else {
        return;
    };
    let hub = MockHub::start();
    let mut vars = env.env();
    env::set(&mut vars, "DOCKER_HUB_API_URL", hub.url());
    env::set(
        &mut vars,
        "DOCKER_CREDENTIAL_HUB_TIMEOUT",
        TIMEOUT_SECS.to_string(),
    );

    // Store the Hub credentials while the mock hands out already-expired tokens: the cached
    // JWT is stale, so every `token` below needs a fresh one.
    hub.set_token_lifetime(-10);
    let out = env::helper_command(&vars)
        .arg("store")
        .write_stdin(store_request(HUB_KEY, USERNAME, PASSWORD))
        .output()
        .unwrap();
    assert!(out.status.success(), "store: {}", describe(&out));
    assert_eq!(hub.count(LOGIN), 1);
    hub.set_token_lifetime(3600);
    // A slow Hub: every call is started before the one login can finish, so they all find
    // the stale cache and queue on the refresh lock.
    hub.always(LOGIN, Reply::Slow(1500));

    // Output goes to files, not pipes: no reader threads, no pipe to fill, few open fds.
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let mut calls: Vec<Call> = (0..CALLS)
        .map(|i| {
            let stdout = dir.path().join(format!("{i}.out"));
            let stderr = dir.path().join(format!("{i}.err"));
            let mut cmd = env::helper_process(&vars);
            cmd.arg("token")
                .stdin(Stdio::null())
                .stdout(File::create(&stdout).unwrap())
                .stderr(File::create(&stderr).unwrap());
            detach_from_terminal(&mut cmd);
            let started = Instant::now();
            Call {
                child: cmd.spawn().expect("start token"),
                started,
                stdout,
                stderr,
                took: None,
                status: None,
            }
        })
        .collect();
    let spawned = start.elapsed();

    // Reap as they finish, noting when; give up (and kill the rest) rather than hang.
    loop {
        let mut running = 0;
        for call in calls.iter_mut().filter(|c| c.status.is_none()) {
            match call.child.try_wait().unwrap() {
                Some(status) => {
                    call.status = Some(status);
                    call.took = Some(call.started.elapsed());
                }
                None => running += 1,
            }
        }
        if running == 0 {
            break;
        }
        if start.elapsed() > GIVE_UP {
            for call in calls.iter_mut().filter(|c| c.status.is_none()) {
                let _ = call.child.kill();
                let _ = call.child.wait();
            }
            panic!("{running} of {CALLS} token calls still ran after {GIVE_UP:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = start.elapsed();

    let logins = hub.count(LOGIN) - 1;
    let fresh = hub.last_issued();
    let mut failures = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        let out = std::fs::read_to_string(&call.stdout).unwrap();
        let err = std::fs::read_to_string(&call.stderr).unwrap();
        if !call.status.unwrap().success() || out != format!("{fresh}\n") || !err.is_empty() {
            failures.push(format!(
                "call {i}: {:?}, stdout {out:?}, stderr {err:?}",
                call.status
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {CALLS} calls failed or printed another token:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        logins, 1,
        "exactly one Hub login for {CALLS} concurrent token calls"
    );
    assert_eq!(hub.requests().len(), 2, "{:?}", hub.requests());
    let slowest = calls.iter().filter_map(|c| c.took).max().unwrap();
    report(
        "token-load",
        &format!(
            "{CALLS} concurrent `token` calls with an expired cache (keyutils): {logins} Hub login, {CALLS}/{CALLS} exit 0 with the same token, 0 timeouts; all started in {:.1} s, all done in {:.1} s (slowest call {:.1} s, {TIMEOUT_SECS} s deadline)",
            spawned.as_secs_f64(),
            wall.as_secs_f64(),
            slowest.as_secs_f64()
        ),
    );
}
