//! The one place that decides whether a path may be trusted. Every path the helper uses for
//! its own state, as the configuration of a program it starts, or as a place to write goes
//! through here, so that root running with another user's HOME (`sudo -E docker pull`)
//! never reads that user's settings as its own, never runs their hooks, agents or
//! extensions, and never creates, writes or empties anything in their tree.
//!
//! The rule, on Unix:
//! - **The way there.** The path is resolved one component at a time from `/` with `lstat`.
//!   Every directory on the way belongs to the effective user or to root, and nobody else
//!   may write to it, except in a sticky directory such as `/tmp` (where nobody can rename
//!   what is ours). A symlink on the way is followed only when it belongs to the effective
//!   user or to root. A directory that is group-writable counts as the owner's alone when its
//!   group is the owner's personal group (same name, the owner's primary group, no other
//!   members), as Debian's user private groups make them.
//! - **The path itself** belongs to the effective user (root's own files are accepted where
//!   the helper only reads them, such as programs in `/usr/bin`), is not a symlink unless one
//!   is expected there (docker's `config.json`, the password store), is the expected type,
//!   and is not writable by others. A file that is read is opened without following links
//!   and without blocking, checked on the open descriptor, and read no further than its cap.
//! - **A path that does not exist yet** is judged by its nearest existing ancestor, which
//!   must pass the way-there rule (so `/tmp` is acceptable for anyone, another user's home
//!   is not). What is created is created one component at a time, mode 0700, and checked
//!   again after each step, so a directory someone else slipped in is refused.
//!
//! On other systems the checks are limited to what the platform has (type and size).

#[cfg(unix)]
mod owner;
pub mod program;
#[cfg(unix)]
mod walk;

use std::path::{Path, PathBuf};

use crate::NAME;

/// What is expected at a path.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(unix), allow(dead_code))]
pub struct Expect {
    /// What the path is, for messages: "the password store", "the backend record".
    what: &'static str,
    kind: Kind,
    /// A symlink is expected at the path itself; its target is checked instead.
    link: bool,
    /// Root's own path is acceptable too (a system file the helper only reads).
    root: bool,
    /// Not even the owner's personal group may write to it (the lock directory, GNUPGHOME).
    private: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
}

impl Expect {
    /// A directory of the effective user's.
    pub const fn dir(what: &'static str) -> Expect {
        Expect {
            what,
            kind: Kind::Dir,
            link: false,
            root: false,
            private: false,
        }
    }

    /// A regular file of the effective user's.
    pub const fn file(what: &'static str) -> Expect {
        Expect {
            what,
            kind: Kind::File,
            ..Expect::dir(what)
        }
    }

    /// A symlink is expected at the path; its target must pass.
    pub const fn link_ok(self) -> Expect {
        Expect { link: true, ..self }
    }

    /// Root's own path is fine too: the helper only reads it.
    pub const fn root_ok(self) -> Expect {
        Expect { root: true, ..self }
    }

    /// Writable by the owner alone.
    pub const fn private(self) -> Expect {
        Expect {
            private: true,
            ..self
        }
    }

    fn noun(self) -> &'static str {
        match self.kind {
            Kind::Dir => "directory",
            Kind::File => "regular file",
        }
    }
}

/// What is wrong at one path.
#[derive(Debug)]
#[cfg_attr(not(unix), allow(dead_code))]
pub enum Issue {
    /// It belongs to another user.
    Foreign { owner: u32 },
    /// Others may write to it.
    SharedWrite,
    /// A symlink where none is followed.
    Symlink,
    /// Not the expected type (`found` is "a FIFO", "a directory", …).
    Kind { found: &'static str },
    /// A directory on the way is something else.
    NotADirectory { found: &'static str },
    /// Larger than anything it legitimately holds.
    TooLarge { cap: u64 },
    /// Too many symlinks to resolve.
    Loop,
    /// The path could not be examined.
    Io(std::io::Error),
}

/// A path that failed the rule: what it is, the path asked about, and where on the way to it
/// the problem is. Its text is one line that names the owner and says what to do.
#[derive(Debug)]
pub struct TrustError(Box<Failure>);

#[derive(Debug)]
struct Failure {
    what: &'static str,
    noun: &'static str,
    subject: PathBuf,
    at: PathBuf,
    issue: Issue,
    private: bool,
}

impl TrustError {
    fn new(expect: &Expect, subject: &Path, at: PathBuf, issue: Issue) -> TrustError {
        TrustError(Box::new(Failure {
            what: expect.what,
            noun: expect.noun(),
            subject: subject.to_path_buf(),
            at,
            issue,
            private: expect.private,
        }))
    }

    /// `path` could not be examined.
    pub fn io(expect: Expect, path: &Path, e: std::io::Error) -> TrustError {
        TrustError::new(&expect, path, path.to_path_buf(), Issue::Io(e))
    }

    /// The path that failed (the subject itself, or a directory or link on the way to it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn at(&self) -> &Path {
        &self.0.at
    }

    /// It failed because it belongs to someone else.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn is_foreign(&self) -> bool {
        matches!(self.0.issue, Issue::Foreign { .. })
    }
}

