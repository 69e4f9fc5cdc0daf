//! Request bodies after the head: `Content-Length` and `Transfer-Encoding:
//! chunked` framing (RFC 7230 §3.3, §4.1) under a size limit. No sockets;
//! what the body means is the caller's.
//!
//! [`Request::body_kind`](super::request::Request::body_kind) says how the
//! body is framed; [`BodyDecoder`] takes the bytes after the head in pieces
//! of any size and appends the body to a caller's buffer.

use std::fmt;

use super::request::Request;

/// Longest chunk-size line (size, extensions, CRLF) and longest trailer
/// field line, in bytes. Both are ignored beyond the size, so the bound only
/// stops a peer streaming one endless line.
pub const MAX_CHUNK_LINE_BYTES: usize = 4096;

/// Most bytes in the trailer section after the last chunk, which is skipped.
pub const MAX_TRAILER_BYTES: usize = 8192;

/// How a request's body is delimited (RFC 7230 §3.3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// Neither `Content-Length` nor `Transfer-Encoding`: a request has no body.
    None,
    /// `Content-Length: n` (n may be 0). Saturates at `u64::MAX`, which is
    /// over any limit.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Why a body was refused. Each variant maps to one status ([`BodyError::status`]);
/// `Display` gives the reason sent as the plain-text body. After any of
/// them the framing is lost, so the connection must close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// `Content-Length` is not a decimal number. 400.
    InvalidLength,
    /// More than one `Content-Length`, even with equal values. 400.
    DuplicateLength,
    /// Both `Content-Length` and `Transfer-Encoding`. 400.
    LengthAndTransferEncoding,
    /// `Transfer-Encoding` whose final coding is not `chunked`, that applies
    /// `chunked` twice or is empty, or that came with HTTP/1.0: the body
    /// length can't be known. 400.
    BadTransferEncoding,
    /// A transfer coding besides `chunked` (e.g. `gzip, chunked`). 501.
    UnsupportedTransferCoding,
    /// The body (announced or received) exceeds `max_body_bytes`. 413.
    TooLarge,
    /// A chunk-size that is not hexadecimal, or that overflows. 400.
    BadChunkSize,
    /// A chunk-size or trailer line over [`MAX_CHUNK_LINE_BYTES`], or a
    /// trailer section over [`MAX_TRAILER_BYTES`]. 400.
    ChunkLineTooLong,
    /// A line ending other than CRLF in the chunked framing, or chunk data
    /// not followed by CRLF. 400.
    BadChunkFraming,
}

impl BodyError {
    /// The status this rule answers with.
    pub fn status(self) -> u16 {
        match self {
            BodyError::TooLarge => 413,
            BodyError::UnsupportedTransferCoding => 501,
            BodyError::InvalidLength
            | BodyError::DuplicateLength
            | BodyError::LengthAndTransferEncoding
            | BodyError::BadTransferEncoding
            | BodyError::BadChunkSize
            | BodyError::ChunkLineTooLong
            | BodyError::BadChunkFraming => 400,
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BodyError::InvalidLength => "Content-Length is not a decimal number",
            BodyError::DuplicateLength => "more than one Content-Length header",
            BodyError::LengthAndTransferEncoding => "both Content-Length and Transfer-Encoding",
            BodyError::BadTransferEncoding => "Transfer-Encoding must end with chunked, once, on HTTP/1.1",
            BodyError::UnsupportedTransferCoding => "unsupported transfer coding; only chunked is implemented",
            BodyError::TooLarge => "request body too large",
            BodyError::BadChunkSize => "chunk size is not a hexadecimal number",
            BodyError::ChunkLineTooLong => "chunk line or trailer section too long",
            BodyError::BadChunkFraming => "malformed chunked framing",
        })
    }
}

impl std::error::Error for BodyError {}

