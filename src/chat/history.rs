//! A room's recent messages (docs/SERVER.md): a bounded ring per room,
//! kept with the room's roster and gone with it, each message numbered by
//! an offset that only grows within the ring's epoch (the room's lifetime
//! on this node). Sans-IO: the hub is told the time ([`super::Hub::set_now`]).
//! Off (size 0) it costs one branch per room message and nothing stored.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// `--history-size` and `--history-ttl`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Messages kept per room; 0 turns history off.
    pub size: usize,
    /// How long a message is kept, if not for ever (until pushed out).
    pub ttl: Option<Duration>,
}

impl HistoryConfig {
    pub fn enabled(&self) -> bool {
        self.size > 0
    }
}

/// One stored room message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub offset: u64,
    pub from: Rc<str>,
    pub text: Rc<str>,
    at: Option<Instant>,
}

impl Stored {
    /// What the message costs in memory, roughly: its entry and its strings.
    fn bytes(&self) -> usize {
        std::mem::size_of::<Stored>() + self.from.len() + self.text.len()
    }
}

/// A room's ring.
#[derive(Debug)]
pub struct Ring {
    pub epoch: Rc<str>,
    /// The offset of the next message (the first is 1).
    next: u64,
    messages: VecDeque<Stored>,
    bytes: usize,
}

/// Where a client left a room: its epoch and the last offset it had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub epoch: String,
    pub offset: u64,
}

/// What a client missed in a room, in order, and where that leaves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    pub epoch: Rc<str>,
    pub messages: Vec<Stored>,
    /// The room's last offset (the client's position after these).
    pub last: u64,
}

/// Messages out of a ring, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub room: Rc<str>,
    pub epoch: Rc<str>,
    pub messages: Vec<Stored>,
}

impl Ring {
    pub fn new(epoch: Rc<str>) -> Ring {
        Ring { epoch, next: 1, messages: VecDeque::new(), bytes: 0 }
    }

    /// Stores a message at `now`: its offset.
    pub fn push(&mut self, config: &HistoryConfig, from: Rc<str>, text: Rc<str>, now: Option<Instant>) -> u64 {
        self.expire(config, now);
        let offset = self.next;
        self.next += 1;
        let stored = Stored { offset, from, text, at: now };
        self.bytes += stored.bytes();
        self.messages.push_back(stored);
        while self.messages.len() > config.size {
            self.pop();
        }
        offset
    }

    fn pop(&mut self) {
        if let Some(gone) = self.messages.pop_front() {
            self.bytes -= gone.bytes();
        }
    }

    /// Drops messages older than the TTL.
    pub fn expire(&mut self, config: &HistoryConfig, now: Option<Instant>) {
        let (Some(ttl), Some(now)) = (config.ttl, now) else { return };
        while self.messages.front().is_some_and(|m| m.at.is_some_and(|at| now.saturating_duration_since(at) >= ttl)) {
            self.pop();
        }
    }

    /// The messages after offset `since` (all without), at most `limit`,
    /// the oldest of them first.
    pub fn after(&self, since: Option<u64>, limit: usize) -> Vec<Stored> {
        if self.is_empty() {
            return Vec::new();
        }
        let since = since.unwrap_or(0);
        let start = self.messages.partition_point(|m| m.offset <= since);
        let newer = self.messages.len() - start;
        // A limit shorter than what is newer keeps the latest: what a
        // client joining late wants to see.
        let skip = newer.saturating_sub(limit);
        self.messages.iter().skip(start + skip).cloned().collect()
    }

    /// The messages a client at `position` missed, in order, or `None` when
    /// some are gone: another epoch, or its offset fell out of the window.
    pub fn missed(&self, position: &Position) -> Option<Vec<Stored>> {
        if *self.epoch != *position.epoch || position.offset >= self.next {
            return None;
        }
        let oldest = self.messages.front().map_or(self.next, |m| m.offset);
        if position.offset + 1 < oldest {
            return None;
        }
        Some(self.after(Some(position.offset), usize::MAX))
    }

