//! The byte stream under a connection. Plain TCP today; TLS (issue 8) adds a
//! variant here, under the connection, so no protocol needs to know.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use socket2::SockRef;

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
}

/// A plain TCP connection. It reads with `recv` and writes with `send` and
/// `sendmsg`, not `read`/`write`/`writev`: the socket calls skip the file
/// layer (and its position lock) that the file calls go through, which is
/// measurable when a fan-out writes to a thousand sockets in a row.
pub struct PlainTcp(TcpStream);

impl PlainTcp {
    pub fn new(stream: TcpStream) -> PlainTcp {
        PlainTcp(stream)
    }
}

impl Read for PlainTcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let socket = SockRef::from(&self.0);
        (&*socket).read(buf)
    }
}

impl Write for PlainTcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        SockRef::from(&self.0).send(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        SockRef::from(&self.0).send_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for PlainTcp {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.0.shutdown(Shutdown::Write)
    }
}

impl Source for PlainTcp {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        self.0.register(registry, token, interests)
    }

    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        self.0.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.0.deregister(registry)
    }
}
