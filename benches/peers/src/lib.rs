//! Shared bits of the peer servers: argument parsing and the broadcast registry.
//!
//! Every peer takes `[PORT]` (0 or absent: any free port), binds 127.0.0.1 and
//! prints `NAME listening on ADDR` as its first stdout line, like soket.

use std::cell::RefCell;
use std::rc::Rc;

/// The port from the first argument (0 when absent).
pub fn port_arg() -> u16 {
    match std::env::args().nth(1) {
        Some(p) => p.parse().unwrap_or_else(|_| panic!("usage: peer [PORT] [--broadcast]; got port `{p}`")),
        None => 0,
    }
}

/// Whether `--broadcast` is among the arguments.
pub fn broadcast_flag() -> bool {
    std::env::args().any(|a| a == "--broadcast")
}

/// Prints the address line the load driver waits for.
pub fn announce(name: &str, addr: std::net::SocketAddr) {
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{name} listening on {addr}");
    let _ = out.flush();
}

/// Connections of the broadcast mode: id -> sender to that connection's writer.
/// Single-threaded (tokio `LocalSet`), so `Rc<RefCell<..>>` is enough.
pub struct Registry<T> {
    next_id: u64,
    members: Vec<(u64, T)>,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry { next_id: 0, members: Vec::new() }
    }
}

impl<T> Registry<T> {
    pub fn shared() -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(Self::default()))
    }

    pub fn add(&mut self, member: T) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.members.push((id, member));
        id
    }

    pub fn remove(&mut self, id: u64) {
        if let Some(i) = self.members.iter().position(|(m, _)| *m == id) {
            self.members.swap_remove(i);
        }
    }

    /// Everyone but `id`.
    pub fn others(&self, id: u64) -> impl Iterator<Item = &T> {
        self.members.iter().filter(move |(m, _)| *m != id).map(|(_, t)| t)
    }
}
