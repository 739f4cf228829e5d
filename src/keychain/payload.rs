//! What one keychain item holds: the registry username and secret, as a small JSON
//! document, so that `get` needs exactly one secret read on every backend.

use serde::{Deserialize, Serialize};

use super::{KeychainError, Result};
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub username: String,
    pub secret: Secret<String>,
}

#[derive(Serialize, Deserialize)]
struct Wire<'a> {
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
        let wire = Wire {
            username: self.username.as_str().into(),
            secret: self.secret.expose().as_str().into(),
        };
        Secret::new(serde_json::to_vec(&wire).expect("serialising strings cannot fail"))
    }

    pub fn decode(bytes: &[u8]) -> Result<Stored> {
        let wire: Wire = serde_json::from_slice(bytes).map_err(|_| {
            KeychainError::Corrupt(
                "a keychain item of docker-credential-hub does not hold the expected data; \
                 store the credential again with `docker login`"
                    .into(),
            )
        })?;
        Ok(Stored {
            username: wire.username.into_owned(),
            secret: Secret::new(wire.secret.into_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_any_text() {
        let s = Stored::new("<token>", "p\"a\\ss\u{0}\nword");
        assert_eq!(Stored::decode(s.encode().expose()).unwrap(), s);
    }

    #[test]
    fn garbage_is_an_error_without_the_bytes() {
        let err = Stored::decode(b"not json secretvalue").unwrap_err();
        assert!(!err.to_string().contains("secretvalue"));
    }
}
