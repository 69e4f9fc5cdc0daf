//! A thousand clients, legacy and WebSocket, in one run: every message is
//! delivered exactly once to each intended receiver, in per-sender order,
//! and nothing is left behind once they have gone.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tungstenite::Message;

const MESSAGES_PER_USER: usize = 5;

#[derive(Clone, Copy, Debug)]
enum Kind {
    LegacyTcp,
    LegacyWs,
    Json,
}

struct Plan {
    name: String,
    kind: Kind,
    /// WebSocket path for JSON users; legacy users live in `/`.
    path: &'static str,
    namespace: &'static str,
    /// Who this user sends one private message to (same namespace).
    private_to: String,
}

/// One connected user, whatever its protocol.
enum Conn {
    Tcp(Legacy),
    Ws(Box<Client>, Kind),
}

/// What a user received: lobby messages and private messages, by sender.
#[derive(Default)]
struct Inbox {
    lobby: HashMap<String, Vec<usize>>,
    private: Vec<(String, String)>,
}

impl Conn {
    fn send_lobby(&mut self, seq: usize) {
        let text = format!("seq {seq}");
        match self {
            Conn::Tcp(user) => user.send(&text),
            Conn::Ws(ws, Kind::LegacyWs) => ws.send(Message::text(text)).unwrap(),
            Conn::Ws(ws, _) => ws.send(Message::text(json!({"type":"say","text":text}).to_string())).unwrap(),
        }
    }

    fn send_private(&mut self, me: &str, to: &str) {
        let text = format!("secret from {me}");
        match self {
            Conn::Tcp(user) => user.send(&format!("{to}..444..{me} : {text}")),
            Conn::Ws(ws, Kind::LegacyWs) => ws.send(Message::text(format!("{to}..444..{text}"))).unwrap(),
            Conn::Ws(ws, _) => {
                ws.send(Message::text(json!({"type":"private","to":to,"text":text}).to_string())).unwrap()
            }
        }
    }

    /// Reads one message and records it if it is a chat message.
    fn receive(&mut self, inbox: &mut Inbox) {
        let (is_json, text) = match self {
            Conn::Tcp(user) => (false, user.line()),
            Conn::Ws(ws, kind) => match next_data(ws) {
                Message::Text(text) => (matches!(kind, Kind::Json), text.as_str().to_string()),
                other => panic!("unexpected {other:?}"),
            },
        };
        if is_json {
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            let from = value["from"].as_str().unwrap_or_default().to_string();
            match value["type"].as_str() {
                Some("message") => record_lobby(inbox, from, value["text"].as_str().unwrap()),
                Some("private") => inbox.private.push((from, value["text"].as_str().unwrap().to_string())),
                Some("users") => {}
                _ => panic!("unexpected {value}"),
            }
        } else if let Some(rest) = text.strip_prefix("#lobby ") {
            let (from, body) = rest.split_once(" : ").unwrap();
            record_lobby(inbox, from.to_string(), body);
        } else if let Some((from, body)) = text.split_once(" : ") {
            inbox.private.push((from.to_string(), body.to_string()));
        } else {
            assert!(text.starts_with("3$*$*3"), "unexpected line {text:?}");
        }
    }
}

fn record_lobby(inbox: &mut Inbox, from: String, body: &str) {
    let seq = body.strip_prefix("seq ").unwrap().parse().unwrap();
    inbox.lobby.entry(from).or_default().push(seq);
}

fn plans() -> Vec<Plan> {
    // 250 users share `/` across all three protocols; 750 JSON users fill
    // five more namespaces, so presence lists stay a reasonable size.
    let mut plans = Vec::new();
    for i in 0..250 {
        let (kind, name) = match i % 5 {
            0 | 1 => (Kind::LegacyTcp, format!("t{i}")),
            2 => (Kind::LegacyWs, format!("w{i}")),
            _ => (Kind::Json, format!("j{i}")),
        };
        plans.push(Plan { name, kind, path: "/ws", namespace: "/", private_to: String::new() });
    }
    for (n, (path, namespace)) in
        [("/ws/a", "/a"), ("/ws/b", "/b"), ("/ws/c", "/c"), ("/ws/d", "/d"), ("/ws/e", "/e")].into_iter().enumerate()
    {
        for i in 0..150 {
            plans.push(Plan {
                name: format!("n{n}u{i}"),
                kind: Kind::Json,
                path,
                namespace,
                private_to: String::new(),
            });
        }
    }
    // Each user writes privately to the next one of its namespace (across protocols in `/`).
    let mut by_namespace: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, plan) in plans.iter().enumerate() {
        by_namespace.entry(plan.namespace).or_default().push(i);
    }
    for members in by_namespace.values() {
        for (k, &i) in members.iter().enumerate() {
            let next = members[(k + 1) % members.len()];
            plans[i].private_to = plans[next].name.clone();
        }
    }
    plans
}

