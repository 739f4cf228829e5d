//! Fault injection on kernel keyutils: the syscalls blocked by a seccomp filter (as docker's
//! default profile does inside containers), the per-user quota exhausted, and `auto` with no
//! D-Bus session at all. Real kernel, real binary; figures go to target/tmp/reliability-*.txt.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use crate::support::output::{assert_one_line_error, stderr, stdout};
use crate::support::tools::{helper_bin, require_tool};
use crate::support::{env, report};

/// `cmd` with `stdin`, bounded like every helper run.
fn run(cmd: Command, stdin: &str) -> Output {
    env::bounded(cmd).write_stdin(stdin).output().unwrap()
}

/// `program` with a HOME and runtime directory of its own and the keychain service
/// `service`.
fn private(program: impl AsRef<std::ffi::OsStr>, home: &std::path::Path, service: &str) -> Command {
    let mut vars = env::base_vars(home, home);
    env::set(&mut vars, "DOCKER_CREDENTIAL_HUB_SERVICE", service);
    env::command(program, &vars)
}

/// One classic-BPF instruction.
const fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Install a seccomp filter in the child that fails add_key, request_key and keyctl with
/// EPERM, exactly as docker's default seccomp profile does.
#[cfg(target_arch = "x86_64")]
fn block_keyutils(cmd: &mut Command) {
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO_EPERM: u32 = 0x0005_0000 | 1;
    let filter = [
        op(0x20, 0, 0, 4), // ld arch
        op(0x15, 1, 0, AUDIT_ARCH_X86_64),
        op(0x06, 0, 0, RET_ALLOW),
        op(0x20, 0, 0, 0),   // ld nr
        op(0x15, 3, 0, 248), // add_key
        op(0x15, 2, 0, 249), // request_key
        op(0x15, 1, 0, 250), // keyctl
        op(0x06, 0, 0, RET_ALLOW),
        op(0x06, 0, 0, RET_ERRNO_EPERM),
    ];
    install(cmd, filter.to_vec());
}

/// Install a seccomp filter that refuses keyctl(KEYCTL_GET_PERSISTENT) with EACCES: a
/// kernel or policy without the per-user persistent keyring.
#[cfg(target_arch = "x86_64")]
fn refuse_persistent_keyring(cmd: &mut Command) {
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO_EACCES: u32 = 0x0005_0000 | 13;
    const KEYCTL_GET_PERSISTENT: u32 = 22;
    let filter = [
        op(0x20, 0, 0, 4), // ld arch
        op(0x15, 1, 0, AUDIT_ARCH_X86_64),
        op(0x06, 0, 0, RET_ALLOW),
        op(0x20, 0, 0, 0),   // ld nr
        op(0x15, 0, 2, 250), // keyctl?
        op(0x20, 0, 0, 16),  // ld args[0]
        op(0x15, 1, 0, KEYCTL_GET_PERSISTENT),
        op(0x06, 0, 0, RET_ALLOW),
        op(0x06, 0, 0, RET_ERRNO_EACCES),
    ];
    install(cmd, filter.to_vec());
}

/// Load `filter` as the seccomp filter of the child, just before it execs.
#[cfg(target_arch = "x86_64")]
fn install(cmd: &mut Command, filter: Vec<libc::sock_filter>) {
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    2,
                    &prog as *const _ as libc::c_ulong,
                    0,
                    0,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Each helper runs in a fresh session keyring of its own (`keyctl session -`), as processes
/// outside a login session do, and the persistent keyring is refused: a stored key must
/// still be there for the next process.
#[cfg(target_arch = "x86_64")]
#[test]
fn keys_outlive_the_process_without_a_persistent_keyring() {
    if !require_nobody_session() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let service = crate::support::unique_name("dch-nopersist");
    let helper = |action: &str, stdin: &str| {
        let mut cmd = private("keyctl", home.path(), &service);
        cmd.args(["session", "-"])
            .arg(helper_bin())
            .arg(action)
            .env("DOCKER_CREDENTIAL_HUB_BACKEND", "keyutils");
        refuse_persistent_keyring(&mut cmd);
        run(cmd, stdin)
    };
    let out = helper(
        "store",
        r#"{"ServerURL":"https://np.example","Username":"u","Secret":"s-np"}"#,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = helper("get", "https://np.example");
    assert_eq!(
        stdout(&out),
        "{\"ServerURL\":\"https://np.example\",\"Username\":\"u\",\"Secret\":\"s-np\"}\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&helper("list", "").stdout),
        "{\"https://np.example\":\"u\"}\n"
    );
    assert_eq!(helper("erase", "https://np.example").status.code(), Some(0));
    assert_eq!(helper("get", "https://np.example").status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&helper("list", "").stdout), "{}\n");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn keyutils_blocked_by_seccomp_is_one_clear_line_for_every_action() {
    let home = tempfile::tempdir().unwrap();
    let mut faults = 0;
    for (action, stdin) in [
        (
            "store",
            r#"{"ServerURL":"https://r.example","Username":"u","Secret":"canary-seccomp"}"#,
        ),
        ("get", "https://r.example"),
        ("erase", "https://r.example"),
        ("list", ""),
    ] {
        for backend in ["keyutils", "auto"] {
            let mut cmd = private(helper_bin(), home.path(), "dch-seccomp");
            cmd.env("DOCKER_CREDENTIAL_HUB_BACKEND", backend)
                .arg(action);
            block_keyutils(&mut cmd);
            let out = run(cmd, stdin);
            assert_eq!(out.status.code(), Some(1), "{action} {backend}");
            let line = assert_one_line_error(&out);
            assert!(
                line.contains("keyutils is not permitted"),
                "{action} {backend}: {line}"
            );
            assert!(line.contains("seccomp"), "{line}");
            if backend == "auto" {
                // With no D-Bus either, the message names both causes.
                assert!(line.contains("D-Bus"), "{line}");
            }
            assert!(!stderr(&out).contains("canary-seccomp"));
            faults += 1;
        }
    }
    report(
        "keyutils-seccomp",
        &format!(
            "fault keyutils blocked by seccomp: {faults} actions survived with a one-line error"
        ),
    );
}

fn require_nobody_session() -> bool {
    require_tool("setpriv") && require_tool("keyctl")
}

/// Run a shell script as user `nobody` in a fresh session keyring, where the per-user
/// keyutils quota (maxbytes, 20000 by default) applies.
fn as_nobody(home: &std::path::Path, script: &str) -> Output {
    // A copy nobody can execute (cargo's target dir may not be reachable for it).
    let bin_dir = home.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let helper_copy = bin_dir.join("docker-credential-hub");
    std::fs::copy(helper_bin(), &helper_copy).unwrap();
    let mut cmd = private("setpriv", home, "dch-quota");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "keyctl",
        "session",
        "-",
        "sh",
        "-c",
        script,
    ]);
    cmd.env("DOCKER_CREDENTIAL_HUB_BACKEND", "keyutils")
        .env("H", &helper_copy);
    run(cmd, "")
}

