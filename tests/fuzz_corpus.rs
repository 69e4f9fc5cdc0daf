//! Replays the fuzz corpora on stable: every file under `fuzz/corpus/<target>/`
//! and `fuzz/regressions/<target>/` goes through the same check the cargo-fuzz
//! target runs (`fuzz/checks/<target>.rs`). Regressions always run in full;
//! corpus files run until a per-target time budget (`SOKET_FUZZ_REPLAY_SECS`,
//! default 1 s) is spent, so the suite stays fast as corpora grow.
//!
//! `cargo test --test fuzz_corpus -- --ignored write_seed_corpora` rewrites
//! the hand-made seeds (`seed-*` files) from the generators at the bottom.

#[path = "../fuzz/checks/mod.rs"]
mod checks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Files of one directory, sorted by name (none if it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

fn budget() -> Duration {
    let secs = std::env::var("SOKET_FUZZ_REPLAY_SECS").ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(1.0);
    Duration::from_secs_f64(secs.max(0.0))
}

/// Runs `check` on every regression and on corpus files within the budget;
/// fails listing every input whose check panicked.
fn replay(target: &str) {
    let check = checks::TARGETS.iter().find(|(name, _)| *name == target).map(|(_, check)| *check).unwrap();
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(!corpus.is_empty(), "no corpus for {target}");
    let deadline = Instant::now() + budget();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (i, path) in regressions.iter().chain(&corpus).enumerate() {
        // Seeds and regressions first; the rest of the corpus while time lasts.
        let is_seed = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-"));
        if i >= regressions.len() && !is_seed && Instant::now() > deadline {
            continue;
        }
        let data = std::fs::read(path).unwrap();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("non-string panic");
            failures.push(format!("{}: {message}", path.display()));
        }
        ran += 1;
    }
    eprintln!("{target}: {ran} of {} inputs replayed", regressions.len() + corpus.len());
    assert!(failures.is_empty(), "{target}: {} inputs fail:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn frame_decoder() {
    replay("frame_decoder");
}

#[test]
fn handshake() {
    replay("handshake");
}

#[test]
fn line_decoder() {
    replay("line_decoder");
}

#[test]
fn json_events() {
    replay("json_events");
}

#[test]
fn unmask_differential() {
    replay("unmask_differential");
}

#[test]
fn connection() {
    replay("connection");
}

#[test]
fn socketio_packets() {
    replay("socketio_packets");
}

#[test]
fn stomp_frames() {
    replay("stomp_frames");
}

#[test]
fn sockjs_bodies() {
    replay("sockjs_bodies");
}

#[test]
fn deflate() {
    replay("deflate");
}

#[test]
fn resp() {
    replay("resp");
}

#[test]
fn cluster_wire() {
    replay("cluster_wire");
}

#[test]
fn every_target_has_a_test() {
    let names: Vec<&str> = checks::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "frame_decoder",
            "handshake",
            "line_decoder",
            "json_events",
            "unmask_differential",
            "connection",
            "socketio_packets",
            "stomp_frames",
            "sockjs_bodies",
            "deflate",
            "resp",
            "cluster_wire"
        ]
    );
    for name in names {
        assert!(fuzz_dir().join("fuzz_targets").join(format!("{name}.rs")).is_file(), "{name}");
    }
}

// Seed generators.

mod seeds {
    use soket::proto::ws::encoder::encode_client_frame;
    use soket::proto::ws::{OpCode, encode_header};

