//! Placeholder: the keyring session support lands here.
