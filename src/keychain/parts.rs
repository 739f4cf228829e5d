//! Values larger than one keychain item holds (a kernel key's 32767 bytes, a Credential
//! Manager blob's 2560): the value is split into parts, and the item itself holds a small
//! manifest, `dch-parts:<generation>:<count>`, naming them. The pure logic lives here, once,
//! for every backend that splits; the backends only say how to read, write and delete one
//! item or part.
//!
//! No reader ever sees a value made of two writes:
//! - a writer writes the parts first, under names that carry a generation no other write
//!   uses, then the manifest, and only then deletes the old generation's parts;
//! - a generation's parts are written once and never changed, only deleted;
//! - a reader reads the manifest, then the parts it names. A missing part means a writer
//!   replaced the value meanwhile and deleted them: it starts over from the manifest.
//!
//! A write interrupted before its manifest leaves the old value in place, and parts no
//! manifest names (the Credential Manager backend deletes those with its next write or erase
//! of the key; kernel keys vanish at reboot). A value that merely starts like a manifest is
//! always split, so a stored value is never misread as one.

use crate::secret::Secret;

/// What a manifest starts with. Payloads the helper writes start with `{`.
pub const PREFIX: &str = "dch-parts:";

/// More parts than any value the protocol accepts (1 MiB) needs at the smallest part size.
const MAX_PARTS: usize = 4096;

/// The item of a split value: which generation of parts holds it, and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub generation: String,
    pub count: usize,
}

impl Manifest {
    /// A manifest for `count` parts under a generation no other write uses.
    pub fn new(count: usize) -> Manifest {
        Manifest {
            generation: unique_generation(),
            count,
        }
    }

    pub fn encode(&self) -> String {
        format!("{PREFIX}{}:{}", self.generation, self.count)
    }

    /// The manifest an item holds; `None` for any value that is not exactly one.
    pub fn parse(value: &[u8]) -> Option<Manifest> {
        let text = std::str::from_utf8(value).ok()?.strip_prefix(PREFIX)?;
        let (generation, count) = text.split_once(':')?;
        let valid_generation = !generation.is_empty()
            && generation.len() <= 64
            && generation
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let count: usize = count.parse().ok()?;
        (valid_generation && (1..=MAX_PARTS).contains(&count)).then(|| Manifest {
            generation: generation.to_string(),
            count,
        })
    }
}

/// Whether `value` must be split: longer than one item holds, or looking like a manifest.
pub fn must_split(value: &[u8], max: usize) -> bool {
    value.len() > max || value.starts_with(PREFIX.as_bytes())
}

/// A generation name no other write uses: time, process and a per-process counter, in
/// lower-case hex (Credential Manager compares names ignoring case).
pub fn unique_generation() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{nanos:x}-{:x}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Write `value` split into parts of at most `part_size` bytes, then the manifest into the
/// item. On failure the parts written so far are deleted and the item is left as it was.
/// Returns the manifest written; deleting the previous generation is the caller's.
pub fn write_split<E>(
    value: &[u8],
    part_size: usize,
    mut write_part: impl FnMut(&Manifest, usize, &[u8]) -> Result<(), E>,
    mut delete_part: impl FnMut(&Manifest, usize),
    write_item: impl FnOnce(&[u8]) -> Result<(), E>,
) -> Result<Manifest, E> {
    let manifest = Manifest::new(value.len().div_ceil(part_size).max(1));
    let parts: Vec<&[u8]> = if value.is_empty() {
        vec![&[]]
    } else {
        value.chunks(part_size).collect()
    };
    for (i, part) in parts.iter().enumerate() {
        if let Err(e) = write_part(&manifest, i, part) {
            (0..=i).for_each(|j| delete_part(&manifest, j));
            return Err(e);
        }
    }
    if let Err(e) = write_item(manifest.encode().as_bytes()) {
        (0..manifest.count).for_each(|j| delete_part(&manifest, j));
        return Err(e);
    }
    Ok(manifest)
}

/// What reading an item (and its parts) found.
pub enum Read {
    Absent,
    /// The item held the value itself.
    Whole(Secret<Vec<u8>>),
    /// The item held a manifest; these are its parts, joined.
    Joined(Secret<Vec<u8>>),
    /// Writers replaced the value every time it was read, until `again` said to stop.
    KeptChanging,
}

