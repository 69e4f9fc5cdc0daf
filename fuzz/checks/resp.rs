//! `resp`: arbitrary bytes through `redis::resp::ReplyDecoder`.
//!
//! Byte 0 chooses how the rest is cut (`pieces`); byte 1 is `max_bulk` (0 to
//! 255); byte 2 holds `max_elements` (low 4 bits, 0 to 15) and `max_depth`
//! (high 4 bits, 0 to 15). Invariants: no panic; the split stream gives the
//! same replies and the same error as the whole one; once drained, the
//! decoder holds at most `max(max_bulk, MAX_LINE) + 1` bytes; a failed decoder
//! repeats its error and holds nothing; every reply is within the limits; and
//! each reply encoded again decodes to itself.

use soket::redis::resp::{MAX_LINE, Reply, ReplyDecoder, RespError, RespLimits};

use super::pieces;

pub fn run(data: &[u8]) {
    let [schedule, bulk, shape, stream @ ..] = data else {
        return;
    };
    let limits = RespLimits {
        max_bulk: usize::from(*bulk),
        max_elements: usize::from(shape & 15),
        max_depth: usize::from(shape >> 4),
    };
    let whole = decode(limits, &[stream]);
    let split = decode(limits, &pieces(*schedule, stream));
    assert_eq!(split, whole, "a split changed the outcome");
    for reply in &whole.0 {
        within(reply, limits, 0);
        let mut wire = Vec::new();
        reply.encode(&mut wire);
        let (again, result) = decode(limits, &[&wire]);
        assert_eq!(result, Ok(()), "{wire:?}");
        assert_eq!(again.as_slice(), std::slice::from_ref(reply), "{wire:?}");
    }
}

type Outcome = (Vec<Reply>, Result<(), RespError>);

/// Replies and the result, checking the buffer bound after each drain.
fn decode(limits: RespLimits, chunks: &[&[u8]]) -> Outcome {
    let mut decoder = ReplyDecoder::new(limits);
    let mut replies = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk);
        loop {
            match decoder.next() {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) => break,
                Err(error) => {
                    assert_eq!(decoder.next(), Err(error), "a failed decoder repeats its error");
                    decoder.feed(b"+OK\r\n");
                    assert_eq!(decoder.next(), Err(error), "a failed decoder stays failed");
                    assert_eq!(decoder.buffered(), 0, "a failed decoder holds nothing");
                    return (replies, Err(error));
                }
            }
        }
        let bound = limits.max_bulk.max(MAX_LINE) + 1;
        assert!(decoder.buffered() <= bound, "{} bytes held, bound {bound}", decoder.buffered());
        decoder.release_idle_memory();
    }
    (replies, Ok(()))
}

fn within(reply: &Reply, limits: RespLimits, depth: usize) {
    match reply {
        Reply::Simple(text) | Reply::Error(text) => {
            assert!(!text.contains(&b'\r') && !text.contains(&b'\n'), "{text:?}");
        }
        Reply::Bulk(Some(data)) => assert!(data.len() <= limits.max_bulk),
        Reply::Array(Some(items)) if !items.is_empty() => {
            assert!(depth < limits.max_depth, "nested {depth} deep");
            assert!(items.len() <= limits.max_elements);
            for item in items {
                within(item, limits, depth + 1);
            }
        }
        _ => {}
    }
}
