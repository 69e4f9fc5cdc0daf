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

/// The upgrade request; `protocol` is offered in `Sec-WebSocket-Protocol` (STOMP's `v12.stomp`).
pub fn upgrade_request(host: &str, path: &str, key: &str, protocol: Option<&str>) -> Vec<u8> {
    let offer = protocol.map_or(String::new(), |p| format!("Sec-WebSocket-Protocol: {p}\r\n"));
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    )
    .into_bytes()
}

/// Checks a `101` answer. `Ok(None)`: the head is not complete yet; `Ok(Some(n))`: the head is
/// `n` bytes long (frames may follow it). With `protocol` offered, the answer must select it.
pub fn check_upgrade_response(
    buf: &[u8],
    expected_accept: &str,
    protocol: Option<&str>,
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
    pub opcode: u8,
    pub head_len: usize,
    pub payload_len: usize,
}

/// Parses a server frame head from the front of `buf`. `Ok(None)`: need more bytes.
pub fn server_head(buf: &[u8]) -> Result<Option<Head>, String> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 {
        return Err(format!("server frame with RSV bits {b0:#04x}"));
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
    Ok(Some(Head { fin: b0 & 0x80 != 0, opcode: b0 & 0x0F, head_len, payload_len }))
}

/// Checks of the codec above against the RFC, run once before any load (the bench has no test harness).
pub fn self_check() {
    assert_eq!(accept_for("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    let payload: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
    for len in [0, 5, 125, 126, 65_535, 65_536, 70_000] {
        let mask = [1, 2, 3, 4];
        let mut frame = client_frame(OP_BINARY, &payload[..len], mask);
        frame[1] &= 0x7F; // read it back as if unmasked: the head is the same apart from the bit
        let head = server_head(&frame).expect("valid head").expect("complete head");
        assert_eq!(head.payload_len, len);
        let body = &frame[head.head_len + 4..];
        assert!(body.iter().enumerate().all(|(i, b)| b ^ mask[i & 3] == payload[i]));
    }
}
