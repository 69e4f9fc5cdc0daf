//! Raw TCP reference: one thread, one mio poll, no WebSocket at all. What the machine allows.
//!
//! Default: echo every byte back. `--broadcast`: every chunk read from one connection is
//! written to every other connection (one `Rc<[u8]>` shared by all of them).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::rc::Rc;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use soket_bench_peers::{announce, broadcast_flag, port_arg};

const LISTENER: Token = Token(usize::MAX);
/// Stop reading a connection while this much is queued for it.
const PAUSE_AT: usize = 4 << 20;

struct Conn {
    stream: TcpStream,
    queue: VecDeque<Rc<[u8]>>,
    head_sent: usize,
    queued: usize,
    read_paused: bool,
}

impl Conn {
    /// Writes the queue until empty or `WouldBlock`. `Err`: the connection is dead.
    fn flush(&mut self) -> io::Result<()> {
        while !self.queue.is_empty() {
            let mut slices = [IoSlice::new(&[]); 32];
            let mut n = 0;
            for (i, chunk) in self.queue.iter().take(32).enumerate() {
                slices[i] = IoSlice::new(if i == 0 { &chunk[self.head_sent..] } else { chunk });
                n += 1;
            }
            match self.stream.write_vectored(&slices[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(mut written) => {
                    self.queued -= written;
                    while written > 0 {
                        let left = self.queue[0].len() - self.head_sent;
                        if written >= left {
                            written -= left;
                            self.queue.pop_front();
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

    fn push(&mut self, chunk: Rc<[u8]>) {
        self.queued += chunk.len();
        self.queue.push_back(chunk);
    }
}

fn main() -> io::Result<()> {
    let port = port_arg();
    let broadcast = broadcast_flag();
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(([127, 0, 0, 1], port).into())?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    announce("peer-raw-tcp", listener.local_addr()?);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut dirty: Vec<usize> = Vec::new();
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let slot = free.pop().unwrap_or_else(|| {
                                conns.push(None);
                                conns.len() - 1
                            });
                            poll.registry().register(
                                &mut stream,
                                Token(slot),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conns[slot] = Some(Conn {
                                stream,
                                queue: VecDeque::new(),
                                head_sent: 0,
                                queued: 0,
                                read_paused: false,
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            eprintln!("accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let slot = event.token().0;
            let mut dead = false;
            let mut resumed = false;
            if event.is_writable()
                && let Some(conn) = conns[slot].as_mut()
            {
                dead |= conn.flush().is_err();
                if !dead && conn.read_paused && conn.queued < PAUSE_AT / 4 {
                    // Edge-triggered: bytes that arrived while paused raise no new event.
                    conn.read_paused = false;
                    resumed = true;
                }
            }
            if !dead && (resumed || event.is_readable() || event.is_read_closed()) {
                dead = read_conn(slot, &mut conns, &mut buf, broadcast, &mut dirty);
            }
            if dead && let Some(mut conn) = conns[slot].take() {
                let _ = poll.registry().deregister(&mut conn.stream);
                free.push(slot);
            }
        }
        // End of batch: write what was queued for other connections (broadcast) in one go each.
        for slot in dirty.drain(..) {
            if let Some(conn) = conns[slot].as_mut()
                && conn.flush().is_err()
                && let Some(mut conn) = conns[slot].take()
            {
                let _ = poll.registry().deregister(&mut conn.stream);
                free.push(slot);
            }
        }
    }
}

/// Reads `slot` until `WouldBlock` (or its queue is too long); returns whether it is dead.
fn read_conn(slot: usize, conns: &mut [Option<Conn>], buf: &mut [u8], broadcast: bool, dirty: &mut Vec<usize>) -> bool {
    loop {
        let Some(conn) = conns[slot].as_mut() else { return false };
        if conn.read_paused {
            return false;
        }
        let n = match conn.stream.read(buf) {
            Ok(0) => return true,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        };
        let chunk: Rc<[u8]> = Rc::from(&buf[..n]);
        if broadcast {
            for (i, other) in conns.iter_mut().enumerate() {
                if i == slot {
                    continue;
                }
                if let Some(other) = other {
                    if other.queue.is_empty() {
                        dirty.push(i);
                    }
                    other.push(chunk.clone());
                }
            }
        } else {
            let conn = conns[slot].as_mut().expect("present");
            conn.push(chunk);
            if conn.flush().is_err() {
                return true;
            }
            if conn.queued >= PAUSE_AT {
                conn.read_paused = true;
                return false;
            }
        }
        if n < buf.len() {
            return false;
        }
    }
}
