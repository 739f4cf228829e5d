//! The wire format: request parsing and answers, byte for byte as
//! docker-credential-helpers reads and writes them (`credentials/credentials.go`).

use std::collections::BTreeMap;
use std::io::Read;

use super::messages::{ERR_MISSING_SERVER_URL, ERR_MISSING_USERNAME};
use crate::json;
use crate::secret::Secret;
use zeroize::Zeroize;

/// Requests larger than this are refused: nothing legitimate comes close.
pub const MAX_INPUT: usize = 1024 * 1024;

/// One credential as docker sends it to `store` and receives it from `get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub server_url: String,
    pub username: String,
    pub secret: Secret<String>,
}

/// A bad request, as opposed to a keychain problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// docker matches this text exactly.
    #[error("{ERR_MISSING_SERVER_URL}")]
    MissingServerUrl,
    /// docker matches this text exactly.
    #[error("{ERR_MISSING_USERNAME}")]
    MissingUsername,
    #[error("cannot read the request from stdin: {0}")]
    Read(String),
    #[error("request on stdin is larger than 1 MiB; send one credential as a single JSON object")]
    TooLarge,
    #[error("request on stdin is not valid UTF-8; send the credential as UTF-8 JSON")]
    NotUtf8,
    #[error("empty request on stdin; send {{\"ServerURL\":…,\"Username\":…,\"Secret\":…}}")]
    Empty,
    #[error(
        "request on stdin is not valid JSON ({0}); send {{\"ServerURL\":…,\"Username\":…,\"Secret\":…}}"
    )]
    NotJson(String),
    #[error(
        "request on stdin is a JSON {0}, not an object; send {{\"ServerURL\":…,\"Username\":…,\"Secret\":…}}"
    )]
    NotObject(&'static str),
    #[error("field {field} must be a string, not a JSON {kind}")]
    NotString {
        field: &'static str,
        kind: &'static str,
    },
    #[error("the Username contains a NUL byte; keychains cannot store it")]
    NulInUsername,
    #[error("the server URL contains a NUL byte; send the registry address as plain text")]
    NulInServerUrl,
}

impl InputError {
    /// The two errors docker recognises by their exact text, printed without a prefix.
    pub fn is_docker_string(&self) -> bool {
        matches!(
            self,
            InputError::MissingServerUrl | InputError::MissingUsername
        )
    }
}

/// Read stdin up to the cap. Never reads an unbounded amount into memory. A `store`
/// request holds the secret: the buffer is wiped after use.
pub fn read_input(reader: &mut dyn Read) -> Result<Secret<Vec<u8>>, InputError> {
    let buf = crate::secret::read_capped(reader, MAX_INPUT + 1)
        .map_err(|e| InputError::Read(e.to_string()))?;
    if buf.expose().len() > MAX_INPUT {
        return Err(InputError::TooLarge);
    }
    Ok(buf)
}

/// Go's `bufio.Scanner` with `ScanLines`, concatenated: every `\n` is dropped, and a
/// `\r` directly before it (or at the very end) is dropped too.
pub fn join_lines(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for line in input.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        out.extend_from_slice(line);
    }
    out
}

/// Go's `encoding/json` matches field names with Unicode simple case folding.
/// For our three ASCII field names the only non-ASCII spellings that fold onto them
/// use U+017F (long s) for `s`; the Kelvin sign would fold to `k`, which none contain.
fn field_matches(key: &str, field: &str) -> bool {
    let mut k = key.chars();
    for f in field.chars() {
        match k.next() {
            Some(c) if c.eq_ignore_ascii_case(&f) => {}
            Some('\u{17f}') if f.eq_ignore_ascii_case(&'s') => {}
            _ => return false,
        }
    }
    k.next().is_none()
}

fn utf8(bytes: &[u8]) -> Result<&str, InputError> {
    std::str::from_utf8(bytes).map_err(|_| InputError::NotUtf8)
}

