//! Who is where: per-namespace presence and rooms as ordered rosters. Pure
//! bookkeeping; the hub decides what to announce.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use super::{Dialect, Endpoint, MemberId, Recipient, Stamp};

/// Where a registered user is connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// On this node: deliveries go to the endpoint.
    Here(Endpoint),
    /// On another node of the cluster (its id): what it should get crosses
    /// the backplane once per node, never per receiver, so it is never a
    /// [`Recipient`] here.
    Node(Rc<str>),
}

/// One registered user as a roster lists it: enough to route and render
/// without looking the connection up again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    pub id: MemberId,
    pub place: Place,
    pub name: Rc<str>,
    pub dialect: Dialect,
}

impl Member {
    /// This member as the receiver of an ordinary (not presence) event,
    /// if it is connected to this node.
    pub fn recipient(&self) -> Option<Recipient> {
        match self.place {
            Place::Here(endpoint) => Some(Recipient { endpoint, member: self.id, omit: None }),
            Place::Node(_) => None,
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self.place, Place::Here(_))
    }
}

/// Members in arrival order, with O(log n) insert/remove and O(1) lookup.
/// Stamps are comparable across rosters and, in a cluster, across nodes, so
/// every node lists a room or a namespace in the same order. The member id
/// in the key keeps two equal stamps (a buggy peer's) from overwriting each
/// other.
#[derive(Default, Debug)]
pub(crate) struct Roster {
    order: BTreeMap<(Stamp, MemberId), Member>,
    stamp_of: HashMap<MemberId, Stamp>,
    /// Members connected to this node: a room's channel is subscribed while
    /// this is above zero.
    local: usize,
    /// The room's recent messages, with `--history-size` (gone with the room).
    pub history: Option<Box<super::history::Ring>>,
}

impl Roster {
    /// Adds `member` at `stamp`; `false` (and no change) if already in.
    pub fn insert(&mut self, stamp: Stamp, member: Member) -> bool {
        if self.stamp_of.contains_key(&member.id) {
            return false;
        }
        self.stamp_of.insert(member.id, stamp);
        self.local += usize::from(member.is_local());
        self.order.insert((stamp, member.id), member);
        true
    }

    /// Removes `member`; `false` if it was not in.
    pub fn remove(&mut self, member: MemberId) -> bool {
        let Some(stamp) = self.stamp_of.remove(&member) else {
            return false;
        };
        match self.order.remove(&(stamp, member)) {
            Some(removed) => {
                self.local -= usize::from(removed.is_local());
                true
            }
            None => false,
        }
    }

    pub fn contains(&self, member: MemberId) -> bool {
        self.stamp_of.contains_key(&member)
    }

    /// The entry of `member`, if it is in.
    pub fn get(&self, member: MemberId) -> Option<&Member> {
        let stamp = self.stamp_of.get(&member)?;
        self.order.get(&(*stamp, member))
    }

    /// When `member` arrived, if it is in.
    pub fn stamp(&self, member: MemberId) -> Option<Stamp> {
        self.stamp_of.get(&member).copied()
    }

    /// Members connected to this node.
    pub fn local_len(&self) -> usize {
        self.local
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

    /// Members connected to this node as receivers, oldest first.
    pub fn local_recipients(&self) -> impl Iterator<Item = Recipient> + '_ {
        self.order.values().filter_map(Member::recipient)
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
        Member { id: MemberId(id), place: Place::Here(endpoint), name: name.into(), dialect: Dialect::Events }
    }

    fn at(seq: u64) -> Stamp {
        Stamp { micros: 0, node: 0, seq }
    }

    #[test]
    fn roster_keeps_arrival_order() {
        let mut roster = Roster::default();
        assert!(roster.insert(at(5), member(1, "a")));
        assert!(roster.insert(at(7), member(2, "b")));
        assert!(!roster.insert(at(9), member(1, "a")));
        assert!(roster.insert(at(8), member(3, "c")));
        assert_eq!(roster.names(), ["a", "b", "c"].map(Rc::from).to_vec());
        assert!(roster.remove(MemberId(2)));
        assert!(!roster.remove(MemberId(2)));
        assert_eq!(roster.names(), ["a", "c"].map(Rc::from).to_vec());
        assert_eq!(roster.len(), 2);
        assert!(roster.contains(MemberId(3)));
        assert!(!roster.contains(MemberId(4)));
        assert_eq!(roster.get(MemberId(3)).map(|m| &*m.name), Some("c"));
    }

    #[test]
    fn remote_members_are_listed_but_never_receivers() {
        let mut roster = Roster::default();
        assert!(roster.insert(at(2), member(1, "here")));
        let remote =
            Member { id: MemberId(2), place: Place::Node("b".into()), name: "there".into(), dialect: Dialect::Events };
        assert!(roster.insert(Stamp { micros: 0, node: 0, seq: 1 }, remote));
        assert_eq!(roster.names(), ["there", "here"].map(Rc::from).to_vec());
        assert_eq!(roster.local_len(), 1);
        assert_eq!(roster.local_recipients().map(|r| r.member).collect::<Vec<_>>(), [MemberId(1)]);
        assert!(roster.remove(MemberId(2)));
        assert!(roster.remove(MemberId(1)));
        assert_eq!(roster.local_len(), 0);
    }

    #[test]
    fn equal_stamps_do_not_overwrite_each_other() {
        let mut roster = Roster::default();
        assert!(roster.insert(at(1), member(1, "a")));
        assert!(roster.insert(at(1), member(2, "b")));
        assert_eq!(roster.len(), 2);
        assert!(roster.remove(MemberId(1)));
        assert_eq!(roster.names(), ["b"].map(Rc::from).to_vec());
    }
}
