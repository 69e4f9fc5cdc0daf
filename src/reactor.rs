//! The mio reactor: one thread, one poll, its listeners, a slab of
//! connections, a deadline heap, and one flush per connection per batch.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use std::collections::VecDeque;

use crate::chat::{MemberId, Recipient};
use crate::cluster::io::ClusterIo;
use crate::config::Config;
use crate::conn::{Conn, Ctx, NetStream, Renderings, Shared, TlsAcceptor};
use crate::ids::{Endpoint, SessionId};
use crate::timers::{ConnId, Timers};

const WAKER: Token = Token(usize::MAX - 1);
/// Listener `i` (one per `--listen` address) is `Token(FIRST_LISTENER - i)`,
/// far above any connection slot.
const FIRST_LISTENER: usize = usize::MAX - 2;
/// The most `--listen` addresses; more is a start-up error.
pub const MAX_LISTENERS: usize = 64;
/// The backplane's two Redis connections, below the listeners' tokens.
const REDIS_COMMANDS: Token = Token(usize::MAX - 2 - MAX_LISTENERS - 1);
const REDIS_SUBSCRIBER: Token = Token(usize::MAX - 2 - MAX_LISTENERS - 2);
/// How long accepting pauses after the process runs out of file
/// descriptors (or kernel memory): long enough not to spin, short enough
/// that clients queued in the backlog are served soon after fds free up.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Bytes read per `read` call, into one buffer shared by all connections.
const READ_CHUNK_BYTES: usize = 64 * 1024;
const EVENTS_CAPACITY: usize = 1024;

/// Asks a running [`Server`] to shut down gracefully; usable from any thread
/// (a signal handler thread in `main`).
#[derive(Clone)]
pub struct ShutdownHandle {
    requested: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ShutdownHandle {
    /// Stop accepting, close 1001 to every WebSocket, flush within the
    /// shutdown timeout, then return from [`Server::run`].
    pub fn shutdown(&self) {
        self.requested.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            warn!("could not wake the reactor for shutdown: {e}");
        }
    }
}

/// Hands a running [`Server`] what SIGHUP re-read from disk, from any
/// thread: a new TLS configuration (handshakes after it use it, open
/// connections keep theirs) or a new token key (connects and refreshes
/// after it are checked with it, admitted connections keep their cutoffs).
#[derive(Clone)]
pub struct ReloadHandle {
    updates: mpsc::Sender<Reload>,
    waker: Arc<Waker>,
}

/// One thing reloaded.
enum Reload {
    Tls(Arc<rustls::ServerConfig>),
    RedisTls(Arc<rustls::ClientConfig>),
    TokenKey(Arc<crate::auth::Verifier>),
}

impl ReloadHandle {
    pub fn reload_tls(&self, config: Arc<rustls::ServerConfig>) {
        self.send(Reload::Tls(config));
    }

    pub fn reload_redis_tls(&self, config: Arc<rustls::ClientConfig>) {
        self.send(Reload::RedisTls(config));
    }

    pub fn reload_token_key(&self, verifier: Arc<crate::auth::Verifier>) {
        self.send(Reload::TokenKey(verifier));
    }

    fn send(&self, reload: Reload) {
        if self.updates.send(reload).is_err() {
            return;
        }
        if let Err(e) = self.waker.wake() {
            warn!("could not wake the reactor for a reload: {e}");
        }
    }
}

pub struct Server {
    poll: Poll,
    /// One per `--listen` address; emptied at shutdown.
    listeners: Vec<TcpListener>,
    local_addrs: Vec<SocketAddr>,
    /// What every connection borrows: limits, counters, the hub and its
    /// outbox (routed by [`Server::deliver`]), the session table beside the
    /// connection slab, the wake list.
    shared: Shared,
    conns: Slab<Conn>,
    timers: Timers,
    scratch: Vec<u8>,
    /// Connections with output to write at the end of this batch.
    flush_list: Vec<ConnId>,
    /// Connections that stopped reading at the per-turn cap or were unpaused.
    read_list: Vec<ConnId>,
    /// Connections in accept order, for finding the oldest still silent one
    /// when the cap is reached; ids of connections that spoke or left are
    /// skipped when met, and compacted away.
    accept_order: VecDeque<ConnId>,
    /// Entries of `accept_order` left by its last compaction.
    silent_after_compaction: usize,
    next_generation: u64,
    accept_paused_until: Option<Instant>,
    shutdown_requested: Arc<AtomicBool>,
    waker: Arc<Waker>,
    shutdown_deadline: Option<Instant>,
    /// What TLS handshakes use, when `--tls-cert` is given.
    tls: Option<TlsAcceptor>,
    reloads: mpsc::Receiver<Reload>,
    reloads_sender: mpsc::Sender<Reload>,
    /// The Redis backplane, with `--redis`.
    cluster: Option<ClusterIo>,
}

