//! The hub: registration, rooms, presence and routing for every namespace.
//! Sans-IO: parsed requests in, an [`Outbox`] of semantic events out.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use log::debug;

use super::directory::{Claim, ClaimQueue, Directory};
use super::error::{ChatError, Failure};
use super::names::{normalize_name, normalize_room};
use super::room::{Member, Namespace, Place, Roster};
use super::{
    Audience, Broadcast, ChatConfig, Command, Dialect, EmitTarget, Endpoint, Event, LOBBY, MemberId, Outbox, RawArgs,
    Recipient, RemoteTarget, Request, Tag,
};

mod grants;
mod remote;
mod resume;
mod server;

pub use resume::Resumed;

pub use server::{HubInfo, ServerTarget};

pub use grants::AuthFailure;

/// Every chat member, registered or not, and every namespace's world.
/// Generic over the [`Directory`] that settles name claims beyond this
/// process; [`Hub::new`] uses a [`ClaimQueue`], which grants every claim
/// until the hub joins a cluster.
pub struct Hub<D: Directory = ClaimQueue> {
    config: ChatConfig,
    directory: D,
    members: HashMap<MemberId, Session>,
    /// Namespaces with at least one registered user or pending claim.
    namespaces: HashMap<Rc<str>, Namespace>,
    next_member: u64,
    /// Arrival counter for presence and room order.
    next_seq: u64,
    /// Users of other nodes, once this hub is part of a cluster.
    cluster: Option<Box<remote::Cluster>>,
    history: super::history::HistoryState,
    /// Token passes, when tokens are on (docs/AUTH.md).
    grants: grants::Grants,
    /// Socket.IO connection state recovery, when it is on.
    recovery: Option<Box<super::recovery::RecoveryLog>>,
}

/// One attached member.
struct Session {
    endpoint: Endpoint,
    dialect: Dialect,
    namespace: Rc<str>,
    state: State,
    /// `/quit` seen: the caller closes after flushing; later input is ignored.
    quitting: bool,
}

enum State {
    Unregistered,
    /// A `hello` waits for the directory. Boxed, as is the user: most
    /// members are one or the other, and an anonymous listener pays for neither.
    Claiming(Box<Pending>),
    Registered(Box<User>),
}

/// A claim in flight: the name (NFC) and the request's tag.
struct Pending {
    name: Rc<str>,
    tag: Option<Tag>,
}

/// A registered member's identity and rooms (for the disconnect notices).
struct User {
    name: Rc<str>,
    rooms: BTreeSet<Rc<str>>,
}

/// Who asked, and the tag to answer with.
#[derive(Clone)]
struct Sender {
    id: MemberId,
    namespace: Rc<str>,
    endpoint: Endpoint,
    dialect: Dialect,
    tag: Option<Tag>,
}

impl Sender {
    /// `id` (attached as `session`) asking, with `tag`.
    fn of(id: MemberId, session: &Session, tag: Option<Tag>) -> Sender {
        Sender { id, namespace: session.namespace.clone(), endpoint: session.endpoint, dialect: session.dialect, tag }
    }

    fn recipient(&self) -> Recipient {
        Recipient { endpoint: self.endpoint, member: self.id, omit: None }
    }
}

/// How a successful request was answered.
enum Done {
    /// Nothing sent to the sender yet: a tagged request gets an `ack`.
    Effects,
    /// The request had its own reply (`welcome`, `members`, `rooms`), which
    /// carried the tag, or will have it (a pending claim).
    Replied,
}

/// The registered sender's namespace and name.
struct Me {
    namespace: Rc<str>,
    name: Rc<str>,
}

impl Hub {
    /// An empty hub whose names are unique within this process, until it
    /// joins a cluster.
    pub fn new(config: ChatConfig) -> Hub {
        Hub::with_directory(config, ClaimQueue::default())
    }
}

impl<D: Directory> Hub<D> {
    /// An empty hub asking `directory` about every name claim.
    pub fn with_directory(config: ChatConfig, directory: D) -> Hub<D> {
        Hub {
            history: super::history::HistoryState::new(config.history),
            config,
            directory,
            members: HashMap::new(),
            namespaces: HashMap::new(),
            next_member: 0,
            next_seq: 0,
            cluster: None,
            grants: grants::Grants::default(),
            recovery: super::recovery::RecoveryLog::new(config.recovery).map(Box::new),
        }
    }

    /// The directory, for its owner to feed answers or inspect it.
    pub fn directory_mut(&mut self) -> &mut D {
        &mut self.directory
    }

