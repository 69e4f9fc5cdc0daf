//! STOMP 1.0–1.2 as a broker in soket's world, the same over a WebSocket
//! at `/stomp`, over raw TCP on the main port and over SockJS: the CONNECT
//! `login` is the user's name, `/topic/ROOM` is room ROOM, `/user/NAME` a
//! private message, and hub events arrive as MESSAGE frames. See
//! docs/STOMP.md for the mapping; the frame codec is [`crate::proto::stomp`].

pub mod render;
pub mod subscriptions;

use std::rc::Rc;
use std::time::{Duration, Instant};

use log::debug;

use super::render::Rendered;
use super::tokens::{Cutoff, admit, refresh};
use super::{App, AppCtx, CloseRequest, Input, Output, Part, WireFormat};
use crate::chat::{ChatError, Command as ChatCommand, Dialect, Event, MemberId, Request, normalize_room};
use crate::config::StompConfig;
use crate::ids::Endpoint;
use crate::proto::stomp::{
    self, Command, Decoder, Event as StompEvent, Frame, HeartBeat, SUPPORTED_VERSIONS, StompError, Version,
};
use crate::proto::ws::CloseCode;
use render::{TOPIC_PREFIX, USER_PREFIX};
use subscriptions::{AckMode, Subscription, Target};

/// MESSAGE frames; each receiver writes its own head before the shared rest.
pub static WIRE: WireFormat = WireFormat {
    key: "stomp",
    dialect: Dialect::Events,
    render: |d| render::render(&d.event, &d.namespace),
    per_receiver: true,
};

/// The namespace STOMP users are in: the world of legacy TCP and `/ws`.
const NAMESPACE: &str = "/";

/// The `server` header of CONNECTED.
const SERVER: &str = concat!("soket/", env!("CARGO_PKG_VERSION"));

/// How the connection ends after an ERROR frame (STOMP says close; the
/// WebSocket close says nothing more than the ERROR did).
const AFTER_ERROR: CloseRequest = CloseRequest { code: CloseCode::NORMAL, reason: "stomp error" };

/// A quiet decoder keeps at most this much buffer between frames.
const KEEP_DECODER_BYTES: usize = 64 * 1024;

/// What carries a STOMP connection's frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carried {
    /// A WebSocket at `/stomp`: frames in text (or binary) messages.
    WebSocket,
    /// Raw TCP on the main port: one byte stream.
    RawTcp,
    /// SockJS messages: text only.
    SockJs,
}

/// Where the connection is in STOMP's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for CONNECT (or STOMP) until the deadline.
    Connecting {
        deadline: Instant,
    },
    /// CONNECT came; the name claim waits for the directory.
    Claiming,
    Connected,
    /// An ERROR or DISCONNECT ended it: nothing more is read.
    Ended,
}

/// One STOMP client.
pub struct Stomp {
    decoder: Decoder,
    broker: Broker,
}

/// A frame held in a transaction until its COMMIT.
struct Held {
    command: Command,
    destination: Option<Box<str>>,
    /// The ACK/NACK's message id; a SEND's body.
    id: Option<u64>,
    body: Box<[u8]>,
}

struct Transaction {
    id: Box<str>,
    deadline: Instant,
    frames: Vec<Held>,
}

/// Everything but the decoder, so frames borrowed from the decoder can be
/// handled with the rest mutable.
struct Broker {
    endpoint: Endpoint,
    carried: Carried,
    config: StompConfig,
    phase: Phase,
    version: Version,
    member: Option<MemberId>,
    name: Option<Rc<str>>,
    subscriptions: Vec<Subscription>,
    transactions: Vec<Transaction>,
    /// Body bytes the open transactions hold, at most `max_held_bytes`.
    held_bytes: usize,
    /// `--max-queued`: a connection's transactions may hold no more than its
    /// unsent output may (frames and their count alone would allow
    /// `--max-message` times transactions times frames, gigabytes).
    max_held_bytes: usize,
    next_message_id: u64,
    /// When to send a heart-beat, and how often.
    send_every: Option<Duration>,
    next_send: Option<Instant>,
    /// How long the client may stay silent, and since when it has.
    expect_every: Option<Duration>,
    last_received: Instant,
    /// A token from the WebSocket upgrade, and when the connection's token
    /// runs out (docs/AUTH.md).
    upgrade_token: Option<Box<str>>,
    cutoff: Cutoff,
}

