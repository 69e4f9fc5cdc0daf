//! Protocol front ends: the WebSocket upgrade (beside httparse and tungstenite), legacy lines, JSON chat events.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde::Serialize;
use soket::app::router::{Outcome, handle_head};
use soket::app::{json_chat, line_chat};
use soket::chat::{ChatConfig, Dialect, Endpoint, Hub, MemberId, Outbox};
use soket::ids::ConnId;
use soket::proto::http::{HeadScanner, HttpConfig, accept_key};
use soket::proto::line::{LineDecoder, LineEvent};
use soket::proto::ws::{OpCode, encode_frame};
use tungstenite::handshake::machine::TryParse;
use tungstenite::handshake::server::{Request, create_response, write_response};

/// What Chrome sends to open `ws://chat.example.com:8080/ws?name=alice`.
const UPGRADE_REQUEST: &[u8] = b"GET /ws?name=alice HTTP/1.1\r\n\
Host: chat.example.com:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://chat.example.com:8080\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

/// The daemon's defaults (`--max-head`, `--max-headers`, no origin list, `/echo` on).
fn http_config() -> HttpConfig {
    HttpConfig {
        max_head_bytes: 8 << 10,
        max_body_bytes: 1 << 20,
        max_headers: 64,
        allow_origins: Vec::new(),
        echo_enabled: true,
        engineio_test_suite: false,
        sockjs_test_suite: false,
        files: Default::default(),
    }
}

/// soket: find the end of the head, validate it and build the 101.
fn soket_upgrade(request: &[u8], config: &HttpConfig) -> Outcome {
    let mut scanner = HeadScanner::default();
    let head_len = scanner.scan(request, config.max_head_bytes).expect("head fits").expect("head is complete");
    handle_head(&request[..head_len], config)
}

/// tungstenite: parse into an `http::Request` (httparse inside), validate, build and write the 101.
fn tungstenite_upgrade(request: &[u8], out: &mut Vec<u8>) {
    let (_, request) = Request::try_parse(request).expect("valid request").expect("complete request");
    let response = create_response(&request).expect("valid upgrade");
    write_response(&mut *out, &response).expect("Vec writes don't fail");
}

fn bench_handshake(c: &mut Criterion) {
    let config = http_config();
    let Outcome::Upgrade(upgrade) = soket_upgrade(UPGRADE_REQUEST, &config) else {
        panic!("the request upgrades");
    };
    let response = String::from_utf8(upgrade.response).expect("ASCII response");
    assert!(response.starts_with("HTTP/1.1 101 "), "{response}");
    assert!(response.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{response}");
    let mut out = Vec::new();
    tungstenite_upgrade(UPGRADE_REQUEST, &mut out);
    assert!(String::from_utf8_lossy(&out).contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));

    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Bytes(UPGRADE_REQUEST.len() as u64));
    group.bench_function("soket_scan+handle_head", |b| {
        b.iter(|| black_box(soket_upgrade(black_box(UPGRADE_REQUEST), &config)));
    });
    // The part of soket's cost that is SHA-1 and base64 (RFC 6455 §4.2.2), which any server pays.
    group.bench_function("soket_accept_key_only", |b| {
        b.iter(|| black_box(accept_key(black_box("dGhlIHNhbXBsZSBub25jZQ=="))));
    });
    group.bench_function("httparse_only", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut request = httparse::Request::new(&mut headers);
            let status = request.parse(black_box(UPGRADE_REQUEST)).expect("valid request");
            black_box((status, request.headers.len()))
        });
    });
    group.bench_function("tungstenite_parse+create_response+write", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            tungstenite_upgrade(black_box(UPGRADE_REQUEST), &mut out);
            black_box(out.len())
        });
    });
    group.finish();
}

/// A 64 KiB read of whole legacy lines of about 40 bytes.
fn legacy_lines(total: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(total);
    let mut i = 0usize;
    loop {
        let line = format!("alice : see you at the meeting, #{i:05}\r\n");
        if buf.len() + line.len() > total {
            break;
        }
        buf.extend_from_slice(line.as_bytes());
        i += 1;
    }
    buf
}

fn bench_lines(c: &mut Criterion) {
    let now = Instant::now();
    let flush = Duration::from_millis(50);
    let mut group = c.benchmark_group("legacy_lines");

    let buf = legacy_lines(64 << 10);
    let lines = buf.iter().filter(|&&b| b == b'\n').count();
    group.throughput(Throughput::Bytes(buf.len() as u64));
    group.bench_function(BenchmarkId::new("64KiB_read", format!("{lines}_lines")), |b| {
        let mut decoder = LineDecoder::new(64 << 10, flush);
        b.iter(|| {
            let mut seen = 0usize;
            decoder.decode(black_box(&buf), now, |event| {
                if let LineEvent::Message(line) = black_box(event) {
                    seen += line.len();
                }
            });
            seen
        });
        assert!(decoder.is_idle());
    });

    let line = b"alice : one byte per read, like a telnet\r\n";
    group.throughput(Throughput::Bytes(line.len() as u64));
    group.bench_function(BenchmarkId::new("1_byte_reads", format!("{}B_line", line.len())), |b| {
        let mut decoder = LineDecoder::new(64 << 10, flush);
        b.iter(|| {
            let mut messages = 0usize;
            for byte in black_box(line).chunks(1) {
                decoder.decode(byte, now, |event| {
                    black_box(event);
                    messages += 1;
                });
            }
            assert_eq!(messages, 1);
        });
    });
    group.finish();
}