    /// A new member reachable at `endpoint` in `namespace` (already
    /// normalised by the caller: `/` or `/NAME`). It is not registered yet.
    pub fn attach(&mut self, endpoint: Endpoint, dialect: Dialect, namespace: &str) -> MemberId {
        let id = MemberId(self.next_member);
        self.next_member += 1;
        // Members of a namespace in use share its name.
        let namespace = match self.namespaces.get_key_value(namespace) {
            Some((name, _)) => name.clone(),
            None => Rc::from(namespace),
        };
        let session = Session { endpoint, dialect, namespace, state: State::Unregistered, quitting: false };
        self.members.insert(id, session);
        id
    }

    /// Runs one request of `member`. Unknown members and members that sent
    /// `/quit` are ignored.
    ///
    /// Error precedence after the parser's own (`bad_json`, `unknown_type`,
    /// fields): `already_registered` / `not_registered` (only `hello` and
    /// `/quit` before registering), then `too_large`, then the name and room
    /// rules (`room_invalid`, `no_such_room`, `not_in_room`, `no_such_user`,
    /// `name_invalid`, `name_taken`). A tagged request with no reply of its
    /// own gets an `ack` after its effects; a refused one an error with the tag.
    pub fn handle(&mut self, member: MemberId, request: Request<'_>, out: &mut Outbox) {
        let Some(session) = self.members.get(&member) else {
            debug!("chat: request from unknown {member:?}");
            return;
        };
        if session.quitting {
            return;
        }
        let sender = Sender::of(member, session, request.tag);
        let gate = match (&session.state, &request.command) {
            (_, Command::Quit) => Ok(()),
            (State::Unregistered, command) if !command.allowed_unregistered() => {
                Err(Failure::bare(ChatError::NotRegistered))
            }
            (State::Unregistered, _) => Ok(()),
            // A claim in flight is a registration under way.
            (State::Claiming(_), command) if command.is_hello() => Err(Failure::bare(ChatError::AlreadyRegistered)),
            (State::Claiming(_), Command::Relay { .. }) => Ok(()),
            (State::Claiming(_), _) => Err(Failure::bare(ChatError::NotRegistered)),
            (State::Registered(_), command) if command.is_hello() => Err(Failure::bare(ChatError::AlreadyRegistered)),
            (State::Registered(_), _) => Ok(()),
        };
        let gate = gate.and_then(|()| self.grants.check(member, &request.command));
        let result = gate.and_then(|()| self.execute(&sender, request.command, out));
        match result {
            Ok(Done::Effects) => {
                if let Some(tag) = sender.tag.clone() {
                    out.push(&sender.namespace, Event::Ack { tag }, vec![sender.recipient()]);
                }
            }
            Ok(Done::Replied) => {}
            Err(failure) => reply_error(&sender, &failure, out),
        }
    }

    /// A request the app could not parse (`bad_json`, `missing_field`,
    /// `unknown_type`, `too_large`, ...): an error event to `member`, with
    /// `tag` when the app found one. Ignored for unknown or quitting members.
    pub fn reject(
        &mut self,
        member: MemberId,
        error: ChatError,
        detail: Option<&str>,
        tag: Option<Tag>,
        out: &mut Outbox,
    ) {
        let Some(session) = self.members.get(&member) else {
            return;
        };
        if session.quitting {
            return;
        }
        let sender = Sender::of(member, session, tag);
        let failure = Failure { error, detail: detail.unwrap_or_default().to_owned() };
        reply_error(&sender, &failure, out);
    }

    /// Acknowledges with `tag` a request the app itself handled (a token
    /// refresh), as the hub acknowledges the requests it runs.
    pub fn ack(&mut self, member: MemberId, tag: Tag, out: &mut Outbox) {
        let Some(session) = self.members.get(&member) else {
            return;
        };
        if session.quitting {
            return;
        }
        let sender = Sender::of(member, session, None);
        out.push(&sender.namespace, Event::Ack { tag }, vec![sender.recipient()]);
    }

    /// The namespace `member` is attached in.
    pub fn namespace_of(&self, member: MemberId) -> Option<Rc<str>> {
        self.members.get(&member).map(|s| s.namespace.clone())
    }

    /// Everyone online in `member`'s namespace, oldest first (the list a
    /// presence event carries), `member` included.
    pub fn online(&self, member: MemberId) -> Rc<[Rc<str>]> {
        let Some(session) = self.members.get(&member) else {
            return Rc::from([]);
        };
        self.namespaces.get(&session.namespace).map_or_else(|| Rc::from([]), |ns| ns.presence.names().into())
    }

