//! One Engine.IO session: its transport (long-polling, a WebSocket being
//! probed, then the WebSocket), the packets waiting for the next poll, the
//! heartbeat, and the protocol above it ([`Upper`]: Socket.IO, or the test
//! suite's echo). It lives in the reactor's session table and outlives the
//! TCP connections that carry it.

use std::any::Any;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use log::debug;

use super::Protocol;
use crate::app::render::Rendered;
use crate::app::session::Session;
use crate::app::{AppCtx, Output, WireFormat};
use crate::chat::{Event, MemberId};
use crate::config::EngineConfig;
use crate::ids::{ConnId, Endpoint, SessionId};
use crate::proto::engineio::{self, Packet, PacketType};

/// The most packets one long-polling answer carries: python-engineio's
/// client drops a payload of more than 16.
pub const MAX_PACKETS_PER_POLL: usize = 16;

/// The protocol spoken inside Engine.IO messages.
pub trait Upper {
    /// A text message from the client. `Err` ends the session (a parse error).
    fn on_text(&mut self, text: &str, link: &mut Link<'_>, cx: &mut AppCtx<'_>) -> Result<(), Refused>;

    /// A binary message from the client.
    fn on_binary(&mut self, data: &[u8], link: &mut Link<'_>, cx: &mut AppCtx<'_>) -> Result<(), Refused>;

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _link: &mut Link<'_>, _cx: &mut AppCtx<'_>) -> Result<(), Refused> {
        Ok(())
    }

    /// The session is over: leave whatever was joined.
    fn on_close(&mut self, _cx: &mut AppCtx<'_>) {}

    /// The hub ends `member`, one of the session's; `false`: the session
    /// ends. No default: a protocol that forwards to another must forward it.
    fn close_member(&mut self, member: MemberId, link: &mut Link<'_>, cx: &mut AppCtx<'_>) -> bool;

    /// The format of the hub deliveries this protocol receives.
    fn wire_format(&self) -> Option<&'static WireFormat> {
        None
    }
}

/// Why an upper protocol ends its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused(pub &'static str);

/// A packet waiting for a carrier, in its text form (type digit first) or
/// as a binary message.
enum Queued {
    Text(Rc<[u8]>),
    Binary(Rc<[u8]>),
}

impl Queued {
    fn len(&self) -> usize {
        match self {
            Queued::Text(b) | Queued::Binary(b) => b.len(),
        }
    }
}

/// Where an upper protocol's messages go: straight into the WebSocket that
/// carries the session, or into its queue for the next poll.
pub struct Link<'a> {
    endpoint: Endpoint,
    target: Target<'a>,
}

enum Target<'a> {
    Queue(&'a mut Outgoing),
    Direct(&'a mut dyn Output),
}

impl Link<'_> {
    /// Where the session is reached: a hub member's endpoint.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    /// Sends one message (`4` and `payload`).
    pub fn send_text(&mut self, payload: &[u8]) {
        let mut packet = Vec::with_capacity(payload.len() + 1);
        packet.push(PacketType::Message.digit());
        packet.extend_from_slice(payload);
        match &mut self.target {
            Target::Queue(outgoing) => outgoing.push(Queued::Text(packet.into())),
            Target::Direct(out) => out.send_text(&packet),
        }
    }

    /// Sends an event rendered for deliveries (its `4` included) and its
    /// attachments.
    pub fn send_rendered(&mut self, rendered: &Rendered) {
        let payload = rendered.payload(None);
        match &mut self.target {
            Target::Queue(outgoing) => outgoing.push(Queued::Text(payload.into())),
            Target::Direct(out) => out.send_text(&payload),
        }
        for attachment in rendered.attachments.iter().flat_map(|a| a.iter()) {
            self.send_binary(attachment);
        }
    }

    /// Sends one binary message.
    pub fn send_binary(&mut self, data: &[u8]) {
        match &mut self.target {
            Target::Queue(outgoing) => outgoing.push(Queued::Binary(data.into())),
            Target::Direct(out) => out.send_binary(data),
        }
    }
}

