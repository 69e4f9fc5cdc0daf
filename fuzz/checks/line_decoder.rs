//! `line_decoder`: legacy line framing against a tiny reference model.
//!
//! Input: byte 0 is the split schedule ([`super::pieces`]); byte 1 picks
//! `max_line` (`1 + 4 * (b % 16)`, so `TooLarge` is easy to reach) and, in its
//! top four bits, which pieces arrive after a gap of at least the flush delay
//! (the others 1 ms after the previous one); the rest is the TCP byte stream.
//! Before some pieces the timer fires (`on_deadline`) and after the last one
//! it fires once more, late, to flush a trailing partial message.
//!
//! Invariants: no panic; `held_bytes()` and `buffer_capacity()` never exceed
//! `max_line + 1`; no message is longer than `max_line`; and the events are
//! exactly those of [`Reference`], a byte-at-a-time model of PROTOCOL.md §2
//! (split on `\n`, NULs dropped, then one `\r` before the `\n` dropped; a
//! message ended by the flush delay keeps its `\r`; longer than `max_line`
//! is `TooLarge`). With no gaps and no `TooLarge` this says the messages are
//! the input split on `\n` with `\r\n` handling and NULs removed.

use std::time::{Duration, Instant};

use soket::proto::line::{LineDecoder, LineEvent};

pub const FLUSH: Duration = Duration::from_millis(50);

/// An event detached from the buffer it borrowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Message(Vec<u8>),
    TooLarge,
}

pub fn run(data: &[u8]) {
    let [schedule, shape, stream @ ..] = data else {
        return;
    };
    let max_line = 1 + 4 * usize::from(shape & 15);
    let gaps = shape >> 4;
    let start = Instant::now();
    let mut now = start;
    let mut decoder = LineDecoder::new(max_line, FLUSH);
    let mut model = Reference::new(max_line);
    let mut got = Vec::new();
    for (i, piece) in super::pieces(*schedule, stream).into_iter().enumerate() {
        let gap = if gaps >> (i % 4) & 1 == 1 {
            // Exactly the flush delay, or a little more.
            FLUSH + Duration::from_millis((i % 3) as u64)
        } else {
            Duration::from_millis(1)
        };
        now += gap;
        if (i + usize::from(*schedule)) % 3 == 0 {
            decoder.on_deadline(now, |ev| got.push(checked(ev, max_line)));
            model.on_deadline(now);
            check_state(&decoder, &model, max_line);
        }
        decoder.decode(piece, now, |ev| got.push(checked(ev, max_line)));
        model.decode(piece, now);
        check_state(&decoder, &model, max_line);
    }
    now += FLUSH * 2;
    decoder.on_deadline(now, |ev| got.push(checked(ev, max_line)));
    model.on_deadline(now);
    check_state(&decoder, &model, max_line);
    assert!(decoder.is_idle(), "a partial message outlived its flush delay");
    assert_eq!(got, model.events, "events differ from the reference");
}

fn checked(event: LineEvent<'_>, max_line: usize) -> Ev {
    match event {
        LineEvent::Message(content) => {
            assert!(content.len() <= max_line, "message of {} bytes over max_line {max_line}", content.len());
            Ev::Message(content.to_vec())
        }
        LineEvent::TooLarge => Ev::TooLarge,
    }
}

fn check_state(decoder: &LineDecoder, model: &Reference, max_line: usize) {
    assert!(decoder.held_bytes() <= max_line + 1, "holds {} bytes", decoder.held_bytes());
    assert!(decoder.buffer_capacity() <= max_line + 1, "allocated {} bytes", decoder.buffer_capacity());
    let expected_deadline = model.pending.as_ref().map(|(_, last)| *last + FLUSH);
    assert_eq!(decoder.deadline(), expected_deadline, "deadline differs from the reference");
    assert_eq!(decoder.is_idle(), model.pending.is_none());
}

/// The framing rules, one byte at a time, with no bounds and no fast path.
pub struct Reference {
    max_line: usize,
    /// The partial message (NULs dropped) and when its last byte arrived.
    pending: Option<(Vec<u8>, Instant)>,
    pub events: Vec<Ev>,
}

impl Reference {
    pub fn new(max_line: usize) -> Reference {
        Reference { max_line, pending: None, events: Vec::new() }
    }

    pub fn decode(&mut self, input: &[u8], now: Instant) {
        if input.is_empty() {
            return;
        }
        self.on_deadline(now);
        for &byte in input {
            match byte {
                b'\n' => {
                    let content = self.pending.take().map(|(content, _)| content).unwrap_or_default();
                    let content = content.strip_suffix(b"\r").unwrap_or(&content);
                    self.emit(content.to_vec());
                }
                0 => {
                    self.pending.get_or_insert_with(|| (Vec::new(), now));
                }
                _ => self.pending.get_or_insert_with(|| (Vec::new(), now)).0.push(byte),
            }
        }
        if let Some((_, last)) = &mut self.pending {
            *last = now;
        }
    }

    pub fn on_deadline(&mut self, now: Instant) {
        match self.pending.take() {
            // No terminator: a trailing `\r` is content.
            Some((content, last)) if now >= last + FLUSH => self.emit(content),
            still_pending => self.pending = still_pending,
        }
    }

    fn emit(&mut self, content: Vec<u8>) {
        if content.len() > self.max_line {
            self.events.push(Ev::TooLarge);
        } else {
            self.events.push(Ev::Message(content));
        }
    }
}
