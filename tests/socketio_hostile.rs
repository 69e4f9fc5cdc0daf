//! Hostile Socket.IO and Engine.IO clients over loopback: the inputs the
//! advisories against engine.io and socket.io-parser were about. Each is
//! refused as the reference server refuses it (HTTP 400 with its JSON error,
//! a CONNECT_ERROR, or the session closed), while a well-behaved Socket.IO
//! client in the same world keeps relaying its events, and what the hostile
//! session sent before its bad packet still reaches the others.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use tungstenite::Message;

const POLLING: &str = "/socket.io/?EIO=4&transport=polling";
const WEBSOCKET: &str = "/socket.io/?EIO=4&transport=websocket";

const UNKNOWN_TRANSPORT: (u16, &str) = (400, r#"{"code":0,"message":"Transport unknown"}"#);
const UNKNOWN_SID: (u16, &str) = (400, r#"{"code":1,"message":"Session ID unknown"}"#);
const BAD_HANDSHAKE_METHOD: (u16, &str) = (400, r#"{"code":2,"message":"Bad handshake method"}"#);
const BAD_REQUEST: (u16, &str) = (400, r#"{"code":3,"message":"Bad request"}"#);
const UNSUPPORTED_PROTOCOL: (u16, &str) = (400, r#"{"code":5,"message":"Unsupported protocol version"}"#);

/// The most messages a client skips while waiting for the one it expects.
const MAX_SKIPPED: usize = 10_000;

fn status_body(response: &HttpResponse) -> (u16, String) {
    (response.status, response.body_text())
}

fn assert_refused(response: &HttpResponse, expected: (u16, &str)) {
    assert_eq!(status_body(response), (expected.0, expected.1.to_owned()));
    assert_eq!(response.header("Content-Type"), Some("application/json"));
}

/// A long-polling Engine.IO session: GETs on one connection, POSTs on another
/// (a GET may be held while a POST goes).
struct Poller {
    gets: TcpStream,
    posts: TcpStream,
    sid: String,
}

impl Poller {
    fn open(server: &TestServer) -> Poller {
        let mut gets = server.tcp();
        let response = request(&mut gets, "GET", POLLING, b"");
        assert_eq!(response.status, 200);
        let text = response.body_text();
        let open: serde_json::Value = serde_json::from_str(text.strip_prefix('0').expect("an open packet")).unwrap();
        let sid = open["sid"].as_str().expect("a sid").to_owned();
        Poller { gets, posts: server.tcp(), sid }
    }

    /// Opens a session and connects the namespace `/`.
    fn connected(server: &TestServer) -> Poller {
        let mut poller = Poller::open(server);
        assert_eq!(poller.post(b"40").status, 200);
        let answer = poller.get_text();
        assert!(answer.starts_with(r#"40{"sid":""#), "{answer}");
        poller
    }

    fn target(&self) -> String {
        format!("{POLLING}&sid={}", self.sid)
    }

    fn get(&mut self) -> HttpResponse {
        let target = self.target();
        request(&mut self.gets, "GET", &target, b"")
    }

    fn get_text(&mut self) -> String {
        let response = self.get();
        assert_eq!(response.status, 200, "{}", response.body_text());
        response.body_text()
    }

    fn post(&mut self, body: &[u8]) -> HttpResponse {
        let target = self.target();
        request(&mut self.posts, "POST", &target, body)
    }

    fn post_ok(&mut self, body: &[u8]) {
        let response = self.post(body);
        assert_eq!(status_body(&response), (200, "ok".to_owned()), "POST {:?}", String::from_utf8_lossy(body));
    }

    /// The session is gone: a GET ends with the close packet (the held
    /// answer) or is refused as unknown, and so is every request after.
    fn assert_closed(&mut self) {
        let mut response = self.get();
        if status_body(&response) == (200, "1".to_owned()) {
            response = self.get();
        }
        assert_refused(&response, UNKNOWN_SID);
        assert_refused(&self.post(b"3"), UNKNOWN_SID);
    }
}

/// A well-behaved Socket.IO client over WebSocket.
struct Sio {
    ws: Client,
}

impl Sio {
    /// Connects the namespace `/`.
    fn connect(server: &TestServer) -> Sio {
        let mut sio = Sio { ws: server.ws(WEBSOCKET) };
        let open = sio.text();
        assert!(open.starts_with(r#"0{"sid":""#), "{open}");
        sio.send("40");
        let answer = sio.text();
        assert!(answer.starts_with(r#"40{"sid":""#), "{answer}");
        sio
    }

    fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    /// The next text message; heartbeat pings are answered on the way.
    fn text(&mut self) -> String {
        loop {
            match next_data(&mut self.ws) {
                Message::Text(text) if text.as_str() == "2" => self.send("3"),
                Message::Text(text) => return text.as_str().to_owned(),
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// Reads until `expected` arrives.
    fn expect(&mut self, expected: &str) {
        for _ in 0..MAX_SKIPPED {
            if self.text() == expected {
                return;
            }
        }
        panic!("{expected} never came");
    }

    /// Still served: its own event comes back relayed.
    fn assert_relays(&mut self, tag: &str) {
        let event = format!(r#"42["x","{tag}"]"#);
        self.send(&event);
        self.expect(&event);
    }
}

/// Sends `bad` on a connected polling session after a good event: the
/// POST is accepted, the good event is relayed to the neighbour, and the
/// session is closed.
fn assert_packet_closes_polling(server: &TestServer, neighbour: &mut Sio, bad: &str) {
    let mut hostile = Poller::connected(server);
    let good = format!(r#"42["x","before {}"]"#, bad.len());
    let body = format!("{good}\x1e4{bad}");
    hostile.post_ok(body.as_bytes());
    neighbour.expect(&good);
    hostile.assert_closed();
    neighbour.assert_relays(&format!("after {}", bad.len()));
}

/// The same over a WebSocket session: the server closes it.
fn assert_packet_closes_websocket(server: &TestServer, neighbour: &mut Sio, bad: &str) {
    let mut hostile = Sio::connect(server);
    let good = format!(r#"42["x","ws before {}"]"#, bad.len());
    hostile.send(&good);
    hostile.send(&format!("4{bad}"));
    neighbour.expect(&good);
    assert_eq!(expect_close(&mut hostile.ws), Some(1000), "{bad}");
    neighbour.assert_relays(&format!("ws after {}", bad.len()));
}

/// Socket.IO packets the reference parser refuses (a parse error that
/// closes the whole connection).
const BAD_PACKETS: &[&str] = &[
    // The event name is not a string, or is empty, or reserved.
    r#"2[1]"#,
    r#"2[{"a":1}]"#,
    r#"2[null,"x"]"#,
    r#"2[]"#,
    r#"2[""]"#,
    r#"2["connect"]"#,
    // The payload is not an array.
    r#"2{"a":1}"#,
    r#"2"x""#,
    r#"2"#,
    r#"2[unclosed"#,
    // A placeholder whose `num` is not an integer below the attachment count.
    r#"51-["x",{"_placeholder":true,"num":1}]"#,
    r#"51-["x",{"_placeholder":true,"num":"0"}]"#,
    r#"51-["x",{"_placeholder":true,"num":0.5}]"#,
    r#"51-["x",{"_placeholder":true,"num":-1}]"#,
    r#"51-["x",{"_placeholder":true}]"#,
    r#"52-["x",{"_placeholder":true,"num":1e400}]"#,
    // More than 10 attachments, a huge count, or none at all.
    r#"511-["x"]"#,
    r#"54294967296-["x"]"#,
    r#"599999999999999999999999-["x"]"#,
    r#"5["x"]"#,
    r#"5-["x"]"#,
    // An ack id that overflows (past 2^53 - 1, past u64).
    r#"29007199254740992["x"]"#,
    r#"218446744073709551616["x"]"#,
    r#"3999999999999999999999999999[]"#,
    // Unknown packet types.
    "7",
    "9[]",
    "x",
    "",
    // A namespace without its comma: the rest is taken as its name, so
    // the event has no payload.
    r#"2/chat["x",1]"#,
    // A DISCONNECT with a payload, an ACK without an array.
    "1{}",
    r#"3{"a":1}"#,
];

#[test]
fn bad_packets_close_a_polling_session_only() {
    let server = hostile_server(&[]);
    let mut neighbour = Sio::connect(&server);
    neighbour.assert_relays("before the attacks");
    for bad in BAD_PACKETS {
        assert_packet_closes_polling(&server, &mut neighbour, bad);
    }
}

#[test]
fn bad_packets_close_a_websocket_session_only() {
    let server = hostile_server(&[]);
    let mut neighbour = Sio::connect(&server);
    for bad in BAD_PACKETS {
        assert_packet_closes_websocket(&server, &mut neighbour, bad);
    }
}

#[test]
fn bad_engineio_packets_close_the_session() {
    let server = hostile_server(&[]);
    let mut neighbour = Sio::connect(&server);
    // Unknown Engine.IO types, an empty record, bad base64, bad UTF-8.
    for body in [&b"9"[..], b"3\x1e", b"\x1e3", b"bnot base64!", b"4\xff", b"", b"7abc"] {
        let mut hostile = Poller::connected(&server);
        let response = hostile.post(body);
        assert_refused(&response, BAD_REQUEST);
        hostile.assert_closed();
        neighbour.assert_relays(&format!("after engine.io packet of {} bytes", body.len()));
    }
    for text in ["9", "", "b"] {
        let mut hostile = Sio::connect(&server);
        hostile.send(text);
        assert_eq!(expect_close(&mut hostile.ws), Some(1000), "{text:?}");
        neighbour.assert_relays(&format!("after ws packet of {} bytes", text.len()));
    }
}

#[test]
fn binary_out_of_order_closes_the_session() {
    let server = hostile_server(&[]);
    let mut neighbour = Sio::connect(&server);
    // An attachment with no binary packet announcing it.
    let mut hostile = Poller::connected(&server);
    hostile.post_ok(b"bAQID");
    hostile.assert_closed();
    // Text while attachments are awaited.
    let mut hostile = Poller::connected(&server);
    hostile.post_ok(b"451-[\"x\",{\"_placeholder\":true,\"num\":0}]\x1e42[\"x\",\"text\"]");
    hostile.assert_closed();
    // The same on a WebSocket.
    let mut hostile = Sio::connect(&server);
    hostile.ws.send(Message::binary(vec![1u8, 2, 3])).unwrap();
    assert_eq!(expect_close(&mut hostile.ws), Some(1000));
    neighbour.assert_relays("after binary attacks");
    // A well-formed binary event still goes through, attachment and all.
    let mut binary = Sio::connect(&server);
    binary.send(r#"451-["x",{"_placeholder":true,"num":0}]"#);
    binary.ws.send(Message::binary(vec![7u8, 8, 9])).unwrap();
    neighbour.expect(r#"451-["x",{"_placeholder":true,"num":0}]"#);
    match next_data(&mut neighbour.ws) {
        Message::Binary(data) => assert_eq!(&data[..], &[7, 8, 9]),
        other => panic!("expected the attachment, got {other:?}"),
    }
}

#[test]
fn too_many_or_oversized_attachments_close_the_session() {
    let server = hostile_server(&["--engineio-max-payload", "1000"]);
    let mut neighbour = Sio::connect(&server);
    // Ten attachments are allowed, each under maxPayload but together over it.
    let placeholders: Vec<String> = (0..10).map(|n| format!(r#"{{"_placeholder":true,"num":{n}}}"#)).collect();
    let mut hostile = Sio::connect(&server);
    hostile.send(&format!(r#"4510-["x",{}]"#, placeholders.join(",")));
    // The third passes maxPayload in all.
    for _ in 0..3 {
        hostile.ws.send(Message::binary(vec![0u8; 400])).unwrap();
    }
    assert_eq!(expect_close(&mut hostile.ws), Some(1000));
    neighbour.assert_relays("after oversized attachments");
}

#[test]
fn unknown_namespaces_get_connect_error_and_the_session_lives() {
    let server = hostile_server(&[]);
    let mut neighbour = Sio::connect(&server);
    let mut hostile = Poller::open(&server);
    // A namespace without its comma: its name runs to the end.
    hostile.post_ok(br#"40/chat{"token":"abc"}"#);
    assert_eq!(hostile.get_text(), r#"44/chat{"token":"abc"},{"message":"Invalid namespace"}"#);
    for (connect, expected) in [
        (r#"40/a b,"#, r#"44/a b,{"message":"Invalid namespace"}"#),
        (r#"40/..,"#, r#"44/..,{"message":"Invalid namespace"}"#),
        (r#"40/x?y,"#, r#"44/x?y,{"message":"Invalid namespace"}"#),
    ] {
        hostile.post_ok(connect.as_bytes());
        assert_eq!(hostile.get_text(), expected, "{connect}");
    }
    // A CONNECT whose auth is not an object is a parse error.
    let mut bad_auth = Poller::open(&server);
    bad_auth.post_ok(b"40[1]");
    bad_auth.assert_closed();
    // The refused session may still connect `/`, and relays.
    hostile.post_ok(b"40");
    assert!(hostile.get_text().starts_with(r#"40{"sid":""#));
    hostile.post_ok(br#"42["x","from the refused one"]"#);
    neighbour.expect(r#"42["x","from the refused one"]"#);
    assert_eq!(hostile.get_text(), r#"42["x","from the refused one"]"#);
    neighbour.assert_relays("after connect errors");
}

#[test]
fn bad_requests_get_the_reference_json_errors() {
    let server = hostile_server(&[]);
    let mut neighbour = Sio::connect(&server);
    let cases: &[(&str, &str, (u16, &str))] = &[
        ("GET", "/socket.io/?EIO=4&transport=carrier-pigeon", UNKNOWN_TRANSPORT),
        ("GET", "/socket.io/?EIO=4", UNKNOWN_TRANSPORT),
        ("GET", "/socket.io/?EIO=4&transport=", UNKNOWN_TRANSPORT),
        ("GET", "/socket.io/?EIO=4&transport=Polling", UNKNOWN_TRANSPORT),
        ("GET", "/socket.io/", UNKNOWN_TRANSPORT),
        ("GET", "/socket.io/?EIO=3&transport=polling", UNSUPPORTED_PROTOCOL),
        ("GET", "/socket.io/?transport=polling", UNSUPPORTED_PROTOCOL),
        ("GET", "/socket.io/?EIO=5&transport=polling", UNSUPPORTED_PROTOCOL),
        ("PUT", POLLING, BAD_HANDSHAKE_METHOD),
        ("POST", POLLING, BAD_HANDSHAKE_METHOD),
        ("GET", WEBSOCKET, BAD_REQUEST),
        ("GET", "/socket.io/?EIO=4&transport=polling&sid=nope", UNKNOWN_SID),
        ("POST", "/socket.io/?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAAAAAA", UNKNOWN_SID),
        ("GET", "/socket.io/?EIO=4&transport=polling&sid=%00%00", UNKNOWN_SID),
    ];
    for (method, target, expected) in cases {
        let response = request(&mut server.tcp(), method, target, b"3");
        assert_refused(&response, *expected);
    }
    // A live session under the wrong method, and a WebSocket upgrade asking for polling.
    let mut session = Poller::connected(&server);
    let target = session.target();
    assert_refused(&request(&mut server.tcp(), "PUT", &target, b""), BAD_REQUEST);
    let (response, _) = {
        let mut raw = server.tcp();
        raw.write_all(&upgrade_request(&target, "")).unwrap();
        (read_response(&mut raw).expect("a response"), raw)
    };
    assert_refused(&response, BAD_REQUEST);
    // Refusals leave the session and the neighbour alone.
    session.post_ok(br#"42["x","still here"]"#);
    assert_eq!(session.get_text(), r#"42["x","still here"]"#);
    neighbour.expect(r#"42["x","still here"]"#);
    neighbour.assert_relays("after bad requests");
}

#[test]
fn overlapping_polls_close_the_session() {
    let server = hostile_server(&[]);
    let mut neighbour = Sio::connect(&server);
    let mut hostile = Poller::connected(&server);
    // Two GETs at once on two connections. Whichever the server reads
    // first is held; the other overlaps it and is refused, and the held
    // one then ends with the close packet.
    let target = hostile.target();
    let head = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut second = server.tcp();
    hostile.gets.write_all(head.as_bytes()).unwrap();
    second.write_all(head.as_bytes()).unwrap();
    let first = read_response(&mut hostile.gets).expect("the first GET is answered");
    let second = read_response(&mut second).expect("the second GET is answered");
    let (held, refused) = if first.status == 200 { (first, second) } else { (second, first) };
    assert_eq!(status_body(&held), (200, "1".to_owned()));
    assert_refused(&refused, BAD_REQUEST);
    hostile.assert_closed();
    neighbour.assert_relays("after overlapping polls");
}

#[test]
fn post_over_max_payload_closes_the_session() {
    let server = hostile_server(&["--engineio-max-payload", "1000"]);
    let mut neighbour = Sio::connect(&server);
    let mut hostile = Poller::connected(&server);
    hostile.post_ok(br#"42["x","accepted first"]"#);
    neighbour.expect(r#"42["x","accepted first"]"#);
    assert_eq!(hostile.get_text(), r#"42["x","accepted first"]"#);
    // Exactly maxPayload is fine.
    let fits = format!(r#"42["x","{}"]"#, "a".repeat(990));
    assert_eq!(fits.len(), 1000);
    hostile.post_ok(fits.as_bytes());
    neighbour.expect(&fits);
    assert_eq!(hostile.get_text(), fits);
    let over = format!(r#"42["x","{}"]"#, "a".repeat(991));
    // The reference server's answer: 413 without a body, the session closed.
    let response = hostile.post(over.as_bytes());
    assert_eq!(status_body(&response), (413, String::new()));
    hostile.assert_closed();
    // A WebSocket message over maxPayload is dropped and closes that
    // session (1009, as the reference server's `ws` closes); one at the
    // limit is relayed.
    let mut big = Sio::connect(&server);
    big.send(&fits);
    neighbour.expect(&fits);
    big.send(&over);
    assert_eq!(expect_close(&mut big.ws), Some(1009));
    neighbour.assert_relays("after big posts");
}

#[test]
fn a_second_upgrade_is_refused_and_the_first_goes_on() {
    let server = hostile_server(&[]);
    let mut neighbour = Sio::connect(&server);
    let mut session = Poller::connected(&server);
    let upgrade = format!("{WEBSOCKET}&sid={}", session.sid);
    let mut first = server.ws(&upgrade);
    first.send(Message::text("2probe")).unwrap();
    match next_data(&mut first) {
        Message::Text(text) => assert_eq!(text.as_str(), "3probe"),
        other => panic!("expected 3probe, got {other:?}"),
    }
    // The second WebSocket is accepted by the HTTP layer, then closed.
    let mut second = server.ws(&upgrade);
    assert_eq!(expect_close(&mut second), Some(1008));
    // The polling GET pending during the probe ends with a noop.
    assert_eq!(session.get_text(), "6");
    first.send(Message::text("5")).unwrap();
    // The upgraded session carries on; its relay also proves "5" was read.
    let mut first = Sio { ws: first };
    first.assert_relays("over the upgraded transport");
    neighbour.expect(r#"42["x","over the upgraded transport"]"#);
    // A third, after the upgrade, is refused too, and so is polling.
    let mut third = server.ws(&upgrade);
    assert_eq!(expect_close(&mut third), Some(1008));
    assert_refused(&session.get(), BAD_REQUEST);
    assert_refused(&session.post(b"3"), BAD_REQUEST);
    first.assert_relays("after the third upgrade");
    neighbour.assert_relays("after upgrades");
    // An upgrade naming an unknown sid is closed the same way.
    let mut unknown = server.ws(&format!("{WEBSOCKET}&sid=AAAAAAAAAAAAAAAAAAAAAAAA"));
    assert_eq!(expect_close(&mut unknown), Some(1008));
}

#[test]
fn a_session_that_never_connects_a_namespace_is_closed() {
    let server = hostile_server(&["--socketio-connect-timeout", "300ms"]);
    let mut neighbour = Sio::connect(&server);
    let started = Instant::now();
    let mut idle = Poller::open(&server);
    // The held GET ends with the close packet at the deadline.
    assert_eq!(idle.get_text(), "1");
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
    idle.assert_closed();
    let mut idle_ws = server.ws(WEBSOCKET);
    assert!(matches!(next_data(&mut idle_ws), Message::Text(t) if t.as_str().starts_with("0{")));
    assert_eq!(expect_close(&mut idle_ws), Some(1000));
    // Pings and pongs are no namespace either.
    let mut pinging = Poller::open(&server);
    pinging.post_ok(b"3\x1e6");
    assert_eq!(pinging.get_text(), "1");
    // The neighbour connected in time and is kept.
    neighbour.assert_relays("after idle sessions");
}

#[test]
fn a_missed_pong_closes_only_that_session() {
    let server = hostile_server(&["--engineio-ping-interval", "500ms", "--engineio-ping-timeout", "1s"]);
    let mut neighbour = Sio::connect(&server);
    let mut silent = Poller::connected(&server);
    assert_eq!(silent.get_text(), "2");
    // The neighbour's ping came first: answer it before waiting on the silent one.
    neighbour.assert_relays("during the heartbeat");
    // No pong: after the relay, the next GET is held until the session ends.
    assert_eq!(silent.get_text(), r#"42["x","during the heartbeat"]"#);
    assert_eq!(silent.get_text(), "1");
    silent.assert_closed();
    // The neighbour answers its pings (in `text`) and lives on.
    neighbour.assert_relays("after a missed pong");
}

/// Many tiny POSTs on keep-alive connections, with GETs in between: all are
/// answered, and a session that posts but never polls is cut off once its
/// queue passes --max-queued instead of growing.
#[test]
fn a_flood_of_tiny_polling_requests_stays_bounded() {
    let server = hostile_server(&["--max-queued", "65536"]);
    let mut neighbour = Sio::connect(&server);
    let started = Instant::now();
    let mut flooder = Poller::connected(&server);
    for i in 0..2000 {
        if i % 100 == 99 {
            let event = format!(r#"42["x",{i}]"#);
            flooder.post_ok(event.as_bytes());
            assert_eq!(flooder.get_text(), event);
            neighbour.expect(&event);
        } else {
            flooder.post_ok(if i % 2 == 0 { b"3" } else { b"6\x1e3" });
        }
    }
    // A poller that never polls, in a namespace of its own so that only it
    // receives its relays: its queue reaches --max-queued and it is cut off.
    let mut slow = Poller::open(&server);
    slow.post_ok(b"40/flood,");
    let event = format!(r#"42/flood,["x","{}"]"#, "p".repeat(1000));
    let mut posted = 0;
    let refused = loop {
        let response = slow.post(event.as_bytes());
        if response.status != 200 {
            break response;
        }
        posted += 1;
        assert!(posted < 2000, "the slow poller was never cut off");
    };
    assert_refused(&refused, UNKNOWN_SID);
    assert!((60..=70).contains(&posted), "cut off after {posted} events of ~1 KiB");
    assert_eq!(metric(&server, "soket_slow_consumer_disconnects_total"), 1.0);
    // The flooder and the neighbour are still served.
    flooder.post_ok(br#"42["x","flooder after"]"#);
    assert_eq!(flooder.get_text(), r#"42["x","flooder after"]"#);
    neighbour.expect(r#"42["x","flooder after"]"#);
    neighbour.assert_relays("after the flood");
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
}

#[test]
fn open_sessions_are_counted_in_metrics() {
    let server = hostile_server(&[]);
    let _websocket = Sio::connect(&server);
    let mut polling = Poller::connected(&server);
    assert_eq!(metric(&server, "soket_engineio_sessions"), 2.0);
    assert_eq!(metric(&server, "soket_engineio_sessions_total"), 2.0);
    // The client closes its polling session: it leaves the count before
    // the POST is answered.
    polling.post_ok(b"1");
    assert_eq!(metric(&server, "soket_engineio_sessions"), 1.0);
    assert_eq!(metric(&server, "soket_engineio_sessions_total"), 2.0);
}
