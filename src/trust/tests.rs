//! The rule on real files: links, FIFOs, sizes, shared directories, and (when the tests run
//! as root) another user's files.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use super::*;

const OTHER_UID: u32 = 4242;

fn is_root() -> bool {
    crate::fs::euid() == 0
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

const RECORD: Expect = Expect::file("the record");

#[test]
fn a_small_regular_file_of_ours_is_read_and_a_missing_one_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"pass\n").unwrap();
    assert_eq!(
        read_file(&file, RECORD, 1024).unwrap().as_deref(),
        Some(&b"pass\n"[..])
    );
    assert!(
        read_file(&dir.path().join("none"), RECORD, 1024)
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_fifo_a_symlink_and_a_large_file_fail_at_once_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let start = Instant::now();
    let e = read_file(&fifo, RECORD, 1024).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    let text = e.to_string();
    assert!(
        text.contains(&fifo.display().to_string()) && text.contains("a FIFO"),
        "{text}"
    );

    let target = dir.path().join("target");
    std::fs::write(&target, b"pass\n").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let text = read_file(&link, RECORD, 1024).unwrap_err().to_string();
    assert!(
        text.contains(&link.display().to_string()) && text.contains("symlink"),
        "{text}"
    );
    // Expected there: the target is read.
    assert!(read_file(&link, RECORD.link_ok(), 1024).unwrap().is_some());

    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'x'; 1024 * 1024]).unwrap();
    let text = read_file(&big, RECORD, 1024).unwrap_err().to_string();
    assert!(
        text.contains(&big.display().to_string()) && text.contains("larger than 1024 bytes"),
        "{text}"
    );
    for e in [&fifo, &link, &big] {
        let text = read_file(e, RECORD, 1024).unwrap_err().to_string();
        assert!(!text.contains('\n'), "{text}");
    }
}

#[test]
fn a_directory_others_may_write_to_is_refused_but_a_sticky_one_on_the_way_is_fine() {
    let root = tempfile::tempdir().unwrap();
    let shared = root.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("f"), b"x").unwrap();
    chmod(&shared, 0o777);
    let e = check(&shared.join("f"), RECORD).unwrap_err();
    assert_eq!(e.at(), shared);
    assert!(e.to_string().contains("writable by other users"), "{e}");
    assert!(e.to_string().contains("chmod go-w"), "{e}");
    let e = check(&shared, Expect::dir("the dir")).unwrap_err();
    assert!(e.to_string().contains("writable by other users"), "{e}");
    let e = check(&shared, Expect::dir("the dir").private()).unwrap_err();
    assert!(e.to_string().contains("chmod 700"), "{e}");
    // Sticky, like /tmp: each entry stays its owner's.
    chmod(&shared, 0o1777);
    assert!(check(&shared.join("f"), RECORD).unwrap().is_some());
    assert!(place_to_write(&shared.join("new/deeper"), Expect::dir("the dir")).is_ok());
}

#[test]
fn a_leaf_symlink_is_refused_unless_expected_and_then_its_target_is_judged() {
    let root = tempfile::tempdir().unwrap();
    let real = root.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = root.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let e = check(&link, Expect::dir("the store")).unwrap_err();
    assert!(e.to_string().contains("is a symlink"), "{e}");
    assert_eq!(
        check(&link, Expect::dir("the store").link_ok()).unwrap(),
        Some(real.clone())
    );
    // A link on the way (ours) is followed; the file behind it is checked.
    std::fs::write(real.join("f"), b"x").unwrap();
    assert!(check(&link.join("f"), RECORD).unwrap().is_some());
    chmod(&real.join("f"), 0o666);
    assert!(check(&link.join("f"), RECORD).is_err());
}

