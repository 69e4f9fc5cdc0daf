//! The hub: registration, rooms, presence and routing for every namespace.
//! Sans-IO: framed messages in, an [`Outbox`] of deliveries out.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use log::debug;
use serde_json::Value;

use super::command::{self, Command, EmitTarget, JsonType, LOBBY};
use super::error::{ChatError, Failure};
use super::names::{normalize_name, normalize_room};
use super::render::{self, JsonEvent, NameList, RoomCount};
use super::room::{Member, Namespace, Roster};
use super::{ChatConfig, ClientKind, ConnId, Content, Format, Outbox, Presence};

/// Every chat connection, registered or not, and every namespace's world.
pub struct Hub {
    config: ChatConfig,
    sessions: HashMap<ConnId, Session>,
    /// Namespaces with at least one registered user.
    namespaces: HashMap<Rc<str>, Namespace>,
    /// Arrival counter for presence and room order.
    next_seq: u64,
}

/// One attached connection.
struct Session {
    kind: ClientKind,
    namespace: Rc<str>,
    user: Option<User>,
    /// `/quit` seen: the reactor closes after flushing; later input is ignored.
    quitting: bool,
}

/// A registered connection's identity and rooms (for the disconnect notices).
struct User {
    name: Rc<str>,
    rooms: BTreeSet<Rc<str>>,
}

/// Who asked, and the JSON `id` to answer with.
#[derive(Clone, Copy)]
struct Sender<'a> {
    conn: ConnId,
    kind: ClientKind,
    id: Option<&'a Value>,
}

/// How a successful request was answered.
enum Done {
    /// Nothing sent to the sender yet: a JSON request with an `id` gets an `ack`.
    Effects,
    /// The request had its own reply (`welcome`, `members`, `rooms`), which carried the `id`.
    Replied,
}

/// The registered sender's namespace and name.
struct Me {
    namespace: Rc<str>,
    name: Rc<str>,
}

impl Hub {
    /// An empty hub.
    pub fn new(config: ChatConfig) -> Hub {
        Hub { config, sessions: HashMap::new(), namespaces: HashMap::new(), next_seq: 0 }
    }

    /// A connection starts speaking a chat protocol in `namespace` (`/` for
    /// legacy, `/` or `/NAME` for `/ws`, already validated by the router). It
    /// is not registered yet. Attaching an attached connection is ignored.
    pub fn attach(&mut self, conn: ConnId, kind: ClientKind, namespace: &str) {
        if self.sessions.contains_key(&conn) {
            debug!("chat: {conn:?} attached twice");
            return;
        }
        let session = Session { kind, namespace: namespace.into(), user: None, quitting: false };
        self.sessions.insert(conn, session);
    }

    /// `?name=` given at the upgrade (JSON clients): a `hello` without an id.
    /// A bad or taken name is answered with an `error` (no id) and the
    /// connection stays unregistered until a `hello` succeeds.
    pub fn hello_from_query(&mut self, conn: ConnId, name: &str, out: &mut Outbox) {
        let Some(session) = self.sessions.get(&conn) else {
            return;
        };
        let sender = Sender { conn, kind: session.kind, id: None };
        let result = if session.user.is_some() {
            Err(Failure::bare(ChatError::AlreadyRegistered))
        } else {
            self.register(sender, name, out)
        };
        if let Err(failure) = result {
            reply_error(sender, &failure, out);
        }
    }

