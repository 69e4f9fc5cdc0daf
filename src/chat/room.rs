//! Who is where: per-namespace presence and rooms as ordered rosters. Pure
//! bookkeeping; the hub decides what to announce.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use super::{Dialect, Endpoint, MemberId, Recipient};

/// One registered user as a roster lists it: enough to route and render
/// without looking the connection up again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    pub id: MemberId,
    pub endpoint: Endpoint,
    pub name: Rc<str>,
    pub dialect: Dialect,
}

impl Member {
    /// This member as the receiver of an ordinary (not presence) event.
    pub fn recipient(&self) -> Recipient {
        Recipient { endpoint: self.endpoint, member: self.id, omit: None }
    }
}

/// Members in arrival order, with O(log n) insert/remove and O(1) lookup.
/// `seq` is a hub-wide counter, so arrival order is comparable across rosters.
#[derive(Default, Debug)]
pub(crate) struct Roster {
    order: BTreeMap<u64, Member>,
    seq_of: HashMap<MemberId, u64>,
}

impl Roster {
    /// Adds `member` as the newest; `false` (and no change) if already in.
    pub fn insert(&mut self, seq: u64, member: Member) -> bool {
        if self.seq_of.contains_key(&member.id) {
            return false;
        }
        self.seq_of.insert(member.id, seq);
        self.order.insert(seq, member);
        true
    }

    /// Removes `member`; `false` if it was not in.
    pub fn remove(&mut self, member: MemberId) -> bool {
        match self.seq_of.remove(&member) {
            Some(seq) => self.order.remove(&seq).is_some(),
            None => false,
        }
    }

    pub fn contains(&self, member: MemberId) -> bool {
        self.seq_of.contains_key(&member)
    }

    /// The entry of `member`, if it is in.
    pub fn get(&self, member: MemberId) -> Option<&Member> {
        self.order.get(self.seq_of.get(&member)?)
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
    /// NFC name → member; names are unique per namespace.
    pub by_name: HashMap<Rc<str>, MemberId>,
    /// NFC names awaiting the directory's answer, reserved against local
    /// claims meanwhile.
    pub claiming: HashMap<Rc<str>, MemberId>,
    /// Members that have not registered but receive what goes to the whole
    /// namespace (Socket.IO clients without a name), where each is reached.
    /// Unordered and without names: a map entry is all an anonymous
    /// listener costs.
    pub audience: HashMap<MemberId, Endpoint>,
    /// Rooms with members, `lobby` included. `str` order is code point
    /// order, which is how room lists are sorted.
    pub rooms: BTreeMap<Rc<str>, Roster>,
}

impl Namespace {
    /// Whether nothing keeps this namespace alive.
    pub fn is_unused(&self) -> bool {
        self.presence.is_empty() && self.claiming.is_empty() && self.audience.is_empty()
    }

    /// Whether `name` (NFC) is held or awaited by a local member.
    pub fn name_in_use(&self, name: &str) -> bool {
        self.by_name.contains_key(name) || self.claiming.contains_key(name)
    }

    /// The registered member called `name` (already NFC).
    pub fn user(&self, name: &str) -> Option<&Member> {
        self.presence.get(*self.by_name.get(name)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, name: &str) -> Member {
        let endpoint = Endpoint::Conn(crate::ids::ConnId { slot: id as usize, generation: 0 });
        Member { id: MemberId(id), endpoint, name: name.into(), dialect: Dialect::Events }
    }

    #[test]
    fn roster_keeps_arrival_order() {
        let mut roster = Roster::default();
        assert!(roster.insert(5, member(1, "a")));
        assert!(roster.insert(7, member(2, "b")));
        assert!(!roster.insert(9, member(1, "a")));
        assert!(roster.insert(8, member(3, "c")));
        assert_eq!(roster.names(), ["a", "b", "c"].map(Rc::from).to_vec());
        assert!(roster.remove(MemberId(2)));
        assert!(!roster.remove(MemberId(2)));
        assert_eq!(roster.names(), ["a", "c"].map(Rc::from).to_vec());
        assert_eq!(roster.len(), 2);
        assert!(roster.contains(MemberId(3)));
        assert!(!roster.contains(MemberId(4)));
        assert_eq!(roster.get(MemberId(3)).map(|m| &*m.name), Some("c"));
    }
}
