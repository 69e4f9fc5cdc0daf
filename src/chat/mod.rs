//! The chat hub: names, rooms, namespaces and presence for every chat member
//! in one world (PROTOCOL.md sections 1 to 4), whatever protocol it speaks.
//!
//! Sans-IO and wire-agnostic: an app parses its protocol's messages into a
//! [`Request`] and hands it in for a [`MemberId`]; the hub answers with an
//! [`Outbox`] of semantic [`Event`]s, each with every member that gets it.
//! Each app renders an event once for all its receivers (`crate::app`). No
//! sockets, no clocks, no frames, no JSON.

mod directory;
mod error;
mod history;
mod hub;
mod names;
mod recovery;
mod room;

use std::borrow::Cow;
use std::rc::Rc;

pub use crate::ids::Endpoint;
pub use directory::{Claim, ClaimQueue, ClaimRequest, Directory, LocalDirectory};
pub use error::ChatError;
pub use history::{HistoryConfig, Page, Position, Recovery, Stored};
pub use hub::{AuthFailure, Hub, HubInfo, Resumed, ServerTarget};
pub use names::{normalize_name, normalize_namespace, normalize_room};
pub use recovery::{Audience, RecoveryConfig, Unrecovered};

/// When a user registered or joined a room: the order of presence lists and
/// rosters. In a cluster a stamp is made on the user's node from its wall
/// clock (microseconds), that node's id hash and its counter, and travels
/// with the event, so every node sorts every list the same way; alone, `ms`
/// and `node` stay 0 and the counter is the order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    pub micros: u64,
    pub node: u64,
    pub seq: u64,
}

/// What other nodes of a cluster must hear of this node's hub, in effect
/// order ([`Outbox::cluster`], filled only once [`Hub::join_cluster`] was
/// called). The backplane sends each once, whatever the number of receivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Broadcast {
    /// A user registered here (it is in `lobby` from `stamp` too).
    Online {
        namespace: Rc<str>,
        name: Rc<str>,
        stamp: Stamp,
        dialect: Dialect,
    },
    /// A user here left: it leaves every room at once.
    Offline {
        namespace: Rc<str>,
        name: Rc<str>,
    },
    Joined {
        namespace: Rc<str>,
        room: Rc<str>,
        name: Rc<str>,
        stamp: Stamp,
    },
    Left {
        namespace: Rc<str>,
        room: Rc<str>,
        name: Rc<str>,
    },
    /// A room message that members on other nodes should get.
    Message {
        namespace: Rc<str>,
        room: Rc<str>,
        from: Rc<str>,
        text: Rc<str>,
    },
    /// A private message for `to`, connected to `node`.
    Private {
        namespace: Rc<str>,
        node: Rc<str>,
        to: Rc<str>,
        from: Rc<str>,
        text: Rc<str>,
    },
    /// The server API closes `name`, connected to `node`.
    Disconnect {
        namespace: Rc<str>,
        node: Rc<str>,
        name: Rc<str>,
        reason: Option<Rc<str>>,
    },
    /// A custom event for members elsewhere (`event_listeners`' rule there).
    Custom {
        namespace: Rc<str>,
        target: RemoteTarget,
        event: Rc<str>,
        data: Option<Rc<str>>,
        from: Option<Rc<str>>,
        args: Option<Rc<RawArgs>>,
    },
    /// The first member here joined `room`: its traffic should reach this node.
    Subscribe {
        namespace: Rc<str>,
        room: Rc<str>,
    },
    /// The last member here left `room`.
    Unsubscribe {
        namespace: Rc<str>,
        room: Rc<str>,
    },
}

/// Where a custom event from another node goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteTarget {
    /// Every events member and listener of the namespace.
    Namespace,
    /// Every events member of the room.
    Room(Rc<str>),
    /// One user, connected to `node`.
    User { node: Rc<str>, name: Rc<str> },
}

/// One user of a node as a state snapshot lists it: how a node tells the
/// others everything it has after it (re)connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserState {
    pub namespace: Rc<str>,
    pub name: Rc<str>,
    pub stamp: Stamp,
    pub dialect: Dialect,
    /// Rooms besides `lobby`, with when the user joined each.
    pub rooms: Vec<(Rc<str>, Stamp)>,
}

