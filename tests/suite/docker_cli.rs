//! The real docker CLI with `"credsStore": "hub"`: `docker login` and `docker logout`
//! against a loopback registry, with the credentials in a real keychain. The CLI logs in
//! client side when DOCKER_HOST points at a socket that does not exist.

use std::path::Path;

use crate::support::harness::{TestEnv, assert_get, assert_not_found, docker, list_map};
use crate::support::output::{assert_no_secret, describe, stdout};
use crate::support::registry::FakeRegistry;
use base64::Engine;

const USER: &str = "reg-user";
const PASSWORD: &str = "Reg-Pa55word-7f3a";

on_backends!(
    [secret_service, keyutils],
    needs["docker"],
    [
        login_stores_in_the_keychain_and_logout_erases,
        wrong_password_stores_nothing,
    ]
);

fn config_path(env: &dyn TestEnv) -> std::path::PathBuf {
    env.docker_config_dir().join("config.json")
}

fn write_config(env: &dyn TestEnv) {
    std::fs::write(config_path(env), "{\"credsStore\":\"hub\"}\n").unwrap();
}

/// config.json must never hold a secret: not the password, not its base64 form, and no
/// `auth`, `password` or token field anywhere.
fn assert_config_has_no_secret(path: &Path) {
    let raw = std::fs::read_to_string(path).unwrap_or_default();
    assert!(!raw.contains(PASSWORD), "password in config.json: {raw}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    assert!(
        !raw.contains(&b64),
        "base64 credentials in config.json: {raw}"
    );
    let pw64 = base64::engine::general_purpose::STANDARD.encode(PASSWORD);
    assert!(
        !raw.contains(&pw64),
        "base64 password in config.json: {raw}"
    );
    let json: serde_json::Value = serde_json::from_str(&raw).expect("config.json is JSON");
    fn walk(v: &serde_json::Value, raw: &str) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let k = k.to_ascii_lowercase();
                    assert!(
                        !matches!(
                            k.as_str(),
                            "auth" | "password" | "identitytoken" | "registrytoken"
                        ),
                        "config.json has a `{k}` field: {raw}"
                    );
                    walk(v, raw);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, raw)),
            _ => {}
        }
    }
    walk(&json, &raw);
    assert_eq!(json["credsStore"], "hub", "credsStore was lost: {raw}");
}

fn login_stores_in_the_keychain_and_logout_erases(env: &dyn TestEnv) {
    let registry = FakeRegistry::start(USER, PASSWORD);
    let addr = registry.addr();
    write_config(env);

    let out = docker(
        env,
        &[],
        &["login", &addr, "-u", USER, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "[{}] docker login failed: {}",
        env.backend(),
        describe(&out)
    );
    assert!(
        stdout(&out).contains("Login Succeeded"),
        "{}",
        describe(&out)
    );
    assert_no_secret(&out, PASSWORD);
    assert!(
        registry
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path == "/v2/" && r.authorized),
        "docker never authenticated to the registry: {:?}",
        registry.requests()
    );

    // docker stored under the bare host:port; our get returns exactly that.
    assert_get(env, &addr, USER, PASSWORD);
    assert_eq!(
        list_map(env),
        [(addr.clone(), USER.to_string())].into_iter().collect()
    );
    assert_config_has_no_secret(&config_path(env));

    let out = docker(env, &[], &["logout", &addr], "");
    assert!(
        out.status.success(),
        "[{}] docker logout failed: {}",
        env.backend(),
        describe(&out)
    );
    assert_not_found(env, &addr);
    assert_eq!(list_map(env), Default::default());
    assert_config_has_no_secret(&config_path(env));
}

fn wrong_password_stores_nothing(env: &dyn TestEnv) {
    let registry = FakeRegistry::start(USER, PASSWORD);
    let addr = registry.addr();
    write_config(env);
    let wrong = "Wrong-Pa55word-0000";

    let out = docker(
        env,
        &[],
        &["login", &addr, "-u", USER, "--password-stdin"],
        &format!("{wrong}\n"),
    );
    assert!(
        !out.status.success(),
        "[{}] docker login with a wrong password succeeded: {}",
        env.backend(),
        describe(&out)
    );
    assert!(
        registry
            .requests()
            .iter()
            .any(|r| r.path == "/v2/" && r.sent_auth && !r.authorized),
        "docker never tried the wrong credentials: {:?}",
        registry.requests()
    );
    assert_no_secret(&out, wrong);
    assert_not_found(env, &addr);
    assert_eq!(list_map(env), Default::default());
    let raw = std::fs::read_to_string(config_path(env)).unwrap();
    assert!(!raw.contains(wrong), "{raw}");
    assert_config_has_no_secret(&config_path(env));
}