/// How a request head delimits its body; see [`Request::body_kind`].
pub(super) fn body_kind(req: &Request<'_, '_>) -> Result<BodyKind, BodyError> {
    let mut codings = req.values("Transfer-Encoding").peekable();
    if codings.peek().is_some() {
        // RFC 7230 §3.3.3 point 3: with both, the message "might indicate
        // an attempt to perform request smuggling ... ought to be handled
        // as an error".
        if req.values("Content-Length").next().is_some() {
            return Err(BodyError::LengthAndTransferEncoding);
        }
        // RFC 7230 §3.3.1: Transfer-Encoding "was added in HTTP/1.1"; an
        // HTTP/1.0 message carrying it can't be framed reliably.
        if req.minor_version == 0 {
            return Err(BodyError::BadTransferEncoding);
        }
        return chunked_last(codings.flat_map(super::request::list_items));
    }
    let length = match req.single("Content-Length") {
        Err(_) => return Err(BodyError::DuplicateLength),
        Ok(None) => return Ok(BodyKind::None),
        Ok(Some(v)) => v,
    };
    // RFC 7230 §3.3.2: `Content-Length = 1*DIGIT`. A list like `5, 5` is
    // refused rather than merged.
    if length.is_empty() || !length.iter().all(u8::is_ascii_digit) {
        return Err(BodyError::InvalidLength);
    }
    let n = length.iter().fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(d - b'0')));
    Ok(BodyKind::Length(n))
}

/// RFC 7230 §3.3.3 point 3: "If a Transfer-Encoding header field is present
/// in a request and the chunked transfer coding is not the final encoding,
/// ... the server MUST respond with the 400"; §3.3.1: "A sender MUST NOT
/// apply chunked more than once"; an unknown coding "SHOULD" get 501.
fn chunked_last<'a>(codings: impl Iterator<Item = &'a [u8]>) -> Result<BodyKind, BodyError> {
    let mut chunked = 0usize;
    let mut other = false;
    let mut last_is_chunked = false;
    for coding in codings {
        last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
        if last_is_chunked {
            chunked += 1;
        } else {
            other = true;
        }
    }
    match (last_is_chunked, chunked, other) {
        (true, 1, false) => Ok(BodyKind::Chunked),
        (true, 1, true) => Err(BodyError::UnsupportedTransferCoding),
        _ => Err(BodyError::BadTransferEncoding),
    }
}

/// Where the decoder is in the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// `Content-Length` bytes still to come.
    Length { remaining: u64 },
    /// In a chunk-size line: `size` from the hex digits so far, `line_bytes`
    /// of the line seen, and which part of it.
    ChunkSize { size: u64, line_bytes: usize, part: SizePart },
    /// After the CR of a chunk-size line, expecting LF.
    ChunkSizeLf { size: u64 },
    /// Chunk data bytes still to come.
    ChunkData { remaining: u64 },
    /// After chunk data, expecting CR then LF (`cr` once the CR was seen).
    ChunkDataEnd { cr: bool },
    /// In the trailer section: `line_bytes` of the current field line,
    /// `total` bytes of the section, `cr` once the line's CR was seen.
    Trailer { line_bytes: usize, total: usize, cr: bool },
    /// The whole body was received.
    Done,
    /// A framing error; the same error is reported again.
    Failed(BodyError),
}

/// The part of a chunk-size line being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SizePart {
    /// Before the first hex digit.
    Start,
    /// In the hex digits.
    Digits,
    /// Whitespace after the digits: only more of it or `;` may follow.
    Bws,
    /// After a `;`: extensions, skipped up to CR.
    Ext,
}

/// A chunk-size line about to start.
const CHUNK_SIZE_LINE: State = State::ChunkSize { size: 0, line_bytes: 0, part: SizePart::Start };

/// Incremental body decoder for one request.
///
/// Examines each input byte once whatever the split (chunk data is copied by
/// slice), holds no buffer of its own, and never reserves from a peer's
/// length: body bytes go to the caller's `Vec` only as they arrive, after
/// the announced size was checked against `max_body_bytes`.
#[derive(Clone, Debug)]
pub struct BodyDecoder {
    state: State,
    max_body_bytes: u64,
    /// Body bytes delivered so far.
    received: u64,
}

impl BodyDecoder {
    /// A decoder for the body `req` announces, accepting at most
    /// `max_body_bytes` of body. Errors: the framing headers break a rule,
    /// or `Content-Length` is over the limit ([`BodyError::TooLarge`]).
    pub fn new(req: &Request<'_, '_>, max_body_bytes: usize) -> Result<Self, BodyError> {
        Self::for_kind(req.body_kind()?, max_body_bytes)
    }

