//! Running another program with a request on stdin, under a deadline: other credential
//! helpers (as docker runs them) and `pass`.
//!
//! - The program is found only in trusted directories ([crate::trust::program]), and its
//!   PATH holds only those; `pass` and its gpg and git start from an empty environment.
//! - stdin, stdout and stderr are pipes. The child starts in a session of its own: it has no
//!   controlling terminal (nothing can prompt), and at the deadline its whole process group
//!   is killed, so that gpg, git and hooks do not outlive us. Pipes a daemon may still hold
//!   are abandoned rather than waited for.
//! - Output is capped, so a runaway child cannot fill our memory. What we write to its stdin
//!   and read from its stdout (secrets, both ways) is wiped when dropped, and the stdout
//!   buffer never leaves an unwiped copy behind when it grows.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

use crate::secret::Secret;

/// More than any helper's answer.
const OUTPUT_CAP: usize = 16 * 1024 * 1024;

/// What a child printed and how it exited.
pub struct ChildOutput {
    pub success: bool,
    pub code: Option<i32>,
    /// May hold a secret (a helper's `get` answer, `pass show`): wiped when dropped.
    pub stdout: Secret<Vec<u8>>,
    pub stderr: Vec<u8>,
}

#[derive(Debug)]
pub enum ChildError {
    /// The program is not installed.
    Missing,
    Spawn(std::io::Error),
    Timeout,
}

/// `program` with an environment built from nothing but a PATH of trusted directories; the
/// caller adds what the child needs.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn minimal(program: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("PATH", crate::trust::program::child_path());
    command
}

/// `program` with the caller's environment, PATH reduced to trusted directories: for other
/// credential helpers, which may need any variable of their provider (AWS_*, CLOUDSDK_*, …),
/// as docker gives them.
pub fn inheriting(program: &Path) -> Command {
    let mut command = Command::new(program);
    command.env("PATH", crate::trust::program::child_path());
    command
}

/// No controlling terminal, and a process group of its own to kill at the deadline.
#[cfg(unix)]
fn detach(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches no memory of ours.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

#[cfg(not(unix))]
fn detach(_command: &mut Command) {}

/// Kill the child and everything it started that is still in its process group.
fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    if let Ok(pgid) = i32::try_from(child.id()) {
        // SAFETY: killpg takes integers and touches no memory of ours. The child is not
        // reaped yet, so its pid (the group's id, after setsid) cannot have been reused.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

enum Pipe {
    Out(Secret<Vec<u8>>),
    Err(Vec<u8>),
}

/// Run `command` (its stdio is set here) with `input` on stdin, waiting at most `timeout`.
pub fn run(
    mut command: Command,
    input: &[u8],
    timeout: Duration,
) -> Result<ChildOutput, ChildError> {
    let deadline = Instant::now() + timeout;
    detach(&mut command);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ChildError::Missing,
            _ => ChildError::Spawn(e),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let data = Secret::new(input.to_vec());
        // A child that never reads stdin must not block us: write from a thread.
        std::thread::spawn(move || {
            let _ = stdin.write_all(data.expose());
        });
    }
    let (tx, rx) = mpsc::channel::<Pipe>();
    if let Some(pipe) = child.stdout.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let out = crate::secret::read_capped(pipe, OUTPUT_CAP).unwrap_or_default();
            let _ = tx.send(Pipe::Out(out));
        });
    }
    if let Some(pipe) = child.stderr.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.take(OUTPUT_CAP as u64).read_to_end(&mut buf);
            let _ = tx.send(Pipe::Err(buf));
        });
    }
    drop(tx);
    let timed_out = |child: &mut std::process::Child| {
        kill_group(child);
        ChildError::Timeout
    };
    let (mut stdout, mut stderr) = (None, None);
    while stdout.is_none() || stderr.is_none() {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Pipe::Out(bytes)) => stdout = Some(bytes),
            Ok(Pipe::Err(bytes)) => stderr = Some(bytes),
            Err(_) => return Err(timed_out(&mut child)),
        }
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let status = match child.wait_timeout(left) {
        Ok(Some(status)) => status,
        Ok(None) => return Err(timed_out(&mut child)),
        Err(e) => return Err(ChildError::Spawn(e)),
    };
    Ok(ChildOutput {
        success: status.success(),
        code: status.code(),
        stdout: stdout.unwrap_or_default(),
        stderr: stderr.unwrap_or_default(),
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A system program, run with nothing of the caller's environment.
    fn system(program: &str) -> Command {
        let mut c = Command::new(format!("/bin/{program}"));
        c.env_clear().env("PATH", "/usr/bin:/bin");
        c
    }

    #[test]
    fn output_and_status_come_back_and_a_hang_is_stopped() {
        let mut c = system("sh");
        c.args(["-c", "cat; echo err >&2; exit 3"]);
        let out = run(c, b"in", Duration::from_secs(10)).unwrap();
        assert_eq!((out.success, out.code), (false, Some(3)));
        assert_eq!(out.stdout.expose(), b"in");
        assert_eq!(out.stderr, b"err\n");
        let mut c = system("sleep");
        c.arg("30");
        let start = Instant::now();
        assert!(matches!(
            run(c, b"", Duration::from_millis(200)),
            Err(ChildError::Timeout)
        ));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(matches!(
            run(system("no-such-program-xyz"), b"", Duration::from_secs(1)),
            Err(ChildError::Missing)
        ));
    }

    /// What is written to a child's stdin and read from its stdout (the secret, both ways
    /// for `cat`) is wiped: no freed block holds it afterwards.
    #[test]
    fn what_goes_to_and_comes_from_a_child_leaves_no_copy_in_freed_memory() {
        let watch = crate::wipe_check::Watch::new();
        let input = Secret::new(watch.canary().as_bytes().to_vec());
        let out = run(system("cat"), input.expose(), Duration::from_secs(30)).unwrap();
        assert_eq!(out.stdout.expose(), input.expose());
        drop(out);
        drop(input);
        // The writer thread drops its copy once `cat` has read it; give it a moment.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(watch.freed_copies(), 0);
    }

    /// A grandchild (gpg, git, a hook) that outlives the deadline is killed with the child:
    /// the whole process group goes.
    #[test]
    fn at_the_deadline_the_grandchildren_are_killed_too() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let mut c = system("sh");
        // The grandchild closes the pipes, so only the deadline can end the wait.
        c.arg("-c")
            .arg(r#"sleep 300 </dev/null >/dev/null 2>&1 & echo $! > "$1"; wait"#)
            .arg("sh")
            .arg(&pid_file);
        assert!(matches!(
            run(c, b"", Duration::from_millis(500)),
            Err(ChildError::Timeout)
        ));
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let gone = |pid: i32| {
            // Gone, or a zombie waiting for its new parent to reap it.
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => true,
                Ok(stat) => stat
                    .rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            }
        };
        let until = Instant::now() + Duration::from_secs(10);
        while !gone(pid) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let alive = !gone(pid);
        if alive {
            // SAFETY: kill takes integers; clean up the stray before failing.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        assert!(!alive, "the grandchild {pid} outlived the deadline");
    }
}