#[test]
fn keyutils_quota_exhausted_is_a_clear_error_and_earlier_entries_survive() {
    if !require_nobody_session() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    // Writable by nobody, and sticky like /tmp: without the sticky bit the helper would not
    // trust it for its lock files and would keep them in the system's temporary directory.
    std::fs::set_permissions(
        home.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let maxbytes: usize = std::fs::read_to_string("/proc/sys/kernel/keys/maxbytes")
        .map(|s| s.trim().parse().unwrap_or(20000))
        .unwrap_or(20000);
    // Enough 3000-byte secrets to overflow the quota twice over.
    let n = maxbytes / 3000 * 2 + 2;
    let script = format!(
        r#"# Keys of earlier runs linger in nobody's persistent keyring and count against the quota.
P=$(keyctl get_persistent @s 2>/dev/null) && keyctl clear "$P"
keyctl clear @u
S=$(head -c 3000 /dev/zero | tr '\0' a)
for i in $(seq 1 {n}); do
  printf '{{"ServerURL":"https://r%s.example","Username":"u%s","Secret":"%s"}}' $i $i "$S" | "$H" store
  echo "store $i rc=$?"
done
"$H" list; echo "list rc=$?"
printf https://r1.example | "$H" get | head -c 80; echo; echo "get rc=$?"
[ -n "$P" ] && keyctl clear "$P"
keyctl clear @u
"#
    );
    let out = as_nobody(home.path(), &script);
    let stdout = stdout(&out);
    let stored: Vec<usize> = (1..=n)
        .filter(|i| stdout.contains(&format!("store {i} rc=0")))
        .collect();
    let failed = (1..=n)
        .filter(|i| stdout.contains(&format!("store {i} rc=1")))
        .count();
    assert!(
        !stored.is_empty() && failed > 0,
        "quota never hit: {stdout}"
    );
    assert!(
        stdout.contains("the kernel keyutils quota is exhausted"),
        "{stdout}"
    );
    // Every store that succeeded is still listed and readable; none that failed is listed.
    let list_line = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("list output");
    let listed: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(list_line).unwrap();
    for i in &stored {
        assert!(
            listed.contains_key(&format!("https://r{i}.example")),
            "entry {i} lost: {list_line}"
        );
    }
    assert_eq!(listed.len(), stored.len(), "{list_line}");
    assert!(
        stdout.contains(r#"{"ServerURL":"https://r1.example","Username":"u1""#),
        "{stdout}"
    );
    report(
        "keyutils-quota",
        &format!(
            "fault keyutils quota exhausted: {} stores kept, {failed} refused with a clear error, 0 entries lost",
            stored.len()
        ),
    );
}

#[test]
fn auto_without_dbus_falls_back_to_keyutils_with_a_warning() {
    let home = tempfile::tempdir().unwrap();
    let service = crate::support::unique_name("dch-nodbus");
    let store = |action: &str, stdin: &str| {
        let mut cmd = private(helper_bin(), home.path(), &service);
        cmd.arg(action);
        run(cmd, stdin)
    };
    let out = store(
        "store",
        r#"{"ServerURL":"https://nodbus.example","Username":"u","Secret":"canary-nodbus"}"#,
    );
    assert_eq!(out.status.code(), Some(0));
    let stderr = stderr(&out);
    assert!(stderr.contains("will not survive a reboot"), "{stderr}");
    assert!(stderr.contains("no D-Bus session bus"), "{stderr}");
    assert!(!stderr.contains("canary-nodbus"));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let out = store("get", "https://nodbus.example");
    assert_eq!(
        stdout(&out),
        "{\"ServerURL\":\"https://nodbus.example\",\"Username\":\"u\",\"Secret\":\"canary-nodbus\"}\n"
    );
    // get and list stay quiet on stderr: docker runs them on every pull.
    assert!(out.stderr.is_empty());
    assert_eq!(
        store("erase", "https://nodbus.example").status.code(),
        Some(0)
    );
    assert_eq!(String::from_utf8_lossy(&store("list", "").stdout), "{}\n");
}
