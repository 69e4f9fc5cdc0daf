//! Hostile SockJS clients over loopback: bad and oversized session ids, bad
//! send bodies, a second receiver on a session, sends to sessions that do
//! not exist, a streaming client that never reads, a session whose messages
//! nobody fetches, too many sessions. Each is refused or cut as the protocol
//! (or soket's limits) say, and a well-behaved SockJS WebSocket client on the
//! same server keeps its echo going throughout.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;
use tungstenite::Message;

const ECHO: &str = "/sockjs-test/echo";

fn server_with(args: &[&str]) -> TestServer {
    let mut all = vec!["--sockjs-test-suite"];
    all.extend_from_slice(args);
    hostile_server(&all)
}

fn post(server: &TestServer, target: &str, body: &[u8]) -> (u16, String) {
    let response = request(&mut server.tcp(), "POST", target, body);
    (response.status, response.body_text())
}

/// One HTTP chunk of a streamed answer (empty: the last one).
fn read_chunk(stream: &mut TcpStream) -> Vec<u8> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).expect("a chunk size line");
        line.push(byte[0]);
        assert!(line.len() < 32, "chunk size line too long");
    }
    let size = usize::from_str_radix(std::str::from_utf8(&line[..line.len() - 2]).unwrap(), 16).unwrap();
    let mut chunk = vec![0; size + 2];
    stream.read_exact(&mut chunk).expect("a chunk");
    assert!(chunk.ends_with(b"\r\n"));
    chunk.truncate(size);
    chunk
}

/// A well-behaved client on the SockJS WebSocket transport.
struct Neighbour {
    ws: Client,
}

impl Neighbour {
    fn connect(server: &TestServer) -> Neighbour {
        let mut ws = server.ws(&format!("{ECHO}/000/neighbour/websocket"));
        assert_eq!(next_data(&mut ws), Message::text("o"));
        Neighbour { ws }
    }

    fn assert_served(&mut self, tag: &str) {
        self.ws.send(Message::text(format!("[\"{tag}\"]"))).expect("send");
        assert_eq!(next_data(&mut self.ws), Message::text(format!("a[\"{tag}\"]")));
    }
}

#[test]
fn bad_session_ids_are_not_found() {
    let server = server_with(&[]);
    let mut neighbour = Neighbour::connect(&server);
    let long = "s".repeat(129);
    for id in ["a.b", ".", "", &long] {
        assert_eq!(post(&server, &format!("{ECHO}/000/{id}/xhr"), b"").0, 404, "{id:?}");
        assert_eq!(post(&server, &format!("{ECHO}/000/{id}/xhr_send"), b"[\"x\"]").0, 404, "{id:?}");
    }
    assert_eq!(post(&server, &format!("{ECHO}/a.b/ok/xhr"), b"").0, 404, "a server id with a dot");
    let longest = "s".repeat(128);
    assert_eq!(post(&server, &format!("{ECHO}/000/{longest}/xhr"), b""), (200, "o\n".to_owned()));
    neighbour.assert_served("still here");
}

#[test]
fn bad_bodies_get_500_and_the_session_goes_on() {
    let server = server_with(&[]);
    let mut neighbour = Neighbour::connect(&server);
    let session = format!("{ECHO}/000/bodies");
    assert_eq!(post(&server, &format!("{session}/xhr"), b""), (200, "o\n".to_owned()));
    let send = format!("{session}/xhr_send");
    let cases: [(&[u8], &str); 6] = [
        (b"[\"x", "Broken JSON encoding."),
        (b"\xff\xfe", "Broken JSON encoding."),
        (b"", "Payload expected."),
        (b"{\"a\":1}", "Payload expected."),
        (b"[1,2]", "Payload expected."),
        (b"[\"\\ud800\"]", "Broken JSON encoding."),
    ];
    for (body, message) in cases {
        assert_eq!(post(&server, &send, body), (500, message.to_owned()), "{:?}", String::from_utf8_lossy(body));
    }
    // jsonp_send reads the form field `d`.
    let mut stream = server.tcp();
    let form = format!(
        "POST {session}/jsonp_send HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 2\r\n\r\nd="
    );
    stream.write_all(form.as_bytes()).unwrap();
    let response = read_response(&mut stream).expect("an answer");
    assert_eq!((response.status, response.body_text()), (500, "Payload expected.".to_owned()));
    assert_eq!(post(&server, &send, b"[\"fine\"]").0, 204);
    assert_eq!(post(&server, &format!("{session}/xhr"), b""), (200, "a[\"fine\"]\n".to_owned()));
    neighbour.assert_served("after bodies");
}

