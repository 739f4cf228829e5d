//! Property tests of the protocol actions on arbitrary stdin: thousands of cases through the
//! library API in process (on real kernel keyutils), then a few hundred through the binary.
//! Each test writes its figures to target/tmp/reliability-*.txt, which `.ci/run` prints.

use crate::support::output::{stderr, stdout};
use crate::support::{env, report};

use docker_credential_hub::Deadline;
use docker_credential_hub::keychain::{self, Backend, Keychain, Requested};
use docker_credential_hub::protocol::{self, Action};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn service(tag: &str) -> String {
    crate::support::unique_name(&format!("dch-prop-{tag}"))
}

fn keyutils(service: &str) -> Option<Box<dyn Keychain>> {
    let deadline = Deadline::after(std::time::Duration::from_secs(30));
    match keychain::open_in(Requested::Explicit(Backend::Keyutils), service, &deadline) {
        Ok((opened, _)) => Some(opened.creds),
        Err(e) => {
            crate::support::tools::skip(&format!("kernel keyutils unavailable: {e}"));
            None
        }
    }
}

/// Stdin shaped like real requests often enough to reach the keychain, and raw bytes.
fn stdin_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        "\\PC{0,80}".prop_map(String::into_bytes),
        (
            "[a-zA-Z:/.0-9\\x00-\\x1f<>&]{0,30}",
            "[a-zA-Z<>\\x00 ]{0,10}",
            "\\PC{0,20}"
        )
            .prop_map(|(u, n, s)| {
                serde_json::json!({"ServerURL": u, "Username": n, "Secret": s})
                    .to_string()
                    .into_bytes()
            }),
        "[{}\\[\\]\",:a-zA-Z0-9 \\r\\n\\\\]{0,60}".prop_map(String::into_bytes),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Store),
        Just(Action::Get),
        Just(Action::Erase),
        Just(Action::List)
    ]
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Store => "store",
        Action::Get => "get",
        Action::Erase => "erase",
        Action::List => "list",
    }
}

fn check_answer(code: i32, stdout: &str) -> Result<(), TestCaseError> {
    prop_assert!(code == 0 || code == 1, "exit {code}");
    if code == 1 {
        prop_assert!(
            stdout.ends_with('\n'),
            "error not newline-terminated: {stdout:?}"
        );
        prop_assert_eq!(
            stdout.matches('\n').count(),
            1,
            "not one line: {:?}",
            stdout
        );
        prop_assert!(stdout.trim().len() > 1, "empty error");
    }
    Ok(())
}

fn clean(kc: &dyn Keychain) {
    for url in kc.list().unwrap().keys() {
        kc.erase(url).unwrap();
    }
}

#[test]
fn library_never_panics_and_answers_in_one_line() {
    let svc = service("lib");
    let Some(kc) = keyutils(&svc) else { return };
    let cases = 3000;
    let stored_count = std::cell::Cell::new(0usize);
    let mut runner = TestRunner::new(Config::with_cases(cases));
    runner
        .run(&(action(), stdin_bytes()), |(action, input)| {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                protocol::run(action, &input, Ok(kc.as_ref()), |_| false)
            }))
            .map_err(|_| TestCaseError::fail("panicked"))?;
            // What the binary prints: the answer, or the failure's one line.
            let (code, stdout) = match &outcome.result {
                Ok(answer) => (0, answer.0.clone()),
                Err(failure) => (1, format!("{}\n", failure.line(|e| e.to_string()))),
            };
            check_answer(code, &stdout)?;
            let stored = (action == Action::Store && code == 0)
                .then(|| protocol::parse_store(&input).ok())
                .flatten();
            if let Some(creds) = &stored {
                // What was stored must read back exactly.
                let back = kc
                    .get(&creds.server_url)
                    .unwrap()
                    .expect("stored entry missing");
                prop_assert_eq!(&back.username, &creds.username);
                prop_assert_eq!(back.secret.expose(), creds.secret.expose());
                kc.erase(&creds.server_url).unwrap();
                stored_count.set(stored_count.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    clean(kc.as_ref());
    report(
        "properties-library",
        &format!(
            "property arbitrary-stdin (library, keyutils): {cases} cases, {} stored and read back, 0 panics",
            stored_count.get()
        ),
    );
}

#[test]
fn binary_never_panics_and_answers_in_one_line() {
    let svc = service("bin");
    let Some(kc) = keyutils(&svc) else { return };
    let cases = 300;
    let home = tempfile::tempdir().unwrap();
    let mut runner = TestRunner::new(Config::with_cases(cases));
    runner
        .run(&(action(), stdin_bytes()), |(action, input)| {
            let out = env::helper_command(&env::base_vars(home.path(), home.path()))
                .env("DOCKER_CREDENTIAL_HUB_BACKEND", "keyutils")
                .env("DOCKER_CREDENTIAL_HUB_SERVICE", &svc)
                .arg(action_name(action))
                .write_stdin(input)
                .output()
                .unwrap();
            let code = out
                .status
                .code()
                .ok_or_else(|| TestCaseError::fail("killed by a signal (a panic aborts)"))?;
            check_answer(code, &stdout(&out))?;
            prop_assert!(!stderr(&out).contains("panicked"));
            Ok(())
        })
        .unwrap();
    clean(kc.as_ref());
    report(
        "properties-binary",
        &format!("property arbitrary-stdin (binary, keyutils): {cases} cases, 0 panics"),
    );
}
