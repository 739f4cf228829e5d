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

/// Read at most `cap` bytes from `reader` into a buffer that is wiped when dropped. When the
/// buffer must grow, the old one is wiped before it is freed, so no copy is left behind (a
/// plain `read_to_end` leaves each outgrown buffer in freed memory).
pub fn read_capped(mut reader: impl std::io::Read, cap: usize) -> std::io::Result<Secret<Vec<u8>>> {
    let mut out = Secret::new(Vec::with_capacity(4096));
    let mut chunk = [0u8; 4096];
    let result = loop {
        let room = cap.saturating_sub(out.expose().len());
        if room == 0 {
            break Ok(());
        }
        let want = room.min(chunk.len());
        let n = match reader.read(&mut chunk[..want]) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        };
        let buf = out.expose_mut();
        if buf.len() + n > buf.capacity() {
            let mut bigger = Vec::with_capacity((buf.capacity() * 2).max(buf.len() + n));
            bigger.extend_from_slice(buf);
            buf.zeroize();
            *buf = bigger;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    chunk.zeroize();
    result.map(|()| out)
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
    fn a_growing_read_keeps_every_byte_up_to_the_cap() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(read_capped(&data[..], usize::MAX).unwrap().expose(), &data);
        assert_eq!(read_capped(&data[..], 10).unwrap().expose(), &data[..10]);
    }

    #[test]
    fn text_conversion_keeps_utf8_and_refuses_the_rest() {
        let s = Secret::new(b"pa\xc3\xa9ss".to_vec()).into_text().unwrap();
        assert_eq!(s.expose(), "pa\u{e9}ss");
        assert!(Secret::new(vec![0xff, 0xfe]).into_text().is_none());
    }
}
