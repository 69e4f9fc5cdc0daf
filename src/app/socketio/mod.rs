//! Socket.IO 5 on an Engine.IO session: namespaces multiplexed on one
//! session, each a member of soket's world (a Socket.IO namespace is the
//! soket namespace of the same name: `/` is the world of legacy TCP, `/ws`
//! and `/legacy`). Reserved events are the requests of the JSON protocol at
//! `/ws`; any other event is relayed to the whole namespace, the sender
//! included, as the Socket.IO chat example's `io.emit` does. See
//! docs/SOCKETIO.md.

mod refresh;
pub mod render;

use std::borrow::Cow;
use std::rc::Rc;
use std::time::Instant;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::engineio::{Link, Refused, Upper, random_id};
use super::json_chat;
use super::tokens::{Cutoff, admit};
use super::{AppCtx, WireFormat};
use crate::chat::{Command, Dialect, Event, MemberId, RawArgs, Request, Tag, normalize_namespace};
use crate::config::EngineConfig;
use crate::proto::socketio::{self, Kind, Packet};

/// Socket.IO packets in Engine.IO messages.
pub static WIRE: WireFormat = WireFormat {
    key: "socketio",
    dialect: Dialect::Events,
    render: |d| render::render(&d.event, &d.namespace, d.offset),
    per_receiver: false,
};

/// The most attachments one packet may announce (socket.io-parser's default).
pub const MAX_ATTACHMENTS: usize = 10;

/// The most namespaces one session may connect at once.
pub const MAX_NAMESPACES: usize = 32;

/// Events that are soket requests rather than relays (PROTOCOL.md §3 types).
const REQUESTS: [&str; 8] = ["hello", "say", "private", "join", "leave", "emit", "who", "rooms"];

impl SocketIo {
    /// The Socket.IO side of a new Engine.IO session.
    pub fn new(now: Instant, config: &EngineConfig) -> SocketIo {
        SocketIo {
            sockets: Sockets::default(),
            connect_deadline: Some(now + config.connect_timeout),
            partial: None,
            deferred: None,
            test_suite: config.test_suite,
        }
    }
}

/// The connected namespaces: almost always one, held without an allocation.
#[derive(Default)]
enum Sockets {
    #[default]
    None,
    One(Socket),
    Many(Vec<Socket>),
}

