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
use std::time::Instant;

pub use crate::ids::{ConnId, Endpoint};

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Endpoint)>>,
}

impl Timers {
    /// Schedules a wake-up for `owner` at `at`, if `scheduled` (the owner's
    /// earliest pending entry) is later or absent. Updates `scheduled`.
    pub fn arm(&mut self, owner: Endpoint, at: Instant, scheduled: &mut Option<Instant>) {
        if scheduled.is_none_or(|s| at < s) {
            self.heap.push(Reverse((at, owner)));
            *scheduled = Some(at);
        }
    }

    /// The earliest entry's time, for the poll timeout.
    pub fn next_at(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops one entry due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, Endpoint)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SessionId;
    use std::time::Duration;

    #[test]
    fn earlier_deadlines_replace_later_ones_lazily() {
        let t0 = Instant::now();
        let id = Endpoint::Conn(ConnId { slot: 1, generation: 7 });
        let mut timers = Timers::default();
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
        let mut timers = Timers::default();
        let (mut conn_scheduled, mut session_scheduled) = (None, None);
        timers.arm(conn, t0 + Duration::from_secs(2), &mut conn_scheduled);
        timers.arm(session, t0 + Duration::from_secs(1), &mut session_scheduled);
        let due = t0 + Duration::from_secs(3);
        assert_eq!(timers.pop_due(due).map(|(_, owner)| owner), Some(session));
        assert_eq!(timers.pop_due(due).map(|(_, owner)| owner), Some(conn));
        assert!(timers.pop_due(due).is_none());
    }
}
