//! STOMP 1.0/1.1/1.2 frames: a streaming decoder with limits, an encoder, and the
//! version and heart-beat negotiation rules. Sans-IO: no sockets, no clocks, no
//! subscriptions or transactions (the broker owns those).
//!
//! A frame is a command line, header lines, a blank line, a body and a NUL. Lines
//! end in `\n` or `\r\n`; empty lines between frames are heart-beats. Header names
//! and values are escaped (`\n`, `\c`, `\\`, and `\r` from 1.2) except in 1.0 and
//! in the frames sent before a version is agreed (CONNECT, STOMP, CONNECTED). A
//! `content-length` header gives the body's size, so the body may hold NULs; without
//! one the body ends at the first NUL. When a header is repeated the first one counts.
//!
//! Decoded frames borrow from the decoder: header text and body live in one reused
//! buffer, header positions in a second, so a steady stream of frames allocates
//! nothing once the buffers have grown to the largest frame seen (at most
//! `max_frame_bytes`). The broker copies what it keeps (a body it fans out is
//! encoded once into the MESSAGE frame anyway). [`Frame::to_owned`] gives an owned copy.
//!
//! Hostile input ends in a [`StompError`], never a panic or unbounded buffering; the
//! broker answers it with an ERROR frame ([`StompError::message`]) and closes.

use std::fmt;

/// The versions this codec speaks, lowest first, as `accept-version` lists them.
pub const SUPPORTED_VERSIONS: &str = "1.0,1.1,1.2";

/// Longest command line: `UNSUBSCRIBE` plus the `\r` of a `\r\n`.
const MAX_COMMAND_LINE: usize = 12;

/// Smallest allocation for a frame in progress, so a byte-at-a-time sender doesn't
/// cause a reallocation per byte at the start.
const MIN_BUFFER_CAPACITY: usize = 128;

/// Largest heart-beat period accepted, in milliseconds (`u32`: about 49 days).
const MAX_HEART_BEAT_DIGITS: usize = 10;

/// A protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V1_0,
    V1_1,
    V1_2,
}

impl Version {
    /// As written in `accept-version` and `version` headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    fn parse(token: &str) -> Option<Version> {
        match token {
            "1.0" => Some(Version::V1_0),
            "1.1" => Some(Version::V1_1),
            "1.2" => Some(Version::V1_2),
            _ => None,
        }
    }
}

/// A frame's command: the client ones, then the server ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Connect,
    /// 1.2's name for CONNECT, so a STOMP server can be told from an HTTP one.
    Stomp,
    Send,
    Subscribe,
    Unsubscribe,
    Ack,
    Nack,
    Begin,
    Commit,
    Abort,
    Disconnect,
    Connected,
    Message,
    Receipt,
    Error,
}

impl Command {
    /// Every command, client ones first.
    pub const ALL: [Command; 15] = [
        Command::Connect,
        Command::Stomp,
        Command::Send,
        Command::Subscribe,
        Command::Unsubscribe,
        Command::Ack,
        Command::Nack,
        Command::Begin,
        Command::Commit,
        Command::Abort,
        Command::Disconnect,
        Command::Connected,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Connected => "CONNECTED",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// The command spelled exactly (commands are case-sensitive), or `None`.
    pub fn parse(bytes: &[u8]) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.as_str().as_bytes() == bytes)
    }

    /// Whether clients send it (servers send the other four).
    pub fn is_client(self) -> bool {
        !matches!(self, Command::Connected | Command::Message | Command::Receipt | Command::Error)
    }

    /// Whether its headers are escaped at `version`. 1.2 §"Value Encoding": CONNECT and
    /// CONNECTED are not escaped, so they stay readable before a version is agreed;
    /// STOMP is CONNECT by another name and is sent at the same moment. 1.0 has no escaping.
    pub fn escapes(self, version: Version) -> bool {
        version != Version::V1_0 && !matches!(self, Command::Connect | Command::Stomp | Command::Connected)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The decoder's caps. The broker derives `max_frame_bytes` from `--max-message`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one frame from its command's first byte to its NUL, line ends
    /// included. Default 64 KiB. Over it: [`StompError::FrameTooLarge`], detected
    /// at the first byte past it, or at once when `content-length` announces it.
    pub max_frame_bytes: usize,
    /// Header lines in one frame (repeats count). Default 64. Over it: [`StompError::TooManyHeaders`].
    pub max_headers: usize,
    /// Bytes of one header line before unescaping, without its line end. Default
    /// 8 KiB. Over it: [`StompError::HeaderLineTooLong`].
    pub max_header_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_frame_bytes: 64 * 1024, max_headers: 64, max_header_line: 8 * 1024 }
    }
}

/// Why the decoder refused the stream, or a header value was refused. Each is a
/// protocol error: the broker sends an ERROR frame with [`message`](Self::message)
/// and closes the connection. After one the decoder is spent and repeats it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StompError {
    /// The command line is not one of the known commands (or the decoder decodes
    /// client frames and it is a server command).
    UnknownCommand,
    /// A frame passed `max_frame_bytes`, or its `content-length` would.
    FrameTooLarge,
    /// A frame has more than `max_headers` header lines.
    TooManyHeaders,
    /// A header line is longer than `max_header_line`.
    HeaderLineTooLong,
    /// A header line without a `:`, or with an empty name.
    MalformedHeader,
    /// A `\` not followed by an escape this version defines (1.2: a fatal error).
    InvalidEscape,
    /// Header names and values must be UTF-8.
    InvalidUtf8,
    /// The first `content-length` is not a decimal number of bytes, or overflows.
    InvalidContentLength,
    /// The byte after a `content-length` body is not the NUL that ends the frame.
    MissingNul,
    /// A `\r` between frames not followed by `\n`.
    StrayCarriageReturn,
    /// The stream ended inside a frame (see [`Decoder::finish`]).
    Truncated,
    /// A `heart-beat` header that is not two comma-separated periods in milliseconds.
    InvalidHeartBeat,
}

impl StompError {
    /// The ERROR frame's `message` header: short, fixed, no peer data.
    pub fn message(self) -> &'static str {
        match self {
            StompError::UnknownCommand => "unknown command",
            StompError::FrameTooLarge => "frame too large",
            StompError::TooManyHeaders => "too many headers",
            StompError::HeaderLineTooLong => "header line too long",
            StompError::MalformedHeader => "malformed header",
            StompError::InvalidEscape => "invalid header escape",
            StompError::InvalidUtf8 => "header is not UTF-8",
            StompError::InvalidContentLength => "invalid content-length",
            StompError::MissingNul => "frame body not terminated by NUL",
            StompError::StrayCarriageReturn => "carriage return without line feed",
            StompError::Truncated => "connection closed inside a frame",
            StompError::InvalidHeartBeat => "invalid heart-beat header",
        }
    }
}

impl fmt::Display for StompError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for StompError {}

/// Where one header sits in the decoder's header text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    name_end: usize,
    value_end: usize,
}

/// One decoded frame, borrowing from the decoder until the next `decode` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub command: Command,
    /// Unescaped header names and values, back to back.
    text: &'a str,
    spans: &'a [Span],
    pub body: &'a [u8],
}

