//! The protocol on the operating system's own stores: natively on macOS and Windows (the
//! GitHub workflow sets DOCKER_CREDENTIAL_HUB_NATIVE_TESTS=1, since these tests use the
//! keychain of whoever runs them, under a unique service name they clean up), and on Linux
//! the real Windows binary under Wine (support/wine.rs), on both of its stores: the
//! Credential Manager and the `dpapi` file store.
//!
//! The shared cases check the round trip, docker's exact strings, secrets up to 64 KiB (split
//! over several Credential Manager credentials), and that a reader racing a writer only ever
//! sees one of the values written. Under Wine, `mod wine` also reads Wine's registry: every
//! credential's blob size, the parts left after a shrink or an erase, the cached Hub JWT,
//! that no file of the prefix holds a dpapi secret in plaintext, and `configure --backend`.

use std::collections::BTreeMap;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};

pub const NOT_FOUND: &str = "credentials not found in native keychain\n";
/// What the Credential Manager stores per secret, split over several credentials.
const WINCRED_MAX_SECRET: usize = 64 * 1024;

/// Where the binary under test runs.
pub trait Platform: Sync {
    /// Run the helper with extra environment variables.
    fn run_env(&self, env: &[(&str, &str)], args: &[&str], stdin: &[u8]) -> Output;
    /// Windows (natively or under Wine), whatever the store.
    fn windows(&self) -> bool;
    /// The Windows Credential Manager (as opposed to the dpapi files or macOS).
    fn credential_manager(&self) -> bool;
    /// Wine, whose Credential Manager keeps credentials as registry keys.
    fn wine(&self) -> bool {
        false
    }
}

pub fn run(p: &dyn Platform, args: &[&str], stdin: &[u8]) -> Output {
    p.run_env(&[], args, stdin)
}

pub fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn describe(out: &Output) -> String {
    let clip = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        if s.len() > 400 {
            format!(
                "{}… ({} bytes)",
                s.chars().take(400).collect::<String>(),
                s.len()
            )
        } else {
            s.into_owned()
        }
    };
    format!(
        "exit {:?}, stdout {:?}, stderr {:?}",
        out.status.code(),
        clip(&out.stdout),
        clip(&out.stderr)
    )
}

pub fn request(url: &str, user: &str, secret: &str) -> Vec<u8> {
    serde_json::json!({"ServerURL": url, "Username": user, "Secret": secret})
        .to_string()
        .into_bytes()
}

pub fn store_ok(p: &dyn Platform, url: &str, user: &str, secret: &str) {
    let out = run(p, &["store"], &request(url, user, secret));
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "store {url}: {}",
        describe(&out)
    );
}

/// The credential `get` answers: (username, secret).
pub fn get_pair(p: &dyn Platform, url: &str) -> (String, String) {
    let out = run(p, &["get"], url.as_bytes());
    assert!(out.status.success(), "get {url}: {}", describe(&out));
    assert!(text(&out).ends_with("}\n") && !text(&out).contains('\r'));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["ServerURL"], url);
    let field = |k: &str| got[k].as_str().unwrap_or_default().to_string();
    (field("Username"), field("Secret"))
}

pub fn assert_get(p: &dyn Platform, url: &str, user: &str, secret: &str) {
    let (u, s) = get_pair(p, url);
    assert_eq!(u, user, "{url}");
    assert!(
        s == secret,
        "{url}: the secret read back ({} bytes) is not the one stored ({} bytes)",
        s.len(),
        secret.len()
    );
}

pub fn assert_not_found(p: &dyn Platform, url: &str) {
    let out = run(p, &["get"], url.as_bytes());
    assert_eq!(out.status.code(), Some(1), "get {url}: {}", describe(&out));
    assert_eq!(text(&out), NOT_FOUND, "get {url}: {}", describe(&out));
}

