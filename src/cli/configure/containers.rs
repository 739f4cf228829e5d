//! podman, skopeo and buildah on the same keychain. They ignore docker's `credsStore` and
//! read `credential-helpers` from containers-registries.conf(5) instead; podman 4.3 and
//! skopeo 1.9 read the user's drop-ins from `$HOME/.config/containers/registries.conf.d/`
//! (built from HOME: XDG_CONFIG_HOME is not consulted there). A drop-in changes the least:
//! a user-level `registries.conf` would replace the system one (search registries, short
//! names), and the auth file's `credHelpers` is per registry. With `["hub"]` alone, `podman
//! login` stores through the helper and writes no plaintext, and neither it nor `podman
//! logout` rewrites docker's config.json (they do once `containers-auth.json` is listed and
//! DOCKER_CONFIG is set).
//!
//! A file the user wrote is never replaced: a drop-in of ours is recognised by its exact
//! content, and a `credential-helpers` the user set elsewhere is left to them.

use std::path::{Path, PathBuf};

use crate::NAME;
use crate::trust::{self, Expect, TrustError};

const DROP_IN: &str = "50-docker-credential-hub.conf";
/// registries.conf.d, created by us when missing: never through a link, never someone else's.
const DROP_IN_DIR: Expect = Expect::dir("podman's registries.conf.d");
const DROP_IN_FILE: Expect = Expect::file("podman's drop-in");
/// The user's own containers configuration, only read (a dotfile manager may link it).
const USER_CONF: Expect = Expect::file("podman's configuration").link_ok().root_ok();
/// podman's own plaintext logins, only read (for the warning).
const AUTH_JSON: Expect = Expect::file("podman's auth.json").link_ok();
const CONF_CAP: u64 = 1024 * 1024;
const CONTENT: &str = "# Written by `docker-credential-hub configure`: podman, skopeo and buildah keep registry\n# credentials through docker-credential-hub, in the same keychain as docker.\n# `docker-credential-hub configure --undo` removes this file.\ncredential-helpers = [\"hub\"]\n";

/// What was (or would be) changed for the containers tools, for the report: the lines of
/// what was done (or would be, worded so), and warnings.
#[derive(Default)]
pub struct Wiring {
    pub done: Vec<String>,
    pub warnings: Vec<String>,
}

fn config_dir() -> Option<PathBuf> {
    crate::paths::home_dir().map(|h| h.join(".config").join("containers"))
}

fn drop_in_path() -> Option<PathBuf> {
    config_dir().map(|d| d.join("registries.conf.d").join(DROP_IN))
}

/// A file's text through the trust rule: `Ok(None)` when it does not exist.
fn read(path: &Path, expect: Expect) -> Result<Option<String>, TrustError> {
    Ok(trust::read_file(path, expect, CONF_CAP)?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// Our drop-in as it is now.
fn ours(path: &Path) -> Result<Option<String>, TrustError> {
    read(path, DROP_IN_FILE)
}

/// Whether the containers tools are installed at all (else there is nothing to wire).
fn tools_present() -> bool {
    ["podman", "skopeo", "buildah"]
        .iter()
        .any(|t| crate::trust::program::find(t).is_some())
}

/// A `credential-helpers` line the user set in their own registries.conf or another drop-in:
/// (file, the line). Drop-ins are applied in lexical order after the main file, so the
/// user's choice is respected rather than fought.
fn users_own_setting() -> Option<(PathBuf, String)> {
    let dir = config_dir()?;
    let mut files = vec![dir.join("registries.conf")];
    if let Ok(entries) = std::fs::read_dir(dir.join("registries.conf.d")) {
        let mut dropins: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .filter(|p| p.file_name().is_some_and(|n| n != DROP_IN))
            .collect();
        dropins.sort();
        files.extend(dropins);
    }
    files.into_iter().find_map(|f| {
        let text = read(&f, USER_CONF).ok()??;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("credential-helpers") && l.contains('='))?
            .to_string();
        Some((f, line))
    })
}

/// Plaintext logins in podman's auth files, which the helper does not read once wired.
fn plaintext_logins() -> Vec<(PathBuf, Vec<String>)> {
    let mut files = Vec::new();
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        files.push(Path::new(&run).join("containers").join("auth.json"));
    }
    if let Some(dir) = config_dir() {
        files.push(dir.join("auth.json"));
    }
    files
        .into_iter()
        .filter_map(|f| {
            let doc = crate::docker_config::load_as(&f, AUTH_JSON).ok()?;
            let keys: Vec<String> = crate::docker_config::auths(&doc.doc)
                .into_iter()
                .filter(|(_, e)| crate::docker_config::has_secret_fields(e))
                .map(|(k, _)| k.to_string())
                .collect();
            (!keys.is_empty()).then_some((f, keys))
        })
        .collect()
}

fn check(wiring: &mut Wiring) -> Option<PathBuf> {
    let path = drop_in_path()?;
    if !tools_present() {
        return None;
    }
    if let Some((file, line)) = users_own_setting() {
        if line.contains("\"hub\"") {
            return None;
        }
        wiring.warnings.push(format!(
            "podman and skopeo were left alone: {} sets `{line}`; put \"hub\" first in it to keep their credentials in the keychain too",
            crate::fs::display(&file)
        ));
        return None;
    }
    Some(path)
}

