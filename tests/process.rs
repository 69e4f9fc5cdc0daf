//! The daemon as a process: graceful shutdown on signals, and behaviour at
//! the file-descriptor limit.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::*;
use tungstenite::Message;

fn ws_client(addr: std::net::SocketAddr, path: &str) -> Client {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let (ws, _) = tungstenite::client::client(format!("ws://{addr}{path}"), stream).expect("handshake");
    ws
}

#[test]
fn sigterm_closes_websockets_with_1001_and_exits_zero() {
    for signal in ["TERM", "INT"] {
        let mut daemon = Daemon::spawn("", &[]);
        let mut clients: Vec<Client> = (0..3).map(|_| ws_client(daemon.addr, "/echo")).collect();
        for ws in &mut clients {
            assert_echoes(ws, "before the signal");
        }
        daemon.signal(signal);
        for ws in &mut clients {
            assert_eq!(expect_close(ws), Some(1001), "SIG{signal}");
            // Completing the handshake lets the server finish early.
            let _ = ws.flush();
        }
        assert_eq!(daemon.wait_exit(), Some(0), "exit status after SIG{signal}");
        assert!(TcpStream::connect(daemon.addr).is_err(), "the listener is closed");
    }
}

#[test]
fn at_the_descriptor_limit_accept_neither_spins_nor_hurts_connected_clients() {
    // Few descriptors: the listener, epoll, the waker and a handful of sockets.
    let daemon = Daemon::spawn("ulimit -n 24;", &[]);
    let mut veteran = ws_client(daemon.addr, "/echo");
    assert_echoes(&mut veteran, "before the flood");

    // More connections than descriptors: the kernel completes them into the
    // backlog, the daemon accepts until EMFILE.
    let flood: Vec<TcpStream> = (0..60).map(|_| TcpStream::connect(daemon.addr).unwrap()).collect();
    let cpu_before = daemon.cpu_time();
    for i in 0..20 {
        assert_echoes(&mut veteran, &format!("during the flood {i}"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let cpu_used = daemon.cpu_time() - cpu_before;
    // One second of wall time with pending connections: a spinning accept
    // loop would burn most of it.
    assert!(cpu_used < Duration::from_millis(300), "daemon used {cpu_used:?} of CPU while out of descriptors");

    // Once descriptors free up, waiting clients are served again.
    drop(flood);
    let mut newcomer = ws_client(daemon.addr, "/echo");
    assert_echoes(&mut newcomer, "after the flood");
    veteran.send(Message::text("still")).unwrap();
    assert_eq!(next_data(&mut veteran), Message::text("still"));
}

/// Registered `/ws` users for the shutdown test: enough that pushing the
/// online list on each departure (N(N-1)/2 pushes) would be unmissable.
const USERS: usize = 1000;
/// Joins between two drains: bounds what queues up for each user (at most
/// this many lists of about 7 KB) far below `--max-queued`.
const JOIN_BATCH: usize = 50;

/// A frame for an assertion message: opcode and the start of its payload.
fn describe(frame: &Frame) -> String {
    let head = &frame.payload[..frame.payload.len().min(60)];
    format!("opcode {} {:?}", frame.opcode, String::from_utf8_lossy(head))
}

/// Reads every `users` push that the joins so far owe to each user: user
/// `i` gets one per later join, `joined - 1 - i` in all.
fn drain_presence(users: &mut [RawWs], pushes: &mut [usize]) {
    let joined = users.len();
    for (i, user) in users.iter_mut().enumerate() {
        while pushes[i] < joined - 1 - i {
            let frame = user.next_frame().unwrap_or_else(|| panic!("u{i} closed while awaiting a users push"));
            assert!(
                frame.is_text_starting(r#"{"type":"users""#),
                "u{i} expected a users push, got {}",
                describe(&frame)
            );
            pushes[i] += 1;
        }
    }
}

#[test]
fn sigterm_with_1000_registered_users_sends_no_users_push() {
    // Issue 7 defect 4: shutdown closed users one by one, and each departure
    // pushed the online list to everyone left. The daemon inherits the limit.
    ensure_open_files(USERS as u64 + 100);
    let mut daemon = Daemon::spawn("", &[]);
    let started = std::time::Instant::now();
    let mut users: Vec<RawWs> = Vec::with_capacity(USERS);
    let mut pushes = vec![0; USERS];
    for k in 0..USERS {
        let mut user = RawWs::connect(daemon.addr, "/ws");
        user.send_text(&format!(r#"{{"type":"hello","name":"u{k}"}}"#));
        let welcome = user.next_frame().expect("a welcome");
        assert!(welcome.is_text_starting(r#"{"type":"welcome""#), "u{k}: {}", describe(&welcome));
        users.push(user);
        if users.len().is_multiple_of(JOIN_BATCH) || users.len() == USERS {
            drain_presence(&mut users, &mut pushes);
        }
    }
    let joined_after = started.elapsed();

    daemon.signal("TERM");
    for (i, user) in users.iter_mut().enumerate() {
        let frame = user.next_frame().unwrap_or_else(|| panic!("u{i}: EOF without a close frame"));
        assert_eq!(frame.close_code(), Some(1001), "u{i}: the first frame after SIGTERM is {}", describe(&frame));
        user.send_close(1001);
    }
    for (i, user) in users.iter_mut().enumerate() {
        if let Some(frame) = user.next_frame() {
            panic!("u{i}: after the close frame came {}", describe(&frame));
        }
    }
    assert_eq!(daemon.wait_exit(), Some(0), "exit status after SIGTERM");
    eprintln!("{USERS} users joined in {joined_after:?}; shut down after {:?}", started.elapsed());
}

#[test]
fn several_listen_addresses_are_all_served_and_printed() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};
    // A machine without IPv6 on loopback serves a second IPv4 address instead.
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let second = if ipv6 { "[::1]:0" } else { "127.0.0.2:0" };
    let mut child = Command::new(env!("CARGO_BIN_EXE_soket"))
        .args(["--listen", "127.0.0.1:0", "--listen", second, "--listen", "localhost:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn soket");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut addrs = Vec::new();
    // localhost may be one or two more addresses; the first two lines are ours.
    for _ in 0..2 {
        let mut line = String::new();
        stdout.read_line(&mut line).expect("an address line");
        let addr: std::net::SocketAddr =
            line.trim().strip_prefix("soket listening on ").expect("the address line").parse().expect("addr");
        addrs.push(addr);
    }
    assert!(addrs[0].is_ipv4() && addrs[1].is_ipv6() == ipv6, "{addrs:?}");
    for addr in &addrs {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n"), "{addr}: {answer}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_bad_flag_value_is_named_and_exits_two() {
    use std::process::Command;
    for (args, says) in [
        (&["--max-queued", "lots"][..], "--max-queued"),
        (&["--listen", "8888"][..], "--listen 8888"),
        (&["--max-line", "0"][..], "--max-line must be at least 1"),
        (&["--config", "/nonexistent/soket.toml"][..], "/nonexistent/soket.toml"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_soket")).args(args).output().expect("run soket");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("cannot serve"), "{args:?}: {stderr}");
    }
}
