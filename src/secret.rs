//! A wrapper that keeps secrets out of `Debug` output, logs and panics, and wipes them
//! from memory when they are dropped.

use std::fmt;

use zeroize::Zeroize;

/// A secret value. `Debug` prints `REDACTED`; there is deliberately no `Display`. The
/// value is zeroized when the wrapper is dropped.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// Borrow the secret. Every call site is a place where the secret leaves the wrapper.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Borrow the secret mutably, to build it in place without copies.
    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Zeroize + Default> Secret<T> {
    /// Take the value out; the caller becomes responsible for wiping it.
    pub fn into_inner(mut self) -> T {
        std::mem::take(&mut self.0)
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

impl From<String> for Secret<String> {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl Secret<Vec<u8>> {
    /// The bytes as UTF-8 text, without a copy left behind; `None` when they are not UTF-8.
    pub fn into_text(self) -> Option<Secret<String>> {
        match String::from_utf8(self.into_inner()) {
            Ok(s) => Some(Secret::new(s)),
            Err(e) => {
                e.into_bytes().zeroize();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?}"), "REDACTED");
        assert_eq!(format!("{:?}", Some(&s)), "Some(REDACTED)");
        assert_eq!(s.expose(), "hunter2");
    }

    /// Dropping the wrapper runs `zeroize` on the value.
    #[test]
    fn drop_wipes_the_value() {
        use std::cell::Cell;
        use std::rc::Rc;
        struct Probe(Rc<Cell<bool>>);
        impl Zeroize for Probe {
            fn zeroize(&mut self) {
                self.0.set(true);
            }
        }
        let wiped = Rc::new(Cell::new(false));
        let secret = Secret::new(Probe(wiped.clone()));
        assert!(!wiped.get());
        drop(secret);
        assert!(wiped.get());
    }

    #[test]
    fn text_conversion_keeps_utf8_and_refuses_the_rest() {
        let s = Secret::new(b"pa\xc3\xa9ss".to_vec()).into_text().unwrap();
        assert_eq!(s.expose(), "pa\u{e9}ss");
        assert!(Secret::new(vec![0xff, 0xfe]).into_text().is_none());
    }
}
