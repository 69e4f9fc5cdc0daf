//! What nodes say to each other through Redis pub/sub: one message per
//! payload, `NODE\n` then a JSON object. The node id first lets a node skip
//! its own messages (it hears what it publishes on the channels it shares)
//! without parsing them; JSON keeps the traffic readable with `redis-cli
//! SUBSCRIBE` and every string escaped.

use std::borrow::Cow;
use std::rc::Rc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::chat::{Broadcast, Dialect, Hub, Outbox, RawArgs, RemoteTarget, Stamp, UserState};

/// One message between nodes.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Body<'a> {
    /// Still alive (every `--redis-heartbeat`).
    Hb,
    /// Joined or rejoined the cluster: every node answers with its state.
    Hello,
    /// Leaving for good: drop my users now.
    Bye,
    /// Everything the sender has: replaces what others list for it.
    State {
        #[serde(borrow)]
        users: Vec<WireUser<'a>>,
    },
    On {
        #[serde(borrow)]
        ns: Cow<'a, str>,
        #[serde(borrow)]
        name: Cow<'a, str>,
        st: [u64; 3],
        d: WireDialect,
    },
    Off {
        #[serde(borrow)]
        ns: Cow<'a, str>,
        #[serde(borrow)]
        name: Cow<'a, str>,
    },
    Join {
        #[serde(borrow)]
        ns: Cow<'a, str>,
        #[serde(borrow)]
        room: Cow<'a, str>,
        #[serde(borrow)]
        name: Cow<'a, str>,
        st: [u64; 3],
    },
    Leave {
        #[serde(borrow)]
        ns: Cow<'a, str>,
        #[serde(borrow)]
        room: Cow<'a, str>,
        #[serde(borrow)]
        name: Cow<'a, str>,
    },
    Msg {
        #[serde(borrow)]
        ns: Cow<'a, str>,
        #[serde(borrow)]
        room: Cow<'a, str>,
        #[serde(borrow)]
        from: Cow<'a, str>,
        #[serde(borrow)]
        text: Cow<'a, str>,
    },
    Priv {
        #[serde(borrow)]
        ns: Cow<'a, str>,
        #[serde(borrow)]
        to: Cow<'a, str>,
        #[serde(borrow)]
        from: Cow<'a, str>,
        #[serde(borrow)]
        text: Cow<'a, str>,
    },
    /// The server API closes a user of the receiving node.
    Kick {
        #[serde(borrow)]
        ns: Cow<'a, str>,
        #[serde(borrow)]
        name: Cow<'a, str>,
        #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
        reason: Option<Cow<'a, str>>,
    },
    /// A custom event: to a room, to one user, or to the namespace when
    /// neither is given. `data` and `args` are raw JSON texts; `bin` the
    /// binary attachments of `args`, base64.
    Ev {
        #[serde(borrow)]
        ns: Cow<'a, str>,
        #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
        room: Option<Cow<'a, str>>,
        #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
        to: Option<Cow<'a, str>>,
        #[serde(borrow)]
        event: Cow<'a, str>,
        #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
        data: Option<Cow<'a, str>>,
        #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
        from: Option<Cow<'a, str>>,
        #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
        args: Option<Cow<'a, str>>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        bin: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireDialect {
    #[serde(rename = "l")]
    Lines,
    #[serde(rename = "e")]
    Events,
}

impl From<Dialect> for WireDialect {
    fn from(dialect: Dialect) -> WireDialect {
        match dialect {
            Dialect::Lines => WireDialect::Lines,
            Dialect::Events => WireDialect::Events,
        }
    }
}

impl From<WireDialect> for Dialect {
    fn from(dialect: WireDialect) -> Dialect {
        match dialect {
            WireDialect::Lines => Dialect::Lines,
            WireDialect::Events => Dialect::Events,
        }
    }
}

/// One user in a [`Body::State`].
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct WireUser<'a> {
    #[serde(borrow)]
    pub ns: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    pub st: [u64; 3],
    pub d: WireDialect,
    /// Rooms besides `lobby`, each with its join stamp.
    #[serde(borrow, default)]
    pub rooms: Vec<(Cow<'a, str>, [u64; 3])>,
}

fn stamp_array(stamp: Stamp) -> [u64; 3] {
    [stamp.micros, stamp.node, stamp.seq]
}

fn array_stamp([micros, node, seq]: [u64; 3]) -> Stamp {
    Stamp { micros, node, seq }
}

/// Who sent a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub node: &'a str,
    /// Random per process start: a node restarted under the same id is
    /// another sender.
    pub incarnation: u64,
    /// A chat message's number (room message, private message, event) in
    /// its node's sequence, from 1; 0 for everything else. A message whose
    /// fate was lost with the link is published again after the reconnect,
    /// and a receiver that already had it recognises it by this number.
    pub message: u64,
}

