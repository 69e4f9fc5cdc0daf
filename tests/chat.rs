//! The chat over loopback: legacy TCP users, `/legacy` and `/ws` users in
//! one world (PROTOCOL.md sections 1 to 6).

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use serde_json::json;
use tungstenite::Message;

#[test]
fn the_founding_scenario() {
    let server = TestServer::start();
    let (mut alice, list) = Legacy::join(&server, "alice");
    assert_eq!(list, "3$*$*3");
    let (mut bob, list) = Legacy::join(&server, "bob");
    assert_eq!(list, "3$*$*3alice$");
    assert_eq!(alice.line(), "3$*$*3bob$");

    alice.send("bob..444..alice : merhaba");
    assert_eq!(bob.line(), "alice : merhaba");

    let (mut carol, welcome) = Json::join(&server, "/ws", "carol");
    assert_eq!(
        welcome,
        json!({"type":"welcome","name":"carol","namespace":"/","users":["alice","bob"],"rooms":["lobby"]})
    );
    assert_eq!(alice.line(), "3$*$*3bob$carol$");
    assert_eq!(bob.line(), "3$*$*3alice$carol$");

    carol.send(json!({"type":"private","to":"bob","text":"selam bob"}));
    assert_eq!(bob.line(), "carol : selam bob");
    bob.send("carol..444..bob : selam carol");
    assert_eq!(carol.next(), json!({"type":"private","from":"bob","text":"selam carol"}));

    // A spoofed sender part is replaced by the registered name.
    bob.send("alice..444..mallory : trust me");
    assert_eq!(alice.line(), "bob : trust me");
}

#[test]
fn an_original_client_that_never_sends_a_newline_is_served() {
    let server = TestServer::start();
    let (mut bob, _) = Legacy::join(&server, "bob");
    let mut alice = Legacy::connect(&server);
    alice.send_raw(b"alice");
    // The original client's first message stands alone until the flush delay passes.
    assert_eq!(alice.line(), "3$*$*3bob$");
    assert_eq!(bob.line(), "3$*$*3alice$");
    std::thread::sleep(Duration::from_millis(150));
    alice.send_raw(b"bob..444..alice : hi");
    assert_eq!(bob.line(), "alice : hi");
}

#[test]
fn a_user_called_get_is_a_legacy_user() {
    let server = TestServer::start();
    let mut user = Legacy::connect(&server);
    user.send_raw(b"GET");
    assert_eq!(user.line(), "3$*$*3");
    let (_other, list) = Legacy::join(&server, "other");
    assert_eq!(list, "3$*$*3GET$");
}

#[test]
fn rooms_join_leave_who_and_room_messages_across_protocols() {
    let server = TestServer::start();
    let (mut alice, _) = Legacy::join(&server, "alice");
    let (mut carol, _) = Json::join(&server, "/ws", "carol");
    assert_eq!(alice.line(), "3$*$*3carol$");

    alice.send("/join r1");
    assert_eq!(alice.line(), "!JOINED r1 alice");
    carol.send(json!({"type":"join","room":"r1","id":1}));
    assert_eq!(carol.next(), json!({"type":"joined","room":"r1","name":"carol"}));
    assert_eq!(carol.next(), json!({"type":"ack","id":1}));
    assert_eq!(alice.line(), "!JOINED r1 carol");

    carol.send(json!({"type":"say","room":"r1","text":"multi\nline"}));
    assert_eq!(alice.line(), "#r1 carol : multi line");
    alice.send("/msg r1 hello room");
    assert_eq!(carol.next(), json!({"type":"message","room":"r1","from":"alice","text":"hello room"}));
    alice.send("plain lobby text");
    assert_eq!(carol.next(), json!({"type":"message","room":"lobby","from":"alice","text":"plain lobby text"}));

    alice.send("/who r1");
    assert_eq!(alice.line(), "!MEMBERS r1 alice carol");
    carol.send(json!({"type":"rooms","id":"q"}));
    assert_eq!(
        carol.next(),
        json!({"type":"rooms","rooms":[{"name":"lobby","members":2},{"name":"r1","members":2}],"id":"q"})
    );
    carol.send(json!({"type":"leave","room":"r1"}));
    assert_eq!(carol.next(), json!({"type":"left","room":"r1","name":"carol"}));
    assert_eq!(alice.line(), "!LEFT r1 carol");
    alice.send("/rooms");
    assert_eq!(alice.line(), "!ROOMS lobby r1");
}

