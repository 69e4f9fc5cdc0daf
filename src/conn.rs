//! One peer: its socket, unprocessed input, outgoing queue and protocol
//! state. The only place that calls `read` and `write`; every decision about
//! bytes is made by the sans-IO cores in [`crate::proto`].

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::ops::Range;
use std::time::Instant;

use log::{debug, trace, warn};
use mio::net::TcpStream;

use std::rc::Rc;

use crate::app::render::Rendered;
use crate::app::{json_chat, line_chat};
use crate::chat::ChatError;
use crate::chat::{Command, Dialect, Endpoint, Hub, MemberId, Outbox, Request};
use crate::config::{Limits, Timeouts};
use crate::metrics::{ChatGauges, Metrics, Protocol, QueueGauges};
use crate::proto::http::head::HeadScanner;
use crate::proto::http::response::{error_response, write_response};
use crate::proto::http::{self, HttpConfig, Outcome, WsEndpoint};
use crate::proto::line::{LineDecoder, LineEvent};
use crate::proto::sniff::{Sniff, sniff};
use crate::proto::ws::encoder::{encode_close, encode_frame, encode_header};
use crate::proto::ws::{CloseCode, Decoder, Message, OpCode};
use crate::timers::ConnId;
use crate::write_queue::{BufPool, WriteQueue};

/// Reads per readiness event before yielding to other connections; the rest
/// is picked up on the next turn of the loop, so one fast sender cannot
/// starve the others.
const MAX_READS_PER_TURN: usize = 16;

/// What a connection borrows from the reactor while it handles an event.
pub struct Ctx<'a> {
    pub now: Instant,
    pub limits: &'a Limits,
    pub timeouts: &'a Timeouts,
    pub http: &'a HttpConfig,
    pub metrics: &'a mut Metrics,
    pub pool: &'a mut BufPool,
    pub hub: &'a mut Hub,
    /// Where the hub's deliveries collect; the reactor routes them after each event.
    pub outbox: &'a mut Outbox,
}

enum State {
    /// Waiting for enough bytes to tell HTTP from the legacy protocol. The
    /// flush-delay clock starts at the first byte: a silent connection is
    /// neither (a browser's preconnect, or a legacy user still typing a name).
    Sniffing {
        deadline: Option<Instant>,
    },
    /// Waiting for (the rest of) a request head.
    Http {
        scanner: HeadScanner,
        deadline: Instant,
    },
    WebSocket(Box<WebSocket>),
    /// The legacy line protocol over raw TCP.
    Legacy(LineDecoder),
    /// Output is flushed, then the write side is shut; input is read and
    /// dropped until the peer closes, so closing never turns into a reset
    /// that would destroy the last bytes in flight.
    Draining {
        deadline: Instant,
    },
}

/// What a WebSocket serves after the upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WsApp {
    Echo,
    /// `/ws` (JSON events) or `/legacy` (legacy lines in text frames).
    Chat(ClientKind, MemberId),
}

/// The protocol a chat connection speaks, which decides how it is rendered to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// The legacy line protocol over raw TCP.
    LegacyTcp,
    /// The legacy line protocol over WebSocket at `/legacy` (one text frame per message).
    LegacyWs,
    /// The JSON event protocol at `/ws` or `/ws/NAMESPACE`.
    Json,
}

impl ClientKind {
    /// Whether this connection speaks the legacy line protocol.
    pub fn is_legacy(self) -> bool {
        matches!(self, ClientKind::LegacyTcp | ClientKind::LegacyWs)
    }

    /// What the hub may send this connection.
    pub fn dialect(self) -> Dialect {
        if self.is_legacy() { Dialect::Lines } else { Dialect::Events }
    }

    /// The rendering of `event` this connection's protocol sends, if any.
    pub fn render(self, event: &crate::chat::Event) -> Option<Rendered> {
        if self.is_legacy() { line_chat::render::render(event) } else { json_chat::render::render(event) }
    }
}

struct WebSocket {
    decoder: Decoder,
    app: WsApp,
    /// When the last bytes arrived, for the keepalive ping.
    last_rx: Instant,
    /// A keepalive ping is outstanding since this instant.
    ping_sent: Option<Instant>,
    /// We sent a close frame and wait for the peer's until this instant.
    close_deadline: Option<Instant>,
}

