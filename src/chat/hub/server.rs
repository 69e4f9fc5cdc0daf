//! What the server itself does in the hub, on behalf of an application
//! backend (the HTTP API, `crate::app::api`): publish as a named sender that
//! is no member, close a user, read presence. Effects reach members through
//! the same events and cluster broadcasts as a member's own requests, so
//! every protocol renders them in its own wire format.

use std::rc::Rc;

use super::{Hub, Member, Place, State, event_listeners, find_user};
use crate::chat::names::{normalize_name, normalize_room};
use crate::chat::{
    Audience, Broadcast, ChatError, Dialect, Directory, Event, MemberId, Outbox, Page, Position, Recipient, Recovery,
    RemoteTarget,
};

/// A node-wide summary: what `/api/info` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubInfo {
    /// This node's id in a cluster.
    pub node: Option<Rc<str>>,
    /// Other nodes this hub lists users of.
    pub nodes: Vec<Rc<str>>,
    /// Users connected here.
    pub local_users: usize,
    /// Users connected elsewhere that this hub knows of.
    pub remote_users: usize,
    /// Rooms with members, all namespaces.
    pub rooms: usize,
    /// Namespaces in use, with their users (cluster-wide), in code point order.
    pub namespaces: Vec<(Rc<str>, usize)>,
}

