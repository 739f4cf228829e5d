//! Every exact string of the protocol that docker (or a tool speaking the protocol) matches
//! on, in one place (docker/docker-credential-helpers `credentials/error.go`).

/// docker treats exactly this text (modulo surrounding whitespace) as "no credentials".
pub const ERR_NOT_FOUND: &str = "credentials not found in native keychain";
pub const ERR_MISSING_SERVER_URL: &str = "no credentials server URL";
pub const ERR_MISSING_USERNAME: &str = "no credentials username";

/// docker's marker username for an identity token (docker/cli `native_store.go`).
pub const TOKEN_USERNAME: &str = "<token>";

pub const USAGE: &str = "Usage: docker-credential-hub <store|get|erase|list|version|login|logout|token|configure|doctor>";
