//! SockJS 0.3 served: the services and their paths, the HTTP transports
//! (polling, streaming, sends) on sessions kept in the reactor's session
//! table, the SockJS WebSocket transport and the raw `/websocket`. The
//! protocol itself (routes, frames, bodies, static answers, one session's
//! state) is the sans-IO core in [`crate::proto::sockjs`]; what is spoken
//! inside the messages is any [`App`] (STOMP, or the test suite's echo).

pub mod session;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, warn};

use super::echo::Echo;
use super::render::Rendered;
use super::stomp::{Carried, Stomp};
use super::{App, AppCtx, Chunks, CloseRequest, HttpHandler, HttpReply, HttpResponse, Input, Output, WireFormat};
use crate::chat::Event;
use crate::config::SockJsConfig;
use crate::ids::{ConnId, Endpoint, SessionId};
use crate::proto::sockjs::{
    self, ANOTHER_CONNECTION, Answer, CloseReason, RequestHeaders, ServiceOptions, SessionCore, SessionLimits,
    Transport, Wrap,
};
use crate::proto::ws::CloseCode;
pub use session::{SockJsSession, with_session};

/// The SockJS client script the iframe page loads (any URL works: the
/// page only bootstraps a client from the same major version).
pub const SOCKJS_URL: &str = "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js";

/// The longest session id taken. Clients choose them (sockjs-client uses
/// 8 random characters, the test suite UUIDs); each costs a table name.
pub const MAX_SESSION_ID_BYTES: usize = 128;

/// The test suite's `echo` service ends streaming responses after 4 KiB,
/// to test the limit with small messages.
pub const TEST_ECHO_RESPONSE_LIMIT: usize = 4096;

/// The STOMP service's path.
pub const STOMP_PREFIX: &str = "/stomp/sockjs";

/// Where the test suite's services live under `--sockjs-test-suite`.
pub const TEST_PREFIX: &str = "/sockjs-test";

/// A SockJS service: the app its sessions carry and its options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// `/stomp/sockjs`: a STOMP client per session.
    Stomp,
    /// The test suite's `echo`.
    Echo,
    /// `disabled_websocket_echo`: echo without the WebSocket transports.
    DisabledWebsocketEcho,
    /// `cookie_needed_echo`: echo that sets `JSESSIONID`.
    CookieNeededEcho,
    /// `close`: every session closes at once with 3000 "Go away!".
    Close,
}

/// The test suite's services, by their path segment under [`TEST_PREFIX`].
const TEST_SERVICES: [(&str, Service); 4] = [
    ("echo", Service::Echo),
    ("disabled_websocket_echo", Service::DisabledWebsocketEcho),
    ("cookie_needed_echo", Service::CookieNeededEcho),
    ("close", Service::Close),
];

impl Service {
    pub fn options(self) -> ServiceOptions<'static> {
        ServiceOptions {
            websocket: self != Service::DisabledWebsocketEcho,
            cookie_needed: self == Service::CookieNeededEcho,
            sockjs_url: SOCKJS_URL,
        }
    }

    fn response_limit(self, config: &SockJsConfig) -> usize {
        match self {
            Service::Echo => TEST_ECHO_RESPONSE_LIMIT,
            _ => config.response_limit,
        }
    }

    /// Names the service in session names: ids are per service.
    fn key(self) -> &'static str {
        match self {
            Service::Stomp => "stomp",
            Service::Echo => "echo",
            Service::DisabledWebsocketEcho => "disabled_websocket_echo",
            Service::CookieNeededEcho => "cookie_needed_echo",
            Service::Close => "close",
        }
    }

    /// The app a new session (or raw WebSocket) of this service runs.
    pub fn open_upper(self, endpoint: Endpoint, carried: Carried, cx: &mut AppCtx<'_>) -> Box<dyn App> {
        match self {
            Service::Stomp => Box::new(Stomp::open(endpoint, carried, cx)),
            Service::Echo | Service::DisabledWebsocketEcho | Service::CookieNeededEcho => Box::new(Echo),
            Service::Close => Box::new(GoAway),
        }
    }
}

/// The SockJS service `path` is under, and the path below its prefix.
pub fn find_service(path: &str, test_suite: bool) -> Option<(Service, &str)> {
    let below = |prefix: &str| path.strip_prefix(prefix).filter(|rest| rest.is_empty() || rest.starts_with('/'));
    if let Some(rest) = below(STOMP_PREFIX) {
        return Some((Service::Stomp, rest));
    }
    if !test_suite {
        return None;
    }
    let rest = below(TEST_PREFIX)?.strip_prefix('/')?;
    let (name, rest) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
    TEST_SERVICES.iter().find(|(n, _)| *n == name).map(|&(_, service)| (service, rest))
}

