//! One Credential Manager credential's blob and UserName, written in one `CredWriteW` and read
//! in one `CredReadW`.
//!
//! windows-native-keyring-store sets them in two writes (`set_secret` keeps the old UserName,
//! then `update_attributes` rewrites it) and reads them in two, so a reader could pair one
//! write's secret with another's username, and a store killed between its writes would leave
//! such a pair for good. The smallest fix is here; the proposal is in docs/upstream.md. The
//! credential is written as the store crate writes it (generic, enterprise persistence, empty
//! comment and alias), so either can read what the other wrote.

use windows_sys::Win32::Foundation::{ERROR_NOT_FOUND, FILETIME, GetLastError};
use windows_sys::Win32::Security::Credentials::{
    CRED_PERSIST_ENTERPRISE, CRED_TYPE_GENERIC, CREDENTIALW, CredFree, CredReadW, CredWriteW,
};
use zeroize::Zeroize;

use super::native_names::WindowsError;
use super::{KeychainError, Result};
use crate::secret::Secret;

/// `ERROR_NO_SUCH_LOGON_SESSION`.
const NO_LOGON_SESSION: u32 = 1312;

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// A Credential Manager error code as the keychain reports it.
pub fn failure(code: u32) -> KeychainError {
    let cause = std::io::Error::from_raw_os_error(code as i32).to_string();
    if code == NO_LOGON_SESSION {
        WindowsError::NoLogonSession { cause }.into()
    } else {
        WindowsError::Failed { cause }.into()
    }
}

/// Write `target`'s blob and UserName together. `ERROR_NOT_FOUND` is the caller's to explain
/// (Wine refuses long target names that way).
pub fn write(target: &str, user: &str, blob: &[u8]) -> std::result::Result<(), u32> {
    let mut target = wide(target);
    let mut user = wide(user);
    let (mut comment, mut alias) = (wide(""), wide(""));
    let mut blob = blob.to_vec();
    let credential = CREDENTIALW {
        Flags: 0,
        Type: CRED_TYPE_GENERIC,
        TargetName: target.as_mut_ptr(),
        Comment: comment.as_mut_ptr(),
        LastWritten: FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        },
        CredentialBlobSize: blob.len() as u32,
        CredentialBlob: blob.as_mut_ptr(),
        Persist: CRED_PERSIST_ENTERPRISE,
        AttributeCount: 0,
        Attributes: std::ptr::null_mut(),
        TargetAlias: alias.as_mut_ptr(),
        UserName: user.as_mut_ptr(),
    };
    // SAFETY: every pointer in `credential` points into a buffer that outlives the call.
    let ok = unsafe { CredWriteW(&credential, 0) } != 0;
    let code = if ok { 0 } else { unsafe { GetLastError() } };
    blob.zeroize();
    if ok { Ok(()) } else { Err(code) }
}

/// `target`'s blob and UserName from one read; `None` when there is no such credential.
pub fn read(target: &str) -> Result<Option<(Secret<Vec<u8>>, String)>> {
    let target = wide(target);
    let mut found: *mut CREDENTIALW = std::ptr::null_mut();
    // SAFETY: `target` is NUL-terminated; on success `found` is freed with CredFree below.
    if unsafe { CredReadW(target.as_ptr(), CRED_TYPE_GENERIC, 0, &mut found) } == 0 {
        let code = unsafe { GetLastError() };
        return if code == ERROR_NOT_FOUND {
            Ok(None)
        } else {
            Err(failure(code))
        };
    }
    // SAFETY: CredReadW returned a valid CREDENTIALW. Wine's may be unaligned, so it is read
    // unaligned, and its strings and blob are copied before CredFree.
    let cred = unsafe { std::ptr::read_unaligned(found) };
    let blob = if cred.CredentialBlob.is_null() || cred.CredentialBlobSize == 0 {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(cred.CredentialBlob, cred.CredentialBlobSize as usize) }
            .to_vec()
    };
    let user = if cred.UserName.is_null() {
        String::new()
    } else {
        let mut len = 0;
        while unsafe { std::ptr::read_unaligned(cred.UserName.add(len)) } != 0 {
            len += 1;
        }
        let units: Vec<u16> = (0..len)
            .map(|i| unsafe { std::ptr::read_unaligned(cred.UserName.add(i)) })
            .collect();
        String::from_utf16_lossy(&units)
    };
    unsafe { CredFree(found.cast()) };
    Ok(Some((Secret::new(blob), user)))
}
