//! Text from a server (or from a token's claims), made fit for one line of a message: a
//! server can say anything, including our own secret back to us.

/// Control characters become spaces, runs of space one, at most 200 characters, and no form
/// of any of `secrets` survives: as sent, JSON-escaped, or base64 (any alphabet, padded or
/// not) of a secret or of `user:secret`.
pub fn sanitize(text: &str, secrets: &[&str]) -> String {
    sanitize_for(text, None, secrets)
}

/// [sanitize], knowing the username that went with the secrets.
pub fn sanitize_for(text: &str, user: Option<&str>, secrets: &[&str]) -> String {
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    for form in secret_forms(user, secrets) {
        s = s.replace(&form, "REDACTED");
    }
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// Every form in which one of `secrets` could come back.
fn secret_forms(user: Option<&str>, secrets: &[&str]) -> Vec<String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    // Shorter strings would redact ordinary words.
    let secrets: Vec<&str> = secrets.iter().copied().filter(|s| s.len() >= 4).collect();
    let mut plain: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
    if let Some(user) = user {
        plain.extend(secrets.iter().map(|s| format!("{user}:{s}")));
    }
    let mut forms = Vec::new();
    for p in &plain {
        forms.push(p.clone());
        let json = serde_json::to_string(p).unwrap_or_default();
        forms.push(json[1..json.len() - 1].to_string());
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            forms.push(engine.encode(p));
        }
    }
    // Longest first, so that a form containing another goes whole.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    forms.retain(|f| !f.is_empty());
    forms
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn control_characters_go_and_long_text_is_cut() {
        let s = sanitize("bad\npassword\x1b[31m!\u{7}", &[]);
        assert_eq!(s, "bad password [31m!");
        assert!(sanitize(&"x".repeat(500), &[]).chars().count() <= 201);
    }

    #[test]
    fn no_form_of_the_secret_survives() {
        let secret = "hunter2-\"quoted\"/\\slash";
        let user = "alice";
        let forms = [
            secret.to_string(),
            serde_json::to_string(secret).unwrap(),
            STANDARD.encode(secret),
            STANDARD.encode(format!("{user}:{secret}")),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
        ];
        for form in &forms {
            let text = format!("Hub says: {form} is wrong");
            let out = sanitize_for(&text, Some(user), &[secret]);
            assert!(out.contains("REDACTED"), "{out}");
            for f in &forms {
                assert!(!out.contains(f.trim_matches('"')), "{f} in {out}");
            }
        }
        assert_eq!(
            sanitize_for("alice is a user", Some(user), &[secret]),
            "alice is a user"
        );
    }
}
