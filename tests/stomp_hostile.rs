//! Hostile and careless STOMP clients over loopback, on raw TCP (found by
//! the sniffer) and on the `/stomp` WebSocket endpoint. Each bad input ends
//! in the answer STOMP asks for (an ERROR frame with a `message` header,
//! then the end of the connection; or a MESSAGE on `/user/queue/errors` for
//! a refusal the client subscribed to), and afterwards the rest of the world
//! (a legacy TCP user and a well-behaved STOMP user) keeps chatting.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};

use common::*;
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

/// The most frames a client skips while waiting for the one it expects.
const MAX_SKIPPED: usize = 10_000;

/// A frame's headers as a test writes them.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// One frame as the server sent it. Header values are kept as on the wire
/// (still escaped), so tests see the escaping itself.
#[derive(Debug)]
struct Received {
    command: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    /// The first header called `name`, as sent.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("a JSON body: {e}: {self:?}"))
    }

    fn assert_error(&self, wanted: &str) {
        assert_eq!(self.command, "ERROR", "expected an ERROR about {wanted:?}: {self:?}");
        let message = self.header("message").unwrap_or_else(|| panic!("an ERROR has a message header: {self:?}"));
        assert!(message.contains(wanted), "ERROR message {message:?} should say {wanted:?}");
    }
}

/// Splits the next whole frame (after any heart-beat line ends) off `buf`;
/// the number of heart-beats skipped and the frame, or `None` if incomplete.
fn parse_frame(buf: &mut Vec<u8>) -> (usize, Option<Received>) {
    let mut beats = 0;
    loop {
        if buf.first() == Some(&b'\n') {
            buf.remove(0);
            beats += 1;
        } else if buf.starts_with(b"\r\n") {
            buf.drain(..2);
            beats += 1;
        } else {
            break;
        }
    }
    let Some(head_end) = buf.windows(2).position(|w| w == b"\n\n") else {
        return (beats, None);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("server headers are UTF-8");
    let mut lines = head.split('\n');
    let command = lines.next().expect("a command line").to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap_or_else(|| panic!("a header line: {line:?}"));
            (name.to_owned(), value.to_owned())
        })
        .collect();
    let body_start = head_end + 2;
    let length = headers.iter().find(|(n, _)| n == "content-length").map(|(_, v)| v.parse::<usize>().expect("length"));
    let body_end = match length {
        Some(length) => body_start + length,
        None => match buf[body_start..].iter().position(|&b| b == 0) {
            Some(at) => body_start + at,
            None => return (beats, None),
        },
    };
    if buf.len() <= body_end {
        return (beats, None);
    }
    assert_eq!(buf[body_end], 0, "a frame ends with NUL");
    let body = buf[body_start..body_end].to_vec();
    buf.drain(..=body_end);
    (beats, Some(Received { command, headers, body }))
}

/// What carries a test client's frames.
enum Link {
    Tcp(TcpStream),
    Ws(Box<Client>),
}

/// A STOMP client written for the tests: it sends exactly the bytes it is
/// given and sees every byte (and heart-beat) the server sends.
struct Stomp {
    link: Link,
    received: Vec<u8>,
    /// Line ends seen between frames: the server's heart-beats.
    heart_beats: usize,
    ended: bool,
}

impl Stomp {
    /// A raw TCP connection that has sent nothing yet.
    fn tcp(server: &TestServer) -> Stomp {
        Stomp { link: Link::Tcp(server.tcp()), received: Vec::new(), heart_beats: 0, ended: false }
    }

    /// A WebSocket on `/stomp` offering `subprotocols`, upgraded; the
    /// subprotocol the server chose.
    fn ws_offering(server: &TestServer, subprotocols: &str) -> (Stomp, Option<String>) {
        let mut request = server.url("/stomp").into_client_request().expect("a request");
        request.headers_mut().insert("Sec-WebSocket-Protocol", subprotocols.parse().expect("a header value"));
        let (ws, response) = tungstenite::client::client(request, server.tcp()).expect("the /stomp upgrade");
        assert_eq!(response.status(), 101);
        let chosen = response.headers().get("Sec-WebSocket-Protocol").map(|v| v.to_str().expect("ASCII").to_owned());
        let stomp = Stomp { link: Link::Ws(Box::new(ws)), received: Vec::new(), heart_beats: 0, ended: false };
        (stomp, chosen)
    }

    fn ws(server: &TestServer) -> Stomp {
        Stomp::ws_offering(server, "v12.stomp, v11.stomp, v10.stomp").0
    }

    /// CONNECTs as `login` over raw TCP at 1.2 and waits for CONNECTED.
    fn login(server: &TestServer, login: &str) -> Stomp {
        let mut client = Stomp::tcp(server);
        client.send_raw(connect_frame(login).as_bytes());
        client.expect("CONNECTED");
        client
    }

    /// The same over the WebSocket endpoint.
    fn login_ws(server: &TestServer, login: &str) -> Stomp {
        let mut client = Stomp::ws(server);
        client.send_raw(connect_frame(login).as_bytes());
        client.expect("CONNECTED");
        client
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        match &mut self.link {
            Link::Tcp(stream) => stream.write_all(bytes).expect("send"),
            Link::Ws(ws) => {
                let message = match std::str::from_utf8(bytes) {
                    Ok(text) => Message::text(text),
                    Err(_) => Message::binary(bytes.to_vec()),
                };
                ws.send(message).expect("send");
            }
        }
    }

    /// Sends `command` with `headers` and `body` (no `content-length` added).
    fn send(&mut self, command: &str, headers: &[(&str, &str)], body: &str) {
        self.send_raw(frame(command, headers, body).as_bytes());
    }

    /// Reads more from the server; false once it has closed.
    fn fill(&mut self) -> bool {
        match &mut self.link {
            Link::Tcp(stream) => {
                let mut buf = [0u8; 16 * 1024];
                match stream.read(&mut buf) {
                    Ok(0) => false,
                    Ok(n) => {
                        self.received.extend_from_slice(&buf[..n]);
                        true
                    }
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => false,
                    Err(e) => panic!("no frame and no close within {WAIT:?}: {e}"),
                }
            }
            Link::Ws(ws) => loop {
                match ws.read() {
                    Ok(Message::Text(text)) => {
                        self.received.extend_from_slice(text.as_bytes());
                        return true;
                    }
                    Ok(Message::Binary(bytes)) => {
                        self.received.extend_from_slice(&bytes);
                        return true;
                    }
                    Ok(Message::Close(_)) => return false,
                    Ok(_) => continue,
                    Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return false,
                    Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::ConnectionReset => return false,
                    Err(e) => panic!("no frame and no close within {WAIT:?}: {e}"),
                }
            },
        }
    }

