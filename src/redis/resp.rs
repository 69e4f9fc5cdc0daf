//! RESP2, the Redis serialization protocol: commands out, replies in.
//!
//! Sans-IO: [`encode_command`] appends to a caller's buffer and [`ReplyDecoder`]
//! takes bytes the caller read and hands back whole replies. No sockets, no
//! clocks. Only RESP2 is spoken (no `HELLO 3`), so the reply types are the five
//! of RESP2: simple string, error, integer, bulk string and array.
//!
//! Redis is a trusted peer only up to a point (a proxy, a wrong port, a
//! compromised server): the decoder checks every declared length against
//! [`RespLimits`] before waiting for the bytes, so a lying header is an error
//! at once rather than memory held for it.

use std::fmt;

/// The longest line (a simple string, an error, an integer or a length header,
/// type byte included, CRLF excluded) the decoder waits for. Redis's own lines
/// are short (error messages, `OK`, numbers); its protocol caps inline
/// requests at 64 KiB, and a reply line longer than that is garbage.
pub const MAX_LINE: usize = 64 * 1024;

/// Appends one command as a RESP array of bulk strings, the only form Redis
/// accepts from clients besides inline commands: `*N\r\n` then `$len\r\narg\r\n`
/// per argument. Reserves the exact size once, so `out` grows at most once.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    let mut digits = itoa::Buffer::new();
    let mut total = 1 + digits.format(args.len()).len() + 2;
    for arg in args {
        total += 1 + digits.format(arg.len()).len() + 2 + arg.len() + 2;
    }
    out.reserve(total);
    out.push(b'*');
    out.extend_from_slice(digits.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.push(b'$');
        out.extend_from_slice(digits.format(arg.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// One RESP2 reply. Nulls are kept apart from empty values because Redis
/// uses them for "no such key" (`$-1`) and "timed out / aborted" (`*-1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`: never holds CR or LF.
    Simple(Vec<u8>),
    /// `-ERR ...`: Redis's answer to a failed command; the link stays usable.
    Error(Vec<u8>),
    /// `:42`.
    Integer(i64),
    /// `$3\r\nfoo` or the null bulk `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n...` or the null array `*-1`.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The bytes of a simple string or a non-null bulk string: the two forms
    /// Redis uses interchangeably for textual answers.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Simple(bytes) | Reply::Bulk(Some(bytes)) => Some(bytes),
            _ => None,
        }
    }

    /// The value of an integer reply.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Integer(n) => Some(*n),
            _ => None,
        }
    }

    /// Whether Redis refused the command (`-ERR`, `-WRONGPASS`, `-NOAUTH`...).
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// The message of an error reply, for logs.
    pub fn as_error(&self) -> Option<&[u8]> {
        match self {
            Reply::Error(message) => Some(message),
            _ => None,
        }
    }

    /// The elements of a non-null array (pub/sub messages, `SMEMBERS`...).
    pub fn into_array(self) -> Option<Vec<Reply>> {
        match self {
            Reply::Array(Some(items)) => Some(items),
            _ => None,
        }
    }

    /// Appends the wire form of this reply: what a Redis server would send.
    /// For tests and fakes of Redis; a client only decodes replies. A simple
    /// string or error holding CR or LF is written as is, and does not decode.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut digits = itoa::Buffer::new();
        match self {
            Reply::Simple(text) | Reply::Error(text) => {
                out.push(if matches!(self, Reply::Simple(_)) { b'+' } else { b'-' });
                out.extend_from_slice(text);
            }
            Reply::Integer(n) => {
                out.push(b':');
                out.extend_from_slice(digits.format(*n).as_bytes());
            }
            Reply::Bulk(None) => out.extend_from_slice(b"$-1"),
            Reply::Bulk(Some(data)) => {
                out.push(b'$');
                out.extend_from_slice(digits.format(data.len()).as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(data);
            }
            Reply::Array(None) => out.extend_from_slice(b"*-1"),
            Reply::Array(Some(items)) => {
                out.push(b'*');
                out.extend_from_slice(digits.format(items.len()).as_bytes());
                out.extend_from_slice(b"\r\n");
                for item in items {
                    item.encode(out);
                }
                return;
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Caps on what one reply may declare. Together they bound what the decoder
/// holds: a pending bulk waits for at most `max_bulk + 2` bytes, a line for at
/// most [`MAX_LINE`] + 2, and a reply tree has at most `max_depth` levels of
/// `max_elements` each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RespLimits {
    /// Largest bulk string. Default 64 MiB: far above any message soket
    /// publishes (their size is capped on the client side), far below memory.
    pub max_bulk: usize,
    /// Most elements in one array. Default 1,000,000: a `SMEMBERS` of a big
    /// node's names fits, a lying `*4294967295` does not.
    pub max_elements: usize,
    /// Most levels of nested arrays. Default 8: soket's replies nest at most
    /// two deep (pub/sub messages, `EXEC`); depth only guards the recursion
    /// of drop and encode.
    pub max_depth: usize,
}

impl Default for RespLimits {
    fn default() -> Self {
        RespLimits { max_bulk: 64 * 1024 * 1024, max_elements: 1_000_000, max_depth: 8 }
    }
}

/// Why a reply stream is broken. Every variant means the same thing to the
/// caller: the stream can no longer be framed, so the link is dropped and
/// reconnected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RespError {
    /// A reply starts with a byte that is not `+ - : $ *`.
    BadType(u8),
    /// A line has a CR or LF that is not its final CRLF, or a bulk string is
    /// not followed by CRLF.
    MissingCrlf,
    /// An integer reply or a length is not a decimal `i64`.
    BadInteger,
    /// A bulk or array length below -1.
    BadLength(i64),
    /// A line longer than [`MAX_LINE`] without its CRLF.
    LineTooLong,
    /// A bulk string declares more than `max_bulk` bytes.
    BulkTooLarge { declared: i64, limit: usize },
    /// An array declares more than `max_elements` elements.
    TooManyElements { declared: i64, limit: usize },
    /// Arrays nest deeper than `max_depth`.
    TooDeep { limit: usize },
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::BadType(byte) => write!(f, "RESP reply starts with {:?}, not + - : $ *", char::from(*byte)),
            RespError::MissingCrlf => f.write_str("RESP line or bulk string not ended by CRLF"),
            RespError::BadInteger => f.write_str("RESP integer or length is not a decimal 64-bit number"),
            RespError::BadLength(n) => write!(f, "RESP length {n} is negative"),
            RespError::LineTooLong => write!(f, "RESP line longer than {MAX_LINE} bytes"),
            RespError::BulkTooLarge { declared, limit } => {
                write!(f, "RESP bulk string of {declared} bytes is over the {limit}-byte limit")
            }
            RespError::TooManyElements { declared, limit } => {
                write!(f, "RESP array of {declared} elements is over the {limit}-element limit")
            }
            RespError::TooDeep { limit } => write!(f, "RESP arrays nested deeper than {limit} levels"),
        }
    }
}

