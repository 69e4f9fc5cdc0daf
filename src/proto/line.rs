//! Legacy line framing (PROTOCOL.md §2): newline or flush delay, NULs dropped, max line. No sockets, no clocks.
//!
//! A message ends at `\n` (a `\r` right before it is dropped) or, because the original
//! clients never send a terminator, when no new byte has arrived for the flush delay.
//! NUL bytes are dropped anywhere. Content is limited to `max_line_bytes` (counted after
//! dropping NULs and the terminator); a longer message is discarded whole and reported
//! once as [`LineEvent::TooLarge`]. UTF-8 validity is not checked here: the hub replaces
//! invalid sequences.
//!
//! Time is a parameter, as in quinn-proto: the caller passes `now` to
//! [`LineDecoder::decode`], folds [`LineDecoder::deadline`] into its poll timeout and
//! calls [`LineDecoder::on_deadline`] when it passes.

use std::time::{Duration, Instant};

/// Smallest allocation for a held partial line, so a byte-at-a-time sender doesn't
/// cause a reallocation per byte at the start.
const MIN_HELD_CAPACITY: usize = 64;

/// One framing result, in the order the messages were received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEvent<'a> {
    /// A whole message: its content with NULs and the terminator (`\n` or `\r\n`)
    /// removed. May be empty (a bare `\n`, or a line of NULs only): the hub ignores
    /// empty messages except as a failed name attempt (`!ERR name_invalid`).
    /// Borrows from the caller's input when possible, else from the decoder's buffer.
    Message(&'a [u8]),
    /// A message over `max_line_bytes` was discarded whole (answer `!ERR too_large`).
    /// Reported once per oversized message; nothing of it is delivered.
    TooLarge,
}

/// How a held partial message came to an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// By `\n`: a `\r` right before it is part of the terminator.
    Newline,
    /// By the flush delay: there is no terminator, so a trailing `\r` is content.
    FlushDelay,
}

/// Splits a legacy TCP byte stream into messages.
///
/// Whole lines in the input that contain no NUL are yielded as slices of the input
/// without copying. Only a partial line (or a line with NULs) is copied into an
/// internal buffer, which never holds more than `max_line_bytes + 1` bytes (content
/// plus a possible `\r` awaiting its `\n`); past that the rest of the message is only
/// scanned for its end and discarded. Work is O(n) over any split of the stream:
/// held bytes are never rescanned.
#[derive(Debug)]
pub struct LineDecoder {
    max_line_bytes: usize,
    flush_delay: Duration,
    /// Content of the partial message so far, NULs already dropped.
    held: Vec<u8>,
    /// The partial message passed the bound: `held` is empty and stays so until its end.
    oversized: bool,
    /// When the last byte of the partial message arrived; `None` iff nothing is pending.
    /// A partial message may be pending with `held` empty (only NULs so far, or oversized).
    last_byte_at: Option<Instant>,
}

impl LineDecoder {
    /// A decoder accepting messages of at most `max_line_bytes` content bytes, which ends
    /// an unterminated message after `flush_delay` without a new byte. Allocates nothing.
    pub fn new(max_line_bytes: usize, flush_delay: Duration) -> Self {
        LineDecoder { max_line_bytes, flush_delay, held: Vec::new(), oversized: false, last_byte_at: None }
    }

    /// Consumes all of `input` (bytes just read at `now`), calling `on_event` for each
    /// complete message, in order. Bytes after the last `\n` are held as a partial
    /// message whose flush-delay clock restarts at `now`.
    ///
    /// If a held partial message's deadline is already past at `now` (the caller read
    /// before handling the timer), that message is emitted first, as
    /// [`on_deadline`](Self::on_deadline) would have, so the outcome doesn't depend on
    /// the order the caller handles events in. Empty `input` changes nothing.
    pub fn decode(&mut self, input: &[u8], now: Instant, mut on_event: impl FnMut(LineEvent<'_>)) {
        if input.is_empty() {
            return;
        }
        if self.deadline().is_some_and(|deadline| now >= deadline) {
            self.finish(End::FlushDelay, &mut on_event);
        }
        let mut rest = input;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (line, newline_and_tail) = rest.split_at(pos);
            rest = newline_and_tail.get(1..).unwrap_or_default();
            if self.last_byte_at.is_none() && !line.contains(&0) {
                // Fast path: a whole line in this read, nothing to strip but the `\r`.
                let content = line.strip_suffix(b"\r").unwrap_or(line);
                if content.len() > self.max_line_bytes {
                    on_event(LineEvent::TooLarge);
                } else {
                    on_event(LineEvent::Message(content));
                }
            } else {
                self.push_content(line);
                self.finish(End::Newline, &mut on_event);
            }
        }
        if !rest.is_empty() {
            self.push_content(rest);
            self.last_byte_at = Some(now);
        }
    }

