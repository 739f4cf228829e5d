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
mod migrate;
mod plan;
mod relocate;
mod report;
mod undo;
mod wsl;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::Failure;
use super::args::{Arg, Args, is_help};
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

type Outcome = Result<(), Failure>;

#[derive(Debug, Default)]
struct Parsed {
    dry_run: bool,
    undo: bool,
    backend: Option<Backend>,
    wsl: bool,
    help: bool,
}

fn parse_args(list: &[String]) -> Result<Parsed, Failure> {
    let mut parsed = Parsed::default();
    let mut args = Args::new(list);
    while let Some(arg) = args.next() {
        if is_help(&arg) {
            parsed.help = true;
            continue;
        }
        match arg {
            Arg::Opt { name, attached } => match (name.as_str(), attached) {
                ("--dry-run", false) => parsed.dry_run = true,
                ("--undo", false) => parsed.undo = true,
                ("--wsl", false) => parsed.wsl = true,
                ("--backend", _) => {
                    let value = args.value().unwrap_or_default();
                    match Backend::parse(&value).filter(|b| b.exists_here()) {
                        Some(b) => parsed.backend = Some(b),
                        None => {
                            return Err(Failure::usage(format!(
                                "--backend needs one of {}; {USAGE}",
                                Backend::choices()
                            )));
                        }
                    }
                }
                // Not echoed: people paste passwords in odd places.
                _ => return Err(Failure::usage(format!("unknown argument; {USAGE}"))),
            },
            Arg::Positional => return Err(Failure::usage(format!("unknown argument; {USAGE}"))),
        }
    }
    Ok(parsed)
}

pub fn run(args: &[String]) -> ExitCode {
    super::finish(Some("configure"), configure(args))
}

fn configure(args: &[String]) -> Outcome {
    let args = parse_args(args)?;
    if args.help {
        println!("{USAGE}\n\n{}", HELP.trim());
        return Ok(());
    }
    crate::process::harden();
    match (&args.backend, args.undo, args.wsl) {
        (Some(_), true, _) => Err(fail("--backend and --undo cannot be combined")),
        (Some(_), _, true) => Err(fail("--backend and --wsl cannot be combined")),
        (Some(backend), false, false) => relocate::run(*backend, args.dry_run),
        // Undo reverses `--wsl` too.
        (None, true, _) => undo::run(args.dry_run),
        (None, false, true) => wsl::run(args.dry_run),
        (None, false, false) => apply::run(args.dry_run),
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

fn fail(line: impl std::fmt::Display) -> Failure {
    Failure::new(line)
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
fn load() -> Result<Loaded, Failure> {
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
        let args = |list: &[&str]| {
            let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            parse_args(&list)
        };
        if cfg!(target_os = "linux") {
            let a = args(&["--dry-run", "--backend=keyutils"]).unwrap();
            assert!(a.dry_run && a.backend == Some(Backend::Keyutils));
        }
        let a = args(&["--wsl", "--dry-run"]).unwrap();
        assert!(a.wsl && a.dry_run && !a.undo);
        assert!(args(&["--help"]).unwrap().help);
        for bad in [
            &["--wsl=yes"][..],
            &["hunter2"],
            &["--backend", "nope"],
            &["-hunter2"],
        ] {
            let e = args(bad).unwrap_err();
            assert_eq!(e.code, 2);
            assert!(!e.lines.concat().contains("unter2"), "{e:?}");
        }
    }
}
