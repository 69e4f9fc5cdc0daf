//! TLS as a byte stream: rustls' unbuffered [`UnbufferedServerConnection`]
//! over a non-blocking TCP socket, read and written like the plain socket,
//! so the connection and every protocol above it see only plaintext.
//!
//! rustls keeps the keys and the handshake state; soket keeps the bytes. An
//! idle connection holds no ciphertext, in either direction: a buffer of its
//! own exists only while a partial record waits for the rest, or while the
//! socket has not taken what was encrypted.
//!
//! Reading: ciphertext comes from the socket in one `recv` of up to 64 KiB
//! into a buffer shared by every TLS connection of the thread, behind what
//! the connection held back from its last read; rustls decrypts it there, a
//! record at a time, and the plaintext goes out into the caller's buffer.
//! What is left when the caller's buffer is full, or the tail of a record
//! still on its way, moves to the connection's own `incoming`. A read returns
//! less than the buffer only once the socket would block or reached its end,
//! as the connection's edge-triggered loop expects of a socket. Handshake
//! replies go out as soon as rustls has them.
//!
//! Writing: the plaintext is encrypted into a second buffer shared by the
//! thread and sent from there at once; what the socket does not take moves to
//! the connection's `outgoing`, whose exact length
//! [`TlsStream::pending_write_bytes`] reports, and no more plaintext is taken
//! until it is sent: the connection's write queue keeps the rest, where
//! `--max-queued` sees it.

use std::cell::RefCell;
use std::io::{self, IoSlice, Read};
use std::net::Shutdown;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::ServerConfig;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use socket2::SockRef;

/// The most ciphertext one `recv` takes.
const CIPHERTEXT_CHUNK_BYTES: usize = 64 * 1024;
/// The least ciphertext one `recv` asks for: a whole record (16 KiB and its
/// overhead), so a nearly full buffer is not filled by many tiny `recv`s.
const MIN_RECV_BYTES: usize = 17 * 1024 + 512;
/// The most received ciphertext rustls may leave unprocessed once every whole
/// record was taken: a partial record, or the records of a handshake message
/// split across them (rustls caps a handshake message at 64 KiB). A peer that
/// needs more is not speaking TLS as a client does.
const MAX_HELD_BYTES: usize = 80 * 1024;
/// The thread's ciphertext buffer: what a connection held back and one `recv`.
const INCOMING_BYTES: usize = MAX_HELD_BYTES + CIPHERTEXT_CHUNK_BYTES;
/// The most plaintext one `write` takes: about four records, so the
/// encrypted backlog of a connection that stopped reading stays near this.
const PLAINTEXT_PER_WRITE_BYTES: usize = 64 * 1024;
/// Room for what one `write` encrypts: the plaintext and each record's
/// header, nonce and tag (under 64 bytes a record, whatever the suite).
const SEALED_BYTES: usize = PLAINTEXT_PER_WRITE_BYTES + 8 * 64;
/// rustls' states between two reads are few (a handshake flight is encoded
/// and sent); a loop that takes more steps than this without input is a bug.
const MAX_STEPS_WITHOUT_INPUT: usize = 64;