impl Stomp {
    /// A STOMP client on `endpoint`; it has until the handshake timeout to CONNECT.
    pub fn open(endpoint: Endpoint, carried: Carried, cx: &mut AppCtx<'_>) -> Stomp {
        let config = cx.limits.stomp;
        Stomp {
            decoder: Decoder::new(config.frames),
            broker: Broker {
                endpoint,
                carried,
                config,
                phase: Phase::Connecting { deadline: cx.now + config.connect_timeout },
                version: Version::V1_2,
                member: None,
                name: None,
                subscriptions: Vec::new(),
                transactions: Vec::new(),
                held_bytes: 0,
                max_held_bytes: cx.limits.max_queued_bytes,
                next_message_id: 0,
                send_every: None,
                next_send: None,
                expect_every: None,
                last_received: cx.now,
                upgrade_token: None,
                cutoff: Cutoff::default(),
            },
        }
    }

    /// The token of the WebSocket upgrade, used when CONNECT carries none.
    pub fn with_token(mut self, token: Option<&str>) -> Stomp {
        self.broker.upgrade_token = token.map(Box::from);
        self
    }
}

impl App for Stomp {
    fn handle_input(&mut self, input: Input<'_>, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        let bytes = match input {
            Input::Text(text) => text.as_bytes(),
            Input::Binary(bytes) | Input::Bytes(bytes) | Input::Line(bytes) => bytes,
            Input::LineTooLarge => return,
        };
        let Stomp { decoder, broker } = self;
        if broker.phase == Phase::Ended {
            return;
        }
        broker.last_received = cx.now;
        let mut rest = bytes;
        // Frame by frame: a version a CONNECT agrees governs how the frames
        // after it are unescaped, those pipelined behind it in this input too.
        while !rest.is_empty() && broker.phase != Phase::Ended {
            let result = decoder.decode_frame(&mut rest, |event| {
                if let StompEvent::Frame(frame) = event {
                    broker.on_frame(&frame, cx, out);
                }
            });
            decoder.set_version(broker.version);
            if let Err(error) = result {
                broker.protocol_error(error, out);
                break;
            }
        }
        if decoder.is_idle() && decoder.buffer_capacity() > KEEP_DECODER_BYTES {
            decoder.release_idle_memory();
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.broker.poll_timeout()
    }

    fn handle_timeout(&mut self, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        self.broker.handle_timeout(cx.now, cx.metrics, out);
        if self.decoder.is_idle() {
            // A connection between frames at its heart-beat holds no buffer.
            self.decoder.release_idle_memory();
        }
    }

    fn deliver(&mut self, event: &Event, rendered: &Rendered, _omit: Option<u32>, out: &mut dyn Output) {
        self.broker.deliver(event, rendered, out);
    }

    fn on_close(&mut self, cx: &mut AppCtx<'_>) {
        self.broker.phase = Phase::Ended;
        if let Some(member) = self.broker.member.take() {
            cx.hub.detach(member, cx.outbox);
        }
    }

    fn wire_format(&self) -> Option<WireFormat> {
        Some(WIRE)
    }
}

/// A refusal of one request: the hub's error, or the broker's own.
struct Refusal {
    code: &'static str,
    message: String,
}

impl Refusal {
    fn chat(error: ChatError, detail: Option<&str>) -> Refusal {
        Refusal { code: error.code(), message: error.describe(detail) }
    }

    fn new(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal { code, message: message.into() }
    }
}

impl Broker {
    fn on_frame(&mut self, frame: &Frame<'_>, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        let receipt = frame.header("receipt");
        match (self.phase, frame.command) {
            (Phase::Ended, _) => {}
            (Phase::Connecting { .. }, Command::Connect | Command::Stomp) => self.connect(frame, cx, out),
            (Phase::Connecting { .. }, _) => self.fatal("expected a CONNECT frame first", receipt, out),
            (_, Command::Connect | Command::Stomp) => self.fatal("already connected", receipt, out),
            (Phase::Claiming, _) => self.fatal("wait for CONNECTED before sending frames", receipt, out),
            (Phase::Connected, command) => self.on_connected_frame(command, frame, cx, out),
        }
    }

    fn on_connected_frame(&mut self, command: Command, frame: &Frame<'_>, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        let receipt = frame.header("receipt");
        let done = match command {
            Command::Send => self.send(frame, cx, out),
            Command::Subscribe => self.subscribe(frame, cx, out),
            Command::Unsubscribe => self.unsubscribe(frame, cx),
            Command::Ack | Command::Nack => self.acknowledge(command, frame),
            Command::Begin => self.begin(frame, cx.now),
            Command::Commit => self.commit(frame, cx, out),
            Command::Abort => self.abort(frame),
            Command::Disconnect => {
                if let Some(receipt) = receipt {
                    self.receipt(receipt, out);
                }
                self.phase = Phase::Ended;
                out.close(CloseRequest { code: CloseCode::NORMAL, reason: "" });
                return;
            }
            // The decoder lets only client commands through.
            _ => Err(Fatal("unexpected command")),
        };
        match done {
            Ok(Outcome::Done) => {
                if let Some(receipt) = receipt {
                    self.receipt(receipt, out);
                }
            }
            Ok(Outcome::Refused(refusal)) => self.refuse(refusal, receipt, out),
            Err(Fatal(message)) => self.fatal(message, receipt, out),
        }
    }

