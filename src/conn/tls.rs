//! TLS as a byte stream: rustls' [`ServerConnection`] over a non-blocking
//! TCP socket, read and written like the plain socket, so the connection and
//! every protocol above it see only plaintext.
//!
//! Reading: ciphertext comes from the socket in one `recv` of up to 64 KiB
//! into a buffer shared by every TLS connection of the thread (rustls' own
//! `read_tls` takes 4 KiB a call), then goes to rustls in slices, and the
//! plaintext out into the caller's buffer. A read returns less than the
//! buffer only once the socket would block or reached its end, as the
//! connection's edge-triggered loop expects of a socket. Handshake replies
//! go out as soon as rustls has them.
//!
//! Writing: the plaintext is encrypted and sent at once; what the socket
//! does not take is moved out of rustls into `backlog`, whose exact length
//! [`TlsStream::pending_write_bytes`] reports, and no more plaintext is taken
//! until it is sent: the connection's write queue keeps the rest, where
//! `--max-queued` sees it.

use std::cell::RefCell;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};
use socket2::SockRef;

/// The most ciphertext one `recv` takes.
const CIPHERTEXT_CHUNK_BYTES: usize = 64 * 1024;
/// The least ciphertext one `recv` asks for: a whole record (16 KiB and its
/// overhead), so a nearly full buffer is not filled by many tiny `recv`s.
const MIN_RECV_BYTES: usize = 17 * 1024 + 512;
/// The most plaintext one `write` takes: about four records, so the
/// encrypted backlog of a connection that stopped reading stays near this.
const PLAINTEXT_PER_WRITE_BYTES: usize = 64 * 1024;