/// Whether a session id is taken: the protocol's rule (checked by the
/// router) plus soket's length cap.
pub fn is_acceptable_session_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_SESSION_ID_BYTES && !id.contains('.')
}

/// Seconds since the epoch, for `Expires` (a clock before 1970 reads 0).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A fresh `/info` entropy value.
pub fn entropy() -> u32 {
    let mut bytes = [0u8; 4];
    if let Err(e) = getrandom::fill(&mut bytes) {
        warn!("no random bytes for /info entropy: {e}");
    }
    u32::from_le_bytes(bytes)
}

/// An answer of the core as an app's response: its headers (Content-Type
/// among them) as they are.
pub fn response(answer: Answer) -> HttpResponse {
    HttpResponse { status: answer.status, headers: answer.headers, content_type: "", body: answer.body }
}

/// A request on a session transport (not WebSocket), as the router read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRequest {
    pub service: Service,
    pub session: String,
    pub transport: Transport,
    /// The checked callback of htmlfile and jsonp; empty for the others.
    pub callback: String,
    pub origin: Option<String>,
    pub cookie: Option<String>,
    pub content_type: Option<String>,
}

impl SessionRequest {
    fn headers(&self) -> RequestHeaders<'_> {
        RequestHeaders {
            origin: self.origin.as_deref(),
            cookie: self.cookie.as_deref(),
            content_type: self.content_type.as_deref(),
            ..RequestHeaders::default()
        }
    }

    fn name(&self) -> String {
        session_name(self.service, &self.session)
    }

    fn is_streaming(&self) -> bool {
        matches!(self.transport, Transport::XhrStreaming | Transport::EventSource | Transport::HtmlFile)
    }
}

fn session_name(service: Service, session: &str) -> String {
    format!("sockjs/{}/{session}", service.key())
}

/// The limits a new session runs with.
fn session_limits(cx: &AppCtx<'_>) -> SessionLimits {
    SessionLimits {
        heartbeat: cx.limits.sockjs.heartbeat,
        disconnect_delay: cx.limits.sockjs.disconnect_delay,
        max_queued_bytes: cx.limits.max_queued_bytes,
    }
}

/// Opens a session named by a receiving request; `None` at
/// `--sockjs-max-sessions`.
fn open_session(service: Service, name: &str, cx: &mut AppCtx<'_>) -> Option<SessionId> {
    if cx.sessions.named_len() >= cx.limits.sockjs.max_sessions {
        debug!("sockjs: --sockjs-max-sessions reached");
        return None;
    }
    let core = SessionCore::new(session_limits(cx), cx.now);
    let id = cx.sessions.insert_named(name, |_| Box::new(SockJsSession::new(core)))?;
    cx.metrics.sockjs_session_opened();
    // The upper app is opened knowing its endpoint, with the table free.
    let upper = service.open_upper(Endpoint::Session(id), Carried::SockJs, cx);
    with_session(cx, id, |session, cx| session.start(upper, cx));
    Some(id)
}

/// One request on a session transport: a send (xhr_send, jsonp_send), or a
/// receiver (xhr, jsonp: one frame; xhr_streaming, eventsource, htmlfile:
/// frames until the response limit or the close).
pub struct SessionHandler {
    request: SessionRequest,
    /// The session this request receives for, while it does.
    held: Option<(SessionId, ConnId)>,
}

impl SessionHandler {
    pub fn new(request: SessionRequest) -> SessionHandler {
        SessionHandler { request, held: None }
    }

    fn head(&self) -> Answer {
        sockjs::transport_head(self.request.transport, &self.request.headers(), &self.request.service.options())
    }