    /// The next frame, or `None` once the server has closed.
    fn next(&mut self) -> Option<Received> {
        loop {
            let (beats, frame) = parse_frame(&mut self.received);
            self.heart_beats += beats;
            if frame.is_some() {
                return frame;
            }
            if self.ended || !self.fill() {
                self.ended = true;
                assert!(self.received.is_empty(), "the server closed inside a frame: {:?}", self.received);
                return None;
            }
        }
    }

    fn frame(&mut self) -> Received {
        self.next().expect("a frame before the server closed")
    }

    /// The next frame, which must be a `command`.
    fn expect(&mut self, command: &str) -> Received {
        let frame = self.frame();
        assert_eq!(frame.command, command, "{frame:?}");
        frame
    }

    /// The next frame is an ERROR saying `wanted`, and then the server closes.
    fn expect_error(&mut self, wanted: &str) -> Received {
        let error = self.frame();
        error.assert_error(wanted);
        self.assert_closed();
        error
    }

    /// The server closes the connection, sending no more frames.
    fn assert_closed(&mut self) {
        if let Some(frame) = self.next() {
            panic!("expected the connection to end, got {frame:?}");
        }
    }

    /// The next frame is the RECEIPT for `id`.
    fn expect_receipt(&mut self, id: &str) {
        let receipt = self.expect("RECEIPT");
        assert_eq!(receipt.header("receipt-id"), Some(id), "{receipt:?}");
    }

    /// Subscribes `id` to `destination` (with extra headers) and waits for its receipt.
    fn subscribe_with(&mut self, id: &str, destination: &str, extra: &[(&str, &str)]) {
        let receipt = format!("sub-{id}");
        let mut headers = vec![("id", id), ("destination", destination), ("receipt", receipt.as_str())];
        headers.extend_from_slice(extra);
        self.send("SUBSCRIBE", &headers, "");
        self.expect_receipt(&receipt);
    }

    fn subscribe(&mut self, id: &str, destination: &str) {
        self.subscribe_with(id, destination, &[]);
    }

    /// SENDs `text` to `destination`.
    fn say(&mut self, destination: &str, text: &str) {
        self.send("SEND", &[("destination", destination), ("content-type", "text/plain")], text);
    }

    /// Reads until a MESSAGE whose body is `text`, skipping other MESSAGEs
    /// (and failing on anything else).
    fn message(&mut self, text: &str) -> Received {
        for _ in 0..MAX_SKIPPED {
            let frame = self.frame();
            assert_eq!(frame.command, "MESSAGE", "waiting for {text:?}: {frame:?}");
            if frame.body == text.as_bytes() {
                return frame;
            }
        }
        panic!("no MESSAGE {text:?} within {MAX_SKIPPED} frames");
    }

    /// Reads heart-beats (and nothing else) until `count` have come.
    fn await_heart_beats(&mut self, count: usize) {
        loop {
            let (beats, frame) = parse_frame(&mut self.received);
            self.heart_beats += beats;
            assert!(frame.is_none(), "only heart-beats were expected: {frame:?}");
            if self.heart_beats >= count {
                return;
            }
            assert!(self.fill(), "the server closed a connection it owes heart-beats");
        }
    }

    /// Half-closes a TCP client: the server sees the end of its stream.
    fn finish_sending(&mut self) {
        match &mut self.link {
            Link::Tcp(stream) => stream.shutdown(Shutdown::Write).expect("half-close"),
            Link::Ws(_) => panic!("a WebSocket client ends with a close frame"),
        }
    }
}

/// A frame as a client writes it.
fn frame(command: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut text = format!("{command}\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}:{value}\n"));
    }
    text.push('\n');
    text.push_str(body);
    text.push('\0');
    text
}

fn connect_frame(login: &str) -> String {
    frame("CONNECT", &[("accept-version", "1.2"), ("host", "soket"), ("login", login)], "")
}

/// A world for a hostile client to disturb: legacy user `lee` over TCP and
/// STOMP user `sam` over TCP, subscribed to the lobby.
struct World {
    lee: Legacy,
    sam: Stomp,
    round: usize,
    /// Last, so the clients are gone when it shuts down (dropped in order).
    server: TestServer,
}

impl World {
    fn new(args: &[&str]) -> World {
        let server = hostile_server(args);
        let (lee, _) = Legacy::join(&server, "lee");
        let mut sam = Stomp::login(&server, "sam");
        sam.subscribe("lobby", "/topic/lobby");
        World { lee, sam, round: 0, server }
    }

    /// Proves lee and sam still chat both ways (and sam still gets its own
    /// room messages).
    fn still_chats(&mut self) {
        self.round += 1;
        let from_lee = format!("lee still here {}", self.round);
        self.lee.send(&from_lee);
        let got = self.sam.message(&from_lee);
        assert_eq!(got.header("from"), Some("lee"), "{got:?}");
        assert_eq!(got.header("destination"), Some("/topic/lobby"), "{got:?}");

        let from_sam = format!("sam still here {}", self.round);
        self.sam.say("/topic/lobby", &from_sam);
        let wanted = format!("#lobby sam : {from_sam}");
        self.lee.line_where(|line| line == wanted);
        let echo = self.sam.message(&from_sam);
        assert_eq!(echo.header("from"), Some("sam"), "{echo:?}");
    }

    /// A hostile client over raw TCP, CONNECTed as `login`.
    fn hostile(&self, login: &str) -> Stomp {
        Stomp::login(&self.server, login)
    }

    fn hostile_ws(&self, login: &str) -> Stomp {
        Stomp::login_ws(&self.server, login)
    }
}

// The frame decoder's limits and errors.

#[test]
fn a_frame_over_max_message_is_an_error_and_closes() {
    let mut world = World::new(&["--max-message", "4096"]);
    let mut eve = world.hostile("eve");
    eve.say("/topic/lobby", &"x".repeat(5000));
    eve.expect_error("frame too large");
    world.still_chats();
}

#[test]
fn a_frame_over_max_message_in_a_websocket_message_is_an_error_and_closes() {
    let mut world = World::new(&["--max-message", "4096"]);
    let mut eve = world.hostile_ws("eve");
    // Small enough for the WebSocket, announcing too much for STOMP.
    eve.send_raw(b"SEND\ndestination:/topic/lobby\ncontent-length:5000\n\nshort\0");
    eve.expect_error("frame too large");
    world.still_chats();
}

