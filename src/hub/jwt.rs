//! Just enough JWT to decide when to refresh: split, base64url-decode the payload, read
//! `exp` (and who it is for, for display). The signature is not checked — the token came
//! from Hub over TLS and is only ever sent back to Hub; all we need is its expiry.

use std::time::Duration;

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// JWTs drop the `=` padding (RFC 7515 §2); accept it anyway when present.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A cached token must stay valid at least this long to be handed out (hub-tool uses 1 min).
pub const FRESHNESS_MARGIN: Duration = Duration::from_secs(60);

/// Hub JWTs are about 1–2 KB; anything far larger is not one.
const MAX_LEN: usize = 64 * 1024;

/// The claims we read. Anything else in the payload is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Expiry, seconds since the Unix epoch (`exp`); `None` when absent or not a number.
    pub exp: Option<u64>,
    /// The account name: in real Hub and docker CLI tokens the namespaced claim
    /// `"https://hub.docker.com": {"username", "email", ...}` (docker/cli
    /// `internal/oauth/jwt.go`, `DomainClaims`), else a top-level `username`. Never `sub`,
    /// which real tokens fill with an identity-provider id such as `samlp|…`.
    pub username: Option<String>,
}

/// Parse a compact JWS: three base64url parts, the header and the payload JSON objects.
/// `None` for anything else — never panics, whatever the input.
pub fn parse(token: &str) -> Option<Claims> {
    if token.is_empty() || token.len() > MAX_LEN {
        return None;
    }
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || header.is_empty() || payload.is_empty() {
        return None;
    }
    json_object(header)?;
    let claims = json_object(payload)?;
    // The signature is opaque bytes, but must still be base64url: the token goes into
    // an HTTP header and onto stdout, so no stray characters.
    BASE64URL.decode(signature).ok()?;
    let exp = claims.get("exp").and_then(numeric_date);
    let text = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let namespaced = claims
        .get("https://hub.docker.com")
        .and_then(|d| d.get("username"));
    Some(Claims {
        exp,
        username: text(namespaced).or_else(|| text(claims.get("username"))),
    })
}

