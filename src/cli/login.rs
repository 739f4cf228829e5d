//! `login`: log in to Docker Hub, store the credentials under docker's Hub key and cache
//! the Hub JWT. Passwords and codes never come from argv.

use std::io::Read;

use anyhow::{Context, anyhow, bail};

use super::args::{Arg, Args, is_help};
use super::{Explained, Failure, finish, open_keychain, warn_if_volatile};
use crate::hub::client::Hub;
use crate::hub::login::{self, LoginError, SecondFactor};
use crate::hub::{cache, tty};
use crate::keychain::Stored;
use crate::registry::HUB_KEY;
use crate::secret::Secret;
use crate::{NAME, settings};

const USAGE: &str = "Usage: docker-credential-hub login [--username USER] [--password-stdin] [--create-token [--scopes S,...]]

Log in to Docker Hub: stores the credentials under https://index.docker.io/v1/ (for docker
pull/push) and caches a Hub API token (for `docker-credential-hub token`).
  --username, -u USER   the Docker Hub username (asked on the terminal when missing)
  --password-stdin      read the password or access token from stdin (one trailing newline is dropped)
  --create-token        after a password login, create a personal access token and store it
                        instead of the password, so that docker pull/push and later logins
                        need no two-factor code
  --scopes S,...        the new token's scopes (default repo:read,repo:write; also repo:admin,
                        repo:public_read)
For an account with two-factor authentication and no terminal, put the 6-digit code in
DOCKER_CREDENTIAL_HUB_OTP for this one command. Passwords and codes are never accepted as
arguments, where other users could read them in `ps`.";

/// The environment variable for the two-factor code (never an argument: argv is public).
pub const OTP_ENV: &str = "DOCKER_CREDENTIAL_HUB_OTP";

/// The scopes of `login --create-token` without `--scopes`.
const DEFAULT_SCOPES: [&str; 2] = ["repo:read", "repo:write"];

/// The largest password or token `--password-stdin` accepts.
const MAX_PASSWORD: u64 = 64 * 1024;

#[derive(Default)]
struct LoginArgs {
    username: Option<String>,
    password_stdin: bool,
    create_token: bool,
    scopes: Option<Vec<String>>,
    help: bool,
}

/// Parse `login`'s arguments. Error messages never repeat a value: a mistyped command
/// line may hold a password.
fn parse_login_args(list: &[String]) -> anyhow::Result<LoginArgs> {
    const ACCEPTS: &str = "--username USER, --password-stdin, --create-token and --scopes";
    let mut parsed = LoginArgs::default();
    let mut args = Args::new(list);
    while let Some(arg) = args.next() {
        if is_help(&arg) {
            parsed.help = true;
            continue;
        }
        let Arg::Opt { name, attached } = arg else {
            bail!(
                "unexpected argument (not shown, in case it is a secret); `{NAME} login` takes no positional arguments and never a password: use --password-stdin or the prompt"
            );
        };
        let needs_value = |flag: &str| anyhow!("{flag} needs a value; see `{NAME} login --help`");
        match (name.as_str(), attached) {
            ("-u" | "--username", _) => {
                parsed.username = Some(args.value().ok_or_else(|| needs_value("--username"))?);
            }
            ("--otp", _) => bail!(
                "--otp is not accepted: a code on the command line shows up in `ps`; run `{OTP_ENV}=CODE {NAME} login ...`, or let `{NAME} login` ask for it on the terminal"
            ),
            ("--password-stdin", false) => parsed.password_stdin = true,
            ("--create-token", false) => parsed.create_token = true,
            ("--scopes", _) => {
                let scopes: Vec<String> = args
                    .value()
                    .ok_or_else(|| needs_value("--scopes"))?
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if scopes.is_empty() {
                    bail!("--scopes needs at least one scope; see `{NAME} login --help`");
                }
                parsed.scopes = Some(scopes);
            }
            ("-p" | "--password", _) => bail!(
                "{name} is not accepted: a password on the command line shows up in `ps` and shell history; pipe it with --password-stdin, or let `{NAME} login` ask for it"
            ),
            _ => match args.shown() {
                Some(shown) => bail!("unknown option {shown}; `{NAME} login` accepts {ACCEPTS}"),
                None => bail!(
                    "unknown option (not shown, in case it is a secret); `{NAME} login` accepts {ACCEPTS}"
                ),
            },
        }
    }
    if parsed.scopes.is_some() && !parsed.create_token {
        bail!("--scopes goes with --create-token");
    }
    Ok(parsed)
}

pub fn login(args: &[String]) -> std::process::ExitCode {
    finish(None, run(args))
}

