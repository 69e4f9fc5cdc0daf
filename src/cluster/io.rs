//! The backplane's two TCP connections to Redis, on the reactor's poll: the
//! only part of the cluster that touches sockets. Connects without
//! blocking, reads what arrives into the [`Backplane`], writes what it
//! queued, and closes both connections whenever it drops the links. Over
//! `rediss://` each connection is a rustls client session: the backplane
//! sees the same plaintext either way, and what it queues before the TLS
//! handshake ends waits in the session until it does.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, warn};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use super::{Backplane, ClusterConfig, LinkId};
use crate::chat::{Hub, Outbox};

/// Reads per readiness event before the rest waits for the next turn, so a
/// flood from Redis cannot hold the reactor (edge-triggered: the link is
/// listed to be read again).
const READS_PER_TURN: usize = 16;
/// The longest a graceful stop waits for Redis to confirm the goodbye.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

pub struct ClusterIo {
    pub backplane: Backplane,
    addrs: Vec<SocketAddr>,
    /// `rediss://`: the client configuration and the name Redis's
    /// certificate must carry (the URL's host).
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    cmd: Option<Socket>,
    sub: Option<Socket>,
    cmd_token: Token,
    sub_token: Token,
}

struct Socket {
    stream: TcpStream,
    /// Over `rediss://`; boxed, as rustls' session is large beside the rest.
    tls: Option<Box<ClientConnection>>,
    connected: bool,
    /// Input left unread at the per-turn cap.
    more_input: bool,
}

impl Socket {
    /// Plaintext from Redis, as `Read::read` gives it: `WouldBlock` once
    /// the socket has nothing more, `Ok(0)` at its end.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else { return self.stream.read(buf) };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if tls.read_tls(&mut self.stream)? == 0 {
                return Ok(0);
            }
            if let Err(e) = tls.process_new_packets() {
                // The alert saying why, for Redis's log; the link is lost anyway.
                let _ = send_records(tls, &mut self.stream);
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}")));
            }
            // Handshake answers go out before anything else is read.
            send_records(tls, &mut self.stream)?;
        }
    }

    /// Takes what it can of `data`, as `Write::write` does: `WouldBlock`
    /// when nothing could be taken.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else { return self.stream.write(data) };
        let taken = tls.writer().write(data)?;
        send_records(tls, &mut self.stream)?;
        // The session's buffer is full only once the socket would block, so
        // a writable event follows to try again.
        if taken == 0 && !data.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }

    /// Sends the records the TLS session holds, as far as the socket takes
    /// them; the rest goes at the next writable event.
    fn send_tls(&mut self) -> io::Result<()> {
        match self.tls.as_mut() {
            Some(tls) => send_records(tls, &mut self.stream),
            None => Ok(()),
        }
    }
}

