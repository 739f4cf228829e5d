//! docker's `config.json`: where it is, reading it without losing a key, editing it with
//! pure functions, and writing it atomically with mode 0600.
//!
//! docker (Go `encoding/json`) matches field names case-insensitively; for a string the last
//! duplicate wins, and repeated objects for one map field (`"auths"` and `"Auths"`) are
//! merged into one map. The readers here do the same so we see what docker sees.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::json;
use crate::trust::{Expect, TrustError};

pub const CONFIG_FILE: &str = "config.json";

/// docker's config.json: docker follows a link there (dotfile managers make one), and so do
/// we, but only to a file of the effective user's.
pub const CONFIG_JSON: Expect = Expect::file("docker's config.json").link_ok();
/// docker's config directory, when we create it.
pub const CONFIG_DIR: Expect = Expect::dir("docker's config directory");

/// The `auths` fields that hold a secret (or, for `username`, half of one). docker's own
/// native store clears exactly these and keeps the rest (`email`, `serveraddress`, …).
pub const SECRET_FIELDS: [&str; 4] = ["auth", "username", "password", "identitytoken"];

/// A config problem, as one line that says what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot find docker's config: neither DOCKER_CONFIG nor HOME is set; set one of them")]
    NoHome,
    /// Not a regular file of ours (a FIFO would hang the read), too large, or unreadable.
    #[error("{0}")]
    Read(#[from] TrustError),
    #[error(
        "{} {why}; docker cannot read it either: fix the file and run again",
        crate::fs::display(path)
    )]
    Invalid { path: PathBuf, why: Shape },
}

/// docker's config directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir() -> Result<PathBuf, ConfigError> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    crate::paths::home_dir()
        .map(|h| h.join(".docker"))
        .ok_or(ConfigError::NoHome)
}

pub fn config_path() -> Result<PathBuf, ConfigError> {
    Ok(config_dir()?.join(CONFIG_FILE))
}

/// config.json as read: its exact bytes (None when missing) and the parsed document.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub original: Option<Vec<u8>>,
    pub doc: Value,
}

/// More than any config.json or auth.json holds; a larger one is read no further.
const MAX_CONFIG: u64 = 16 * 1024 * 1024;

/// The bytes of config.json (or a file of its shape, `expect` says which), read through the
/// trust rule: a regular file of ours, opened without blocking and read no further than the
/// cap. `Ok(None)` when it does not exist.
pub fn read(path: &Path, expect: Expect) -> Result<Option<Vec<u8>>, TrustError> {
    crate::trust::read_file(path, expect, MAX_CONFIG)
}

/// Read and parse config.json. A missing or empty file is `{}` (docker accepts both).
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    load_as(path, CONFIG_JSON)
}

/// Read and parse a file in config.json's shape (podman's auth.json).
pub fn load_as(path: &Path, expect: Expect) -> Result<Loaded, ConfigError> {
    let original = read(path, expect)?;
    let doc = match &original {
        Some(bytes) => parse(bytes).map_err(|why| ConfigError::Invalid {
            path: path.to_path_buf(),
            why,
        })?,
        None => Value::Object(Map::new()),
    };
    Ok(Loaded {
        path: path.to_path_buf(),
        original,
        doc,
    })
}

/// What is wrong with a config.json docker would refuse. It says where (line and column,
/// or the key) and never quotes a value, which may hold secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Shape {
    #[error("is not valid JSON ({what} at line {line} column {column})")]
    NotJson {
        what: &'static str,
        line: usize,
        column: usize,
    },
    #[error("is a JSON {0}, not an object")]
    NotObject(&'static str),
    #[error("has a \"{key}\" that is a JSON {found}, not {want}")]
    Field {
        key: String,
        found: &'static str,
        want: &'static str,
    },
    #[error("has \"{key}\".\"{name}\" that is a JSON {found}, not {want}")]
    Entry {
        key: String,
        name: String,
        found: &'static str,
        want: &'static str,
    },
}