fn run(args: &[String]) -> Result<(), Failure> {
    let parsed = parse_login_args(args)?;
    if parsed.help {
        println!("{USAGE}");
        return Ok(());
    }
    crate::process::harden();
    run_login(parsed)?;
    println!("Login Succeeded");
    Ok(())
}

fn run_login(args: LoginArgs) -> anyhow::Result<()> {
    // Open the keychain first: no point logging in if the result cannot be kept.
    let (opened, selection, deadline) = open_keychain()?;
    let username = match args.username {
        Some(u) => u,
        None => prompt_username(args.password_stdin)?,
    };
    let secret = if args.password_stdin {
        read_password_stdin()?
    } else {
        prompt_password()?
    };
    if args.create_token && login::is_access_token(secret.expose()) {
        bail!(
            "--create-token needs your password: a login with an access token cannot create access tokens (Hub refuses tokens issued from one); nothing was stored"
        );
    }
    let timeout = settings::timeout();
    let _lock = cache::lock(timeout)?;
    let hub = Hub::new(timeout)?;
    let otp = otp_from_env()?;
    let second = match &otp {
        Some(code) => SecondFactor::Code(code),
        None => SecondFactor::Prompt,
    };
    let jwt = login::obtain_jwt(&hub, &username, &secret, second).map_err(|e| match e {
        LoginError::Hub(e) | LoginError::SecondFactor(e) => anyhow!("{e}; nothing was stored"),
        LoginError::NeedsCode => anyhow!(
            "this account uses two-factor authentication and there is no terminal to ask for the code; run `{OTP_ENV}=CODE {NAME} login ...` with the current code, or log in with a personal access token; nothing was stored"
        ),
        LoginError::Prompt(e) => {
            anyhow!("cannot read the two-factor code from the terminal ({e}); nothing was stored")
        }
    })?;
    // With --create-token, the credential docker and later logins use is a new PAT.
    let (stored_secret, created) = if args.create_token {
        let scopes = args
            .scopes
            .unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect());
        let label = format!("{NAME} on {}", host_name());
        let created = hub
            .create_access_token(&jwt, &label, &scopes)
            .map_err(|e| anyhow!("{e}; nothing was stored"))?;
        (Secret::new(created.token.expose().clone()), Some(created))
    } else {
        (secret, None)
    };
    deadline.renew();
    let stored = Stored {
        username,
        secret: stored_secret,
    };
    opened.creds.store(HUB_KEY, &stored).explained(
        "Docker Hub accepted the login, but the keychain did not store the credentials",
    )?;
    cache::write(opened.internal.as_ref(), &stored.username, &jwt)
        .explained("the credentials are stored, but the keychain did not store the Hub token")?;
    if let Some(created) = created {
        println!(
            "Created the access token \"{}\" with scopes {} and stored it for docker pull/push and later logins (it is listed under Account settings → Personal access tokens)",
            created.label,
            created.scopes.join(", ")
        );
    }
    warn_if_volatile(None, &selection, true);
    Ok(())
}

/// The two-factor code from the environment, if set: surrounding blanks dropped, and it
/// must look like a code (the 6 digits, or a recovery code), so that a pasted password is
/// not sent as one.
fn otp_from_env() -> anyhow::Result<Option<Secret<String>>> {
    let Some(raw) = std::env::var_os(OTP_ENV) else {
        return Ok(None);
    };
    let raw = Secret::new(raw.into_string().unwrap_or_default());
    let code = raw.expose().trim();
    let looks_like_code = |c: char| c.is_ascii_alphanumeric() || c == '-';
    if code.is_empty() || code.len() > 64 || !code.chars().all(looks_like_code) {
        bail!(
            "{OTP_ENV} is not a two-factor code (not shown); set it to the 6 digits your authenticator shows, or unset it to be asked on the terminal"
        );
    }
    Ok(Some(Secret::new(code.to_string())))
}

/// This machine's name, for the label of a token it creates.
fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
            if !name.is_empty() {
                return crate::hub::printable(&name);
            }
        }
    }
    #[cfg(windows)]
    if let Ok(name) = std::env::var("COMPUTERNAME")
        && !name.is_empty()
    {
        return crate::hub::printable(&name);
    }
    "this machine".into()
}

fn prompt_username(password_stdin: bool) -> anyhow::Result<String> {
    if !tty::available() {
        if password_stdin {
            bail!("--password-stdin needs --username USER when there is no terminal");
        }
        bail!(
            "there is no terminal to ask for the username; pass --username USER (and the password with --password-stdin)"
        );
    }
    let name =
        tty::prompt_visible("Username: ").context("cannot read the username from the terminal")?;
    if name.is_empty() {
        bail!("no username given");
    }
    Ok(name)
}

