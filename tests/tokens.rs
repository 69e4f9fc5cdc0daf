//! Connection tokens (docs/AUTH.md) with real clients: `/ws` (tungstenite)
//! and legacy TCP. Tokens are signed here, HS256 with a test secret and
//! ES256 with a key made at test time.

mod common;

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Json, Legacy, TestServer, expect_close};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const SECRET: &str = "test-secret-0123456789";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn sign(claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

fn token(sub: &str) -> String {
    sign(&json!({"sub": sub, "exp": now() + 600}))
}

fn server() -> TestServer {
    TestServer::with_args(&["--token-secret", SECRET, "--token-leeway", "0s"])
}

/// An `unsigned` token (`alg: none`), as an attacker would forge one.
fn alg_none(sub: &str) -> String {
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(json!({"sub": sub, "exp": now() + 600}).to_string());
    format!("{head}.{body}.")
}

/// A `/ws` client that proves it is still served.
fn neighbour(server: &TestServer) -> Json {
    let (user, _) = Json::join(server, &format!("/ws?token={}", token("carol")), "carol");
    user
}

fn still_served(user: &mut Json) {
    user.send(json!({"type": "who", "room": "lobby", "id": 9}));
    let members = user.next_of("members");
    assert_eq!(members["id"], 9);
}

#[test]
fn a_valid_token_signs_in_on_ws_by_query_header_and_hello() {
    let server = server();
    let (mut alice, welcome) = Json::join(&server, &format!("/ws?token={}", token("alice")), "alice");
    assert_eq!(welcome["name"], "alice");
    // Authorization: Bearer on the upgrade, then a hello without a name takes the token's.
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(server.url("/ws")).unwrap();
    request.headers_mut().insert("Authorization", format!("Bearer {}", token("bob")).parse().unwrap());
    let (ws, _) = tungstenite::client::client(request, server.tcp()).unwrap();
    let mut bob = Json { ws };
    bob.send(json!({"type": "hello"}));
    assert_eq!(bob.next_of("welcome")["name"], "bob");
    // In hello itself.
    let mut dave = Json::connect(&server, "/ws");
    dave.send(json!({"type": "hello", "name": "dave", "token": token("dave"), "id": 1}));
    let welcome = dave.next_of("welcome");
    assert_eq!((welcome["name"].as_str(), welcome["id"].as_i64()), (Some("dave"), Some(1)));
    still_served(&mut alice);
}

/// Tokens every protocol must refuse: what each is, the `/metrics`
/// reason it is counted under, and the token.
fn bad_tokens() -> Vec<(&'static str, &'static str, String)> {
    let other_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "eve", "exp": now() + 600}),
        &EncodingKey::from_secret(b"another secret"),
    )
    .unwrap();
    let claims = Value::Object((0..10_000).map(|i| (format!("c{i}"), json!(i))).collect());
    vec![
        ("expired", "expired", sign(&json!({"sub": "eve", "exp": now() - 30}))),
        ("wrongly signed", "bad_signature", other_key),
        ("alg none", "malformed", alg_none("eve")),
        ("no exp", "missing_exp", sign(&json!({"sub": "eve"}))),
        ("not yet valid", "not_yet_valid", sign(&json!({"sub": "eve", "exp": now() + 600, "nbf": now() + 300}))),
        ("over-long", "too_large", sign(&json!({"sub": "eve", "exp": now() + 600, "pad": "x".repeat(7000)}))),
        ("one megabyte", "too_large", sign(&json!({"sub": "eve", "exp": now() + 600, "pad": "x".repeat(1 << 20)}))),
        ("10 000 claims", "too_large", sign(&claims)),
        ("bad name", "bad_claims", sign(&json!({"sub": "no spaces", "exp": now() + 600}))),
        ("garbage", "malformed", "a.b.c".to_owned()),
    ]
}

