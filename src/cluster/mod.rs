//! Many nodes, one world: the backplane that joins soket nodes through Redis
//! pub/sub (`--redis`), sans-IO. The reactor owns the two TCP connections
//! ([`io`]); this module decides what to send and what the replies mean.
//!
//! - Names: claimed atomically in Redis ([`scripts`]) through the hub's
//!   claim seam ([`crate::chat::ClaimQueue`]); a node's claims live as long
//!   as its `alive` key, which it refreshes every heartbeat.
//! - Traffic: the hub lists what other nodes must hear
//!   ([`crate::chat::Broadcast`]); each item is published once, on the
//!   cluster channel (presence, rooms, namespace events), a node's channel
//!   (private messages) or a room's channel, which a node subscribes to only
//!   while it has members in the room. A node applies what others publish to
//!   its hub, which delivers to its own members: encode-once per node.
//! - Order: one node publishes everything through one connection, in effect
//!   order, and Redis delivers one subscriber's messages in publish order,
//!   so one sender's messages arrive in order everywhere.
//! - Failures: a node silent for `--redis-node-timeout` is dead and its
//!   users leave everywhere. When Redis is unreachable the node serves its
//!   own users, retries with backoff, holds messages (up to
//!   `--redis-backlog` bytes, then drops and counts), and on the way back
//!   drops and reclaims its names, resubscribes, says `hello` (everyone
//!   answers with its state) and its own state, and sends what it held once
//!   every peer it knew is back (or after one node timeout). A chat message
//!   whose PUBLISH was not confirmed when the link died is sent again, and so
//!   is one confirmed within the last heartbeat (Redis answers the publisher
//!   before it has written to every subscriber, and a crash in between loses
//!   the message for some). Each carries its number in the node's sequence,
//!   and a receiver drops a number it has had, so nobody sees one twice.

pub mod io;
pub mod scripts;
pub mod wire;

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::chat::{Broadcast, ClaimRequest, Hub, MemberId, Outbox};
use crate::redis::{RedisUrl, Reply, ReplyDecoder, RespLimits, encode_command};
use wire::{Body, Channel, Control, Header};

/// The first wait before reconnecting; it doubles up to `--redis-reconnect-max`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Unsent bytes to Redis past which the link is deemed stuck and dropped.
const MAX_UNSENT_BYTES: usize = 64 << 20;

/// `--redis` and its companions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    pub redis: RedisUrl,
    pub node_id: String,
    pub prefix: String,
    pub heartbeat: Duration,
    pub node_timeout: Duration,
    pub backlog_bytes: usize,
    pub reconnect_max: Duration,
}

/// Whether `id` may name a node: it goes into key and channel names and
/// before the `\n` of every payload.
pub fn valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// One of the two connections to Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkId {
    /// Commands and publishes, replies in order.
    Commands,
    /// Subscriptions: after its handshake, only pushed messages.
    Subscriber,
}

enum Phase {
    Down {
        retry_at: Instant,
    },
    /// Connecting and logging in, since when.
    Starting {
        since: Instant,
    },
    Up,
}

/// What a reply on the command link answers.
enum Pending {
    /// `AUTH`/`SELECT`: an error ends the link (bad password, bad db).
    Login,
    /// A publish or housekeeping: errors are logged.
    Ignore,
    /// A chat message's publish: confirmed, its copy for a resend goes.
    Message,
    /// A member's claim: the hub learns the answer.
    Claim(MemberId),
    /// A registered member's name claimed again after a reconnect: lost, it is evicted.
    Reclaim(MemberId),
}

/// Counters for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackplaneStats {
    pub published: u64,
    pub received: u64,
    pub reconnects: u64,
    pub dropped: u64,
    /// Messages received twice (published again after a lost confirmation) and dropped.
    pub duplicates: u64,
}

/// One half of the pair: bytes to write and the reply decoder.
struct Link {
    connected: bool,
    out: Vec<u8>,
    decoder: ReplyDecoder,
}

impl Link {
    fn new() -> Link {
        Link { connected: false, out: Vec::new(), decoder: ReplyDecoder::new(RespLimits::default()) }
    }
}

