//! Hub scenarios: requests in through the apps' parsers, the outbox
//! rendered per recipient by the apps' renderers and checked.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;
use crate::app::{json_chat, line_chat};
use crate::chat::room::Namespace;
use crate::ids::ConnId;

const SLASH: &str = "/";
/// The JSON size limit the parser gets here: the protocol's `--max-message` default.
const MAX_MESSAGE: usize = 16 << 20;

fn endpoint(slot: usize) -> Endpoint {
    Endpoint::Conn(ConnId { slot, generation: 1 })
}

/// A hub plus the messages each call produced, flattened per recipient.
/// Slots stand for connections; each runs the app of its dialect, as the
/// connection layer does.
struct World<D: Directory = ClaimQueue> {
    hub: Hub<D>,
    out: Outbox,
    slots: HashMap<usize, (MemberId, Dialect)>,
    slot_of: HashMap<MemberId, usize>,
    /// Renderings made, per dialect: one per event that has receivers of it.
    renders: [usize; 2],
}

/// One message as one recipient sees it.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    Line(String),
    Json(Value),
}

type Log = Vec<(usize, Got)>;

impl World {
    fn new() -> World {
        World::with_limit(65536)
    }

    fn with_limit(max_line_bytes: usize) -> World {
        World::with_config(ChatConfig { max_line_bytes, ..ChatConfig::default() })
    }

    fn with_config(config: ChatConfig) -> World {
        World::with_hub(Hub::new(config))
    }
}

impl<D: Directory> World<D> {
    fn with_hub(hub: Hub<D>) -> World<D> {
        World { hub, out: Outbox::default(), slots: HashMap::new(), slot_of: HashMap::new(), renders: [0; 2] }
    }

    fn attach(&mut self, slot: usize, dialect: Dialect, namespace: &str) -> MemberId {
        let member = self.hub.attach(endpoint(slot), dialect, namespace);
        self.slots.insert(slot, (member, dialect));
        self.slot_of.insert(member, slot);
        member
    }

    fn member(&self, slot: usize) -> MemberId {
        self.slots.get(&slot).map(|(m, _)| *m).unwrap_or(MemberId(u64::MAX))
    }

    fn dialect(&self, slot: usize) -> Option<Dialect> {
        self.slots.get(&slot).map(|(_, d)| *d)
    }

    /// Renders every delivery for each recipient with its dialect's renderer:
    /// per delivery, the JSON receivers first, then the legacy ones (the
    /// order two separate per-format deliveries had; only each receiver's
    /// own order is observable).
    fn take(&mut self) -> Log {
        let mut log = Vec::new();
        for delivery in &self.out.deliveries {
            assert!(!delivery.recipients.is_empty());
            let mut seen = std::collections::HashSet::new();
            assert!(delivery.recipients.iter().all(|to| seen.insert(to.member)), "a recipient twice");
            for dialect in [Dialect::Events, Dialect::Lines] {
                let mut rendered = None;
                for to in &delivery.recipients {
                    let slot = *self.slot_of.get(&to.member).expect("a delivery to an attached member");
                    assert_eq!(to.endpoint, endpoint(slot));
                    if self.dialect(slot) != Some(dialect) {
                        continue;
                    }
                    assert_eq!(to.omit.is_some(), matches!(delivery.event, Event::Presence { .. }));
                    let rendered = rendered.get_or_insert_with(|| {
                        self.renders[usize::from(dialect == Dialect::Lines)] += 1;
                        match dialect {
                            Dialect::Events => json_chat::render::render(&delivery.event),
                            Dialect::Lines => line_chat::render::render(&delivery.event),
                        }
                    });
                    let Some(rendered) = rendered else {
                        panic!("{:?} to a legacy member", delivery.event);
                    };
                    let text = String::from_utf8(rendered.payload(to.omit)).expect("UTF-8 out");
                    let got = match dialect {
                        Dialect::Lines => {
                            assert!(!text.contains(['\n', '\r']), "{text:?}");
                            Got::Line(text)
                        }
                        Dialect::Events => Got::Json(serde_json::from_str(&text).expect("valid JSON out")),
                    };
                    log.push((slot, got));
                }
            }
        }
        self.out.deliveries.clear();
        log
    }

    fn legacy(&mut self, slot: usize, name: &str) -> Log {
        self.attach(slot, Dialect::Lines, SLASH);
        self.line(slot, name)
    }

    fn json_in(&mut self, slot: usize, namespace: &str, name: &str) -> Log {
        self.attach(slot, Dialect::Events, namespace);
        self.send(slot, json!({"type": "hello", "name": name}))
    }

    fn json(&mut self, slot: usize, name: &str) -> Log {
        self.json_in(slot, SLASH, name)
    }

    /// One legacy message through the line app; a JSON member's connection
    /// never runs it, so it is ignored there.
    fn line(&mut self, slot: usize, text: &str) -> Log {
        self.line_bytes(slot, text.as_bytes());
        self.take()
    }

    fn line_bytes(&mut self, slot: usize, bytes: &[u8]) {
        if self.dialect(slot) == Some(Dialect::Events) {
            return;
        }
        let member = self.member(slot);
        line_chat::handle_line(&mut self.hub, member, bytes, &mut self.out);
    }

    /// The line codec discarded a message over `--max-line`.
    fn too_large(&mut self, slot: usize) -> Log {
        self.hub.reject(self.member(slot), ChatError::TooLarge, None, None, &mut self.out);
        self.take()
    }

    fn send(&mut self, slot: usize, value: Value) -> Log {
        self.raw(slot, &value.to_string())
    }

    /// One JSON text through the JSON app; ignored for a legacy member.
    fn raw(&mut self, slot: usize, text: &str) -> Log {
        self.raw_in(slot, text);
        self.take()
    }

    fn raw_in(&mut self, slot: usize, text: &str) {
        if self.dialect(slot) == Some(Dialect::Lines) {
            return;
        }
        let member = self.member(slot);
        json_chat::handle_text(&mut self.hub, member, text, MAX_MESSAGE, &mut self.out);
    }

    /// `?name=` at the upgrade: a `hello` without an id.
    fn hello_from_query(&mut self, slot: usize, name: &str) -> Log {
        let hello = Request::new(Command::Hello { name: name.into() });
        self.hub.handle(self.member(slot), hello, &mut self.out);
        self.take()
    }

    fn detach(&mut self, slot: usize) -> Log {
        self.hub.detach(self.member(slot), &mut self.out);
        self.take()
    }

    fn closes(&self) -> Vec<usize> {
        self.out.closes.iter().map(|r| self.slot_of.get(&r.member).copied().unwrap_or(usize::MAX)).collect()
    }
}

fn line(slot: usize, text: &str) -> (usize, Got) {
    (slot, Got::Line(text.to_owned()))
}