thread_local! {
    /// Ciphertext between the socket and rustls, shared by every TLS
    /// connection on the reactor's thread: an idle connection holds none.
    static INCOMING: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Records encrypted by a `write`, before the socket takes them.
    static SEALED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A connection's TLS state; the socket is lent to each call.
pub struct TlsStream {
    /// Ciphertext received and not yet consumed by rustls: the start of a
    /// record, or records left when the caller's buffer filled up.
    incoming: Vec<u8>,
    session: Session,
}

/// Everything but `incoming`, so that rustls can borrow that while the rest
/// takes what it gives.
struct Session {
    tls: UnbufferedServerConnection,
    /// Decrypted bytes the caller's buffer had no room for (a record's tail);
    /// `plaintext_taken` of them were read.
    plaintext: Vec<u8>,
    plaintext_taken: usize,
    outgoing: Outgoing,
    /// The peer's close_notify came, or the socket reported its end: nothing
    /// more to receive.
    peer_eof: bool,
    close_notify_queued: bool,
    /// rustls reported an error (and queued its alert): it must not be run
    /// again, as it would only fail again, alert included.
    failed: bool,
}

/// Where rustls stopped, waiting for input.
#[derive(Debug, PartialEq, Eq)]
enum Waiting {
    /// The caller's buffer is full; whole records may remain.
    Room,
    /// The handshake needs the peer's next message.
    Handshake,
    /// Application data may be written; whatever comes is read.
    Traffic,
    /// Both sides sent close_notify.
    Closed,
}

/// Encrypted bytes the socket did not take yet; `sent` of them are out.
#[derive(Default)]
struct Outgoing {
    bytes: Vec<u8>,
    sent: usize,
}

impl Outgoing {
    fn pending(&self) -> usize {
        self.bytes.len() - self.sent
    }

    /// Sends what waits; Ok even if the socket would not take all of it.
    fn send(&mut self, tcp: &TcpStream) -> io::Result<()> {
        while let Some(unsent) = self.bytes.get(self.sent..).filter(|b| !b.is_empty()) {
            match SockRef::from(tcp).send(unsent) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        // Sent: an idle connection keeps no encrypted buffer.
        *self = Outgoing::default();
        Ok(())
    }

    /// Appends the `required` bytes `encode` writes into the space it is given.
    fn append<E>(&mut self, required: usize, encode: impl FnOnce(&mut [u8]) -> Result<usize, E>) -> io::Result<()>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let at = self.bytes.len();
        self.bytes.resize(at + required, 0);
        let space = self.bytes.get_mut(at..).expect("just resized past `at`");
        let written = encode(space).map_err(io::Error::other)?;
        self.bytes.truncate(at + written);
        Ok(())
    }
}

fn peer_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl Session {
    /// Copies the plaintext held back into `buf`; returns how much.
    fn take_plaintext(&mut self, buf: &mut [u8]) -> usize {
        let held = self.plaintext.get(self.plaintext_taken..).unwrap_or_default();
        let n = held.len().min(buf.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), held.get(..n)) {
            to.copy_from_slice(from);
        }
        self.plaintext_taken += n;
        if self.plaintext_taken == self.plaintext.len() {
            self.plaintext = Vec::new();
            self.plaintext_taken = 0;
        }
        n
    }

    /// Runs rustls over `incoming` (the ciphertext it has not consumed, from
    /// its start) until it waits for input, moving plaintext into `buf` from
    /// `filled` on (what does not fit into `plaintext`) and sending what the
    /// handshake answers. Returns how many bytes of `incoming` rustls is done
    /// with, and what it waits for. With `stop_when_full`, stops at a full
    /// `buf` before decrypting another record.
    fn pump(
        &mut self,
        tcp: &TcpStream,
        incoming: &mut [u8],
        buf: &mut [u8],
        filled: &mut usize,
        stop_when_full: bool,
    ) -> io::Result<(usize, Waiting)> {
        if self.failed {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "TLS: the session failed"));
        }
        let mut consumed = 0;
        let mut steps_without_input = 0;
        loop {
            if stop_when_full && *filled == buf.len() {
                return Ok((consumed, Waiting::Room));
            }
            let rest = incoming.get_mut(consumed..).unwrap_or_default();
            let UnbufferedStatus { discard, state } = self.tls.process_tls_records(rest);
            consumed += discard;
            if discard == 0 {
                steps_without_input += 1;
                if steps_without_input > MAX_STEPS_WITHOUT_INPUT {
                    return Err(io::Error::other("TLS: rustls made no progress"));
                }
            } else {
                steps_without_input = 0;
            }
            match state {
                Ok(ConnectionState::ReadTraffic(mut records)) => {
                    // Every record is taken out now: rustls offers nothing
                    // else (no write) while plaintext waits in it.
                    while let Some(record) = records.next_record() {
                        let record = record.map_err(peer_error)?;
                        consumed += record.discard;
                        let free = buf.get_mut(*filled..).unwrap_or_default();
                        let n = free.len().min(record.payload.len());
                        let (fits, over) = record.payload.split_at(n);
                        if let Some(to) = free.get_mut(..n) {
                            to.copy_from_slice(fits);
                        }
                        *filled += n;
                        self.plaintext.extend_from_slice(over);
                    }
                    steps_without_input = 0;
                }
                Ok(ConnectionState::EncodeTlsData(mut encoder)) => {
                    let required = match encoder.encode(&mut []) {
                        Ok(_) => 0,
                        Err(EncodeError::InsufficientSize(size)) => size.required_size,
                        Err(e) => return Err(io::Error::other(e)),
                    };
                    self.outgoing.append(required, |space| encoder.encode(space))?;
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    // What was encoded is soket's now, counted in `outgoing`.
                    transmit.done();
                    self.outgoing.send(tcp)?;
                }
                Ok(ConnectionState::BlockedHandshake) => return Ok((consumed, Waiting::Handshake)),
                Ok(ConnectionState::WriteTraffic(_)) => return Ok((consumed, Waiting::Traffic)),
                Ok(ConnectionState::PeerClosed) => self.peer_eof = true,
                Ok(ConnectionState::Closed) => {
                    self.peer_eof = true;
                    return Ok((consumed, Waiting::Closed));
                }
                // Early data is off in the configuration; rustls offers none.
                Ok(ConnectionState::ReadEarlyData(_)) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "TLS: unexpected early data"));
                }
                Ok(other) => return Err(io::Error::other(format!("TLS: unexpected state {other:?}"))),
                Err(e) => {
                    // rustls queued an alert saying why; the peer may read it.
                    self.failed = true;
                    self.send_alert(tcp, incoming.get_mut(consumed..).unwrap_or_default());
                    return Err(peer_error(e));
                }
            }
        }
    }

    /// Encodes and sends the alert rustls queued with an error, as far as
    /// the socket takes it at once. One step only: past the queued bytes,
    /// rustls would parse the failing input again.
    fn send_alert(&mut self, tcp: &TcpStream, rest: &mut [u8]) {
        let UnbufferedStatus { state, .. } = self.tls.process_tls_records(rest);
        if let Ok(ConnectionState::EncodeTlsData(mut encoder)) = state {
            let required = match encoder.encode(&mut []) {
                Err(EncodeError::InsufficientSize(size)) => size.required_size,
                _ => 0,
            };
            if self.outgoing.append(required, |space| encoder.encode(space)).is_err() {
                return;
            }
        }
        let _ = self.outgoing.send(tcp);
    }
}

