//! Hostile peers over loopback: oversized and dribbled request heads,
//! pathological header lists, lying frame lengths, fragment storms,
//! slowloris, junk and floods. Each attack runs beside a neighbour (an
//! `/echo` WebSocket opened before it) that must stay undisturbed.

mod common;

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use soket::proto::ws::OpCode;
use soket::proto::ws::encoder::encode_client_frame;
use tungstenite::Message;
use tungstenite::protocol::Role;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_client_frame(&mut out, opcode, fin, payload, MASK);
    out
}

/// A masked frame header announcing `len7` with the extended length bytes
/// `extended`, and no payload at all.
fn bare_header(first: u8, len7: u8, extended: &[u8]) -> Vec<u8> {
    let mut out = vec![first, 0x80 | len7];
    out.extend_from_slice(extended);
    out.extend_from_slice(&MASK);
    out
}

/// Sends a raw upgrade request and returns the response and the stream.
fn raw_upgrade(server: &TestServer, request: &[u8]) -> (HttpResponse, TcpStream) {
    let mut stream = server.tcp();
    stream.write_all(request).unwrap();
    let response = read_response(&mut stream).expect("an HTTP response");
    (response, stream)
}

/// Turns an upgraded raw stream into a client and proves it echoes.
fn assert_stream_echoes(stream: TcpStream) {
    let mut ws = tungstenite::WebSocket::from_raw_socket(stream, Role::Client, None);
    assert_echoes(&mut ws, "upgraded despite the odd headers");
}

/// Whether a write error is the peer having closed or reset the connection.
fn is_peer_gone(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted)
}

/// xorshift64: fixed-seed pseudo-random bytes, the same on every run.
fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

// 1. Request heads over --max-head.

#[test]
fn a_head_dribbled_one_byte_per_write_gets_431_at_the_limit() {
    let server = hostile_server(&[]);
    let mut neighbour = echo_neighbour(&server);
    let mut stream = server.tcp();
    let limit = 8 * 1024;
    let mut head = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
    // One byte past the limit and no blank line: the head cannot fit any more.
    head.resize(limit + 1, b'a');
    for (i, byte) in head.iter().enumerate() {
        if let Err(e) = stream.write_all(std::slice::from_ref(byte)) {
            // The answer may already be on its way; it is read below.
            assert!(is_peer_gone(&e), "write {i} failed with {e}");
            break;
        }
        if i % 2048 == 0 {
            assert_echoes(&mut neighbour, "during the dribble");
        }
    }
    // Nothing more is sent: the answer must come now, not on more input.
    let response = read_response(&mut stream).expect("a 431");
    assert_eq!(response.status, 431, "{response:?}");
    assert_eq!(response.body_text(), "request head too large\n");
    assert_eq!(response.header("Connection"), Some("close"));
    assert!(read_to_end_or_timeout(&mut stream).is_empty(), "then EOF");
    assert_echoes(&mut neighbour, "after the dribble");
}