impl Sockets {
    fn as_slice(&self) -> &[Socket] {
        match self {
            Sockets::None => &[],
            Sockets::One(socket) => std::slice::from_ref(socket),
            Sockets::Many(sockets) => sockets,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Socket] {
        match self {
            Sockets::None => &mut [],
            Sockets::One(socket) => std::slice::from_mut(socket),
            Sockets::Many(sockets) => sockets,
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn push(&mut self, socket: Socket) {
        *self = match std::mem::take(self) {
            Sockets::None => Sockets::One(socket),
            Sockets::One(first) => Sockets::Many(vec![first, socket]),
            Sockets::Many(mut sockets) => {
                sockets.push(socket);
                Sockets::Many(sockets)
            }
        };
    }

    fn remove(&mut self, index: usize) -> Option<Socket> {
        match std::mem::take(self) {
            Sockets::One(socket) if index == 0 => Some(socket),
            Sockets::Many(mut sockets) if index < sockets.len() => {
                let removed = sockets.remove(index);
                *self = Sockets::Many(sockets);
                Some(removed)
            }
            other => {
                *self = other;
                None
            }
        }
    }

    fn drain(&mut self) -> Vec<Socket> {
        match std::mem::take(self) {
            Sockets::None => Vec::new(),
            Sockets::One(socket) => vec![socket],
            Sockets::Many(sockets) => sockets,
        }
    }
}

/// One connected namespace.
struct Socket {
    /// As the client wrote it (and as the hub knows it).
    namespace: Rc<str>,
    /// `None` under the test suite, which has no world.
    member: Option<MemberId>,
    /// When its token runs out (docs/AUTH.md).
    cutoff: Cutoff,
    /// With recovery on, its ids: the key it is parked under when the
    /// session drops.
    ids: Option<Box<SessionIds>>,
}

/// A socket's public id and private session id (connection state recovery).
struct SessionIds {
    sid: Box<str>,
    pid: Box<str>,
}

/// A binary packet waiting for its attachments.
struct Partial {
    text: String,
    expected: usize,
    buffers: Vec<Rc<[u8]>>,
    bytes: usize,
}

pub struct SocketIo {
    sockets: Sockets,
    /// Until a first namespace is connected (the reference `connectTimeout`).
    connect_deadline: Option<Instant>,
    partial: Option<Box<Partial>>,
    /// The test suite's `auth` event and when to send it: a moment after the
    /// CONNECT answer, because the suite's client awaits each message in
    /// turn and would miss a second one that came in the same read.
    deferred: Option<Box<(Instant, Vec<u8>)>>,
    test_suite: bool,
}

/// See [`SocketIo::deferred`].
const TEST_SUITE_SPACING: std::time::Duration = std::time::Duration::from_millis(20);

const PARSE_ERROR: Refused = Refused("parse error");

impl Upper for SocketIo {
    fn on_text(&mut self, text: &str, link: &mut Link<'_>, cx: &mut AppCtx<'_>) -> Result<(), Refused> {
        if self.partial.is_some() {
            // The reference decoder: "got plaintext data when reconstructing a packet".
            return Err(PARSE_ERROR);
        }
        let packet = socketio::decode(text, MAX_ATTACHMENTS).map_err(|_| PARSE_ERROR)?;
        if packet.kind.is_binary() && packet.attachments > 0 {
            let expected = packet.attachments;
            self.partial = Some(Box::new(Partial { text: text.to_owned(), expected, buffers: Vec::new(), bytes: 0 }));
            return Ok(());
        }
        self.dispatch(packet, &[], link, cx)
    }

    fn on_binary(&mut self, data: &[u8], link: &mut Link<'_>, cx: &mut AppCtx<'_>) -> Result<(), Refused> {
        let Some(partial) = self.partial.as_mut() else {
            return Err(Refused("binary data outside a binary packet"));
        };
        partial.bytes += data.len();
        if partial.bytes > cx.limits.engine.max_payload {
            return Err(Refused("attachments over maxPayload"));
        }
        partial.buffers.push(data.into());
        if partial.buffers.len() < partial.expected {
            return Ok(());
        }
        let Some(partial) = self.partial.take() else {
            return Ok(());
        };
        let packet = socketio::decode(&partial.text, MAX_ATTACHMENTS).map_err(|_| PARSE_ERROR)?;
        self.dispatch(packet, &partial.buffers, link, cx)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let expiry = self.sockets.as_slice().iter().filter_map(|socket| socket.cutoff.deadline()).min();
        [self.connect_deadline, self.deferred.as_ref().map(|deferred| deferred.0), expiry].into_iter().flatten().min()
    }

    fn handle_timeout(&mut self, link: &mut Link<'_>, cx: &mut AppCtx<'_>) -> Result<(), Refused> {
        if self.deferred.as_ref().is_some_and(|deferred| deferred.0 <= cx.now)
            && let Some(deferred) = self.deferred.take()
        {
            link.send_text(&deferred.1);
        }
        // A namespace whose token ran out is disconnected by the server,
        // the session and its other namespaces stay (docs/AUTH.md).
        while let Some(index) = self.sockets.as_slice().iter().position(|socket| socket.cutoff.due(cx.now).is_some()) {
            if let Some(socket) = self.sockets.as_mut_slice().get_mut(index) {
                socket.cutoff.fire(cx.now, cx.metrics);
            }
            self.disconnect(index, link, cx);
        }
        match self.connect_deadline {
            Some(deadline) if deadline <= cx.now => Err(Refused("no namespace connected in time")),
            _ => Ok(()),
        }
    }

    fn on_close(&mut self, cx: &mut AppCtx<'_>) {
        for socket in self.sockets.drain() {
            if let Some(member) = socket.member {
                // The transport went away (closed, a missed heartbeat, cut
                // off): the reference's recoverable reasons. A DISCONNECT
                // packet or the server's own disconnect never comes here.
                if let Some(ids) = &socket.ids {
                    cx.hub.park(member, &ids.pid, &ids.sid);
                }
                cx.hub.detach(member, cx.outbox);
            }
        }
    }

    fn close_member(&mut self, member: MemberId, link: &mut Link<'_>, cx: &mut AppCtx<'_>) -> bool {
        // The server's disconnect (`/api/disconnect`): that namespace goes,
        // as the reference's `socket.disconnect()` does; its error is out.
        if let Some(index) = self.sockets.as_slice().iter().position(|socket| socket.member == Some(member)) {
            self.disconnect(index, link, cx);
        }
        true
    }

    fn wire_format(&self) -> Option<&'static WireFormat> {
        (!self.test_suite).then_some(&WIRE)
    }
}

/// The fields of a CONNECT's auth object soket reads.
#[derive(Deserialize)]
struct Auth<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    /// docs/AUTH.md.
    #[serde(borrow, default)]
    token: Option<Cow<'a, str>>,
    /// The client's private session id and last offset, when it comes back
    /// (connection state recovery); anything but strings is ignored, as
    /// the reference server ignores it.
    #[serde(borrow, default)]
    pid: Option<&'a RawValue>,
    #[serde(borrow, default)]
    offset: Option<&'a RawValue>,
}

/// A JSON string's value; `None` for anything else.
fn string_of(raw: Option<&RawValue>) -> Option<String> {
    serde_json::from_str::<String>(raw?.get()).ok()
}

impl SocketIo {
    /// The server disconnects the namespace at `index` (a DISCONNECT packet,
    /// `io server disconnect` on the client, which does not reconnect it);
    /// the session and its other namespaces stay, and nothing is parked.
    fn disconnect(&mut self, index: usize, link: &mut Link<'_>, cx: &mut AppCtx<'_>) {
        let Some(socket) = self.sockets.remove(index) else { return };
        let mut packet = Vec::new();
        socketio::write_header(&mut packet, Kind::Disconnect, 0, &socket.namespace, None);
        link.send_text(&packet);
        if let Some(member) = socket.member {
            cx.hub.detach(member, cx.outbox);
        }
    }