    /// Whether `member` has registered a name (a pending claim is not yet).
    pub fn is_registered(&self, member: MemberId) -> bool {
        self.members.get(&member).is_some_and(|s| matches!(s.state, State::Registered(_)))
    }

    /// The directory answered `member`'s pending claim: registers it
    /// (`welcome`, then presence to the others) or answers `name_taken` with
    /// the `hello`'s tag. Ignored if no claim of `member` is pending.
    pub fn claim_resolved(&mut self, member: MemberId, granted: bool, out: &mut Outbox) {
        let Some(session) = self.members.get_mut(&member) else {
            return;
        };
        let state = std::mem::replace(&mut session.state, State::Unregistered);
        let State::Claiming(pending) = state else {
            session.state = state;
            return;
        };
        let Pending { name, tag } = *pending;
        let sender = Sender::of(member, session, tag);
        let namespace = session.namespace.clone();
        let quitting = session.quitting;
        if let Some(ns) = self.namespaces.get_mut(&namespace) {
            ns.claiming.remove(&name);
        }
        if granted && !quitting {
            self.complete_registration(&sender, name, out);
            return;
        }
        if granted {
            self.directory.release(&namespace, &name, member);
        } else if !quitting {
            reply_error(&sender, &Failure::with(ChatError::NameTaken, &name), out);
        }
        self.drop_unused_namespace(&namespace);
    }

    /// The member is gone (closed, reset, timed out, cut off as a slow
    /// reader, `/quit` done): removes the user everywhere at once, sends
    /// `left` to the remaining members of each of its rooms but `lobby`
    /// (rooms in code point order), then the new online list to every
    /// remaining user of the namespace. Idempotent; unknown ids are ignored.
    pub fn detach(&mut self, member: MemberId, out: &mut Outbox) {
        self.grants.forget(member);
        let Some(session) = self.members.remove(&member) else {
            return;
        };
        let user = match session.state {
            State::Unregistered => {
                if let Some(ns) = self.namespaces.get_mut(&session.namespace) {
                    ns.audience.remove(&member);
                }
                self.drop_unused_namespace(&session.namespace);
                return;
            }
            State::Claiming(pending) => {
                let name = pending.name;
                self.directory.release(&session.namespace, &name, member);
                if let Some(ns) = self.namespaces.get_mut(&session.namespace) {
                    ns.claiming.remove(&name);
                }
                self.drop_unused_namespace(&session.namespace);
                return;
            }
            State::Registered(user) => user,
        };
        self.directory.release(&session.namespace, &user.name, member);
        let clustered = self.cluster.is_some();
        if clustered {
            let offline = Broadcast::Offline { namespace: session.namespace.clone(), name: user.name.clone() };
            out.cluster.push(offline);
        }
        let Some(ns) = self.namespaces.get_mut(&session.namespace) else {
            return;
        };
        ns.by_name.remove(&user.name);
        ns.presence.remove(member);
        for room in &user.rooms {
            leave_room(&session.namespace, ns, room, member, &user.name, clustered, out);
        }
        push_presence(&session.namespace, ns, None, out);
        self.drop_unused_namespace(&session.namespace);
    }

    /// Shutdown: forgets every member at once with no output at all (each
    /// detach would push presence to all the others: N(N-1)/2 lists).
    /// Names held or claimed are released to the directory.
    pub fn detach_all(&mut self) {
        for (id, session) in self.members.drain() {
            match &session.state {
                State::Unregistered => {}
                State::Claiming(pending) => self.directory.release(&session.namespace, &pending.name, id),
                State::Registered(user) => self.directory.release(&session.namespace, &user.name, id),
            }
        }
        self.namespaces.clear();
    }

    /// Registered users connected to this node, all namespaces.
    pub fn users(&self) -> usize {
        self.namespaces.values().map(|ns| ns.presence.local_len()).sum()
    }

    /// Rooms with members, all namespaces (each namespace with users has a `lobby`).
    pub fn rooms(&self) -> usize {
        self.namespaces.values().map(|ns| ns.rooms.len()).sum()
    }

    /// Attached members, registered or not (for leak checks).
    pub fn attached(&self) -> usize {
        self.members.len()
    }