fn prompt_password() -> anyhow::Result<Secret<String>> {
    if !tty::available() {
        bail!("there is no terminal to ask for the password; pipe it with --password-stdin");
    }
    let password =
        tty::prompt_hidden("Password: ").context("cannot read the password from the terminal")?;
    if is_blank(password.expose()) {
        bail!("no password given (it was empty or only whitespace)");
    }
    Ok(password)
}

fn read_password_stdin() -> anyhow::Result<Secret<String>> {
    let mut bytes = Secret::new(Vec::new());
    std::io::stdin()
        .lock()
        .take(MAX_PASSWORD + 1)
        .read_to_end(bytes.expose_mut())
        .context("cannot read the password from stdin")?;
    if bytes.expose().len() as u64 > MAX_PASSWORD {
        bail!(
            "the password on stdin is longer than 64 KiB; pipe only the password or access token"
        );
    }
    let text = bytes
        .into_text()
        .ok_or_else(|| anyhow!("the password on stdin is not valid UTF-8"))?;
    let password = strip_one_newline(text.expose());
    if is_blank(password) {
        bail!(
            "the password on stdin is empty or only whitespace, which docker login refuses too; pipe the password or access token into --password-stdin"
        );
    }
    Ok(Secret::new(password.to_string()))
}

/// A password that is empty once whitespace is trimmed counts as no password, as in
/// docker/cli `cli/command/registry.go` (`PromptUserForCredentials`); one that is not is
/// sent as typed, surrounding blanks included.
fn is_blank(password: &str) -> bool {
    password.trim().is_empty()
}

/// As `docker login --password-stdin`: drop one trailing `\n`, then one `\r`.
fn strip_one_newline(s: &str) -> &str {
    let s = s.strip_suffix('\n').unwrap_or(s);
    s.strip_suffix('\r').unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn strips_exactly_one_newline() {
        assert_eq!(strip_one_newline("pw\n"), "pw");
        assert_eq!(strip_one_newline("pw\r\n"), "pw");
        assert_eq!(strip_one_newline("pw\n\n"), "pw\n");
        assert_eq!(strip_one_newline("pw"), "pw");
        assert_eq!(strip_one_newline(" pw \n"), " pw ");
    }

    #[test]
    fn blank_passwords_are_no_passwords() {
        for blank in ["", " ", "\t", " \r\n ", "\u{a0}"] {
            assert!(is_blank(blank), "{blank:?}");
        }
        assert!(!is_blank(" pw "));
    }

    #[test]
    fn parses_the_login_flags() {
        let p = parse_login_args(&args(&[
            "--username",
            "alice",
            "--password-stdin",
            "--create-token",
            "--scopes=repo:read, repo:admin",
        ]))
        .unwrap();
        assert_eq!(p.username.as_deref(), Some("alice"));
        assert!(p.password_stdin);
        assert!(p.create_token);
        assert_eq!(p.scopes.unwrap(), ["repo:read", "repo:admin"]);
        let p = parse_login_args(&args(&["-u", "bob"])).unwrap();
        assert_eq!(p.username.as_deref(), Some("bob"));
        assert!(!p.password_stdin);
        assert!(!p.create_token);
    }

    #[test]
    fn password_arguments_are_refused_without_echo() {
        for a in [
            args(&["--password", "hunter2"]),
            args(&["--password=hunter2"]),
            args(&["-p", "hunter2"]),
            args(&["hunter2"]),
            args(&["-hunter2"]),
            args(&["--Hunter2=x"]),
            args(&["--password-stdin=hunter2"]),
            args(&["--otp", "123456hunter2"]),
            args(&["--otp=hunter2"]),
        ] {
            let e = parse_login_args(&a).err().unwrap().to_string();
            assert!(!e.contains("hunter2"), "{e}");
            assert!(!e.contains("Hunter2"), "{e}");
        }
        let e = parse_login_args(&args(&["--password=hunter2"]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("--password-stdin"), "{e}");
        let e = parse_login_args(&args(&["--otp", "123456"]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(OTP_ENV), "{e}");
        let e = parse_login_args(&args(&["--verbose"]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("--verbose"), "{e}");
    }

    #[test]
    fn flags_need_values() {
        assert!(parse_login_args(&args(&["--username"])).is_err());
        assert!(parse_login_args(&args(&["--scopes"])).is_err());
        assert!(parse_login_args(&args(&["--create-token", "--scopes=,"])).is_err());
        assert!(parse_login_args(&args(&["--scopes=repo:read"])).is_err());
    }
}
