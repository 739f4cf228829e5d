//! Who may write to a group-writable path. With user private groups (Debian's default for
//! accounts made by `adduser`), every user has a group of their own name, and a umask of
//! 002 makes their directories group-writable by that group alone. Such a directory is as
//! private as a 0755 one; a group shared with other users is not.

use std::ffi::CStr;

/// The name and primary group of `uid`.
fn passwd(uid: u32) -> Option<(Vec<u8>, u32)> {
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill in.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, and the buffer outlives the reads below.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so pw_name points at a NUL-terminated string in `buf`.
    let name = unsafe { CStr::from_ptr(pwd.pw_name) }.to_bytes().to_vec();
    Some((name, pwd.pw_gid))
}

/// A user's name for messages: `alice (uid 1000)`, or `uid 1000` when it has none.
pub fn user_name(uid: u32) -> String {
    match passwd(uid) {
        Some((name, _)) => format!("{} (uid {uid})", String::from_utf8_lossy(&name)),
        None => format!("uid {uid}"),
    }
}

/// The name and the listed members of group `gid`.
fn group(gid: u32) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: an all-zero group is a valid value for getgrgid_r to fill in.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, and the buffer outlives the reads below.
    let rc = unsafe {
        libc::getgrgid_r(
            gid,
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() || grp.gr_name.is_null() {
        return None;
    }
    // SAFETY: getgrgid_r succeeded: gr_name is a NUL-terminated string in `buf`, and
    // gr_mem a NULL-terminated array of such strings.
    let name = unsafe { CStr::from_ptr(grp.gr_name) }.to_bytes().to_vec();
    let mut members = Vec::new();
    if !grp.gr_mem.is_null() {
        let mut i = 0;
        loop {
            // SAFETY: see above; the array ends with a null pointer.
            let member = unsafe { *grp.gr_mem.add(i) };
            if member.is_null() {
                break;
            }
            // SAFETY: a non-null entry is a NUL-terminated string in `buf`.
            members.push(unsafe { CStr::from_ptr(member) }.to_bytes().to_vec());
            i += 1;
        }
    }
    Some((name, members))
}

/// Whether `gid` is the personal group of `uid`: the user's primary group, of the same
/// name, listing nobody else.
pub(super) fn personal_group(uid: u32, gid: u32) -> bool {
    let Some((user, primary)) = passwd(uid) else {
        return false;
    };
    if primary != gid {
        return false;
    }
    let Some((name, members)) = group(gid) else {
        return false;
    };
    name == user && members.iter().all(|m| *m == user)
}