thread_local! {
    /// Ciphertext between the socket and rustls, shared by every TLS
    /// connection on the reactor's thread: an idle connection holds none.
    static CIPHERTEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A connection's TLS state; the socket is lent to each call.
pub struct TlsStream {
    tls: ServerConnection,
    /// Encrypted bytes the socket did not take yet; `backlog_sent` of them are out.
    backlog: Vec<u8>,
    backlog_sent: usize,
    /// Ciphertext received but not yet given to rustls because the caller's
    /// buffer filled up first.
    carry: Vec<u8>,
    /// The peer's close_notify came, or the socket reported its end (and
    /// rustls has been told): nothing more to receive.
    peer_eof: bool,
    close_notify_queued: bool,
}

impl TlsStream {
    /// A server-side TLS stream over `tcp`, before any byte was read.
    pub fn new(config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let tls = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsStream {
            tls,
            backlog: Vec::new(),
            backlog_sent: 0,
            carry: Vec::new(),
            peer_eof: false,
            close_notify_queued: false,
        })
    }

    /// The handshake is still running: no plaintext has been exchanged.
    pub fn is_handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// Encrypted bytes waiting for the socket.
    pub fn pending_write_bytes(&self) -> usize {
        self.backlog.len() - self.backlog_sent
    }

    /// Gives `ciphertext` to rustls and moves the plaintext into `buf` from
    /// `filled` on; returns the new fill. Ciphertext left when `buf` is full
    /// waits in `carry`.
    fn absorb(
        &mut self,
        tcp: &TcpStream,
        mut ciphertext: &[u8],
        buf: &mut [u8],
        mut filled: usize,
    ) -> io::Result<usize> {
        while !ciphertext.is_empty() {
            if filled == buf.len() {
                self.carry.extend_from_slice(ciphertext);
                break;
            }
            self.tls.read_tls(&mut ciphertext)?;
            match self.tls.process_new_packets() {
                Ok(state) => self.peer_eof |= state.peer_has_closed(),
                Err(e) => {
                    // rustls queued an alert saying why; the peer may read it.
                    let _ = self.send_tls(tcp);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
            filled = self.take_plaintext(buf, filled)?;
        }
        self.send_tls(tcp)?;
        Ok(filled)
    }

    /// Moves decrypted plaintext into `buf` from `filled` on.
    fn take_plaintext(&mut self, buf: &mut [u8], filled: usize) -> io::Result<usize> {
        let Some(free) = buf.get_mut(filled..) else {
            return Ok(filled);
        };
        match self.tls.reader().read(free) {
            Ok(n) => Ok(filled + n),
            // No plaintext yet; an unclean or clean end shows in `read`.
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::UnexpectedEof) => Ok(filled),
            Err(e) => Err(e),
        }
    }

    /// Sends the backlog, then whatever rustls has encrypted; what the
    /// socket does not take moves to the backlog. Ok even if bytes remain.
    fn send_tls(&mut self, tcp: &TcpStream) -> io::Result<()> {
        while self.backlog_sent < self.backlog.len() {
            let unsent = self.backlog.get(self.backlog_sent..).unwrap_or_default();
            match SockRef::from(tcp).send(unsent) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.backlog_sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if self.backlog_sent == self.backlog.len() {
            // Sent: an idle connection keeps no encrypted buffer.
            self.backlog = Vec::new();
            self.backlog_sent = 0;
            while self.tls.wants_write() {
                match self.tls.write_tls(&mut SocketWriter(tcp)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        // Whatever rustls still holds moves to the backlog, where it is counted.
        while self.tls.wants_write() {
            self.tls.write_tls(&mut self.backlog)?;
        }
        Ok(())
    }
}

/// The socket as rustls writes to it: `send`/`sendmsg`, as the plain path.
struct SocketWriter<'a>(&'a TcpStream);

impl Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        SockRef::from(self.0).send(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        SockRef::from(self.0).send_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsStream {
    /// Reads plaintext into `buf`, as `Read::read` does.
    pub fn read(&mut self, tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = self.take_plaintext(buf, 0)?;
        if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            filled = self.absorb(tcp, &carry, buf, filled)?;
        }
        while filled < buf.len() && !self.peer_eof {
            let received = CIPHERTEXT.with_borrow_mut(|ciphertext| {
                ciphertext.resize(CIPHERTEXT_CHUNK_BYTES, 0);
                // Plaintext is never longer than its ciphertext: asking for
                // no more than the room left rarely leaves any to carry.
                let want = (buf.len() - filled).clamp(MIN_RECV_BYTES, CIPHERTEXT_CHUNK_BYTES);
                let into = ciphertext.get_mut(..want).expect("want is at most the buffer's length");
                let received = (&*SockRef::from(tcp)).read(into);
                match received {
                    Ok(0) => Ok(0),
                    Ok(n) => {
                        let chunk = ciphertext.get(..n).expect("recv returns at most the buffer's length");
                        filled = self.absorb(tcp, chunk, buf, filled)?;
                        Ok(n)
                    }
                    Err(e) => Err(e),
                }
            });
            match received {
                Ok(0) => {
                    self.peer_eof = true;
                    // Tells rustls the stream ended, so its reader says
                    // whether the end was clean.
                    self.tls.read_tls(&mut io::empty())?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => return Ok(filled),
                Err(e) => return Err(e),
            }
        }
        if filled > 0 {
            return Ok(filled);
        }
        match self.tls.reader().read(buf) {
            // The peer's close_notify, or its end without one (a truncation
            // the protocols above detect themselves): the end of input.
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Encrypts and sends from `bufs`, as `Write::write_vectored` does.
    pub fn write_vectored(&mut self, tcp: &TcpStream, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.send_tls(tcp)?;
        if self.pending_write_bytes() > 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut taken = 0;
        let mut writer = self.tls.writer();
        for slice in bufs {
            let room = PLAINTEXT_PER_WRITE_BYTES - taken;
            if room == 0 {
                break;
            }
            let part = slice.get(..room.min(slice.len())).unwrap_or_default();
            let n = writer.write(part)?;
            taken += n;
            if n < part.len() {
                break;
            }
        }
        if taken == 0 && bufs.iter().any(|b| !b.is_empty()) {
            // rustls' own plaintext limit (during the handshake).
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.send_tls(tcp)?;
        Ok(taken)
    }

    /// Sends what waits; Ok even if some still waits.
    pub fn flush(&mut self, tcp: &TcpStream) -> io::Result<()> {
        self.send_tls(tcp)
    }

    /// Queues close_notify and sends it; once everything is out, half-closes
    /// the socket. `WouldBlock` while encrypted bytes wait for the socket.
    pub fn shutdown_write(&mut self, tcp: &TcpStream) -> io::Result<()> {
        if !self.close_notify_queued {
            self.close_notify_queued = true;
            self.tls.send_close_notify();
        }
        self.send_tls(tcp)?;
        if self.pending_write_bytes() > 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        tcp.shutdown(Shutdown::Write)
    }
}