    /// The offset of the last message stored (0 before any).
    pub fn last_offset(&self) -> u64 {
        self.next - 1
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The hub's history state: the settings, the time it was last told, and
/// where epochs come from.
#[derive(Debug)]
pub(crate) struct HistoryState {
    pub config: HistoryConfig,
    pub now: Option<Instant>,
    /// Random per process, so a restarted node's rooms start new epochs.
    seed: u64,
    next_epoch: u64,
}

impl HistoryState {
    pub fn new(config: HistoryConfig) -> HistoryState {
        let mut bytes = [0u8; 8];
        let seed = match getrandom::fill(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes),
            Err(_) => {
                let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                since.as_nanos() as u64 ^ u64::from(std::process::id())
            }
        };
        HistoryState { config, now: None, seed, next_epoch: 0 }
    }

    /// A new ring with an epoch no other ring of this process has had.
    pub fn new_ring(&mut self) -> Ring {
        self.next_epoch += 1;
        Ring::new(format!("{:016x}-{}", self.seed, self.next_epoch).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(size: usize) -> HistoryConfig {
        HistoryConfig { size, ttl: None }
    }

    fn push(ring: &mut Ring, config: &HistoryConfig, text: &str, now: Option<Instant>) -> u64 {
        ring.push(config, "a".into(), text.into(), now)
    }

    fn texts(messages: &[Stored]) -> Vec<&str> {
        messages.iter().map(|m| &*m.text).collect()
    }

    #[test]
    fn the_ring_keeps_the_latest_with_growing_offsets() {
        let c = config(3);
        let mut ring = Ring::new("e".into());
        for (i, text) in ["1", "2", "3", "4", "5"].iter().enumerate() {
            assert_eq!(push(&mut ring, &c, text, None), i as u64 + 1);
        }
        assert_eq!(ring.len(), 3);
        assert_eq!(texts(&ring.after(None, usize::MAX)), ["3", "4", "5"]);
        assert_eq!(texts(&ring.after(Some(3), usize::MAX)), ["4", "5"]);
        assert_eq!(texts(&ring.after(None, 1)), ["5"]);
        assert_eq!(texts(&ring.after(Some(9), 10)), Vec::<&str>::new());
        let at = |offset| Position { epoch: "e".into(), offset };
        assert_eq!(ring.missed(&at(2)).map(|m| texts(&m).join("")), Some("345".into()));
        assert_eq!(ring.missed(&at(4)).map(|m| texts(&m).join("")), Some("5".into()));
        assert_eq!(ring.missed(&at(5)).map(|m| m.len()), Some(0));
        assert_eq!(ring.missed(&at(1)), None, "message 2 is gone");
        assert_eq!(ring.missed(&at(6)), None, "from the future");
        assert_eq!(ring.missed(&Position { epoch: "other".into(), offset: 4 }), None);
        let before = ring.bytes();
        push(&mut ring, &c, "6", None);
        assert_eq!(ring.bytes(), before, "one in, one out, same sizes");
    }

    #[test]
    fn old_messages_expire() {
        let c = HistoryConfig { size: 10, ttl: Some(Duration::from_secs(5)) };
        let t0 = Instant::now();
        let mut ring = Ring::new("e".into());
        push(&mut ring, &c, "old", Some(t0));
        push(&mut ring, &c, "new", Some(t0 + Duration::from_secs(3)));
        ring.expire(&c, Some(t0 + Duration::from_secs(6)));
        assert_eq!(texts(&ring.after(None, 10)), ["new"]);
        ring.expire(&c, Some(t0 + Duration::from_secs(9)));
        assert!(ring.is_empty());
        assert_eq!(ring.bytes(), 0);
        assert_eq!(ring.last_offset(), 2);
        assert_eq!(ring.missed(&Position { epoch: "e".into(), offset: 2 }), Some(vec![]));
        assert_eq!(ring.missed(&Position { epoch: "e".into(), offset: 1 }), None);
    }

    #[test]
    fn epochs_differ() {
        let mut state = HistoryState::new(config(1));
        assert_ne!(state.new_ring().epoch, state.new_ring().epoch);
    }
}