/// Parse a `store` request the way docker-credential-helpers does.
pub fn parse_store(input: &[u8]) -> Result<Credentials, InputError> {
    let joined = Secret::new(join_lines(input));
    let text = utf8(joined.expose())?;
    if text.trim().is_empty() {
        return Err(InputError::Empty);
    }
    // Like Go's json.Decoder: decode the first value, ignore whatever follows it.
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    let value = match stream.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(InputError::NotJson(describe_json_error(&e))),
        None => return Err(InputError::Empty),
    };
    let serde_json::Value::Object(map) = value else {
        return Err(InputError::NotObject(json::kind(&value)));
    };
    let (mut server_url, mut username) = (String::new(), String::new());
    let mut secret = Secret::new(String::new());
    // Later keys win, as in Go, which assigns fields in document order.
    for (key, value) in map {
        let slot = if field_matches(&key, "ServerURL") {
            (&mut server_url, "ServerURL")
        } else if field_matches(&key, "Username") {
            (&mut username, "Username")
        } else if field_matches(&key, "Secret") {
            (secret.expose_mut(), "Secret")
        } else {
            continue;
        };
        match value {
            // A repeated field replaces the earlier value, which is wiped.
            serde_json::Value::String(s) => std::mem::replace(slot.0, s).zeroize(),
            serde_json::Value::Null => {}
            other => {
                return Err(InputError::NotString {
                    field: slot.1,
                    kind: json::kind(&other),
                });
            }
        }
    }
    if server_url.is_empty() {
        return Err(InputError::MissingServerUrl);
    }
    check_server_url(&server_url)?;
    if username.is_empty() {
        return Err(InputError::MissingUsername);
    }
    if username.contains('\0') {
        return Err(InputError::NulInUsername);
    }
    Ok(Credentials {
        server_url,
        username,
        secret,
    })
}

/// Where the request stopped being JSON, without quoting it: it may hold the secret.
fn describe_json_error(e: &serde_json::Error) -> String {
    format!(
        "{} at line {} column {}",
        json::problem(e),
        e.line(),
        e.column()
    )
}

fn check_server_url(url: &str) -> Result<(), InputError> {
    if url.contains('\0') {
        return Err(InputError::NulInServerUrl);
    }
    Ok(())
}

/// Parse the server URL that `get` and `erase` receive: lines joined as Go does,
/// then surrounding whitespace trimmed.
pub fn parse_server_url(input: &[u8]) -> Result<String, InputError> {
    let joined = join_lines(input);
    let url = utf8(&joined)?.trim();
    if url.is_empty() {
        return Err(InputError::MissingServerUrl);
    }
    check_server_url(url)?;
    Ok(url.to_string())
}

/// Go's json.Encoder escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings. Matching it
/// keeps our answers byte-identical to docker-credential-helpers (e.g.
/// `"\u003ctoken\u003e"`). serde_json hands this every run of characters it does not
/// escape itself.
struct GoEscapes;

