//! The Windows binary's stores as Wine keeps them on disk: the Credential Manager's
//! credentials in Wine's registry (`wine reg query`, which shows each blob at its length), and
//! the dpapi backend's files in the Wine prefix. Checked here: a split value's credentials
//! each hold at most 2560 bytes, a small value keeps the one-credential layout, no part
//! outlives a shrink or an erase, a store killed part-way leaves the old value or the new
//! one, the cached Hub JWT lives in either store, no file of the
//! prefix holds a dpapi secret in plaintext, and `configure --backend` moves credentials
//! from the Credential Manager to dpapi and back.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::files_under;
use crate::support::harness::{
    TestEnv, assert_get, assert_not_found, big_secret, erase_ok, get_pair, list_map, run, run_with,
    store_ok, store_request,
};
use crate::support::mock_hub::{LOGIN, MockHub, PASSWORD, USERNAME};
use crate::support::output::{describe, stdout};
use crate::support::wine::{WineCredential, WineEnv, windows_path};

/// `CRED_MAX_CREDENTIAL_BLOB_SIZE`.
const MAX_BLOB: usize = 2560;

fn main_target(p: &WineEnv, url: &str) -> String {
    format!("docker-credential-hub|{}|{url}", p.service)
}

fn is_part(c: &WineCredential) -> bool {
    c.target.contains(":parts|")
}

/// The generation each part's target names (`…|<generation>.<index>`).
fn generations(creds: &[WineCredential]) -> BTreeSet<String> {
    creds
        .iter()
        .filter(|c| is_part(c))
        .filter_map(|c| c.target.rsplit_once('|'))
        .filter_map(|(_, tail)| tail.rsplit_once('.').map(|(g, _)| g.to_string()))
        .collect()
}

fn assert_blobs_fit(creds: &[WineCredential], context: &str) {
    for c in creds {
        assert!(
            c.blob_len <= MAX_BLOB,
            "{context}: {} holds {} bytes",
            c.target,
            c.blob_len
        );
    }
}

#[test]
fn split_values_use_credentials_of_at_most_2560_bytes_and_leave_no_part_behind() {
    let Some(p) = WineEnv::new() else {
        return;
    };
    let url = "https://layout.example";
    let main = main_target(&p, url);

    // Up to 2560 bytes: one credential, the secret alone as its blob, the username in
    // UserName (the layout of every earlier version).
    let small = big_secret(MAX_BLOB, 0);
    store_ok(&p, url, "small-user", &small);
    let creds = p.credentials();
    assert_eq!(creds.len(), 1, "{creds:?}");
    assert_eq!(
        (creds[0].target.as_str(), creds[0].username.as_str()),
        (main.as_str(), "small-user")
    );
    assert_eq!(creds[0].blob_len, MAX_BLOB);

    for (seed, size) in [(1, 2561), (2, 10_000), (3, 65_536)] {
        let secret = big_secret(size, seed);
        store_ok(&p, url, "large-user", &secret);
        assert_get(&p, url, "large-user", &secret);
        let creds = p.credentials();
        assert_blobs_fit(&creds, &format!("{size} bytes"));
        let mains: Vec<_> = creds.iter().filter(|c| !is_part(c)).collect();
        assert_eq!(mains.len(), 1, "{size} bytes: {creds:?}");
        assert_eq!(
            (mains[0].target.as_str(), mains[0].username.as_str()),
            (main.as_str(), "large-user")
        );
        let parts: Vec<_> = creds.iter().filter(|c| is_part(c)).collect();
        let held: usize = parts.iter().map(|c| c.blob_len).sum();
        assert!(held >= size, "{size} bytes in parts holding {held}");
        assert!(
            parts.len() >= size.div_ceil(MAX_BLOB) && parts.len() == held.div_ceil(MAX_BLOB),
            "{size} bytes in {} parts holding {held}",
            parts.len()
        );
        // The previous value's parts are gone: one generation is left.
        assert_eq!(generations(&creds).len(), 1, "{size} bytes: {creds:?}");
        assert_eq!(
            list_map(&p),
            [(url.to_string(), "large-user".to_string())].into()
        );
    }

    // Shrinking back to a small value leaves the one credential.
    store_ok(&p, url, "small-user", "tiny");
    assert_get(&p, url, "small-user", "tiny");
    let creds = p.credentials();
    assert_eq!(creds.len(), 1, "after a shrink: {creds:?}");
    assert_eq!(creds[0].blob_len, 4);

    // A secret that reads like a manifest is split too: the credential and one part.
    store_ok(&p, url, "u", "dch-parts:abc:2");
    assert_eq!(p.credentials().len(), 2, "{:?}", p.credentials());
    assert_get(&p, url, "u", "dch-parts:abc:2");

    // Erasing a large value removes every part.
    store_ok(&p, url, "large-user", &big_secret(10_000, 4));
    erase_ok(&p, url);
    assert_not_found(&p, url);
    assert_eq!(p.credentials(), Vec::new());
    assert_eq!(list_map(&p), Default::default());
}

