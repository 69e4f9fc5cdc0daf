//! Between a connection and its app: complete messages in, framed answers
//! and close requests out.

use std::rc::Rc;

use super::Ctx;
use crate::app::render::Rendered;
use crate::app::{App, AppCtx, CloseRequest, Input, Output, Part};
use crate::chat::{Event, MemberId};
use crate::proto::ws::OpCode;
use crate::proto::ws::deflate::{Agreed, Dedicated, DeflateShared};
use crate::proto::ws::encoder::{encode_frame, encode_header};
use crate::write_queue::{BufPool, WriteQueue};

/// A WebSocket's permessage-deflate agreement, for its app's answers.
pub(super) struct WsDeflate<'a> {
    pub agreed: Agreed,
    /// Its own compressor, if it keeps context (`--deflate dedicated`).
    pub own: Option<&'a mut Dedicated>,
}

/// How an app's messages are framed on its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Carrier {
    /// One WebSocket message each.
    WebSocket,
    /// One `\n`-terminated line each (the legacy protocol over raw TCP).
    Lines,
    /// As they are: the protocol delimits its own messages (STOMP over raw TCP).
    Stream,
}

/// An app's answers, written into the connection's queue in its framing.
pub(super) struct AppOutput<'a> {
    out: &'a mut WriteQueue,
    pool: &'a mut BufPool,
    carrier: Carrier,
    close: Option<CloseRequest>,
    /// Compresses WebSocket messages (answers to input only: what an app
    /// writes on start, wake or timeout goes out plain, which RFC 7692 allows
    /// for any message).
    deflate: Option<(&'a mut DeflateShared, WsDeflate<'a>)>,
}

impl AppOutput<'_> {
    fn send(&mut self, opcode: OpCode, payload: &[u8]) {
        match self.carrier {
            Carrier::WebSocket => match &mut self.deflate {
                Some((shared, ws)) => self
                    .out
                    .append_with(self.pool, |v| shared.frame(&ws.agreed, ws.own.as_deref_mut(), opcode, payload, v)),
                None => self.out.append_with(self.pool, |v| encode_frame(v, opcode, payload)),
            },
            Carrier::Lines => self.out.append_with(self.pool, |v| {
                v.extend_from_slice(payload);
                v.push(b'\n');
            }),
            Carrier::Stream => self.out.push_bytes(self.pool, payload),
        }
    }
}

impl Output for AppOutput<'_> {
    fn send_text(&mut self, payload: &[u8]) {
        self.send(OpCode::Text, payload);
    }

    fn send_binary(&mut self, payload: &[u8]) {
        // A line cannot carry binary; a byte stream can.
        if self.carrier != Carrier::Lines {
            self.send(OpCode::Binary, payload);
        }
    }

    fn close(&mut self, request: CloseRequest) {
        self.close.get_or_insert(request);
    }

    fn send_parts(&mut self, parts: &[Part<'_>], binary: bool) {
        if binary && self.carrier == Carrier::Lines {
            return;
        }
        let mut own = [0u8; crate::write_queue::INLINE_BYTES];
        let mut own_len = 0;
        if self.carrier == Carrier::WebSocket {
            let total: usize = parts.iter().map(Part::len).sum();
            let mut header = [0u8; 14];
            let opcode = if binary { OpCode::Binary } else { OpCode::Text };
            let header_len = encode_header(opcode, true, total as u64, None, &mut header);
            own[..header_len].copy_from_slice(&header[..header_len]);
            own_len = header_len;
        }
        // The receiver's own leading bytes (frame header and own parts) go out as one small chunk.
        let mut rest = parts;
        while let [Part::Own(bytes), tail @ ..] = rest {
            if own_len + bytes.len() > own.len() {
                break;
            }
            own[own_len..own_len + bytes.len()].copy_from_slice(bytes);
            own_len += bytes.len();
            rest = tail;
        }
        self.out.push_small(self.pool, &own[..own_len]);
        for part in rest {
            match part {
                Part::Shared(bytes, range) => self.out.push_shared_range(self.pool, Rc::clone(bytes), range.clone()),
                Part::Own(bytes) => self.out.push_bytes(self.pool, bytes),
            }
        }
        if self.carrier == Carrier::Lines {
            self.out.push_static(self.pool, b"\n");
        }
    }
}

