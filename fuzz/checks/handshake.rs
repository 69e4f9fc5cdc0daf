//! `handshake`: request heads found in pieces, and every answer well-formed.
//!
//! Input: byte 0 picks the piece size (`1 + b % 64`), whether an Origin allow
//! list is configured (bit 7) and whether `/echo` is served (bit 6); the rest
//! is what a client sends (pipelined heads are answered one after another, as
//! on a keep-alive connection). Invariants: no panic; a [`HeadScanner`] fed
//! growing prefixes answers exactly as one fed the whole buffer; a head is
//! within `max_head_bytes` and ends with a blank line; an upgrade answer is a
//! bare `HTTP/1.1 101` with the right `Sec-WebSocket-Accept`; any other answer
//! is `HTTP/1.1 NNN reason`, header lines without control characters, exactly
//! one `Content-Length`, and a body of that length (none for HEAD).

use soket::app::router::{Outcome, WsEndpoint, handle_head};
use soket::proto::http::{HeadScanner, HttpConfig, HttpError, accept_key};

pub const MAX_HEAD: usize = 8 * 1024;
/// Heads answered per input at most (each needs bytes, so this is only a guard).
const MAX_REQUESTS: usize = 64;

pub fn run(data: &[u8]) {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let piece = 1 + usize::from(first & 63);
    let config = HttpConfig {
        max_head_bytes: MAX_HEAD,
        max_body_bytes: 1 << 20,
        max_headers: 32,
        allow_origins: if first & 0x80 != 0 { vec!["https://chat.example".to_owned()] } else { Vec::new() },
        echo_enabled: first & 0x40 == 0,
        engineio_test_suite: false,
        sockjs_test_suite: false,
        files: Default::default(),
    };
    // One scanner for the connection, reset after each head, as the connection does.
    let mut scanner = HeadScanner::default();
    let mut rest = input;
    for _ in 0..MAX_REQUESTS {
        let whole = HeadScanner::default().scan(rest, MAX_HEAD);
        let cut = scan_in_pieces(&mut scanner, rest, piece);
        assert_eq!(cut, whole, "the head's end depends on how it arrived");
        let head_len = match whole {
            Ok(Some(len)) => len,
            Ok(None) => return,
            Err(e) => {
                assert_eq!(e, HttpError::HeadTooLarge);
                assert!(rest.len() >= MAX_HEAD);
                return;
            }
        };
        scanner.reset();
        assert!(head_len <= MAX_HEAD && head_len <= rest.len(), "head of {head_len} bytes");
        let (head, tail) = rest.split_at(head_len);
        assert!(head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n"), "head does not end with a blank line");
        let close = check_outcome(head, handle_head(head, &config));
        if close {
            return;
        }
        rest = tail;
    }
}

/// Scans `data` as it would arrive `piece` bytes at a time.
fn scan_in_pieces(scanner: &mut HeadScanner, data: &[u8], piece: usize) -> Result<Option<usize>, HttpError> {
    let mut end = 0;
    loop {
        end = (end + piece).min(data.len());
        match scanner.scan(&data[..end], MAX_HEAD) {
            Ok(None) if end < data.len() => {}
            other => return other,
        }
    }
}

/// Checks the answer to `head`; returns whether the connection closes after it.
fn check_outcome(head: &[u8], outcome: Outcome) -> bool {
    match outcome {
        Outcome::Upgrade(upgrade) => {
            let response = std::str::from_utf8(&upgrade.response).expect("101 is not UTF-8");
            assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{response:?}");
            let (lines, body) = split_response(upgrade.response.as_slice());
            assert!(body.is_empty(), "101 with a body: {response:?}");
            let accept = header_values(&lines, "Sec-WebSocket-Accept");
            assert_eq!(accept.len(), 1, "{response:?}");
            let keys = request_header_values(head, "Sec-WebSocket-Key");
            assert_eq!(keys.len(), 1, "upgraded without exactly one key: {:?}", String::from_utf8_lossy(head));
            let key = std::str::from_utf8(keys[0]).expect("accepted key is not UTF-8");
            assert_eq!(accept[0], accept_key(key), "wrong Sec-WebSocket-Accept");
            assert!(!header_values(&lines, "Upgrade").is_empty() && !header_values(&lines, "Connection").is_empty());
            if let WsEndpoint::Events { namespace } = &upgrade.endpoint {
                assert!(namespace.starts_with('/'), "namespace {namespace:?}");
            }
            true
        }
        Outcome::Respond { response, close, .. } => {
            // httparse skips blank lines before the request line.
            let is_head = head.trim_ascii_start().starts_with(b"HEAD ");
            check_plain_response(&response, is_head);
            close
        }
        Outcome::Serve { close, .. } => close,
    }
}

/// A plain response: status line, sane header lines, one Content-Length
/// matching the body (a HEAD answer announces the length but has no body).
pub fn check_plain_response(response: &[u8], is_head: bool) {
    let text = String::from_utf8_lossy(response);
    let (lines, body) = split_response(response);
    let status = lines[0];
    assert!(status.len() >= 13 && status.starts_with("HTTP/1.1 "), "status line {status:?}");
    assert!(status[9..12].bytes().all(|b| b.is_ascii_digit()) && &status[12..13] == " ", "status line {status:?}");
    assert_ne!(&status[9..12], "101", "101 outside an upgrade: {text:?}");
    let lengths = header_values(&lines, "Content-Length");
    assert_eq!(lengths.len(), 1, "Content-Length count in {text:?}");
    let length: usize = lengths[0].parse().unwrap_or_else(|_| panic!("Content-Length {:?}", lengths[0]));
    if !(is_head && body.is_empty()) {
        assert_eq!(body.len(), length, "body length vs Content-Length in {text:?}");
    }
}

/// Splits a response at its blank line into head lines (status line first)
/// and body, checking the head's shape on the way.
pub fn split_response(response: &[u8]) -> (Vec<&str>, &[u8]) {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no blank line in {:?}", String::from_utf8_lossy(response)));
    let head = std::str::from_utf8(&response[..end]).expect("response head is not UTF-8");
    let lines: Vec<&str> = head.split("\r\n").collect();
    for line in &lines[1..] {
        assert!(!line.chars().any(|c| c.is_control() && c != '\t'), "control character in response header {line:?}");
        let (name, _) = line.split_once(": ").unwrap_or_else(|| panic!("header line {line:?}"));
        assert!(!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{line:?}");
    }
    assert!(!lines[0].chars().any(char::is_control), "status line {:?}", lines[0]);
    (lines, &response[end + 4..])
}

/// Values of the response header `name` (case-insensitive).
pub fn header_values<'a>(lines: &[&'a str], name: &str) -> Vec<&'a str> {
    lines[1..]
        .iter()
        .filter_map(|line| line.split_once(": "))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}

/// Values of the request header `name` in a raw head, trimmed as httparse does.
fn request_header_values<'a>(head: &'a [u8], name: &str) -> Vec<&'a [u8]> {
    head.split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let (n, v) = line.split_at(colon);
            n.eq_ignore_ascii_case(name.as_bytes()).then(|| v[1..].trim_ascii())
        })
        .collect()
}