#[test]
fn too_many_headers_is_an_error_and_closes() {
    let mut world = World::new(&["--stomp-max-headers", "8"]);
    let mut eve = world.hostile("eve");
    let names: Vec<String> = (0..9).map(|i| format!("x-{i}")).collect();
    let mut headers: Vec<(&str, &str)> = vec![("destination", "/topic/lobby")];
    headers.extend(names.iter().map(|n| (n.as_str(), "v")));
    eve.send("SEND", &headers, "never delivered");
    eve.expect_error("too many headers");
    world.still_chats();
}

#[test]
fn a_header_line_over_the_limit_is_an_error_and_closes() {
    let mut world = World::new(&["--stomp-max-header-line", "64"]);
    let mut eve = world.hostile("eve");
    let long = "v".repeat(100);
    eve.send("SEND", &[("destination", "/topic/lobby"), ("x-long", &long)], "never delivered");
    eve.expect_error("header line too long");
    world.still_chats();
}

#[test]
fn an_unterminated_frame_then_eof_ends_the_connection_and_delivers_nothing() {
    let mut world = World::new(&[]);
    let mut eve = world.hostile("eve");
    eve.send_raw(b"SEND\ndestination:/topic/lobby\n\nhalf a frame");
    eve.finish_sending();
    eve.assert_closed();
    // eve's name is free again, and the half frame reached nobody.
    world.lee.line_where(|line| line == "3$*$*3sam$");
    world.lee.send("after eve");
    assert_eq!(world.sam.frame().body_text(), "after eve");
    world.still_chats();
    let _eve_again = Stomp::login(&world.server, "eve");
}

#[test]
fn a_content_length_shorter_than_the_body_is_a_missing_nul() {
    let mut world = World::new(&[]);
    let mut eve = world.hostile("eve");
    eve.send_raw(b"SEND\ndestination:/topic/lobby\ncontent-length:2\n\nhello\0");
    eve.expect_error("not terminated by NUL");
    world.still_chats();
}

#[test]
fn a_content_length_longer_than_the_body_waits_for_it_then_eof_ends_it() {
    let mut world = World::new(&[]);
    let mut eve = world.hostile("eve");
    eve.subscribe("lobby", "/topic/lobby");
    eve.send_raw(b"SEND\ndestination:/topic/lobby\ncontent-length:50\n\nhello\0 and some more");
    world.still_chats();
    // eve is still served while its frame waits for the rest of its body.
    eve.message(&format!("lee still here {}", world.round));
    eve.message(&format!("sam still here {}", world.round));
    eve.finish_sending();
    eve.assert_closed();
    world.still_chats();
}

#[test]
fn a_content_length_that_arrives_whole_may_carry_nuls() {
    let mut world = World::new(&[]);
    let mut eve = world.hostile("eve");
    eve.send_raw(b"SEND\ndestination:/topic/lobby\ncontent-length:9\nreceipt:r\n\nhi\0");
    eve.send_raw(b"there\0\0");
    eve.expect_receipt("r");
    let got = world.sam.frame();
    assert_eq!(got.body, b"hi\0there\0", "{got:?}");
    world.still_chats();
}

#[test]
fn an_overflowing_content_length_is_an_error_and_closes() {
    let mut world = World::new(&[]);
    let mut eve = world.hostile("eve");
    eve.send_raw(b"SEND\ndestination:/topic/lobby\ncontent-length:99999999999999999999999\n\nx\0");
    eve.expect_error("invalid content-length");
    world.still_chats();
}

#[test]
fn a_nul_less_body_is_bounded_by_max_message() {
    let mut world = World::new(&["--max-message", "4096"]);
    let mut eve = world.hostile("eve");
    eve.send_raw(b"SEND\ndestination:/topic/lobby\n\n");
    for _ in 0..5 {
        eve.send_raw(&[b'y'; 1000]);
    }
    eve.expect_error("frame too large");
    world.still_chats();
}

