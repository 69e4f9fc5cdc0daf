//! One peer: its transport, unprocessed input, outgoing queue, framing and
//! lifecycle. The only place that calls `read` and `write`. It knows bytes,
//! frames and lines, never chat: each complete message goes to the
//! connection's [`App`], which answers through an [`Output`].

mod app_io;
mod ctx;
mod deadlines;
mod delivery;
mod http;
mod lines;
mod stream;
mod tls;
mod transport;
mod websocket;

use std::io;
use std::time::Instant;

use log::{debug, warn};

use crate::logging::quote;

pub use transport::{NetStream, TlsAcceptor, Transport};
use websocket::WsFraming;

use crate::app::sniff::{Sniff, sniff};
use crate::app::{App, CloseRequest, WireFormat};
use crate::config::Limits;
use crate::ids::ConnId;
use crate::metrics::Protocol;
use crate::proto::line::LineDecoder;
use crate::proto::ws::CloseCode;
use crate::proto::ws::OpCode;
use crate::proto::ws::encoder::{encode_close, encode_frame};
use crate::write_queue::WriteQueue;
use http::HttpState;

use app_io::{Carrier, run_app};
pub use ctx::{Ctx, Shared};
pub use delivery::Renderings;
pub use websocket::{Framed, frame_rendered};

/// Reads per readiness event before yielding to other connections; the rest
/// is picked up on the next turn of the loop, so one fast sender cannot
/// starve the others.
const MAX_READS_PER_TURN: usize = 16;

/// Where a connection is in its life. Every transition is made by one method
/// of [`Conn`], and every close frame is sent by [`Conn::send_close`].
enum Lifecycle {
    /// The handshake phase, first part: waiting for enough bytes to tell
    /// the protocol. `first_byte` bounds a connection that sends nothing;
    /// `flush` starts at the first byte (a proper prefix of a method name
    /// alone for the flush delay is a legacy message).
    Sniffing { first_byte: Instant, flush: Option<Instant> },
    /// The handshake phase, second part: HTTP requests (keep-alive and
    /// pipelining included) until one upgrades or the connection closes.
    Http(HttpState),
    /// An app runs over this framing.
    Open(Framing),
    /// We sent our WebSocket close first: input is still decoded, for the
    /// peer's close, until `deadline`.
    Closing { ws: Box<WsFraming>, deadline: Instant },
    /// The peer half-closed after its last lines: the answers to them are
    /// queued by the end of this batch, and the connection finishes then.
    PeerFinished,
    /// Flush what is queued, then shut the write side; input is read and
    /// dropped until the peer closes or `deadline`, so closing never turns
    /// into a reset that would destroy the last bytes in flight.
    Draining {
        deadline: Instant,
        /// Nothing more is expected from the peer (its FIN or close frame
        /// came), so the socket can go as soon as our bytes are out.
        peer_done: bool,
        write_shut: bool,
    },
    /// Finished: the reactor drops the connection.
    Closed,
}

enum Framing {
    WebSocket(Box<WsFraming>),
    /// The legacy line protocol over raw TCP (boxed: a WebSocket, the
    /// common case, should not pay for the line decoder's size).
    Lines(Box<LineDecoder>),
    /// A protocol that delimits its own messages over raw TCP (STOMP): the
    /// bytes go to the app as they come.
    Stream,
}

/// How a WebSocket close frame is followed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AfterClose {
    /// Wait for the peer's close until this instant.
    AwaitPeer(Instant),
    /// Flush, shut the write side, drain.
    Finish,
    /// The closing handshake is complete: flush and close.
    Done,
}

pub struct Conn<S: Transport = NetStream> {
    transport: S,
    pub id: ConnId,
    /// The connection's earliest entry in the reactor's timer heap.
    pub scheduled: Option<Instant>,
    /// Input received but not yet consumed (a partial head or frame header).
    rbuf: Vec<u8>,
    out: WriteQueue,
    lifecycle: Lifecycle,
    app: Option<Box<dyn App>>,
    protocol: Protocol,
    // I/O scheduling, not lifecycle:
    /// Set while the outgoing queue is above the pause mark.
    read_paused: bool,
    /// Reading stopped at the per-turn cap with input possibly left.
    pub wants_read: bool,
    /// Input was read but left undecoded in `rbuf` when reading paused.
    pending_input: bool,
    /// The reactor has this connection on its flush list.
    flush_listed: bool,
}

