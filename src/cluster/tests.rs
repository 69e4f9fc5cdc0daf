//! Nodes joined through the wire format without Redis (a bus that routes
//! each publish as Redis pub/sub would: cluster channel to all, node channel
//! to one, room channel to the subscribers), and the backplane driven with
//! scripted Redis replies.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::wire::{self, Channel};
use super::*;
use crate::app::json_chat;
use crate::chat::{ChatConfig, Dialect, Endpoint, Event, Hub, MemberId, Outbox};
use crate::ids::ConnId;
use crate::redis::{Reply, ReplyDecoder, RespLimits};

const MAX_MESSAGE: usize = 1 << 20;

struct Node {
    id: String,
    hub: Hub,
    out: Outbox,
    /// Room channels this node subscribed to.
    rooms: BTreeSet<(Rc<str>, Rc<str>)>,
    slots: HashMap<usize, MemberId>,
    /// What each slot received, in order.
    got: HashMap<usize, Vec<Event>>,
}

/// Nodes, the names table Redis would hold, and the published messages in
/// flight, delivered in publish order.
struct Bus {
    nodes: Vec<Node>,
    names: HashMap<(Rc<str>, Rc<str>), String>,
    published: u64,
}

fn endpoint(slot: usize) -> Endpoint {
    Endpoint::Conn(ConnId { slot, generation: 1 })
}

impl Bus {
    fn new(count: usize) -> Bus {
        let nodes = (0..count)
            .map(|i| {
                let id = format!("n{i}");
                let mut hub = Hub::new(ChatConfig::default());
                hub.join_cluster(&id);
                hub.set_clock_us(1_000 + i as u64);
                Node {
                    id,
                    hub,
                    out: Outbox::default(),
                    rooms: BTreeSet::new(),
                    slots: HashMap::new(),
                    got: HashMap::new(),
                }
            })
            .collect();
        Bus { nodes, names: HashMap::new(), published: 0 }
    }

    fn attach(&mut self, node: usize, slot: usize, dialect: Dialect) {
        let n = &mut self.nodes[node];
        let member = n.hub.attach(endpoint(slot), dialect, "/");
        n.slots.insert(slot, member);
    }

    fn send(&mut self, node: usize, slot: usize, value: serde_json::Value) {
        let n = &mut self.nodes[node];
        let member = n.slots[&slot];
        json_chat::handle_text(&mut n.hub, member, &value.to_string(), MAX_MESSAGE, &mut n.out);
        self.settle();
    }

    fn join(&mut self, node: usize, slot: usize, name: &str) {
        self.attach(node, slot, Dialect::Events);
        self.send(node, slot, json!({"type": "hello", "name": name}));
    }

    fn detach(&mut self, node: usize, slot: usize) {
        let n = &mut self.nodes[node];
        let member = n.slots[&slot];
        n.hub.detach(member, &mut n.out);
        self.settle();
    }