/// The packets no carrier has taken yet, and their size. Allocated only
/// while there are some: an idle WebSocket session keeps one pointer.
#[derive(Default)]
struct Outgoing(Option<Box<Queue>>);

#[derive(Default)]
struct Queue {
    packets: VecDeque<Queued>,
    bytes: usize,
}

impl Outgoing {
    fn push(&mut self, packet: Queued) {
        let queue = self.0.get_or_insert_with(Box::default);
        queue.bytes += packet.len();
        queue.packets.push_back(packet);
    }

    fn pop(&mut self) -> Option<Queued> {
        let queue = self.0.as_mut()?;
        let packet = queue.packets.pop_front();
        match &packet {
            Some(packet) => queue.bytes -= packet.len(),
            None => self.0 = None,
        }
        packet
    }

    fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|queue| queue.packets.is_empty())
    }

    fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |queue| queue.bytes)
    }
}

/// How the session ended (a held poll gets a noop after the client's own
/// close, a close packet otherwise). One byte, the reason logged once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The client sent `1`.
    ClientClosed,
    ParseError,
    /// A message or POST over maxPayload.
    TooLarge,
    /// A poller whose queue passed --max-queued.
    SlowReader,
    OverlappingPolls,
    PingTimeout,
    /// The WebSocket carrying the session is gone.
    TransportClose,
    /// The upper protocol ended it (a connect timeout, a refused packet).
    Refused,
    ServerShutdown,
}

/// Who carries the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Polling,
    /// Polling still, while a WebSocket is probed.
    Probing(ConnId),
    WebSocket(ConnId),
}

pub struct EngineSession {
    /// The session in the table, or the connection whose app holds it (a
    /// WebSocket session from the start lives and ends with its connection).
    endpoint: Endpoint,
    transport: Transport,
    /// The GET held until there is something to answer.
    poll: Option<ConnId>,
    outgoing: Outgoing,
    /// The next ping, or with `awaiting_pong` the cut if its pong has not come.
    heartbeat_at: Instant,
    awaiting_pong: bool,
    end: Option<End>,
    upper: Protocol,
}

impl EngineSession {
    /// A session opened by a polling GET (in the table as `Endpoint::Session`),
    /// or by a WebSocket (`Endpoint::Conn`) that carries it from the start.
    pub fn new(endpoint: Endpoint, config: &EngineConfig, now: Instant, upper: Protocol) -> Self {
        let transport = match endpoint {
            Endpoint::Conn(ws) => Transport::WebSocket(ws),
            Endpoint::Session(_) => Transport::Polling,
        };
        EngineSession {
            endpoint,
            transport,
            poll: None,
            outgoing: Outgoing::default(),
            heartbeat_at: now + config.ping_interval,
            awaiting_pong: false,
            end: None,
            upper,
        }
    }

    pub fn is_upgraded(&self) -> bool {
        matches!(self.transport, Transport::WebSocket(_))
    }

    pub fn has_websocket(&self) -> bool {
        !matches!(self.transport, Transport::Polling)
    }

    pub fn has_ended(&self) -> bool {
        self.end.is_some()
    }

