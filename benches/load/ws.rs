//! The client side of RFC 6455, just enough for the load client: the upgrade request and the
//! check of its answer, masked client frames (built once, sent many times), and server frame heads.

use base64::prelude::{BASE64_STANDARD, Engine as _};
use sha1::{Digest, Sha1};

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// A small xorshift generator: keys, masks and payloads need to vary, not to be secret.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn from_time() -> Rng {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos());
        Rng::new(nanos as u64 ^ u64::from(std::process::id()) << 32)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    pub fn mask(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_le_bytes()
    }
}

/// A fresh `Sec-WebSocket-Key`.
pub fn new_key(rng: &mut Rng) -> String {
    let mut raw = [0u8; 16];
    rng.fill(&mut raw);
    BASE64_STANDARD.encode(raw)
}

/// The `Sec-WebSocket-Accept` the server must answer for `key`.
pub fn accept_for(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    BASE64_STANDARD.encode(sha.finalize())
}

/// The upgrade request; `protocol` is offered in `Sec-WebSocket-Protocol` (STOMP's `v12.stomp`),
/// `extensions` in `Sec-WebSocket-Extensions` (a permessage-deflate offer).
pub fn upgrade_request(host: &str, path: &str, key: &str, protocol: Option<&str>, extensions: Option<&str>) -> Vec<u8> {
    let offer = protocol.map_or(String::new(), |p| format!("Sec-WebSocket-Protocol: {p}\r\n"));
    let ext = extensions.map_or(String::new(), |e| format!("Sec-WebSocket-Extensions: {e}\r\n"));
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{offer}{ext}\r\n"
    )
    .into_bytes()
}

/// A permessage-deflate offer (RFC 7692) of the load client. The server must accept it with
/// `server_no_context_takeover`: the client then inflates every message with a reset state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateOffer {
    /// Offer `client_no_context_takeover` too (then the server needs no zlib state of its own
    /// for this connection); without it a shared-mode server keeps a dedicated decompressor.
    pub client_no_context_takeover: bool,
}

impl DeflateOffer {
    pub fn header(self) -> &'static str {
        if self.client_no_context_takeover {
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover"
        } else {
            "permessage-deflate; server_no_context_takeover"
        }
    }

    /// Checks the server's `Sec-WebSocket-Extensions` answer: permessage-deflate accepted, with
    /// `server_no_context_takeover` (asked for) and, when offered, `client_no_context_takeover`.
    pub fn check_answer(self, answer: Option<&[u8]>) -> Result<(), String> {
        let Some(answer) = answer else { return Err("the 101 declined permessage-deflate".into()) };
        let text = String::from_utf8_lossy(answer);
        let mut parts = text.split(';').map(str::trim);
        if parts.next() != Some("permessage-deflate") {
            return Err(format!("the 101 answered extensions {text:?}"));
        }
        let params: Vec<&str> = parts.collect();
        if !params.contains(&"server_no_context_takeover") {
            return Err(format!("permessage-deflate accepted without server_no_context_takeover: {text:?}"));
        }
        if self.client_no_context_takeover != params.contains(&"client_no_context_takeover") {
            return Err(format!("client_no_context_takeover not answered as offered: {text:?}"));
        }
        Ok(())
    }
}

/// The client's inflater: one raw-deflate state reset per message (the server keeps no context,
/// so one state serves every connection), and its buffers.
pub struct Inflater {
    d: flate2::Decompress,
    input: Vec<u8>,
    pub out: Vec<u8>,
}

impl Default for Inflater {
    fn default() -> Inflater {
        Inflater { d: flate2::Decompress::new_with_window_bits(false, 15), input: Vec::new(), out: Vec::new() }
    }
}