impl TrustError {
    /// What is wrong, and what to do about it: the one line is "problem; fix", and
    /// `doctor` prints them as "problem — fix: fix".
    pub fn problem_and_fix(&self) -> (String, String) {
        let e = &self.0;
        let subject = crate::fs::display(&e.subject);
        let at = crate::fs::display(&e.at);
        let what = e.what;
        // "the backend record /x" when the record itself failed; "the backend record /x is
        // reached through /y, which" when a directory or link on the way did.
        let head = if e.at == e.subject {
            format!("{what} {subject}")
        } else {
            format!("{what} {subject} is reached through {at}, which")
        };
        let remove = format!("remove it (`rm {at}`) and retry");
        match &e.issue {
            Issue::Foreign { owner } => (
                format!(
                    "{head} belongs to {}, not to {}",
                    owner_name(*owner),
                    owner_name(euid())
                ),
                "run it as them".into(),
            ),
            Issue::SharedWrite => {
                let mode = if e.private && e.at == e.subject {
                    "700"
                } else {
                    "go-w"
                };
                (
                    format!(
                        "{head} is writable by other users, who could swap what {NAME} reads or writes there"
                    ),
                    format!("run `chmod {mode} {at}` and retry"),
                )
            }
            Issue::Symlink => (
                format!("{head} is a symlink, which {NAME} does not follow there"),
                format!(
                    "replace it with the {} itself (`rm {at}`) and retry",
                    if e.at == e.subject {
                        e.noun
                    } else {
                        "directory"
                    }
                ),
            ),
            Issue::Kind { found } => (format!("{head} is {found}, not a {}", e.noun), remove),
            Issue::NotADirectory { found } => {
                (format!("{head} is {found}, not a directory"), remove)
            }
            Issue::TooLarge { cap } => (
                format!("{head} is larger than {cap} bytes, far more than it ever holds"),
                remove,
            ),
            Issue::Loop => (
                format!("{head} is reached through too many symlinks"),
                format!("point {at} at the real path and retry"),
            ),
            Issue::Io(err) => (
                format!("cannot check {what} {subject} ({at}: {err})"),
                "check the permissions of the directories on the way".into(),
            ),
        }
    }
}

impl std::fmt::Display for TrustError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (problem, fix) = self.problem_and_fix();
        write!(f, "{problem}; {fix}")
    }
}

impl std::error::Error for TrustError {}

#[cfg(unix)]
fn euid() -> u32 {
    crate::fs::euid()
}

#[cfg(not(unix))]
fn euid() -> u32 {
    0
}

/// A user's name for messages: `alice (uid 1000)`.
#[cfg(unix)]
pub fn owner_name(uid: u32) -> String {
    owner::user_name(uid)
}

#[cfg(not(unix))]
fn owner_name(uid: u32) -> String {
    format!("uid {uid}")
}

// ------------------------------------------------------------------------------ checks