/// The result of feeding bytes to a WebSocket.
enum WsStep {
    Open,
    /// Finish: flush what is queued, shut the write side, drain.
    Finish,
    /// The application refuses the peer's input: close with this code and
    /// wait for the peer's close.
    Refuse(CloseCode, &'static str),
    /// The closing handshake is complete: flush and close.
    Closed,
}

/// The byte stream under a connection: a TCP socket in the reactor, memory
/// in [`crate::harness`] (fuzzing and tests drive a whole connection that way).
pub trait Transport: Read + Write {
    /// Half-closes: no more bytes will be written.
    fn shutdown_write(&mut self) -> io::Result<()>;
}

impl Transport for TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

pub struct Conn<S: Transport = TcpStream> {
    stream: S,
    pub id: ConnId,
    /// The connection's earliest entry in the reactor's timer heap.
    pub scheduled: Option<Instant>,
    /// Input received but not yet consumed (a partial head or frame header).
    rbuf: Vec<u8>,
    out: WriteQueue,
    state: State,
    protocol: Protocol,
    /// The chat protocol this connection speaks and its member, while the hub knows it.
    chat: Option<(ClientKind, MemberId)>,
    /// Set while the outgoing queue is above the pause mark.
    read_paused: bool,
    /// Reading stopped at the per-turn cap with input possibly left.
    pub wants_read: bool,
    /// Input was read but left undecoded in `rbuf` when reading paused.
    pending_input: bool,
    /// The reactor has this connection on its flush list.
    pub flush_listed: bool,
    shutdown_after_flush: bool,
    /// Nothing more is expected from the peer (the closing handshake is
    /// complete), so the socket can go as soon as our bytes are out.
    close_after_flush: bool,
    /// The peer half-closed: finish once the answers to its last input are
    /// queued (at the next flush, after the hub's deliveries).
    finish_at_flush: bool,
    write_shut: bool,
    dead: bool,
}

impl<S: Transport> Conn<S> {
    pub fn new(stream: S, id: ConnId, ctx: &mut Ctx<'_>) -> Conn<S> {
        ctx.metrics.connection_opened(Protocol::Http);
        Conn {
            stream,
            id,
            scheduled: None,
            rbuf: Vec::new(),
            out: WriteQueue::default(),
            state: State::Sniffing { deadline: None },
            protocol: Protocol::Http,
            chat: None,
            read_paused: false,
            wants_read: false,
            pending_input: false,
            flush_listed: false,
            shutdown_after_flush: false,
            close_after_flush: false,
            finish_at_flush: false,
            write_shut: false,
            dead: false,
        }
    }

    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The connection is finished and may be dropped.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || (self.shutdown_after_flush && !self.write_shut) || self.finish_at_flush
    }

    pub fn queued_bytes(&self) -> usize {
        self.out.queued()
    }

    /// Input read but not yet consumed by a protocol core.
    pub fn buffered_input_bytes(&self) -> usize {
        self.rbuf.len()
    }

    /// Called when the connection leaves the reactor.
    pub fn on_removed(&mut self, ctx: &mut Ctx<'_>) {
        self.leave_chat(ctx);
        self.out.discard_all(ctx.pool);
        ctx.metrics.connection_closed(self.protocol);
    }

    /// The chat protocol this connection speaks, while it is in the hub.
    pub fn chat_kind(&self) -> Option<ClientKind> {
        self.chat.map(|(kind, _)| kind)
    }

    /// The hub member this connection is, while it is in the hub.
    pub fn chat_member(&self) -> Option<MemberId> {
        self.chat.map(|(_, member)| member)
    }

    fn join_chat(&mut self, kind: ClientKind, namespace: &str, ctx: &mut Ctx<'_>) -> MemberId {
        let member = ctx.hub.attach(Endpoint::Conn(self.id), kind.dialect(), namespace);
        self.chat = Some((kind, member));
        member
    }

    /// Removes the user from the hub at once (presence changes now, not when
    /// the socket is finally closed).
    fn leave_chat(&mut self, ctx: &mut Ctx<'_>) {
        if let Some((_, member)) = self.chat.take() {
            ctx.hub.detach(member, ctx.outbox);
        }
    }

