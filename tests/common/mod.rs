//! Helpers shared by the integration tests: a daemon on port 0, real
//! WebSocket clients (tungstenite) and raw TCP over loopback. Every wait is
//! bounded by a read timeout; nothing synchronises on sleeps.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use soket::{Config, Server, ShutdownHandle};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// Upper bound for any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(10);

pub type Client = WebSocket<TcpStream>;

/// A daemon running on its own thread, shut down when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::with_args(&[])
    }

    /// Starts with the defaults plus `args` (flags as on the command line).
    pub fn with_args(args: &[&str]) -> TestServer {
        let _ = env_logger::builder().is_test(true).try_init();
        let mut argv = vec!["soket", "--listen", "127.0.0.1:0"];
        argv.extend_from_slice(args);
        let mut config = <Config as clap::Parser>::parse_from(argv);
        config.load_files().expect("static files load");
        let (addr, handle, thread) = Server::spawn(config).expect("server starts");
        TestServer { addr, handle, thread: Some(thread) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    pub fn tcp(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }

    /// A WebSocket client on `path`, handshake done.
    pub fn ws(&self, path: &str) -> Client {
        let stream = self.tcp();
        let config = WebSocketConfig::default().max_message_size(Some(64 << 20)).max_frame_size(Some(64 << 20));
        let (ws, response) = tungstenite::client::client_with_config(self.url(path), stream, Some(config))
            .unwrap_or_else(|e| panic!("handshake on {path}: {e}"));
        assert_eq!(response.status(), 101);
        ws
    }

    /// Sends one raw request and reads the whole response (server closes or
    /// Content-Length says it is complete).
    pub fn http(&self, request: &[u8]) -> HttpResponse {
        let mut stream = self.tcp();
        stream.write_all(request).unwrap();
        read_response(&mut stream).expect("an HTTP response")
    }

    /// Stops the server and waits for its reactor to return.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.handle.shutdown();
        self.thread.take().expect("running").join().expect("reactor thread")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.shutdown();
            let _ = thread.join();
        }
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response from `stream`: the head, then Content-Length bytes.
pub fn read_response(stream: &mut TcpStream) -> Option<HttpResponse> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
        assert!(head.len() < 64 * 1024, "response head too long");
    }
    let text = String::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_string(), v.trim().to_string())))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).ok()?;
    Some(HttpResponse { status, headers, body })
}

/// A valid upgrade request for `path` with `extra` header lines appended.
/// One request on `stream` (kept alive) and its response: a text body of
/// `body.len()` bytes with its Content-Length.
pub fn request(stream: &mut TcpStream, method: &str, target: &str, body: &[u8]) -> HttpResponse {
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).expect("send a request");
    read_response(stream).unwrap_or_else(|| panic!("no response to {method} {target}"))
}

/// A server with `args` and a short shutdown, so a hostile-input test never
/// waits on a peer it stopped reading from.
pub fn hostile_server(args: &[&str]) -> TestServer {
    let mut all = vec!["--shutdown-timeout", "300ms"];
    all.extend_from_slice(args);
    TestServer::with_args(&all)
}

/// The `/echo` client opened before an attack, proven to work; the test
/// proves it still works after.
pub fn echo_neighbour(server: &TestServer) -> Client {
    let mut ws = server.ws("/echo");
    assert_echoes(&mut ws, "before the attack");
    ws
}

pub fn upgrade_request(path: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// Reads messages until a data message arrives (pings are answered by tungstenite).
pub fn next_data(ws: &mut Client) -> Message {
    loop {
        match ws.read().expect("a message") {
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return other,
        }
    }
}

/// Reads until the server's close frame; returns its code (None for an empty close).
pub fn expect_close(ws: &mut Client) -> Option<u16> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match ws.read() {
            Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(e) => panic!("connection ended without a close frame: {e}"),
        }
    }
    panic!("no close frame within {WAIT:?}");
}

/// Proves a client is still served: one echo round trip.
pub fn assert_echoes(ws: &mut Client, text: &str) {
    ws.send(Message::text(text)).expect("send");
    match next_data(ws) {
        Message::Text(got) => assert_eq!(got.as_str(), text),
        other => panic!("expected the echo of {text:?}, got {other:?}"),
    }
}

/// Reads raw bytes until EOF (or the read timeout).
pub fn read_to_end_or_timeout(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one `\n`-terminated line (without the terminator).
pub fn read_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a line");
    line.trim_end_matches('\n').to_string()
}