    /// The upper protocol's delivery format once a WebSocket carries the session.
    pub fn upper_format(&self) -> Option<&'static WireFormat> {
        self.upper.wire_format()
    }

    /// Queues a packet for the carrier (the open packet of a new WebSocket session).
    pub fn queue_text(&mut self, packet: &[u8]) {
        self.outgoing.push(Queued::Text(packet.into()));
    }

    /// Ends the session; its carriers are woken to answer or close.
    pub fn end(&mut self, end: End, cx: &mut AppCtx<'_>) {
        if self.end.is_some() {
            return;
        }
        debug!("engine.io session {:?} ends: {end:?}", self.endpoint);
        self.end = Some(end);
        self.wake_carriers(cx);
    }

    fn wake_carriers(&self, cx: &mut AppCtx<'_>) {
        if let Some(poll) = self.poll {
            cx.wakes.push(poll);
        }
        if let Transport::WebSocket(ws) | Transport::Probing(ws) = self.transport {
            cx.wakes.push(ws);
        }
    }

    /// Wakes whoever takes the queued packets now.
    fn wake_reader(&self, cx: &mut AppCtx<'_>) {
        match self.transport {
            Transport::WebSocket(ws) => cx.wakes.push(ws),
            _ => {
                if let Some(poll) = self.poll {
                    cx.wakes.push(poll);
                }
            }
        }
    }

    /// A slow poller must not grow the queue without bound.
    fn check_backlog(&mut self, cx: &mut AppCtx<'_>) {
        if self.outgoing.bytes() > cx.limits.max_queued_bytes {
            cx.metrics.slow_consumer_disconnects_total += 1;
            self.end(End::SlowReader, cx);
        }
    }

    /// Runs one packet from the client. `direct` is the WebSocket the
    /// packet came on, when it is the transport (answers go straight to it).
    fn on_packet(
        &mut self,
        packet: Packet<'_>,
        from_ws: Option<ConnId>,
        direct: Option<&mut dyn Output>,
        cx: &mut AppCtx<'_>,
    ) {
        match packet {
            Packet::Pong(_) => {
                self.awaiting_pong = false;
                self.heartbeat_at = cx.now + cx.limits.engine.ping_interval;
            }
            Packet::Ping(data) => {
                // A probe on the WebSocket being tried; clients of protocol 4
                // send no other ping.
                if let (Some(ws), Some(out), Transport::Probing(probe)) = (from_ws, direct, self.transport)
                    && ws == probe
                    && data == "probe"
                {
                    out.send_text(b"3probe");
                    // The held GET ends with a noop, so the client can pause polling.
                    if let Some(poll) = self.poll {
                        cx.wakes.push(poll);
                    }
                }
            }
            Packet::Control(PacketType::Upgrade) => {
                if let (Some(ws), Transport::Probing(probe)) = (from_ws, self.transport)
                    && ws == probe
                {
                    self.transport = Transport::WebSocket(ws);
                    if let Endpoint::Session(id) = self.endpoint {
                        cx.sessions.set_carrier(id, Some(ws));
                    }
                    if let Some(poll) = self.poll {
                        cx.wakes.push(poll);
                    }
                    // What waited for a poll now goes on the WebSocket.
                    cx.wakes.push(ws);
                }
            }
            Packet::Control(PacketType::Close) => self.end(End::ClientClosed, cx),
            Packet::Control(_) => {}
            Packet::Text(text) => {
                let result = self.with_link(direct, cx, |upper, link, cx| upper.on_text(text, link, cx));
                self.after_upper(result, cx);
            }
            Packet::Binary(data) => {
                let result = self.with_link(direct, cx, |upper, link, cx| upper.on_binary(&data, link, cx));
                self.after_upper(result, cx);
            }
        }
    }

    fn with_link<R>(
        &mut self,
        direct: Option<&mut dyn Output>,
        cx: &mut AppCtx<'_>,
        act: impl FnOnce(&mut dyn Upper, &mut Link<'_>, &mut AppCtx<'_>) -> R,
    ) -> R {
        let target = match direct {
            Some(out) => {
                // Anything queued before goes first.
                drain_into(&mut self.outgoing, out);
                Target::Direct(out)
            }
            None => Target::Queue(&mut self.outgoing),
        };
        let mut link = Link { endpoint: self.endpoint, target };
        act(&mut self.upper, &mut link, cx)
    }

    fn after_upper(&mut self, result: Result<(), Refused>, cx: &mut AppCtx<'_>) {
        if let Err(Refused(why)) = result {
            debug!("engine.io session {:?}: {why}", self.endpoint);
            self.end(End::Refused, cx);
            return;
        }
        if !self.outgoing.is_empty() {
            self.wake_reader(cx);
            self.check_backlog(cx);
        }
    }

    /// A POST body's packets.
    pub fn on_post(&mut self, body: &[u8], cx: &mut AppCtx<'_>) -> Result<(), engineio::BadPacket> {
        // Each packet costs at least a byte and a separator: this bounds the
        // list by the body, which --engineio-max-payload bounds.
        let packets = engineio::decode_payload(body, body.len() / 2 + 1)?;
        for packet in packets {
            if self.end.is_some() {
                break;
            }
            self.on_packet(packet, None, None, cx);
        }
        Ok(())
    }

    /// A WebSocket message on `ws`.
    pub fn on_ws_message(&mut self, ws: ConnId, packet: Packet<'_>, out: &mut dyn Output, cx: &mut AppCtx<'_>) {
        match self.transport {
            Transport::WebSocket(carrier) if carrier == ws => self.on_packet(packet, Some(ws), Some(out), cx),
            // Before the upgrade, only the probe and the upgrade come on the WebSocket.
            Transport::Probing(probe) if probe == ws && matches!(packet, Packet::Ping(_) | Packet::Control(_)) => {
                self.on_packet(packet, Some(ws), Some(out), cx)
            }
            _ => {}
        }
    }

    /// A WebSocket asks to take the session over (`?sid=` on the upgrade):
    /// it may probe unless one already does or did.
    pub fn offer_websocket(&mut self, ws: ConnId) -> bool {
        if self.transport != Transport::Polling || self.end.is_some() {
            return false;
        }
        self.transport = Transport::Probing(ws);
        true
    }

    /// The WebSocket `ws` is gone.
    pub fn on_ws_closed(&mut self, ws: ConnId, cx: &mut AppCtx<'_>) {
        match self.transport {
            Transport::WebSocket(carrier) if carrier == ws => {
                if let Endpoint::Session(id) = self.endpoint {
                    cx.sessions.set_carrier(id, None);
                }
                self.end(End::TransportClose, cx);
            }
            // A failed probe: polling goes on.
            Transport::Probing(probe) if probe == ws => self.transport = Transport::Polling,
            _ => {}
        }
    }

    /// Writes what is queued into the WebSocket carrying the session.
    pub fn flush_to(&mut self, ws: ConnId, out: &mut dyn Output) {
        if self.transport == Transport::WebSocket(ws) {
            drain_into(&mut self.outgoing, out);
        }
    }

    /// A GET on `conn`: the answer now, or `None` to hold it.
    pub fn poll(&mut self, conn: ConnId, cx: &mut AppCtx<'_>) -> Result<Option<Vec<u8>>, engineio::RequestError> {
        if self.is_upgraded() {
            return Err(engineio::RequestError::BadRequest);
        }
        if let Some(held) = self.poll
            && held != conn
        {
            // Two GETs at once: the reference server closes the session;
            // the held one ends with a close packet.
            self.end(End::OverlappingPolls, cx);
            return Err(engineio::RequestError::BadRequest);
        }
        self.poll = Some(conn);
        Ok(self.answer_poll())
    }

    /// What the held GET answers now, if anything; it is released when it does.
    pub fn answer_poll(&mut self) -> Option<Vec<u8>> {
        let answer = match self.end {
            Some(End::ClientClosed) => Some(vec![PacketType::Noop.digit()]),
            Some(_) => Some(vec![PacketType::Close.digit()]),
            None if !self.outgoing.is_empty() => {
                let mut payload = Vec::new();
                for _ in 0..MAX_PACKETS_PER_POLL {
                    match self.outgoing.pop() {
                        Some(Queued::Text(packet)) => engineio::push_text_record(&mut payload, &packet),
                        Some(Queued::Binary(data)) => engineio::push_binary_record(&mut payload, &data),
                        None => break,
                    }
                }
                Some(payload)
            }
            // A WebSocket is being probed, or took over: the poll ends empty.
            None if self.has_websocket() => Some(vec![PacketType::Noop.digit()]),
            None => None,
        };
        if answer.is_some() {
            self.poll = None;
        }
        answer
    }

    /// The held GET's connection is gone.
    pub fn poll_closed(&mut self, conn: ConnId) {
        if self.poll == Some(conn) {
            self.poll = None;
        }
    }
}

