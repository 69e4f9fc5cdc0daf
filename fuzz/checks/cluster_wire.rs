//! `cluster_wire`: what other nodes publish, as Redis hands it over, into a
//! hub of this node with two users.
//!
//! Setup: a hub joined to a cluster as node `me`, JSON user `alice` and
//! legacy user `carol` in `/`, both in room `r`. The input is split at NUL
//! bytes into pub/sub payloads (`NODE INCARNATION MESSAGE\n{json}`); each
//! goes through `wire::split`, `wire::decode` and `wire::apply` as the
//! backplane does. At the end every node named is declared gone and the two
//! users leave.
//!
//! Invariants: no panic; every delivery goes to an attached local member,
//! each at most once; custom events only to the JSON member; every JSON
//! rendering a recipient gets is an object with a string `type`; every
//! legacy rendering is one line; once every other node is gone no remote
//! user is listed, and once the locals leave the hub holds no user, room
//! or member.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;
use soket::app::{json_chat, line_chat};
use soket::chat::{ChatConfig, Dialect, Endpoint, Event, Hub, MemberId, Outbox};
use soket::cluster::wire;
use soket::ids::ConnId;

const MAX_MESSAGE: usize = 1 << 20;

pub fn run(data: &[u8]) {
    let mut hub = Hub::new(ChatConfig::default());
    hub.join_cluster("me");
    let mut out = Outbox::default();
    let mut attached: HashMap<MemberId, Dialect> = HashMap::new();
    let alice = hub.attach(Endpoint::Conn(ConnId { slot: 1, generation: 1 }), Dialect::Events, "/");
    let carol = hub.attach(Endpoint::Conn(ConnId { slot: 2, generation: 1 }), Dialect::Lines, "/");
    attached.insert(alice, Dialect::Events);
    attached.insert(carol, Dialect::Lines);
    json_chat::handle_text(&mut hub, alice, r#"{"type":"hello","name":"alice"}"#, MAX_MESSAGE, &mut out);
    json_chat::handle_text(&mut hub, alice, r#"{"type":"join","room":"r"}"#, MAX_MESSAGE, &mut out);
    line_chat::handle_line(&mut hub, carol, b"carol", &mut out);
    line_chat::handle_line(&mut hub, carol, b"/join r", &mut out);
    // The hub's claims go nowhere here: grant them as Redis would.
    for request in hub.directory_mut().take() {
        if request.claim {
            hub.claim_resolved(request.member, true, &mut out);
        }
    }
    check(&mut out, &attached);

    let mut nodes = BTreeSet::new();
    for payload in data.split(|&b| b == 0) {
        let Some((header, json)) = wire::split(payload) else { continue };
        nodes.insert(header.node.to_owned());
        let Ok(body) = wire::decode(json) else { continue };
        let _ = wire::apply(&mut hub, header.node, body, &mut out);
        check(&mut out, &attached);
    }
    for node in &nodes {
        hub.remote_node_gone(node, &mut out);
    }
    check(&mut out, &attached);
    assert_eq!(hub.remote_users(), 0, "a remote user outlived its node");
    hub.detach(alice, &mut out);
    hub.detach(carol, &mut out);
    out.clear();
    assert_eq!((hub.users(), hub.rooms(), hub.attached()), (0, 0, 0), "the hub kept state after everyone left");
}

/// Renders every delivery for its recipients and checks what each got.
fn check(out: &mut Outbox, attached: &HashMap<MemberId, Dialect>) {
    for delivery in out.deliveries.drain(..) {
        let mut seen = BTreeSet::new();
        for to in &delivery.recipients {
            assert!(seen.insert(to.member), "a recipient twice");
            let dialect = *attached.get(&to.member).expect("a delivery to an attached member");
            match dialect {
                Dialect::Events => {
                    let rendered = json_chat::render::render(&delivery.event).expect("JSON renders every event");
                    let text = String::from_utf8(rendered.payload(to.omit)).expect("UTF-8 out");
                    let value: Value = serde_json::from_str(&text).expect("valid JSON out");
                    assert!(value.get("type").and_then(Value::as_str).is_some(), "{text}");
                }
                Dialect::Lines => {
                    assert!(!matches!(delivery.event, Event::Custom { .. }), "a custom event to a legacy user");
                    let Some(rendered) = line_chat::render::render(&delivery.event) else { continue };
                    let text = String::from_utf8(rendered.payload(to.omit)).expect("UTF-8 out");
                    assert!(!text.contains(['\n', '\r']), "{text:?}");
                }
            }
        }
    }
    out.closes.clear();
    out.cluster.clear();
}