    /// One legacy message, already framed (NULs, terminator and a trailing
    /// `\r` removed), at most `max_line_bytes`. Invalid UTF-8 is replaced by
    /// U+FFFD. Before registration every message but `/quit` is a name
    /// attempt (an empty one is `name_invalid`); after it, empty messages are
    /// ignored.
    pub fn handle_legacy(&mut self, conn: ConnId, message: &[u8], out: &mut Outbox) {
        let Some(session) = self.sessions.get(&conn) else {
            return;
        };
        if !session.kind.is_legacy() {
            debug!("chat: legacy message from {conn:?}, a {:?} connection", session.kind);
            return;
        }
        if session.quitting {
            return;
        }
        let sender = Sender { conn, kind: session.kind, id: None };
        let line = String::from_utf8_lossy(message);
        let result = if session.user.is_none() {
            if command::is_legacy_quit(&line) {
                self.quit(conn, out);
                return;
            }
            self.register(sender, &line, out)
        } else if line.is_empty() {
            return;
        } else {
            command::parse_legacy(&line).and_then(|cmd| self.execute(sender, cmd, out)).map(|_| ())
        };
        if let Err(failure) = result {
            reply_error(sender, &failure, out);
        }
    }

    /// A legacy message over `--max-line` was discarded by the line codec:
    /// answers `!ERR too_large`, registered or not.
    pub fn legacy_too_large(&mut self, conn: ConnId, out: &mut Outbox) {
        let Some(session) = self.sessions.get(&conn) else {
            return;
        };
        if session.quitting {
            return;
        }
        let sender = Sender { conn, kind: session.kind, id: None };
        reply_error(sender, &Failure::bare(ChatError::TooLarge), out);
    }