/// The daemon as a child process on 127.0.0.1:0 with `args` and `env`: the
/// process, its address (its first line of output) and its stderr, line by
/// line, read on a thread of its own.
pub fn spawn_logging(args: &[&str], env: &[(&str, &str)]) -> (Child, SocketAddr, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_soket"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn soket");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("startup line");
    let addr = first.trim().strip_prefix("soket listening on ").expect("the address line").parse().expect("addr");
    let (send, lines) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    (child, addr, lines)
}

/// The daemon as a child process (for signals and resource limits), with
/// its address read from its first line of output.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Daemon {
    /// Runs `sh -c "<prefix> exec soket --listen 127.0.0.1:0 <args>"`.
    pub fn spawn(shell_prefix: &str, args: &[&str]) -> Daemon {
        let binary = env!("CARGO_BIN_EXE_soket");
        let script = format!("{shell_prefix} exec \"{binary}\" --listen 127.0.0.1:0 {}", args.join(" "));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn soket");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("startup line");
        let addr = line
            .trim()
            .strip_prefix("soket listening on ")
            .unwrap_or_else(|| panic!("unexpected startup line {line:?}"))
            .parse()
            .expect("address");
        Daemon { child, addr }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// User plus system CPU time the process has used, from /proc.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A legacy line-protocol user over raw TCP.
pub struct Legacy {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl Legacy {
    /// Connects and sends `name` as the first line; does not read anything.
    pub fn connect(server: &TestServer) -> Legacy {
        let stream = server.tcp();
        let writer = stream.try_clone().unwrap();
        Legacy { reader: BufReader::new(stream), writer }
    }

    /// Connects, registers `name` and reads its first online list.
    pub fn join(server: &TestServer, name: &str) -> (Legacy, String) {
        let mut user = Legacy::connect(server);
        user.send(name);
        let list = user.line();
        assert!(list.starts_with("3$*$*3"), "{name} expected the online list, got {list:?}");
        (user, list)
    }

    pub fn send(&mut self, line: &str) {
        self.writer.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// The next line (without `\n`); panics on EOF or timeout.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("a line before the timeout");
        assert!(n > 0, "connection closed while a line was expected");
        assert!(line.ends_with('\n'), "every server line ends with \\n: {line:?}");
        line.pop();
        line
    }

    /// Reads lines until one satisfies `wanted`, returning it (bounded by the read timeout).
    pub fn line_where(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        loop {
            let line = self.line();
            if wanted(&line) {
                return line;
            }
        }
    }

    /// True once the server has closed the connection (EOF), reading past any lines.
    pub fn closed(&mut self) -> bool {
        let mut line = String::new();
        loop {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// A JSON event-protocol user over WebSocket.
pub struct Json {
    pub ws: Client,
}

impl Json {
    /// Connects to `path` (e.g. `/ws`, `/ws/pros`, `/ws?name=carol`) without sending anything.
    pub fn connect(server: &TestServer, path: &str) -> Json {
        Json { ws: server.ws(path) }
    }

    /// Connects to `path`, says hello as `name` and returns the welcome.
    pub fn join(server: &TestServer, path: &str, name: &str) -> (Json, serde_json::Value) {
        let mut user = Json::connect(server, path);
        user.send(serde_json::json!({"type": "hello", "name": name}));
        let welcome = user.next();
        assert_eq!(welcome["type"], "welcome", "{name}: {welcome}");
        (user, welcome)
    }

    pub fn send(&mut self, value: serde_json::Value) {
        self.ws.send(Message::text(value.to_string())).unwrap();
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).unwrap();
    }

    /// The next JSON message.
    pub fn next(&mut self) -> serde_json::Value {
        match next_data(&mut self.ws) {
            Message::Text(text) => serde_json::from_str(text.as_str()).expect("the server sends JSON"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Reads until a message of `kind` arrives, returning it.
    pub fn next_of(&mut self, kind: &str) -> serde_json::Value {
        loop {
            let message = self.next();
            if message["type"] == kind {
                return message;
            }
        }
    }
}

/// Reads one metric's value from `/metrics` (the sample line `name value`).
pub fn metric(server: &TestServer, sample: &str) -> f64 {
    let response = server.http(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 200);
    let text = response.body_text();
    text.lines()
        .find_map(|line| line.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no sample {sample} in\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}

/// Resident set size of process `pid` in KiB (VmRSS from /proc).
pub fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS")
}

/// Peak resident set size of process `pid` in KiB (VmHWM from /proc): the
/// high-water mark, so it sees transient peaks that sampling VmRSS misses.
pub fn peak_rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM")
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in\n{status}"))
}

/// This process's soft limit on open files, from /proc.
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// Raises this process's soft open-file limit to at least `needed` with
/// util-linux `prlimit` (the tests use no unsafe code); panics if it cannot.
pub fn ensure_open_files(needed: u64) {
    if open_file_limit().unwrap_or(0) >= needed {
        return;
    }
    let pid = std::process::id().to_string();
    let _ = Command::new("prlimit").args(["--pid", &pid, &format!("--nofile={needed}:")]).status();
    let now = open_file_limit().unwrap_or(0);
    assert!(now >= needed, "this test needs {needed} open files but may open {now}; run it after `ulimit -n {needed}`");
}

/// A WebSocket client over raw TCP: frames are encoded and decoded by hand,
/// so a test controls their size and sees every frame the server sends.
pub struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// One server frame: opcode and payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn is_text_starting(&self, prefix: &str) -> bool {
        self.opcode == 0x1 && self.payload.starts_with(prefix.as_bytes())
    }

    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        match (self.opcode, self.payload.get(..2)) {
            (0x8, Some(code)) => Some(u16::from_be_bytes([code[0], code[1]])),
            _ => None,
        }
    }
}

impl RawWs {
    /// Connects to `addr` and upgrades on `path`.
    pub fn connect(addr: SocketAddr, path: &str) -> RawWs {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.write_all(&upgrade_request(path, "")).unwrap();
        let response = read_response(&mut stream).expect("an upgrade response");
        assert_eq!(response.status, 101, "upgrade on {path}");
        RawWs { stream, buf: vec![0; 64 << 10], start: 0, end: 0 }
    }

    /// Sends one masked frame.
    pub fn send(&mut self, opcode: soket::proto::ws::OpCode, payload: &[u8]) {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        soket::proto::ws::encoder::encode_client_frame(&mut frame, opcode, true, payload, [0x3c, 0x91, 0x07, 0xe5]);
        self.stream.write_all(&frame).expect("send a frame");
    }

    pub fn send_text(&mut self, text: &str) {
        self.send(soket::proto::ws::OpCode::Text, text.as_bytes());
    }

    /// Answers a close frame with `code`, completing the handshake; the
    /// server may already be gone, so a failed write is ignored.
    pub fn send_close(&mut self, code: u16) {
        let mut frame = Vec::new();
        let payload = code.to_be_bytes();
        soket::proto::ws::encoder::encode_client_frame(
            &mut frame,
            soket::proto::ws::OpCode::Close,
            true,
            &payload,
            [0x3c, 0x91, 0x07, 0xe5],
        );
        let _ = self.stream.write_all(&frame);
    }

    /// The next whole frame (server frames are unmasked and unfragmented
    /// here), or None at EOF. Panics on a read error or timeout.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some((header, len)) = self.header() {
                let total = header + len;
                if self.end - self.start >= total {
                    let at = self.start;
                    assert_eq!(self.buf[at] & 0x80, 0x80, "a whole frame");
                    let frame =
                        Frame { opcode: self.buf[at] & 0x0f, payload: self.buf[at + header..at + total].to_vec() };
                    self.start += total;
                    return Some(frame);
                }
                if self.start + total > self.buf.len() {
                    self.buf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                    if total > self.buf.len() {
                        self.buf.resize(total, 0);
                    }
                }
            } else if self.end == self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    assert_eq!(self.start, self.end, "EOF inside a frame");
                    return None;
                }
                Ok(n) => self.end += n,
                Err(e) => panic!("reading a frame: {e}"),
            }
        }
    }

    /// Header length and payload length of the frame at `start`, once its
    /// header is buffered.
    fn header(&self) -> Option<(usize, usize)> {
        let bytes = &self.buf[self.start..self.end];
        let second = *bytes.get(1)?;
        assert_eq!(second & 0x80, 0, "server frames are unmasked");
        match second & 0x7f {
            126 => Some((4, u16::from_be_bytes(bytes.get(2..4)?.try_into().unwrap()) as usize)),
            127 => Some((10, usize::try_from(u64::from_be_bytes(bytes.get(2..10)?.try_into().unwrap())).unwrap())),
            short => Some((2, short as usize)),
        }
    }
}