impl Server {
    /// Validates `config` and binds its listen address.
    pub fn bind(config: &Config) -> io::Result<Server> {
        config.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let poll = Poll::new()?;
        let addrs = config.listen_addrs().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut listeners = Vec::with_capacity(addrs.len());
        let mut local_addrs = Vec::with_capacity(addrs.len());
        for (index, addr) in addrs.into_iter().enumerate() {
            let mut listener = listen(addr, config.backlog)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            poll.registry().register(&mut listener, Token(FIRST_LISTENER - index), Interest::READABLE)?;
            local_addrs.push(listener.local_addr()?);
            listeners.push(listener);
        }
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let tls = config.tls.clone().map(|config_tls| TlsAcceptor { config: config_tls, tls_only: config.tls_only });
        let (reloads_sender, reloads) = mpsc::channel();
        let mut shared = Shared::new(config);
        let cluster = match config.cluster() {
            Some(cluster) => {
                info!("event=cluster node={} redis={}", cluster.node_id, cluster.redis);
                let now = Instant::now();
                let tls = config.redis_tls.clone();
                Some(ClusterIo::new(cluster, tls, &mut shared.hub, REDIS_COMMANDS, REDIS_SUBSCRIBER, now)?)
            }
            None => None,
        };
        Ok(Server {
            poll,
            listeners,
            local_addrs,
            shared,
            conns: Slab::new(),
            timers: Timers::new(Instant::now()),
            scratch: vec![0; READ_CHUNK_BYTES],
            flush_list: Vec::new(),
            read_list: Vec::new(),
            accept_order: VecDeque::new(),
            silent_after_compaction: 0,
            next_generation: 0,
            accept_paused_until: None,
            shutdown_requested: Arc::new(AtomicBool::new(false)),
            waker,
            shutdown_deadline: None,
            tls,
            reloads,
            reloads_sender,
            cluster,
        })
    }

