//! The index of the backends whose `list` would otherwise read every item (the Secret
//! Service: one GetSecrets of every secret; kernel keyutils: it has no search at all; the
//! macOS Keychain: a possible access prompt per item): server URL → username, and for a
//! backend whose items have a handle (the Secret Service's object path) the item's. It is
//! one item of the backend, under the internal service name, read and written whole.
//!
//! - `store` and `erase` update it under a cross-process file lock, after (`erase`) or
//!   around (`store`) their own item write.
//! - `list` believes an entry only while the store still holds its item, so a process
//!   killed between its two writes can never make docker `get` a key that is not there.
//! - A backend that can enumerate its items reads those no entry names (a store killed
//!   before its index write). Before it replaces an item it drops an entry that names
//!   another username: the replaced item keeps its handle, and the stale username would be
//!   believed if the store were killed before its index write. A backend that cannot
//!   enumerate (keyutils) would lose sight of an item without an entry, so there a new item
//!   whose entry cannot be written is taken back instead.
//! - A damaged index only costs speed: it reads as empty.
//!
//! Its encoding is the one the backends wrote before it was shared: `{"<url>": "<username>"}`,
//! or with a handle `{"<url>": {"u": "<username>", "p": "<handle>"}}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Result;
use crate::lock::FileLock;
use crate::secret::Secret;

/// The index item's key under the internal service name.
pub const NAME: &str = "index";

/// One indexed key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub username: String,
    /// The item's handle, for a backend whose items have one.
    pub item: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Wire {
    Name(String),
    Item {
        #[serde(rename = "u")]
        username: String,
        #[serde(rename = "p")]
        item: String,
    },
}

/// The handle form, `{"u": ..., "p": ...}`.
#[derive(Deserialize)]
struct ItemWire {
    #[serde(rename = "u")]
    username: String,
    #[serde(rename = "p")]
    item: String,
}