/// Read an item written by a backend that splits: the item, and when it holds a manifest,
/// the parts it names. When a part is missing, `again(attempt)` decides whether to start
/// over (it may pause first).
pub fn read<E>(
    mut read_item: impl FnMut() -> Result<Option<Secret<Vec<u8>>>, E>,
    mut read_part: impl FnMut(&Manifest, usize) -> Result<Option<Secret<Vec<u8>>>, E>,
    mut again: impl FnMut(u32) -> bool,
) -> Result<Read, E> {
    let mut attempt = 0;
    loop {
        let Some(item) = read_item()? else {
            return Ok(Read::Absent);
        };
        let Some(manifest) = Manifest::parse(item.expose()) else {
            return Ok(Read::Whole(item));
        };
        let mut whole = Secret::new(Vec::new());
        let mut complete = true;
        for i in 0..manifest.count {
            match read_part(&manifest, i)? {
                Some(part) => whole.expose_mut().extend_from_slice(part.expose()),
                None => {
                    complete = false;
                    break;
                }
            }
        }
        if complete {
            return Ok(Read::Joined(whole));
        }
        attempt += 1;
        if !again(attempt) {
            return Ok(Read::KeptChanging);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    #[test]
    fn manifests_round_trip_and_nothing_else_parses_as_one() {
        let m = Manifest::new(3);
        assert_eq!(Manifest::parse(m.encode().as_bytes()), Some(m.clone()));
        assert_ne!(Manifest::new(3).generation, m.generation);
        for not in [
            &b"{\"Username\":\"u\",\"Secret\":\"s\"}"[..],
            b"dch-parts:",
            b"dch-parts:abc",
            b"dch-parts:abc:0",
            b"dch-parts:abc:x",
            b"dch-parts:abc:99999",
            b"dch-parts:ABC:2",
            b"dch-parts::2",
            b"dch-parts:a b:2",
            b"\xffdch-parts:abc:2",
        ] {
            assert_eq!(
                Manifest::parse(not),
                None,
                "{}",
                String::from_utf8_lossy(not)
            );
        }
    }

    #[test]
    fn a_value_that_looks_like_a_manifest_is_split_whatever_its_size() {
        assert!(!must_split(b"short", 10));
        assert!(must_split(&[b'x'; 11], 10));
        assert!(!must_split(&[b'x'; 10], 10));
        assert!(must_split(b"dch-parts:abc:2", 100));
    }

    /// An in-memory store of items and parts, as a backend sees it.
    #[derive(Default)]
    struct Store {
        item: RefCell<Option<Vec<u8>>>,
        parts: RefCell<BTreeMap<(String, usize), Vec<u8>>>,
    }

    impl Store {
        fn write(&self, value: &[u8], part_size: usize) -> Result<Manifest, &'static str> {
            write_split(
                value,
                part_size,
                |m, i, p| {
                    self.parts
                        .borrow_mut()
                        .insert((m.generation.clone(), i), p.to_vec());
                    Ok(())
                },
                |m, i| {
                    self.parts.borrow_mut().remove(&(m.generation.clone(), i));
                },
                |head| {
                    *self.item.borrow_mut() = Some(head.to_vec());
                    Ok(())
                },
            )
        }

        fn drop_generation(&self, m: &Manifest) {
            self.parts
                .borrow_mut()
                .retain(|(g, _), _| g != &m.generation);
        }

        fn read(&self, again: impl FnMut(u32) -> bool) -> Read {
            read::<()>(
                || Ok(self.item.borrow().clone().map(Secret::new)),
                |m, i| {
                    Ok(self
                        .parts
                        .borrow()
                        .get(&(m.generation.clone(), i))
                        .cloned()
                        .map(Secret::new))
                },
                again,
            )
            .unwrap()
        }
    }

    fn joined(r: Read) -> Vec<u8> {
        match r {
            Read::Joined(v) => v.expose().clone(),
            _ => panic!("not a joined value"),
        }
    }

    #[test]
    fn a_split_value_reads_back_exactly_with_parts_no_larger_than_the_limit() {
        let store = Store::default();
        let value: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let m = store.write(&value, 2560).unwrap();
        assert_eq!(m.count, 4);
        assert!(store.parts.borrow().values().all(|p| p.len() <= 2560));
        assert_eq!(joined(store.read(|_| false)), value);
        let empty = Store::default();
        empty.write(b"", 2560).unwrap();
        assert_eq!(joined(empty.read(|_| false)), b"");
    }

    #[test]
    fn a_reader_racing_a_writer_starts_over_and_never_mixes_two_values() {
        let store = Store::default();
        let (a, b) = (vec![b'a'; 6000], vec![b'b'; 6000]);
        let old = store.write(&a, 2560).unwrap();
        // The reader has read the manifest of `a` and its first part when a writer
        // replaces the value and deletes `a`'s parts.
        let reads = RefCell::new(0);
        let result = read::<()>(
            || Ok(store.item.borrow().clone().map(Secret::new)),
            |m, i| {
                *reads.borrow_mut() += 1;
                if *reads.borrow() == 2 {
                    store.write(&b, 2560).unwrap();
                    store.drop_generation(&old);
                }
                Ok(store
                    .parts
                    .borrow()
                    .get(&(m.generation.clone(), i))
                    .cloned()
                    .map(Secret::new))
            },
            |attempt| attempt < 3,
        )
        .unwrap();
        assert_eq!(joined(result), b);
    }

    #[test]
    fn a_reader_gives_up_when_told_and_says_so() {
        let store = Store::default();
        let m = store.write(&[7; 6000], 2560).unwrap();
        store.drop_generation(&m);
        let mut asked = Vec::new();
        let r = store.read(|attempt| {
            asked.push(attempt);
            attempt < 3
        });
        assert!(matches!(r, Read::KeptChanging));
        assert_eq!(asked, [1, 2, 3]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_value_and_no_new_part() {
        let store = Store::default();
        store.write(&[1; 3000], 2560).unwrap();
        let before = store.parts.borrow().clone();
        let mut written = 0;
        let err = write_split(
            &[2; 9000],
            2560,
            |m, i, p| {
                written += 1;
                if written == 3 {
                    return Err("full");
                }
                store
                    .parts
                    .borrow_mut()
                    .insert((m.generation.clone(), i), p.to_vec());
                Ok(())
            },
            |m, i| {
                store.parts.borrow_mut().remove(&(m.generation.clone(), i));
            },
            |_| panic!("the manifest must not be written"),
        );
        assert_eq!(err, Err("full"));
        assert_eq!(*store.parts.borrow(), before);
        assert_eq!(joined(store.read(|_| false)), vec![1; 3000]);
    }

    #[test]
    fn a_value_stored_whole_is_read_whole() {
        let store = Store::default();
        *store.item.borrow_mut() = Some(b"{\"Secret\":\"x\"}".to_vec());
        assert!(
            matches!(store.read(|_| false), Read::Whole(v) if v.expose() == b"{\"Secret\":\"x\"}")
        );
        *store.item.borrow_mut() = None;
        assert!(matches!(store.read(|_| false), Read::Absent));
    }
}
