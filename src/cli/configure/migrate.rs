//! Finding the credentials a machine already has, so `configure` can move them into the
//! keychain before docker switches over: plaintext `auths` entries in config.json, and
//! the previous `credsStore` helper, spoken to exactly as docker speaks to it.

use std::time::Duration;

use base64::Engine;
use serde_json::{Map, Value};

use crate::cli::explain;
use crate::docker_config;
use crate::hub::cache;
use crate::keychain::{KeychainError, Opened, Stored};
use crate::protocol::TOKEN_USERNAME;
use crate::protocol::client::{self, CallError, HELPER_PREFIX};

/// Where a credential was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Auths,
    Helper(String),
}

impl Origin {
    pub fn describe(&self) -> String {
        match self {
            Origin::Auths => "config.json \"auths\"".into(),
            Origin::Helper(name) => format!("{HELPER_PREFIX}{name}"),
        }
    }
}

/// One credential to migrate. `Debug` redacts the secret (`Stored` holds a `Secret`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub key: String,
    pub cred: Stored,
    pub origin: Origin,
}

impl Found {
    /// `ghcr.io (username bob)`: never the secret.
    pub fn describe(&self) -> String {
        if self.cred.username == TOKEN_USERNAME {
            format!("{} (identity token)", self.key)
        } else {
            format!("{} (username {})", self.key, self.cred.username)
        }
    }
}

/// Why docker could not read an `auths` entry either. Never quotes a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("has a \"{name}\" that is a JSON {found}, not a string")]
    NotString { name: String, found: &'static str },
    #[error("has an \"auth\" that is not valid base64")]
    NotBase64,
    #[error("has an \"auth\" that does not decode to text")]
    NotText,
    #[error("has an \"auth\" that is not base64 of user:password")]
    NotUserPassword,
    #[error("has a password but no username")]
    PasswordWithoutUsername,
}

/// An `auths` entry that cannot be migrated, with the way out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "config.json \"auths\".\"{key}\" {why}; run `docker login {key}` again after removing that entry, or delete it"
)]
pub struct AuthsProblem {
    pub key: String,
    pub why: EntryError,
}

/// The credentials in config.json `auths`, read as docker reads them, keyed exactly as
/// they appear. Entries docker could not read either are returned as problems.
pub fn from_auths(doc: &Value) -> (Vec<Found>, Vec<AuthsProblem>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for (key, entry) in docker_config::auths(doc) {
        match from_entry(entry) {
            Ok(Some(cred)) => found.push(Found {
                key: key.to_string(),
                cred,
                origin: Origin::Auths,
            }),
            Ok(None) => {}
            Err(why) => problems.push(AuthsProblem {
                key: key.to_string(),
                why,
            }),
        }
    }
    (found, problems)
}

fn text<'a>(entry: &'a Map<String, Value>, name: &str) -> Result<&'a str, EntryError> {
    match docker_config::field(entry, name) {
        None => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(EntryError::NotString {
            name: name.to_string(),
            found: crate::json::kind(other),
        }),
    }
}

/// One `auths` entry: the identity token wins (docker's native store sends it as
/// `<token>`), then `auth`, then `username`/`password`. `Ok(None)`: no secret here.
fn from_entry(entry: &Map<String, Value>) -> Result<Option<Stored>, EntryError> {
    let token = text(entry, "identitytoken")?;
    let auth = text(entry, "auth")?;
    let username = text(entry, "username")?;
    let password = text(entry, "password")?;
    if !token.is_empty() {
        return Ok(Some(Stored::new(TOKEN_USERNAME, token)));
    }
    if !auth.is_empty() {
        let (user, pass) = decode_auth(auth)?;
        return Ok(Some(Stored::new(user, pass)));
    }
    if !username.is_empty() {
        return Ok(Some(Stored::new(username, password)));
    }
    if !password.is_empty() {
        return Err(EntryError::PasswordWithoutUsername);
    }
    Ok(None)
}

/// docker/cli `decodeAuth`: standard base64 of `user:password`, split at the first `:`,
/// NULs trimmed from the password. Errors never include the decoded text.
pub fn decode_auth(auth: &str) -> Result<(String, String), EntryError> {
    // Go's decoder skips CR and LF inside base64.
    let cleaned: String = auth.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|_| EntryError::NotBase64)?;
    let text = String::from_utf8(bytes).map_err(|_| EntryError::NotText)?;
    match text.split_once(':') {
        Some((user, pass)) if !user.is_empty() => {
            Ok((user.to_string(), pass.trim_matches('\0').to_string()))
        }
        _ => Err(EntryError::NotUserPassword),
    }
}

/// Every credential the old helper holds, or the first failure.
pub fn from_helper(name: &str, timeout: Duration) -> Result<(Vec<Found>, Vec<String>), CallError> {
    let mut found = Vec::new();
    let mut vanished = Vec::new();
    for (key, _) in client::helper_list(name, timeout)? {
        match client::helper_get(name, &key, timeout)? {
            Some(cred) => found.push(Found {
                key,
                cred,
                origin: Origin::Helper(name.to_string()),
            }),
            None => vanished.push(key),
        }
    }
    Ok((found, vanished))
}

/// docker/cli `DetectDefaultStore`: with no credsStore, no credHelpers and no auths,
/// docker itself uses the platform's helper when it is on PATH.
pub fn detected_default_store() -> Option<String> {
    let name = if cfg!(target_os = "macos") {
        "osxkeychain"
    } else if cfg!(windows) {
        "wincred"
    } else if crate::trust::program::find("pass").is_some() {
        "pass"
    } else {
        "secretservice"
    };
    crate::trust::program::find(&format!("{HELPER_PREFIX}{name}")).map(|_| name.to_string())
}

