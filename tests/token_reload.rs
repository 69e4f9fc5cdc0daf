//! SIGHUP re-reads the token key (docs/AUTH.md): the daemon runs as a
//! child process, its key file is rewritten, and the reload is awaited on
//! its log line. Connections admitted before stay; new tokens are checked
//! with the new key; a key file that no longer loads keeps the last one.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc::Receiver;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use common::{Json, WAIT, expect_close};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn hs256(secret: &str, sub: &str) -> String {
    let claims = json!({"sub": sub, "exp": now() + 600});
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

/// A directory for one test's key files, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("soket-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The daemon and its stderr, line by line.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    lines: Receiver<String>,
}

impl Daemon {
    fn spawn(args: &[&str]) -> Daemon {
        let mut all = vec!["--token-leeway", "0s"];
        all.extend_from_slice(args);
        let (child, addr, lines) = common::spawn_logging(&all, &[]);
        Daemon { child, addr, lines }
    }

    /// Sends SIGHUP and waits (bounded) for the log line holding `event`.
    fn reload(&self, event: &str) -> String {
        let status = Command::new("kill").arg("-HUP").arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(event) => return line,
                Ok(_) => {}
                Err(_) => panic!("no {event} logged after SIGHUP"),
            }
        }
    }

    fn ws(&self, path: &str) -> Json {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let (ws, _) = tungstenite::client::client(format!("ws://{}{path}", self.addr), stream).unwrap();
        Json { ws }
    }

    /// Signs in with `token` for `name`; the welcome's name.
    fn signs_in(&self, token: &str, name: &str) -> (Json, bool) {
        let mut user = self.ws(&format!("/ws?token={token}"));
        user.send(json!({"type": "hello", "name": name}));
        let answer = user.next();
        let welcome = answer["type"] == "welcome";
        if !welcome {
            assert_eq!(answer["code"], "unauthorized", "{name}: {answer}");
            assert_eq!(expect_close(&mut user.ws), Some(4001), "{name}");
        }
        (user, welcome)
    }

    fn assert_running(&mut self) {
        assert!(self.child.try_wait().unwrap().is_none(), "the daemon exited");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn still_served(user: &mut Json) {
    user.send(json!({"type": "who", "room": "lobby", "id": 9}));
    assert_eq!(user.next_of("members")["id"], 9);
}

fn write(path: &Path, contents: &[u8]) {
    // A rename, as a deploy tool would: the daemon never reads half a file.
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, contents).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}

#[test]
fn sighup_rereads_the_token_secret_file() {
    let dir = TempDir::new("token-reload-hs");
    let file = dir.0.join("secret");
    let (key_a, key_b) = ("key-a-0123456789", "key-b-9876543210");
    write(&file, format!("{key_a}\n").as_bytes());
    let mut daemon = Daemon::spawn(&["--token-secret-file", file.to_str().unwrap()]);
    let (mut early, welcome) = daemon.signs_in(&hs256(key_a, "early"), "early");
    assert!(welcome, "key A before the reload");
    assert!(!daemon.signs_in(&hs256(key_b, "bob"), "bob").1, "key B before the reload");

    write(&file, format!("{key_b}\n").as_bytes());
    let line = daemon.reload("event=token_key_reloaded");
    assert!(line.contains("algorithm=HS256"), "{line}");
    assert!(!daemon.signs_in(&hs256(key_a, "alice"), "alice").1, "key A after the reload");
    let (_carol, welcome) = daemon.signs_in(&hs256(key_b, "carol"), "carol");
    assert!(welcome, "key B after the reload");
    // Admitted before the reload: undisturbed, and its refresh takes the new key.
    still_served(&mut early);
    early.send(json!({"type": "refresh", "token": hs256(key_a, "early"), "id": 1}));
    assert_eq!(early.next_of("error")["code"], "unauthorized");
    early.send(json!({"type": "refresh", "token": hs256(key_b, "early"), "id": 2}));
    assert_eq!(early.next_of("ack")["id"], 2);

    // A file that no longer loads (empty, then gone) keeps key B.
    write(&file, b"");
    let line = daemon.reload("event=token_key_reload_failed");
    assert!(line.contains("empty"), "{line}");
    std::fs::remove_file(&file).unwrap();
    daemon.reload("event=token_key_reload_failed");
    daemon.assert_running();
    assert!(daemon.signs_in(&hs256(key_b, "dave"), "dave").1, "key B after failed reloads");
    assert!(!daemon.signs_in(&hs256(key_a, "eve"), "eve").1, "key A after failed reloads");
    still_served(&mut early);
}

#[test]
fn sighup_rereads_the_token_public_key() {
    let dir = TempDir::new("token-reload-es");
    let file = dir.0.join("public.pem");
    let key_a = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let key_b = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let es256 = |key: &rcgen::KeyPair, sub: &str| {
        let private = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &json!({"sub": sub, "exp": now() + 600}), &private)
            .unwrap()
    };
    write(&file, key_a.public_key_pem().as_bytes());
    let mut daemon = Daemon::spawn(&["--token-public-key", file.to_str().unwrap()]);
    let (mut early, welcome) = daemon.signs_in(&es256(&key_a, "early"), "early");
    assert!(welcome);

    write(&file, key_b.public_key_pem().as_bytes());
    let line = daemon.reload("event=token_key_reloaded");
    assert!(line.contains("algorithm=ES256"), "{line}");
    assert!(!daemon.signs_in(&es256(&key_a, "alice"), "alice").1, "key A after the reload");
    assert!(daemon.signs_in(&es256(&key_b, "carol"), "carol").1, "key B after the reload");
    still_served(&mut early);

    write(&file, b"-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n");
    let line = daemon.reload("event=token_key_reload_failed");
    assert!(line.contains("--token-public-key"), "{line}");
    daemon.assert_running();
    assert!(daemon.signs_in(&es256(&key_b, "dave"), "dave").1, "key B after a failed reload");
    still_served(&mut early);
}