pub fn list_map(p: &dyn Platform) -> BTreeMap<String, String> {
    let out = run(p, &["list"], b"unused");
    assert!(out.status.success(), "list: {}", describe(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn erase_ok(p: &dyn Platform, url: &str) {
    let out = run(p, &["erase"], url.as_bytes());
    assert!(out.status.success(), "erase {url}: {}", describe(&out));
}

/// Printable, varied, deterministic for a seed: catches truncation, reordering and parts
/// of two values joined.
pub fn big_secret(len: usize, seed: usize) -> String {
    const ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/=";
    (0..len)
        .map(|i| ALPHABET[(i * 7919 + i / 3 + seed * 31) % ALPHABET.len()] as char)
        .collect()
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

/// The strings docker matches on, byte for byte, on stdout with exit 1.
pub fn protocol_errors_are_docker_s_exact_strings(p: &dyn Platform) {
    assert_not_found(p, "https://never-stored.example");
    erase_ok(p, "https://never-stored.example");
    for (input, expected) in [
        (
            &br#"{"Username":"u","Secret":"s"}"#[..],
            "no credentials server URL\n",
        ),
        (
            br#"{"ServerURL":"https://x.example","Secret":"s"}"#,
            "no credentials username\n",
        ),
    ] {
        let out = run(p, &["store"], input);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert_eq!(text(&out), expected);
    }
    assert_eq!(list_map(p), BTreeMap::new());
}

/// Secrets larger than one Credential Manager blob (2560 bytes) round-trip exactly, up to
/// 64 KiB; the Credential Manager refuses one byte more in one line, keeping what it had.
/// The other stores take it.
pub fn large_secrets_round_trip_up_to_the_limit(p: &dyn Platform) {
    let url = "https://big.example";
    for (seed, size) in [2560, 2561, 10_000, WINCRED_MAX_SECRET]
        .into_iter()
        .enumerate()
    {
        let secret = big_secret(size, seed);
        let user = format!("user-{size}");
        store_ok(p, url, &user, &secret);
        assert_get(p, url, &user, &secret);
        assert_eq!(list_map(p), BTreeMap::from([(url.to_string(), user)]));
    }
    let over = big_secret(WINCRED_MAX_SECRET + 1, 9);
    let out = run(p, &["store"], &request(url, "u", &over));
    if p.credential_manager() {
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let line = text(&out);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(
            line.contains("65537 bytes") && line.contains("at most 65536"),
            "{line}"
        );
        assert!(!line.contains(&over[..64]));
        let user = format!("user-{WINCRED_MAX_SECRET}");
        assert_get(p, url, &user, &big_secret(WINCRED_MAX_SECRET, 3));
    } else {
        assert!(out.status.success(), "{}", describe(&out));
        assert_get(p, url, "u", &over);
    }
    // Large to small: the small one, and nothing of the large one, is what is read.
    store_ok(p, url, "small", "tiny");
    assert_get(p, url, "small", "tiny");
    erase_ok(p, url);
    assert_not_found(p, url);
    assert_eq!(list_map(p), BTreeMap::new());
}

/// A secret that happens to read like the helper's own record of a split value is kept as
/// it is, never followed.
pub fn a_secret_that_looks_like_a_manifest_is_kept_as_it_is(p: &dyn Platform) {
    for secret in ["dch-parts:abc:2", "dch-parts:18f0-1-0:1"] {
        store_ok(p, "https://lookalike.example", "u", secret);
        assert_get(p, "https://lookalike.example", "u", secret);
    }
    erase_ok(p, "https://lookalike.example");
    assert_not_found(p, "https://lookalike.example");
}

/// One process alternately stores two 60 KiB values while another keeps reading: every
/// answer is one of the two whole (username and secret together), never a mix and never an
/// error. The number of stores is fixed; the reader reads until the writer is done.
pub fn a_reader_never_sees_a_mix_of_two_large_values(p: &dyn Platform) {
    const STORES: usize = 10;
    let url = "https://race.example";
    let a = ("alice".to_string(), big_secret(60 * 1024, 1));
    let b = ("bob".to_string(), big_secret(60 * 1024, 2));
    store_ok(p, url, &a.0, &a.1);
    let done = AtomicBool::new(false);
    let (reads, saw_a, saw_b) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            for i in 0..STORES {
                let (user, secret) = if i % 2 == 0 { &b } else { &a };
                store_ok(p, url, user, secret);
            }
            done.store(true, Ordering::SeqCst);
        });
        let (mut reads, mut saw_a, mut saw_b) = (0, 0, 0);
        while !done.load(Ordering::SeqCst) || reads < 3 {
            if writer.is_finished() && !done.load(Ordering::SeqCst) {
                break; // the writer panicked; joined below
            }
            let got = get_pair(p, url);
            reads += 1;
            if got == a {
                saw_a += 1;
            } else if got == b {
                saw_b += 1;
            } else {
                done.store(true, Ordering::SeqCst);
                panic!(
                    "read {reads}: a mix: username {:?} with a secret of {} bytes that is neither value",
                    got.0,
                    got.1.len()
                );
            }
        }
        writer.join().expect("the writer failed");
        (reads, saw_a, saw_b)
    });
    assert_eq!(reads, saw_a + saw_b);
    assert_get(p, url, &a.0, &a.1);
    eprintln!("{reads} reads during {STORES} stores: {saw_a} saw one value, {saw_b} the other");
    erase_ok(p, url);
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
/// Credential Manager compares target names ignoring case (and Windows file names too).
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
    if p.wine() && p.credential_manager() {
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
                    super::super::$name(&p);
                }
            }
        )*
    };
}

