//! Connections that never send a byte: closed after `--first-byte-timeout`,
//! and at `--max-connections` the oldest of them makes room for a newcomer,
//! so silent sockets cannot lock out those that speak.

mod common;

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// Waits (bounded by the read timeout) for the server to close `stream`
/// without sending anything: true on EOF or reset, false on a timeout.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("the server sent a byte to a connection that said nothing"),
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => true,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(e) => panic!("read: {e}"),
    }
}

/// True if the server has not closed `stream` yet (looks without waiting).
fn still_open(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let open = matches!(stream.read(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock);
    stream.set_nonblocking(false).unwrap();
    open
}

#[test]
fn silent_sockets_at_the_connection_cap_do_not_lock_out_a_health_check() {
    let server = TestServer::with_args(&["--max-connections", "50"]);
    let mut silent: Vec<TcpStream> = (0..50).map(|_| server.tcp()).collect();

    // The 51st connection: the server is full of sockets that never spoke.
    let health = server.http(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(health.status, 200);
    assert_eq!(health.body, b"ok\n");
    // The oldest silent connection made room.
    assert!(closed_by_server(&mut silent[0]), "the oldest silent connection was closed");
    // The metrics request itself may evict another one.
    assert!(metric(&server, "soket_silent_evictions_total") >= 1.0);
    assert!(still_open(&mut silent[49]), "only the oldest silent connections were evicted");
}

#[test]
fn connections_that_have_spoken_are_never_evicted_at_the_cap() {
    let server = TestServer::with_args(&["--max-connections", "4"]);
    let mut users: Vec<Legacy> = (0..4).map(|i| Legacy::join(&server, &format!("u{i}")).0).collect();

    let mut fifth = server.tcp();
    assert!(closed_by_server(&mut fifth), "a fifth connection is refused when all four have spoken");

    // The four still chat; each sees the last one's message.
    users[3].send("still here");
    for user in &mut users[..3] {
        assert_eq!(user.line_where(|l| !l.starts_with("3$*$*3")), "#lobby u3 : still here");
    }
    users[0].send("me too");
    assert_eq!(users[3].line_where(|l| !l.starts_with("3$*$*3")), "#lobby u0 : me too");
}

#[test]
fn a_silent_connection_is_closed_after_the_first_byte_timeout_and_a_speaker_is_not() {
    let server = TestServer::with_args(&["--first-byte-timeout", "300ms"]);
    let started = Instant::now();
    let mut speaker = Legacy::connect(&server);
    let mut silent = server.tcp();
    speaker.send("talker");
    assert!(speaker.line().starts_with("3$*$*3"));

    assert!(closed_by_server(&mut silent), "the silent connection was not closed within {WAIT:?}");
    let elapsed = started.elapsed();
    // The deadline starts at accept, after `started`; allow for a coarse timer.
    assert!(elapsed >= Duration::from_millis(250), "closed after {elapsed:?}, before its timeout");

    // The speaker connected first, so its first-byte deadline has passed too.
    speaker.send("/rooms");
    assert_eq!(speaker.line(), "!ROOMS lobby");
}