/// A `store` killed part-way (SIGKILL, at points spread over a large store) leaves the old
/// value or the new one, whole; the next complete store removes the parts the killed ones
/// left behind.
#[test]
fn a_store_killed_part_way_leaves_the_old_value_or_the_new_one() {
    use std::io::Write;
    let Some(p) = WineEnv::new() else {
        return;
    };
    let url = "https://killed.example";
    let values = [
        ("first".to_string(), big_secret(60 * 1024, 6)),
        ("second".to_string(), big_secret(60 * 1024, 7)),
    ];
    store_ok(&p, url, &values[0].0, &values[0].1);
    let mut current = 0;
    let (mut old_kept, mut new_kept) = (0, 0);
    for (round, delay_ms) in [40u64, 80, 120, 160, 220, 300, 400, 550]
        .into_iter()
        .enumerate()
    {
        let next = 1 - current;
        let mut child = p
            .command()
            .arg("store")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run wine64");
        let (user, secret) = &values[next];
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&store_request(url, user, secret))
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let got = get_pair(&p, url);
        if got == values[current] {
            old_kept += 1;
        } else if got == values[next] {
            new_kept += 1;
            current = next;
        } else {
            panic!(
                "round {round} (killed after {delay_ms} ms): username {:?} with a secret of {} bytes that is neither value",
                got.0,
                got.1.len()
            );
        }
    }
    eprintln!("killed stores: {old_kept} left the old value, {new_kept} the new one");
    store_ok(&p, url, "last", "small-again");
    assert_eq!(p.credentials().len(), 1, "{:?}", p.credentials());
    erase_ok(&p, url);
}

/// `store` of Docker Hub credentials logs in to the (mock) Hub and caches the JWT in the
/// store in use; `token` then answers from that cache. The mock's JWT is made larger than
/// one Credential Manager blob, so the cache is split there too.
fn the_cached_hub_jwt_lives_in_the_store(p: &WineEnv) {
    let hub = MockHub::start();
    hub.set_claim("padding", &"p".repeat(3000));
    let url = hub.url();
    let env = [("DOCKER_HUB_API_URL", url.as_str())];
    let hub_key = "https://index.docker.io/v1/";
    let out = run_with(
        p,
        &env,
        &["store"],
        store_request(hub_key, USERNAME, PASSWORD),
    );
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}",
        describe(&out)
    );
    assert_eq!(hub.count(LOGIN), 1, "store logs in once");
    let jwt = hub.last_issued();
    assert!(jwt.len() > MAX_BLOB, "the JWT has {} bytes", jwt.len());

    for _ in 0..2 {
        let out = run_with(p, &env, &["token"], b"");
        assert!(out.status.success(), "{}", describe(&out));
        assert!(
            stdout(&out) == format!("{jwt}\n"),
            "token: {}",
            describe(&out)
        );
    }
    assert_eq!(hub.count(LOGIN), 1, "token answered from the cache");
    if p.credential_manager() {
        let creds = p.credentials();
        assert_blobs_fit(&creds, "the cached JWT");
        assert!(
            creds.iter().any(|c| c.target.contains(":internal:parts|")),
            "the JWT is split: {creds:?}"
        );
    }
    let out = run_with(p, &env, &["logout"], b"");
    assert!(out.status.success(), "{}", describe(&out));
    if p.credential_manager() {
        assert_eq!(p.credentials(), Vec::new(), "logout leaves nothing");
    }
}

#[test]
fn the_cached_hub_jwt_lives_in_the_credential_manager() {
    if let Some(p) = WineEnv::new() {
        the_cached_hub_jwt_lives_in_the_store(&p);
    }
}

