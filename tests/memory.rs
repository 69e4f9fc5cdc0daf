//! Memory the daemon keeps for idle connections, measured on the daemon as
//! a separate process (its resident set from /proc).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;
use soket::proto::ws::OpCode;
use soket::proto::ws::encoder::encode_client_frame;

const CONNECTIONS: usize = 16;
const MESSAGE: usize = 16 << 20;
/// Frames of this size make the decoder reassemble the message: only a
/// whole unfragmented frame in one read is handed out without copying.
const FRAGMENT: usize = 64 << 10;
/// How far above its pre-message size the daemon's resident set may stay.
const SLACK_KIB: u64 = 8 << 10;

/// An `/echo` WebSocket over raw TCP: handshake done, frames written and
/// read by hand so the message is sent in fragments.
fn raw_echo(daemon: &Daemon) -> TcpStream {
    let mut stream = TcpStream::connect(daemon.addr).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(&upgrade_request("/echo", "")).unwrap();
    let response = read_response(&mut stream).expect("an upgrade response");
    assert_eq!(response.status, 101);
    stream
}

/// Reads one unmasked server frame: (opcode, fin, payload length), leaving
/// the payload in the stream.
fn read_frame_header(stream: &mut TcpStream) -> (u8, bool, usize) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).expect("a frame header");
    assert_eq!(head[1] & 0x80, 0, "server frames are unmasked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext).unwrap();
            u16::from_be_bytes(ext) as usize
        }
        127 => {
            let mut ext = [0u8; 8];
            stream.read_exact(&mut ext).unwrap();
            usize::try_from(u64::from_be_bytes(ext)).unwrap()
        }
        short => short as usize,
    };
    (head[0] & 0x0f, head[0] & 0x80 != 0, len)
}

/// Reads one whole echoed binary message and checks it is `fragment`
/// repeated `MESSAGE / FRAGMENT` times.
fn read_echo(stream: &mut TcpStream, fragment: &[u8]) {
    let mut received = 0;
    let mut chunk = vec![0u8; FRAGMENT];
    loop {
        let (opcode, fin, len) = read_frame_header(stream);
        assert!(opcode == 0x2 || (opcode == 0x0 && received > 0), "a binary message, got opcode {opcode}");
        let mut left = len;
        while left > 0 {
            // Aligned to the pattern: compare whole fragments (or their tail).
            let at = received % FRAGMENT;
            let n = left.min(FRAGMENT - at);
            stream.read_exact(&mut chunk[..n]).expect("the echo");
            assert!(chunk[..n] == fragment[at..at + n], "echo differs at byte {received}");
            received += n;
            left -= n;
        }
        if fin {
            break;
        }
    }
    assert_eq!(received, MESSAGE);
}

/// A small text message and its echo: the daemon has handled everything
/// this connection sent before it.
fn round_trip(stream: &mut TcpStream) {
    let mut frame = Vec::new();
    encode_client_frame(&mut frame, OpCode::Text, true, b"ping?", [1, 2, 3, 4]);
    stream.write_all(&frame).unwrap();
    let (opcode, fin, len) = read_frame_header(stream);
    assert_eq!((opcode, fin, len), (0x1, true, 5));
    let mut payload = [0u8; 5];
    stream.read_exact(&mut payload).unwrap();
    assert_eq!(&payload, b"ping?");
}

#[test]
fn idle_connections_give_back_the_memory_of_a_16_mib_message() {
    // The daemon as shipped: it fixes glibc's mmap threshold at start-up
    // (src/main.rs), so freed large buffers leave the process. Without the
    // decoder's release it would hold 16 MiB per connection.
    let mut daemon = Daemon::spawn("", &[]);
    let pid = daemon.child.id();
    let mut conns: Vec<TcpStream> = (0..CONNECTIONS).map(|_| raw_echo(&daemon)).collect();
    for stream in &mut conns {
        round_trip(stream);
    }
    let baseline = rss_kib(pid);

    let fragment: Vec<u8> = (0..FRAGMENT).map(|i| (i % 251) as u8).collect();
    let mask = [0x5a, 0x17, 0xc3, 0x81];
    let frames: Vec<Vec<u8>> = [OpCode::Binary, OpCode::Continuation]
        .into_iter()
        .flat_map(|opcode| {
            [false, true].map(|fin| {
                let mut frame = Vec::new();
                encode_client_frame(&mut frame, opcode, fin, &fragment, mask);
                frame
            })
        })
        .collect();
    let (first, middle, last) = (&frames[0], &frames[2], &frames[3]);
    let count = MESSAGE / FRAGMENT;
    let mut peak = baseline;
    for stream in &mut conns {
        // The server echoes only once the message is whole, so writing it
        // all before reading cannot deadlock.
        stream.write_all(first).unwrap();
        for _ in 1..count - 1 {
            stream.write_all(middle).unwrap();
        }
        stream.write_all(last).unwrap();
        read_echo(stream, &fragment);
        peak = peak.max(rss_kib(pid));
    }
    // Each connection's last input was handled: the decoder had its chance
    // to go back to idle.
    for stream in &mut conns {
        round_trip(stream);
    }
    let idle = rss_kib(pid);
    assert!(
        idle <= baseline + SLACK_KIB,
        "resident set {baseline} KiB with {CONNECTIONS} fresh connections, {idle} KiB once they are idle \
         again after one {} MiB message each (peak seen {peak} KiB)",
        MESSAGE >> 20
    );
    assert!(daemon.child.try_wait().unwrap().is_none(), "the daemon still runs");
}