    /// Runs one request of a sender that passed the registration gate.
    fn execute(&mut self, sender: &Sender, command: Command<'_>, out: &mut Outbox) -> Result<Done, Failure> {
        match command {
            Command::Hello { name } => self.register(sender, &name, out),
            Command::Quit => {
                self.quit(sender, out);
                Ok(Done::Effects)
            }
            Command::Say { room, text } => self.say(sender, &room, &text, out),
            Command::Private { to, text } => self.private(sender, &to, &text, out),
            Command::Join { room } => self.join(sender, &room, out),
            Command::Leave { room } => self.leave(sender, &room, out),
            Command::Emit { event, data, target } => self.emit(sender, &event, data.as_deref(), target, out),
            Command::Who { room } => self.who(sender, &room, out),
            Command::Rooms => self.list_rooms(sender, out),
            Command::Relay { event, data, args } => self.relay(sender, &event, data.as_deref(), args, out),
        }
    }

    /// Makes an unregistered member part of its namespace's audience: it
    /// receives what goes to the whole namespace (relays and namespace-wide
    /// emits) before it has a name, as a Socket.IO client without one does.
    pub fn listen(&mut self, member: MemberId) {
        let Some(session) = self.members.get(&member) else {
            return;
        };
        if !matches!(session.state, State::Unregistered) {
            return;
        }
        if session.dialect != Dialect::Events {
            return;
        }
        self.namespaces.entry(session.namespace.clone()).or_default().audience.insert(member, session.endpoint);
    }

    /// Claims `raw_name` in the sender's namespace; once granted, the joiner
    /// gets its `welcome` first, then every other user its new list.
    fn register(&mut self, sender: &Sender, raw_name: &str, out: &mut Outbox) -> Result<Done, Failure> {
        let Some(session) = self.members.get(&sender.id) else {
            return Err(Failure::bare(ChatError::NotRegistered));
        };
        let name = normalize_name(raw_name).ok_or_else(|| Failure::with(ChatError::NameInvalid, raw_name))?;
        let namespace = session.namespace.clone();
        if self.namespaces.get(&namespace).is_some_and(|ns| ns.name_in_use(&name)) {
            return Err(Failure::with(ChatError::NameTaken, &name));
        }
        match self.directory.claim(&namespace, &name, sender.id) {
            Claim::Granted => self.complete_registration(sender, name.into(), out),
            Claim::Taken => return Err(Failure::with(ChatError::NameTaken, &name)),
            Claim::Pending => {
                let name: Rc<str> = name.into();
                self.namespaces.entry(namespace).or_default().claiming.insert(name.clone(), sender.id);
                if let Some(session) = self.members.get_mut(&sender.id) {
                    session.state = State::Claiming(Box::new(Pending { name, tag: sender.tag.clone() }));
                }
            }
        }
        Ok(Done::Replied)
    }

    /// Registers the sender under `name` (NFC, granted): `welcome` to it,
    /// then the new online list to everyone else in its namespace.
    fn complete_registration(&mut self, sender: &Sender, name: Rc<str>, out: &mut Outbox) {
        // The directory granted the name, so a user of another node still
        // listed under it is gone (its node died and the news is late).
        let stale = self.namespaces.get(&sender.namespace).and_then(|ns| ns.user(&name)).map(|m| m.id);
        if let Some(stale) = stale {
            self.drop_remote(stale, out);
        }
        let stamp = self.stamp();
        let Some(session) = self.members.get_mut(&sender.id) else {
            return;
        };
        let ns = self.namespaces.entry(session.namespace.clone()).or_default();
        debug!(
            "event=registered {} member={} name={} namespace={}",
            session.endpoint,
            sender.id.0,
            crate::logging::quote(&name),
            crate::logging::quote(&session.namespace)
        );
        let member = Member {
            id: sender.id,
            place: Place::Here(session.endpoint),
            name: name.clone(),
            dialect: session.dialect,
        };
        ns.by_name.insert(name.clone(), sender.id);
        ns.audience.remove(&sender.id);
        ns.presence.insert(stamp, member.clone());
        let lobby = match ns.rooms.get_key_value(LOBBY) {
            Some((key, _)) => key.clone(),
            None => Rc::from(LOBBY),
        };
        let lobby_roster = ns.rooms.entry(lobby.clone()).or_default();
        lobby_roster.insert(stamp, member);
        if self.cluster.is_some() {
            let namespace = session.namespace.clone();
            let dialect = session.dialect;
            out.cluster.push(Broadcast::Online { namespace: namespace.clone(), name: name.clone(), stamp, dialect });
            if lobby_roster.local_len() == 1 {
                out.cluster.push(Broadcast::Subscribe { namespace, room: lobby.clone() });
            }
        }
        session.state =
            State::Registered(Box::new(User { name: name.clone(), rooms: BTreeSet::from([lobby.clone()]) }));

        let names: Rc<[Rc<str>]> = ns.presence.names().into();
        // In a cluster a user of another node may be listed after the
        // joiner (clocks differ), so its own entry is found, not assumed last.
        let own = ns.presence.iter().position(|m| m.id == sender.id);
        let others: Rc<[Rc<str>]> =
            names.iter().enumerate().filter(|(i, _)| Some(*i) != own).map(|(_, n)| n.clone()).collect();
        let welcome = Event::Welcome {
            name,
            namespace: session.namespace.clone(),
            users: others,
            rooms: Rc::from([lobby]),
            tag: sender.tag.clone(),
        };
        out.push(&sender.namespace, welcome, vec![sender.recipient()]);
        presence_delivery(&sender.namespace, ns, names, Some(sender.id), out);
    }

