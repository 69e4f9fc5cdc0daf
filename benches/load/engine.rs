//! The load client's connection engine: one mio poll, non-blocking sockets, zero-copy sends of
//! prebuilt frames (`Rc<[u8]>` chunks written with `writev`), and a read buffer per connection
//! from which whole server frames are handed to the case's handler.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::stomp;
use crate::ws::{self, DeflateOffer, Head, Inflater, Rng};

/// Largest server frame the client accepts (the fan-out presence lists of 1 000 names fit easily).
const MAX_FRAME: usize = 64 << 20;
/// Initial read buffer of a connection (it grows for bigger frames).
const READ_BUF: usize = 16 * 1024;

/// What a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// WebSocket, upgraded at this path.
    Ws(&'static str),
    /// STOMP over WebSocket: upgraded at this path with the subprotocol `v12.stomp`.
    Stomp(&'static str),
    /// Plain bytes (the raw TCP reference server).
    Raw,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Upgrading { accept: String, protocol: Option<&'static str>, deflate: Option<DeflateOffer> },
    Open,
}

/// What the engine tells a case about one connection.
pub enum Ev<'a> {
    /// Connected (raw) or upgraded (WebSocket).
    Open,
    /// One whole server data frame (ping/pong are handled here; a close frame is `Close`). A
    /// compressed one (`head.deflated`) comes inflated.
    Frame { head: Head, payload: &'a [u8] },
    /// Stream bytes of a raw connection; the handler returns how many it consumed.
    Bytes(&'a [u8]),
    /// The server sent a close frame.
    Close,
    /// End of stream or a socket error.
    Gone(String),
}

/// Bytes to send: owned or shared chunks, written in order with `writev`.
#[derive(Default)]
pub struct Out {
    chunks: VecDeque<Rc<[u8]>>,
    head_sent: usize,
}

impl Out {
    pub fn push(&mut self, chunk: Rc<[u8]>) {
        if !chunk.is_empty() {
            self.chunks.push_back(chunk);
        }
    }

    pub fn push_vec(&mut self, bytes: Vec<u8>) {
        self.push(Rc::from(bytes));
    }

    /// Chunks still to send.
    pub fn queued(&self) -> usize {
        self.chunks.len()
    }

    /// Writes until empty or `WouldBlock`.
    fn flush(&mut self, stream: &mut Stream) -> io::Result<()> {
        stream.send_tls()?;
        while !self.chunks.is_empty() {
            let mut slices = [IoSlice::new(&[]); 64];
            let mut n = 0;
            for (i, chunk) in self.chunks.iter().take(64).enumerate() {
                slices[i] = IoSlice::new(if i == 0 { &chunk[self.head_sent..] } else { chunk });
                n += 1;
            }
            match stream.write_vectored(&slices[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(mut written) => {
                    while written > 0 {
                        let left = self.chunks[0].len() - self.head_sent;
                        if written >= left {
                            written -= left;
                            self.chunks.pop_front();
                            self.head_sent = 0;
                        } else {
                            self.head_sent += written;
                            written = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A client socket, plain or TLS (the `soket-tls` server).
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => &mut tls.sock,
        }
    }

    /// Sends the TLS records rustls holds (handshake messages, encrypted data).
    fn send_tls(&mut self) -> io::Result<()> {
        if let Stream::Tls(tls) = self {
            while tls.conn.wants_write() {
                match tls.conn.write_tls(&mut tls.sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let tls = match self {
            Stream::Plain(tcp) => return tcp.read(buf),
            Stream::Tls(tls) => tls,
        };
        loop {
            match tls.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if tls.conn.read_tls(&mut tls.sock)? == 0 {
                return Ok(0);
            }
            tls.conn.process_new_packets().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            while tls.conn.wants_write() {
                match tls.conn.write_tls(&mut tls.sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let tls = match self {
            Stream::Plain(tcp) => return tcp.write_vectored(bufs),
            Stream::Tls(tls) => tls,
        };
        // rustls' buffer limit bounds what waits for the socket.
        let n = tls.conn.writer().write_vectored(bufs)?;
        self.send_tls()?;
        if n == 0 && bufs.iter().any(|b| !b.is_empty()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_tls()
    }
}

pub struct Conn {
    stream: Stream,
    proto: Proto,
    phase: Phase,
    inb: Vec<u8>,
    start: usize,
    end: usize,
    pub out: Out,
    gone: bool,
    /// permessage-deflate agreed: compressed frames may come, and are inflated.
    deflate: bool,
}

pub struct Engine {
    poll: Poll,
    events: Events,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    ready: Vec<usize>,
    addr: SocketAddr,
    /// Where connections go when set (a cluster): connection `i` to `spread[i % len]`.
    spread: Vec<SocketAddr>,
    connects: usize,
    host: String,
    pub rng: Rng,
    live: usize,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// What every WebSocket upgrade offers in `Sec-WebSocket-Extensions` (and the 101 must accept).
    deflate: Option<DeflateOffer>,
    inflater: Inflater,
}

impl Engine {
    pub fn new(addr: SocketAddr) -> io::Result<Engine> {
        Ok(Engine {
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            conns: Vec::new(),
            free: Vec::new(),
            ready: Vec::new(),
            addr,
            spread: Vec::new(),
            connects: 0,
            host: addr.to_string(),
            rng: Rng::from_time(),
            live: 0,
            tls: crate::tls::active(),
            deflate: None,
            inflater: Inflater::default(),
        })
    }

    /// Makes every later upgrade offer permessage-deflate.
    pub fn offer_deflate(&mut self, offer: DeflateOffer) {
        self.deflate = Some(offer);
    }

    /// Spreads later connections over `addrs` in turn (the nodes of a cluster): the `i`th
    /// connection made goes to `addrs[i % addrs.len()]`.
    pub fn spread_over(&mut self, addrs: &[SocketAddr]) {
        self.spread = addrs.to_vec();
    }

    /// Starts a non-blocking connect; the slot gets `Ev::Open` once connected (and upgraded).
    pub fn connect(&mut self, proto: Proto) -> io::Result<usize> {
        let addr = if self.spread.is_empty() { self.addr } else { self.spread[self.connects % self.spread.len()] };
        self.connects += 1;
        let mut stream = TcpStream::connect(addr)?;
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        self.poll.registry().register(&mut stream, Token(slot), Interest::READABLE | Interest::WRITABLE)?;
        let stream = match &self.tls {
            None => Stream::Plain(stream),
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from("localhost").expect("a valid name");
                let conn = rustls::ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
                Stream::Tls(Box::new(rustls::StreamOwned::new(conn, stream)))
            }
        };
        self.conns[slot] = Some(Conn {
            stream,
            proto,
            phase: Phase::Connecting,
            inb: Vec::new(),
            start: 0,
            end: 0,
            out: Out::default(),
            gone: false,
            deflate: false,
        });
        self.live += 1;
        Ok(slot)
    }

    /// Closes the socket of `slot` at once and frees the slot.
    pub fn drop_conn(&mut self, slot: usize) {
        if let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) {
            let _ = self.poll.registry().deregister(conn.stream.tcp());
            self.free.push(slot);
            self.live -= 1;
        }
    }

    pub fn live(&self) -> usize {
        self.live
    }

    /// The send queue of `slot` (call [`Engine::flush`] after pushing).
    pub fn out(&mut self, slot: usize) -> Option<&mut Out> {
        self.conns.get_mut(slot).and_then(Option::as_mut).map(|c| &mut c.out)
    }

    /// Sends what is queued for `slot`; an error marks it gone for the next `service`.
    pub fn flush(&mut self, slot: usize) {
        if let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut)
            && conn.phase == Phase::Open
            && conn.out.flush(&mut conn.stream).is_err()
        {
            conn.gone = true;
        }
    }

    /// Waits for readiness; returns the slots to [`Engine::service`] (in `ready_slots`).
    pub fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        self.ready.clear();
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        for event in self.events.iter() {
            self.ready.push(event.token().0);
        }
        Ok(())
    }

    /// Number of ready slots from the last `wait`; with [`Engine::ready_at`] this avoids a copy.
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    pub fn ready_at(&self, i: usize) -> usize {
        self.ready[i]
    }

    /// Does the I/O of `slot` and hands every event to `handler(slot, event, out)`; for
    /// `Ev::Bytes` the handler returns the bytes it consumed. A handler error stops the slot and
    /// is returned. After `Ev::Gone` the slot is freed by the engine.
    pub fn service<F>(&mut self, slot: usize, handler: &mut F) -> Result<(), String>
    where
        F: FnMut(usize, Ev<'_>, &mut Out) -> Result<usize, String>,
    {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else { return Ok(()) };
        let io = Io { host: &self.host, rng: &mut self.rng, deflate: self.deflate, inflater: &mut self.inflater };
        let result = conn.service(slot, handler, io);
        let gone = conn.gone;
        if gone {
            self.drop_conn(slot);
        }
        result
    }
}

/// What a connection's I/O borrows from its engine.
struct Io<'a> {
    host: &'a str,
    rng: &'a mut Rng,
    deflate: Option<DeflateOffer>,
    inflater: &'a mut Inflater,
}

impl Conn {
    fn service<F>(&mut self, slot: usize, handler: &mut F, io: Io<'_>) -> Result<(), String>
    where
        F: FnMut(usize, Ev<'_>, &mut Out) -> Result<usize, String>,
    {
        if self.gone {
            return Ok(());
        }
        if self.phase == Phase::Connecting {
            match self.stream.tcp().take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => return self.fail(slot, handler, format!("connect: {e}")),
            }
            match self.stream.tcp().peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(e) => return self.fail(slot, handler, format!("connect: {e}")),
            }
            let _ = self.stream.tcp().set_nodelay(true);
            match self.proto {
                Proto::Raw => {
                    self.phase = Phase::Open;
                    handler(slot, Ev::Open, &mut self.out)?;
                }
                Proto::Ws(path) | Proto::Stomp(path) => {
                    let key = ws::new_key(io.rng);
                    let protocol = matches!(self.proto, Proto::Stomp(_)).then_some(stomp::SUBPROTOCOL);
                    let deflate = io.deflate;
                    self.phase = Phase::Upgrading { accept: ws::accept_for(&key), protocol, deflate };
                    // The request goes in front of anything the case queued already.
                    let mut out = Out::default();
                    let extensions = deflate.map(DeflateOffer::header);
                    out.push_vec(ws::upgrade_request(io.host, path, &key, protocol, extensions));
                    out.chunks.extend(self.out.chunks.drain(..));
                    self.out = out;
                }
            }
        }
        if let Err(e) = self.out.flush(&mut self.stream) {
            return self.fail(slot, handler, format!("write: {e}"));
        }
        loop {
            if self.inb.is_empty() {
                self.inb = vec![0; READ_BUF];
            }
            if self.end == self.inb.len() {
                if self.start > 0 {
                    self.inb.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                } else {
                    let bigger = self.inb.len() * 2;
                    self.inb.resize(bigger, 0);
                }
            }
            let n = match self.stream.read(&mut self.inb[self.end..]) {
                Ok(0) => return self.fail(slot, handler, "end of stream".into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(slot, handler, format!("read: {e}")),
            };
            let filled = self.end + n == self.inb.len();
            self.end += n;
            self.parse(slot, handler, io.rng, io.inflater)?;
            if self.gone {
                return Ok(());
            }
            if let Err(e) = self.out.flush(&mut self.stream) {
                return self.fail(slot, handler, format!("write: {e}"));
            }
            // A short read emptied the socket: edge-triggered readiness reports new bytes. Not so
            // over TLS, where rustls hands out what it decrypted so far: read to `WouldBlock`.
            if !filled && matches!(self.stream, Stream::Plain(_)) {
                break;
            }
        }
        Ok(())
    }

    fn fail<F>(&mut self, slot: usize, handler: &mut F, why: String) -> Result<(), String>
    where
        F: FnMut(usize, Ev<'_>, &mut Out) -> Result<usize, String>,
    {
        self.gone = true;
        handler(slot, Ev::Gone(why), &mut self.out).map(|_| ())
    }

    fn parse<F>(&mut self, slot: usize, handler: &mut F, rng: &mut Rng, inflater: &mut Inflater) -> Result<(), String>
    where
        F: FnMut(usize, Ev<'_>, &mut Out) -> Result<usize, String>,
    {
        if let Phase::Upgrading { accept, protocol, deflate } = &self.phase {
            match ws::check_upgrade_response(&self.inb[self.start..self.end], accept, *protocol, *deflate) {
                Ok(None) => return Ok(()),
                Ok(Some(n)) => {
                    self.start += n;
                    self.deflate = deflate.is_some();
                    self.phase = Phase::Open;
                    handler(slot, Ev::Open, &mut self.out)?;
                }
                Err(e) => {
                    self.gone = true;
                    return Err(e);
                }
            }
        }
        if self.proto == Proto::Raw {
            if self.start < self.end {
                let used = handler(slot, Ev::Bytes(&self.inb[self.start..self.end]), &mut self.out)?;
                self.start += used.min(self.end - self.start);
            }
        } else {
            loop {
                let buf = &self.inb[self.start..self.end];
                let mut head = match ws::server_head(buf, self.deflate) {
                    Ok(Some(head)) => head,
                    Ok(None) => break,
                    Err(e) => {
                        self.gone = true;
                        return Err(e);
                    }
                };
                let total = head.head_len + head.payload_len;
                if total > MAX_FRAME {
                    self.gone = true;
                    return Err(format!("server frame of {} bytes", head.payload_len));
                }
                if buf.len() < total {
                    if self.inb.len() < total {
                        // Make room for the whole frame.
                        self.inb.copy_within(self.start..self.end, 0);
                        self.end -= self.start;
                        self.start = 0;
                        self.inb.resize(total.next_power_of_two(), 0);
                    }
                    break;
                }
                let payload = &buf[head.head_len..total];
                match head.opcode {
                    ws::OP_PING => self.out.push_vec(ws::client_frame(ws::OP_PONG, payload, rng.mask())),
                    ws::OP_PONG => {}
                    ws::OP_CLOSE => {
                        self.start += total;
                        handler(slot, Ev::Close, &mut self.out)?;
                        continue;
                    }
                    _ if head.rsv1 => {
                        // soket sends each message in one frame; a compressed message split over
                        // frames would need its fragments joined first.
                        if !head.fin {
                            self.gone = true;
                            return Err(format!("conn {slot}: a compressed message in fragments"));
                        }
                        head.deflated = Some((payload.len(), ws::fnv1a(payload)));
                        let inflated = match inflater.inflate(payload, MAX_FRAME) {
                            Ok(inflated) => inflated,
                            Err(e) => {
                                self.gone = true;
                                return Err(format!("conn {slot}: {e}"));
                            }
                        };
                        handler(slot, Ev::Frame { head, payload: inflated }, &mut self.out)?;
                    }
                    _ => {
                        handler(slot, Ev::Frame { head, payload }, &mut self.out)?;
                    }
                }
                self.start += total;
            }
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(())
    }
}