    /// CONNECT or STOMP: the version, the heart-beats, and the name claim.
    fn connect(&mut self, frame: &Frame<'_>, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        let Some(version) = stomp::negotiate_version(frame.header("accept-version")) else {
            let mut bytes = Vec::new();
            let message = "supported protocol versions are 1.0, 1.1 and 1.2";
            let headers = [("message", message), ("version", SUPPORTED_VERSIONS), ("content-type", "text/plain")];
            let written = stomp::write_frame(&mut bytes, Command::Error, &headers, message.as_bytes(), Version::V1_0);
            if written.is_ok() {
                out.send_text(&bytes);
            }
            self.end(out);
            return;
        };
        self.version = version;
        let client = match frame.header("heart-beat") {
            // 1.0 has no heart-beating.
            Some(value) if version > Version::V1_0 => match stomp::parse_heart_beat(value) {
                Ok(heart_beat) => heart_beat,
                Err(error) => return self.protocol_error(error, out),
            },
            _ => HeartBeat::default(),
        };
        let offer = self.offer();
        let (send_ms, expect_ms) =
            if version > Version::V1_0 { stomp::negotiate_heartbeat(client, offer) } else { (0, 0) };
        let period = |ms: u32| (ms > 0).then(|| Duration::from_millis(u64::from(ms)));
        self.send_every = period(send_ms);
        self.next_send = self.send_every.map(|every| cx.now + every);
        self.expect_every = period(expect_ms);
        let member = cx.hub.attach(self.endpoint, WIRE.dialect, NAMESPACE);
        self.member = Some(member);
        // docs/AUTH.md: the token is `passcode` (or `token`), else the upgrade's.
        let upgrade_token = self.upgrade_token.take();
        let token = frame.header("passcode").or(frame.header("token")).or(upgrade_token.as_deref());
        if let Some(token) = token.filter(|_| cx.hub.token_verifier().is_some())
            && let Err(failure) = admit(cx, member, token.as_bytes(), &mut self.cutoff)
        {
            return self.fatal_with(&Refusal::chat(failure.error(), Some(failure.reason())), None, out);
        }
        let granted = cx.hub.granted_name(member).map(str::to_owned);
        let Some(login) = frame.header("login").map(str::to_owned).or(granted) else {
            return self.fatal("a login header is required: it is your chat name", None, out);
        };
        self.phase = Phase::Claiming;
        let before = cx.outbox.deliveries.len();
        cx.hub.handle(member, Request::new(ChatCommand::Hello { name: login.into() }), cx.outbox);
        for reply in cx.outbox.take_replies(before, member) {
            self.on_reply(&reply, out);
        }
    }

    /// The heart-beats this broker offers, in milliseconds.
    fn offer(&self) -> HeartBeat {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        HeartBeat { send_ms: ms(self.config.heartbeat.0), receive_ms: ms(self.config.heartbeat.1) }
    }

    /// A reply of the hub to this member's own request, or one that came
    /// later (a claim the directory answered).
    fn on_reply(&mut self, event: &Event, out: &mut dyn Output) {
        match (self.phase, event) {
            (Phase::Claiming, Event::Welcome { name, .. }) => {
                self.name = Some(name.clone());
                self.phase = Phase::Connected;
                let mut bytes = Vec::new();
                let session = self.member.map(|m| format!("soket-{}", m.0)).unwrap_or_default();
                let written =
                    stomp::write_connected(&mut bytes, self.version, self.offer(), Some(SERVER), &session, Some(name));
                if written.is_ok() {
                    out.send_text(&bytes);
                }
            }
            (Phase::Claiming, Event::Error { error, detail, .. }) => {
                let refusal = Refusal::chat(*error, detail.as_deref());
                self.fatal_with(&refusal, None, out);
            }
            // Refusals of requests that went through the directory later.
            (Phase::Connected, Event::Error { error, detail, .. }) => {
                self.refuse(Refusal::chat(*error, detail.as_deref()), None, out);
            }
            _ => {}
        }
    }

    /// Runs `command` in the hub; its refusal, if any.
    fn request(&mut self, command: ChatCommand<'_>, cx: &mut AppCtx<'_>) -> Option<Refusal> {
        let member = self.member?;
        let before = cx.outbox.deliveries.len();
        cx.hub.handle(member, Request::new(command), cx.outbox);
        cx.outbox.take_replies(before, member).into_iter().find_map(|reply| match reply {
            Event::Error { error, detail, .. } => Some(Refusal::chat(error, detail.as_deref())),
            _ => None,
        })
    }

    fn send(&mut self, frame: &Frame<'_>, cx: &mut AppCtx<'_>, out: &mut dyn Output) -> Result<Outcome, Fatal> {
        let destination = frame.header("destination").ok_or(Fatal("a SEND needs a destination header"))?;
        if destination == render::TOKEN && cx.hub.token_verifier().is_some() {
            return Ok(self.refresh(frame.header(render::TOKEN_HEADER), cx));
        }
        if let Some(transaction) = frame.header("transaction") {
            let held = Held {
                command: Command::Send,
                destination: Some(destination.into()),
                id: None,
                body: frame.body.into(),
            };
            return self.hold(transaction, held);
        }
        Ok(self.publish(destination, frame.body, cx, out))
    }

    /// A SEND to `/soket/token`: the connection's new token (docs/AUTH.md).
    /// Taken at once, even inside a transaction: a token is not a message.
    /// Refused, the connection keeps its old token until it runs out.
    fn refresh(&mut self, token: Option<&str>, cx: &mut AppCtx<'_>) -> Outcome {
        let Some(member) = self.member else {
            return Outcome::Done;
        };
        match refresh(cx, member, token.map(str::as_bytes), &mut self.cutoff) {
            Ok(()) => Outcome::Done,
            Err(refused) => Outcome::Refused(Refusal::chat(refused.error, refused.detail)),
        }
    }

    /// A SEND's effect: a room message or a private one.
    fn publish(&mut self, destination: &str, body: &[u8], cx: &mut AppCtx<'_>, out: &mut dyn Output) -> Outcome {
        let Ok(text) = std::str::from_utf8(body) else {
            return Outcome::Refused(Refusal::new("bad_body", "a message body must be UTF-8 text"));
        };
        if let Some(room) = destination.strip_prefix(TOPIC_PREFIX) {
            if destination == render::PRESENCE {
                return Outcome::Refused(Refusal::new("read_only", "the online list is the broker's to send"));
            }
            if let Some(refusal) = self.request(ChatCommand::Say { room: room.into(), text: text.into() }, cx) {
                return Outcome::Refused(refusal);
            }
            // Brokers give a subscriber its own message too; the hub gives
            // it only to the others.
            if let (Some(room), Some(name)) = (normalize_room(room), self.name.clone()) {
                let target = Target::Room(room.as_str().into());
                if self.subscriptions.iter().any(|s| s.wants(&target)) {
                    let echo = Event::Message { room: room.into(), from: name, text: text.into(), mark: None };
                    if let Some(rendered) = render::render(&echo, NAMESPACE) {
                        self.deliver(&echo, &rendered, out);
                    }
                }
            }
            return Outcome::Done;
        }
        match destination.strip_prefix(USER_PREFIX) {
            Some(to) if !to.contains('/') => {
                match self.request(ChatCommand::Private { to: to.into(), text: text.into() }, cx) {
                    Some(refusal) => Outcome::Refused(refusal),
                    None => Outcome::Done,
                }
            }
            _ => Outcome::Refused(Refusal::new(
                "unknown_destination",
                format!("cannot send to {destination}: use /topic/ROOM or /user/NAME"),
            )),
        }
    }

    fn subscribe(&mut self, frame: &Frame<'_>, cx: &mut AppCtx<'_>, out: &mut dyn Output) -> Result<Outcome, Fatal> {
        let destination = frame.header("destination").ok_or(Fatal("a SUBSCRIBE needs a destination header"))?;
        // 1.0 made the id optional; the destination then names the subscription.
        let id = match frame.header("id") {
            Some(id) => id,
            None if self.version == Version::V1_0 => destination,
            None => return Err(Fatal("a SUBSCRIBE needs an id header")),
        };
        if self.subscriptions.iter().any(|s| *s.id == *id) {
            return Err(Fatal("that subscription id is in use"));
        }
        if self.subscriptions.len() >= self.config.max_subscriptions {
            return Err(Fatal("too many subscriptions on this connection"));
        }
        let ack = AckMode::parse(frame.header("ack")).ok_or(Fatal("ack must be auto, client or client-individual"))?;
        let target = match Target::parse(destination) {
            Ok(target) => target,
            Err((error, detail)) => return Ok(Outcome::Refused(Refusal::chat(error, Some(&detail)))),
        };
        if let Target::Room(room) = &target
            && **room != *crate::chat::LOBBY
            && !self.subscriptions.iter().any(|s| s.wants(&target))
            && let Some(refusal) = self.request(ChatCommand::Join { room: room.to_string().into() }, cx)
        {
            return Ok(Outcome::Refused(refusal));
        }
        let subscription = Subscription::new(id, target, ack, self.version).ok_or(Fatal("bad subscription id"))?;
        let presence = subscription.target == Target::Presence;
        self.subscriptions.push(subscription);
        if presence && let Some(member) = self.member {
            let event = Event::Presence { names: cx.hub.online(member) };
            if let Some(rendered) = render::render(&event, NAMESPACE) {
                self.deliver_to(self.subscriptions.len() - 1, &rendered, out);
            }
        }
        Ok(Outcome::Done)
    }

    fn unsubscribe(&mut self, frame: &Frame<'_>, cx: &mut AppCtx<'_>) -> Result<Outcome, Fatal> {
        let id = match frame.header("id") {
            Some(id) => id,
            None if self.version == Version::V1_0 => {
                frame.header("destination").ok_or(Fatal("an UNSUBSCRIBE needs an id header"))?
            }
            None => return Err(Fatal("an UNSUBSCRIBE needs an id header")),
        };
        let Some(index) = self.subscriptions.iter().position(|s| *s.id == *id) else {
            return Ok(Outcome::Refused(Refusal::new("no_such_subscription", format!("no subscription {id}"))));
        };
        let subscription = self.subscriptions.remove(index);
        if let Target::Room(room) = &subscription.target
            && **room != *crate::chat::LOBBY
            && !self.subscriptions.iter().any(|s| s.wants(&subscription.target))
        {
            // The last subscription to a room leaves it; the hub cannot refuse that.
            let _ = self.request(ChatCommand::Leave { room: room.to_string().into() }, cx);
        }
        Ok(Outcome::Done)
    }

    fn acknowledge(&mut self, command: Command, frame: &Frame<'_>) -> Result<Outcome, Fatal> {
        let header = if self.version == Version::V1_2 { "id" } else { "message-id" };
        let id = frame.header(header).ok_or(Fatal(if self.version == Version::V1_2 {
            "an ACK or NACK needs an id header"
        } else {
            "an ACK or NACK needs a message-id header"
        }))?;
        // Ids this broker did not hand out were never owed.
        let id = id.parse::<u64>().ok();
        if let Some(transaction) = frame.header("transaction") {
            return self.hold(transaction, Held { command, destination: None, id, body: Box::default() });
        }
        if let Some(id) = id {
            self.settle(id);
        }
        Ok(Outcome::Done)
    }

    /// An ACK or NACK: the message is settled either way (a topic keeps no
    /// copy to deliver again).
    fn settle(&mut self, message_id: u64) {
        for subscription in &mut self.subscriptions {
            if subscription.settle(message_id) {
                return;
            }
        }
    }

    fn begin(&mut self, frame: &Frame<'_>, now: Instant) -> Result<Outcome, Fatal> {
        let id = frame.header("transaction").ok_or(Fatal("a BEGIN needs a transaction header"))?;
        if self.transactions.iter().any(|t| *t.id == *id) {
            return Err(Fatal("that transaction is already open"));
        }
        if self.transactions.len() >= self.config.max_transactions {
            return Err(Fatal("too many open transactions"));
        }
        let deadline = now + self.config.transaction_timeout;
        self.transactions.push(Transaction { id: id.into(), deadline, frames: Vec::new() });
        Ok(Outcome::Done)
    }

    fn take_transaction(&mut self, frame: &Frame<'_>) -> Result<Transaction, Fatal> {
        let id = frame.header("transaction").ok_or(Fatal("a COMMIT or ABORT needs a transaction header"))?;
        let index = self.transactions.iter().position(|t| *t.id == *id).ok_or(Fatal("no such transaction"))?;
        let transaction = self.transactions.remove(index);
        let held: usize = transaction.frames.iter().map(|f| f.body.len()).sum();
        self.held_bytes = self.held_bytes.saturating_sub(held);
        Ok(transaction)
    }

    fn commit(&mut self, frame: &Frame<'_>, cx: &mut AppCtx<'_>, out: &mut dyn Output) -> Result<Outcome, Fatal> {
        let transaction = self.take_transaction(frame)?;
        let mut refusals = Vec::new();
        for held in transaction.frames {
            match (held.command, held.destination, held.id) {
                (Command::Send, Some(destination), _) => {
                    if let Outcome::Refused(refusal) = self.publish(&destination, &held.body, cx, out) {
                        refusals.push(refusal);
                    }
                }
                (Command::Ack | Command::Nack, _, Some(id)) => self.settle(id),
                _ => {}
            }
        }
        // The first refusal speaks for the commit; the rest were its fate too.
        Ok(refusals.into_iter().next().map_or(Outcome::Done, Outcome::Refused))
    }

    fn abort(&mut self, frame: &Frame<'_>) -> Result<Outcome, Fatal> {
        self.take_transaction(frame)?;
        Ok(Outcome::Done)
    }

    /// Keeps a frame for its transaction's COMMIT.
    fn hold(&mut self, transaction: &str, held: Held) -> Result<Outcome, Fatal> {
        let max = self.config.max_transaction_frames;
        let transaction =
            self.transactions.iter_mut().find(|t| *t.id == *transaction).ok_or(Fatal("no such transaction"))?;
        if transaction.frames.len() >= max {
            return Err(Fatal("too many frames in one transaction"));
        }
        let held_bytes = self.held_bytes + held.body.len();
        if held_bytes > self.max_held_bytes {
            return Err(Fatal("transactions hold too many bytes"));
        }
        self.held_bytes = held_bytes;
        transaction.frames.push(held);
        Ok(Outcome::Done)
    }

    /// A hub event for this client: replies answered, everything else sent
    /// to each subscription that wants it.
    fn deliver(&mut self, event: &Event, rendered: &Rendered, out: &mut dyn Output) {
        if self.phase == Phase::Ended {
            return;
        }
        let target = match event {
            Event::Message { room, .. } => Target::Room(room.clone()),
            Event::Private { .. } => Target::Private,
            Event::Presence { .. } => Target::Presence,
            Event::Custom { .. } => Target::Events,
            Event::Welcome { .. } | Event::Error { .. } => return self.on_reply(event, out),
            _ => return,
        };
        for index in 0..self.subscriptions.len() {
            if self.subscriptions.get(index).is_some_and(|s| s.wants(&target)) {
                self.deliver_to(index, rendered, out);
            }
        }
    }

    /// One MESSAGE frame to subscription `index`: its own head, then the
    /// shared rest of the frame.
    fn deliver_to(&mut self, index: usize, rendered: &Rendered, out: &mut dyn Output) {
        if self.phase == Phase::Ended {
            return;
        }
        self.next_message_id += 1;
        let message_id = self.next_message_id;
        let max_unacked = self.config.max_unacked;
        let Some(subscription) = self.subscriptions.get_mut(index) else {
            return;
        };
        if !subscription.expect_ack(message_id, max_unacked) {
            // A consumer that never acknowledges is cut off like a slow reader.
            return self.fatal("too many unacknowledged messages", None, out);
        }
        let mut ids = [0u8; 64];
        let ack = subscription.ack != AckMode::Auto && self.version == Version::V1_2;
        let ids_len = write_message_ids(&mut ids, message_id, ack);
        let own = ids.get(..ids_len).unwrap_or_default();
        let parts =
            [Part::Own(&subscription.head), Part::Own(own), Part::Shared(&rendered.body, 0..rendered.body.len())];
        out.send_parts(&parts, false);
    }

    fn receipt(&self, receipt: &str, out: &mut dyn Output) {
        let mut bytes = Vec::new();
        if stomp::write_receipt(&mut bytes, self.version, receipt).is_ok() {
            out.send_text(&bytes);
        }
    }

    /// A request the broker or the hub refused: a MESSAGE on
    /// `/user/queue/errors` to a client that subscribed there, else an ERROR
    /// frame (which ends the connection, as STOMP requires).
    fn refuse(&mut self, refusal: Refusal, receipt: Option<&str>, out: &mut dyn Output) {
        let Some(index) = self.subscriptions.iter().position(|s| s.target == Target::Errors) else {
            return self.fatal_with(&refusal, receipt, out);
        };
        let body = serde_json::json!({ "code": refusal.code, "message": refusal.message, "receipt-id": receipt });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let mut tail = Vec::new();
        render::write_tail(&mut tail, &[render::ERRORS], render::JSON, None, &body);
        self.deliver_to(index, &Rendered::whole(tail), out);
    }

    fn fatal(&mut self, message: &'static str, receipt: Option<&str>, out: &mut dyn Output) {
        self.fatal_with(&Refusal::new("protocol_error", message), receipt, out);
    }

    /// An ERROR frame, then the end of the connection.
    fn fatal_with(&mut self, refusal: &Refusal, receipt: Option<&str>, out: &mut dyn Output) {
        if self.phase == Phase::Ended {
            return;
        }
        debug!("stomp {:?} over {:?}: ERROR {}: {}", self.endpoint, self.carried, refusal.code, refusal.message);
        // Before CONNECTED the client knows no version, and clients unescape
        // nothing until then (stompjs shows a `\\c` as is): an ERROR that
        // answers the CONNECT goes unescaped, like CONNECTED itself would.
        let version = if self.phase == Phase::Connected { self.version } else { Version::V1_0 };
        let mut bytes = Vec::new();
        stomp::write_error(&mut bytes, version, &refusal.message, Some(refusal.code), receipt, &refusal.message);
        out.send_text(&bytes);
        self.end(out);
    }

    /// A frame the codec could not accept.
    fn protocol_error(&mut self, error: StompError, out: &mut dyn Output) {
        self.fatal(error.message(), None, out);
    }

    fn end(&mut self, out: &mut dyn Output) {
        self.phase = Phase::Ended;
        out.close(AFTER_ERROR);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let connect = match self.phase {
            Phase::Connecting { deadline } => Some(deadline),
            Phase::Ended => return None,
            _ => None,
        };
        let silence = self.expect_every.map(|every| self.last_received + grace(every));
        let transaction = self.transactions.iter().map(|t| t.deadline).min();
        [connect, self.next_send, silence, transaction, self.cutoff.deadline()].into_iter().flatten().min()
    }

    fn handle_timeout(&mut self, now: Instant, metrics: &mut crate::metrics::Metrics, out: &mut dyn Output) {
        if let Some(error) = self.cutoff.fire(now, metrics) {
            return self.fatal_with(&Refusal::chat(error, None), None, out);
        }
        match self.phase {
            Phase::Connecting { deadline } if deadline <= now => {
                return self.fatal("no CONNECT frame in time", None, out);
            }
            Phase::Ended => return,
            _ => {}
        }
        if self.expect_every.is_some_and(|every| self.last_received + grace(every) <= now) {
            return self.fatal("no heart-beat from the client in time", None, out);
        }
        if self.transactions.iter().any(|t| t.deadline <= now) {
            return self.fatal("a transaction stayed open too long", None, out);
        }
        if let (Some(at), Some(every)) = (self.next_send, self.send_every)
            && at <= now
        {
            // An end of line is STOMP's heart-beat, over every carrier.
            out.send_text(b"\n");
            self.next_send = Some(now + every);
        }
    }
}

