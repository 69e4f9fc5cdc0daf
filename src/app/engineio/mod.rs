//! Engine.IO 4, the transport under Socket.IO: the handshake, long-polling
//! GETs (held until there is something to say) and POSTs, the WebSocket
//! transport and the upgrade to it. The session itself is in [`session`];
//! what is spoken inside its messages is an [`Upper`] protocol: Socket.IO,
//! or for the protocol test suite an echo.

pub mod session;

use std::borrow::Cow;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use log::{debug, warn};

use super::socketio::SocketIo;
use super::{App, AppCtx, CloseRequest, HttpHandler, HttpReply, HttpResponse, Input, Output, WireFormat};
use crate::app::session::Session as _;
use crate::chat::MemberId;
use crate::ids::{ConnId, Endpoint, SessionId};
use crate::proto::engineio::{self, OpenParams, Packet, RequestError};
use crate::proto::ws::CloseCode;
pub use session::{EngineSession, Link, Refused, Upper, with_session};

/// Which protocol an Engine.IO path carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `/socket.io/`.
    SocketIo,
    /// `/engine.io/` under `--socketio-test-suite`: every message echoed.
    Echo,
}

/// A long-polling request as the router read it from the head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollRequest {
    pub flavor: Flavor,
    /// A POST (packets from the client); otherwise a GET.
    pub post: bool,
    /// `None`: the handshake.
    pub sid: Option<String>,
    /// Echoed in CORS headers.
    pub origin: Option<String>,
}

/// The CORS headers of every Engine.IO answer: the request's Origin echoed
/// with credentials allowed (the reference server's `cors: { origin: true,
/// credentials: true }`), or `*` without one.
pub fn cors_headers(origin: Option<&str>) -> Vec<(&'static str, String)> {
    match origin {
        Some(origin) => vec![
            ("Access-Control-Allow-Origin", origin.to_owned()),
            ("Access-Control-Allow-Credentials", "true".to_owned()),
            ("Vary", "Origin".to_owned()),
        ],
        None => vec![("Access-Control-Allow-Origin", "*".to_owned())],
    }
}

/// The reference server's error answer: a status and `{"code","message"}`.
pub fn error_response(error: RequestError, origin: Option<&str>) -> HttpResponse {
    HttpResponse {
        status: error.status(),
        headers: cors_headers(origin),
        content_type: "application/json",
        body: error.body().into_bytes(),
    }
}

/// A session id: the table slot, the low bits of its generation and a
/// random secret, URL-safe base64 (24 characters). The slot makes lookup
/// O(1); the secret makes it unguessable.
fn encode_sid(id: SessionId, secret: u128) -> String {
    let mut bytes = [0u8; 18];
    bytes[..4].copy_from_slice(&(id.slot as u32).to_le_bytes());
    bytes[4..8].copy_from_slice(&(id.generation as u32).to_le_bytes());
    bytes[8..].copy_from_slice(&secret.to_le_bytes()[..10]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The live session a sid names, if any.
pub fn find_session(cx: &AppCtx<'_>, sid: &str) -> Option<SessionId> {
    if sid.len() != 24 {
        return None;
    }
    let mut bytes = [0u8; 18];
    let n = URL_SAFE_NO_PAD.decode_slice(sid, &mut bytes).ok()?;
    if n != bytes.len() {
        return None;
    }
    let slot = u32::from_le_bytes(bytes[..4].try_into().ok()?) as usize;
    let generation = u32::from_le_bytes(bytes[4..8].try_into().ok()?);
    let mut secret = [0u8; 16];
    secret[..10].copy_from_slice(&bytes[8..]);
    cx.sessions.find(slot, generation, u128::from_le_bytes(secret))
}

/// 80 bits from the operating system's CSPRNG.
fn random_secret() -> Option<u128> {
    let mut bytes = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut bytes[..10]) {
        warn!("no random bytes for a session id: {e}");
        return None;
    }
    Some(u128::from_le_bytes(bytes))
}

/// A random id for other protocol uses (Socket.IO's per-namespace sid).
pub fn random_id() -> Option<String> {
    random_secret().map(|secret| URL_SAFE_NO_PAD.encode(&secret.to_le_bytes()[..10]))
}

/// The protocol a session speaks inside its messages, held in the session
/// itself (one allocation per session, not two).
pub enum Protocol {
    SocketIo(SocketIo),
    Echo(Echo),
}

impl Protocol {
    fn upper(&mut self) -> &mut dyn Upper {
        match self {
            Protocol::SocketIo(p) => p,
            Protocol::Echo(p) => p,
        }
    }

    fn upper_ref(&self) -> &dyn Upper {
        match self {
            Protocol::SocketIo(p) => p,
            Protocol::Echo(p) => p,
        }
    }
}

impl Upper for Protocol {
    fn on_text(&mut self, text: &str, link: &mut Link<'_>, cx: &mut AppCtx<'_>) -> Result<(), Refused> {
        self.upper().on_text(text, link, cx)
    }

    fn on_binary(&mut self, data: &[u8], link: &mut Link<'_>, cx: &mut AppCtx<'_>) -> Result<(), Refused> {
        self.upper().on_binary(data, link, cx)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.upper_ref().poll_timeout()
    }

    fn handle_timeout(&mut self, link: &mut Link<'_>, cx: &mut AppCtx<'_>) -> Result<(), Refused> {
        self.upper().handle_timeout(link, cx)
    }

    fn on_close(&mut self, cx: &mut AppCtx<'_>) {
        self.upper().on_close(cx)
    }

    fn close_member(&mut self, member: MemberId, link: &mut Link<'_>, cx: &mut AppCtx<'_>) -> bool {
        self.upper().close_member(member, link, cx)
    }

    fn wire_format(&self) -> Option<&'static WireFormat> {
        self.upper_ref().wire_format()
    }
}

