//! The WebSocket core over loopback with a real client: echo, fragmentation,
//! control frames, large messages, closing handshakes and protocol errors.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use soket::proto::ws::OpCode;
use soket::proto::ws::encoder::encode_client_frame;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode as TungCloseCode;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_client_frame(&mut out, opcode, fin, payload, MASK);
    out
}

#[test]
fn echoes_text_and_binary() {
    let server = TestServer::start();
    let mut ws = server.ws("/echo");
    assert_echoes(&mut ws, "merhaba dünya");
    ws.send(Message::binary(vec![0u8, 1, 2, 255])).unwrap();
    assert_eq!(next_data(&mut ws), Message::binary(vec![0u8, 1, 2, 255]));
    ws.send(Message::text("")).unwrap();
    assert_eq!(next_data(&mut ws), Message::text(""));
}

#[test]
fn fragmented_message_with_interleaved_control_frames_echoes_whole() {
    let server = TestServer::start();
    let mut ws = server.ws("/echo");
    let mut bytes = frame(OpCode::Text, false, "fragm".as_bytes());
    bytes.extend(frame(OpCode::Ping, true, b"keepalive"));
    // A code point split across fragments must still validate.
    let snowman = "☃".as_bytes();
    let mut middle = b"ented ".to_vec();
    middle.push(snowman[0]);
    bytes.extend(frame(OpCode::Continuation, false, &middle));
    bytes.extend(frame(OpCode::Pong, true, b"unsolicited"));
    bytes.extend(frame(OpCode::Continuation, false, b""));
    let mut last = snowman[1..].to_vec();
    last.extend_from_slice(b" message");
    bytes.extend(frame(OpCode::Continuation, true, &last));
    ws.get_mut().write_all(&bytes).unwrap();

    match ws.read().unwrap() {
        Message::Pong(payload) => assert_eq!(&payload[..], b"keepalive"),
        other => panic!("expected the pong first, got {other:?}"),
    }
    assert_eq!(next_data(&mut ws), Message::text("fragmented ☃ message"));
}

#[test]
fn sixteen_mebibyte_messages_echo_byte_for_byte() {
    let server = TestServer::start();
    let mut ws = server.ws("/echo");
    let payload: Vec<u8> = (0..16usize << 20).map(|i| (i * 31 % 251) as u8).collect();
    ws.send(Message::binary(payload.clone())).unwrap();
    match next_data(&mut ws) {
        Message::Binary(got) => assert!(got[..] == payload[..], "16 MiB echo differs"),
        other => panic!("expected binary, got {other:?}"),
    }
    // The same size, fragmented into 1 MiB pieces.
    let text = "x".repeat(16 << 20);
    let mut bytes = Vec::new();
    for (i, piece) in text.as_bytes().chunks(1 << 20).enumerate() {
        let opcode = if i == 0 { OpCode::Text } else { OpCode::Continuation };
        bytes.extend(frame(opcode, (i + 1) << 20 == text.len(), piece));
    }
    let mut writer = ws.get_ref().try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&bytes));
    match next_data(&mut ws) {
        Message::Text(got) => assert!(got.as_str() == text, "fragmented 16 MiB echo differs"),
        other => panic!("expected text, got {other:?}"),
    }
    sender.join().unwrap().unwrap();
}

#[test]
fn a_message_over_the_limit_closes_with_1009() {
    let server = TestServer::with_args(&["--max-message", "1024"]);
    let mut ws = server.ws("/echo");
    assert_echoes(&mut ws, &"a".repeat(1024));
    ws.send(Message::text("b".repeat(1025))).unwrap();
    assert_eq!(expect_close(&mut ws), Some(1009));
}

#[test]
fn ping_is_answered_with_the_same_payload() {
    let server = TestServer::start();
    let mut ws = server.ws("/echo");
    ws.send(Message::Ping(b"are you there"[..].into())).unwrap();
    match ws.read().unwrap() {
        Message::Pong(payload) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected pong, got {other:?}"),
    }
}

