//! The byte stream under a connection: plain TCP, or TLS over it, told
//! apart by the first byte, under the connection, so no protocol needs to
//! know. TLS is not a row of the protocol sniffer: the sniffer sees the
//! plaintext inside, and every protocol works over TLS unchanged.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Instant;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::ServerConfig;
use socket2::SockRef;

use super::tls::TlsStream;

/// What a connection reads from and writes to: a TCP socket in the reactor,
/// memory in [`crate::harness`] (fuzzing and tests drive a whole connection
/// that way).
pub trait Transport: Read + Write {
    /// Half-closes: no more bytes will be written.
    fn shutdown_write(&mut self) -> io::Result<()>;

    /// Bytes the transport holds that the write queue no longer counts
    /// (a TLS layer's encrypted backlog); the write path flushes them too.
    fn pending_write_bytes(&self) -> usize {
        0
    }

    /// While a TLS handshake runs: the instant it must be done by
    /// (`--handshake-timeout` from the accept).
    fn handshake_deadline(&self) -> Option<Instant> {
        None
    }
}

/// The first byte of a TLS connection: a handshake record's content type
/// (RFC 8446 §5.1). No HTTP method, STOMP command or legacy line starts
/// with it, so plaintext clients are never mistaken for TLS.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// TLS as the reactor offers it: the configuration new handshakes use, and
/// whether plaintext is refused.
#[derive(Clone)]
pub struct TlsAcceptor {
    pub config: Arc<ServerConfig>,
    pub tls_only: bool,
}

/// The reactor's transport: a TCP socket, plain, TLS, or (while TLS is on)
/// not known until its first byte.
///
/// Plain, it reads with `recv` and writes with `send` and `sendmsg`, not
/// `read`/`write`/`writev`: the socket calls skip the file layer (and its
/// position lock) that the file calls go through, which is measurable when
/// a fan-out writes to a thousand sockets in a row.
pub struct NetStream {
    tcp: TcpStream,
    mode: Mode,
}

enum Mode {
    Plain,
    /// Boxed: a plain connection should not pay for the acceptor.
    Undecided(Box<(TlsAcceptor, Instant)>),
    /// The stream and its handshake's deadline, boxed together so that a
    /// plain connection's transport stays two words.
    Tls(Box<(TlsStream, Instant)>),
}

impl NetStream {
    /// A newly accepted socket: plain, or told by its first byte when TLS is
    /// on, with its handshake due by `handshake_deadline`.
    pub fn accepted(tcp: TcpStream, tls: Option<&TlsAcceptor>, handshake_deadline: Instant) -> NetStream {
        let mode = match tls {
            None => Mode::Plain,
            Some(acceptor) => Mode::Undecided(Box::new((acceptor.clone(), handshake_deadline))),
        };
        NetStream { tcp, mode }
    }

    /// Looks at the first byte (without taking it) and becomes plain or TLS.
    /// `WouldBlock` until a byte (or the end) comes.
    fn decide(&mut self) -> io::Result<()> {
        let Mode::Undecided(undecided) = &self.mode else {
            return Ok(());
        };
        let (acceptor, handshake_deadline) = &**undecided;
        let mut first = [0u8; 1];
        let peeked = self.tcp.peek(&mut first)?;
        if peeked == 1 && first[0] == TLS_HANDSHAKE_RECORD {
            self.mode = Mode::Tls(Box::new((TlsStream::new(acceptor.config.clone())?, *handshake_deadline)));
        } else if peeked == 1 && acceptor.tls_only {
            return Err(io::Error::new(io::ErrorKind::ConnectionRefused, "plaintext refused (--tls-only)"));
        } else {
            self.mode = Mode::Plain;
        }
        Ok(())
    }
}

impl Read for NetStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.decide()?;
        match &mut self.mode {
            Mode::Tls(tls) => tls.0.read(&self.tcp, buf),
            _ => (&*SockRef::from(&self.tcp)).read(buf),
        }
    }
}

impl Write for NetStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.mode {
            Mode::Tls(tls) => tls.0.write_vectored(&self.tcp, &[IoSlice::new(buf)]),
            _ => SockRef::from(&self.tcp).send(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match &mut self.mode {
            Mode::Tls(tls) => tls.0.write_vectored(&self.tcp, bufs),
            _ => SockRef::from(&self.tcp).send_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.mode {
            Mode::Tls(tls) => tls.0.flush(&self.tcp),
            _ => Ok(()),
        }
    }
}

impl Transport for NetStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        match &mut self.mode {
            Mode::Tls(tls) => tls.0.shutdown_write(&self.tcp),
            _ => self.tcp.shutdown(Shutdown::Write),
        }
    }

    fn pending_write_bytes(&self) -> usize {
        match &self.mode {
            Mode::Tls(tls) => tls.0.pending_write_bytes(),
            _ => 0,
        }
    }

    fn handshake_deadline(&self) -> Option<Instant> {
        match &self.mode {
            Mode::Tls(tls) if tls.0.is_handshaking() => Some(tls.1),
            _ => None,
        }
    }
}

impl Source for NetStream {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        self.tcp.register(registry, token, interests)
    }

    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        self.tcp.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.tcp.deregister(registry)
    }
}