impl<'a> Frame<'a> {
    /// The first header named `name` (1.2: "only the first header entry SHALL be used").
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Every header in wire order, repeats included.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let text = self.text;
        self.spans.iter().map(move |s| {
            let name = text.get(s.start..s.name_end).expect("spans lie on header boundaries");
            let value = text.get(s.name_end..s.value_end).expect("spans lie on header boundaries");
            (name, value)
        })
    }

    /// An owned copy, for keeping a frame past the next `decode` call.
    pub fn to_owned(&self) -> OwnedFrame {
        OwnedFrame {
            command: self.command,
            headers: self.headers().map(|(n, v)| (n.to_owned(), v.to_owned())).collect(),
            body: self.body.to_vec(),
        }
    }
}

/// A frame that owns its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedFrame {
    pub command: Command,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl OwnedFrame {
    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// One decoding result, in stream order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    Frame(Frame<'a>),
    /// An end of line between frames: the peer's heart-beat. (Any read at all
    /// counts as life for the missed-heart-beat timer; this is for tests and logs.)
    HeartBeat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between frames.
    Idle,
    /// Between frames, after a `\r`.
    IdleCr,
    /// In the command line, held in `buf`.
    Command,
    /// In a header line, held in `buf[line_start..]`.
    Headers,
    /// In the body, held in `buf[headers_end..]`.
    Body,
    /// After a `content-length` body, expecting its NUL.
    BodyNul,
    Failed(StompError),
}

/// Splits a STOMP byte stream into frames.
///
/// Fed reads of any size, it yields the same frames and the same error whatever
/// the split. It holds at most one frame in progress: `buffered_bytes()` and
/// `buffer_capacity()` never exceed `max_frame_bytes`. Work is O(n) in the input.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    version: Version,
    /// Whether CONNECTED, MESSAGE, RECEIPT and ERROR are accepted (a client's view).
    server_commands: bool,
    state: State,
    /// Header text so far (unescaped), then the line in progress or the body.
    buf: Vec<u8>,
    spans: Vec<Span>,
    command: Command,
    line_start: usize,
    headers_end: usize,
    /// Bytes of the current frame so far, line ends included; at most `max_frame_bytes`.
    frame_bytes: usize,
    content_length: Option<usize>,
    seen_content_length: bool,
}

