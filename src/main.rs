//! Dispatch only: argv to an action, its answer to stdout, its status to the exit code.

use std::io::Write;
use std::process::ExitCode;

use docker_credential_hub::helper::{self, Action};
use docker_credential_hub::protocol::{self, NAME, USAGE};
use docker_credential_hub::watchdog::Watchdog;
use docker_credential_hub::{configure, doctor, hub, keychain, settings};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
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
            Some(action) if args.len() == 1 => protocol_action(action),
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

Environment:
  DOCKER_CREDENTIAL_HUB_BACKEND=auto|secret-service|keyutils   keychain choice (default auto)
  DOCKER_CREDENTIAL_HUB_TIMEOUT=SECONDS                         network and helper deadline (default 30)
  DOCKER_CREDENTIAL_HUB_DEBUG=1                                 trace on stderr, secrets redacted
";

/// Protocol errors go to stdout: docker captures only stdout.
fn protocol_error(line: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    ExitCode::from(1)
}

fn protocol_action(action: Action) -> ! {
    let input = if action == Action::List {
        Vec::new()
    } else {
        match protocol::read_input(&mut std::io::stdin().lock()) {
            Ok(bytes) => bytes,
            Err(e) => {
                protocol_error(&format!("{NAME}: {e}"));
                std::process::exit(1)
            }
        }
    };
    // Only a daemon can hang; kernel keyutils answers at once, so skip the thread there.
    let deadline = settings::timeout();
    let watchdog = keychain::may_block().then(|| {
        Watchdog::arm(
            deadline,
            format!(
                "{NAME}: the keychain did not answer within {} s (a hung Secret Service, or an unlock prompt nobody can answer); run `{NAME} doctor`",
                deadline.as_secs()
            ),
        )
    });
    let mut selection = None;
    let mut open = || {
        let (kc, sel) = keychain::open()?;
        selection = Some(sel);
        Ok(kc)
    };
    let fast = match action {
        Action::Get => helper::fast_get(&input),
        _ => None,
    };
    let outcome = fast.unwrap_or_else(|| helper::run(action, &input, &mut open));
    if let Some(w) = &watchdog {
        w.disarm();
    }
    if let Some(sel) = &selection
        && sel.volatile
        && action == Action::Store
        && outcome.code == 0
    {
        eprintln!(
            "{NAME}: warning: credentials are in the kernel keyring and will not survive a reboot ({}); run `{NAME} doctor` for a persistent setup",
            sel.reason
        );
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(outcome.stdout.as_bytes());
    let _ = out.flush();
    drop(out);
    // The credential is safely stored before Hub is contacted; Hub problems only warn.
    if let (Some(creds), Some(kc)) = (&outcome.stored, &outcome.keychain) {
        hub::after_store(kc.as_ref(), creds);
    }
    // Exit without tearing down the D-Bus connection and its executor threads: the answer
    // is out, and orderly shutdown only adds latency to every docker pull.
    std::process::exit(outcome.code)
}