    /// Queues bytes shared with other receivers of one chat message; cuts the
    /// connection off as a slow reader if its queue passes `--max-queued`.
    pub fn push_delivery(&mut self, framed: &Framed, ctx: &mut Ctx<'_>) {
        if self.chat.is_none() {
            return;
        }
        // Checked before queueing, so a queue never holds more than the
        // limit (one message bigger than the limit may enter an empty one).
        if would_pass_limit(&self.out, framed.len(), ctx.limits) {
            // Not slow yet if the socket takes the backlog now: a fast reader
            // can fall behind within one batch, before its end-of-batch flush.
            if !write_now(&mut self.stream, &mut self.out, self.id, ctx) {
                self.dead = true;
                return;
            }
            if would_pass_limit(&self.out, framed.len(), ctx.limits) {
                self.slow_reader(ctx);
                return;
            }
        }
        match framed {
            Framed::Whole(bytes) => self.out.push_shared(ctx.pool, bytes.clone()),
            Framed::Cut { header, header_len, whole, omit, trailer } => {
                let header = header.get(..*header_len).unwrap_or_default();
                self.out.push_bytes(ctx.pool, header);
                self.out.push_shared_range(ctx.pool, whole.clone(), 0..omit.start);
                self.out.push_shared_range(ctx.pool, whole.clone(), omit.end..whole.len());
                self.out.push_static(ctx.pool, trailer);
            }
        }
        ctx.metrics.messages_out_total += 1;
    }

