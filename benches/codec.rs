//! WebSocket frame codec: decoding client frames beside tungstenite, unmasking, encoding server frames.
//!
//! Fairness of the decode comparison: each iteration starts from the same masked wire bytes and both decoders pay
//! one copy of them, as from a socket. soket copies them into a preallocated read buffer and decodes in place
//! (unmasking there); tungstenite's `WebSocketContext::read` (`Role::Server`) copies them from an in-memory stream
//! into its own read buffer and then unmasks. Both validate UTF-8 for text and hand every message to `black_box`.
//! Both decoders live across iterations, as a connection's would.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use soket::proto::ws::{
    Decoder, DecoderLimits, Message, OpCode, apply_mask, apply_mask_naive, encode_client_frame, encode_frame,
};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode as TungOpCode};
use tungstenite::protocol::{Role, WebSocketContext};

/// The daemon's defaults (`--max-message`, `--max-fragments`).
const LIMITS: DecoderLimits = DecoderLimits { max_message_bytes: 16 << 20, max_fragments: 131_072 };

/// Small frames per iteration, so the per-frame cost dominates the per-iteration overhead.
const SMALL_FRAMES: usize = 1000;

/// Plain ASCII text, like most chat and JSON traffic: UTF-8 validation takes its ASCII fast path.
const ASCII_SAMPLE: &str = r#"{"type":"say","room":"lobby","text":"the quick brown fox jumps over the lazy dog"}"#;

/// Text with a fair share of 2-, 3- and 4-byte characters, so UTF-8 validation is mostly off its ASCII fast path.
const MIXED_SAMPLE: &str = "The quick brown fox jumps over the lazy dog; Zwölf Boxkämpfer jagen Viktor quer über den \
                           großen Sylter Deich. 日本語のテキストも少し。 🦀 ok!\n";

/// Distinct mask keys per frame, as a browser's would be.
fn mask_key(i: usize) -> [u8; 4] {
    let x = (i as u32).wrapping_mul(0x9e37_79b9).wrapping_add(0x7f4a_7c15);
    x.to_le_bytes()
}

/// `sample` repeated to at most `len` bytes (exactly `len` unless that would split a character).
fn text_payload(sample: &str, len: usize) -> Vec<u8> {
    let mut text = String::with_capacity(len + sample.len());
    while text.len() < len {
        text.push_str(sample);
    }
    let mut end = len;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.into_bytes()
}

fn binary_payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// `count` masked client frames carrying `payload`, back to back.
fn client_frames(opcode: OpCode, payload: &[u8], count: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    for i in 0..count {
        encode_client_frame(&mut wire, opcode, true, payload, mask_key(i));
    }
    wire
}

