//! A second user for the tests: the numeric uid 4242, which has no account. Files are given
//! to it with chown and children drop to it before they run, which needs root (the suite
//! runs as root in CI; elsewhere these tests say SKIP loudly).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use super::tools::skip;

/// A uid no account has.
pub const OTHER_UID: u32 = 4242;

/// The child drops to the throwaway uid (and gid) before it runs.
pub fn run_as_other_user(cmd: &mut Command) {
    // SAFETY: setgroups/setgid/setuid are async-signal-safe and touch no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(OTHER_UID) != 0
                || libc::setuid(OTHER_UID) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Root is needed to hand files to another uid; say so loudly otherwise.
pub fn need_root(what: &str) -> bool {
    if is_root() {
        return true;
    }
    skip(&format!(
        "{what} needs root (to chown files to a second uid); run the suite as root"
    ));
    false
}

/// A refusal's `line` names `path`, its owner (uid 4242) and the fix: run it as them.
pub fn assert_names_the_owner(line: &str, path: &Path) {
    assert!(
        line.contains(&path.display().to_string())
            && line.contains(&format!("uid {OTHER_UID}"))
            && line.contains("run it as them"),
        "the refusal must name {}, uid {OTHER_UID} and the fix: {line}",
        path.display()
    );
}

/// Give `path` (not a link's target) to `uid`.
pub fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}