fn js(slot: usize, value: Value) -> (usize, Got) {
    (slot, Got::Json(value))
}

/// What `slot` got, in order.
fn to(log: &Log, slot: usize) -> Vec<Got> {
    log.iter().filter(|(s, _)| *s == slot).map(|(_, g)| g.clone()).collect()
}

/// The error code `slot` got, asserting it got exactly one message.
fn code(log: &Log, slot: usize) -> String {
    match log.as_slice() {
        [(s, Got::Json(v))] if *s == slot => v["code"].as_str().unwrap_or("").to_owned(),
        [(s, Got::Line(l))] if *s == slot => l.split(' ').nth(1).unwrap_or("").to_owned(),
        other => panic!("expected one error to {slot}, got {other:?}"),
    }
}

#[test]
fn founding_scenario() {
    let mut w = World::new();
    assert_eq!(w.legacy(1, "alice"), vec![line(1, "3$*$*3")]);
    assert_eq!(w.legacy(2, "bob"), vec![line(2, "3$*$*3alice$"), line(1, "3$*$*3bob$")]);

    assert_eq!(w.line(1, "bob..444..alice : hello"), vec![line(2, "alice : hello")]);
    // No spoofing: the part before " : " is replaced by the registered name.
    assert_eq!(w.line(2, "alice..444..mallory : hi there"), vec![line(1, "bob : hi there")]);
    assert_eq!(w.line(2, "alice..444..no prefix"), vec![line(1, "bob : no prefix")]);
    assert_eq!(w.line(1, "alice..444..me : to myself"), vec![line(1, "alice : to myself")]);

    let joined = w.json(3, "carol");
    assert_eq!(
        joined,
        vec![
            js(3, json!({"type":"welcome","name":"carol","namespace":"/","users":["alice","bob"],"rooms":["lobby"]})),
            line(1, "3$*$*3bob$carol$"),
            line(2, "3$*$*3alice$carol$"),
        ]
    );
    assert_eq!(
        w.line(1, "carol..444..alice : hey"),
        vec![js(3, json!({"type":"private","from":"alice","text":"hey"}))]
    );
    assert_eq!(w.send(3, json!({"type":"private","to":"bob","text":"yo\nthere"})), vec![line(2, "carol : yo there")]);
    assert_eq!(
        w.line(2, "hello all"),
        vec![
            js(3, json!({"type":"message","room":"lobby","from":"bob","text":"hello all"})),
            line(1, "#lobby bob : hello all"),
        ]
    );
    assert_eq!(
        w.send(3, json!({"type":"say","text":"hi"})),
        vec![line(1, "#lobby carol : hi"), line(2, "#lobby carol : hi")]
    );

    // A fourth user, JSON: the existing JSON user gets a users push.
    let dave = w.json(4, "dave");
    assert_eq!(to(&dave, 3), vec![Got::Json(json!({"type":"users","users":["alice","bob","dave"]}))]);
    assert_eq!(to(&dave, 1), vec![Got::Line("3$*$*3bob$carol$dave$".into())]);
    assert_eq!(w.hub.users(), 4);
    assert_eq!(w.hub.rooms(), 1);
}

#[test]
fn legacy_errors() {
    let mut w = World::new();
    w.attach(1, Dialect::Lines, SLASH);
    assert_eq!(w.line(1, "bad name"), vec![line(1, "!ERR name_invalid bad name")]);
    assert_eq!(w.line(1, ""), vec![line(1, "!ERR name_invalid")]);
    assert_eq!(w.line(1, "/join r1"), vec![line(1, "!ERR name_invalid /join r1")]);
    assert_eq!(w.line(1, "alice"), vec![line(1, "3$*$*3")]);
    w.attach(2, Dialect::Lines, SLASH);
    assert_eq!(w.line(2, "alice"), vec![line(2, "!ERR name_taken alice")]);
    assert_eq!(w.line(2, "bob").len(), 2, "the next message is tried as a name");

    assert_eq!(w.line(1, "zed..444..hi"), vec![line(1, "!ERR no_such_user zed")]);
    assert_eq!(w.line(1, "/join"), vec![line(1, "!ERR missing_field")]);
    assert_eq!(w.line(1, "/msg r1"), vec![line(1, "!ERR missing_field")]);
    assert_eq!(w.line(1, "/dance"), vec![line(1, "!ERR unknown_command /dance")]);
    assert_eq!(w.line(1, "/leave lobby"), vec![line(1, "!ERR room_invalid lobby")]);
    assert_eq!(w.line(1, "/join a..b"), vec![line(1, "!ERR room_invalid a..b")]);
    assert_eq!(w.line(1, "/who nowhere"), vec![line(1, "!ERR no_such_room nowhere")]);
    assert_eq!(w.line(1, "/msg nowhere hi"), vec![line(1, "!ERR no_such_room nowhere")]);
    assert_eq!(w.line(1, "/leave nowhere"), vec![line(1, "!ERR no_such_room nowhere")]);
    w.line(2, "/join r1");
    assert_eq!(w.line(1, "/msg r1 hi"), vec![line(1, "!ERR not_in_room r1")]);
    assert_eq!(w.line(1, "/leave r1"), vec![line(1, "!ERR not_in_room r1")]);
    assert_eq!(w.too_large(1), vec![line(1, "!ERR too_large")]);
    // Empty messages of a registered user are ignored.
    assert_eq!(w.line(1, ""), vec![]);
}

