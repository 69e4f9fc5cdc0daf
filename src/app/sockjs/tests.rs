//! Unit tests of the SockJS service layer: paths, ids, and whole exchanges
//! on one in-memory connection (streamed answers' framing, the WebSocket
//! transports' frames and closes).

use clap::Parser;

use super::*;
use crate::config::Config;
use crate::harness::Harness;

fn harness(args: &[&str]) -> Harness {
    let mut argv = vec!["soket", "--sockjs-test-suite"];
    argv.extend_from_slice(args);
    Harness::new(&Config::parse_from(argv))
}

fn output(h: &mut Harness) -> String {
    String::from_utf8(h.take_output()).expect("the answers are text")
}

/// Splits a response at its blank line.
fn head_and_body(text: &str) -> (&str, &str) {
    text.split_once("\r\n\r\n").expect("a complete head")
}

#[test]
fn services_by_path() {
    assert_eq!(find_service("/stomp/sockjs", false), Some((Service::Stomp, "")));
    assert_eq!(find_service("/stomp/sockjs/info", false), Some((Service::Stomp, "/info")));
    assert_eq!(find_service("/stomp/sockjsx/info", false), None);
    assert_eq!(find_service("/sockjs-test/echo/info", false), None, "only under --sockjs-test-suite");
    assert_eq!(find_service("/sockjs-test/echo", true), Some((Service::Echo, "")));
    assert_eq!(find_service("/sockjs-test/echo/", true), Some((Service::Echo, "/")));
    assert_eq!(find_service("/sockjs-test/close/000/abc/xhr", true), Some((Service::Close, "/000/abc/xhr")));
    assert_eq!(
        find_service("/sockjs-test/disabled_websocket_echo/info", true),
        Some((Service::DisabledWebsocketEcho, "/info"))
    );
    for none in ["/sockjs-test", "/sockjs-test/", "/sockjs-test/nope", "/sockjs-test/echox", "/sockjs-testecho"] {
        assert_eq!(find_service(none, true), None, "{none}");
    }
    assert!(!Service::DisabledWebsocketEcho.options().websocket);
    assert!(Service::CookieNeededEcho.options().cookie_needed);
    assert!(Service::Stomp.options().websocket && !Service::Stomp.options().cookie_needed);
}

#[test]
fn session_ids() {
    for ok in ["a", "0", "abcdefgh_i-j%20", &"x".repeat(MAX_SESSION_ID_BYTES)] {
        assert!(is_acceptable_session_id(ok), "{ok}");
    }
    for bad in ["", ".", "a.b", &"x".repeat(MAX_SESSION_ID_BYTES + 1)] {
        assert!(!is_acceptable_session_id(bad), "{bad}");
    }
    // Names are per service.
    assert_ne!(session_name(Service::Echo, "a"), session_name(Service::Close, "a"));
}

#[test]
fn a_stream_is_chunked_one_frame_per_chunk_and_keeps_the_connection() {
    let mut h = harness(&[]);
    h.receive(b"POST /sockjs-test/close/0/a/xhr_streaming HTTP/1.1\r\nHost: a\r\n\r\n");
    let text = output(&mut h);
    let (head, body) = head_and_body(&text);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nTransfer-Encoding: chunked"), "{head}");
    assert!(!head.contains("Content-Length") && !head.contains("Connection"), "{head}");
    assert!(head.contains("Content-Type: application/javascript; charset=UTF-8"), "{head}");
    let prelude = format!("801\r\n{}\n\r\n", "h".repeat(2048));
    assert_eq!(body, format!("{prelude}2\r\no\n\r\n13\r\nc[3000,\"Go away!\"]\n\r\n0\r\n\r\n"));
    // The connection serves the next request.
    h.receive(b"GET /sockjs-test/close HTTP/1.1\r\nHost: a\r\n\r\n");
    let text = output(&mut h);
    assert!(text.ends_with("\r\n\r\nWelcome to SockJS!\n"), "{text}");
    assert!(!h.is_dead());
}

#[test]
fn an_http10_stream_is_raw_and_ends_with_the_connection() {
    let mut h = harness(&[]);
    h.receive(b"POST /sockjs-test/close/0/a/xhr_streaming HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    let text = output(&mut h);
    let (head, body) = head_and_body(&text);
    assert!(head.contains("\r\nConnection: close"), "{head}");
    assert!(!head.contains("Transfer-Encoding") && !head.contains("Content-Length"), "{head}");
    assert_eq!(body, format!("{}\no\nc[3000,\"Go away!\"]\n", "h".repeat(2048)));
    assert!(h.write_shut(), "the body ends with the connection");
}

#[test]
fn a_stream_pipelined_behind_waits_its_turn() {
    let mut h = harness(&[]);
    h.receive(
        b"GET /sockjs-test/close/0/b/eventsource HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /sockjs-test/close/0/b/jsonp?c=cb HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let text = output(&mut h);
    let first = text.find("data: c[3000").expect("the eventsource close");
    let second = text.find("/**/cb(\"c[3000").expect("the jsonp answer repeats the close");
    assert!(first < second);
    assert!(text.contains("0\r\n\r\nHTTP/1.1 200 OK\r\n"), "the stream ended before the next answer");
}

#[test]
fn the_websocket_transport_frames_and_closes() {
    let mut h = harness(&[]);
    h.receive(
        b"GET /sockjs-test/close/0/c/websocket HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    let bytes = h.take_output();
    let at = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("the 101") + 4;
    assert!(bytes.starts_with(b"HTTP/1.1 101 "));
    let frames = &bytes[at..];
    // `o`, then the close frame as a text message, then close 1000.
    let mut expected = vec![0x81, 1, b'o', 0x81, 18];
    expected.extend_from_slice(b"c[3000,\"Go away!\"]");
    expected.extend_from_slice(&[0x88, 2, 0x03, 0xe8]);
    assert_eq!(frames, &expected[..]);
}

#[test]
fn the_raw_websocket_closes_with_the_apps_code() {
    let mut h = harness(&[]);
    h.receive(
        b"GET /sockjs-test/close/websocket HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
          Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    let bytes = h.take_output();
    let at = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("the 101") + 4;
    let mut expected = vec![0x88, 10, 0x0b, 0xb8];
    expected.extend_from_slice(b"Go away!");
    assert_eq!(&bytes[at..], &expected[..]);
}

#[test]
fn websocket_routes_of_a_service_without_websocket_are_404() {
    let mut h = harness(&[]);
    h.receive(b"GET /sockjs-test/disabled_websocket_echo/0/d/websocket HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(output(&mut h).starts_with("HTTP/1.1 404 "));
    h.receive(b"GET /sockjs-test/disabled_websocket_echo/websocket HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(output(&mut h).starts_with("HTTP/1.1 404 "));
    // And without the upgrade headers an enabled one says why it refuses.
    h.receive(b"GET /sockjs-test/echo/0/d/websocket HTTP/1.1\r\nHost: a\r\n\r\n");
    let text = output(&mut h);
    assert!(text.starts_with("HTTP/1.1 400 ") && text.contains("Not a valid websocket request"), "{text}");
}

#[test]
fn stream_heads() {
    let response = HttpResponse {
        status: 200,
        headers: vec![("Content-Type", "text/event-stream".to_owned())],
        content_type: "",
        body: b"ignored".to_vec(),
    };
    assert_eq!(
        response.encode_stream_head(true, false),
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    assert_eq!(
        response.encode_stream_head(false, true),
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
    );
}
