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

/// The accept loop both tokio peers share: binds 127.0.0.1 on the port
/// argument, announces itself, and runs `serve` as a local task for each
/// connection (with `TCP_NODELAY`, as soket sets) on a current-thread runtime.
pub fn run_tokio_peer<S, F, Fut>(name: &str, shared: S, serve: F)
where
    S: Clone + 'static,
    F: Fn(tokio::net::TcpStream, S) -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    run_peer(name, false, shared, serve)
}

/// [`run_tokio_peer`] with tokio's timer driver on, for servers that keep time themselves
/// (socketioxide: Engine.IO pings and the CONNECT timeout).
pub fn run_tokio_peer_with_timers<S, F, Fut>(name: &str, shared: S, serve: F)
where
    S: Clone + 'static,
    F: Fn(tokio::net::TcpStream, S) -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    run_peer(name, true, shared, serve)
}

fn run_peer<S, F, Fut>(name: &str, timers: bool, shared: S, serve: F)
where
    S: Clone + 'static,
    F: Fn(tokio::net::TcpStream, S) -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let port = port_arg();
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_io();
    if timers {
        builder.enable_time();
    }
    let rt = builder.build().expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind 127.0.0.1");
        announce(name, listener.local_addr().expect("local addr"));
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::task::yield_now().await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::task::spawn_local(serve(stream, shared.clone()));
        }
    });
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