/// Every shared case, for one store.
macro_rules! every_case {
    () => {
        native_tier!(
            store_get_erase_list,
            protocol_errors_are_docker_s_exact_strings,
            large_secrets_round_trip_up_to_the_limit,
            a_secret_that_looks_like_a_manifest_is_kept_as_it_is,
            a_reader_never_sees_a_mix_of_two_large_values,
            ports_and_paths_are_kept_apart,
            urls_that_differ_only_in_case_are_kept_apart,
            long_urls_are_keys_or_not_found,
            a_dotted_service_name_lists_its_entries,
            version_doctor_and_configure_dry_run,
        );
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
        fn credential_manager(&self) -> bool {
            self.backend.is_none_or(|b| b == "wincred")
        }
        fn wine(&self) -> bool {
            true
        }
    }

    /// The Credential Manager, which `auto` picks.
    mod wincred {
        use crate::support::wine::WineEnv;

        fn platform() -> Option<WineEnv> {
            WineEnv::new()
        }

        every_case!();
    }

    /// The dpapi file store.
    mod dpapi {
        use crate::support::wine::WineEnv;

        fn platform() -> Option<WineEnv> {
            WineEnv::with_backend("dpapi")
        }

        every_case!();
    }
}

#[cfg(any(target_os = "macos", windows))]
mod os {
    use std::process::Output;

    use crate::support::tools::{helper_bin, skip};

    /// The OS keychain under a unique service name, cleaned up on drop.
    pub struct NativeEnv {
        service: String,
        backend: Option<&'static str>,
        docker_config: tempfile::TempDir,
    }

    impl super::Platform for NativeEnv {
        fn run_env(&self, env: &[(&str, &str)], args: &[&str], stdin: &[u8]) -> Output {
            let bin = helper_bin();
            let mut path = vec![bin.parent().unwrap().to_path_buf()];
            path.extend(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            ));
            let mut cmd = assert_cmd::Command::new(&bin);
            cmd.args(args)
                .env("PATH", std::env::join_paths(path).unwrap())
                .env("DOCKER_CREDENTIAL_HUB_SERVICE", &self.service)
                .env("DOCKER_CONFIG", self.docker_config.path())
                .env_remove("DOCKER_CREDENTIAL_HUB_BACKEND");
            if let Some(b) = self.backend {
                cmd.env("DOCKER_CREDENTIAL_HUB_BACKEND", b);
            }
            cmd.envs(env.iter().copied())
                .write_stdin(stdin.to_vec())
                .output()
                .unwrap()
        }
        fn windows(&self) -> bool {
            cfg!(windows)
        }
        fn credential_manager(&self) -> bool {
            cfg!(windows) && self.backend.is_none()
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

    fn native(backend: Option<&'static str>) -> Option<NativeEnv> {
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
            backend,
            docker_config: tempfile::tempdir().unwrap(),
        })
    }

    /// The platform's keychain, which `auto` picks.
    mod keychain {
        fn platform() -> Option<super::NativeEnv> {
            super::native(None)
        }

        every_case!();
    }

    /// The dpapi file store, natively.
    #[cfg(windows)]
    mod dpapi {
        fn platform() -> Option<super::NativeEnv> {
            super::native(Some("dpapi"))
        }

        every_case!();
    }
}
