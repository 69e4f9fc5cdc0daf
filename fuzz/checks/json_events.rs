//! `json_events`: arbitrary requests into a hub with three users.
//!
//! Setup: JSON users `alice` (A) and `bob` (B) and legacy TCP user `carol` (L)
//! in namespace `/`, bob and carol also in room `r`. The input is split at
//! NUL bytes into messages, each decoded with `from_utf8_lossy`:
//!
//! - starting with `\x01`: a JSON text from bob;
//! - starting with `\x02`: legacy lines from carol (split at `\n`, a trailing
//!   `\r` dropped, over `max_line` reported as too large, as the codec does);
//! - `\x03`: alice disconnects; `\x04`: alice reconnects (unregistered);
//! - anything else: a JSON text from alice.
//!
//! Requests go through the apps' parsers, events through their renderers.
//! At the end everyone disconnects. Invariants: no panic; every delivery
//! goes to at least one attached member, each at most once; custom events
//! only to JSON members; every JSON rendering each recipient gets is an
//! object with a string `type`; every legacy rendering is one line (no
//! `\n`, no `\r`); `/quit` closes only attached members; once all have
//! left, the hub holds no user, room or member.

use std::collections::HashMap;

use serde_json::Value;
use soket::app::{json_chat, line_chat};
use soket::chat::{ChatConfig, Dialect, Endpoint, Event, Hub, MemberId, Outbox};
use soket::ids::ConnId;

/// Small, so `too_large` is reachable.
const MAX_LINE: usize = 256;
/// The JSON parser's size limit here (the connection layer passes `--max-message`).
const MAX_MESSAGE: usize = 1 << 20;

struct World {
    hub: Hub,
    out: Outbox,
    attached: HashMap<MemberId, Dialect>,
}

impl World {
    fn attach(&mut self, slot: usize, dialect: Dialect) -> MemberId {
        let member = self.hub.attach(Endpoint::Conn(ConnId { slot, generation: 1 }), dialect, "/");
        self.attached.insert(member, dialect);
        member
    }

    fn detach(&mut self, member: MemberId) {
        self.attached.remove(&member);
        self.hub.detach(member, &mut self.out);
        self.check();
    }

    fn json(&mut self, member: MemberId, text: &str) {
        json_chat::handle_text(&mut self.hub, member, text, MAX_MESSAGE, &mut self.out);
        self.check();
    }

    fn legacy(&mut self, member: MemberId, line: &[u8]) {
        if line.len() > MAX_LINE {
            self.hub.reject(member, soket::chat::ChatError::TooLarge, None, None, &mut self.out);
        } else {
            line_chat::handle_line(&mut self.hub, member, line, &mut self.out);
        }
        self.check();
    }

    /// Checks and empties the outbox.
    fn check(&mut self) {
        for delivery in &self.out.deliveries {
            assert!(!delivery.recipients.is_empty(), "a delivery to nobody");
            let json = json_chat::render::render(&delivery.event);
            let line = line_chat::render::render(&delivery.event);
            let mut seen = Vec::new();
            for to in &delivery.recipients {
                assert!(!seen.contains(&to.member), "{to:?} gets one delivery twice");
                seen.push(to.member);
                let dialect = self.attached.get(&to.member).unwrap_or_else(|| panic!("delivery to unattached {to:?}"));
                if matches!(delivery.event, Event::Custom { .. }) {
                    assert_eq!(*dialect, Dialect::Events, "custom event to {to:?}");
                }
                let rendered = match dialect {
                    Dialect::Events => json.as_ref(),
                    Dialect::Lines => line.as_ref(),
                };
                let rendered = rendered.unwrap_or_else(|| panic!("{:?} has no rendering for {to:?}", delivery.event));
                let text = String::from_utf8(rendered.payload(to.omit)).expect("renderings are UTF-8");
                if *dialect == Dialect::Lines {
                    assert!(!text.contains(['\n', '\r']), "legacy content {text:?} is not one line");
                } else {
                    let value: Value = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("server JSON {text:?} does not parse: {e}"));
                    let object = value.as_object().unwrap_or_else(|| panic!("server JSON {text:?} is not an object"));
                    assert!(object.get("type").is_some_and(Value::is_string), "no string type in {text:?}");
                }
            }
        }
        for to in &self.out.closes {
            assert!(self.attached.contains_key(&to.member), "close for unattached {to:?}");
        }
        self.out.clear();
    }
}

pub fn run(data: &[u8]) {
    let mut world = World {
        hub: Hub::new(ChatConfig { max_line_bytes: MAX_LINE, ..ChatConfig::default() }),
        out: Outbox::default(),
        attached: HashMap::new(),
    };
    let mut alice = world.attach(1, Dialect::Events);
    let bob = world.attach(2, Dialect::Events);
    let carol = world.attach(3, Dialect::Lines);
    world.json(alice, r#"{"type":"hello","name":"alice"}"#);
    world.json(bob, r#"{"type":"hello","name":"bob"}"#);
    world.json(bob, r#"{"type":"join","room":"r"}"#);
    world.legacy(carol, b"carol");
    world.legacy(carol, b"/join r");
    assert_eq!(world.hub.users(), 3);

    for message in data.split(|&b| b == 0) {
        match message {
            [1, json @ ..] => world.json(bob, &String::from_utf8_lossy(json)),
            [2, lines @ ..] => {
                for line in lines.split(|&b| b == b'\n') {
                    world.legacy(carol, line.strip_suffix(b"\r").unwrap_or(line));
                }
            }
            [3] => world.detach(alice),
            [4] => {
                // A reconnect is a new member (while alice is still there, nothing happens).
                if !world.attached.contains_key(&alice) {
                    alice = world.attach(1, Dialect::Events);
                }
            }
            json => world.json(alice, &String::from_utf8_lossy(json)),
        }
    }

    for member in [alice, bob, carol] {
        world.detach(member);
    }
    assert_eq!((world.hub.users(), world.hub.rooms(), world.hub.attached()), (0, 0, 0), "left behind");
}
