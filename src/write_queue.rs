//! One connection's outgoing bytes: a queue of owned or shared chunks written
//! with `write_vectored`, plus a count of unsent bytes for backpressure.
//!
//! Small frames a connection produces for itself (echoes, pongs) are appended
//! to an owned tail buffer taken from a [`BufPool`], so the steady state
//! allocates nothing; fan-out bytes are `Rc`-shared between receivers.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::ops::Range;
use std::rc::Rc;

/// Owned chunks stop growing past this size, so a chunk that is partly
/// written when a connection is cut off holds at most this much plus one frame.
const OWNED_CHUNK_TARGET_BYTES: usize = 64 * 1024;
/// Most slices handed to one `writev`.
const MAX_IOVECS: usize = 64;
/// Unsent bytes up to which a queue of several chunks is gathered into one
/// buffer and written with one plain `send`.
const COALESCE_MAX_BYTES: usize = 16 * 1024;

/// What every connection's queue shares: spare write buffers, so an idle
/// connection holds no buffer and a busy one does not allocate per message,
/// and the accounting of unsent bytes across all queues (for `/metrics` and
/// for asserting the slow-reader bound from outside).
#[derive(Default)]
pub struct BufPool {
    spare: Vec<Vec<u8>>,
    /// Emptied chunk lists of drained queues, so a busy connection does not
    /// allocate one per message and an idle one does not keep one.
    spare_lists: Vec<VecDeque<Chunk>>,
    queued_total: usize,
    high_water: usize,
}

impl BufPool {
    /// Spare buffers kept at most; more are freed.
    const MAX_SPARE: usize = 256;

    /// Unsent bytes in all queues.
    pub fn queued_total(&self) -> usize {
        self.queued_total
    }

    /// The most unsent bytes one queue has ever held.
    pub fn high_water(&self) -> usize {
        self.high_water
    }

    fn take_list(&mut self) -> VecDeque<Chunk> {
        self.spare_lists.pop().unwrap_or_default()
    }

    fn give_list(&mut self, list: VecDeque<Chunk>) {
        if list.capacity() <= MAX_IOVECS && self.spare_lists.len() < Self::MAX_SPARE {
            self.spare_lists.push(list);
        }
    }

    fn take(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    fn give(&mut self, mut buf: Vec<u8>) {
        // Oversized buffers (a 16 MiB echo) go back to the allocator.
        if buf.capacity() <= OWNED_CHUNK_TARGET_BYTES * 2 && self.spare.len() < Self::MAX_SPARE {
            buf.clear();
            self.spare.push(buf);
        }
    }
}

/// Bytes a [`Chunk::Inline`] holds: a receiver's own head of a shared
/// frame (a WebSocket header and a STOMP MESSAGE's per-receiver headers).
pub const INLINE_BYTES: usize = 62;

enum Chunk {
    Owned(Vec<u8>),
    /// A few bytes of one receiver's own, kept in the chunk itself: no
    /// buffer to allocate and free per delivery.
    Inline([u8; INLINE_BYTES], u8),
    /// Part of bytes shared with other receivers.
    Shared(Rc<[u8]>, Range<usize>),
    Static(&'static [u8]),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Inline(bytes, len) => bytes.get(..usize::from(*len)).expect("an inline length fits its array"),
            Chunk::Shared(bytes, range) => {
                bytes.get(range.clone()).expect("a shared range is checked against its bytes when queued")
            }
            Chunk::Static(bytes) => bytes,
        }
    }
}

/// Unsent output of one connection.
#[derive(Default)]
pub struct WriteQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of `chunks[0]` already written.
    head_sent: usize,
    /// Unsent bytes in total: what backpressure looks at.
    queued: usize,
}

impl WriteQueue {
    /// Unsent bytes.
    pub fn queued(&self) -> usize {
        self.queued
    }

    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Unsent bytes of the chunk at the head of the queue: the one on its way.
    pub fn head_unsent(&self) -> usize {
        self.chunks.front().map_or(0, |c| c.bytes().len() - self.head_sent)
    }

    /// Lets `encode` append bytes to the owned tail buffer and counts them.
    pub fn append_with<R>(&mut self, pool: &mut BufPool, encode: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let mut tail = match self.chunks.pop_back() {
            Some(Chunk::Owned(tail)) if tail.len() < OWNED_CHUNK_TARGET_BYTES => tail,
            Some(full_or_shared) => {
                self.push_chunk(pool, full_or_shared);
                pool.take()
            }
            None => pool.take(),
        };
        let before = tail.len();
        let result = encode(&mut tail);
        self.grow(pool, tail.len() - before);
        if tail.is_empty() {
            pool.give(tail);
        } else {
            self.push_chunk(pool, Chunk::Owned(tail));
        }
        result
    }

