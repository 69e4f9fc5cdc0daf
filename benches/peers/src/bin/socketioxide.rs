//! socketioxide peer (Socket.IO protocol 5 over Engine.IO 4) on a tokio current-thread runtime.
//!
//! The crate's documented hyper path (`SocketIo::new_svc()` served by a hyper 1 HTTP/1.1 connection
//! with upgrades, as in its `examples/hyper-echo`), default configuration: `/socket.io/`, both
//! transports, ping interval 25 s. In the namespace `/`, every `bench` event is emitted to every
//! socket of the namespace, the sender included: `io.emit`, the Node peer's `io.emit('bench', ...)`.

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef};
use soket_bench_peers::run_tokio_peer_with_timers;

fn main() {
    let (svc, io) = SocketIo::new_svc();
    io.ns("/", async |socket: SocketRef| {
        socket.on("bench", async |io: SocketIo, Data::<Value>(data)| {
            if let Err(e) = io.emit("bench", &data).await {
                eprintln!("emit: {e}");
            }
        });
    });
    run_tokio_peer_with_timers("peer-socketioxide", svc, |stream, svc| async move {
        let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).with_upgrades();
        if let Err(e) = conn.await {
            eprintln!("connection: {e}");
        }
    });
}
