//! The pure part of the Windows Credential Manager backend: how a (service, server URL) pair
//! becomes a credential's target name and back, the names of the parts of a value split
//! over several credentials, the platform's size limits, and what its errors mean. Kept
//! apart so that it is tested on every platform.
//!
//! Credential Manager compares target names case-insensitively, while docker's keys are
//! exact: `https://Registry.example` and `https://registry.example` are two credentials. So
//! target names carry no upper-case letters at all: `A` becomes `^a`, `^` becomes `^^`, the
//! separator `|` becomes `^!`, and anything outside printable ASCII becomes `^_` and six hex
//! digits. The encoding is injective and its output all lower case, so two keys that differ
//! only in case get two targets. Parsing the target back, not splitting it at a dot, keeps
//! services with dots (`DOCKER_CREDENTIAL_HUB_SERVICE=my.team`) listable.

/// `CRED_MAX_CREDENTIAL_BLOB_SIZE`: the most secret bytes one credential holds. Larger
/// values are split over several credentials ([super::parts]).
pub const MAX_BLOB: usize = 5 * 512;
/// The largest secret stored, split: 64 KiB, which holds every registry token seen (cloud
/// identity tokens run to a few KiB) while bounding a credential to a few dozen parts.
pub const MAX_SECRET: usize = 64 * 1024;
/// `CRED_MAX_GENERIC_TARGET_NAME_LENGTH`, in UTF-16 units (our targets are ASCII).
pub const MAX_TARGET: usize = 32767;
/// `CRED_MAX_USERNAME_LENGTH`: the registry username lives in the credential's UserName.
pub const MAX_USERNAME: usize = 513;

const PREFIX: &str = "docker-credential-hub|";

use super::error::platform_text;
use super::{Backend, KeychainError, Kind};

const BACKEND: Backend = Backend::WindowsCredentialManager;

/// What went wrong with the Windows Credential Manager.
#[derive(Debug, thiserror::Error)]
pub enum WindowsError {
    /// `ERROR_NO_SUCH_LOGON_SESSION`: the logon session has no credential store to write
    /// to. Nothing else is tried: credentials must not end up in another store unasked.
    #[error(
        "the {BACKEND} cannot keep credentials in this logon session ({cause}): a network or SSH logon (such as OpenSSH with key authentication) has none"
    )]
    NoLogonSession { cause: String },
    #[error(
        "the secret is {size} bytes but {BACKEND} holds at most {max} bytes per secret; use a shorter token"
    )]
    TooLarge { size: usize, max: usize },
    #[error("the {BACKEND} refused the credential ({cause})")]
    Rejected { cause: String },
    #[error("the {BACKEND} failed ({cause})")]
    Failed { cause: String },
    /// A part of a split value is gone for good, or writers kept replacing it.
    #[error(
        "a part of a large value in the {BACKEND} is missing (or the value kept changing while it was read)"
    )]
    PartMissing,
}

impl From<WindowsError> for KeychainError {
    fn from(e: WindowsError) -> KeychainError {
        let kind = match e {
            WindowsError::NoLogonSession { .. } => Kind::Unavailable,
            WindowsError::TooLarge { .. } | WindowsError::Rejected { .. } => Kind::Rejected,
            WindowsError::Failed { .. } => Kind::Failed,
            WindowsError::PartMissing => Kind::Corrupt,
        };
        KeychainError::new(BACKEND, kind, e)
    }
}

/// What a Credential Manager failure means. windows-native-keyring-store turns the Windows
/// error code into keyring-core's variants (`decode_error` in its utils.rs):
/// `ERROR_NOT_FOUND` into `NoEntry`, `ERROR_NO_SUCH_LOGON_SESSION` (1312), and only that,
/// into `NoStorageAccess`, every other code into `PlatformFailure`.
pub fn map_error(err: &keyring_core::Error) -> KeychainError {
    use keyring_core::Error;
    let cause = platform_text(err);
    match err {
        Error::NoStorageAccess(_) => WindowsError::NoLogonSession { cause },
        Error::TooLong(..) | Error::Invalid(..) => WindowsError::Rejected { cause },
        _ => WindowsError::Failed { cause },
    }
    .into()
}

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '^' => out.push_str("^^"),
            '|' => out.push_str("^!"),
            'A'..='Z' => {
                out.push('^');
                out.push(c.to_ascii_lowercase());
            }
            ' '..='~' => out.push(c),
            _ => out.push_str(&format!("^_{:06x}", u32::from(c))),
        }
    }
}