    use super::checks::connection::Script;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    pub fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_client_frame(&mut out, opcode, fin, payload, KEY);
        out
    }

    fn close(code: u16, reason: &str) -> Vec<u8> {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        frame(OpCode::Close, true, &payload)
    }

    fn with_first(first: u8, rest: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        out.extend_from_slice(rest);
        out
    }

    pub fn frame_decoder() -> Vec<(&'static str, Vec<u8>)> {
        use OpCode::*;
        let kosme = "κόσμε".as_bytes();
        let mixed = [
            frame(Text, true, b"Hello"),
            frame(Text, false, &kosme[..3]),
            frame(Ping, true, b"ping"),
            frame(Continuation, false, &kosme[3..7]),
            frame(Continuation, true, &kosme[7..]),
            frame(Binary, true, &(0..=255).collect::<Vec<u8>>()),
            frame(Text, true, b""),
            frame(Pong, true, b""),
            close(1001, "bye"),
        ]
        .concat();
        let many_fragments: Vec<u8> = std::iter::once(frame(Binary, false, b"a"))
            .chain((0..64).map(|_| frame(Continuation, false, b"")))
            .chain(std::iter::once(frame(Continuation, true, b"z")))
            .flatten()
            .collect();
        let mut unmasked = frame(Text, true, b"x");
        unmasked[1] &= 0x7F;
        let mut reserved = frame(Binary, true, b"x");
        reserved[0] = 0x83;
        let mut rsv = frame(Text, true, b"x");
        rsv[0] |= 0x40;
        let huge_header = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        vec![
            ("seed-mixed-whole", with_first(0x80, &mixed)),
            ("seed-mixed-bytewise", with_first(0xC0, &mixed)),
            ("seed-mixed-chunks7", with_first(6, &mixed)),
            ("seed-mixed-random", with_first(0x45, &mixed)),
            ("seed-64k-binary", with_first(0x50, &frame(Binary, true, &[7u8; 64 * 1024]))),
            ("seed-too-big", with_first(0x9F, &frame(Binary, true, &[7u8; 64 * 1024 + 1]))),
            ("seed-too-many-fragments", with_first(3, &many_fragments)),
            (
                "seed-invalid-utf8",
                with_first(0x41, &[frame(Text, false, b"a\xe2\x82"), frame(Continuation, true, b"(")].concat()),
            ),
            (
                "seed-close-codes",
                with_first(2, &[close(1000, ""), close(1005, ""), frame(Close, true, b"\x03")].concat()),
            ),
            ("seed-close-bad-reason", with_first(2, &frame(Close, true, b"\x0b\xb8ok\xff"))),
            ("seed-unmasked", with_first(1, &unmasked)),
            ("seed-reserved-opcode", with_first(1, &reserved)),
            ("seed-rsv", with_first(1, &rsv)),
            ("seed-64bit-msb", with_first(4, &huge_header)),
            ("seed-control-too-long", with_first(4, &frame(Ping, true, &[1; 126]))),
            ("seed-unexpected-continuation", with_first(4, &frame(Continuation, true, b"x"))),
            (
                "seed-expected-continuation",
                with_first(4, &[frame(Text, false, b"x"), frame(Text, true, b"y")].concat()),
            ),
            ("seed-fragmented-ping", with_first(4, &frame(Ping, false, b"x"))),
            ("seed-partial", with_first(0x88, &frame(Binary, true, &[9; 300])[..200])),
        ]
    }

    pub const UPGRADE_ECHO: &str = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn upgrade(target: &str, extra: &str) -> String {
        format!(
            "GET {target} HTTP/1.1\r\nHost: chat.example\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    pub fn handshake() -> Vec<(&'static str, Vec<u8>)> {
        let pipelined = "GET / HTTP/1.1\r\nHost: x\r\n\r\nHEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
            GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n\
            POST / HTTP/1.1\r\nHost: x\r\n\r\nGET /ws HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n";
        let mut big = String::from("GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ");
        big.push_str(&"a".repeat(9000));
        big.push_str("\r\n\r\n");
        let many_headers: String =
            format!("GET / HTTP/1.1\r\n{}\r\n", (0..40).map(|i| format!("X-{i}: {i}\r\n")).collect::<String>());
        vec![
            ("seed-echo", with_first(0, UPGRADE_ECHO.as_bytes())),
            ("seed-echo-bytewise", with_first(0x40, UPGRADE_ECHO.as_bytes())),
            ("seed-ws-name", with_first(7, upgrade("/ws?name=al%C3%AFce", "").as_bytes())),
            ("seed-ws-namespace", with_first(13, upgrade("/ws/r%C3%A9sum%C3%A9", "").as_bytes())),
            (
                "seed-legacy",
                with_first(20, upgrade("/legacy", "Sec-WebSocket-Protocol: chat, v12.stomp\r\n").as_bytes()),
            ),
            ("seed-origin-ok", with_first(0x85, upgrade("/ws", "Origin: https://chat.example\r\n").as_bytes())),
            ("seed-origin-bad", with_first(0x85, upgrade("/ws", "Origin: https://evil.example\r\n").as_bytes())),
            (
                "seed-extensions",
                with_first(
                    9,
                    upgrade(
                        "/echo",
                        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x; a=\"q\\\"\"\r\n",
                    )
                    .as_bytes(),
                ),
            ),
            ("seed-bad-key", with_first(3, UPGRADE_ECHO.replace("dGhlIHNhbXBsZSBub25jZQ==", "short").as_bytes())),
            ("seed-version-8", with_first(3, UPGRADE_ECHO.replace("Version: 13", "Version: 8").as_bytes())),
            (
                "seed-two-keys",
                with_first(3, upgrade("/echo", "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n").as_bytes()),
            ),
            ("seed-upgrade-post", with_first(3, UPGRADE_ECHO.replace("GET", "POST").as_bytes())),
            ("seed-upgrade-body", with_first(3, upgrade("/echo", "Content-Length: 5\r\n").as_bytes())),
            ("seed-pipelined", with_first(17, pipelined.as_bytes())),
            ("seed-lf-only", with_first(1, b"GET /healthz HTTP/1.1\nHost: x\n\nHEAD / HTTP/1.1\n\n")),
            ("seed-too-large", with_first(63, big.as_bytes())),
            ("seed-many-headers", with_first(31, many_headers.as_bytes())),
            ("seed-malformed", with_first(2, b"GET / HTTP/1.1\r\nBad Header\r\n\r\nGET\r\n\r\n")),
        ]
    }

    pub fn line_decoder() -> Vec<(&'static str, Vec<u8>)> {
        let session = b"alice\n/join r\r\nhello\0 there\r\n/msg r hi\nbob..444..x : y\n/quit";
        vec![
            ("seed-session-whole", [&[0x80, 15][..], session].concat()),
            ("seed-session-bytewise", [&[0xC0, 0xFF][..], session].concat()),
            ("seed-session-gaps", [&[4, 0x5F][..], session].concat()),
            ("seed-cr-before-flush", [&[0x80, 0x13][..], b"typing\r"].concat()),
            ("seed-too-large", [&[2, 0x31][..], &[b'x'; 40][..], b"\nok\n", &[b'y'; 30]].concat()),
            ("seed-nuls", [&[1, 0xF3][..], b"\0\0\n\0a\0\r\0\n\0"].concat()),
            ("seed-crlf-split", [&[0x40, 0x27][..], b"a\r", b"\n\r\r\n", b"\r"].concat()),
        ]
    }

    pub fn json_events() -> Vec<(&'static str, Vec<u8>)> {
        let msgs: &[&[u8]] = &[
            br#"{"type":"say","text":"hi all","id":1}"#,
            br#"{"type":"join","room":"r","id":"j"}"#,
            br#"{"type":"say","room":"r","text":"line one\nline two\r"}"#,
            br#"{"type":"private","to":"carol","text":"psst\r\n"}"#,
            br#"{"type":"private","to":"bob","text":"hey"}"#,
            br#"{"type":"emit","event":"typing","data":{"on":true}}"#,
            br#"{"type":"emit","event":"x","room":"r","data":[1,2.5,"s",null]}"#,
            br#"{"type":"emit","event":"x","to":"carol"}"#,
            br#"{"type":"who","room":"r","id":2}"#,
            br#"{"type":"rooms","id":1.5}"#,
            br#"{"type":"leave","room":"r"}"#,
            br#"{"type":"leave","room":"lobby"}"#,
            br#"{"type":"hello","name":"again"}"#,
            br#"{"type":"dance","id":3}"#,
            br#"{"type":3}"#,
            br#"[1,2]"#,
            b"{not json",
            "{\"type\":\"say\",\"text\":\"caf\u{e9} \u{1F600}\"}".as_bytes(),
            b"\x01{\"type\":\"say\",\"room\":\"r\",\"text\":\"from bob\"}",
            b"\x02hello from carol\r\n/msg r hi r\nalice..444..carol : private\n/who r\n/rooms\n/nope x",
            b"\x03",
            b"\x04",
            br#"{"type":"hello","name":"Alice"}"#,
            br#"{"type":"join","room":"R\u00e9sum\u00e9"}"#,
            b"\x02/quit",
        ];
        vec![
            ("seed-everything", msgs.join(&0u8)),
            ("seed-say", msgs[0].to_vec()),
            ("seed-newlines", msgs[2].to_vec()),
            ("seed-emit", msgs[5].to_vec()),
            ("seed-legacy", msgs[19].to_vec()),
            ("seed-reconnect", [&b"\x03"[..], b"\x04", msgs[22], msgs[0]].join(&0u8)),
        ]
    }

    pub fn socketio_packets() -> Vec<(&'static str, Vec<u8>)> {
        let packets: &[(&'static str, &[u8])] = &[
            ("seed-connect", br#"0/chat,{"token":"abc"}"#),
            ("seed-connect-no-comma", b"0/random"),
            ("seed-event", br#"2/chat,12["chat message","hi",{"a":[1,2.5,null]}]"#),
            ("seed-event-unicode", "2[\"caf\u{e9}\",\"\\u0061\"]".as_bytes()),
            ("seed-binary-event", br#"52-/a,789["m",{"_placeholder":true,"num":0},[{"_placeholder":true,"num":1}]]"#),
            ("seed-binary-ack", br#"61-3[{"_placeholder":true,"num":0}]"#),
            ("seed-ack", br#"3456["ok"]"#),
            ("seed-connect-error", br#"4/x,{"message":"Invalid namespace"}"#),
            ("seed-bad-name", br#"2[1]"#),
            ("seed-bad-placeholder", br#"51-["m",{"_placeholder":true,"num":"0"}]"#),
            ("seed-too-many", br#"511-["m"]"#),
            ("seed-ack-overflow", br#"29007199254740992["m"]"#),
            ("seed-payload", b"42[\"x\",1]\x1e3\x1e2probe\x1ebAQIDBA==\x1e6\x1e5\x1e1"),
            ("seed-payload-bad", b"4a\x1e\x1ebnot base64!"),
        ];
        packets.iter().map(|(name, bytes)| (*name, bytes.to_vec())).collect()
    }

    pub fn sockjs_bodies() -> Vec<(&'static str, Vec<u8>)> {
        let inputs: &[(&'static str, &[u8])] = &[
            ("seed-xhr-send", br#"["x","\u2028 \ud83d\ude00 \n"]"#),
            ("seed-empty-array", b"[]"),
            ("seed-broken", br#"["x"#),
            ("seed-not-array", br#"{"a":["b"]}"#),
            ("seed-ws-string", br#""hello""#),
            ("seed-form", b"d=%5B%22x%22%2C%22a+b%22%5D&p=p"),
            ("seed-form-empty", b"p=p&d="),
            ("seed-route-xhr", b"/000/abcdefgh_i-j%20/xhr_streaming?c=cb"),
            ("seed-route-dots", b"/a./a/xhr"),
            ("seed-route-iframe", b"/iframe-0.1.2abc-dirty.2144.html?t=1"),
            ("seed-callback", b"c=%63allback&t=1"),
            ("seed-callback-bad", b"c=abc%28"),
            // Session scripts: attach polling, poll, send, attach streaming,
            // poll, close, lose the receiver, advance, poll.
            ("seed-session", &[0, 0, 2, 0, 3, 5, 1, 40, 2, 0, 3, 31, 2, 0, 4, 0, 2, 0, 0, 0, 2, 0, 7, 30, 2, 0]),
            ("seed-session-lost", &[1, 255, 2, 0, 3, 3, 5, 0, 0, 0, 2, 0, 0, 0, 2, 0, 6, 0]),
        ];
        inputs.iter().map(|(name, bytes)| (*name, bytes.to_vec())).collect()
    }

    /// Payloads as other nodes publish them, NUL-separated: a user arriving,
    /// joining `r`, speaking there, a private message, a custom event, a
    /// state snapshot, a goodbye; and a header that is no header.
    pub fn cluster_wire() -> Vec<(&'static str, Vec<u8>)> {
        let join = |parts: &[&str]| parts.join("\0").into_bytes();
        let arrive = r#"n2 7 0
{"t":"on","ns":"/","name":"bob","st":[5,1,1],"d":"e"}"#;
        let joined = r#"n2 7 0
{"t":"join","ns":"/","room":"r","name":"bob","st":[6,1,2]}"#;
        let say = r#"n2 7 1
{"t":"msg","ns":"/","room":"r","from":"bob","text":"hi"}"#;
        let private = r#"n2 7 2
{"t":"priv","ns":"/","to":"carol","from":"bob","text":"psst"}"#;
        let event = r#"n2 7 3
{"t":"ev","ns":"/","room":"r","event":"typing","data":"true","from":"bob"}"#;
        let relay = r#"n3 9 1
{"t":"ev","ns":"/","event":"chat message","data":"\"x\"","args":"[\"chat message\",{\"_placeholder\":true,\"num\":0}]","bin":["AAE="]}"#;
        let state = r#"n3 9 0
{"t":"state","users":[{"ns":"/","name":"dan","st":[1,2,3],"d":"l","rooms":[["r",[2,2,2]]]}]}"#;
        vec![
            ("seed-chat", join(&[arrive, joined, say, private, event])),
            (
                "seed-state-and-relay",
                join(&[
                    state,
                    relay,
                    r#"n3 9 0
{"t":"bye"}"#,
                ]),
            ),
            ("seed-bad-header", join(&["no header", "n 1\n{}", arrive])),
        ]
    }

    pub fn resp() -> Vec<(&'static str, Vec<u8>)> {
        use soket::redis::resp::{Reply, encode_command};
        // Byte 0: how the stream is cut; byte 1: max_bulk; byte 2: max_depth << 4 | max_elements.
        let with = |schedule: u8, bulk: u8, shape: u8, stream: &[u8]| [&[schedule, bulk, shape][..], stream].concat();
        let bulk = |data: &[u8]| Reply::Bulk(Some(data.to_vec()));
        let mut replies = Vec::new();
        for reply in [
            Reply::Simple(b"OK".to_vec()),
            Reply::Error(b"WRONGPASS invalid username-password pair".to_vec()),
            Reply::Integer(-42),
            Reply::Integer(i64::MIN),
            bulk(b"a\r\nb"),
            Reply::Bulk(None),
            Reply::Array(None),
            Reply::Array(Some(Vec::new())),
            Reply::Array(Some(vec![bulk(b"message"), bulk(b"soket:c"), bulk(b"{\"t\":\"hb\"}")])),
            Reply::Array(Some(vec![Reply::Array(Some(vec![Reply::Integer(1), Reply::Bulk(None)])), bulk(b"")])),
        ] {
            reply.encode(&mut replies);
        }
        let mut command = Vec::new();
        encode_command(&mut command, &[b"PUBLISH", b"soket:r:/:lobby", b"hello"]);
        let deep = [&b"*1\r\n"[..]].repeat(9).concat();
        vec![
            ("seed-replies-whole", with(0x80, 255, 0xFF, &replies)),
            ("seed-replies-bytewise", with(0xC0, 255, 0xFF, &replies)),
            ("seed-replies-random", with(0x47, 255, 0xFF, &replies)),
            ("seed-tight-limits", with(0x03, 4, 0x22, &replies)),
            ("seed-command", with(0x05, 16, 0x14, &command)),
            ("seed-too-deep", with(0xC0, 8, 0x8F, &[&deep[..], b":1\r\n"].concat())),
            ("seed-lying-length", with(0x01, 255, 0xFF, b"$99999999999999999999\r\n*-2\r\n")),
            ("seed-garbage", with(0x02, 255, 0xFF, b"+OK\r\n+bare\nHTTP/1.1 400\r\n")),
            ("seed-bulk-no-crlf", with(0x40, 255, 0xFF, b"$3\r\nabcd\r\n")),
        ]
    }

    pub fn deflate() -> Vec<(&'static str, Vec<u8>)> {
        use flate2::{Compress, Compression};
        let compressed = |text: &[u8]| {
            let mut out = Vec::new();
            let mut c = Compress::new_with_window_bits(Compression::default(), false, 15);
            soket::proto::ws::deflate::deflate(&mut c, text, &mut out);
            out
        };
        let with_limit = |limit: u8, bytes: &[u8]| [&[limit][..], bytes].concat();
        vec![
            ("seed-offer", with_limit(0, b"permessage-deflate; client_no_context_takeover; server_max_window_bits=10")),
            ("seed-offers", with_limit(3, b"x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits")),
            ("seed-offer-bad", with_limit(1, b"permessage-deflate; server_max_window_bits=09; foo=\"a\\\"b\"")),
            ("seed-hello", with_limit(0, &compressed(b"Hello, Hello, Hello, Hello"))),
            ("seed-bomb", with_limit(0, &compressed(&[0u8; 60_000]))),
            ("seed-rfc-hello", with_limit(0, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])),
            ("seed-final-block", with_limit(2, &[0x03, 0x00])),
        ]
    }

    pub fn stomp_frames() -> Vec<(&'static str, Vec<u8>)> {
        use soket::proto::stomp::{self, Command, HeartBeat, MessageHeaders, Version};
        // Byte 0: how the stream is cut; byte 1: version and limits (0xFE: 1.2, roomy).
        let with = |schedule: u8, config: u8, stream: &[u8]| [&[schedule, config][..], stream].concat();
        let mut session = Vec::new();
        session.extend_from_slice(b"STOMP\r\naccept-version:1.1,1.2\r\nhost:/\r\nheart-beat:1000,0\r\n\r\n\0\n");
        stomp::write_frame(
            &mut session,
            Command::Subscribe,
            &[("id", "0"), ("destination", "/t/a"), ("ack", "client")],
            b"",
            Version::V1_2,
        )
        .unwrap();
        stomp::write_frame(
            &mut session,
            Command::Send,
            &[("destination", "/t/a"), ("x:y", "a\nb\\c\rd")],
            b"bin\0ary",
            Version::V1_2,
        )
        .unwrap();
        session.extend_from_slice(b"\n\r\n\nSEND\ndestination:/t/a\n\nno length\0");
        for command in
            [Command::Begin, Command::Ack, Command::Nack, Command::Commit, Command::Abort, Command::Unsubscribe]
        {
            stomp::write_frame(&mut session, command, &[("id", "1"), ("transaction", "t")], b"", Version::V1_2)
                .unwrap();
        }
        session.extend_from_slice(b"DISCONNECT\nreceipt:9\n\n\0");
        let mut server = Vec::new();
        let hb = HeartBeat { send_ms: 5000, receive_ms: 5000 };
        stomp::write_connected(&mut server, Version::V1_2, hb, Some("soket"), "s1", Some("alice")).unwrap();
        let message = MessageHeaders {
            destination: "/t/a",
            message_id: "1",
            subscription: "0",
            ack: Some("1"),
            content_type: None,
        };
        stomp::write_message(&mut server, Version::V1_2, &message, &[("from", "bob")], b"hi").unwrap();
        stomp::write_receipt(&mut server, Version::V1_2, "9").unwrap();
        stomp::write_error(&mut server, Version::V1_2, "bad frame", None, Some("9"), "detail");
        let escapes: &[u8] = b"SEND\nk\\cey:a\\nb\\\\c\\rd\n\n\0CONNECT\nlogin:a\\tb\n\n\0";
        let many_headers: Vec<u8> = [&b"SEND\n"[..], &b"h:1\n".repeat(9), b"\n\0"].concat();
        let long_line: Vec<u8> = [&b"SEND\nh:"[..], &[b'v'; 80], b"\n\n\0"].concat();
        vec![
            ("seed-session-whole", with(0x80, 0xFE, &session)),
            ("seed-session-bytewise", with(0xC0, 0xFE, &session)),
            ("seed-session-random", with(0x47, 0xFE, &session)),
            ("seed-session-11", with(0x05, 0xFD, &session)),
            ("seed-server-frames", with(0x90, 0xFE, &server)),
            ("seed-escapes-12", with(0x02, 0xFE, escapes)),
            ("seed-escapes-11", with(0x02, 0xFD, escapes)),
            ("seed-escapes-10", with(0x02, 0xFC, escapes)),
            ("seed-bad-escape", with(0x01, 0xFE, b"SEND\na:\\t\n\n\0")),
            ("seed-lying-length", with(0x03, 0xFE, b"SEND\ncontent-length:2\n\nabc\0")),
            ("seed-huge-length", with(0x03, 0xFE, b"SEND\ncontent-length:99999\n\n")),
            ("seed-overflow-length", with(0x03, 0xFE, b"SEND\ncontent-length:99999999999999999999999\n\n\0")),
            ("seed-nul-less", with(0x07, 0x22, &[&b"SEND\n\n"[..], &[b'x'; 200]].concat())),
            ("seed-unknown-command", with(0x01, 0xFE, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")),
            ("seed-too-many-headers", with(0x04, 0xFE, &many_headers)),
            ("seed-long-line", with(0x04, 0xFE, &long_line)),
            ("seed-stray-cr", with(0x00, 0xFE, b"\r\rSEND\n\n\0")),
        ]
    }

    pub fn unmask_differential() -> Vec<(&'static str, Vec<u8>)> {
        let data: Vec<u8> = (0..100u8).collect();
        vec![
            ("seed-offset0", [&[0x37, 0xfa, 0x21, 0x3d, 0, 0][..], b"Hello"].concat()),
            ("seed-offset3-long", [&[1, 2, 3, 4, 3, 17][..], &data[..]].concat()),
            ("seed-offset-near-max", [&[9, 8, 7, 6, 255, 9][..], &data[..33]].concat()),
        ]
    }

    /// Appends a masked frame of `len` payload bytes: a header, then floods of
    /// 250-byte pieces (mask key 0, so the payload is as sent: `'a'`s).
    fn big_frame(script: Script, opcode: OpCode, len: usize) -> Script {
        let mut header = [0u8; 14];
        let n = encode_header(opcode, true, len as u64, Some([0; 4]), &mut header);
        let piece = [b'a'; 250];
        let mut script = script.send(&header[..n]);
        let (mut left, mut count) = (len, 0u8);
        while left >= piece.len() {
            left -= piece.len();
            count += 1;
            if count == u8::MAX {
                script = script.flood(count, &piece);
                count = 0;
            }
        }
        script.flood(count, &piece).send(&piece[..left])
    }

    fn client_frames(frames: &[(OpCode, bool, &[u8])]) -> Vec<u8> {
        frames.iter().flat_map(|&(op, fin, payload)| frame(op, fin, payload)).collect()
    }

    fn ws_upgrade(target: &str) -> Vec<u8> {
        UPGRADE_ECHO.replace("/echo", target).into_bytes()
    }

    pub fn connection() -> Vec<(&'static str, Vec<u8>)> {
        use OpCode::*;
        let echo = Script::default()
            .send(UPGRADE_ECHO.as_bytes())
            .send(&client_frames(&[
                (Text, true, b"Hello"),
                (Binary, false, &[1, 2, 3]),
                (Ping, true, b"p"),
                (Continuation, true, &[4]),
            ]))
            .send(&close(1000, "done"))
            .close();
        // Big frames as a header and floods of payload, so the seed stays small.
        let echo_backpressure = big_frame(Script::default().send(UPGRADE_ECHO.as_bytes()).budget(0), Binary, 20_000)
            .send(&frame(Text, true, b"after the pause"))
            .budget(5)
            .budget(40)
            .budget(255)
            .wait(130)
            .wait(110)
            .wait(255);
        // 8000 bytes queued (under the 8 KiB pause mark), then a 28000-byte echo: over 32 KiB.
        let slow_echo = Script::default().send(UPGRADE_ECHO.as_bytes()).budget(0);
        let slow_echo = big_frame(big_frame(slow_echo, Binary, 8000), Binary, 28_000).budget(255);
        let echo_errors = Script::default()
            .send(UPGRADE_ECHO.as_bytes())
            .send(&frame(Text, true, b"bad \xff utf-8"))
            .send(&close(1000, ""))
            .wait(50);
        let chat = Script::default()
            .send(&ws_upgrade("/ws?name=alice"))
            .send(&client_frames(&[
                (Text, true, br#"{"type":"join","room":"r","id":1}"#),
                (Text, true, br#"{"type":"say","room":"r","text":"hi\nthere"}"#),
                (Text, true, br#"{"type":"private","to":"alice","text":"me"}"#),
                (Text, true, br#"{"type":"who","room":"r"}"#),
                (Text, true, br#"{"type":"rooms"}"#),
                (Text, true, b"{bad"),
                (Binary, true, b"no binary here"),
            ]))
            .send(&close(1000, ""));
        let chat_hello = Script::default()
            .send(&ws_upgrade("/ws/room.one"))
            .send(&frame(Text, true, br#"{"type":"hello","name":"bob","id":"h"}"#))
            .wait(113)
            .wait(101)
            .send(&frame(Pong, true, b""))
            .wait(255);
        let legacy_ws = Script::default().send(&ws_upgrade("/legacy")).send(&client_frames(&[
            (Text, true, b"carol"),
            (Text, true, b"carol..444..x : hi\r"),
            (Text, true, b"/quit"),
        ]));
        let legacy_tcp = Script::default()
            .send(b"alice\n/join r\nhello\r\n/msg r x\nalice..444..me : hi\n/who r\n/rooms\n")
            .send(b"typing without a newline")
            .wait(5)
            .flood(5, &[b'z'; 250])
            .send(b"\n/quit\n");
        let legacy_sniff = Script::default().send(b"GE").wait(5).send(b"\nGET\n").close();
        let stomp_tcp = Script::default()
            .send(b"CONNECT\naccept-version:1.2\nlogin:sam\nheart-beat:100,100\n\n\0")
            .send(b"SUBSCRIBE\nid:0\ndestination:/topic/lobby\nack:client\nreceipt:1\n\n\0")
            .send(b"SUBSCRIBE\nid:1\ndestination:/topic/presence\n\n\0SUBSCRIBE\nid:2\ndestination:/user/queue/errors\n\n\0")
            .send(b"SEND\ndestination:/topic/lobby\ncontent-length:5\n\nhi\0yo\0")
            .send(b"BEGIN\ntransaction:t\n\n\0ACK\nid:1\ntransaction:t\n\n\0COMMIT\ntransaction:t\n\n\0")
            .send(b"SEND\ndestination:/user/sam\n\nme\0SEND\ndestination:/topic/nowhere\n\nx\0")
            .wait(10)
            .send(b"\n")
            .wait(30)
            .send(b"DISCONNECT\nreceipt:bye\n\n\0");
        let stomp_ws = Script::default().send(&ws_upgrade("/stomp")).send(&client_frames(&[
            (Text, true, b"STOMP\naccept-version:1.0,1.1\nlogin:tom\n\n\0"),
            (Text, true, b"SUBSCRIBE\nid:a\\cb\ndestination:/topic/r\n\n\0SEND\ndestination:/topic/r\n\nhey\0"),
            (Binary, true, b"UNSUBSCRIBE\nid:a\\cb\n\n\0FROB\n\n\0"),
        ]));
        let http = Script::default()
            .send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nHEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
            .send(b"GET /nope HTTP/1.0\r\n\r\n");
        let http_slow = Script::default().send(b"GET / HTTP/1.1\r\nHo").wait(71).wait(60);
        let http_too_large = Script::default().send(b"GET / HTTP/1.1\r\n").send(&[b'a'; 1100]);
        let echo_flood =
            Script::default().send(UPGRADE_ECHO.as_bytes()).budget(0).flood(200, &frame(Binary, true, &[3; 200]));
        let slow_reader = Script::default()
            .send(&ws_upgrade("/ws?name=alice"))
            .budget(0)
            .flood(100, &frame(Text, true, br#"{"type":"rooms"}"#))
            .flood(100, &frame(Text, true, br#"{"type":"who","room":"lobby"}"#));
        vec![
            ("seed-echo", echo.0),
            ("seed-echo-backpressure", echo_backpressure.0),
            ("seed-echo-errors", echo_errors.0),
            ("seed-echo-flood", echo_flood.0),
            ("seed-echo-slow-reader", slow_echo.0),
            ("seed-chat", chat.0),
            ("seed-chat-keepalive", chat_hello.0),
            ("seed-chat-slow-reader", slow_reader.0),
            ("seed-legacy-ws", legacy_ws.0),
            ("seed-legacy-tcp", legacy_tcp.0),
            ("seed-stomp-tcp", stomp_tcp.0),
            ("seed-stomp-ws", stomp_ws.0),
            ("seed-legacy-sniff", legacy_sniff.0),
            ("seed-http-keepalive", http.0),
            ("seed-http-timeout", http_slow.0),
            ("seed-http-too-large", http_too_large.0),
        ]
    }
}

#[test]
#[ignore = "writes the seed files; run by hand after changing the generators"]
fn write_seed_corpora() {
    let all = [
        ("frame_decoder", seeds::frame_decoder()),
        ("handshake", seeds::handshake()),
        ("line_decoder", seeds::line_decoder()),
        ("json_events", seeds::json_events()),
        ("unmask_differential", seeds::unmask_differential()),
        ("connection", seeds::connection()),
        ("socketio_packets", seeds::socketio_packets()),
        ("stomp_frames", seeds::stomp_frames()),
        ("sockjs_bodies", seeds::sockjs_bodies()),
        ("deflate", seeds::deflate()),
        ("resp", seeds::resp()),
        ("cluster_wire", seeds::cluster_wire()),
    ];
    for (target, seeds) in all {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}