impl serde_json::ser::Formatter for GoEscapes {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some(i) = rest.find(['<', '>', '&', '\u{2028}', '\u{2029}']) {
            writer.write_all(&rest.as_bytes()[..i])?;
            let c = rest[i..].chars().next().unwrap_or('&');
            let escaped: &[u8] = match c {
                '<' => b"\\u003c",
                '>' => b"\\u003e",
                '&' => b"\\u0026",
                '\u{2028}' => b"\\u2028",
                _ => b"\\u2029",
            };
            writer.write_all(escaped)?;
            rest = &rest[i + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

/// `value` as one JSON line, escaped as Go escapes it. `text_len` is the length of all the
/// strings in it: the buffer gets room for the worst case (every byte escaped as `\u00XX`),
/// so it never grows, since growing frees a copy of what it holds, secret included, that
/// nobody could wipe.
fn go_json_line(value: &impl serde::Serialize, text_len: usize) -> String {
    let mut out = Vec::with_capacity(text_len.saturating_mul(6).saturating_add(64));
    value
        .serialize(&mut serde_json::Serializer::with_formatter(
            &mut out, GoEscapes,
        ))
        .expect("serialising strings cannot fail");
    out.push(b'\n');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// The `get` answer: one JSON line plus `\n`. It holds the secret: the caller wipes it.
pub fn encode_get(server_url: &str, username: &str, secret: &Secret<String>) -> String {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        #[serde(rename = "ServerURL")]
        server_url: &'a str,
        #[serde(rename = "Username")]
        username: &'a str,
        #[serde(rename = "Secret")]
        secret: &'a str,
    }
    let len = "ServerURLUsernameSecret".len() + server_url.len() + username.len();
    go_json_line(
        &Out {
            server_url,
            username,
            secret: secret.expose(),
        },
        len + secret.expose().len(),
    )
}

/// The `list` answer: a JSON object of server URL → username with sorted keys, plus `\n`.
pub fn encode_list(entries: &BTreeMap<String, String>) -> String {
    let len = entries.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    go_json_line(entries, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_lines_like_go_scanner() {
        assert_eq!(join_lines(b"a\r\nb\nc\r"), b"abc");
        assert_eq!(join_lines(b"a\rb"), b"a\rb");
        assert_eq!(join_lines(b""), b"");
    }

    #[test]
    fn store_keys_match_case_insensitively_and_unknown_keys_are_ignored() {
        let c =
            parse_store(br#"{"serverurl":"https://r","USERNAME":"u","sEcReT":"s","x":1}"#).unwrap();
        assert_eq!(c.server_url, "https://r");
        assert_eq!(c.username, "u");
        assert_eq!(c.secret.expose(), "s");
    }

    #[test]
    fn long_s_folds_like_go() {
        let c =
            parse_store("{\"\u{17f}erverURL\":\"h\",\"U\u{17f}ername\":\"u\"}".as_bytes()).unwrap();
        assert_eq!(c.server_url, "h");
        assert_eq!(c.username, "u");
    }

    #[test]
    fn store_drops_newlines_inside_and_trims_nothing() {
        let c = parse_store(
            b"{\"ServerURL\":\" https://r \",\r\n\"Username\":\"u\",\n\"Secret\":\" s \"}\n",
        )
        .unwrap();
        assert_eq!(c.server_url, " https://r ");
        assert_eq!(c.secret.expose(), " s ");
    }

    #[test]
    fn store_validation_messages_are_exact() {
        assert_eq!(
            parse_store(br#"{"Username":"u"}"#).unwrap_err().to_string(),
            ERR_MISSING_SERVER_URL
        );
        assert_eq!(
            parse_store(br#"{"ServerURL":"h","Username":""}"#)
                .unwrap_err()
                .to_string(),
            ERR_MISSING_USERNAME
        );
        assert!(
            parse_store(br#"{"ServerURL":"h","Username":"u"}"#)
                .unwrap()
                .secret
                .expose()
                .is_empty()
        );
    }

    #[test]
    fn trailing_data_after_the_object_is_ignored_like_go() {
        assert!(parse_store(br#"{"ServerURL":"h","Username":"u"} trailing"#).is_ok());
    }

    #[test]
    fn bad_store_input_is_refused() {
        assert!(parse_store(b"").is_err());
        assert!(parse_store(b"{").is_err());
        assert!(
            parse_store(b"[1]")
                .unwrap_err()
                .to_string()
                .contains("array")
        );
        assert!(
            parse_store(b"\xff\xfe")
                .unwrap_err()
                .to_string()
                .contains("UTF-8")
        );
        assert!(
            parse_store(b"{\"ServerURL\":\"a\\u0000b\",\"Username\":\"u\"}")
                .unwrap_err()
                .to_string()
                .contains("NUL")
        );
        assert!(parse_store(br#"{"ServerURL":5,"Username":"u"}"#).is_err());
    }

    #[test]
    fn json_errors_never_echo_the_input() {
        let err = parse_store(br#"{"ServerURL":"h","Secret":"topsecret"#).unwrap_err();
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }

    #[test]
    fn get_input_is_trimmed_and_joined() {
        assert_eq!(
            parse_server_url(b"  https://r/v1/ \n").unwrap(),
            "https://r/v1/"
        );
        assert_eq!(
            parse_server_url(b"   ").unwrap_err(),
            InputError::MissingServerUrl
        );
    }

    #[test]
    fn get_answer_matches_go_encoder_bytes() {
        let out = encode_get("https://r", "<token>", &Secret::new("a&b".into()));
        assert_eq!(
            out,
            "{\"ServerURL\":\"https://r\",\"Username\":\"\\u003ctoken\\u003e\",\"Secret\":\"a\\u0026b\"}\n"
        );
    }

    #[test]
    fn list_answer_is_sorted_and_empty_is_braces() {
        assert_eq!(encode_list(&BTreeMap::new()), "{}\n");
        let mut m = BTreeMap::new();
        m.insert("b".to_string(), "u2".to_string());
        m.insert("a".to_string(), "u1".to_string());
        assert_eq!(encode_list(&m), "{\"a\":\"u1\",\"b\":\"u2\"}\n");
    }
}
