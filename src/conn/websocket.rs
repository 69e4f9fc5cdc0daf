//! The connection's WebSocket framing: decoding frames into app input,
//! control frames (ping, pong, close) and the keepalive, and framing shared
//! hub deliveries. The RFC 6455 codec itself is in [`crate::proto::ws`].

use std::ops::Range;
use std::rc::Rc;
use std::time::Instant;

use log::debug;

use super::app_io::{Carrier, WsDeflate};
use super::{AfterClose, Conn, Ctx, Framing, Lifecycle, Transport, run_app};
use crate::app::Input;
use crate::app::render::Rendered;
use crate::config::Timeouts;
use crate::proto::ws::decoder::DecoderLimits;
use crate::proto::ws::deflate::{Agreed, Dedicated, InflateError};
use crate::proto::ws::encoder::{encode_frame, encode_header};
use crate::proto::ws::{CloseCode, Decoder, Message, OpCode, WsError};
use crate::write_queue::{BufPool, WriteQueue};

/// Reassembly space a WebSocket keeps between messages, so a peer that sends
/// one fragmented or read-spanning message after another (a 64 KiB echo) does
/// not allocate and free for each. More is released once the message is
/// done; this much is released when the connection falls silent (at its
/// keepalive ping).
const KEEP_REASSEMBLY_BYTES: usize = 128 * 1024;

/// Bytes a connection may inflate in one read turn before it yields to the
/// others (it resumes on the next turn of the loop). Checked between
/// messages: one message inflates at most `--max-message` bytes.
const INFLATE_BUDGET_PER_TURN: usize = 1024 * 1024;

/// A WebSocket's decoder and keepalive clock (kept small: every idle
/// WebSocket holds one).
pub(super) struct WsFraming {
    decoder: Decoder,
    /// permessage-deflate, when the 101 agreed to it (boxed: a WebSocket
    /// without it, the idle majority, pays one word).
    deflate: Option<Box<WsDeflateState>>,
    /// When the keepalive acts next: a ping `--ping-interval` after the
    /// last bytes arrived, or, with `ping_outstanding`, the cut
    /// `--ping-timeout` after that ping.
    keepalive_at: Instant,
    ping_outstanding: bool,
}

/// A WebSocket's permessage-deflate.
struct WsDeflateState {
    agreed: Agreed,
    /// zlib state of its own, for a connection that keeps context (counted
    /// and capped by `--deflate-max-dedicated`); the others share the reactor's.
    own_zlib: Option<Box<Dedicated>>,
    /// Bytes inflated in the current read turn.
    inflated_this_turn: usize,
}

impl WsDeflateState {
    fn output(&mut self) -> WsDeflate<'_> {
        WsDeflate { agreed: self.agreed, own: self.own_zlib.as_deref_mut() }
    }
}

/// What the keepalive clock asks for.
pub(super) enum Keepalive {
    Wait,
    Ping,
    TimedOut,
}

impl WsFraming {
    pub(super) fn new(limits: DecoderLimits, now: Instant, timeouts: &Timeouts) -> WsFraming {
        WsFraming {
            decoder: Decoder::new(limits),
            deflate: None,
            keepalive_at: now + timeouts.ping_interval,
            ping_outstanding: false,
        }
    }

    /// Speaks permessage-deflate as agreed, with `own` zlib state if it keeps context.
    pub(super) fn enable_deflate(&mut self, agreed: Agreed, own: Option<Box<Dedicated>>) {
        self.decoder.set_permessage_deflate();
        self.deflate = Some(Box::new(WsDeflateState { agreed, own_zlib: own, inflated_this_turn: 0 }));
    }

    /// A new read turn: the inflate budget is whole again.
    pub(super) fn new_turn(&mut self) {
        if let Some(deflate) = self.deflate.as_deref_mut() {
            deflate.inflated_this_turn = 0;
        }
    }

    /// The agreement and own zlib state, for compressing deliveries.
    pub(super) fn deflate_out(&mut self) -> Option<WsDeflate<'_>> {
        self.deflate.as_deref_mut().map(WsDeflateState::output)
    }

    pub(super) fn keepalive_deadline(&self) -> Instant {
        self.keepalive_at
    }

    /// Bytes arrived: the peer is alive.
    fn on_receive(&mut self, now: Instant, timeouts: &Timeouts) {
        self.keepalive_at = now + timeouts.ping_interval;
        self.ping_outstanding = false;
    }

    /// Called at or after the keepalive deadline; marks a ping as sent.
    pub(super) fn on_deadline(&mut self, now: Instant, timeouts: &Timeouts) -> Keepalive {
        if self.keepalive_at > now {
            return Keepalive::Wait;
        }
        if self.ping_outstanding {
            return Keepalive::TimedOut;
        }
        self.ping_outstanding = true;
        self.keepalive_at = now + timeouts.ping_timeout;
        // Silent for a ping interval: nothing to reassemble is kept either.
        self.decoder.release_idle_memory();
        Keepalive::Ping
    }
}

