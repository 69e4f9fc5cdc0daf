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