    fn quit(&mut self, sender: &Sender, out: &mut Outbox) {
        if let Some(session) = self.members.get_mut(&sender.id)
            && !session.quitting
        {
            session.quitting = true;
            out.closes.push(sender.recipient());
        }
    }

    fn say(&mut self, sender: &Sender, room: &str, text: &str, out: &mut Outbox) -> Result<Done, Failure> {
        self.check_text(text)?;
        let me = self.me(sender.id)?;
        let ns = self.namespace(&me)?;
        let (room, roster) = member_room(ns, sender.id, room)?;
        let recipients: Vec<Recipient> = roster.local_recipients().filter(|r| r.member != sender.id).collect();
        let text: Rc<str> = text.into();
        // Published even when this node lists nobody elsewhere in the room:
        // its list may be behind (Redis was unreachable, a join is in
        // flight), and Redis hands the message only to nodes subscribed to
        // the room, so a room that is all here costs one publish, no delivery.
        if self.cluster.is_some() {
            out.cluster.push(Broadcast::Message {
                namespace: sender.namespace.clone(),
                room: room.clone(),
                from: me.name.clone(),
                text: text.clone(),
            });
        }
        let room = room.clone();
        let mark = self.record(&sender.namespace, &room, &me.name, &text);
        let audience = Audience::Room(room.clone());
        let event = Event::Message { room, from: me.name.clone(), text, mark };
        self.push_replayable(&sender.namespace, audience, Some(&me.name), event, recipients, out);
        Ok(Done::Effects)
    }

    fn private(&mut self, sender: &Sender, to: &str, text: &str, out: &mut Outbox) -> Result<Done, Failure> {
        self.check_text(text)?;
        let me = self.me(sender.id)?;
        let ns = self.namespace(&me)?;
        let target = find_user(ns, to)?;
        match &target.place {
            // Section 2: a message to oneself is delivered like any other.
            Place::Here(endpoint) => {
                let recipient = Recipient { endpoint: *endpoint, member: target.id, omit: None };
                let audience = Audience::User(target.name.clone());
                let event = Event::Private { from: me.name, text: text.into() };
                self.push_replayable(&sender.namespace, audience, None, event, vec![recipient], out);
            }
            Place::Node(node) => out.cluster.push(Broadcast::Private {
                namespace: sender.namespace.clone(),
                node: node.clone(),
                to: target.name.clone(),
                from: me.name,
                text: text.into(),
            }),
        }
        Ok(Done::Effects)
    }