/// How decoding a batch of frames ended.
enum Step {
    /// Everything decodable was handled.
    Open,
    /// Output piles up unsent: stop decoding until the peer reads.
    Paused,
    /// The turn's inflate budget is spent: go on next turn.
    Yield,
    /// A frame broke the protocol: our close frame says why; finish.
    Violation(CloseCode, String),
    /// The peer's close frame came, with its code if it had one.
    PeerClosed(Option<CloseCode>),
}

impl<S: Transport> Conn<S> {
    /// Decodes frames from `buf` and acts on them; returns the bytes consumed.
    pub(super) fn process_websocket(&mut self, buf: &mut [u8], ctx: &mut Ctx<'_>) -> usize {
        let mut pos = 0;
        // Bytes arrived: the peer is alive (once per read, not per message).
        if let Lifecycle::Open(Framing::WebSocket(ws)) | Lifecycle::Closing { ws, .. } = &mut self.lifecycle {
            ws.on_receive(ctx.now, ctx.timeouts);
        }
        let step = loop {
            let backlog_before = counted_queue(&self.out, ctx.limits.max_queued_bytes);
            let Conn { lifecycle, app, out, .. } = self;
            let (ws, closing) = match lifecycle {
                Lifecycle::Open(Framing::WebSocket(ws)) => (ws, false),
                Lifecycle::Closing { ws, .. } => (ws, true),
                // The app finished the connection on the last message.
                _ => return buf.len(),
            };
            let Some(rest) = buf.get_mut(pos..) else {
                break Step::Open;
            };
            let limit = ws.decoder.limits().max_message_bytes;
            let message = match ws.decoder.decode(rest) {
                Ok((0, None)) => break Step::Open,
                Ok((consumed, message)) => {
                    pos += consumed;
                    match message {
                        Some(message) => message,
                        None => continue,
                    }
                }
                Err(error) => {
                    debug!("event=protocol_error conn={} error={}", self.id, crate::logging::quote(&error.to_string()));
                    break Step::Violation(error.close_code(), error.to_string());
                }
            };
            let close_request = match message {
                Message::Close(frame) => break Step::PeerClosed(frame.map(|f| f.code)),
                // Once our close is out, only the peer's close matters.
                _ if closing => continue,
                Message::Ping(payload) => {
                    out.append_with(ctx.pool, |v| encode_frame(v, OpCode::Pong, payload));
                    None
                }
                Message::Pong(_) => None,
                Message::Text(text) => {
                    let deflate = ws.deflate.as_deref_mut().map(WsDeflateState::output);
                    run_app(app, out, Carrier::WebSocket, Input::Text(text), deflate, ctx)
                }
                Message::Binary(data) => {
                    let deflate = ws.deflate.as_deref_mut().map(WsDeflateState::output);
                    run_app(app, out, Carrier::WebSocket, Input::Binary(data), deflate, ctx)
                }
                Message::Compressed { text, payload } => {
                    // RFC 7692 §6.2: inflate (the size checked as it grows),
                    // then treat it as the message it was.
                    let mut inflated = ctx.deflate.take_buffer();
                    let result = ctx.deflate.inflate(
                        ws.deflate.as_deref_mut().and_then(|d| d.own_zlib.as_deref_mut()),
                        payload,
                        &mut inflated,
                        limit,
                    );
                    let error = match result {
                        Err(InflateError::TooBig) => Some(WsError::InflatedTooBig),
                        Err(InflateError::Corrupt) => Some(WsError::BadDeflate),
                        Ok(()) if text && std::str::from_utf8(&inflated).is_err() => Some(WsError::InvalidUtf8),
                        Ok(()) => None,
                    };
                    if let Some(error) = error {
                        ctx.deflate.put_buffer(inflated);
                        debug!("conn {:?}: websocket protocol error: {error}", self.id);
                        break Step::Violation(error.close_code(), error.to_string());
                    }
                    if let Some(deflate) = ws.deflate.as_deref_mut() {
                        deflate.inflated_this_turn += inflated.len();
                    }
                    let deflate = ws.deflate.as_deref_mut().map(WsDeflateState::output);
                    let input = match std::str::from_utf8(&inflated) {
                        Ok(text_in) if text => Input::Text(text_in),
                        _ => Input::Binary(&inflated),
                    };
                    let request = run_app(app, out, Carrier::WebSocket, input, deflate, ctx);
                    ctx.deflate.put_buffer(inflated);
                    request
                }
            };
            let budget_spent = ws.deflate.as_ref().is_some_and(|d| d.inflated_this_turn >= INFLATE_BUDGET_PER_TURN);
            if let Some(request) = close_request {
                self.close(request, ctx);
            }
            if self.out.queued() >= ctx.limits.read_pause_bytes() {
                // Output piles up within one batch: write now rather than at
                // the end of it, and stop decoding while the peer does not
                // take it.
                if !self.write_now(ctx) {
                    self.close_now(ctx);
                    return buf.len();
                }
                if backlog_before > 0
                    && counted_queue(&self.out, ctx.limits.max_queued_bytes) > ctx.limits.max_queued_bytes
                {
                    self.slow_reader(ctx);
                    return buf.len();
                }
                if self.out.queued() >= ctx.limits.read_pause_bytes() {
                    break Step::Paused;
                }
            }
            if budget_spent {
                break Step::Yield;
            }
        };
        if let Lifecycle::Open(Framing::WebSocket(ws)) | Lifecycle::Closing { ws, .. } = &mut self.lifecycle
            && ws.decoder.reassembly_capacity() > KEEP_REASSEMBLY_BYTES
        {
            // A large reassembled message is done with: the connection goes
            // back to its idle size instead of keeping its largest message.
            ws.decoder.release_idle_memory();
        }
        match step {
            Step::Open => pos,
            Step::Paused => {
                // What was read but not decoded waits in `rbuf`; the socket
                // may have nothing more to wake us with.
                self.pending_input = true;
                pos
            }
            Step::Yield => {
                // As when paused, but nothing stops reading except this
                // turn's end: the reactor reads this connection next turn.
                self.pending_input = true;
                self.wants_read = true;
                pos
            }
            Step::Violation(code, reason) => {
                self.send_close(Some(code), &reason, AfterClose::Finish, ctx);
                buf.len()
            }
            Step::PeerClosed(code) => {
                // RFC 6455 §5.5.1: answer a close with a close, echoing the
                // code (nothing is sent if ours is already out).
                self.send_close(code, "", AfterClose::Done, ctx);
                buf.len()
            }
        }
    }
}

