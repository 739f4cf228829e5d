//! The record of which backend holds a user's credentials:
//! `$XDG_CONFIG_HOME/docker-credential-hub/backend` (`backend.<service>` for a
//! non-default `DOCKER_CREDENTIAL_HUB_SERVICE`), one line such as `secret-service`.
//! Written by the first successful `store` and by `configure`; read by `auto`.

use std::path::PathBuf;

use super::{Backend, DEFAULT_SERVICE};
use crate::NAME;

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

/// The recorded backend (the record's first line); `None` when there is no record (or it
/// names no backend).
pub fn read(service: &str) -> Option<Backend> {
    let text = std::fs::read_to_string(path(service)?).ok()?;
    Backend::parse(text.lines().next()?.trim())
}

/// The backend an interrupted `configure --backend` was moving credentials out of (the
/// record's `moving-from` line), whose copies are still to be erased.
pub fn moving_from(service: &str) -> Option<Backend> {
    let text = std::fs::read_to_string(path(service)?).ok()?;
    text.lines()
        .filter_map(|l| l.strip_prefix("moving-from "))
        .find_map(|b| Backend::parse(b.trim()))
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
    crate::paths::private_dir(&dir)?;
    let file = dir.join(file_name(service));
    crate::fs::replace(&file, text.as_bytes())
        .map_err(|source| RecordError::Write { path: file, source })
}

/// Record `backend` unless a record exists already: the first successful store decides.
pub fn write_if_absent(service: &str, backend: Backend) -> Result<(), RecordError> {
    if path(service).is_some_and(|p| p.exists()) {
        return Ok(());
    }
    write(service, backend)
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("neither XDG_CONFIG_HOME nor HOME is set, so the backend in use cannot be recorded")]
    NoHome,
    #[error("{0}")]
    Dir(#[from] crate::paths::DirError),
    #[error("cannot record the backend in {}: {source}", crate::fs::display(path))]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}