    /// One JSON text frame from a `/ws` client.
    ///
    /// Error precedence: `bad_json`, then `missing_field` for `type`, then
    /// `unknown_type`, then `already_registered` / `not_registered`, then the
    /// type's own fields (`missing_field`), then `too_large`, then the name
    /// and room rules (`room_invalid`, `no_such_room`, `not_in_room`,
    /// `no_such_user`, `name_invalid`, `name_taken`).
    pub fn handle_json(&mut self, conn: ConnId, text: &str, out: &mut Outbox) {
        let Some(session) = self.sessions.get(&conn) else {
            return;
        };
        if session.kind != ClientKind::Json {
            debug!("chat: JSON message from {conn:?}, a {:?} connection", session.kind);
            return;
        }
        let registered = session.user.is_some();
        let mut sender = Sender { conn, kind: session.kind, id: None };
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            reply_error(sender, &Failure::bare(ChatError::BadJson), out);
            return;
        };
        let request = match command::parse_json_request(&value) {
            Ok(request) => request,
            Err((failure, id)) => {
                reply_error(Sender { id, ..sender }, &failure, out);
                return;
            }
        };
        sender.id = request.id;
        let gate = match (request.kind == JsonType::Hello, registered) {
            (true, true) => Err(Failure::bare(ChatError::AlreadyRegistered)),
            (false, false) => Err(Failure::bare(ChatError::NotRegistered)),
            _ => Ok(()),
        };
        let result = gate.and_then(|()| request.command()).and_then(|cmd| self.execute(sender, cmd, out));
        match result {
            Ok(Done::Effects) => {
                if let Some(id) = sender.id {
                    out.push(Content::Json(JsonEvent::Ack { id }.render()), vec![conn]);
                }
            }
            Ok(Done::Replied) => {}
            Err(failure) => reply_error(sender, &failure, out),
        }
    }

    /// The connection is gone (closed, reset, timed out, cut off as a slow
    /// reader, `/quit` done): removes the user everywhere at once, sends
    /// `left`/`!LEFT` to the remaining members of each of its rooms but
    /// `lobby` (rooms in code point order), then the new online list to every
    /// remaining user of the namespace. Idempotent; unknown ids are ignored.
    pub fn detach(&mut self, conn: ConnId, out: &mut Outbox) {
        let Some(session) = self.sessions.remove(&conn) else {
            return;
        };
        let Some(user) = session.user else { return };
        let Some(ns) = self.namespaces.get_mut(&session.namespace) else {
            return;
        };
        ns.by_name.remove(&user.name);
        ns.presence.remove(conn);
        for room in &user.rooms {
            let Some(roster) = ns.rooms.get_mut(room) else {
                continue;
            };
            roster.remove(conn);
            if roster.is_empty() {
                ns.rooms.remove(room);
            } else if **room != *LOBBY {
                // Lobby membership is implied by presence: the list push says it.
                fan_out(
                    roster.iter(),
                    None,
                    || JsonEvent::Left { room, name: &user.name }.render(),
                    Some(|| render::legacy_left(room, &user.name)),
                    out,
                );
            }
        }
        push_presence(ns, None, out);
        if ns.presence.is_empty() {
            self.namespaces.remove(&session.namespace);
        }
    }

    /// Registered users, all namespaces.
    pub fn users(&self) -> usize {
        self.namespaces.values().map(|ns| ns.presence.len()).sum()
    }

    /// Rooms with members, all namespaces (each namespace with users has a `lobby`).
    pub fn rooms(&self) -> usize {
        self.namespaces.values().map(|ns| ns.rooms.len()).sum()
    }

    /// Attached connections, registered or not (for leak checks).
    pub fn attached(&self) -> usize {
        self.sessions.len()
    }

    /// Runs one parsed request of a sender that passed the registration gate.
    fn execute(&mut self, sender: Sender<'_>, cmd: Command<'_>, out: &mut Outbox) -> Result<Done, Failure> {
        match cmd {
            Command::Hello { name } => self.register(sender, name, out).map(|()| Done::Replied),
            Command::Quit => {
                self.quit(sender.conn, out);
                Ok(Done::Effects)
            }
            Command::Say { room, text } => self.say(sender, room, text, out),
            Command::Private { to, text } => self.private(sender, to, text, out),
            Command::Join { room } => self.join(sender, room, out),
            Command::Leave { room } => self.leave(sender, room, out),
            Command::Emit { event, data, target } => self.emit(sender, event, data, target, out),
            Command::Who { room } => self.who(sender, room, out),
            Command::Rooms => self.list_rooms(sender, out),
        }
    }

    /// Registers `raw_name` in the sender's namespace: the joiner gets its
    /// `welcome` (or legacy list) first, then every other user its new list.
    fn register(&mut self, sender: Sender<'_>, raw_name: &str, out: &mut Outbox) -> Result<(), Failure> {
        let Some(session) = self.sessions.get_mut(&sender.conn) else {
            return Err(Failure::bare(ChatError::NotRegistered));
        };
        let name = normalize_name(raw_name).ok_or_else(|| Failure::with(ChatError::NameInvalid, raw_name))?;
        if self.namespaces.get(&session.namespace).is_some_and(|ns| ns.by_name.contains_key(name.as_str())) {
            return Err(Failure::with(ChatError::NameTaken, &name));
        }
        let name: Rc<str> = name.into();
        let ns = self.namespaces.entry(session.namespace.clone()).or_default();
        let seq = self.next_seq;
        self.next_seq += 1;
        let member = Member { conn: sender.conn, name: name.clone(), kind: sender.kind };
        ns.by_name.insert(name.clone(), sender.conn);
        ns.presence.insert(seq, member.clone());
        let lobby = match ns.rooms.get_key_value(LOBBY) {
            Some((key, _)) => key.clone(),
            None => Rc::from(LOBBY),
        };
        ns.rooms.entry(lobby.clone()).or_default().insert(seq, member);
        session.user = Some(User { name: name.clone(), rooms: BTreeSet::from([lobby]) });

        let names = ns.presence.names();
        // The joiner is the newest, so it is last in presence order.
        let own = NameList { names: &names, skip: names.len().checked_sub(1) };
        let namespace = &*session.namespace;
        reply(
            sender,
            out,
            || JsonEvent::Welcome { name: &name, namespace, users: own, rooms: vec![LOBBY], id: sender.id }.render(),
            || render::legacy_users(own),
        );
        push_presence(ns, Some(sender.conn), out);
        Ok(())
    }

    fn quit(&mut self, conn: ConnId, out: &mut Outbox) {
        if let Some(session) = self.sessions.get_mut(&conn)
            && !session.quitting
        {
            session.quitting = true;
            out.closes.push(conn);
        }
    }

    fn say(&mut self, sender: Sender<'_>, room: &str, text: &str, out: &mut Outbox) -> Result<Done, Failure> {
        self.check_text(text)?;
        let me = self.me(sender.conn)?;
        let ns = self.namespace(&me)?;
        let (room, roster) = member_room(ns, sender.conn, room)?;
        fan_out(
            roster.iter(),
            Some(sender.conn),
            || JsonEvent::Message { room, from: &me.name, text }.render(),
            Some(|| render::legacy_message(room, &me.name, text)),
            out,
        );
        Ok(Done::Effects)
    }

    fn private(&mut self, sender: Sender<'_>, to: &str, text: &str, out: &mut Outbox) -> Result<Done, Failure> {
        self.check_text(text)?;
        let me = self.me(sender.conn)?;
        let ns = self.namespace(&me)?;
        let target = find_user(ns, to)?;
        // Section 2: a message to oneself is delivered like any other.
        let content = if target.kind.is_legacy() {
            Content::Legacy(render::legacy_private(&me.name, text))
        } else {
            Content::Json(JsonEvent::Private { from: &me.name, text }.render())
        };
        out.push(content, vec![target.conn]);
        Ok(Done::Effects)
    }

    fn join(&mut self, sender: Sender<'_>, room: &str, out: &mut Outbox) -> Result<Done, Failure> {
        let room = normalize_room(room).ok_or_else(|| Failure::with(ChatError::RoomInvalid, room))?;
        let me = self.me(sender.conn)?;
        let seq = self.next_seq;
        let Some(ns) = self.namespaces.get_mut(&me.namespace) else {
            return Err(Failure::bare(ChatError::NotRegistered));
        };
        let key = match ns.rooms.get_key_value(room.as_str()) {
            // Section 1: joining a room one is already in is a no-op.
            Some((_, roster)) if roster.contains(sender.conn) => return Ok(Done::Effects),
            Some((key, _)) => key.clone(),
            None => Rc::from(room),
        };
        let rooms_joined = self.sessions.get(&sender.conn).and_then(|s| s.user.as_ref()).map_or(0, |u| u.rooms.len());
        // The user's room set includes lobby, which the limit does not count.
        if rooms_joined > self.config.max_rooms_per_user {
            return Err(Failure::with(ChatError::RoomInvalid, "room limit reached"));
        }
        let roster = ns.rooms.entry(key.clone()).or_default();
        let member = Member { conn: sender.conn, name: me.name.clone(), kind: sender.kind };
        if !roster.insert(seq, member) {
            // Section 1: joining a room one is already in is a no-op.
            return Ok(Done::Effects);
        }
        self.next_seq += 1;
        if let Some(user) = self.sessions.get_mut(&sender.conn).and_then(|s| s.user.as_mut()) {
            user.rooms.insert(key.clone());
        }
        fan_out(
            roster.iter(),
            None,
            || JsonEvent::Joined { room: &key, name: &me.name }.render(),
            Some(|| render::legacy_joined(&key, &me.name)),
            out,
        );
        Ok(Done::Effects)
    }

    fn leave(&mut self, sender: Sender<'_>, room: &str, out: &mut Outbox) -> Result<Done, Failure> {
        let room = normalize_room(room).ok_or_else(|| Failure::with(ChatError::RoomInvalid, room))?;
        if room == LOBBY {
            return Err(Failure::with(ChatError::RoomInvalid, LOBBY));
        }
        let me = self.me(sender.conn)?;
        let Some(ns) = self.namespaces.get_mut(&me.namespace) else {
            return Err(Failure::bare(ChatError::NotRegistered));
        };
        let Some((key, roster)) = ns.rooms.get_key_value(room.as_str()) else {
            return Err(Failure::with(ChatError::NoSuchRoom, &room));
        };
        let key = key.clone();
        if !roster.contains(sender.conn) {
            return Err(Failure::with(ChatError::NotInRoom, &room));
        }
        // The leaver's own member entry, so it is a recipient after removal.
        let leaver = roster.iter().find(|m| m.conn == sender.conn).cloned();
        let mut emptied = false;
        if let Some(roster) = ns.rooms.get_mut(&key) {
            roster.remove(sender.conn);
            emptied = roster.is_empty();
        }
        if let Some(user) = self.sessions.get_mut(&sender.conn).and_then(|s| s.user.as_mut()) {
            user.rooms.remove(&key);
        }
        let remaining = ns.rooms.get(&key).into_iter().flat_map(Roster::iter);
        fan_out(
            remaining.chain(leaver.iter()),
            None,
            || JsonEvent::Left { room: &key, name: &me.name }.render(),
            Some(|| render::legacy_left(&key, &me.name)),
            out,
        );
        if emptied {
            ns.rooms.remove(&key);
        }
        Ok(Done::Effects)
    }

    fn emit(
        &mut self,
        sender: Sender<'_>,
        event: &str,
        data: Option<&Value>,
        target: EmitTarget<'_>,
        out: &mut Outbox,
    ) -> Result<Done, Failure> {
        let me = self.me(sender.conn)?;
        let ns = self.namespace(&me)?;
        let data = render::event_data(data);
        let no_legacy: Option<fn() -> Rc<str>> = None;
        match target {
            EmitTarget::Namespace => fan_out(
                ns.presence.iter(),
                Some(sender.conn),
                || JsonEvent::Event { event, data, from: &me.name, room: None }.render(),
                no_legacy,
                out,
            ),
            EmitTarget::Room(room) => {
                let (room, roster) = member_room(ns, sender.conn, room)?;
                fan_out(
                    roster.iter(),
                    Some(sender.conn),
                    || JsonEvent::Event { event, data, from: &me.name, room: Some(room) }.render(),
                    no_legacy,
                    out,
                );
            }
            EmitTarget::User(to) => {
                let target = find_user(ns, to)?;
                // Section 3: legacy users never receive custom events.
                if target.kind.is_legacy() {
                    return Err(Failure::with(ChatError::NoSuchUser, to));
                }
                // "never the sender": an emit to oneself reaches no one.
                if target.conn != sender.conn {
                    let content = JsonEvent::Event { event, data, from: &me.name, room: None }.render();
                    out.push(Content::Json(content), vec![target.conn]);
                }
            }
        }
        Ok(Done::Effects)
    }

    fn who(&mut self, sender: Sender<'_>, room: &str, out: &mut Outbox) -> Result<Done, Failure> {
        let me = self.me(sender.conn)?;
        let ns = self.namespace(&me)?;
        let (room, roster) = existing_room(ns, room)?;
        let names = roster.names();
        reply(
            sender,
            out,
            || JsonEvent::Members { room, names: NameList::all(&names), id: sender.id }.render(),
            || render::legacy_members(room, &names),
        );
        Ok(Done::Replied)
    }

    fn list_rooms(&mut self, sender: Sender<'_>, out: &mut Outbox) -> Result<Done, Failure> {
        let me = self.me(sender.conn)?;
        let ns = self.namespace(&me)?;
        reply(
            sender,
            out,
            || {
                let rooms = ns.rooms.iter().map(|(name, r)| RoomCount { name, members: r.len() }).collect();
                JsonEvent::Rooms { rooms, id: sender.id }.render()
            },
            || render::legacy_rooms(ns.rooms.keys().map(|k| &**k)),
        );
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

    fn me(&self, conn: ConnId) -> Result<Me, Failure> {
        let session = self.sessions.get(&conn).ok_or(ChatError::NotRegistered)?;
        let user = session.user.as_ref().ok_or(ChatError::NotRegistered)?;
        Ok(Me { namespace: session.namespace.clone(), name: user.name.clone() })
    }

    fn namespace(&self, me: &Me) -> Result<&Namespace, Failure> {
        self.namespaces.get(&me.namespace).ok_or_else(|| Failure::bare(ChatError::NotRegistered))
    }
}