/// The queue as the slow-reader rule counts it: a head chunk larger than the
/// limit is one legal oversized message on its way and is not counted.
pub(super) fn counted_queue(out: &WriteQueue, max_queued_bytes: usize) -> usize {
    let head = out.head_unsent();
    if head > max_queued_bytes { out.queued() - head } else { out.queued() }
}

/// A hub delivery as bytes for one framing, shared between receivers.
#[derive(Clone, Debug)]
pub enum Framed {
    /// A whole frame or line.
    Whole(Rc<[u8]>),
    /// A receiver's cut of a shared rendering: `header`, then `whole` without
    /// the bytes in `omit`, then `trailer`; only the header is the receiver's own.
    Cut { header: [u8; 14], header_len: usize, whole: Rc<[u8]>, omit: Range<usize>, trailer: &'static [u8] },
}

impl Framed {
    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        match self {
            Framed::Whole(bytes) => bytes.len(),
            Framed::Cut { header_len, whole, omit, trailer, .. } => {
                header_len + whole.len() - omit.len() + trailer.len()
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues these bytes, sharing what is shared.
    pub(super) fn push_to(&self, out: &mut WriteQueue, pool: &mut BufPool) {
        match self {
            Framed::Whole(bytes) => out.push_shared(pool, bytes.clone()),
            Framed::Cut { header, header_len, whole, omit, trailer } => {
                let header = header.get(..*header_len).expect("an encoded header fits its buffer");
                out.push_bytes(pool, header);
                out.push_shared_range(pool, whole.clone(), 0..omit.start);
                out.push_shared_range(pool, whole.clone(), omit.end..whole.len());
                out.push_static(pool, trailer);
            }
        }
    }
}

/// A rendered payload framed for one carrier: a text frame on WebSocket, a
/// `\n`-terminated line on raw TCP. A receiver's `omit` cuts its own entry
/// out of a shared list (a presence list) without copying the list.
pub fn frame_rendered(rendered: &Rendered, omit: Option<u32>, websocket: bool) -> Framed {
    let trailer: &'static [u8] = if websocket { b"" } else { b"\n" };
    if rendered.entries.is_some() {
        let (before, after) = rendered.parts(omit);
        let mut header = [0u8; 14];
        let payload_len = rendered.payload_len(omit) as u64;
        let header_len = if websocket { encode_header(OpCode::Text, true, payload_len, None, &mut header) } else { 0 };
        return Framed::Cut {
            header,
            header_len,
            whole: rendered.body.clone(),
            omit: before.end..after.start,
            trailer,
        };
    }
    let mut bytes = Vec::with_capacity(rendered.body.len() + 10);
    if websocket {
        encode_frame(&mut bytes, OpCode::Text, &rendered.body);
        for attachment in rendered.attachments.iter().flat_map(|a| a.iter()) {
            encode_frame(&mut bytes, OpCode::Binary, attachment);
        }
    } else {
        bytes.extend_from_slice(&rendered.body);
        bytes.extend_from_slice(trailer);
    }
    Framed::Whole(Rc::from(bytes))
}
