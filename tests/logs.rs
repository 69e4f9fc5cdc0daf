//! What an operator reads: the daemon's log lines at `debug`, as text and as
//! `--log-format json`, for the events issue 12 names (an HTTP answer with
//! its status and reason, a refused origin, an upgrade, a registration, a
//! close with its code and reason, a slow-reader cut with the limit).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Child;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use common::*;
use serde_json::Value;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

/// The daemon with `RUST_LOG=debug` and its stderr, line by line.
struct Logged {
    child: Child,
    addr: SocketAddr,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Logged {
    fn spawn(args: &[&str]) -> Logged {
        let (child, addr, lines) = spawn_logging(args, &[("RUST_LOG", "debug")]);
        Logged { child, addr, lines, seen: Vec::new() }
    }

    /// The first line (from now on) for which `test` holds; fails after `WAIT`.
    fn line(&mut self, what: &str, test: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if test(&line) => return line,
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no log line for {what}; the last lines: {:#?}", last(&self.seen, 20)),
            }
        }
    }

    fn tcp(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        stream
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn last(lines: &[String], n: usize) -> &[String] {
    lines.get(lines.len().saturating_sub(n)..).unwrap_or_default()
}

/// One request, and the whole answer up to the close.
fn http(logged: &Logged, request: &str) -> String {
    let mut stream = logged.tcp();
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// `key=value` of a text line has `value` (`value` as written, quotes included).
fn has(line: &str, field: &str) -> bool {
    line.split(' ').any(|word| word == field)
}

#[test]
fn text_lines_name_each_event_with_its_fields() {
    let mut logged = Logged::spawn(&["--allow-origin", "https://chat.example"]);
    logged.line("the start-up settings", |l| l.contains("event=started") && l.contains("max_queued=4194304"));

    let answer = http(&logged, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    let line = logged.line("the 404", |l| l.contains("event=http") && l.contains("path=/nope"));
    assert!(has(&line, "method=GET") && has(&line, "status=404"), "{line}");
    assert!(line.contains("event=protocol") || logged.seen.iter().any(|l| l.contains("protocol=http")), "{line}");

    // An upgrade without its key: a 400 that says why.
    let answer = http(
        &logged,
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let line = logged.line("the 400", |l| l.contains("event=http") && l.contains("status=400"));
    assert!(line.contains("reason=") && line.contains("Sec-WebSocket-Key"), "{line}");

    // An Origin outside --allow-origin: 403.
    let upgrade = String::from_utf8(upgrade_request("/ws", "Origin: https://evil.example\r\n")).expect("ASCII");
    let answer = http(&logged, &upgrade);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    let line = logged.line("the 403", |l| l.contains("event=http") && l.contains("status=403"));
    assert!(line.contains("path=/ws") && line.contains("reason="), "{line}");

    // An upgrade with its subprotocol, a registration, closes both ways.
    let request = format!("ws://{}/stomp", logged.addr);
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(request).expect("request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", "v12.stomp".parse().expect("header"));
    let (mut stomp, _) = tungstenite::client::client(request, logged.tcp()).expect("handshake");
    let line = logged.line("the upgrade", |l| l.contains("event=upgrade") && l.contains("path=/stomp"));
    assert!(has(&line, "subprotocol=v12.stomp") && has(&line, "status=101"), "{line}");
    stomp.send(Message::text("CONNECT\naccept-version:1.2\nlogin:alice\n\n\0")).expect("send");
    let line = logged.line("the registration", |l| l.contains("event=registered"));
    assert!(has(&line, "name=alice") && has(&line, "namespace=/"), "{line}");
    stomp.close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye now".into() })).expect("close");
    let line = logged.line("the peer's close", |l| l.contains("event=close") && l.contains("by=peer"));
    assert!(has(&line, "code=1000"), "{line}");

    let (mut legacy_ws, _) =
        tungstenite::client::client(format!("ws://{}/legacy", logged.addr), logged.tcp()).expect("handshake");
    legacy_ws.send(Message::binary(vec![1u8, 2, 3])).expect("send");
    let line = logged.line("the server's close", |l| l.contains("event=close") && l.contains("by=server"));
    assert!(has(&line, "code=1003") && line.contains("reason=\"binary frames are not accepted here\""), "{line}");
}

#[test]
fn a_slow_reader_cut_names_the_limit() {
    let mut logged = Logged::spawn(&["--max-queued", "64KiB"]);
    let mut bob = logged.tcp();
    bob.write_all(b"bob\n").expect("sign in");
    let mut alice = logged.tcp();
    alice.write_all(b"alice\n").expect("sign in");
    logged.line("both registered", |l| l.contains("event=registered") && l.contains("name=alice"));
    // Bob never reads: lines for him fill the socket buffers, then his queue.
    let line = format!("{}\n", "x".repeat(60_000));
    let mut cut = None;
    for _ in 0..400 {
        if alice.write_all(line.as_bytes()).is_err() {
            break;
        }
        if let Ok(found) = logged.lines.try_recv() {
            if found.contains("event=slow_reader") {
                cut = Some(found);
                break;
            }
            logged.seen.push(found);
        }
    }
    let line = match cut {
        Some(line) => line,
        None => logged.line("the slow-reader cut", |l| l.contains("event=slow_reader")),
    };
    assert!(has(&line, "limit=max-queued") && has(&line, "max_queued=65536"), "{line}");
    drop(bob);
}

#[test]
fn json_lines_are_objects_with_the_fields() {
    let mut logged = Logged::spawn(&["--log-format", "json"]);
    let started = logged.line("the start-up line", |l| l.contains("\"event\":\"started\""));
    let started: Value = serde_json::from_str(&started).expect("JSON");
    assert_eq!(started["level"], "INFO");
    assert!(started["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')), "{started}");
    http(&logged, "GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let line = logged.line("the 404", |l| l.contains("\"status\":\"404\""));
    let line: Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(line["event"], "http");
    assert_eq!(line["path"], "/missing");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["level"], "DEBUG");
    assert!(line["msg"].as_str().is_some_and(|m| m.starts_with("event=http")), "{line}");
    for seen in &logged.seen {
        serde_json::from_str::<Value>(seen).unwrap_or_else(|e| panic!("not JSON ({e}): {seen}"));
    }
}
