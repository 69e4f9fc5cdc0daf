//! A STOMP connection's subscriptions: what each destination means in
//! soket's world, the ack mode, and the messages a `client` or
//! `client-individual` subscription still owes an ACK for (bounded).

use std::collections::VecDeque;
use std::rc::Rc;

use super::render::{ERRORS, EVENTS, PRESENCE, PRIVATE, TOPIC_PREFIX};
use crate::chat::{ChatError, normalize_room};
use crate::proto::stomp::{self, Command, Version};

/// What a subscription receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/topic/ROOM`: soket room ROOM (NFC).
    Room(Rc<str>),
    /// `/topic/presence`: the online list.
    Presence,
    /// `/user/queue/private`: private messages to this user.
    Private,
    /// `/user/queue/errors`: the broker's refusals of this client's requests.
    Errors,
    /// `/user/queue/events`: custom events.
    Events,
}

impl Target {
    /// The target of a SUBSCRIBE `destination`; a room must follow the room rules.
    pub fn parse(destination: &str) -> Result<Target, (ChatError, String)> {
        match destination {
            PRESENCE => Ok(Target::Presence),
            PRIVATE => Ok(Target::Private),
            ERRORS => Ok(Target::Errors),
            EVENTS => Ok(Target::Events),
            _ => match destination.strip_prefix(TOPIC_PREFIX) {
                Some(room) => match normalize_room(room) {
                    Some(room) => Ok(Target::Room(room.into())),
                    None => Err((ChatError::RoomInvalid, room.to_owned())),
                },
                None => Err((ChatError::RoomInvalid, destination.to_owned())),
            },
        }
    }
}

/// STOMP's `ack` header of a SUBSCRIBE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckMode {
    Auto,
    /// An ACK acknowledges its message and every earlier one of the subscription.
    Client,
    /// An ACK acknowledges its message only.
    ClientIndividual,
}

impl AckMode {
    pub fn parse(value: Option<&str>) -> Option<AckMode> {
        match value {
            None | Some("auto") => Some(AckMode::Auto),
            Some("client") => Some(AckMode::Client),
            Some("client-individual") => Some(AckMode::ClientIndividual),
            Some(_) => None,
        }
    }
}

/// One subscription.
#[derive(Debug)]
pub struct Subscription {
    pub id: Box<str>,
    pub target: Target,
    pub ack: AckMode,
    /// The start of every MESSAGE frame it gets: the command line and the
    /// `subscription` header, escaped for the connection's version.
    pub head: Box<[u8]>,
    /// Message ids awaiting an ACK or NACK, oldest first (ids only grow).
    unacked: VecDeque<u64>,
}

impl Subscription {
    /// A subscription `id` to `target`; `None` if the id cannot be written
    /// back in a header of `version` (it came in one, so only an empty id).
    pub fn new(id: &str, target: Target, ack: AckMode, version: Version) -> Option<Subscription> {
        let mut head = Vec::with_capacity(24 + id.len());
        // A frame with one header and no body: the command line and the
        // header line are what this subscription's MESSAGEs start with.
        stomp::write_frame(&mut head, Command::Message, &[("subscription", id)], b"", version).ok()?;
        head.truncate(head.len() - 2);
        Some(Subscription { id: id.into(), target, ack, head: head.into(), unacked: VecDeque::new() })
    }

    /// Whether a message for `target` goes to this subscription.
    pub fn wants(&self, target: &Target) -> bool {
        self.target == *target
    }

    /// Records a message sent that awaits an ACK; false if `max` are waiting already.
    pub fn expect_ack(&mut self, message_id: u64, max: usize) -> bool {
        if self.ack == AckMode::Auto {
            return true;
        }
        if self.unacked.len() >= max {
            return false;
        }
        self.unacked.push_back(message_id);
        true
    }

    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// Settles `message_id` (and in `client` mode every earlier one);
    /// false if this subscription was not waiting for it.
    pub fn settle(&mut self, message_id: u64) -> bool {
        let Some(index) = self.unacked.iter().position(|&id| id == message_id) else {
            return false;
        };
        match self.ack {
            AckMode::Client => drop(self.unacked.drain(..=index)),
            _ => drop(self.unacked.remove(index)),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        assert_eq!(Target::parse("/topic/lobby"), Ok(Target::Room("lobby".into())));
        assert_eq!(Target::parse("/topic/cafe\u{301}"), Ok(Target::Room("caf\u{e9}".into())));
        assert_eq!(Target::parse("/topic/presence"), Ok(Target::Presence));
        assert_eq!(Target::parse("/user/queue/private"), Ok(Target::Private));
        assert_eq!(Target::parse("/user/queue/errors"), Ok(Target::Errors));
        assert_eq!(Target::parse("/user/queue/events"), Ok(Target::Events));
        assert!(Target::parse("/topic/a..b").is_err());
        assert!(Target::parse("/topic/").is_err());
        assert!(Target::parse("/queue/x").is_err());
        assert!(Target::parse("/user/bob").is_err());
    }

    #[test]
    fn the_head_is_escaped_for_the_version() {
        let sub = Subscription::new("a:b", Target::Private, AckMode::Auto, Version::V1_2).expect("representable");
        assert_eq!(&*sub.head, b"MESSAGE\nsubscription:a\\cb\n");
        let sub = Subscription::new("sub-0", Target::Private, AckMode::Auto, Version::V1_0).expect("representable");
        assert_eq!(&*sub.head, b"MESSAGE\nsubscription:sub-0\n");
    }

    #[test]
    fn client_acks_are_cumulative_and_individual_ones_are_not() {
        let mut client = Subscription::new("1", Target::Private, AckMode::Client, Version::V1_2).expect("ok");
        for id in 1..=4 {
            assert!(client.expect_ack(id, 4));
        }
        assert!(!client.expect_ack(5, 4), "bounded");
        assert!(client.settle(3));
        assert_eq!(client.unacked(), 1);
        assert!(!client.settle(2), "already settled");

        let mut individual =
            Subscription::new("2", Target::Private, AckMode::ClientIndividual, Version::V1_2).expect("ok");
        for id in 1..=3 {
            assert!(individual.expect_ack(id, 8));
        }
        assert!(individual.settle(2));
        assert_eq!(individual.unacked(), 2);
        assert!(individual.settle(1) && individual.settle(3));
        assert_eq!(individual.unacked(), 0);

        let mut auto = Subscription::new("3", Target::Private, AckMode::Auto, Version::V1_2).expect("ok");
        assert!(auto.expect_ack(1, 0), "auto subscriptions owe nothing");
        assert_eq!(auto.unacked(), 0);
    }
}