/// Gives one complete message to the app; returns how it wants the
/// connection to end, if it does.
pub(super) fn run_app(
    app: &mut Option<Box<dyn App>>,
    out: &mut WriteQueue,
    carrier: Carrier,
    input: Input<'_>,
    deflate: Option<WsDeflate<'_>>,
    ctx: &mut Ctx<'_>,
) -> Option<CloseRequest> {
    ctx.metrics.messages_in_total += 1;
    with_app(app, out, carrier, deflate, ctx, |app, cx, output| app.handle_input(input, cx, output))
}

/// Runs the app's own deadline; returns how it wants the connection to end,
/// if it does.
pub(super) fn run_app_timeout(
    app: &mut Option<Box<dyn App>>,
    out: &mut WriteQueue,
    carrier: Carrier,
    ctx: &mut Ctx<'_>,
) -> Option<CloseRequest> {
    with_app(app, out, carrier, None, ctx, |app, cx, output| app.handle_timeout(cx, output))
}

/// Lets the app write what it was woken for; returns how it wants the
/// connection to end, if it does.
pub(super) fn run_app_wake(
    app: &mut Option<Box<dyn App>>,
    out: &mut WriteQueue,
    carrier: Carrier,
    ctx: &mut Ctx<'_>,
) -> Option<CloseRequest> {
    with_app(app, out, carrier, None, ctx, |app, cx, output| app.on_wake(cx, output))
}

/// Starts an app the router opened on a connection that is already open (a
/// WebSocket upgrade); returns how it wants the connection to end, if it does.
pub(super) fn run_app_start(
    app: &mut Option<Box<dyn App>>,
    out: &mut WriteQueue,
    carrier: Carrier,
    ctx: &mut Ctx<'_>,
) -> Option<CloseRequest> {
    with_app(app, out, carrier, None, ctx, |app, cx, output| app.on_start(cx, output))
}

/// Asks the app to end one of its members alone; returns whether it did,
/// and how it wants the connection to end, if it does.
pub(super) fn run_app_close_member(
    app: &mut Option<Box<dyn App>>,
    out: &mut WriteQueue,
    carrier: Carrier,
    ctx: &mut Ctx<'_>,
    member: MemberId,
) -> (bool, Option<CloseRequest>) {
    let mut closed = false;
    let request =
        with_app(app, out, carrier, None, ctx, |app, cx, output| closed = app.close_member(member, cx, output));
    (closed, request)
}

/// Lets the app write one hub delivery its own way; returns how it wants
/// the connection to end, if it does.
pub(super) fn run_app_delivery(
    app: &mut Option<Box<dyn App>>,
    out: &mut WriteQueue,
    carrier: Carrier,
    ctx: &mut Ctx<'_>,
    event: &Event,
    rendered: &Rendered,
    omit: Option<u32>,
) -> Option<CloseRequest> {
    let app = app.as_mut()?;
    // Per-receiver formats (STOMP's MESSAGE with its subscription header)
    // go out plain: compressing each receiver's copy would cost a deflate
    // per delivery, the cost shared fan-out avoids.
    let mut output = AppOutput { out, pool: ctx.pool, carrier, close: None, deflate: None };
    app.deliver(event, rendered, omit, &mut output);
    output.close
}

/// Lends the app what it may use and an output into the connection's queue.
fn with_app(
    app: &mut Option<Box<dyn App>>,
    out: &mut WriteQueue,
    carrier: Carrier,
    deflate: Option<WsDeflate<'_>>,
    ctx: &mut Ctx<'_>,
    act: impl FnOnce(&mut dyn App, &mut AppCtx<'_>, &mut AppOutput<'_>),
) -> Option<CloseRequest> {
    let app = app.as_mut()?;
    let (pool, shared, mut cx) = ctx.split();
    let deflate = deflate.map(|ws| (shared, ws));
    let mut output = AppOutput { out, pool, carrier, close: None, deflate };
    act(app.as_mut(), &mut cx, &mut output);
    output.close
}