/// `NODE INCARNATION MESSAGE\n` and `body` as JSON: the payload of one PUBLISH.
pub fn encode(header: &Header<'_>, body: &Body<'_>) -> Vec<u8> {
    let mut payload = Vec::with_capacity(header.node.len() + 96);
    payload.extend_from_slice(header.node.as_bytes());
    for number in [header.incarnation, header.message] {
        payload.push(b' ');
        payload.extend_from_slice(itoa::Buffer::new().format(number).as_bytes());
    }
    payload.push(b'\n');
    // Serialising owned strings and numbers into a Vec cannot fail.
    serde_json::to_writer(&mut payload, body).expect("a body serialises");
    payload
}

/// Splits a payload into its header and the JSON body's bytes.
pub fn split(payload: &[u8]) -> Option<(Header<'_>, &[u8])> {
    let newline = payload.iter().position(|&b| b == b'\n')?;
    let head = std::str::from_utf8(payload.get(..newline)?).ok()?;
    let mut words = head.split(' ');
    let node = words.next()?;
    let incarnation = words.next()?.parse().ok()?;
    let message = words.next()?.parse().ok()?;
    if words.next().is_some() {
        return None;
    }
    Some((Header { node, incarnation, message }, payload.get(newline + 1..)?))
}

/// The body of a payload whose node was already split off.
pub fn decode(json: &[u8]) -> Result<Body<'_>, serde_json::Error> {
    serde_json::from_slice(json)
}

/// A user snapshot as the wire carries it.
pub fn wire_users(users: &[UserState]) -> Vec<WireUser<'_>> {
    users.iter().map(wire_user).collect()
}

fn wire_user(user: &UserState) -> WireUser<'_> {
    WireUser {
        ns: Cow::Borrowed(&*user.namespace),
        name: Cow::Borrowed(&*user.name),
        st: stamp_array(user.stamp),
        d: user.dialect.into(),
        rooms: user.rooms.iter().map(|(room, stamp)| (Cow::Borrowed(&**room), stamp_array(*stamp))).collect(),
    }
}

/// Where a broadcast goes and what it says: the channel suffix (after the
/// prefix) and the body. `None` for the hub's subscription changes, which
/// are no message.
pub fn route<'b>(broadcast: &'b Broadcast) -> Option<(Channel<'b>, Body<'b>)> {
    let b = |s: &'b Rc<str>| Cow::Borrowed(&**s);
    Some(match broadcast {
        Broadcast::Online { namespace, name, stamp, dialect } => (
            Channel::Cluster,
            Body::On { ns: b(namespace), name: b(name), st: stamp_array(*stamp), d: (*dialect).into() },
        ),
        Broadcast::Offline { namespace, name } => (Channel::Cluster, Body::Off { ns: b(namespace), name: b(name) }),
        Broadcast::Joined { namespace, room, name, stamp } => {
            (Channel::Cluster, Body::Join { ns: b(namespace), room: b(room), name: b(name), st: stamp_array(*stamp) })
        }
        Broadcast::Left { namespace, room, name } => {
            (Channel::Cluster, Body::Leave { ns: b(namespace), room: b(room), name: b(name) })
        }
        Broadcast::Message { namespace, room, from, text } => (
            Channel::Room(namespace, room),
            Body::Msg { ns: b(namespace), room: b(room), from: b(from), text: b(text) },
        ),
        Broadcast::Private { namespace, node, to, from, text } => {
            (Channel::Node(node), Body::Priv { ns: b(namespace), to: b(to), from: b(from), text: b(text) })
        }
        Broadcast::Disconnect { namespace, node, name, reason } => {
            (Channel::Node(node), Body::Kick { ns: b(namespace), name: b(name), reason: reason.as_ref().map(b) })
        }
        Broadcast::Custom { namespace, target, event, data, from, args } => {
            let (channel, room, to) = match target {
                RemoteTarget::Namespace => (Channel::Cluster, None, None),
                RemoteTarget::Room(room) => (Channel::Room(namespace, room), Some(b(room)), None),
                RemoteTarget::User { node, name } => (Channel::Node(node), None, Some(b(name))),
            };
            let bin = args.as_ref().map_or_else(Vec::new, |args| {
                args.binary.iter().map(|attachment| STANDARD.encode(attachment)).collect()
            });
            let body = Body::Ev {
                ns: b(namespace),
                room,
                to,
                event: b(event),
                data: data.as_ref().map(b),
                from: from.as_ref().map(b),
                args: args.as_ref().map(|args| Cow::Borrowed(&*args.json)),
                bin,
            };
            (channel, body)
        }
        Broadcast::Subscribe { .. } | Broadcast::Unsubscribe { .. } => return None,
    })
}