fn send_records(tls: &mut ClientConnection, stream: &mut TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A failed read or write: a TLS failure (a certificate Redis's name is
/// not on, an unknown issuer, a refused client certificate) is a setup
/// mistake someone must see; anything else is an ordinary lost link.
fn log_link_error(what: &str, link: LinkId, e: &io::Error, backplane: &mut Backplane) {
    if e.kind() == io::ErrorKind::InvalidData {
        warn!("event=redis_tls_failed link={link:?} error={}", crate::logging::quote(&e.to_string()));
        backplane.failure_explained();
    } else {
        debug!("event=redis_{what}_failed link={link:?} error={e}");
    }
}

impl ClusterIo {
    /// Resolves Redis's address once, at start-up, where blocking on DNS is
    /// harmless (reconnects reuse it); an unknown host is a start-up error.
    pub fn new(
        config: ClusterConfig,
        tls: Option<Arc<ClientConfig>>,
        hub: &mut Hub,
        cmd_token: Token,
        sub_token: Token,
        now: Instant,
    ) -> io::Result<ClusterIo> {
        let host = (config.redis.host.as_str(), config.redis.port);
        let addrs: Vec<SocketAddr> = host
            .to_socket_addrs()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve Redis host {}: {e}", config.redis.host)))?
            .collect();
        if addrs.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("no address for {}", config.redis.host)));
        }
        let tls = match tls {
            Some(client) => {
                let name = ServerName::try_from(config.redis.host.clone()).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("rediss:// host {}: {e}", config.redis.host))
                })?;
                Some((client, name))
            }
            None => None,
        };
        let backplane = Backplane::new(config, hub, now);
        Ok(ClusterIo { backplane, addrs, tls, cmd: None, sub: None, cmd_token, sub_token })
    }

    /// A renewed client configuration (a rotated certificate, another CA)
    /// for the next connections; the links up now keep their sessions.
    /// False without `rediss://`.
    pub fn replace_tls_config(&mut self, config: Arc<ClientConfig>) -> bool {
        match &mut self.tls {
            Some((current, _)) => {
                *current = config;
                true
            }
            None => false,
        }
    }

    pub fn owns(&self, token: Token) -> bool {
        token == self.cmd_token || token == self.sub_token
    }

    /// Whether a link has input left over from a capped read.
    pub fn wants_read(&self) -> bool {
        [&self.cmd, &self.sub].into_iter().flatten().any(|s| s.more_input)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.backplane.next_deadline()
    }

    /// Once per reactor turn: timers, leftover input, connecting when due,
    /// then writing whatever is queued.
    pub fn turn(&mut self, registry: &Registry, hub: &mut Hub, out: &mut Outbox, scratch: &mut [u8], now: Instant) {
        self.backplane.tick(hub, out, now);
        for link in [LinkId::Commands, LinkId::Subscriber] {
            if self.socket(link).is_some_and(|s| s.more_input) {
                self.read(link, hub, out, scratch, now);
            }
        }
        self.close_if_reset(registry);
        if self.backplane.poll_connect(now) {
            self.connect(registry, hub, now);
        }
        self.flush(registry, hub, now);
    }

    /// What the hub produced for the cluster this turn.
    pub fn after_hub(&mut self, registry: &Registry, hub: &mut Hub, out: &mut Outbox, now: Instant) {
        if out.cluster.is_empty() && hub.directory_mut().is_empty() {
            return;
        }
        self.backplane.on_hub_output(hub, out, now);
        self.flush(registry, hub, now);
    }

    /// A readiness event on one of the two sockets.
    #[allow(clippy::too_many_arguments)]
    pub fn on_event(
        &mut self,
        token: Token,
        readable: bool,
        writable: bool,
        registry: &Registry,
        hub: &mut Hub,
        out: &mut Outbox,
        scratch: &mut [u8],
        now: Instant,
    ) {
        let link = if token == self.cmd_token { LinkId::Commands } else { LinkId::Subscriber };
        if writable {
            self.check_connected(link, hub, now);
        }
        if readable {
            self.read(link, hub, out, scratch, now);
        }
        self.close_if_reset(registry);
        self.flush(registry, hub, now);
    }

    fn socket(&mut self, link: LinkId) -> Option<&mut Socket> {
        match link {
            LinkId::Commands => self.cmd.as_mut(),
            LinkId::Subscriber => self.sub.as_mut(),
        }
    }

    fn connect(&mut self, registry: &Registry, hub: &mut Hub, now: Instant) {
        let addr = self.addrs[usize::try_from(self.backplane.stats().reconnects).unwrap_or(0) % self.addrs.len()];
        for (link, token) in [(LinkId::Commands, self.cmd_token), (LinkId::Subscriber, self.sub_token)] {
            let session = match &self.tls {
                Some((client, name)) => ClientConnection::new(Arc::clone(client), name.clone())
                    .map(|c| Some(Box::new(c)))
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}"))),
                None => Ok(None),
            };
            let opened = session.and_then(|tls| {
                let mut stream = TcpStream::connect(addr)?;
                registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
                Ok((stream, tls))
            });
            match opened {
                Ok((stream, tls)) => {
                    let _ = stream.set_nodelay(true);
                    let socket = Socket { stream, tls, connected: false, more_input: false };
                    match link {
                        LinkId::Commands => self.cmd = Some(socket),
                        LinkId::Subscriber => self.sub = Some(socket),
                    }
                }
                Err(e) => {
                    debug!("event=redis_connect_failed addr={addr} error={e}");
                    self.backplane.on_closed(link, &e.to_string(), hub, now);
                    self.close_if_reset(registry);
                    return;
                }
            }
        }
    }

    /// A connecting socket became writable: established, or failed.
    fn check_connected(&mut self, link: LinkId, hub: &Hub, now: Instant) {
        let Some(socket) = self.socket(link) else { return };
        if socket.connected {
            return;
        }
        let failed = match socket.stream.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => None,
        };
        if let Some(e) = failed {
            debug!("event=redis_connect_failed link={link:?} error={e}");
            self.backplane.on_closed(link, &e.to_string(), hub, now);
            return;
        }
        match socket.stream.peer_addr() {
            Ok(_) => {
                socket.connected = true;
                self.backplane.on_connected(link, hub, now);
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
            Err(e) => {
                debug!("event=redis_connect_failed link={link:?} error={e}");
                self.backplane.on_closed(link, &e.to_string(), hub, now);
            }
        }
    }

    fn read(&mut self, link: LinkId, hub: &mut Hub, out: &mut Outbox, scratch: &mut [u8], now: Instant) {
        for _ in 0..READS_PER_TURN {
            let Some(socket) = self.socket(link) else { return };
            if !socket.connected {
                return;
            }
            socket.more_input = false;
            match socket.read(scratch) {
                Ok(0) => {
                    self.lost(link, "closed by Redis", hub, out, scratch, now);
                    return;
                }
                Ok(n) => {
                    let Some(bytes) = scratch.get(..n) else { return };
                    self.backplane.on_bytes(link, bytes, hub, out, now);
                    if self.backplane.reset_pending() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log_link_error("read", link, &e, &mut self.backplane);
                    self.lost(link, &e.to_string(), hub, out, scratch, now);
                    return;
                }
            }
        }
        if let Some(socket) = self.socket(link) {
            socket.more_input = true;
        }
    }

    /// `link` closed or failed. Messages Redis wrote to the subscriber
    /// before it went away are still in that socket: they are taken before
    /// the links are dropped, or a message published just before a Redis
    /// crash would reach no one here.
    fn lost(&mut self, link: LinkId, why: &str, hub: &mut Hub, out: &mut Outbox, scratch: &mut [u8], now: Instant) {
        if link == LinkId::Commands {
            for _ in 0..READS_PER_TURN {
                let Some(socket) = self.sub.as_mut().filter(|s| s.connected) else { break };
                match socket.read(scratch) {
                    Ok(n) if n > 0 => {
                        let Some(bytes) = scratch.get(..n) else { break };
                        self.backplane.on_bytes(LinkId::Subscriber, bytes, hub, out, now);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    _ => break,
                }
            }
        }
        self.backplane.on_closed(link, why, hub, now);
    }

    fn close_if_reset(&mut self, registry: &Registry) {
        if !self.backplane.take_reset() {
            return;
        }
        for socket in [self.cmd.take(), self.sub.take()].into_iter().flatten() {
            let mut stream = socket.stream;
            let _ = registry.deregister(&mut stream);
        }
    }

    /// Writes what the backplane queued, as far as the sockets take it.
    fn flush(&mut self, registry: &Registry, hub: &Hub, now: Instant) {
        for link in [LinkId::Commands, LinkId::Subscriber] {
            let Some(socket) = (match link {
                LinkId::Commands => self.cmd.as_mut(),
                LinkId::Subscriber => self.sub.as_mut(),
            }) else {
                continue;
            };
            if !socket.connected {
                continue;
            }
            let pending = self.backplane.output(link);
            let mut written = 0;
            // A TLS session may hold records (the handshake's among them)
            // with nothing new queued.
            let mut failed = socket.send_tls().err();
            while failed.is_none() && written < pending.len() {
                match socket.write(pending.get(written..).unwrap_or_default()) {
                    Ok(0) => {
                        failed = Some(io::Error::from(io::ErrorKind::WriteZero));
                        break;
                    }
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            pending.drain(..written);
            if pending.capacity() > 1 << 20 && pending.is_empty() {
                *pending = Vec::new();
            }
            if let Some(e) = failed {
                log_link_error("write", link, &e, &mut self.backplane);
                self.backplane.on_closed(link, &e.to_string(), hub, now);
            }
        }
        self.close_if_reset(registry);
    }

    /// The end of a graceful stop: says goodbye to the cluster and waits a
    /// moment (blocking; the reactor has nothing else left to do) until
    /// Redis has answered it, so the others drop this node's users now
    /// rather than after the node timeout.
    pub fn shutdown(&mut self, registry: &Registry, hub: &mut Hub, scratch: &mut [u8]) {
        let started = Instant::now();
        if !self.backplane.shutdown(started) {
            return;
        }
        let mut out = Outbox::default();
        while self.backplane.awaiting_replies() > 0 && started.elapsed() < SHUTDOWN_WAIT {
            let now = Instant::now();
            self.flush(registry, hub, now);
            let Some(socket) = self.cmd.as_mut() else { break };
            let _ = socket.stream.set_nodelay(true);
            match socket.read(scratch) {
                Ok(0) => break,
                Ok(n) => {
                    let Some(bytes) = scratch.get(..n) else { break };
                    self.backplane.on_bytes(LinkId::Commands, bytes, hub, &mut out, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("event=redis_goodbye_failed error={e}");
                    break;
                }
            }
        }
    }
}
