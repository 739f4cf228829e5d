//! The record of which backend holds a user's credentials:
//! `$XDG_CONFIG_HOME/docker-credential-hub/backend` (`backend.<service>` for a
//! non-default `DOCKER_CREDENTIAL_HUB_SERVICE`), one line such as `secret-service`.
//! Written by the first successful `store` and by `configure`; read by `auto`. It is read
//! and written only through the trust rule: under `sudo -E` the invoking user's record is
//! neither believed nor replaced.

use std::path::PathBuf;

use super::{Backend, DEFAULT_SERVICE};
use crate::NAME;
use crate::trust::{Expect, TrustError};

fn file_name(service: &str) -> String {
    if service == DEFAULT_SERVICE {
        "backend".into()
    } else {
        format!("backend.{}", crate::paths::safe_file_name(service))
    }
}

/// The record's directory.
pub fn dir() -> Option<PathBuf> {
    crate::paths::config_home().map(|c| c.join(NAME))
}

pub fn path(service: &str) -> Option<PathBuf> {
    dir().map(|d| d.join(file_name(service)))
}

/// The record file of the configured service, for messages.
pub fn path_text() -> String {
    path(&super::service_name())
        .map(|p| crate::fs::display(&p))
        .unwrap_or_else(|| "the configuration directory".into())
}

/// The record is one short line, and a second while a move is under way.
const RECORD_CAP: u64 = 1024;
const RECORD: Expect = Expect::file("the backend record");
const RECORD_DIR: Expect = Expect::dir("the backend record's directory").private();

/// The record's text: `Ok(None)` when there is none. A record that fails the trust rule (a
/// FIFO, a symlink, someone else's file, or far too large) is an error, not "no record".
fn read_text(service: &str) -> Result<Option<String>, TrustError> {
    let Some(path) = path(service) else {
        return Ok(None);
    };
    Ok(crate::trust::read_file(&path, RECORD, RECORD_CAP)?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// The recorded backend (the record's first line); `None` when there is no record (or it
/// names no backend).
pub fn read(service: &str) -> Result<Option<Backend>, TrustError> {
    Ok(read_text(service)?.and_then(|text| Backend::parse(text.lines().next()?.trim())))
}

/// The backend an interrupted `configure --backend` was moving credentials out of (the
/// record's `moving-from` line), whose copies are still to be erased.
pub fn moving_from(service: &str) -> Result<Option<Backend>, TrustError> {
    Ok(read_text(service)?.and_then(|text| {
        text.lines()
            .filter_map(|l| l.strip_prefix("moving-from "))
            .find_map(|b| Backend::parse(b.trim()))
    }))
}

/// Record `backend` for `service`.
pub fn write(service: &str, backend: Backend) -> Result<(), RecordError> {
    write_text(service, &format!("{}\n", backend.id()))
}

/// Record `backend`, noting that `from` still holds copies to erase.
pub fn write_moving(service: &str, backend: Backend, from: Backend) -> Result<(), RecordError> {
    write_text(
        service,
        &format!("{}\nmoving-from {}\n", backend.id(), from.id()),
    )
}

fn write_text(service: &str, text: &str) -> Result<(), RecordError> {
    let dir = dir().ok_or(RecordError::NoHome)?;
    crate::trust::create_private_dir(&dir, RECORD_DIR)?;
    let file = dir.join(file_name(service));
    crate::fs::replace(&file, text.as_bytes())
        .map_err(|source| RecordError::Write { path: file, source })
}

/// Record `backend` unless a record exists already: the first successful store decides.
pub fn write_if_absent(service: &str, backend: Backend) -> Result<(), RecordError> {
    if path(service).is_some_and(|p| crate::trust::exists(&p)) {
        return Ok(());
    }
    write(service, backend)
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("neither XDG_CONFIG_HOME nor HOME is set, so the backend in use cannot be recorded")]
    NoHome,
    #[error("{0}")]
    Untrusted(#[from] TrustError),
    #[error("cannot record the backend in {}: {source}", crate::fs::display(path))]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}
