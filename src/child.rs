//! Running another program with a request on stdin, under a deadline: other credential
//! helpers (as docker runs them) and `pass`. The child is killed at the deadline, and pipes
//! a grandchild may still hold are abandoned rather than waited for. Output is capped, so a
//! runaway child cannot fill our memory.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// More than any helper's answer.
const OUTPUT_CAP: u64 = 16 * 1024 * 1024;

/// What a child printed and how it exited.
pub struct ChildOutput {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug)]
pub enum ChildError {
    /// The program is not installed.
    Missing,
    Spawn(std::io::Error),
    Timeout,
}

/// Run `command` (its stdio is set here) with `input` on stdin, waiting at most `timeout`.
pub fn run(
    mut command: Command,
    input: &[u8],
    timeout: Duration,
) -> Result<ChildOutput, ChildError> {
    let deadline = Instant::now() + timeout;
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
        let data = input.to_vec();
        // A child that never reads stdin must not block us: write from a thread.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    let (tx, rx) = mpsc::channel::<(u8, Vec<u8>)>();
    let pipes: [(u8, Option<Box<dyn Read + Send>>); 2] = [
        (
            0,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            1,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ];
    for (which, pipe) in pipes {
        let tx = tx.clone();
        if let Some(pipe) = pipe {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.take(OUTPUT_CAP).read_to_end(&mut buf);
                let _ = tx.send((which, buf));
            });
        }
    }
    drop(tx);
    let timed_out = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
        ChildError::Timeout
    };
    let (mut stdout, mut stderr) = (None, None);
    while stdout.is_none() || stderr.is_none() {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((0, bytes)) => stdout = Some(bytes),
            Ok((_, bytes)) => stderr = Some(bytes),
            Err(_) => return Err(timed_out(&mut child)),
        }
    }
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => return Err(timed_out(&mut child)),
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(ChildError::Spawn(e)),
        }
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

    #[test]
    fn output_and_status_come_back_and_a_hang_is_stopped() {
        let mut c = Command::new("sh");
        c.args(["-c", "cat; echo err >&2; exit 3"]);
        let out = run(c, b"in", Duration::from_secs(10)).unwrap();
        assert_eq!((out.success, out.code), (false, Some(3)));
        assert_eq!(out.stdout, b"in");
        assert_eq!(out.stderr, b"err\n");
        let mut c = Command::new("sleep");
        c.arg("30");
        let start = Instant::now();
        assert!(matches!(
            run(c, b"", Duration::from_millis(200)),
            Err(ChildError::Timeout)
        ));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(matches!(
            run(
                Command::new("no-such-program-xyz"),
                b"",
                Duration::from_secs(1)
            ),
            Err(ChildError::Missing)
        ));
    }
}