    /// Appends a copy of `bytes`, inline when they are few and the tail is
    /// not an owned buffer to extend.
    pub fn push_small(&mut self, pool: &mut BufPool, bytes: &[u8]) {
        let tail_owned = matches!(self.chunks.back(), Some(Chunk::Owned(t)) if t.len() < OWNED_CHUNK_TARGET_BYTES);
        if bytes.len() > INLINE_BYTES || tail_owned {
            return self.push_bytes(pool, bytes);
        }
        if bytes.is_empty() {
            return;
        }
        let mut inline = [0u8; INLINE_BYTES];
        inline[..bytes.len()].copy_from_slice(bytes);
        self.grow(pool, bytes.len());
        self.push_chunk(pool, Chunk::Inline(inline, bytes.len() as u8));
    }

    /// Appends a copy of `bytes`.
    pub fn push_bytes(&mut self, pool: &mut BufPool, bytes: &[u8]) {
        self.append_with(pool, |tail| tail.extend_from_slice(bytes));
    }

    /// Appends bytes shared with other receivers.
    pub fn push_shared(&mut self, pool: &mut BufPool, bytes: Rc<[u8]>) {
        let whole = 0..bytes.len();
        self.push_shared_range(pool, bytes, whole);
    }

    /// Appends `range` of bytes shared with other receivers (an empty range
    /// appends nothing). The range is the caller's own cut of `bytes`: one
    /// outside them is a bug that would corrupt the stream, so it panics.
    pub fn push_shared_range(&mut self, pool: &mut BufPool, bytes: Rc<[u8]>, range: Range<usize>) {
        let part = bytes.get(range.clone()).expect("a shared range lies within its bytes");
        if part.is_empty() {
            return;
        }
        self.grow(pool, part.len());
        self.push_chunk(pool, Chunk::Shared(bytes, range));
    }

    /// Appends bytes that live as long as the program (a line terminator).
    pub fn push_static(&mut self, pool: &mut BufPool, bytes: &'static [u8]) {
        if !bytes.is_empty() {
            self.grow(pool, bytes.len());
            self.push_chunk(pool, Chunk::Static(bytes));
        }
    }

    /// Appends a chunk, borrowing a chunk list from the pool if this queue
    /// gave its own back when it drained.
    fn push_chunk(&mut self, pool: &mut BufPool, chunk: Chunk) {
        if self.chunks.capacity() == 0 {
            self.chunks = pool.take_list();
        }
        self.chunks.push_back(chunk);
    }

    fn grow(&mut self, pool: &mut BufPool, added: usize) {
        self.queued += added;
        pool.queued_total += added;
        pool.high_water = pool.high_water.max(self.queued);
    }

    fn shrink(&mut self, pool: &mut BufPool, removed: usize) {
        self.queued -= removed;
        pool.queued_total = pool.queued_total.saturating_sub(removed);
    }

    /// Drops everything, for a connection that is going away.
    pub fn discard_all(&mut self, pool: &mut BufPool) {
        let unsent = self.queued;
        self.shrink(pool, unsent);
        self.head_sent = 0;
        while let Some(chunk) = self.chunks.pop_front() {
            if let Chunk::Owned(buf) = chunk {
                pool.give(buf);
            }
        }
    }

    /// Drops everything not yet begun, keeping the chunk that is partly
    /// written so the peer never sees half a frame. Returns the bytes dropped.
    pub fn discard_unstarted(&mut self, pool: &mut BufPool) -> usize {
        let keep = usize::from(self.head_sent > 0);
        let mut dropped = 0;
        while self.chunks.len() > keep {
            if let Some(chunk) = self.chunks.pop_back() {
                dropped += chunk.bytes().len();
                if let Chunk::Owned(buf) = chunk {
                    pool.give(buf);
                }
            }
        }
        self.shrink(pool, dropped);
        dropped
    }