pub struct Backplane {
    config: ClusterConfig,
    node: Rc<str>,
    phase: Phase,
    backoff: Duration,
    cmd: Link,
    sub: Link,
    /// Replies the command link awaits, oldest first, with when each was asked.
    pending: VecDeque<(Instant, Pending)>,
    /// Login replies and subscribe confirmations the subscriber awaits.
    sub_handshake: usize,
    /// Other live nodes and when each was last heard.
    peers: HashMap<Rc<str>, Instant>,
    /// Nodes known when the link went down: held messages wait for them.
    known_before_outage: HashSet<Rc<str>>,
    /// Peers to hear from after a resync before held messages go out.
    awaited: HashSet<Rc<str>>,
    /// When held messages go out even if some awaited peer stays silent.
    release_at: Option<Instant>,
    /// Publishes held while the link is down or peers are awaited.
    backlog: VecDeque<Held>,
    backlog_bytes: usize,
    /// Chat messages published but not yet confirmed, oldest first: sent
    /// again after a reconnect if the link dies first.
    unconfirmed: VecDeque<Held>,
    /// Chat messages confirmed within the last heartbeat, oldest first, at
    /// most `--redis-backlog` bytes: sent again too if the link dies now.
    recent: VecDeque<(Instant, Held)>,
    recent_bytes: usize,
    /// Random per start, in every payload's header.
    incarnation: u64,
    /// The last chat message number given.
    last_message: u64,
    /// Per other node: the last chat message number taken from it, to drop
    /// one published again. Kept past the node's death (a message may come
    /// again after it is back), forgotten after [`FORGET_TAKEN_AFTER`].
    taken: HashMap<Rc<str>, Taken>,
    /// Claims and releases made while the link was down, in order.
    held_claims: Vec<ClaimRequest>,
    next_heartbeat: Instant,
    /// The subscriber's last input: it hears this node's own heartbeats, so
    /// silence means a dead link.
    last_sub_input: Instant,
    stats: BackplaneStats,
    /// Set when the links were dropped: the IO closes its sockets.
    reset: bool,
    /// Another process was heard using this node's id (said once).
    warned_twin: bool,
    /// The first failed attempt since the link was last up was logged as a
    /// warning; the next ones, with the same cause most likely, are debug.
    warned_unreachable: bool,
    keys: Keys,
}

/// How long a node's last message number is remembered after its last
/// message: far longer than any outage after which it could resend.
const FORGET_TAKEN_AFTER: Duration = Duration::from_secs(600);

/// The newest chat message number taken from one node.
struct Taken {
    incarnation: u64,
    last: u64,
    at: Instant,
}

/// One publish waiting to go (or to be confirmed).
struct Held {
    channel: Vec<u8>,
    payload: Vec<u8>,
    /// A chat message, sent again if its confirmation is lost.
    message: bool,
}

impl Held {
    fn size(&self) -> usize {
        self.channel.len() + self.payload.len()
    }
}

/// A number no other start of this node is likely to have had.
fn new_incarnation() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        return since_epoch.as_nanos() as u64 ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(bytes)
}

/// A chat message, which is numbered, held and sent again when its fate is unknown.
fn is_message(broadcast: &Broadcast) -> bool {
    matches!(
        broadcast,
        Broadcast::Message { .. } | Broadcast::Private { .. } | Broadcast::Custom { .. } | Broadcast::Disconnect { .. }
    )
}

/// Key and channel names, made once.
struct Keys {
    names: Vec<u8>,
    own_names: Vec<u8>,
    alive_prefix: Vec<u8>,
    node_prefix: Vec<u8>,
    alive: Vec<u8>,
    cluster: Vec<u8>,
    own_channel: Vec<u8>,
}

impl Keys {
    fn new(prefix: &str, node: &str) -> Keys {
        Keys {
            names: format!("{prefix}:names").into_bytes(),
            own_names: format!("{prefix}:node:{node}:names").into_bytes(),
            alive_prefix: format!("{prefix}:alive:").into_bytes(),
            node_prefix: format!("{prefix}:node:").into_bytes(),
            alive: format!("{prefix}:alive:{node}").into_bytes(),
            cluster: wire::channel_name(prefix, Channel::Cluster),
            own_channel: wire::channel_name(prefix, Channel::Node(node)),
        }
    }
}