impl TlsStream {
    /// A server-side TLS stream, before any byte was read.
    pub fn new(config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let tls = UnbufferedServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsStream {
            incoming: Vec::new(),
            session: Session {
                tls,
                plaintext: Vec::new(),
                plaintext_taken: 0,
                outgoing: Outgoing::default(),
                peer_eof: false,
                close_notify_queued: false,
                failed: false,
            },
        })
    }

    /// The handshake is still running: no plaintext has been exchanged.
    pub fn is_handshaking(&self) -> bool {
        self.session.tls.is_handshaking()
    }

    /// Encrypted bytes waiting for the socket.
    pub fn pending_write_bytes(&self) -> usize {
        self.session.outgoing.pending()
    }

    /// Reads plaintext into `buf`, as `Read::read` does.
    pub fn read(&mut self, tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        let filled = self.session.take_plaintext(buf);
        if filled == buf.len() || self.session.peer_eof {
            // The end of input once nothing is left (a truncation without
            // close_notify too: the protocols above detect it themselves).
            return Ok(filled);
        }
        INCOMING.with_borrow_mut(|shared| {
            if shared.len() < INCOMING_BYTES {
                shared.resize(INCOMING_BYTES, 0);
            }
            self.read_through(tcp, shared, buf, filled)
        })
    }

    /// [`TlsStream::read`] with the thread's ciphertext buffer lent.
    fn read_through(
        &mut self,
        tcp: &TcpStream,
        shared: &mut [u8],
        buf: &mut [u8],
        mut filled: usize,
    ) -> io::Result<usize> {
        let held = std::mem::take(&mut self.incoming);
        let mut end = held.len();
        shared.get_mut(..end).expect("what a connection holds fits the shared buffer").copy_from_slice(&held);
        drop(held);
        let mut start = 0;
        let result = loop {
            let window = shared.get_mut(start..end).unwrap_or_default();
            match self.session.pump(tcp, window, buf, &mut filled, true) {
                Ok((consumed, waiting)) => {
                    start += consumed;
                    if waiting == Waiting::Room || self.session.peer_eof {
                        break Ok(());
                    }
                }
                Err(e) => break Err(e),
            }
            // Every whole record is consumed; what is left moves to the front.
            shared.copy_within(start..end, 0);
            end -= start;
            start = 0;
            if end > MAX_HELD_BYTES {
                break Err(io::Error::new(io::ErrorKind::InvalidData, "TLS: too much ciphertext held"));
            }
            // Plaintext is never longer than its ciphertext: asking for no
            // more than the room left rarely leaves any to hold.
            let want = (buf.len() - filled).clamp(MIN_RECV_BYTES, CIPHERTEXT_CHUNK_BYTES);
            let into =
                shared.get_mut(end..end + want).expect("the shared buffer has room for one recv past the held bytes");
            match (&*SockRef::from(tcp)).read(into) {
                Ok(0) => {
                    self.session.peer_eof = true;
                    break Ok(());
                }
                Ok(n) => end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if start < end && !self.session.peer_eof {
            self.incoming = shared.get(start..end).unwrap_or_default().to_vec();
        }
        match result {
            Ok(()) => Ok(filled),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => Ok(filled),
            Err(e) => Err(e),
        }
    }

    /// Lets rustls finish what it can without new input (answers included),
    /// so that it offers to encrypt; returns what it waits for. Plaintext it
    /// decrypts from held records waits for the next read.
    fn settle(&mut self, tcp: &TcpStream) -> io::Result<Waiting> {
        let mut none = 0;
        let (consumed, waiting) = self.session.pump(tcp, &mut self.incoming, &mut [], &mut none, false)?;
        self.incoming.drain(..consumed.min(self.incoming.len()));
        if self.incoming.is_empty() {
            self.incoming = Vec::new();
        }
        Ok(waiting)
    }

    /// Encrypts and sends from `bufs`, as `Write::write_vectored` does.
    pub fn write_vectored(&mut self, tcp: &TcpStream, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.session.outgoing.send(tcp)?;
        if self.pending_write_bytes() > 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        if self.session.close_notify_queued {
            // Nothing may follow close_notify, as nothing follows a shut
            // socket's write side.
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if self.settle(tcp)? != Waiting::Traffic {
            // The handshake is not done: nothing may be encrypted yet.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let session = &mut self.session;
        let UnbufferedStatus { state, .. } = session.tls.process_tls_records(&mut self.incoming);
        let Ok(ConnectionState::WriteTraffic(mut traffic)) = state else {
            return Err(io::Error::other("TLS: rustls would not encrypt after settling"));
        };
        SEALED.with_borrow_mut(|sealed| {
            if sealed.len() < SEALED_BYTES {
                sealed.resize(SEALED_BYTES, 0);
            }
            let mut taken = 0;
            let mut written = 0;
            for slice in bufs {
                let room = PLAINTEXT_PER_WRITE_BYTES - taken;
                if room == 0 {
                    break;
                }
                let part = slice.get(..room.min(slice.len())).unwrap_or_default();
                if part.is_empty() {
                    continue;
                }
                loop {
                    let space = sealed.get_mut(written..).unwrap_or_default();
                    match traffic.encrypt(part, space) {
                        Ok(n) => {
                            written += n;
                            break;
                        }
                        Err(EncryptError::InsufficientSize(size)) => sealed.resize(written + size.required_size, 0),
                        Err(e) => return Err(io::Error::other(e)),
                    }
                }
                taken += part.len();
            }
            // Straight to the socket; the outgoing buffer only keeps a rest.
            let records = sealed.get(..written).unwrap_or_default();
            let mut sent = 0;
            while let Some(unsent) = records.get(sent..).filter(|b| !b.is_empty()) {
                match SockRef::from(tcp).send(unsent) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            session.outgoing.bytes.extend_from_slice(records.get(sent..).unwrap_or_default());
            Ok(taken)
        })
    }

    /// Sends what waits; Ok even if some still waits.
    pub fn flush(&mut self, tcp: &TcpStream) -> io::Result<()> {
        self.session.outgoing.send(tcp)
    }

    /// Queues close_notify and sends it; once everything is out, half-closes
    /// the socket. `WouldBlock` while encrypted bytes wait for the socket.
    pub fn shutdown_write(&mut self, tcp: &TcpStream) -> io::Result<()> {
        if !self.session.close_notify_queued {
            self.session.close_notify_queued = true;
            // A handshake cut short has no keys to say it with, and a failed
            // session said why already: their sockets just close.
            if !self.session.failed && self.settle(tcp)? == Waiting::Traffic {
                let session = &mut self.session;
                let UnbufferedStatus { state, .. } = session.tls.process_tls_records(&mut self.incoming);
                if let Ok(ConnectionState::WriteTraffic(mut traffic)) = state {
                    let required = match traffic.queue_close_notify(&mut []) {
                        Err(EncryptError::InsufficientSize(size)) => size.required_size,
                        _ => 0,
                    };
                    session.outgoing.append(required, |space| traffic.queue_close_notify(space))?;
                }
            }
        }
        self.session.outgoing.send(tcp)?;
        if self.pending_write_bytes() > 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        tcp.shutdown(Shutdown::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedProtocolVersion};
    use std::io::Write;
    use std::time::{Duration, Instant};

    /// A client that sends `upload`, reads `download_len` bytes, then idles
    /// until told to go, with rustls' blocking stream on a thread of its own.
    fn session_over_loopback(version: &'static SupportedProtocolVersion) {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let der = generated.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der()));
        let server_config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(der.to_vec())], key)
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(der).unwrap();
        let client_config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Several records in one write, and a tail that is not a whole record.
        let upload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let download: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let client = {
            let upload = upload.clone();
            let download_len = download.len();
            std::thread::spawn(move || {
                let tcp = std::net::TcpStream::connect(addr).unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let name = ServerName::try_from("localhost").unwrap();
                let mut stream = StreamOwned::new(ClientConnection::new(Arc::new(client_config), name).unwrap(), tcp);
                stream.write_all(&upload).unwrap();
                let mut got = vec![0; download_len];
                stream.read_exact(&mut got).unwrap();
                go_rx.recv().unwrap();
                stream.conn.send_close_notify();
                stream.flush().unwrap();
                got
            })
        };
        let (accepted, _) = listener.accept().unwrap();
        accepted.set_nonblocking(true).unwrap();
        let tcp = TcpStream::from_std(accepted);
        let mut tls = TlsStream::new(Arc::new(server_config)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);

        // A small buffer: records are split across reads and held back.
        let mut received = Vec::new();
        let mut buf = [0u8; 1000];
        while received.len() < upload.len() {
            assert!(Instant::now() < deadline, "upload stalled at {}", received.len());
            match tls.read(&tcp, &mut buf) {
                Ok(0) => panic!("early end"),
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => panic!("{e}"),
            }
        }
        assert!(received == upload, "the upload arrived changed");
        assert!(!tls.is_handshaking());

        let mut sent = 0;
        while sent < download.len() || tls.pending_write_bytes() > 0 {
            assert!(Instant::now() < deadline, "download stalled at {sent}");
            match tls.write_vectored(&tcp, &[IoSlice::new(&download[sent..])]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => panic!("{e}"),
            }
        }

        // Idle: the connection holds no buffer of its own in either direction.
        assert_eq!(tls.incoming.capacity(), 0);
        assert_eq!(tls.session.plaintext.capacity(), 0);
        assert_eq!(tls.session.outgoing.bytes.capacity(), 0);

        go_tx.send(()).unwrap();
        assert!(client.join().unwrap() == download, "the download arrived changed");
        // The client's close_notify is the end of input.
        loop {
            assert!(Instant::now() < deadline, "no end");
            match tls.read(&tcp, &mut buf) {
                Ok(0) => break,
                Ok(n) => panic!("{n} bytes after the data"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => panic!("{e}"),
            }
        }
        // close_notify back; the client may have gone already.
        if let Err(e) = tls.shutdown_write(&tcp) {
            assert!(matches!(e.kind(), io::ErrorKind::NotConnected | io::ErrorKind::BrokenPipe), "{e}");
        }
    }

    #[test]
    fn tls13_session_leaves_an_idle_connection_without_buffers() {
        session_over_loopback(&rustls::version::TLS13);
    }

    #[test]
    fn tls12_session_leaves_an_idle_connection_without_buffers() {
        session_over_loopback(&rustls::version::TLS12);
    }
}
