//! TLS on the one port: every protocol behind it (HTTPS, wss, the JSON chat,
//! legacy lines, STOMP), hostile handshakes, `--tls-only`, start-up errors
//! and a certificate reload on SIGHUP. Certificates are made at test time.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use common::*;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tungstenite::Message;

type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A self-signed certificate for `localhost`, written as PEM files into a
/// directory of its own.
struct TestCert {
    dir: PathBuf,
    der: CertificateDer<'static>,
}

impl TestCert {
    fn new(tag: &str) -> TestCert {
        let dir = std::env::temp_dir().join(format!("soket-tls-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = TestCert { dir, der: CertificateDer::from(Vec::new()) };
        cert.regenerate()
    }

    /// A fresh key and certificate over the same two files.
    fn regenerate(self) -> TestCert {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(self.cert_path(), generated.cert.pem()).unwrap();
        std::fs::write(self.key_path(), generated.signing_key.serialize_pem()).unwrap();
        TestCert { dir: self.dir, der: generated.cert.der().clone() }
    }

    fn cert_path(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert_path().display().to_string(),
            "--tls-key".into(),
            self.key_path().display().to_string(),
        ]
    }

    fn server(&self, extra: &[&str]) -> TestServer {
        let args = self.args();
        let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
        argv.extend_from_slice(extra);
        TestServer::with_args(&argv)
    }
}

fn client_config(trusted: &[&CertificateDer<'static>], alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in trusted {
        roots.add((*cert).clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS client to `addr`, handshake done.
fn tls_connect_with(addr: SocketAddr, config: Arc<ClientConfig>) -> TlsStream {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut stream = StreamOwned::new(ClientConnection::new(config, name).unwrap(), tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).expect("TLS handshake");
    }
    stream
}

fn tls_connect(addr: SocketAddr, cert: &TestCert) -> TlsStream {
    tls_connect_with(addr, client_config(&[&cert.der], &[b"http/1.1"]))
}

fn wss(addr: SocketAddr, cert: &TestCert, path: &str) -> tungstenite::WebSocket<TlsStream> {
    let stream = tls_connect(addr, cert);
    let (ws, _) = tungstenite::client::client(format!("ws://localhost{path}"), stream).expect("WebSocket handshake");
    ws
}

fn wss_echoes(ws: &mut tungstenite::WebSocket<TlsStream>, text: &str) {
    ws.send(Message::text(text)).unwrap();
    loop {
        match ws.read().expect("an echo") {
            Message::Text(echo) => {
                assert_eq!(echo.as_str(), text);
                return;
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected the echo, got {other:?}"),
        }
    }
}

/// Everything the server sends until it closes (or the read timeout).
fn read_all(stream: &mut impl Read) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn https_get_healthz_and_alpn() {
    let cert = TestCert::new("https");
    let server = cert.server(&[]);
    let mut stream = tls_connect(server.addr, &cert);
    assert_eq!(stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let response = String::from_utf8_lossy(&read_all(&mut stream)).into_owned();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // A client that offers no ALPN is served too.
    let mut bare = tls_connect_with(server.addr, client_config(&[&cert.der], &[]));
    assert_eq!(bare.conn.alpn_protocol(), None);
    bare.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    assert!(read_all(&mut bare).starts_with(b"HTTP/1.1 200"));
    // Plaintext still works beside TLS on the same port.
    let mut plain = server.tcp();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    assert!(read_all(&mut plain).starts_with(b"HTTP/1.1 200"));
}

#[test]
fn the_server_closes_with_close_notify() {
    let cert = TestCert::new("notify");
    let server = cert.server(&[]);
    let mut stream = tls_connect(server.addr, &cert);
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut all = Vec::new();
    // rustls' client reports a clean close (Ok(0)) only after close_notify;
    // a bare TCP FIN would be an UnexpectedEof error.
    let result = stream.read_to_end(&mut all);
    assert!(result.is_ok(), "{result:?}");
    assert!(all.starts_with(b"HTTP/1.1 200"));
}

#[test]
fn wss_echo_large_messages_and_chat() {
    let cert = TestCert::new("wss");
    let server = cert.server(&[]);
    let mut echo = wss(server.addr, &cert, "/echo");
    wss_echoes(&mut echo, "hello over TLS");
    let big = "x".repeat(300 * 1024);
    wss_echoes(&mut echo, &big);

    let mut alice = wss(server.addr, &cert, "/ws");
    alice.send(Message::text(r#"{"type":"hello","name":"alice"}"#)).unwrap();
    let welcome = alice.read().unwrap();
    assert!(welcome.to_text().unwrap().contains(r#""type":"welcome""#), "{welcome:?}");
    // A plaintext /ws user in the same room hears the TLS user.
    let (mut bob, _) = Json::join(&server, "/ws", "bob");
    alice.send(Message::text(r#"{"type":"say","text":"hi bob"}"#)).unwrap();
    let heard = bob.next_of("message");
    assert_eq!(heard["text"], "hi bob", "{heard}");
}

#[test]
fn legacy_lines_over_tls() {
    let cert = TestCert::new("legacy");
    let server = cert.server(&[]);
    let stream = tls_connect(server.addr, &cert);
    let mut reader = BufReader::new(stream);
    reader.get_mut().write_all(b"carol\n").unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("3$*$*3"), "the online list, got {line:?}");
}

#[test]
fn stomp_over_tls() {
    let cert = TestCert::new("stomp");
    let server = cert.server(&[]);
    let mut stream = tls_connect(server.addr, &cert);
    stream.write_all(b"CONNECT\naccept-version:1.2\nhost:localhost\nlogin:erin\n\n\0").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.contains(&0) {
        let n = stream.read(&mut buf).expect("CONNECTED");
        assert!(n > 0, "closed before CONNECTED");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"CONNECTED\n"), "{}", String::from_utf8_lossy(&got));
}

#[test]
fn a_handshake_that_stalls_is_cut_at_the_deadline_and_a_neighbour_is_undisturbed() {
    let cert = TestCert::new("stall");
    let server = cert.server(&["--handshake-timeout", "500ms"]);
    let mut neighbour = wss(server.addr, &cert, "/echo");
    // The first half of a real ClientHello, then silence.
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = ClientConnection::new(client_config(&[&cert.der], &[]), name).unwrap();
    let mut hello = Vec::new();
    client.write_tls(&mut hello).unwrap();
    let mut staller = server.tcp();
    staller.write_all(&hello[..hello.len() / 2]).unwrap();
    let started = Instant::now();
    wss_echoes(&mut neighbour, "while one stalls");
    assert!(read_all(&mut staller).is_empty(), "nothing is answered to half a ClientHello");
    let waited = started.elapsed();
    assert!(waited < WAIT, "cut by the handshake deadline, not the test's timeout ({waited:?})");
    // A client that completed its handshake but then sends nothing is not
    // cut by the handshake deadline: it is past it.
    let idle = tls_connect(server.addr, &cert);
    wss_echoes(&mut neighbour, "after the cut");
    drop(idle);
}

#[test]
fn tls_only_refuses_plaintext_and_serves_tls() {
    let cert = TestCert::new("only");
    let server = cert.server(&["--tls-only"]);
    let mut plain = server.tcp();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(read_all(&mut plain).is_empty(), "a plaintext client gets no byte back");
    let mut legacy = server.tcp();
    legacy.write_all(b"dave\n").unwrap();
    assert!(read_all(&mut legacy).is_empty());
    let mut echo = wss(server.addr, &cert, "/echo");
    wss_echoes(&mut echo, "TLS still works");
}

#[test]
fn garbage_after_the_handshake_byte_is_closed_and_a_neighbour_is_undisturbed() {
    let cert = TestCert::new("garbage");
    let server = cert.server(&[]);
    let mut neighbour = wss(server.addr, &cert, "/echo");
    for garbage in [
        &b"\x16GET / HTTP/1.1\r\n\r\n"[..],
        &b"\x16\x03\x01\xff\xff"[..],
        &[0x16u8; 600][..],
        &b"\x16\x03\x03\x00\x05\x01\x00\x00\x01\x00"[..],
    ] {
        let mut attacker = server.tcp();
        attacker.write_all(garbage).unwrap();
        // An alert at most (a TLS record: content type 21), then the end.
        let answer = read_all(&mut attacker);
        assert!(answer.is_empty() || answer[0] == 0x15, "{answer:?}");
        wss_echoes(&mut neighbour, "undisturbed");
    }
}

#[test]
fn a_slow_tls_reader_is_cut_off_at_max_queued() {
    let cert = TestCert::new("slow");
    let server = cert.server(&["--max-queued", "262144"]);
    let mut slow = wss(server.addr, &cert, "/ws");
    slow.send(Message::text(r#"{"type":"hello","name":"slow"}"#)).unwrap();
    let _ = slow.read().unwrap();
    let (mut talker, _) = Json::join(&server, "/ws", "talker");
    let text = "y".repeat(32 * 1024);
    // The slow reader never reads: its TLS backlog and queue grow until the
    // cap; the talker keeps being served.
    let deadline = Instant::now() + WAIT;
    while metric(&server, "soket_slow_consumer_disconnects_total") < 1.0 {
        assert!(Instant::now() < deadline, "the slow TLS reader was not cut off");
        for _ in 0..16 {
            talker.send(serde_json::json!({"type":"say","text":text}));
        }
    }
    // The talker is still served.
    let (_, welcome) = Json::join(&server, "/ws", "late");
    assert_eq!(welcome["type"], "welcome");
}

fn spawn_binary(args: &[String]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_soket"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_certificate_that_does_not_load_is_a_start_up_error_naming_the_file() {
    let cert = TestCert::new("bad");
    let missing = cert.dir.join("missing.pem");
    let not_a_key = cert.cert_path();
    for (cert_path, key_path, named) in
        [(&missing, &cert.key_path(), &missing), (&cert.cert_path(), &not_a_key, &not_a_key)]
    {
        let args = vec![
            "--tls-cert".to_string(),
            cert_path.display().to_string(),
            "--tls-key".to_string(),
            key_path.display().to_string(),
        ];
        let output = spawn_binary(&args).wait_with_output().unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&named.display().to_string()), "{stderr}");
        assert!(output.stdout.is_empty(), "it never listened");
    }
}

fn addr_of(child: &mut std::process::Child) -> SocketAddr {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    line.trim().strip_prefix("soket listening on ").unwrap().parse().unwrap()
}

#[test]
fn sighup_reloads_the_certificate_without_dropping_connections() {
    let cert = TestCert::new("reload");
    let first = cert.der.clone();
    let mut child = spawn_binary(&cert.args());
    let addr = addr_of(&mut child);
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Kill(child);
    let mut before = wss(addr, &cert, "/echo");
    wss_echoes(&mut before, "before the reload");

    let cert = cert.regenerate();
    let second = cert.der.clone();
    assert_ne!(first, second);
    let status = Command::new("kill").arg("-HUP").arg(child.0.id().to_string()).status().unwrap();
    assert!(status.success());

    // New handshakes see the new certificate once the reactor has it; the
    // old connection keeps working meanwhile.
    let both = client_config(&[&first, &second], &[b"http/1.1"]);
    let deadline = Instant::now() + WAIT;
    loop {
        let stream = tls_connect_with(addr, both.clone());
        let presented = stream.conn.peer_certificates().unwrap()[0].clone();
        if presented == second {
            break;
        }
        assert_eq!(presented, first);
        assert!(Instant::now() < deadline, "the new certificate was not served in time");
        wss_echoes(&mut before, "during the reload");
    }
    wss_echoes(&mut before, "after the reload");
    let mut after = wss(addr, &cert, "/echo");
    wss_echoes(&mut after, "on the new certificate");
    drop(child);
    let _ = Path::new(&cert.dir);
}
