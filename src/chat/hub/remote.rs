//! The hub's view of the other nodes of a cluster: their users stand in the
//! same rosters as local ones (so presence, `who`, `rooms`, name checks and
//! private messages see one world), marked [`Place::Node`], and never
//! become recipients here: what they should get crosses the backplane once
//! per node ([`Broadcast`]), and what other nodes send arrives through the
//! `remote_*` calls below, which deliver to this node's members only.
//!
//! Input from other nodes is checked like any network input: names, rooms
//! and namespaces must be in their stored (NFC, valid) form, unknown users
//! and rooms are ignored, and nothing panics.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use log::{debug, warn};

use super::{Hub, Member, Place, State, event_listeners, leave_room, push_presence};
use crate::chat::directory::ClaimQueue;
use crate::chat::names::{normalize_name, normalize_room};
use crate::chat::{
    Audience, Dialect, Directory, Event, LOBBY, MemberId, Outbox, RawArgs, Recipient, RemoteTarget, Stamp, UserState,
};

/// This node's identity and every user of the others.
pub(super) struct Cluster {
    /// This node's id, as the server API reports it.
    node_id: Rc<str>,
    /// This node's id hash, the middle of its stamps.
    node_hash: u64,
    /// The wall clock in microseconds, as last told; never goes back.
    clock_us: u64,
    users: HashMap<MemberId, RemoteUser>,
    by_node: HashMap<Rc<str>, HashSet<MemberId>>,
}

/// A user connected to another node.
struct RemoteUser {
    node: Rc<str>,
    namespace: Rc<str>,
    name: Rc<str>,
    /// Its rooms, `lobby` included.
    rooms: BTreeSet<Rc<str>>,
}