#[test]
fn unknown_commands_are_errors_and_close() {
    let mut world = World::new(&[]);
    for (login, bytes) in [
        ("eve", &b"FROB\n\n\0"[..]),
        ("eve2", b"send\ndestination:/topic/lobby\n\nx\0"),
        ("eve3", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        // A server's command from a client.
        ("eve4", b"MESSAGE\ndestination:/topic/lobby\n\nx\0"),
        ("eve5", b"\x00\xff\xfe\n\n\0"),
    ] {
        let mut eve = world.hostile(login);
        eve.send_raw(bytes);
        eve.expect_error("unknown command");
    }
    world.still_chats();
}

#[test]
fn a_stray_carriage_return_between_frames_is_an_error() {
    let mut world = World::new(&[]);
    let mut eve = world.hostile("eve");
    eve.send_raw(b"\r\r");
    eve.expect_error("carriage return");
    world.still_chats();
}

#[test]
fn frames_pipelined_after_a_bad_one_are_not_acted_on() {
    let mut world = World::new(&[]);
    let mut eve = world.hostile("eve");
    eve.send_raw(
        b"SUBSCRIBE\nid:1\ndestination:/topic/lobby\nack:sometimes\n\n\0SEND\ndestination:/topic/lobby\n\nleak\0",
    );
    eve.expect_error("ack must be");
    // sam's next lobby message is lee's, not eve's pipelined SEND.
    world.lee.send("after eve");
    let next = world.sam.frame();
    assert_eq!(next.body_text(), "after eve", "{next:?}");
    world.still_chats();
}

// CONNECT.

#[test]
fn frames_before_connect_are_an_error_and_close() {
    let mut world = World::new(&[]);
    let mut eve = Stomp::ws(&world.server);
    eve.say("/topic/lobby", "before connect");
    eve.expect_error("CONNECT");
    world.still_chats();
}

#[test]
fn a_connection_that_never_connects_is_cut_off() {
    let mut world = World::new(&["--handshake-timeout", "300ms"]);
    let mut eve = Stomp::ws(&world.server);
    eve.expect_error("no CONNECT frame in time");
    world.still_chats();
}

#[test]
fn a_second_connect_is_an_error_and_closes() {
    let mut world = World::new(&[]);
    let mut eve = world.hostile("eve");
    eve.send_raw(connect_frame("eve").as_bytes());
    eve.expect_error("already connected");
    world.lee.line_where(|line| line == "3$*$*3sam$");
    world.still_chats();
}

#[test]
fn connect_without_login_is_an_error_and_closes() {
    let mut world = World::new(&[]);
    for mut eve in [Stomp::tcp(&world.server), Stomp::ws(&world.server)] {
        eve.send("CONNECT", &[("accept-version", "1.2"), ("host", "soket")], "");
        eve.expect_error("login");
    }
    world.still_chats();
}

#[test]
fn an_invalid_login_is_an_error_and_closes() {
    let mut world = World::new(&[]);
    for login in ["a..b", "", "has space", ".dot", &"n".repeat(33)] {
        let mut eve = Stomp::tcp(&world.server);
        eve.send_raw(connect_frame(login).as_bytes());
        let error = eve.expect_error("a name is 1 to 32");
        assert!(error.body_text().contains("name"), "{error:?}");
    }
    world.still_chats();
}

#[test]
fn a_taken_login_is_an_error_and_the_owner_keeps_it() {
    let mut world = World::new(&[]);
    for (taken, mut eve) in [("lee", Stomp::tcp(&world.server)), ("sam", Stomp::ws(&world.server))] {
        eve.send_raw(connect_frame(taken).as_bytes());
        eve.expect_error("taken");
    }
    // A legacy user cannot take a STOMP user's name either.
    let mut copycat = Legacy::connect(&world.server);
    copycat.send("sam");
    assert!(copycat.line().starts_with("!ERR name_taken"));
    world.still_chats();
}

#[test]
fn an_unsupported_version_is_an_error_naming_the_supported_ones() {
    let mut world = World::new(&[]);
    for mut eve in [Stomp::tcp(&world.server), Stomp::ws(&world.server)] {
        eve.send("CONNECT", &[("accept-version", "2.0,3.1"), ("login", "eve")], "");
        let error = eve.expect_error("versions");
        assert_eq!(error.header("version"), Some("1.0,1.1,1.2"), "{error:?}");
    }
    world.still_chats();
}

#[test]
fn a_bad_heart_beat_header_is_an_error_and_closes() {
    let mut world = World::new(&[]);
    for value in ["abc", "10", "10,", "-1,0", "1,2,3", "99999999999,0", " 1,1"] {
        let mut eve = Stomp::tcp(&world.server);
        eve.send("CONNECT", &[("accept-version", "1.1,1.2"), ("heart-beat", value), ("login", "eve")], "");
        eve.expect_error("heart-beat");
    }
    world.still_chats();
}

#[test]
fn connected_says_the_version_heart_beat_and_user() {
    let server = hostile_server(&["--stomp-heartbeat", "0,0"]);
    let mut alice = Stomp::tcp(&server);
    alice.send("STOMP", &[("accept-version", "1.0,1.1"), ("host", "soket"), ("login", "alice")], "");
    let connected = alice.expect("CONNECTED");
    assert_eq!(connected.header("version"), Some("1.1"));
    assert_eq!(connected.header("heart-beat"), Some("0,0"));
    assert_eq!(connected.header("user-name"), Some("alice"));
    // Without accept-version a client speaks 1.0, whose CONNECTED has no version.
    let mut bob = Stomp::tcp(&server);
    bob.send("CONNECT", &[("login", "bob")], "");
    let connected = bob.expect("CONNECTED");
    assert_eq!(connected.header("version"), None, "{connected:?}");
}

// Subscriptions and acknowledgements.

#[test]
fn subscriptions_past_the_limit_are_an_error_and_close() {
    let mut world = World::new(&["--stomp-max-subscriptions", "4"]);
    let mut eve = world.hostile("eve");
    for id in 0..4 {
        eve.subscribe(&format!("s{id}"), "/user/queue/private");
    }
    eve.send("SUBSCRIBE", &[("id", "s4"), ("destination", "/user/queue/private")], "");
    eve.expect_error("too many subscriptions");
    world.still_chats();
}

#[test]
fn a_flood_of_subscribe_ids_in_one_write_is_cut_at_the_limit() {
    let mut world = World::new(&["--stomp-max-subscriptions", "64"]);
    let mut eve = world.hostile("eve");
    let flood: String = (0..10_000)
        .map(|id| frame("SUBSCRIBE", &[("id", &id.to_string()), ("destination", "/topic/lobby")], ""))
        .collect();
    eve.send_raw(flood.as_bytes());
    eve.expect_error("too many subscriptions");
    world.still_chats();
}

#[test]
fn a_duplicate_subscription_id_is_an_error_and_closes() {
    let mut world = World::new(&[]);
    let mut eve = world.hostile("eve");
    eve.subscribe("same", "/topic/lobby");
    eve.send("SUBSCRIBE", &[("id", "same"), ("destination", "/user/queue/private"), ("receipt", "r")], "");
    let error = eve.expect_error("in use");
    assert_eq!(error.header("receipt-id"), Some("r"), "{error:?}");
    world.still_chats();
}

#[test]
fn an_invalid_ack_mode_is_an_error_and_closes() {
    let mut world = World::new(&[]);
    let mut eve = world.hostile("eve");
    eve.send("SUBSCRIBE", &[("id", "1"), ("destination", "/topic/lobby"), ("ack", "CLIENT")], "");
    eve.expect_error("ack must be");
    world.still_chats();
}

#[test]
fn a_bad_destination_without_an_errors_subscription_is_an_error_and_closes() {
    let mut world = World::new(&[]);
    for (login, destination) in
        [("eve", "/topic/a..b"), ("eve2", "/queue/x"), ("eve3", "/topic/"), ("eve4", "/user/bob")]
    {
        let mut eve = world.hostile(login);
        eve.send("SUBSCRIBE", &[("id", "1"), ("destination", destination)], "");
        eve.expect_error("a room is");
    }
    world.still_chats();
}

#[test]
fn refusals_go_to_the_errors_queue_of_a_client_that_subscribed_there() {
    let mut world = World::new(&[]);
    let mut eve = world.hostile("eve");
    eve.subscribe("errors", "/user/queue/errors");
    let refusals: [(&str, Headers<'_>, &str, &str); 5] = [
        ("SUBSCRIBE", &[("id", "1"), ("destination", "/topic/a..b"), ("receipt", "r1")], "", "room_invalid"),
        ("SEND", &[("destination", "/queue/x"), ("receipt", "r2")], "hi", "unknown_destination"),
        ("SEND", &[("destination", "/topic/presence"), ("receipt", "r3")], "hi", "read_only"),
        ("SEND", &[("destination", "/user/nobody"), ("receipt", "r4")], "hi", "no_such_user"),
        ("UNSUBSCRIBE", &[("id", "nope"), ("receipt", "r5")], "", "no_such_subscription"),
    ];
    for (i, (command, headers, body, code)) in refusals.iter().enumerate() {
        eve.send(command, headers, body);
        let refusal = eve.expect("MESSAGE");
        assert_eq!(refusal.header("destination"), Some("/user/queue/errors"), "{refusal:?}");
        assert_eq!(refusal.header("subscription"), Some("errors"), "{refusal:?}");
        let json = refusal.json();
        assert_eq!(json["code"], *code, "{json}");
        assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()), "{json}");
        assert_eq!(json["receipt-id"], format!("r{}", i + 1), "{json}");
    }
    // A body that is not UTF-8 is refused too (binary over the stream).
    eve.send_raw(b"SEND\ndestination:/topic/lobby\n\n\xff\xfe\0");
    assert_eq!(eve.expect("MESSAGE").json()["code"], "bad_body");
    // Still connected and served.
    eve.subscribe("lobby", "/topic/lobby");
    world.still_chats();
    eve.message(&format!("lee still here {}", world.round));
}