    /// Writes until the queue is empty or the socket would block.
    /// Returns the bytes written; `WouldBlock` is not an error here.
    pub fn write_to<W: Write>(&mut self, sink: &mut W, pool: &mut BufPool) -> io::Result<usize> {
        let mut written_total = 0;
        while self.queued > 0 {
            let head_unsent = self.chunks.front().map_or(&[][..], |c| {
                c.bytes().get(self.head_sent..).expect("head_sent never passes the head chunk's length")
            });
            let result = if self.chunks.len() == 1 {
                // The common case (one echo, one reply): no iovec array to fill.
                sink.write(head_unsent)
            } else if self.queued <= COALESCE_MAX_BYTES {
                // Many small chunks (a fan-out's messages queued for one
                // receiver): one copy here is cheaper than the kernel walking
                // an iovec per message.
                let mut gathered = pool.take();
                gathered.extend_from_slice(head_unsent);
                for chunk in self.chunks.iter().skip(1) {
                    gathered.extend_from_slice(chunk.bytes());
                }
                let result = sink.write(&gathered);
                pool.give(gathered);
                result
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                slices[0] = IoSlice::new(head_unsent);
                let mut count = 1;
                for (slot, chunk) in slices.iter_mut().skip(1).zip(self.chunks.iter().skip(1)) {
                    *slot = IoSlice::new(chunk.bytes());
                    count += 1;
                }
                sink.write_vectored(&slices[..count])
            };
            let written = match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            };
            written_total += written;
            self.consume(written, pool);
        }
        Ok(written_total)
    }

    fn consume(&mut self, mut written: usize, pool: &mut BufPool) {
        self.shrink(pool, written);
        while written > 0 {
            let Some(head) = self.chunks.front() else {
                break;
            };
            let head_left = head.bytes().len() - self.head_sent;
            if written < head_left {
                self.head_sent += written;
                return;
            }
            written -= head_left;
            self.head_sent = 0;
            if let Some(Chunk::Owned(buf)) = self.chunks.pop_front() {
                pool.give(buf);
            }
        }
    }

    /// Frees the queue's own storage once it is drained (its buffers already
    /// went back to the pool), so an idle connection holds nothing.
    pub fn release_idle_memory(&mut self, pool: &mut BufPool) {
        if self.chunks.is_empty() && self.chunks.capacity() > 0 {
            pool.give_list(std::mem::take(&mut self.chunks));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that accepts at most `budget` bytes per call and then blocks.
    struct Trickle {
        got: Vec<u8>,
        per_call: usize,
        calls_left: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.calls_left == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls_left -= 1;
            let n = buf.len().min(self.per_call);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_keep_order_and_count() {
        let mut pool = BufPool::default();
        let mut q = WriteQueue::default();
        q.push_bytes(&mut pool, b"hello ");
        q.push_shared(&mut pool, Rc::from(&b"shared "[..]));
        q.push_bytes(&mut pool, b"world");
        assert_eq!(q.queued(), 18);
        let mut sink = Trickle { got: Vec::new(), per_call: 4, calls_left: 2 };
        // A small queue of several chunks is gathered and written in one
        // `write`: two calls of 4 bytes each, cutting across chunks.
        assert_eq!(q.write_to(&mut sink, &mut pool).unwrap(), 8);
        assert_eq!(q.queued(), 10);
        sink.calls_left = 100;
        q.write_to(&mut sink, &mut pool).unwrap();
        assert_eq!(sink.got, b"hello shared world");
        assert!(q.is_empty());
    }

    #[test]
    fn partial_vectored_writes_of_a_large_queue_keep_order_and_count() {
        let mut pool = BufPool::default();
        let mut q = WriteQueue::default();
        let big: Rc<[u8]> = (0..COALESCE_MAX_BYTES).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into();
        q.push_bytes(&mut pool, b"hello ");
        q.push_shared(&mut pool, big.clone());
        q.push_bytes(&mut pool, b"world");
        let mut sink = Trickle { got: Vec::new(), per_call: 4, calls_left: 2 };
        // Over the gathering limit: the default `write_vectored` writes from
        // the first slice only.
        assert_eq!(q.write_to(&mut sink, &mut pool).unwrap(), 6);
        assert_eq!(q.queued(), COALESCE_MAX_BYTES + 5);
        sink.per_call = 1 << 20;
        sink.calls_left = 100;
        q.write_to(&mut sink, &mut pool).unwrap();
        assert_eq!(sink.got, [&b"hello "[..], &big, b"world"].concat());
        assert!(q.is_empty());
    }

    #[test]
    fn discard_keeps_the_partly_written_chunk() {
        let mut pool = BufPool::default();
        let mut q = WriteQueue::default();
        q.push_shared(&mut pool, Rc::from(&b"first frame"[..]));
        q.push_shared(&mut pool, Rc::from(&b"second"[..]));
        let mut sink = Trickle { got: Vec::new(), per_call: 3, calls_left: 1 };
        q.write_to(&mut sink, &mut pool).unwrap();
        assert_eq!(q.discard_unstarted(&mut pool), 6);
        sink.calls_left = 100;
        sink.per_call = 100;
        q.write_to(&mut sink, &mut pool).unwrap();
        assert_eq!(sink.got, b"first frame");
    }

    #[test]
    fn small_pieces_go_inline_and_keep_their_order() {
        let mut pool = BufPool::default();
        let mut q = WriteQueue::default();
        let shared: Rc<[u8]> = Rc::from(&b"<shared>"[..]);
        for head in [&b"h1:"[..], b"head-two:"] {
            q.push_small(&mut pool, head);
            q.push_shared_range(&mut pool, shared.clone(), 1..7);
        }
        // Behind an owned buffer the bytes join it rather than take a chunk.
        q.push_bytes(&mut pool, b"[");
        q.push_small(&mut pool, b"]");
        q.push_small(&mut pool, &[b'x'; INLINE_BYTES + 1]);
        // Two inline heads, two shared ranges, one owned buffer for the rest.
        assert_eq!(q.chunks.len(), 5);
        assert!(matches!(q.chunks.front(), Some(Chunk::Inline(_, 3))));
        let mut sink = Trickle { got: Vec::new(), per_call: 5, calls_left: 100 };
        while !q.is_empty() {
            q.write_to(&mut sink, &mut pool).unwrap();
        }
        let mut want = b"h1:sharedhead-two:shared[]".to_vec();
        want.extend_from_slice(&[b'x'; INLINE_BYTES + 1]);
        assert_eq!(sink.got, want);
    }

    #[test]
    fn owned_buffers_are_recycled() {
        let mut pool = BufPool::default();
        let mut q = WriteQueue::default();
        q.push_bytes(&mut pool, b"abc");
        let mut sink = Trickle { got: Vec::new(), per_call: 100, calls_left: 10 };
        q.write_to(&mut sink, &mut pool).unwrap();
        assert_eq!(pool.spare.len(), 1);
        q.push_bytes(&mut pool, b"def");
        assert_eq!(pool.spare.len(), 0);
    }

    #[test]
    #[should_panic(expected = "a shared range lies within its bytes")]
    fn a_range_outside_its_bytes_is_a_bug_not_a_silent_gap() {
        let mut pool = BufPool::default();
        let whole: Rc<[u8]> = Rc::from(&b"3$*$*3ann$"[..]);
        WriteQueue::default().push_shared_range(&mut pool, whole, 8..99);
    }

    #[test]
    fn ranges_of_shared_bytes_and_static_bytes() {
        let mut pool = BufPool::default();
        let mut q = WriteQueue::default();
        let whole: Rc<[u8]> = Rc::from(&b"3$*$*3ann$bob$cid$"[..]);
        q.push_shared_range(&mut pool, whole.clone(), 0..10);
        q.push_shared_range(&mut pool, whole.clone(), 14..18);
        q.push_shared_range(&mut pool, whole.clone(), 18..18);
        q.push_static(&mut pool, b"\n");
        assert_eq!(q.queued(), 15);
        let mut sink = Trickle { got: Vec::new(), per_call: 4, calls_left: 100 };
        q.write_to(&mut sink, &mut pool).unwrap();
        assert_eq!(sink.got, b"3$*$*3ann$cid$\n");
    }

    #[test]
    fn the_pool_accounts_for_every_queue() {
        let mut pool = BufPool::default();
        let (mut a, mut b) = (WriteQueue::default(), WriteQueue::default());
        a.push_bytes(&mut pool, b"12345");
        b.push_shared(&mut pool, Rc::from(&b"123"[..]));
        b.push_bytes(&mut pool, b"45678");
        assert_eq!((pool.queued_total(), pool.high_water()), (13, 8));
        let mut sink = Trickle { got: Vec::new(), per_call: 100, calls_left: 10 };
        a.write_to(&mut sink, &mut pool).unwrap();
        assert_eq!(pool.queued_total(), 8);
        b.discard_all(&mut pool);
        assert_eq!((pool.queued_total(), pool.high_water()), (0, 8));
        assert!(b.is_empty());
    }

    #[test]
    fn appending_nothing_leaves_nothing_to_write() {
        let mut pool = BufPool::default();
        let mut q = WriteQueue::default();
        q.append_with(&mut pool, |_| ());
        assert!(q.is_empty());
        let mut sink = Trickle { got: Vec::new(), per_call: 100, calls_left: 0 };
        assert_eq!(q.write_to(&mut sink, &mut pool).unwrap(), 0);
    }
}