/// A membership change: superseded by the state sent on reconnect, so not
/// worth holding while the link is down.
fn is_membership(broadcast: &Broadcast) -> bool {
    matches!(
        broadcast,
        Broadcast::Online { .. } | Broadcast::Offline { .. } | Broadcast::Joined { .. } | Broadcast::Left { .. }
    )
}

fn name_field(namespace: &str, name: &str) -> Vec<u8> {
    let mut field = Vec::with_capacity(namespace.len() + 1 + name.len());
    field.extend_from_slice(namespace.as_bytes());
    field.push(b'\n');
    field.extend_from_slice(name.as_bytes());
    field
}

impl Backplane {
    /// A backplane for `hub`, which joins the cluster now; the first connect
    /// is due at once.
    pub fn new(config: ClusterConfig, hub: &mut Hub, now: Instant) -> Backplane {
        hub.join_cluster(&config.node_id);
        let node: Rc<str> = config.node_id.as_str().into();
        let keys = Keys::new(&config.prefix, &node);
        Backplane {
            node,
            phase: Phase::Down { retry_at: now },
            backoff: FIRST_BACKOFF,
            cmd: Link::new(),
            sub: Link::new(),
            pending: VecDeque::new(),
            sub_handshake: 0,
            peers: HashMap::new(),
            known_before_outage: HashSet::new(),
            awaited: HashSet::new(),
            release_at: None,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            unconfirmed: VecDeque::new(),
            recent: VecDeque::new(),
            recent_bytes: 0,
            incarnation: new_incarnation(),
            last_message: 0,
            taken: HashMap::new(),
            held_claims: Vec::new(),
            next_heartbeat: now,
            last_sub_input: now,
            stats: BackplaneStats::default(),
            reset: false,
            warned_twin: false,
            warned_unreachable: false,
            keys,
            config,
        }
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// Whether both links are up and this node has resynced.
    pub fn is_up(&self) -> bool {
        matches!(self.phase, Phase::Up)
    }

    pub fn stats(&self) -> BackplaneStats {
        self.stats
    }

    pub fn backlog_bytes(&self) -> usize {
        self.backlog_bytes
    }

    /// Live nodes known, this one included.
    pub fn nodes(&self) -> usize {
        self.peers.len() + 1
    }

    /// Whether a connection attempt is due: the IO opens both links.
    pub fn poll_connect(&mut self, now: Instant) -> bool {
        match self.phase {
            Phase::Down { retry_at } if retry_at <= now => {
                self.phase = Phase::Starting { since: now };
                self.stats.reconnects += 1;
                true
            }
            _ => false,
        }
    }

    /// Whether the links were dropped and the IO has not closed its sockets yet.
    pub fn reset_pending(&self) -> bool {
        self.reset
    }

    /// Whether the links were dropped since the last call: the IO closes its sockets.
    pub fn take_reset(&mut self) -> bool {
        std::mem::take(&mut self.reset)
    }

    /// The bytes waiting to be written on `link`; the IO drains what it wrote.
    pub fn output(&mut self, link: LinkId) -> &mut Vec<u8> {
        match link {
            LinkId::Commands => &mut self.cmd.out,
            LinkId::Subscriber => &mut self.sub.out,
        }
    }

    /// `link`'s TCP connection is established: log in, and subscribe.
    pub fn on_connected(&mut self, link: LinkId, hub: &Hub, now: Instant) {
        if !matches!(self.phase, Phase::Starting { .. }) {
            return;
        }
        match link {
            LinkId::Commands => {
                self.cmd.connected = true;
                let logins = self.config.redis.auth_and_select(&mut self.cmd.out);
                for _ in 0..logins {
                    self.pending.push_back((now, Pending::Login));
                }
            }
            LinkId::Subscriber => {
                self.sub.connected = true;
                self.last_sub_input = now;
                self.sub_handshake += self.config.redis.auth_and_select(&mut self.sub.out);
                let mut channels = vec![self.keys.cluster.clone(), self.keys.own_channel.clone()];
                for (namespace, room) in hub.local_rooms() {
                    channels.push(wire::channel_name(&self.config.prefix, Channel::Room(&namespace, &room)));
                }
                self.sub_handshake += channels.len();
                let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
                args.extend(channels.iter().map(Vec::as_slice));
                encode_command(&mut self.sub.out, &args);
            }
        }
        self.maybe_up(hub, now);
    }

    /// Bytes read from `link`.
    pub fn on_bytes(&mut self, link: LinkId, bytes: &[u8], hub: &mut Hub, out: &mut Outbox, now: Instant) {
        if matches!(self.phase, Phase::Down { .. }) {
            return;
        }
        match link {
            LinkId::Commands => self.cmd.decoder.feed(bytes),
            LinkId::Subscriber => {
                self.last_sub_input = now;
                self.sub.decoder.feed(bytes);
            }
        }
        loop {
            let decoder = match link {
                LinkId::Commands => &mut self.cmd.decoder,
                LinkId::Subscriber => &mut self.sub.decoder,
            };
            let reply = match decoder.next() {
                Ok(Some(reply)) => reply,
                Ok(None) => break,
                Err(e) => {
                    self.fail(&format!("unreadable reply: {e}"), hub, now);
                    return;
                }
            };
            let fine = match link {
                LinkId::Commands => self.on_command_reply(reply, hub, out, now),
                LinkId::Subscriber => self.on_subscriber_reply(reply, hub, out, now),
            };
            if let Err(reason) = fine {
                self.fail(&reason, hub, now);
                return;
            }
        }
        self.maybe_up(hub, now);
    }

    /// `link` closed or failed, `why` as the IO saw it (for the log).
    pub fn on_closed(&mut self, link: LinkId, why: &str, hub: &Hub, now: Instant) {
        if !matches!(self.phase, Phase::Down { .. }) {
            self.fail(&format!("{link:?} connection lost: {why}"), hub, now);
        }
    }

    fn on_command_reply(&mut self, reply: Reply, hub: &mut Hub, out: &mut Outbox, now: Instant) -> Result<(), String> {
        let Some((_, pending)) = self.pending.pop_front() else {
            return Err("a reply nobody asked for".into());
        };
        match pending {
            Pending::Login => {
                if let Some(error) = reply.as_error() {
                    return Err(self.refused("login refused", error));
                }
                self.maybe_up(hub, now);
            }
            Pending::Ignore => {
                if let Some(error) = reply.as_error() {
                    warn!("event=redis_error error={}", crate::logging::quote(&String::from_utf8_lossy(error)));
                }
            }
            Pending::Message => {
                if let Some(held) = self.unconfirmed.pop_front() {
                    self.recent_bytes += held.size();
                    self.recent.push_back((now, held));
                    self.forget_recent(now);
                }
            }
            Pending::Claim(member) => {
                let granted = reply.as_int() == Some(1);
                if reply.is_error() {
                    warn!("event=redis_error command=claim member={}", member.0);
                }
                hub.claim_resolved(member, granted, out);
            }
            Pending::Reclaim(member) => {
                if reply.as_int() == Some(0) {
                    info!("event=name_lost member={} (another node holds it after a partition)", member.0);
                    hub.evict(member, out);
                }
            }
        }
        Ok(())
    }

    fn on_subscriber_reply(
        &mut self,
        reply: Reply,
        hub: &mut Hub,
        out: &mut Outbox,
        now: Instant,
    ) -> Result<(), String> {
        if let Some(error) = reply.as_error() {
            return Err(self.refused("subscriber refused", error));
        }
        let Some(parts) = reply.into_array() else {
            // `+OK` to a login.
            self.sub_handshake = self.sub_handshake.saturating_sub(1);
            return Ok(());
        };
        let mut parts = parts.into_iter();
        let kind = parts.next();
        match kind.as_ref().and_then(Reply::as_bytes) {
            Some(b"message") => {
                let _channel = parts.next();
                let Some(payload) = parts.next() else { return Err("a message without payload".into()) };
                let Some(payload) = payload.as_bytes() else {
                    return Err("a message payload that is no string".into());
                };
                self.on_message(payload, hub, out, now);
            }
            Some(b"subscribe") => self.sub_handshake = self.sub_handshake.saturating_sub(1),
            // Unsubscribe confirmations, pongs: nothing to do.
            _ => {}
        }
        Ok(())
    }

    fn on_message(&mut self, payload: &[u8], hub: &mut Hub, out: &mut Outbox, now: Instant) {
        let Some((header, json)) = wire::split(payload) else {
            warn!("event=backplane_bad_message reason=bad_header");
            return;
        };
        let node = header.node;
        if node == &*self.node {
            if header.incarnation != self.incarnation && !self.warned_twin {
                self.warned_twin = true;
                warn!("event=node_id_twice node={node} (another process uses this --node-id: give each node its own)");
            }
            return;
        }
        self.stats.received += 1;
        if !valid_node_id(node) {
            warn!("event=backplane_bad_message reason=bad_node");
            return;
        }
        if header.message > 0 {
            let fresh = Taken { incarnation: header.incarnation, last: 0, at: now };
            let taken = self.taken.entry(Rc::from(node)).or_insert(fresh);
            if taken.incarnation != header.incarnation {
                *taken = Taken { incarnation: header.incarnation, last: 0, at: now };
            }
            taken.at = now;
            if header.message <= taken.last {
                self.stats.duplicates += 1;
                debug!("event=backplane_duplicate node={node} message={}", header.message);
                return;
            }
            taken.last = header.message;
        }
        let body = match wire::decode(json) {
            Ok(body) => body,
            Err(e) => {
                warn!("event=backplane_bad_message node={node} reason={}", crate::logging::quote(&e.to_string()));
                return;
            }
        };
        let newcomer = !self.peers.contains_key(node);
        let node: Rc<str> = match self.peers.get_key_value(node) {
            Some((key, _)) => key.clone(),
            None => node.into(),
        };
        self.peers.insert(node.clone(), now);
        if self.awaited.remove(&node) && self.awaited.is_empty() {
            self.release_backlog(now);
        }
        let asks_or_tells_state = matches!(body, Body::Hello | Body::State { .. } | Body::Bye);
        // Before this node is up, its own hello (sent on the way up) asks
        // everyone for their state, and its state goes to everyone.
        let up = self.is_up();
        if up && newcomer && !asks_or_tells_state {
            // A node we never heard of (its hello was missed): ask it what it has.
            debug!("event=backplane_newcomer node={node}");
            let channel = wire::channel_name(&self.config.prefix, Channel::Node(&node));
            let payload = wire::encode(&self.header(0), &Body::Hello);
            self.publish_now(Held { channel, payload, message: false }, now);
        }
        match wire::apply(hub, &node, body, out) {
            Control::None => {}
            Control::SendState if up => self.send_state(Channel::Node(&node), hub, now),
            Control::SendState => {}
            Control::Gone => {
                info!("event=node_left node={node}");
                self.peers.remove(&node);
                hub.remote_node_gone(&node, out);
            }
        }
    }

    /// Takes what the hub produced for the cluster: name claims and
    /// releases, and the broadcasts of `out`.
    pub fn on_hub_output(&mut self, hub: &mut Hub, out: &mut Outbox, now: Instant) {
        for request in hub.directory_mut().take() {
            if self.is_up() {
                self.send_claim(&request, now);
            } else {
                self.held_claims.push(request);
            }
        }
        let broadcasts = std::mem::take(&mut out.cluster);
        for broadcast in &broadcasts {
            match broadcast {
                Broadcast::Subscribe { namespace, room } | Broadcast::Unsubscribe { namespace, room } => {
                    // While down, the resubscription after the reconnect covers it.
                    if self.is_up() {
                        let verb: &[u8] = if matches!(broadcast, Broadcast::Subscribe { .. }) {
                            b"SUBSCRIBE"
                        } else {
                            b"UNSUBSCRIBE"
                        };
                        let channel = wire::channel_name(&self.config.prefix, Channel::Room(namespace, room));
                        encode_command(&mut self.sub.out, &[verb, &channel]);
                    }
                    continue;
                }
                _ if !self.is_up() && is_membership(broadcast) => continue,
                _ => {}
            }
            let Some((channel, body)) = wire::route(broadcast) else { continue };
            let channel = wire::channel_name(&self.config.prefix, channel);
            let message = is_message(broadcast);
            let number = if message {
                self.last_message += 1;
                self.last_message
            } else {
                0
            };
            let payload = wire::encode(&self.header(number), &body);
            let held = Held { channel, payload, message };
            if self.is_up() && self.backlog.is_empty() {
                self.publish_now(held, now);
            } else {
                self.hold(held);
            }
        }
        // Give the outbox its allocation back.
        let mut broadcasts = broadcasts;
        broadcasts.clear();
        out.cluster = broadcasts;
        self.check_unsent(hub, now);
    }

    fn header(&self, message: u64) -> Header<'_> {
        Header { node: &self.node, incarnation: self.incarnation, message }
    }