/// The protocol a new session speaks inside its messages.
fn new_upper(flavor: Flavor, cx: &AppCtx<'_>) -> Protocol {
    match flavor {
        Flavor::SocketIo => Protocol::SocketIo(SocketIo::new(cx.now, &cx.limits.engine)),
        Flavor::Echo => Protocol::Echo(Echo),
    }
}

/// Opens a long-polling session in the table; returns its id and sid.
fn open_polling_session(flavor: Flavor, cx: &mut AppCtx<'_>) -> Option<(SessionId, String)> {
    let secret = random_secret()?;
    let upper = new_upper(flavor, cx);
    let (config, now) = (cx.limits.engine, cx.now);
    let id =
        cx.sessions.insert_with(secret, |id| Box::new(EngineSession::new(Endpoint::Session(id), &config, now, upper)));
    cx.metrics.engineio_session_opened();
    Some((id, encode_sid(id, secret)))
}

fn open_packet(sid: &str, upgrade_to_websocket: bool, cx: &AppCtx<'_>) -> String {
    let config = &cx.limits.engine;
    engineio::open_packet(&OpenParams {
        sid,
        upgrade_to_websocket,
        ping_interval_ms: config.ping_interval.as_millis() as u64,
        ping_timeout_ms: config.ping_timeout.as_millis() as u64,
        max_payload: config.max_payload as u64,
    })
}

/// Why a POST is refused.
enum PostError {
    Request(RequestError),
    /// A body over maxPayload: the session is closed.
    TooLarge,
}

/// One long-polling request: the handshake, a GET held until the session
/// has something to say, or a POST of packets.
pub struct Polling {
    request: PollRequest,
    held: Option<(SessionId, ConnId)>,
}

impl Polling {
    pub fn new(request: PollRequest) -> Polling {
        Polling { request, held: None }
    }

    fn answer(&self, body: Vec<u8>, content_type: &'static str) -> HttpReply {
        HttpReply::Respond(HttpResponse {
            status: 200,
            headers: cors_headers(self.request.origin.as_deref()),
            content_type,
            body,
        })
    }

    fn packets(&self, body: Vec<u8>) -> HttpReply {
        self.answer(body, "text/plain; charset=UTF-8")
    }

    fn fail(&self, error: RequestError) -> HttpReply {
        HttpReply::Respond(error_response(error, self.request.origin.as_deref()))
    }
}