/// A message's place in its room's history: the ring's epoch and its offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub epoch: Rc<str>,
    pub offset: u64,
}

/// The room every user is in and plain legacy lines go to.
pub const LOBBY: &str = "lobby";

/// A chat member: one attachment of an endpoint to the hub, registered or
/// not. Hub-allocated, never reused within a process, so a stale id misses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(pub u64);

/// What a member can receive: legacy-line members never get custom events
/// (an `emit` to one is `no_such_user`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// The legacy line protocol (section 2).
    Lines,
    /// The JSON event protocol (section 3), or any protocol with custom events.
    Events,
}

/// Opaque correlation tag of a request: the JSON `id` as its raw JSON text
/// (`7`, `"a"`), echoed in the reply, ack or error.
pub type Tag = Rc<str>;

/// One parsed request and its correlation tag.
#[derive(Clone, Debug, PartialEq)]
pub struct Request<'a> {
    pub command: Command<'a>,
    pub tag: Option<Tag>,
}

impl<'a> Request<'a> {
    /// A request without a tag.
    pub fn new(command: Command<'a>) -> Request<'a> {
        Request { command, tag: None }
    }

    /// The same request owning its strings (for input that had to be
    /// decoded into a temporary, such as lossy UTF-8).
    pub fn into_owned(self) -> Request<'static> {
        Request { command: self.command.into_owned(), tag: self.tag }
    }
}

/// What a member asks for. Strings borrow from the message when they can
/// (a JSON string with escapes cannot). Parsers check shape only (which
/// command, which fields); names, rooms and membership are the hub's.
#[derive(Clone, Debug, PartialEq)]
pub enum Command<'a> {
    /// Register under `name` (JSON `hello`; a legacy user's first message).
    Hello {
        name: Cow<'a, str>,
    },
    /// A message to the other members of `room`.
    Say {
        room: Cow<'a, str>,
        text: Cow<'a, str>,
    },
    /// A private message to the user `to`.
    Private {
        to: Cow<'a, str>,
        text: Cow<'a, str>,
    },
    Join {
        room: Cow<'a, str>,
    },
    Leave {
        room: Cow<'a, str>,
    },
    /// A custom event for [`Dialect::Events`] members only (section 3 `emit`).
    /// `data` is raw JSON text; `None` is `null`.
    Emit {
        event: Cow<'a, str>,
        data: Option<Cow<'a, str>>,
        target: EmitTarget<'a>,
    },
    Who {
        room: Cow<'a, str>,
    },
    Rooms,
    /// Close after flushing (`/quit`); allowed before registering.
    Quit,
    /// A custom event for every [`Dialect::Events`] member of the namespace
    /// and its audience, the sender included (Socket.IO's `io.emit`, which
    /// the chat example relies on); allowed before registering. `data` is
    /// the event as single-argument receivers get it (raw JSON, `None` is
    /// `null`), `args` as its own protocol sent it.
    Relay {
        event: Cow<'a, str>,
        data: Option<Cow<'a, str>>,
        args: Rc<RawArgs>,
    },
}

/// A custom event's arguments as a protocol with several arguments and
/// binary attachments sent them (Socket.IO), relayed verbatim to receivers
/// of that protocol: `json` is the event's whole array, its name first,
/// each binary argument replaced by a placeholder; `binary` holds the
/// attachments in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawArgs {
    pub json: Rc<str>,
    pub binary: Rc<[Rc<[u8]>]>,
}