    fn hold(&mut self, held: Held) {
        let size = held.size();
        if self.backlog_bytes + size > self.config.backlog_bytes {
            self.stats.dropped += 1;
            return;
        }
        self.backlog_bytes += size;
        self.backlog.push_back(held);
    }

    fn publish_now(&mut self, held: Held, now: Instant) {
        encode_command(&mut self.cmd.out, &[b"PUBLISH", &held.channel, &held.payload]);
        self.stats.published += 1;
        if held.message {
            self.pending.push_back((now, Pending::Message));
            self.unconfirmed.push_back(held);
        } else {
            self.pending.push_back((now, Pending::Ignore));
        }
    }

    /// A publish not part of the message stream (hello, state, heartbeat, bye).
    fn publish_control(&mut self, to: Channel<'_>, body: &Body<'_>, now: Instant) {
        let channel = wire::channel_name(&self.config.prefix, to);
        let payload = wire::encode(&self.header(0), body);
        self.publish_now(Held { channel, payload, message: false }, now);
    }

    fn send_claim(&mut self, request: &ClaimRequest, now: Instant) {
        let field = name_field(&request.namespace, &request.name);
        if request.claim {
            self.eval_claim(&field, Pending::Claim(request.member), now);
        } else {
            let keys = &self.keys;
            encode_command(
                &mut self.cmd.out,
                &[
                    b"EVAL",
                    scripts::RELEASE.as_bytes(),
                    b"2",
                    &keys.names,
                    &keys.own_names,
                    &field,
                    self.node.as_bytes(),
                ],
            );
            self.pending.push_back((now, Pending::Ignore));
        }
    }