/// Read by the JSON type in front of it: serde's `untagged` would buffer every entry and
/// build an error for each form that does not match, which `list` pays per entry.
impl<'de> Deserialize<'de> for Wire {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Wire, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Wire;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a username, or an object with \"u\" and \"p\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Wire, E> {
                Ok(Wire::Name(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> std::result::Result<Wire, E> {
                Ok(Wire::Name(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Wire, A::Error> {
                let w = ItemWire::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Wire::Item {
                    username: w.username,
                    item: w.item,
                })
            }
        }
        d.deserialize_any(Visit)
    }
}

/// What a backend gives its index: where the index item is, and the lock its writers take.
pub trait Backing {
    /// Whether the store can enumerate its items, and so find one that no entry names.
    const ENUMERATES: bool;
    fn lock(&self) -> Result<FileLock>;
    /// The index item's bytes, `None` when there is none.
    fn load(&self) -> Result<Option<Secret<Vec<u8>>>>;
    fn save(&self, bytes: &[u8]) -> Result<()>;
    /// Remove the index item (the index is empty).
    fn clear(&self) -> Result<()>;
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Index(BTreeMap<String, Entry>);

impl Index {
    pub fn read(backing: &impl Backing) -> Result<Index> {
        Ok(backing
            .load()?
            .map(|bytes| Index::decode(bytes.expose()))
            .unwrap_or_default())
    }

    fn decode(bytes: &[u8]) -> Index {
        let wire: BTreeMap<String, Wire> = serde_json::from_slice(bytes).unwrap_or_default();
        Index(
            wire.into_iter()
                .map(|(url, w)| {
                    let entry = match w {
                        Wire::Name(username) => Entry {
                            username,
                            item: None,
                        },
                        Wire::Item { username, item } => Entry {
                            username,
                            item: Some(item),
                        },
                    };
                    (url, entry)
                })
                .collect(),
        )
    }

    fn encode(&self) -> Vec<u8> {
        let wire: BTreeMap<&str, Wire> = self
            .0
            .iter()
            .map(|(url, e)| {
                let w = match &e.item {
                    None => Wire::Name(e.username.clone()),
                    Some(item) => Wire::Item {
                        username: e.username.clone(),
                        item: item.clone(),
                    },
                };
                (url.as_str(), w)
            })
            .collect();
        serde_json::to_vec(&wire).expect("serialising strings cannot fail")
    }

    fn write(&self, backing: &impl Backing) -> Result<()> {
        if self.0.is_empty() {
            backing.clear()
        } else {
            backing.save(&self.encode())
        }
    }

    /// The entry of each handle, for a backend that lists items by handle.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub fn by_item(&self) -> BTreeMap<&str, (&str, &Entry)> {
        self.0
            .iter()
            .filter_map(|(url, e)| Some((e.item.as_deref()?, (url.as_str(), e))))
            .collect()
    }

    /// The entries whose item the store still holds (`holds` says), URL → username.
    pub fn confirmed(
        self,
        mut holds: impl FnMut(&str, &Entry) -> Result<bool>,
    ) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (url, entry) in self.0 {
            if holds(&url, &entry)? {
                out.insert(url, entry.username);
            }
        }
        Ok(out)
    }
}

/// Store `url`: `write` writes its item and says the item's handle, if items have one;
/// the entry follows, under the lock. `take_back` removes a new item whose entry could not
/// be written, for a backend that cannot enumerate.
pub fn store<B: Backing>(
    backing: &B,
    url: &str,
    username: &str,
    write: impl FnOnce() -> Result<Option<String>>,
    take_back: impl FnOnce(),
) -> Result<()> {
    let _guard = backing.lock()?;
    let mut index = Index::read(backing)?;
    let had = index.0.contains_key(url);
    if B::ENUMERATES && index.0.get(url).is_some_and(|e| e.username != username) {
        index.0.remove(url);
        index.write(backing)?;
    }
    let entry = Entry {
        username: username.to_string(),
        item: write()?,
    };
    if index.0.get(url) == Some(&entry) {
        return Ok(());
    }
    index.0.insert(url.to_string(), entry);
    if let Err(e) = index.write(backing) {
        if !B::ENUMERATES && !had {
            take_back();
        }
        return Err(e);
    }
    Ok(())
}

/// Erase `url`: `delete` removes its item (and says whether there was one), then its entry
/// goes, under the lock.
pub fn erase(
    backing: &impl Backing,
    url: &str,
    delete: impl FnOnce() -> Result<bool>,
) -> Result<bool> {
    let _guard = backing.lock()?;
    let existed = delete()?;
    let mut index = Index::read(backing)?;
    if index.0.remove(url).is_some() {
        index.write(backing)?;
    }
    Ok(existed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keychain::{Backend, KeychainError};
    use std::cell::{Cell, RefCell};

    /// An index item in memory, its writes counted; it may be told to fail them.
    #[derive(Default)]
    struct Mem<const E: bool> {
        bytes: RefCell<Option<Vec<u8>>>,
        writes: Cell<usize>,
        fail_writes: Cell<bool>,
        lock_dir: Option<tempfile::TempDir>,
    }

    impl<const E: bool> Mem<E> {
        fn new() -> Self {
            Mem {
                lock_dir: Some(tempfile::tempdir().unwrap()),
                ..Mem::default()
            }
        }
        fn failing() -> KeychainError {
            KeychainError::corrupt(Backend::Keyutils)
        }
    }

    impl<const E: bool> Backing for Mem<E> {
        const ENUMERATES: bool = E;
        fn lock(&self) -> Result<FileLock> {
            let path = self.lock_dir.as_ref().unwrap().path().join("index.lock");
            FileLock::acquire(&path, std::time::Duration::from_secs(5))
                .map_err(|e| KeychainError::lock(Backend::Keyutils, e))
        }
        fn load(&self) -> Result<Option<Secret<Vec<u8>>>> {
            Ok(self.bytes.borrow().clone().map(Secret::new))
        }
        fn save(&self, bytes: &[u8]) -> Result<()> {
            if self.fail_writes.get() {
                return Err(Self::failing());
            }
            self.writes.set(self.writes.get() + 1);
            *self.bytes.borrow_mut() = Some(bytes.to_vec());
            Ok(())
        }
        fn clear(&self) -> Result<()> {
            self.writes.set(self.writes.get() + 1);
            *self.bytes.borrow_mut() = None;
            Ok(())
        }
    }

    #[test]
    fn both_encodings_the_backends_wrote_before_read_back() {
        let names = Index::decode(br#"{"ghcr.io":"bob"}"#);
        let paths = Index::decode(br#"{"ghcr.io":{"u":"bob","p":"/o/1"}}"#);
        assert_eq!(names.0["ghcr.io"].username, "bob");
        assert_eq!(paths.0["ghcr.io"].item.as_deref(), Some("/o/1"));
        assert_eq!(names.encode(), br#"{"ghcr.io":"bob"}"#);
        assert_eq!(paths.encode(), br#"{"ghcr.io":{"u":"bob","p":"/o/1"}}"#);
        assert_eq!(Index::decode(b"damaged"), Index::default());
        // An escaped name, and entries of neither form: the whole index reads as damaged.
        assert_eq!(
            Index::decode(br#"{"a":"b\u00f6b"}"#).0["a"].username,
            "b\u{f6}b"
        );
        for bad in [
            &br#"{"a":1}"#[..],
            br#"{"a":{"u":"bob"}}"#,
            br#"{"a":["bob"]}"#,
        ] {
            assert_eq!(Index::decode(bad), Index::default());
        }
    }

    #[test]
    fn an_unchanged_store_writes_no_index_and_an_erase_removes_the_entry() {
        let b = Mem::<false>::new();
        store(&b, "a", "u", || Ok(None), || {}).unwrap();
        store(&b, "a", "u", || Ok(None), || {}).unwrap();
        assert_eq!(b.writes.get(), 1);
        assert!(erase(&b, "a", || Ok(true)).unwrap());
        assert_eq!(
            b.bytes.borrow().as_deref(),
            None,
            "an empty index is removed"
        );
    }

    #[test]
    fn a_new_username_drops_the_entry_first_where_the_store_enumerates() {
        let b = Mem::<true>::new();
        store(&b, "a", "old", || Ok(Some("/o/1".into())), || {}).unwrap();
        let mut seen = None;
        store(
            &b,
            "a",
            "new",
            || {
                seen = Some(Index::read(&b).unwrap());
                Ok(Some("/o/1".into()))
            },
            || {},
        )
        .unwrap();
        assert_eq!(
            seen,
            Some(Index::default()),
            "no stale entry while the item changes"
        );
        let index = Index::read(&b).unwrap();
        assert_eq!(index.by_item()["/o/1"].1.username, "new");
    }

    #[test]
    fn a_new_item_whose_entry_cannot_be_written_is_taken_back_where_nothing_else_finds_it() {
        for enumerates in [false, true] {
            let taken_back = Cell::new(false);
            let result = if enumerates {
                let b = Mem::<true>::new();
                b.fail_writes.set(true);
                store(&b, "a", "u", || Ok(None), || taken_back.set(true))
            } else {
                let b = Mem::<false>::new();
                b.fail_writes.set(true);
                store(&b, "a", "u", || Ok(None), || taken_back.set(true))
            };
            assert!(result.is_err());
            assert_eq!(taken_back.get(), !enumerates);
        }
    }

    #[test]
    fn list_believes_only_entries_whose_item_is_there() {
        let b = Mem::<false>::new();
        for url in ["a", "b"] {
            store(&b, url, "u", || Ok(None), || {}).unwrap();
        }
        let listed = Index::read(&b)
            .unwrap()
            .confirmed(|url, _| Ok(url == "b"))
            .unwrap();
        assert_eq!(listed.into_keys().collect::<Vec<_>>(), ["b"]);
    }
}