    /// `/quit`: legacy TCP closes once flushed; WebSockets close with 1000.
    pub fn quit(&mut self, ctx: &mut Ctx<'_>) {
        match self.chat_kind() {
            Some(ClientKind::LegacyTcp) => self.finish(ctx),
            Some(_) => self.close_websocket(CloseCode::NORMAL, "", ctx),
            None => {}
        }
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
        if self.pending_input && !self.read_paused {
            self.pending_input = false;
            self.feed(&mut [], ctx);
        }
        for _ in 0..MAX_READS_PER_TURN {
            if self.dead || self.read_paused {
                return;
            }
            match self.stream.read(scratch) {
                Ok(0) => {
                    self.on_eof(ctx);
                    return;
                }
                Ok(n) => {
                    ctx.metrics.bytes_in_total += n as u64;
                    let Some(input) = scratch.get_mut(..n) else {
                        return;
                    };
                    self.feed(input, ctx);
                    if n < scratch.len() && !until_would_block {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("conn {:?}: read error: {e}", self.id);
                    self.dead = true;
                    return;
                }
            }
        }
        self.wants_read = true;
    }

    fn on_eof(&mut self, ctx: &mut Ctx<'_>) {
        trace!("conn {:?}: peer closed its side", self.id);
        let has_output = self.has_output();
        match &mut self.state {
            // The peer has our last bytes or never will; nothing else to wait for.
            State::Draining { .. } => self.dead = true,
            // A request the peer finished sending still deserves its answer.
            State::Http { .. } if has_output => self.finish(ctx),
            State::Legacy(lines) => {
                // The end of input ends a message that had no newline, and a
                // scripted client that half-closes still reads the answers
                // to what it sent: they are queued after this event, so the
                // connection finishes at its next flush.
                if let Some(at) = lines.deadline() {
                    let member = self.chat.map(|(_, member)| member);
                    lines.on_deadline(at, |event| handle_line(member, event, ctx));
                }
                self.finish_at_flush = true;
            }
            _ => self.dead = true,
        }
    }

    /// Processes `input`, keeping whatever the cores could not consume yet,
    /// and pauses reading while the answers pile up unsent, so a peer that
    /// writes faster than it reads is slowed by TCP.
    fn feed(&mut self, input: &mut [u8], ctx: &mut Ctx<'_>) {
        self.consume_input(input, ctx);
        if self.out.queued() >= ctx.limits.read_pause_bytes() && !self.discards_input() {
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
        self.dead || matches!(self.state, State::Draining { .. })
    }

    /// Runs the protocol state machine over `buf`; returns the bytes consumed.
    fn process(&mut self, buf: &mut [u8], ctx: &mut Ctx<'_>) -> usize {
        let mut pos = 0;
        loop {
            let Some(rest) = buf.get_mut(pos..) else {
                return pos;
            };
            match &mut self.state {
                State::Sniffing { deadline } => match sniff(rest) {
                    Sniff::Http => {
                        self.state =
                            State::Http { scanner: HeadScanner::default(), deadline: ctx.now + ctx.timeouts.handshake }
                    }
                    Sniff::Legacy => self.become_legacy(ctx),
                    Sniff::NeedMore => {
                        if deadline.is_none() && !rest.is_empty() {
                            *deadline = Some(ctx.now + ctx.timeouts.legacy_flush);
                        }
                        return pos;
                    }
                },
                State::Http { scanner, .. } => match scanner.scan(rest, ctx.http.max_head_bytes) {
                    Ok(Some(head_len)) => {
                        scanner.reset();
                        let Some(head) = rest.get(..head_len) else {
                            return pos;
                        };
                        let outcome = http::handle_head(head, ctx.http);
                        pos += head_len;
                        self.on_http_outcome(outcome, ctx);
                        if self.out.queued() >= ctx.limits.read_pause_bytes() {
                            // A peer pipelining requests without reading the
                            // answers: leave the rest until it catches up.
                            self.pending_input = true;
                            return pos;
                        }
                    }
                    Ok(None) => return pos,
                    Err(e) => {
                        debug!("conn {:?}: bad request head: {e}", self.id);
                        self.out.push_bytes(ctx.pool, &error_response(e, false, true));
                        self.finish(ctx);
                        return buf.len();
                    }
                },
                State::WebSocket(_) => return pos + self.process_websocket(rest, ctx),
                State::Legacy(lines) => {
                    let (member, now) = (self.chat.map(|(_, member)| member), ctx.now);
                    lines.decode(rest, now, |event| handle_line(member, event, ctx));
                    if lines.is_idle() {
                        lines.release_idle_memory();
                    }
                    return buf.len();
                }
                State::Draining { .. } => return buf.len(),
            }
        }
    }

    fn on_http_outcome(&mut self, outcome: Outcome, ctx: &mut Ctx<'_>) {
        match outcome {
            Outcome::Respond { response, close, handshake_failure } => {
                if handshake_failure {
                    ctx.metrics.handshake_failures_total += 1;
                }
                self.out.push_bytes(ctx.pool, &response);
                self.after_http_response(close, ctx);
            }
            Outcome::Metrics { head_only, close } => {
                let chat = ChatGauges { users: ctx.hub.users() as u64, rooms: ctx.hub.rooms() as u64 };
                let queues = QueueGauges {
                    queued_bytes: ctx.pool.queued_total() as u64,
                    high_water_bytes: ctx.pool.high_water() as u64,
                };
                let body = ctx.metrics.render(chat, queues);
                let response = write_response(
                    200,
                    &[],
                    "text/plain; version=0.0.4; charset=utf-8",
                    body.as_bytes(),
                    head_only,
                    close,
                );
                self.out.push_bytes(ctx.pool, &response);
                self.after_http_response(close, ctx);
            }
            Outcome::Upgrade(upgrade) => {
                self.out.push_bytes(ctx.pool, &upgrade.response);
                ctx.metrics.connection_switched(self.protocol, Protocol::WebSocket);
                self.protocol = Protocol::WebSocket;
                let app = match &upgrade.endpoint {
                    WsEndpoint::Echo => WsApp::Echo,
                    WsEndpoint::Events { namespace } => {
                        let member = self.join_chat(ClientKind::Json, namespace, ctx);
                        if let Some(name) = &upgrade.name {
                            // `?name=` is a `hello` without an id.
                            let hello = Request::new(Command::Hello { name: name.as_str().into() });
                            ctx.hub.handle(member, hello, ctx.outbox);
                        }
                        WsApp::Chat(ClientKind::Json, member)
                    }
                    WsEndpoint::Legacy => {
                        let member = self.join_chat(ClientKind::LegacyWs, "/", ctx);
                        WsApp::Chat(ClientKind::LegacyWs, member)
                    }
                };
                debug!("conn {:?}: upgraded to {app:?}", self.id);
                self.state = State::WebSocket(Box::new(WebSocket::new(app, ctx)));
            }
        }
    }

    fn after_http_response(&mut self, close: bool, ctx: &mut Ctx<'_>) {
        if close {
            self.finish(ctx);
        } else if let State::Http { deadline, .. } = &mut self.state {
            // Keep-alive: the next request gets a fresh handshake allowance.
            *deadline = ctx.now + ctx.timeouts.handshake;
        }
    }

    fn become_legacy(&mut self, ctx: &mut Ctx<'_>) {
        ctx.metrics.connection_switched(self.protocol, Protocol::Legacy);
        self.protocol = Protocol::Legacy;
        self.state = State::Legacy(LineDecoder::new(ctx.limits.max_line_bytes, ctx.timeouts.legacy_flush));
        self.join_chat(ClientKind::LegacyTcp, "/", ctx);
    }

    /// Decodes frames from `buf` and acts on them; returns the bytes consumed.
    fn process_websocket(&mut self, buf: &mut [u8], ctx: &mut Ctx<'_>) -> usize {
        let Conn { state, out, id, stream, .. } = self;
        let State::WebSocket(ws) = state else {
            return 0;
        };
        ws.last_rx = ctx.now;
        ws.ping_sent = None;
        let mut pos = 0;
        let mut write_failed = false;
        let mut stopped_early = false;
        let step = loop {
            let Some(rest) = buf.get_mut(pos..) else {
                break WsStep::Open;
            };
            let queued_before = out.queued();
            match ws.decoder.decode(rest) {
                Ok((0, None)) => break WsStep::Open,
                Ok((consumed, message)) => {
                    pos += consumed;
                    let Some(message) = message else { continue };
                    let step = handle_ws_message(ws.app, ws.close_deadline.is_some(), message, out, ctx);
                    if !matches!(step, WsStep::Open) {
                        break step;
                    }
                    if out.queued() >= ctx.limits.read_pause_bytes() {
                        // Output piles up within one batch: write now rather
                        // than at the end of it, and stop decoding while the
                        // peer does not take it.
                        write_failed |= !write_now(stream, out, *id, ctx);
                        if is_slow_reader(out, queued_before, ctx.limits) {
                            self.slow_reader(ctx);
                            return buf.len();
                        }
                        if out.queued() >= ctx.limits.read_pause_bytes() {
                            stopped_early = true;
                            break WsStep::Open;
                        }
                    }
                }
                Err(error) => {
                    debug!("conn {id:?}: websocket protocol error: {error}");
                    // RFC 6455 §5.5.1: one close frame per direction; if ours
                    // is already out, the violation just ends the wait for theirs.
                    if ws.close_deadline.is_none() {
                        let reason = error.to_string();
                        out.append_with(ctx.pool, |v| encode_close(v, error.close_code(), &reason));
                    }
                    break WsStep::Finish;
                }
            }
        };
        if write_failed {
            self.dead = true;
            return buf.len();
        }
        match step {
            WsStep::Open => {
                // What was read but not decoded waits in `rbuf`; the socket
                // may have nothing more to wake us with.
                self.pending_input = stopped_early;
                pos
            }
            WsStep::Refuse(code, reason) => {
                self.close_websocket(code, reason, ctx);
                buf.len()
            }
            WsStep::Finish | WsStep::Closed => {
                self.finish(ctx);
                self.close_after_flush = matches!(step, WsStep::Closed);
                buf.len()
            }
        }
    }

    /// Sends a close frame and waits for the peer's answer until the close deadline.
    fn close_websocket(&mut self, code: CloseCode, reason: &str, ctx: &mut Ctx<'_>) {
        let State::WebSocket(ws) = &mut self.state else {
            self.finish(ctx);
            return;
        };
        if ws.close_deadline.is_some() {
            return;
        }
        self.out.append_with(ctx.pool, |v| encode_close(v, code, reason));
        ws.close_deadline = Some(ctx.now + ctx.timeouts.close);
        self.leave_chat(ctx);
    }

    /// The outgoing queue passed `--max-queued`: drop what the peer has not
    /// started to receive, say 1013 and let go.
    fn slow_reader(&mut self, ctx: &mut Ctx<'_>) {
        ctx.metrics.slow_consumer_disconnects_total += 1;
        warn!("conn {:?}: slow reader, {} bytes queued; closing", self.id, self.out.queued());
        self.out.discard_unstarted(ctx.pool);
        // One close frame per direction: if ours went out before, the socket
        // closing is all that is left to say.
        if matches!(&self.state, State::WebSocket(ws) if ws.close_deadline.is_none()) {
            let code = CloseCode::TRY_AGAIN_LATER;
            self.out.append_with(ctx.pool, |v| encode_close(v, code, "slow reader"));
        }
        self.finish(ctx);
    }

    /// Flushes what is queued, then shuts the write side and drains input
    /// until the peer closes or the close deadline passes.
    fn finish(&mut self, ctx: &mut Ctx<'_>) {
        if matches!(self.state, State::Draining { .. }) {
            return;
        }
        self.leave_chat(ctx);
        self.shutdown_after_flush = true;
        self.read_paused = false;
        self.rbuf = Vec::new();
        self.state = State::Draining { deadline: ctx.now + ctx.timeouts.close };
    }

    /// Starts a graceful shutdown of this connection: close 1001 on
    /// WebSocket, finish everything else once its answer is out.
    pub fn begin_shutdown(&mut self, ctx: &mut Ctx<'_>) {
        match &self.state {
            State::WebSocket(_) => {
                self.close_websocket(CloseCode::GOING_AWAY, "server shutting down", ctx);
                if let State::WebSocket(ws) = &mut self.state {
                    ws.close_deadline = Some(ctx.now + ctx.timeouts.shutdown);
                }
            }
            State::Draining { .. } => {}
            _ => self.finish(ctx),
        }
    }

    /// The end-of-batch flush: by now the hub's answers to this batch's input
    /// are queued, so a connection whose peer half-closed can finish.
    pub fn flush_batch(&mut self, ctx: &mut Ctx<'_>) {
        if self.finish_at_flush && !self.dead {
            self.finish_at_flush = false;
            self.finish(ctx);
            // The peer sent its FIN already: no input left to drain.
            self.close_after_flush = true;
        }
        self.flush(ctx);
    }

    /// Writes what is queued; after the last byte of a finishing connection,
    /// shuts the write side.
    pub fn flush(&mut self, ctx: &mut Ctx<'_>) {
        if self.dead || self.write_shut {
            return;
        }
        if !write_now(&mut self.stream, &mut self.out, self.id, ctx) {
            self.dead = true;
            return;
        }
        if !self.out.is_empty() {
            return;
        }
        self.out.release_idle_memory(ctx.pool);
        if self.shutdown_after_flush {
            self.write_shut = true;
            if let Err(e) = self.stream.shutdown_write() {
                debug!("conn {:?}: shutdown: {e}", self.id);
                self.dead = true;
            }
            // Closing with unread input would reset the connection and could
            // destroy our last bytes in flight; with the handshake complete
            // there is no more input to expect, so close right away.
            if self.close_after_flush {
                self.dead = true;
            }
        } else if self.read_paused {
            self.read_paused = false;
            self.wants_read = true;
        }
    }

    /// The earliest instant at which [`Conn::on_deadline`] has work to do.
    pub fn next_deadline(&self, timeouts: &Timeouts) -> Option<Instant> {
        match &self.state {
            State::Sniffing { deadline } => *deadline,
            State::Http { deadline, .. } | State::Draining { deadline } => Some(*deadline),
            State::WebSocket(ws) => Some(match (ws.close_deadline, ws.ping_sent) {
                (Some(close), _) => close,
                (None, Some(sent)) => sent + timeouts.ping_timeout,
                (None, None) => ws.last_rx + timeouts.ping_interval,
            }),
            State::Legacy(lines) => lines.deadline(),
        }
    }

    /// Acts on whatever deadline has passed by `ctx.now`.
    pub fn on_deadline(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        match &mut self.state {
            State::Sniffing { deadline: Some(deadline) } if *deadline <= now => {
                // A proper prefix of a method name that stayed alone for the
                // flush delay is a legacy message (a user may be called GET).
                self.become_legacy(ctx);
                let mut pending = std::mem::take(&mut self.rbuf);
                self.feed(&mut pending, ctx);
            }
            State::Http { deadline, .. } if *deadline <= now => {
                debug!("conn {:?}: request head not complete in time", self.id);
                if !self.rbuf.is_empty() {
                    let response =
                        write_response(408, &[], "text/plain; charset=utf-8", b"request head timeout\n", false, true);
                    self.out.push_bytes(ctx.pool, &response);
                }
                self.finish(ctx);
            }
            State::Legacy(lines) if lines.deadline().is_some_and(|d| d <= now) => {
                let member = self.chat.map(|(_, member)| member);
                lines.on_deadline(now, |event| handle_line(member, event, ctx));
                lines.release_idle_memory();
            }
            State::Draining { deadline } if *deadline <= now => {
                debug!("conn {:?}: closing deadline passed", self.id);
                self.dead = true;
            }
            State::WebSocket(ws) => {
                if let Some(close_deadline) = ws.close_deadline {
                    if close_deadline <= now {
                        debug!("conn {:?}: no close answer in time", self.id);
                        self.dead = true;
                    }
                } else if ws.ping_sent.is_some_and(|sent| sent + ctx.timeouts.ping_timeout <= now) {
                    debug!("conn {:?}: keepalive ping unanswered", self.id);
                    let code = CloseCode::GOING_AWAY;
                    self.out.append_with(ctx.pool, |v| encode_close(v, code, "ping timeout"));
                    self.finish(ctx);
                } else if ws.ping_sent.is_none() && ws.last_rx + ctx.timeouts.ping_interval <= now {
                    ws.ping_sent = Some(now);
                    self.out.append_with(ctx.pool, |v| encode_frame(v, OpCode::Ping, b""));
                }
            }
            _ => {}
        }
    }
}

impl WebSocket {
    fn new(app: WsApp, ctx: &Ctx<'_>) -> WebSocket {
        WebSocket {
            decoder: Decoder::new(ctx.limits.decoder),
            app,
            last_rx: ctx.now,
            ping_sent: None,
            close_deadline: None,
        }
    }
}

/// Acts on one decoded message. `closing`: we already sent our close frame,
/// so nothing more may be sent and only the peer's close matters.
fn handle_ws_message(
    app: WsApp,
    closing: bool,
    message: Message<'_>,
    out: &mut WriteQueue,
    ctx: &mut Ctx<'_>,
) -> WsStep {
    match message {
        Message::Close(frame) => {
            if !closing {
                // RFC 6455 §5.5.1: answer a close with a close, echoing the code.
                match frame {
                    Some(frame) => out.append_with(ctx.pool, |v| encode_close(v, frame.code, "")),
                    None => out.append_with(ctx.pool, |v| encode_frame(v, OpCode::Close, b"")),
                }
            }
            WsStep::Closed
        }
        _ if closing => WsStep::Open,
        Message::Ping(payload) => {
            out.append_with(ctx.pool, |v| encode_frame(v, OpCode::Pong, payload));
            WsStep::Open
        }
        Message::Pong(_) => WsStep::Open,
        Message::Text(text) => {
            ctx.metrics.messages_in_total += 1;
            match app {
                WsApp::Echo => {
                    out.append_with(ctx.pool, |v| encode_frame(v, OpCode::Text, text.as_bytes()));
                    ctx.metrics.messages_out_total += 1;
                }
                WsApp::Chat(ClientKind::Json, member) => handle_json(member, text, ctx),
                WsApp::Chat(_, member) => {
                    // PROTOCOL.md §2: one text frame is one legacy message,
                    // under the same --max-line as a TCP line.
                    if text.len() > ctx.limits.max_line_bytes {
                        ctx.hub.reject(member, ChatError::TooLarge, None, None, ctx.outbox);
                    } else {
                        handle_legacy(member, text.as_bytes(), ctx);
                    }
                }
            }
            WsStep::Open
        }
        Message::Binary(data) => {
            ctx.metrics.messages_in_total += 1;
            match app {
                WsApp::Echo => {
                    out.append_with(ctx.pool, |v| encode_frame(v, OpCode::Binary, data));
                    ctx.metrics.messages_out_total += 1;
                    WsStep::Open
                }
                // PROTOCOL.md §2, §3: the chat paths speak text only.
                WsApp::Chat(..) => WsStep::Refuse(CloseCode::UNSUPPORTED, "binary frames are not accepted here"),
            }
        }
    }
}

/// Hands one framed legacy line to the hub.
fn handle_line(member: Option<MemberId>, event: LineEvent<'_>, ctx: &mut Ctx<'_>) {
    ctx.metrics.messages_in_total += 1;
    let Some(member) = member else { return };
    match event {
        LineEvent::Message(line) => handle_legacy(member, line, ctx),
        LineEvent::TooLarge => ctx.hub.reject(member, ChatError::TooLarge, None, None, ctx.outbox),
    }
}

/// One legacy message (a TCP line or a `/legacy` frame), parsed by the line app.
fn handle_legacy(member: MemberId, line: &[u8], ctx: &mut Ctx<'_>) {
    match line_chat::parse::parse(line, ctx.hub.is_registered(member)) {
        Ok(Some(request)) => ctx.hub.handle(member, request, ctx.outbox),
        Ok(None) => {}
        Err(r) => ctx.hub.reject(member, r.error, r.detail.as_deref(), r.tag, ctx.outbox),
    }
}

/// One `/ws` text frame, parsed by the JSON app under `--max-message` (the
/// decoder already held the frame to it).
fn handle_json(member: MemberId, text: &str, ctx: &mut Ctx<'_>) {
    let max_bytes = ctx.limits.decoder.max_message_bytes;
    match json_chat::parse::parse(text, max_bytes, ctx.hub.is_registered(member)) {
        Ok(request) => ctx.hub.handle(member, request, ctx.outbox),
        Err(r) => ctx.hub.reject(member, r.error, r.detail.as_deref(), r.tag, ctx.outbox),
    }
}

/// The slow-reader rule: a queue over `--max-queued` is cut off, except that
/// one message bigger than the limit may go into an empty queue (a 16 MiB
/// echo is not a slow reader).
fn is_slow_reader(out: &WriteQueue, queued_before: usize, limits: &Limits) -> bool {
    out.queued() > limits.max_queued_bytes && queued_before > 0
}

/// The same rule asked before queueing `adding` more bytes.
fn would_pass_limit(out: &WriteQueue, adding: usize, limits: &Limits) -> bool {
    !out.is_empty() && out.queued() + adding > limits.max_queued_bytes
}

/// Writes what the socket takes now. Returns false on a fatal write error.
fn write_now<S: Write>(stream: &mut S, out: &mut WriteQueue, id: ConnId, ctx: &mut Ctx<'_>) -> bool {
    match out.write_to(stream, ctx.pool) {
        Ok(written) => {
            ctx.metrics.bytes_out_total += written as u64;
            true
        }
        Err(e) => {
            debug!("conn {id:?}: write error: {e}");
            false
        }
    }
}

/// A chat message as bytes for one wire format, shared between receivers.
#[derive(Clone, Debug)]
pub enum Framed {
    /// A whole frame or line.
    Whole(Rc<[u8]>),
    /// A presence list: `header`, then `whole` without the bytes in `omit`,
    /// then `trailer`; only the header is the receiver's own.
    Cut { header: [u8; 14], header_len: usize, whole: Rc<[u8]>, omit: Range<usize>, trailer: &'static [u8] },
}

impl Framed {
    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        match self {
            Framed::Whole(bytes) => bytes.len(),
            Framed::Cut { header_len, whole, omit, trailer, .. } => {
                header_len + whole.len().saturating_sub(omit.len()) + trailer.len()
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One chat payload as bytes for a receiver of `kind` whose presence entry
/// is `omit`: a text frame on WebSocket, a `\n`-terminated line on legacy TCP.
pub fn frame_rendered(rendered: &Rendered, omit: Option<u32>, kind: ClientKind) -> Framed {
    let tcp = kind == ClientKind::LegacyTcp;
    if rendered.entries.is_some() {
        let mut header = [0u8; 14];
        let payload_len = rendered.payload_len(omit);
        let header_len = if tcp { 0 } else { encode_header(OpCode::Text, true, payload_len as u64, None, &mut header) };
        let (before, after) = rendered.parts(omit);
        return Framed::Cut {
            header,
            header_len,
            whole: rendered.body.clone(),
            omit: before.end..after.start,
            trailer: if tcp { b"\n" } else { b"" },
        };
    }
    let mut bytes = Vec::with_capacity(rendered.body.len() + 10);
    if tcp {
        bytes.extend_from_slice(&rendered.body);
        bytes.push(b'\n');
    } else {
        encode_frame(&mut bytes, OpCode::Text, &rendered.body);
    }
    Framed::Whole(Rc::from(bytes))
}