#[test]
fn json_errors() {
    let mut w = World::with_limit(10);
    w.attach(1, Dialect::Events, SLASH);
    assert_eq!(code(&w.raw(1, "{not json"), 1), "bad_json");
    assert_eq!(code(&w.raw(1, "[1,2]"), 1), "bad_json");
    assert_eq!(code(&w.raw(1, r#""hello""#), 1), "bad_json");
    assert_eq!(code(&w.send(1, json!({"name":"x"})), 1), "missing_field");
    assert_eq!(code(&w.send(1, json!({"type":7})), 1), "missing_field");
    assert_eq!(code(&w.send(1, json!({"type":"fly"})), 1), "unknown_type");
    assert_eq!(code(&w.send(1, json!({"type":"say","text":"hi"})), 1), "not_registered");
    assert_eq!(code(&w.send(1, json!({"type":"rooms"})), 1), "not_registered");
    assert_eq!(code(&w.send(1, json!({"type":"hello"})), 1), "missing_field");
    assert_eq!(code(&w.send(1, json!({"type":"hello","name":"a b"})), 1), "name_invalid");
    w.json(2, "bob");
    assert_eq!(code(&w.send(1, json!({"type":"hello","name":"bob"})), 1), "name_taken");
    assert_eq!(w.send(1, json!({"type":"hello","name":"alice"})).len(), 2);
    assert_eq!(code(&w.send(1, json!({"type":"hello","name":"alice2"})), 1), "already_registered");
    assert_eq!(code(&w.send(1, json!({"type":"say"})), 1), "missing_field");
    assert_eq!(code(&w.send(1, json!({"type":"say","text":["x"]})), 1), "missing_field");
    assert_eq!(code(&w.send(1, json!({"type":"private","to":"zed","text":"x"})), 1), "no_such_user");
    assert_eq!(code(&w.send(1, json!({"type":"private","to":"a b","text":"x"})), 1), "no_such_user");
    assert_eq!(code(&w.send(1, json!({"type":"say","room":"nowhere","text":"x"})), 1), "no_such_room");
    w.send(2, json!({"type":"join","room":"r1"}));
    assert_eq!(code(&w.send(1, json!({"type":"say","room":"r1","text":"x"})), 1), "not_in_room");
    assert_eq!(code(&w.send(1, json!({"type":"emit","event":"e","room":"r1"})), 1), "not_in_room");
    assert_eq!(code(&w.send(1, json!({"type":"leave","room":"r1"})), 1), "not_in_room");
    assert_eq!(code(&w.send(1, json!({"type":"leave","room":"lobby"})), 1), "room_invalid");
    assert_eq!(code(&w.send(1, json!({"type":"join","room":".r"})), 1), "room_invalid");
    assert_eq!(code(&w.send(1, json!({"type":"who","room":"r/1"})), 1), "room_invalid");
    assert_eq!(code(&w.send(1, json!({"type":"who","room":"gone"})), 1), "no_such_room");
    assert_eq!(code(&w.send(1, json!({"type":"say","text":"01234567890"})), 1), "too_large");
    assert_eq!(code(&w.send(1, json!({"type":"private","to":"bob","text":"01234567890"})), 1), "too_large");
    assert_eq!(w.send(1, json!({"type":"say","text":"0123456789"})).len(), 1, "exactly the limit is fine");
    w.legacy(3, "leg");
    assert_eq!(code(&w.send(1, json!({"type":"emit","event":"e","to":"leg"})), 1), "no_such_user");
    // Errors name the rule and carry a message.
    let log = w.send(1, json!({"type":"who","room":"gone","id":9}));
    let [(1, Got::Json(err))] = log.as_slice() else { panic!("{log:?}") };
    assert_eq!(err["type"], "error");
    assert_eq!(err["id"], 9);
    assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[test]
fn every_error_code_is_reachable() {
    // Ties the table of section 4 to the scenarios above: if a code is added,
    // this list (and a scenario) must grow with it.
    let codes = [
        "bad_json",
        "unknown_type",
        "missing_field",
        "name_invalid",
        "name_taken",
        "already_registered",
        "not_registered",
        "no_such_user",
        "no_such_room",
        "not_in_room",
        "room_invalid",
        "too_large",
        "unknown_command",
    ];
    let mut w = World::with_limit(4);
    let mut seen = std::collections::BTreeSet::new();
    w.attach(1, Dialect::Events, SLASH);
    w.attach(2, Dialect::Lines, SLASH);
    let mut note = |log: Log| {
        for (_, got) in log {
            match got {
                Got::Json(v) => seen.insert(v["code"].as_str().unwrap_or("").to_owned()),
                Got::Line(l) if l.starts_with("!ERR ") => seen.insert(l.split(' ').nth(1).unwrap_or("").to_owned()),
                Got::Line(_) => false,
            };
        }
    };
    note(w.raw(1, "nope"));
    note(w.send(1, json!({"type":"x"})));
    note(w.send(1, json!({})));
    note(w.send(1, json!({"type":"rooms"})));
    note(w.line(2, "a b"));
    note(w.line(2, "ann"));
    note(w.send(1, json!({"type":"hello","name":"ann"})));
    note(w.send(1, json!({"type":"hello","name":"joe"})));
    note(w.send(1, json!({"type":"hello","name":"joe"})));
    note(w.line(2, "zed..444..x"));
    note(w.line(2, "/who r9"));
    note(w.send(1, json!({"type":"join","room":"r1"})));
    note(w.line(2, "/msg r1 hi"));
    note(w.line(2, "/leave lobby"));
    note(w.send(1, json!({"type":"say","text":"12345"})));
    note(w.line(2, "/x"));
    let seen: Vec<&str> = codes.iter().copied().filter(|c| seen.contains(*c)).collect();
    assert_eq!(seen, codes);
}

#[test]
fn rooms_who_and_listing_order() {
    let mut w = World::new();
    w.legacy(1, "alice");
    w.json(2, "bob");
    w.json(3, "carol");
    assert_eq!(w.line(1, "/join r-b"), vec![line(1, "!JOINED r-b alice")]);
    assert_eq!(
        w.send(3, json!({"type":"join","room":"r-b"})),
        vec![js(3, json!({"type":"joined","room":"r-b","name":"carol"})), line(1, "!JOINED r-b carol")]
    );
    let log = w.send(2, json!({"type":"join","room":"r-b","id":1}));
    assert_eq!(
        log,
        vec![
            js(3, json!({"type":"joined","room":"r-b","name":"bob"})),
            js(2, json!({"type":"joined","room":"r-b","name":"bob"})),
            line(1, "!JOINED r-b bob"),
            js(2, json!({"type":"ack","id":1})),
        ]
    );
    // Joining again is a no-op: acknowledged, no second notice.
    assert_eq!(w.send(2, json!({"type":"join","room":"r-b","id":2})), vec![js(2, json!({"type":"ack","id":2}))]);
    assert_eq!(w.line(1, "/join r-b"), vec![]);
    assert_eq!(w.line(1, "/join lobby"), vec![]);
    w.line(1, "/join r-a");
    w.line(1, "/join Zeta");
    w.line(1, "/join été");

    assert_eq!(w.line(2, "/who r-b"), vec![], "a JSON user's legacy line is ignored");
    assert_eq!(w.line(1, "/who r-b"), vec![line(1, "!MEMBERS r-b alice carol bob")]);
    assert_eq!(w.line(1, "/who lobby"), vec![line(1, "!MEMBERS lobby alice bob carol")]);
    assert_eq!(w.line(1, "/rooms"), vec![line(1, "!ROOMS Zeta lobby r-a r-b été")]);
    assert_eq!(
        w.send(3, json!({"type":"who","room":"r-b","id":"w"})),
        vec![js(3, json!({"type":"members","room":"r-b","names":["alice","carol","bob"],"id":"w"}))]
    );
    assert_eq!(
        w.send(3, json!({"type":"rooms"})),
        vec![js(
            3,
            json!({"type":"rooms","rooms":[
                {"name":"Zeta","members":1},
                {"name":"lobby","members":3},
                {"name":"r-a","members":1},
                {"name":"r-b","members":3},
                {"name":"été","members":1},
            ]})
        )]
    );

    // Room messages reach the other members only.
    assert_eq!(
        w.line(1, "/msg r-b hi"),
        vec![
            js(3, json!({"type":"message","room":"r-b","from":"alice","text":"hi"})),
            js(2, json!({"type":"message","room":"r-b","from":"alice","text":"hi"})),
        ]
    );
    assert_eq!(
        w.send(2, json!({"type":"say","room":"r-b","text":"yo"})),
        vec![js(3, json!({"type":"message","room":"r-b","from":"bob","text":"yo"})), line(1, "#r-b bob : yo")]
    );

    // Leaving: remaining members and the leaver; the room goes when empty.
    assert_eq!(
        w.line(1, "/leave r-b"),
        vec![
            js(3, json!({"type":"left","room":"r-b","name":"alice"})),
            js(2, json!({"type":"left","room":"r-b","name":"alice"})),
            line(1, "!LEFT r-b alice"),
        ]
    );
    assert_eq!(w.line(1, "/leave r-a"), vec![line(1, "!LEFT r-a alice")]);
    assert_eq!(w.line(1, "/who r-a"), vec![line(1, "!ERR no_such_room r-a")]);
    assert_eq!(w.hub.rooms(), 4);
}

#[test]
fn namespaces_are_separate_worlds() {
    let mut w = World::new();
    w.legacy(1, "alice");
    let game = w.json_in(2, "/game", "alice");
    assert_eq!(
        game,
        vec![js(2, json!({"type":"welcome","name":"alice","namespace":"/game","users":[],"rooms":["lobby"]}))]
    );
    let log = w.json_in(3, "/game", "bob");
    assert_eq!(to(&log, 1), vec![], "no presence across namespaces");
    assert_eq!(to(&log, 2), vec![Got::Json(json!({"type":"users","users":["bob"]}))]);
    assert_eq!(w.send(3, json!({"type":"say","text":"hi"})).iter().map(|(s, _)| *s).collect::<Vec<_>>(), [2]);
    assert_eq!(w.line(1, "bob..444..hi"), vec![line(1, "!ERR no_such_user bob")]);
    w.send(3, json!({"type":"join","room":"arena"}));
    assert_eq!(w.line(1, "/who arena"), vec![line(1, "!ERR no_such_room arena")]);
    assert_eq!(w.line(1, "/rooms"), vec![line(1, "!ROOMS lobby")]);
    let log = w.send(3, json!({"type":"emit","event":"e"}));
    assert_eq!(log.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [2]);
    assert_eq!((w.hub.users(), w.hub.rooms()), (3, 3));
    w.detach(2);
    w.detach(3);
    assert_eq!((w.hub.users(), w.hub.rooms()), (1, 1));
}

#[test]
fn detach_removes_everywhere_and_pushes_lists() {
    let mut w = World::new();
    w.legacy(1, "alice");
    w.json(2, "bob");
    w.legacy(3, "carol");
    w.line(1, "/join r1");
    w.send(2, json!({"type":"join","room":"r1"}));
    w.line(1, "/join r2");
    w.line(1, "/join solo");
    assert_eq!(w.hub.rooms(), 4);

    let log = w.detach(1);
    assert_eq!(
        log,
        vec![
            js(2, json!({"type":"left","room":"r1","name":"alice"})),
            js(2, json!({"type":"users","users":["carol"]})),
            line(3, "3$*$*3bob$"),
        ]
    );
    assert_eq!((w.hub.users(), w.hub.rooms(), w.hub.attached()), (2, 2, 2));
    assert_eq!(w.detach(1), vec![], "idempotent");
    // The name is free again.
    assert_eq!(w.legacy(4, "alice")[0], line(4, "3$*$*3bob$carol$"));
    w.detach(2);
    w.detach(3);
    w.detach(4);
    assert_eq!((w.hub.users(), w.hub.rooms(), w.hub.attached()), (0, 0, 0));
    // Unregistered connections detach silently.
    w.attach(5, Dialect::Events, SLASH);
    assert_eq!(w.detach(5), vec![]);
    assert_eq!(w.hub.attached(), 0);
}

#[test]
fn quit_closes_after_flushing() {
    let mut w = World::new();
    w.attach(1, Dialect::Lines, SLASH);
    assert_eq!(w.line(1, "/quit"), vec![]);
    assert_eq!(w.closes(), [1]);
    w.out.clear();
    assert_eq!(w.line(1, "alice"), vec![], "input after /quit is ignored");
    assert!(w.out.is_empty());
    w.detach(1);

    w.legacy(2, "bob");
    w.legacy(3, "carol");
    assert_eq!(w.line(2, "/quit"), vec![]);
    assert_eq!(w.closes(), [2]);
    w.out.clear();
    assert_eq!(w.detach(2), vec![line(3, "3$*$*3")]);
    assert!(w.out.closes.is_empty());
}

#[test]
fn nfc_equal_names_are_the_same_name() {
    let mut w = World::new();
    let decomposed = "Rene\u{301}";
    let composed = "Ren\u{e9}";
    assert_eq!(w.legacy(1, decomposed), vec![line(1, "3$*$*3")]);
    assert_eq!(
        w.json(2, "zoe")[0],
        js(2, json!({"type":"welcome","name":"zoe","namespace":"/","users":[composed],"rooms":["lobby"]}))
    );
    w.attach(3, Dialect::Lines, SLASH);
    assert_eq!(w.line(3, composed), vec![line(3, &format!("!ERR name_taken {composed}"))]);
    assert_eq!(code(&w.send(2, json!({"type":"hello","name":composed})), 2), "already_registered");
    assert_eq!(
        w.send(2, json!({"type":"private","to":decomposed,"text":"x"})),
        vec![line(1, "zoe : x")],
        "lookup normalises too"
    );
    // Case-sensitive: another name.
    assert_eq!(w.line(3, "rené").len(), 3);
    // Rooms normalise the same way.
    w.line(1, "/join caf\u{e9}");
    assert_eq!(
        w.send(2, json!({"type":"join","room":"cafe\u{301}"})),
        vec![js(2, json!({"type":"joined","room":"caf\u{e9}","name":"zoe"})), line(1, "!JOINED caf\u{e9} zoe")]
    );
}

#[test]
fn ids_number_string_and_ignored() {
    let mut w = World::new();
    w.attach(1, Dialect::Events, SLASH);
    let welcome = w.send(1, json!({"type":"hello","name":"alice","id":1}));
    assert_eq!(
        welcome,
        vec![js(1, json!({"type":"welcome","name":"alice","namespace":"/","users":[],"rooms":["lobby"],"id":1}))]
    );
    w.json(2, "bob");
    assert_eq!(
        w.send(1, json!({"type":"say","text":"hi","id":"m-1"})),
        vec![
            js(2, json!({"type":"message","room":"lobby","from":"alice","text":"hi"})),
            js(1, json!({"type":"ack","id":"m-1"})),
        ],
        "the ack comes after the effects"
    );
    assert_eq!(w.send(1, json!({"type":"say","text":"hi","id":2.5}))[1], js(1, json!({"type":"ack","id":2.5})));
    for ignored in [json!(true), json!(null), json!([1]), json!({"n": 1})] {
        let log = w.send(1, json!({"type":"say","text":"hi","id":ignored}));
        assert_eq!(log.len(), 1, "no ack for id {ignored}");
        let log = w.send(1, json!({"type":"say","room":"nope","text":"hi","id":ignored}));
        assert_eq!(log, vec![js(1, json!({"type":"error","code":"no_such_room","message":"no such room: nope"}))]);
    }
    assert_eq!(
        w.send(1, json!({"type":"say","room":"nope","text":"hi","id":7})),
        vec![js(1, json!({"type":"error","code":"no_such_room","message":"no such room: nope","id":7}))]
    );
    let log = w.send(1, json!({"type":"rooms","id":"r"}));
    assert_eq!(log, vec![js(1, json!({"type":"rooms","rooms":[{"name":"lobby","members":2}],"id":"r"}))]);
    assert_eq!(code(&w.send(1, json!({"type":"bogus","id":3})), 1), "unknown_type");
    assert_eq!(
        w.send(1, json!({"type":"bogus","id":3}))[0].1,
        Got::Json(json!({"type":"error","code":"unknown_type","message":"unknown message type: bogus","id":3}))
    );
    // A failed hello carries its id too; a private message gets an ack.
    w.attach(3, Dialect::Events, SLASH);
    let log = w.send(3, json!({"type":"hello","name":"bob","id":"h"}));
    let [(3, Got::Json(err))] = log.as_slice() else { panic!("{log:?}") };
    assert_eq!((err["code"].as_str(), err["id"].as_str()), (Some("name_taken"), Some("h")));
    assert_eq!(
        w.send(1, json!({"type":"private","to":"bob","text":"psst","id":0})),
        vec![js(2, json!({"type":"private","from":"alice","text":"psst"})), js(1, json!({"type":"ack","id":0}))]
    );
}

#[test]
fn emit_routing() {
    let mut w = World::new();
    w.json(1, "alice");
    w.json(2, "bob");
    w.legacy(3, "leg");
    w.json(4, "dan");
    w.send(1, json!({"type":"join","room":"r1"}));
    w.send(2, json!({"type":"join","room":"r1"}));
    w.line(3, "/join r1");

    // Whole namespace: JSON users only, never the sender; data null when absent.
    assert_eq!(
        w.send(1, json!({"type":"emit","event":"typing"})),
        vec![
            js(2, json!({"type":"event","event":"typing","data":null,"from":"alice"})),
            js(4, json!({"type":"event","event":"typing","data":null,"from":"alice"})),
        ]
    );
    // A room: its JSON members but the sender, with "room".
    assert_eq!(
        w.send(1, json!({"type":"emit","event":"move","data":{"x":[1,2]},"room":"r1","id":5})),
        vec![
            js(2, json!({"type":"event","event":"move","data":{"x":[1,2]},"from":"alice","room":"r1"})),
            js(1, json!({"type":"ack","id":5})),
        ]
    );
    // One user.
    assert_eq!(
        w.send(1, json!({"type":"emit","event":"poke","data":"hi","to":"dan"})),
        vec![js(4, json!({"type":"event","event":"poke","data":"hi","from":"alice"}))]
    );
    assert_eq!(code(&w.send(1, json!({"type":"emit","event":"poke","to":"leg"})), 1), "no_such_user");
    assert_eq!(code(&w.send(1, json!({"type":"emit","event":"poke","to":"nobody"})), 1), "no_such_user");
    assert_eq!(code(&w.send(1, json!({"type":"emit","event":"poke","room":"gone"})), 1), "no_such_room");
    assert_eq!(code(&w.send(1, json!({"type":"emit","event":"poke","room":"r1","to":7})), 1), "missing_field");
    assert_eq!(code(&w.send(1, json!({"type":"emit","event":1})), 1), "missing_field");
    assert_eq!(
        w.send(1, json!({"type":"emit","event":"self","to":"alice","id":1})),
        vec![js(1, json!({"type":"ack","id":1}))]
    );
    // Legacy users never receive custom events, even when alone with the sender.
    let log = w.send(4, json!({"type":"emit","event":"e","room":"lobby"}));
    assert!(log.iter().all(|(slot, _)| *slot != 3), "{log:?}");
}

/// Registers `slot` as `name` and puts it in `room` without the presence
/// pushes: a thousand announced joins render O(users³) bytes of lists, which
/// is the protocol's cost but too slow for a debug-build unit test.
fn seat(w: &mut World, slot: usize, dialect: Dialect, name: &str, room: &str) {
    let id = w.attach(slot, dialect, SLASH);
    let hub = &mut w.hub;
    let name: Rc<str> = name.into();
    let seq = hub.stamp();
    let member = Member { id, place: Place::Here(endpoint(slot)), name: name.clone(), dialect };
    let ns = hub.namespaces.entry(SLASH.into()).or_default();
    ns.by_name.insert(name.clone(), id);
    ns.presence.insert(seq, member.clone());
    ns.rooms.entry(LOBBY.into()).or_default().insert(seq, member.clone());
    ns.rooms.entry(room.into()).or_default().insert(seq, member);
    let rooms = BTreeSet::from([Rc::from(LOBBY), Rc::from(room)]);
    let session = hub.members.get_mut(&id).expect("just attached");
    session.state = State::Registered(Box::new(User { name, rooms }));
}

#[test]
fn big_room_renders_once() {
    let mut w = World::new();
    for slot in 0..1000 {
        seat(&mut w, slot, Dialect::Events, &format!("j{slot}"), "big");
    }
    assert_eq!(w.legacy(1000, "speaker").len(), 1001);
    w.line(1000, "/join big");
    w.line_bytes(1000, b"/msg big hello");
    assert_eq!(w.out.deliveries.len(), 1, "one event");
    assert_eq!(w.out.deliveries[0].recipients.len(), 1000);
    assert!(matches!(&w.out.deliveries[0].event, Event::Message { text, .. } if &**text == "hello"));
    w.renders = [0; 2];
    assert_eq!(w.take().len(), 1000);
    assert_eq!(w.renders, [1, 0], "rendered once, for the JSON receivers only");

    // Mixed: still one event, rendered once per format.
    for slot in 2000..2500 {
        seat(&mut w, slot, Dialect::Lines, &format!("l{slot}"), "big");
    }
    w.raw_in(0, r#"{"type":"say","room":"big","text":"hi"}"#);
    let sizes: Vec<usize> = w.out.deliveries.iter().map(|d| d.recipients.len()).collect();
    assert_eq!(sizes, [1500], "the other JSON members and the legacy ones");
    w.renders = [0; 2];
    let log = w.take();
    assert_eq!(log.iter().filter(|(_, got)| matches!(got, Got::Json(_))).count(), 999);
    assert_eq!(log.iter().filter(|(_, got)| matches!(got, Got::Line(_))).count(), 501);
    assert_eq!(w.renders, [1, 1]);
}

#[test]
fn legacy_text_handling() {
    let mut w = World::new();
    w.legacy(1, "alice");
    w.json(2, "bob");
    w.attach(3, Dialect::Lines, SLASH);
    w.line(3, "ws");
    // Invalid UTF-8 becomes U+FFFD.
    w.line_bytes(1, b"caf\xff!");
    let log = w.take();
    assert_eq!(to(&log, 3), vec![Got::Line("#lobby alice : caf\u{fffd}!".into())]);
    assert_eq!(
        to(&log, 2),
        vec![Got::Json(json!({"type":"message","room":"lobby","from":"alice","text":"caf\u{fffd}!"}))]
    );
    // A /legacy frame may hold a newline: legacy receivers get a space.
    let log = w.line(3, "two\nlines");
    assert_eq!(to(&log, 1), vec![Got::Line("#lobby ws : two lines".into())]);
    assert_eq!(to(&log, 2), vec![Got::Json(json!({"type":"message","room":"lobby","from":"ws","text":"two\nlines"}))]);
    // Invalid UTF-8 as a name attempt.
    w.attach(4, Dialect::Lines, SLASH);
    w.line_bytes(4, b"\xc3");
    assert_eq!(w.take(), vec![line(4, "!ERR name_invalid \u{fffd}")]);
}

#[test]
fn hello_from_query() {
    let mut w = World::new();
    w.json(1, "alice");
    w.attach(2, Dialect::Events, SLASH);
    let log = w.hello_from_query(2, "alice");
    assert_eq!(
        log,
        vec![js(
            2,
            json!({"type":"error","code":"name_taken","message":"that name is taken in this namespace: alice"})
        )]
    );
    assert_eq!(code(&w.send(2, json!({"type":"say","text":"x"})), 2), "not_registered");
    let log = w.hello_from_query(2, "bob");
    assert_eq!(
        log[0],
        js(2, json!({"type":"welcome","name":"bob","namespace":"/","users":["alice"],"rooms":["lobby"]}))
    );
    assert_eq!(log[1], js(1, json!({"type":"users","users":["bob"]})));
    assert_eq!(code(&w.hello_from_query(2, "bob2"), 2), "already_registered");
}

#[test]
fn unknown_or_mismatched_members_are_ignored() {
    let mut w = World::new();
    let nobody = MemberId(9);
    w.hub.handle(nobody, Request::new(Command::Hello { name: "alice".into() }), &mut w.out);
    w.hub.handle(nobody, Request::new(Command::Rooms), &mut w.out);
    w.hub.reject(nobody, ChatError::TooLarge, None, None, &mut w.out);
    w.hub.claim_resolved(nobody, true, &mut w.out);
    w.hub.detach(nobody, &mut w.out);
    assert!(w.out.is_empty());
    assert!(!w.hub.is_registered(nobody));
    // A connection runs one app: a JSON member's lines never reach the hub.
    w.attach(1, Dialect::Events, SLASH);
    assert_eq!(w.line(1, "alice"), vec![]);
    // Ids are never reused: a member that left is a stranger afterwards.
    w.json(2, "bob");
    let gone = w.member(2);
    w.detach(2);
    w.json(3, "bob");
    w.hub.handle(gone, Request::new(Command::Say { room: LOBBY.into(), text: "x".into() }), &mut w.out);
    assert!(w.out.is_empty());
    assert_ne!(gone, w.member(3));
    assert_eq!(w.hub.attached(), 2);
}

#[test]
fn hostile_input_does_not_panic() {
    let mut w = World::with_limit(64);
    w.legacy(1, "alice");
    w.json(2, "bob");
    let deep = "[".repeat(10_000);
    for text in [
        "",
        " ",
        "null",
        "0",
        "{",
        "}",
        "{\"type\":null}",
        &deep,
        "{\"type\":\"say\",\"text\":\"\\ud800\"}",
        "{\"type\":\"emit\",\"event\":\"e\",\"data\":1e400}",
        "{\"type\":\"join\",\"room\":\"\"}",
    ] {
        w.raw(2, text);
    }
    for text in ["/", "..444..", "a..444..", "/msg", "/msg  ", "/who \t", "\u{0}", "/leave ..", "x..444.. : "] {
        w.line(1, text);
    }
    w.line_bytes(1, &[0xff; 100]);
    w.line_bytes(1, &[b'a'; 100_000]);
    w.out.clear();
    assert_eq!(w.hub.users(), 2);
}

#[test]
fn joining_rooms_stops_at_the_per_user_limit() {
    let mut w = World::with_config(ChatConfig { max_rooms_per_user: 3, ..ChatConfig::default() });
    w.legacy(1, "alice");
    for room in ["r1", "r2", "r3"] {
        assert_eq!(w.line(1, &format!("/join {room}")), vec![line(1, &format!("!JOINED {room} alice"))]);
    }
    // Joining one already joined stays a no-op; a fourth is refused and creates nothing.
    assert_eq!(w.line(1, "/join r2"), vec![]);
    assert_eq!(w.line(1, "/join r4"), vec![line(1, "!ERR room_invalid room limit reached")]);
    assert_eq!(w.line(1, "/rooms"), vec![line(1, "!ROOMS lobby r1 r2 r3")]);
    w.line(1, "/leave r1");
    assert_eq!(w.line(1, "/join r4"), vec![line(1, "!JOINED r4 alice")]);
}

#[test]
fn presence_is_one_event_with_each_receivers_own_index() {
    let mut w = World::new();
    w.legacy(1, "alice");
    w.json(2, "bob");
    w.attach(3, Dialect::Events, SLASH);
    w.raw_in(3, r#"{"type":"hello","name":"carol"}"#);
    let [welcome, presence] = w.out.deliveries.as_slice() else { panic!("{:?}", w.out.deliveries) };
    assert!(matches!(&welcome.event, Event::Welcome { users, .. } if users.len() == 2));
    let Event::Presence { names } = &presence.event else { panic!("{presence:?}") };
    assert_eq!(names.iter().map(|n| &**n).collect::<Vec<_>>(), ["alice", "bob", "carol"]);
    let omits: Vec<(MemberId, Option<u32>)> = presence.recipients.iter().map(|r| (r.member, r.omit)).collect();
    assert_eq!(omits, [(w.member(1), Some(0)), (w.member(2), Some(1))], "the joiner gets its welcome instead");
    w.out.clear();
    // On detach everyone left gets it, each with its index in the new list.
    w.hub.detach(w.member(1), &mut w.out);
    let [presence] = w.out.deliveries.as_slice() else { panic!("{:?}", w.out.deliveries) };
    let omits: Vec<Option<u32>> = presence.recipients.iter().map(|r| r.omit).collect();
    assert_eq!(omits, [Some(0), Some(1)]);
    assert_eq!(
        w.take(),
        vec![js(2, json!({"type":"users","users":["carol"]})), js(3, json!({"type":"users","users":["bob"]}))]
    );
}

#[test]
fn detach_all_forgets_everyone_silently() {
    let mut w = World::new();
    for slot in 0..20 {
        if slot % 2 == 0 {
            w.json(slot, &format!("u{slot}"));
        } else {
            w.legacy(slot, &format!("u{slot}"));
        }
        w.line(slot, "/join r1");
        w.send(slot, json!({"type":"join","room":"r2"}));
    }
    w.attach(99, Dialect::Events, "/other");
    assert_eq!((w.hub.users(), w.hub.rooms(), w.hub.attached()), (20, 3, 21));
    w.hub.detach_all();
    assert!(w.out.is_empty(), "no left notices, no presence pushes");
    assert_eq!((w.hub.users(), w.hub.rooms(), w.hub.attached()), (0, 0, 0));
    // Connections that close afterwards detach as strangers.
    assert_eq!(w.detach(0), vec![]);
    assert!(w.out.is_empty());
}

/// A directory whose answers the test gives by hand.
#[derive(Default)]
struct Deferred {
    claims: Vec<(String, String, MemberId)>,
    released: Vec<(String, MemberId)>,
    taken: Vec<String>,
}

impl Directory for Deferred {
    fn claim(&mut self, namespace: &str, name: &str, member: MemberId) -> Claim {
        self.claims.push((namespace.to_owned(), name.to_owned(), member));
        if self.taken.iter().any(|t| t == name) { Claim::Taken } else { Claim::Pending }
    }

    fn release(&mut self, _namespace: &str, name: &str, member: MemberId) {
        self.released.push((name.to_owned(), member));
    }
}

#[test]
fn a_pending_claim_registers_when_granted() {
    let mut w = World::with_hub(Hub::with_directory(ChatConfig::default(), Deferred::default()));
    w.attach(1, Dialect::Events, "/game");
    assert_eq!(w.send(1, json!({"type":"hello","name":"Rene\u{301}","id":"h"})), vec![], "nothing until the answer");
    let first = w.member(1);
    assert_eq!(w.hub.directory_mut().claims, [("/game".to_owned(), "Ren\u{e9}".to_owned(), first)]);
    assert!(!w.hub.is_registered(w.member(1)));
    assert_eq!(w.hub.users(), 0);
    // While it is pending: the name is reserved locally, the member is not registered.
    w.attach(2, Dialect::Events, "/game");
    assert_eq!(code(&w.send(2, json!({"type":"hello","name":"René"})), 2), "name_taken");
    assert_eq!(w.hub.directory_mut().claims.len(), 1, "a local clash never reaches the directory");
    assert_eq!(code(&w.send(1, json!({"type":"hello","name":"x"})), 1), "already_registered");
    let member = w.member(1);
    w.hub.handle(member, Request::new(Command::Rooms), &mut w.out);
    assert_eq!(code(&w.take(), 1), "not_registered");
    w.hub.handle(member, Request::new(Command::Hello { name: "x".into() }), &mut w.out);
    assert_eq!(code(&w.take(), 1), "already_registered");

    w.hub.claim_resolved(member, true, &mut w.out);
    assert_eq!(
        w.take(),
        vec![js(
            1,
            json!({"type":"welcome","name":"Ren\u{e9}","namespace":"/game","users":[],"rooms":["lobby"],"id":"h"})
        )]
    );
    assert!(w.hub.is_registered(member));
    w.hub.claim_resolved(member, true, &mut w.out);
    assert!(w.out.is_empty(), "answered once");
    w.detach(1);
    assert_eq!(w.hub.directory_mut().released, [("Ren\u{e9}".to_owned(), member)]);
    assert_eq!((w.hub.users(), w.hub.rooms()), (0, 0));
}

#[test]
fn a_pending_claim_refused_is_name_taken_with_the_tag() {
    let mut w = World::with_hub(Hub::with_directory(ChatConfig::default(), Deferred::default()));
    w.attach(1, Dialect::Lines, SLASH);
    assert_eq!(w.line(1, "alice"), vec![]);
    w.hub.claim_resolved(w.member(1), false, &mut w.out);
    assert_eq!(w.take(), vec![line(1, "!ERR name_taken alice")]);
    assert!(!w.hub.is_registered(w.member(1)));
    // The name is free locally again, and the next line is a name attempt.
    w.attach(2, Dialect::Events, SLASH);
    assert_eq!(w.send(2, json!({"type":"hello","name":"alice","id":4})), vec![]);
    w.hub.claim_resolved(w.member(2), false, &mut w.out);
    let log = w.take();
    let [(2, Got::Json(err))] = log.as_slice() else { panic!("{log:?}") };
    assert_eq!((err["code"].as_str(), err["id"].as_i64()), (Some("name_taken"), Some(4)));
    // Taken at once by the directory.
    w.hub.directory_mut().taken.push("bob".to_owned());
    assert_eq!(w.line(1, "bob"), vec![line(1, "!ERR name_taken bob")]);
    // A member that leaves while waiting releases its claim; a late answer is ignored.
    assert_eq!(w.line(1, "carol"), vec![]);
    let member = w.member(1);
    w.detach(1);
    assert!(w.hub.directory_mut().released.contains(&("carol".to_owned(), member)));
    w.hub.claim_resolved(member, true, &mut w.out);
    assert!(w.out.is_empty());
    assert_eq!((w.hub.users(), w.hub.attached()), (0, 1));
    w.detach(2);
    assert!(w.hub.namespaces.values().all(|ns: &Namespace| !ns.is_unused()), "no empty namespace left");
    assert!(w.hub.namespaces.is_empty());
}

impl World {
    /// A relay (Socket.IO's `io.emit`) of `event` with `data` from `slot`.
    fn relay(&mut self, slot: usize, event: &str, data: &str) -> Log {
        let args = Rc::new(RawArgs { json: Rc::from(format!(r#"["{event}",{data}]"#)), binary: Rc::from(Vec::new()) });
        let command = Command::Relay { event: event.into(), data: Some(data.into()), args };
        self.hub.handle(self.member(slot), Request::new(command), &mut self.out);
        self.take()
    }

    /// An anonymous listener in `namespace` (a Socket.IO client without a name).
    fn listener(&mut self, slot: usize, namespace: &str) -> MemberId {
        let member = self.attach(slot, Dialect::Events, namespace);
        self.hub.listen(member);
        member
    }
}

#[test]
fn relays_reach_every_events_member_and_the_audience_sender_included() {
    let mut w = World::new();
    w.legacy(1, "carol");
    w.json(2, "bob");
    w.listener(3, SLASH);
    w.listener(4, SLASH);
    w.listener(9, "/other");
    w.take();
    let log = w.relay(3, "chat message", r#""hi""#);
    let mut slots: Vec<usize> = log.iter().map(|(slot, _)| *slot).collect();
    slots.sort_unstable();
    // Legacy users never get custom events; the other namespace hears nothing.
    assert_eq!(slots, [2, 3, 4]);
    for (_, got) in &log {
        // Nobody's name: the sender has none.
        assert_eq!(*got, Got::Json(json!({"type": "event", "event": "chat message", "data": "hi"})));
    }
    // A registered sender is named; it hears its own relay once.
    let log = w.relay(2, "typing", "true");
    assert_eq!(to(&log, 2), [Got::Json(json!({"type": "event", "event": "typing", "data": true, "from": "bob"}))]);
    assert_eq!(log.len(), 3);
}

#[test]
fn the_audience_gets_namespace_emits_and_leaves_it_on_registering() {
    let mut w = World::new();
    w.json(2, "bob");
    w.listener(3, SLASH);
    w.take();
    let log = w.send(2, json!({"type": "emit", "event": "tick", "data": 1}));
    assert_eq!(to(&log, 3), [Got::Json(json!({"type": "event", "event": "tick", "data": 1, "from": "bob"}))]);
    assert!(to(&log, 2).is_empty(), "an emit never reaches its sender");
    // The listener registers: now a user, no longer in the audience.
    let log = w.send(3, json!({"type": "hello", "name": "ann"}));
    assert!(matches!(&to(&log, 3)[..], [Got::Json(welcome)] if welcome["type"] == "welcome"));
    let log = w.send(2, json!({"type": "emit", "event": "tick", "data": 2}));
    assert_eq!(to(&log, 3).len(), 1, "one delivery, not one as user and one as listener");
    // Listeners leave without notices, and the namespace goes with the last one.
    let mut w = World::new();
    w.listener(5, "/quiet");
    assert!(w.hub.namespaces.contains_key("/quiet"));
    assert!(w.detach(5).is_empty());
    assert!(!w.hub.namespaces.contains_key("/quiet"));
}

fn recovering_world() -> World {
    let window = Some(std::time::Duration::from_secs(60));
    let recovery = crate::chat::RecoveryConfig { window, ..Default::default() };
    let mut w = World::with_config(ChatConfig { recovery, ..ChatConfig::default() });
    w.hub.set_now(std::time::Instant::now());
    w
}

#[test]
fn a_parked_session_comes_back_to_its_rooms_with_what_it_missed() {
    let mut w = recovering_world();
    w.json(1, "alice");
    w.json(2, "bob");
    w.send(1, json!({"type": "join", "room": "r"}));
    w.send(2, json!({"type": "join", "room": "r"}));
    w.send(2, json!({"type": "say", "room": "r", "text": "seen"}));
    let seen = w.out.deliveries.len();
    assert_eq!(seen, 0, "taken by send");
    // The offsets the deliveries carried: the last one alice saw.
    w.raw_in(2, &json!({"type": "say", "room": "r", "text": "seen too"}).to_string());
    let offset = w.out.deliveries.last().and_then(|d| d.offset).expect("a logged message has an offset");
    w.take();
    w.hub.park(w.member(1), "pid-a", "sid-a");
    let log = w.detach(1);
    assert!(to(&log, 2).iter().any(|g| matches!(g, Got::Json(v) if v["type"] == "left")));
    w.send(2, json!({"type": "say", "room": "r", "text": "missed"}));
    w.send(2, json!({"type": "emit", "event": "tick", "data": 1}));
    w.send(2, json!({"type": "say", "room": "lobby", "text": "lobby too"}));
    // Back on another connection, under the same name.
    w.json(3, "alice");
    let back = w.member(3);
    assert_eq!(w.hub.resume(back, "pid-a", "999", &mut w.out).err(), Some(crate::chat::Unrecovered::OffsetGone));
    w.hub.park(back, "unused", "x");
    w.json(4, "mallory");
    let stranger = w.member(4);
    let not_hers = w.hub.resume(stranger, "pid-a", &offset.to_string(), &mut w.out);
    assert_eq!(not_hers.err(), Some(crate::chat::Unrecovered::Mismatch), "another name");
    let resumed = w.hub.resume(back, "pid-a", &offset.to_string(), &mut w.out).expect("recovered");
    assert_eq!(&*resumed.sid, "sid-a");
    let missed: Vec<String> = resumed
        .missed
        .iter()
        .map(|(_, event)| match event {
            Event::Message { text, .. } => text.to_string(),
            Event::Custom { event, .. } => event.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(missed, ["missed", "tick", "lobby too"]);
    assert!(w.hub.in_room(back, "r"), "joined to its rooms again");
    let log = w.take();
    assert!(to(&log, 2).iter().any(|g| matches!(g, Got::Json(v) if v["type"] == "joined" && v["name"] == "alice")));
    assert!(w.hub.resume(back, "pid-a", &offset.to_string(), &mut w.out).is_err(), "taken back once");
}

#[test]
fn a_session_the_server_closed_or_that_quit_is_not_parked() {
    let mut w = recovering_world();
    w.legacy(1, "alice");
    w.json(2, "bob");
    w.line(1, "/quit");
    w.hub.park(w.member(1), "pid-a", "sid-a");
    w.detach(1);
    let mut out = Outbox::default();
    let _ = w.hub.server_disconnect(SLASH, "bob", None, &mut out);
    w.hub.park(w.member(2), "pid-b", "sid-b");
    w.detach(2);
    assert_eq!(w.hub.recovery_usage().0, 0);
    // Off, nothing is logged and deliveries carry no offset.
    let mut w = World::new();
    w.json(1, "alice");
    w.json(2, "bob");
    w.raw_in(2, &json!({"type": "say", "room": "lobby", "text": "hi"}).to_string());
    assert!(w.out.deliveries.iter().all(|d| d.offset.is_none()));
    assert!(!w.hub.recovery_on());
}