/// Sends the sender its own answer in its format: `json` for JSON clients,
/// `legacy` for legacy ones.
fn reply(sender: Sender<'_>, out: &mut Outbox, json: impl FnOnce() -> Rc<str>, legacy: impl FnOnce() -> Rc<str>) {
    let content = if sender.kind.is_legacy() { Content::Legacy(legacy()) } else { Content::Json(json()) };
    out.push(content, vec![sender.conn]);
}

fn reply_error(sender: Sender<'_>, failure: &Failure, out: &mut Outbox) {
    reply(sender, out, || render::json_error(failure, sender.id), || render::legacy_error(failure));
}

/// Delivers one event to `members` but `except`: one JSON content for the
/// JSON ones, one legacy content (if any, else legacy members get nothing)
/// for the others, each rendered only if someone gets it.
fn fan_out<'m>(
    members: impl Iterator<Item = &'m Member>,
    except: Option<ConnId>,
    json: impl FnOnce() -> Rc<str>,
    legacy: Option<impl FnOnce() -> Rc<str>>,
    out: &mut Outbox,
) {
    let mut json_to = Vec::new();
    let mut legacy_to = Vec::new();
    for member in members.filter(|m| Some(m.conn) != except) {
        if member.kind.is_legacy() {
            legacy_to.push(member.conn);
        } else {
            json_to.push(member.conn);
        }
    }
    if !json_to.is_empty() {
        out.push(Content::Json(json()), json_to);
    }
    if let Some(legacy) = legacy
        && !legacy_to.is_empty()
    {
        out.push(Content::Legacy(legacy()), legacy_to);
    }
}