/// Why a credential did not move.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("{}", explain(.0))]
    Keychain(#[from] KeychainError),
    #[error(
        "the keychain returned a different value when read back; run `docker-credential-hub doctor`"
    )]
    Differs,
    #[error(
        "the keychain did not return the credential when read back; run `docker-credential-hub doctor`"
    )]
    Missing,
}

/// Store one credential and read it back. Only a credential that reads back identical
/// counts as moved.
pub fn store_verified(opened: &Opened, found: &Found) -> Result<(), MoveError> {
    let kc = opened.creds.as_ref();
    kc.store(&found.key, &found.cred)?;
    match kc.get(&found.key)? {
        Some(back) if back == found.cred => {}
        Some(_) => return Err(MoveError::Differs),
        None => return Err(MoveError::Missing),
    }
    // As `store` does: a cached Hub JWT may belong to another account.
    cache::invalidate(opened.internal.as_ref(), &found.key)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn auths_are_read_as_docker_reads_them() {
        let doc = json!({"auths": {
            "https://index.docker.io/v1/": {"auth": b64("alice:pa:ss\0")},
            "ghcr.io": {"identitytoken": "tok", "auth": b64("x:y")},
            "quay.io": {"username": "bob", "password": "pw"},
            "empty.io": {},
            "mail.io": {"email": "a@b"},
            "nopass.io": {"username": "carol"}
        }});
        let (found, problems) = from_auths(&doc);
        assert!(problems.is_empty(), "{problems:?}");
        let got: Vec<(&str, &str, &str)> = found
            .iter()
            .map(|f| {
                (
                    f.key.as_str(),
                    f.cred.username.as_str(),
                    f.cred.secret.expose().as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("https://index.docker.io/v1/", "alice", "pa:ss"),
                ("ghcr.io", "<token>", "tok"),
                ("quay.io", "bob", "pw"),
                ("nopass.io", "carol", ""),
            ]
        );
        assert!(found.iter().all(|f| f.origin == Origin::Auths));
        assert_eq!(found[1].describe(), "ghcr.io (identity token)");
        assert_eq!(found[2].describe(), "quay.io (username bob)");
    }

    #[test]
    fn unreadable_entries_are_problems_that_never_quote_the_secret() {
        let doc = json!({"auths": {
            "a": {"auth": "!!!notbase64secret"},
            "b": {"auth": b64("nocolonsecret")},
            "c": {"auth": b64(":emptyusersecret")},
            "d": {"password": "lonelysecret"},
            "e": {"auth": 5}
        }});
        let (found, problems) = from_auths(&doc);
        assert!(found.is_empty());
        let why: Vec<&EntryError> = problems.iter().map(|p| &p.why).collect();
        assert_eq!(
            why,
            [
                &EntryError::NotBase64,
                &EntryError::NotUserPassword,
                &EntryError::NotUserPassword,
                &EntryError::PasswordWithoutUsername,
                &EntryError::NotString {
                    name: "auth".into(),
                    found: "number"
                },
            ]
        );
        for p in &problems {
            assert!(!p.to_string().contains("secret"), "{p}");
        }
    }

    #[test]
    fn store_verified_keeps_only_what_reads_back_and_drops_a_hub_token() {
        use crate::hub::HUB_JWT;
        use crate::keychain::memory::Memory;
        use crate::keychain::{Backend, Kind};
        let opened = Opened {
            creds: Box::new(Memory::default()),
            internal: Box::new(Memory::default()),
        };
        let cached = || opened.internal.get(HUB_JWT).unwrap().is_some();
        opened
            .internal
            .store(HUB_JWT, &Stored::new("alice", "old.jwt.value"))
            .unwrap();
        let other = Found {
            key: "ghcr.io".into(),
            cred: Stored::new("bob", "pw"),
            origin: Origin::Auths,
        };
        store_verified(&opened, &other).unwrap();
        assert_eq!(
            opened.creds.get("ghcr.io").unwrap(),
            Some(Stored::new("bob", "pw"))
        );
        assert!(cached(), "not a Hub key");
        let hub = Found {
            key: "docker.io".into(),
            cred: Stored::new("alice", "pw2"),
            origin: Origin::Helper("pass".into()),
        };
        store_verified(&opened, &hub).unwrap();
        assert!(!cached(), "a cached Hub JWT may belong to another account");

        let failing = Memory::default();
        *failing.fail.borrow_mut() = Some(|| {
            KeychainError::new(Backend::Pass, Kind::Locked, std::io::Error::other("locked"))
        });
        let opened = Opened {
            creds: Box::new(failing),
            internal: Box::new(Memory::default()),
        };
        let err = store_verified(&opened, &other).unwrap_err();
        assert!(matches!(err, MoveError::Keychain(_)), "{err:?}");
        assert_eq!(err.to_string(), "locked");
    }

    #[test]
    fn auth_base64_tolerates_line_breaks_like_go() {
        let enc = b64("user:password-long-enough-to-wrap");
        let wrapped = format!("{}\r\n{}", &enc[..10], &enc[10..]);
        assert_eq!(
            decode_auth(&wrapped).unwrap(),
            ("user".into(), "password-long-enough-to-wrap".into())
        );
    }
}