impl Command<'_> {
    /// Whether this is a `hello` (the one request allowed before registering,
    /// with `/quit` and a relay).
    pub fn is_hello(&self) -> bool {
        matches!(self, Command::Hello { .. })
    }

    /// Whether a member that has not registered may ask for this.
    pub fn allowed_unregistered(&self) -> bool {
        matches!(self, Command::Hello { .. } | Command::Quit | Command::Relay { .. })
    }

    /// The same command owning its strings.
    pub fn into_owned(self) -> Command<'static> {
        fn own(s: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(s.into_owned())
        }
        match self {
            Command::Hello { name } => Command::Hello { name: own(name) },
            Command::Say { room, text } => Command::Say { room: own(room), text: own(text) },
            Command::Private { to, text } => Command::Private { to: own(to), text: own(text) },
            Command::Join { room } => Command::Join { room: own(room) },
            Command::Leave { room } => Command::Leave { room: own(room) },
            Command::Emit { event, data, target } => {
                let target = match target {
                    EmitTarget::Namespace => EmitTarget::Namespace,
                    EmitTarget::Room(room) => EmitTarget::Room(own(room)),
                    EmitTarget::User(to) => EmitTarget::User(own(to)),
                };
                Command::Emit { event: own(event), data: data.map(own), target }
            }
            Command::Who { room } => Command::Who { room: own(room) },
            Command::Rooms => Command::Rooms,
            Command::Quit => Command::Quit,
            Command::Relay { event, data, args } => Command::Relay { event: own(event), data: data.map(own), args },
        }
    }
}

/// A message an app could not turn into a [`Request`]: what to answer with
/// [`Hub::reject`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub error: ChatError,
    /// The offending value (a field name, a type, a command word), if any.
    pub detail: Option<String>,
    /// The request's tag, when it was found before the error.
    pub tag: Option<Tag>,
}

impl Rejection {
    /// A rejection without a detail or tag.
    pub fn bare(error: ChatError) -> Rejection {
        Rejection { error, detail: None, tag: None }
    }

    /// A rejection naming the offending value.
    pub fn with(error: ChatError, detail: &str) -> Rejection {
        Rejection { error, detail: Some(detail.to_owned()), tag: None }
    }
}

/// Where an `emit` goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmitTarget<'a> {
    /// Every [`Dialect::Events`] member of the namespace but the sender.
    Namespace,
    Room(Cow<'a, str>),
    User(Cow<'a, str>),
}

/// What the hub says, independent of any wire format. Owned and shared
/// (`Rc<str>`): one event is rendered once per format for all recipients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Registration succeeded: the joiner's name, namespace, the other
    /// online users (oldest first) and its rooms.
    Welcome {
        name: Rc<str>,
        namespace: Rc<str>,
        users: Rc<[Rc<str>]>,
        rooms: Rc<[Rc<str>]>,
        tag: Option<Tag>,
    },
    Message {
        room: Rc<str>,
        from: Rc<str>,
        text: Rc<str>,
        /// Where it is in the room's history, when history is on: a
        /// client that saw it can resume after it (`hello` with `since`).
        mark: Option<Mark>,
    },
    Private {
        from: Rc<str>,
        text: Rc<str>,
    },
    Joined {
        room: Rc<str>,
        name: Rc<str>,
    },
    Left {
        room: Rc<str>,
        name: Rc<str>,
    },
    /// A custom event; `data` is raw JSON text, `None` is `null`; `room`
    /// when sent to a room; `from` unless an unregistered member relayed
    /// it; `args` as the sender's protocol gave them, if it has its own.
    Custom {
        event: Rc<str>,
        data: Option<Rc<str>>,
        from: Option<Rc<str>>,
        room: Option<Rc<str>>,
        args: Option<Rc<RawArgs>>,
    },
    /// Everyone online in the namespace, oldest first; each receiver's list
    /// leaves out its own entry ([`Recipient::omit`]).
    Presence {
        names: Rc<[Rc<str>]>,
    },
    /// A `who` reply: the room's members in join order.
    Members {
        room: Rc<str>,
        names: Rc<[Rc<str>]>,
        tag: Option<Tag>,
    },
    /// A `rooms` reply: every room of the namespace (code point order) and its member count.
    Rooms {
        rooms: Rc<[(Rc<str>, usize)]>,
        tag: Option<Tag>,
    },
    /// A tagged request succeeded without a reply of its own.
    Ack {
        tag: Tag,
    },
    /// A refused request; `detail` names the offending value (a name, a room, a command word).
    Error {
        error: ChatError,
        detail: Option<Rc<str>>,
        tag: Option<Tag>,
    },
}