fn json_object(part: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let bytes = BASE64URL.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

/// RFC 7519 NumericDate: seconds, possibly fractional. Negative or absurd values are
/// treated as missing, which makes the token count as expired.
fn numeric_date(v: &serde_json::Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    (0.0..1e15).contains(&f).then_some(f as u64)
}

/// True when `token` is a well-formed JWT that stays valid for at least `margin` after
/// `now` (seconds since the epoch). Malformed tokens and tokens without `exp` are never fresh.
pub fn is_fresh(token: &str, now: u64, margin: Duration) -> bool {
    parse(token)
        .and_then(|c| c.exp)
        .is_some_and(|exp| exp >= now.saturating_add(margin.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    fn token(payload: &str) -> String {
        format!(
            "{}.{}.{}",
            b64(r#"{"alg":"RS256","typ":"JWT"}"#),
            b64(payload),
            b64("sig")
        )
    }

    #[test]
    fn reads_exp_and_names() {
        let t = token(r#"{"exp":2000000000,"sub":"abc-123","username":"alice"}"#);
        let c = parse(&t).unwrap();
        assert_eq!(c.exp, Some(2_000_000_000));
        assert_eq!(c.username.as_deref(), Some("alice"));
    }

    /// The shape of docker/cli's `internal/oauth/manager/manager_test.go` fixture: the name
    /// is in the namespaced claim, and `sub` is never taken for it.
    #[test]
    fn the_namespaced_hub_claim_names_the_user_and_sub_never_does() {
        let t = token(
            r#"{"exp":2000000000,"sub":"samlp|okta|alice@example.com","https://hub.docker.com":{"email":"alice@example.com","username":"alice","uuid":"u-1"},"username":"other"}"#,
        );
        assert_eq!(parse(&t).unwrap().username.as_deref(), Some("alice"));
        let t = token(r#"{"exp":2000000000,"sub":"samlp|x"}"#);
        assert_eq!(parse(&t).unwrap().username, None);
    }

    #[test]
    fn fractional_exp_and_padding_are_accepted() {
        let payload = base64::engine::general_purpose::URL_SAFE.encode(r#"{"exp":1700000000.5}"#);
        let t = format!("{}.{payload}.{}", b64("{}"), b64("s"));
        assert_eq!(parse(&t).unwrap().exp, Some(1_700_000_000));
    }

    #[test]
    fn freshness_respects_the_margin() {
        let t = token(r#"{"exp":1000}"#);
        assert!(is_fresh(&t, 900, FRESHNESS_MARGIN));
        assert!(is_fresh(&t, 940, FRESHNESS_MARGIN));
        assert!(
            !is_fresh(&t, 941, FRESHNESS_MARGIN),
            "59 s left is not enough"
        );
        assert!(!is_fresh(&t, 2000, FRESHNESS_MARGIN));
        assert!(!is_fresh(&t, u64::MAX, FRESHNESS_MARGIN), "no overflow");
    }

    #[test]
    fn a_token_without_exp_is_never_fresh() {
        let t = token(r#"{"sub":"x"}"#);
        assert!(parse(&t).is_some());
        assert!(!is_fresh(&t, 0, FRESHNESS_MARGIN));
        for exp in [r#""soon""#, "-5", "null", "1e300", "[]"] {
            let t = token(&format!(r#"{{"exp":{exp}}}"#));
            assert_eq!(parse(&t).unwrap().exp, None, "{exp}");
            assert!(!is_fresh(&t, 0, FRESHNESS_MARGIN), "{exp}");
        }
    }

    #[test]
    fn malformed_tokens_are_rejected_and_never_fresh() {
        let good_payload = b64(r#"{"exp":4000000000}"#);
        let h = b64("{}");
        let cases = [
            String::new(),
            ".".into(),
            "..".into(),
            "not-a-jwt".into(),
            "a.b".into(),
            format!("{h}.{good_payload}"),
            format!("{h}.{good_payload}.sig.extra"),
            format!(".{good_payload}.sig"),
            format!("{h}..sig"),
            format!("{h}.{good_payload}.s i g"),
            format!("{h}.{good_payload}.sig\n"),
            format!("{h}.{}.sig", b64("not json")),
            format!("{h}.{}.sig", b64("[1,2]")),
            format!("{h}.{}.sig", b64("\"str\"")),
            format!("{}.{good_payload}.sig", b64("[]")),
            format!("{h}.@@@@.sig"),
            format!("{h}.{good_payload}.%%%"),
            format!("{h}.{}.sig", b64(r#"{"exp":4000000000"#)),
            "é.é.é".into(),
            "a".repeat(MAX_LEN + 1),
        ];
        for t in &cases {
            assert!(parse(t).is_none(), "{t:?}");
            assert!(!is_fresh(t, 0, FRESHNESS_MARGIN), "{t:?}");
        }
        // The same parts, assembled correctly, do parse: the cases above fail for their flaw.
        assert!(is_fresh(
            &format!("{h}.{good_payload}.{}", b64("sig")),
            0,
            FRESHNESS_MARGIN
        ));
    }

    #[test]
    fn an_empty_signature_is_tolerated() {
        // Unsigned (alg "none") JWTs have an empty third part; shape-wise still a JWT.
        let t = format!("{}.{}.", b64("{}"), b64(r#"{"exp":5}"#));
        assert_eq!(parse(&t).unwrap().exp, Some(5));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_on_any_text(s in "\\PC*") {
            let _ = parse(&s);
            let _ = is_fresh(&s, u64::MAX, FRESHNESS_MARGIN);
        }

        #[test]
        fn parse_never_panics_on_any_decoded_parts(
            header in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..128),
            exp in proptest::num::i64::ANY,
        ) {
            let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
            let _ = parse(&format!("{}.{}.{}", enc(&header), enc(&payload), enc(&header)));
            let with_exp = format!("{}.{}.sig", b64("{}"), b64(&format!("{{\"exp\":{exp}}}")));
            let claims = parse(&with_exp).unwrap();
            proptest::prop_assert_eq!(claims.exp, u64::try_from(exp).ok());
        }
    }

    /// Property on tokens one damage away from a good one: a token is
    /// handed out only if it is still a well-formed JWT with a future `exp`, judged by an
    /// independent reading; anything malformed counts as expired.
    #[test]
    fn damaged_tokens_are_fresh_only_when_still_well_formed() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        use std::cell::Cell;

        const CASES: u32 = 3000;
        const NOW: u64 = 1_700_000_000;

        /// The oracle: exactly three parts of base64url characters, header and payload
        /// non-empty JSON objects, and the payload's integer `exp`.
        fn well_formed_exp(t: &str) -> Option<Option<u64>> {
            let parts: Vec<&str> = t.split('.').collect();
            let b64 = |p: &str| {
                p.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'=')
                    .then(|| BASE64URL.decode(p).ok())
                    .flatten()
            };
            let object = |p: &str| -> Option<serde_json::Map<String, serde_json::Value>> {
                serde_json::from_slice(&b64(p)?).ok()
            };
            if parts.len() != 3 || parts[0].is_empty() || parts[1].is_empty() {
                return None;
            }
            object(parts[0])?;
            let payload = object(parts[1])?;
            b64(parts[2])?;
            Some(payload.get("exp").and_then(|e| e.as_u64()))
        }

        #[derive(Debug, Clone)]
        enum Damage {
            Delete(usize),
            Insert(usize, char),
            Replace(usize, char),
            Truncate(usize),
            SwapParts,
        }
        let damage = prop_oneof![
            any::<usize>().prop_map(Damage::Delete),
            (
                any::<usize>(),
                prop::sample::select(vec![
                    '.', '=', '-', '_', '+', '/', ' ', 'A', 'z', '0', '\n', 'é', '\u{0}'
                ])
            )
                .prop_map(|(i, c)| Damage::Insert(i, c)),
            (
                any::<usize>(),
                prop::sample::select(vec!['.', '=', '+', '%', 'A', 'e', '\t', '€'])
            )
                .prop_map(|(i, c)| Damage::Replace(i, c)),
            any::<usize>().prop_map(Damage::Truncate),
            Just(Damage::SwapParts),
        ];
        let claims = prop_oneof![
            Just(r#"{"exp":4000000000,"sub":"s"}"#.to_string()),
            Just(r#"{"exp":4000000000.5}"#.to_string()),
            Just(r#"{"username":"u","exp":1700000059}"#.to_string()),
            (0u64..5_000_000_000).prop_map(|e| format!(r#"{{"exp":{e}}}"#)),
        ];
        let strategy = (claims, prop::collection::vec(damage, 0..4));

        let (malformed, well_formed, fresh) = (Cell::new(0), Cell::new(0), Cell::new(0));
        let mut runner = TestRunner::new(Config::with_cases(CASES));
        runner
            .run(&strategy, |(payload, damages)| {
                let mut t: Vec<char> = token(&payload).chars().collect();
                for d in damages {
                    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
                    match d {
                        Damage::Delete(i) if !t.is_empty() => {
                            t.remove(at(i, t.len()));
                        }
                        Damage::Insert(i, c) => t.insert(at(i, t.len() + 1), c),
                        Damage::Replace(i, c) if !t.is_empty() => {
                            let i = at(i, t.len());
                            t[i] = c;
                        }
                        Damage::Truncate(i) => t.truncate(at(i, t.len() + 1)),
                        Damage::SwapParts => {
                            let s: String = t.iter().collect();
                            let mut p: Vec<&str> = s.split('.').collect();
                            if p.len() >= 2 {
                                p.swap(0, 1);
                            }
                            t = p.join(".").chars().collect();
                        }
                        _ => {}
                    }
                }
                let t: String = t.into_iter().collect();
                let is_fresh_now = is_fresh(&t, NOW, FRESHNESS_MARGIN);
                match well_formed_exp(&t) {
                    None => {
                        malformed.set(malformed.get() + 1);
                        prop_assert!(!is_fresh_now, "malformed but fresh: {t:?}");
                        prop_assert!(parse(&t).is_none(), "malformed but parsed: {t:?}");
                    }
                    Some(exp) => {
                        well_formed.set(well_formed.get() + 1);
                        prop_assert!(parse(&t).is_some(), "well-formed but refused: {t:?}");
                        if let Some(exp) = exp {
                            prop_assert_eq!(is_fresh_now, exp >= NOW + 60, "{:?}", t);
                        }
                    }
                }
                if is_fresh_now {
                    fresh.set(fresh.get() + 1);
                }
                Ok(())
            })
            .unwrap();
        let line = format!(
            "property jwt-expiry: {CASES} damaged tokens, {} malformed (all treated as expired), {} still well-formed ({} fresh), 0 panics",
            malformed.get(),
            well_formed.get(),
            fresh.get()
        );
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/target/tmp"));
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("reliability-properties-jwt.txt"),
            format!("{line}\n"),
        )
        .unwrap();
    }
}