#[test]
fn a_one_megabyte_header_in_one_write_gets_431() {
    let server = hostile_server(&[]);
    let mut neighbour = echo_neighbour(&server);
    let mut stream = server.tcp();
    let mut request = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    request.resize(1 << 20, b'b');
    request.extend_from_slice(b"\r\n\r\n");
    let mut writer = stream.try_clone().unwrap();
    // The server may answer and stop listening before the megabyte is in:
    // the writer runs on its own thread and a closed peer is fine.
    let sender = std::thread::spawn(move || writer.write_all(&request));
    let response = read_response(&mut stream).expect("a 431");
    assert_eq!(response.status, 431, "{response:?}");
    assert!(read_to_end_or_timeout(&mut stream).is_empty(), "then EOF");
    match sender.join().unwrap() {
        Ok(()) => {}
        Err(e) => assert!(is_peer_gone(&e), "writer failed with {e}"),
    }
    assert_echoes(&mut neighbour, "after the megabyte");
    assert_eq!(server.http(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
}

// 2. Header counts and required headers.

#[test]
fn too_many_headers_or_a_bad_required_header_is_400() {
    let server = hostile_server(&[]);
    let mut neighbour = echo_neighbour(&server);
    // upgrade_request has 5 fields; 59 more is the 64 allowed, 60 more is one too many.
    let fields = |n: usize| (0..n).map(|i| format!("X-Field-{i}: {i}\r\n")).collect::<String>();
    let (response, stream) = raw_upgrade(&server, &upgrade_request("/echo", &fields(59)));
    assert_eq!(response.status, 101, "64 fields are allowed: {response:?}");
    assert_stream_echoes(stream);

    let (response, _) = raw_upgrade(&server, &upgrade_request("/echo", &fields(60)));
    assert_eq!(response.status, 400, "{response:?}");
    assert_eq!(response.body_text(), "too many header fields\n");
    assert_echoes(&mut neighbour, "after too many headers");

    let full = String::from_utf8(upgrade_request("/echo", "")).unwrap();
    let cases = [
        (full.replace("Host: localhost\r\n", ""), "missing or empty Host"),
        (full.replace("Host: localhost\r\n", "Host:   \r\n"), "missing or empty Host"),
        (full.replace("Sec-WebSocket-Version: 13\r\n", ""), "missing or empty Sec-WebSocket-Version"),
        (
            full.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "Sec-WebSocket-Key: \r\n"),
            "missing or empty Sec-WebSocket-Key",
        ),
        (
            String::from_utf8(upgrade_request("/echo", "Sec-WebSocket-Version: 13\r\n")).unwrap(),
            "more than one Sec-WebSocket-Version",
        ),
        (String::from_utf8(upgrade_request("/echo", "HOST: again\r\n")).unwrap(), "more than one Host"),
    ];
    for (request, reason) in cases {
        let (response, _) = raw_upgrade(&server, request.as_bytes());
        assert_eq!(response.status, 400, "{request:?}");
        assert!(response.body_text().contains(reason), "{reason:?} not in {:?}", response.body_text());
        assert_echoes(&mut neighbour, "after a bad required header");
    }
}

#[test]
fn a_plain_http_1_1_request_without_exactly_one_host_is_400() {
    // RFC 7230 §5.4: "A server MUST respond with a 400 (Bad Request) ... to any HTTP/1.1 request message
    // that lacks a Host header field and to any request message that contains more than one".
    let server = hostile_server(&[]);
    for request in [
        &b"GET /healthz HTTP/1.1\r\n\r\n"[..],
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /healthz HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n",
        b"GET /nope HTTP/1.1\r\nConnection: keep-alive\r\n\r\n",
    ] {
        let mut stream = server.tcp();
        stream.write_all(request).unwrap();
        let response = read_response(&mut stream).expect("an HTTP response");
        assert_eq!(response.status, 400, "{:?}", String::from_utf8_lossy(request));
        assert!(response.body_text().contains("Host header"), "{:?}", response.body_text());
        assert!(read_to_end_or_timeout(&mut stream).is_empty(), "then EOF");
    }
    // HTTP/1.0 may omit it.
    assert_eq!(server.http(b"GET /healthz HTTP/1.0\r\n\r\n").status, 200);
}

// 3. Pathological token lists: each is answered (within the read timeout).

#[test]
fn pathological_token_lists_still_upgrade() {
    let server = hostile_server(&["--max-head", "200000"]);
    let mut neighbour = echo_neighbour(&server);

    let request = String::from_utf8(upgrade_request("/echo", ""))
        .unwrap()
        .replace("Connection: Upgrade", "Connection: keep-alive, ,Upgrade");
    let (response, stream) = raw_upgrade(&server, request.as_bytes());
    assert_eq!(response.status, 101, "{response:?}");
    assert_stream_echoes(stream);
    assert_echoes(&mut neighbour, "after the empty list element");

    let protocol = format!("Sec-WebSocket-Protocol: a{}\r\n", " ".repeat(100_000));
    let (response, stream) = raw_upgrade(&server, &upgrade_request("/echo", &protocol));
    assert_eq!(response.status, 101, "{:?}", response.status);
    assert_eq!(response.header("Sec-WebSocket-Protocol"), None);
    assert_stream_echoes(stream);
    assert_echoes(&mut neighbour, "after 100 000 spaces");

    let extension = "Sec-WebSocket-Extensions: permessage-deflate; x=\"abc\r\n";
    let (response, stream) = raw_upgrade(&server, &upgrade_request("/echo", extension));
    assert_eq!(response.status, 101, "{response:?}");
    assert_eq!(response.header("Sec-WebSocket-Extensions"), None);
    assert_stream_echoes(stream);
    assert_echoes(&mut neighbour, "after the unclosed quote");
}

// 4. Declared frame lengths are checked before anything is allocated.

#[test]
fn a_huge_declared_length_closes_1009_before_any_payload() {
    let server = hostile_server(&[]);
    let mut neighbour = echo_neighbour(&server);
    let cases: Vec<(Vec<u8>, u16)> = vec![
        // 2^62 bytes declared, none sent.
        (bare_header(0x82, 127, &(1u64 << 62).to_be_bytes()), 1009),
        // One byte over the default 16 MiB message limit, none sent.
        (bare_header(0x82, 127, &((16u64 << 20) + 1).to_be_bytes()), 1009),
        // A first fragment over the limit.
        (bare_header(0x01, 127, &(1u64 << 40).to_be_bytes()), 1009),
        // The most significant bit of the 64-bit length set (RFC 6455 §5.2).
        (bare_header(0x82, 127, &(1u64 << 63).to_be_bytes()), 1002),
        (bare_header(0x82, 127, &u64::MAX.to_be_bytes()), 1002),
    ];
    for (bytes, code) in cases {
        let mut ws = server.ws("/echo");
        ws.get_mut().write_all(&bytes).unwrap();
        assert_eq!(expect_close(&mut ws), Some(code), "for {bytes:02x?}");
        assert_echoes(&mut neighbour, "after a lying length");
    }
}

// 5. Fragment storms.

#[test]
fn a_storm_of_continuation_frames_closes_1009() {
    let server = hostile_server(&["--max-fragments", "1000"]);
    let mut neighbour = echo_neighbour(&server);

    // Exactly 1000 frames is allowed and echoes whole.
    let mut bytes = frame(OpCode::Text, false, b"a");
    for _ in 0..998 {
        bytes.extend(frame(OpCode::Continuation, false, b""));
    }
    bytes.extend(frame(OpCode::Continuation, true, b"z"));
    let mut ws = server.ws("/echo");
    ws.get_mut().write_all(&bytes).unwrap();
    assert_eq!(next_data(&mut ws), Message::text("az"));

    for piece in [&b""[..], b"x"] {
        let mut bytes = frame(OpCode::Text, false, b"a");
        for _ in 0..1001 {
            bytes.extend(frame(OpCode::Continuation, false, piece));
        }
        let mut ws = server.ws("/echo");
        ws.get_mut().write_all(&bytes).unwrap();
        assert_eq!(expect_close(&mut ws), Some(1009), "fragments of {piece:?}");
        assert_echoes(&mut neighbour, "after the fragment storm");
    }
}

// 6. Other upgrades get plain answers.

#[test]
fn an_h2c_upgrade_gets_a_plain_answer() {
    let server = hostile_server(&[]);
    let mut neighbour = echo_neighbour(&server);
    let h2c = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\
             Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
        )
    };
    let response = server.http(h2c("/healthz").as_bytes());
    assert_eq!((response.status, &response.body[..]), (200, &b"ok\n"[..]));
    assert_ne!(response.header("Upgrade"), Some("h2c"));
    for path in ["/echo", "/ws"] {
        let response = server.http(h2c(path).as_bytes());
        assert_eq!(response.status, 426, "{path}");
        assert_eq!(response.header("Upgrade"), Some("websocket"));
    }
    assert_echoes(&mut neighbour, "after h2c");
}