impl std::error::Error for RespError {}

/// An array whose header is read and whose elements are still arriving.
#[derive(Debug)]
struct Partial {
    items: Vec<Reply>,
    remaining: usize,
}

/// Cuts a byte stream into [`Reply`]s.
///
/// Work is linear in the bytes fed however they are split: parsed elements
/// leave the buffer at once (they wait in a stack of partial arrays), a line
/// search resumes where the last one stopped, and a bulk string waits until
/// its declared length is buffered without looking at it. Consumed bytes are
/// dropped by moving a read offset; the buffer is compacted only when that
/// offset passes half of it, so each byte moves O(1) times.
#[derive(Debug)]
pub struct ReplyDecoder {
    limits: RespLimits,
    buf: Vec<u8>,
    /// Start of the bytes not yet parsed.
    pos: usize,
    /// Bytes after `pos` already searched for a line's LF without finding one.
    scanned_line: usize,
    /// Declared length of a bulk string whose header is parsed.
    bulk: Option<usize>,
    /// Arrays being filled, outermost first.
    stack: Vec<Partial>,
    failed: Option<RespError>,
    /// Bytes examined or moved, to test that work stays linear.
    #[cfg(test)]
    work: usize,
}

/// What one parsing step produced. A header (bulk or array) is its own step
/// so that parsing loops instead of recursing into the elements.
enum Step {
    Value(Reply),
    /// A bulk header or an array header was read; its contents come next.
    Opened,
    NeedMore,
}

/// Capacity the buffer may keep while empty; above it,
/// [`ReplyDecoder::release_idle_memory`] frees it.
const IDLE_CAPACITY: usize = 64 * 1024;