#[test]
fn custom_events_reach_json_users_only() {
    let server = TestServer::start();
    let (mut carol, _) = Json::join(&server, "/ws", "carol");
    let (mut dave, _) = Json::join(&server, "/ws", "dave");
    carol.next_of("users");
    let (mut alice, _) = Legacy::join(&server, "alice");
    carol.next_of("users");
    dave.next_of("users");

    carol.send(json!({"type":"emit","event":"typing","data":{"on":true},"id":7}));
    assert_eq!(dave.next(), json!({"type":"event","event":"typing","data":{"on":true},"from":"carol"}));
    assert_eq!(carol.next(), json!({"type":"ack","id":7}));
    carol.send(json!({"type":"emit","event":"poke","to":"alice","id":8}));
    assert_eq!(carol.next()["code"], "no_such_user");
    carol.send(json!({"type":"emit","event":"poke","to":"dave"}));
    assert_eq!(dave.next(), json!({"type":"event","event":"poke","data":null,"from":"carol"}));
    // The legacy user saw none of it; the next thing it reads is a real message.
    dave.send(json!({"type":"say","text":"done"}));
    assert_eq!(alice.line(), "#lobby dave : done");
}

#[test]
fn every_json_error_code_is_answered_and_the_connection_stays_usable() {
    let server = TestServer::with_args(&["--max-line", "100"]);
    let (_bob, _) = Legacy::join(&server, "bob");
    let mut eve = Json::connect(&server, "/ws");
    let expect = |user: &mut Json, request: &str, code: &str| {
        user.send_text(request);
        let reply = user.next();
        assert_eq!(reply["type"], "error", "{request} -> {reply}");
        assert_eq!(reply["code"], code, "{request} -> {reply}");
        assert!(reply["message"].is_string());
        reply
    };
    expect(&mut eve, r#"{"type":"say","text":"hi","id":1}"#, "not_registered");
    expect(&mut eve, "not json", "bad_json");
    expect(&mut eve, "[1,2]", "bad_json");
    expect(&mut eve, r#"{"type":"dance"}"#, "unknown_type");
    expect(&mut eve, r#"{"type":"hello"}"#, "missing_field");
    expect(&mut eve, r#"{"type":"hello","name":"a..b"}"#, "name_invalid");
    expect(&mut eve, r#"{"type":"hello","name":"bob"}"#, "name_taken");
    eve.send(json!({"type":"hello","name":"eve"}));
    assert_eq!(eve.next()["type"], "welcome");
    let reply = expect(&mut eve, r#"{"type":"hello","name":"eve2","id":"again"}"#, "already_registered");
    assert_eq!(reply["id"], "again");
    expect(&mut eve, r#"{"type":"private","to":"nobody","text":"x"}"#, "no_such_user");
    expect(&mut eve, r#"{"type":"who","room":"empty"}"#, "no_such_room");
    eve.send(json!({"type":"join","room":"mine"}));
    assert_eq!(eve.next()["type"], "joined");
    let (mut frank, _) = Json::join(&server, "/ws", "frank");
    expect(&mut frank, r#"{"type":"say","room":"mine","text":"x"}"#, "not_in_room");
    expect(&mut frank, r#"{"type":"leave","room":"lobby"}"#, "room_invalid");
    expect(&mut frank, r#"{"type":"join","room":".bad"}"#, "room_invalid");
    let long = "x".repeat(101);
    expect(&mut frank, &format!(r#"{{"type":"say","text":"{long}"}}"#), "too_large");
    expect(&mut frank, r#"{"type":"say","text":5}"#, "missing_field");
    // Still usable.
    frank.send(json!({"type":"who","room":"lobby","id":3}));
    assert_eq!(frank.next_of("members"), json!({"type":"members","room":"lobby","names":["bob","eve","frank"],"id":3}));
}

#[test]
fn every_legacy_error_code_is_answered_and_the_connection_stays_usable() {
    let server = TestServer::with_args(&["--max-line", "100"]);
    let (_bob, _) = Legacy::join(&server, "bob");
    let mut eve = Legacy::connect(&server);
    eve.send("bad name");
    assert_eq!(eve.line(), "!ERR name_invalid bad name");
    eve.send("bob");
    assert_eq!(eve.line(), "!ERR name_taken bob");
    eve.send("");
    assert!(eve.line().starts_with("!ERR name_invalid"));
    eve.send("eve");
    assert_eq!(eve.line(), "3$*$*3bob$");
    eve.send("nobody..444..hi");
    assert_eq!(eve.line(), "!ERR no_such_user nobody");
    eve.send("/join");
    assert!(eve.line().starts_with("!ERR missing_field"));
    eve.send("/dance");
    assert!(eve.line().starts_with("!ERR unknown_command"));
    eve.send("/leave lobby");
    assert!(eve.line().starts_with("!ERR room_invalid"));
    eve.send("/who nowhere");
    assert!(eve.line().starts_with("!ERR no_such_room"));
    eve.send(&"x".repeat(101));
    assert!(eve.line().starts_with("!ERR too_large"));
    let (mut frank, _) = Legacy::join(&server, "frank");
    frank.send("/join mine");
    assert_eq!(frank.line(), "!JOINED mine frank");
    eve.line_where(|l| l.starts_with("3$*$*3"));
    eve.send("/msg mine hi");
    assert!(eve.line().starts_with("!ERR not_in_room"));
    // Still usable, and nothing of the oversized line was delivered.
    eve.send("/who lobby");
    assert_eq!(eve.line(), "!MEMBERS lobby bob eve frank");
}

#[test]
fn binary_on_chat_paths_closes_1003() {
    let server = TestServer::start();
    for path in ["/ws", "/legacy"] {
        let mut ws = server.ws(path);
        ws.send(Message::binary(vec![1u8, 2, 3])).unwrap();
        assert_eq!(expect_close(&mut ws), Some(1003), "{path}");
    }
}

#[test]
fn legacy_over_websocket_speaks_lines_in_text_frames() {
    let server = TestServer::start();
    let (mut bob, _) = Legacy::join(&server, "bob");
    let mut dan = server.ws("/legacy");
    dan.send(Message::text("dan")).unwrap();
    assert_eq!(next_data(&mut dan), Message::text("3$*$*3bob$"));
    assert_eq!(bob.line(), "3$*$*3dan$");
    bob.send("dan..444..bob : hi dan");
    assert_eq!(next_data(&mut dan), Message::text("bob : hi dan"));
    dan.send(Message::text("/quit")).unwrap();
    assert_eq!(expect_close(&mut dan), Some(1000));
    assert_eq!(bob.line(), "3$*$*3");
}

#[test]
fn a_line_oriented_websocket_client_on_legacy_signs_in_chats_and_quits() {
    // websocat and its kind send each line with its line end in the frame.
    let server = TestServer::start();
    let (mut bob, _) = Legacy::join(&server, "bob");
    let mut eve = server.ws("/legacy");
    eve.send(Message::text("eve\n")).unwrap();
    assert_eq!(next_data(&mut eve), Message::text("3$*$*3bob$"));
    assert_eq!(bob.line(), "3$*$*3eve$");
    eve.send(Message::text("hello bob\r\n")).unwrap();
    assert_eq!(bob.line(), "#lobby eve : hello bob");
    eve.send(Message::text("bob..444..eve : psst\n")).unwrap();
    assert_eq!(bob.line(), "eve : psst");
    // A line end inside the frame stays part of the one message (a legacy
    // receiver's line shows it as a space).
    eve.send(Message::text("two\nlines\n")).unwrap();
    assert_eq!(bob.line(), "#lobby eve : two lines");
    eve.send(Message::text("/quit\n")).unwrap();
    assert_eq!(expect_close(&mut eve), Some(1000));
    assert_eq!(bob.line(), "3$*$*3");
}

#[test]
fn leaving_by_quit_close_or_reset_removes_the_user_everywhere() {
    let server = TestServer::start();
    let (mut watcher, _) = Legacy::join(&server, "watcher");
    let (mut a, _) = Legacy::join(&server, "a");
    watcher.line();
    a.send("/join r1");
    a.line();
    a.send("/quit");
    assert!(a.closed(), "the server closes after /quit");
    assert_eq!(watcher.line(), "3$*$*3");

    let (mut b, _) = Json::join(&server, "/ws", "b");
    watcher.line();
    b.ws.close(None).unwrap();
    assert_eq!(watcher.line(), "3$*$*3");

    let (c, _) = Legacy::join(&server, "c");
    watcher.line();
    drop(c);
    assert_eq!(watcher.line(), "3$*$*3");

    watcher.send("/rooms");
    assert_eq!(watcher.line(), "!ROOMS lobby");
    assert_eq!(metric(&server, "soket_users"), 1.0);
}

#[test]
fn namespaces_are_separate_worlds() {
    let server = TestServer::start();
    let (mut a, _) = Json::join(&server, "/ws/beginners", "alice");
    let (_b, welcome) = Json::join(&server, "/ws/pros", "alice");
    assert_eq!(welcome["namespace"], "/pros");
    assert_eq!(welcome["users"], json!([]));
    let (_c, welcome) = Json::join(&server, "/ws/beginners", "bob");
    assert_eq!(welcome["users"], json!(["alice"]));
    assert_eq!(a.next(), json!({"type":"users","users":["bob"]}));
    let response = server.http(b"GET /ws/no/such HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(response.status, 404);
}

#[test]
fn name_given_at_the_upgrade() {
    let server = TestServer::start();
    let (mut bob, _) = Legacy::join(&server, "bob");
    let mut zoe = Json::connect(&server, "/ws?name=z%C3%B6e");
    assert_eq!(zoe.next(), json!({"type":"welcome","name":"zöe","namespace":"/","users":["bob"],"rooms":["lobby"]}));
    assert_eq!(bob.line(), "3$*$*3zöe$");
    // A taken name never fails the upgrade; it is answered after it.
    let mut second = Json::connect(&server, "/ws?name=bob");
    assert_eq!(second.next()["code"], "name_taken");
    second.send(json!({"type":"hello","name":"bobby","id":1}));
    assert_eq!(second.next()["id"], 1);
}

#[test]
fn the_web_chat_page_is_served() {
    let server = TestServer::start();
    let response = server.http(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(response.status, 200);
    assert!(response.header("Content-Type").unwrap().starts_with("text/html"));
    assert!(response.body_text().contains("<html"));
}

#[test]
fn a_slow_reader_is_cut_off_with_1013_and_nobody_else_slows_down() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let max_queued = 64 * 1024;
    let server = TestServer::with_args(&["--max-queued", &max_queued.to_string()]);
    let (mut sloth, _) = Json::join(&server, "/ws", "sloth");
    let (mut healthy, _) = Json::join(&server, "/ws", "healthy");
    let (mut sender, _) = Json::join(&server, "/ws", "sender");
    sloth.next_of("users");
    sloth.next_of("users");
    healthy.next_of("users");

    let text = "m".repeat(4000);
    let total = 5000;
    let progress = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (progress, text) = (progress.clone(), text.clone());
        std::thread::spawn(move || {
            let mut saw_sloth_leave = false;
            let mut received = 0;
            while received < total {
                let message = healthy.next();
                if message["type"] == "users" {
                    assert_eq!(message["users"], json!(["sender"]));
                    saw_sloth_leave = true;
                    continue;
                }
                assert_eq!(message["text"], format!("{received} {text}"), "in order, none lost");
                received += 1;
                progress.store(received, Ordering::SeqCst);
            }
            saw_sloth_leave
        })
    };
    // The sloth never reads from here on: the kernel's socket buffers fill
    // (a few MiB on loopback), then its queue on the server.
    for i in 0..total {
        sender.send(json!({"type":"say","text":format!("{i} {text}")}));
        if i % 250 == 249 {
            // Let the healthy reader keep up, waiting on its progress (bounded).
            let deadline = std::time::Instant::now() + WAIT;
            while progress.load(Ordering::SeqCst) + 50 < i {
                assert!(std::time::Instant::now() < deadline, "the healthy reader stalled");
                std::thread::yield_now();
            }
            let high_water = metric(&server, "soket_queue_high_water_bytes");
            assert!(high_water <= max_queued as f64, "a queue held {high_water} bytes, over {max_queued}");
        }
    }
    assert!(
        reader.join().expect("healthy reader"),
        "the sloth left presence (a users push reached the healthy reader)"
    );
    assert_eq!(metric(&server, "soket_slow_consumer_disconnects_total"), 1.0);
    assert!(metric(&server, "soket_queue_high_water_bytes") <= max_queued as f64);
    // The sloth finds the 1013 close after whatever was already on its way.
    assert_eq!(expect_close(&mut sloth.ws), Some(1013));
}

#[test]
fn a_scripted_legacy_client_that_half_closes_gets_its_answers() {
    let server = TestServer::start();
    let (mut watcher, _) = Legacy::join(&server, "watcher");
    let mut stream = server.tcp();
    // The last message has no newline: the end of input ends it.
    stream.write_all(b"alice\n/rooms\nwatcher..444..alice : bye").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let answers = String::from_utf8(read_to_end_or_timeout(&mut stream)).unwrap();
    assert_eq!(answers, "3$*$*3watcher$\n!ROOMS lobby\n");
    assert_eq!(watcher.line(), "3$*$*3alice$");
    assert_eq!(watcher.line(), "alice : bye");
    assert_eq!(watcher.line(), "3$*$*3");
}
