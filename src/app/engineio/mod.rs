//! Engine.IO 4, the transport under Socket.IO: the handshake, long-polling
//! GETs (held until there is something to say) and POSTs, the WebSocket
//! transport and the upgrade to it. The session itself is in [`session`];
//! what is spoken inside its messages is an [`Upper`] protocol: Socket.IO,
//! or for the protocol test suite an echo.

pub mod session;

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use log::{debug, warn};

use super::{App, AppCtx, CloseRequest, HttpHandler, HttpReply, HttpResponse, Input, Output, WireFormat};
use crate::ids::{ConnId, SessionId};
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

/// Opens a session; returns its id and sid.
fn open_session(flavor: Flavor, ws: Option<ConnId>, cx: &mut AppCtx<'_>) -> Option<(SessionId, String)> {
    let secret = random_secret()?;
    let config = cx.limits.engine;
    let now = cx.now;
    let upper: Box<dyn Upper> = match flavor {
        Flavor::SocketIo => super::socketio::new_upper(now, &config),
        Flavor::Echo => Box::new(Echo),
    };
    let id = cx.sessions.insert_with(secret, |id| Box::new(EngineSession::new(id, ws, config, now, upper)));
    if let Some(ws) = ws {
        cx.sessions.set_carrier(id, Some(ws));
    }
    cx.metrics.engineio_sessions_total += 1;
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
            return match open_session(self.request.flavor, None, cx) {
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
                    session.end(session::End::Closed("payload too large"), cx);
                    return Err(PostError::TooLarge);
                }
                session.on_post(body, cx).map_err(|_| {
                    session.end(session::End::Closed("parse error"), cx);
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
    conn: ConnId,
    /// `None`: the upgrade named no session it could take over; closed on the first wake.
    session: Option<SessionId>,
    /// The deliveries' format once this WebSocket carries the session.
    format: Option<WireFormat>,
}

impl EngineWebSocket {
    pub fn open(flavor: Flavor, sid: Option<&str>, conn: ConnId, cx: &mut AppCtx<'_>) -> EngineWebSocket {
        // The first wake writes the open packet, or closes a refused upgrade.
        cx.wakes.push(conn);
        let Some(sid) = sid else {
            let Some((id, sid)) = open_session(flavor, Some(conn), cx) else {
                return EngineWebSocket { conn, session: None, format: None };
            };
            let packet = open_packet(&sid, false, cx);
            let format = with_session(cx, id, |session, _| {
                session.queue_text(packet.as_bytes());
                session.upper_format()
            })
            .flatten();
            return EngineWebSocket { conn, session: Some(id), format };
        };
        let taken = find_session(cx, sid)
            .filter(|&id| with_session(cx, id, |session, _| session.offer_websocket(conn)) == Some(true));
        if taken.is_none() {
            debug!("engine.io upgrade refused for sid {sid:?}");
        }
        EngineWebSocket { conn, session: taken, format: None }
    }

    /// Catches up with an upgrade completed on this WebSocket.
    fn adopt_format(&mut self, id: SessionId, cx: &mut AppCtx<'_>) {
        if self.format.is_none() && cx.sessions.carrier(id) == Some(self.conn) {
            self.format = with_session(cx, id, |session, _| session.upper_format()).flatten();
        }
    }
}

const SESSION_OVER: CloseRequest = CloseRequest { code: CloseCode::NORMAL, reason: "" };
const TOO_BIG: CloseRequest = CloseRequest { code: CloseCode::TOO_BIG, reason: "over maxPayload" };
const NO_SESSION: CloseRequest = CloseRequest { code: CloseCode::POLICY, reason: "unknown or taken session" };

impl App for EngineWebSocket {
    fn handle_input(&mut self, input: Input<'_>, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        let Some(id) = self.session else {
            out.close(NO_SESSION);
            return;
        };
        let packet = match input {
            Input::Text(text) => engineio::decode_text(text),
            Input::Binary(data) => Ok(Packet::Binary(Cow::Borrowed(data))),
            Input::Line(_) | Input::LineTooLarge => Err(engineio::BadPacket),
        };
        let size = match input {
            Input::Text(text) => text.len(),
            Input::Binary(data) => data.len(),
            Input::Line(_) | Input::LineTooLarge => 0,
        };
        if size > cx.limits.engine.max_payload {
            // As the reference server (its `ws` closes with 1009): the
            // message is dropped and the session closed.
            with_session(cx, id, |session, cx| session.end(session::End::Closed("payload too large"), cx));
            out.close(TOO_BIG);
            return;
        }
        let conn = self.conn;
        let ended = with_session(cx, id, |session, cx| {
            match packet {
                Ok(packet) => session.on_ws_message(conn, packet, out, cx),
                Err(_) => session.end(session::End::Closed("parse error"), cx),
            }
            session.has_ended()
        });
        match ended {
            Some(false) => self.adopt_format(id, cx),
            Some(true) | None => out.close(SESSION_OVER),
        }
    }

    fn on_wake(&mut self, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        let Some(id) = self.session else {
            out.close(NO_SESSION);
            return;
        };
        self.adopt_format(id, cx);
        let conn = self.conn;
        let ended = with_session(cx, id, |session, _| {
            session.flush_to(conn, out);
            session.has_ended()
        });
        if ended != Some(false) {
            out.close(SESSION_OVER);
        }
    }

    fn on_close(&mut self, cx: &mut AppCtx<'_>) {
        if let Some(id) = self.session.take() {
            let conn = self.conn;
            with_session(cx, id, |session, cx| session.on_ws_closed(conn, cx));
        }
    }

    fn wire_format(&self) -> Option<WireFormat> {
        self.format
    }
}

/// The Engine.IO test suite's server: every message sent back as it came.
struct Echo;

impl Upper for Echo {
    fn on_text(&mut self, text: &str, link: &mut Link<'_>, _cx: &mut AppCtx<'_>) -> Result<(), Refused> {
        link.send_text(text.as_bytes());
        Ok(())
    }

    fn on_binary(&mut self, data: &[u8], link: &mut Link<'_>, _cx: &mut AppCtx<'_>) -> Result<(), Refused> {
        link.send_binary(data);
        Ok(())
    }
}

/// When a session's next deadline is, for tests.
#[cfg(test)]
pub fn session_deadline(cx: &mut AppCtx<'_>, id: SessionId) -> Option<std::time::Instant> {
    use crate::app::session::Session as _;
    with_session(cx, id, |session, _| session.poll_timeout()).flatten()
}
