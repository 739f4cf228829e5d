//! The protocol on the operating system's own keychain: natively on macOS and Windows (the
//! GitHub workflow sets DOCKER_CREDENTIAL_HUB_NATIVE_TESTS=1, since these tests use the
//! keychain of whoever runs them, under a unique service name they clean up), and on Linux
//! the real Windows binary under Wine (support/wine.rs).

use std::collections::BTreeMap;
use std::process::Output;

const NOT_FOUND: &str = "credentials not found in native keychain\n";

/// Where the binary under test runs.
pub trait Platform {
    /// Run the helper with extra environment variables.
    fn run_env(&self, env: &[(&str, &str)], args: &[&str], stdin: &[u8]) -> Output;
    /// Windows Credential Manager (natively or under Wine).
    fn windows(&self) -> bool;
    /// Wine's Credential Manager, which keeps credentials as registry keys.
    fn wine(&self) -> bool {
        false
    }
}

fn run(p: &dyn Platform, args: &[&str], stdin: &[u8]) -> Output {
    p.run_env(&[], args, stdin)
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}, stdout {:?}, stderr {:?}",
        out.status.code(),
        text(out),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn request(url: &str, user: &str, secret: &str) -> Vec<u8> {
    serde_json::json!({"ServerURL": url, "Username": user, "Secret": secret})
        .to_string()
        .into_bytes()
}

fn store_ok(p: &dyn Platform, url: &str, user: &str, secret: &str) {
    let out = run(p, &["store"], &request(url, user, secret));
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "store {url}: {}",
        describe(&out)
    );
}

fn assert_get(p: &dyn Platform, url: &str, user: &str, secret: &str) {
    let out = run(p, &["get"], url.as_bytes());
    assert!(out.status.success(), "get {url}: {}", describe(&out));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["ServerURL"], url);
    assert_eq!(got["Username"], user, "{url}");
    assert_eq!(got["Secret"], secret, "{url}");
    assert!(text(&out).ends_with("}\n") && !text(&out).contains('\r'));
}

fn assert_not_found(p: &dyn Platform, url: &str) {
    let out = run(p, &["get"], url.as_bytes());
    assert_eq!(out.status.code(), Some(1), "get {url}: {}", describe(&out));
    assert_eq!(text(&out), NOT_FOUND, "get {url}");
}