#[test]
fn bad_tokens_on_ws_get_unauthorized_and_4001_while_a_neighbour_is_undisturbed() {
    let server = server();
    let mut carol = neighbour(&server);
    let bad = bad_tokens();
    for (what, _, bad) in &bad {
        // In hello.
        let mut eve = Json::connect(&server, "/ws");
        eve.send(json!({"type": "hello", "name": "eve", "token": bad}));
        let error = eve.next_of("error");
        assert_eq!(error["code"], "unauthorized", "{what}: {error}");
        assert_eq!(expect_close(&mut eve.ws), Some(4001), "{what}");
        // In the upgrade: past --max-head the request itself is refused (431).
        if bad.len() > 7000 {
            let mut stream = server.tcp();
            let request = common::upgrade_request(&format!("/ws?token={bad}"), "");
            stream.write_all(&request).unwrap();
            assert_eq!(common::read_response(&mut stream).map(|r| r.status), Some(431), "{what}");
        } else {
            let mut eve = Json::connect(&server, &format!("/ws?token={bad}"));
            assert_eq!(eve.next_of("error")["code"], "unauthorized", "{what}");
            assert_eq!(expect_close(&mut eve.ws), Some(4001), "{what}");
        }
        still_served(&mut carol);
    }
    // No token at all.
    let mut eve = Json::connect(&server, "/ws");
    eve.send(json!({"type": "hello", "name": "eve"}));
    assert_eq!(eve.next_of("error")["code"], "unauthorized");
    assert_eq!(expect_close(&mut eve.ws), Some(4001));
    let mut eve = Json::connect(&server, "/ws?name=eve");
    assert_eq!(eve.next_of("error")["code"], "unauthorized");
    assert_eq!(expect_close(&mut eve.ws), Some(4001));
    still_served(&mut carol);
}

fn refused(server: &TestServer, reason: &str) -> f64 {
    common::metric(server, &format!("soket_tokens_refused_total{{reason=\"{reason}\"}}"))
}

#[test]
fn metrics_count_tokens_accepted_refused_by_reason_and_expired() {
    let server = server();
    let bad = bad_tokens();
    for (what, _, bad) in &bad {
        let mut eve = Json::connect(&server, "/ws");
        eve.send(json!({"type": "hello", "name": "eve", "token": bad}));
        assert_eq!(eve.next_of("error")["code"], "unauthorized", "{what}");
        assert_eq!(expect_close(&mut eve.ws), Some(4001), "{what}");
    }
    // A refresh for another name, and one that is accepted.
    let (mut kept, _) = Json::join(&server, &format!("/ws?token={}", token("kept")), "kept");
    kept.send(json!({"type": "refresh", "token": token("other"), "id": 1}));
    assert_eq!(kept.next_of("error")["code"], "forbidden");
    kept.send(json!({"type": "refresh", "token": token("kept"), "id": 2}));
    assert_eq!(kept.next_of("ack")["id"], 2);
    // A live connection cut at its token's expiry.
    let short = sign(&json!({"sub": "brief", "exp": now() + 1}));
    let (mut brief, _) = Json::join(&server, &format!("/ws?token={short}"), "brief");
    assert_eq!(brief.next_of("error")["code"], "token_expired");
    for reason in ["expired", "bad_signature", "malformed", "missing_exp", "not_yet_valid", "too_large", "bad_claims"] {
        let sent = bad.iter().filter(|(_, why, _)| *why == reason).count();
        assert!(sent > 0, "{reason} is tried");
        assert_eq!(refused(&server, reason), sent as f64, "{reason}");
    }
    assert_eq!(refused(&server, "wrong_name"), 1.0);
    assert_eq!(common::metric(&server, "soket_tokens_accepted_total"), 3.0);
    assert_eq!(common::metric(&server, "soket_tokens_expired_total"), 1.0);
}

