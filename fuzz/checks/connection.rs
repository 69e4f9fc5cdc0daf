//! `connection`: a whole connection (sniffing, HTTP, upgrade, frames, the
//! legacy protocol, the hub) driven through `soket::harness::Harness` by a
//! small script, with every byte the server writes checked.
//!
//! The input is a script of steps ([`Script`] writes one):
//!
//! | byte % 6 | step |
//! | --- | --- |
//! | 0 | receive the next `n` bytes (`n` = next byte) |
//! | 1 | advance the clock by `2 * x * x` ms (`x` = next byte: 5 is the 50 ms flush delay, 255 is 130 s) |
//! | 2 | set the write budget: 0 blocks, 255 is unlimited, else `b * b` bytes |
//! | 3 | the peer closes its side |
//! | 4 | receive the next `n` bytes, `n` a little-endian u16 |
//! | 5 | receive the next `n` bytes `c` times (`c`, `n`: next two bytes): floods |
//!
//! After every step: no panic; `queued_bytes() <= max_queued + max_message + 14`
//! (one message may enter an empty queue); `buffered_input_bytes()` within
//! [`input_bound`]; and the output so far is a valid prefix of what a server
//! may send: either legacy `\n`-terminated UTF-8 lines without `\r`, STOMP
//! server frames (after a whole `CONNECT` frame), or HTTP
//! responses (status line, one Content-Length, its body) possibly ending in a
//! `101` after which come only server frames (FIN set, RSV 0, unmasked, a
//! known opcode other than continuation, shortest length encoding, control
//! payloads <= 125 bytes, text valid UTF-8, close payload empty or a code
//! allowed on the wire plus a UTF-8 reason) and nothing after a close frame.
//! At the end the write budget is lifted; once nothing is queued, the output
//! must not stop inside a response, frame or line.

use std::sync::OnceLock;
use std::time::Duration;

use soket::Config;
use soket::harness::Harness;
use soket::proto::stomp;
use soket::proto::ws::CloseCode;

use super::handshake::{check_plain_response, header_values, split_response};

/// Script steps per input at most, so a run stays short.
const MAX_STEPS: usize = 2048;
/// Bytes one read of the harness takes (`scratch` in src/harness.rs).
pub const READ_BYTES: usize = 16 * 1024;
/// Longest control frame a client can send: 2 + 4 (mask) + 125.
const MAX_CONTROL_FRAME: usize = 131;
/// Longest frame header: 2 + 8 (64-bit length) + 4 (mask).
const MAX_FRAME_HEADER: usize = 14;

/// Limits small enough for the fuzzer to reach: a 1 KiB head (431), 1 KiB
/// lines, 28 KiB messages and a 32 KiB queue (reading pauses at 8 KiB, so one
/// echo on top of a paused queue passes the limit: the slow-reader cut-off).
pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| Config {
        max_head_bytes: 1024,
        max_line_bytes: 1024,
        max_message_bytes: 28 * 1024,
        max_fragments: 64,
        max_queued_bytes: 32 * 1024,
        ..Config::default()
    })
}

/// The most input a connection may hold undecoded, from src/conn.rs: while
/// sniffing, a proper prefix of a method (< 8 bytes); in HTTP, a partial head
/// (< `max_head`, more is a 431); on a WebSocket, a partial frame header or
/// control frame; legacy TCP and draining keep nothing (the line codec holds
/// its own bounded buffer). When the answers pile up past the pause mark in
/// the middle of a read (pipelined requests, an echo flood), the rest of that
/// read waits too, so one read more.
pub fn input_bound(config: &Config) -> usize {
    config.max_head_bytes.max(MAX_CONTROL_FRAME) + READ_BYTES
}

pub fn run(data: &[u8]) {
    let config = config();
    let queue_bound = config.max_queued_bytes + config.max_message_bytes + MAX_FRAME_HEADER;
    let input_bound = input_bound(config);
    let mut harness = Harness::new(config);
    let mut output = OutputCheck::default();
    let mut script = Reader(data);
    let check = |harness: &mut Harness, output: &mut OutputCheck, step: &str| {
        output.feed(&harness.take_output());
        let queued = harness.queued_bytes();
        assert!(queued <= queue_bound, "{queued} bytes queued after {step}, bound {queue_bound}");
        let buffered = harness.buffered_input_bytes();
        assert!(buffered <= input_bound, "{buffered} input bytes held after {step}, bound {input_bound}");
    };
    for _ in 0..MAX_STEPS {
        if harness.is_dead() {
            break;
        }
        let Some(op) = script.byte() else { break };
        match op % 6 {
            0 => {
                let n = script.byte().unwrap_or(0);
                harness.receive(script.take(usize::from(n)));
                check(&mut harness, &mut output, "receive");
            }
            1 => {
                let x = u64::from(script.byte().unwrap_or(0));
                harness.advance(Duration::from_millis(2 * x * x));
                check(&mut harness, &mut output, "advance");
            }
            2 => {
                let budget = match script.byte().unwrap_or(255) {
                    255 => None,
                    b => Some(usize::from(b) * usize::from(b)),
                };
                harness.set_write_budget(budget);
                check(&mut harness, &mut output, "set_write_budget");
            }
            3 => {
                harness.close_input();
                check(&mut harness, &mut output, "close_input");
            }
            4 => {
                let n = u16::from_le_bytes([script.byte().unwrap_or(0), script.byte().unwrap_or(0)]);
                harness.receive(script.take(usize::from(n)));
                check(&mut harness, &mut output, "receive");
            }
            _ => {
                let count = script.byte().unwrap_or(0);
                let n = script.byte().unwrap_or(0);
                let bytes = script.take(usize::from(n));
                for _ in 0..count {
                    if harness.is_dead() {
                        break;
                    }
                    harness.receive(bytes);
                    check(&mut harness, &mut output, "repeated receive");
                }
            }
        }
    }
    harness.set_write_budget(None);
    check(&mut harness, &mut output, "the final flush");
    if harness.queued_bytes() == 0 {
        output.finish();
    }
}

