//! Files the helper writes: created exclusively, never through a symlink, private, and
//! replaced atomically (a temporary file from `tempfile`, fsync, rename, directory fsync).
//! Readers see the old file or the new one, never a mix; a crash leaves at most a stray
//! temporary file.
//!
//! `rename` replaces a symlink at the destination with the file itself, so a link planted
//! at `config.json.bak` pointing at `/etc/ld.so.preload` is replaced, and its target keeps its
//! bytes, mode and owner. Nothing here ever changes a file's owner.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Open options for a new private file: it must not exist yet (so no symlink is followed),
/// mode 0600.
fn create_new_options() -> OpenOptions {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    }
    opts
}

/// Create `path`, which must not exist, with mode 0600 whatever the umask.
pub fn create_new_private(path: &Path) -> std::io::Result<File> {
    let file = create_new_options().open(path)?;
    // The umask can only clear bits; set the mode exactly in case it cleared owner bits.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(file)
}

/// Replace `path` (the path itself: a symlink there is replaced, not followed) with
/// `bytes`, atomically, mode 0600: a temporary file next to it, created exclusively (so it
/// follows no link), written and synced, then renamed over `path`. A failed write removes
/// the temporary file.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.tmp-");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
    let mut temp = builder.tempfile_in(dir)?;
    // The umask can only clear bits; set the mode exactly in case it cleared owner bits.
    #[cfg(unix)]
    temp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Make a rename in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Create `dir` and its missing parents, private to the user by the profile directory's
/// inherited permissions (on Unix, `trust::create_private_dir` does it one checked step at a
/// time, with mode 0700).
#[cfg(not(unix))]
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).create(dir)
}

/// The effective uid of this process.
#[cfg(unix)]
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// A path for messages: as given, without Windows' `\\?\` verbatim prefix.
pub fn display(path: &Path) -> String {
    shown(&path.display().to_string())
}

/// `\\?\C:\Users\a` → `C:\Users\a`; `\\?\UNC\server\share` → `\\server\share`.
pub fn shown(text: &str) -> String {
    if let Some(rest) = text.strip_prefix(r"\\?\UNC\") {
        format!(r"\\{rest}")
    } else if let Some(rest) = text.strip_prefix(r"\\?\") {
        rest.to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbatim_prefixes_are_not_shown() {
        assert_eq!(shown(r"\\?\C:\Users\a\.docker"), r"C:\Users\a\.docker");
        assert_eq!(shown(r"\\?\UNC\srv\share\x"), r"\\srv\share\x");
        assert_eq!(shown("/home/a/.docker"), "/home/a/.docker");
    }

    #[cfg(unix)]
    #[test]
    fn replace_writes_0600_and_replaces_a_symlink_without_following_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("config.json.bak");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        replace(&link, b"backup").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&link).unwrap(), b"backup");
        let strays = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp-")
            })
            .count();
        assert_eq!(strays, 0);
    }

    #[cfg(unix)]
    #[test]
    fn create_new_private_never_follows_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_new_private(&link).is_err());
        assert!(!target.exists());
    }
}