    fn dispatch(
        &mut self,
        packet: Packet<'_>,
        buffers: &[Rc<[u8]>],
        link: &mut Link<'_>,
        cx: &mut AppCtx<'_>,
    ) -> Result<(), Refused> {
        let index = self.sockets.as_slice().iter().position(|s| *s.namespace == *packet.namespace);
        match (packet.kind, index) {
            (Kind::Connect, None) => self.connect(packet.namespace, packet.data, link, cx),
            (Kind::Disconnect, Some(index)) => {
                if let Some(member) = self.sockets.remove(index).and_then(|socket| socket.member) {
                    cx.hub.detach(member, cx.outbox);
                }
            }
            (Kind::Event | Kind::BinaryEvent, Some(index)) => {
                let data = packet.data.ok_or(PARSE_ERROR)?;
                let (name, args) = socketio::event_name(data).map_err(|_| PARSE_ERROR)?;
                if self.test_suite {
                    test_suite_event(&name, data, args, packet.namespace, packet.id, buffers, link);
                } else if let Some(member) = self.sockets.as_slice().get(index).and_then(|s| s.member) {
                    self.event(member, &name, data, args, packet.id, buffers, cx);
                }
            }
            // A second CONNECT, packets for a namespace not connected, acks
            // (soket asks for none) and CONNECT_ERROR from a client: ignored,
            // as the reference server does.
            _ => {}
        }
        Ok(())
    }