    fn eval_claim(&mut self, field: &[u8], pending: Pending, now: Instant) {
        let keys = &self.keys;
        encode_command(
            &mut self.cmd.out,
            &[
                b"EVAL",
                scripts::CLAIM.as_bytes(),
                b"2",
                &keys.names,
                &keys.own_names,
                field,
                self.node.as_bytes(),
                &keys.alive_prefix,
                &keys.node_prefix,
            ],
        );
        self.pending.push_back((now, pending));
    }

    fn purge(&mut self, node: &str, dead: bool, now: Instant) {
        let node_names = [&self.keys.node_prefix, node.as_bytes(), b":names"].concat();
        let alive = [&self.keys.alive_prefix, node.as_bytes()].concat();
        let mode: &[u8] = if dead { b"dead" } else { b"self" };
        encode_command(
            &mut self.cmd.out,
            &[b"EVAL", scripts::PURGE.as_bytes(), b"3", &self.keys.names, &node_names, &alive, node.as_bytes(), mode],
        );
        self.pending.push_back((now, Pending::Ignore));
    }

    fn refresh_alive(&mut self, now: Instant) {
        let ttl = self.config.node_timeout.as_millis().to_string();
        encode_command(&mut self.cmd.out, &[b"SET", &self.keys.alive, b"1", b"PX", ttl.as_bytes()]);
        self.pending.push_back((now, Pending::Ignore));
    }