    fn join(&mut self, sender: &Sender, room: &str, out: &mut Outbox) -> Result<Done, Failure> {
        let room = normalize_room(room).ok_or_else(|| Failure::with(ChatError::RoomInvalid, room))?;
        let me = self.me(sender.id)?;
        let stamp = self.peek_stamp();
        let clustered = self.cluster.is_some();
        let Some(ns) = self.namespaces.get_mut(&me.namespace) else {
            return Err(Failure::bare(ChatError::NotRegistered));
        };
        let key = match ns.rooms.get_key_value(room.as_str()) {
            // Section 1: joining a room one is already in is a no-op.
            Some((_, roster)) if roster.contains(sender.id) => return Ok(Done::Effects),
            Some((key, _)) => key.clone(),
            None => Rc::from(room),
        };
        let Some(State::Registered(user)) = self.members.get_mut(&sender.id).map(|s| &mut s.state) else {
            return Err(Failure::bare(ChatError::NotRegistered));
        };
        // The user's room set includes lobby, which the limit does not count.
        if user.rooms.len() > self.config.max_rooms_per_user {
            return Err(Failure::with(ChatError::RoomInvalid, "room limit reached"));
        }
        let roster = ns.rooms.entry(key.clone()).or_default();
        let member = Member {
            id: sender.id,
            place: Place::Here(sender.endpoint),
            name: me.name.clone(),
            dialect: sender.dialect,
        };
        if !roster.insert(stamp, member) {
            return Ok(Done::Effects);
        }
        self.next_seq += 1;
        user.rooms.insert(key.clone());
        if clustered {
            let namespace = sender.namespace.clone();
            if roster.local_len() == 1 {
                out.cluster.push(Broadcast::Subscribe { namespace: namespace.clone(), room: key.clone() });
            }
            out.cluster.push(Broadcast::Joined { namespace, room: key.clone(), name: me.name.clone(), stamp });
        }
        let recipients = roster.local_recipients().collect();
        out.push(&sender.namespace, Event::Joined { room: key, name: me.name }, recipients);
        Ok(Done::Effects)
    }

    fn leave(&mut self, sender: &Sender, room: &str, out: &mut Outbox) -> Result<Done, Failure> {
        let room = normalize_room(room).ok_or_else(|| Failure::with(ChatError::RoomInvalid, room))?;
        if room == LOBBY {
            return Err(Failure::with(ChatError::RoomInvalid, LOBBY));
        }
        let me = self.me(sender.id)?;
        let Some(ns) = self.namespaces.get_mut(&me.namespace) else {
            return Err(Failure::bare(ChatError::NotRegistered));
        };
        let Some((key, roster)) = ns.rooms.get_key_value(room.as_str()) else {
            return Err(Failure::with(ChatError::NoSuchRoom, &room));
        };
        let key = key.clone();
        if !roster.contains(sender.id) {
            return Err(Failure::with(ChatError::NotInRoom, &room));
        }
        let mut recipients = Vec::with_capacity(roster.local_len());
        recipients.extend(roster.local_recipients().filter(|r| r.member != sender.id));
        // The leaver hears of its own leaving, after the remaining members.
        recipients.push(sender.recipient());
        if let Some(roster) = ns.rooms.get_mut(&key) {
            roster.remove(sender.id);
            if self.cluster.is_some() {
                let namespace = sender.namespace.clone();
                let left = Broadcast::Left { namespace: namespace.clone(), room: key.clone(), name: me.name.clone() };
                out.cluster.push(left);
                if roster.local_len() == 0 {
                    out.cluster.push(Broadcast::Unsubscribe { namespace, room: key.clone() });
                }
            }
            if roster.is_empty() {
                ns.rooms.remove(&key);
            }
        }
        if let Some(State::Registered(user)) = self.members.get_mut(&sender.id).map(|s| &mut s.state) {
            user.rooms.remove(&key);
        }
        out.push(&sender.namespace, Event::Left { room: key, name: me.name }, recipients);
        Ok(Done::Effects)
    }

    fn emit(
        &mut self,
        sender: &Sender,
        event: &str,
        data: Option<&str>,
        target: EmitTarget<'_>,
        out: &mut Outbox,
    ) -> Result<Done, Failure> {
        let me = self.me(sender.id)?;
        let ns = self.namespace(&me)?;
        let clustered = self.cluster.is_some();
        // Section 3: receivers that speak events, never the sender.
        let wanted = |m: &&Member| m.dialect == Dialect::Events && m.id != sender.id;
        let (recipients, room, elsewhere, audience): (Vec<Recipient>, _, _, _) = match target {
            EmitTarget::Namespace => {
                let elsewhere = clustered.then_some(RemoteTarget::Namespace);
                (event_listeners(ns, sender.id), None, elsewhere, Audience::Namespace)
            }
            EmitTarget::Room(room) => {
                let (room, roster) = member_room(ns, sender.id, &room)?;
                let elsewhere = clustered.then(|| RemoteTarget::Room(room.clone()));
                let recipients = roster.iter().filter(wanted).filter_map(Member::recipient).collect();
                (recipients, Some(room.clone()), elsewhere, Audience::Room(room.clone()))
            }
            EmitTarget::User(to) => {
                let target = find_user(ns, &to)?;
                // Section 3: legacy users never receive custom events.
                if target.dialect == Dialect::Lines {
                    return Err(Failure::with(ChatError::NoSuchUser, &to));
                }
                let elsewhere = match &target.place {
                    Place::Node(node) => Some(RemoteTarget::User { node: node.clone(), name: target.name.clone() }),
                    Place::Here(_) => None,
                };
                // "never the sender": an emit to oneself reaches no one.
                let recipients = std::iter::once(target).filter(wanted).filter_map(Member::recipient).collect();
                (recipients, None, elsewhere, Audience::User(target.name.clone()))
            }
        };
        let event: Rc<str> = event.into();
        let data: Option<Rc<str>> = data.map(Rc::from);
        if let Some(target) = elsewhere {
            out.cluster.push(Broadcast::Custom {
                namespace: sender.namespace.clone(),
                target,
                event: event.clone(),
                data: data.clone(),
                from: Some(me.name.clone()),
                args: None,
            });
        }
        let event = Event::Custom { event, data, from: Some(me.name.clone()), room, args: None };
        self.push_replayable(&sender.namespace, audience, Some(&me.name), event, recipients, out);
        Ok(Done::Effects)
    }