/// The rest of the script.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }
}

/// Writes scripts for seed inputs.
#[derive(Default)]
pub struct Script(pub Vec<u8>);

impl Script {
    /// The peer sends `bytes` (in reads of at most 65535 bytes).
    pub fn send(mut self, bytes: &[u8]) -> Script {
        for piece in bytes.chunks(usize::from(u16::MAX)) {
            self.0.push(4);
            self.0.extend_from_slice(&(piece.len() as u16).to_le_bytes());
            self.0.extend_from_slice(piece);
        }
        self
    }

    /// The peer sends `bytes` `count` times (`bytes` at most 255 long).
    pub fn flood(mut self, count: u8, bytes: &[u8]) -> Script {
        self.0.extend_from_slice(&[5, count, bytes.len() as u8]);
        self.0.extend_from_slice(bytes);
        self
    }

    /// The clock moves by `2 * x * x` ms.
    pub fn wait(mut self, x: u8) -> Script {
        self.0.extend_from_slice(&[1, x]);
        self
    }

    /// Write budget code: 0 blocks, 255 unlimited, else `b * b` bytes.
    pub fn budget(mut self, b: u8) -> Script {
        self.0.extend_from_slice(&[2, b]);
        self
    }

    pub fn close(mut self) -> Script {
        self.0.push(3);
        self
    }
}

/// What the output stream is in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// Nothing decisive written yet.
    #[default]
    Start,
    /// HTTP responses. `body`: the last head announced this many body bytes
    /// and it is not yet known whether they follow (HEAD answers have none).
    Http { body: Option<usize> },
    /// After the 101: server frames only.
    Frames,
    /// After a close frame: nothing more.
    Closed,
    /// The legacy line protocol.
    Legacy,
    /// STOMP over raw TCP: server frames and heart-beats, checked by a
    /// client's decoder.
    Stomp,
}

/// Checks the server's output incrementally: `feed` every new byte, `finish`
/// once nothing more is queued.
#[derive(Default)]
pub struct OutputCheck {
    buf: Vec<u8>,
    phase: Phase,
    stomp: Option<Box<stomp::Decoder>>,
}

/// How a STOMP server's first frame starts on raw TCP.
const STOMP_STARTS: [&[u8]; 2] = [b"CONNECTED\n", b"ERROR\n"];

const STATUS_PREFIX: &[u8] = b"HTTP/1.1 ";

impl OutputCheck {
    pub fn feed(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.phase == Phase::Closed {
            panic!("{} bytes written after a close frame: {:?}", bytes.len(), preview(bytes));
        }
        self.buf.extend_from_slice(bytes);
        let mut pos = 0;
        while let Some(used) = step(&mut self.phase, &self.buf[pos..]) {
            pos += used;
        }
        self.buf.drain(..pos);
        if self.phase == Phase::Stomp {
            // Frames of any size the server may send, in the client's view.
            let limits =
                stomp::Limits { max_frame_bytes: usize::MAX, max_headers: usize::MAX, max_header_line: usize::MAX };
            let decoder = self.stomp.get_or_insert_with(|| Box::new(stomp::Decoder::new_client(limits)));
            let result = decoder.decode(&self.buf, |_| {});
            assert_eq!(result, Ok(()), "bad STOMP output: {:?}", preview(&self.buf));
            self.buf.clear();
        }
    }

    /// All output is in: nothing may stop half-way.
    pub fn finish(&mut self) {
        if let Phase::Http { body: Some(_) } = self.phase
            && self.buf.is_empty()
        {
            // The last answer was to a HEAD request.
            self.phase = Phase::Http { body: None };
        }
        assert!(self.buf.is_empty(), "output ends inside an item ({:?}): {:?}", self.phase, preview(&self.buf));
        if let Some(decoder) = &self.stomp {
            assert_eq!(decoder.finish(), Ok(()), "STOMP output ends inside a frame");
        }
    }
}