/// An in-memory socket for tungstenite: reads hand out `data`, writes are discarded.
struct Wire<'a> {
    data: &'a [u8],
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_empty() {
            // Not Ok(0): tungstenite would take that for a reset and refuse later reads.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.data.len());
        let (head, tail) = self.data.split_at(n);
        buf[..n].copy_from_slice(head);
        self.data = tail;
        Ok(n)
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decodes all of `buf` with soket; returns the messages and payload bytes seen.
fn soket_decode_all(decoder: &mut Decoder, buf: &mut [u8]) -> (usize, usize) {
    let (mut pos, mut messages, mut bytes) = (0, 0, 0);
    while pos < buf.len() {
        let (used, message) = decoder.decode(&mut buf[pos..]).expect("valid frames");
        match black_box(message) {
            Some(Message::Text(text)) => bytes += text.len(),
            Some(Message::Binary(data)) => bytes += data.len(),
            other => panic!("unexpected {other:?}"),
        }
        assert!(used > 0, "whole frames are in the buffer");
        messages += 1;
        pos += used;
    }
    (messages, bytes)
}

/// Reads `count` messages with tungstenite; returns the payload bytes seen.
fn tungstenite_read(ctx: &mut WebSocketContext, wire: &[u8], count: usize) -> usize {
    let mut stream = Wire { data: wire };
    let mut bytes = 0;
    for _ in 0..count {
        let message = black_box(ctx.read(&mut stream).expect("valid frames"));
        bytes += message.len();
    }
    bytes
}

/// One group per (size, kind): soket and tungstenite on the same bytes, so the report reads as a ratio.
fn bench_decode_case(c: &mut Criterion, name: &str, opcode: OpCode, payload: &[u8], count: usize) {
    let wire = client_frames(opcode, payload, count);

    // Both decode the same messages, checked once outside the timed loops.
    let mut buf = wire.clone();
    let (messages, bytes) = soket_decode_all(&mut Decoder::new(LIMITS), &mut buf);
    assert_eq!((messages, bytes), (count, count * payload.len()));
    let mut ctx = WebSocketContext::new(Role::Server, None);
    assert_eq!(tungstenite_read(&mut ctx, &wire, count), count * payload.len());

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("soket", |b| {
        let mut decoder = Decoder::new(LIMITS);
        let mut buf = vec![0u8; wire.len()];
        b.iter(|| {
            buf.copy_from_slice(&wire);
            soket_decode_all(&mut decoder, &mut buf)
        });
    });
    group.bench_function("tungstenite", |b| {
        let mut ctx = WebSocketContext::new(Role::Server, None);
        b.iter(|| tungstenite_read(&mut ctx, &wire, count));
    });
    group.finish();
}

fn bench_decode(c: &mut Criterion) {
    let small_text = b"hello, world :-)";
    assert_eq!(small_text.len(), 16);
    bench_decode_case(c, "decode_16B_text_x1000", OpCode::Text, small_text, SMALL_FRAMES);
    bench_decode_case(c, "decode_16B_binary_x1000", OpCode::Binary, &binary_payload(16), SMALL_FRAMES);
    for (label, len) in [("64KiB", 64 << 10), ("1MiB", 1 << 20)] {
        bench_decode_case(c, &format!("decode_{label}_text_ascii"), OpCode::Text, &text_payload(ASCII_SAMPLE, len), 1);
        bench_decode_case(c, &format!("decode_{label}_text_mixed"), OpCode::Text, &text_payload(MIXED_SAMPLE, len), 1);
        bench_decode_case(c, &format!("decode_{label}_binary"), OpCode::Binary, &binary_payload(len), 1);
    }
}

fn bench_mask(c: &mut Criterion) {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    for (label, len) in [("16B", 16), ("1KiB", 1 << 10), ("64KiB", 64 << 10)] {
        let mut group = c.benchmark_group(format!("mask_{label}"));
        group.throughput(Throughput::Bytes(len as u64));
        let mut buf = binary_payload(len);
        group.bench_function("apply_mask", |b| b.iter(|| apply_mask(black_box(&mut buf), black_box(key), 0)));
        group.bench_function("apply_mask_naive", |b| {
            b.iter(|| apply_mask_naive(black_box(&mut buf), black_box(key), 0));
        });
        group.finish();
    }
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_frame");
    for (label, len) in [("16B", 16), ("4KiB", 4 << 10), ("64KiB", 64 << 10)] {
        let payload = binary_payload(len);
        group.throughput(Throughput::Bytes(len as u64));
        let mut out = Vec::with_capacity(len + 14);
        group.bench_with_input(BenchmarkId::new("soket", label), &payload, |b, payload| {
            b.iter(|| {
                out.clear();
                encode_frame(&mut out, OpCode::Binary, black_box(payload));
                black_box(out.len())
            });
        });
        // tungstenite's frame writer on a borrowed payload (no allocation), into the same kind of reused Vec.
        let payload: &'static [u8] = Box::leak(payload.into_boxed_slice());
        group.bench_with_input(BenchmarkId::new("tungstenite", label), &payload, |b, &payload| {
            b.iter(|| {
                out.clear();
                let frame = Frame::message(black_box(payload), TungOpCode::Data(Data::Binary), true);
                frame.format(&mut out).expect("Vec writes don't fail");
                black_box(out.len())
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = codec;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_decode, bench_mask, bench_encode
}
criterion_main!(codec);