    fn send_state(&mut self, to: Channel<'_>, hub: &Hub, now: Instant) {
        let users = hub.local_state();
        self.publish_control(to, &Body::State { users: wire::wire_users(&users) }, now);
    }

    /// Goes up once both links are connected and logged in and every
    /// subscription is confirmed: then resyncs.
    fn maybe_up(&mut self, hub: &Hub, now: Instant) {
        let logging_in = self.pending.iter().any(|(_, p)| matches!(p, Pending::Login));
        if !matches!(self.phase, Phase::Starting { .. })
            || !self.cmd.connected
            || !self.sub.connected
            || logging_in
            || self.sub_handshake > 0
        {
            return;
        }
        self.phase = Phase::Up;
        self.backoff = FIRST_BACKOFF;
        self.warned_unreachable = false;
        info!("event=redis_up node={} redis={}", self.node, self.config.redis);
        // Names first: what this node held may have been lost (Redis
        // restarted) or released while the link was down.
        self.purge(&self.node.clone(), false, now);
        self.refresh_alive(now);
        for (namespace, name, member) in hub.local_names() {
            self.eval_claim(&name_field(&namespace, &name), Pending::Reclaim(member), now);
        }
        for request in std::mem::take(&mut self.held_claims) {
            self.send_claim(&request, now);
        }
        self.publish_control(Channel::Cluster, &Body::Hello, now);
        self.send_state(Channel::Cluster, hub, now);
        self.next_heartbeat = now + self.config.heartbeat;
        self.last_sub_input = now;
        self.awaited = std::mem::take(&mut self.known_before_outage);
        self.awaited.retain(|node| !self.peers.contains_key(node));
        if self.awaited.is_empty() {
            self.release_backlog(now);
        } else {
            self.release_at = Some(now + self.config.node_timeout);
        }
    }