impl Inflater {
    /// Inflates one permessage-deflate message (RFC 7692 §7.2.2: raw deflate, with the
    /// `00 00 ff ff` tail the sender cut off put back) into `self.out`, at most `limit` bytes.
    pub fn inflate(&mut self, payload: &[u8], limit: usize) -> Result<&[u8], String> {
        self.d.reset(false);
        self.input.clear();
        self.input.extend_from_slice(payload);
        self.input.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
        self.out.clear();
        loop {
            if self.out.len() == self.out.capacity() {
                if self.out.len() >= limit {
                    return Err(format!("compressed message inflates past {limit} bytes"));
                }
                let more = (self.out.len() + 256).min(limit - self.out.len());
                self.out.reserve(more);
            }
            let before = (self.d.total_in(), self.out.len());
            let used = before.0 as usize;
            self.d
                .decompress_vec(&self.input[used..], &mut self.out, flate2::FlushDecompress::Sync)
                .map_err(|e| format!("invalid deflate data: {e}"))?;
            // `reserve` may give more room than asked for: the limit is checked on what came out.
            if self.out.len() > limit {
                return Err(format!("compressed message inflates past {limit} bytes"));
            }
            let done = self.d.total_in() as usize == self.input.len() && self.out.len() < self.out.capacity();
            if done || (self.d.total_in(), self.out.len()) == before {
                break;
            }
        }
        if (self.d.total_in() as usize) < self.input.len() {
            return Err("deflate data ends early or has bytes after its end".into());
        }
        Ok(&self.out)
    }
}

/// A 64-bit FNV-1a hash: a fingerprint of a compressed payload, to compare it across receivers.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// Checks a `101` answer. `Ok(None)`: the head is not complete yet; `Ok(Some(n))`: the head is
/// `n` bytes long (frames may follow it). With `protocol` offered, the answer must select it;
/// with `deflate` offered, it must accept it.
pub fn check_upgrade_response(
    buf: &[u8],
    expected_accept: &str,
    protocol: Option<&str>,
    deflate: Option<DeflateOffer>,
) -> Result<Option<usize>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let n = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad upgrade response: {e}")),
    };
    if response.code != Some(101) {
        let head = String::from_utf8_lossy(&buf[..n.min(200)]).into_owned();
        return Err(format!("upgrade answered {:?}: {head:?}", response.code));
    }
    let header = |name: &str| response.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name));
    if let Some(wanted) = protocol {
        match header("sec-websocket-protocol") {
            Some(h) if h.value == wanted.as_bytes() => {}
            Some(h) => return Err(format!("upgrade selected subprotocol {:?}", String::from_utf8_lossy(h.value))),
            None => return Err(format!("upgrade did not select the subprotocol {wanted}")),
        }
    }
    if let Some(offer) = deflate {
        offer.check_answer(header("sec-websocket-extensions").map(|h| h.value))?;
    } else if let Some(h) = header("sec-websocket-extensions") {
        return Err(format!("extensions {:?} answered, none offered", String::from_utf8_lossy(h.value)));
    }
    match header("sec-websocket-accept") {
        Some(h) if h.value == expected_accept.as_bytes() => Ok(Some(n)),
        Some(h) => Err(format!("wrong Sec-WebSocket-Accept {:?}", String::from_utf8_lossy(h.value))),
        None => Err("101 without Sec-WebSocket-Accept".into()),
    }
}

/// One complete masked client frame.
pub fn client_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let len = payload.len();
    let mut frame = Vec::with_capacity(len + 14);
    frame.push(0x80 | opcode);
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    frame
}

/// A close frame with code 1000.
pub fn client_close(mask: [u8; 4]) -> Vec<u8> {
    client_frame(OP_CLOSE, &1000u16.to_be_bytes(), mask)
}

/// The head of one server frame.
#[derive(Clone, Copy, Debug)]
pub struct Head {
    pub fin: bool,
    /// RSV1: a compressed message (only with permessage-deflate agreed).
    pub rsv1: bool,
    /// A compressed message: its length on the wire and [`fnv1a`] of those bytes (the engine
    /// hands the case the inflated payload).
    pub deflated: Option<(usize, u64)>,
    pub opcode: u8,
    pub head_len: usize,
    pub payload_len: usize,
}