#[test]
fn a_client_mode_consumer_past_max_unacked_is_cut_off_and_others_are_not() {
    let mut world = World::new(&["--stomp-max-unacked", "3"]);
    let mut eve = world.hostile("eve");
    eve.subscribe_with("lobby", "/topic/lobby", &[("ack", "client")]);
    for i in 0..4 {
        world.lee.send(&format!("m{i}"));
    }
    for i in 0..3 {
        let message = eve.message(&format!("m{i}"));
        assert_eq!(message.header("ack"), message.header("message-id"), "{message:?}");
    }
    eve.expect_error("too many unacknowledged messages");
    for i in 0..4 {
        world.sam.message(&format!("m{i}"));
    }
    world.still_chats();
}

#[test]
fn a_client_ack_is_cumulative_and_a_client_individual_one_is_not() {
    let mut world = World::new(&["--stomp-max-unacked", "2"]);
    let mut cumulative = world.hostile("cumulative");
    let mut individual = world.hostile("individual");
    cumulative.subscribe_with("lobby", "/topic/lobby", &[("ack", "client")]);
    individual.subscribe_with("lobby", "/topic/lobby", &[("ack", "client-individual")]);
    world.lee.send("a0");
    world.lee.send("a1");
    // Each holds two and acknowledges the second.
    for client in [&mut cumulative, &mut individual] {
        client.message("a0");
        let second = client.message("a1");
        assert_eq!(second.header("ack"), second.header("message-id"));
        client.send("ACK", &[("id", second.header("ack").expect("an ack header")), ("receipt", "acked")], "");
        client.expect_receipt("acked");
    }
    // `client` settled both, so two more fit; `client-individual` still
    // owes a0, so the second new one is one too many.
    world.lee.send("b0");
    world.lee.send("b1");
    cumulative.message("b0");
    cumulative.message("b1");
    individual.message("b0");
    individual.expect_error("too many unacknowledged messages");
    world.still_chats();
}

#[test]
fn acks_for_ids_never_handed_out_are_ignored() {
    let mut world = World::new(&[]);
    let mut eve = world.hostile("eve");
    eve.subscribe_with("lobby", "/topic/lobby", &[("ack", "client")]);
    for id in ["999999", "not-a-number", "", "18446744073709551616"] {
        eve.send("ACK", &[("id", id), ("receipt", "r")], "");
        eve.expect_receipt("r");
        eve.send("NACK", &[("id", id), ("receipt", "r")], "");
        eve.expect_receipt("r");
    }
    eve.send("ACK", &[("receipt", "r")], "");
    eve.expect_error("id header");
    world.still_chats();
}

// Transactions.

#[test]
fn a_transaction_that_never_ends_is_cut_off_and_its_frames_are_dropped() {
    let mut world = World::new(&["--stomp-transaction-timeout", "300ms"]);
    let mut eve = world.hostile("eve");
    eve.send("BEGIN", &[("transaction", "t1"), ("receipt", "b")], "");
    eve.expect_receipt("b");
    eve.send("SEND", &[("destination", "/topic/lobby"), ("transaction", "t1")], "held forever");
    eve.expect_error("transaction stayed open too long");
    world.lee.send("after eve");
    let next = world.sam.frame();
    assert_eq!(next.body_text(), "after eve", "{next:?}");
    world.still_chats();
}

#[test]
fn too_many_open_transactions_is_an_error_and_closes() {
    let mut world = World::new(&["--stomp-max-transactions", "2"]);
    let mut eve = world.hostile("eve");
    for t in ["t1", "t2"] {
        eve.send("BEGIN", &[("transaction", t), ("receipt", t)], "");
        eve.expect_receipt(t);
    }
    eve.send("BEGIN", &[("transaction", "t3")], "");
    eve.expect_error("too many open transactions");
    world.still_chats();
}

#[test]
fn a_duplicate_transaction_is_an_error_and_closes() {
    let mut world = World::new(&[]);
    let mut eve = world.hostile("eve");
    eve.send("BEGIN", &[("transaction", "t1")], "");
    eve.send("BEGIN", &[("transaction", "t1")], "");
    eve.expect_error("already open");
    world.still_chats();
}

#[test]
fn too_many_frames_in_a_transaction_is_an_error_and_closes() {
    let mut world = World::new(&["--stomp-max-transaction-frames", "3"]);
    let mut eve = world.hostile("eve");
    eve.send("BEGIN", &[("transaction", "t1")], "");
    for i in 0..4 {
        eve.send("SEND", &[("destination", "/topic/lobby"), ("transaction", "t1")], &format!("held {i}"));
    }
    eve.expect_error("too many frames in one transaction");
    world.lee.send("after eve");
    assert_eq!(world.sam.frame().body_text(), "after eve");
    world.still_chats();
}

#[test]
fn transactions_holding_more_than_max_queued_bytes_are_an_error_and_close() {
    // Frame size times frames times transactions would allow 160 MiB here.
    let mut world =
        World::new(&["--max-queued", "65536", "--max-message", "1048576", "--stomp-max-transactions", "10"]);
    let mut eve = world.hostile("eve");
    let body = "x".repeat(60_000);
    for t in ["t1", "t2"] {
        eve.send("BEGIN", &[("transaction", t)], "");
        eve.send("SEND", &[("destination", "/topic/lobby"), ("transaction", t)], &body);
    }
    eve.expect_error("transactions hold too many bytes");
    world.still_chats();
}