impl<S: Transport> Conn<S> {
    pub fn new(transport: S, id: ConnId, ctx: &mut Ctx<'_>) -> Conn<S> {
        ctx.metrics.connection_opened(Protocol::Http);
        let first_byte = ctx.now + ctx.timeouts.first_byte;
        Conn {
            transport,
            id,
            scheduled: None,
            rbuf: Vec::new(),
            out: WriteQueue::default(),
            lifecycle: Lifecycle::Sniffing { first_byte, flush: None },
            app: None,
            protocol: Protocol::Http,
            read_paused: false,
            wants_read: false,
            pending_input: false,
            flush_listed: false,
        }
    }

    /// Whether the reactor should put this connection on its flush list
    /// now: it has output and is not on the list already (it is then taken
    /// to be on it, until [`Conn::flush_batch`]).
    pub fn enlist_for_flush(&mut self) -> bool {
        let enlist = !self.flush_listed && self.has_output();
        self.flush_listed |= enlist;
        enlist
    }

    pub fn transport_mut(&mut self) -> &mut S {
        &mut self.transport
    }

    /// The connection is finished and may be dropped.
    pub fn is_dead(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Closed)
    }

    /// The peer has not sent a byte yet.
    pub fn is_silent(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Sniffing { flush: None, .. }) && self.rbuf.is_empty()
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
            || self.transport.pending_write_bytes() > 0
            || matches!(self.lifecycle, Lifecycle::PeerFinished | Lifecycle::Draining { write_shut: false, .. })
    }

    pub fn queued_bytes(&self) -> usize {
        self.out.queued()
    }

    /// Input read but not yet consumed by a protocol core.
    pub fn buffered_input_bytes(&self) -> usize {
        self.rbuf.len()
    }

    /// The format hub deliveries to this connection are rendered in, while
    /// its app takes them.
    pub fn wire_format(&self) -> Option<WireFormat> {
        match self.lifecycle {
            Lifecycle::Open(_) | Lifecycle::PeerFinished => self.app.as_ref()?.wire_format(),
            _ => None,
        }
    }

    /// Whether deliveries are framed as WebSocket messages (else as lines).
    pub fn is_websocket(&self) -> bool {
        self.protocol == Protocol::WebSocket
    }

    /// The permessage-deflate agreement of an open WebSocket, if any.
    fn ws_deflate(&mut self) -> Option<app_io::WsDeflate<'_>> {
        match &mut self.lifecycle {
            Lifecycle::Open(Framing::WebSocket(ws)) => ws.deflate_out(),
            _ => None,
        }
    }

    /// How the app's messages are framed.
    fn carrier(&self) -> Carrier {
        match &self.lifecycle {
            _ if self.is_websocket() => Carrier::WebSocket,
            Lifecycle::Open(Framing::Stream) => Carrier::Stream,
            _ if self.protocol == Protocol::Stomp => Carrier::Stream,
            _ => Carrier::Lines,
        }
    }

    /// Called when the connection leaves the reactor.
    pub fn on_removed(&mut self, ctx: &mut Ctx<'_>) {
        self.close_app(ctx);
        self.end_http_request(ctx);
        self.out.discard_all(ctx.pool);
        ctx.metrics.connection_closed(self.protocol);
    }

    /// Drops the connection at once (an I/O error, the peer gone, a deadline).
    fn close_now(&mut self, ctx: &mut Ctx<'_>) {
        self.end_http_request(ctx);
        self.lifecycle = Lifecycle::Closed;
    }

    /// Tells the app serving an HTTP request in progress that it will not be answered.
    fn end_http_request(&mut self, ctx: &mut Ctx<'_>) {
        if let Lifecycle::Http(state) = &mut self.lifecycle {
            state.on_close(ctx);
        }
    }

    /// A held HTTP request's handler, or the open app, has something to
    /// answer now.
    pub fn wake(&mut self, ctx: &mut Ctx<'_>) {
        match self.lifecycle {
            Lifecycle::Http(_) => self.poll_held(ctx),
            Lifecycle::Open(_) => {
                let carrier = self.carrier();
                if let Some(request) = app_io::run_app_wake(&mut self.app, &mut self.out, carrier, ctx) {
                    self.close(request, ctx);
                }
            }
            _ => {}
        }
    }

    /// Ends the app at once (presence changes now, not when the socket is
    /// finally closed); it takes no more input or deliveries.
    fn close_app(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(mut app) = self.app.take() {
            app.on_close(&mut ctx.app());
        }
    }

    /// Queues bytes shared with other receivers of one hub delivery; cuts the
    /// connection off as a slow reader if its queue passes `--max-queued`.
    fn push_delivery(&mut self, framed: &Framed, ctx: &mut Ctx<'_>) {
        if !self.room_for_delivery(framed.len(), ctx) {
            return;
        }
        framed.push_to(&mut self.out, ctx.pool);
        ctx.metrics.messages_out_total += 1;
    }

    /// The slow-reader rule over everything this connection has not sent:
    /// its queue and its transport's backlog.
    fn is_backlogged(&self, adding: usize, limits: &Limits) -> bool {
        queue_is_backlogged(&self.out, self.transport.pending_write_bytes(), adding, limits)
    }

    /// Whether a delivery of `adding` bytes may be queued under the
    /// slow-reader rule; if not, the connection has been cut off.
    fn room_for_delivery(&mut self, adding: usize, ctx: &mut Ctx<'_>) -> bool {
        if !self.is_backlogged(adding, ctx.limits) {
            return true;
        }
        // Not slow yet if the socket takes the backlog now: a fast reader
        // can fall behind within one batch, before its end-of-batch flush.
        if !self.write_now(ctx) {
            self.close_now(ctx);
            return false;
        }
        if self.is_backlogged(adding, ctx.limits) {
            self.slow_reader(ctx);
            return false;
        }
        true
    }

    /// Ends the connection normally (`/quit`): a WebSocket closes with 1000,
    /// raw TCP finishes once flushed.
    pub fn quit(&mut self, ctx: &mut Ctx<'_>) {
        self.close(CloseRequest { code: CloseCode::NORMAL, reason: "" }, ctx);
    }

    /// The hub ends `member`: an app with several members (Socket.IO's
    /// namespaces) ends that one alone; otherwise the connection quits.
    pub fn close_member(&mut self, member: crate::chat::MemberId, ctx: &mut Ctx<'_>) {
        if matches!(self.lifecycle, Lifecycle::Open(_)) {
            let carrier = self.carrier();
            let (closed, request) = app_io::run_app_close_member(&mut self.app, &mut self.out, carrier, ctx, member);
            if let Some(request) = request {
                return self.close(request, ctx);
            }
            if closed {
                return;
            }
        }
        self.quit(ctx);
    }

    /// Reads until the socket would block, the per-turn cap, or a pause.
    ///
    /// Unless `until_would_block`, a read that leaves part of `scratch`
    /// unused ends the turn: the socket had no more, and any byte arriving
    /// later raises a new edge. That saves the failing `read` per message
    /// that the classic loop costs. The caller asks for the full loop when
    /// the peer's FIN may be pending with no edge of its own to come.
    pub fn on_readable(&mut self, scratch: &mut [u8], until_would_block: bool, ctx: &mut Ctx<'_>) {
        self.wants_read = false;
        if let Lifecycle::Open(Framing::WebSocket(ws)) = &mut self.lifecycle {
            ws.new_turn();
        }
        if self.pending_input && !self.read_paused {
            self.pending_input = false;
            self.feed(&mut [], ctx);
        }
        for _ in 0..MAX_READS_PER_TURN {
            // Undecoded input (a spent inflate budget) waits for the next turn.
            if self.is_dead() || self.read_paused || self.pending_input {
                return;
            }
            match self.transport.read(scratch) {
                Ok(0) => {
                    self.on_eof(ctx);
                    return;
                }
                Ok(n) => {
                    ctx.metrics.bytes_in_total += n as u64;
                    let input = scratch.get_mut(..n).expect("read returns at most the buffer's length");
                    self.feed(input, ctx);
                    if n < scratch.len() && !until_would_block {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("event=close conn={} by=error error={}", self.id, quote(&e.to_string()));
                    self.close_now(ctx);
                    return;
                }
            }
        }
        self.wants_read = true;
    }

    fn on_eof(&mut self, ctx: &mut Ctx<'_>) {
        debug!("event=eof conn={}", self.id);
        let has_output = self.has_output();
        match &mut self.lifecycle {
            // A request the peer finished sending still deserves its answer.
            Lifecycle::Http(_) if has_output => self.finish(ctx),
            Lifecycle::Open(Framing::Lines(lines)) => {
                // The end of input ends a message that had no newline, and a
                // scripted client that half-closes still reads the answers
                // to what it sent: they are queued after this event, so the
                // connection finishes at its next flush.
                if let Some(at) = lines.deadline() {
                    self.decode_lines(None, at, ctx);
                }
                if matches!(self.lifecycle, Lifecycle::Open(_)) {
                    self.lifecycle = Lifecycle::PeerFinished;
                }
            }
            // As with lines: the answers to its last frames still go out.
            Lifecycle::Open(Framing::Stream) => self.lifecycle = Lifecycle::PeerFinished,
            // The peer has our last bytes or never will; nothing else to wait for.
            _ => self.close_now(ctx),
        }
    }

    /// Processes `input`, keeping whatever the cores could not consume yet,
    /// and pauses reading while the answers pile up unsent, so a peer that
    /// writes faster than it reads is slowed by TCP.
    fn feed(&mut self, input: &mut [u8], ctx: &mut Ctx<'_>) {
        self.consume_input(input, ctx);
        if self.discards_input() {
            return;
        }
        // Requests pipelined behind a held one wait in the read buffer, up
        // to one head's worth: the rest waits in the socket.
        let held = matches!(&self.lifecycle, Lifecycle::Http(state) if state.is_held());
        if self.out.queued() >= ctx.limits.read_pause_bytes() || (held && self.rbuf.len() >= ctx.http.max_head_bytes) {
            self.read_paused = true;
        }
    }

    fn consume_input(&mut self, input: &mut [u8], ctx: &mut Ctx<'_>) {
        if self.rbuf.is_empty() {
            let consumed = self.process(input, ctx);
            if let Some(rest) = input.get(consumed..)
                && !rest.is_empty()
                && !self.discards_input()
            {
                self.rbuf.extend_from_slice(rest);
            }
        } else {
            self.rbuf.extend_from_slice(input);
            let mut buffered = std::mem::take(&mut self.rbuf);
            let consumed = self.process(&mut buffered, ctx).min(buffered.len());
            if consumed < buffered.len() && !self.discards_input() {
                buffered.drain(..consumed);
                self.rbuf = buffered;
            }
            // Otherwise `buffered` is dropped: an idle connection holds no input buffer.
        }
    }

    fn discards_input(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Closed | Lifecycle::Draining { .. } | Lifecycle::PeerFinished)
    }

    /// Runs the framing over `buf`; returns the bytes consumed.
    fn process(&mut self, buf: &mut [u8], ctx: &mut Ctx<'_>) -> usize {
        let mut pos = 0;
        loop {
            let Some(rest) = buf.get_mut(pos..) else {
                return pos;
            };
            match &mut self.lifecycle {
                Lifecycle::Sniffing { flush, .. } => match sniff(rest) {
                    Sniff::Http => {
                        debug!("event=protocol conn={} protocol=http", self.id);
                        self.lifecycle = Lifecycle::Http(HttpState::new(ctx));
                    }
                    Sniff::Legacy => {
                        debug!("event=protocol conn={} protocol=legacy", self.id);
                        self.open_lines(ctx);
                    }
                    Sniff::Stomp => {
                        debug!("event=protocol conn={} protocol=stomp", self.id);
                        self.open_stream(ctx);
                    }
                    Sniff::NeedMore => {
                        if flush.is_none() && !rest.is_empty() {
                            *flush = Some(ctx.now + ctx.timeouts.legacy_flush);
                        }
                        return pos;
                    }
                },
                Lifecycle::Http(_) => {
                    let (used, go_on) = self.process_http(rest, ctx);
                    pos += used;
                    if !go_on {
                        return pos;
                    }
                }
                Lifecycle::Open(Framing::WebSocket(_)) | Lifecycle::Closing { .. } => {
                    return pos + self.process_websocket(rest, ctx);
                }
                Lifecycle::Open(Framing::Lines(_)) => {
                    self.decode_lines(Some(rest), ctx.now, ctx);
                    return buf.len();
                }
                Lifecycle::Open(Framing::Stream) => return pos + self.process_stream(rest, ctx),
                Lifecycle::PeerFinished | Lifecycle::Draining { .. } | Lifecycle::Closed => return buf.len(),
            }
        }
    }

    fn switch_protocol(&mut self, to: Protocol, ctx: &mut Ctx<'_>) {
        ctx.metrics.connection_switched(self.protocol, to);
        self.protocol = to;
    }

    /// Ends the connection as an app asked: a WebSocket sends its close frame
    /// and waits for the peer's; anything else finishes once flushed.
    fn close(&mut self, request: CloseRequest, ctx: &mut Ctx<'_>) {
        let deadline = ctx.now + ctx.timeouts.close;
        match self.lifecycle {
            Lifecycle::Open(Framing::WebSocket(_)) => {
                self.send_close(Some(request.code), request.reason, AfterClose::AwaitPeer(deadline), ctx)
            }
            Lifecycle::Closing { .. } | Lifecycle::Draining { .. } | Lifecycle::Closed => {}
            _ => self.finish(ctx),
        }
    }

    /// The one place a WebSocket close frame is sent. RFC 6455 §5.5.1: one
    /// close frame per direction, so once ours is out (we are `Closing` or
    /// past it) this only moves the lifecycle on.
    /// `code` `None` is a close frame without a body (the answer to one).
    fn send_close(&mut self, code: Option<CloseCode>, reason: &str, then: AfterClose, ctx: &mut Ctx<'_>) {
        if matches!(self.lifecycle, Lifecycle::Open(Framing::WebSocket(_))) {
            let by = if then == AfterClose::Done { "peer" } else { "server" };
            debug!("event=close conn={} by={by} code={} reason={}", self.id, code.map_or(1005, |c| c.0), quote(reason));
            match code {
                Some(code) => self.out.append_with(ctx.pool, |v| encode_close(v, code, reason)),
                None => self.out.append_with(ctx.pool, |v| encode_frame(v, OpCode::Close, b"")),
            }
        }
        match then {
            AfterClose::AwaitPeer(deadline) => {
                self.close_app(ctx);
                let lifecycle = std::mem::replace(&mut self.lifecycle, Lifecycle::Closed);
                self.lifecycle = match lifecycle {
                    Lifecycle::Open(Framing::WebSocket(ws)) | Lifecycle::Closing { ws, .. } => {
                        Lifecycle::Closing { ws, deadline }
                    }
                    other => other,
                };
            }
            AfterClose::Finish => self.finish(ctx),
            AfterClose::Done => self.finish_after_peer(ctx),
        }
    }

    /// The outgoing queue passed `--max-queued`: drop what the peer has not
    /// started to receive, say 1013 and let go.
    fn slow_reader(&mut self, ctx: &mut Ctx<'_>) {
        ctx.metrics.slow_consumer_disconnects_total += 1;
        warn!(
            "event=slow_reader conn={} queued={} limit=max-queued max_queued={} code=1013",
            self.id,
            self.out.queued(),
            ctx.limits.max_queued_bytes
        );
        self.out.discard_unstarted(ctx.pool);
        self.send_close(Some(CloseCode::TRY_AGAIN_LATER), "slow reader", AfterClose::Finish, ctx);
    }

    /// Flushes what is queued, then shuts the write side and drains input
    /// until the peer closes or the close deadline passes.
    fn finish(&mut self, ctx: &mut Ctx<'_>) {
        if matches!(self.lifecycle, Lifecycle::Draining { .. } | Lifecycle::Closed) {
            return;
        }
        self.close_app(ctx);
        self.end_http_request(ctx);
        self.read_paused = false;
        self.rbuf = Vec::new();
        self.lifecycle =
            Lifecycle::Draining { deadline: ctx.now + ctx.timeouts.close, peer_done: false, write_shut: false };
    }

    /// Finishes a connection whose peer has nothing more to send (its close
    /// frame or FIN came): the socket closes as soon as our bytes are out.
    fn finish_after_peer(&mut self, ctx: &mut Ctx<'_>) {
        self.finish(ctx);
        if let Lifecycle::Draining { peer_done, .. } = &mut self.lifecycle {
            *peer_done = true;
        }
    }

    /// Starts a graceful shutdown of this connection: close 1001 on
    /// WebSocket, finish everything else once its answer is out.
    pub fn begin_shutdown(&mut self, ctx: &mut Ctx<'_>) {
        let deadline = ctx.now + ctx.timeouts.shutdown;
        match self.lifecycle {
            Lifecycle::Open(Framing::WebSocket(_)) | Lifecycle::Closing { .. } => self.send_close(
                Some(CloseCode::GOING_AWAY),
                "server shutting down",
                AfterClose::AwaitPeer(deadline),
                ctx,
            ),
            _ => self.finish(ctx),
        }
    }

    /// The end-of-batch flush: by now the hub's answers to this batch's input
    /// are queued, so a connection whose peer half-closed can finish.
    pub fn flush_batch(&mut self, ctx: &mut Ctx<'_>) {
        self.flush_listed = false;
        if matches!(self.lifecycle, Lifecycle::PeerFinished) {
            // The peer sent its FIN already: no input left to drain.
            self.finish_after_peer(ctx);
        }
        self.flush(ctx);
    }

    /// Writes what is queued; after the last byte of a finishing connection,
    /// shuts the write side.
    pub fn flush(&mut self, ctx: &mut Ctx<'_>) {
        if matches!(self.lifecycle, Lifecycle::Closed | Lifecycle::Draining { write_shut: true, .. }) {
            return;
        }
        if !self.write_now(ctx) {
            self.close_now(ctx);
            return;
        }
        if !self.out.is_empty() || self.transport.pending_write_bytes() > 0 {
            return;
        }
        self.out.release_idle_memory(ctx.pool);
        if let Lifecycle::Draining { peer_done, write_shut, .. } = &mut self.lifecycle {
            let peer_done = *peer_done;
            match self.transport.shutdown_write() {
                Ok(()) => *write_shut = true,
                // A TLS close_notify waits for the socket: the writable
                // event brings us back here.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    debug!("event=close conn={} by=error error={}", self.id, quote(&format!("shutdown: {e}")));
                    self.lifecycle = Lifecycle::Closed;
                }
            }
            // Closing with unread input would reset the connection and could
            // destroy our last bytes in flight; with nothing more to expect
            // from the peer, close right away.
            if peer_done {
                self.lifecycle = Lifecycle::Closed;
            }
        } else if self.read_paused {
            self.read_paused = false;
            self.wants_read = true;
        }
    }

    /// Writes what the transport takes now. False on a fatal write error.
    fn write_now(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let written = self.out.write_to(&mut self.transport, ctx.pool);
        // The transport's own backlog (TLS records) goes out even when the
        // queue is empty and `write_to` had nothing to write.
        let flushed = match self.transport.pending_write_bytes() {
            0 => Ok(()),
            _ => self.transport.flush(),
        };
        match written.and_then(|written| flushed.map(|()| written)) {
            Ok(written) => {
                ctx.metrics.bytes_out_total += written as u64;
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(e) => {
                debug!("event=close conn={} by=error error={}", self.id, quote(&format!("write: {e}")));
                false
            }
        }
    }
}

/// The slow-reader rule (PROTOCOL.md §6), asked before queueing `adding`
/// bytes: the queue may not pass `--max-queued`, not counting the message
/// being added (one message bigger than the limit may enter an empty queue)
/// nor a head chunk bigger than the limit (such a legal large message is on
/// its way; a reader that keeps up is not slow for having been sent one).
/// `transport_backlog` (TLS records the socket has not taken yet) counts with
/// the queue; [`Conn::is_backlogged`] asks it for a connection.
fn queue_is_backlogged(out: &WriteQueue, transport_backlog: usize, adding: usize, limits: &Limits) -> bool {
    let counted = websocket::counted_queue(out, limits.max_queued_bytes) + transport_backlog;
    counted > 0 && counted + adding > limits.max_queued_bytes
}