fn drain_into(outgoing: &mut Outgoing, out: &mut dyn Output) {
    while let Some(packet) = outgoing.pop() {
        match packet {
            Queued::Text(text) => out.send_text(&text),
            Queued::Binary(data) => out.send_binary(&data),
        }
    }
}

impl Session for EngineSession {
    fn poll_timeout(&self) -> Option<Instant> {
        if self.end.is_some() {
            return None;
        }
        Some(self.upper.poll_timeout().map_or(self.heartbeat_at, |t| t.min(self.heartbeat_at)))
    }

    fn handle_timeout(&mut self, cx: &mut AppCtx<'_>) {
        let now = cx.now;
        if self.heartbeat_at <= now && self.awaiting_pong {
            self.end(End::PingTimeout, cx);
            return;
        }
        if self.heartbeat_at <= now {
            self.awaiting_pong = true;
            self.heartbeat_at = now + cx.limits.engine.ping_timeout;
            self.outgoing.push(Queued::Text(Rc::from(&[PacketType::Ping.digit()][..])));
            self.wake_reader(cx);
        }
        if self.upper.poll_timeout().is_some_and(|t| t <= now) {
            let result = self.with_link(None, cx, |upper, link, cx| upper.handle_timeout(link, cx));
            self.after_upper(result, cx);
        }
    }

