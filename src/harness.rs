//! Drives one whole connection (sniffing, HTTP, handshake, frames, the
//! legacy protocol, the hub) from bytes in memory, with a clock the caller
//! moves: the same [`Conn`] code the reactor runs, minus the socket. For fuzz
//! targets and tests that need every byte the server writes.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::chat::Hub;
use crate::config::{Config, Limits};
use crate::conn::{Conn, Renderings, Shared, Transport};
use crate::ids::{ConnId, Endpoint};

/// A byte stream in memory: what the peer sent waits in `input`, what the
/// server wrote collects in `output`. Writes take at most `write_budget`
/// bytes each and block (`WouldBlock`) when the budget is spent, to model a
/// peer that reads slowly.
#[derive(Default)]
pub struct MemoryTransport {
    input: VecDeque<u8>,
    input_closed: bool,
    output: Vec<u8>,
    /// Bytes the peer will still accept before writes block; `None` is unlimited.
    pub write_budget: Option<usize>,
    write_shut: bool,
}

impl Read for MemoryTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return if self.input_closed { Ok(0) } else { Err(io::ErrorKind::WouldBlock.into()) };
        }
        let (front, _) = self.input.as_slices();
        let n = front.len().min(buf.len());
        buf[..n].copy_from_slice(&front[..n]);
        self.input.drain(..n);
        Ok(n)
    }
}

impl Write for MemoryTransport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.write_shut {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let n = match self.write_budget {
            Some(0) => return Err(io::ErrorKind::WouldBlock.into()),
            Some(budget) => budget.min(buf.len()),
            None => buf.len(),
        };
        if let Some(budget) = &mut self.write_budget {
            *budget -= n;
        }
        self.output.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for MemoryTransport {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.write_shut = true;
        Ok(())
    }
}

/// One connection and everything the reactor would lend it.
pub struct Harness {
    conn: Conn<MemoryTransport>,
    shared: Shared,
    /// The clock the test moves.
    now: Instant,
    scratch: Vec<u8>,
}

impl Harness {
    /// A fresh connection, as if just accepted, under `config`.
    pub fn new(config: &Config) -> Harness {
        let mut shared = Shared::new(config);
        let now = Instant::now();
        let id = ConnId { slot: 0, generation: 1 };
        let conn = Conn::new(MemoryTransport::default(), id, &mut shared.ctx(now));
        Harness { conn, shared, now, scratch: vec![0; 16 * 1024] }
    }

    /// The peer sends `bytes`; the connection reads and handles them, and
    /// flushes as the reactor would at the end of a batch.
    pub fn receive(&mut self, bytes: &[u8]) {
        self.conn.transport_mut().input.extend(bytes);
        self.read_all();
    }

    /// The peer closes its side.
    pub fn close_input(&mut self) {
        self.conn.transport_mut().input_closed = true;
        self.read_all();
    }