impl Decoder {
    /// A broker's decoder: client commands only, 1.2 rules until
    /// [`set_version`](Self::set_version). (Before CONNECTED only CONNECT and STOMP
    /// are legal, and those are never unescaped.) Allocates nothing.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            version: Version::V1_2,
            server_commands: false,
            state: State::Idle,
            buf: Vec::new(),
            spans: Vec::new(),
            command: Command::Connect,
            line_start: 0,
            headers_end: 0,
            frame_bytes: 0,
            content_length: None,
            seen_content_length: false,
        }
    }

    /// A client's decoder, which also accepts the server commands.
    pub fn new_client(limits: Limits) -> Self {
        Decoder { server_commands: true, ..Decoder::new(limits) }
    }

    /// The negotiated version, which decides unescaping from the next frame on.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// Consumes all of `input`, calling `on_event` for each heart-beat and complete
    /// frame in order. On a protocol error the events before it have been delivered;
    /// the error is returned now and on every later call.
    pub fn decode(&mut self, input: &[u8], mut on_event: impl FnMut(Event<'_>)) -> Result<(), StompError> {
        let mut rest = input;
        while !rest.is_empty() {
            self.decode_frame(&mut rest, &mut on_event)?;
        }
        Ok(())
    }

    /// [`decode`](Self::decode) up to the end of the first frame in `input` (or
    /// all of it), advancing `input` past what it consumed, so that a version the
    /// frame agrees ([`set_version`](Self::set_version)) governs the next one even
    /// when both came in one read.
    pub fn decode_frame(&mut self, input: &mut &[u8], mut on_event: impl FnMut(Event<'_>)) -> Result<(), StompError> {
        if let State::Failed(error) = self.state {
            return Err(error);
        }
        let mut framed = false;
        while !framed && !input.is_empty() {
            let mut on_event = |event: Event<'_>| {
                framed |= matches!(event, Event::Frame(_));
                on_event(event);
            };
            if let Err(error) = self.step(input, &mut on_event) {
                self.fail(error);
                return Err(error);
            }
        }
        Ok(())
    }

    /// Call at end of stream: `Err(Truncated)` if it ended inside a frame (a NUL-less
    /// body, a frame cut short), or the earlier error if the decoder failed.
    pub fn finish(&self) -> Result<(), StompError> {
        match self.state {
            State::Idle | State::IdleCr => Ok(()),
            State::Failed(error) => Err(error),
            _ => Err(StompError::Truncated),
        }
    }

    /// True between frames (nothing of a frame is held).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle | State::IdleCr)
    }

    /// Bytes of the frame in progress held (at most `max_frame_bytes`).
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Bytes allocated for the frame buffer (at most `max_frame_bytes`), for memory accounting.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Frees the buffers between frames, so a quiet connection holds none.
    pub fn release_idle_memory(&mut self) {
        if self.is_idle() || matches!(self.state, State::Failed(_)) {
            self.buf = Vec::new();
            self.spans = Vec::new();
        }
    }

    fn fail(&mut self, error: StompError) {
        self.state = State::Failed(error);
        self.buf = Vec::new();
        self.spans = Vec::new();
    }

    /// Advances by at least one byte of `rest`.
    fn step(&mut self, rest: &mut &[u8], on_event: &mut impl FnMut(Event<'_>)) -> Result<(), StompError> {
        let input = *rest;
        let first = *input.first().expect("step is called with input");
        match self.state {
            State::Idle => match first {
                b'\n' => {
                    *rest = &input[1..];
                    on_event(Event::HeartBeat);
                }
                b'\r' => {
                    *rest = &input[1..];
                    self.state = State::IdleCr;
                }
                _ => {
                    self.buf.clear();
                    self.spans.clear();
                    self.line_start = 0;
                    self.frame_bytes = 0;
                    self.content_length = None;
                    self.seen_content_length = false;
                    self.state = State::Command;
                }
            },
            State::IdleCr => {
                if first != b'\n' {
                    return Err(StompError::StrayCarriageReturn);
                }
                *rest = &input[1..];
                self.state = State::Idle;
                on_event(Event::HeartBeat);
            }
            State::Command | State::Headers => {
                let Some(line_end) = self.take_line(rest)? else {
                    return Ok(());
                };
                self.end_line(line_end)?;
            }
            State::Body => {
                if let Some(length) = self.content_length {
                    let held = self.buf.len() - self.headers_end;
                    let take = (length - held).min(input.len());
                    // The room for `length` bytes and the NUL was checked at the blank line.
                    self.push(&input[..take]);
                    self.frame_bytes += take;
                    *rest = &input[take..];
                    if take == length - held {
                        self.state = State::BodyNul;
                    }
                } else {
                    let nul = input.iter().position(|&b| b == 0);
                    let segment = nul.unwrap_or(input.len());
                    // The NUL counts as a frame byte too.
                    let room = self.frame_room();
                    if room < segment || (nul.is_some() && room == segment) {
                        return Err(StompError::FrameTooLarge);
                    }
                    self.push(&input[..segment]);
                    self.frame_bytes += segment;
                    *rest = &input[segment..];
                    if nul.is_some() {
                        *rest = &input[segment + 1..];
                        self.frame_bytes += 1;
                        self.emit(on_event);
                    }
                }
            }
            State::BodyNul => {
                if first != 0 {
                    return Err(StompError::MissingNul);
                }
                *rest = &input[1..];
                self.frame_bytes += 1;
                self.emit(on_event);
            }
            State::Failed(error) => return Err(error),
        }
        Ok(())
    }

    fn frame_room(&self) -> usize {
        self.limits.max_frame_bytes - self.frame_bytes
    }

    /// Appends the line bytes of `rest` to `buf`; `Some(end)` once the line is whole
    /// (`end` its length in `buf` without the line end). Limits are checked byte by
    /// byte in stream order, frame size before line length, so the error found does
    /// not depend on where reads split.
    fn take_line(&mut self, rest: &mut &[u8]) -> Result<Option<usize>, StompError> {
        let input = *rest;
        let newline = input.iter().position(|&b| b == b'\n');
        let segment = newline.unwrap_or(input.len());
        let (line_room, over) = match self.state {
            State::Command => (self.command_room(&input[..segment]), StompError::UnknownCommand),
            // One more for the `\r` of a `\r\n`, which is not content.
            _ => (
                self.limits.max_header_line.saturating_add(1) - (self.buf.len() - self.line_start),
                StompError::HeaderLineTooLong,
            ),
        };
        let frame_room = self.frame_room();
        let first_bad = frame_room.min(line_room);
        if first_bad < segment {
            return Err(if frame_room == first_bad { StompError::FrameTooLarge } else { over });
        }
        self.push(&input[..segment]);
        self.frame_bytes += segment;
        *rest = &input[segment..];
        if newline.is_none() {
            return Ok(None);
        }
        if frame_room == segment {
            return Err(StompError::FrameTooLarge);
        }
        self.frame_bytes += 1;
        *rest = &input[segment + 1..];
        // Only the line's own last byte: an empty line's predecessor is a header value.
        if self.buf.len() > self.line_start && self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some(self.buf.len()))
    }

    /// How many bytes of `segment` (command-line bytes, no line end) keep the command
    /// line a prefix of an acceptable command (plus a `\r`), so garbage such as an
    /// HTTP request is refused at its first wrong byte.
    fn command_room(&self, segment: &[u8]) -> usize {
        let held = &self.buf[self.line_start..];
        let mut line = [0u8; MAX_COMMAND_LINE + 1];
        line[..held.len()].copy_from_slice(held);
        let mut len = held.len();
        for &byte in segment.iter().take(MAX_COMMAND_LINE + 1 - held.len()) {
            line[len] = byte;
            len += 1;
            if !self.is_command_prefix(&line[..len]) {
                return len - 1 - held.len();
            }
        }
        // Every byte up to the cap was fine (the cap itself is never a valid prefix).
        segment.len()
    }

    fn is_command_prefix(&self, line: &[u8]) -> bool {
        Command::ALL.iter().filter(|c| self.server_commands || c.is_client()).any(|c| {
            let name = c.as_str().as_bytes();
            name.starts_with(line) || line.strip_suffix(b"\r") == Some(name)
        })
    }

    /// Handles a whole command or header line, `buf[line_start..end]`.
    fn end_line(&mut self, end: usize) -> Result<(), StompError> {
        let line_start = self.line_start;
        if self.state == State::Command {
            let command = Command::parse(&self.buf[..end]).ok_or(StompError::UnknownCommand)?;
            if !command.is_client() && !self.server_commands {
                return Err(StompError::UnknownCommand);
            }
            self.command = command;
            self.buf.clear();
            self.line_start = 0;
            self.state = State::Headers;
            return Ok(());
        }
        if end - line_start > self.limits.max_header_line {
            return Err(StompError::HeaderLineTooLong);
        }
        if end == line_start {
            return self.end_headers();
        }
        if self.spans.len() >= self.limits.max_headers {
            return Err(StompError::TooManyHeaders);
        }
        let colon = self.buf[line_start..end].iter().position(|&b| b == b':');
        let colon = match colon {
            Some(0) | None => return Err(StompError::MalformedHeader),
            Some(at) => line_start + at,
        };
        let escapes = self.command.escapes(self.version).then_some(self.version);
        let name_end = unescape(&mut self.buf, line_start..colon, line_start, escapes)?;
        let value_end = unescape(&mut self.buf, colon + 1..end, name_end, escapes)?;
        self.buf.truncate(value_end);
        // Each part on its own: two invalid halves can join into valid UTF-8
        // (`\xd6` then `\x96`), and the frame hands out each as a `str`.
        for part in [line_start..name_end, name_end..value_end] {
            std::str::from_utf8(&self.buf[part]).map_err(|_| StompError::InvalidUtf8)?;
        }
        self.spans.push(Span { start: line_start, name_end, value_end });
        if !self.seen_content_length && &self.buf[line_start..name_end] == b"content-length" {
            self.seen_content_length = true;
            self.content_length = Some(parse_content_length(&self.buf[name_end..value_end])?);
        }
        self.line_start = value_end;
        Ok(())
    }

    fn end_headers(&mut self) -> Result<(), StompError> {
        // Every name and value was checked at its line, so the text is UTF-8.
        self.headers_end = self.line_start;
        match self.content_length {
            Some(length) => {
                // The body and its NUL must fit, so nothing is buffered for a lie.
                if length >= self.frame_room() {
                    return Err(StompError::FrameTooLarge);
                }
                self.buf.reserve_exact(length);
                self.state = if length == 0 { State::BodyNul } else { State::Body };
            }
            None => self.state = State::Body,
        }
        Ok(())
    }

    fn emit(&mut self, on_event: &mut impl FnMut(Event<'_>)) {
        let (text, body) = self.buf.split_at(self.headers_end);
        let text = std::str::from_utf8(text).expect("header text was checked at the blank line");
        on_event(Event::Frame(Frame { command: self.command, text, spans: &self.spans, body }));
        // Cleared, not freed: the next frame reuses the allocation.
        self.buf.clear();
        self.spans.clear();
        self.state = State::Idle;
    }

    /// Appends to `buf`, growing it by doubling but never past `max_frame_bytes`
    /// (callers have checked the frame fits).
    fn push(&mut self, bytes: &[u8]) {
        let needed = self.buf.len() + bytes.len();
        let capacity = self.buf.capacity();
        if needed > capacity {
            let target =
                capacity.saturating_mul(2).max(MIN_BUFFER_CAPACITY).min(self.limits.max_frame_bytes).max(needed);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
    }
}

/// Moves `buf[from]` to `buf[write..]`, unescaping per `escapes` (the version, or
/// `None` for no escaping); returns where the written part ends. In place: an escape
/// is two bytes for one, so writing never overtakes reading.
fn unescape(
    buf: &mut [u8],
    from: std::ops::Range<usize>,
    write: usize,
    escapes: Option<Version>,
) -> Result<usize, StompError> {
    let Some(version) = escapes else {
        buf.copy_within(from.clone(), write);
        return Ok(write + from.len());
    };
    let mut w = write;
    let mut r = from.start;
    while r < from.end {
        let mut byte = buf[r];
        r += 1;
        if byte == b'\\' {
            // 1.2 §"Value Encoding": undefined escapes MUST be a fatal protocol error.
            let next = if r < from.end { buf[r] } else { return Err(StompError::InvalidEscape) };
            r += 1;
            byte = match next {
                b'n' => b'\n',
                b'c' => b':',
                b'\\' => b'\\',
                b'r' if version >= Version::V1_2 => b'\r',
                _ => return Err(StompError::InvalidEscape),
            };
        }
        buf[w] = byte;
        w += 1;
    }
    Ok(w)
}

/// A `content-length` value: decimal digits only (1.2 does not trim), no overflow.
fn parse_content_length(value: &[u8]) -> Result<usize, StompError> {
    if value.is_empty() {
        return Err(StompError::InvalidContentLength);
    }
    value.iter().try_fold(0usize, |n, &b| {
        if !b.is_ascii_digit() {
            return Err(StompError::InvalidContentLength);
        }
        n.checked_mul(10).and_then(|n| n.checked_add(usize::from(b - b'0'))).ok_or(StompError::InvalidContentLength)
    })
}

// Encoding.

/// A header the encoder cannot write so that it decodes back the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// An empty name, or where there is no escaping (1.0, CONNECT, STOMP,
    /// CONNECTED): a `:` in a name or a `\n` anywhere.
    Unrepresentable,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("header not representable in this frame")
    }
}