    /// When a held partial message becomes whole by the flush delay: `Some(last byte's
    /// arrival + flush_delay)`. `None` when nothing is pending, or when that instant
    /// is not representable (an absurd flush delay means "never").
    pub fn deadline(&self) -> Option<Instant> {
        self.last_byte_at?.checked_add(self.flush_delay)
    }

    /// Call at or after [`deadline`](Self::deadline): emits the held partial message as
    /// a [`LineEvent::Message`] (a trailing `\r` kept, as there is no terminator), or
    /// [`LineEvent::TooLarge`] if it was oversized. Before the deadline, or with nothing
    /// pending, it does nothing, so a spurious or early wake-up is harmless.
    pub fn on_deadline(&mut self, now: Instant, mut on_event: impl FnMut(LineEvent<'_>)) {
        if self.deadline().is_some_and(|deadline| now >= deadline) {
            self.finish(End::FlushDelay, &mut on_event);
        }
    }

    /// True if no partial message is pending (so no deadline, and the buffer may go).
    pub fn is_idle(&self) -> bool {
        self.last_byte_at.is_none()
    }

    /// Content bytes of the pending partial message held so far (at most
    /// `max_line_bytes + 1`; 0 once it is known to be oversized).
    pub fn held_bytes(&self) -> usize {
        self.held.len()
    }

    /// Bytes allocated for held content (at most `max_line_bytes + 1`), for memory accounting.
    pub fn buffer_capacity(&self) -> usize {
        self.held.capacity()
    }

    /// Frees the internal buffer when idle, so a quiet connection holds no line buffer.
    /// Does nothing while a partial message is pending.
    pub fn release_idle_memory(&mut self) {
        if self.is_idle() {
            self.held = Vec::new();
        }
    }

    /// Largest `held` length that may still become an acceptable message: the content
    /// limit plus a `\r` that a following `\n` would turn into terminator.
    fn held_limit(&self) -> usize {
        self.max_line_bytes.saturating_add(1)
    }

    /// Appends `bytes` minus NULs to the partial message, switching to discard mode
    /// (and freeing nothing, but holding nothing) once it can no longer fit.
    fn push_content(&mut self, bytes: &[u8]) {
        for segment in bytes.split(|&b| b == 0) {
            if self.oversized {
                return;
            }
            if segment.is_empty() {
                continue;
            }
            let needed = self.held.len().saturating_add(segment.len());
            if needed > self.held_limit() {
                self.oversized = true;
                self.held.clear();
                return;
            }
            self.reserve_bounded(needed);
            self.held.extend_from_slice(segment);
        }
    }

    /// Grows `held` to hold `needed` bytes: doubling for amortised O(1) appends, but
    /// never past the limit, so the allocation stays within `max_line_bytes + 1`.
    fn reserve_bounded(&mut self, needed: usize) {
        let capacity = self.held.capacity();
        if needed <= capacity {
            return;
        }
        let new_capacity = capacity.saturating_mul(2).max(MIN_HELD_CAPACITY).min(self.held_limit()).max(needed);
        self.held.reserve_exact(new_capacity.saturating_sub(self.held.len()));
    }

    /// Emits the pending message (ended by `end`) and resets to idle, keeping the buffer
    /// for reuse until [`release_idle_memory`](Self::release_idle_memory).
    fn finish(&mut self, end: End, on_event: &mut impl FnMut(LineEvent<'_>)) {
        let held = self.held.as_slice();
        let content = match end {
            End::Newline => held.strip_suffix(b"\r").unwrap_or(held),
            End::FlushDelay => held,
        };
        if self.oversized || content.len() > self.max_line_bytes {
            on_event(LineEvent::TooLarge);
        } else {
            on_event(LineEvent::Message(content));
        }
        self.held.clear();
        self.oversized = false;
        self.last_byte_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLUSH: Duration = Duration::from_millis(50);

    /// An owned copy of an event, so tests can collect them.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Msg(Vec<u8>),
        TooLarge,
    }

    fn own(ev: LineEvent<'_>) -> Ev {
        match ev {
            LineEvent::Message(m) => Ev::Msg(m.to_vec()),
            LineEvent::TooLarge => Ev::TooLarge,
        }
    }

    fn msg(s: &str) -> Ev {
        Ev::Msg(s.as_bytes().to_vec())
    }

    /// Feeds `chunks` all at `now`, collecting events.
    fn feed(dec: &mut LineDecoder, chunks: &[&[u8]], now: Instant) -> Vec<Ev> {
        let mut out = Vec::new();
        for chunk in chunks {
            dec.decode(chunk, now, |ev| out.push(own(ev)));
        }
        out
    }

    fn decode_all(max: usize, input: &[u8]) -> Vec<Ev> {
        let mut dec = LineDecoder::new(max, FLUSH);
        feed(&mut dec, &[input], Instant::now())
    }

    #[test]
    fn whole_lines_in_one_read() {
        assert_eq!(decode_all(100, b"alice\nhello world\n"), vec![msg("alice"), msg("hello world")]);
    }

    #[test]
    fn fast_path_borrows_input() {
        let input = b"abc\n".to_vec();
        let mut dec = LineDecoder::new(100, FLUSH);
        let mut borrowed = false;
        dec.decode(&input, Instant::now(), |ev| {
            if let LineEvent::Message(m) = ev {
                borrowed = std::ptr::eq(m.as_ptr(), input.as_ptr());
            }
        });
        assert!(borrowed, "a whole NUL-free line must be a slice of the input");
        assert_eq!(dec.buffer_capacity(), 0, "no allocation on the fast path");
        assert!(dec.is_idle());
    }

    #[test]
    fn split_at_every_offset_gives_same_events() {
        let input: &[u8] = b"alice\r\nbob..444..alice : hi\n\0\0\n\r\nx\0y\r\0\n\rz\n0123456789\nabcdefghijk\n\n";
        let expected = decode_all(10, input);
        assert_eq!(
            expected,
            vec![
                msg("alice"),
                Ev::TooLarge,
                msg(""),
                msg(""),
                msg("xy"),
                msg("\rz"),
                msg("0123456789"),
                Ev::TooLarge,
                msg(""),
            ]
        );
        let now = Instant::now();
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let mut dec = LineDecoder::new(10, FLUSH);
                let (a, bc) = input.split_at(i);
                let (b, c) = bc.split_at(j - i);
                assert_eq!(feed(&mut dec, &[a, b, c], now), expected, "split at {i}, {j}");
                assert!(dec.is_idle());
            }
        }
    }