#[test]
fn create_private_dir_makes_each_component_0700_and_never_writes_through_a_link() {
    let root = tempfile::tempdir().unwrap();
    let deep = root.path().join("a/b/c");
    create_private_dir(&deep, Expect::dir("the dir")).unwrap();
    for d in ["a", "a/b", "a/b/c"] {
        let m = std::fs::symlink_metadata(root.path().join(d)).unwrap();
        assert!(m.is_dir());
        assert_eq!(m.mode() & 0o777, 0o700, "{d}");
    }
    // The directory to create is a link: refused, and nothing is made behind it.
    let elsewhere = tempfile::tempdir().unwrap();
    let link = root.path().join("planted");
    std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
    let e = create_private_dir(&link, Expect::dir("the dir")).unwrap_err();
    assert!(e.to_string().contains("symlink"), "{e}");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

#[test]
fn within_and_tree_follow_no_link_at_all() {
    let root = tempfile::tempdir().unwrap();
    let store = root.path();
    std::fs::create_dir_all(store.join("prefix/entry")).unwrap();
    std::fs::write(store.join("prefix/entry/u.gpg"), b"x").unwrap();
    let e = Expect::file("the entry");
    assert!(check_within(store, Path::new("prefix/entry/u.gpg"), e).unwrap());
    assert!(!check_within(store, Path::new("prefix/none/u.gpg"), e).unwrap());
    assert!(check_tree(&store.join("prefix"), e).is_ok());
    let victim = tempfile::tempdir().unwrap();
    std::fs::write(victim.path().join("keep"), b"x").unwrap();
    std::fs::remove_dir_all(store.join("prefix/entry")).unwrap();
    std::os::unix::fs::symlink(victim.path(), store.join("prefix/entry")).unwrap();
    let err = check_within(store, Path::new("prefix/entry/keep"), e).unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
    let err = check_tree(&store.join("prefix"), e).unwrap_err();
    assert_eq!(err.at(), store.join("prefix/entry"));
}

#[test]
fn another_users_path_names_its_owner_and_says_to_run_it_as_them() {
    if !is_root() {
        eprintln!("SKIP: needs root to hand a file to uid {OTHER_UID}");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("f"), b"x").unwrap();
    std::os::unix::fs::lchown(&home, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    // The file is root's, but the directory it is in is theirs: they could swap it.
    let e = check(&home.join("f"), RECORD).unwrap_err();
    assert!(e.is_foreign());
    assert_eq!(
        e.to_string(),
        format!(
            "the record {} is reached through {}, which belongs to uid {OTHER_UID}, not to root (uid 0); run it as them",
            home.join("f").display(),
            home.display()
        )
    );
    // What is not there cannot mislead: no record, no store.
    assert!(check(&home.join("none"), RECORD).unwrap().is_none());
    assert!(read_file(&home.join("none"), RECORD, 10).unwrap().is_none());
    // Nothing may be created there either.
    let e = place_to_write(&home.join(".docker/config.json"), RECORD).unwrap_err();
    assert!(e.to_string().contains("run it as them"), "{e}");
    let e = create_private_dir(&home.join(".config/x"), Expect::dir("the dir")).unwrap_err();
    assert!(e.is_foreign(), "{e}");
    assert!(!home.join(".config").exists());
    // A link they own is not followed on the way.
    let link = root.path().join("link");
    std::os::unix::fs::symlink(root.path(), &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    let e = check(&link.join("home"), Expect::dir("the dir")).unwrap_err();
    assert_eq!(e.at(), link);
}

#[test]
fn programs_are_found_only_in_trusted_directories() {
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let prog = bin.join("prog");
    std::fs::write(&prog, "#!/bin/sh\n").unwrap();
    chmod(&prog, 0o755);
    assert!(program::usable(&prog));
    chmod(&prog, 0o644);
    assert!(!program::usable(&prog), "not executable");
    chmod(&prog, 0o757);
    assert!(!program::usable(&prog), "writable by others");
    chmod(&prog, 0o755);
    chmod(&bin, 0o777);
    assert!(!program::usable(&prog), "in a directory others write to");
}

/// A configuration file a child would read: one that is missing must stay missing, so the
/// directory it would appear in may be written by nobody else, not even a sticky /tmp.
#[test]
fn a_missing_child_configuration_counts_only_where_nobody_else_can_create_it() {
    let conf = Expect::file("git's configuration").link_ok().root_ok();
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    assert!(child_config(&dir.path().join("git/config"), conf).is_ok());
    chmod(dir.path(), 0o1777);
    let e = child_config(&dir.path().join("git/config"), conf).unwrap_err();
    assert!(e.to_string().contains("writable by other users"), "{e}");
    // An existing file is judged as itself.
    chmod(dir.path(), 0o755);
    std::fs::write(dir.path().join("config"), b"").unwrap();
    assert!(child_config(&dir.path().join("config"), conf).is_ok());
    if is_root() {
        std::os::unix::fs::lchown(dir.path(), Some(OTHER_UID), Some(OTHER_UID)).unwrap();
        let e = child_config(&dir.path().join("git/config"), conf).unwrap_err();
        assert!(e.to_string().contains(&format!("uid {OTHER_UID}")), "{e}");
        std::os::unix::fs::lchown(dir.path(), Some(0), Some(0)).unwrap();
    }
}
