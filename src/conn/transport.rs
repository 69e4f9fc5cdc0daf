//! The byte stream under a connection. Plain TCP today; TLS (issue 8) adds a
//! variant here, under the connection, so no protocol needs to know.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;

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

impl Transport for TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}