    /// Every events member of the namespace and its audience, the sender
    /// included; from an unregistered sender, the event names nobody.
    fn relay(
        &mut self,
        sender: &Sender,
        event: &str,
        data: Option<&str>,
        args: Rc<RawArgs>,
        out: &mut Outbox,
    ) -> Result<Done, Failure> {
        let from = match self.members.get(&sender.id).map(|s| &s.state) {
            Some(State::Registered(user)) => Some(user.name.clone()),
            _ => None,
        };
        let event: Rc<str> = event.into();
        let data: Option<Rc<str>> = data.map(Rc::from);
        if self.cluster.is_some() {
            out.cluster.push(Broadcast::Custom {
                namespace: sender.namespace.clone(),
                target: RemoteTarget::Namespace,
                event: event.clone(),
                data: data.clone(),
                from: from.clone(),
                args: Some(args.clone()),
            });
        }
        let Some(ns) = self.namespaces.get(&sender.namespace) else {
            return Ok(Done::Effects);
        };
        // The sender hears its own relay, as io.emit does.
        let mut recipients = event_listeners(ns, sender.id);
        recipients.push(sender.recipient());
        let event = Event::Custom { event, data, from, room: None, args: Some(args) };
        self.push_replayable(&sender.namespace, Audience::Namespace, None, event, recipients, out);
        Ok(Done::Effects)
    }

    fn who(&mut self, sender: &Sender, room: &str, out: &mut Outbox) -> Result<Done, Failure> {
        let me = self.me(sender.id)?;
        let ns = self.namespace(&me)?;
        let (room, roster) = existing_room(ns, room)?;
        let event = Event::Members { room: room.clone(), names: roster.names().into(), tag: sender.tag.clone() };
        out.push(&sender.namespace, event, vec![sender.recipient()]);
        Ok(Done::Replied)
    }

    fn list_rooms(&mut self, sender: &Sender, out: &mut Outbox) -> Result<Done, Failure> {
        let me = self.me(sender.id)?;
        let ns = self.namespace(&me)?;
        let rooms = ns.rooms.iter().map(|(name, roster)| (name.clone(), roster.len())).collect();
        out.push(&sender.namespace, Event::Rooms { rooms, tag: sender.tag.clone() }, vec![sender.recipient()]);
        Ok(Done::Replied)
    }

    /// Section 4: a `say`/`private` text over `--max-line` could not reach
    /// legacy users, so nobody gets it.
    fn check_text(&self, text: &str) -> Result<(), Failure> {
        if text.len() > self.config.max_line_bytes {
            return Err(Failure::bare(ChatError::TooLarge));
        }
        Ok(())
    }

    fn me(&self, member: MemberId) -> Result<Me, Failure> {
        let session = self.members.get(&member).ok_or(ChatError::NotRegistered)?;
        let State::Registered(user) = &session.state else {
            return Err(Failure::bare(ChatError::NotRegistered));
        };
        Ok(Me { namespace: session.namespace.clone(), name: user.name.clone() })
    }

    fn namespace(&self, me: &Me) -> Result<&Namespace, Failure> {
        self.namespaces.get(&me.namespace).ok_or_else(|| Failure::bare(ChatError::NotRegistered))
    }

    fn drop_unused_namespace(&mut self, namespace: &str) {
        if self.namespaces.get(namespace).is_some_and(Namespace::is_unused) {
            self.namespaces.remove(namespace);
        }
    }
}