    fn release_backlog(&mut self, now: Instant) {
        self.release_at = None;
        self.awaited.clear();
        if !self.is_up() {
            return;
        }
        while let Some(held) = self.backlog.pop_front() {
            self.publish_now(held, now);
        }
        self.backlog_bytes = 0;
    }

    /// The IO warned of why this attempt failed (a TLS handshake refused):
    /// the failure it reports next needs no warning of its own.
    pub fn failure_explained(&mut self) {
        self.warned_unreachable = true;
    }

    /// Redis answered a login or a subscription with an error: a wrong
    /// password, an ACL, a database that does not exist. A setup mistake
    /// someone must see, at every attempt. Returns the failure's reason.
    fn refused(&mut self, what: &str, error: &[u8]) -> String {
        let reason = format!("{what}: {}", String::from_utf8_lossy(error));
        warn!(
            "event=redis_refused node={} redis={} reason={}",
            self.node,
            self.config.redis,
            crate::logging::quote(&reason)
        );
        self.warned_unreachable = true;
        reason
    }

    /// Drops both links; the next attempt after the backoff.
    fn fail(&mut self, reason: &str, hub: &Hub, now: Instant) {
        if matches!(self.phase, Phase::Up) {
            warn!("event=redis_down node={} reason={}", self.node, crate::logging::quote(reason));
            self.known_before_outage = self.peers.keys().cloned().collect();
            self.warned_unreachable = true;
        } else if !self.warned_unreachable {
            // A node that never reaches Redis (a wrong address, Redis not
            // started yet) says so once, then retries quietly.
            warn!(
                "event=redis_unreachable node={} redis={} reason={} (retrying, at most every {})",
                self.node,
                self.config.redis,
                crate::logging::quote(reason),
                humantime::format_duration(self.config.reconnect_max.max(FIRST_BACKOFF))
            );
            self.warned_unreachable = true;
        } else {
            debug!("event=redis_connect_failed reason={}", crate::logging::quote(reason));
        }
        self.known_before_outage.extend(self.awaited.drain());
        self.release_at = None;
        self.phase = Phase::Down { retry_at: now + self.backoff };
        self.backoff = (self.backoff * 2).min(self.config.reconnect_max.max(FIRST_BACKOFF));
        self.reset = true;
        for link in [&mut self.cmd, &mut self.sub] {
            link.connected = false;
            link.out = Vec::new();
            link.decoder = ReplyDecoder::new(RespLimits::default());
        }
        self.sub_handshake = 0;
        // Messages whose fate is unknown go first when the link is back;
        // receivers that had them drop them by their number. Over the
        // backlog's size, the oldest are dropped.
        self.forget_recent(now);
        let recent = self.recent.drain(..).map(|(_, held)| held);
        let again: Vec<Held> = recent.chain(self.unconfirmed.drain(..)).collect();
        self.recent_bytes = 0;
        for held in again.into_iter().rev() {
            self.backlog_bytes += held.size();
            self.backlog.push_front(held);
        }
        while self.backlog_bytes > self.config.backlog_bytes {
            let Some(dropped) = self.backlog.pop_front() else { break };
            self.backlog_bytes -= dropped.size();
            self.stats.dropped += 1;
        }
        // A claim whose answer was lost is asked again; reclaims are redone
        // in full after the reconnect, and publishes are never repeated.
        let lost_claims = self.pending.drain(..).filter_map(|(_, pending)| match pending {
            Pending::Claim(member) => Some(member),
            _ => None,
        });
        let lost: Vec<MemberId> = lost_claims.collect();
        if !lost.is_empty() {
            let mut again: Vec<ClaimRequest> =
                hub.pending_claims().into_iter().filter(|request| lost.contains(&request.member)).collect();
            again.append(&mut self.held_claims);
            self.held_claims = again;
        }
    }

