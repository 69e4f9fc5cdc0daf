//! Applications: what a connection serves once its framing is known. Each
//! protocol is one module here (echo, the JSON chat, the legacy line chat);
//! the router and the sniffer are the two tables that pick one.
//!
//! A connection ([`crate::conn`]) owns the bytes: it reads, frames and
//! writes, and runs the lifecycle (handshake, open, closing, draining). It
//! hands each complete message to its [`App`] and gives the app an [`Output`]
//! to answer through; the app never sees a socket, a frame header or a
//! close handshake. Apps reach the chat hub through [`AppCtx`] and receive
//! the hub's deliveries rendered in their own [`WireFormat`].

pub mod api;
pub mod echo;
pub mod engineio;
pub mod json_chat;
pub mod line_chat;
pub mod render;
pub mod router;
pub mod session;
pub mod sniff;
pub mod socketio;
pub mod sockjs;
pub mod static_files;
pub mod status;
pub mod stomp;
pub mod tokens;

use std::ops::Range;
use std::rc::Rc;
use std::time::Instant;

use crate::chat::{Delivery, Dialect, Event, Hub, MemberId, Outbox};
use crate::config::Limits;
use crate::ids::ConnId;
use crate::metrics::{Metrics, QueueGauges};
use crate::proto::http::response::write_response;
use crate::proto::ws::CloseCode;
use render::Rendered;
use session::SessionTable;

/// One complete message from the peer, as the connection's framing delivered it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// A WebSocket text message (valid UTF-8, reassembled).
    Text(&'a str),
    /// A WebSocket binary message (reassembled).
    Binary(&'a [u8]),
    /// A legacy line over raw TCP, terminator and NULs removed (at most `--max-line`).
    Line(&'a [u8]),
    /// A legacy line over `--max-line` was discarded by the line decoder.
    LineTooLarge,
    /// Bytes of a raw TCP stream whose protocol delimits its own messages
    /// (STOMP), as they arrived.
    Bytes(&'a [u8]),
}

/// What an app may use while it handles something: the hub and its outbox,
/// the clock, the limits, the counters. Never a socket.
pub struct AppCtx<'a> {
    pub now: Instant,
    pub limits: &'a Limits,
    pub metrics: &'a mut Metrics,
    pub hub: &'a mut Hub,
    /// Where the hub's deliveries collect; the reactor routes them after each event.
    pub outbox: &'a mut Outbox,
    /// Sessions that outlive a connection (lend one out to run it).
    pub sessions: &'a mut SessionTable,
    /// Connections with something to answer now: a held request whose
    /// session got data for its long-polling GET, or an open app whose
    /// session queued packets ([`App::on_wake`]).
    pub wakes: &'a mut Vec<ConnId>,
    /// The outgoing queues, for `/metrics`.
    pub queues: QueueGauges,
    /// The server API's key and rate limit.
    pub api: &'a mut api::ApiState,
}

/// How an app wants its connection to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseRequest {
    /// The WebSocket close code; a raw TCP connection simply finishes.
    pub code: CloseCode,
    pub reason: &'static str,
}

/// Where an app's answers go: messages framed by the connection (a text or
/// binary frame on WebSocket, a `\n`-terminated line on raw TCP), and at most
/// one request to close. Written straight into the connection's queue, so an
/// echo costs no copy besides the frame encoding.
pub trait Output {
    /// Queues one text message (UTF-8 the caller vouches for).
    fn send_text(&mut self, payload: &[u8]);
    /// Queues one binary message; a line connection cannot carry one and drops it.
    fn send_binary(&mut self, payload: &[u8]);
    /// Ends the connection once what is queued is out (the first request wins).
    fn close(&mut self, request: CloseRequest);

    /// Queues one message made of `parts` in order (a text message unless
    /// `binary`): the connection frames their total once and shares what is
    /// shared, so a fan-out receiver's own bytes are the only copy.
    fn send_parts(&mut self, parts: &[Part<'_>], binary: bool) {
        let mut joined = Vec::with_capacity(parts.iter().map(Part::len).sum());
        for part in parts {
            joined.extend_from_slice(part.bytes());
        }
        if binary { self.send_binary(&joined) } else { self.send_text(&joined) }
    }
}

/// A piece of one outgoing message: bytes shared with other receivers of a
/// delivery, or the receiver's own.
#[derive(Clone, Debug)]
pub enum Part<'a> {
    Shared(&'a Rc<[u8]>, Range<usize>),
    Own(&'a [u8]),
}

impl Part<'_> {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Part::Shared(bytes, range) => bytes.get(range.clone()).unwrap_or_default(),
            Part::Own(bytes) => bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An HTTP response an app built, without framing decisions: the
/// connection adds the status line, `Content-Length`, `Connection: close`
/// when it closes after it, and drops the body for `HEAD`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A `200 OK` with `body`.
    pub fn ok(content_type: &'static str, body: Vec<u8>) -> HttpResponse {
        HttpResponse { status: 200, headers: Vec::new(), content_type, body }
    }

    /// The response on the wire: status line, headers, `Content-Length`,
    /// `Connection: close` when `close`, and the body unless `head_only`.
    pub fn encode(&self, head_only: bool, close: bool) -> Vec<u8> {
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
        write_response(self.status, &headers, self.content_type, &self.body, head_only, close)
    }
}

impl HttpResponse {
    /// The head of a streamed answer: status line and headers, no
    /// `Content-Length`. With `chunked` the body follows as
    /// `Transfer-Encoding: chunked`; without, it ends when the connection
    /// closes (HTTP/1.0, or a request that closes anyway), so `close` must
    /// be set then.
    pub fn encode_stream_head(&self, chunked: bool, close: bool) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason_phrase(self.status));
        if !self.content_type.is_empty() {
            head.push_str(&format!("Content-Type: {}\r\n", self.content_type));
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if chunked {
            head.push_str("Transfer-Encoding: chunked\r\n");
        }
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

/// The reason phrases of the statuses a streamed answer starts with.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        _ => "Unknown",
    }
}

/// Pieces of a streamed answer's body, each written as one chunk (a client
/// reading chunk by chunk sees each as one unit), and whether the answer
/// ends after them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chunks {
    pub chunks: Vec<Vec<u8>>,
    pub end: bool,
}

