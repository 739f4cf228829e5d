//! Text from elsewhere (a platform's error, another program's output) made fit for the
//! helper's one-line messages.

/// One line, always: platform texts sometimes span several.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first line of a program's output worth quoting (`skip` passes over others): one line
/// of at most 200 characters, without control characters. Only a failure's output is
/// quoted.
pub fn first_line(bytes: &[u8], skip: impl Fn(&str) -> bool) -> Option<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !skip(l))
        .map(|l| {
            one_line(l)
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_worth_quoting_is_one_short_line() {
        let out = b"\n  [GNUPG:] NO_SECKEY 1\ngpg:\tdecryption\x1b[31m failed\n";
        assert_eq!(
            first_line(out, |l| l.starts_with("[GNUPG:]")).as_deref(),
            Some("gpg: decryption[31m failed")
        );
        assert_eq!(first_line(b" \n", |_| false), None);
        assert_eq!(first_line(&[b'x'; 500], |_| false).unwrap().len(), 200);
    }
}