/// How long past the agreed period the client's silence is tolerated
/// (1.2: "take into account an error margin"): network delay and timer slack.
fn grace(every: Duration) -> Duration {
    every * 2 + Duration::from_secs(1)
}

/// The receiver's own `message-id` (and 1.2 `ack`) header lines into
/// `buf`, without allocating; returns their length.
fn write_message_ids(buf: &mut [u8; 64], message_id: u64, ack: bool) -> usize {
    let mut itoa = itoa::Buffer::new();
    let id = itoa.format(message_id).as_bytes();
    let pieces: [&[u8]; 5] =
        if ack { [b"message-id:", id, b"\nack:", id, b"\n"] } else { [b"message-id:", id, b"\n", b"", b""] };
    let mut len = 0;
    for piece in pieces {
        // 57 bytes at most: two u64s and the fixed text.
        if let Some(slot) = buf.get_mut(len..len + piece.len()) {
            slot.copy_from_slice(piece);
            len += piece.len();
        }
    }
    len
}

/// What a frame did.
enum Outcome {
    Done,
    /// Refused without breaking the protocol: reported to the client.
    Refused(Refusal),
}

/// A frame that breaks the protocol: ERROR and close.
struct Fatal(&'static str);

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::harness::Harness;

    /// A raw-TCP STOMP client in memory, CONNECTed as `login` at `version`.
    fn connected(config: &Config, login: &str, version: &str) -> Harness {
        let mut client = Harness::new(config);
        client.receive(format!("CONNECT\naccept-version:{version}\nlogin:{login}\n\n\0").as_bytes());
        let output = String::from_utf8(client.take_output()).expect("UTF-8");
        assert!(output.starts_with("CONNECTED\n"), "{output:?}");
        client
    }

    fn output(client: &mut Harness) -> String {
        String::from_utf8(client.take_output()).expect("UTF-8")
    }

    #[test]
    fn transactions_hold_no_more_bytes_than_max_queued() {
        let config = Config { max_queued_bytes: 4096, ..Config::default() };
        let mut client = connected(&config, "alice", "1.2");
        let send = |t: &str| format!("SEND\ndestination:/topic/lobby\ntransaction:{t}\n\n{}\0", "x".repeat(1500));
        // Budget given back when a transaction ends: two rounds of 3000 bytes fit.
        for t in ["t1", "t2"] {
            client.receive(format!("BEGIN\ntransaction:{t}\n\n\0{}{}", send(t), send(t)).as_bytes());
            client.receive(format!("ABORT\ntransaction:{t}\nreceipt:{t}\n\n\0").as_bytes());
            assert_eq!(output(&mut client), format!("RECEIPT\nreceipt-id:{t}\n\n\0"));
        }
        client.receive(format!("BEGIN\ntransaction:t3\n\n\0BEGIN\ntransaction:t4\n\n\0{}", send("t3")).as_bytes());
        client.receive(format!("{}{}", send("t4"), send("t3")).as_bytes());
        let error = output(&mut client);
        assert!(error.starts_with("ERROR\nmessage:transactions hold too many bytes\n"), "{error:?}");
        assert!(client.write_shut(), "an ERROR ends the connection");
    }

    #[test]
    fn frames_behind_a_connect_in_one_read_are_read_at_its_version() {
        for (version, id, subscription) in
            [("1.0", r"a\cb", r"a\cb"), ("1.1", r"a\cb", r"a\cb"), ("1.2", "a:b", r"a\cb")]
        {
            let mut client = Harness::new(&Config::default());
            client.receive(
                format!(
                    "CONNECT\naccept-version:{version}\nlogin:alice\n\n\0\
                     SUBSCRIBE\nid:{id}\ndestination:/topic/lobby\n\n\0SEND\ndestination:/topic/lobby\n\nhi\0"
                )
                .as_bytes(),
            );
            let output = output(&mut client);
            assert!(output.contains(&format!("\0MESSAGE\nsubscription:{subscription}\n")), "{version}: {output:?}");
        }
    }

    /// One client frame from a small vocabulary that reaches every branch of
    /// the broker: commands, the headers it reads, values good and bad.
    fn arb_frame() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        const COMMANDS: &[&str] =
            &["SEND", "SUBSCRIBE", "UNSUBSCRIBE", "ACK", "NACK", "BEGIN", "COMMIT", "ABORT", "CONNECT"];
        const NAMES: &[&str] = &["destination", "id", "ack", "transaction", "receipt", "message-id", "heart-beat"];
        const VALUES: &[&str] = &[
            "/topic/lobby",
            "/topic/r1",
            "/topic/presence",
            "/user/alice",
            "/user/queue/errors",
            "/user/queue/private",
            "/queue/x",
            "/topic/a..b",
            "1",
            "2",
            "t",
            "client",
            "client-individual",
            "auto",
            "x",
            "a\\cb",
            "\\t",
            "",
        ];
        let header = (proptest::sample::select(NAMES), proptest::sample::select(VALUES));
        (
            proptest::sample::select(COMMANDS),
            proptest::collection::vec(header, 0..5),
            proptest::sample::select(&["", "hi", "\u{e9}t\u{e9}"][..]),
        )
            .prop_map(|(command, headers, body)| {
                let mut frame = format!("{command}\n");
                for (name, value) in headers {
                    frame.push_str(&format!("{name}:{value}\n"));
                }
                format!("{frame}\n{body}\0")
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        #[test]
        fn any_session_of_frames_ends_cleanly(
            version in proptest::sample::select(&["1.0", "1.1", "1.2"][..]),
            frames in proptest::collection::vec(arb_frame(), 0..24),
            ticks in proptest::collection::vec(0u64..400, 24),
        ) {
            let config = Config {
                stomp_max_unacked: 2,
                stomp_max_subscriptions: 3,
                stomp_max_transaction_frames: 3,
                stomp_heartbeat: (std::time::Duration::from_millis(100), std::time::Duration::from_millis(100)),
                stomp_transaction_timeout: std::time::Duration::from_millis(500),
                ..Config::default()
            };
            let mut client = Harness::new(&config);
            let connect = format!("CONNECT\naccept-version:{version}\nheart-beat:100,100\nlogin:alice\n\n\0");
            client.receive(connect.as_bytes());
            for (frame, tick) in frames.iter().zip(&ticks) {
                client.receive(frame.as_bytes());
                client.advance(std::time::Duration::from_millis(*tick));
                proptest::prop_assert!(client.queued_bytes() <= config.max_queued_bytes);
            }
            client.close_input();
            client.advance(config.close_timeout);
            proptest::prop_assert!(client.is_dead() || client.write_shut());
            proptest::prop_assert_eq!(client.hub().users(), 0, "the name is released");
        }
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[test]
    fn an_error_answering_connect_is_not_escaped_and_one_after_connected_is() {
        // A refused login: the client has no version yet to unescape by.
        let mut refused = Harness::new(&Config::default());
        refused.receive(b"CONNECT\naccept-version:1.2\nlogin:bad:name\n\n\0");
        let output = text(&refused.take_output());
        assert!(output.starts_with("ERROR\nmessage:a name is "), "{output}");
        assert!(output.contains("': bad:name\n"), "{output}");
        assert!(!output.contains("\\c"), "{output}");

        // Once CONNECTED said 1.2, headers are escaped as 1.2 says.
        let mut connected = Harness::new(&Config::default());
        connected.receive(b"CONNECT\naccept-version:1.2\nlogin:alice\n\n\0");
        assert!(text(&connected.take_output()).starts_with("CONNECTED\nversion:1.2\n"));
        connected.receive(b"SUBSCRIBE\nid:1\ndestination:/topic/a..b\nreceipt:r\\c1\n\n\0");
        let output = text(&connected.take_output());
        assert!(output.starts_with("ERROR\nmessage:a room is "), "{output}");
        assert!(output.contains("\\c a..b\ncode:room_invalid\nreceipt-id:r\\c1\n"), "{output}");
        assert!(output.ends_with("left: a..b\0"), "the body is not escaped: {output}");
    }
}