    fn close_member(&mut self, member: MemberId, cx: &mut AppCtx<'_>) -> bool {
        let closed = self.with_link(None, cx, |upper, link, cx| upper.close_member(member, link, cx));
        self.after_upper(Ok(()), cx);
        closed
    }

    fn is_finished(&self) -> bool {
        // A held GET is answered before the session leaves the table.
        self.end.is_some() && self.poll.is_none()
    }

    fn on_close(&mut self, cx: &mut AppCtx<'_>) {
        cx.metrics.engineio_session_closed();
        if self.end.is_none() {
            // Shutdown: the carriers are closing anyway.
            self.end = Some(End::ServerShutdown);
        }
        self.upper.on_close(cx);
    }

    fn wire_format(&self) -> Option<WireFormat> {
        self.upper.wire_format().copied()
    }

    fn deliver(
        &mut self,
        _member: MemberId,
        _event: &Event,
        rendered: &Rendered,
        omit: Option<u32>,
        cx: &mut AppCtx<'_>,
    ) {
        if self.end.is_some() {
            return;
        }
        self.outgoing.push(Queued::Text(rendered.payload(omit).into()));
        for attachment in rendered.attachments.iter().flat_map(|a| a.iter()) {
            self.outgoing.push(Queued::Binary(attachment.clone()));
        }
        self.wake_reader(cx);
        self.check_backlog(cx);
    }
}

/// Runs `act` on the Engine.IO session `id` (lent out of the table and put
/// back); `None` if there is no such session.
pub fn with_session<R>(
    cx: &mut AppCtx<'_>,
    id: SessionId,
    act: impl FnOnce(&mut EngineSession, &mut AppCtx<'_>) -> R,
) -> Option<R> {
    let mut session = cx.sessions.lend(id)?;
    let any: &mut dyn Any = session.as_mut();
    let result = any.downcast_mut::<EngineSession>().map(|engine| act(engine, cx));
    cx.sessions.restore(id, session);
    result
}
