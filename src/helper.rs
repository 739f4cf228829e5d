//! The four protocol actions, as docker-credential-helpers' `HandleCommand` runs them.
//! Everything here returns text for stdout; `main` only prints it and exits.

use crate::keychain::{Keychain, KeychainError, Stored};
use crate::protocol::{self, Credentials, InputError};
use crate::registry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Store,
    Get,
    Erase,
    List,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "store" => Some(Action::Store),
            "get" => Some(Action::Get),
            "erase" => Some(Action::Erase),
            "list" => Some(Action::List),
            _ => None,
        }
    }
}

/// Name of the internal keychain value that caches the Docker Hub JWT.
pub const HUB_JWT: &str = "hub-jwt";

/// The result of one action: what to print on stdout, and the exit status.
pub struct Outcome {
    pub stdout: String,
    pub code: i32,
    /// For a successful `store`: the credentials that were stored (Hub login follows).
    pub stored: Option<Credentials>,
    /// The keychain the action opened, if any, so follow-up work can reuse the connection.
    pub keychain: Option<Box<dyn Keychain>>,
}

#[derive(Debug)]
enum Failure {
    Input(InputError),
    Keychain(KeychainError),
    NotFound,
}

impl Failure {
    fn line(&self) -> String {
        match self {
            // docker matches these three strings exactly: no prefix.
            Failure::NotFound => protocol::ERR_NOT_FOUND.to_string(),
            Failure::Input(e)
                if e.0 == protocol::ERR_MISSING_SERVER_URL
                    || e.0 == protocol::ERR_MISSING_USERNAME =>
            {
                e.0.clone()
            }
            Failure::Input(e) => format!("{}: {}", protocol::NAME, e),
            Failure::Keychain(e) => format!("{}: {}", protocol::NAME, e),
        }
    }
}

type Opener<'a> = &'a mut dyn FnMut() -> Result<Box<dyn Keychain>, KeychainError>;

/// Run one protocol action on `input` (stdin's bytes). The keychain is opened only
/// after the request is known to be valid, so bad input never touches it.
pub fn run(action: Action, input: &[u8], open: Opener) -> Outcome {
    let mut stored = None;
    let mut keychain: Option<Box<dyn Keychain>> = None;
    let result = match action {
        Action::Store => protocol::parse_store(input)
            .map_err(Failure::Input)
            .and_then(|creds| {
                store(opened(&mut keychain, open)?, &creds)?;
                stored = Some(creds);
                Ok(String::new())
            }),
        Action::Get => protocol::parse_server_url(input)
            .map_err(Failure::Input)
            .and_then(|url| get(opened(&mut keychain, open)?, &url)),
        Action::Erase => protocol::parse_server_url(input)
            .map_err(Failure::Input)
            .and_then(|url| erase(opened(&mut keychain, open)?, &url)),
        // `list` ignores stdin: docker writes "unused" there.
        Action::List => opened(&mut keychain, open).and_then(|kc| {
            kc.list()
                .map(|m| protocol::encode_list(&m))
                .map_err(Failure::Keychain)
        }),
    };
    match result {
        Ok(stdout) => Outcome {
            stdout,
            code: 0,
            stored,
            keychain,
        },
        Err(f) => {
            let mut line = f.line();
            line.push('\n');
            Outcome {
                stdout: line,
                code: 1,
                stored: None,
                keychain,
            }
        }
    }
}

/// A session bus connection opened for the fast `get` before the request is read (see
/// `keychain::fast_get`).
#[cfg(target_os = "linux")]
pub type EarlyBus = crate::keychain::fast_get::Connected;
#[cfg(not(target_os = "linux"))]
pub enum EarlyBus {}

/// Open the fast `get`'s bus connection, for callers that may use the Secret Service.
pub fn connect_early() -> Option<EarlyBus> {
    #[cfg(target_os = "linux")]
    return crate::keychain::fast_get::connect();
    #[cfg(not(target_os = "linux"))]
    return None;
}

/// `get` through the Secret Service fast path (see `keychain::fast_get`), on a connection from
/// [connect_early]: `None` when that path cannot answer, and the caller runs the normal one.
#[cfg(target_os = "linux")]
pub fn fast_get(input: &[u8], bus: EarlyBus) -> Option<Outcome> {
    use crate::keychain::fast_get::FastGet;
    let url = protocol::parse_server_url(input).ok()?;
    let keys = registry::lookup_keys(&url);
    let (stdout, code) = match bus.get(&crate::keychain::service_name(), &keys)? {
        // Undecodable: the normal path reports it.
        FastGet::Found(bytes) => {
            let found = crate::keychain::Stored::decode(bytes.expose()).ok()?;
            (
                protocol::encode_get(&url, &found.username, &found.secret),
                0,
            )
        }
        FastGet::NotFound => (format!("{}\n", protocol::ERR_NOT_FOUND), 1),
    };
    Some(Outcome {
        stdout,
        code,
        stored: None,
        keychain: None,
    })
}

#[cfg(not(target_os = "linux"))]
pub fn fast_get(_input: &[u8], bus: EarlyBus) -> Option<Outcome> {
    match bus {}
}

fn opened<'k>(
    slot: &'k mut Option<Box<dyn Keychain>>,
    open: Opener,
) -> Result<&'k dyn Keychain, Failure> {
    let kc = open().map_err(Failure::Keychain)?;
    Ok(&**slot.insert(kc))
}

fn store(kc: &dyn Keychain, creds: &Credentials) -> Result<(), Failure> {
    let value = Stored {
        username: creds.username.clone(),
        secret: creds.secret.clone(),
    };
    kc.store(&creds.server_url, &value)
        .map_err(Failure::Keychain)?;
    // New Hub credentials make any cached JWT stale (it may belong to another account).
    if registry::is_hub_alias(&creds.server_url) {
        kc.erase_internal(HUB_JWT).map_err(Failure::Keychain)?;
    }
    Ok(())
}

fn get(kc: &dyn Keychain, url: &str) -> Result<String, Failure> {
    for key in registry::lookup_keys(url) {
        if let Some(found) = kc.get(key).map_err(Failure::Keychain)? {
            return Ok(protocol::encode_get(url, &found.username, &found.secret));
        }
    }
    Err(Failure::NotFound)
}

fn erase(kc: &dyn Keychain, url: &str) -> Result<String, Failure> {
    kc.erase(url).map_err(Failure::Keychain)?;
    if registry::is_hub_alias(url) {
        kc.erase_internal(HUB_JWT).map_err(Failure::Keychain)?;
    }
    Ok(String::new())
}