#[test]
fn the_name_must_be_the_tokens_and_rooms_must_be_listed() {
    let server = server();
    let mut carol = neighbour(&server);
    let mut mallory = Json::connect(&server, &format!("/ws?token={}", token("mallory")));
    mallory.send(json!({"type": "hello", "name": "carol2"}));
    let error = mallory.next_of("error");
    assert_eq!(error["code"], "forbidden", "{error}");
    let limited = sign(&json!({"sub": "limited", "exp": now() + 600, "rooms": ["team-*", "news"]}));
    let (mut limited, _) = Json::join(&server, &format!("/ws?token={limited}"), "limited");
    for (room, allowed) in [("team-a", true), ("news", true), ("secret", false), ("newsroom", false)] {
        limited.send(json!({"type": "join", "room": room, "id": 1}));
        let answer = limited.next();
        if allowed {
            assert!(answer["type"] == "joined" || answer["type"] == "ack", "{room}: {answer}");
            if answer["type"] == "joined" {
                assert_eq!(limited.next()["type"], "ack");
            }
        } else {
            assert_eq!(
                (answer["type"].as_str(), answer["code"].as_str()),
                (Some("error"), Some("forbidden")),
                "{room}"
            );
        }
    }
    still_served(&mut carol);
}

#[test]
fn exp_cuts_a_live_ws_connection_and_refresh_extends_it() {
    let server = server();
    let mut carol = neighbour(&server);
    let short = sign(&json!({"sub": "brief", "exp": now() + 2}));
    let (mut brief, _) = Json::join(&server, &format!("/ws?token={short}"), "brief");
    let started = Instant::now();
    let error = brief.next_of("error");
    assert_eq!(error["code"], "token_expired", "{error}");
    assert_eq!(expect_close(&mut brief.ws), Some(4001));
    assert!(started.elapsed() < Duration::from_secs(4), "cut at exp ({:?})", started.elapsed());
    // Refreshed before it runs out: still there after the first exp.
    let short = sign(&json!({"sub": "kept", "exp": now() + 2}));
    let (mut kept, _) = Json::join(&server, &format!("/ws?token={short}"), "kept");
    kept.send(json!({"type": "refresh", "token": sign(&json!({"sub": "kept", "exp": now() + 600})), "id": 5}));
    assert_eq!(kept.next_of("ack")["id"], 5);
    // A refresh for another name is refused, the connection stays.
    kept.send(json!({"type": "refresh", "token": token("other"), "id": 6}));
    assert_eq!(kept.next_of("error")["code"], "forbidden");
    // Carol's expiry-free wait: her who goes round while kept's first exp passes.
    std::thread::sleep(Duration::from_millis(2500));
    still_served(&mut carol);
    kept.send(json!({"type": "who", "room": "lobby", "id": 7}));
    assert_eq!(kept.next_of("members")["id"], 7);
}

#[test]
fn legacy_signs_in_with_a_token_line_and_plain_names_need_the_flag() {
    let server = server();
    let mut carol = neighbour(&server);
    let mut alice = Legacy::connect(&server);
    alice.send(&format!("token:{}", token("alice")));
    assert!(alice.line().starts_with("3$*$*3"), "the online list");
    // A plain name: refused.
    let mut old = Legacy::connect(&server);
    old.send("oldtimer");
    assert_eq!(old.line(), "!ERR unauthorized");
    assert!(old.closed());
    // Bad tokens: refused, alice and carol undisturbed.
    for bad in
        [sign(&json!({"sub": "eve", "exp": now() - 30})), alg_none("eve"), "x".repeat(10_000), "x".repeat(1 << 20)]
    {
        let mut eve = Legacy::connect(&server);
        eve.send(&format!("token:{bad}"));
        assert_eq!(eve.line(), "!ERR unauthorized");
        assert!(eve.closed());
    }
    alice.send("/who lobby");
    assert!(alice.line().contains("alice"));
    still_served(&mut carol);
    // Expiry cuts a legacy connection too.
    let mut brief = Legacy::connect(&server);
    brief.send(&format!("token:{}", sign(&json!({"sub": "brief", "exp": now() + 1}))));
    assert!(brief.line().starts_with("3$*$*3"));
    assert_eq!(brief.line_where(|l| l.starts_with("!ERR")), "!ERR token_expired");
    assert!(brief.closed());
    assert_eq!(common::metric(&server, "soket_tokens_expired_total"), 1.0);
}

#[test]
fn legacy_anonymous_lets_plain_names_in() {
    let server = TestServer::with_args(&["--token-secret", SECRET, "--legacy-anonymous"]);
    let (_old, list) = Legacy::join(&server, "oldtimer");
    assert!(list.starts_with("3$*$*3"));
    // JSON clients still need a token.
    let mut eve = Json::connect(&server, "/ws");
    eve.send(json!({"type": "hello", "name": "eve"}));
    assert_eq!(eve.next_of("error")["code"], "unauthorized");
}

