//! Who is where: per-namespace presence and rooms as ordered rosters. Pure
//! bookkeeping; the hub decides what to announce.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use super::{ClientKind, ConnId};

/// One registered user as a roster lists it: enough to route and render
/// without looking the connection up again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    pub conn: ConnId,
    pub name: Rc<str>,
    pub kind: ClientKind,
}

/// Members in arrival order, with O(log n) insert/remove and O(1) lookup.
/// `seq` is a hub-wide counter, so arrival order is comparable across rosters.
#[derive(Default, Debug)]
pub(crate) struct Roster {
    order: BTreeMap<u64, Member>,
    seq_of: HashMap<ConnId, u64>,
}

impl Roster {
    /// Adds `member` as the newest; `false` (and no change) if already in.
    pub fn insert(&mut self, seq: u64, member: Member) -> bool {
        if self.seq_of.contains_key(&member.conn) {
            return false;
        }
        self.seq_of.insert(member.conn, seq);
        self.order.insert(seq, member);
        true
    }

    /// Removes `conn`; `false` if it was not in.
    pub fn remove(&mut self, conn: ConnId) -> bool {
        match self.seq_of.remove(&conn) {
            Some(seq) => self.order.remove(&seq).is_some(),
            None => false,
        }
    }

    pub fn contains(&self, conn: ConnId) -> bool {
        self.seq_of.contains_key(&conn)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Members, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Member> {
        self.order.values()
    }

    /// Names, oldest first.
    pub fn names(&self) -> Vec<Rc<str>> {
        self.iter().map(|m| m.name.clone()).collect()
    }
}

/// One world: its users' names, presence and rooms (section 1).
#[derive(Default, Debug)]
pub(crate) struct Namespace {
    /// Registered users, oldest first (the order of presence lists).
    pub presence: Roster,
    /// NFC name → connection; names are unique per namespace.
    pub by_name: HashMap<Rc<str>, ConnId>,
    /// Rooms with members, `lobby` included. `str` order is code point
    /// order, which is how room lists are sorted.
    pub rooms: BTreeMap<Rc<str>, Roster>,
}

impl Namespace {
    /// The registered member called `name` (already NFC).
    pub fn user(&self, name: &str) -> Option<&Member> {
        let conn = self.by_name.get(name)?;
        let seq = self.presence.seq_of.get(conn)?;
        self.presence.order.get(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(slot: usize, name: &str) -> Member {
        Member { conn: ConnId { slot, generation: 0 }, name: name.into(), kind: ClientKind::Json }
    }

    #[test]
    fn roster_keeps_arrival_order() {
        let mut roster = Roster::default();
        assert!(roster.insert(5, member(1, "a")));
        assert!(roster.insert(7, member(2, "b")));
        assert!(!roster.insert(9, member(1, "a")));
        assert!(roster.insert(8, member(3, "c")));
        assert_eq!(roster.names(), ["a", "b", "c"].map(Rc::from).to_vec());
        assert!(roster.remove(ConnId { slot: 2, generation: 0 }));
        assert!(!roster.remove(ConnId { slot: 2, generation: 0 }));
        assert_eq!(roster.names(), ["a", "c"].map(Rc::from).to_vec());
        assert_eq!(roster.len(), 2);
        assert!(roster.contains(ConnId { slot: 3, generation: 0 }));
        assert!(!roster.contains(ConnId { slot: 3, generation: 1 }));
    }
}