    /// Moves the clock and fires whatever deadline passed.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.conn.next_deadline().is_some_and(|at| at <= self.now) {
            self.conn.on_deadline(&mut self.shared.ctx(self.now));
        }
        self.settle();
    }

    /// Wakes the connection as a session with news for its held request would.
    pub fn wake(&mut self) {
        self.conn.wake(&mut self.shared.ctx(self.now));
        self.settle();
        self.read_all();
    }

    /// Lets the peer accept `bytes` more (or any amount with `None`), then flushes.
    pub fn set_write_budget(&mut self, bytes: Option<usize>) {
        self.conn.transport_mut().write_budget = bytes;
        self.settle();
    }

    /// Everything the server has written since the last call.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.conn.transport_mut().output)
    }

    /// The server has finished with the connection.
    pub fn is_dead(&self) -> bool {
        self.conn.is_dead()
    }

    /// The server shut its write side (after its last bytes).
    pub fn write_shut(&mut self) -> bool {
        self.conn.transport_mut().write_shut
    }

    /// Bytes queued but not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.conn.queued_bytes()
    }

    /// Bytes read but not yet consumed by a protocol core.
    pub fn buffered_input_bytes(&self) -> usize {
        self.conn.buffered_input_bytes()
    }

    /// The limits the connection runs under.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// The hub, to check presence after the connection is gone.
    pub fn hub(&self) -> &Hub {
        &self.shared.hub
    }

    fn read_all(&mut self) {
        // Bounded: each turn consumes input or stops.
        for _ in 0..1_000_000 {
            self.conn.on_readable(&mut self.scratch, true, &mut self.shared.ctx(self.now));
            self.settle();
            let more = self.conn.wants_read && !self.conn.transport_mut().input.is_empty();
            if !more || self.conn.is_dead() {
                break;
            }
        }
    }

    /// Routes the hub's output (only this connection exists) and flushes.
    fn settle(&mut self) {
        let Harness { conn, shared, now, .. } = self;
        let mut ctx = shared.ctx(*now);
        // A delivery can cause more (a slow reader leaving); each pass drains them.
        for _ in 0..16 {
            if ctx.outbox.is_empty() {
                break;
            }
            let deliveries = std::mem::take(&mut ctx.outbox.deliveries);
            let closes = std::mem::take(&mut ctx.outbox.closes);
            for delivery in deliveries {
                let mut renderings = Renderings::new(&delivery);
                let me = Endpoint::Conn(conn.id);
                for recipient in delivery.recipients.iter().filter(|r| r.endpoint == me) {
                    conn.deliver(&mut renderings, recipient.omit, &mut ctx);
                }
            }
            if closes.iter().any(|r| r.endpoint == Endpoint::Conn(conn.id)) {
                conn.quit(&mut ctx);
            }
        }
        if !conn.is_dead() {
            conn.flush_batch(&mut ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ws::OpCode;
    use crate::proto::ws::encoder::encode_client_frame;

    const UPGRADE: &[u8] = b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn a_whole_echo_session_in_memory() {
        let mut harness = Harness::new(&Config::default());
        let mut bytes = UPGRADE.to_vec();
        encode_client_frame(&mut bytes, OpCode::Text, true, b"Hello", [1, 2, 3, 4]);
        // Split anywhere: the upgrade and the frame behind it arrive in two reads.
        harness.receive(&bytes[..50]);
        harness.receive(&bytes[50..]);
        let output = harness.take_output();
        let text = String::from_utf8_lossy(&output);
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{text}");
        assert!(output.ends_with(&[0x81, 0x05, b'H', b'e', b'l', b'l', b'o']));
        let mut close = Vec::new();
        encode_client_frame(&mut close, OpCode::Close, true, &1000u16.to_be_bytes(), [9, 9, 9, 9]);
        harness.receive(&close);
        assert_eq!(harness.take_output(), [0x88, 0x02, 0x03, 0xe8]);
        assert!(harness.is_dead(), "closed once the handshake completed and was flushed");
    }

    #[test]
    fn a_silent_connection_closes_at_the_first_byte_timeout_and_one_that_spoke_does_not() {
        let config = Config::default();
        let timeout = config.first_byte_timeout;
        let mut silent = Harness::new(&config);
        silent.advance(timeout - Duration::from_millis(1));
        assert!(!silent.is_dead(), "closed before --first-byte-timeout");
        silent.advance(Duration::from_millis(1));
        assert!(silent.is_dead(), "still open at --first-byte-timeout");
        assert_eq!(silent.take_output(), b"", "closed without a word");

        let mut spoke = Harness::new(&config);
        spoke.receive(b"alice\n");
        assert_eq!(spoke.take_output(), b"3$*$*3\n");
        spoke.advance(timeout * 2);
        assert!(!spoke.is_dead(), "a legacy user is not subject to the first-byte timeout");
        spoke.receive(b"/rooms\n");
        assert_eq!(spoke.take_output(), b"!ROOMS lobby\n");
    }

    #[test]
    fn a_legacy_user_in_memory() {
        let mut harness = Harness::new(&Config::default());
        harness.receive(b"alice\nalice..444..me : hi\n");
        assert_eq!(harness.take_output(), b"3$*$*3\nalice : hi\n");
        harness.receive(b"/quit\n");
        assert!(harness.write_shut());
        assert_eq!(harness.hub().users(), 0);
    }

    #[test]
    fn a_peer_that_stops_reading_pauses_the_echo_within_bounds() {
        let config = Config { max_queued_bytes: 64 * 1024, ..Config::default() };
        let mut harness = Harness::new(&config);
        harness.receive(UPGRADE);
        harness.take_output();
        harness.set_write_budget(Some(0));
        let mut frame = Vec::new();
        encode_client_frame(&mut frame, OpCode::Binary, true, &[7u8; 1000], [1, 2, 3, 4]);
        for _ in 0..1000 {
            harness.receive(&frame);
            assert!(harness.queued_bytes() <= config.max_queued_bytes);
            assert!(harness.buffered_input_bytes() <= 1024 * 1024);
        }
        assert!(!harness.is_dead(), "paused, not cut: the echo peer is slowed by TCP");
        harness.set_write_budget(None);
        assert_eq!(harness.queued_bytes(), 0);
    }

    #[test]
    fn a_violation_after_our_close_sends_no_second_close() {
        let mut harness = Harness::new(&Config::default());
        let upgrade = String::from_utf8_lossy(UPGRADE).replace("/echo", "/ws");
        let mut bytes = upgrade.into_bytes();
        encode_client_frame(&mut bytes, OpCode::Binary, true, b"no", [1, 2, 3, 4]);
        harness.receive(&bytes);
        let output = harness.take_output();
        let close_at = output.len() - 4 - "binary frames are not accepted here".len();
        assert_eq!(&output[close_at..close_at + 4], &[0x88, 37, 0x03, 0xeb], "close 1003 first");
        // An unmasked frame while we wait for the peer's close.
        harness.receive(&[0x81, 0x01, b'x']);
        assert_eq!(harness.take_output(), b"", "nothing after our close frame");
        assert!(harness.write_shut());
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[test]
    fn a_request_body_is_read_whole_across_reads_and_the_connection_kept() {
        let mut harness = Harness::new(&Config::default());
        let request = b"POST /test/echo-body HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world";
        for piece in request.chunks(7) {
            harness.receive(piece);
        }
        let answer = text(&harness.take_output());
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nhello world"), "{answer}");
        assert!(!answer.contains("Connection: close"), "{answer}");
        // Keep-alive: a chunked body on the same connection, then a GET.
        harness.receive(b"POST /test/echo-body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        harness.receive(
            b"5\r\nhello\r\n6;ext=1\r\n there\r\n0\r\nTrailer: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        let answers = text(&harness.take_output());
        let (first, second) = answers
            .split_once("HTTP/1.1 200 OK\r\n")
            .map(|(_, rest)| rest.split_at(rest.find("HTTP/1.1").unwrap()))
            .unwrap();
        assert!(first.ends_with("\r\n\r\nhello there"), "{first}");
        assert!(second.ends_with("ok\n"), "{second}");
        assert!(!harness.is_dead());
    }

    #[test]
    fn a_body_over_max_body_is_refused_before_it_is_read() {
        let config = Config { max_body_bytes: 16, ..Config::default() };
        let mut harness = Harness::new(&config);
        harness.receive(b"POST /test/echo-body HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n");
        let answer = text(&harness.take_output());
        assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
        assert!(harness.write_shut(), "closed after the refusal");
        // A chunked body is counted as it arrives.
        let mut harness = Harness::new(&config);
        harness.receive(b"POST /test/echo-body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n");
        assert_eq!(harness.take_output(), b"", "16 bytes announced: still within the limit");
        harness.receive(b"0123456789abcdef\r\n1\r\n");
        let answer = text(&harness.take_output());
        assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    }

    #[test]
    fn a_held_answer_comes_on_a_wake_and_pipelined_requests_wait_behind_it() {
        let mut harness = Harness::new(&Config::default());
        harness.receive(b"GET /test/park HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(harness.take_output(), b"", "held: nothing, not even the pipelined answer");
        harness.advance(Duration::from_millis(500));
        assert_eq!(harness.take_output(), b"", "still held before its deadline");
        harness.wake();
        let answers = text(&harness.take_output());
        let woken = answers.find("woken").expect("the held answer");
        let healthz = answers.find("ok\n").expect("then the pipelined one");
        assert!(woken < healthz, "{answers}");
        assert!(!harness.is_dead());
    }

    #[test]
    fn a_held_answer_comes_at_its_deadline() {
        let mut harness = Harness::new(&Config::default());
        harness.receive(b"GET /test/park HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(harness.take_output(), b"");
        harness.advance(Duration::from_secs(1));
        let answer = text(&harness.take_output());
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("timeout"), "{answer}");
        // The connection serves the next request as usual.
        harness.receive(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(text(&harness.take_output()).ends_with("ok\n"));
    }
}