    fn wrap(&self) -> Wrap<'_> {
        Wrap::for_transport(self.request.transport, &self.request.callback).unwrap_or(Wrap::Xhr)
    }

    /// The reply carrying `pieces` (a streaming answer's frames, or a
    /// polling answer's one frame), or a held polling request.
    fn reply(&self, pieces: Vec<Vec<u8>>, end: bool, started: bool) -> HttpReply {
        if self.request.is_streaming() {
            let chunks = Chunks { chunks: pieces, end };
            return if started { HttpReply::More(chunks) } else { HttpReply::Stream(response(self.head()), chunks) };
        }
        if !end {
            return HttpReply::Park;
        }
        let mut answer = self.head();
        answer.body = pieces.concat();
        HttpReply::Respond(response(answer))
    }

    fn send(&mut self, body: &[u8], cx: &mut AppCtx<'_>) -> HttpReply {
        let request = &self.request;
        let Some(id) = cx.sessions.find_named(&request.name()) else {
            return HttpReply::Respond(response(sockjs::not_found()));
        };
        let messages = match request.transport {
            Transport::JsonpSend => sockjs::decode_jsonp_send(body, request.content_type.as_deref()),
            _ => sockjs::decode_xhr_send(body),
        };
        match messages {
            Ok(messages) => {
                with_session(cx, id, |session, cx| session.receive(&messages, cx));
                HttpReply::Respond(response(self.head()))
            }
            Err(e) => HttpReply::Respond(response(e.answer(&request.headers()))),
        }
    }
}

impl HttpHandler for SessionHandler {
    fn handle_request(&mut self, conn: ConnId, body: &[u8], cx: &mut AppCtx<'_>) -> HttpReply {
        if self.request.transport.is_send() {
            return self.send(body, cx);
        }
        let name = self.request.name();
        let id = match cx.sessions.find_named(&name) {
            Some(id) => id,
            None => match open_session(self.request.service, &name, cx) {
                Some(id) => id,
                None => {
                    return HttpReply::Respond(HttpResponse {
                        status: 503,
                        headers: Vec::new(),
                        content_type: "text/plain; charset=UTF-8",
                        body: b"too many SockJS sessions\n".to_vec(),
                    });
                }
            },
        };
        let limit = self.request.service.response_limit(&cx.limits.sockjs);
        let mode = self.request.transport.receiving(limit).unwrap_or(sockjs::Receiving::Polling);
        let mut pieces = Vec::new();
        if self.request.is_streaming() {
            let mut prelude = Vec::new();
            sockjs::push_prelude(self.request.transport, &self.request.callback, &mut prelude);
            pieces.push(prelude);
        }
        let wrap = self.wrap();
        let attached = with_session(cx, id, |session, cx| session.attach(conn, mode, cx.now));
        let end = match attached {
            Some(Ok(())) => {
                with_session(cx, id, |session, cx| session.poll(cx.now, &wrap, &mut pieces)).unwrap_or(true)
            }
            // One receiver at a time: this one gets 2010 and ends; the
            // session and its receiver go on.
            Some(Err(sockjs::Busy)) | None => {
                let mut frame = Vec::new();
                wrap.push_frame(&sockjs::close_frame(ANOTHER_CONNECTION), &mut frame);
                pieces.push(frame);
                true
            }
        };
        if !end {
            self.held = Some((id, conn));
        }
        self.reply(pieces, end, false)
    }

    fn poll_reply(&mut self, cx: &mut AppCtx<'_>) -> HttpReply {
        let Some((id, _)) = self.held else {
            return self.reply(Vec::new(), true, true);
        };
        let wrap = self.wrap();
        let mut pieces = Vec::new();
        let end = with_session(cx, id, |session, cx| session.poll(cx.now, &wrap, &mut pieces));
        let end = match end {
            Some(end) => end,
            // The session left the table under its receiver (shutdown).
            None => {
                let mut frame = Vec::new();
                wrap.push_frame(&sockjs::close_frame(sockjs::INTERRUPTED), &mut frame);
                pieces.push(frame);
                true
            }
        };
        if end {
            self.held = None;
        } else if pieces.is_empty() {
            return HttpReply::Park;
        }
        self.reply(pieces, end, true)
    }

    fn on_close(&mut self, cx: &mut AppCtx<'_>) {
        if let Some((id, conn)) = self.held.take() {
            with_session(cx, id, |session, cx| session.receiver_gone(conn, cx));
        }
    }
}

/// The test suite's `close` service: every session (and raw WebSocket)
/// closes as soon as it opens.
pub struct GoAway;

const GO_AWAY: CloseRequest = CloseRequest { code: CloseCode(3000), reason: "Go away!" };

impl App for GoAway {
    fn handle_input(&mut self, _input: Input<'_>, _cx: &mut AppCtx<'_>, _out: &mut dyn Output) {}

    fn on_start(&mut self, _cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        out.close(GO_AWAY);
    }
}

/// How the SockJS WebSocket transport ends after its close frame (SockJS
/// codes such as 2010 are not valid WebSocket close codes).
const CLOSED: CloseRequest = CloseRequest { code: CloseCode::NORMAL, reason: "" };