impl HttpHandler for Polling {
    fn handle_request(&mut self, conn: ConnId, body: &[u8], cx: &mut AppCtx<'_>) -> HttpReply {
        let Some(sid) = self.request.sid.as_deref() else {
            return match open_polling_session(self.request.flavor, cx) {
                Some((_, sid)) => self.packets(open_packet(&sid, true, cx).into_bytes()),
                None => HttpReply::Respond(HttpResponse {
                    status: 503,
                    headers: Vec::new(),
                    content_type: "text/plain; charset=utf-8",
                    body: b"no randomness for a session id\n".to_vec(),
                }),
            };
        };
        let Some(id) = find_session(cx, sid) else {
            return self.fail(RequestError::UnknownSid);
        };
        if self.request.post {
            let max_payload = cx.limits.engine.max_payload;
            let result = with_session(cx, id, |session, cx| {
                if session.has_ended() {
                    return Err(PostError::Request(RequestError::UnknownSid));
                }
                if session.is_upgraded() {
                    return Err(PostError::Request(RequestError::BadRequest));
                }
                if body.len() > max_payload {
                    session.end(session::End::TooLarge, cx);
                    return Err(PostError::TooLarge);
                }
                session.on_post(body, cx).map_err(|_| {
                    session.end(session::End::ParseError, cx);
                    PostError::Request(RequestError::BadRequest)
                })
            });
            return match result {
                Some(Ok(())) => self.answer(b"ok".to_vec(), "text/html"),
                Some(Err(PostError::Request(e))) => self.fail(e),
                // The reference server's answer: 413 without a body.
                Some(Err(PostError::TooLarge)) => HttpReply::Respond(HttpResponse {
                    status: 413,
                    headers: cors_headers(self.request.origin.as_deref()),
                    content_type: "",
                    body: Vec::new(),
                }),
                None => self.fail(RequestError::UnknownSid),
            };
        }
        let result = with_session(cx, id, |session, cx| {
            if session.has_ended() {
                return Err(RequestError::UnknownSid);
            }
            session.poll(conn, cx)
        });
        match result {
            Some(Ok(Some(payload))) => self.packets(payload),
            Some(Ok(None)) => {
                self.held = Some((id, conn));
                HttpReply::Park
            }
            Some(Err(e)) => self.fail(e),
            None => self.fail(RequestError::UnknownSid),
        }
    }

    fn poll_reply(&mut self, cx: &mut AppCtx<'_>) -> HttpReply {
        let Some((id, _)) = self.held else {
            return self.packets(b"1".to_vec());
        };
        match with_session(cx, id, |session, _| session.answer_poll()) {
            Some(Some(payload)) => {
                self.held = None;
                self.packets(payload)
            }
            Some(None) => HttpReply::Park,
            // The session left the table while the poll was held.
            None => {
                self.held = None;
                self.packets(b"1".to_vec())
            }
        }
    }

    fn on_close(&mut self, cx: &mut AppCtx<'_>) {
        if let Some((id, conn)) = self.held.take() {
            with_session(cx, id, |session, _| session.poll_closed(conn));
        }
    }
}

/// The WebSocket transport of one session: from the start
/// (`transport=websocket` without a sid), or as the upgrade of a polling
/// session (with its sid: probe, then take over).
pub struct EngineWebSocket {
    /// The deliveries' format while this WebSocket carries the session.
    /// Asked for every delivery, so it is read here rather than from the
    /// session's depths.
    format: Option<&'static WireFormat>,
    conn: ConnId,
    session: Carried,
}

/// The session a WebSocket carries.
enum Carried {
    /// Opened on this WebSocket: it never moves, so it lives in the app,
    /// not in the session table, and its deliveries come to the connection.
    Own(EngineSession),
    /// A polling session in the table, probing or upgraded to this WebSocket.
    Upgrade(SessionId),
    /// The upgrade named no session it could take over: closed on the first wake.
    Refused,
}

impl EngineWebSocket {
    pub fn open(flavor: Flavor, sid: Option<&str>, conn: ConnId, cx: &mut AppCtx<'_>) -> EngineWebSocket {
        // The first wake writes the open packet, or closes a refused upgrade.
        cx.wakes.push(conn);
        let Some(sid) = sid else {
            // Not in the table: no lookup by sid ever reaches it, so the id
            // only has to be unique and unguessable.
            let Some(sid) = random_id() else {
                return EngineWebSocket { format: None, conn, session: Carried::Refused };
            };
            let upper = new_upper(flavor, cx);
            let mut session = EngineSession::new(Endpoint::Conn(conn), &cx.limits.engine, cx.now, upper);
            session.queue_text(open_packet(&sid, false, cx).as_bytes());
            cx.metrics.engineio_session_opened();
            return EngineWebSocket { format: session.upper_format(), conn, session: Carried::Own(session) };
        };
        let taken = find_session(cx, sid)
            .filter(|&id| with_session(cx, id, |session, _| session.offer_websocket(conn)) == Some(true));
        let session = match taken {
            Some(id) => Carried::Upgrade(id),
            None => {
                debug!("engine.io upgrade refused for sid {sid:?}");
                Carried::Refused
            }
        };
        EngineWebSocket { format: None, conn, session }
    }

