//! Per-room history and recovery after a reconnect (docs/SERVER.md), with
//! real `/ws` clients over loopback.

mod common;

use common::{Json, TestServer, metric};
use serde_json::{Value, json};

fn in_room(server: &TestServer, name: &str, since: Option<Value>) -> Json {
    let mut user = Json::connect(server, "/ws");
    let mut hello = json!({"type": "hello", "name": name});
    if let Some(since) = since {
        hello["since"] = since;
    }
    user.send(hello);
    assert_eq!(user.next()["type"], "welcome");
    user.send(json!({"type": "join", "room": "r", "id": 1}));
    user.next_of("ack");
    user
}

fn texts(messages: &Value) -> Vec<String> {
    messages.as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
}

fn say_all(user: &mut Json, texts: &[&str]) {
    for text in texts {
        user.send(json!({"type": "say", "room": "r", "text": text}));
    }
}

#[test]
fn history_is_bounded_ordered_and_clamped() {
    let server = TestServer::with_args(&["--history-size", "3", "--api-key", "k"]);
    let mut alice = in_room(&server, "alice", None);
    let mut bob = in_room(&server, "bob", None);
    say_all(&mut alice, &["1", "2", "3", "4", "5"]);
    for _ in 0..5 {
        bob.next_of("message");
    }
    bob.send(json!({"type": "history", "room": "r", "id": 7}));
    let page = bob.next_of("history");
    assert_eq!(texts(&page["messages"]), ["3", "4", "5"]);
    let offsets: Vec<u64> =
        page["messages"].as_array().unwrap().iter().map(|m| m["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets, [3, 4, 5]);
    assert_eq!(page["id"], 7);
    assert!(page["epoch"].as_str().is_some_and(|e| !e.is_empty()));
    bob.send(json!({"type": "history", "room": "r", "limit": 1}));
    assert_eq!(texts(&bob.next_of("history")["messages"]), ["5"]);
    bob.send(json!({"type": "history", "room": "r", "since": 3, "limit": u64::MAX}));
    assert_eq!(texts(&bob.next_of("history")["messages"]), ["4", "5"]);
    bob.send(json!({"type": "history", "room": "elsewhere", "id": 8}));
    assert_eq!(bob.next_of("error")["code"], "not_in_room");
    assert_eq!(metric(&server, "soket_history_messages"), 3.0);
    assert!(metric(&server, "soket_history_bytes") > 0.0);

    // The API reads the same ring.
    let body = br#"{"room":"r","since":3,"limit":100000000000}"#;
    let mut stream = server.tcp();
    let head = format!(
        "POST /api/history HTTP/1.1\r\nHost: x\r\nAuthorization: apikey k\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    std::io::Write::write_all(&mut stream, &[head.as_bytes(), body].concat()).unwrap();
    let response = common::read_response(&mut stream).unwrap();
    let answer: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!((response.status, texts(&answer["messages"])), (200, vec!["4".to_owned(), "5".to_owned()]));
    assert_eq!(answer["epoch"], page["epoch"]);
}

#[test]
fn a_reconnect_gets_exactly_what_it_missed_in_order() {
    let server = TestServer::with_args(&["--history-size", "100"]);
    let mut alice = in_room(&server, "alice", None);
    let mut carol = in_room(&server, "carol", None);
    say_all(&mut alice, &["before"]);
    // A live message says where it is in the room's history.
    let live = carol.next_of("message");
    let (epoch, last) = (live["epoch"].clone(), live["offset"].clone());
    assert!(epoch.as_str().is_some_and(|e| !e.is_empty()) && last.as_u64() == Some(1), "{live}");
    carol.send(json!({"type": "history", "room": "r"}));
    let page = carol.next_of("history");
    assert_eq!((&page["epoch"], &page["messages"][0]["offset"]), (&epoch, &last));
    drop(carol);
    alice.next_of("left");
    say_all(&mut alice, &["m1", "m2", "m3"]);
    // Carol comes back where she was.
    let mut carol = Json::connect(&server, "/ws");
    carol.send(json!({"type": "hello", "name": "carol", "since": {"r": {"epoch": epoch, "offset": last}}}));
    assert_eq!(carol.next()["type"], "welcome");
    let mut got = Vec::new();
    loop {
        let next = carol.next();
        match next["type"].as_str() {
            Some("message") => got.push(next["text"].as_str().unwrap().to_owned()),
            Some("recovered") => {
                assert_eq!(next["recovered"], true, "{next}");
                assert_eq!(next["offset"], 4);
                break;
            }
            _ => panic!("unexpected {next}"),
        }
    }
    assert_eq!(got, ["m1", "m2", "m3"]);
    // She is in the room again, and what follows comes once.
    carol.next_of("joined");
    say_all(&mut alice, &["after"]);
    let message = carol.next_of("message");
    assert_eq!(message["text"], "after");
    carol.send(json!({"type": "who", "room": "r", "id": 2}));
    assert_eq!(carol.next_of("members")["names"], json!(["alice", "carol"]));
}

#[test]
fn a_reconnect_after_the_window_is_told_so() {
    let server = TestServer::with_args(&["--history-size", "2"]);
    let mut alice = in_room(&server, "alice", None);
    say_all(&mut alice, &["1", "2", "3", "4"]);
    alice.send(json!({"type": "history", "room": "r"}));
    let epoch = alice.next_of("history")["epoch"].clone();
    for (since, recovered) in [
        (json!({"r": {"epoch": epoch, "offset": 1}}), false),
        (json!({"r": {"epoch": "another", "offset": 3}}), false),
        (json!({"r": {"epoch": epoch, "offset": 2}}), true),
    ] {
        let mut bob = Json::connect(&server, "/ws");
        bob.send(json!({"type": "hello", "name": "bob", "since": since}));
        assert_eq!(bob.next()["type"], "welcome");
        let answer = bob.next_of("recovered");
        assert_eq!(answer["recovered"], recovered, "{answer}");
        drop(bob);
        alice.next_of("users");
    }
}

#[test]
fn messages_expire_after_the_ttl() {
    let server = TestServer::with_args(&["--history-size", "10", "--history-ttl", "300ms"]);
    let mut alice = in_room(&server, "alice", None);
    say_all(&mut alice, &["old"]);
    std::thread::sleep(std::time::Duration::from_millis(400));
    say_all(&mut alice, &["new"]);
    alice.send(json!({"type": "history", "room": "r"}));
    assert_eq!(texts(&alice.next_of("history")["messages"]), ["new"]);
}

#[test]
fn off_by_default() {
    let server = TestServer::start();
    let mut alice = in_room(&server, "alice", None);
    let mut bob = in_room(&server, "bob", None);
    alice.send(json!({"type": "history", "room": "r", "id": 3}));
    assert_eq!(alice.next_of("error")["code"], "unknown_type");
    assert_eq!(metric(&server, "soket_history_messages"), 0.0);
    // Messages carry no history position: existing clients see what they always saw.
    say_all(&mut alice, &["plain"]);
    assert_eq!(bob.next_of("message"), json!({"type": "message", "room": "r", "from": "alice", "text": "plain"}));
}