/// Nothing is there: what is absent cannot mislead us, even in someone else's tree (their
/// empty HOME has no record and no store to refuse).
fn absent(path: &Path) -> bool {
    matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// Check an existing path: `Ok(None)` when it does not exist, else its real path (links
/// resolved).
#[cfg(unix)]
pub fn check(path: &Path, expect: Expect) -> Result<Option<PathBuf>, TrustError> {
    if absent(path) {
        return Ok(None);
    }
    match walk::walk(path, expect.link)
        .map_err(|(at, issue)| TrustError::new(&expect, path, at, issue))?
    {
        walk::Walked::Missing { .. } => Ok(None),
        walk::Walked::Found { real, meta } => {
            walk::leaf(&real, &meta, &expect)
                .map_err(|(at, issue)| TrustError::new(&expect, path, at, issue))?;
            Ok(Some(real))
        }
    }
}

#[cfg(not(unix))]
pub fn check(path: &Path, expect: Expect) -> Result<Option<PathBuf>, TrustError> {
    match std::fs::metadata(path) {
        Ok(m) if (expect.kind == Kind::Dir) == m.is_dir() => Ok(Some(path.to_path_buf())),
        Ok(m) => Err(TrustError::new(
            &expect,
            path,
            path.to_path_buf(),
            Issue::Kind {
                found: if m.is_dir() { "a directory" } else { "a file" },
            },
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TrustError::new(
            &expect,
            path,
            path.to_path_buf(),
            Issue::Io(e),
        )),
    }
}

/// Check `rel` below `base`, a directory already checked: each component is looked at with
/// `lstat` and none is followed. `Ok(false)` when a component does not exist (what exists
/// above it passed). Directories on the way and the last component must belong to the
/// effective user and be writable by nobody else.
#[cfg(unix)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn check_within(base: &Path, rel: &Path, expect: Expect) -> Result<bool, TrustError> {
    let subject = base.join(rel);
    walk::within(base, rel, &expect)
        .map_err(|(at, issue)| TrustError::new(&expect, &subject, at, issue))
}

#[cfg(not(unix))]
#[allow(dead_code)]
pub fn check_within(base: &Path, rel: &Path, expect: Expect) -> Result<bool, TrustError> {
    Ok(check(&base.join(rel), expect)?.is_some())
}

/// Check everything below `dir` (itself checked), without following any link: every entry
/// belongs to the effective user, and none is a symlink. For a tree about to be removed
/// recursively.
#[cfg(unix)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn check_tree(dir: &Path, expect: Expect) -> Result<(), TrustError> {
    walk::tree(dir, 0).map_err(|(at, issue)| TrustError::new(&expect, dir, at, issue))
}

#[cfg(not(unix))]
#[allow(dead_code)]
pub fn check_tree(_dir: &Path, _expect: Expect) -> Result<(), TrustError> {
    Ok(())
}

/// May the helper create `path` (or replace it, if it exists)? An existing path must pass
/// `expect`; for one that does not exist yet, the nearest existing ancestor must pass the
/// way-there rule (owned by the effective user or root, writable by nobody else unless it
/// is sticky).
#[cfg(unix)]
pub fn place_to_write(path: &Path, expect: Expect) -> Result<(), TrustError> {
    match walk::walk(path, expect.link)
        .map_err(|(at, issue)| TrustError::new(&expect, path, at, issue))?
    {
        walk::Walked::Missing { existing, .. } => {
            walk::place(&existing).map_err(|(at, issue)| TrustError::new(&expect, path, at, issue))
        }
        walk::Walked::Found { real, meta } => walk::leaf(&real, &meta, &expect)
            .map_err(|(at, issue)| TrustError::new(&expect, path, at, issue)),
    }
}

#[cfg(not(unix))]
pub fn place_to_write(path: &Path, expect: Expect) -> Result<(), TrustError> {
    check(path, expect).map(|_| ())
}

/// May a child read `path` as its configuration? An existing path must pass `expect`; one
/// that does not exist must stay so until the child reads it: its nearest existing ancestor
/// (and the way there) is the effective user's or root's, and writable by nobody else.
#[cfg(unix)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn child_config(path: &Path, expect: Expect) -> Result<(), TrustError> {
    let fail = |(at, issue)| TrustError::new(&expect, path, at, issue);
    match walk::walk(path, expect.link).map_err(fail)? {
        walk::Walked::Missing { existing, .. } => walk::closed(&existing).map_err(fail),
        walk::Walked::Found { real, meta } => walk::leaf(&real, &meta, &expect).map_err(fail),
    }
}

/// An existing directory in which the helper may create what it needs: it and the way there
/// belong to the effective user or root and nobody else may write there, unless it is
/// sticky like `/tmp`.
#[cfg(unix)]
pub fn check_place(dir: &Path, what: &'static str) -> Result<(), TrustError> {
    let expect = Expect::dir(what).link_ok();
    let fail = |(at, issue)| TrustError::new(&expect, dir, at, issue);
    match walk::walk(dir, true).map_err(fail)? {
        walk::Walked::Found { real, meta } if meta.is_dir() => walk::place(&real).map_err(fail),
        walk::Walked::Found { real, meta } => Err(fail((
            real,
            Issue::Kind {
                found: walk::kind_of(&meta),
            },
        ))),
        walk::Walked::Missing { existing, next } => Err(fail((
            existing.join(next),
            Issue::Io(std::io::ErrorKind::NotFound.into()),
        ))),
    }
}