/// Where a served HTTP request stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpReply {
    Respond(HttpResponse),
    /// The answer comes later (long-polling): the connection holds the
    /// request, and pipelined ones wait behind it, until the handler answers
    /// on a wake ([`AppCtx::wakes`]) or at its deadline.
    Park,
    /// A streamed answer starts: the head goes out now (its `body` is
    /// ignored), then these chunks; unless they end it, the request stays
    /// held and the handler adds more with [`HttpReply::More`] when polled.
    Stream(HttpResponse, Chunks),
    /// More of a streamed answer (for a request not streaming yet, the same
    /// as [`HttpReply::Park`]).
    More(Chunks),
}

/// An app's side of one HTTP request whose body the connection reads (under
/// `--max-body`) and whose answer may be held. The router makes one per
/// request ([`router::serve`]).
pub trait HttpHandler {
    /// The whole request body arrived (empty without one).
    fn handle_request(&mut self, conn: ConnId, body: &[u8], cx: &mut AppCtx<'_>) -> HttpReply;

    /// A held request was woken or reached its deadline: answer, or hold
    /// on; a streaming one answers [`HttpReply::More`] or [`HttpReply::Park`].
    fn poll_reply(&mut self, _cx: &mut AppCtx<'_>) -> HttpReply {
        HttpReply::Park
    }

    /// When a held request must be polled even without a wake.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// The connection ends with the request still held.
    fn on_close(&mut self, _cx: &mut AppCtx<'_>) {}
}

/// How hub events look on an app's wire. Receivers of one delivery that
/// share a format (and a framing) share one rendering; a protocol brings its
/// own format, so delivering knows no protocol.
#[derive(Clone, Copy, Debug)]
pub struct WireFormat {
    /// Names the format: receivers with equal keys share a rendering.
    pub key: &'static str,
    /// What the hub may send a member speaking this format.
    pub dialect: Dialect,
    /// The payload of the delivery's event in this format (every receiver
    /// of a delivery is in its namespace), or `None` if such receivers never
    /// get it.
    pub render: fn(&Delivery) -> Option<Rendered>,
    /// Each receiver's bytes differ (STOMP's `subscription` header, one
    /// message per matching subscription): the app writes each delivery
    /// itself through [`App::deliver`], sharing the rendering's bytes.
    pub per_receiver: bool,
}

impl PartialEq for WireFormat {
    fn eq(&self, other: &WireFormat) -> bool {
        // Asked once per receiver of a fan-out: the same literal is usually
        // the same pointer, so the bytes are compared only when it is not.
        std::ptr::eq(self.key, other.key) || self.key == other.key
    }
}

impl Eq for WireFormat {}

/// A protocol served over a connection, driven by the connection.
pub trait App {
    /// One complete message from the peer.
    fn handle_input(&mut self, input: Input<'_>, cx: &mut AppCtx<'_>, out: &mut dyn Output);

    /// The earliest instant at which [`App::handle_timeout`] has work; `None` if never.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Called once `cx.now` has reached [`App::poll_timeout`].
    fn handle_timeout(&mut self, _cx: &mut AppCtx<'_>, _out: &mut dyn Output) {}

    /// Something the app waits on has output for it (a session it carries
    /// queued packets, see [`AppCtx::wakes`]): write it now.
    fn on_wake(&mut self, _cx: &mut AppCtx<'_>, _out: &mut dyn Output) {}

    /// A hub delivery for an app whose format is
    /// [`WireFormat::per_receiver`]: `rendered` is the format's shared
    /// rendering of `event`; `omit` as [`Rendered::parts`] takes it.
    fn deliver(&mut self, _event: &Event, _rendered: &Rendered, _omit: Option<u32>, _out: &mut dyn Output) {}

    /// Called once when the app starts on a carrier that exists before any
    /// input (a SockJS session's open frame is out): an app that speaks
    /// first (or closes at once) does it here.
    fn on_start(&mut self, _cx: &mut AppCtx<'_>, _out: &mut dyn Output) {}

    /// The hub ends `member`, one of this app's (a `/quit`, the server API's
    /// disconnect), its last words already delivered. `true`: the app ended
    /// that member alone (a Socket.IO namespace); `false`: the connection
    /// closes, as it does for an app with one member.
    fn close_member(&mut self, _member: MemberId, _cx: &mut AppCtx<'_>, _out: &mut dyn Output) -> bool {
        false
    }

    /// The connection is ending, for whatever reason (either side closed, a
    /// limit, shutdown): leave whatever the app joined. Called exactly once.
    fn on_close(&mut self, _cx: &mut AppCtx<'_>) {}

    /// The format this app's hub deliveries are rendered in, or `None` if it
    /// receives none (echo).
    fn wire_format(&self) -> Option<WireFormat> {
        None
    }
}