/// The target name for `url` under `service`.
pub fn target(service: &str, url: &str) -> String {
    let mut out = String::with_capacity(PREFIX.len() + service.len() + url.len() + 8);
    out.push_str(PREFIX);
    escape(service, &mut out);
    out.push('|');
    escape(url, &mut out);
    out
}

/// The prefix every target of `service` starts with (for enumeration).
pub fn service_prefix(service: &str) -> String {
    let mut out = String::from(PREFIX);
    escape(service, &mut out);
    out.push('|');
    out
}

/// Undo [escape] up to an unescaped `|` (or the end): the text and the rest after the `|`.
fn unescape(text: &str) -> Option<(String, Option<&str>)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '|' => return Some((out, Some(&text[i + 1..]))),
            '^' => match chars.next()?.1 {
                '^' => out.push('^'),
                '!' => out.push('|'),
                '_' => {
                    let hex: String = (0..6)
                        .map(|_| chars.next().map(|(_, h)| h))
                        .collect::<Option<_>>()?;
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                l if l.is_ascii_alphabetic() => out.push(l.to_ascii_uppercase()),
                _ => return None,
            },
            // Credential Manager may hand back a target in another case than written.
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            _ => out.push(c),
        }
    }
    Some((out, None))
}

/// (service, url) from a target name that [target] made; `None` for any other name.
pub fn parse(target_name: &str) -> Option<(String, String)> {
    let rest = target_name
        .get(..PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(PREFIX))
        .map(|_| &target_name[PREFIX.len()..])?;
    let (service, rest) = unescape(rest)?;
    let (url, tail) = unescape(rest?)?;
    tail.is_none().then_some((service, url))
}

/// The service whose credentials hold the parts of `service`'s split values: its own, so
/// that enumerating `service` never meets a part.
fn parts_service(service: &str) -> String {
    format!("{service}:parts")
}

/// What the target of every part of `url`'s value starts with. `|` never occurs escaped,
/// so no other URL's parts share it.
pub fn part_prefix(service: &str, url: &str) -> String {
    let mut out = target(&parts_service(service), url);
    out.push('|');
    out
}

/// The target of part `index` of generation `generation` of `url`'s value.
pub fn part_target(service: &str, url: &str, generation: &str, index: usize) -> String {
    format!("{}{generation}.{index}", part_prefix(service, url))
}

/// The generation a part's target names, given the prefix of its URL.
pub fn part_generation<'a>(prefix: &str, target_name: &'a str) -> Option<&'a str> {
    let rest = target_name
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &target_name[prefix.len()..])?;
    let (generation, index) = rest.rsplit_once('.')?;
    index.parse::<usize>().ok().map(|_| generation)
}

/// Whether Credential Manager can hold a target name this long.
pub fn target_fits(target: &str) -> bool {
    target.encode_utf16().count() <= MAX_TARGET
}

