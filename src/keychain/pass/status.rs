//! gpg's machine-readable status lines (`--status-fd=2`, doc/DETAILS): why a decryption or
//! an encryption failed, classified from the keywords rather than from translated text.

use super::PassError;
use crate::child::ChildOutput;

/// The first line of gpg's (or pass's) error output that is not a status line.
pub(super) fn first_line(bytes: &[u8]) -> String {
    crate::text::first_line(bytes, |l| l.starts_with("[GNUPG:]"))
        .unwrap_or_else(|| "no output".into())
}

/// gpg's status lines (doc/DETAILS), `[GNUPG:] KEYWORD ARGS`: the first argument of the
/// lines with `keyword`.
fn status_args(out: &ChildOutput, keyword: &str) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("[GNUPG:] "))
        .filter_map(|r| {
            let mut words = r.split(' ');
            (words.next() == Some(keyword)).then(|| words.next().unwrap_or("").to_string())
        })
        .collect()
}

fn status(out: &ChildOutput, keyword: &str) -> bool {
    !status_args(out, keyword).is_empty()
}

/// NO_SECKEY, or DECRYPTION_FAILED with no key considered: the secret key is not there.
/// DECRYPTION_FAILED for a key gpg found (KEY_CONSIDERED), or a failed public-key decryption
/// (ERROR pkdecrypt_failed): the key is there but locked, and may not ask for its passphrase.
pub(super) fn decrypt_error(entry: &str, out: &ChildOutput) -> PassError {
    let entry = entry.to_string();
    let failed = status(out, "DECRYPTION_FAILED");
    let considered = status(out, "KEY_CONSIDERED");
    if status(out, "NO_SECKEY") || (failed && !considered) {
        PassError::KeyMissing { entry }
    } else if status_args(out, "ERROR")
        .iter()
        .any(|a| a == "pkdecrypt_failed")
        || (failed && considered)
    {
        PassError::Locked { entry }
    } else {
        PassError::Failed {
            action: "show",
            cause: first_line(&out.stderr),
        }
    }
}

/// INV_RECP: the recipient of .gpg-id cannot be used (no public key, or not trusted).
pub(super) fn encrypt_error(out: &ChildOutput) -> PassError {
    if status(out, "INV_RECP") {
        PassError::PublicKeyMissing
    } else {
        PassError::Failed {
            action: "insert",
            cause: first_line(&out.stderr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpg_status_lines_classify_decryption_failures() {
        let out = |stderr: &str| ChildOutput {
            success: false,
            code: Some(2),
            stdout: Default::default(),
            stderr: stderr.as_bytes().to_vec(),
        };
        let missing = out(
            "[GNUPG:] ENC_TO 1234 18 0\n[GNUPG:] NO_SECKEY 1234\ngpg: decryption failed: No secret key\n",
        );
        assert!(matches!(
            decrypt_error("e", &missing),
            PassError::KeyMissing { .. }
        ));
        let locked = out(
            "[GNUPG:] KEY_CONSIDERED ABCD 0\n[GNUPG:] ERROR pkdecrypt_failed 67108949\ngpg: decryption failed: No secret key\n",
        );
        assert!(matches!(
            decrypt_error("e", &locked),
            PassError::Locked { .. }
        ));
        // What gpg 2.2 under pass (--quiet) prints: locked, then missing.
        let locked = out(
            "[GNUPG:] ENC_TO 96 18 0\n[GNUPG:] KEY_CONSIDERED 5370 0\n[GNUPG:] BEGIN_DECRYPTION\n[GNUPG:] DECRYPTION_FAILED\ngpg: decryption failed: No secret key\n[GNUPG:] END_DECRYPTION\n",
        );
        assert!(matches!(
            decrypt_error("e", &locked),
            PassError::Locked { .. }
        ));
        let missing = out(
            "[GNUPG:] ENC_TO 05 18 0\n[GNUPG:] BEGIN_DECRYPTION\n[GNUPG:] DECRYPTION_FAILED\ngpg: decryption failed: No secret key\n[GNUPG:] END_DECRYPTION\n",
        );
        assert!(matches!(
            decrypt_error("e", &missing),
            PassError::KeyMissing { .. }
        ));
        let other = out("gpg: no valid OpenPGP data found.\n");
        assert!(matches!(
            decrypt_error("e", &other),
            PassError::Failed { .. }
        ));
        let no_pub =
            out("[GNUPG:] INV_RECP 0 ABCD\ngpg: [stdin]: encryption failed: No public key\n");
        assert!(matches!(
            encrypt_error(&no_pub),
            PassError::PublicKeyMissing
        ));
    }
}