// 8. Slowloris.

#[test]
fn slowloris_is_cut_at_the_handshake_deadline() {
    let server = hostile_server(&["--handshake-timeout", "500ms"]);
    let mut neighbour = echo_neighbour(&server);
    let mut stream = server.tcp();
    stream.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
    let started = Instant::now();
    // The pacing: wait up to 100 ms for the server to answer, then send one
    // more byte; never enough bytes to end the head.
    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let max_bytes = 25;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let mut sent = 0;
    let mut closed = false;
    while sent < max_bytes {
        match stream.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                continue;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => {
                assert!(is_peer_gone(&e), "read failed with {e}");
                closed = true;
                break;
            }
        }
        if let Err(e) = stream.write_all(b"a") {
            assert!(is_peer_gone(&e), "write failed with {e}");
            closed = true;
            break;
        }
        sent += 1;
        assert_echoes(&mut neighbour, "during the slowloris");
    }
    let waited = started.elapsed();
    assert!(closed, "still open after {sent} paced bytes ({waited:?}); got {:?}", String::from_utf8_lossy(&answer));
    assert!(waited < WAIT);
    // A deadline never fires early: a server that cut us sooner was not
    // waiting for the head at all.
    assert!(waited >= Duration::from_millis(400), "cut after {waited:?}");
    let text = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || text.starts_with("HTTP/1.1 408 "), "expected 408 or a bare close, got {text:?}");
    assert_echoes(&mut neighbour, "after the slowloris");
}

