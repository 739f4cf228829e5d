//! The `dpapi` backend (Windows): one file per credential under
//! `%LOCALAPPDATA%\docker-credential-hub\dpapi\`, encrypted with `CryptProtectData` for the
//! current Windows user (user scope, no UI), as git-credential-manager's `dpapi` store does.
//! It works where the Credential Manager cannot persist anything: network and SSH logon
//! sessions (`ERROR_NO_SUCH_LOGON_SESSION`).
//!
//! - The `dpapi` directory is created with a protected DACL granting the current user full
//!   control and nobody else anything; everything below inherits it.
//! - One subdirectory per keychain service, one file per key. Both are named by SHA-256 of
//!   the name (hex, so distinct on a case-insensitive file system, and of fixed length
//!   whatever the URL): no secret, and no URL, in a file name.
//! - A file holds the encrypted payload, which carries the server URL (for `list`); a file
//!   whose URL is not the one asked for is not served.
//! - Writes are atomic ([crate::fs::replace]: temp file, rename), waiting a moment for a
//!   reader that has the file open; reads never follow a reparse point (symlink or
//!   junction) and are capped.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ALREADY_EXISTS, ERROR_SHARING_VIOLATION, GetLastError, HANDLE, HLOCAL,
    LocalFree,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::Cryptography::{
    CRYPT_INTEGER_BLOB, CRYPTPROTECT_UI_FORBIDDEN, CryptProtectData, CryptUnprotectData,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER,
    TokenUser,
};
use windows_sys::Win32::Storage::FileSystem::{CreateDirectoryW, FILE_FLAG_OPEN_REPARSE_POINT};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};
use zeroize::Zeroize;

use super::{Backend, Keychain, KeychainError, Kind, Opened, Result, Stored, internal_service};
use crate::NAME;
use crate::deadline::Deadline;
use crate::secret::Secret;

const BACKEND: Backend = Backend::Dpapi;
/// Optional entropy: a program of the user's that calls CryptUnprotectData on our files
/// without it gets nothing.
const ENTROPY: &[u8] = b"docker-credential-hub dpapi v1";
/// Far more than a payload of the largest request (1 MiB) encrypts to.
const MAX_FILE: u64 = 4 * 1024 * 1024;

/// What went wrong with the dpapi store.
#[derive(Debug, thiserror::Error)]
pub enum DpapiError {
    #[error("the {BACKEND} failed ({cause})")]
    Failed { cause: String },
}

impl From<DpapiError> for KeychainError {
    fn from(e: DpapiError) -> KeychainError {
        KeychainError::new(BACKEND, Kind::Failed, e)
    }
}

/// One view of the store: the files of one service name.
pub struct Dpapi {
    root: PathBuf,
    dir: PathBuf,
    deadline: Deadline,
}

fn failed(cause: impl Into<String>) -> KeychainError {
    DpapiError::Failed {
        cause: cause.into(),
    }
    .into()
}

fn io_failed(what: &str, path: &Path, e: &std::io::Error) -> KeychainError {
    failed(format!("cannot {what} {}: {e}", crate::fs::display(path)))
}

