//! Process-wide safety settings, applied at the start of every command that reads a secret.

/// Make the process non-dumpable: no core file, and no `ptrace` attach or
/// `/proc/<pid>/mem` read by other processes of the same user, while it holds secrets.
/// (std has already made sure fds 0-2 are open and SIGPIPE is ignored.)
pub fn harden() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_DUMPABLE takes an integer argument and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}