/// Parses a server frame head from the front of `buf`. `Ok(None)`: need more bytes. `deflate`:
/// permessage-deflate was agreed, so RSV1 may be set on the first frame of a data message.
pub fn server_head(buf: &[u8], deflate: bool) -> Result<Option<Head>, String> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let rsv1 = b0 & 0x40 != 0;
    if b0 & 0x30 != 0 || (rsv1 && !deflate) {
        return Err(format!("server frame with RSV bits {b0:#04x}"));
    }
    if rsv1 && !matches!(b0 & 0x0F, OP_TEXT | OP_BINARY) {
        return Err(format!("RSV1 on a frame with opcode {}", b0 & 0x0F));
    }
    if b1 & 0x80 != 0 {
        return Err("server frame is masked".into());
    }
    let (head_len, payload_len) = match b1 & 0x7F {
        126 if buf.len() < 4 => return Ok(None),
        126 => (4, u16::from_be_bytes([buf[2], buf[3]]) as usize),
        127 if buf.len() < 10 => return Ok(None),
        127 => {
            let mut len = [0u8; 8];
            len.copy_from_slice(&buf[2..10]);
            (10, u64::from_be_bytes(len) as usize)
        }
        n => (2, n as usize),
    };
    Ok(Some(Head { fin: b0 & 0x80 != 0, rsv1, deflated: None, opcode: b0 & 0x0F, head_len, payload_len }))
}

/// Checks of the codec above against the RFC, run once before any load (the bench has no test harness).
pub fn self_check() {
    assert_eq!(accept_for("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    let payload: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
    for len in [0, 5, 125, 126, 65_535, 65_536, 70_000] {
        let mask = [1, 2, 3, 4];
        let mut frame = client_frame(OP_BINARY, &payload[..len], mask);
        frame[1] &= 0x7F; // read it back as if unmasked: the head is the same apart from the bit
        let head = server_head(&frame, false).expect("valid head").expect("complete head");
        assert_eq!(head.payload_len, len);
        let body = &frame[head.head_len + 4..];
        assert!(body.iter().enumerate().all(|(i, b)| b ^ mask[i & 3] == payload[i]));
    }
    // permessage-deflate: RFC 7692 §7.2.3.1's "Hello" without context, then a message that
    // needs the output buffer to grow.
    let mut inf = Inflater::default();
    let hello = inf.inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 1 << 20).expect("RFC example");
    assert_eq!(hello, b"Hello");
    let text: Vec<u8> = (0..20_000u32).flat_map(|i| format!("{i} ").into_bytes()).collect();
    let mut c = flate2::Compress::new_with_window_bits(flate2::Compression::default(), false, 15);
    let deflated = deflate(&mut c, &text);
    assert_eq!(inf.inflate(&deflated, 1 << 20).expect("valid deflate"), text);
    assert!(inf.inflate(&deflated, 1000).is_err(), "limit checked");
    assert_eq!(inf.inflate(&deflate(&mut c, b"Hello"), 100).expect("reset state"), b"Hello");
    let offer = DeflateOffer { client_no_context_takeover: true };
    let both = b"permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    assert!(offer.check_answer(Some(both)).is_ok());
    assert!(offer.check_answer(Some(b"permessage-deflate; server_no_context_takeover")).is_err());
    assert!(offer.check_answer(None).is_err());
}

/// `payload` compressed as one permessage-deflate message (reset first, the tail cut off), as a
/// shared-mode server sends it: what one compression per message costs is timed with this.
pub fn deflate(c: &mut flate2::Compress, payload: &[u8]) -> Vec<u8> {
    c.reset();
    let mut out = Vec::with_capacity(payload.len() + 64);
    loop {
        let used = c.total_in() as usize;
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64));
        }
        c.compress_vec(&payload[used.min(payload.len())..], &mut out, flate2::FlushCompress::Sync)
            .expect("compressing into a growing buffer");
        if c.total_in() as usize == payload.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out.ends_with(&[0x00, 0x00, 0xff, 0xff]) {
        out.truncate(out.len() - 4);
    }
    out
}