impl std::error::Error for EncodeError {}

/// Appends one frame to `out`: command, `headers` (escaped as `command` and
/// `version` require), a `content-length` when `body` is not empty (so binary bodies
/// may hold NULs), the body and the NUL. Callers' `content-length` headers are
/// dropped in favour of the true one. On error `out` is left as it was.
pub fn write_frame(
    out: &mut Vec<u8>,
    command: Command,
    headers: &[(&str, &str)],
    body: &[u8],
    version: Version,
) -> Result<(), EncodeError> {
    let start = out.len();
    let escapes = command.escapes(version).then_some(version);
    out.extend_from_slice(command.as_str().as_bytes());
    out.push(b'\n');
    for &(name, value) in headers {
        if name == "content-length" {
            continue;
        }
        let written = write_escaped(out, name, escapes, true).and_then(|()| {
            out.push(b':');
            write_escaped(out, value, escapes, false)
        });
        // Where `\r` has no escape a value may end in one; a `\r\n` line end keeps it
        // content, as the decoder takes only the last `\r` as part of the line end.
        if written.is_ok() && out.last() == Some(&b'\r') {
            out.push(b'\r');
        }
        out.push(b'\n');
        if let Err(error) = written {
            out.truncate(start);
            return Err(error);
        }
    }
    if !body.is_empty() {
        out.extend_from_slice(b"content-length:");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out.push(0);
    Ok(())
}

fn write_escaped(out: &mut Vec<u8>, text: &str, escapes: Option<Version>, is_name: bool) -> Result<(), EncodeError> {
    if is_name && text.is_empty() {
        return Err(EncodeError::Unrepresentable);
    }
    let cr_escapes = escapes.is_some_and(|v| v >= Version::V1_2);
    if escapes.is_none() {
        if text.contains('\n') || (is_name && text.contains(':')) {
            return Err(EncodeError::Unrepresentable);
        }
        out.extend_from_slice(text.as_bytes());
        return Ok(());
    }
    for &byte in text.as_bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b':' => out.extend_from_slice(b"\\c"),
            b'\r' if cr_escapes => out.extend_from_slice(b"\\r"),
            _ => out.push(byte),
        }
    }
    Ok(())
}

/// Appends a CONNECTED frame. At 1.0 `version` and `heart-beat` are left out (1.0
/// has neither); `heart_beat` is the server's `(sx, sy)` in milliseconds.
pub fn write_connected(
    out: &mut Vec<u8>,
    version: Version,
    heart_beat: HeartBeat,
    server: Option<&str>,
    session: &str,
    user_name: Option<&str>,
) -> Result<(), EncodeError> {
    let heart_beat = format!("{},{}", heart_beat.send_ms, heart_beat.receive_ms);
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(5);
    if version > Version::V1_0 {
        headers.push(("version", version.as_str()));
        headers.push(("heart-beat", &heart_beat));
    }
    headers.push(("session", session));
    if let Some(server) = server {
        headers.push(("server", server));
    }
    if let Some(user_name) = user_name {
        headers.push(("user-name", user_name));
    }
    write_frame(out, Command::Connected, &headers, b"", version)
}

/// The fixed headers of a MESSAGE frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageHeaders<'a> {
    pub destination: &'a str,
    pub message_id: &'a str,
    pub subscription: &'a str,
    /// The `ack` id, for subscriptions in `client` or `client-individual` mode (1.2).
    pub ack: Option<&'a str>,
    pub content_type: Option<&'a str>,
}

/// Appends a MESSAGE frame: the fixed headers, then `extra` (e.g. `from`), then the
/// `content-length` of `body`.
pub fn write_message(
    out: &mut Vec<u8>,
    version: Version,
    message: &MessageHeaders<'_>,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Result<(), EncodeError> {
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(5 + extra.len());
    headers.push(("destination", message.destination));
    headers.push(("message-id", message.message_id));
    headers.push(("subscription", message.subscription));
    if let Some(ack) = message.ack {
        headers.push(("ack", ack));
    }
    if let Some(content_type) = message.content_type {
        headers.push(("content-type", content_type));
    }
    headers.extend_from_slice(extra);
    write_frame(out, Command::Message, &headers, body, version)
}

/// Appends a RECEIPT frame for a client's `receipt` header value.
pub fn write_receipt(out: &mut Vec<u8>, version: Version, receipt_id: &str) -> Result<(), EncodeError> {
    write_frame(out, Command::Receipt, &[("receipt-id", receipt_id)], b"", version)
}

/// Appends an ERROR frame with a `message` header, a machine-readable `code` if
/// given, the `receipt-id` of the frame that caused it if it asked for one, and
/// `body` as `text/plain` detail. Never fails: line ends in the headers become
/// spaces.
pub fn write_error(
    out: &mut Vec<u8>,
    version: Version,
    message: &str,
    code: Option<&str>,
    receipt_id: Option<&str>,
    body: &str,
) {
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let message = clean(message);
    let code = code.map(clean);
    let receipt_id = receipt_id.map(clean);
    let mut headers: Vec<(&str, &str)> = vec![("message", &message)];
    if let Some(code) = &code {
        headers.push(("code", code));
    }
    if let Some(receipt_id) = &receipt_id {
        headers.push(("receipt-id", receipt_id));
    }
    if !body.is_empty() {
        headers.push(("content-type", "text/plain"));
    }
    write_frame(out, Command::Error, &headers, body.as_bytes(), version)
        .expect("fixed names and values without line ends are always representable");
}

// Negotiation.

/// The version to speak: the highest of `accept-version`'s comma-separated list
/// this codec supports; 1.0 when the header is absent (1.2 §"Protocol
/// Negotiation"). `None`: no common version; the broker sends an ERROR listing
/// [`SUPPORTED_VERSIONS`] in a `version` header and closes.
pub fn negotiate_version(accept_version: Option<&str>) -> Option<Version> {
    let Some(list) = accept_version else {
        return Some(Version::V1_0);
    };
    list.split(',').filter_map(|token| Version::parse(token.trim())).max()
}

/// A `heart-beat` header: `send_ms` is the smallest period the sender can send
/// heart-beats at, `receive_ms` the period it wants to receive them at; 0 = never.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeartBeat {
    pub send_ms: u32,
    pub receive_ms: u32,
}

/// Parses a `heart-beat` value strictly: two decimal numbers of at most 10 digits
/// that fit in `u32` milliseconds, separated by one comma, nothing else.
pub fn parse_heart_beat(value: &str) -> Result<HeartBeat, StompError> {
    let (send, receive) = value.split_once(',').ok_or(StompError::InvalidHeartBeat)?;
    let number = |s: &str| {
        if s.is_empty() || s.len() > MAX_HEART_BEAT_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StompError::InvalidHeartBeat);
        }
        s.parse::<u32>().map_err(|_| StompError::InvalidHeartBeat)
    };
    Ok(HeartBeat { send_ms: number(send)?, receive_ms: number(receive)? })
}