/// A stable 64-bit hash of a node id (FNV-1a), the same on every node, so
/// stamps made in the same microsecond sort the same way everywhere.
pub fn node_hash(node: &str) -> u64 {
    node.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// Whether `namespace` is in the form the hub stores: `/`, or `/` and a
/// valid NFC room-rule name.
fn stored_namespace(namespace: &str) -> bool {
    namespace == "/" || namespace.strip_prefix('/').is_some_and(|rest| normalize_room(rest).as_deref() == Some(rest))
}

fn stored_name(name: &str) -> bool {
    normalize_name(name).as_deref() == Some(name)
}

fn stored_room(room: &str) -> bool {
    normalize_room(room).as_deref() == Some(room)
}

impl Hub<ClaimQueue> {
    /// Makes this hub one node of a cluster: from now on name claims wait
    /// for the backplane ([`ClaimQueue`]), and the outbox lists what other
    /// nodes must hear ([`crate::chat::Outbox::cluster`]). Call before any
    /// member registers.
    pub fn join_cluster(&mut self, node: &str) {
        self.directory.set_clustered();
        self.cluster = Some(Box::new(Cluster {
            node_id: node.into(),
            node_hash: node_hash(node),
            clock_us: 0,
            users: HashMap::new(),
            by_node: HashMap::new(),
        }));
    }
}

impl<D: Directory> Hub<D> {
    /// Whether this hub is a node of a cluster.
    pub fn is_clustered(&self) -> bool {
        self.cluster.is_some()
    }

    /// The wall clock (microseconds since the Unix epoch) for the stamps of
    /// what happens next; a clock that steps back is ignored, so a node's
    /// own stamps never go back.
    pub fn set_clock_us(&mut self, micros: u64) {
        if let Some(cluster) = &mut self.cluster {
            cluster.clock_us = cluster.clock_us.max(micros);
        }
    }

    /// The stamp of the next arrival, without taking it.
    pub(super) fn peek_stamp(&self) -> Stamp {
        match &self.cluster {
            Some(cluster) => Stamp { micros: cluster.clock_us, node: cluster.node_hash, seq: self.next_seq },
            None => Stamp { micros: 0, node: 0, seq: self.next_seq },
        }
    }

    /// Takes the stamp of an arrival.
    pub(super) fn stamp(&mut self) -> Stamp {
        let stamp = self.peek_stamp();
        self.next_seq += 1;
        stamp
    }

    /// This node's id in the cluster, if it is in one.
    pub fn node_id(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| &*c.node_id)
    }

    /// Users of other nodes this hub knows, all namespaces.
    pub fn remote_users(&self) -> usize {
        self.cluster.as_ref().map_or(0, |c| c.users.len())
    }

    /// Every user registered here, with its rooms: what this node tells the
    /// others when it (re)joins the cluster.
    pub fn local_state(&self) -> Vec<UserState> {
        let mut users = Vec::new();
        for session in self.members.values() {
            let State::Registered(user) = &session.state else { continue };
            let Some(ns) = self.namespaces.get(&session.namespace) else { continue };
            let Some(id) = ns.by_name.get(&user.name) else { continue };
            let Some(stamp) = ns.presence.stamp(*id) else { continue };
            let rooms = user
                .rooms
                .iter()
                .filter(|room| ***room != *LOBBY)
                .filter_map(|room| Some((room.clone(), ns.rooms.get(room)?.stamp(*id)?)))
                .collect();
            users.push(UserState {
                namespace: session.namespace.clone(),
                name: user.name.clone(),
                stamp,
                dialect: session.dialect,
                rooms,
            });
        }
        users.sort_by_key(|user| user.stamp);
        users
    }

    /// Every (namespace, room) with a member on this node: the room channels
    /// to subscribe after a reconnect.
    pub fn local_rooms(&self) -> Vec<(Rc<str>, Rc<str>)> {
        let mut rooms = Vec::new();
        for (namespace, ns) in &self.namespaces {
            for (room, roster) in &ns.rooms {
                if roster.local_len() > 0 {
                    rooms.push((namespace.clone(), room.clone()));
                }
            }
        }
        rooms
    }

    /// Every registered member here with its namespace and name: the names
    /// to claim again after the backplane lost them.
    pub fn local_names(&self) -> Vec<(Rc<str>, Rc<str>, MemberId)> {
        let registered = self.members.iter().filter_map(|(id, session)| match &session.state {
            State::Registered(user) => Some((session.namespace.clone(), user.name.clone(), *id)),
            _ => None,
        });
        registered.collect()
    }

    /// Every claim still waiting for the directory, as it was asked: what
    /// to ask again when the answer was lost with the connection.
    pub fn pending_claims(&self) -> Vec<crate::chat::ClaimRequest> {
        let claiming = self.members.iter().filter_map(|(id, session)| match &session.state {
            State::Claiming(pending) => Some(crate::chat::ClaimRequest {
                namespace: session.namespace.clone(),
                name: pending.name.clone(),
                member: *id,
                claim: true,
            }),
            _ => None,
        });
        claiming.collect()
    }

    /// A member lost its name to another node (a claim made again after a
    /// partition found it taken): it hears `name_taken` and is closed.
    pub fn evict(&mut self, member: MemberId, out: &mut Outbox) {
        let name = match self.members.get(&member).map(|s| &s.state) {
            Some(State::Registered(user)) => user.name.clone(),
            _ => return,
        };
        self.close_member(member, crate::chat::ChatError::NameTaken, Some(&name), out);
    }

    /// A user registered on `node`.
    pub fn remote_online(
        &mut self,
        node: &str,
        namespace: &str,
        name: &str,
        stamp: Stamp,
        dialect: Dialect,
        out: &mut Outbox,
    ) {
        if let Some(namespace) = self.add_remote(node, namespace, name, stamp, dialect)
            && let Some(ns) = self.namespaces.get(&namespace)
        {
            push_presence(&namespace, ns, None, out);
        }
    }

    /// A user of `node` left: it leaves every room, and presence changes.
    pub fn remote_offline(&mut self, node: &str, namespace: &str, name: &str, out: &mut Outbox) {
        if let Some(id) = self.remote_member(node, namespace, name) {
            self.drop_remote(id, out);
        }
    }

    /// A user of `node` joined `room`.
    pub fn remote_joined(
        &mut self,
        node: &str,
        namespace: &str,
        room: &str,
        name: &str,
        stamp: Stamp,
        out: &mut Outbox,
    ) {
        if let Some(id) = self.remote_member(node, namespace, name) {
            self.remote_join(id, room, stamp, out);
        }
    }

    /// A user of `node` left `room`.
    pub fn remote_left(&mut self, node: &str, namespace: &str, room: &str, name: &str, out: &mut Outbox) {
        if let Some(id) = self.remote_member(node, namespace, name) {
            self.remote_leave(id, room, out);
        }
    }

    /// A room message from another node, for this node's members of `room`.
    pub fn remote_message(&mut self, namespace: &str, room: &str, from: &str, text: &str, out: &mut Outbox) {
        if !stored_name(from) {
            return;
        }
        let Some((namespace, ns)) = self.namespaces.get_key_value(namespace) else { return };
        let Some((room, roster)) = ns.rooms.get_key_value(room) else { return };
        let recipients: Vec<Recipient> = roster.local_recipients().collect();
        let (namespace, room, from, text): (Rc<str>, Rc<str>, Rc<str>, Rc<str>) =
            (namespace.clone(), room.clone(), from.into(), text.into());
        let mark = self.record(&namespace, &room, &from, &text);
        let audience = Audience::Room(room.clone());
        self.push_replayable(&namespace, audience, None, Event::Message { room, from, text, mark }, recipients, out);
    }

    /// A private message from another node for `to`, if it is still here.
    pub fn remote_private(&mut self, namespace: &str, to: &str, from: &str, text: &str, out: &mut Outbox) {
        if !stored_name(from) {
            return;
        }
        let Some((namespace, ns)) = self.namespaces.get_key_value(namespace) else { return };
        let Some(user) = ns.user(to) else { return };
        let Some(recipient) = user.recipient() else { return };
        let (namespace, audience) = (namespace.clone(), Audience::User(user.name.clone()));
        let event = Event::Private { from: from.into(), text: text.into() };
        self.push_replayable(&namespace, audience, None, event, vec![recipient], out);
    }

    /// A custom event from another node: to this node's events members of
    /// the namespace (and its listeners), of a room, or to one user here.
    #[allow(clippy::too_many_arguments)]
    pub fn remote_custom(
        &mut self,
        namespace: &str,
        target: &RemoteTarget,
        event: &str,
        data: Option<&str>,
        from: Option<&str>,
        args: Option<Rc<RawArgs>>,
        out: &mut Outbox,
    ) {
        // Names go into every wire format as they are (a legacy line, a
        // STOMP header): only a valid one is taken from a peer.
        if from.is_some_and(|from| !stored_name(from)) {
            return;
        }
        let Some((namespace, ns)) = self.namespaces.get_key_value(namespace) else { return };
        let events_member = |m: &&Member| m.dialect == Dialect::Events;
        let (recipients, room, audience): (Vec<Recipient>, _, _) = match target {
            RemoteTarget::Namespace => (event_listeners(ns, MemberId(u64::MAX)), None, Audience::Namespace),
            RemoteTarget::Room(room) => {
                let Some((room, roster)) = ns.rooms.get_key_value(&**room) else { return };
                let recipients = roster.iter().filter(events_member).filter_map(Member::recipient).collect();
                (recipients, Some(room.clone()), Audience::Room(room.clone()))
            }
            RemoteTarget::User { name, .. } => {
                let recipients = ns.user(name).into_iter().filter(events_member).filter_map(Member::recipient);
                (recipients.collect(), None, Audience::User(name.clone()))
            }
        };
        let namespace = namespace.clone();
        let event =
            Event::Custom { event: event.into(), data: data.map(Rc::from), from: from.map(Rc::from), room, args };
        self.push_replayable(&namespace, audience, None, event, recipients, out);
    }

    /// Everything `node` has now, after it (re)joined: its users this hub
    /// lists but the snapshot does not are dropped, new ones added, rooms
    /// brought in line; presence is pushed once per namespace that changed.
    pub fn remote_state(&mut self, node: &str, users: &[UserState], out: &mut Outbox) {
        if self.cluster.is_none() {
            return;
        }
        let wanted: HashSet<(&str, &str)> = users.iter().map(|u| (&*u.namespace, &*u.name)).collect();
        let known: Vec<MemberId> = self.node_members(node);
        let mut touched: BTreeSet<Rc<str>> = BTreeSet::new();
        for id in known {
            let Some(user) = self.cluster.as_ref().and_then(|c| c.users.get(&id)) else { continue };
            if !wanted.contains(&(&*user.namespace, &*user.name)) {
                touched.insert(user.namespace.clone());
                self.drop_remote_quietly(id, out);
            }
        }
        for user in users {
            let id = match self.remote_member(node, &user.namespace, &user.name) {
                Some(id) => id,
                None => {
                    let Some(namespace) = self.add_remote(node, &user.namespace, &user.name, user.stamp, user.dialect)
                    else {
                        continue;
                    };
                    touched.insert(namespace);
                    match self.remote_member(node, &user.namespace, &user.name) {
                        Some(id) => id,
                        None => continue,
                    }
                }
            };
            let current: Vec<Rc<str>> = self
                .cluster
                .as_ref()
                .and_then(|c| c.users.get(&id))
                .map(|u| u.rooms.iter().filter(|r| ***r != *LOBBY).cloned().collect())
                .unwrap_or_default();
            for room in current {
                if !user.rooms.iter().any(|(r, _)| *r == room) {
                    self.remote_leave(id, &room, out);
                }
            }
            for (room, stamp) in &user.rooms {
                self.remote_join(id, room, *stamp, out);
            }
        }
        for namespace in touched {
            if let Some(ns) = self.namespaces.get(&namespace) {
                push_presence(&namespace, ns, None, out);
            }
            self.drop_unused_namespace(&namespace);
        }
    }

    /// `node` died or left: its users leave everywhere, with one presence
    /// push per namespace.
    pub fn remote_node_gone(&mut self, node: &str, out: &mut Outbox) {
        self.remote_state(node, &[], out);
        if let Some(cluster) = &mut self.cluster {
            cluster.by_node.remove(node);
        }
    }

    /// Every node this hub lists users of.
    pub fn remote_nodes(&self) -> Vec<Rc<str>> {
        self.cluster.as_ref().map_or_else(Vec::new, |c| c.by_node.keys().cloned().collect())
    }

    fn node_members(&self, node: &str) -> Vec<MemberId> {
        let Some(cluster) = &self.cluster else { return Vec::new() };
        cluster.by_node.get(node).map_or_else(Vec::new, |ids| ids.iter().copied().collect())
    }

    /// The member standing for `name` of `node` in `namespace`.
    fn remote_member(&self, node: &str, namespace: &str, name: &str) -> Option<MemberId> {
        let id = *self.namespaces.get(namespace)?.by_name.get(name)?;
        let user = self.cluster.as_ref()?.users.get(&id)?;
        (*user.node == *node).then_some(id)
    }

    /// Lists a user of `node`, quietly (the caller pushes presence). Returns
    /// its namespace, or `None` when the input is invalid or the name is
    /// held here (the directory decides who keeps it; a local user stays).
    fn add_remote(
        &mut self,
        node: &str,
        namespace: &str,
        name: &str,
        stamp: Stamp,
        dialect: Dialect,
    ) -> Option<Rc<str>> {
        self.cluster.as_ref()?;
        if !stored_namespace(namespace) || !stored_name(name) {
            warn!("cluster: node {node} announced an invalid user {name:?} in {namespace:?}");
            return None;
        }
        if let Some(existing) = self.namespaces.get(namespace).and_then(|ns| ns.by_name.get(name)).copied() {
            match self.cluster.as_ref().and_then(|c| c.users.get(&existing)) {
                Some(user) if *user.node == *node => return None,
                // The same name moved to another node: the newer word wins.
                Some(_) => {
                    let namespace = self.drop_remote_quietly(existing, &mut Outbox::default());
                    debug!("cluster: {name} moved to node {node} in {namespace:?}");
                }
                None => {
                    warn!("cluster: node {node} announced {name} in {namespace}, registered here");
                    return None;
                }
            }
        }
        let id = MemberId(self.next_member);
        self.next_member += 1;
        let ns_key = match self.namespaces.get_key_value(namespace) {
            Some((key, _)) => key.clone(),
            None => Rc::from(namespace),
        };
        let node_key = match self.cluster.as_ref().and_then(|c| c.by_node.get_key_value(node)) {
            Some((key, _)) => key.clone(),
            None => Rc::from(node),
        };
        let name: Rc<str> = name.into();
        let ns = self.namespaces.entry(ns_key.clone()).or_default();
        let member = Member { id, place: Place::Node(node_key.clone()), name: name.clone(), dialect };
        ns.by_name.insert(name.clone(), id);
        ns.presence.insert(stamp, member.clone());
        let lobby = match ns.rooms.get_key_value(LOBBY) {
            Some((key, _)) => key.clone(),
            None => Rc::from(LOBBY),
        };
        ns.rooms.entry(lobby.clone()).or_default().insert(stamp, member);
        let cluster = self.cluster.as_mut()?;
        cluster.by_node.entry(node_key.clone()).or_default().insert(id);
        let user = RemoteUser { node: node_key, namespace: ns_key.clone(), name, rooms: BTreeSet::from([lobby]) };
        cluster.users.insert(id, user);
        Some(ns_key)
    }

    fn remote_join(&mut self, id: MemberId, room: &str, stamp: Stamp, out: &mut Outbox) {
        if !stored_room(room) || room == LOBBY {
            return;
        }
        let Some(user) = self.cluster.as_mut().and_then(|c| c.users.get_mut(&id)) else { return };
        let Some(ns) = self.namespaces.get_mut(&user.namespace) else { return };
        let Some(member) = ns.presence.get(id).cloned() else { return };
        let key = match ns.rooms.get_key_value(room) {
            Some((key, _)) => key.clone(),
            None => Rc::from(room),
        };
        let roster = ns.rooms.entry(key.clone()).or_default();
        if !roster.insert(stamp, member) {
            return;
        }
        user.rooms.insert(key.clone());
        let recipients: Vec<Recipient> = roster.local_recipients().collect();
        let event = Event::Joined { room: key, name: user.name.clone() };
        out.push(&user.namespace.clone(), event, recipients);
    }

    fn remote_leave(&mut self, id: MemberId, room: &str, out: &mut Outbox) {
        if room == LOBBY {
            return;
        }
        let Some(user) = self.cluster.as_mut().and_then(|c| c.users.get_mut(&id)) else { return };
        let Some(key) = user.rooms.take(room) else { return };
        let Some(ns) = self.namespaces.get_mut(&user.namespace) else { return };
        let Some(roster) = ns.rooms.get_mut(&key) else { return };
        if !roster.remove(id) {
            return;
        }
        let recipients: Vec<Recipient> = roster.local_recipients().collect();
        if roster.is_empty() {
            ns.rooms.remove(&key);
        }
        out.push(&user.namespace.clone(), Event::Left { room: key, name: user.name.clone() }, recipients);
    }

    /// Removes a user of another node everywhere and pushes presence.
    pub(super) fn drop_remote(&mut self, id: MemberId, out: &mut Outbox) {
        let Some(namespace) = self.drop_remote_quietly(id, out) else { return };
        if let Some(ns) = self.namespaces.get(&namespace) {
            push_presence(&namespace, ns, None, out);
        }
        self.drop_unused_namespace(&namespace);
    }

    /// [`Hub::drop_remote`] without the presence push; returns the namespace.
    fn drop_remote_quietly(&mut self, id: MemberId, out: &mut Outbox) -> Option<Rc<str>> {
        let cluster = self.cluster.as_mut()?;
        let user = cluster.users.remove(&id)?;
        if let Some(ids) = cluster.by_node.get_mut(&user.node) {
            ids.remove(&id);
        }
        let ns = self.namespaces.get_mut(&user.namespace)?;
        if ns.by_name.get(&user.name) == Some(&id) {
            ns.by_name.remove(&user.name);
        }
        ns.presence.remove(id);
        for room in &user.rooms {
            leave_room(&user.namespace, ns, room, id, &user.name, false, out);
        }
        Some(user.namespace)
    }
}