    /// Lets go of confirmed messages older than a heartbeat, or past the
    /// backlog's size.
    fn forget_recent(&mut self, now: Instant) {
        while let Some((at, held)) = self.recent.front() {
            let old = now.saturating_duration_since(*at) > self.config.heartbeat;
            if !old && self.recent_bytes <= self.config.backlog_bytes {
                break;
            }
            self.recent_bytes -= held.size();
            self.recent.pop_front();
        }
    }

    fn check_unsent(&mut self, hub: &Hub, now: Instant) {
        if self.cmd.out.len() > MAX_UNSENT_BYTES || self.sub.out.len() > MAX_UNSENT_BYTES {
            self.fail("Redis does not read what this node sends", hub, now);
        }
    }

    /// Heartbeats, dead peers, stuck links, the held messages' deadline.
    pub fn tick(&mut self, hub: &mut Hub, out: &mut Outbox, now: Instant) {
        match self.phase {
            Phase::Starting { since } if now >= since + self.config.node_timeout => {
                self.fail("connect timed out", hub, now);
            }
            Phase::Up => {
                let stuck = self.pending.front().is_some_and(|(at, _)| now >= *at + self.config.node_timeout);
                if stuck {
                    self.fail("no reply within the node timeout", hub, now);
                } else if now >= self.last_sub_input + self.config.node_timeout {
                    self.fail("the subscriber heard nothing within the node timeout", hub, now);
                } else {
                    if now >= self.next_heartbeat {
                        self.refresh_alive(now);
                        self.publish_control(Channel::Cluster, &Body::Hb, now);
                        self.next_heartbeat = now + self.config.heartbeat;
                    }
                    if self.release_at.is_some_and(|at| now >= at) {
                        self.release_backlog(now);
                    }
                }
            }
            _ => {}
        }
        self.forget_recent(now);
        self.taken.retain(|_, taken| now.saturating_duration_since(taken.at) < FORGET_TAKEN_AFTER);
        let timeout = self.config.node_timeout;
        let dead: Vec<Rc<str>> =
            self.peers.iter().filter(|(_, seen)| now >= **seen + timeout).map(|(node, _)| node.clone()).collect();
        for node in dead {
            info!("event=node_dead node={node} silent_for={}", humantime::format_duration(timeout));
            self.peers.remove(&node);
            hub.remote_node_gone(&node, out);
            if self.is_up() {
                self.purge(&node, true, now);
            }
        }
    }

    /// The earliest time [`Backplane::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timeout = self.config.node_timeout;
        let peers = self.peers.values().map(|seen| *seen + timeout).min();
        let phase = match self.phase {
            Phase::Down { retry_at } => Some(retry_at),
            Phase::Starting { since } => Some(since + timeout),
            Phase::Up => {
                let stuck = self.pending.front().map(|(at, _)| *at + timeout);
                [Some(self.next_heartbeat), Some(self.last_sub_input + timeout), stuck, self.release_at]
                    .into_iter()
                    .flatten()
                    .min()
            }
        };
        [peers, phase].into_iter().flatten().min()
    }

    /// Graceful stop: this node's names and liveness go, and the others hear
    /// `bye` and drop its users at once. Whether anything was queued.
    pub fn shutdown(&mut self, now: Instant) -> bool {
        if !self.is_up() {
            return false;
        }
        self.release_backlog(now);
        self.purge(&self.node.clone(), false, now);
        let alive = self.keys.alive.clone();
        encode_command(&mut self.cmd.out, &[b"DEL", &alive]);
        self.pending.push_back((now, Pending::Ignore));
        self.publish_control(Channel::Cluster, &Body::Bye, now);
        true
    }

    /// Replies the command link still awaits.
    pub fn awaiting_replies(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests;
