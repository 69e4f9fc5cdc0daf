//! tokio-tungstenite peer on a tokio current-thread runtime.
//!
//! `accept_hdr_async` (the path is read in the handshake callback), then:
//! - `/echo`: the crate's `examples/echo-server.rs`: `read.try_filter(text or binary).forward(write)`.
//! - `/broadcast`: the stream half hands every message (a `Bytes`-backed `Message`, so the payload is
//!   shared, not copied) to every other connection's writer task, which feeds its sink and flushes
//!   when its queue is empty.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::{SinkExt, StreamExt, TryStreamExt, future};
use soket_bench_peers::{Registry, run_tokio_peer};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

type Reg = Rc<RefCell<Registry<mpsc::UnboundedSender<Message>>>>;

// The callback's error type is tungstenite's `ErrorResponse`, fixed by its `Callback` trait.
#[allow(clippy::result_large_err)]
async fn serve(stream: TcpStream, reg: Reg) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let mut path = String::new();
    let callback = |req: &Request, response: Response| -> Result<Response, ErrorResponse> {
        path = req.uri().path().to_owned();
        Ok(response)
    };
    let ws = tokio_tungstenite::accept_hdr_async(stream, callback).await?;
    let (mut write, mut read) = ws.split();
    if path != "/broadcast" {
        return read.try_filter(|msg| future::ready(msg.is_text() || msg.is_binary())).forward(write).await;
    }
    let (out, mut queue) = mpsc::unbounded_channel::<Message>();
    let id = reg.borrow_mut().add(out);
    let writer = tokio::task::spawn_local(async move {
        while let Some(msg) = queue.recv().await {
            write.feed(msg).await?;
            while let Ok(msg) = queue.try_recv() {
                write.feed(msg).await?;
            }
            write.flush().await?;
        }
        write.close().await
    });
    let result = loop {
        match read.next().await {
            Some(Ok(msg)) if msg.is_text() || msg.is_binary() => {
                for other in reg.borrow().others(id) {
                    let _ = other.send(msg.clone());
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => break Err(e),
            None => break Ok(()),
        }
    };
    reg.borrow_mut().remove(id);
    let _ = writer.await;
    result
}

fn main() {
    let reg: Reg = Registry::shared();
    run_tokio_peer("peer-tokio-tungstenite", reg, |stream, reg| async move {
        if let Err(e) = serve(stream, reg).await {
            eprintln!("websocket connection: {e}");
        }
    });
}
