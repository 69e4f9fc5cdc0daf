//! The chat hub: names, rooms, namespaces and presence for legacy line users
//! and WebSocket JSON users in one world (PROTOCOL.md sections 1 to 4).
//!
//! Sans-IO: the reactor hands in already-framed messages (one legacy line, one
//! JSON text) and gets back an [`Outbox`] of rendered message contents with
//! their recipients. No sockets, no clocks, no frames: the reactor frames each
//! [`Delivery`] once per wire format and shares the bytes between recipients.

mod command;
mod error;
mod hub;
mod names;
mod render;
mod room;

use std::borrow::Cow;
use std::ops::Range;
use std::rc::Rc;

pub use crate::timers::ConnId;
pub use error::ChatError;
pub use hub::Hub;
pub use names::{normalize_name, normalize_namespace, normalize_room};

/// The protocol a connection speaks, which decides how it is rendered to.
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
}

impl Default for ChatConfig {
    fn default() -> ChatConfig {
        ChatConfig { max_line_bytes: 65536, max_rooms_per_user: 256 }
    }
}

/// One rendered message, shared by all recipients of a [`Delivery`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// A JSON text, to be sent as one WebSocket text frame.
    Json(Rc<str>),
    /// A legacy line without its `\n`: a TCP line, or one `/legacy` text frame.
    Legacy(Rc<str>),
    /// One receiver's online list, cut from the list of everyone.
    Presence(Presence),
}

/// The wire format of a [`Presence`] list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Legacy,
}

/// An online list that leaves out its receiver: `whole` (everyone, rendered
/// once for all receivers) without the bytes in `omit` (the receiver's own
/// entry). Every list differs, but none is rendered or copied per receiver:
/// each is sent as two slices of the shared `whole`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    pub format: Format,
    pub whole: Rc<str>,
    pub omit: Range<usize>,
}

impl Presence {
    /// The text before and after the omitted entry.
    pub fn parts(&self) -> (&str, &str) {
        let before = self.whole.get(..self.omit.start).unwrap_or_default();
        let after = self.whole.get(self.omit.end..).unwrap_or_default();
        (before, after)
    }
}

impl Content {
    /// The rendered text, whatever the format (a presence list is joined
    /// from its parts, so this allocates for it: for tests and logs).
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Content::Json(text) | Content::Legacy(text) => Cow::Borrowed(text),
            Content::Presence(list) => {
                let (before, after) = list.parts();
                Cow::Owned([before, after].concat())
            }
        }
    }

    /// Whether legacy (rather than JSON) receivers get this.
    pub fn is_legacy(&self) -> bool {
        match self {
            Content::Json(_) => false,
            Content::Legacy(_) => true,
            Content::Presence(list) => list.format == Format::Legacy,
        }
    }
}

/// One message content and every connection that gets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub content: Content,
    /// Never empty: the hub drops deliveries nobody would get.
    pub recipients: Vec<ConnId>,
}

/// What one call into the hub produced, in the order the effects happened.
#[derive(Default, Debug)]
pub struct Outbox {
    /// Deliveries in effect order: a recipient gets one sender's effects in
    /// the order of this list.
    pub deliveries: Vec<Delivery>,
    /// Connections that asked to leave (`/quit`): close after flushing what
    /// is queued for them, then call [`Hub::detach`].
    pub closes: Vec<ConnId>,
}

impl Outbox {
    /// Empties the outbox, keeping its allocations for the next call.
    pub fn clear(&mut self) {
        self.deliveries.clear();
        self.closes.clear();
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.deliveries.is_empty() && self.closes.is_empty()
    }

    /// Queues `content` for `recipients`; a delivery to nobody is dropped.
    pub(crate) fn push(&mut self, content: Content, recipients: Vec<ConnId>) {
        if !recipients.is_empty() {
            self.deliveries.push(Delivery { content, recipients });
        }
    }
}