#[test]
fn frames_pipelined_behind_the_handshake_are_not_lost() {
    let server = TestServer::start();
    let mut stream = server.tcp();
    let mut bytes = upgrade_request("/echo", "");
    bytes.extend(frame(OpCode::Text, true, b"first"));
    bytes.extend(frame(OpCode::Text, true, b"second"));
    stream.write_all(&bytes).unwrap();
    let response = read_response(&mut stream).expect("101");
    assert_eq!(response.status, 101);
    assert_eq!(response.header("Sec-WebSocket-Accept"), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    let mut ws = tungstenite::WebSocket::from_raw_socket(stream, tungstenite::protocol::Role::Client, None);
    assert_eq!(next_data(&mut ws), Message::text("first"));
    assert_eq!(next_data(&mut ws), Message::text("second"));
}

#[test]
fn client_close_is_answered_with_the_same_code_and_tcp_closes() {
    let server = TestServer::start();
    let mut ws = server.ws("/echo");
    ws.close(Some(CloseFrame { code: TungCloseCode::Away, reason: "bye".into() })).unwrap();
    assert_eq!(expect_close(&mut ws), Some(1001));
    // Then the server closes the TCP connection.
    let mut rest = Vec::new();
    let read = ws.get_mut().read_to_end(&mut rest);
    assert!(read.is_ok() && rest.is_empty(), "expected EOF after the close handshake");
}

#[test]
fn garbage_gets_its_close_code_while_a_neighbour_is_undisturbed() {
    let server = TestServer::start();
    let mut neighbour = server.ws("/echo");
    assert_echoes(&mut neighbour, "before");

    let cases: Vec<(Vec<u8>, u16)> = vec![
        // Unmasked client frame.
        (vec![0x81, 0x02, b'h', b'i'], 1002),
        // RSV1 without an extension.
        (frame_with_first_byte(0xC1, b"hi"), 1002),
        // Reserved opcode 3.
        (frame_with_first_byte(0x83, b""), 1002),
        // Fragmented ping.
        (frame(OpCode::Ping, false, b""), 1002),
        // Continuation with nothing to continue.
        (frame(OpCode::Continuation, true, b"x"), 1002),
        // Invalid UTF-8.
        (frame(OpCode::Text, true, &[0xce, 0xba, 0xff]), 1007),
        // Close with a one-byte payload.
        (frame(OpCode::Close, true, &[0x03]), 1002),
        // Close with a code that may not be sent (1005).
        (frame(OpCode::Close, true, &1005u16.to_be_bytes()), 1002),
        // Close whose reason is not UTF-8.
        (frame(OpCode::Close, true, &[0x03, 0xe8, 0xff, 0xfe]), 1007),
    ];
    for (bytes, code) in cases {
        let mut ws = server.ws("/echo");
        ws.get_mut().write_all(&bytes).unwrap();
        assert_eq!(expect_close(&mut ws), Some(code), "for bytes {bytes:02x?}");
        assert_echoes(&mut neighbour, "still here");
    }
}

fn frame_with_first_byte(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = frame(OpCode::Text, true, payload);
    bytes[0] = first;
    bytes
}

#[test]
fn unanswered_keepalive_ping_closes_1001_and_drops_the_connection() {
    let server =
        TestServer::with_args(&["--ping-interval", "200ms", "--ping-timeout", "300ms", "--close-timeout", "300ms"]);
    let mut ws = server.ws("/echo");
    let started = Instant::now();
    // Read raw bytes so nothing answers the ping.
    let mut stream = ws.get_mut().try_clone().unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) => panic!("no EOF after the ping timeout: {e}"),
        }
    }
    assert!(started.elapsed() < WAIT);
    assert_eq!(&bytes[..2], &[0x89, 0x00], "an empty ping first");
    assert_eq!(bytes[2], 0x88, "then a close frame");
    assert_eq!(u16::from_be_bytes([bytes[4], bytes[5]]), 1001);
}

#[test]
fn a_peer_that_never_answers_our_close_is_cut_at_the_deadline() {
    let server = TestServer::with_args(&["--shutdown-timeout", "300ms"]);
    let mut ws = server.ws("/echo");
    assert_echoes(&mut ws, "hello");
    let mut stream = ws.get_mut().try_clone().unwrap();
    let started = Instant::now();
    let stopping = std::thread::spawn(move || server.stop());
    // Read raw bytes and never answer the close: the server must let go by itself.
    let got = read_to_end_or_timeout(&mut stream);
    assert_eq!(&got[..2], &[0x88, 22], "a close frame: {got:02x?}");
    assert_eq!(u16::from_be_bytes([got[2], got[3]]), 1001);
    assert_eq!(&got[4..], b"server shutting down");
    stopping.join().unwrap().expect("a clean shutdown");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "the server waited for our close ({waited:?})");
    assert!(waited < WAIT);
}
