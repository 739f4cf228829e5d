//! The walk behind every check: a path is resolved one component at a time from `/` with
//! `lstat`, so that each directory is judged before anything in it is believed, and a symlink
//! is followed only when its owner could have pointed it anywhere anyway (the effective user
//! or root). Nothing is opened or followed by the kernel on our behalf while checking.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use super::{Expect, Issue, Kind, owner};

/// Where a check failed, and why.
pub(super) type Fail = (PathBuf, Issue);

/// As many links as the kernel follows in one lookup.
const MAX_LINKS: usize = 40;
/// Deeper than any tree the helper removes.
const MAX_DEPTH: usize = 16;

pub(super) enum Walked {
    /// The path exists: its real path, and `lstat` of it (a symlink only when links were
    /// not to be followed at the end).
    Found { real: PathBuf, meta: Metadata },
    /// A component does not exist: the deepest existing directory on the way (checked) and
    /// the name missing in it.
    Missing { existing: PathBuf, next: OsString },
}

fn lstat(path: &Path) -> Result<Metadata, Fail> {
    std::fs::symlink_metadata(path).map_err(|e| (path.to_path_buf(), Issue::Io(e)))
}

fn parts(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Resolve `path` from `/`, checking every directory and link on the way; the last
/// component is followed when it is a link and `follow_last` is set.
pub(super) fn walk(path: &Path, follow_last: bool) -> Result<Walked, Fail> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| (path.to_path_buf(), Issue::Io(e)))?
            .join(path)
    };
    let mut real = PathBuf::from("/");
    way(&real, &lstat(&real)?)?;
    let mut queue: VecDeque<OsString> = parts(&abs).into();
    let mut links = 0;
    while let Some(name) = queue.pop_front() {
        if name == ".." {
            real.pop();
            continue;
        }
        let next = real.join(&name);
        let meta = match std::fs::symlink_metadata(&next) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Walked::Missing {
                    existing: real,
                    next: name,
                });
            }
            Err(e) => return Err((next, Issue::Io(e))),
        };
        let last = queue.is_empty();
        if meta.file_type().is_symlink() && (follow_last || !last) {
            trusted_owner(&next, &meta)?;
            links += 1;
            if links > MAX_LINKS {
                return Err((next, Issue::Loop));
            }
            let target = std::fs::read_link(&next).map_err(|e| (next.clone(), Issue::Io(e)))?;
            if target.is_absolute() {
                real = PathBuf::from("/");
            }
            for part in parts(&target).into_iter().rev() {
                queue.push_front(part);
            }
            continue;
        }
        if last {
            return Ok(Walked::Found { real: next, meta });
        }
        if !meta.is_dir() {
            return Err((
                next,
                Issue::NotADirectory {
                    found: kind_of(&meta),
                },
            ));
        }
        way(&next, &meta)?;
        real = next;
    }
    // Every component was a directory already checked (the path is `/` or ends in `..`).
    let meta = lstat(&real)?;
    Ok(Walked::Found { real, meta })
}

/// "a FIFO", "a directory", …: what a path is, for messages.
pub(super) fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_symlink() {
        "a symlink"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "something other than a file"
    }
}

fn trusted_owner(path: &Path, meta: &Metadata) -> Result<(), Fail> {
    let uid = meta.uid();
    if uid == super::euid() || uid == 0 {
        Ok(())
    } else {
        Err((path.to_path_buf(), Issue::Foreign { owner: uid }))
    }
}

/// Writable by someone other than the owner: world-writable, or group-writable by a group
/// that is not the owner's personal one (or by any group, when `private`).
fn shared_write(meta: &Metadata, private: bool) -> bool {
    let mode = meta.mode();
    mode & 0o002 != 0
        || (mode & 0o020 != 0 && (private || !owner::personal_group(meta.uid(), meta.gid())))
}

/// A directory on the way: the effective user's or root's, and nobody else may rename what
/// is in it (a sticky directory such as /tmp protects each entry for its owner).
fn way(path: &Path, meta: &Metadata) -> Result<(), Fail> {
    trusted_owner(path, meta)?;
    let sticky = meta.mode() & 0o1000 != 0;
    if !sticky && shared_write(meta, false) {
        return Err((path.to_path_buf(), Issue::SharedWrite));
    }
    Ok(())
}

/// The nearest existing ancestor of a path that must stay missing (a configuration file a
/// child would read if it appeared): as [place], and not even sticky-shared, since anyone
/// may create a new entry in a sticky directory.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(super) fn closed(existing: &Path) -> Result<(), Fail> {
    let meta = lstat(existing)?;
    way(existing, &meta)?;
    if shared_write(&meta, false) {
        return Err((existing.to_path_buf(), Issue::SharedWrite));
    }
    Ok(())
}

/// The nearest existing ancestor of a path about to be created.
pub(super) fn place(existing: &Path) -> Result<(), Fail> {
    way(existing, &lstat(existing)?)
}

/// The path itself, against what is expected there.
pub(super) fn leaf(path: &Path, meta: &Metadata, expect: &Expect) -> Result<(), Fail> {
    let at = || path.to_path_buf();
    if meta.file_type().is_symlink() {
        return Err((at(), Issue::Symlink));
    }
    let right_kind = match expect.kind {
        Kind::Dir => meta.is_dir(),
        Kind::File => meta.is_file(),
    };
    if !right_kind {
        return Err((
            at(),
            Issue::Kind {
                found: kind_of(meta),
            },
        ));
    }
    let uid = meta.uid();
    if uid != super::euid() && !(expect.root && uid == 0) {
        return Err((at(), Issue::Foreign { owner: uid }));
    }
    if shared_write(meta, expect.private) {
        return Err((at(), Issue::SharedWrite));
    }
    Ok(())
}

/// `rel` below the checked directory `base`, one `lstat` per component, no link followed.
pub(super) fn within(base: &Path, rel: &Path, expect: &Expect) -> Result<bool, Fail> {
    let names = parts(rel);
    let mut path = base.to_path_buf();
    let dir = Expect::dir(expect.what);
    for (i, name) in names.iter().enumerate() {
        if name == ".." {
            return Err((
                path.join(name),
                Issue::Io(std::io::Error::from(std::io::ErrorKind::InvalidInput)),
            ));
        }
        path.push(name);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err((path, Issue::Io(e))),
        };
        let last = i + 1 == names.len();
        leaf(&path, &meta, if last { expect } else { &dir })?;
    }
    Ok(true)
}

/// Everything below `dir`: the effective user's, and no symlink anywhere.
pub(super) fn tree(dir: &Path, depth: usize) -> Result<(), Fail> {
    if depth > MAX_DEPTH {
        return Err((dir.to_path_buf(), Issue::Loop));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| (dir.to_path_buf(), Issue::Io(e)))?;
    for entry in entries {
        let entry = entry.map_err(|e| (dir.to_path_buf(), Issue::Io(e)))?;
        let path = entry.path();
        let meta = lstat(&path)?;
        if meta.file_type().is_symlink() {
            return Err((path, Issue::Symlink));
        }
        if meta.uid() != super::euid() {
            return Err((path, Issue::Foreign { owner: meta.uid() }));
        }
        if meta.is_dir() {
            tree(&path, depth + 1)?;
        }
    }
    Ok(())
}