/// Sends every registered user of `ns` but `except` its online list (the
/// others, oldest first). The lists differ per receiver, so each is rendered
/// for its receiver: O(users²) bytes for one change, which is the size of
/// what is sent anyway.
fn push_presence(ns: &Namespace, except: Option<ConnId>, out: &mut Outbox) {
    let names = ns.presence.names();
    let receivers = || ns.presence.iter().enumerate().filter(|(_, m)| Some(m.conn) != except);
    for format in [Format::Json, Format::Legacy] {
        let wanted = |m: &Member| m.kind.is_legacy() == (format == Format::Legacy);
        if !receivers().any(|(_, m)| wanted(m)) {
            continue;
        }
        let (whole, omit) = render::presence_lists(&names, format);
        for (i, member) in receivers().filter(|(_, m)| wanted(m)) {
            let Some(omit) = omit.get(i) else { continue };
            let list = Presence { format, whole: whole.clone(), omit: omit.clone() };
            out.push(Content::Presence(list), vec![member.conn]);
        }
    }
}

/// The room called `raw` if it exists: `room_invalid`, `no_such_room`.
fn existing_room<'n>(ns: &'n Namespace, raw: &str) -> Result<(&'n str, &'n Roster), Failure> {
    let room = normalize_room(raw).ok_or_else(|| Failure::with(ChatError::RoomInvalid, raw))?;
    match ns.rooms.get_key_value(room.as_str()) {
        Some((key, roster)) => Ok((key, roster)),
        None => Err(Failure::with(ChatError::NoSuchRoom, &room)),
    }
}

/// The room called `raw` if `conn` is in it: also `not_in_room`.
fn member_room<'n>(ns: &'n Namespace, conn: ConnId, raw: &str) -> Result<(&'n str, &'n Roster), Failure> {
    let (room, roster) = existing_room(ns, raw)?;
    if !roster.contains(conn) {
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