/// Lower-case hex of SHA-256.
fn hashed(name: &str) -> String {
    Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn is_entry_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn last_error() -> u32 {
    // SAFETY: GetLastError reads the calling thread's last-error value and nothing else.
    unsafe { GetLastError() }
}

/// Encrypt for the current user, with no UI.
fn protect(plain: &[u8]) -> Result<Vec<u8>> {
    let input = CRYPT_INTEGER_BLOB {
        cbData: plain.len() as u32,
        pbData: plain.as_ptr().cast_mut(),
    };
    let entropy = CRYPT_INTEGER_BLOB {
        cbData: ENTROPY.len() as u32,
        pbData: ENTROPY.as_ptr().cast_mut(),
    };
    let description = wide(NAME);
    let mut out = CRYPT_INTEGER_BLOB::default();
    // SAFETY: the input blobs point at live buffers of the lengths given, which
    // CryptProtectData only reads; the description is NUL-terminated; `out` receives a
    // LocalAlloc'd buffer that is copied and freed below.
    let ok = unsafe {
        CryptProtectData(
            &input,
            description.as_ptr(),
            &entropy,
            std::ptr::null(),
            std::ptr::null(),
            CRYPTPROTECT_UI_FORBIDDEN,
            &mut out,
        )
    };
    if ok == 0 {
        return Err(failed(format!(
            "CryptProtectData failed with Windows error {}",
            last_error()
        )));
    }
    // SAFETY: on success `out` describes a buffer of cbData bytes owned by us.
    let bytes = unsafe { std::slice::from_raw_parts(out.pbData, out.cbData as usize) }.to_vec();
    // SAFETY: the buffer was allocated by CryptProtectData with LocalAlloc.
    unsafe { LocalFree(out.pbData as HLOCAL) };
    Ok(bytes)
}

/// Decrypt a file's content; `path` is for the message.
fn unprotect(blob: &[u8], path: &Path) -> Result<Secret<Vec<u8>>> {
    let input = CRYPT_INTEGER_BLOB {
        cbData: blob.len() as u32,
        pbData: blob.as_ptr().cast_mut(),
    };
    let entropy = CRYPT_INTEGER_BLOB {
        cbData: ENTROPY.len() as u32,
        pbData: ENTROPY.as_ptr().cast_mut(),
    };
    let mut out = CRYPT_INTEGER_BLOB::default();
    // SAFETY: as in `protect`; no description is asked for.
    let ok = unsafe {
        CryptUnprotectData(
            &input,
            std::ptr::null_mut(),
            &entropy,
            std::ptr::null(),
            std::ptr::null(),
            CRYPTPROTECT_UI_FORBIDDEN,
            &mut out,
        )
    };
    if ok == 0 {
        return Err(failed(format!(
            "cannot decrypt {} (Windows error {}): it was written for another Windows account or machine, or an administrator reset your password; erase it and store the credential again",
            crate::fs::display(path),
            last_error()
        )));
    }
    // SAFETY: on success `out` describes a buffer of cbData bytes owned by us; it is
    // copied, wiped and freed.
    let plain = unsafe {
        let slice = std::slice::from_raw_parts_mut(out.pbData, out.cbData as usize);
        let copy = slice.to_vec();
        slice.zeroize();
        LocalFree(out.pbData as HLOCAL);
        copy
    };
    Ok(Secret::new(plain))
}

/// The current user's SID, as text (`S-1-5-21-…`).
fn user_sid() -> std::io::Result<String> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo-handle of the current process needs no closing; `token` receives
    // a handle closed below.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    let result = (|| {
        let mut len = 0u32;
        // SAFETY: a size query: no buffer, `len` receives the size needed.
        unsafe { GetTokenInformation(token, TokenUser, std::ptr::null_mut(), 0, &mut len) };
        // u64s, so that the TOKEN_USER at its start is aligned.
        let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
        // SAFETY: `buf` holds at least `len` bytes.
        let ok = unsafe {
            GetTokenInformation(token, TokenUser, buf.as_mut_ptr().cast(), len, &mut len)
        };
        if ok == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: GetTokenInformation wrote a TOKEN_USER at the start of the aligned buffer;
        // its SID points into the same buffer, which outlives this use.
        let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
        let mut text: windows_sys::core::PWSTR = std::ptr::null_mut();
        // SAFETY: `sid` is valid (above); `text` receives a LocalAlloc'd NUL-terminated string.
        if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `text` is NUL-terminated; it is read up to the NUL, then freed.
        let sid = unsafe {
            let len = (0..).take_while(|&i| *text.add(i) != 0).count();
            let s = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
            LocalFree(text as HLOCAL);
            s
        };
        Ok(sid)
    })();
    // SAFETY: `token` was opened above and is closed once.
    unsafe { CloseHandle(token) };
    result
}

/// Create `dir` with a protected DACL that grants the current user full control, inherited
/// by everything created inside, and nothing to anyone else. An existing directory is left
/// as it is.
fn create_private_root(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let sddl = wide(&format!("D:P(A;OICI;FA;;;{})", user_sid()?));
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: `sddl` is NUL-terminated; `sd` receives a LocalAlloc'd descriptor freed below.
    let ok = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            sddl.as_ptr(),
            SDDL_REVISION_1,
            &mut sd,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(std::io::Error::last_os_error());
    }
    let attributes = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd,
        bInheritHandle: 0,
    };
    let path = wide(&dir.to_string_lossy());
    // SAFETY: `path` is NUL-terminated and `attributes` points at a valid descriptor.
    let created = unsafe { CreateDirectoryW(path.as_ptr(), &attributes) };
    let error = std::io::Error::last_os_error();
    // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
    unsafe { LocalFree(sd as HLOCAL) };
    if created == 0 && error.raw_os_error() != Some(ERROR_ALREADY_EXISTS as i32) {
        return Err(error);
    }
    Ok(())
}

/// How long a replace or delete waits for readers to close the file.
const IN_USE_WAIT: Duration = Duration::from_secs(3);

/// Run `op` again while Windows refuses it because another process has the file open (a
/// `get` reading it): replacing or deleting an open file fails with access denied or a
/// sharing violation where the file system or Windows version (and Wine) lacks POSIX rename
/// semantics. Readers hold a file for a moment, so this waits a little, within the deadline.
fn while_in_use<T>(
    deadline: &Deadline,
    mut op: impl FnMut() -> std::io::Result<T>,
) -> std::io::Result<T> {
    let pause = Duration::from_millis(5);
    let until = Instant::now() + IN_USE_WAIT.min(deadline.remaining());
    loop {
        match op() {
            Err(e)
                if (e.kind() == std::io::ErrorKind::PermissionDenied
                    || e.raw_os_error() == Some(ERROR_SHARING_VIOLATION as i32))
                    && Instant::now() + pause < until =>
            {
                std::thread::sleep(pause);
            }
            other => return other,
        }
    }
}