    /// Binds and runs a server on its own thread; returns its address, a
    /// handle to stop it, and the thread (which yields `run`'s result).
    pub fn spawn(config: Config) -> io::Result<(SocketAddr, ShutdownHandle, JoinHandle<io::Result<()>>)> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name("soket-reactor".into()).spawn(move || {
            let server = match Server::bind(&config) {
                Ok(server) => server,
                Err(e) => {
                    let kind = e.kind();
                    let _ = tx.send(Err(e));
                    return Err(io::Error::from(kind));
                }
            };
            let _ = tx.send(Ok((server.local_addr(), server.shutdown_handle())));
            server.run()
        })?;
        let (addr, handle) = rx.recv().map_err(|_| io::Error::other("reactor thread ended before binding"))??;
        Ok((addr, handle, thread))
    }

    /// The first `--listen` address, as bound (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs[0]
    }

    /// Every address served, in `--listen` order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle { requested: self.shutdown_requested.clone(), waker: self.waker.clone() }
    }

    /// A handle to replace the TLS configuration or the token key.
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle { updates: self.reloads_sender.clone(), waker: self.waker.clone() }
    }

    /// Serves until a graceful shutdown completes.
    pub fn run(mut self) -> io::Result<()> {
        for addr in &self.local_addrs {
            info!("event=listening addr={addr}");
        }
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            let timeout = self.poll_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            if self.cluster.is_some() {
                self.shared.hub.set_clock_us(wall_clock_us());
            }
            for event in events.iter() {
                match event.token() {
                    token if self.cluster.as_ref().is_some_and(|c| c.owns(token)) => {
                        self.on_cluster_event(
                            token,
                            event.is_readable() || event.is_read_closed() || event.is_error(),
                            event.is_writable(),
                            now,
                        );
                    }
                    WAKER => {
                        self.take_reloads();
                        if self.shutdown_requested.load(Ordering::SeqCst) {
                            self.begin_shutdown(now);
                        }
                    }
                    Token(token) if token > FIRST_LISTENER - self.listeners.len() => self.accept_all(now),
                    Token(slot) => {
                        // With the peer's FIN or an error in this event, read
                        // to the end: no later edge would report it.
                        let closing = event.is_read_closed() || event.is_error();
                        let readable = event.is_readable() || closing;
                        self.on_conn_event(slot, readable, closing, event.is_writable(), now);
                    }
                }
            }
            self.continue_reads(now);
            self.fire_timers(now);
            self.cluster_turn(now);
            self.settle_world(now);
            if self.accept_paused_until.is_some_and(|t| t <= now) {
                self.accept_paused_until = None;
                self.accept_all(now);
            }
            self.flush_all(now);
            self.compact_accept_order();
            if let Some(deadline) = self.shutdown_deadline
                && (self.conns.is_empty() || now >= deadline)
            {
                if let Some(cluster) = &mut self.cluster {
                    cluster.shutdown(self.poll.registry(), &mut self.shared.hub, &mut self.scratch);
                }
                let m = &self.shared.metrics;
                info!(
                    "event=stopped connections_left={} connections_accepted={} messages_in={} messages_out={} \
                     bytes_in={} bytes_out={} slow_reader_cuts={} handshake_failures={} (shutdown complete)",
                    self.conns.len(),
                    m.connections_accepted_total,
                    m.messages_in_total,
                    m.messages_out_total,
                    m.bytes_in_total,
                    m.bytes_out_total,
                    m.slow_consumer_disconnects_total,
                    m.handshake_failures_total,
                );
                return Ok(());
            }
        }
    }

    /// Installs what a [`ReloadHandle`] sent. A token key replaces the
    /// hub's verifier; the cutoffs already armed stay as they are.
    fn take_reloads(&mut self) {
        while let Ok(reload) = self.reloads.try_recv() {
            match reload {
                Reload::Tls(config) => {
                    if let Some(tls) = &mut self.tls {
                        tls.config = config;
                        info!("TLS configuration reloaded: new handshakes use it");
                    }
                }
                Reload::RedisTls(config) => {
                    if let Some(cluster) = &mut self.cluster
                        && cluster.replace_tls_config(config)
                    {
                        info!("event=redis_tls_reloaded (connections to Redis made from now on use it)");
                    }
                }
                // A reload never turns tokens on where they were off.
                Reload::TokenKey(verifier) if self.shared.hub.token_verifier().is_some() => {
                    let algorithm = verifier.algorithm();
                    self.shared.hub.require_tokens(verifier);
                    info!("event=token_key_reloaded algorithm={algorithm:?}");
                }
                Reload::TokenKey(_) => warn!("a token key was reloaded but tokens are off: ignored"),
            }
        }
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        // Work listed while flushing (a connection that left pushes new
        // presence to others) is done on the next turn, without waiting.
        if !self.read_list.is_empty()
            || !self.flush_list.is_empty()
            || !self.shared.wakes.is_empty()
            || self.cluster.as_ref().is_some_and(ClusterIo::wants_read)
        {
            return Some(Duration::ZERO);
        }
        let cluster = self.cluster.as_ref().and_then(ClusterIo::next_deadline);
        [self.timers.next_at(), self.accept_paused_until, self.shutdown_deadline, cluster]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.saturating_duration_since(now))
    }

    fn ctx(&mut self, now: Instant) -> (Ctx<'_>, &mut Slab<Conn>, &mut [u8]) {
        let Server { shared, conns, scratch, .. } = self;
        let ctx = shared.ctx(now);
        (ctx, conns, scratch)
    }

    /// Runs `act` on connection `id` if it is still there (its slot may have
    /// been reused by a newer connection since `id` was listed).
    fn with_conn<R>(
        &mut self,
        id: ConnId,
        now: Instant,
        act: impl FnOnce(&mut Conn, &mut Ctx<'_>, &mut [u8]) -> R,
    ) -> Option<R> {
        let (mut ctx, conns, scratch) = self.ctx(now);
        let conn = conns.get_mut(id.slot).filter(|c| c.id == id)?;
        Some(act(conn, &mut ctx, scratch))
    }

    /// Accepts what every listener has waiting (a readiness edge names one,
    /// but the others' backlogs are as old, and this is cheap).
    fn accept_all(&mut self, now: Instant) {
        for index in 0..self.listeners.len() {
            if self.accept_paused_until.is_some() {
                return;
            }
            self.accept_from(index, now);
        }
    }

    fn accept_from(&mut self, index: usize, now: Instant) {
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            let (mut stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_resource_exhaustion(&e) => {
                    // Pending connections stay in the backlog; retrying now
                    // would fail the same way, over and over.
                    self.shared.metrics.accept_errors_total += 1;
                    warn!("accept: {e}; pausing accepts for {ACCEPT_BACKOFF:?}");
                    self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    return;
                }
                Err(e) => {
                    // ECONNABORTED and friends concern one connection only.
                    self.shared.metrics.accept_errors_total += 1;
                    debug!("accept: {e}");
                    continue;
                }
            };
            self.shared.metrics.connections_accepted_total += 1;
            if self.conns.len() >= self.shared.limits.max_connections && !self.evict_oldest_silent(now) {
                self.shared.metrics.connections_refused_total += 1;
                debug!("event=refuse peer={peer} limit=max-connections");
                drop(stream);
                continue;
            }
            if let Err(e) = stream.set_nodelay(true) {
                debug!("set_nodelay for {peer}: {e}");
            }
            let entry = self.conns.vacant_entry();
            let slot = entry.key();
            if let Err(e) =
                self.poll.registry().register(&mut stream, Token(slot), Interest::READABLE | Interest::WRITABLE)
            {
                warn!("register {peer}: {e}");
                continue;
            }
            self.next_generation += 1;
            let id = ConnId { slot, generation: self.next_generation };
            let transport = NetStream::accepted(stream, self.tls.as_ref(), now + self.shared.timeouts.handshake);
            let (mut ctx, conns, _) = self.ctx(now);
            let conn = Conn::new(transport, id, &mut ctx);
            conns.insert(conn);
            self.accept_order.push_back(id);
            debug!("event=accept conn={id} peer={peer}");
            // The first entry is the earlier of the first-byte and the
            // request-head deadlines: a client that sends its request then
            // needs no second entry for the head deadline, so a connection
            // holds one heap entry, not two (a silent one is woken once for
            // nothing at the head deadline and re-armed).
            let timeouts = &self.shared.timeouts;
            let first_wake = now + timeouts.first_byte.min(timeouts.handshake);
            if let Some(conn) = self.conns.get_mut(slot) {
                self.timers.arm(Endpoint::Conn(id), first_wake, &mut conn.scheduled);
            }
            self.settle(slot, true, now);
        }
    }

    /// At the connection cap, makes room by closing the connection that has
    /// waited longest without sending a byte, so that sockets which never
    /// speak cannot lock out the ones that do. False if every connection has
    /// spoken.
    fn evict_oldest_silent(&mut self, now: Instant) -> bool {
        while let Some(id) = self.accept_order.pop_front() {
            if self.conns.get(id.slot).is_some_and(|c| c.id == id && c.is_silent()) {
                debug!("event=evict conn={id} reason=silent limit=max-connections");
                self.shared.metrics.silent_evictions_total += 1;
                self.remove(id.slot, now);
                return true;
            }
        }
        false
    }

    /// Drops ids that can no longer be evicted, so the accept order stays
    /// within twice the silent connections it last held (plus a little):
    /// connections that spoke cost it nothing for long.
    fn compact_accept_order(&mut self) {
        if self.accept_order.len() > 2 * self.silent_after_compaction + 64 {
            let conns = &self.conns;
            self.accept_order.retain(|id| conns.get(id.slot).is_some_and(|c| c.id == *id && c.is_silent()));
            self.accept_order.shrink_to(2 * self.accept_order.len() + 64);
            self.silent_after_compaction = self.accept_order.len();
        }
    }

    fn on_conn_event(&mut self, slot: usize, readable: bool, closing: bool, writable: bool, now: Instant) {
        let (mut ctx, conns, scratch) = self.ctx(now);
        let Some(conn) = conns.get_mut(slot) else {
            return;
        };
        if readable {
            conn.on_readable(scratch, closing, &mut ctx);
        }
        if writable {
            conn.flush(&mut ctx);
        }
        self.settle(slot, true, now);
    }

    /// Connections that had more input than one turn allows, or were unpaused.
    fn continue_reads(&mut self, now: Instant) {
        let pending = std::mem::take(&mut self.read_list);
        for id in pending {
            // No edge brought us here, so none may come: read to the end.
            if self.with_conn(id, now, |conn, ctx, scratch| conn.on_readable(scratch, true, ctx)).is_some() {
                self.settle(id.slot, true, now);
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some((at, owner)) = self.timers.pop_due(now) {
            let id = match owner {
                Endpoint::Conn(id) => id,
                Endpoint::Session(id) => {
                    self.fire_session_timer(id, at, now);
                    continue;
                }
            };
            let fired = self.with_conn(id, now, |conn, ctx, _| {
                // An entry superseded by an earlier one that already fired is stale.
                let current = conn.scheduled == Some(at);
                if current {
                    conn.scheduled = None;
                    conn.on_deadline(ctx);
                }
                current
            });
            if fired == Some(true) {
                self.settle(id.slot, true, now);
            }
        }
    }

    /// Bookkeeping after a connection handled something: drop it if it is
    /// finished, list it for flushing or reading, re-arm its deadline.
    fn settle(&mut self, slot: usize, list_for_flush: bool, now: Instant) {
        self.settle_one(slot, list_for_flush, now);
        self.settle_world(now);
    }

    /// Sessions, deliveries and wakes feed each other: a delivery wakes a
    /// held poll, whose answer lets its session finish, whose end changes
    /// presence. Each round has less to do; the bound leaves a pathological
    /// chain to the next event rather than spinning here.
    fn settle_world(&mut self, now: Instant) {
        for _ in 0..8 {
            self.settle_sessions(now);
            self.deliver(now);
            self.cluster_after_hub(now);
            if self.shared.wakes.is_empty() {
                break;
            }
            self.run_wakes(now);
        }
    }

    /// Readiness on a Redis connection of the backplane.
    fn on_cluster_event(&mut self, token: Token, readable: bool, writable: bool, now: Instant) {
        let Server { cluster, poll, shared, scratch, .. } = self;
        let Some(cluster) = cluster else { return };
        cluster.on_event(token, readable, writable, poll.registry(), &mut shared.hub, &mut shared.outbox, scratch, now);
        self.settle_world(now);
    }

    /// The backplane's timers and connects, once per turn.
    fn cluster_turn(&mut self, now: Instant) {
        let Server { cluster, poll, shared, scratch, .. } = self;
        let Some(cluster) = cluster else { return };
        cluster.turn(poll.registry(), &mut shared.hub, &mut shared.outbox, scratch, now);
        publish_cluster_gauges(cluster, shared);
    }

    /// Hands what the hub produced for other nodes to the backplane.
    fn cluster_after_hub(&mut self, now: Instant) {
        let Server { cluster, poll, shared, .. } = self;
        let Some(cluster) = cluster else { return };
        cluster.after_hub(poll.registry(), &mut shared.hub, &mut shared.outbox, now);
    }

    /// Lets held HTTP requests whose handlers were woken answer.
    fn run_wakes(&mut self, now: Instant) {
        // Bounded: a woken handler that wakes others again waits for the next turn.
        let woken = std::mem::take(&mut self.shared.wakes);
        for id in woken {
            if self.with_conn(id, now, |conn, ctx, _| conn.wake(ctx)).is_some() {
                self.settle_one(id.slot, true, now);
            }
        }
    }

    fn settle_one(&mut self, slot: usize, list_for_flush: bool, now: Instant) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if conn.is_dead() {
            self.remove(slot, now);
            return;
        }
        if list_for_flush && conn.enlist_for_flush() {
            self.flush_list.push(conn.id);
        }
        if conn.wants_read {
            conn.wants_read = false;
            self.read_list.push(conn.id);
        }
        if let Some(at) = conn.next_deadline() {
            self.timers.arm(Endpoint::Conn(conn.id), at, &mut conn.scheduled);
        }
    }

    /// Runs a session's deadline, if the timer entry is its current one.
    fn fire_session_timer(&mut self, id: SessionId, at: Instant, now: Instant) {
        let current = self.shared.sessions.timer_state(id).is_some_and(|(_, _, scheduled)| {
            let current = *scheduled == Some(at);
            if current {
                *scheduled = None;
            }
            current
        });
        if !current {
            return;
        }
        let Some(mut session) = self.shared.sessions.lend(id) else {
            return;
        };
        let (mut ctx, _, _) = self.ctx(now);
        session.handle_timeout(&mut ctx.app());
        self.shared.sessions.restore(id, session);
        self.settle_world(now);
    }

    /// Re-arms the deadlines of the sessions touched since the last call, and
    /// removes the ones that finished.
    fn settle_sessions(&mut self, now: Instant) {
        for id in self.shared.sessions.take_touched() {
            let Some((deadline, finished, scheduled)) = self.shared.sessions.timer_state(id) else {
                continue;
            };
            if finished {
                self.close_session(id, now);
            } else if let Some(at) = deadline {
                self.timers.arm(Endpoint::Session(id), at, scheduled);
            }
        }
    }

    fn close_session(&mut self, id: SessionId, now: Instant) {
        if let Some(mut session) = self.shared.sessions.remove(id) {
            let (mut ctx, _, _) = self.ctx(now);
            session.on_close(&mut ctx.app());
            debug!("event=session_closed session={id}");
        }
    }

    fn flush_all(&mut self, now: Instant) {
        let listed = std::mem::take(&mut self.flush_list);
        for id in listed {
            let flushed = self.with_conn(id, now, |conn, ctx, _| conn.flush_batch(ctx));
            if flushed.is_some() {
                // A connection that still has output waits for its writable
                // event rather than being listed again: no busy loop.
                self.settle(id.slot, false, now);
            }
        }
    }

    fn remove(&mut self, slot: usize, now: Instant) {
        if !self.conns.contains(slot) {
            return;
        }
        let mut conn = self.conns.remove(slot);
        if let Err(e) = self.poll.registry().deregister(conn.transport_mut()) {
            debug!("deregister {:?}: {e}", conn.id);
        }
        let (mut ctx, _, _) = self.ctx(now);
        conn.on_removed(&mut ctx);
        debug!("event=closed conn={}", conn.id);
    }

    /// Routes what the hub produced: each event is rendered once per wire
    /// format and framed once per carrier, and the bytes are shared by every
    /// recipient's queue. Cutting off a slow reader or closing after `/quit`
    /// changes presence, which produces more deliveries; each member leaves
    /// the hub only once, so this ends.
    fn deliver(&mut self, now: Instant) {
        while !self.shared.outbox.is_empty() {
            let deliveries = std::mem::take(&mut self.shared.outbox.deliveries);
            let closes = std::mem::take(&mut self.shared.outbox.closes);
            for delivery in &deliveries {
                let mut renderings = Renderings::new(delivery);
                for recipient in &delivery.recipients {
                    let id = match recipient.endpoint {
                        Endpoint::Conn(id) => id,
                        // A session whose WebSocket carries it takes the
                        // shared frame like any connection; one without
                        // queues the rendering for its next poll.
                        Endpoint::Session(session) => match self.shared.sessions.carrier(session) {
                            Some(carrier) => carrier,
                            None => {
                                self.deliver_to_session(session, recipient, &mut renderings, now);
                                continue;
                            }
                        },
                    };
                    let delivered = self.with_conn(id, now, |conn, ctx, _| {
                        if !conn.deliver(&mut renderings, recipient.omit, ctx) {
                            return Delivered::Not;
                        }
                        // The common case needs only a flush: a receiver that
                        // stays in the hub kept its deadlines.
                        if conn.wire_format().is_none() || conn.is_dead() {
                            Delivered::Changed
                        } else if conn.enlist_for_flush() {
                            Delivered::Queued
                        } else {
                            Delivered::Not
                        }
                    });
                    match delivered {
                        Some(Delivered::Queued) => self.flush_list.push(id),
                        Some(Delivered::Changed) => self.settle_one(id.slot, true, now),
                        Some(Delivered::Not) | None => {}
                    }
                }
            }
            for recipient in closes {
                match recipient.endpoint {
                    Endpoint::Conn(id) => {
                        if self.with_conn(id, now, |conn, ctx, _| conn.close_member(recipient.member, ctx)).is_some() {
                            self.settle_one(id.slot, true, now);
                        }
                    }
                    Endpoint::Session(id) => self.close_session_member(id, recipient.member, now),
                }
            }
        }
    }

    /// The hub ends `member` of session `id`: the session ends it alone, or
    /// ends itself.
    fn close_session_member(&mut self, id: SessionId, member: MemberId, now: Instant) {
        let Some(mut session) = self.shared.sessions.lend(id) else {
            return;
        };
        let (mut ctx, _, _) = self.ctx(now);
        let closed = session.close_member(member, &mut ctx.app());
        self.shared.sessions.restore(id, session);
        debug!("event=close_member session={id} member={} alone={closed}", member.0);
        if !closed {
            self.close_session(id, now);
        }
    }

    fn deliver_to_session(
        &mut self,
        id: SessionId,
        recipient: &Recipient,
        renderings: &mut Renderings<'_>,
        now: Instant,
    ) {
        let Some(mut session) = self.shared.sessions.lend(id) else {
            return;
        };
        let event = renderings.event();
        if let Some(rendered) = session.wire_format().and_then(|format| renderings.rendered(format)) {
            let (mut ctx, _, _) = self.ctx(now);
            session.deliver(recipient.member, event, rendered, recipient.omit, &mut ctx.app());
        }
        self.shared.sessions.restore(id, session);
    }

    fn begin_shutdown(&mut self, now: Instant) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        info!("shutting down: closing {} connections", self.conns.len());
        for mut listener in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.accept_paused_until = None;
        self.shutdown_deadline = Some(now + self.shared.timeouts.shutdown);
        // Everyone leaves at once: no presence pushes to users being closed.
        self.shared.hub.detach_all();
        for id in self.shared.sessions.ids() {
            self.close_session(id, now);
        }
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            let (mut ctx, conns, _) = self.ctx(now);
            if let Some(conn) = conns.get_mut(slot) {
                conn.begin_shutdown(&mut ctx);
            }
            self.settle(slot, true, now);
        }
    }
}