/// Which channel a message goes to (see [`channel_name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel<'a> {
    /// Every node.
    Cluster,
    /// One node.
    Node(&'a str),
    /// The nodes with members in a room.
    Room(&'a str, &'a str),
}

/// The Redis channel name: `PREFIX:c`, `PREFIX:n:NODE` or
/// `PREFIX:r:NAMESPACE:ROOM`. Namespaces hold no `:` (`/` and letters or
/// digits), so the room starts after the first `:` behind the namespace.
pub fn channel_name(prefix: &str, channel: Channel<'_>) -> Vec<u8> {
    let mut name = Vec::with_capacity(prefix.len() + 16);
    name.extend_from_slice(prefix.as_bytes());
    match channel {
        Channel::Cluster => name.extend_from_slice(b":c"),
        Channel::Node(node) => {
            name.extend_from_slice(b":n:");
            name.extend_from_slice(node.as_bytes());
        }
        Channel::Room(namespace, room) => {
            name.extend_from_slice(b":r:");
            name.extend_from_slice(namespace.as_bytes());
            name.push(b':');
            name.extend_from_slice(room.as_bytes());
        }
    }
    name
}

/// What a message from another node asks of this one beyond the hub.
#[derive(Debug, PartialEq, Eq)]
pub enum Control {
    /// Nothing more.
    None,
    /// `node` (re)joined: send it this node's state.
    SendState,
    /// `node` left for good.
    Gone,
}

/// Applies `body`, from `node`, to the hub: its events for this node's
/// members land in `out`.
pub fn apply(hub: &mut Hub, node: &str, body: Body<'_>, out: &mut Outbox) -> Control {
    match body {
        Body::Hb => {}
        Body::Hello => return Control::SendState,
        Body::Bye => return Control::Gone,
        Body::State { users } => {
            let users: Vec<UserState> = users
                .into_iter()
                .map(|user| UserState {
                    namespace: user.ns.into(),
                    name: user.name.into(),
                    stamp: array_stamp(user.st),
                    dialect: user.d.into(),
                    rooms: user.rooms.into_iter().map(|(room, st)| (Rc::from(room), array_stamp(st))).collect(),
                })
                .collect();
            hub.remote_state(node, &users, out);
        }
        Body::On { ns, name, st, d } => hub.remote_online(node, &ns, &name, array_stamp(st), d.into(), out),
        Body::Off { ns, name } => hub.remote_offline(node, &ns, &name, out),
        Body::Join { ns, room, name, st } => hub.remote_joined(node, &ns, &room, &name, array_stamp(st), out),
        Body::Leave { ns, room, name } => hub.remote_left(node, &ns, &room, &name, out),
        Body::Msg { ns, room, from, text } => hub.remote_message(&ns, &room, &from, &text, out),
        Body::Priv { ns, to, from, text } => hub.remote_private(&ns, &to, &from, &text, out),
        Body::Kick { ns, name, reason } => hub.remote_disconnect(&ns, &name, reason.as_deref(), out),
        Body::Ev { ns, room, to, event, data, from, args, bin } => {
            let target = match (room, to) {
                (Some(room), _) => RemoteTarget::Room(room.into()),
                (None, Some(to)) => RemoteTarget::User { node: Rc::from(node), name: to.into() },
                (None, None) => RemoteTarget::Namespace,
            };
            // Raw JSON goes into what local members receive as it is: a peer
            // that sends text which is not JSON would break their streams.
            if data.as_deref().is_some_and(|data| !is_json(data)) || args.as_deref().is_some_and(|a| !is_json_array(a))
            {
                log::warn!("event=backplane_bad_message node={node} reason=bad_event_json");
                return Control::None;
            }
            let args = match args {
                Some(json) => {
                    let mut binary = Vec::with_capacity(bin.len());
                    for attachment in &bin {
                        // A peer that cannot encode base64 sent nothing usable.
                        let Ok(bytes) = STANDARD.decode(attachment) else { return Control::None };
                        binary.push(Rc::from(bytes));
                    }
                    Some(Rc::new(RawArgs { json: json.into(), binary: binary.into() }))
                }
                None => None,
            };
            hub.remote_custom(&ns, &target, &event, data.as_deref(), from.as_deref(), args, out);
        }
    }
    Control::None
}

/// Whether `text` is one JSON value.
fn is_json(text: &str) -> bool {
    serde_json::from_str::<&serde_json::value::RawValue>(text).is_ok()
}

/// Whether `text` is a JSON array with at least the event name.
fn is_json_array(text: &str) -> bool {
    serde_json::from_str::<Vec<&serde_json::value::RawValue>>(text).is_ok_and(|items| !items.is_empty())
}