    #[test]
    fn crlf_and_lf_are_the_same() {
        assert_eq!(decode_all(100, b"hi\r\n"), decode_all(100, b"hi\n"));
        // Only one `\r` right before `\n` is terminator; others are content.
        assert_eq!(decode_all(100, b"a\r\r\n"), vec![msg("a\r")]);
        assert_eq!(decode_all(100, b"a\rb\n"), vec![msg("a\rb")]);
        assert_eq!(decode_all(100, b"\r\n"), vec![msg("")]);
    }

    #[test]
    fn nuls_are_dropped() {
        assert_eq!(decode_all(100, b"\0al\0ice\0\n"), vec![msg("alice")]);
        assert_eq!(decode_all(100, b"\0\0\0\n"), vec![msg("")]);
        // NULs between `\r` and `\n` don't stop the `\r` being terminator.
        assert_eq!(decode_all(100, b"hi\r\0\n"), vec![msg("hi")]);
        // NULs don't count toward the limit.
        assert_eq!(decode_all(3, b"a\0b\0c\0\0\n"), vec![msg("abc")]);
    }

    #[test]
    fn nul_only_partial_flushes_as_empty_message() {
        let t0 = Instant::now();
        let mut dec = LineDecoder::new(100, FLUSH);
        assert!(feed(&mut dec, &[b"\0\0"], t0).is_empty());
        assert!(!dec.is_idle());
        assert_eq!(dec.deadline(), Some(t0 + FLUSH));
        let mut out = Vec::new();
        dec.on_deadline(t0 + FLUSH, |ev| out.push(own(ev)));
        assert_eq!(out, vec![msg("")]);
    }

    #[test]
    fn flush_delay_ends_a_message() {
        let t0 = Instant::now();
        let mut dec = LineDecoder::new(100, FLUSH);
        assert_eq!(dec.deadline(), None);
        assert!(feed(&mut dec, &[b"alice"], t0).is_empty());
        assert_eq!(dec.deadline(), Some(t0 + FLUSH));
        let mut out = Vec::new();
        dec.on_deadline(t0 + FLUSH - Duration::from_millis(1), |ev| out.push(own(ev)));
        assert!(out.is_empty(), "early wake-up does nothing");
        dec.on_deadline(t0 + FLUSH, |ev| out.push(own(ev)));
        assert_eq!(out, vec![msg("alice")]);
        assert!(dec.is_idle());
        assert_eq!(dec.deadline(), None);
        out.clear();
        dec.on_deadline(t0 + FLUSH * 10, |ev| out.push(own(ev)));
        assert!(out.is_empty(), "nothing pending, nothing emitted");
    }