impl ReplyDecoder {
    pub fn new(limits: RespLimits) -> Self {
        ReplyDecoder {
            limits,
            buf: Vec::new(),
            pos: 0,
            scanned_line: 0,
            bulk: None,
            stack: Vec::new(),
            failed: None,
            #[cfg(test)]
            work: 0,
        }
    }

    /// Appends bytes read from Redis. Nothing is parsed until [`Self::next`].
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            // The link is going away; holding more of its bytes is pointless.
            return;
        }
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            #[cfg(test)]
            {
                self.work += self.buf.len() - self.pos;
            }
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole reply, in the order Redis sent them. `Ok(None)`: the
    /// buffered bytes end inside a reply; feed more. `Err`: the stream is
    /// broken; every later call returns the same error.
    #[allow(clippy::should_implement_trait)] // fallible, so not an Iterator
    pub fn next(&mut self) -> Result<Option<Reply>, RespError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        match self.parse() {
            Ok(reply) => Ok(reply),
            Err(error) => {
                self.failed = Some(error);
                self.buf = Vec::new();
                self.pos = 0;
                self.stack = Vec::new();
                Err(error)
            }
        }
    }

    /// Bytes fed and not yet parsed into a reply or an element of one.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Frees the buffer if it is empty and large (after a big bulk string),
    /// so an idle link does not pin the memory its largest reply needed.
    pub fn release_idle_memory(&mut self) {
        if self.pos == self.buf.len() && self.buf.capacity() > IDLE_CAPACITY {
            self.buf = Vec::new();
            self.pos = 0;
        }
    }

    fn parse(&mut self) -> Result<Option<Reply>, RespError> {
        loop {
            let mut value = match self.parse_value()? {
                Step::Value(value) => value,
                Step::Opened => continue,
                Step::NeedMore => return Ok(None),
            };
            // Fill enclosing arrays; a finished array is itself a value for its parent.
            loop {
                let Some(top) = self.stack.last_mut() else {
                    return Ok(Some(value));
                };
                top.items.push(value);
                top.remaining -= 1;
                if top.remaining > 0 {
                    break;
                }
                let done = self.stack.pop().expect("last_mut just found it");
                value = Reply::Array(Some(done.items));
            }
        }
    }

    /// One scalar value or null or empty array, an array header pushed onto
    /// the stack, or a wait for more bytes.
    fn parse_value(&mut self) -> Result<Step, RespError> {
        let available = self.buf.len() - self.pos;
        if let Some(len) = self.bulk {
            if available < len + 2 {
                return Ok(Step::NeedMore);
            }
            let data = &self.buf[self.pos..self.pos + len + 2];
            if &data[len..] != b"\r\n" {
                return Err(RespError::MissingCrlf);
            }
            #[cfg(test)]
            {
                self.work += len + 2;
            }
            let value = Reply::Bulk(Some(data[..len].to_vec()));
            self.pos += len + 2;
            self.bulk = None;
            return Ok(Step::Value(value));
        }
        let Some(&kind) = self.buf.get(self.pos) else {
            return Ok(Step::NeedMore);
        };
        // Garbage is refused at its first byte, not after a line of it.
        if !matches!(kind, b'+' | b'-' | b':' | b'$' | b'*') {
            return Err(RespError::BadType(kind));
        }
        let Some(line_len) = self.find_line()? else {
            return Ok(Step::NeedMore);
        };
        let start = self.pos + 1;
        let end = self.pos + line_len;
        self.pos = end + 2;
        self.scanned_line = 0;
        let line = &self.buf[start..end];
        if line.contains(&b'\r') {
            return Err(RespError::MissingCrlf);
        }
        let value = match kind {
            b'+' => Reply::Simple(line.to_vec()),
            b'-' => Reply::Error(line.to_vec()),
            b':' => Reply::Integer(parse_i64(line)?),
            b'$' => {
                let declared = parse_i64(line)?;
                match declared {
                    -1 => Reply::Bulk(None),
                    ..-1 => return Err(RespError::BadLength(declared)),
                    _ => {
                        let len = usize::try_from(declared)
                            .ok()
                            .filter(|&n| n <= self.limits.max_bulk)
                            .ok_or(RespError::BulkTooLarge { declared, limit: self.limits.max_bulk })?;
                        self.bulk = Some(len);
                        return Ok(Step::Opened);
                    }
                }
            }
            _ => {
                let declared = parse_i64(line)?;
                match declared {
                    -1 => Reply::Array(None),
                    ..-1 => return Err(RespError::BadLength(declared)),
                    _ => {
                        let count = usize::try_from(declared)
                            .ok()
                            .filter(|&n| n <= self.limits.max_elements)
                            .ok_or(RespError::TooManyElements { declared, limit: self.limits.max_elements })?;
                        if count == 0 {
                            Reply::Array(Some(Vec::new()))
                        } else {
                            if self.stack.len() >= self.limits.max_depth {
                                return Err(RespError::TooDeep { limit: self.limits.max_depth });
                            }
                            // The count is only a claim: reserve a little, grow as elements come.
                            let items = Vec::with_capacity(count.min(64));
                            self.stack.push(Partial { items, remaining: count });
                            return Ok(Step::Opened);
                        }
                    }
                }
            }
        };
        Ok(Step::Value(value))
    }

    /// Length of the line at `pos` without its CRLF, once its LF is buffered.
    fn find_line(&mut self) -> Result<Option<usize>, RespError> {
        let from = self.pos + self.scanned_line;
        let rest = &self.buf[from..];
        #[cfg(test)]
        {
            self.work += rest.len();
        }
        match rest.iter().position(|&b| b == b'\n') {
            Some(offset) => {
                let lf = self.scanned_line + offset;
                if lf > MAX_LINE + 1 {
                    return Err(RespError::LineTooLong);
                }
                if self.buf[self.pos + lf - 1] != b'\r' {
                    return Err(RespError::MissingCrlf);
                }
                Ok(Some(lf - 1))
            }
            None => {
                self.scanned_line += rest.len();
                if self.scanned_line > MAX_LINE + 1 {
                    return Err(RespError::LineTooLong);
                }
                Ok(None)
            }
        }
    }
}