/// Consumes one item from the front of `buf`; None when more is needed.
fn step(phase: &mut Phase, buf: &[u8]) -> Option<usize> {
    if buf.is_empty() {
        return None;
    }
    match *phase {
        Phase::Start => {
            if buf.starts_with(STATUS_PREFIX) {
                *phase = Phase::Http { body: None };
            } else if STOMP_STARTS.iter().any(|start| buf.starts_with(start)) {
                *phase = Phase::Stomp;
            } else if STATUS_PREFIX.starts_with(buf) || STOMP_STARTS.iter().any(|start| start.starts_with(buf)) {
                return None;
            } else {
                *phase = Phase::Legacy;
            }
            Some(0)
        }
        Phase::Http { body: Some(length) } => {
            // A HEAD answer is followed by the next status line (or nothing);
            // a body never starts with one.
            let next_response = buf.starts_with(STATUS_PREFIX);
            if !next_response && STATUS_PREFIX.starts_with(buf) {
                return None;
            }
            *phase = Phase::Http { body: None };
            if next_response {
                return Some(0);
            }
            if buf.len() < length {
                *phase = Phase::Http { body: Some(length) };
                return None;
            }
            Some(length)
        }
        Phase::Http { body: None } => {
            let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
            let (lines, _) = split_response(&buf[..end]);
            if lines[0].starts_with("HTTP/1.1 101 ") {
                assert_eq!(header_values(&lines, "Sec-WebSocket-Accept").len(), 1, "{lines:?}");
                assert!(header_values(&lines, "Content-Length").is_empty(), "101 with a body: {lines:?}");
                *phase = Phase::Frames;
                return Some(end);
            }
            // Checked as if the body were there: a HEAD answer's absent body passes too.
            check_plain_response(&buf[..end], true);
            let length: usize = header_values(&lines, "Content-Length")[0].parse().unwrap_or(0);
            *phase = Phase::Http { body: (length > 0).then_some(length) };
            Some(end)
        }
        Phase::Frames => {
            let (used, closes) = server_frame(buf)?;
            if closes {
                *phase = Phase::Closed;
                assert_eq!(used, buf.len(), "bytes after a close frame: {:?}", preview(&buf[used..]));
            }
            Some(used)
        }
        Phase::Closed => panic!("bytes after a close frame: {:?}", preview(buf)),
        // Checked whole by `OutputCheck::feed`.
        Phase::Stomp => None,
        Phase::Legacy => {
            let end = buf.iter().position(|&b| b == b'\n')?;
            let line = std::str::from_utf8(&buf[..end])
                .unwrap_or_else(|e| panic!("legacy line is not UTF-8 ({e}): {:?}", preview(&buf[..end])));
            assert!(!line.contains('\r'), "legacy line with a \\r: {line:?}");
            Some(end + 1)
        }
    }
}

/// Parses one server frame from the front of `buf`, checking it; returns its
/// length and whether it is a close frame, or None if it is not all there.
fn server_frame(buf: &[u8]) -> Option<(usize, bool)> {
    let [b0, b1, ..] = *buf else { return None };
    assert!(b0 & 0x80 != 0, "server frame without FIN: {:?}", preview(buf));
    assert_eq!(b0 & 0x70, 0, "server frame with RSV bits: {:?}", preview(buf));
    assert_eq!(b1 & 0x80, 0, "masked server frame: {:?}", preview(buf));
    let opcode = b0 & 0x0F;
    assert!(matches!(opcode, 0x1 | 0x2 | 0x8 | 0x9 | 0xA), "server frame opcode {opcode:#x}");
    let (header, length) = match b1 & 0x7F {
        126 => {
            let len = u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?);
            assert!(len >= 126, "16-bit length {len} not the shortest encoding");
            (4usize, u64::from(len))
        }
        127 => {
            let len = u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?);
            assert!(len > 0xFFFF && len >> 63 == 0, "64-bit length {len} not the shortest encoding");
            (10, len)
        }
        short => (2, u64::from(short)),
    };
    let length = usize::try_from(length).unwrap_or(usize::MAX);
    let payload = buf.get(header..header.checked_add(length)?)?;
    if opcode & 0x8 != 0 {
        assert!(payload.len() <= 125, "control frame of {} bytes", payload.len());
    }
    match opcode {
        0x1 => {
            std::str::from_utf8(payload)
                .unwrap_or_else(|e| panic!("text frame is not UTF-8 ({e}): {:?}", preview(payload)));
        }
        0x8 => {
            if let [hi, lo, reason @ ..] = payload {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                assert!(code.is_allowed_on_wire(), "server close code {}", code.0);
                std::str::from_utf8(reason).unwrap_or_else(|e| panic!("close reason is not UTF-8 ({e})"));
            } else {
                assert!(payload.is_empty(), "close frame with a 1-byte payload");
            }
        }
        _ => {}
    }
    Some((header + length, opcode == 0x8))
}

/// The start of `bytes`, for panic messages.
fn preview(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(200)];
    format!("{} ({} bytes)", String::from_utf8_lossy(shown), bytes.len())
}