/// Takes `member` (called `name`) out of `room` as its user leaves the
/// namespace: `left` to the remaining local members (but in `lobby`, where
/// the presence push says it), and the room's channel let go once nobody
/// here is in it. The caller pushes presence once for all its rooms.
fn leave_room(
    namespace: &Rc<str>,
    ns: &mut Namespace,
    room: &Rc<str>,
    member: MemberId,
    name: &Rc<str>,
    clustered: bool,
    out: &mut Outbox,
) {
    let Some(roster) = ns.rooms.get_mut(room) else {
        return;
    };
    let was_local = roster.get(member).is_some_and(Member::is_local);
    if !roster.remove(member) {
        return;
    }
    if clustered && was_local && roster.local_len() == 0 {
        out.cluster.push(Broadcast::Unsubscribe { namespace: namespace.clone(), room: room.clone() });
    }
    if roster.is_empty() {
        ns.rooms.remove(room);
    } else if **room != *LOBBY {
        let recipients = roster.local_recipients().collect();
        out.push(namespace, Event::Left { room: room.clone(), name: name.clone() }, recipients);
    }
}

/// Whoever gets what is sent to the whole namespace, but `except`: its
/// registered members that speak events, and its anonymous audience.
fn event_listeners(ns: &Namespace, except: MemberId) -> Vec<Recipient> {
    let registered = ns.presence.iter().filter(|m| m.dialect == Dialect::Events && m.id != except);
    let mut recipients: Vec<Recipient> = registered.filter_map(Member::recipient).collect();
    let anonymous = ns.audience.iter().filter(|(id, _)| **id != except);
    recipients.extend(anonymous.map(|(&member, &endpoint)| Recipient { endpoint, member, omit: None }));
    recipients
}

fn reply_error(sender: &Sender, failure: &Failure, out: &mut Outbox) {
    let detail = (!failure.detail.is_empty()).then(|| Rc::from(failure.detail.as_str()));
    out.push(
        &sender.namespace,
        Event::Error { error: failure.error, detail, tag: sender.tag.clone() },
        vec![sender.recipient()],
    );
}

/// Sends every registered user of `ns` but `except` the online list. One
/// event for all of them: each recipient's list is everyone without its own
/// entry, which renderers cut from one rendering.
fn push_presence(name: &Rc<str>, ns: &Namespace, except: Option<MemberId>, out: &mut Outbox) {
    if ns.presence.iter().all(|m| Some(m.id) == except || !m.is_local()) {
        return;
    }
    presence_delivery(name, ns, ns.presence.names().into(), except, out);
}

/// [`push_presence`] with the names (`ns.presence` in order) already listed.
fn presence_delivery(name: &Rc<str>, ns: &Namespace, names: Rc<[Rc<str>]>, except: Option<MemberId>, out: &mut Outbox) {
    let recipients: Vec<Recipient> = ns
        .presence
        .iter()
        .zip(0u32..)
        .filter(|(m, _)| Some(m.id) != except)
        .filter_map(|(m, i)| Some(Recipient { omit: Some(i), ..m.recipient()? }))
        .collect();
    out.push(name, Event::Presence { names }, recipients);
}

/// The room called `raw` if it exists: `room_invalid`, `no_such_room`.
fn existing_room<'n>(ns: &'n Namespace, raw: &str) -> Result<(&'n Rc<str>, &'n Roster), Failure> {
    let room = normalize_room(raw).ok_or_else(|| Failure::with(ChatError::RoomInvalid, raw))?;
    ns.rooms.get_key_value(room.as_str()).ok_or_else(|| Failure::with(ChatError::NoSuchRoom, &room))
}

/// The room called `raw` if `member` is in it: also `not_in_room`.
fn member_room<'n>(ns: &'n Namespace, member: MemberId, raw: &str) -> Result<(&'n Rc<str>, &'n Roster), Failure> {
    let (room, roster) = existing_room(ns, raw)?;
    if !roster.contains(member) {
        return Err(Failure::with(ChatError::NotInRoom, room));
    }
    Ok((room, roster))
}

/// The online user called `raw`: `no_such_user` if the name is invalid or absent.
fn find_user<'n>(ns: &'n Namespace, raw: &str) -> Result<&'n Member, Failure> {
    normalize_name(raw).and_then(|name| ns.user(&name)).ok_or_else(|| Failure::with(ChatError::NoSuchUser, raw))
}

#[cfg(test)]
mod tests;
