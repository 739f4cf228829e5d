//! The one argument parser of the commands for people (`login`, `logout`, `token`,
//! `configure`, `doctor`), on lexopt. A mistyped command line may hold a password, so the
//! errors built from it repeat an option only when it looks like an option name, and never
//! a value or a positional argument.

use std::ffi::OsString;

use super::Failure;
use crate::NAME;

/// One argument as lexopt splits it.
#[derive(Debug, PartialEq, Eq)]
pub enum Arg {
    /// `--name` or `-c`; `attached` when a value came with it (`--name=value`, `-cvalue`).
    Opt { name: String, attached: bool },
    /// Anything that is not an option. Never shown.
    Positional,
}

pub struct Args {
    parser: lexopt::Parser,
    /// The value that came with the option just read.
    attached: Option<String>,
    /// The option just read as typed, up to any `=`: what an error may repeat of it.
    typed: String,
}

fn text(s: OsString) -> String {
    s.to_string_lossy().into_owned()
}

impl Args {
    pub fn new(args: &[String]) -> Args {
        Args {
            parser: lexopt::Parser::from_args(args.iter().cloned()),
            attached: None,
            typed: String::new(),
        }
    }

    /// The next argument; a value that came with an option is held for [Args::value].
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Arg> {
        self.attached = None;
        let (name, typed) = match self.parser.next() {
            Ok(None) => return None,
            Ok(Some(lexopt::Arg::Long(name))) => {
                let name = format!("--{name}");
                self.attached = self.parser.optional_value().map(text);
                (name.clone(), name)
            }
            Ok(Some(lexopt::Arg::Short(c))) => {
                self.attached = self.parser.optional_value().map(text);
                // `-cvalue` is typed as one word: shown (or not) whole.
                let typed = format!("-{c}{}", self.attached.as_deref().unwrap_or(""));
                (format!("-{c}"), typed)
            }
            Ok(Some(lexopt::Arg::Value(_))) | Err(_) => {
                self.typed.clear();
                return Some(Arg::Positional);
            }
        };
        self.typed = typed;
        Some(Arg::Opt {
            name,
            attached: self.attached.is_some(),
        })
    }

    /// The value of the option just read: the one that came with it, else the next
    /// argument. `None` when there is none, or it is empty.
    pub fn value(&mut self) -> Option<String> {
        let value = match self.attached.take() {
            Some(v) => Some(v),
            None => self.parser.value().ok().map(text),
        };
        value.filter(|v| !v.is_empty())
    }

    /// The option just read, as an error may name it: as typed when it looks like an
    /// option name (letters and dashes), else `None`: it may be a secret typed in the
    /// wrong place.
    pub fn shown(&self) -> Option<&str> {
        let body = self.typed.trim_start_matches('-');
        let plain = self.typed.len() <= 24
            && self.typed.starts_with('-')
            && !body.is_empty()
            && body.chars().all(|c| c.is_ascii_lowercase() || c == '-');
        plain.then_some(self.typed.as_str())
    }
}

/// For a command that takes no arguments: `Ok(true)` when it was asked for its usage alone,
/// which is printed; an error for any other argument.
pub fn usage_or_none(list: &[String], command: &str, usage: &str) -> Result<bool, Failure> {
    let mut args = Args::new(list);
    match args.next() {
        None => Ok(false),
        Some(arg) if is_help(&arg) && args.next().is_none() => {
            println!("{usage}");
            Ok(true)
        }
        Some(_) => Err(Failure::new(format!(
            "{command} takes no arguments (usage: {NAME} {command})"
        ))),
    }
}

/// Whether the argument asks for the usage: `--help`, or `-h` alone (`-hunter2` is not).
pub fn is_help(arg: &Arg) -> bool {
    match arg {
        Arg::Opt { name, attached } => name == "--help" || (name == "-h" && !attached),
        Arg::Positional => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(list: &[&str]) -> Vec<(Arg, Option<String>)> {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        let mut args = Args::new(&list);
        let mut out = Vec::new();
        while let Some(arg) = args.next() {
            let shown = args.shown().map(str::to_string);
            out.push((arg, shown));
        }
        out
    }

    fn opt(name: &str, attached: bool) -> Arg {
        Arg::Opt {
            name: name.into(),
            attached,
        }
    }

    #[test]
    fn options_flags_and_values_split_as_typed() {
        let list: Vec<String> = ["--backend=pass", "-u", "bob", "--dry-run", "-ubob", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut args = Args::new(&list);
        assert_eq!(args.next(), Some(opt("--backend", true)));
        assert_eq!(args.value().as_deref(), Some("pass"));
        assert_eq!(args.next(), Some(opt("-u", false)));
        assert_eq!(args.value().as_deref(), Some("bob"));
        assert_eq!(args.next(), Some(opt("--dry-run", false)));
        assert_eq!(args.shown(), Some("--dry-run"));
        assert_eq!(args.next(), Some(opt("-u", true)));
        assert_eq!(args.value().as_deref(), Some("bob"));
        assert_eq!(args.next(), Some(Arg::Positional));
        assert_eq!(args.next(), None);
        let mut args = Args::new(&["--scopes=".to_string()]);
        args.next();
        assert_eq!(args.value(), None, "an empty value is none");
    }

    #[test]
    fn nothing_that_may_be_a_secret_is_ever_shown() {
        for (typed, shown) in [
            ("--verbose", Some("--verbose")),
            ("--verbose=hunter2", Some("--verbose")),
            ("--Hunter2=x", None),
            ("-hunter2", None),
            ("-abc", Some("-abc")),
            ("--", None),
            ("hunter2", None),
            ("--pass_word", None),
        ] {
            let got = all(&[typed]);
            let first = got.first().and_then(|(_, s)| s.as_deref());
            assert_eq!(first, shown, "{typed}");
            for (_, s) in &got {
                assert!(!s.as_deref().unwrap_or("").contains("unter2"), "{typed}");
            }
        }
    }

    #[test]
    fn help_is_asked_only_by_itself() {
        let help = |typed: &str| all(&[typed]).first().is_some_and(|(a, _)| is_help(a));
        assert!(help("--help") && help("-h"));
        assert!(!help("-hunter2") && !help("help") && !help("--helper"));
    }
}
