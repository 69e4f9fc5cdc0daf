//! `--static-dir` and `--socketio-client` against the real daemon: files
//! loaded at start-up and answered over keep-alive connections, soket's own
//! paths first, hostile paths 404, and a directory over the budget refused
//! before serving.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        // Tests run in parallel: each gets directories of its own.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("soket-it-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, rel: &str, body: &[u8]) {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").into_bytes()
}

/// Reads a response head only (HEAD answers announce a length they do not send).
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).expect("a head before the timeout"), 1, "closed mid-head");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

fn site() -> (TempDir, TempDir, Vec<u8>) {
    let site = TempDir::new("site");
    site.write("index.html", b"<!doctype html><title>mine</title>");
    site.write("js/app.mjs", b"export const x = 1;");
    site.write("data.json", b"{\"a\":1}");
    site.write(".env", b"SECRET=1");
    site.write("healthz", b"shadowed by soket's own route");
    // Larger than a socket buffer: the answer goes out over several writes.
    let big: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    site.write("big.bin", &big);
    let dist = TempDir::new("dist");
    dist.write("socket.io.js", b"window.io = function () {};");
    dist.write("socket.io.js.map", b"{\"version\":3}");
    dist.write("package.json", b"not served");
    (site, dist, big)
}

#[test]
fn files_over_one_keep_alive_connection() {
    let (site, dist, big) = site();
    let server = TestServer::with_args(&["--static-dir", site.arg(), "--socketio-client", dist.arg()]);
    let mut stream = server.tcp();

    let mut fetch = |request: Vec<u8>| {
        stream.write_all(&request).unwrap();
        read_response(&mut stream).expect("a response on the same connection")
    };
    let index = fetch(get("/", ""));
    assert_eq!(index.status, 200);
    assert_eq!(index.body_text(), "<!doctype html><title>mine</title>");
    assert_eq!(index.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(index.header("Cache-Control"), Some("no-cache"));
    assert_eq!(index.header("Connection"), None);
    let etag = index.header("ETag").expect("an ETag").to_owned();

    let module = fetch(get("/js/app.mjs", ""));
    assert_eq!((module.status, module.header("Content-Type")), (200, Some("text/javascript; charset=utf-8")));
    assert_eq!(fetch(get("/data.json?cache=bust", "")).header("Content-Type"), Some("application/json; charset=utf-8"));

    let bundle = fetch(get("/socket.io/socket.io.js", ""));
    assert_eq!(bundle.status, 200);
    assert_eq!(bundle.body_text(), "window.io = function () {};");
    assert_eq!(bundle.header("Content-Type"), Some("text/javascript; charset=utf-8"));
    let map = fetch(get("/socket.io/socket.io.js.map", ""));
    assert_eq!((map.status, map.header("Content-Type")), (200, Some("application/json; charset=utf-8")));

    let cached = fetch(get("/", &format!("If-None-Match: {etag}\r\n")));
    assert_eq!((cached.status, cached.body.len()), (304, 0));
    assert_eq!(cached.header("ETag"), Some(etag.as_str()));
    assert_eq!(fetch(get("/", "If-None-Match: \"other\"\r\n")).status, 200);

    assert_eq!(fetch(get("/big.bin", "")).body, big);
    assert_eq!(fetch(get("/healthz", "")).body_text(), "ok\n");
    for missing in [
        "/.env",
        "/js",
        "/js/",
        "/../index.html",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/js/..%2f..%2findex.html",
        "/js%5capp.mjs",
        "/index.html%00",
        "/socket.io/package.json",
        "/socket.io/socket.io.min.js",
    ] {
        assert_eq!(fetch(get(missing, "")).status, 404, "{missing}");
    }
    // Beside the bundle, the Engine.IO endpoint answers its handshake.
    let open = fetch(get("/socket.io/?EIO=4&transport=polling", ""));
    assert_eq!(open.status, 200);
    // Still the same connection after all that.
    assert_eq!(fetch(get("/index.html", "")).status, 200);

    stream.write_all(b"HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /data.json HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("\r\nContent-Length: 600000\r\n"), "{head}");
    // The pipelined GET follows the HEAD answer directly: no body was sent.
    assert_eq!(read_response(&mut stream).expect("the pipelined answer").body_text(), "{\"a\":1}");
    drop(stream);
    server.stop().unwrap();
}

#[test]
fn the_daemon_loads_files_and_refuses_a_directory_over_the_budget() {
    let (site, dist, _) = site();
    let daemon = Daemon::spawn("", &["--static-dir", site.arg(), "--socketio-client", dist.arg()]);
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(&get("/socket.io/socket.io.js", "Connection: close\r\n")).unwrap();
    let answer = read_response(&mut stream).expect("an answer");
    assert_eq!((answer.status, answer.body_text().as_str()), (200, "window.io = function () {};"));

    let refused = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_soket"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run soket");
        assert!(!output.status.success(), "{args:?} started");
        assert!(output.stdout.is_empty(), "{args:?} printed a listening line");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = refused(&["--static-dir", site.arg(), "--static-max-bytes", "1000"]);
    assert!(stderr.contains("--static-max-bytes"), "{stderr}");
    let stderr = refused(&["--socketio-client", site.arg()]);
    assert!(stderr.contains("socket.io-client"), "{stderr}");
    let missing = Path::new(site.arg()).join("missing");
    let stderr = refused(&["--static-dir", missing.to_str().unwrap()]);
    assert!(stderr.contains("cannot read"), "{stderr}");
}