    /// Runs claims, publishes and deliveries until nothing moves.
    fn settle(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                let node_id = self.nodes[i].id.clone();
                for request in self.nodes[i].hub.directory_mut().take() {
                    moved = true;
                    let key = (request.namespace.clone(), request.name.clone());
                    let n = &mut self.nodes[i];
                    if request.claim {
                        let granted = self.names.get(&key).is_none_or(|holder| *holder == node_id);
                        if granted {
                            self.names.insert(key, node_id.clone());
                        }
                        n.hub.claim_resolved(request.member, granted, &mut n.out);
                    } else if self.names.get(&key) == Some(&node_id) {
                        self.names.remove(&key);
                    }
                }
                let broadcasts = std::mem::take(&mut self.nodes[i].out.cluster);
                for broadcast in &broadcasts {
                    moved = true;
                    match broadcast {
                        Broadcast::Subscribe { namespace, room } => {
                            self.nodes[i].rooms.insert((namespace.clone(), room.clone()));
                        }
                        Broadcast::Unsubscribe { namespace, room } => {
                            self.nodes[i].rooms.remove(&(namespace.clone(), room.clone()));
                        }
                        _ => {}
                    }
                    let Some((channel, body)) = wire::route(broadcast) else { continue };
                    let header = wire::Header { node: &node_id, incarnation: 1, message: 0 };
                    let payload = wire::encode(&header, &body);
                    self.published += 1;
                    for j in 0..self.nodes.len() {
                        let to = &mut self.nodes[j];
                        let hears = match channel {
                            Channel::Cluster => true,
                            Channel::Node(node) => to.id == node,
                            Channel::Room(ns, room) => to.rooms.contains(&(Rc::from(ns), Rc::from(room))),
                        };
                        if j == i || !hears {
                            continue;
                        }
                        let (header, json) = wire::split(&payload).expect("a header");
                        let body = wire::decode(json).expect("valid JSON");
                        assert_eq!(wire::apply(&mut to.hub, header.node, body, &mut to.out), wire::Control::None);
                    }
                }
                let n = &mut self.nodes[i];
                for delivery in n.out.deliveries.drain(..) {
                    moved = true;
                    for recipient in &delivery.recipients {
                        let Endpoint::Conn(conn) = recipient.endpoint else { panic!("a session") };
                        let event = match (&delivery.event, recipient.omit) {
                            (Event::Presence { names }, Some(omit)) => {
                                let names = names.iter().enumerate().filter(|(k, _)| *k != omit as usize);
                                Event::Presence { names: names.map(|(_, n)| n.clone()).collect() }
                            }
                            (event, _) => event.clone(),
                        };
                        n.got.entry(conn.slot).or_default().push(event);
                    }
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the bus did not settle");
    }

    fn take(&mut self, node: usize, slot: usize) -> Vec<Event> {
        self.nodes[node].got.remove(&slot).unwrap_or_default()
    }

    /// What `who` of `room` answers on `node`, asked by `slot`.
    fn who(&mut self, node: usize, slot: usize, room: &str) -> Vec<Rc<str>> {
        self.send(node, slot, json!({"type": "who", "room": room}));
        let got = self.take(node, slot);
        match got.last() {
            Some(Event::Members { names, .. }) => names.to_vec(),
            other => panic!("{other:?}"),
        }
    }
}

fn names(list: &[&str]) -> Rc<[Rc<str>]> {
    list.iter().map(|n| Rc::from(*n)).collect()
}

fn last_presence(events: &[Event]) -> Option<Rc<[Rc<str>]>> {
    events.iter().rev().find_map(|e| match e {
        Event::Presence { names } => Some(names.clone()),
        _ => None,
    })
}

#[test]
fn users_on_different_nodes_share_one_world() {
    let mut bus = Bus::new(3);
    bus.join(0, 1, "alice");
    bus.join(1, 2, "bob");
    bus.join(2, 3, "carol");
    assert_eq!(last_presence(&bus.take(0, 1)), Some(names(&["bob", "carol"])));
    let welcome = bus.take(2, 3);
    assert!(matches!(&welcome[0], Event::Welcome { users, .. } if *users == names(&["alice", "bob"])), "{welcome:?}");

    // A name held on another node is taken, before and through the directory.
    bus.attach(1, 9, Dialect::Events);
    bus.send(1, 9, json!({"type": "hello", "name": "alice"}));
    assert!(matches!(&bus.take(1, 9)[..], [Event::Error { error: crate::chat::ChatError::NameTaken, .. }]));

    for (node, slot) in [(0, 1), (1, 2), (2, 3)] {
        bus.send(node, slot, json!({"type": "join", "room": "r"}));
    }
    let everywhere: Vec<Vec<Rc<str>>> = [(0, 1), (1, 2), (2, 3)].map(|(n, s)| bus.who(n, s, "r")).to_vec();
    assert!(everywhere.iter().all(|names| *names == everywhere[0]), "{everywhere:?}");
    assert_eq!(everywhere[0].len(), 3);
    bus.take(0, 1);
    bus.take(1, 2);

    let before = bus.published;
    bus.send(0, 1, json!({"type": "say", "room": "r", "text": "hi"}));
    assert_eq!(bus.published - before, 1, "one publish per message, whatever the receivers");
    for (node, slot) in [(1, 2), (2, 3)] {
        let got = bus.take(node, slot);
        assert!(
            matches!(&got[..], [Event::Message { from, text, .. }] if &**from == "alice" && &**text == "hi"),
            "{got:?}"
        );
    }
    assert!(bus.take(0, 1).is_empty(), "the sender does not hear its own message");

    bus.send(2, 3, json!({"type": "private", "to": "alice", "text": "psst"}));
    assert!(matches!(&bus.take(0, 1)[..], [Event::Private { from, .. }] if &**from == "carol"));
    assert!(bus.take(1, 2).is_empty());

    bus.send(1, 2, json!({"type": "emit", "event": "e", "data": [1], "to": "carol"}));
    let got = bus.take(2, 3);
    assert!(matches!(&got[..], [Event::Custom { event, data: Some(data), .. }] if &**event == "e" && &**data == "[1]"));
    bus.send(1, 2, json!({"type": "emit", "event": "all", "data": null}));
    assert_eq!(bus.take(0, 1).len(), 1);
    assert_eq!(bus.take(2, 3).len(), 1);

    // Leaving: `left` in the rooms and presence everywhere.
    bus.detach(1, 2);
    let got = bus.take(0, 1);
    assert!(got.iter().any(|e| matches!(e, Event::Left { name, .. } if &**name == "bob")), "{got:?}");
    assert_eq!(last_presence(&got), Some(names(&["carol"])));
    assert_eq!(bus.nodes[2].hub.remote_users(), 1);
}

#[test]
fn a_room_channel_is_held_only_while_local_members_are_in() {
    let mut bus = Bus::new(2);
    bus.join(0, 1, "a");
    bus.join(1, 2, "b");
    bus.send(0, 1, json!({"type": "join", "room": "x"}));
    assert!(bus.nodes[0].rooms.contains(&(Rc::from("/"), Rc::from("x"))));
    assert!(!bus.nodes[1].rooms.contains(&(Rc::from("/"), Rc::from("x"))));
    // Nobody elsewhere in the room: one publish, which nobody receives.
    bus.take(1, 2);
    let before = bus.published;
    bus.send(0, 1, json!({"type": "say", "room": "x", "text": "alone"}));
    assert_eq!(bus.published, before + 1);
    assert!(bus.take(1, 2).is_empty());
    bus.send(0, 1, json!({"type": "leave", "room": "x"}));
    assert!(!bus.nodes[0].rooms.contains(&(Rc::from("/"), Rc::from("x"))));
}

#[test]
fn a_state_snapshot_replaces_what_a_node_had() {
    let mut bus = Bus::new(2);
    bus.join(0, 1, "a");
    bus.join(1, 2, "b");
    bus.join(1, 3, "c");
    bus.send(1, 2, json!({"type": "join", "room": "x"}));
    bus.send(0, 1, json!({"type": "join", "room": "x"}));
    bus.take(0, 1);
    // Node 1 restarts empty: its snapshot says nobody.
    let n0 = &mut bus.nodes[0];
    n0.hub.remote_state("n1", &[], &mut n0.out);
    bus.settle();
    let got = bus.take(0, 1);
    assert_eq!(last_presence(&got), Some(names(&[])));
    assert!(got.iter().any(|e| matches!(e, Event::Left { room, name } if &**room == "x" && &**name == "b")));
    assert_eq!(
        got.iter().filter(|e| matches!(e, Event::Presence { .. })).count(),
        1,
        "one push for the whole snapshot"
    );
    assert_eq!(bus.nodes[0].hub.remote_users(), 0);

    // The snapshot node 1 would send brings both back, once.
    let state = bus.nodes[1].hub.local_state();
    let n0 = &mut bus.nodes[0];
    n0.hub.remote_state("n1", &state, &mut n0.out);
    n0.hub.remote_state("n1", &state, &mut n0.out);
    bus.settle();
    let got = bus.take(0, 1);
    assert_eq!(last_presence(&got), Some(names(&["b", "c"])));
    assert_eq!(got.iter().filter(|e| matches!(e, Event::Joined { .. })).count(), 1, "{got:?}");
    assert_eq!(bus.who(0, 1, "x"), bus.who(1, 2, "x"));
}

#[test]
fn a_dead_node_takes_its_users_along() {
    let mut bus = Bus::new(2);
    bus.join(0, 1, "a");
    bus.join(1, 2, "b");
    bus.take(0, 1);
    let n0 = &mut bus.nodes[0];
    n0.hub.remote_node_gone("n1", &mut n0.out);
    bus.settle();
    assert_eq!(last_presence(&bus.take(0, 1)), Some(names(&[])));
    // Its name is free again here once the directory says so.
    bus.names.clear();
    bus.attach(0, 5, Dialect::Events);
    bus.send(0, 5, json!({"type": "hello", "name": "b"}));
    assert!(matches!(bus.take(0, 5).first(), Some(Event::Welcome { .. })));
}

#[test]
fn invalid_peer_input_is_ignored() {
    let mut hub = Hub::new(ChatConfig::default());
    hub.join_cluster("me");
    let mut out = Outbox::default();
    let stamp = crate::chat::Stamp::default();
    hub.remote_online("x", "no-slash", "bob", stamp, Dialect::Events, &mut out);
    hub.remote_online("x", "/", "bad name", stamp, Dialect::Events, &mut out);
    hub.remote_online("x", "/", "e\u{301}", stamp, Dialect::Events, &mut out);
    hub.remote_joined("x", "/", "room", "nobody", stamp, &mut out);
    hub.remote_message("/", "room", "x", "y", &mut out);
    assert_eq!(hub.remote_users(), 0);
    for junk in [&b"no newline"[..], b"n 1 0\n{", b"n 1 0\n{\"t\":\"on\"}", b"n 1 0\n[]", b"n 1 0\n{\"t\":\"nope\"}"] {
        if let Some((_, json)) = wire::split(junk) {
            assert!(wire::decode(json).is_err(), "{junk:?}");
        }
    }
    for header in [&b"n\n{}"[..], b"n 1\n{}", b"n x 0\n{}", b"n 1 0 9\n{}", b"n 1 -1\n{}"] {
        assert!(wire::split(header).is_none(), "{header:?}");
    }
}

// The backplane against scripted Redis replies.

fn config() -> ClusterConfig {
    ClusterConfig {
        redis: "redis://:secret@127.0.0.1:1".parse().expect("a URL"),
        node_id: "me".into(),
        prefix: "p".into(),
        heartbeat: Duration::from_millis(100),
        node_timeout: Duration::from_millis(500),
        backlog_bytes: 400,
        reconnect_max: Duration::from_secs(1),
    }
}

/// The commands a link wrote, each as its words, and the link emptied.
fn commands(backplane: &mut Backplane, link: LinkId) -> Vec<Vec<String>> {
    let bytes = std::mem::take(backplane.output(link));
    let mut decoder = ReplyDecoder::new(RespLimits::default());
    decoder.feed(&bytes);
    let mut commands = Vec::new();
    while let Some(reply) = decoder.next().expect("well-formed commands") {
        let words = reply.into_array().expect("a command is an array");
        commands
            .push(words.iter().map(|w| String::from_utf8_lossy(w.as_bytes().expect("a bulk")).into_owned()).collect());
    }
    commands
}

fn ok() -> Vec<u8> {
    b"+OK\r\n".to_vec()
}

fn encode(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    reply.encode(&mut out);
    out
}

fn bulk(text: &str) -> Reply {
    Reply::Bulk(Some(text.as_bytes().to_vec()))
}

fn message(channel: &str, payload: &[u8]) -> Vec<u8> {
    encode(&Reply::Array(Some(vec![bulk("message"), bulk(channel), Reply::Bulk(Some(payload.to_vec()))])))
}

fn subscribed(channel: &str, count: i64) -> Vec<u8> {
    encode(&Reply::Array(Some(vec![bulk("subscribe"), bulk(channel), Reply::Integer(count)])))
}

/// A backplane brought up: logged in, subscribed, resynced. Returns what
/// the resync sent on the command link.
fn up(backplane: &mut Backplane, hub: &mut Hub, out: &mut Outbox, now: Instant) -> Vec<Vec<String>> {
    assert!(backplane.poll_connect(now));
    backplane.on_connected(LinkId::Commands, hub, now);
    backplane.on_connected(LinkId::Subscriber, hub, now);
    let sub = commands(backplane, LinkId::Subscriber);
    assert_eq!(sub[0], ["AUTH", "secret"]);
    assert_eq!(sub[1][..3], ["SUBSCRIBE", "p:c", &format!("p:n:{}", backplane.config().node_id)]);
    let cmd = commands(backplane, LinkId::Commands);
    assert_eq!(cmd, [vec!["AUTH", "secret"]]);
    backplane.on_bytes(LinkId::Commands, &ok(), hub, out, now);
    let mut replies = ok();
    for (i, channel) in sub[1][1..].iter().enumerate() {
        replies.extend(subscribed(channel, i as i64 + 1));
    }
    assert!(!backplane.is_up());
    backplane.on_bytes(LinkId::Subscriber, &replies, hub, out, now);
    assert!(backplane.is_up());
    commands(backplane, LinkId::Commands)
}

/// Answers every command the link awaits with `:1`.
fn answer_all(backplane: &mut Backplane, hub: &mut Hub, out: &mut Outbox, now: Instant) {
    let replies: Vec<u8> = (0..backplane.awaiting_replies()).flat_map(|_| b":1\r\n".to_vec()).collect();
    backplane.on_bytes(LinkId::Commands, &replies, hub, out, now);
}

/// A hub of a cluster node with its backplane, still down, as the reactor
/// holds them, and an empty outbox.
fn rig(now: Instant) -> (Hub, Outbox, Backplane) {
    let mut hub = Hub::new(ChatConfig::default());
    let backplane = Backplane::new(config(), &mut hub, now);
    (hub, Outbox::default(), backplane)
}

/// Signs `name` in at `slot` through a backplane that is up: its claim goes
/// out and Redis grants it; what the sign-in published is taken off the link.
fn sign_in(
    backplane: &mut Backplane,
    hub: &mut Hub,
    out: &mut Outbox,
    slot: usize,
    name: &str,
    now: Instant,
) -> MemberId {
    let member = hub.attach(endpoint(slot), Dialect::Events, "/");
    let hello = json!({"type": "hello", "name": name}).to_string();
    json_chat::handle_text(hub, member, &hello, MAX_MESSAGE, out);
    backplane.on_hub_output(hub, out, now);
    answer_all(backplane, hub, out, now);
    backplane.on_hub_output(hub, out, now);
    answer_all(backplane, hub, out, now);
    commands(backplane, LinkId::Commands);
    member
}

#[test]
fn a_backplane_comes_up_resyncs_and_claims() {
    let now = Instant::now();
    let (mut hub, mut out, mut backplane) = rig(now);
    let member = hub.attach(endpoint(1), Dialect::Events, "/");
    json_chat::handle_text(&mut hub, member, r#"{"type":"hello","name":"ann"}"#, MAX_MESSAGE, &mut out);
    // The link is down: the claim waits.
    backplane.on_hub_output(&mut hub, &mut out, now);
    assert!(out.deliveries.is_empty());
    let resync = up(&mut backplane, &mut hub, &mut out, now);
    let verbs: Vec<&str> = resync.iter().map(|c| c[0].as_str()).collect();
    assert_eq!(verbs, ["EVAL", "SET", "EVAL", "PUBLISH", "PUBLISH"], "{resync:?}");
    assert_eq!(resync[0][7], "self", "purge this node's names first");
    assert_eq!(resync[2][5], "/\nann", "then the held claim");
    assert!(resync[3][2].starts_with("me ") && resync[3][2].ends_with(" 0\n{\"t\":\"hello\"}"), "{resync:?}");
    assert!(resync[4][2].contains(r#""t":"state""#));
    answer_all(&mut backplane, &mut hub, &mut out, now);
    assert!(matches!(out.deliveries.first().map(|d| &d.event), Some(Event::Welcome { .. })), "{:?}", out.deliveries);
    assert_eq!(hub.users(), 1);
}

#[test]
fn a_refused_login_drops_the_link_and_backs_off() {
    let now = Instant::now();
    let (mut hub, mut out, mut backplane) = rig(now);
    assert!(backplane.poll_connect(now));
    backplane.on_connected(LinkId::Commands, &hub, now);
    backplane.on_bytes(LinkId::Commands, b"-WRONGPASS invalid\r\n", &mut hub, &mut out, now);
    assert!(backplane.take_reset());
    assert!(!backplane.poll_connect(now), "not before the backoff");
    assert!(backplane.poll_connect(now + Duration::from_millis(100)));
    // Garbage from Redis is a broken link too.
    backplane.on_connected(LinkId::Commands, &hub, now);
    backplane.on_bytes(LinkId::Commands, b"?what\r\n", &mut hub, &mut out, now);
    assert!(backplane.take_reset());
}

#[test]
fn messages_said_while_down_wait_for_the_peers_then_go_once_in_order() {
    let t0 = Instant::now();
    let (mut hub, mut out, mut backplane) = rig(t0);
    up(&mut backplane, &mut hub, &mut out, t0);
    answer_all(&mut backplane, &mut hub, &mut out, t0);
    // A peer with a user in the lobby.
    let peer_user = wire::encode(
        &wire::Header { node: "peer", incarnation: 7, message: 0 },
        &wire::Body::On { ns: "/".into(), name: "zed".into(), st: [0, 0, 0], d: wire::WireDialect::Events },
    );
    backplane.on_bytes(LinkId::Subscriber, &message("p:c", &peer_user), &mut hub, &mut out, t0);
    assert_eq!(backplane.nodes(), 2);
    let asked = commands(&mut backplane, LinkId::Commands);
    assert!(asked.iter().any(|c| c[1] == "p:n:peer" && c[2].ends_with(r#"{"t":"hello"}"#)), "{asked:?}");
    answer_all(&mut backplane, &mut hub, &mut out, t0);

    let member = sign_in(&mut backplane, &mut hub, &mut out, 1, "ann", t0);

    // Redis goes away.
    backplane.on_closed(LinkId::Subscriber, "reset", &hub, t0);
    assert!(backplane.take_reset() && !backplane.is_up());
    for i in 0..20 {
        let say = format!(r#"{{"type":"say","room":"lobby","text":"m{i}"}}"#);
        json_chat::handle_text(&mut hub, member, &say, MAX_MESSAGE, &mut out);
        backplane.on_hub_output(&mut hub, &mut out, t0);
    }
    let held = backplane.backlog_bytes();
    assert!(held > 0 && held <= 400, "{held}");
    assert!(backplane.stats().dropped > 0, "past --redis-backlog messages are dropped and counted");
    // The peer is silent past the node timeout: its user leaves here.
    let t1 = t0 + Duration::from_millis(600);
    backplane.tick(&mut hub, &mut out, t1);
    assert_eq!(hub.remote_users(), 0);
    assert_eq!(backplane.nodes(), 1);

    let resync = up(&mut backplane, &mut hub, &mut out, t1);
    assert!(resync.iter().all(|c| !c.iter().any(|w| w.contains("\"t\":\"msg\""))), "held until the peer is back");
    answer_all(&mut backplane, &mut hub, &mut out, t1);
    backplane.on_bytes(LinkId::Subscriber, &message("p:c", &peer_user), &mut hub, &mut out, t1);
    let sent = commands(&mut backplane, LinkId::Commands);
    let texts: Vec<String> =
        sent.iter().filter(|c| c[0] == "PUBLISH" && c[2].contains("\"t\":\"msg\"")).map(|c| c[2].clone()).collect();
    assert!(!texts.is_empty());
    for (i, text) in texts.iter().enumerate() {
        assert!(text.contains(&format!("\"text\":\"m{i}\"")), "in order, from the first: {texts:?}");
    }
    assert_eq!(backplane.backlog_bytes(), 0);
    assert_eq!(hub.remote_users(), 1);
}

#[test]
fn a_silent_subscriber_or_a_missing_reply_ends_the_link() {
    let t0 = Instant::now();
    let (mut hub, mut out, mut backplane) = rig(t0);
    up(&mut backplane, &mut hub, &mut out, t0);
    // The resync's replies never come.
    backplane.tick(&mut hub, &mut out, t0 + Duration::from_millis(499));
    assert!(backplane.is_up());
    backplane.tick(&mut hub, &mut out, t0 + Duration::from_millis(501));
    assert!(!backplane.is_up() && backplane.take_reset());
    assert!(backplane.next_deadline().is_some());
}

#[test]
fn an_unconfirmed_message_is_sent_again_and_a_receiver_drops_what_it_had() {
    let t0 = Instant::now();
    let (mut hub, mut out, mut backplane) = rig(t0);
    up(&mut backplane, &mut hub, &mut out, t0);
    answer_all(&mut backplane, &mut hub, &mut out, t0);
    let member = sign_in(&mut backplane, &mut hub, &mut out, 1, "ann", t0);
    json_chat::handle_text(&mut hub, member, r#"{"type":"say","room":"lobby","text":"once"}"#, MAX_MESSAGE, &mut out);
    backplane.on_hub_output(&mut hub, &mut out, t0);
    let first = commands(&mut backplane, LinkId::Commands);
    let published: Vec<&Vec<String>> = first.iter().filter(|c| c[2].contains("\"text\":\"once\"")).collect();
    assert_eq!(published.len(), 1);
    let payload = published[0][2].clone();
    // The link dies before Redis confirms it: it goes again after the reconnect.
    backplane.on_closed(LinkId::Commands, "reset", &hub, t0);
    let resync = up(&mut backplane, &mut hub, &mut out, t0 + Duration::from_millis(200));
    assert_eq!(resync.iter().filter(|c| c.get(2) == Some(&payload)).count(), 1, "{resync:?}");

    // A receiver takes it once, however often it comes.
    let mut other_hub = Hub::new(ChatConfig::default());
    let mut other = Backplane::new(ClusterConfig { node_id: "other".into(), ..config() }, &mut other_hub, t0);
    up(&mut other, &mut other_hub, &mut out, t0);
    sign_in(&mut other, &mut other_hub, &mut out, 2, "bo", t0);
    let state = other_hub.local_state();
    assert_eq!(state.len(), 1);
    let ann = wire::encode(
        &wire::Header { node: "me", incarnation: 1, message: 0 },
        &wire::Body::On { ns: "/".into(), name: "ann".into(), st: [0, 0, 0], d: wire::WireDialect::Events },
    );
    other.on_bytes(LinkId::Subscriber, &message("p:c", &ann), &mut other_hub, &mut out, t0);
    out.deliveries.clear();
    for _ in 0..2 {
        other.on_bytes(LinkId::Subscriber, &message("p:r:/:lobby", payload.as_bytes()), &mut other_hub, &mut out, t0);
    }
    let messages = out.deliveries.iter().filter(|d| matches!(d.event, Event::Message { .. })).count();
    assert_eq!(messages, 1);
    assert_eq!(other.stats().duplicates, 1);
}
