//! The slow-reader rule with one message as large as `--max-message` at
//! the head of a receiver's queue, under the default limits (16 MiB
//! messages, 4 MiB of queue): a reader that keeps up is never cut, one that
//! stops reading still is, and its queue stays bounded.

mod common;

use std::io::Write;

use common::*;
use serde_json::{Value, json};
use soket::proto::ws::OpCode;
use soket::proto::ws::encoder::encode_client_frame;

const MASK: [u8; 4] = [0x0d, 0xf0, 0xad, 0x8b];
const MAX_MESSAGE: usize = 16 << 20;
const MAX_QUEUED: usize = 4 << 20;
/// Room left in a 16 MiB client message for the emit's JSON around `data`.
const BIG_DATA: usize = MAX_MESSAGE - 1024;

/// The masked text frame of `value`.
fn frame(out: &mut Vec<u8>, value: &Value) {
    encode_client_frame(out, OpCode::Text, true, value.to_string().as_bytes(), MASK);
}

/// Alice and bob on `/ws`, each having seen the other arrive.
fn alice_and_bob(server: &TestServer) -> (Json, Json) {
    let (mut alice, _) = Json::join(server, "/ws", "alice");
    let (bob, welcome) = Json::join(server, "/ws", "bob");
    assert_eq!(welcome["users"], json!(["alice"]));
    assert_eq!(alice.next_of("users")["users"], json!(["bob"]));
    (alice, bob)
}

fn big_emit() -> Value {
    json!({"type": "emit", "event": "big", "data": "x".repeat(BIG_DATA)})
}

fn assert_big_event(event: &Value) {
    assert_eq!(event["type"], "event", "the big event first");
    assert_eq!(event["event"], "big");
    assert_eq!(event["from"], "alice");
    assert_eq!(event["data"].as_str().map(str::len), Some(BIG_DATA));
}

#[test]
fn a_reader_that_keeps_up_is_not_cut_after_a_message_of_max_message_size() {
    let server = TestServer::start();
    let (mut alice, mut bob) = alice_and_bob(&server);
    const SAYS: usize = 50;

    let reader = std::thread::spawn(move || {
        assert_big_event(&bob.next());
        for i in 0..SAYS {
            let message = bob.next();
            assert_eq!(message["type"], "message", "{message}");
            assert_eq!(message["text"], i.to_string(), "in order, none lost");
        }
        bob
    });
    // One write: the small messages arrive right behind the big one and are
    // handled while bob's copy of it is still queued on the server.
    let mut bytes = Vec::new();
    frame(&mut bytes, &big_emit());
    for i in 0..SAYS {
        frame(&mut bytes, &json!({"type": "say", "text": i.to_string()}));
    }
    alice.ws.get_mut().write_all(&bytes).unwrap();

    let mut bob = reader.join().expect("bob received the big event and every message after it");
    assert_eq!(metric(&server, "soket_slow_consumer_disconnects_total"), 0.0);
    // Still in presence and still served.
    alice.send(json!({"type": "say", "text": "after"}));
    assert_eq!(bob.next()["text"], "after");
}

#[test]
fn a_reader_that_stops_with_a_big_message_queued_is_still_cut_and_its_queue_bounded() {
    let server = TestServer::with_args(&["--shutdown-timeout", "300ms"]);
    let (mut alice, mut bob) = alice_and_bob(&server);
    // A say of 60 KiB: under --max-line, a frame's worth of queue.
    let text = "s".repeat(60 << 10);
    let say_frame = {
        let mut bytes = Vec::new();
        frame(&mut bytes, &json!({"type": "say", "text": text}));
        bytes
    };
    // Queue plus the head message plus one more frame of either kind.
    let bound = (MAX_MESSAGE + MAX_QUEUED + say_frame.len() + 1024) as f64;

    // Bob reads nothing from here on: the big event fills the socket
    // buffers and waits in his queue, then the says pile up behind it.
    let mut bytes = Vec::new();
    frame(&mut bytes, &big_emit());
    alice.ws.get_mut().write_all(&bytes).unwrap();
    let mut cut = false;
    // 1 MiB per round; 64 rounds are far more than queue and socket buffers hold.
    for round in 0..64 {
        for _ in 0..16 {
            alice.ws.get_mut().write_all(&say_frame).unwrap();
        }
        // Alice's own reply comes after her says were handled.
        alice.send(json!({"type": "who", "room": "lobby", "id": round}));
        let members = alice.next_of("members");
        assert_eq!(members["id"], round);
        let high_water = metric(&server, "soket_queue_high_water_bytes");
        assert!(high_water <= bound, "a queue held {high_water} bytes, over {bound}");
        if members["names"] == json!(["alice"]) {
            cut = true;
            break;
        }
    }
    assert!(cut, "bob was never cut off although he read nothing");
    assert_eq!(metric(&server, "soket_slow_consumer_disconnects_total"), 1.0);
    // What was on its way (the big event) arrives, then the close.
    assert_eq!(expect_close(&mut bob.ws), Some(1013));
}