/// Why a SockJS WebSocket is dropped: a message that is not a JSON string
/// or array of strings.
const BROKEN_FRAMING: CloseRequest = CloseRequest { code: CloseCode::PROTOCOL_ERROR, reason: "Broken framing." };

/// The SockJS WebSocket transport (`/<server>/<session>/websocket`): the
/// session lives in the app (a WebSocket never hands it on), each frame a
/// text message: `o`, `a[...]` for the upper app's messages, `h` on the
/// heartbeat, `c[code,"reason"]` before the close.
pub struct SockJsWebSocket {
    upper: Box<dyn App>,
    heartbeat: Duration,
    heartbeat_at: Instant,
    closed: bool,
}

/// The upper app's writes, as SockJS frames on the WebSocket.
struct Frames<'a> {
    out: &'a mut dyn Output,
    closed: &'a mut bool,
}

impl Output for Frames<'_> {
    fn send_text(&mut self, payload: &[u8]) {
        if !*self.closed {
            let message = String::from_utf8_lossy(payload);
            self.out.send_text(sockjs::message_frame(&[message]).as_bytes());
        }
    }

    /// SockJS frames carry strings only.
    fn send_binary(&mut self, _payload: &[u8]) {}

    fn close(&mut self, request: CloseRequest) {
        if !*self.closed {
            *self.closed = true;
            let frame = sockjs::close_frame(CloseReason { code: request.code.0, reason: request.reason });
            self.out.send_text(frame.as_bytes());
            self.out.close(CLOSED);
        }
    }
}

impl SockJsWebSocket {
    pub fn open(service: Service, conn: ConnId, cx: &mut AppCtx<'_>) -> SockJsWebSocket {
        cx.metrics.sockjs_session_opened();
        let heartbeat = cx.limits.sockjs.heartbeat;
        SockJsWebSocket {
            upper: service.open_upper(Endpoint::Conn(conn), Carried::SockJs, cx),
            heartbeat,
            heartbeat_at: cx.now + heartbeat,
            closed: false,
        }
    }

    fn run(&mut self, out: &mut dyn Output, act: impl FnOnce(&mut dyn App, &mut dyn Output)) {
        let mut frames = Frames { out, closed: &mut self.closed };
        act(self.upper.as_mut(), &mut frames);
    }
}

impl App for SockJsWebSocket {
    fn handle_input(&mut self, input: Input<'_>, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        let Input::Text(text) = input else {
            out.close(BROKEN_FRAMING);
            return;
        };
        let Ok(messages) = sockjs::decode_ws_message(text) else {
            out.close(BROKEN_FRAMING);
            return;
        };
        for message in &messages {
            if self.closed {
                break;
            }
            self.run(out, |upper, frames| upper.handle_input(Input::Text(message), cx, frames));
        }
    }

    fn on_start(&mut self, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        out.send_text(sockjs::OPEN_FRAME.as_bytes());
        self.run(out, |upper, frames| upper.on_start(cx, frames));
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let upper = if self.closed { None } else { self.upper.poll_timeout() };
        Some(upper.map_or(self.heartbeat_at, |at| at.min(self.heartbeat_at)))
    }

    fn handle_timeout(&mut self, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        if self.heartbeat_at <= cx.now {
            self.heartbeat_at = cx.now + self.heartbeat;
            if !self.closed {
                out.send_text(sockjs::HEARTBEAT_FRAME.as_bytes());
            }
        }
        if !self.closed && self.upper.poll_timeout().is_some_and(|at| at <= cx.now) {
            self.run(out, |upper, frames| upper.handle_timeout(cx, frames));
        }
    }

    fn on_wake(&mut self, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        self.run(out, |upper, frames| upper.on_wake(cx, frames));
    }

    fn deliver(&mut self, event: &Event, rendered: &Rendered, omit: Option<u32>, out: &mut dyn Output) {
        let per_receiver = self.upper.wire_format().is_some_and(|format| format.per_receiver);
        self.run(out, |upper, frames| {
            if per_receiver {
                upper.deliver(event, rendered, omit, frames);
            } else {
                frames.send_text(&rendered.payload(omit));
            }
        });
    }

    fn on_close(&mut self, cx: &mut AppCtx<'_>) {
        cx.metrics.sockjs_session_closed();
        self.upper.on_close(cx);
    }

    /// The upper app's format, delivered through [`App::deliver`] so each
    /// message is wrapped in its `a[...]` frame.
    fn wire_format(&self) -> Option<WireFormat> {
        self.upper.wire_format().map(|format| WireFormat { per_receiver: true, ..format })
    }
}

#[cfg(test)]
mod tests;