/// Where a server-published custom event goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerTarget<'a> {
    Namespace,
    Room(&'a str),
    User(&'a str),
}

impl<D: Directory> Hub<D> {
    /// The name a server message goes out under, checked like a user's,
    /// and its text held to the legacy limit (`--max-line`) like a user's.
    fn server_sender(&self, from: &str, text: &str) -> Result<Rc<str>, ChatError> {
        let from: Rc<str> = normalize_name(from).ok_or(ChatError::NameInvalid)?.into();
        if text.len() > self.config.max_line_bytes {
            return Err(ChatError::TooLarge);
        }
        Ok(from)
    }

    /// A room message from `from` (a name by the name rules, no member) to
    /// every member of `room`, on every node. The number of members it was
    /// addressed to (cluster-wide), or `no_such_room` / `room_invalid` /
    /// `name_invalid` / `too_large`.
    pub fn server_say(
        &mut self,
        namespace: &str,
        room: &str,
        from: &str,
        text: &str,
        out: &mut Outbox,
    ) -> Result<usize, ChatError> {
        let from = self.server_sender(from, text)?;
        let room = normalize_room(room).ok_or(ChatError::RoomInvalid)?;
        let clustered = self.cluster.is_some();
        let (namespace, ns) = self.namespaces.get_key_value(namespace).ok_or(ChatError::NoSuchRoom)?;
        let (room, roster) = ns.rooms.get_key_value(room.as_str()).ok_or(ChatError::NoSuchRoom)?;
        let namespace = namespace.clone();
        let room = room.clone();
        let recipients: Vec<Recipient> = roster.local_recipients().collect();
        let delivered = roster.len();
        let text: Rc<str> = text.into();
        if clustered {
            out.cluster.push(Broadcast::Message {
                namespace: namespace.clone(),
                room: room.clone(),
                from: from.clone(),
                text: text.clone(),
            });
        }
        let mark = self.record(&namespace, &room, &from, &text);
        let audience = Audience::Room(room.clone());
        self.push_replayable(&namespace, audience, None, Event::Message { room, from, text, mark }, recipients, out);
        Ok(delivered)
    }

    /// A private message from `from` to the user `to`, wherever it is
    /// connected: `no_such_user` if nobody has that name.
    pub fn server_private(
        &mut self,
        namespace: &str,
        to: &str,
        from: &str,
        text: &str,
        out: &mut Outbox,
    ) -> Result<usize, ChatError> {
        let from = self.server_sender(from, text)?;
        let (namespace, ns) = self.namespaces.get_key_value(namespace).ok_or(ChatError::NoSuchUser)?;
        let target = find_user(ns, to).map_err(|f| f.error)?;
        match &target.place {
            Place::Here(endpoint) => {
                let recipient = Recipient { endpoint: *endpoint, member: target.id, omit: None };
                let (namespace, audience) = (namespace.clone(), Audience::User(target.name.clone()));
                let event = Event::Private { from, text: text.into() };
                self.push_replayable(&namespace, audience, None, event, vec![recipient], out);
            }
            Place::Node(node) => out.cluster.push(Broadcast::Private {
                namespace: namespace.clone(),
                node: node.clone(),
                to: target.name.clone(),
                from,
                text: text.into(),
            }),
        }
        Ok(1)
    }

    /// A custom event (`data` raw JSON, `None` is `null`) to the members that
    /// speak events: the whole namespace (and its anonymous listeners), a
    /// room, or one user. `from` names a sender, if any. How many users it
    /// was addressed to (cluster-wide; anonymous listeners here included).
    pub fn server_emit(
        &mut self,
        namespace: &str,
        target: ServerTarget<'_>,
        event: &str,
        data: Option<&str>,
        from: Option<&str>,
        out: &mut Outbox,
    ) -> Result<usize, ChatError> {
        let from: Option<Rc<str>> = match from {
            Some(from) => Some(normalize_name(from).ok_or(ChatError::NameInvalid)?.into()),
            None => None,
        };
        let clustered = self.cluster.is_some();
        let events = |m: &&Member| m.dialect == Dialect::Events;
        let Some((ns_key, ns)) = self.namespaces.get_key_value(namespace) else {
            return match target {
                // Nobody here, but maybe elsewhere: a namespace-wide event still crosses.
                ServerTarget::Namespace if clustered => {
                    out.cluster.push(Broadcast::Custom {
                        namespace: namespace.into(),
                        target: RemoteTarget::Namespace,
                        event: event.into(),
                        data: data.map(Rc::from),
                        from,
                        args: None,
                    });
                    Ok(0)
                }
                ServerTarget::Namespace => Ok(0),
                ServerTarget::Room(_) => Err(ChatError::NoSuchRoom),
                ServerTarget::User(_) => Err(ChatError::NoSuchUser),
            };
        };
        let namespace = ns_key.clone();
        let (recipients, room, elsewhere, delivered, audience): (Vec<Recipient>, _, _, usize, _) = match target {
            ServerTarget::Namespace => {
                let recipients = event_listeners(ns, MemberId(u64::MAX));
                let remote = ns.presence.iter().filter(events).filter(|m| !m.is_local()).count();
                let count = recipients.len() + remote;
                (recipients, None, clustered.then_some(RemoteTarget::Namespace), count, Audience::Namespace)
            }
            ServerTarget::Room(raw) => {
                let room = normalize_room(raw).ok_or(ChatError::RoomInvalid)?;
                let (room, roster) = ns.rooms.get_key_value(room.as_str()).ok_or(ChatError::NoSuchRoom)?;
                let recipients: Vec<Recipient> = roster.iter().filter(events).filter_map(Member::recipient).collect();
                let count = roster.iter().filter(events).count();
                let elsewhere = clustered.then(|| RemoteTarget::Room(room.clone()));
                (recipients, Some(room.clone()), elsewhere, count, Audience::Room(room.clone()))
            }
            ServerTarget::User(to) => {
                let target = find_user(ns, to).map_err(|f| f.error)?;
                if target.dialect == Dialect::Lines {
                    return Err(ChatError::NoSuchUser);
                }
                let elsewhere = match &target.place {
                    Place::Node(node) => Some(RemoteTarget::User { node: node.clone(), name: target.name.clone() }),
                    Place::Here(_) => None,
                };
                (target.recipient().into_iter().collect(), None, elsewhere, 1, Audience::User(target.name.clone()))
            }
        };
        let event: Rc<str> = event.into();
        let data: Option<Rc<str>> = data.map(Rc::from);
        if let Some(target) = elsewhere {
            out.cluster.push(Broadcast::Custom {
                namespace: namespace.clone(),
                target,
                event: event.clone(),
                data: data.clone(),
                from: from.clone(),
                args: None,
            });
        }
        let event = Event::Custom { event, data, from, room, args: None };
        self.push_replayable(&namespace, audience, None, event, recipients, out);
        Ok(delivered)
    }

    /// Closes the user `name` of `namespace`: it hears a `disconnected`
    /// error (with `reason`), then its connection is closed once that is
    /// out, and it leaves as any closed member does. A user of another node
    /// is closed there (a [`Broadcast::Disconnect`]). `no_such_user` if
    /// nobody has that name.
    pub fn server_disconnect(
        &mut self,
        namespace: &str,
        name: &str,
        reason: Option<&str>,
        out: &mut Outbox,
    ) -> Result<(), ChatError> {
        let (ns_key, ns) = self.namespaces.get_key_value(namespace).ok_or(ChatError::NoSuchUser)?;
        let target = find_user(ns, name).map_err(|f| f.error)?;
        match &target.place {
            Place::Here(_) => {
                let id = target.id;
                self.close_member(id, ChatError::Disconnected, reason, out);
            }
            Place::Node(node) => out.cluster.push(Broadcast::Disconnect {
                namespace: ns_key.clone(),
                node: node.clone(),
                name: target.name.clone(),
                reason: reason.map(Rc::from),
            }),
        }
        Ok(())
    }

    /// Another node's API closes `name`, if it is still here.
    pub fn remote_disconnect(&mut self, namespace: &str, name: &str, reason: Option<&str>, out: &mut Outbox) {
        let Some(ns) = self.namespaces.get(namespace) else { return };
        let Some(member) = ns.user(name).filter(|m| m.is_local()).map(|m| m.id) else { return };
        self.close_member(member, ChatError::Disconnected, reason, out);
    }

    /// `member` hears `error` (with `detail`) and is closed after it.
    pub(super) fn close_member(&mut self, member: MemberId, error: ChatError, detail: Option<&str>, out: &mut Outbox) {
        let Some(session) = self.members.get_mut(&member) else { return };
        if !matches!(session.state, State::Registered(_)) || session.quitting {
            return;
        }
        let recipient = Recipient { endpoint: session.endpoint, member, omit: None };
        let event = Event::Error { error, detail: detail.map(Rc::from), tag: None };
        out.push(&session.namespace, event, vec![recipient]);
        session.quitting = true;
        out.closes.push(recipient);
    }

    /// The members of `room` in `namespace`, in join order, cluster-wide.
    pub fn room_members(&self, namespace: &str, room: &str) -> Result<Vec<Rc<str>>, ChatError> {
        let room = normalize_room(room).ok_or(ChatError::RoomInvalid)?;
        let ns = self.namespaces.get(namespace).ok_or(ChatError::NoSuchRoom)?;
        let roster = ns.rooms.get(room.as_str()).ok_or(ChatError::NoSuchRoom)?;
        Ok(roster.names())
    }

    /// Node, users and rooms, for `/api/info`.
    pub fn info(&self) -> HubInfo {
        let mut nodes = self.remote_nodes();
        nodes.sort();
        let mut namespaces: Vec<(Rc<str>, usize)> =
            self.namespaces.iter().map(|(name, ns)| (name.clone(), ns.presence.len())).collect();
        namespaces.sort();
        HubInfo {
            node: self.node_id().map(Rc::from),
            nodes,
            local_users: self.users(),
            remote_users: self.remote_users(),
            rooms: self.rooms(),
            namespaces,
        }
    }
}

/// History: the hub keeps each room's ring with its roster.
impl<D: Directory> Hub<D> {
    /// The time, for history's TTL and stamps (the hub reads no clock).
    pub fn set_now(&mut self, now: std::time::Instant) {
        self.history.now = Some(now);
    }

    /// Whether rooms keep their messages (`--history-size` above 0).
    pub fn history_on(&self) -> bool {
        self.history.config.enabled()
    }

    /// Stores a room message in its room's ring: its epoch and offset, or
    /// `None` with history off or no such room.
    pub(super) fn record(
        &mut self,
        namespace: &str,
        room: &str,
        from: &Rc<str>,
        text: &Rc<str>,
    ) -> Option<crate::chat::Mark> {
        if !self.history.config.enabled() {
            return None;
        }
        let roster = self.namespaces.get_mut(namespace)?.rooms.get_mut(room)?;
        let history = &mut self.history;
        let ring = roster.history.get_or_insert_with(|| Box::new(history.new_ring()));
        let offset = ring.push(&history.config, from.clone(), text.clone(), history.now);
        Some(crate::chat::Mark { epoch: ring.epoch.clone(), offset })
    }

    /// Up to `limit` messages of `room` after offset `since` (the latest
    /// ones when more are there). `None` with history off or no such room.
    pub fn history_page(&mut self, namespace: &str, room: &str, since: Option<u64>, limit: usize) -> Option<Page> {
        if !self.history.config.enabled() {
            return None;
        }
        let room = normalize_room(room)?;
        let key = self.namespaces.get(namespace)?.rooms.get_key_value(room.as_str())?.0.clone();
        let roster = self.namespaces.get_mut(namespace)?.rooms.get_mut(&key)?;
        let history = &mut self.history;
        let ring = roster.history.get_or_insert_with(|| Box::new(history.new_ring()));
        ring.expire(&history.config, history.now);
        Some(Page { room: key, epoch: ring.epoch.clone(), messages: ring.after(since, limit) })
    }

    /// Whether `member` is in `room` (stored form).
    pub fn in_room(&self, member: MemberId, room: &str) -> bool {
        let Some(session) = self.members.get(&member) else { return false };
        self.namespaces
            .get(&session.namespace)
            .and_then(|ns| ns.rooms.get(room))
            .is_some_and(|roster| roster.contains(member))
    }

    /// What `member` missed in `room` since `position`: the room's epoch and
    /// the messages in order, or `Err` with the current epoch (if any) when
    /// some are gone.
    pub fn missed(&mut self, member: MemberId, room: &str, position: &Position) -> Result<Recovery, Option<Rc<str>>> {
        let namespace = self.members.get(&member).map(|s| s.namespace.clone()).ok_or(None)?;
        let roster = self.namespaces.get_mut(&namespace).and_then(|ns| ns.rooms.get_mut(room)).ok_or(None)?;
        let Some(ring) = roster.history.as_mut() else { return Err(None) };
        ring.expire(&self.history.config, self.history.now);
        match ring.missed(position) {
            Some(messages) => Ok(Recovery { epoch: ring.epoch.clone(), messages, last: ring.last_offset() }),
            None => Err(Some(ring.epoch.clone())),
        }
    }

    /// Bytes and messages stored in every room's history, for `/metrics`.
    pub fn history_usage(&self) -> (usize, usize) {
        let rings = self.namespaces.values().flat_map(|ns| ns.rooms.values()).filter_map(|r| r.history.as_ref());
        rings.fold((0, 0), |(bytes, messages), ring| (bytes + ring.bytes(), messages + ring.len()))
    }
}