#[test]
fn a_second_receiver_gets_2010_and_the_first_goes_on() {
    let server = server_with(&[]);
    let mut neighbour = Neighbour::connect(&server);
    let session = format!("{ECHO}/000/two");
    let mut first = server.tcp();
    let head = request(&mut first, "POST", &format!("{session}/xhr_streaming"), b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(read_chunk(&mut first), [b'h'; 2048].iter().chain(b"\n").copied().collect::<Vec<u8>>());
    assert_eq!(read_chunk(&mut first), b"o\n");
    // The first receiver is attached: every other one is turned away.
    let busy = "c[2010,\"Another connection still open\"]\n".to_owned();
    assert_eq!(post(&server, &format!("{session}/xhr"), b""), (200, busy.clone()));
    let mut jsonp = server.tcp();
    let answer = request(&mut jsonp, "GET", &format!("{session}/jsonp?c=cb"), b"");
    assert_eq!(answer.body_text(), "/**/cb(\"c[2010,\\\"Another connection still open\\\"]\");\r\n");
    let mut second = server.tcp();
    let head = request(&mut second, "POST", &format!("{session}/xhr_streaming"), b"");
    assert_eq!(head.status, 200);
    assert_eq!(read_chunk(&mut second).len(), 2049, "the prelude");
    assert_eq!(read_chunk(&mut second), busy.as_bytes());
    assert_eq!(read_chunk(&mut second), b"", "the last chunk");
    assert_eq!(post(&server, &format!("{session}/xhr_send"), b"[\"x\"]").0, 204);
    assert_eq!(read_chunk(&mut first), b"a[\"x\"]\n");
    neighbour.assert_served("after 2010");
}

#[test]
fn a_send_to_an_unknown_session_is_404() {
    let server = server_with(&[]);
    let mut neighbour = Neighbour::connect(&server);
    assert_eq!(post(&server, &format!("{ECHO}/000/nobody/xhr_send"), b"[\"x\"]").0, 404);
    assert_eq!(post(&server, &format!("{ECHO}/000/nobody/jsonp_send"), b"[\"x\"]").0, 404);
    // A session of another service is another session.
    assert_eq!(post(&server, &format!("{ECHO}/000/mine/xhr"), b""), (200, "o\n".to_owned()));
    assert_eq!(post(&server, "/sockjs-test/cookie_needed_echo/000/mine/xhr_send", b"[\"x\"]").0, 404);
    neighbour.assert_served("after 404s");
}

#[test]
fn a_streaming_client_that_never_reads_is_cut() {
    let server = server_with(&["--max-queued", "65536", "--sockjs-response-limit", "1073741824"]);
    let mut neighbour = Neighbour::connect(&server);
    // Not `echo`: its streaming answers end after 4 KiB, for the suite.
    let session = "/sockjs-test/cookie_needed_echo/000/stalled";
    let mut stalled = server.tcp();
    let head = request(&mut stalled, "POST", &format!("{session}/xhr_streaming"), b"");
    assert_eq!(head.status, 200);
    assert_eq!(read_chunk(&mut stalled).len(), 2049);
    assert_eq!(read_chunk(&mut stalled), b"o\n");
    // From here on the streaming client reads nothing; its echoes pile up
    // in the kernel's buffers, then in its queue, until it is cut.
    let message = format!("[\"{}\"]", "x".repeat(256 * 1024));
    let mut sender = server.tcp();
    let mut cut = false;
    for _ in 0..1024 {
        let response = request(&mut sender, "POST", &format!("{session}/xhr_send"), message.as_bytes());
        assert_eq!(response.status, 204);
        if metric(&server, "soket_slow_consumer_disconnects_total") >= 1.0 {
            cut = true;
            break;
        }
    }
    assert!(cut, "the stalled streaming client was never cut off");
    // The session lost its receiver mid-answer: it is closed with 1002.
    let (status, body) = post(&server, &format!("{session}/xhr"), b"");
    let shown: String = body.chars().take(60).collect();
    assert_eq!((status, shown.as_str()), (200, "c[1002,\"Connection interrupted\"]\n"));
    neighbour.assert_served("after the cut");
}

#[test]
fn a_session_whose_messages_nobody_fetches_is_closed_at_its_queue_cap() {
    let server = server_with(&["--max-queued", "65536"]);
    let mut neighbour = Neighbour::connect(&server);
    let session = format!("{ECHO}/000/hoarder");
    assert_eq!(post(&server, &format!("{session}/xhr"), b""), (200, "o\n".to_owned()));
    let message = format!("[\"{}\"]", "y".repeat(16 * 1024));
    let mut sender = server.tcp();
    for _ in 0..8 {
        let response = request(&mut sender, "POST", &format!("{session}/xhr_send"), message.as_bytes());
        assert_eq!(response.status, 204);
    }
    assert_eq!(metric(&server, "soket_slow_consumer_disconnects_total"), 1.0);
    // What fitted under the cap still comes, then the close, for good.
    let (status, queued) = post(&server, &format!("{session}/xhr"), b"");
    assert_eq!(status, 200);
    assert!(queued.starts_with("a[\"yyy") && queued.len() <= 65536 + 4, "{} bytes", queued.len());
    let closed = (200, "c[1013,\"Slow reader\"]\n".to_owned());
    assert_eq!(post(&server, &format!("{session}/xhr"), b""), closed);
    assert_eq!(post(&server, &format!("{session}/xhr"), b""), closed);
    neighbour.assert_served("after the hoarder");
}

#[test]
fn sessions_are_capped() {
    let server = server_with(&["--sockjs-max-sessions", "2"]);
    assert_eq!(post(&server, &format!("{ECHO}/000/one/xhr"), b""), (200, "o\n".to_owned()));
    assert_eq!(post(&server, &format!("{ECHO}/000/two/xhr"), b""), (200, "o\n".to_owned()));
    assert_eq!(post(&server, &format!("{ECHO}/000/three/xhr"), b"").0, 503);
    assert_eq!(metric(&server, "soket_sockjs_sessions"), 2.0);
    assert_eq!(metric(&server, "soket_sockjs_sessions_total"), 2.0);
    // The WebSocket transport's sessions live in their connections.
    let mut neighbour = Neighbour::connect(&server);
    neighbour.assert_served("beyond the cap");
}

#[test]
fn broken_websocket_messages_close_only_that_websocket() {
    let server = server_with(&[]);
    let mut neighbour = Neighbour::connect(&server);
    let mut ws = server.ws(&format!("{ECHO}/000/broken/websocket"));
    assert_eq!(next_data(&mut ws), Message::text("o"));
    ws.send(Message::text("[\"a")).unwrap();
    assert_eq!(expect_close(&mut ws), Some(1002));
    let mut binary = server.ws(&format!("{ECHO}/000/binary/websocket"));
    assert_eq!(next_data(&mut binary), Message::text("o"));
    binary.send(Message::binary(b"[\"a\"]".to_vec())).unwrap();
    assert_eq!(expect_close(&mut binary), Some(1002));
    neighbour.assert_served("after broken frames");
}