/// Parse config.json bytes.
pub fn parse(bytes: &[u8]) -> Result<Value, Shape> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let doc: Value = serde_json::from_slice::<GoDocument>(bytes)
        .map(|d| d.0)
        .map_err(|e| {
            let what = crate::json::problem(&e);
            Shape::NotJson {
                what,
                line: e.line(),
                column: e.column(),
            }
        })?;
    validate(&doc)?;
    Ok(doc)
}

/// A config.json document as Go's decoder sees a repeated top-level key: a repeated object
/// (two `"auths"`) is merged into one map, later entries winning; anything else, the last
/// one wins. (serde_json alone would keep only the last object and lose the first's
/// entries.) Nested objects keep serde_json's last-wins, which is Go's for map entries.
struct GoDocument(Value);

impl<'de> serde::Deserialize<'de> for GoDocument {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = GoDocument;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON document")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<GoDocument, A::Error> {
                let mut top = Map::new();
                while let Some((key, value)) = a.next_entry::<String, Value>()? {
                    match (top.get_mut(&key), value) {
                        (Some(Value::Object(earlier)), Value::Object(later)) => {
                            earlier.extend(later)
                        }
                        (_, value) => {
                            top.insert(key, value);
                        }
                    }
                }
                Ok(GoDocument(Value::Object(top)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, a: A) -> Result<GoDocument, A::Error> {
                let v = Value::deserialize(serde::de::value::SeqAccessDeserializer::new(a))?;
                Ok(GoDocument(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<GoDocument, E> {
                Ok(GoDocument(Value::String(v.into())))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<GoDocument, E> {
                Ok(GoDocument(Value::Bool(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<GoDocument, E> {
                Ok(GoDocument(Value::from(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<GoDocument, E> {
                Ok(GoDocument(Value::from(v)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<GoDocument, E> {
                Ok(GoDocument(Value::from(v)))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<GoDocument, E> {
                Ok(GoDocument(Value::Null))
            }
        }
        use serde::Deserialize;
        d.deserialize_any(Visit)
    }
}

/// The shapes docker insists on; anything else docker refuses to load, so do we.
fn validate(doc: &Value) -> Result<(), Shape> {
    let Value::Object(top) = doc else {
        return Err(Shape::NotObject(json::kind(doc)));
    };
    for (key, value) in top {
        if key.eq_ignore_ascii_case("credsStore")
            && !matches!(value, Value::String(_) | Value::Null)
        {
            return Err(Shape::Field {
                key: key.clone(),
                found: json::kind(value),
                want: "a string",
            });
        }
        if key.eq_ignore_ascii_case("auths") || key.eq_ignore_ascii_case("credHelpers") {
            let want_string = key.eq_ignore_ascii_case("credHelpers");
            match value {
                Value::Null => {}
                Value::Object(entries) => {
                    for (name, entry) in entries {
                        let ok = match entry {
                            Value::Null => true,
                            Value::String(_) => want_string,
                            Value::Object(_) => !want_string,
                            _ => false,
                        };
                        if !ok {
                            return Err(Shape::Entry {
                                key: key.clone(),
                                name: name.clone(),
                                found: json::kind(entry),
                                want: if want_string { "a string" } else { "an object" },
                            });
                        }
                    }
                }
                other => {
                    return Err(Shape::Field {
                        key: key.clone(),
                        found: json::kind(other),
                        want: "an object",
                    });
                }
            }
        }
    }
    Ok(())
}

/// The value docker reads for `name`: the last key that matches case-insensitively.
pub fn field<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    // A JSON null leaves a Go string as it was, so an earlier value survives it.
    map.iter()
        .filter(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_null())
        .map(|(_, v)| v)
        .next_back()
}

/// `credsStore` as docker reads it (empty counts as unset, as in docker).
pub fn creds_store(doc: &Value) -> Option<&str> {
    doc.as_object()
        .and_then(|m| field(m, "credsStore"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `auths`: registry key → entry object, as docker decodes it: every top-level key that
/// matches `auths` case-insensitively, in order, merged into one map (a later entry for
/// the same registry wins, and a `null` empties the map, as Go's decoder does).
pub fn auths(doc: &Value) -> Vec<(&str, &Map<String, Value>)> {
    let mut out: Vec<(&str, &Map<String, Value>)> = Vec::new();
    let Some(top) = doc.as_object() else {
        return out;
    };
    for (_, value) in top.iter().filter(|(k, _)| k.eq_ignore_ascii_case("auths")) {
        match value {
            Value::Null => out.clear(),
            Value::Object(entries) => {
                for (key, entry) in entries {
                    let Some(entry) = entry.as_object() else {
                        continue;
                    };
                    match out.iter_mut().find(|(k, _)| *k == key.as_str()) {
                        Some(slot) => slot.1 = entry,
                        None => out.push((key.as_str(), entry)),
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// `credHelpers`: registry → helper suffix, in file order.
pub fn cred_helpers(doc: &Value) -> Vec<(String, String)> {
    doc.as_object()
        .and_then(|m| field(m, "credHelpers"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|h| (k.clone(), h.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// True when an `auths` entry carries any secret field docker would read.
pub fn has_secret_fields(entry: &Map<String, Value>) -> bool {
    entry.iter().any(|(k, v)| {
        SECRET_FIELDS.iter().any(|f| k.eq_ignore_ascii_case(f))
            && !matches!(v, Value::Null)
            && v.as_str() != Some("")
    })
}

/// What to do with `credsStore`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredsStore {
    Keep,
    Set(String),
    Remove,
}

/// One edit of config.json: the credsStore change, and the `auths` keys whose secret
/// fields moved to the keychain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub creds_store: CredsStore,
    pub strip: Vec<String>,
}

/// Apply `plan` to `doc`. Pure: every other key, value and the key order stay as they
/// were. A stripped entry keeps its non-secret fields and becomes `{}` when none are
/// left, as docker leaves it after a login through a credential helper.
pub fn edit(doc: Value, plan: &Edit) -> Value {
    let Value::Object(top) = doc else {
        return doc;
    };
    let mut out = Map::new();
    let mut creds_store_written = false;
    for (key, value) in top {
        if key.eq_ignore_ascii_case("credsStore") {
            match &plan.creds_store {
                CredsStore::Keep => {
                    out.insert(key, value);
                }
                CredsStore::Remove => {}
                // The first spelling takes the new value in its place; later duplicates
                // would override it for docker, so they go.
                CredsStore::Set(name) if !creds_store_written => {
                    out.insert("credsStore".into(), Value::String(name.clone()));
                    creds_store_written = true;
                }
                CredsStore::Set(_) => {}
            }
        } else if key.eq_ignore_ascii_case("auths") && !plan.strip.is_empty() {
            out.insert(key, strip_auths(value, &plan.strip));
        } else {
            out.insert(key, value);
        }
    }
    if let (CredsStore::Set(name), false) = (&plan.creds_store, creds_store_written) {
        out.insert("credsStore".into(), Value::String(name.clone()));
    }
    Value::Object(out)
}

fn strip_auths(auths: Value, keys: &[String]) -> Value {
    let Value::Object(entries) = auths else {
        return auths;
    };
    Value::Object(
        entries
            .into_iter()
            .map(|(key, entry)| match entry {
                Value::Object(fields) if keys.contains(&key) => {
                    let kept = fields
                        .into_iter()
                        .filter(|(f, _)| !SECRET_FIELDS.iter().any(|s| f.eq_ignore_ascii_case(s)))
                        .collect();
                    (key, Value::Object(kept))
                }
                other => (key, other),
            })
            .collect(),
    )
}

/// Serialise as docker does: tab indentation, no trailing newline.
pub fn to_bytes(doc: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(doc, &mut ser).expect("serialising a JSON value cannot fail");
    out
}

/// Where writes to `path` really go: docker follows a symlinked config.json (dotfile
/// managers link it) and rewrites the target, so we do too. Only config.json itself is
/// followed; every other file is written in place of whatever is at its path.
pub fn write_target(path: &Path) -> PathBuf {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).unwrap_or_else(|_| match fs::read_link(path) {
                Ok(t) if t.is_relative() => path.parent().unwrap_or(Path::new(".")).join(t),
                Ok(t) => t,
                Err(_) => path.to_path_buf(),
            })
        }
        _ => path.to_path_buf(),
    }
}

/// Create the directory `file` goes in when it is missing: mode 0700, as docker makes it,
/// one checked step at a time.
pub fn create_dir_of(file: &Path) -> Result<(), TrustError> {
    match file.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if !dir.exists() => crate::trust::create_private_dir(dir, CONFIG_DIR),
        _ => Ok(()),
    }
}

/// Replace config.json (its symlink target, if it is a link) atomically, mode 0600,
/// creating the config directory when it is missing.
pub fn write_config(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let target = write_target(path);
    create_dir_of(&target).map_err(std::io::Error::other)?;
    crate::fs::replace(&target, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(v: &Value) -> Vec<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn set_creds_store_keeps_every_other_key_in_order() {
        let doc: Value = serde_json::from_str(
            r#"{"z":1,"auths":{"a":{"auth":"eDp5"}},"credsStore":"desktop","proxies":{"default":{}},"aa":[1,2]}"#,
        )
        .unwrap();
        let out = edit(
            doc.clone(),
            &Edit {
                creds_store: CredsStore::Set("hub".into()),
                strip: vec![],
            },
        );
        assert_eq!(keys(&out), ["z", "auths", "credsStore", "proxies", "aa"]);
        assert_eq!(out["credsStore"], "hub");
        assert_eq!(out["auths"], doc["auths"]);
        assert_eq!(out["proxies"], doc["proxies"]);
    }

    #[test]
    fn set_creds_store_appends_when_absent_and_replaces_odd_spellings() {
        let out = edit(
            json!({"a": 1}),
            &Edit {
                creds_store: CredsStore::Set("hub".into()),
                strip: vec![],
            },
        );
        assert_eq!(
            to_bytes(&out),
            b"{\n\t\"a\": 1,\n\t\"credsStore\": \"hub\"\n}"
        );
        let doc: Value =
            serde_json::from_str(r#"{"CredsStore":"x","b":2,"credsstore":"y"}"#).unwrap();
        let out = edit(
            doc,
            &Edit {
                creds_store: CredsStore::Set("hub".into()),
                strip: vec![],
            },
        );
        assert_eq!(keys(&out), ["credsStore", "b"]);
        assert_eq!(creds_store(&out), Some("hub"));
    }

    #[test]
    fn remove_creds_store_leaves_the_rest() {
        let doc: Value = serde_json::from_str(r#"{"a":1,"credsStore":"hub","b":2}"#).unwrap();
        let out = edit(
            doc,
            &Edit {
                creds_store: CredsStore::Remove,
                strip: vec![],
            },
        );
        assert_eq!(keys(&out), ["a", "b"]);
        assert_eq!(creds_store(&out), None);
    }

    #[test]
    fn strip_removes_secret_fields_of_listed_entries_only() {
        let doc: Value = serde_json::from_str(
            r#"{"auths":{
                "one":{"auth":"dTpw","email":"a@b.c"},
                "two":{"username":"u","Password":"p","serveraddress":"two"},
                "three":{"identitytoken":"t"},
                "keep":{"auth":"dTpw"}
            },"x":true}"#,
        )
        .unwrap();
        let out = edit(
            doc,
            &Edit {
                creds_store: CredsStore::Keep,
                strip: vec!["one".into(), "two".into(), "three".into()],
            },
        );
        assert_eq!(
            out,
            json!({"auths":{
                "one":{"email":"a@b.c"},
                "two":{"serveraddress":"two"},
                "three":{},
                "keep":{"auth":"dTpw"}
            },"x":true})
        );
        assert_eq!(keys(&out["auths"]), ["one", "two", "three", "keep"]);
    }

    #[test]
    fn edit_of_a_non_object_is_the_identity() {
        let plan = Edit {
            creds_store: CredsStore::Set("hub".into()),
            strip: vec!["a".into()],
        };
        assert_eq!(edit(json!([1]), &plan), json!([1]));
    }

    #[test]
    fn invalid_json_reports_line_and_column_without_content() {
        let err = parse(b"{\n  \"auths\": {\"x\": {\"auth\": \"c2VjcmV0\"}\n  oops\n}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3 column 3"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
    }

    #[test]
    fn empty_file_is_an_empty_config_and_wrong_shapes_are_refused() {
        assert_eq!(parse(b" \n").unwrap(), json!({}));
        assert_eq!(parse(b"[]").unwrap_err(), Shape::NotObject("array"));
        assert_eq!(
            parse(br#"{"credsStore":5}"#).unwrap_err().to_string(),
            r#"has a "credsStore" that is a JSON number, not a string"#
        );
        assert_eq!(
            parse(br#"{"auths":{"a":"x"}}"#).unwrap_err().to_string(),
            r#"has "auths"."a" that is a JSON string, not an object"#
        );
        assert_eq!(
            parse(br#"{"credHelpers":{"a":{}}}"#)
                .unwrap_err()
                .to_string(),
            r#"has "credHelpers"."a" that is a JSON object, not a string"#
        );
        assert!(parse(br#"{"auths":null,"credsStore":null,"credHelpers":{"g":"gcloud"}}"#).is_ok());
    }

    #[test]
    fn readers_see_what_docker_sees() {
        let doc: Value = serde_json::from_str(
            r#"{"credsStore":"a","CREDSSTORE":"b","credHelpers":{"gcr.io":"gcloud"},"auths":{"k":{"auth":""},"m":{"email":"e"},"n":{"password":"p"}}}"#,
        )
        .unwrap();
        assert_eq!(creds_store(&doc), Some("b"));
        assert_eq!(cred_helpers(&doc), vec![("gcr.io".into(), "gcloud".into())]);
        let a = auths(&doc);
        assert_eq!(a.len(), 3);
        assert!(!has_secret_fields(a[0].1));
        assert!(!has_secret_fields(a[1].1));
        assert!(has_secret_fields(a[2].1));
        assert_eq!(creds_store(&json!({"credsStore": ""})), None);
    }

    /// A FIFO (or anything but a regular file of ours) at config.json is one error, at
    /// once: a plain read would wait for a writer forever. A symlinked config.json is read
    /// through its link, as docker reads it.
    #[cfg(unix)]
    #[test]
    fn a_fifo_at_config_json_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join(CONFIG_FILE);
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(load(&path).map(|_| ()).map_err(|e| e.to_string()));
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("loading a FIFO at config.json hung");
        let e = result.unwrap_err();
        assert!(e.contains("FIFO") && !e.contains('\n'), "{e}");

        let real = dir.path().join("dotfiles.json");
        fs::write(&real, br#"{"credsStore":"hub"}"#).unwrap();
        let link = dir.path().join("linked").join(CONFIG_FILE);
        fs::create_dir(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(creds_store(&load(&link).unwrap().doc), Some("hub"));
        assert!(
            load(&dir.path().join("missing.json"))
                .unwrap()
                .original
                .is_none()
        );
    }

    #[cfg(unix)]
    #[test]
    fn config_writes_create_0600_and_replace_through_a_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(CONFIG_FILE);
        write_config(&path, b"{}").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{}");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let real = dir.path().join("real.json");
        fs::write(&real, b"old").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_config(&link, b"new").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&real).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_literally_repeated_auths_object_keeps_both_sets() {
        let doc = parse(br#"{"auths":{"a":{"auth":"eDp5"}},"x":1,"auths":{"b":{"auth":"Yjpi"}}}"#)
            .unwrap();
        let keys: Vec<&str> = auths(&doc).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b"]);
        let doc = parse(br#"{"credsStore":"a","credsStore":"b"}"#).unwrap();
        assert_eq!(creds_store(&doc), Some("b"));
        assert_eq!(
            parse(b"[1,2]").unwrap_err().to_string(),
            "is a JSON array, not an object"
        );
    }

    #[test]
    fn repeated_and_capitalised_auths_merge_as_docker_reads_them() {
        let doc: Value = serde_json::from_str(
            r#"{"auths":{"a":{"auth":"eDp5"},"b":{"auth":"b2xk"}},"x":1,"Auths":{"b":{"auth":"bmV3"},"c":{"auth":"Yzpj"}}}"#,
        )
        .unwrap();
        let got: Vec<(&str, &str)> = auths(&doc)
            .into_iter()
            .map(|(k, e)| (k, e["auth"].as_str().unwrap()))
            .collect();
        assert_eq!(got, [("a", "eDp5"), ("b", "bmV3"), ("c", "Yzpj")]);
        let doc: Value =
            serde_json::from_str(r#"{"auths":{"a":{"auth":"eDp5"}},"AUTHS":null}"#).unwrap();
        assert!(auths(&doc).is_empty());
    }
}

/// Property: for random documents and random plans, `edit` keeps every key
/// other than `credsStore` and the stripped secret fields, with its value and its place,
/// sets `credsStore` as planned and strips exactly the planned fields.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    use std::cell::Cell;

    const CASES: u32 = 2000;

    fn is_creds_store(k: &str) -> bool {
        k.eq_ignore_ascii_case("credsStore")
    }

    fn is_auths(k: &str) -> bool {
        k.eq_ignore_ascii_case("auths")
    }

    fn is_secret_field(k: &str) -> bool {
        SECRET_FIELDS.iter().any(|f| k.eq_ignore_ascii_case(f))
    }

    /// Keys of any object: unicode text, and the names that matter at the top level or in
    /// an `auths` entry, so nested look-alikes (which must stay untouched) are common.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => "\\PC{0,8}",
            2 => prop::sample::select(vec![
                "credsStore", "CredsStore", "auths", "Auths", "auth", "password", "username",
                "identitytoken", "email", "credHelpers", "proxies", "psFormat", "HttpHeaders",
                "ключ", "鍵", "🔑", "",
            ])
            .prop_map(str::to_string),
            1 => "[a-zA-Z]{1,6}",
        ]
    }

    /// Numbers that survive a text round trip exactly (serde_json parses floats fast, not
    /// always to the nearest bit).
    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            prop::sample::select(vec![0.5, -0.25, 1e300, 3.0e-7]).prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
        ]
    }

    fn nested() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// One `auths` entry: secret fields in docker's and odd spellings, docker's other
    /// fields, unknown ones; now and then not an object at all.
    fn auth_entry() -> impl Strategy<Value = Value> {
        let field = prop_oneof![
            3 => prop::sample::select(vec![
                "auth", "Auth", "AUTH", "username", "UserName", "password", "Password",
                "identitytoken", "IdentityToken", "email", "serveraddress", "registrytoken",
            ])
            .prop_map(str::to_string),
            1 => key(),
        ];
        let value = prop_oneof![
            3 => "[A-Za-z0-9+/=]{0,24}".prop_map(Value::String),
            1 => nested(),
        ];
        prop_oneof![
            8 => prop::collection::vec((field, value), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            1 => Just(Value::Null),
            1 => nested(),
        ]
    }

    fn registry() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "https://index.docker.io/v1/",
                "ghcr.io",
                "localhost:5000",
                "registry.example.com",
                "http://insecure.example:8080",
            ])
            .prop_map(str::to_string),
            "\\PC{0,10}",
        ]
    }

    fn auths_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            8 => prop::collection::vec((registry(), auth_entry()), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            1 => Just(Value::Null),
            1 => nested(),
        ]
    }

    /// A config.json: random keys in random order, some of them `credsStore` or `auths`
    /// in any spelling (repeats included), the rest anything.
    fn document() -> impl Strategy<Value = Map<String, Value>> {
        let entry = prop_oneof![
            1 => (
                prop::sample::select(vec!["credsStore", "CredsStore", "credsstore", "CREDSSTORE"]),
                prop_oneof![
                    4 => "[a-z-]{0,10}".prop_map(Value::String),
                    1 => Just(Value::Null),
                    1 => nested(),
                ],
            )
                .prop_map(|(k, v)| (k.to_string(), v)),
            2 => (prop::sample::select(vec!["auths", "auths", "auths", "Auths"]), auths_value())
                .prop_map(|(k, v)| (k.to_string(), v)),
            4 => (key(), nested()),
        ];
        prop::collection::vec(entry, 0..10).prop_map(|kv| kv.into_iter().collect())
    }

    fn registry_keys(doc: &Map<String, Value>) -> Vec<String> {
        doc.iter()
            .filter(|(k, _)| is_auths(k))
            .filter_map(|(_, v)| v.as_object())
            .flat_map(|m| m.keys().cloned())
            .collect()
    }

    /// A document with a plan: strip a random subset of its `auths` keys plus keys it
    /// does not have, and keep, remove or set `credsStore`.
    fn case() -> impl Strategy<Value = (Map<String, Value>, Edit)> {
        document().prop_flat_map(|doc| {
            let keys = registry_keys(&doc);
            let n = keys.len();
            let creds_store = prop_oneof![
                Just(CredsStore::Keep),
                Just(CredsStore::Remove),
                Just(CredsStore::Set("hub".into())),
                "[a-z0-9-]{0,10}".prop_map(CredsStore::Set),
            ];
            let strip = (
                prop::sample::subsequence(keys, 0..=n),
                prop::collection::vec(registry(), 0..2),
            )
                .prop_map(|(mut s, extra)| {
                    s.extend(extra);
                    s
                });
            (Just(doc), creds_store, strip)
                .prop_map(|(doc, creds_store, strip)| (doc, Edit { creds_store, strip }))
        })
    }

    /// Order-sensitive text: `Value`'s `==` ignores the order of object keys.
    fn text(v: &Value) -> String {
        serde_json::to_string(v).unwrap()
    }

    fn keys_of(m: &Map<String, Value>) -> Vec<&str> {
        m.keys().map(String::as_str).collect()
    }

    /// What must survive: the document without `credsStore` keys, and without the secret
    /// fields of planned entries (objects only; anything else in `auths` stays).
    fn survivors(doc: &Map<String, Value>, strip: &[String]) -> (Value, usize) {
        let mut removed = 0;
        let kept = doc
            .iter()
            .filter(|(k, _)| !is_creds_store(k))
            .map(|(k, v)| match v {
                Value::Object(entries) if is_auths(k) => {
                    let entries = entries
                        .iter()
                        .map(|(reg, e)| match e {
                            Value::Object(fields) if strip.contains(reg) => {
                                let before = fields.len();
                                let left: Map<String, Value> = fields
                                    .iter()
                                    .filter(|(f, _)| !is_secret_field(f))
                                    .map(|(f, v)| (f.clone(), v.clone()))
                                    .collect();
                                removed += before - left.len();
                                (reg.clone(), Value::Object(left))
                            }
                            other => (reg.clone(), other.clone()),
                        })
                        .collect();
                    (k.clone(), Value::Object(entries))
                }
                _ => (k.clone(), v.clone()),
            })
            .collect();
        (Value::Object(kept), removed)
    }

    #[derive(Default)]
    struct Tally {
        keys_kept: Cell<usize>,
        entries_seen: Cell<usize>,
        entries_stripped: Cell<usize>,
        fields_stripped: Cell<usize>,
        creds_store_keys: Cell<usize>,
        plans: [Cell<usize>; 3],
    }

    fn add(c: &Cell<usize>, n: usize) {
        c.set(c.get() + n);
    }

    fn check(doc: Map<String, Value>, plan: Edit, t: &Tally) -> Result<(), TestCaseError> {
        let out = edit(Value::Object(doc.clone()), &plan);
        let Value::Object(out_map) = &out else {
            return Err(TestCaseError::fail("edit of an object is not an object"));
        };

        // 1. Everything but credsStore and the planned secret fields: same values, same order.
        let (want, removed) = survivors(&doc, &plan.strip);
        let got: Map<String, Value> = out_map
            .iter()
            .filter(|(k, _)| !is_creds_store(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        prop_assert_eq!(text(&Value::Object(got)), text(&want));

        // 2. Exactly the planned fields are gone: none left in a planned entry, and the
        //    number removed is the number the input had there.
        let mut entries_out = 0;
        for (k, v) in out_map {
            if let (true, Value::Object(entries)) = (is_auths(k), v) {
                for (reg, e) in entries {
                    if let (true, Value::Object(fields)) = (plan.strip.contains(reg), e) {
                        add(&t.entries_stripped, 1);
                        prop_assert!(!fields.keys().any(|f| is_secret_field(f)), "{reg}");
                        prop_assert!(!has_secret_fields(fields));
                    }
                    entries_out += 1;
                }
            }
        }
        add(&t.entries_seen, entries_out);
        add(&t.fields_stripped, removed);
        let secret_fields = |m: &Map<String, Value>| -> usize {
            m.iter()
                .filter(|(k, _)| is_auths(k))
                .filter_map(|(_, v)| v.as_object())
                .flat_map(|e| e.values())
                .filter_map(Value::as_object)
                .map(|f| f.keys().filter(|k| is_secret_field(k)).count())
                .sum()
        };
        prop_assert_eq!(secret_fields(&doc) - secret_fields(out_map), removed);

        // 3. credsStore as planned, where planned.
        let in_keys = keys_of(&doc);
        let out_keys = keys_of(out_map);
        add(
            &t.creds_store_keys,
            in_keys.iter().filter(|k| is_creds_store(k)).count(),
        );
        match &plan.creds_store {
            CredsStore::Keep => {
                add(&t.plans[0], 1);
                prop_assert_eq!(&out_keys, &in_keys);
                for k in in_keys.iter().filter(|k| is_creds_store(k)) {
                    prop_assert_eq!(text(&out_map[*k]), text(&doc[*k]));
                }
                let before = Value::Object(doc.clone());
                prop_assert_eq!(creds_store(&out), creds_store(&before));
            }
            CredsStore::Remove => {
                add(&t.plans[1], 1);
                let want: Vec<&str> = in_keys
                    .iter()
                    .copied()
                    .filter(|k| !is_creds_store(k))
                    .collect();
                prop_assert_eq!(&out_keys, &want);
                prop_assert_eq!(creds_store(&out), None);
            }
            CredsStore::Set(name) => {
                add(&t.plans[2], 1);
                // In place of the first spelling, or appended; later spellings gone.
                let mut want: Vec<&str> = Vec::new();
                for k in &in_keys {
                    if !is_creds_store(k) {
                        want.push(k);
                    } else if !want.contains(&"credsStore") {
                        want.push("credsStore");
                    }
                }
                if !want.contains(&"credsStore") {
                    want.push("credsStore");
                }
                prop_assert_eq!(&out_keys, &want);
                prop_assert_eq!(&out_map["credsStore"], &Value::String(name.clone()));
                let expect = (!name.is_empty()).then_some(name.as_str());
                prop_assert_eq!(creds_store(&out), expect);
            }
        }
        add(
            &t.keys_kept,
            out_keys.iter().filter(|k| !is_creds_store(k)).count(),
        );

        // 4. What is written reads back as the same document, and a config docker could
        //    read before is still one it can read.
        let bytes = to_bytes(&out);
        let back: Value = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(text(&back), text(&out));
        if parse(&to_bytes(&Value::Object(doc))).is_ok() {
            prop_assert!(parse(&bytes).is_ok(), "edit made a valid config invalid");
        }

        // 5. Applying the same plan again changes nothing.
        prop_assert_eq!(text(&edit(out.clone(), &plan)), text(&out));
        Ok(())
    }

    #[test]
    fn edit_keeps_everything_but_what_the_plan_changes() {
        let tally = Tally::default();
        let mut runner = TestRunner::new(Config::with_cases(CASES));
        runner
            .run(&case(), |(doc, plan)| check(doc, plan, &tally))
            .unwrap();
        let t = &tally;
        let line = format!(
            "property config.json-edit: {CASES} random documents, {} top-level keys kept in order, \
             {} auths entries ({} planned for stripping, {} secret fields stripped), {} credsStore \
             spellings; plans keep/remove/set {}/{}/{}; 0 failures",
            t.keys_kept.get(),
            t.entries_seen.get(),
            t.entries_stripped.get(),
            t.fields_stripped.get(),
            t.creds_store_keys.get(),
            t.plans[0].get(),
            t.plans[1].get(),
            t.plans[2].get(),
        );
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/target/tmp"));
        fs::create_dir_all(dir).unwrap();
        fs::write(
            dir.join("reliability-properties-config.txt"),
            format!("{line}\n"),
        )
        .unwrap();
    }
}