    fn connect(&mut self, raw: &str, auth: Option<&str>, link: &mut Link<'_>, cx: &mut AppCtx<'_>) {
        let known = if self.test_suite {
            matches!(raw, "/" | "/custom")
        } else {
            // The client matches answers by the exact string, so a name whose
            // NFC differs from what was sent is refused rather than renamed.
            raw == "/" || raw.strip_prefix('/').and_then(normalize_namespace).is_some_and(|ns| ns == raw)
        };
        if !known {
            link.send_text(&socketio::connect_error(raw, "Invalid namespace", None));
            return;
        }
        if self.sockets.len() >= MAX_NAMESPACES {
            link.send_text(&socketio::connect_error(raw, "Too many namespaces", None));
            return;
        }
        let Some(sid) = random_id() else {
            link.send_text(&socketio::connect_error(raw, "Server error", None));
            return;
        };
        let auth = auth.unwrap_or("{}");
        if self.test_suite {
            self.connect_deadline = None;
            self.sockets.push(Socket { namespace: raw.into(), member: None, cutoff: Cutoff::default(), ids: None });
            link.send_text(&socketio::connect_ok(raw, &sid, None));
            let mut packet = Vec::with_capacity(16 + auth.len());
            socketio::write_header(&mut packet, Kind::Event, 0, raw, None);
            packet.extend_from_slice(br#"["auth","#);
            packet.extend_from_slice(auth.as_bytes());
            packet.push(b']');
            // Another CONNECT came first: its auth goes now.
            if let Some(earlier) = self.deferred.take() {
                link.send_text(&earlier.1);
            }
            self.deferred = Some(Box::new((cx.now + TEST_SUITE_SPACING, packet)));
            return;
        }
        let (name, token, back) = match serde_json::from_str::<Auth<'_>>(auth) {
            Ok(auth) => (auth.name, auth.token, string_of(auth.pid).zip(string_of(auth.offset))),
            Err(_) => {
                let data = r#"{"code":"name_invalid"}"#;
                link.send_text(&socketio::connect_error(raw, "auth.name must be a string", Some(data)));
                return;
            }
        };
        let member = cx.hub.attach(link.endpoint(), WIRE.dialect, raw);
        let mut cutoff = Cutoff::default();
        let name = if cx.hub.token_verifier().is_some() {
            // docs/AUTH.md: `auth.token`, refused as the reference server
            // refuses a connection its middleware rejects.
            let admitted = token.is_some_and(|token| admit(cx, member, token.as_bytes(), &mut cutoff).is_ok());
            if !admitted {
                cx.hub.detach(member, cx.outbox);
                let data = r#"{"code":"unauthorized"}"#;
                link.send_text(&socketio::connect_error(raw, "unauthorized", Some(data)));
                return;
            }
            name.or_else(|| cx.hub.granted_name(member).map(|granted| Cow::Owned(granted.to_owned())))
        } else {
            name
        };
        if let Some(name) = name {
            let mark = cx.outbox.deliveries.len();
            cx.hub.handle(member, Request::new(Command::Hello { name }), cx.outbox);
            if let Some((code, message)) = refusal(&cx.outbox.deliveries[mark..], member) {
                // The name was refused: the connect is, with the same error.
                cx.outbox.deliveries.truncate(mark);
                cx.hub.detach(member, cx.outbox);
                let data = format!(r#"{{"code":"{code}"}}"#);
                link.send_text(&socketio::connect_error(raw, &message, Some(&data)));
                return;
            }
        }
        if !cx.hub.is_registered(member) {
            cx.hub.listen(member);
        }
        self.connect_deadline = None;
        let namespace = cx.hub.namespace_of(member).unwrap_or_else(|| raw.into());
        let (ids, missed) = match cx.hub.recovery_on() {
            true => recover(member, &sid, back, cx),
            false => (None, Vec::new()),
        };
        let (sid, pid) = match &ids {
            Some(ids) => (&*ids.sid, Some(&*ids.pid)),
            None => (sid.as_str(), None),
        };
        link.send_text(&socketio::connect_ok(raw, sid, pid));
        // What it missed comes right after the CONNECT, before anything new.
        for (offset, event) in missed {
            if let Some(rendered) = render::render(&event, raw, Some(offset)) {
                link.send_rendered(&rendered);
            }
        }
        self.sockets.push(Socket { namespace, member: Some(member), cutoff, ids });
    }

    /// A client's event in the chat world: a soket request, or a relay.
    #[allow(clippy::too_many_arguments)]
    fn event(
        &mut self,
        member: MemberId,
        name: &str,
        data: &str,
        args: Option<usize>,
        id: Option<u64>,
        buffers: &[Rc<[u8]>],
        cx: &mut AppCtx<'_>,
    ) {
        let tag = id.map(|id| Tag::from(id.to_string()));
        // The decoder checked the array already.
        let items: Vec<&RawValue> = serde_json::from_str(data).unwrap_or_default();
        if name == refresh::EVENT
            && refresh::handle(&mut self.sockets, member, items.get(1).map(|r| r.get()), tag.clone(), cx)
        {
            return;
        }
        if REQUESTS.contains(&name) {
            request(member, name, items.get(1).map(|raw| raw.get()), tag, cx);
            return;
        }
        // `/ws` users get one `data`: the only argument, or all of them as
        // an array; binary arguments as base64 strings.
        let single = match items.get(1..).unwrap_or_default() {
            [] => None,
            [only] => Some(only.get().to_owned()),
            _ => socketio::arguments(data, args).map(|rest| format!("[{rest}]")),
        };
        let single = match single {
            Some(text) if !buffers.is_empty() => socketio::inline_attachments(&text, buffers),
            other => other,
        };
        let args = Rc::new(RawArgs { json: Rc::from(data), binary: buffers.iter().cloned().collect() });
        let relay = Command::Relay { event: Cow::Borrowed(name), data: single.map(Cow::Owned), args };
        cx.hub.handle(member, Request { command: relay, tag }, cx.outbox);
    }
}

/// With recovery on: the socket and private session ids a connecting
/// member gets, and what it missed. A registered member that comes `back`
/// (pid and offset) in time gets its old ids and rooms again (docs/SOCKETIO.md);
/// otherwise, and for an anonymous listener, which is never parked, a new pid.
fn recover(
    member: MemberId,
    sid: &str,
    back: Option<(String, String)>,
    cx: &mut AppCtx<'_>,
) -> (Option<Box<SessionIds>>, Vec<(u64, Event)>) {
    if let Some((pid, offset)) = back
        && cx.hub.is_registered(member)
    {
        match cx.hub.resume(member, &pid, &offset, cx.outbox) {
            Ok(resumed) => return (Some(Box::new(SessionIds { sid: resumed.sid, pid: pid.into() })), resumed.missed),
            Err(why) => log::debug!("event=socketio_not_recovered reason={why:?}"),
        }
    }
    let ids = random_id().map(|pid| Box::new(SessionIds { sid: sid.into(), pid: pid.into() }));
    (ids, Vec::new())
}

/// A reserved event as the `/ws` request of the same type: its first
/// argument is the request object without `type` (none is `{}`).
fn request(member: MemberId, name: &str, first: Option<&str>, tag: Option<Tag>, cx: &mut AppCtx<'_>) {
    let object = first.unwrap_or("{}");
    let max = cx.limits.decoder.max_message_bytes;
    let registered = cx.hub.is_registered(member);
    let parsed = match object.strip_prefix('{') {
        Some(inner) => {
            let text = if inner.trim_start().starts_with('}') {
                format!(r#"{{"type":"{name}"}}"#)
            } else {
                format!(r#"{{"type":"{name}",{inner}"#)
            };
            json_chat::parse::parse(&text, max, registered).map(Request::into_owned)
        }
        None => Err(crate::chat::Rejection::with(crate::chat::ChatError::BadJson, "the argument must be an object")),
    };
    match parsed {
        Ok(mut request) => {
            request.tag = tag;
            cx.hub.handle(member, request, cx.outbox);
        }
        Err(rejection) => cx.hub.reject(member, rejection.error, rejection.detail.as_deref(), tag, cx.outbox),
    }
}

/// The error code and message of a refusal the hub just sent `member`.
fn refusal(deliveries: &[crate::chat::Delivery], member: MemberId) -> Option<(&'static str, String)> {
    deliveries.iter().find_map(|delivery| match &delivery.event {
        Event::Error { error, detail, .. } if delivery.recipients.iter().any(|r| r.member == member) => {
            Some((error.code(), error.describe(detail.as_deref())))
        }
        _ => None,
    })
}

/// The protocol test suite's handlers: `message` answered with
/// `message-back` and the same arguments, `message-with-ack` acked with them.
fn test_suite_event(
    name: &str,
    data: &str,
    args: Option<usize>,
    namespace: &str,
    id: Option<u64>,
    buffers: &[Rc<[u8]>],
    link: &mut Link<'_>,
) {
    let rest = socketio::arguments(data, args);
    let binary = !buffers.is_empty();
    let mut packet = Vec::with_capacity(data.len() + 32);
    match (name, id) {
        ("message", _) => {
            let kind = if binary { Kind::BinaryEvent } else { Kind::Event };
            socketio::write_header(&mut packet, kind, buffers.len(), namespace, None);
            packet.extend_from_slice(br#"["message-back""#);
            if let Some(rest) = rest {
                packet.push(b',');
                packet.extend_from_slice(rest.as_bytes());
            }
        }
        ("message-with-ack", Some(id)) => {
            let kind = if binary { Kind::BinaryAck } else { Kind::Ack };
            socketio::write_header(&mut packet, kind, buffers.len(), namespace, Some(id));
            packet.push(b'[');
            packet.extend_from_slice(rest.unwrap_or("").as_bytes());
        }
        _ => return,
    }
    packet.push(b']');
    link.send_text(&packet);
    for buffer in buffers {
        link.send_binary(buffer);
    }
}