#[test]
fn a_thousand_mixed_clients_join_chat_and_leave_without_loss_or_leftovers() {
    let server = Arc::new(TestServer::start());
    let plans = plans();
    assert_eq!(plans.len(), 1000);
    let mut namespace_sizes: HashMap<&str, usize> = HashMap::new();
    for plan in &plans {
        *namespace_sizes.entry(plan.namespace).or_default() += 1;
    }
    let joined = Arc::new(Barrier::new(plans.len()));
    let done = Arc::new(Barrier::new(plans.len()));
    let mut threads = Vec::new();
    for plan in plans {
        let (server, joined, done) = (server.clone(), joined.clone(), done.clone());
        let peers = namespace_sizes[plan.namespace] - 1;
        let thread = thread::Builder::new().stack_size(256 * 1024).spawn(move || {
            let mut conn = match plan.kind {
                Kind::LegacyTcp => {
                    let mut user = Legacy::connect(&server);
                    user.send(&plan.name);
                    Conn::Tcp(user)
                }
                Kind::LegacyWs => {
                    let mut ws = server.ws("/legacy");
                    ws.send(Message::text(plan.name.clone())).unwrap();
                    Conn::Ws(Box::new(ws), Kind::LegacyWs)
                }
                Kind::Json => {
                    let mut ws = server.ws(plan.path);
                    ws.send(Message::text(json!({"type":"hello","name":plan.name}).to_string())).unwrap();
                    match next_data(&mut ws) {
                        Message::Text(text) => assert!(text.as_str().contains("\"welcome\""), "{text}"),
                        other => panic!("{other:?}"),
                    }
                    Conn::Ws(Box::new(ws), Kind::Json)
                }
            };
            joined.wait();
            for seq in 0..MESSAGES_PER_USER {
                conn.send_lobby(seq);
            }
            conn.send_private(&plan.name, &plan.private_to);
            let mut inbox = Inbox::default();
            let expected = peers * MESSAGES_PER_USER;
            let deadline = Instant::now() + Duration::from_secs(60);
            while inbox.lobby.values().map(Vec::len).sum::<usize>() < expected || inbox.private.is_empty() {
                assert!(Instant::now() < deadline, "{} timed out", plan.name);
                conn.receive(&mut inbox);
            }
            done.wait();
            // Exactly once, in each sender's order.
            assert_eq!(inbox.lobby.len(), peers, "{} heard from every peer", plan.name);
            for (from, seqs) in &inbox.lobby {
                assert_eq!(seqs, &(0..MESSAGES_PER_USER).collect::<Vec<_>>(), "{} from {from}", plan.name);
            }
            assert_eq!(inbox.private.len(), 1, "{}: {:?}", plan.name, inbox.private);
            let (from, text) = &inbox.private[0];
            assert_eq!(text, &format!("secret from {from}"));
            match conn {
                Conn::Tcp(mut user) => user.send("/quit"),
                Conn::Ws(mut ws, _) => {
                    let _ = ws.close(None);
                    while ws.read().is_ok() {}
                }
            }
        });
        threads.push(thread.expect("spawn a client thread"));
    }
    for thread in threads {
        thread.join().expect("a client thread");
    }

    // Everyone has left: no user, room, queued byte or chat connection remains.
    let deadline = Instant::now() + WAIT;
    let chat_connections = |server: &TestServer| {
        metric(server, "soket_connections{protocol=\"legacy\"}")
            + metric(server, "soket_connections{protocol=\"websocket\"}")
    };
    while metric(&server, "soket_users") > 0.0 || chat_connections(&server) > 0.0 {
        assert!(Instant::now() < deadline, "users or connections left behind");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(metric(&server, "soket_users"), 0.0);
    assert_eq!(metric(&server, "soket_rooms"), 0.0);
    assert_eq!(metric(&server, "soket_queued_bytes"), 0.0);
    assert_eq!(metric(&server, "soket_connections{protocol=\"websocket\"}"), 0.0);
    assert_eq!(metric(&server, "soket_connections{protocol=\"legacy\"}"), 0.0);
    assert_eq!(metric(&server, "soket_slow_consumer_disconnects_total"), 0.0);
}