#[cfg(not(unix))]
pub fn check_place(dir: &Path, what: &'static str) -> Result<(), TrustError> {
    check(dir, Expect::dir(what)).map(|_| ())
}

/// Create the directory `path` and its missing parents (mode 0700), one component at a
/// time and never through a symlink, checking each after it is made; then check `path`
/// against `expect`.
#[cfg(unix)]
pub fn create_private_dir(path: &Path, expect: Expect) -> Result<(), TrustError> {
    use std::os::unix::fs::DirBuilderExt;
    // Each round makes one missing component; a path has far fewer than this.
    for _ in 0..256 {
        let walked = walk::walk(path, false)
            .map_err(|(at, issue)| TrustError::new(&expect, path, at, issue))?;
        let (existing, next) = match walked {
            walk::Walked::Found { real, meta } => {
                return walk::leaf(&real, &meta, &expect)
                    .map_err(|(at, issue)| TrustError::new(&expect, path, at, issue));
            }
            walk::Walked::Missing { existing, next } => (existing, next),
        };
        walk::place(&existing).map_err(|(at, issue)| TrustError::new(&expect, path, at, issue))?;
        let new = existing.join(next);
        match std::fs::DirBuilder::new().mode(0o700).create(&new) {
            Ok(()) => {}
            // Someone else's (or a concurrent helper's): the next round checks it.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(TrustError::new(&expect, path, new, Issue::Io(e))),
        }
    }
    Err(TrustError::new(
        &expect,
        path,
        path.to_path_buf(),
        Issue::Loop,
    ))
}

#[cfg(not(unix))]
pub fn create_private_dir(path: &Path, expect: Expect) -> Result<(), TrustError> {
    crate::fs::create_private_dir(path)
        .map_err(|e| TrustError::new(&expect, path, path.to_path_buf(), Issue::Io(e)))
}

/// Read a small file that passes `expect`: opened without following links and without
/// blocking (a FIFO cannot hang us), checked on the open descriptor (a regular file of the
/// effective user's), and read no further than `cap` bytes. `Ok(None)` when it does not
/// exist.
pub fn read_file(path: &Path, expect: Expect, cap: u64) -> Result<Option<Vec<u8>>, TrustError> {
    let fail = |at: &Path, issue| TrustError::new(&expect, path, at.to_path_buf(), issue);
    if absent(path) {
        return Ok(None);
    }
    #[cfg(unix)]
    let real = match walk::walk(path, expect.link).map_err(|(at, issue)| fail(&at, issue))? {
        walk::Walked::Missing { .. } => return Ok(None),
        walk::Walked::Found { real, meta } => {
            if meta.file_type().is_symlink() {
                return Err(fail(path, Issue::Symlink));
            }
            real
        }
    };
    #[cfg(not(unix))]
    let real = path.to_path_buf();
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let file = match opts.open(&real) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(fail(&real, Issue::Symlink));
        }
        Err(e) => return Err(fail(&real, Issue::Io(e))),
    };
    let meta = file.metadata().map_err(|e| fail(&real, Issue::Io(e)))?;
    #[cfg(unix)]
    walk::leaf(&real, &meta, &expect).map_err(|(at, issue)| fail(&at, issue))?;
    #[cfg(not(unix))]
    if !meta.is_file() {
        return Err(fail(
            &real,
            Issue::Kind {
                found: "not a file",
            },
        ));
    }
    if meta.len() > cap {
        return Err(fail(&real, Issue::TooLarge { cap }));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(&file, cap + 1), &mut bytes)
        .map_err(|e| fail(&real, Issue::Io(e)))?;
    // It grew after the check: still too large.
    if bytes.len() as u64 > cap {
        return Err(fail(&real, Issue::TooLarge { cap }));
    }
    Ok(Some(bytes))
}

/// Whether something (even a dangling symlink) is at `path`, without following it.
pub fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

#[cfg(all(test, unix))]
mod tests;
