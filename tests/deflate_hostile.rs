//! permessage-deflate (RFC 7692) against hostile peers over loopback: a zip
//! bomb, RSV1 where it may not be, garbage deflate data. Each attack runs
//! beside an `/echo` neighbour that must stay undisturbed. Port 0, and every
//! wait bounded by the common helpers' timeouts.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use soket::proto::ws::OpCode;
use soket::proto::ws::encoder::encode_client_frame;
use tungstenite::protocol::Role;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const RSV1: u8 = 0x40;
const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n";

/// A masked client frame, with RSV1 when `rsv1`.
fn frame(opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_client_frame(&mut out, opcode, fin, payload, MASK);
    if rsv1 {
        out[0] |= RSV1;
    }
    out
}

/// `data` compressed as one message (RFC 7692 §7.2.1: sync flush, tail removed).
fn compress(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new_with_window_bits(Compression::default(), false, 15);
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    loop {
        let done = c.total_in() as usize;
        c.compress_vec(&data[done..], &mut out, FlushCompress::Sync).unwrap();
        if c.total_in() as usize == data.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity());
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// Upgrades `/echo` offering permessage-deflate; returns the stream and the 101's answer.
fn deflate_stream(server: &TestServer, offer: &str) -> (TcpStream, Option<String>) {
    let mut stream = server.tcp();
    stream.write_all(&upgrade_request("/echo", offer)).unwrap();
    let response = read_response(&mut stream).expect("an HTTP response");
    assert_eq!(response.status, 101);
    (stream, response.header("Sec-WebSocket-Extensions").map(str::to_owned))
}

/// Reads one unmasked server frame: (byte 0, payload).
fn read_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).unwrap();
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b).unwrap();
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload).unwrap();
    (head[0], payload)
}

/// The close code the server sends on `stream` (a raw upgraded socket).
fn close_code(stream: TcpStream) -> Option<u16> {
    let mut ws = tungstenite::WebSocket::from_raw_socket(stream, Role::Client, None);
    expect_close(&mut ws)
}

#[test]
fn a_compressed_echo_round_trip_and_the_negotiated_answer() {
    let server = hostile_server(&[]);
    let (mut stream, answer) = deflate_stream(&server, OFFER);
    assert_eq!(answer.as_deref(), Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"));
    let text = "{\"type\":\"message\",\"text\":\"compress me, compress me, compress me\"}".repeat(10);
    stream.write_all(&frame(OpCode::Text, true, true, &compress(text.as_bytes()))).unwrap();
    let (b0, payload) = read_frame(&mut stream);
    assert_eq!(b0, 0x80 | RSV1 | 0x1, "a compressed text frame");
    let mut d = Decompress::new_with_window_bits(false, 15);
    let mut input = payload;
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(text.len() + 64);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync).unwrap();
    assert_eq!(out, text.as_bytes());
    // Short messages come back plain; plain messages are fine from the client too.
    stream.write_all(&frame(OpCode::Text, true, false, b"hi")).unwrap();
    assert_eq!(read_frame(&mut stream), (0x81, b"hi".to_vec()));
    // Offers without the extension get none.
    let (_, answer) = deflate_stream(&server, "");
    assert_eq!(answer, None);
    let (_, answer) =
        deflate_stream(&server, "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8\r\n");
    assert_eq!(answer, None);
}

#[test]
fn a_zip_bomb_closes_1009_while_inflating() {
    // 2 MiB messages: the ~1 MB bomb itself passes the frame check, its
    // inflated size (~1 GB) must be caught while it inflates.
    let server = hostile_server(&["--max-message", "2097152"]);
    let mut neighbour = echo_neighbour(&server);
    // A stream of zeros: each segment inflates to 1 MiB and only refers to
    // zeros, so repeating it stays valid; ~1000 of them make ~1 MB.
    // Each keeps its sync-flush tail, so the next starts on a byte boundary.
    let mut segment = compress(&vec![0u8; 1 << 20]);
    segment.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let repeats = (1 << 20) / segment.len();
    let mut bomb = segment.repeat(repeats);
    bomb.truncate(bomb.len() - 4);
    assert!(bomb.len() < 2 << 20);
    let (mut stream, answer) = deflate_stream(&server, OFFER);
    assert!(answer.is_some());
    stream.write_all(&frame(OpCode::Binary, true, true, &bomb)).unwrap();
    assert_eq!(close_code(stream), Some(1009));
    assert_echoes(&mut neighbour, "after a zip bomb");
}

#[test]
fn rsv1_where_it_may_not_be_closes_1002() {
    let server = hostile_server(&[]);
    let mut neighbour = echo_neighbour(&server);
    // A compressed control frame.
    let (mut stream, _) = deflate_stream(&server, OFFER);
    stream.write_all(&frame(OpCode::Ping, true, true, b"x")).unwrap();
    assert_eq!(close_code(stream), Some(1002));
    // RSV1 on a continuation frame.
    let (mut stream, _) = deflate_stream(&server, OFFER);
    let mut bytes = frame(OpCode::Text, false, true, &compress(b"hello ")[..2]);
    bytes.extend(frame(OpCode::Continuation, true, true, b"x"));
    stream.write_all(&bytes).unwrap();
    assert_eq!(close_code(stream), Some(1002));
    // RSV1 without the extension.
    let (mut stream, answer) = deflate_stream(&server, "");
    assert_eq!(answer, None);
    stream.write_all(&frame(OpCode::Text, true, true, &compress(b"hello"))).unwrap();
    assert_eq!(close_code(stream), Some(1002));
    assert_echoes(&mut neighbour, "after misplaced RSV1");
}

#[test]
fn garbage_deflate_data_closes_1007() {
    let server = hostile_server(&[]);
    let mut neighbour = echo_neighbour(&server);
    let (mut stream, _) = deflate_stream(&server, OFFER);
    stream.write_all(&frame(OpCode::Binary, true, true, &[0xff; 32])).unwrap();
    assert_eq!(close_code(stream), Some(1007));
    // Valid deflate, invalid UTF-8 in a text message.
    let (mut stream, _) = deflate_stream(&server, OFFER);
    stream.write_all(&frame(OpCode::Text, true, true, &compress(&[0xc3, 0x28, 0xff]))).unwrap();
    assert_eq!(close_code(stream), Some(1007));
    assert_echoes(&mut neighbour, "after garbage deflate data");
}