/// Microseconds since the Unix epoch: the clock of a cluster's stamps.
fn wall_clock_us() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX)
}

/// Copies the backplane's figures where `/metrics` reads them.
fn publish_cluster_gauges(cluster: &ClusterIo, shared: &mut Shared) {
    let backplane = &cluster.backplane;
    let stats = backplane.stats();
    shared.metrics.cluster = Some(crate::metrics::ClusterGauges {
        link_up: backplane.is_up(),
        reconnects_total: stats.reconnects,
        published_total: stats.published,
        received_total: stats.received,
        backlog_bytes: backplane.backlog_bytes() as u64,
        dropped_total: stats.dropped,
        duplicates_total: stats.duplicates,
        nodes: backplane.nodes() as u64,
    });
}

/// What delivering to one receiver asks of the reactor.
enum Delivered {
    /// Nothing (not delivered, or already listed for the flush).
    Not,
    /// List it for the end-of-batch flush.
    Queued,
    /// It was cut off or failed: settle it in full.
    Changed,
}

/// A non-blocking listener with an accept backlog of `backlog`: mio's own
/// `bind` fixes it at 128, which a burst of connects overflows (each dropped
/// SYN costs the client a one-second retry).
fn listen(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    // Rebinding right after a restart must not wait for TIME_WAIT to clear.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    socket.set_nonblocking(true)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Errors after which any further `accept` fails the same way until
/// something is released.
fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENFILE | libc::EMFILE | libc::ENOBUFS | libc::ENOMEM))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_exhaustion_is_the_out_of_descriptors_and_memory_errors() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(is_resource_exhaustion(&io::Error::from_raw_os_error(errno)), "{errno}");
        }
        for errno in [libc::ECONNABORTED, libc::EPROTO, libc::EPERM, libc::EAGAIN] {
            assert!(!is_resource_exhaustion(&io::Error::from_raw_os_error(errno)), "{errno}");
        }
        assert!(!is_resource_exhaustion(&io::Error::other("no errno")));
    }
}
