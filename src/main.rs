//! Dispatch only: argv to an action, its answer to stdout, its status to the exit code.

// On Linux the program starts as the C `main`, not through std's wrapper (see `main` below).
#![cfg_attr(all(target_os = "linux", not(test)), no_main)]

use std::io::Write;
use std::process::ExitCode;

use docker_credential_hub::helper::Action;
use docker_credential_hub::protocol::{self, NAME, USAGE};
use docker_credential_hub::{configure, doctor, hub, serve};

/// docker starts this program on every pull, and the protocol actions take about 3 ms, so the
/// start-up counts. std's wrapper around `main` installs a stack-overflow handler first: an
/// alternate signal stack and two handlers, after reading /proc/self/maps to find the main
/// thread's stack (20 system calls, ~50 µs here). Entered as the C `main` instead, the
/// program does only the part it relies on: writing to a closed pipe must fail with EPIPE,
/// not kill it. The arguments are read from `argv` here: glibc would also hand them to std,
/// musl does not.
#[cfg(all(target_os = "linux", not(test)))]
#[unsafe(no_mangle)]
extern "C" fn main(argc: std::ffi::c_int, argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let args = (1..usize::try_from(argc).unwrap_or(0))
        // SAFETY: the C runtime passes `argc` valid, NUL-terminated strings in `argv`.
        .map(|i| unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) })
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let code = dispatch(args);
    // What std's exit path would do: C's exit does not know Rust's stdout buffer.
    let _ = std::io::stdout().flush();
    // ExitCode hides its value (its accessor is unstable); our commands use 0, 1 and 2.
    (0..=2u8)
        .find(|&c| ExitCode::from(c) == code)
        .map_or(1, std::ffi::c_int::from)
}

#[cfg(any(not(target_os = "linux"), test))]
fn main() -> ExitCode {
    dispatch(
        std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    )
}

/// `args` without the program name.
fn dispatch(args: Vec<String>) -> ExitCode {
    let Some(first) = args.first() else {
        return protocol_error(USAGE);
    };
    match first.as_str() {
        "-h" | "--help" | "help" => {
            println!("{USAGE}\n\n{}", HELP.trim_end());
            ExitCode::SUCCESS
        }
        "-v" | "--version" | "version" => {
            println!("{}", protocol::version_line());
            ExitCode::SUCCESS
        }
        "login" => hub::cli::login(&args[1..]),
        "logout" => hub::cli::logout(&args[1..]),
        "token" => hub::cli::token(&args[1..]),
        "configure" => configure::run(&args[1..]),
        "doctor" => doctor::run(&args[1..]),
        action => match Action::parse(action) {
            Some(action) if args.len() == 1 => serve::serve(action),
            // Never echo extra arguments: a user may have put a password there.
            Some(_) => protocol_error(&format!(
                "{NAME}: {action} takes no arguments; it reads its request from stdin"
            )),
            // A typo is worth repeating; anything else may be a secret typed in the wrong place.
            None if looks_like_a_word(action) => {
                protocol_error(&format!("{NAME}: unknown action: {action}"))
            }
            None => protocol_error(&format!(
                "{NAME}: unknown action (not shown, in case it is a secret); run `{NAME} help`"
            )),
        },
    }
}

/// Letters and dashes only, and short: a mistyped action or option, not a password.
fn looks_like_a_word(arg: &str) -> bool {
    (1..=24).contains(&arg.len()) && arg.chars().all(|c| c.is_ascii_alphabetic() || c == '-')
}

const HELP: &str = "
Docker runs the protocol actions; they read the request on stdin:
  store     save the credential given as JSON {\"ServerURL\",\"Username\",\"Secret\"}
  get       print the credential for the server URL given on stdin
  erase     remove the credential for the server URL given on stdin
  list      print every server URL with its username
  version   print the version

Commands for people and scripts (errors on stderr):
  login [--username U] [--password-stdin] [--otp CODE]
            log in to Docker Hub; stores the credentials and caches a Hub JWT
  token     print a valid Docker Hub JWT (for `Authorization: Bearer`)
  logout    forget the Docker Hub credentials and the cached JWT
  configure [--dry-run] [--undo]
            switch docker over to this helper, moving existing credentials into the keychain
  doctor [--network]
            check the whole setup, one line per check

Environment:
  DOCKER_CREDENTIAL_HUB_BACKEND=auto|secret-service|keyutils   keychain choice (default auto)
  DOCKER_CREDENTIAL_HUB_TIMEOUT=SECONDS                         network and helper deadline (default 30)
  DOCKER_CREDENTIAL_HUB_DEBUG=1                                 trace on stderr, secrets redacted
  DOCKER_HUB_API_URL=URL                                        Docker Hub API (default https://hub.docker.com)
";

/// Protocol errors go to stdout: docker captures only stdout.
fn protocol_error(line: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    ExitCode::from(1)
}