#[test]
fn the_cached_hub_jwt_lives_in_the_dpapi_store() {
    if let Some(p) = WineEnv::with_backend("dpapi") {
        the_cached_hub_jwt_lives_in_the_store(&p);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// The files under `dirs` that hold `secret` as UTF-8 or UTF-16 text.
fn holding(dirs: &[&Path], secret: &str) -> Vec<PathBuf> {
    // files_under follows no link: the prefix's `dosdevices` points at `/`.
    let files: Vec<PathBuf> = dirs.iter().flat_map(|d| files_under(d)).collect();
    let forms = [secret.as_bytes().to_vec(), utf16le(secret)];
    files
        .into_iter()
        .filter(|f| std::fs::read(f).is_ok_and(|bytes| forms.iter().any(|n| contains(&bytes, n))))
        .collect()
}

#[test]
fn dpapi_leaves_no_plaintext_secret_in_any_file_of_the_wine_prefix() {
    let Some(p) = WineEnv::with_backend("dpapi") else {
        return;
    };
    let secret = crate::support::unique_name("dpapi-canary");
    let url = "https://canary.example";
    store_ok(&p, url, "canary-user", &secret);
    assert_get(&p, url, "canary-user", &secret);

    // The store's directory: created with a DACL for the user alone, which Wine maps to a
    // mode without permissions for others; a file under it per credential.
    let users = p.prefix().join("drive_c/users");
    let dpapi_dirs: Vec<PathBuf> = std::fs::read_dir(&users)
        .unwrap()
        .flatten()
        .map(|u| u.path().join("AppData/Local/docker-credential-hub/dpapi"))
        .filter(|d| d.is_dir())
        .collect();
    assert_eq!(dpapi_dirs.len(), 1, "{dpapi_dirs:?}");
    let mode = crate::support::file_mode(&dpapi_dirs[0]);
    assert_eq!(mode & 0o007, 0, "dpapi directory mode {mode:o}");
    let stored = files_under(&dpapi_dirs[0]);
    assert!(!stored.is_empty(), "no dpapi file was written");
    // Names carry neither the secret nor the URL.
    for f in &stored {
        let name = f.strip_prefix(&dpapi_dirs[0]).unwrap().to_string_lossy();
        assert!(
            !name.contains("canary") && !name.contains(&secret),
            "{name}"
        );
    }

    // wineserver writes the registry files lazily: export the live registry as well.
    let exports = tempfile::tempdir().unwrap();
    for (hive, file) in [("HKCU", "hkcu.reg"), ("HKLM", "hklm.reg")] {
        let dest = exports.path().join(file);
        let out = p.wine_tool(&["reg", "export", hive, &windows_path(&dest), "/y"]);
        assert!(
            out.status.success() && dest.is_file(),
            "reg export {hive}: {}",
            describe(&out)
        );
    }
    // The scan finds a secret where one is: a control file holding it, in both encodings.
    let control = p.prefix().join(format!(
        "drive_c/{}.txt",
        crate::support::unique_name("dch-scan-control")
    ));
    let mut bytes = format!("control {secret} ").into_bytes();
    bytes.extend(utf16le(&secret));
    std::fs::write(&control, bytes).unwrap();
    let found = holding(&[p.prefix(), exports.path()], &secret);
    std::fs::remove_file(&control).unwrap();
    assert_eq!(
        found,
        vec![control],
        "files holding the secret in plaintext"
    );
    erase_ok(&p, url);
    assert_not_found(&p, url);
}

/// `configure --backend dpapi` moves every credential (a split one too) out of the
/// Credential Manager, leaving no credential there, and `--backend wincred` moves them back.
#[test]
fn configure_backend_moves_credentials_to_dpapi_and_back() {
    let Some(p) = WineEnv::new() else {
        return;
    };
    let large = big_secret(10_000, 5);
    store_ok(&p, "https://small.example", "mover", "move-secret");
    store_ok(&p, "https://large.example", "mover", &large);
    assert!(p.credentials().len() > 2, "{:?}", p.credentials());
    let expected = list_map(&p);

    let check = |on_dpapi: bool| {
        assert_eq!(list_map(&p), expected);
        assert_get(&p, "https://small.example", "mover", "move-secret");
        assert_get(&p, "https://large.example", "mover", &large);
        let dpapi = [("DOCKER_CREDENTIAL_HUB_BACKEND", "dpapi")];
        let out = run_with(&p, &dpapi, &["list"], b"");
        let in_dpapi: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            in_dpapi.as_object().unwrap().len(),
            if on_dpapi { 2 } else { 0 }
        );
        if on_dpapi {
            assert_eq!(
                p.credentials(),
                Vec::new(),
                "left in the Credential Manager"
            );
        } else {
            assert_blobs_fit(&p.credentials(), "moved back");
            assert!(p.credentials().len() > 2);
        }
    };

    let out = run(&p, &["configure", "--backend", "dpapi"], b"");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).contains("Using the DPAPI file store from now on (2 credential(s) moved"),
        "{}",
        describe(&out)
    );
    check(true);

    let out = run(&p, &["configure", "--backend", "wincred"], b"");
    assert!(out.status.success(), "{}", describe(&out));
    check(false);
}