/// `Err((size, max))` when a secret is larger than the backend stores, even split.
pub fn check_secret(secret: &[u8]) -> Result<(), (usize, usize)> {
    if secret.len() > MAX_SECRET {
        Err((secret.len(), MAX_SECRET))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The store crate's error for a Windows error code, as its `decode_error` builds it.
    fn store_crate_error(code: u32) -> keyring_core::Error {
        #[derive(Debug)]
        struct PlatformError(u32);
        impl std::fmt::Display for PlatformError {
            fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                match self.0 {
                    1312 => write!(f, "Windows ERROR_NO_SUCH_LOGON_SESSION"),
                    code => write!(f, "Windows error code {code}"),
                }
            }
        }
        impl std::error::Error for PlatformError {}
        match code {
            1168 => keyring_core::Error::NoEntry,
            1312 => keyring_core::Error::NoStorageAccess(Box::new(PlatformError(code))),
            _ => keyring_core::Error::PlatformFailure(Box::new(PlatformError(code))),
        }
    }

    #[test]
    fn no_logon_session_names_the_cause_in_one_line_and_nothing_else_is_taken_for_it() {
        let e = map_error(&store_crate_error(1312));
        let text = e.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("ERROR_NO_SUCH_LOGON_SESSION"), "{text}");
        assert!(text.contains("network or SSH logon"), "{text}");
        assert_eq!(e.kind(), Kind::Unavailable);
        assert_eq!(e.backend(), Some(BACKEND));
        // Other failures are not taken for it.
        for code in [5, 1783] {
            let e = map_error(&store_crate_error(code));
            assert_eq!(e.kind(), Kind::Failed, "{code}: {e}");
            assert!(!e.to_string().contains("logon session"), "{e}");
        }
    }

    #[test]
    fn targets_are_readable_for_plain_urls() {
        assert_eq!(
            target("docker-credential-hub", "https://index.docker.io/v1/"),
            "docker-credential-hub|docker-credential-hub|https://index.docker.io/v1/"
        );
    }

    #[test]
    fn keys_that_differ_only_in_case_get_targets_that_differ_ignoring_case() {
        let a = target("s", "https://Registry.example");
        let b = target("s", "https://registry.example");
        assert!(!a.eq_ignore_ascii_case(&b), "{a} {b}");
        assert_eq!(a, a.to_ascii_lowercase());
    }

    #[test]
    fn a_dotted_service_round_trips_and_services_stay_apart() {
        let t = target("my.team.v2", "ghcr.io");
        assert_eq!(parse(&t), Some(("my.team.v2".into(), "ghcr.io".into())));
        assert!(t.starts_with(&service_prefix("my.team.v2")));
        assert!(!t.starts_with(&service_prefix("my.team")));
        assert!(!target("a", "b|c").starts_with(&service_prefix("a|b")));
        assert_eq!(parse("foreign.target"), None);
        assert_eq!(parse("docker-credential-hub|x"), None);
    }

    #[test]
    fn long_urls_do_not_fit_and_the_limit_is_on_the_secret() {
        assert!(target_fits(&target("s", &"a".repeat(600))));
        assert!(!target_fits(&target("s", &"a".repeat(MAX_TARGET))));
        assert_eq!(check_secret(&[0; MAX_BLOB + 1]), Ok(()));
        assert_eq!(check_secret(&[0; 65536]), Ok(()));
        assert_eq!(check_secret(&[0; 65537]), Err((65537, 65536)));
    }

    #[test]
    fn parts_belong_to_exactly_one_url_and_never_to_a_listing() {
        let p = part_target("svc", "https://a.example", "18f-2a-0", 3);
        assert_eq!(
            p,
            "docker-credential-hub|svc:parts|https://a.example|18f-2a-0.3"
        );
        assert_eq!(p, p.to_ascii_lowercase());
        let prefix = part_prefix("svc", "https://a.example");
        assert_eq!(part_generation(&prefix, &p), Some("18f-2a-0"));
        assert_eq!(
            part_generation(&prefix, &p.to_ascii_uppercase()),
            Some("18F-2A-0")
        );
        // The parts of `https://a.example|x` (escaped `^!`) are not those of `https://a.example`.
        let other = part_target("svc", "https://a.example|x", "g", 0);
        assert_eq!(part_generation(&prefix, &other), None);
        assert!(!p.starts_with(&service_prefix("svc")));
        assert_eq!(parse(&p), None);
        assert_eq!(
            part_generation(&prefix, &target("svc", "https://a.example")),
            None
        );
    }

    proptest! {
        #[test]
        fn parse_inverts_target(service in "\\PC{0,12}", url in "\\PC{0,40}") {
            let t = target(&service, &url);
            prop_assert_eq!(&t, &t.to_ascii_lowercase());
            prop_assert_eq!(parse(&t), Some((service.clone(), url.clone())));
            // Windows may return the name in upper case: still the same key.
            prop_assert_eq!(parse(&t.to_ascii_uppercase()), Some((service, url)));
        }

        #[test]
        fn distinct_keys_never_share_a_target_ignoring_case(a in "[a-zA-Z^|]{0,8}", b in "[a-zA-Z^|]{0,8}") {
            if a != b {
                prop_assert!(!target("s", &a).eq_ignore_ascii_case(&target("s", &b)));
            }
        }
    }
}