    /// Runs `act` on the carried session; `None` if there is none (refused,
    /// or gone from the table).
    fn with_carried<R>(
        &mut self,
        cx: &mut AppCtx<'_>,
        act: impl FnOnce(&mut EngineSession, &mut AppCtx<'_>) -> R,
    ) -> Option<R> {
        match &mut self.session {
            Carried::Own(session) => Some(act(session, cx)),
            Carried::Upgrade(id) => {
                let id = *id;
                let result = with_session(cx, id, act);
                if self.format.is_none() && cx.sessions.carrier(id) == Some(self.conn) {
                    // The upgrade completed on this WebSocket.
                    self.format = with_session(cx, id, |session, _| session.upper_format()).flatten();
                }
                result
            }
            Carried::Refused => None,
        }
    }
}

const SESSION_OVER: CloseRequest = CloseRequest { code: CloseCode::NORMAL, reason: "" };
const NO_SESSION: CloseRequest = CloseRequest { code: CloseCode::POLICY, reason: "unknown or taken session" };
const TOO_BIG: CloseRequest = CloseRequest { code: CloseCode::TOO_BIG, reason: "over maxPayload" };

impl EngineWebSocket {
    /// How this WebSocket ends once its session has: 1008 for an upgrade
    /// that named no session it could take, else normally.
    fn close_request(&self) -> CloseRequest {
        match self.session {
            Carried::Refused => NO_SESSION,
            _ => SESSION_OVER,
        }
    }
}

impl App for EngineWebSocket {
    fn close_member(&mut self, member: MemberId, cx: &mut AppCtx<'_>, out: &mut dyn Output) -> bool {
        // Members of an upgraded polling session are the table's to end.
        let conn = self.conn;
        let Carried::Own(session) = &mut self.session else { return false };
        let closed = session.close_member(member, cx);
        session.flush_to(conn, out);
        closed
    }

    fn handle_input(&mut self, input: Input<'_>, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        let size = match input {
            Input::Text(text) => text.len(),
            Input::Binary(data) => data.len(),
            Input::Line(line) | Input::Bytes(line) => line.len(),
            Input::LineTooLarge => usize::MAX,
        };
        let conn = self.conn;
        if size > cx.limits.engine.max_payload {
            // The reference server's WebSocket closes with 1009 past maxPayload.
            self.with_carried(cx, |session, cx| session.end(session::End::TooLarge, cx));
            out.close(TOO_BIG);
            return;
        }
        let packet = match input {
            Input::Text(text) => engineio::decode_text(text),
            Input::Binary(data) => Ok(Packet::Binary(Cow::Borrowed(data))),
            Input::Line(_) | Input::LineTooLarge | Input::Bytes(_) => Err(engineio::BadPacket),
        };
        let ended = self.with_carried(cx, |session, cx| {
            match packet {
                Ok(packet) => session.on_ws_message(conn, packet, out, cx),
                Err(_) => session.end(session::End::ParseError, cx),
            }
            session.has_ended()
        });
        if ended != Some(false) {
            out.close(self.close_request());
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.session {
            Carried::Own(session) => session.poll_timeout(),
            _ => None,
        }
    }

    fn handle_timeout(&mut self, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        let conn = self.conn;
        let ended = self.with_carried(cx, |session, cx| {
            session.handle_timeout(cx);
            session.flush_to(conn, out);
            session.has_ended()
        });
        if ended != Some(false) {
            out.close(self.close_request());
        }
    }

    fn on_wake(&mut self, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        let conn = self.conn;
        let ended = self.with_carried(cx, |session, _| {
            session.flush_to(conn, out);
            session.has_ended()
        });
        if ended != Some(false) {
            out.close(self.close_request());
        }
    }

    fn on_close(&mut self, cx: &mut AppCtx<'_>) {
        let conn = self.conn;
        self.format = None;
        match std::mem::replace(&mut self.session, Carried::Refused) {
            Carried::Own(mut session) => {
                session.on_ws_closed(conn, cx);
                session.on_close(cx);
            }
            Carried::Upgrade(id) => {
                with_session(cx, id, |session, cx| session.on_ws_closed(conn, cx));
            }
            Carried::Refused => {}
        }
    }

    fn wire_format(&self) -> Option<WireFormat> {
        self.format.copied()
    }
}

/// The Engine.IO test suite's server: every message sent back as it came.
pub struct Echo;

impl Upper for Echo {
    fn on_text(&mut self, text: &str, link: &mut Link<'_>, _cx: &mut AppCtx<'_>) -> Result<(), Refused> {
        link.send_text(text.as_bytes());
        Ok(())
    }

    fn on_binary(&mut self, data: &[u8], link: &mut Link<'_>, _cx: &mut AppCtx<'_>) -> Result<(), Refused> {
        link.send_binary(data);
        Ok(())
    }

    fn close_member(&mut self, _member: MemberId, _link: &mut Link<'_>, _cx: &mut AppCtx<'_>) -> bool {
        false
    }
}