#[test]
fn es256_tokens_from_a_public_key() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let dir = std::env::temp_dir().join(format!("soket-es256-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let public = dir.join("public.pem");
    std::fs::write(&public, key.public_key_pem()).unwrap();
    let server = TestServer::with_args(&["--token-public-key", public.to_str().unwrap()]);
    let private = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
    let good = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &json!({"sub": "ec", "exp": now() + 60}), &private)
        .unwrap();
    let (_ec, welcome) = Json::join(&server, &format!("/ws?token={good}"), "ec");
    assert_eq!(welcome["name"], "ec");
    // HS256 signed with the public key as the secret: the algorithm is pinned.
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "eve", "exp": now() + 60}),
        &EncodingKey::from_secret(key.public_key_pem().as_bytes()),
    )
    .unwrap();
    let mut eve = Json::connect(&server, &format!("/ws?token={confused}"));
    assert_eq!(eve.next_of("error")["code"], "unauthorized");
    assert_eq!(expect_close(&mut eve.ws), Some(4001));
    assert_eq!(refused(&server, "malformed"), 1.0, "the confusion is counted as malformed");
    assert_eq!(refused(&server, "bad_signature"), 0.0);
    let _ = std::fs::remove_dir_all(dir);
}

/// Sends one STOMP frame over raw TCP and reads the answer frame (up to NUL).
fn stomp_frame(stream: &mut std::net::TcpStream, frame: &str) -> String {
    use std::io::Read;
    stream.write_all(frame.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while stream.read(&mut byte).unwrap_or(0) == 1 {
        if byte[0] == 0 {
            break;
        }
        got.push(byte[0]);
    }
    String::from_utf8_lossy(&got).trim_start_matches('\n').to_owned()
}

#[test]
fn stomp_takes_the_token_as_passcode_and_refuses_bad_ones_with_an_error_frame() {
    let server = server();
    let mut carol = neighbour(&server);
    let mut alice = server.tcp();
    let connected = stomp_frame(&mut alice, &format!("CONNECT\naccept-version:1.2\npasscode:{}\n\n\0", token("alice")));
    assert!(connected.starts_with("CONNECTED\n") && connected.contains("user-name:alice"), "{connected}");
    for (what, frame) in [
        ("no token", "CONNECT\naccept-version:1.2\nlogin:eve\n\n\0".to_owned()),
        ("expired", format!("CONNECT\naccept-version:1.2\npasscode:{}\n\n\0", sign(&json!({"sub": "eve", "exp": 1})))),
        ("alg none", format!("CONNECT\naccept-version:1.2\ntoken:{}\n\n\0", alg_none("eve"))),
        ("other name", format!("CONNECT\naccept-version:1.2\nlogin:eve\npasscode:{}\n\n\0", token("mallory"))),
    ] {
        let mut eve = server.tcp();
        let error = stomp_frame(&mut eve, &frame);
        assert!(error.starts_with("ERROR\n"), "{what}: {error}");
        let code = if what == "other name" { "forbidden" } else { "unauthorized" };
        assert!(error.contains(&format!("code:{code}")), "{what}: {error}");
    }
    // The rooms claim holds for SUBSCRIBE /topic/ROOM.
    let limited = sign(&json!({"sub": "limited", "exp": now() + 600, "rooms": ["news"]}));
    let mut limited_client = server.tcp();
    let connected = stomp_frame(&mut limited_client, &format!("CONNECT\naccept-version:1.2\npasscode:{limited}\n\n\0"));
    assert!(connected.starts_with("CONNECTED\n"), "{connected}");
    let error = stomp_frame(&mut limited_client, "SUBSCRIBE\nid:1\ndestination:/topic/secret\n\n\0");
    assert!(error.starts_with("ERROR\n") && error.contains("code:forbidden"), "{error}");
    still_served(&mut carol);
}

/// A Socket.IO client over Engine.IO's WebSocket transport, speaking the
/// packets by hand: `0` open, `40` CONNECT with `auth`, `42` events.
fn socketio(server: &TestServer) -> common::Client {
    let mut ws = server.ws("/socket.io/?EIO=4&transport=websocket");
    let open = socketio_next(&mut ws);
    assert!(open.starts_with("0{"), "the Engine.IO open packet: {open}");
    ws
}

/// The next Socket.IO text, answering Engine.IO pings on the way.
fn socketio_next(ws: &mut common::Client) -> String {
    loop {
        match common::next_data(ws) {
            tungstenite::Message::Text(text) if text.as_str() == "2" => {
                ws.send(tungstenite::Message::text("3")).unwrap()
            }
            tungstenite::Message::Text(text) => return text.as_str().to_owned(),
            other => panic!("expected text, got {other:?}"),
        }
    }
}

fn socketio_send(ws: &mut common::Client, text: &str) {
    ws.send(tungstenite::Message::text(text)).unwrap();
}

#[test]
fn socketio_takes_the_token_in_auth_and_refuses_with_connect_error() {
    let server = server();
    let mut carol = neighbour(&server);
    // A valid token, no name: the token's name is taken.
    let mut alice = socketio(&server);
    socketio_send(&mut alice, &format!(r#"40{{"token":"{}"}}"#, token("alice")));
    let connected = socketio_next(&mut alice);
    assert!(connected.starts_with(r#"40{"sid":"#), "{connected}");
    socketio_send(&mut alice, r#"42["who",{"room":"lobby"}]"#);
    let members = socketio_next(&mut alice);
    assert!(members.contains("alice") && members.contains("carol"), "{members}");
    for (what, auth) in [
        ("no token", r#"{"name":"eve"}"#.to_owned()),
        ("expired", format!(r#"{{"token":"{}"}}"#, sign(&json!({"sub": "eve", "exp": 1})))),
        ("alg none", format!(r#"{{"token":"{}"}}"#, alg_none("eve"))),
        ("wrongly signed", format!(r#"{{"token":"{}x"}}"#, token("eve"))),
        ("over-long", format!(r#"{{"token":"{}"}}"#, "a".repeat(20_000))),
    ] {
        let mut eve = socketio(&server);
        socketio_send(&mut eve, &format!("40{auth}"));
        let refused = socketio_next(&mut eve);
        assert!(refused.starts_with(r#"44{"message":"unauthorized""#), "{what}: {refused}");
    }
    // Another name than the token's: the name's refusal.
    let mut mallory = socketio(&server);
    socketio_send(&mut mallory, &format!(r#"40{{"name":"carol2","token":"{}"}}"#, token("mallory")));
    let refused = socketio_next(&mut mallory);
    assert!(refused.starts_with("44{") && refused.contains("forbidden"), "{refused}");
    still_served(&mut carol);
    // Expiry: the server disconnects the namespace.
    let mut brief = socketio(&server);
    socketio_send(&mut brief, &format!(r#"40{{"token":"{}"}}"#, sign(&json!({"sub": "brief", "exp": now() + 1}))));
    assert!(socketio_next(&mut brief).starts_with("40{"));
    loop {
        let packet = socketio_next(&mut brief);
        if packet == "41" {
            break;
        }
    }
    assert_eq!(common::metric(&server, "soket_tokens_expired_total"), 1.0);
}

/// `openssl` makes an RSA key (rcgen cannot); skipped where it is missing.
fn openssl(args: &[&str]) -> bool {
    std::process::Command::new("openssl").args(args).output().is_ok_and(|out| out.status.success())
}

#[test]
fn rs256_tokens_from_an_rsa_public_key_and_other_curves_refused_at_start() {
    let dir = std::env::temp_dir().join(format!("soket-rs256-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (private, public) = (dir.join("rsa.pem"), dir.join("rsa.pub.pem"));
    let (private_s, public_s) = (private.to_str().unwrap(), public.to_str().unwrap());
    if !openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", private_s])
        || !openssl(&["pkey", "-in", private_s, "-pubout", "-out", public_s])
    {
        eprintln!("openssl not available: RS256 test skipped");
        return;
    }
    let server = TestServer::with_args(&["--token-public-key", public_s]);
    let key = EncodingKey::from_rsa_pem(&std::fs::read(&private).unwrap()).unwrap();
    let good =
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &json!({"sub": "rsa", "exp": now() + 60}), &key).unwrap();
    let (_rsa, welcome) = Json::join(&server, &format!("/ws?token={good}"), "rsa");
    assert_eq!(welcome["name"], "rsa");
    let mut eve = Json::connect(&server, &format!("/ws?token={}", token("eve")));
    assert_eq!(eve.next_of("error")["code"], "unauthorized", "an HS256 token under an RSA key");
    // A P-384 key would verify nothing: refused when the daemon starts.
    let p384 = dir.join("p384.pub.pem");
    let p384_private = dir.join("p384.pem");
    if openssl(&["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", p384_private.to_str().unwrap()])
        && openssl(&["ec", "-in", p384_private.to_str().unwrap(), "-pubout", "-out", p384.to_str().unwrap()])
    {
        let mut config =
            <soket::Config as clap::Parser>::parse_from(["soket", "--token-public-key", p384.to_str().unwrap()]);
        let error = config.load_files().unwrap_err();
        assert!(error.contains("P-256"), "{error}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn token_flags() {
    use clap::Parser;
    let dir = std::env::temp_dir().join(format!("soket-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let server = TestServer::with_args(&["--token-secret-file", file.to_str().unwrap()]);
    let (_alice, welcome) = Json::join(&server, &format!("/ws?token={}", token("alice")), "alice");
    assert_eq!(welcome["name"], "alice");
    // One key source at a time; an empty secret is refused.
    assert!(soket::Config::try_parse_from(["soket", "--token-secret", "a", "--token-public-key", "k.pem"]).is_err());
    assert!(soket::Config::try_parse_from(["soket", "--token-secret", "a", "--token-secret-file", "f"]).is_err());
    let mut empty = soket::Config::parse_from(["soket", "--token-secret", ""]);
    empty.load_files().unwrap();
    assert!(empty.validate().is_err());
    // Off by default: anyone signs in as before.
    let plain = TestServer::start();
    let (_bob, welcome) = Json::join(&plain, "/ws", "bob");
    assert_eq!(welcome["name"], "bob");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_token_for_ever_connects_and_arms_no_overflowing_deadline() {
    let server = server();
    let forever = sign(&json!({"sub": "forever", "exp": u64::MAX}));
    let (mut forever, _) = Json::join(&server, &format!("/ws?token={forever}"), "forever");
    still_served(&mut forever);
}

/// A token for `sub` that runs out at `exp` (seconds since the epoch).
fn until(sub: &str, exp: u64) -> String {
    sign(&json!({"sub": sub, "exp": exp}))
}

#[test]
fn legacy_refresh_with_a_token_line() {
    let server = server();
    // Both start with the same short token: `cut` is the clock that says
    // when `kept`'s first token ran out.
    let exp = now() + 2;
    let mut kept = Legacy::connect(&server);
    kept.send(&format!("token:{}", until("kept", exp)));
    assert!(kept.line().starts_with("3$*$*3"));
    let mut cut = Legacy::connect(&server);
    cut.send(&format!("token:{}", until("cut", exp)));
    assert!(cut.line().starts_with("3$*$*3"));
    // No answer to a good refresh; refusals are errors and the connection stays.
    kept.send(&format!("token:{}", until("kept", now() + 600)));
    kept.send(&format!("token:{}", token("other")));
    assert_eq!(kept.line_where(|l| l.starts_with("!ERR")), "!ERR forbidden");
    cut.send("token:a.b.c");
    assert_eq!(cut.line_where(|l| l.starts_with("!ERR")), "!ERR unauthorized");
    cut.send(&format!("token:{}", until("cut", now() - 30)));
    assert_eq!(cut.line_where(|l| l.starts_with("!ERR")), "!ERR unauthorized");
    // The refused refresh left the old cutoff: it still cuts.
    assert_eq!(cut.line_where(|l| l.starts_with("!ERR")), "!ERR token_expired");
    assert!(cut.closed());
    kept.send("/who lobby");
    let members = kept.line_where(|l| l.starts_with('!'));
    assert!(members.starts_with("!MEMBERS lobby") && members.contains("kept"), "{members}");
    // A signed-in anonymous user's `token:` line is a chat line.
    let anonymous = TestServer::with_args(&["--token-secret", SECRET, "--legacy-anonymous"]);
    let (mut old, _) = Legacy::join(&anonymous, "oldtimer");
    let (mut other, _) = Legacy::join(&anonymous, "other");
    old.send("token:abc");
    assert_eq!(other.line_where(|l| l.starts_with('#')), "#lobby oldtimer : token:abc");
}

#[test]
fn legacy_token_lines_are_chat_lines_without_tokens() {
    let server = TestServer::start();
    let (mut alice, _) = Legacy::join(&server, "alice");
    let (mut bob, _) = Legacy::join(&server, "bob");
    alice.send(&format!("token:{}", token("alice")));
    assert_eq!(bob.line_where(|l| l.starts_with('#')), format!("#lobby alice : token:{}", token("alice")));
}

#[test]
fn stomp_refresh_is_a_send_to_soket_token() {
    let server = server();
    let exp = now() + 2;
    let connect = |sub: &str| {
        let mut client = server.tcp();
        let frame = format!("CONNECT\naccept-version:1.2\npasscode:{}\n\n\0", until(sub, exp));
        assert!(stomp_frame(&mut client, &frame).starts_with("CONNECTED\n"));
        let subscribed = stomp_frame(&mut client, "SUBSCRIBE\nid:e\ndestination:/user/queue/errors\nreceipt:s\n\n\0");
        assert!(subscribed.starts_with("RECEIPT\n"), "{subscribed}");
        client
    };
    let (mut kept, mut cut) = (connect("kept"), connect("cut"));
    let refresh = |token: &str| format!("SEND\ndestination:/soket/token\ntoken:{token}\nreceipt:r\n\n\0");
    let receipt = stomp_frame(&mut kept, &refresh(&until("kept", now() + 600)));
    assert_eq!(receipt, "RECEIPT\nreceipt-id:r\n\n");
    let refused = |answer: &str, code: &str| {
        assert!(answer.starts_with("MESSAGE\n") && answer.contains("destination:/user/queue/errors"), "{answer}");
        assert!(answer.contains(&format!(r#""code":"{code}""#)) && answer.contains(r#""receipt-id":"r""#), "{answer}");
    };
    refused(&stomp_frame(&mut kept, &refresh(&token("other"))), "forbidden");
    refused(&stomp_frame(&mut cut, &refresh("a.b.c")), "unauthorized");
    refused(&stomp_frame(&mut cut, "SEND\ndestination:/soket/token\nreceipt:r\n\n\0"), "missing_field");
    // The old cutoff still cuts the refused one, and not the refreshed one.
    let error = stomp_frame(&mut cut, "");
    assert!(error.starts_with("ERROR\n") && error.contains("code:token_expired"), "{error}");
    let receipt = stomp_frame(&mut kept, "SEND\ndestination:/topic/lobby\nreceipt:after\n\nhi\0");
    assert_eq!(receipt, "RECEIPT\nreceipt-id:after\n\n");
}

/// Socket.IO texts until one starts with `prefix` (presence and other
/// events on the way are skipped).
fn socketio_until(ws: &mut common::Client, prefix: &str) -> String {
    loop {
        let packet = socketio_next(ws);
        if packet.starts_with(prefix) {
            return packet;
        }
    }
}

#[test]
fn socketio_refresh_is_a_reserved_event_with_an_ack() {
    let server = server();
    let exp = now() + 2;
    let connect = |sub: &str| {
        let mut client = socketio(&server);
        socketio_send(&mut client, &format!(r#"40{{"token":"{}"}}"#, until(sub, exp)));
        assert!(socketio_next(&mut client).starts_with("40{"));
        client
    };
    let (mut kept, mut cut) = (connect("kept"), connect("cut"));
    socketio_send(&mut kept, &format!(r#"421["refresh",{{"token":"{}"}}]"#, until("kept", now() + 600)));
    assert_eq!(socketio_until(&mut kept, "431"), r#"431[{"type":"ack","id":1}]"#);
    socketio_send(&mut kept, &format!(r#"422["refresh",{{"token":"{}"}}]"#, token("other")));
    let refused = socketio_until(&mut kept, "432");
    assert!(refused.starts_with(r#"432[{"type":"error","code":"forbidden""#), "{refused}");
    // Without an ack, the refusal is an `error` event.
    socketio_send(&mut cut, r#"42["refresh",{"token":"a.b.c"}]"#);
    let refused = socketio_until(&mut cut, r#"42["error""#);
    assert!(refused.contains(r#""code":"unauthorized""#), "{refused}");
    socketio_send(&mut cut, r#"423["refresh",{"token":5}]"#);
    assert!(socketio_until(&mut cut, "433").contains(r#""code":"missing_field""#));
    // The old cutoff still disconnects the refused one's namespace.
    socketio_until(&mut cut, "41");
    socketio_send(&mut kept, r#"424["who",{"room":"lobby"}]"#);
    let members = socketio_until(&mut kept, "434");
    assert!(members.contains("kept") && !members.contains("\"cut\""), "{members}");
}

#[test]
fn without_tokens_refresh_is_no_reserved_word() {
    let server = TestServer::start();
    // Socket.IO: an ordinary event, relayed to the namespace, the sender included.
    let mut sio = socketio(&server);
    socketio_send(&mut sio, r#"40{"name":"sio"}"#);
    assert!(socketio_next(&mut sio).starts_with("40{"));
    socketio_send(&mut sio, r#"42["refresh",{"token":"x"}]"#);
    assert_eq!(socketio_until(&mut sio, r#"42["refresh""#), r#"42["refresh",{"token":"x"}]"#);
    // STOMP: a destination like any unknown one.
    let mut stomp = server.tcp();
    assert!(stomp_frame(&mut stomp, "CONNECT\naccept-version:1.2\nlogin:st\n\n\0").starts_with("CONNECTED\n"));
    assert!(
        stomp_frame(&mut stomp, "SUBSCRIBE\nid:e\ndestination:/user/queue/errors\nreceipt:s\n\n\0")
            .starts_with("RECEIPT\n")
    );
    let refused = stomp_frame(&mut stomp, "SEND\ndestination:/soket/token\ntoken:x\n\n\0");
    assert!(refused.contains(r#""code":"unknown_destination""#), "{refused}");
}

/// STOMP inside SockJS (`/stomp/sockjs`, the Spring chat's transport) takes
/// the token as `passcode` as on `/stomp`: one SockJS WebSocket session
/// each, frames as SockJS arrays.
#[test]
fn stomp_over_sockjs_takes_the_token_as_passcode() {
    let server = server();
    let mut carol = neighbour(&server);
    let session = |id: &str, passcode: &str| {
        let mut ws = server.ws(&format!("/stomp/sockjs/000/{id}/websocket"));
        assert_eq!(common::next_data(&mut ws).into_text().unwrap().as_str(), "o");
        let frame = format!("CONNECT\naccept-version:1.2\npasscode:{passcode}\n\n\0");
        let array = serde_json::to_string(&[frame]).unwrap();
        ws.send(tungstenite::Message::text(array)).unwrap();
        let reply = common::next_data(&mut ws).into_text().unwrap().to_string();
        let frames: Vec<String> = serde_json::from_str(reply.strip_prefix('a').expect("an array frame")).unwrap();
        (ws, frames.concat())
    };
    let (_alice, connected) = session("s1", &token("alice"));
    assert!(connected.starts_with("CONNECTED\n") && connected.contains("user-name:alice"), "{connected}");
    for (what, bad) in [("expired", sign(&json!({"sub": "eve", "exp": 1}))), ("alg none", alg_none("eve"))] {
        let (mut eve, error) = session(&format!("bad-{}", what.len()), &bad);
        assert!(error.starts_with("ERROR\n") && error.contains("code:unauthorized"), "{what}: {error}");
        let closed = common::next_data(&mut eve).into_text().unwrap().to_string();
        assert!(closed.starts_with("c["), "{what}: the session closes: {closed}");
        still_served(&mut carol);
    }
}
