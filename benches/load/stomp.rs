//! The client side of STOMP 1.2 over WebSocket, just enough for the load client: the frames it
//! sends (CONNECT, SUBSCRIBE, SEND), and a parser of the server's frames that treats the
//! WebSocket messages of a connection as one byte stream, so a frame split over messages, or
//! several frames (and heart-beat line ends) in one message, read the same.

/// The WebSocket subprotocol offered (and required in the answer).
pub const SUBPROTOCOL: &str = "v12.stomp";

/// The largest server frame accepted: fan-out frames are a few hundred bytes.
const MAX_FRAME: usize = 1 << 20;

/// One client frame: `content-length` is written when there is a body, then the NUL.
pub fn frame(command: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(command.len() + body.len() + 64);
    out.extend_from_slice(command.as_bytes());
    out.push(b'\n');
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    if !body.is_empty() {
        out.extend_from_slice(format!("content-length:{}\n", body.len()).as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out.push(0);
    out
}

/// One server frame, borrowed from the bytes it was parsed from.
#[derive(Debug)]
pub struct Frame<'a> {
    pub command: &'a [u8],
    /// The header lines, each ending in `\n` (a `\r` before it is left on the value).
    headers: &'a [u8],
    pub body: &'a [u8],
}

impl<'a> Frame<'a> {
    /// The first header `name` (STOMP 1.2: a repeated header's first value counts).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers.split(|b| *b == b'\n').find_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let (key, value) = line.split_at(line.iter().position(|b| *b == b':')?);
            (key == name.as_bytes()).then_some(&value[1..])
        })
    }

    pub fn header_text(&self, name: &str) -> String {
        self.header(name).map_or_else(|| "(none)".into(), |v| String::from_utf8_lossy(v).into_owned())
    }
}

/// Parses one frame from the front of `buf`, after any heart-beat line ends. `Ok(None)`: the
/// frame is not complete yet; `Ok(Some((frame, n)))`: it took `n` bytes of `buf`.
pub fn parse(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, String> {
    let start = buf.iter().position(|b| *b != b'\n' && *b != b'\r').unwrap_or(buf.len());
    let rest = &buf[start..];
    if rest.is_empty() {
        return Ok(None);
    }
    // The command line, then header lines up to the empty line.
    let mut lines_end = None;
    let mut line_start = 0;
    let mut command_end = None;
    for (i, b) in rest.iter().enumerate() {
        if *b != b'\n' {
            continue;
        }
        let line = &rest[line_start..i];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if command_end.is_none() {
            command_end = Some(line_start + line.len());
        } else if line.is_empty() {
            lines_end = Some((line_start, i + 1));
            break;
        }
        line_start = i + 1;
    }
    let Some((headers_end, body_start)) = lines_end else {
        return if rest.len() > MAX_FRAME { Err("server frame head over 1 MiB".into()) } else { Ok(None) };
    };
    let command = &rest[..command_end.expect("a line ended before the blank one")];
    let header_start = rest.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
    let headers = &rest[header_start..headers_end];
    let mut frame = Frame { command, headers, body: &[] };
    let body_end = match frame.header("content-length") {
        Some(len) => {
            let len: usize = std::str::from_utf8(len)
                .ok()
                .and_then(|l| l.parse().ok())
                .ok_or_else(|| format!("bad content-length {:?}", String::from_utf8_lossy(len)))?;
            if len > MAX_FRAME {
                return Err(format!("server frame with content-length {len}"));
            }
            if rest.len() < body_start + len + 1 {
                return Ok(None);
            }
            if rest[body_start + len] != 0 {
                return Err("the byte after a content-length body is not NUL".into());
            }
            body_start + len
        }
        None => match rest[body_start..].iter().position(|b| *b == 0) {
            Some(len) => body_start + len,
            None if rest.len() > MAX_FRAME => return Err("server frame over 1 MiB without a NUL".into()),
            None => return Ok(None),
        },
    };
    frame.body = &rest[body_start..body_end];
    Ok(Some((frame, start + body_end + 1)))
}

/// The server's byte stream of one connection: what is left of a frame split across messages.
#[derive(Default)]
pub struct Stream {
    pending: Vec<u8>,
}

impl Stream {
    /// Hands every whole frame of `data` (after what is pending) to `on_frame`, in order. The
    /// usual case, whole frames in one message, parses `data` where it lies.
    pub fn feed(
        &mut self,
        data: &[u8],
        on_frame: &mut impl FnMut(Frame<'_>) -> Result<(), String>,
    ) -> Result<(), String> {
        if self.pending.is_empty() {
            let used = drain(data, on_frame)?;
            self.pending.extend_from_slice(&data[used..]);
        } else {
            self.pending.extend_from_slice(data);
            let used = drain(&self.pending, on_frame)?;
            self.pending.drain(..used);
        }
        Ok(())
    }
}

fn drain(buf: &[u8], on_frame: &mut impl FnMut(Frame<'_>) -> Result<(), String>) -> Result<usize, String> {
    let mut used = 0;
    while let Some((frame, n)) = parse(&buf[used..])? {
        on_frame(frame)?;
        used += n;
    }
    // Heart-beat line ends alone are consumed too.
    while used < buf.len() && (buf[used] == b'\n' || buf[used] == b'\r') {
        used += 1;
    }
    Ok(used)
}

/// Checks of the parser against STOMP 1.2's framing, run once before any load.
pub fn self_check() {
    let body = b"{\"a\":\"x\0y\"}";
    let mut stream_bytes = b"\n\r\n".to_vec();
    stream_bytes.extend(frame("MESSAGE", &[("subscription", "s-0"), ("destination", "/topic/lobby")], body));
    stream_bytes.extend_from_slice(b"\nRECEIPT\r\nreceipt-id:r:1\r\n\r\n\0\n");
    stream_bytes.extend_from_slice(b"ERROR\nmessage:no\nmessage:second\n\nplain text\0");
    // Every split of the stream in two messages gives the same frames.
    for cut in 0..=stream_bytes.len() {
        let mut stream = Stream::default();
        let mut seen = Vec::new();
        let mut on_frame = |f: Frame<'_>| {
            seen.push((f.command.to_vec(), f.body.to_vec(), f.header_text("subscription"), f.header_text("message")));
            if f.command == b"RECEIPT" {
                assert_eq!(f.header("receipt-id"), Some(&b"r:1"[..]), "a `:` in a value is part of it");
            }
            Ok(())
        };
        stream.feed(&stream_bytes[..cut], &mut on_frame).expect("valid stream");
        stream.feed(&stream_bytes[cut..], &mut on_frame).expect("valid stream");
        assert!(stream.pending.is_empty(), "cut {cut}: {:?} left", stream.pending);
        assert_eq!(seen.len(), 3, "cut {cut}");
        assert_eq!(seen[0], (b"MESSAGE".to_vec(), body.to_vec(), "s-0".into(), "(none)".into()));
        assert_eq!(seen[1].0, b"RECEIPT");
        assert_eq!(seen[2], (b"ERROR".to_vec(), b"plain text".to_vec(), "(none)".into(), "no".into()));
    }
    assert!(parse(b"MESSAGE\ncontent-length:2\n\nabc\0").is_err(), "a lying content-length");
    assert!(parse(b"MESSAGE\ncontent-length:x\n\n\0").is_err());
}