/// What `wire` would do.
pub fn planned() -> Wiring {
    let mut w = Wiring::default();
    if let Some(path) = check(&mut w) {
        match ours(&path).and_then(|text| {
            if text.is_none() {
                trust::place_to_write(&path, DROP_IN_FILE)?;
            }
            Ok(text)
        }) {
            Ok(Some(text)) if text == CONTENT => {}
            Ok(Some(_)) => w.warnings.push(format!(
                "{} exists and was not written by {NAME}; it would be left alone",
                crate::fs::display(&path)
            )),
            Err(e) => w.warnings.push(format!(
                "{e}; podman and skopeo would keep their own credential setup"
            )),
            Ok(None) => w.done.push(format!(
                "would write {} so that podman, skopeo and buildah use this helper",
                crate::fs::display(&path)
            )),
        }
    }
    w
}

/// Write our drop-in unless it is there, the user decided otherwise, or no tool is installed.
pub fn wire() -> Wiring {
    let mut w = Wiring::default();
    let Some(path) = check(&mut w) else {
        return w;
    };
    match ours(&path) {
        Ok(Some(text)) if text == CONTENT => return w,
        Ok(Some(_)) => {
            w.warnings.push(format!(
                "{} exists and was not written by {NAME}; it was left alone, so podman and skopeo may not use this helper",
                crate::fs::display(&path)
            ));
            return w;
        }
        Ok(None) => {}
        Err(e) => {
            w.warnings.push(format!(
                "{e}; podman and skopeo keep their own credential setup"
            ));
            return w;
        }
    }
    let dir = path.parent().expect("a drop-in has a directory");
    // Made one directory at a time, never through a link and never in someone else's
    // tree; the file itself is created exclusively, without following a link.
    if let Err(e) = trust::create_private_dir(dir, DROP_IN_DIR) {
        w.warnings.push(format!(
            "{e}; podman and skopeo keep their own credential setup"
        ));
        return w;
    }
    let written = crate::fs::create_new_private(&path).and_then(|mut f| {
        std::io::Write::write_all(&mut f, CONTENT.as_bytes())?;
        f.sync_all()
    });
    match written {
        Ok(()) => {
            w.done.push(format!(
                "podman, skopeo and buildah: wrote {} (credential-helpers = [\"hub\"])",
                crate::fs::display(&path)
            ));
            for (file, keys) in plaintext_logins() {
                w.warnings.push(format!(
                    "{} holds plaintext podman logins for {}, which are no longer used; log in to them again with `podman login` (it stores through the helper), then delete that file",
                    crate::fs::display(&file),
                    keys.join(", ")
                ));
            }
        }
        Err(e) => w.warnings.push(format!(
            "cannot write {} ({e}); podman and skopeo keep their own credential setup",
            crate::fs::display(&path)
        )),
    }
    w
}

/// What `unwire` would do.
pub fn planned_undo() -> Wiring {
    let mut w = Wiring::default();
    if let Some(path) = drop_in_path()
        && ours(&path).is_ok_and(|t| t.as_deref() == Some(CONTENT))
    {
        w.done
            .push(format!("would remove {}", crate::fs::display(&path)));
    }
    w
}

/// Remove our drop-in, and only ours.
pub fn unwire() -> Wiring {
    let mut w = Wiring::default();
    let Some(path) = drop_in_path() else {
        return w;
    };
    match ours(&path) {
        Ok(Some(text)) if text == CONTENT => match std::fs::remove_file(&path) {
            Ok(()) => w.done.push(format!(
                "podman, skopeo and buildah: removed {}",
                crate::fs::display(&path)
            )),
            Err(e) => w.warnings.push(format!(
                "cannot remove {} ({e}); delete it by hand",
                crate::fs::display(&path)
            )),
        },
        Ok(Some(_)) => w.warnings.push(format!(
            "{} was changed since configure wrote it; it was left alone",
            crate::fs::display(&path)
        )),
        Ok(None) => {}
        Err(e) => w.warnings.push(format!("{e}; it was left alone")),
    }
    w
}

/// For `doctor`: whether the containers tools are wired, and what to do if not.
pub fn status() -> Option<(bool, String)> {
    if !tools_present() {
        return None;
    }
    let path = drop_in_path()?;
    if ours(&path).is_ok_and(|t| t.as_deref() == Some(CONTENT)) {
        if let Some((file, line)) = users_own_setting()
            && !line.contains("\"hub\"")
            && file.file_name() > path.file_name()
        {
            return Some((
                false,
                format!(
                    "podman/skopeo: {} overrides {} with `{line}` — fix: put \"hub\" first there",
                    crate::fs::display(&file),
                    crate::fs::display(&path)
                ),
            ));
        }
        return Some((
            true,
            format!(
                "podman/skopeo: {} wires them to this helper",
                crate::fs::display(&path)
            ),
        ));
    }
    match users_own_setting() {
        Some((file, line)) if line.contains("\"hub\"") => Some((
            true,
            format!(
                "podman/skopeo: {} names this helper",
                crate::fs::display(&file)
            ),
        )),
        _ => Some((
            false,
            format!(
                "podman/skopeo do not use this helper (they ignore credsStore) — fix: run `{NAME} configure`"
            ),
        )),
    }
}
