//! `configure [--dry-run] [--undo] [--backend NAME] [--wsl]`: switch docker over to this
//! helper, moving existing credentials into the keychain first, and back again.
//!
//! Order of work, so that a failure anywhere leaves config.json byte-identical:
//! read everything (config.json, the old helper), store and verify every credential,
//! and only then write the undo record, the backup and finally config.json.
//! Reports go to stdout, problems to stderr, one line each.
//!
//! - `plan`: what is there and what would move;
//! - `apply`: moving credentials and writing files;
//! - `report`: what happened (or would happen, for `--dry-run`);
//! - `undo`: `--undo`;
//! - `relocate`: `--backend`, moving credentials between keychain backends;
//! - `containers`: wiring podman, skopeo and buildah to the helper;
//! - `wsl`: `--wsl`, docker inside WSL on the Windows binary and its store.

mod apply;
mod containers;
mod plan;
mod relocate;
mod report;
mod undo;
mod wsl;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::NAME;
use crate::docker_config::{self, Loaded};
use crate::keychain::Backend;

/// Our credsStore value: docker runs `docker-credential-hub`.
pub const CREDS_STORE: &str = "hub";
/// `configure --wsl`'s value: docker inside WSL runs `docker-credential-hub.exe`, the
/// Windows binary, through WSL interop.
pub const WSL_CREDS_STORE: &str = "hub.exe";
/// Next to config.json: the credsStore value configure replaced, for `--undo`. A key
/// inside config.json would not survive: docker drops unknown keys when it saves.
pub const RECORD_SUFFIX: &str = ".hub-previous";
pub const BACKUP_SUFFIX: &str = ".bak";

const USAGE: &str =
    "usage: docker-credential-hub configure [--dry-run] [--undo] [--backend NAME] [--wsl]";

/// Printed, already-reported failure.
struct Failed;

type Outcome = Result<(), Failed>;

#[derive(Default)]
struct Args {
    dry_run: bool,
    undo: bool,
    backend: Option<Backend>,
    wsl: bool,
}

fn parse_args(args: &[String]) -> Result<Option<Args>, ExitCode> {
    let mut parsed = Args::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        match name {
            "--dry-run" if inline.is_none() => parsed.dry_run = true,
            "--undo" if inline.is_none() => parsed.undo = true,
            "--wsl" if inline.is_none() => parsed.wsl = true,
            "--backend" => {
                let value = inline.or_else(|| it.next().cloned()).unwrap_or_default();
                match Backend::parse(&value).filter(|b| b.exists_here()) {
                    Some(b) => parsed.backend = Some(b),
                    None => {
                        eprintln!(
                            "{NAME} configure: --backend needs one of {}; {USAGE}",
                            Backend::choices()
                        );
                        return Err(ExitCode::from(2));
                    }
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}\n\n{}", HELP.trim());
                return Ok(None);
            }
            // Not echoed: people paste passwords in odd places.
            _ => {
                eprintln!("{NAME} configure: unknown argument; {USAGE}");
                return Err(ExitCode::from(2));
            }
        }
    }
    Ok(Some(parsed))
}

pub fn run(args: &[String]) -> ExitCode {
    let args = match parse_args(args) {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(code) => return code,
    };
    crate::process::harden();
    let outcome = match (&args.backend, args.undo, args.wsl) {
        (Some(_), true, _) => Err(fail("--backend and --undo cannot be combined")),
        (Some(_), _, true) => Err(fail("--backend and --wsl cannot be combined")),
        (Some(backend), false, false) => relocate::run(*backend, args.dry_run),
        // Undo reverses `--wsl` too.
        (None, true, _) => undo::run(args.dry_run),
        (None, false, true) => wsl::run(args.dry_run),
        (None, false, false) => apply::run(args.dry_run),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed) => ExitCode::from(1),
    }
}

const HELP: &str = "
Sets \"credsStore\": \"hub\" in docker's config.json ($DOCKER_CONFIG/config.json or
~/.docker/config.json), and credential-helpers = [\"hub\"] for podman, skopeo and buildah.
Credentials in plaintext \"auths\" entries and in the previous credsStore helper are
stored in the keychain and read back before anything changes.
  --dry-run        print what would move and change nothing
  --undo           put back the previous credsStore (credentials stay in the keychain)
  --backend NAME   move the credentials into another keychain backend (copy, verify, then
                   erase the old copies) and use it from now on
  --wsl            inside WSL: set \"credsStore\": \"hub.exe\", so that docker runs the Windows
                   binary (docker-credential-hub.exe on PATH) and shares the Windows store;
                   the credentials move there first";

/// For `doctor`: whether podman and skopeo use this helper, with the fix when not; `None`
/// when none of the containers tools is installed.
pub fn containers_status() -> Option<(bool, String)> {
    containers::status()
}

fn fail(line: impl std::fmt::Display) -> Failed {
    eprintln!("{NAME} configure: {line}");
    Failed
}

fn unchanged_hint(path: &Path) -> String {
    format!("{} was not changed", crate::fs::display(path))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| docker_config::CONFIG_FILE.into());
    name.push(suffix);
    path.with_file_name(name)
}

/// config.json, read and checked to be ours to change. Under `sudo` with HOME kept,
/// config.json, its link target, its directory, or (when that does not exist yet) the
/// directory it would be created in belongs to someone else: root-only credentials could end
/// up in a file they read, and root-owned directories would lock them out of their own
/// docker. Nothing is created or changed then.
fn load() -> Result<Loaded, Failed> {
    let path = docker_config::config_path().map_err(fail)?;
    crate::trust::place_to_write(&path, docker_config::CONFIG_JSON).map_err(fail)?;
    docker_config::load(&path).map_err(fail)
}

fn quoted(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("\"{s}\""),
        None => "unset".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_files_sit_next_to_config_json() {
        let p = Path::new("/x/.docker/config.json");
        assert_eq!(
            sibling(p, BACKUP_SUFFIX),
            Path::new("/x/.docker/config.json.bak")
        );
        assert_eq!(
            sibling(p, RECORD_SUFFIX),
            Path::new("/x/.docker/config.json.hub-previous")
        );
    }

    #[test]
    fn arguments_parse_and_unknown_ones_are_not_echoed() {
        let a = parse_args(&["--dry-run".into(), "--backend=keyutils".into()]);
        if cfg!(target_os = "linux") {
            let a = a.ok().flatten().unwrap();
            assert!(a.dry_run && a.backend == Some(Backend::Keyutils));
        }
        let a = parse_args(&["--wsl".into(), "--dry-run".into()]);
        let a = a.ok().flatten().unwrap();
        assert!(a.wsl && a.dry_run && !a.undo);
        assert!(parse_args(&["--wsl=yes".into()]).is_err());
        assert!(parse_args(&["hunter2".into()]).is_err());
        assert!(parse_args(&["--backend".into(), "nope".into()]).is_err());
    }
}
