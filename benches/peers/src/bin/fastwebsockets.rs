//! fastwebsockets peer on a tokio current-thread runtime.
//!
//! The crate's documented server path: a hyper 1 HTTP/1.1 connection with upgrades and
//! `fastwebsockets::upgrade::upgrade` (the `upgrade` feature), as in its `examples/echo_server.rs`.
//! - `/echo`: `FragmentCollector` read/write loop of that example.
//! - `/broadcast`: the split API of `examples/echo_server_split.rs` (`unstable-split`): the read half
//!   copies each message once into a `Bytes` and hands a clone to every other connection's writer task.

use std::cell::RefCell;
use std::rc::Rc;

use fastwebsockets::{FragmentCollector, FragmentCollectorRead, Frame, OpCode, Payload, WebSocketError, upgrade};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use soket_bench_peers::{Registry, run_tokio_peer};
use tokio::sync::mpsc;

type Outgoing = mpsc::UnboundedSender<(OpCode, Bytes)>;
type Reg = Rc<RefCell<Registry<Outgoing>>>;

async fn echo(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(fut.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
    Ok(())
}

async fn broadcast(fut: upgrade::UpgradeFut, reg: Reg) -> Result<(), WebSocketError> {
    let ws = fut.await?;
    let (rx, mut tx) = ws.split(tokio::io::split);
    let mut rx = FragmentCollectorRead::new(rx);
    let (out, mut queue) = mpsc::unbounded_channel::<(OpCode, Bytes)>();
    let id = reg.borrow_mut().add(out.clone());
    let writer = tokio::task::spawn_local(async move {
        while let Some((opcode, payload)) = queue.recv().await {
            tx.write_frame(Frame::new(true, opcode, None, Payload::Borrowed(&payload))).await?;
            if opcode == OpCode::Close {
                break;
            }
        }
        Ok::<(), WebSocketError>(())
    });
    // Obligated replies of the read half (pong, the close reply) go through the writer task.
    let mut send_fn = |frame: Frame<'_>| {
        let _ = out.send((frame.opcode, Bytes::copy_from_slice(&frame.payload)));
        async { Ok::<(), WebSocketError>(()) }
    };
    let result = loop {
        let frame = match rx.read_frame(&mut send_fn).await {
            Ok(frame) => frame,
            Err(e) => break Err(e),
        };
        match frame.opcode {
            OpCode::Close => break Ok(()),
            OpCode::Text | OpCode::Binary => {
                let payload = Bytes::copy_from_slice(&frame.payload);
                for other in reg.borrow().others(id) {
                    let _ = other.send((frame.opcode, payload.clone()));
                }
            }
            _ => {}
        }
    };
    reg.borrow_mut().remove(id);
    drop(out);
    let _ = writer.await;
    result
}

async fn route(mut req: Request<Incoming>, reg: Reg) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let path = req.uri().path().to_owned();
    if !upgrade::is_upgrade_request(&req) || (path != "/echo" && path != "/broadcast") {
        let mut response = Response::new(Empty::new());
        *response.status_mut() = StatusCode::NOT_FOUND;
        return Ok(response);
    }
    let (response, fut) = upgrade::upgrade(&mut req)?;
    tokio::task::spawn_local(async move {
        let result = if path == "/echo" {
            tokio::task::unconstrained(echo(fut)).await
        } else {
            tokio::task::unconstrained(broadcast(fut, reg)).await
        };
        if let Err(e) = result {
            eprintln!("websocket connection: {e}");
        }
    });
    Ok(response)
}

fn main() {
    let reg: Reg = Registry::shared();
    run_tokio_peer("peer-fastwebsockets", reg, |stream, reg| async move {
        let io = TokioIo::new(stream);
        let service = service_fn(move |req| route(req, reg.clone()));
        if let Err(e) = http1::Builder::new().serve_connection(io, service).with_upgrades().await {
            eprintln!("http connection: {e}");
        }
    });
}
