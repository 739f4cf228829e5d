//! What one keychain item holds: the registry username and secret (and, where the store
//! cannot list keys cheaply, the server URL), as a small JSON document, so that `get` needs
//! exactly one secret read on every backend.

use serde::{Deserialize, Serialize};

use super::error::Corrupt;
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub username: String,
    pub secret: Secret<String>,
}

#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    #[serde(
        rename = "ServerURL",
        borrow,
        default,
        skip_serializing_if = "Option::is_none"
    )]
    server_url: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "Username", borrow)]
    username: std::borrow::Cow<'a, str>,
    #[serde(rename = "Secret", borrow)]
    secret: std::borrow::Cow<'a, str>,
}

impl Stored {
    pub fn new(username: impl Into<String>, secret: impl Into<String>) -> Self {
        Stored {
            username: username.into(),
            secret: Secret::new(secret.into()),
        }
    }

    pub fn encode(&self) -> Secret<Vec<u8>> {
        self.encode_with(None)
    }

    /// The payload, carrying the server URL it is stored under.
    pub fn encode_for(&self, server_url: &str) -> Secret<Vec<u8>> {
        self.encode_with(Some(server_url))
    }

    fn encode_with(&self, server_url: Option<&str>) -> Secret<Vec<u8>> {
        let wire = Wire {
            server_url: server_url.map(Into::into),
            username: self.username.as_str().into(),
            secret: self.secret.expose().as_str().into(),
        };
        Secret::new(serde_json::to_vec(&wire).expect("serialising strings cannot fail"))
    }

    pub fn decode(bytes: &[u8]) -> Result<Stored, Corrupt> {
        Self::decode_with_url(bytes).map(|(s, _)| s)
    }

    /// The payload and the server URL it names, if it names one.
    pub fn decode_with_url(bytes: &[u8]) -> Result<(Stored, Option<String>), Corrupt> {
        let wire: Wire = serde_json::from_slice(bytes).map_err(|_| Corrupt)?;
        Ok((
            Stored {
                username: wire.username.into_owned(),
                secret: Secret::new(wire.secret.into_owned()),
            },
            wire.server_url.map(|u| u.into_owned()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_any_text() {
        let s = Stored::new("<token>", "p\"a\\ss\u{0}\nword");
        assert_eq!(Stored::decode(s.encode().expose()).unwrap(), s);
        let (back, url) =
            Stored::decode_with_url(s.encode_for("https://r:5000/x").expose()).unwrap();
        assert_eq!(back, s);
        assert_eq!(url.as_deref(), Some("https://r:5000/x"));
        assert_eq!(
            Stored::decode_with_url(s.encode().expose()).unwrap().1,
            None
        );
    }

    #[test]
    fn garbage_is_an_error_without_the_bytes() {
        let err = Stored::decode(b"not json secretvalue").unwrap_err();
        assert!(!err.to_string().contains("secretvalue"));
    }
}
