//! The server API (docs/SERVER.md) over loopback: keys, limits, and what each
//! endpoint does to real clients of several protocols.

mod common;

use std::io::Write;

use common::{Json, Legacy, TestServer, read_response};
use serde_json::{Value, json};

const KEY: &str = "s3cret-key";

fn server(extra: &[&str]) -> TestServer {
    let mut args = vec!["--api-key", KEY];
    args.extend_from_slice(extra);
    TestServer::with_args(&args)
}

/// `POST path` with `auth` as the Authorization value (none when `None`).
fn post(server: &TestServer, path: &str, auth: Option<&str>, body: &[u8]) -> common::HttpResponse {
    let mut stream = server.tcp();
    let auth = auth.map_or_else(String::new, |a| format!("Authorization: {a}\r\n"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    // A refused body may be cut short by the server's close: its answer still comes.
    let _ = stream.write_all(&bytes);
    read_response(&mut stream).expect("an answer")
}

fn api(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let response = post(server, path, Some(&format!("apikey {KEY}")), body.to_string().as_bytes());
    let value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, value)
}

#[test]
fn without_a_key_the_api_is_absent() {
    let server = TestServer::start();
    for auth in [None, Some("apikey x")] {
        assert_eq!(post(&server, "/api/info", auth, b"{}").status, 404);
    }
}

#[test]
fn keys_are_checked() {
    let server = server(&[]);
    let none = post(&server, "/api/info", None, b"{}");
    assert_eq!(none.status, 401);
    assert_eq!(none.header("WWW-Authenticate"), Some("apikey"));
    assert_eq!(post(&server, "/api/info", Some("Bearer s3cret-key"), b"{}").status, 401);
    for wrong in ["apikey s3cret-kez", "apikey s3cret", "apikey s3cret-key-longer", "apikey "] {
        let status = post(&server, "/api/info", Some(wrong), b"{}").status;
        assert!(status == 403 || status == 401, "{wrong}: {status}");
    }
    assert_eq!(post(&server, "/api/info", Some("APIKEY s3cret-key"), b"{}").status, 200);
    assert_eq!(post(&server, "/api/nope", Some("apikey s3cret-key"), b"{}").status, 404);
    let (status, info) = api(&server, "/api/info", json!({}));
    assert_eq!((status, info["ok"].clone()), (200, json!(true)));
}

#[test]
fn bad_bodies_are_refused_cleanly() {
    let server = server(&[]);
    let auth = Some("apikey s3cret-key");
    assert_eq!(post(&server, "/api/publish", auth, b"not json").status, 400);
    assert_eq!(post(&server, "/api/publish", auth, br#"{"room":5}"#).status, 400);
    assert_eq!(post(&server, "/api/publish", auth, br#"{"room":"r","text":"x","bogus":1}"#).status, 400);
    // A nesting bomb: serde_json's depth limit, a 400, quickly.
    let bomb = format!(r#"{{"event":"e","data":{}}}"#, "[".repeat(60_000));
    let started = std::time::Instant::now();
    let response = post(&server, "/api/publish", auth, bomb.as_bytes());
    assert_eq!(response.status, 400, "{}", response.body_text());
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // Over --api-max-body (64 KiB) but under --max-body: 413 from the API.
    let big = format!(r#"{{"room":"lobby","text":"{}"}}"#, "a".repeat(100_000));
    assert_eq!(post(&server, "/api/publish", auth, big.as_bytes()).status, 413);
    // 1 MB and more: over --max-body, refused before it is read.
    let huge = vec![b' '; 2 << 20];
    assert_eq!(post(&server, "/api/publish", auth, &huge).status, 413);
    // Still serving.
    assert_eq!(api(&server, "/api/info", json!({})).0, 200);
}

#[test]
fn a_flood_is_rate_limited() {
    let server = server(&["--api-rate", "5", "--api-burst", "5"]);
    let statuses: Vec<u16> = (0..20).map(|_| api(&server, "/api/info", json!({})).0).collect();
    assert!(statuses.iter().take(5).all(|&s| s == 200), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let limited = post(&server, "/api/info", Some("apikey s3cret-key"), b"{}");
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("Retry-After"), Some("1"));
}

#[test]
fn publish_reaches_every_protocol() {
    let server = server(&[]);
    let (mut legacy, _) = Legacy::join(&server, "lena");
    let (mut json_user, _) = Json::join(&server, "/ws", "jo");
    let (status, answer) = api(&server, "/api/publish", json!({"room": "lobby", "text": "hello all"}));
    assert_eq!((status, &answer["ok"]), (200, &json!(true)), "{answer}");
    assert_eq!(answer["delivered"], 2);
    assert_eq!(legacy.line_where(|l| l.starts_with('#')), "#lobby server : hello all");
    let message = json_user.next_of("message");
    assert_eq!((message["from"].as_str(), message["text"].as_str()), (Some("server"), Some("hello all")));

    // Private, with a sender name.
    let (status, _) = api(&server, "/api/publish", json!({"user": "jo", "text": "psst", "from": "admin"}));
    assert_eq!(status, 200);
    let private = json_user.next_of("private");
    assert_eq!((private["from"].as_str(), private["text"].as_str()), (Some("admin"), Some("psst")));
    assert_eq!(api(&server, "/api/publish", json!({"user": "lena", "text": "hi"})).0, 200);
    assert_eq!(legacy.line_where(|l| !l.starts_with("3$")), "server : hi");

    // A custom event to the namespace: events members only.
    let (status, answer) =
        api(&server, "/api/publish", json!({"namespace": "/", "event": "news", "data": {"n": [1, 2]}}));
    assert_eq!((status, answer["delivered"].clone()), (200, json!(1)));
    let event = json_user.next_of("event");
    assert_eq!((event["event"].as_str(), &event["data"]), (Some("news"), &json!({"n": [1, 2]})));

    // Errors: unknown room and user, bad names.
    let (status, answer) = api(&server, "/api/publish", json!({"room": "nowhere", "text": "x"}));
    assert_eq!((status, answer["error"].as_str()), (404, Some("no_such_room")));
    let (status, answer) = api(&server, "/api/publish", json!({"user": "ghost", "text": "x"}));
    assert_eq!((status, answer["error"].as_str()), (404, Some("no_such_user")));
    let (status, answer) = api(&server, "/api/publish", json!({"room": "lobby", "text": "x", "from": "bad name"}));
    assert_eq!((status, answer["error"].as_str()), (400, Some("name_invalid")));
    assert_eq!(api(&server, "/api/publish", json!({"room": "lobby"})).0, 400);
    assert_eq!(api(&server, "/api/publish", json!({"namespace": "nope", "room": "lobby", "text": "x"})).0, 400);
}

#[test]
fn disconnect_presence_and_info() {
    let server = server(&[]);
    let (mut json_user, _) = Json::join(&server, "/ws", "jo");
    let (mut legacy, _) = Legacy::join(&server, "lena");
    json_user.send(json!({"type": "join", "room": "r1"}));
    legacy.send("/join r1");
    legacy.line_where(|l| l == "!JOINED r1 lena");

    let (status, answer) = api(&server, "/api/presence", json!({"room": "r1"}));
    assert_eq!((status, &answer["members"]), (200, &json!(["jo", "lena"])), "{answer}");
    assert_eq!(api(&server, "/api/presence", json!({"room": "empty"})).0, 404);

    let (status, info) = api(&server, "/api/info", json!({}));
    assert_eq!(status, 200);
    assert_eq!((info["users"].clone(), info["rooms"].clone()), (json!(2), json!(2)), "{info}");
    assert_eq!(info["namespaces"], json!([{"name": "/", "users": 2}]));

    let (status, _) = api(&server, "/api/disconnect", json!({"user": "lena", "reason": "bye now"}));
    assert_eq!(status, 200);
    assert_eq!(legacy.line_where(|l| l.starts_with("!ERR")), "!ERR disconnected bye now");
    assert!(legacy.closed());
    let (status, _) = api(&server, "/api/disconnect", json!({"user": "jo"}));
    assert_eq!(status, 200);
    let error = json_user.next_of("error");
    assert_eq!(error["code"], "disconnected");
    common::expect_close(&mut json_user.ws);
    let (status, answer) = api(&server, "/api/disconnect", json!({"user": "jo"}));
    assert_eq!((status, answer["error"].as_str()), (404, Some("no_such_user")));
    assert_eq!(api(&server, "/api/info", json!({})).1["users"], 0);
}