fn list_map(p: &dyn Platform) -> BTreeMap<String, String> {
    let out = run(p, &["list"], b"unused");
    assert!(out.status.success(), "list: {}", describe(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn erase_ok(p: &dyn Platform, url: &str) {
    let out = run(p, &["erase"], url.as_bytes());
    assert!(out.status.success(), "erase {url}: {}", describe(&out));
}

pub fn store_get_erase_list(p: &dyn Platform) {
    let url = "https://registry.example.com/v1/";
    assert_eq!(list_map(p), BTreeMap::new());
    store_ok(p, url, "alice", "s3cret-RoundTrip");
    assert_get(p, url, "alice", "s3cret-RoundTrip");
    assert_eq!(
        list_map(p),
        BTreeMap::from([(url.to_string(), "alice".to_string())])
    );
    store_ok(p, url, "bob", "second");
    assert_get(p, url, "bob", "second");
    erase_ok(p, url);
    assert_not_found(p, url);
    assert_eq!(list_map(p), BTreeMap::new());
    // `<token>` and characters JSON escapes survive.
    store_ok(p, "https://tok.example", "<token>", "a&b\"c\\d");
    let out = run(p, &["get"], b"https://tok.example");
    assert!(
        text(&out).contains("\\u003ctoken\\u003e"),
        "{}",
        describe(&out)
    );
    assert_get(p, "https://tok.example", "<token>", "a&b\"c\\d");
}

pub fn not_found_is_the_exact_docker_string(p: &dyn Platform) {
    assert_not_found(p, "https://never-stored.example");
    erase_ok(p, "https://never-stored.example");
}

/// Credential Manager holds at most 2560 bytes of secret: exactly that much is stored, one
/// byte more is refused with the secret's own size. Elsewhere large secrets just work.
pub fn the_size_limit_is_the_secrets_size(p: &dyn Platform) {
    let url = "https://big.example";
    let fits = "x".repeat(2560);
    store_ok(p, url, "a-rather-long-registry-username", &fits);
    assert_get(p, url, "a-rather-long-registry-username", &fits);
    let big = "y".repeat(2561);
    let out = run(p, &["store"], &request(url, "u", &big));
    if p.windows() {
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let line = text(&out);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(
            line.contains("2561 bytes") && line.contains("at most 2560"),
            "{line}"
        );
        assert!(!line.contains(&big));
        // The earlier value is untouched.
        assert_get(p, url, "a-rather-long-registry-username", &fits);
    } else {
        assert!(out.status.success(), "{}", describe(&out));
        assert_get(p, url, "u", &big);
    }
}

pub fn ports_and_paths_are_kept_apart(p: &dyn Platform) {
    let keys = [
        "https://host.example",
        "https://host.example:5000",
        "https://host.example:5000/v2/",
        "https://host.example/v1/access-token",
        "http://host.example",
    ];
    for (i, k) in keys.iter().enumerate() {
        store_ok(p, k, &format!("user{i}"), &format!("secret{i}"));
    }
    for (i, k) in keys.iter().enumerate() {
        assert_get(p, k, &format!("user{i}"), &format!("secret{i}"));
    }
    assert_eq!(list_map(p).len(), keys.len());
    erase_ok(p, keys[1]);
    assert_not_found(p, keys[1]);
    assert_get(p, keys[2], "user2", "secret2");
}

/// docker's keys are exact: two URLs that differ only in case are two credentials, although
/// Credential Manager compares target names ignoring case.
pub fn urls_that_differ_only_in_case_are_kept_apart(p: &dyn Platform) {
    let (a, b) = ("https://Registry.example/V1", "https://registry.example/v1");
    store_ok(p, a, "upper", "UPPER-secret");
    store_ok(p, b, "lower", "lower-secret");
    assert_get(p, a, "upper", "UPPER-secret");
    assert_get(p, b, "lower", "lower-secret");
    assert_not_found(p, "https://REGISTRY.example/v1");
    let listed = list_map(p);
    assert_eq!(listed.get(a).map(String::as_str), Some("upper"));
    assert_eq!(listed.get(b).map(String::as_str), Some("lower"));
    erase_ok(p, a);
    assert_get(p, b, "lower", "lower-secret");
}

/// A URL longer than Credential Manager's 513-character user names is an ordinary key; one
/// longer than any target name is simply not there.
pub fn long_urls_are_keys_or_not_found(p: &dyn Platform) {
    let long = format!("https://long.example/{}", "p".repeat(600));
    assert_not_found(p, &long);
    erase_ok(p, &long);
    if p.wine() {
        // Wine keeps credentials as registry keys, whose names hold 255 characters (Windows
        // allows 32767): the store fails in one line that says so, and nothing is left.
        let out = run(p, &["store"], &request(&long, "u", "long-url-secret"));
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let line = text(&out);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.contains("did not keep the credential"), "{line}");
        assert_not_found(p, &long);
    } else {
        store_ok(p, &long, "u", "long-url-secret");
        assert_get(p, &long, "u", "long-url-secret");
        assert!(list_map(p).contains_key(&long));
        erase_ok(p, &long);
    }
    let huge = format!("https://huge.example/{}", "q".repeat(40_000));
    assert_not_found(p, &huge);
    erase_ok(p, &huge);
}

/// A service name with dots (Credential Manager's store crate splits target names at the
/// last dot) keeps its entries listable.
pub fn a_dotted_service_name_lists_its_entries(p: &dyn Platform) {
    let env = [("DOCKER_CREDENTIAL_HUB_SERVICE", "dch.team.v2")];
    let url = "https://dotted.example";
    let out = p.run_env(&env, &["store"], &request(url, "dot", "dotted-secret"));
    assert!(out.status.success(), "{}", describe(&out));
    let out = p.run_env(&env, &["list"], b"");
    assert_eq!(
        text(&out),
        format!("{{\"{url}\":\"dot\"}}\n"),
        "{}",
        describe(&out)
    );
    let out = p.run_env(&env, &["erase"], url.as_bytes());
    assert!(out.status.success(), "{}", describe(&out));
    let out = p.run_env(&env, &["list"], b"");
    assert_eq!(text(&out), "{}\n");
}

/// `version`, `doctor` and `configure --dry-run` run, find this very binary on PATH, and
/// speak the platform's language (no `\\?\` paths, no Unix shell hints on Windows).
pub fn version_doctor_and_configure_dry_run(p: &dyn Platform) {
    let out = run(p, &["version"], b"");
    assert!(
        text(&out).starts_with("docker-credential-hub v"),
        "{}",
        describe(&out)
    );
    let out = run(p, &["doctor"], b"");
    let all = text(&out) + &String::from_utf8_lossy(&out.stderr);
    let runs = all
        .lines()
        .find(|l| l.contains(" docker runs "))
        .unwrap_or_else(|| panic!("no 'docker runs' line: {all}"));
    assert!(runs.ends_with(", this binary"), "{runs}");
    assert!(all.contains("keychain: "), "{all}");
    assert!(all.contains("probe: wrote, read back and deleted"), "{all}");
    assert!(!all.contains(r"\\?\"), "{all}");
    let out = run(p, &["configure", "--dry-run"], b"");
    let all = text(&out) + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(all.contains("Dry run: nothing is changed."), "{all}");
    assert!(all.contains("would set \"credsStore\": \"hub\""), "{all}");
    assert!(!all.contains(r"\\?\"), "{all}");
    if p.windows() {
        assert!(
            !all.contains("~/.profile") && !all.contains("printf %s"),
            "{all}"
        );
    }
}

macro_rules! native_tier {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if let Some(p) = platform() {
                    super::$name(&p);
                }
            }
        )*
    };
}

#[cfg(target_os = "linux")]
mod wine {
    use crate::support::wine::WineEnv;
    use std::process::Output;

    impl super::Platform for WineEnv {
        fn run_env(&self, env: &[(&str, &str)], args: &[&str], stdin: &[u8]) -> Output {
            use std::io::Write;
            let mut cmd = self.command();
            cmd.args(args)
                .envs(env.iter().copied())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().expect("run wine64");
            child.stdin.take().unwrap().write_all(stdin).unwrap();
            child.wait_with_output().unwrap()
        }
        fn windows(&self) -> bool {
            true
        }
        fn wine(&self) -> bool {
            true
        }
    }

    fn platform() -> Option<WineEnv> {
        WineEnv::new()
    }

    native_tier!(
        store_get_erase_list,
        not_found_is_the_exact_docker_string,
        the_size_limit_is_the_secrets_size,
        ports_and_paths_are_kept_apart,
        urls_that_differ_only_in_case_are_kept_apart,
        long_urls_are_keys_or_not_found,
        a_dotted_service_name_lists_its_entries,
        version_doctor_and_configure_dry_run,
    );
}

#[cfg(any(target_os = "macos", windows))]
mod os {
    use std::process::Output;

    use crate::support::tools::{helper_bin, skip};

    /// The OS keychain under a unique service name, cleaned up on drop.
    pub struct NativeEnv {
        service: String,
        docker_config: tempfile::TempDir,
    }

    impl super::Platform for NativeEnv {
        fn run_env(&self, env: &[(&str, &str)], args: &[&str], stdin: &[u8]) -> Output {
            let bin = helper_bin();
            let mut path = vec![bin.parent().unwrap().to_path_buf()];
            path.extend(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            ));
            assert_cmd::Command::new(&bin)
                .args(args)
                .env("PATH", std::env::join_paths(path).unwrap())
                .env("DOCKER_CREDENTIAL_HUB_SERVICE", &self.service)
                .env("DOCKER_CONFIG", self.docker_config.path())
                .envs(env.iter().copied())
                .write_stdin(stdin.to_vec())
                .output()
                .unwrap()
        }
        fn windows(&self) -> bool {
            cfg!(windows)
        }
    }

    impl Drop for NativeEnv {
        fn drop(&mut self) {
            let out = super::run(self, &["list"], b"");
            let listed: std::collections::BTreeMap<String, String> =
                serde_json::from_slice(&out.stdout).unwrap_or_default();
            for url in listed.keys() {
                let _ = super::run(self, &["erase"], url.as_bytes());
            }
        }
    }

    fn platform() -> Option<NativeEnv> {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            eprintln!(
                "SKIP: the Secret Service, pass, keyutils, docker CLI, podman, Hub and hardening tiers need Linux and are compiled out here; .ci/run runs them on Linux"
            )
        });
        if std::env::var_os("DOCKER_CREDENTIAL_HUB_NATIVE_TESTS").is_none() {
            skip(
                "the native-keychain tier uses this machine's own keychain; set DOCKER_CREDENTIAL_HUB_NATIVE_TESTS=1 to run it",
            );
            return None;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Some(NativeEnv {
            service: format!("dch-native-{}-{nanos}", std::process::id()),
            docker_config: tempfile::tempdir().unwrap(),
        })
    }

    native_tier!(
        store_get_erase_list,
        not_found_is_the_exact_docker_string,
        the_size_limit_is_the_secrets_size,
        ports_and_paths_are_kept_apart,
        urls_that_differ_only_in_case_are_kept_apart,
        long_urls_are_keys_or_not_found,
        a_dotted_service_name_lists_its_entries,
        version_doctor_and_configure_dry_run,
    );
}