fn endpoint(slot: usize) -> Endpoint {
    Endpoint::Conn(ConnId { slot, generation: 1 })
}

/// One JSON text through the JSON app into the hub, as a `/ws` connection hands it in.
fn handle_json(hub: &mut Hub, member: MemberId, text: &str, out: &mut Outbox) {
    json_chat::handle_text(hub, member, text, 16 << 20, out);
}

/// One legacy line through the line app into the hub.
fn handle_legacy(hub: &mut Hub, member: MemberId, line: &[u8], out: &mut Outbox) {
    line_chat::handle_line(hub, member, line, out);
}

/// A hub with `alice` (speaking `dialect`) and `bob` (JSON), the outbox cleared.
fn two_user_hub(dialect: Dialect) -> (Hub, Outbox, MemberId, MemberId) {
    let mut hub = Hub::new(ChatConfig::default());
    let mut out = Outbox::default();
    let alice = hub.attach(endpoint(0), dialect, "/");
    if dialect == Dialect::Lines {
        handle_legacy(&mut hub, alice, b"alice", &mut out);
    } else {
        handle_json(&mut hub, alice, r#"{"type":"hello","name":"alice"}"#, &mut out);
    }
    let bob = hub.attach(endpoint(1), Dialect::Events, "/");
    handle_json(&mut hub, bob, r#"{"type":"hello","name":"bob"}"#, &mut out);
    assert_eq!(hub.users(), 2);
    out.clear();
    (hub, out, alice, bob)
}

/// The same shape as the hub's `message` event (PROTOCOL.md §3), serialised the way the hub does (serde_json).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Event<'a> {
    Message { room: &'a str, from: &'a str, text: &'a str },
}

fn bench_json(c: &mut Criterion) {
    const SAY: &str = r#"{"type":"say","text":"hi bob, are we still on for lunch at noon?"}"#;
    const TEXT: &str = "hi bob, are we still on for lunch at noon?";

    let (mut hub, mut out, alice, bob) = two_user_hub(Dialect::Events);
    handle_json(&mut hub, alice, SAY, &mut out);
    assert_eq!(out.deliveries.len(), 1, "{out:?}");
    let delivery = &out.deliveries[0];
    assert_eq!(delivery.recipients.iter().map(|r| r.member).collect::<Vec<_>>(), [bob]);
    let rendered = json_chat::render::render(&delivery.event).expect("JSON for every event");
    let rendered = std::str::from_utf8(&rendered.body).expect("UTF-8").to_owned();
    let reference = serde_json::to_string(&Event::Message { room: "lobby", from: "alice", text: TEXT }).unwrap();
    assert_eq!(&*rendered, reference, "reference rendering matches the hub's");
    out.clear();

    let mut group = c.benchmark_group("json_say");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hub.handle_json(say)", |b| {
        b.iter(|| {
            handle_json(&mut hub, alice, black_box(SAY), &mut out);
            black_box(&out.deliveries);
            out.clear();
        });
    });
    group.bench_function("serde_json_parse_only", |b| {
        b.iter(|| black_box(serde_json::from_str::<serde_json::Value>(black_box(SAY)).expect("valid JSON")));
    });
    group.bench_function("render_message(serde_json)", |b| {
        b.iter(|| {
            let event = Event::Message { room: "lobby", from: "alice", text: black_box(TEXT) };
            black_box(std::rc::Rc::<str>::from(serde_json::to_string(&event).expect("serialisable")))
        });
    });
    group.bench_function("frame_rendered_content", |b| {
        let mut frame = Vec::with_capacity(rendered.len() + 14);
        b.iter(|| {
            frame.clear();
            encode_frame(&mut frame, OpCode::Text, black_box(rendered.as_bytes()));
            black_box(frame.len())
        });
    });
    group.finish();

    // The legacy path for the same message: a line from alice (legacy TCP) to bob (JSON).
    let (mut hub, mut out, alice, _) = two_user_hub(Dialect::Lines);
    let line = TEXT.as_bytes();
    handle_legacy(&mut hub, alice, line, &mut out);
    assert_eq!(out.deliveries.len(), 1, "{out:?}");
    out.clear();
    let mut group = c.benchmark_group("legacy_say");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hub.handle_legacy(line)", |b| {
        b.iter(|| {
            handle_legacy(&mut hub, alice, black_box(line), &mut out);
            black_box(&out.deliveries);
            out.clear();
        });
    });
    group.finish();
}

criterion_group! {
    name = protocols;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_handshake, bench_lines, bench_json
}
criterion_main!(protocols);