    #[test]
    fn new_byte_restarts_the_flush_clock() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(30);
        let mut dec = LineDecoder::new(100, FLUSH);
        feed(&mut dec, &[b"ali"], t0);
        feed(&mut dec, &[b"ce"], t1);
        assert_eq!(dec.deadline(), Some(t1 + FLUSH));
        let mut out = Vec::new();
        dec.on_deadline(t0 + FLUSH, |ev| out.push(own(ev)));
        assert!(out.is_empty(), "the old deadline no longer applies");
        dec.on_deadline(t1 + FLUSH, |ev| out.push(own(ev)));
        assert_eq!(out, vec![msg("alice")]);
    }

    #[test]
    fn read_after_missed_deadline_flushes_first() {
        let t0 = Instant::now();
        let mut dec = LineDecoder::new(100, FLUSH);
        feed(&mut dec, &[b"alice"], t0);
        // The caller reads new bytes before handling the timer: "alice" was already whole.
        let out = feed(&mut dec, &[b"hello\n"], t0 + FLUSH * 2);
        assert_eq!(out, vec![msg("alice"), msg("hello")]);
    }

    #[test]
    fn flush_keeps_trailing_cr_as_content() {
        let t0 = Instant::now();
        let mut dec = LineDecoder::new(100, FLUSH);
        feed(&mut dec, &[b"hi\r"], t0);
        let mut out = Vec::new();
        dec.on_deadline(t0 + FLUSH, |ev| out.push(own(ev)));
        assert_eq!(out, vec![msg("hi\r")]);
    }

    #[test]
    fn newline_completes_held_partial() {
        let t0 = Instant::now();
        let mut dec = LineDecoder::new(100, FLUSH);
        let out = feed(&mut dec, &[b"hel", b"lo\nwor"], t0);
        assert_eq!(out, vec![msg("hello")]);
        assert_eq!(dec.held_bytes(), 3);
        let out = feed(&mut dec, &[b"ld\n"], t0);
        assert_eq!(out, vec![msg("world")]);
        assert!(dec.is_idle());
        assert_eq!(dec.deadline(), None);
    }

    #[test]
    fn exactly_max_is_accepted_max_plus_one_is_too_large() {
        let max = 8;
        let exact = "x".repeat(max);
        let over = "y".repeat(max + 1);
        let input = format!("{exact}\n{exact}\r\n{over}\nnext\n");
        let expected = vec![msg(&exact), msg(&exact), Ev::TooLarge, msg("next")];
        assert_eq!(decode_all(max, input.as_bytes()), expected);
        // Byte at a time takes the held path; same outcome.
        let mut dec = LineDecoder::new(max, FLUSH);
        let now = Instant::now();
        let chunks: Vec<&[u8]> = input.as_bytes().chunks(1).collect();
        assert_eq!(feed(&mut dec, &chunks, now), expected);
        assert!(dec.buffer_capacity() <= max + 1);
    }

    #[test]
    fn max_zero_accepts_only_empty() {
        assert_eq!(decode_all(0, b"\n\r\n\0\na\n"), vec![msg(""), msg(""), msg(""), Ev::TooLarge]);
    }

    #[test]
    fn oversized_line_ended_by_flush_delay_is_too_large() {
        let t0 = Instant::now();
        let mut dec = LineDecoder::new(4, FLUSH);
        assert!(feed(&mut dec, &[b"abc", b"def"], t0).is_empty());
        assert_eq!(dec.held_bytes(), 0, "oversized content is not held");
        assert_eq!(dec.deadline(), Some(t0 + FLUSH));
        let mut out = Vec::new();
        dec.on_deadline(t0 + FLUSH, |ev| out.push(own(ev)));
        assert_eq!(out, vec![Ev::TooLarge]);
        // The next message is unaffected.
        let out = feed(&mut dec, &[b"ok\n"], t0 + FLUSH);
        assert_eq!(out, vec![msg("ok")]);
    }

    #[test]
    fn max_plus_cr_at_flush_is_too_large() {
        // `\r` is only terminator before `\n`; at the flush delay it is content.
        let t0 = Instant::now();
        let mut dec = LineDecoder::new(4, FLUSH);
        feed(&mut dec, &[b"abcd\r"], t0);
        assert_eq!(dec.held_bytes(), 5);
        let mut out = Vec::new();
        dec.on_deadline(t0 + FLUSH, |ev| out.push(own(ev)));
        assert_eq!(out, vec![Ev::TooLarge]);
    }

    #[test]
    fn oversized_reported_once() {
        let t0 = Instant::now();
        let mut dec = LineDecoder::new(4, FLUSH);
        let mut out = Vec::new();
        for _ in 0..100 {
            dec.decode(b"zzzzzzzz", t0, |ev| out.push(own(ev)));
        }
        dec.decode(b"zz\nhi\n", t0, |ev| out.push(own(ev)));
        assert_eq!(out, vec![Ev::TooLarge, msg("hi")]);
    }

    #[test]
    fn megabyte_line_byte_at_a_time_stays_bounded() {
        let max = 1024;
        let t0 = Instant::now();
        let mut dec = LineDecoder::new(max, FLUSH);
        let mut out = Vec::new();
        for i in 0..1_000_000u32 {
            let byte = [b'a' + (i % 26) as u8];
            dec.decode(&byte, t0, |ev| out.push(own(ev)));
            assert!(dec.held_bytes() <= max + 1);
            assert!(dec.buffer_capacity() <= max + 1);
        }
        assert!(out.is_empty());
        dec.decode(b"\n", t0, |ev| out.push(own(ev)));
        assert_eq!(out, vec![Ev::TooLarge]);
        assert!(dec.is_idle());
    }

    #[test]
    fn release_idle_memory_frees_only_when_idle() {
        let t0 = Instant::now();
        let mut dec = LineDecoder::new(100, FLUSH);
        feed(&mut dec, &[b"partial"], t0);
        dec.release_idle_memory();
        assert_eq!(dec.held_bytes(), 7, "pending content survives");
        feed(&mut dec, &[b"\n"], t0);
        assert!(dec.is_idle());
        assert!(dec.buffer_capacity() > 0);
        dec.release_idle_memory();
        assert_eq!(dec.buffer_capacity(), 0);
    }

    #[test]
    fn empty_input_changes_nothing() {
        let t0 = Instant::now();
        let mut dec = LineDecoder::new(100, FLUSH);
        assert!(feed(&mut dec, &[b""], t0).is_empty());
        assert!(dec.is_idle());
        feed(&mut dec, &[b"a"], t0);
        // An empty read later neither restarts the clock nor flushes.
        assert!(feed(&mut dec, &[b""], t0 + FLUSH * 3).is_empty());
        assert_eq!(dec.deadline(), Some(t0 + FLUSH));
    }

    #[test]
    fn huge_flush_delay_means_never() {
        let mut dec = LineDecoder::new(100, Duration::MAX);
        feed(&mut dec, &[b"a"], Instant::now());
        assert_eq!(dec.deadline(), None);
        assert!(!dec.is_idle());
    }

    #[test]
    fn invalid_utf8_passes_through() {
        assert_eq!(decode_all(100, b"\xff\xfe\n"), vec![Ev::Msg(vec![0xff, 0xfe])]);
    }

    /// The contract in its plainest form: split on `\n`, drop NULs, strip one `\r`, check
    /// the size; an unterminated tail is one more message at the flush delay.
    fn reference(max: usize, input: &[u8]) -> Vec<Ev> {
        let mut out = Vec::new();
        let mut parts: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
        let tail = parts.pop().unwrap_or_default();
        let judge = |content: Vec<u8>| {
            if content.len() > max { Ev::TooLarge } else { Ev::Msg(content) }
        };
        for part in parts {
            let mut content: Vec<u8> = part.iter().copied().filter(|&b| b != 0).collect();
            if content.last() == Some(&b'\r') {
                content.pop();
            }
            out.push(judge(content));
        }
        if !tail.is_empty() {
            out.push(judge(tail.iter().copied().filter(|&b| b != 0).collect()));
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn matches_reference_over_any_split(
            input in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'b', 0u8, b'\r', b'\n']),
                0..200,
            ),
            cuts in proptest::collection::vec(0usize..200, 0..8),
            max in 0usize..12,
        ) {
            let t0 = Instant::now();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut dec = LineDecoder::new(max, FLUSH);
            let mut out = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([input.len()]) {
                dec.decode(&input[start..cut], t0, |ev| out.push(own(ev)));
                proptest::prop_assert!(dec.buffer_capacity() <= max + 1);
                start = cut;
            }
            dec.on_deadline(t0 + FLUSH, |ev| out.push(own(ev)));
            proptest::prop_assert!(dec.is_idle());
            proptest::prop_assert_eq!(out, reference(max, &input));
        }
    }
}
