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
//! At the end everyone disconnects. Invariants: no panic; every delivery
//! goes to at least one attached connection, each at most once, JSON
//! contents only to JSON users and legacy ones only to legacy users; every
//! JSON content is an object with a string `type`; every legacy content is
//! one line (no `\n`, no `\r`); `/quit` closes only attached connections;
//! once all have left, the hub holds no user, room or session.

use std::collections::HashMap;

use serde_json::Value;
use soket::chat::{ChatConfig, ClientKind, Hub, Outbox};
use soket::timers::ConnId;

const ALICE: ConnId = ConnId { slot: 1, generation: 1 };
const BOB: ConnId = ConnId { slot: 2, generation: 1 };
const CAROL: ConnId = ConnId { slot: 3, generation: 1 };
/// Small, so `too_large` is reachable.
const MAX_LINE: usize = 256;

struct World {
    hub: Hub,
    out: Outbox,
    attached: HashMap<ConnId, ClientKind>,
}

impl World {
    fn attach(&mut self, conn: ConnId, kind: ClientKind) {
        self.hub.attach(conn, kind, "/");
        self.attached.insert(conn, kind);
    }

    fn detach(&mut self, conn: ConnId) {
        self.attached.remove(&conn);
        self.hub.detach(conn, &mut self.out);
        self.check();
    }

    fn json(&mut self, conn: ConnId, text: &str) {
        self.hub.handle_json(conn, text, &mut self.out);
        self.check();
    }

    fn legacy(&mut self, conn: ConnId, line: &[u8]) {
        if line.len() > MAX_LINE {
            self.hub.legacy_too_large(conn, &mut self.out);
        } else {
            self.hub.handle_legacy(conn, line, &mut self.out);
        }
        self.check();
    }

    /// Checks and empties the outbox.
    fn check(&mut self) {
        for delivery in &self.out.deliveries {
            assert!(!delivery.recipients.is_empty(), "a delivery to nobody");
            let mut seen = Vec::new();
            for conn in &delivery.recipients {
                assert!(!seen.contains(conn), "{conn:?} gets one delivery twice");
                seen.push(*conn);
                let kind = self.attached.get(conn).unwrap_or_else(|| panic!("delivery to unattached {conn:?}"));
                if delivery.content.is_legacy() {
                    assert!(kind.is_legacy(), "legacy content to {conn:?}");
                } else {
                    assert_eq!(*kind, ClientKind::Json, "JSON content to {conn:?}");
                }
            }
            let text = delivery.content.text();
            if delivery.content.is_legacy() {
                assert!(!text.contains(['\n', '\r']), "legacy content {text:?} is not one line");
            } else {
                let value: Value =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("server JSON {text:?} does not parse: {e}"));
                let object = value.as_object().unwrap_or_else(|| panic!("server JSON {text:?} is not an object"));
                assert!(object.get("type").is_some_and(Value::is_string), "no string type in {text:?}");
            }
        }
        for conn in &self.out.closes {
            assert!(self.attached.contains_key(conn), "close for unattached {conn:?}");
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
    world.attach(ALICE, ClientKind::Json);
    world.attach(BOB, ClientKind::Json);
    world.attach(CAROL, ClientKind::LegacyTcp);
    world.json(ALICE, r#"{"type":"hello","name":"alice"}"#);
    world.json(BOB, r#"{"type":"hello","name":"bob"}"#);
    world.json(BOB, r#"{"type":"join","room":"r"}"#);
    world.legacy(CAROL, b"carol");
    world.legacy(CAROL, b"/join r");
    assert_eq!(world.hub.users(), 3);

    for message in data.split(|&b| b == 0) {
        match message {
            [1, json @ ..] => world.json(BOB, &String::from_utf8_lossy(json)),
            [2, lines @ ..] => {
                for line in lines.split(|&b| b == b'\n') {
                    world.legacy(CAROL, line.strip_suffix(b"\r").unwrap_or(line));
                }
            }
            [3] => world.detach(ALICE),
            [4] => world.attach(ALICE, ClientKind::Json),
            json => world.json(ALICE, &String::from_utf8_lossy(json)),
        }
    }

    for conn in [ALICE, BOB, CAROL] {
        world.detach(conn);
    }
    assert_eq!((world.hub.users(), world.hub.rooms(), world.hub.attached()), (0, 0, 0), "left behind");
}