/// The agreed heart-beat periods, in milliseconds, seen from `server`'s side:
/// `(send_every, expect_every)`, 0 meaning none. 1.2 §"Heart-beating": the
/// client-to-server period is 0 if the client cannot send (`cx` = 0) or the server
/// does not want any (`sy` = 0), else the larger of the two; the other direction
/// likewise. Swap the arguments for the client's side.
pub fn negotiate_heartbeat(client: HeartBeat, server: HeartBeat) -> (u32, u32) {
    let period = |can_send: u32, wants: u32| if can_send == 0 || wants == 0 { 0 } else { can_send.max(wants) };
    (period(server.send_ms, client.receive_ms), period(client.send_ms, server.receive_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An owned copy of an event, so tests can collect them.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Frame(OwnedFrame),
        HeartBeat,
    }

    fn own(ev: Event<'_>) -> Ev {
        match ev {
            Event::Frame(frame) => Ev::Frame(frame.to_owned()),
            Event::HeartBeat => Ev::HeartBeat,
        }
    }

    fn frame(command: Command, headers: &[(&str, &str)], body: &[u8]) -> Ev {
        Ev::Frame(OwnedFrame {
            command,
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            body: body.to_vec(),
        })
    }

    /// Feeds `chunks` to `dec`, collecting events until the first error.
    fn feed(dec: &mut Decoder, chunks: &[&[u8]]) -> (Vec<Ev>, Result<(), StompError>) {
        let mut out = Vec::new();
        for chunk in chunks {
            if let Err(error) = dec.decode(chunk, |ev| out.push(own(ev))) {
                return (out, Err(error));
            }
        }
        (out, Ok(()))
    }

    fn decode_with(limits: Limits, version: Version, input: &[u8]) -> (Vec<Ev>, Result<(), StompError>) {
        let mut dec = Decoder::new_client(limits);
        dec.set_version(version);
        feed(&mut dec, &[input])
    }

    fn decode_all(input: &[u8]) -> (Vec<Ev>, Result<(), StompError>) {
        decode_with(Limits::default(), Version::V1_2, input)
    }

    /// The error a whole input gives.
    fn error_of(input: &[u8]) -> StompError {
        decode_all(input).1.expect_err("input must be refused")
    }

    const STREAM: &[u8] = b"CONNECT\r\naccept-version:1.0,1.1,1.2\r\nhost:h\r\nlogin:a\\b:c\r\n\r\n\0\n\
        SEND\ndestination:/queue/a\ncontent-length:5\n\nhe\0lo\0\r\n\n\
        SUBSCRIBE\nid:0\ndestination:/q\\cb\nid:1\n\n\0\
        SEND\ndestination:/t\ncontent-type:text/plain\n\nno length\0\
        DISCONNECT\nreceipt:77\n\n\0";

    fn stream_frames() -> Vec<Ev> {
        vec![
            frame(Command::Connect, &[("accept-version", "1.0,1.1,1.2"), ("host", "h"), ("login", "a\\b:c")], b""),
            Ev::HeartBeat,
            frame(Command::Send, &[("destination", "/queue/a"), ("content-length", "5")], b"he\0lo"),
            Ev::HeartBeat,
            Ev::HeartBeat,
            frame(Command::Subscribe, &[("id", "0"), ("destination", "/q:b"), ("id", "1")], b""),
            frame(Command::Send, &[("destination", "/t"), ("content-type", "text/plain")], b"no length"),
            frame(Command::Disconnect, &[("receipt", "77")], b""),
        ]
    }

    #[test]
    fn stream_in_one_read() {
        let (events, result) = decode_all(STREAM);
        assert_eq!(result, Ok(()));
        assert_eq!(events, stream_frames());
    }

    #[test]
    fn split_at_every_pair_of_offsets_gives_same_events() {
        let expected = stream_frames();
        for i in 0..=STREAM.len() {
            for j in i..=STREAM.len() {
                let mut dec = Decoder::new(Limits::default());
                let (a, bc) = STREAM.split_at(i);
                let (b, c) = bc.split_at(j - i);
                let (events, result) = feed(&mut dec, &[a, b, c]);
                assert_eq!(result, Ok(()), "split at {i}, {j}");
                assert_eq!(events, expected, "split at {i}, {j}");
                assert!(dec.is_idle());
                assert_eq!(dec.finish(), Ok(()));
            }
        }
    }

    #[test]
    fn first_repeated_header_wins() {
        let (events, _) = decode_all(b"SUBSCRIBE\nid:first\nid:second\n\n\0");
        let Ev::Frame(f) = &events[0] else { panic!("{events:?}") };
        assert_eq!(f.header("id"), Some("first"));
        assert_eq!(f.headers.len(), 2, "repeats are kept");
        let mut dec = Decoder::new(Limits::default());
        dec.decode(b"SEND\nx:1\nx:2\n\n\0", |ev| {
            let Event::Frame(f) = ev else { panic!() };
            assert_eq!(f.header("x"), Some("1"));
            assert_eq!(f.header("y"), None);
            assert_eq!(f.headers().count(), 2);
        })
        .unwrap();
    }

    #[test]
    fn first_content_length_wins() {
        let (events, result) = decode_all(b"SEND\ncontent-length:2\ncontent-length:x\n\n\0\0\0");
        assert_eq!(result, Ok(()));
        assert_eq!(events, vec![frame(Command::Send, &[("content-length", "2"), ("content-length", "x")], b"\0\0")]);
    }

    #[test]
    fn binary_body_with_content_length() {
        let body: Vec<u8> = (0..=255).collect();
        let mut wire = Vec::new();
        write_frame(&mut wire, Command::Send, &[("destination", "/b")], &body, Version::V1_2).unwrap();
        let (events, result) = decode_all(&wire);
        assert_eq!(result, Ok(()));
        assert_eq!(events, vec![frame(Command::Send, &[("destination", "/b"), ("content-length", "256")], &body)]);
    }

    #[test]
    fn crlf_and_lf_line_ends() {
        let lf = decode_all(b"SEND\na:b\n\nx\0");
        let crlf = decode_all(b"SEND\r\na:b\r\n\r\nx\0");
        assert_eq!(lf, crlf);
        // Only the last `\r` is a line end; in a 1.2 value an earlier one is content.
        assert_eq!(decode_all(b"SEND\na:b\r\r\n\n\0").0, vec![frame(Command::Send, &[("a", "b\r")], b"")]);
        assert_eq!(error_of(b"SEND\r\r\n\n\0"), StompError::UnknownCommand);
    }

    #[test]
    fn heart_beats_between_frames() {
        let (events, result) = decode_all(b"\n\r\n\nDISCONNECT\n\n\0\r\n");
        assert_eq!(result, Ok(()));
        assert_eq!(
            events,
            vec![Ev::HeartBeat, Ev::HeartBeat, Ev::HeartBeat, frame(Command::Disconnect, &[], b""), Ev::HeartBeat]
        );
        assert_eq!(error_of(b"\rX"), StompError::StrayCarriageReturn);
        let mut dec = Decoder::new(Limits::default());
        assert_eq!(feed(&mut dec, &[b"\r"]).1, Ok(()));
        assert!(dec.is_idle(), "a half heart-beat holds no frame");
    }

    #[test]
    fn escaping_per_version_and_command() {
        let wire = b"SEND\nk\\cey:a\\nb\\\\c\\rd\n\n\0";
        assert_eq!(
            decode_with(Limits::default(), Version::V1_2, wire).0,
            vec![frame(Command::Send, &[("k:ey", "a\nb\\c\rd")], b"")]
        );
        // 1.1 has no `\r` escape.
        assert_eq!(decode_with(Limits::default(), Version::V1_1, wire).1, Err(StompError::InvalidEscape));
        assert_eq!(
            decode_with(Limits::default(), Version::V1_1, b"SEND\nk\\cey:a\\nb\\\\c\n\n\0").0,
            vec![frame(Command::Send, &[("k:ey", "a\nb\\c")], b"")]
        );
        // 1.0: no escaping, and the first colon splits.
        assert_eq!(
            decode_with(Limits::default(), Version::V1_0, wire).0,
            vec![frame(Command::Send, &[("k\\cey", "a\\nb\\\\c\\rd")], b"")]
        );
        // CONNECT, STOMP and CONNECTED are never unescaped.
        for command in ["CONNECT", "STOMP", "CONNECTED"] {
            let wire = format!("{command}\npasscode:a\\tb:\\\n\n\0");
            let (events, result) = decode_with(Limits::default(), Version::V1_2, wire.as_bytes());
            assert_eq!(result, Ok(()), "{command}");
            let Ev::Frame(f) = &events[0] else { panic!() };
            assert_eq!(f.header("passcode"), Some("a\\tb:\\"));
        }
    }

    #[test]
    fn undefined_and_truncated_escapes_are_errors() {
        for wire in [&b"SEND\na:\\t\n\n\0"[..], b"SEND\na:x\\\n\n\0", b"SEND\n\\x:a\n\n\0", b"SEND\na:\\C\n\n\0"] {
            assert_eq!(error_of(wire), StompError::InvalidEscape, "{:?}", String::from_utf8_lossy(wire));
        }
    }

    #[test]
    fn escaping_round_trips() {
        let nasty = "a:b\\c\nd\re";
        for version in [Version::V1_1, Version::V1_2] {
            let value = if version == Version::V1_2 { nasty } else { "a:b\\c\nd" };
            let mut wire = Vec::new();
            write_frame(&mut wire, Command::Send, &[(value, value)], b"", version).unwrap();
            assert!(!wire[5..wire.len() - 3].contains(&b'\n') || wire.iter().filter(|&&b| b == b'\n').count() == 3);
            let (events, result) = decode_with(Limits::default(), version, &wire);
            assert_eq!(result, Ok(()), "{version:?}");
            assert_eq!(events, vec![frame(Command::Send, &[(value, value)], b"")], "{version:?}");
        }
        // Without a `\r` escape, a trailing `\r` goes out before a `\r\n` line end.
        let mut out = Vec::new();
        for version in [Version::V1_0, Version::V1_1] {
            out.clear();
            write_frame(&mut out, Command::Send, &[("a", "b\r")], b"", version).unwrap();
            assert_eq!(out, b"SEND\na:b\r\r\n\n\0");
            let (events, _) = decode_with(Limits::default(), version, &out);
            assert_eq!(events, vec![frame(Command::Send, &[("a", "b\r")], b"")]);
        }
        // An unescaped frame cannot carry `\n`, nor `:` in a name.
        let mut out = b"keep".to_vec();
        assert_eq!(
            write_frame(&mut out, Command::Send, &[("a", "b\n")], b"", Version::V1_0),
            Err(EncodeError::Unrepresentable)
        );
        assert_eq!(
            write_frame(&mut out, Command::Connected, &[("a:", "b")], b"", Version::V1_2),
            Err(EncodeError::Unrepresentable)
        );
        assert_eq!(
            write_frame(&mut out, Command::Send, &[("", "b")], b"", Version::V1_2),
            Err(EncodeError::Unrepresentable)
        );
        assert_eq!(out, b"keep", "a failed write leaves the output as it was");
        // Unescaped frames carry `\` and `:` in values verbatim.
        write_frame(&mut out, Command::Connect, &[("passcode", "a\\b:c")], b"", Version::V1_2).unwrap();
        assert_eq!(&out[4..], b"CONNECT\npasscode:a\\b:c\n\n\0");
    }

    #[test]
    fn encoder_adds_true_content_length() {
        let mut out = Vec::new();
        write_frame(&mut out, Command::Send, &[("content-length", "999"), ("a", "b")], b"x\0y", Version::V1_2).unwrap();
        assert_eq!(out, b"SEND\na:b\ncontent-length:3\n\nx\0y\0");
        out.clear();
        write_frame(&mut out, Command::Disconnect, &[], b"", Version::V1_2).unwrap();
        assert_eq!(out, b"DISCONNECT\n\n\0");
    }

    #[test]
    fn broker_frame_helpers() {
        let mut out = Vec::new();
        let hb = HeartBeat { send_ms: 10_000, receive_ms: 0 };
        write_connected(&mut out, Version::V1_2, hb, Some("soket/0.1"), "s-1", Some("alice")).unwrap();
        assert_eq!(
            out,
            b"CONNECTED\nversion:1.2\nheart-beat:10000,0\nsession:s-1\nserver:soket/0.1\nuser-name:alice\n\n\0"
        );
        out.clear();
        write_connected(&mut out, Version::V1_0, hb, None, "s-2", None).unwrap();
        assert_eq!(out, b"CONNECTED\nsession:s-2\n\n\0");
        out.clear();
        let message = MessageHeaders {
            destination: "/topic/a:b",
            message_id: "m-1",
            subscription: "0",
            ack: Some("a-1"),
            content_type: Some("text/plain"),
        };
        write_message(&mut out, Version::V1_2, &message, &[("from", "bob")], b"hi").unwrap();
        assert_eq!(
            out,
            &b"MESSAGE\ndestination:/topic/a\\cb\nmessage-id:m-1\nsubscription:0\nack:a-1\n\
               content-type:text/plain\nfrom:bob\ncontent-length:2\n\nhi\0"[..]
        );
        out.clear();
        write_receipt(&mut out, Version::V1_1, "77").unwrap();
        assert_eq!(out, b"RECEIPT\nreceipt-id:77\n\n\0");
        out.clear();
        write_error(&mut out, Version::V1_0, "bad\r\nthing", Some("x_y"), Some("r\n1"), "detail");
        assert_eq!(
            out,
            b"ERROR\nmessage:bad  thing\ncode:x_y\nreceipt-id:r 1\ncontent-type:text/plain\ncontent-length:6\n\ndetail\0"
        );
        // Everything the helpers write decodes.
        let (events, result) = decode_all(&out);
        assert_eq!(result, Ok(()));
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn version_negotiation() {
        assert_eq!(negotiate_version(None), Some(Version::V1_0));
        assert_eq!(negotiate_version(Some("1.0,1.1,1.2")), Some(Version::V1_2));
        assert_eq!(negotiate_version(Some("1.1,1.0")), Some(Version::V1_1));
        assert_eq!(negotiate_version(Some("1.2, 2.0")), Some(Version::V1_2));
        assert_eq!(negotiate_version(Some("1.0")), Some(Version::V1_0));
        assert_eq!(negotiate_version(Some("2.0,0.9")), None);
        assert_eq!(negotiate_version(Some("")), None);
        assert_eq!(SUPPORTED_VERSIONS, "1.0,1.1,1.2");
    }

    #[test]
    fn heart_beat_parsing_is_strict() {
        assert_eq!(parse_heart_beat("0,0"), Ok(HeartBeat { send_ms: 0, receive_ms: 0 }));
        assert_eq!(parse_heart_beat("4000,10000"), Ok(HeartBeat { send_ms: 4000, receive_ms: 10_000 }));
        assert_eq!(parse_heart_beat("4294967295,007"), Ok(HeartBeat { send_ms: u32::MAX, receive_ms: 7 }));
        for bad in
            ["", "1", "1,", ",1", "1,2,3", " 1,2", "1, 2", "-1,2", "+1,2", "4294967296,0", "00000000001,0", "a,b"]
        {
            assert_eq!(parse_heart_beat(bad), Err(StompError::InvalidHeartBeat), "{bad:?}");
        }
    }

    #[test]
    fn heart_beat_negotiation_both_ways() {
        let hb = |send_ms, receive_ms| HeartBeat { send_ms, receive_ms };
        // Client can send every 4 s and wants one every 10 s; server 5 s / 1 s.
        let client = hb(4000, 10_000);
        let server = hb(5000, 1000);
        assert_eq!(negotiate_heartbeat(client, server), (10_000, 4000));
        // The client's view is the same agreement, mirrored.
        assert_eq!(negotiate_heartbeat(server, client), (4000, 10_000));
        // A zero on either side of a direction turns that direction off.
        assert_eq!(negotiate_heartbeat(hb(0, 0), server), (0, 0));
        assert_eq!(negotiate_heartbeat(hb(4000, 0), server), (0, 4000));
        assert_eq!(negotiate_heartbeat(client, hb(0, 1000)), (0, 4000));
        assert_eq!(negotiate_heartbeat(client, hb(5000, 0)), (10_000, 0));
    }

    #[test]
    fn unknown_commands() {
        for wire in [&b"FOO\n\n\0"[..], b"send\n\n\0", b"SEND \n\n\0", b"GET / HTTP/1.1\r\n", b"SUBSCRIBEX\n", b"\0"] {
            assert_eq!(error_of(wire), StompError::UnknownCommand, "{:?}", String::from_utf8_lossy(wire));
        }
        // A broker's decoder refuses server commands.
        let mut dec = Decoder::new(Limits::default());
        assert_eq!(feed(&mut dec, &[b"MESSAGE\n\n\0"]).1, Err(StompError::UnknownCommand));
        // A long command line is refused before its line end arrives.
        let mut dec = Decoder::new(Limits::default());
        assert_eq!(feed(&mut dec, &[b"UNSUBSCRIBE\r"]).1, Ok(()));
        let mut dec = Decoder::new(Limits::default());
        assert_eq!(feed(&mut dec, &[b"AAAAAAAAAAAAA"]).1, Err(StompError::UnknownCommand));
    }

    #[test]
    fn malformed_headers() {
        assert_eq!(error_of(b"SEND\nnocolon\n\n\0"), StompError::MalformedHeader);
        assert_eq!(error_of(b"SEND\n:empty-name\n\n\0"), StompError::MalformedHeader);
        assert_eq!(error_of(b"SEND\na:\xff\n\n\0"), StompError::InvalidUtf8);
        assert_eq!(error_of(b"SEND\n\xc3:x\n\n\0"), StompError::InvalidUtf8);
        // Halves that are invalid apart but join into valid UTF-8 (a fuzz find).
        assert_eq!(error_of(b"SEND\n\xd6:\x96:\n\n\0"), StompError::InvalidUtf8);
        // An empty value is fine; spaces are kept (1.2 does not trim).
        assert_eq!(
            decode_all(b"SEND\na:\n b : c \n\n\0").0,
            vec![frame(Command::Send, &[("a", ""), (" b ", " c ")], b"")]
        );
    }

    #[test]
    fn content_length_errors() {
        for bad in ["", " 5", "5 ", "-1", "+1", "0x10", "1e3", "18446744073709551616", "99999999999999999999999"] {
            let wire = format!("SEND\ncontent-length:{bad}\n\n\0");
            assert_eq!(error_of(wire.as_bytes()), StompError::InvalidContentLength, "{bad:?}");
        }
        // Fits in usize but not in the frame: refused at the blank line, nothing buffered.
        let mut dec = Decoder::new(Limits::default());
        let (_, result) = feed(&mut dec, &[b"SEND\ncontent-length:18446744073709551615\n\n"]);
        assert_eq!(result, Err(StompError::FrameTooLarge));
        assert_eq!(dec.buffer_capacity(), 0);
        // A length shorter than the body: the byte after it is not NUL.
        assert_eq!(error_of(b"SEND\ncontent-length:2\n\nabc\0"), StompError::MissingNul);
        // A longer one waits for more, bounded by the frame limit.
        let limits = Limits { max_frame_bytes: 64, ..Limits::default() };
        let mut dec = Decoder::new(limits);
        assert_eq!(feed(&mut dec, &[b"SEND\ncontent-length:30\n\nabc\0"]).1, Ok(()));
        assert_eq!(dec.finish(), Err(StompError::Truncated));
        assert_eq!(
            decode_with(limits, Version::V1_2, b"SEND\ncontent-length:50\n\n").1,
            Err(StompError::FrameTooLarge)
        );
        // Leading zeros are a number.
        assert_eq!(decode_all(b"SEND\ncontent-length:002\n\nab\0").1, Ok(()));
    }

    #[test]
    fn frame_size_limit_is_exact() {
        // "SEND\n" 5 + "\n" 1 + body + NUL 1 = body + 7.
        let limits = Limits { max_frame_bytes: 17, ..Limits::default() };
        let fits = [&b"SEND\n\n"[..], &[b'x'; 10], b"\0"].concat();
        assert_eq!(decode_with(limits, Version::V1_2, &fits).1, Ok(()));
        let over = [&b"SEND\n\n"[..], &[b'x'; 11], b"\0"].concat();
        assert_eq!(decode_with(limits, Version::V1_2, &over).1, Err(StompError::FrameTooLarge));
        // With content-length: "SEND\n" 5 + "content-length:N\n" 17 + "\n" 1 + N + 1.
        let limits = Limits { max_frame_bytes: 24 + 9, ..Limits::default() };
        let wire = |n: usize| [format!("SEND\ncontent-length:{n}\n\n").as_bytes(), &vec![b'y'; n], b"\0"].concat();
        assert_eq!(decode_with(limits, Version::V1_2, &wire(9)).1, Ok(()));
        let limits = Limits { max_frame_bytes: 24 + 8, ..Limits::default() };
        assert_eq!(decode_with(limits, Version::V1_2, &wire(9)).1, Err(StompError::FrameTooLarge));
    }

    #[test]
    fn nul_less_body_stays_bounded() {
        let limits = Limits { max_frame_bytes: 1024, ..Limits::default() };
        let mut dec = Decoder::new(limits);
        dec.decode(b"SEND\ndestination:/a\n\n", |_| {}).unwrap();
        let mut result = Ok(());
        for _ in 0..10_000 {
            result = dec.decode(b"body without end ", |_| panic!("no frame"));
            assert!(dec.buffered_bytes() <= 1024 && dec.buffer_capacity() <= 1024);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(StompError::FrameTooLarge));
        assert_eq!(dec.decode(b"\0", |_| {}), Err(StompError::FrameTooLarge), "a failed decoder repeats");
        assert_eq!(dec.buffer_capacity(), 0, "failing frees the buffer");
    }

    #[test]
    fn unterminated_frames_are_truncated_at_end() {
        for partial in
            [&b"SEND"[..], b"SEND\n", b"SEND\na:b", b"SEND\na:b\n", b"SEND\n\nbody", b"SEND\ncontent-length:1\n\nx"]
        {
            let mut dec = Decoder::new(Limits::default());
            assert_eq!(feed(&mut dec, &[partial]).1, Ok(()));
            assert_eq!(dec.finish(), Err(StompError::Truncated), "{:?}", String::from_utf8_lossy(partial));
        }
    }

    #[test]
    fn header_limits() {
        let limits = Limits { max_headers: 2, max_header_line: 8, ..Limits::default() };
        assert_eq!(decode_with(limits, Version::V1_2, b"SEND\na:1\na:2\n\n\0").1, Ok(()));
        assert_eq!(decode_with(limits, Version::V1_2, b"SEND\na:1\na:2\na:3\n\n\0").1, Err(StompError::TooManyHeaders));
        // 8 bytes fit, with either line end; 9 do not.
        assert_eq!(decode_with(limits, Version::V1_2, b"SEND\nabc:1234\r\n\n\0").1, Ok(()));
        assert_eq!(decode_with(limits, Version::V1_2, b"SEND\nabc:12345\n\n\0").1, Err(StompError::HeaderLineTooLong));
        // A long line is refused before its end arrives, so it is never held whole.
        let mut dec = Decoder::new(limits);
        assert_eq!(feed(&mut dec, &[b"SEND\nabc:123456"]).1, Err(StompError::HeaderLineTooLong));
        // The line limit counts escapes as written.
        assert_eq!(
            decode_with(limits, Version::V1_2, b"SEND\na:\\n\\n\\n\\n\n\n\0").1,
            Err(StompError::HeaderLineTooLong)
        );
    }

    #[test]
    fn steady_state_does_not_allocate() {
        let mut dec = Decoder::new(Limits::default());
        let wire = b"SEND\ndestination:/a\ncontent-length:3\n\nabc\0";
        dec.decode(wire, |_| {}).unwrap();
        let capacity = dec.buffer_capacity();
        for _ in 0..100 {
            dec.decode(wire, |_| {}).unwrap();
        }
        assert_eq!(dec.buffer_capacity(), capacity);
        assert_eq!(dec.buffered_bytes(), 0);
        dec.release_idle_memory();
        assert_eq!(dec.buffer_capacity(), 0);
    }

    #[test]
    fn version_switch_applies_to_next_frame() {
        let mut dec = Decoder::new(Limits::default());
        dec.set_version(Version::V1_0);
        let mut out = Vec::new();
        dec.decode(b"SEND\na:\\n\n\n\0", |ev| out.push(own(ev))).unwrap();
        dec.set_version(Version::V1_1);
        dec.decode(b"SEND\na:\\n\n\n\0", |ev| out.push(own(ev))).unwrap();
        assert_eq!(out, vec![frame(Command::Send, &[("a", "\\n")], b""), frame(Command::Send, &[("a", "\n")], b"")]);
    }

    #[test]
    fn a_version_set_after_a_frame_governs_the_next_one_in_the_same_read() {
        let mut dec = Decoder::new(Limits::default());
        let mut input: &[u8] = b"CONNECT\naccept-version:1.0\n\n\0\nSEND\na:\\c\n\n\0SEND\na:\\c\n\n\0";
        let mut out = Vec::new();
        dec.decode_frame(&mut input, |ev| out.push(own(ev))).unwrap();
        assert_eq!(out, vec![frame(Command::Connect, &[("accept-version", "1.0")], b"")]);
        dec.set_version(Version::V1_0);
        dec.decode_frame(&mut input, |ev| out.push(own(ev))).unwrap();
        assert_eq!(out.len(), 3, "the heart-beat and the first SEND: {out:?}");
        assert_eq!(out[2], frame(Command::Send, &[("a", "\\c")], b""));
        dec.set_version(Version::V1_2);
        dec.decode_frame(&mut input, |ev| out.push(own(ev))).unwrap();
        assert_eq!(out[3], frame(Command::Send, &[("a", ":")], b""));
        assert!(input.is_empty());
        // Reads that end inside a frame consume everything and emit nothing.
        let mut part: &[u8] = b"SEND\na:";
        dec.decode_frame(&mut part, |ev| out.push(own(ev))).unwrap();
        assert!(part.is_empty() && out.len() == 4 && !dec.is_idle());
    }

    /// One frame's parts as the generator below picks them.
    fn arb_frame() -> impl proptest::strategy::Strategy<Value = (usize, Vec<(String, String)>, Vec<u8>)> {
        use proptest::prelude::*;
        let text = || proptest::string::string_regex("[a-c:\\\\\n\r é]{0,6}").expect("valid regex");
        (
            0usize..Command::ALL.len(),
            proptest::collection::vec((text(), text()), 0..4),
            proptest::collection::vec(prop_oneof![Just(0u8), Just(b'\n'), any::<u8>()], 0..12),
        )
    }

    proptest::proptest! {
        #[test]
        fn encoded_frames_decode_back_over_any_split(
            frames in proptest::collection::vec(arb_frame(), 1..5),
            eols in proptest::collection::vec(0usize..3, 5),
            cuts in proptest::collection::vec(0usize..400, 0..6),
        ) {
            let mut wire = Vec::new();
            let mut expected = Vec::new();
            for (i, (command, headers, body)) in frames.iter().enumerate() {
                let command = Command::ALL[*command];
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .filter(|(n, _)| !n.is_empty() && *n != "content-length")
                    .collect();
                let headers: Vec<(&str, &str)> = if command.escapes(Version::V1_2) {
                    headers
                } else {
                    headers.into_iter().filter(|(n, v)| !n.contains(['\n', ':']) && !v.contains('\n')).collect()
                };
                write_frame(&mut wire, command, &headers, body, Version::V1_2).expect("representable");
                let mut all: Vec<(&str, &str)> = headers.clone();
                let length = body.len().to_string();
                if !body.is_empty() {
                    all.push(("content-length", &length));
                }
                expected.push(frame(command, &all, body));
                for _ in 0..eols[i] {
                    wire.extend_from_slice(if i % 2 == 0 { b"\n" } else { b"\r\n" });
                    expected.push(Ev::HeartBeat);
                }
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(wire.len())).collect();
            cuts.sort_unstable();
            let mut dec = Decoder::new_client(Limits::default());
            let mut out = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([wire.len()]) {
                dec.decode(&wire[start..cut], |ev| out.push(own(ev))).expect("valid stream");
                start = cut;
            }
            proptest::prop_assert_eq!(dec.finish(), Ok(()));
            proptest::prop_assert_eq!(out, expected);
        }

        #[test]
        fn any_input_gives_the_same_result_over_any_split(
            input in proptest::collection::vec(
                proptest::sample::select(b"SEND\nCONNECT:\\nc\r\0content-length:12x".to_vec()),
                0..120,
            ),
            cuts in proptest::collection::vec(0usize..120, 0..6),
            max_frame in 0usize..80,
            max_line in 0usize..20,
        ) {
            let limits = Limits { max_frame_bytes: max_frame, max_headers: 3, max_header_line: max_line };
            let whole = decode_with(limits, Version::V1_2, &input);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut dec = Decoder::new_client(limits);
            let mut pieces = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([input.len()]) {
                pieces.push(&input[start..cut]);
                start = cut;
            }
            let split = feed(&mut dec, &pieces);
            proptest::prop_assert!(dec.buffer_capacity() <= max_frame.max(MIN_BUFFER_CAPACITY.min(max_frame)));
            proptest::prop_assert_eq!(split, whole);
        }
    }
}