/// A file's content, without following a reparse point, capped; `None` when absent.
fn read_file(path: &Path, deadline: &Deadline) -> Result<Option<Vec<u8>>> {
    use std::os::windows::fs::OpenOptionsExt;
    // A file being replaced or deleted cannot be opened for a moment.
    let opened = while_in_use(deadline, || {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
            .open(path)
    });
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_failed("read", path, &e)),
    };
    let meta = file.metadata().map_err(|e| io_failed("read", path, &e))?;
    if !meta.is_file() || meta.file_type().is_symlink() {
        return Err(failed(format!(
            "{} is not a regular file, and {NAME} does not follow links; remove it and store the credential again",
            crate::fs::display(path)
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_failed("read", path, &e))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(failed(format!(
            "{} is larger than any credential; remove it",
            crate::fs::display(path)
        )));
    }
    Ok(Some(bytes))
}

impl Dpapi {
    /// The credentials and the internal service, each a directory of the one store.
    pub fn open(service: &str, deadline: &Deadline) -> Result<Opened> {
        let local = std::env::var_os("LOCALAPPDATA")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .ok_or_else(|| {
                failed("LOCALAPPDATA is not set, so the store has no directory; set it to your local application data folder (normally %USERPROFILE%\\AppData\\Local)")
            })?;
        let root = local.join(NAME).join("dpapi");
        let view = |service: &str| Dpapi {
            dir: root.join(&hashed(service)[..32]),
            root: root.clone(),
            deadline: deadline.clone(),
        };
        Ok(Opened {
            creds: Box::new(view(service)),
            internal: Box::new(view(&internal_service(service))),
        })
    }

    fn read(&self, dir: &Path, key: &str) -> Result<Option<Stored>> {
        let path = dir.join(hashed(key));
        let Some(blob) = read_file(&path, &self.deadline)? else {
            return Ok(None);
        };
        let plain = unprotect(&blob, &path)?;
        match Stored::decode_with_url(plain.expose()) {
            Ok((stored, Some(url))) if url == key => Ok(Some(stored)),
            _ => Err(KeychainError::corrupt(BACKEND)),
        }
    }

    fn write(&self, dir: &Path, key: &str, stored: &Stored) -> Result<()> {
        let blob = protect(stored.encode_for(key).expose())?;
        create_private_root(&self.root).map_err(|e| io_failed("create", &self.root, &e))?;
        std::fs::create_dir_all(dir).map_err(|e| io_failed("create", dir, &e))?;
        let path = dir.join(hashed(key));
        while_in_use(&self.deadline, || crate::fs::replace(&path, &blob))
            .map_err(|e| io_failed("write", &path, &e))
    }

    fn remove(&self, dir: &Path, key: &str) -> Result<bool> {
        let path = dir.join(hashed(key));
        match while_in_use(&self.deadline, || std::fs::remove_file(&path)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_failed("remove", &path, &e)),
        }
    }
}

impl Keychain for Dpapi {
    fn store(&self, server_url: &str, cred: &Stored) -> Result<()> {
        self.write(&self.dir, server_url, cred)
    }

    fn get(&self, server_url: &str) -> Result<Option<Stored>> {
        self.read(&self.dir, server_url)
    }

    fn erase(&self, server_url: &str) -> Result<bool> {
        self.remove(&self.dir, server_url)
    }

    fn list(&self) -> Result<BTreeMap<String, String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(io_failed("list", &self.dir, &e)),
        };
        let mut out = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_failed("list", &self.dir, &e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Temp files of a write in progress, and anything not ours.
            if !is_entry_name(&name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let path = entry.path();
            let Some(blob) = read_file(&path, &self.deadline)? else {
                continue;
            };
            // One unreadable file must not hide every other credential from docker.
            let decoded = unprotect(&blob, &path).and_then(|p| {
                Stored::decode_with_url(p.expose()).map_err(|_| KeychainError::corrupt(BACKEND))
            });
            match decoded {
                Ok((stored, Some(url))) if hashed(&url) == name => {
                    out.insert(url, stored.username);
                }
                Ok(_) => crate::trace!("{} does not hold its own key; skipped", path.display()),
                Err(e) => crate::trace!("{e}; skipped"),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_fixed_length_lower_case_hashes() {
        let a = hashed("https://Registry.example");
        let b = hashed("https://registry.example");
        assert!(is_entry_name(&a) && is_entry_name(&b));
        assert!(!a.eq_ignore_ascii_case(&b));
        assert_eq!(a, a.to_ascii_lowercase());
        assert!(!is_entry_name(&format!(".{a}.tmp-1-2-3")));
    }

    #[test]
    fn a_value_round_trips_through_dpapi_and_the_ciphertext_hides_it() {
        let plain = b"dpapi-unit-canary-7c1e";
        let blob = protect(plain).unwrap();
        assert!(!blob.windows(plain.len()).any(|w| w == plain));
        let back = unprotect(&blob, Path::new("x")).unwrap();
        assert_eq!(back.expose(), plain);
    }
}
