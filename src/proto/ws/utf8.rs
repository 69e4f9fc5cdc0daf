//! Incremental UTF-8 validation that fails at the first invalid byte, even
//! when a code point is split across reads or fragments. Validates only; the
//! decoder owns the bytes.

use std::str;

/// The bytes seen so far can't be the start of valid UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidUtf8;

/// Validates a byte stream fed in arbitrary pieces.
///
/// Keeps at most 3 bytes: the start of a code point whose remaining bytes
/// have not arrived yet.
#[derive(Clone, Copy, Debug, Default)]
pub struct Utf8Validator {
    carry: [u8; 4],
    carry_len: usize,
}

impl Utf8Validator {
    /// A validator at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets any carried partial code point, for the next message.
    pub fn reset(&mut self) {
        self.carry_len = 0;
    }

    /// Whether a partial code point is carried (the stream so far would be
    /// invalid if it ended now).
    pub fn is_incomplete(&self) -> bool {
        self.carry_len != 0
    }

    /// Validates the next piece of the stream.
    ///
    /// Fails as soon as a byte makes the stream invalid, whatever follows;
    /// a piece that ends inside a code point is fine.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), InvalidUtf8> {
        let mut bytes = bytes;
        if self.carry_len != 0 {
            // Finish the carried code point one byte at a time: at most 3 more,
            // and `from_utf8` refuses an impossible prefix at its first bad byte.
            while self.carry_len != 0 {
                let Some((&byte, rest)) = bytes.split_first() else {
                    return Ok(());
                };
                bytes = rest;
                let Some(slot) = self.carry.get_mut(self.carry_len) else {
                    return Err(InvalidUtf8);
                };
                *slot = byte;
                self.carry_len += 1;
                let carried = self.carry.get(..self.carry_len).unwrap_or_default();
                match str::from_utf8(carried) {
                    Ok(_) => self.carry_len = 0,
                    Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                    Err(_) => {}
                }
            }
        }
        match str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            // `error_len() == None`: the input ends inside a code point that is
            // valid so far; carry it into the next piece.
            Err(e) if e.error_len().is_none() => {
                let tail = bytes.get(e.valid_up_to()..).unwrap_or_default();
                let Some(dst) = self.carry.get_mut(..tail.len()) else {
                    return Err(InvalidUtf8);
                };
                dst.copy_from_slice(tail);
                self.carry_len = tail.len();
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Ends the stream: a code point cut off at the end is invalid.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        if self.is_incomplete() {
            self.carry_len = 0;
            return Err(InvalidUtf8);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_split(bytes: &[u8], split: usize) -> Result<(), InvalidUtf8> {
        let (a, b) = bytes.split_at(split);
        let mut v = Utf8Validator::new();
        v.feed(a)?;
        v.feed(b)?;
        v.finish()
    }

    #[test]
    fn agrees_with_from_utf8_at_every_split() {
        let cases: &[&[u8]] = &[
            "κόσμε".as_bytes(),
            "a€b𝄞c".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf4\x90\x80\x80",
            b"\xe0\x80\xaf",
            b"\xf0\x9f\x98",
            b"\xc0\xaf",
            b"\xff",
            b"",
        ];
        for bytes in cases {
            let expected = str::from_utf8(bytes).is_ok();
            for split in 0..=bytes.len() {
                assert_eq!(validate_split(bytes, split).is_ok(), expected, "{bytes:?} at {split}");
            }
            let mut v = Utf8Validator::new();
            let byte_by_byte = bytes.iter().try_for_each(|b| v.feed(&[*b])).and_then(|()| v.finish());
            assert_eq!(byte_by_byte.is_ok(), expected, "{bytes:?} byte by byte");
        }
    }

    #[test]
    fn fails_at_first_invalid_byte() {
        // Autobahn 6.4.1: "κόσμε" then 0xF4 0x90 (past U+10FFFF) fails at 0x90.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed("κόσμε".as_bytes()), Ok(()));
        assert_eq!(v.feed(&[0xF4]), Ok(()));
        assert_eq!(v.feed(&[0x90]), Err(InvalidUtf8));
    }

    #[test]
    fn incomplete_tail_fails_at_finish() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[b'a', 0xE2, 0x82]), Ok(()));
        assert!(v.is_incomplete());
        assert_eq!(v.finish(), Err(InvalidUtf8));
    }
}