#[test]
fn the_timeout_answer_names_its_status() {
    let server = hostile_server(&["--handshake-timeout", "300ms"]);
    let mut stream = server.tcp();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    let answer = read_to_end_or_timeout(&mut stream);
    let text = String::from_utf8_lossy(&answer);
    // RFC 7231 §6.5.7: 408 is "Request Timeout".
    assert!(text.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{text:?}");
    assert!(text.ends_with("\r\n\r\nrequest head timeout\n"), "{text:?}");
}

// 9. Junk: not HTTP on a fresh connection, random bytes after a handshake.

#[test]
fn junk_that_is_not_http_goes_to_the_legacy_protocol() {
    let server = hostile_server(&[]);
    let mut neighbour = echo_neighbour(&server);
    for seed in [1u64, 2, 3] {
        let mut junk = pseudo_random(seed, 512);
        // Not the start of any method token, and with NULs and a line end.
        junk[0] = 0xff;
        junk[10] = 0;
        junk.push(b'\n');
        let mut stream = server.tcp();
        stream.write_all(&junk).unwrap();
        // The legacy protocol takes the first line as a name: it is refused.
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        reader.read_until(b'\n', &mut line).expect("a reply line");
        assert!(line.starts_with(b"!ERR "), "expected a legacy error, got {:?}", String::from_utf8_lossy(&line));
        assert_echoes(&mut neighbour, "after legacy junk");
    }
    assert_eq!(server.http(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
}

#[test]
fn random_bytes_after_a_handshake_get_a_protocol_close() {
    // A small message limit: a random header that declares more than is
    // sent is refused at once instead of waiting for its payload.
    let server = hostile_server(&["--max-message", "4096"]);
    let mut neighbour = echo_neighbour(&server);
    for seed in 1..=24u64 {
        let mut junk = pseudo_random(seed, 8192);
        // Most random first bytes are refused at once (RSV bits, reserved
        // opcodes); for two seeds in three, begin with a plausible masked
        // text or binary header so the junk reaches lengths and payloads.
        if seed % 3 != 0 {
            junk[0] = 0x80 | (1 + (junk[0] & 1));
            junk[1] |= 0x80;
        }
        let mut ws = server.ws("/echo");
        ws.get_mut().write_all(&junk).unwrap();
        let code = expect_close(&mut ws);
        assert!(matches!(code, Some(1002 | 1007 | 1009)), "seed {seed}: close code {code:?} for {:02x?}", &junk[..16]);
        assert_echoes(&mut neighbour, "after random frames");
    }
}

// 10. A client that sends much and never reads.

#[test]
fn a_flood_from_a_peer_that_never_reads_is_paused_or_cut() {
    let server = hostile_server(&["--max-queued", "1048576"]);
    let mut neighbour = echo_neighbour(&server);
    let flood = server.ws("/echo");
    let mut writer = flood.get_ref().try_clone().unwrap();
    // A write that makes no progress for this long means the server stopped reading.
    writer.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
    let sender = std::thread::spawn(move || {
        let payload = pseudo_random(5, 64 << 10);
        let mut bytes = Vec::new();
        encode_client_frame(&mut bytes, OpCode::Binary, true, &payload, MASK);
        let mut sent = 0usize;
        for _ in 0..1024 {
            // 64 MiB in all.
            if let Err(e) = writer.write_all(&bytes) {
                return (sent, Some(e));
            }
            sent += bytes.len();
        }
        (sent, None)
    });

    let started = Instant::now();
    let mut echoes = 0;
    while !sender.is_finished() {
        assert_echoes(&mut neighbour, "during the flood");
        echoes += 1;
        assert!(started.elapsed() < WAIT, "the flood writer never stopped");
    }
    let (sent, error) = sender.join().unwrap();
    assert!(echoes > 0);
    let total = 64usize << 20;
    match error {
        // Paused: the server stopped reading and TCP pushed back on the writer.
        Some(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            assert!(sent < total);
        }
        // Cut: the server dropped the connection, after a 1013 close.
        other => {
            if let Some(e) = &other {
                assert!(is_peer_gone(e), "flood writer failed with {e}");
            }
            let mut flood = flood;
            assert_eq!(expect_close(&mut flood), Some(1013), "wrote {sent} bytes");
        }
    }
    // (`flood` is dropped at the latest here, resetting the connection.)
    assert_echoes(&mut neighbour, "after the flood");
    assert_eq!(server.http(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
}

#[test]
fn pipelined_requests_from_a_peer_that_does_not_read_are_paused_not_buffered() {
    let server = TestServer::with_args(&["--max-queued", "65536"]);
    let mut neighbour = server.ws("/echo");
    let requests = 20_000;
    let mut stream = server.tcp();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let one = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        let all: Vec<u8> = one.iter().copied().cycle().take(one.len() * requests).collect();
        writer.write_all(&all)
    });
    // While the pipeliner reads nothing, the server's queues stay bounded.
    for i in 0..20 {
        assert_echoes(&mut neighbour, &format!("meanwhile {i}"));
        let high_water = metric(&server, "soket_queue_high_water_bytes");
        assert!(high_water <= 65536.0 + 1024.0, "a queue held {high_water} bytes");
    }
    // Then every request is answered, in order, none lost.
    let mut answered = 0;
    while answered < requests {
        let response = read_response(&mut stream).expect("a response");
        assert_eq!((response.status, response.body.as_slice()), (200, &b"ok\n"[..]));
        answered += 1;
    }
    sender.join().unwrap().unwrap();
    assert_echoes(&mut neighbour, "after");
}