    /// A decoder for a body delimited as `kind`; see [`BodyDecoder::new`].
    pub fn for_kind(kind: BodyKind, max_body_bytes: usize) -> Result<Self, BodyError> {
        let max_body_bytes = u64::try_from(max_body_bytes).unwrap_or(u64::MAX);
        let state = match kind {
            BodyKind::None | BodyKind::Length(0) => State::Done,
            BodyKind::Length(n) if n > max_body_bytes => return Err(BodyError::TooLarge),
            BodyKind::Length(n) => State::Length { remaining: n },
            BodyKind::Chunked => CHUNK_SIZE_LINE,
        };
        Ok(BodyDecoder { state, max_body_bytes, received: 0 })
    }

    /// Consumes the front of `input` (the bytes after the head, or after
    /// what earlier calls consumed), appending body bytes to `body`.
    ///
    /// `Ok((n, None))`: all `n == input.len()` bytes were used, the body
    /// goes on. `Ok((n, Some(len)))`: the body is complete, `len` bytes in
    /// all; `input[n..]` is the next request's. Partial lines are remembered,
    /// so bytes are never offered twice. After an error or the end, further
    /// calls consume nothing and answer the same.
    pub fn decode(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<(usize, Option<u64>), BodyError> {
        let mut pos = 0;
        while let Some(rest) = input.get(pos..).filter(|r| !r.is_empty()) {
            match self.step(rest, body) {
                // Only the terminal states take nothing.
                Ok(0) => break,
                Ok(used) => pos += used,
                Err(e) => {
                    self.state = State::Failed(e);
                    return Err(e);
                }
            }
        }
        match self.state {
            State::Done => Ok((pos, Some(self.received))),
            State::Failed(e) => Err(e),
            _ => Ok((pos, None)),
        }
    }

    /// Whether the whole body has been received.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Body bytes delivered so far.
    pub fn received_bytes(&self) -> u64 {
        self.received
    }

    /// Advances over the front of `rest`; returns the bytes used (at least
    /// one when `rest` is not empty, unless the state is terminal).
    fn step(&mut self, rest: &[u8], body: &mut Vec<u8>) -> Result<usize, BodyError> {
        match self.state {
            State::Length { remaining } | State::ChunkData { remaining } => {
                let take = usize::try_from(remaining).map_or(rest.len(), |r| r.min(rest.len()));
                body.extend_from_slice(rest.get(..take).unwrap_or_default());
                self.received += take as u64;
                let left = remaining - take as u64;
                self.state = match self.state {
                    State::Length { .. } if left == 0 => State::Done,
                    State::Length { .. } => State::Length { remaining: left },
                    _ if left == 0 => State::ChunkDataEnd { cr: false },
                    _ => State::ChunkData { remaining: left },
                };
                return Ok(take);
            }
            State::Done | State::Failed(_) => return Ok(0),
            _ => {}
        }
        // The line states take one byte at a time.
        let Some(&b) = rest.first() else {
            return Ok(0);
        };
        self.state = match self.state {
            State::ChunkSize { size, line_bytes, part } => {
                let line_bytes = line_bytes + 1;
                if line_bytes > MAX_CHUNK_LINE_BYTES {
                    return Err(BodyError::ChunkLineTooLong);
                }
                let next = |part| State::ChunkSize { size, line_bytes, part };
                // RFC 7230 §4.1: `chunk = chunk-size [ chunk-ext ] CRLF`, with
                // `chunk-ext = *( ";" chunk-ext-name [ "=" chunk-ext-val ] )`,
                // ignored here; §4.1.1's BWS allows whitespace before the `;`.
                match (part, b) {
                    (SizePart::Start, b'\r' | b'\n') => return Err(BodyError::BadChunkSize),
                    (_, b'\r') => State::ChunkSizeLf { size },
                    (_, b'\n') => return Err(BodyError::BadChunkFraming),
                    (SizePart::Ext, _) => next(SizePart::Ext),
                    (SizePart::Digits | SizePart::Bws, b';') => next(SizePart::Ext),
                    (SizePart::Digits | SizePart::Bws, b' ' | b'\t') => next(SizePart::Bws),
                    (SizePart::Bws, _) => return Err(BodyError::BadChunkSize),
                    (SizePart::Start | SizePart::Digits, _) => {
                        let digit = (b as char).to_digit(16).ok_or(BodyError::BadChunkSize)?;
                        let size = size
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(u64::from(digit)))
                            .ok_or(BodyError::TooLarge)?;
                        // Checked before any data is taken: more digits only grow it.
                        if size > self.max_body_bytes.saturating_sub(self.received) {
                            return Err(BodyError::TooLarge);
                        }
                        State::ChunkSize { size, line_bytes, part: SizePart::Digits }
                    }
                }
            }
            State::ChunkSizeLf { size } => match b {
                b'\n' if size == 0 => State::Trailer { line_bytes: 0, total: 0, cr: false },
                b'\n' => State::ChunkData { remaining: size },
                _ => return Err(BodyError::BadChunkFraming),
            },
            State::ChunkDataEnd { cr: false } if b == b'\r' => State::ChunkDataEnd { cr: true },
            State::ChunkDataEnd { cr: true } if b == b'\n' => CHUNK_SIZE_LINE,
            State::ChunkDataEnd { .. } => return Err(BodyError::BadChunkFraming),
            // RFC 7230 §4.1.2: trailer fields are skipped, not merged into
            // the head: nothing here needs them.
            State::Trailer { line_bytes, total, cr } => {
                let (line_bytes, total) = (line_bytes + 1, total + 1);
                if line_bytes > MAX_CHUNK_LINE_BYTES || total > MAX_TRAILER_BYTES {
                    return Err(BodyError::ChunkLineTooLong);
                }
                match (b, cr) {
                    // An empty line (just CRLF) ends the body.
                    (b'\n', true) if line_bytes == 2 => State::Done,
                    (b'\n', true) => State::Trailer { line_bytes: 0, total, cr: false },
                    (b'\r', false) => State::Trailer { line_bytes, total, cr: true },
                    (b'\n', false) | (_, true) => return Err(BodyError::BadChunkFraming),
                    (_, false) => State::Trailer { line_bytes, total, cr: false },
                }
            }
            State::Length { .. } | State::ChunkData { .. } | State::Done | State::Failed(_) => self.state,
        };
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 16;

    fn kind(headers: &str, minor: u8) -> Result<BodyKind, BodyError> {
        let head = format!("POST / HTTP/1.{minor}\r\nHost: a\r\n{headers}\r\n");
        let mut fields = [httparse::EMPTY_HEADER; 8];
        Request::parse(head.as_bytes(), &mut fields).unwrap().body_kind()
    }

    /// Decodes `input` whole: (body, consumed, done) or the error.
    fn whole(kind: BodyKind, max: usize, input: &[u8]) -> Result<(Vec<u8>, usize, bool), BodyError> {
        let mut dec = BodyDecoder::for_kind(kind, max)?;
        let mut body = Vec::new();
        let (n, done) = dec.decode(input, &mut body)?;
        assert_eq!(done.is_some(), dec.is_done());
        if let Some(len) = done {
            assert_eq!(len, body.len() as u64);
        }
        Ok((body, n, done.is_some()))
    }

    /// Decodes `input` fed in the pieces between `cuts`, the same shape as [`whole`].
    fn pieces(kind: BodyKind, max: usize, input: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, usize, bool), BodyError> {
        let mut dec = BodyDecoder::for_kind(kind, max)?;
        let mut body = Vec::new();
        let mut consumed = 0;
        let mut start = 0;
        for &cut in cuts.iter().chain([&input.len()]) {
            let cut = cut.clamp(start, input.len());
            // As a caller would: offer what it holds past the consumed bytes.
            let (n, done) = dec.decode(&input[consumed..cut], &mut body)?;
            consumed += n;
            if done.is_some() {
                return Ok((body, consumed, true));
            }
            assert_eq!(consumed, cut, "an unfinished body consumes all it is given");
            start = cut;
        }
        Ok((body, consumed, false))
    }

    fn chunked(input: &[u8]) -> Result<(Vec<u8>, usize, bool), BodyError> {
        whole(BodyKind::Chunked, MAX, input)
    }

    #[test]
    fn statuses() {
        assert_eq!(BodyError::TooLarge.status(), 413);
        assert_eq!(BodyError::UnsupportedTransferCoding.status(), 501);
        assert_eq!(BodyError::DuplicateLength.status(), 400);
        assert_eq!(BodyError::BadChunkFraming.status(), 400);
        assert_eq!(BodyError::TooLarge.to_string(), "request body too large");
    }

    #[test]
    fn body_kinds() {
        assert_eq!(kind("", 1), Ok(BodyKind::None));
        assert_eq!(kind("Content-Length: 0\r\n", 1), Ok(BodyKind::Length(0)));
        assert_eq!(kind("Content-Length:  042 \r\n", 1), Ok(BodyKind::Length(42)));
        assert_eq!(kind("Content-Length: 99999999999999999999999\r\n", 1), Ok(BodyKind::Length(u64::MAX)));
        assert_eq!(kind("Content-Length: 5\r\n", 0), Ok(BodyKind::Length(5)));
        for bad in ["", "x", "-1", "+1", "5, 5", "1 2", "0x10", "5;"] {
            assert_eq!(kind(&format!("Content-Length: {bad}\r\n"), 1), Err(BodyError::InvalidLength), "{bad}");
        }
        assert_eq!(kind("Content-Length: 5\r\ncontent-length: 5\r\n", 1), Err(BodyError::DuplicateLength));
        assert_eq!(kind("Content-Length: 5\r\nContent-Length: 6\r\n", 1), Err(BodyError::DuplicateLength));
        assert_eq!(kind("Transfer-Encoding: chunked\r\n", 1), Ok(BodyKind::Chunked));
        assert_eq!(kind("transfer-encoding: , CHUNKED\r\n", 1), Ok(BodyKind::Chunked));
        assert_eq!(
            kind("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 1),
            Err(BodyError::UnsupportedTransferCoding)
        );
        assert_eq!(kind("Transfer-Encoding: gzip, chunked\r\n", 1), Err(BodyError::UnsupportedTransferCoding));
        for bad in ["chunked, gzip", "gzip", "chunked, chunked", "", " , ", "chunked;x=1", "identity"] {
            assert_eq!(kind(&format!("Transfer-Encoding: {bad}\r\n"), 1), Err(BodyError::BadTransferEncoding), "{bad}");
        }
        assert_eq!(kind("Transfer-Encoding: chunked\r\n", 0), Err(BodyError::BadTransferEncoding));
        assert_eq!(
            kind("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", 1),
            Err(BodyError::LengthAndTransferEncoding)
        );
        assert_eq!(
            kind("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", 1),
            Err(BodyError::LengthAndTransferEncoding)
        );
    }

    #[test]
    fn content_length() {
        assert_eq!(whole(BodyKind::Length(5), MAX, b"helloGET"), Ok((b"hello".to_vec(), 5, true)));
        assert_eq!(whole(BodyKind::Length(5), MAX, b"hel"), Ok((b"hel".to_vec(), 3, false)));
        assert_eq!(whole(BodyKind::Length(0), MAX, b"GET"), Ok((vec![], 0, true)));
        assert_eq!(whole(BodyKind::None, MAX, b"GET"), Ok((vec![], 0, true)));
        assert_eq!(whole(BodyKind::Length(5), 5, b"hello"), Ok((b"hello".to_vec(), 5, true)));
        // Refused before a byte is taken.
        assert_eq!(whole(BodyKind::Length(6), 5, b"").unwrap_err(), BodyError::TooLarge);
        assert_eq!(whole(BodyKind::Length(u64::MAX), 1 << 40, b"").unwrap_err(), BodyError::TooLarge);
        let mut dec = BodyDecoder::for_kind(BodyKind::Length(3), MAX).unwrap();
        let mut body = Vec::new();
        assert_eq!(dec.decode(b"ab", &mut body), Ok((2, None)));
        assert_eq!(dec.decode(b"", &mut body), Ok((0, None)));
        assert_eq!(dec.decode(b"cd", &mut body), Ok((1, Some(3))));
        assert_eq!(dec.decode(b"d", &mut body), Ok((0, Some(3))));
        assert_eq!((body.as_slice(), dec.received_bytes()), (&b"abc"[..], 3));
    }

    #[test]
    fn chunked_bodies() {
        // (input, body, bytes left after it)
        let ok: &[(&[u8], &[u8], usize)] = &[
            (b"0\r\n\r\n", b"", 0),
            (b"5\r\nhello\r\n0\r\n\r\nGET", b"hello", 3),
            (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world", 0),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789", 0),
            (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789", 0),
            (b"0005\r\nhello\r\n000\r\n\r\n", b"hello", 0),
            // Extensions are ignored, whatever they hold.
            (b"5;name=\"v;\\\"x\"\r\nhello\r\n0;last\r\n\r\n", b"hello", 0),
            (b"5 ; a\r\nhello\r\n0\t;b\r\n\r\n", b"hello", 0),
            // Trailers are skipped.
            (b"3\r\nabc\r\n0\r\nExpires: never\r\nX: y\r\n\r\nnext", b"abc", 4),
            // Data may hold CR, LF and anything else.
            (b"4\r\n\r\n\r\n\r\n0\r\n\r\n", b"\r\n\r\n", 0),
        ];
        for (input, body, left) in ok {
            assert_eq!(
                chunked(input),
                Ok((body.to_vec(), input.len() - left, true)),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let partial: &[&[u8]] =
            &[b"", b"5", b"5\r", b"5\r\nhel", b"5\r\nhello", b"5\r\nhello\r\n0\r\n", b"0\r\nX: y\r\n"];
        for input in partial {
            let (_, n, done) = chunked(input).unwrap();
            assert_eq!((n, done), (input.len(), false), "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn chunked_errors() {
        let long_ext = format!("1;{}\r\na\r\n0\r\n\r\n", "x".repeat(MAX_CHUNK_LINE_BYTES));
        let long_trailer = format!("0\r\nX: {}\r\n\r\n", "x".repeat(MAX_CHUNK_LINE_BYTES));
        let many_trailers = format!("0\r\n{}\r\n", "X: y\r\n".repeat(MAX_TRAILER_BYTES / 6 + 1));
        let bad: &[(&[u8], BodyError)] = &[
            (b"\r\n", BodyError::BadChunkSize),
            (b"g\r\n", BodyError::BadChunkSize),
            (b"-1\r\n", BodyError::BadChunkSize),
            (b" 5\r\n", BodyError::BadChunkSize),
            (b"0x5\r\n", BodyError::BadChunkSize),
            (b";ext\r\n", BodyError::BadChunkSize),
            (b"5\n", BodyError::BadChunkFraming),
            (b"5 5\r\n", BodyError::BadChunkSize),
            (b"5 x\r\n", BodyError::BadChunkSize),
            (b"5\r\r\n", BodyError::BadChunkFraming),
            (b"5;x\nhello", BodyError::BadChunkFraming),
            (b"5\r\nhelloX\r\n", BodyError::BadChunkFraming),
            (b"5\r\nhello\rX", BodyError::BadChunkFraming),
            (b"5\r\nhello\n0\r\n\r\n", BodyError::BadChunkFraming),
            (b"0\r\n\n", BodyError::BadChunkFraming),
            (b"0\r\nX: y\n\r\n", BodyError::BadChunkFraming),
            (b"0\r\nX\r: y\r\n\r\n", BodyError::BadChunkFraming),
            (b"10000000000000000\r\n", BodyError::TooLarge),
            (b"10001\r\n", BodyError::TooLarge),
            (long_ext.as_bytes(), BodyError::ChunkLineTooLong),
            (long_trailer.as_bytes(), BodyError::ChunkLineTooLong),
            (many_trailers.as_bytes(), BodyError::ChunkLineTooLong),
        ];
        for (input, want) in bad {
            assert_eq!(chunked(input), Err(*want), "{:?}", String::from_utf8_lossy(input));
        }
        // Errors stick.
        let mut dec = BodyDecoder::for_kind(BodyKind::Chunked, MAX).unwrap();
        let mut body = Vec::new();
        assert_eq!(dec.decode(b"z", &mut body), Err(BodyError::BadChunkSize));
        assert_eq!(dec.decode(b"0\r\n\r\n", &mut body), Err(BodyError::BadChunkSize));
    }

    #[test]
    fn limit_counts_every_chunk_before_its_data() {
        // 4 + 4 bytes fit in 8; one more chunk byte doesn't, refused at its size line.
        assert_eq!(whole(BodyKind::Chunked, 8, b"4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n").unwrap().0, b"abcdefgh");
        let mut dec = BodyDecoder::for_kind(BodyKind::Chunked, 8).unwrap();
        let mut body = Vec::new();
        assert_eq!(dec.decode(b"4\r\nabcd\r\n", &mut body), Ok((9, None)));
        assert_eq!(dec.decode(b"5", &mut body), Err(BodyError::TooLarge));
        assert_eq!(body, b"abcd");
        // A huge announced chunk is refused at its digits, with nothing buffered.
        let mut dec = BodyDecoder::for_kind(BodyKind::Chunked, 1 << 20).unwrap();
        assert_eq!(dec.decode(b"fffffff", &mut body), Err(BodyError::TooLarge));
        assert_eq!(body, b"abcd");
    }

    #[test]
    fn chunked_split_at_every_pair_of_offsets() {
        let input: &[u8] = b"5;e=\"x\"\r\nhello\r\n1\r\n \r\nC\r\n\r\n0123456789\r\n0\r\nT: 1\r\n\r\nGET /";
        let want = whole(BodyKind::Chunked, MAX, input).unwrap();
        assert_eq!(want, (b"hello \r\n0123456789".to_vec(), input.len() - 5, true));
        for i in 0..=input.len() {
            for j in i..=input.len() {
                assert_eq!(pieces(BodyKind::Chunked, MAX, input, &[i, j]), Ok(want.clone()), "{i} {j}");
            }
        }
        let bytewise: Vec<usize> = (0..input.len()).collect();
        assert_eq!(pieces(BodyKind::Chunked, MAX, input, &bytewise), Ok(want));
    }

    /// Chunked encoding of `body` cut into chunks of `sizes` (cycled), with
    /// optional extensions and trailers, as a sender might write it.
    fn encode_chunked(body: &[u8], sizes: &[usize], ext: bool, trailers: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = body;
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
            out.extend_from_slice(format!("{:x}", chunk.len()).as_bytes());
            if ext {
                out.extend_from_slice(b" ; n=\"v\"");
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
            rest = tail;
        }
        out.extend_from_slice(b"0\r\n");
        for t in trailers {
            out.extend_from_slice(format!("{t}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    proptest::proptest! {
        #[test]
        fn valid_bodies_decode_the_same_in_any_pieces(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            sizes in proptest::collection::vec(1usize..40, 1..6),
            ext: bool,
            trailer: bool,
            cuts in proptest::collection::vec(0usize..400, 0..10),
            next in proptest::collection::vec(proptest::num::u8::ANY, 0..8),
        ) {
            let mut cuts = cuts;
            cuts.sort_unstable();
            let trailers: &[&str] = if trailer { &["X-A: 1", "X-B: two"] } else { &[] };
            let mut input = encode_chunked(&body, &sizes, ext, trailers);
            let framed = input.len();
            input.extend_from_slice(&next);
            let want = (body.clone(), framed, true);
            proptest::prop_assert_eq!(whole(BodyKind::Chunked, MAX, &input), Ok(want.clone()));
            proptest::prop_assert_eq!(pieces(BodyKind::Chunked, MAX, &input, &cuts), Ok(want));

            let mut plain = body.clone();
            plain.extend_from_slice(&next);
            let want = (body.clone(), body.len(), true);
            let length = BodyKind::Length(body.len() as u64);
            proptest::prop_assert_eq!(pieces(length, MAX, &plain, &cuts), Ok(want));
            // One byte under the body's size is refused up front.
            if let Some(max) = body.len().checked_sub(1) {
                proptest::prop_assert_eq!(whole(length, max, &plain), Err(BodyError::TooLarge));
                proptest::prop_assert_eq!(whole(BodyKind::Chunked, max, &input), Err(BodyError::TooLarge));
            }
        }

        #[test]
        fn any_bytes_give_the_same_answer_in_any_pieces(
            input in proptest::collection::vec(
                proptest::sample::select(b"0123456789aAfFgx;= \t\r\n:".to_vec()),
                0..200,
            ),
            cuts in proptest::collection::vec(0usize..200, 0..10),
            max in 0usize..64,
        ) {
            let mut cuts = cuts;
            cuts.sort_unstable();
            let want = whole(BodyKind::Chunked, max, &input);
            if let Ok((body, _, _)) = &want {
                proptest::prop_assert!(body.len() <= max);
            }
            proptest::prop_assert_eq!(pieces(BodyKind::Chunked, max, &input, &cuts), want);
        }
    }
}
