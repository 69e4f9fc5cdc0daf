//! The rendered form of one hub event in one wire format, shared by every
//! receiver of that format. No framing: a connection adds its own (a
//! WebSocket text frame, a `\n` on TCP).

use std::ops::Range;
use std::rc::Rc;

/// One event's payload for every receiver of one format. When `entries` is
/// `Some` (a presence list), receiver `i`'s payload is `body` without the
/// bytes `entries[i]` (its own entry): every list differs, but none is
/// rendered or copied per receiver, each is sent as two slices of `body`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub body: Rc<[u8]>,
    pub entries: Option<Rc<[Range<usize>]>>,
    /// Binary messages that follow the text one on carriers that have them
    /// (Socket.IO's attachments); none for most formats.
    pub attachments: Option<Rc<[Rc<[u8]>]>>,
}

impl Rendered {
    /// A payload that is the same for every receiver.
    pub fn whole(body: impl Into<Rc<[u8]>>) -> Rendered {
        Rendered { body: body.into(), entries: None, attachments: None }
    }

    /// The bytes cut out for a receiver with `omit` ([`crate::chat::Recipient::omit`]):
    /// none without entries or without `omit`.
    fn cut(&self, omit: Option<u32>) -> Range<usize> {
        let end = self.body.len();
        match (&self.entries, omit) {
            (Some(entries), Some(i)) => {
                let range = usize::try_from(i).ok().and_then(|i| entries.get(i));
                // The hub numbers presence receivers by their place in the
                // very list the renderer made one entry per name of.
                range.cloned().expect("a presence receiver's index has an entry")
            }
            _ => end..end,
        }
    }

    /// The payload length a receiver with `omit` gets.
    pub fn payload_len(&self, omit: Option<u32>) -> usize {
        self.body.len() - self.cut(omit).len()
    }

    /// The two ranges of `body` to send, in order, to a receiver with `omit`
    /// (the second is empty when nothing is cut).
    pub fn parts(&self, omit: Option<u32>) -> (Range<usize>, Range<usize>) {
        let cut = self.cut(omit);
        (0..cut.start, cut.end..self.body.len())
    }

    /// The payload of a receiver with `omit`, joined (allocates; for tests and logs).
    pub fn payload(&self, omit: Option<u32>) -> Vec<u8> {
        let (before, after) = self.parts(omit);
        [&self.body[before], &self.body[after]].concat()
    }
}

/// Builds a list whose entries a receiver may have cut: `body` grows, and
/// each entry remembers its byte range.
#[derive(Default)]
pub(crate) struct ListBuilder {
    pub body: Vec<u8>,
    pub entries: Vec<Range<usize>>,
}

impl ListBuilder {
    pub fn finish(self) -> Rendered {
        Rendered { body: self.body.into(), entries: Some(self.entries.into()), attachments: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(body: &str, entries: &[Range<usize>]) -> Rendered {
        Rendered { body: Rc::from(body.as_bytes()), entries: Some(Rc::from(entries)), attachments: None }
    }

    #[test]
    fn a_receiver_gets_the_body_without_its_entry() {
        let rendered = list("3$*$*3alice$bob$", &[6..12, 12..16]);
        assert_eq!(rendered.payload(Some(0)), b"3$*$*3bob$");
        assert_eq!(rendered.payload(Some(1)), b"3$*$*3alice$");
        assert_eq!(rendered.payload(None), b"3$*$*3alice$bob$");
        assert_eq!(rendered.parts(Some(0)), (0..6, 12..16));
        assert_eq!(rendered.payload_len(Some(0)), 10);
        assert_eq!(rendered.payload_len(None), 16);
    }

    #[test]
    fn a_whole_payload_ignores_omit() {
        let rendered = Rendered::whole(&b"!JOINED r1 alice"[..]);
        assert_eq!(rendered.parts(Some(3)), (0..16, 16..16));
        assert_eq!(rendered.payload_len(Some(3)), 16);
        assert_eq!(rendered.payload(None), b"!JOINED r1 alice");
    }

    #[test]
    #[should_panic(expected = "has an entry")]
    fn an_index_without_entry_is_a_bug() {
        list("3$*$*3", &[]).parts(Some(0));
    }
}