/// One receiver of a [`Delivery`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub endpoint: Endpoint,
    pub member: MemberId,
    /// [`Event::Presence`]: the index in `names` of the receiver's own
    /// entry, which its list leaves out. `None` for every other event.
    pub omit: Option<u32>,
}

/// One event and every member that gets it, whatever its dialect: the
/// renderers decide the wire format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The namespace every recipient is in.
    pub namespace: Rc<str>,
    pub event: Event,
    /// Never empty: the hub drops deliveries nobody would get.
    pub recipients: Vec<Recipient>,
    /// Its place in the Socket.IO recovery log, when recovery is on and the
    /// event is one a returning session would be given again.
    pub offset: Option<u64>,
}

/// What calls into the hub produced, in the order the effects happened.
#[derive(Default, Debug)]
pub struct Outbox {
    /// Deliveries in effect order: a recipient gets one sender's effects in
    /// the order of this list.
    pub deliveries: Vec<Delivery>,
    /// Members that asked to leave (`/quit`): close after flushing what is
    /// queued for them, then call [`Hub::detach`].
    pub closes: Vec<Recipient>,
    /// What other nodes must hear, when this hub is part of a cluster.
    pub cluster: Vec<Broadcast>,
}

impl Outbox {
    /// Empties the outbox, keeping its allocations for the next call.
    pub fn clear(&mut self) {
        self.deliveries.clear();
        self.closes.clear();
        self.cluster.clear();
    }

    /// Whether nothing is pending for this node's members ([`Outbox::cluster`]
    /// is the backplane's to drain).
    pub fn is_empty(&self) -> bool {
        self.deliveries.is_empty() && self.closes.is_empty()
    }

    /// Removes the replies to `member` alone (its `welcome`, an error, an
    /// ack, a `who` or `rooms` answer) among the deliveries from index
    /// `from` on, in order: a protocol that must answer its own requests in
    /// line with its other answers (STOMP's receipts) takes them here.
    pub fn take_replies(&mut self, from: usize, member: MemberId) -> Vec<Event> {
        let mut replies = Vec::new();
        let mut index = from;
        while let Some(delivery) = self.deliveries.get(index) {
            let is_reply = matches!(
                delivery.event,
                Event::Welcome { .. }
                    | Event::Error { .. }
                    | Event::Ack { .. }
                    | Event::Members { .. }
                    | Event::Rooms { .. }
            );
            if is_reply && matches!(delivery.recipients.as_slice(), [only] if only.member == member) {
                replies.push(self.deliveries.remove(index).event);
            } else {
                index += 1;
            }
        }
        replies
    }

    /// Queues `event` for `recipients` in `namespace`; a delivery to nobody is dropped.
    pub(crate) fn push(&mut self, namespace: &Rc<str>, event: Event, recipients: Vec<Recipient>) {
        self.push_at(namespace, event, recipients, None);
    }

    /// [`Outbox::push`] for an event logged at `offset` for recovery.
    pub(crate) fn push_at(
        &mut self,
        namespace: &Rc<str>,
        event: Event,
        recipients: Vec<Recipient>,
        offset: Option<u64>,
    ) {
        if !recipients.is_empty() {
            self.deliveries.push(Delivery { namespace: namespace.clone(), event, recipients, offset });
        }
    }
}

/// The hub's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChatConfig {
    /// `--max-line` (default 65536): the legacy message limit, and the limit on
    /// a JSON `say`/`private` text (`too_large`), since legacy users could not
    /// receive a longer one.
    pub max_line_bytes: usize,
    /// `--max-rooms-per-user` (default 256): rooms one user may be in besides
    /// `lobby`, so a client cannot grow the hub's memory without bound by
    /// joining ever more rooms. Over it, a join is answered `room_invalid`.
    pub max_rooms_per_user: usize,
    /// `--history-size` and `--history-ttl`.
    pub history: HistoryConfig,
    /// Socket.IO connection state recovery (`--socketio-recovery` and its caps).
    pub recovery: RecoveryConfig,
}

impl Default for ChatConfig {
    fn default() -> ChatConfig {
        ChatConfig {
            max_line_bytes: 65536,
            max_rooms_per_user: 256,
            history: HistoryConfig::default(),
            recovery: RecoveryConfig::default(),
        }
    }
}