#[test]
fn commit_or_abort_of_an_unknown_transaction_is_an_error_and_closes() {
    let mut world = World::new(&[]);
    let frames: [(&str, Headers<'_>); 5] = [
        ("COMMIT", &[("transaction", "nope")]),
        ("ABORT", &[("transaction", "nope")]),
        ("COMMIT", &[]),
        ("SEND", &[("destination", "/topic/lobby"), ("transaction", "nope")]),
        ("ACK", &[("id", "1"), ("transaction", "nope")]),
    ];
    for (i, (command, headers)) in frames.iter().enumerate() {
        let mut eve = world.hostile(&format!("eve{i}"));
        eve.send(command, headers, "");
        eve.expect_error("transaction");
    }
    world.still_chats();
}

#[test]
fn a_committed_transaction_delivers_its_sends_at_commit_and_an_aborted_one_never() {
    let mut world = World::new(&[]);
    let mut ann = world.hostile("ann");
    ann.send("BEGIN", &[("transaction", "t1")], "");
    ann.send("BEGIN", &[("transaction", "t2")], "");
    ann.send("SEND", &[("destination", "/topic/lobby"), ("transaction", "t1")], "committed");
    ann.send("SEND", &[("destination", "/user/lee"), ("transaction", "t1")], "privately committed");
    ann.send("SEND", &[("destination", "/topic/lobby"), ("transaction", "t2")], "aborted");
    ann.send("ABORT", &[("transaction", "t2"), ("receipt", "aborted")], "");
    ann.expect_receipt("aborted");
    world.lee.send("before commit");
    assert_eq!(world.sam.frame().body_text(), "before commit");
    ann.send("COMMIT", &[("transaction", "t1"), ("receipt", "committed")], "");
    ann.expect_receipt("committed");
    let committed = world.sam.frame();
    assert_eq!((committed.body_text().as_str(), committed.header("from")), ("committed", Some("ann")));
    world.lee.line_where(|line| line == "#lobby ann : committed");
    assert_eq!(world.lee.line(), "ann : privately committed");
    world.still_chats();
}

#[test]
fn an_ack_in_a_transaction_counts_only_at_commit() {
    let mut world = World::new(&["--stomp-max-unacked", "2"]);
    let mut pending = world.hostile("pending");
    let mut committed = world.hostile("committed");
    let mut aborted = world.hostile("aborted");
    for client in [&mut pending, &mut committed, &mut aborted] {
        client.subscribe_with("lobby", "/topic/lobby", &[("ack", "client")]);
    }
    world.lee.send("one");
    world.lee.send("two");
    for (client, end) in [(&mut pending, None), (&mut committed, Some("COMMIT")), (&mut aborted, Some("ABORT"))] {
        client.message("one");
        let two = client.message("two");
        // Cumulative: this ACK settles both, once it counts.
        let ack = two.header("ack").expect("an ack header");
        client.send("BEGIN", &[("transaction", "t")], "");
        match end {
            Some(end) => {
                client.send("ACK", &[("id", ack), ("transaction", "t")], "");
                client.send(end, &[("transaction", "t"), ("receipt", "done")], "");
            }
            None => client.send("ACK", &[("id", ack), ("transaction", "t"), ("receipt", "done")], ""),
        }
        client.expect_receipt("done");
    }
    world.lee.send("three");
    world.lee.send("four");
    committed.message("three");
    committed.message("four");
    pending.expect_error("too many unacknowledged messages");
    aborted.expect_error("too many unacknowledged messages");
    world.still_chats();
}

// Heart-beats.

#[test]
fn a_client_that_misses_its_heart_beats_is_cut_off_and_the_server_sends_its_own() {
    let mut world = World::new(&["--stomp-heartbeat", "100ms,100ms"]);
    let mut quiet = Stomp::tcp(&world.server);
    quiet.send("CONNECT", &[("accept-version", "1.2"), ("heart-beat", "100,100"), ("login", "quiet")], "");
    let connected = quiet.expect("CONNECTED");
    assert_eq!(connected.header("heart-beat"), Some("100,100"));
    let started = std::time::Instant::now();
    // Silence: the server's heart-beats come, then the cut.
    quiet.expect_error("no heart-beat from the client in time");
    let waited = started.elapsed();
    assert!(quiet.heart_beats >= 3, "the server heart-beats every 100ms: {} in {waited:?}", quiet.heart_beats);
    assert!(waited < std::time::Duration::from_secs(5), "cut off after {waited:?}");
    world.still_chats();
}

#[test]
fn a_client_that_sends_its_heart_beats_stays_connected() {
    let mut world = World::new(&["--stomp-heartbeat", "100ms,100ms"]);
    let mut lively = Stomp::ws(&world.server);
    lively.send("CONNECT", &[("accept-version", "1.2"), ("heart-beat", "100,100"), ("login", "lively")], "");
    lively.expect("CONNECTED");
    lively.subscribe("lobby", "/topic/lobby");
    // Answer each of the server's heart-beats (WebSocket messages of one
    // `\n`) with one of ours, well past the server's tolerance (1.2 s).
    let mut answered = 0;
    while answered < 16 {
        assert!(lively.fill(), "the server closed a client that heart-beats");
        while let Some(at) = lively.received.iter().position(|&b| b == b'\n') {
            assert_eq!(lively.received[..=at], *b"\n", "only heart-beats arrive");
            lively.received.drain(..=at);
            lively.send_raw(b"\n");
            answered += 1;
        }
    }
    world.still_chats();
    lively.message(&format!("lee still here {}", world.round));
}

#[test]
fn heart_beats_are_off_at_1_0_and_when_the_client_sends_none() {
    let server = hostile_server(&["--stomp-heartbeat", "100ms,100ms"]);
    let mut old = Stomp::tcp(&server);
    old.send("CONNECT", &[("heart-beat", "100,100"), ("login", "old")], "");
    assert_eq!(old.expect("CONNECTED").header("heart-beat"), None);
    let mut none = Stomp::tcp(&server);
    none.send("CONNECT", &[("accept-version", "1.2"), ("heart-beat", "0,0"), ("login", "none")], "");
    assert_eq!(none.expect("CONNECTED").header("heart-beat"), Some("100,100"));
    // A client that wants heart-beats but sends none is the clock: well past
    // the server's tolerance (1.2 s) all three are still served.
    let mut clock = Stomp::tcp(&server);
    clock.send("CONNECT", &[("accept-version", "1.2"), ("heart-beat", "0,100"), ("login", "clock")], "");
    clock.expect("CONNECTED");
    clock.await_heart_beats(15);
    for client in [&mut old, &mut none, &mut clock] {
        client.send("SUBSCRIBE", &[("id", "1"), ("destination", "/user/queue/private"), ("receipt", "alive")], "");
        client.expect_receipt("alive");
    }
    assert_eq!(old.heart_beats + none.heart_beats, 0, "neither asked for heart-beats");
}

// The sniffer and the byte stream.

#[test]
fn a_legacy_user_called_connect_is_a_legacy_user() {
    let mut world = World::new(&[]);
    // Its name alone: the flush delay decides.
    let mut connect = Legacy::connect(&world.server);
    connect.send("CONNECT");
    assert!(connect.line().starts_with("3$*$*3"));
    connect.send("hello from CONNECT");
    world.lee.line_where(|line| line == "#lobby CONNECT : hello from CONNECT");
    let got = world.sam.message("hello from CONNECT");
    assert_eq!(got.header("from"), Some("CONNECT"));
    // Its name and a first message in one write: the second line has no `:`.
    let mut stomp = Legacy::connect(&world.server);
    stomp.send_raw(b"STOMP\nhello from STOMP\n");
    assert!(stomp.line().starts_with("3$*$*3"));
    world.sam.message("hello from STOMP");
    world.still_chats();
}

#[test]
fn frames_split_byte_by_byte_across_writes_work() {
    let mut world = World::new(&["--legacy-flush-ms", "10000"]);
    let mut slow = Stomp::tcp(&world.server);
    let mut bytes = connect_frame("slow").into_bytes();
    bytes.extend_from_slice(frame("SUBSCRIBE", &[("id", "1"), ("destination", "/topic/lobby")], "").as_bytes());
    bytes
        .extend_from_slice(b"SEND\r\ndestination:/topic/lobby\r\ncontent-length:4\r\nreceipt:sent\r\n\r\nbyte\0\n\r\n");
    for byte in bytes {
        slow.send_raw(&[byte]);
    }
    slow.expect("CONNECTED");
    slow.message("byte");
    slow.expect_receipt("sent");
    world.sam.message("byte");
    world.still_chats();
}

#[test]
fn several_frames_in_one_write_work() {
    let mut world = World::new(&[]);
    let mut quick = Stomp::tcp(&world.server);
    let mut bytes = connect_frame("quick");
    bytes.push_str(&frame("SUBSCRIBE", &[("id", "1"), ("destination", "/topic/lobby")], ""));
    bytes.push_str("\n\n");
    bytes.push_str(&frame("SEND", &[("destination", "/topic/lobby")], "one"));
    bytes.push_str(&frame("SEND", &[("destination", "/topic/lobby"), ("receipt", "two")], "two"));
    bytes.push_str(&frame("DISCONNECT", &[("receipt", "bye")], ""));
    quick.send_raw(bytes.as_bytes());
    quick.expect("CONNECTED");
    quick.message("one");
    quick.message("two");
    quick.expect_receipt("two");
    quick.expect_receipt("bye");
    quick.assert_closed();
    world.sam.message("one");
    world.sam.message("two");
    world.still_chats();
}

#[test]
fn crlf_line_ends_work() {
    let mut world = World::new(&[]);
    let mut windows = Stomp::tcp(&world.server);
    windows.send_raw(b"CONNECT\r\naccept-version:1.2\r\nlogin:windows\r\n\r\n\0\r\n");
    windows.expect("CONNECTED");
    windows.send_raw(b"SUBSCRIBE\r\nid:1\r\ndestination:/topic/lobby\r\nreceipt:s\r\n\r\n\0\r\n");
    windows.expect_receipt("s");
    windows.send_raw(b"SEND\r\ndestination:/topic/lobby\r\n\r\ncrlf\0\r\n");
    windows.message("crlf");
    world.sam.message("crlf");
    world.still_chats();
}

#[test]
fn a_repeated_header_counts_once_the_first_time() {
    let mut world = World::new(&[]);
    let mut twice = world.hostile("twice");
    twice.send_raw(
        b"SUBSCRIBE\nid:first\nid:second\ndestination:/topic/lobby\ndestination:/topic/other\nreceipt:s\n\n\0",
    );
    twice.expect_receipt("s");
    twice.send_raw(b"SEND\ndestination:/topic/lobby\ndestination:/user/lee\n\nto the lobby\0");
    let echo = twice.message("to the lobby");
    assert_eq!(echo.header("subscription"), Some("first"));
    world.lee.line_where(|line| line == "#lobby twice : to the lobby");
    world.sam.message("to the lobby");
    world.still_chats();
}

/// CONNECTs at `version` (in its own write) and subscribes with the raw
/// `id` header value; the `subscription` header of the MESSAGE that follows.
fn subscription_header_at(world: &mut World, login: &str, version: &str, raw_id: &str) -> String {
    let mut client = Stomp::tcp(&world.server);
    client.send("CONNECT", &[("accept-version", version), ("login", login)], "");
    client.expect("CONNECTED");
    client.send("SUBSCRIBE", &[("id", raw_id), ("destination", "/topic/lobby"), ("receipt", "s")], "");
    client.expect_receipt("s");
    let text = format!("for {login}");
    world.lee.send(&text);
    client.message(&text).header("subscription").expect("a subscription header").to_owned()
}

#[test]
fn header_escaping_follows_the_version() {
    let mut world = World::new(&[]);
    // 1.2 and 1.1 unescape `\c` to `:` and escape it back.
    assert_eq!(subscription_header_at(&mut world, "v12", "1.2", r"a\cb\\c"), r"a\cb\\c");
    assert_eq!(subscription_header_at(&mut world, "v11", "1.1", r"a\cb\nc"), r"a\cb\nc");
    assert_eq!(subscription_header_at(&mut world, "v12r", "1.2", r"a\rb"), r"a\rb");
    // 1.0 escapes nothing: the bytes come back as sent.
    assert_eq!(subscription_header_at(&mut world, "v10", "1.0", r"a:b\c"), r"a:b\c");
    // `\r` is 1.2's alone, and an undefined escape is fatal.
    for (login, version, raw_id) in [("bad11", "1.1", r"a\rb"), ("bad12", "1.2", r"a\tb")] {
        let mut client = Stomp::tcp(&world.server);
        client.send("CONNECT", &[("accept-version", version), ("login", login)], "");
        client.expect("CONNECTED");
        client.send("SUBSCRIBE", &[("id", raw_id), ("destination", "/topic/lobby")], "");
        client.expect_error("invalid header escape");
    }
    world.still_chats();
}

#[test]
fn header_escaping_follows_a_version_agreed_in_the_same_write() {
    let mut world = World::new(&[]);
    // CONNECT and SUBSCRIBE in one write: the SUBSCRIBE is read at the
    // version the CONNECT agreed, not at the default 1.2.
    let mut old = Stomp::tcp(&world.server);
    let mut bytes = frame("CONNECT", &[("accept-version", "1.0"), ("login", "old")], "");
    bytes.push_str(&frame("SUBSCRIBE", &[("id", r"a\cb"), ("destination", "/topic/lobby"), ("receipt", "s")], ""));
    old.send_raw(bytes.as_bytes());
    old.expect("CONNECTED");
    old.expect_receipt("s");
    world.lee.send("for old");
    assert_eq!(old.message("for old").header("subscription"), Some(r"a\cb"));

    let mut middle = Stomp::tcp(&world.server);
    let mut bytes = frame("CONNECT", &[("accept-version", "1.1"), ("login", "middle")], "");
    bytes.push_str(&frame("SUBSCRIBE", &[("id", r"a\rb"), ("destination", "/topic/lobby")], ""));
    middle.send_raw(bytes.as_bytes());
    middle.expect("CONNECTED");
    middle.expect_error("invalid header escape");
    world.still_chats();
}

// Across protocols.

#[test]
fn the_websocket_endpoint_chooses_the_highest_stomp_subprotocol_offered() {
    let server = hostile_server(&[]);
    for (offer, chosen) in [
        ("v10.stomp, v11.stomp, v12.stomp", "v12.stomp"),
        ("v10.stomp, v11.stomp", "v11.stomp"),
        ("chat, v10.stomp", "v10.stomp"),
    ] {
        let (_client, got) = Stomp::ws_offering(&server, offer);
        assert_eq!(got.as_deref(), Some(chosen), "{offer}");
    }
    // Offering none still upgrades; the CONNECT says the version.
    let mut plain = Stomp { link: Link::Ws(Box::new(server.ws("/stomp"))), ..Stomp::tcp(&server) };
    plain.send("CONNECT", &[("accept-version", "1.1"), ("login", "plain")], "");
    assert_eq!(plain.expect("CONNECTED").header("version"), Some("1.1"));
}

#[test]
fn a_stomp_room_message_reaches_legacy_ws_and_stomp_users_and_the_sender() {
    let mut world = World::new(&[]);
    let (mut carol, _) = Json::join(&world.server, "/ws", "carol");
    let mut web = world.hostile_ws("web");
    web.subscribe("lobby", "/topic/lobby");
    web.say("/topic/lobby", "hello everyone");
    let echo = web.message("hello everyone");
    assert_eq!(echo.header("from"), Some("web"));
    assert_eq!(echo.header("subscription"), Some("lobby"));
    assert!(echo.header("message-id").is_some());
    world.lee.line_where(|line| line == "#lobby web : hello everyone");
    assert_eq!(
        carol.next_of("message"),
        serde_json::json!({"type":"message","room":"lobby","from":"web","text":"hello everyone"})
    );
    let got = world.sam.message("hello everyone");
    assert_eq!(got.header("from"), Some("web"));
    assert_eq!(got.header("content-type"), Some("text/plain;charset=UTF-8"));

    carol.send(serde_json::json!({"type":"say","text":"from the web"}));
    assert_eq!(web.message("from the web").header("from"), Some("carol"));
    world.still_chats();
    web.message(&format!("lee still here {}", world.round));
}

#[test]
fn rooms_are_topics_joined_by_subscribing() {
    let mut world = World::new(&[]);
    let mut web = world.hostile_ws("web");
    web.subscribe("r1", "/topic/r1");
    world.lee.send("/join r1");
    world.lee.line_where(|line| line == "!JOINED r1 lee");
    world.lee.send("/msg r1 in the room");
    assert_eq!(web.message("in the room").header("destination"), Some("/topic/r1"));
    web.say("/topic/r1", "back");
    world.lee.line_where(|line| line == "#r1 web : back");
    web.message("back");
    web.send("UNSUBSCRIBE", &[("id", "r1"), ("receipt", "u")], "");
    web.expect_receipt("u");
    world.lee.line_where(|line| line == "!LEFT r1 web");
    world.still_chats();
}

#[test]
fn private_messages_go_both_ways() {
    let mut world = World::new(&[]);
    let (mut carol, _) = Json::join(&world.server, "/ws", "carol");
    world.sam.subscribe("private", "/user/queue/private");
    world.sam.say("/user/lee", "psst lee");
    world.lee.line_where(|line| line == "sam : psst lee");
    world.sam.say("/user/carol", "psst carol");
    assert_eq!(carol.next_of("private"), serde_json::json!({"type":"private","from":"sam","text":"psst carol"}));

    world.lee.send("sam..444..lee : psst sam");
    let got = world.sam.message("psst sam");
    assert_eq!(got.header("destination"), Some("/user/queue/private"));
    assert_eq!(got.header("from"), Some("lee"));
    carol.send(serde_json::json!({"type":"private","to":"sam","text":"hi sam"}));
    assert_eq!(world.sam.message("hi sam").header("from"), Some("carol"));
    world.still_chats();
}

#[test]
fn custom_events_arrive_on_the_events_queue() {
    let mut world = World::new(&[]);
    let (mut carol, _) = Json::join(&world.server, "/ws", "carol");
    world.sam.subscribe("events", "/user/queue/events");
    carol.send(serde_json::json!({"type":"emit","event":"typing","data":{"on":true},"to":"sam","id":1}));
    assert_eq!(carol.next_of("ack")["id"], 1);
    let event = world.sam.expect("MESSAGE");
    assert_eq!(event.header("destination"), Some("/user/queue/events"));
    assert_eq!(event.header("from"), Some("carol"));
    assert_eq!(event.json()["event"], "typing");
    assert_eq!(event.json()["data"], serde_json::json!({"on": true}));
    world.still_chats();
}

#[test]
fn presence_arrives_on_subscribing_and_on_every_join_and_leave() {
    let mut world = World::new(&[]);
    world.sam.send("SUBSCRIBE", &[("id", "online"), ("destination", "/topic/presence"), ("receipt", "s")], "");
    let first = world.sam.expect("MESSAGE");
    world.sam.expect_receipt("s");
    assert_eq!(first.header("destination"), Some("/topic/presence"));
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.json(), serde_json::json!(["lee", "sam"]));
    let (carol, _) = Json::join(&world.server, "/ws", "carol");
    assert_eq!(world.sam.expect("MESSAGE").json(), serde_json::json!(["lee", "sam", "carol"]));
    drop(carol);
    assert_eq!(world.sam.expect("MESSAGE").json(), serde_json::json!(["lee", "sam"]));
    world.still_chats();
}

#[test]
fn disconnect_with_a_receipt_answers_then_closes() {
    let mut world = World::new(&[]);
    for mut client in [world.hostile("tcp"), world.hostile_ws("web")] {
        client.send("DISCONNECT", &[("receipt", "77")], "");
        client.expect_receipt("77");
        client.assert_closed();
    }
    world.lee.line_where(|line| line == "3$*$*3sam$");
    world.still_chats();
}
