//! Deadlines of connections and sessions in one min-heap, invalidated lazily.
//!
//! Each owner (a connection, or a session that may outlive its connections)
//! computes its own next deadline from its state (handshake, keepalive ping,
//! pong wait, closing handshake, legacy flush delay, a session's heartbeat).
//! The heap holds at most a few entries per owner and nothing is touched per
//! tick: a keepalive deadline that moved later because data arrived is found
//! out only when its old entry pops, which then re-arms it. So an idle
//! connection costs one heap entry and one pop per ping interval.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

pub use crate::ids::{ConnId, Endpoint, SessionId};

/// The top bit of an entry's generation word: the owner is a session. Ids'
/// generations count up from 1 per accept or session and never reach it.
const SESSION_BIT: u64 = 1 << 63;

/// One heap entry in 24 bytes rather than an `(Instant, Endpoint)`'s 40:
/// every connection holds one, so at 5 000 idle connections (and a heap's
/// doubling capacity) this is some 80 bytes of RSS per connection less.
/// Fields in the order they compare: the time first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    /// Nanoseconds after the heap's base instant.
    at: u64,
    generation_and_kind: u64,
    slot: usize,
}

pub struct Timers {
    base: Instant,
    heap: BinaryHeap<Reverse<Entry>>,
}

impl Timers {
    /// An empty heap whose times count from `base` (no deadline is earlier).
    pub fn new(base: Instant) -> Timers {
        Timers { base, heap: BinaryHeap::new() }
    }

    /// Schedules a wake-up for `owner` at `at`, if `scheduled` (the owner's
    /// earliest pending entry) is later or absent. Updates `scheduled`.
    pub fn arm(&mut self, owner: Endpoint, at: Instant, scheduled: &mut Option<Instant>) {
        if scheduled.is_none_or(|s| at < s) {
            self.heap.push(Reverse(self.entry(at, owner)));
            *scheduled = Some(at);
        }
    }

    /// The earliest entry's time, for the poll timeout.
    pub fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(entry)| self.instant(entry.at))
    }

    /// Pops one entry due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, Endpoint)> {
        let due = self.nanos(now);
        match self.heap.peek() {
            Some(Reverse(entry)) if entry.at <= due => {
                let Reverse(entry) = self.heap.pop()?;
                Some((self.instant(entry.at), owner_of(&entry)))
            }
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    fn nanos(&self, at: Instant) -> u64 {
        let since = at.checked_duration_since(self.base).unwrap_or_default();
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    /// The instant back: exactly the one armed, so owners can compare it
    /// with what they scheduled.
    fn instant(&self, nanos: u64) -> Instant {
        let after = Duration::from_nanos(nanos);
        self.base.checked_add(after).unwrap_or(self.base + Duration::from_secs(u32::MAX.into()))
    }

    fn entry(&self, at: Instant, owner: Endpoint) -> Entry {
        let (slot, generation_and_kind) = match owner {
            Endpoint::Conn(id) => (id.slot, id.generation & !SESSION_BIT),
            Endpoint::Session(id) => (id.slot, id.generation | SESSION_BIT),
        };
        Entry { at: self.nanos(at), generation_and_kind, slot }
    }
}

fn owner_of(entry: &Entry) -> Endpoint {
    let generation = entry.generation_and_kind & !SESSION_BIT;
    if entry.generation_and_kind & SESSION_BIT != 0 {
        Endpoint::Session(SessionId { slot: entry.slot, generation })
    } else {
        Endpoint::Conn(ConnId { slot: entry.slot, generation })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earlier_deadlines_replace_later_ones_lazily() {
        let t0 = Instant::now();
        let id = Endpoint::Conn(ConnId { slot: 1, generation: 7 });
        let mut timers = Timers::new(t0);
        let mut scheduled = None;
        timers.arm(id, t0 + Duration::from_secs(25), &mut scheduled);
        // A later deadline is not pushed: the earlier entry re-arms it when it pops.
        timers.arm(id, t0 + Duration::from_secs(30), &mut scheduled);
        assert_eq!(timers.len(), 1);
        timers.arm(id, t0 + Duration::from_secs(5), &mut scheduled);
        assert_eq!(timers.len(), 2);
        assert_eq!(scheduled, Some(t0 + Duration::from_secs(5)));
        assert_eq!(timers.next_at(), Some(t0 + Duration::from_secs(5)));
        assert!(timers.pop_due(t0).is_none());
        let (at, popped) = timers.pop_due(t0 + Duration::from_secs(6)).unwrap();
        assert_eq!((at, popped), (t0 + Duration::from_secs(5), id));
    }

    #[test]
    fn connections_and_sessions_share_one_heap_in_time_order() {
        let t0 = Instant::now();
        let conn = Endpoint::Conn(ConnId { slot: 3, generation: 1 });
        let session = Endpoint::Session(SessionId { slot: 3, generation: 1 });
        let mut timers = Timers::new(t0);
        let (mut conn_scheduled, mut session_scheduled) = (None, None);
        timers.arm(conn, t0 + Duration::from_secs(2), &mut conn_scheduled);
        timers.arm(session, t0 + Duration::from_secs(1), &mut session_scheduled);
        let due = t0 + Duration::from_secs(3);
        assert_eq!(timers.pop_due(due).map(|(_, owner)| owner), Some(session));
        assert_eq!(timers.pop_due(due).map(|(_, owner)| owner), Some(conn));
        assert!(timers.pop_due(due).is_none());
    }

    #[test]
    fn an_entry_is_24_bytes_and_gives_back_the_instant_armed() {
        assert_eq!(std::mem::size_of::<Entry>(), 24);
        let t0 = Instant::now();
        let mut timers = Timers::new(t0);
        let at = t0 + Duration::from_nanos(1_234_567_891);
        let session = Endpoint::Session(SessionId { slot: 7, generation: 42 });
        timers.arm(session, at, &mut None);
        assert_eq!(timers.next_at(), Some(at));
        assert_eq!(timers.pop_due(at), Some((at, session)));
        // A deadline before the base fires at once rather than never.
        timers.arm(Endpoint::Conn(ConnId { slot: 1, generation: 1 }), t0 - Duration::from_secs(1), &mut None);
        assert!(timers.pop_due(t0).is_some());
    }
}