/// A RESP integer: optional `-`, then 1 to 19 decimal digits that fit an `i64`.
fn parse_i64(digits: &[u8]) -> Result<i64, RespError> {
    let (negative, body) = match digits {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, digits),
    };
    if body.is_empty() {
        return Err(RespError::BadInteger);
    }
    // Accumulate negatively so i64::MIN parses.
    let mut value: i64 = 0;
    for &byte in body {
        if !byte.is_ascii_digit() {
            return Err(RespError::BadInteger);
        }
        value =
            value.checked_mul(10).and_then(|v| v.checked_sub(i64::from(byte - b'0'))).ok_or(RespError::BadInteger)?;
    }
    if negative { Ok(value) } else { value.checked_neg().ok_or(RespError::BadInteger) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bulk(data: &[u8]) -> Reply {
        Reply::Bulk(Some(data.to_vec()))
    }

    fn encoded(replies: &[Reply]) -> Vec<u8> {
        let mut out = Vec::new();
        for reply in replies {
            reply.encode(&mut out);
        }
        out
    }

    /// Every reply until the decoder needs more, or the error.
    fn drain(decoder: &mut ReplyDecoder) -> Result<Vec<Reply>, RespError> {
        let mut replies = Vec::new();
        while let Some(reply) = decoder.next()? {
            replies.push(reply);
        }
        Ok(replies)
    }

    fn decode_all(limits: RespLimits, bytes: &[u8]) -> Result<Vec<Reply>, RespError> {
        let mut decoder = ReplyDecoder::new(limits);
        decoder.feed(bytes);
        drain(&mut decoder)
    }

    fn first_error(limits: RespLimits, bytes: &[u8]) -> RespError {
        decode_all(limits, bytes).expect_err("the input is broken")
    }

    #[test]
    fn encodes_commands_as_arrays_of_bulk_strings() {
        let mut out = b"x".to_vec();
        encode_command(&mut out, &[b"SET", b"key", b""]);
        assert_eq!(out, b"x*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n");
        let mut empty = Vec::new();
        encode_command(&mut empty, &[]);
        assert_eq!(empty, b"*0\r\n");
        let big = vec![b'a'; 12345];
        let mut out = Vec::new();
        encode_command(&mut out, &[b"PUBLISH", b"c", &big]);
        assert_eq!(out.capacity(), out.len(), "reserved exactly once");
        let parsed = decode_all(RespLimits::default(), &out).unwrap();
        assert_eq!(parsed, [Reply::Array(Some(vec![bulk(b"PUBLISH"), bulk(b"c"), bulk(&big)]))]);
    }

    #[test]
    fn decodes_every_type() {
        let wire = b"+OK\r\n-ERR wrong\r\n:42\r\n:-7\r\n:0\r\n$5\r\nhe\r\no\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n+\r\n";
        let replies = decode_all(RespLimits::default(), wire).unwrap();
        assert_eq!(
            replies,
            [
                Reply::Simple(b"OK".to_vec()),
                Reply::Error(b"ERR wrong".to_vec()),
                Reply::Integer(42),
                Reply::Integer(-7),
                Reply::Integer(0),
                bulk(b"he\r\no"),
                bulk(b""),
                Reply::Bulk(None),
                Reply::Array(None),
                Reply::Array(Some(Vec::new())),
                Reply::Simple(Vec::new()),
            ]
        );
        assert_eq!(encoded(&replies), wire);
    }

    #[test]
    fn integers_at_the_edges() {
        let wire = format!(":{}\r\n:{}\r\n:-0\r\n", i64::MAX, i64::MIN);
        let replies = decode_all(RespLimits::default(), wire.as_bytes()).unwrap();
        assert_eq!(replies, [Reply::Integer(i64::MAX), Reply::Integer(i64::MIN), Reply::Integer(0)]);
        for bad in [":9223372036854775808\r\n", ":-9223372036854775809\r\n", ":\r\n", ":-\r\n", ":+1\r\n", ":1a\r\n"] {
            assert_eq!(first_error(RespLimits::default(), bad.as_bytes()), RespError::BadInteger, "{bad}");
        }
    }

    #[test]
    fn decodes_nested_arrays_and_pubsub_messages() {
        let message = Reply::Array(Some(vec![bulk(b"message"), bulk(b"soket:c"), bulk(b"{\"t\":1}")]));
        let nested = Reply::Array(Some(vec![
            Reply::Integer(1),
            Reply::Array(Some(vec![Reply::Array(None), Reply::Array(Some(vec![bulk(b"deep")])), Reply::Bulk(None)])),
            Reply::Array(Some(Vec::new())),
            Reply::Error(b"E".to_vec()),
        ]));
        let wire = encoded(&[message.clone(), nested.clone(), Reply::Simple(b"PONG".to_vec())]);
        let replies = decode_all(RespLimits::default(), &wire).unwrap();
        assert_eq!(replies, [message.clone(), nested, Reply::Simple(b"PONG".to_vec())]);
        let items = message.into_array().unwrap();
        assert_eq!(items[2].as_bytes(), Some(&b"{\"t\":1}"[..]));
    }

    #[test]
    fn helpers() {
        assert_eq!(Reply::Simple(b"OK".to_vec()).as_bytes(), Some(&b"OK"[..]));
        assert_eq!(bulk(b"x").as_bytes(), Some(&b"x"[..]));
        assert_eq!(Reply::Bulk(None).as_bytes(), None);
        assert_eq!(Reply::Error(b"ERR".to_vec()).as_bytes(), None);
        assert_eq!(Reply::Integer(3).as_int(), Some(3));
        assert_eq!(bulk(b"3").as_int(), None);
        assert!(Reply::Error(b"ERR".to_vec()).is_error());
        assert_eq!(Reply::Error(b"ERR x".to_vec()).as_error(), Some(&b"ERR x"[..]));
        assert!(!Reply::Simple(b"ERR".to_vec()).is_error());
        assert_eq!(Reply::Array(None).into_array(), None);
        assert_eq!(Reply::Array(Some(vec![Reply::Integer(1)])).into_array(), Some(vec![Reply::Integer(1)]));
        assert_eq!(Reply::Integer(1).into_array(), None);
    }

    #[test]
    fn pipelined_replies_split_at_every_offset() {
        let replies = [
            Reply::Simple(b"OK".to_vec()),
            Reply::Array(Some(vec![bulk(b"subscribe"), bulk(b"soket:c"), Reply::Integer(1)])),
            bulk(b"a\r\nb"),
            Reply::Bulk(None),
            Reply::Integer(-12),
            Reply::Error(b"NOAUTH Authentication required.".to_vec()),
        ];
        let wire = encoded(&replies);
        for cut in 0..=wire.len() {
            let mut decoder = ReplyDecoder::new(RespLimits::default());
            decoder.feed(&wire[..cut]);
            let mut got = drain(&mut decoder).unwrap();
            decoder.feed(&wire[cut..]);
            got.extend(drain(&mut decoder).unwrap());
            assert_eq!(got, replies, "cut at {cut}");
            assert_eq!(decoder.buffered(), 0);
        }
        let mut decoder = ReplyDecoder::new(RespLimits::default());
        let mut got = Vec::new();
        for byte in &wire {
            decoder.feed(std::slice::from_ref(byte));
            got.extend(drain(&mut decoder).unwrap());
        }
        assert_eq!(got, replies);
    }

    #[test]
    fn a_large_bulk_fed_byte_by_byte_costs_linear_work() {
        let data = vec![b'z'; 1 << 20];
        let mut wire = Vec::new();
        bulk(&data).encode(&mut wire);
        let mut decoder = ReplyDecoder::new(RespLimits::default());
        let mut got = Vec::new();
        for byte in &wire {
            decoder.feed(std::slice::from_ref(byte));
            got.extend(drain(&mut decoder).unwrap());
        }
        assert_eq!(got, [bulk(&data)]);
        assert!(decoder.work <= 2 * wire.len(), "{} units of work for {} bytes", decoder.work, wire.len());
    }

    #[test]
    fn a_long_array_and_a_long_line_fed_byte_by_byte_cost_linear_work() {
        let items: Vec<Reply> = (0..50_000).map(|i| if i % 2 == 0 { Reply::Integer(i) } else { bulk(b"m") }).collect();
        let mut wire = Vec::new();
        Reply::Array(Some(items.clone())).encode(&mut wire);
        let line = Reply::Simple(vec![b's'; MAX_LINE - 1]);
        line.encode(&mut wire);
        // Many small replies too, so the buffer compacts along the way.
        let small = vec![Reply::Integer(7); 20_000];
        wire.extend(encoded(&small));
        let mut decoder = ReplyDecoder::new(RespLimits::default());
        let mut got = Vec::new();
        for byte in &wire {
            decoder.feed(std::slice::from_ref(byte));
            got.extend(drain(&mut decoder).unwrap());
        }
        assert_eq!(got.len(), 2 + small.len());
        assert_eq!(got[0], Reply::Array(Some(items)));
        assert_eq!(got[1], line);
        assert!(decoder.work <= 3 * wire.len(), "{} units of work for {} bytes", decoder.work, wire.len());
    }

    #[test]
    fn consumed_bytes_are_dropped_and_idle_memory_released() {
        let mut decoder = ReplyDecoder::new(RespLimits::default());
        let mut wire = Vec::new();
        bulk(&vec![0; 1 << 20]).encode(&mut wire);
        decoder.feed(&wire);
        assert_eq!(decoder.buffered(), wire.len());
        assert!(decoder.next().unwrap().is_some());
        assert_eq!(decoder.buffered(), 0);
        decoder.release_idle_memory();
        assert_eq!(decoder.buf.capacity(), 0);
        // A partial reply keeps its bytes.
        decoder.feed(b"$10\r\nabc");
        assert_eq!(decoder.next(), Ok(None));
        decoder.release_idle_memory();
        assert_eq!(decoder.buffered(), 3);
        decoder.feed(b"defghij\r\n");
        assert_eq!(decoder.next(), Ok(Some(bulk(b"abcdefghij"))));
    }

    #[test]
    fn limits_are_checked_on_the_declared_lengths() {
        let limits = RespLimits { max_bulk: 4, max_elements: 3, max_depth: 2 };
        assert_eq!(decode_all(limits, b"$4\r\nabcd\r\n").unwrap(), [bulk(b"abcd")]);
        // Refused from the header alone: no wait for the body.
        assert_eq!(first_error(limits, b"$5\r\n"), RespError::BulkTooLarge { declared: 5, limit: 4 });
        let huge = first_error(limits, b"$99999999999999999\r\n");
        assert_eq!(huge, RespError::BulkTooLarge { declared: 99_999_999_999_999_999, limit: 4 });
        assert_eq!(decode_all(limits, b"*3\r\n:1\r\n:2\r\n:3\r\n").unwrap().len(), 1);
        assert_eq!(first_error(limits, b"*4\r\n"), RespError::TooManyElements { declared: 4, limit: 3 });
        assert_eq!(decode_all(limits, b"*1\r\n*1\r\n*0\r\n").unwrap().len(), 1);
        assert_eq!(decode_all(limits, b"*1\r\n*1\r\n*-1\r\n").unwrap().len(), 1);
        assert_eq!(first_error(limits, b"*1\r\n*1\r\n*1\r\n"), RespError::TooDeep { limit: 2 });
        assert_eq!(first_error(limits, b"$-2\r\n"), RespError::BadLength(-2));
        assert_eq!(first_error(limits, b"*-2\r\n"), RespError::BadLength(-2));
        assert_eq!(first_error(limits, b"$x\r\n"), RespError::BadInteger);
    }

    #[test]
    fn lines_are_capped() {
        let mut ok = vec![b'+'; MAX_LINE];
        ok.extend_from_slice(b"\r\n");
        assert_eq!(decode_all(RespLimits::default(), &ok).unwrap().len(), 1);
        let mut long = vec![b'+'; MAX_LINE + 1];
        long.extend_from_slice(b"\r\n");
        assert_eq!(first_error(RespLimits::default(), &long), RespError::LineTooLong);
        // Without its CRLF, refused as soon as it cannot fit any more.
        let mut decoder = ReplyDecoder::new(RespLimits::default());
        decoder.feed(&vec![b'-'; MAX_LINE + 1]);
        assert_eq!(decoder.next(), Ok(None));
        decoder.feed(b"x");
        assert_eq!(decoder.next(), Err(RespError::LineTooLong));
    }

    #[test]
    fn garbage_is_refused_and_the_error_sticks() {
        let limits = RespLimits::default();
        assert_eq!(first_error(limits, b"HTTP/1.1 400"), RespError::BadType(b'H'));
        assert_eq!(first_error(limits, b"\r\n"), RespError::BadType(b'\r'));
        assert_eq!(first_error(limits, b"+OK\n"), RespError::MissingCrlf);
        assert_eq!(first_error(limits, b"+O\rK\r\n"), RespError::MissingCrlf);
        assert_eq!(first_error(limits, b"$2\r\nabc\r\n"), RespError::MissingCrlf);
        assert_eq!(first_error(limits, b"%1\r\n"), RespError::BadType(b'%'), "RESP3 maps are not RESP2");
        let mut decoder = ReplyDecoder::new(limits);
        decoder.feed(b"+OK\r\n!oops\r\n+OK\r\n");
        assert_eq!(decoder.next(), Ok(Some(Reply::Simple(b"OK".to_vec()))));
        assert_eq!(decoder.next(), Err(RespError::BadType(b'!')));
        decoder.feed(b"+fine\r\n");
        assert_eq!(decoder.next(), Err(RespError::BadType(b'!')));
        assert_eq!(decoder.buffered(), 0, "a failed decoder holds nothing");
        let text = RespError::BulkTooLarge { declared: 5, limit: 4 }.to_string();
        assert!(text.contains('5') && text.contains('4'), "{text}");
    }

    fn any_reply() -> impl Strategy<Value = Reply> {
        let line =
            proptest::collection::vec(any::<u8>().prop_filter("no CR or LF", |b| *b != b'\r' && *b != b'\n'), 0..8);
        let leaf = prop_oneof![
            line.clone().prop_map(Reply::Simple),
            line.prop_map(Reply::Error),
            any::<i64>().prop_map(Reply::Integer),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)).prop_map(Reply::Bulk),
            Just(Reply::Array(None)),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            proptest::collection::vec(inner, 0..5).prop_map(|v| Reply::Array(Some(v)))
        })
    }

    proptest! {
        #[test]
        fn any_split_of_an_encoded_stream_decodes_to_the_same_replies(
            replies in proptest::collection::vec(any_reply(), 0..6),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let wire = encoded(&replies);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
            points.sort_unstable();
            let mut decoder = ReplyDecoder::new(RespLimits::default());
            let mut got = Vec::new();
            let mut start = 0;
            for end in points.into_iter().chain([wire.len()]) {
                decoder.feed(&wire[start..end]);
                got.extend(drain(&mut decoder).unwrap());
                start = end;
            }
            prop_assert_eq!(got, replies);
            prop_assert_eq!(decoder.buffered(), 0);
        }
    }
}
