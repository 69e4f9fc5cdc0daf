//! `/ws` history (docs/SERVER.md): `{"type":"history","room":R}` answered
//! from the room's ring, and `hello` with `"since":{R:{"epoch":E,"offset":N}}`
//! answered after the `welcome` with what the client missed in each room
//! (it is joined to them again), or `recovered:false`. Only looked at when
//! `--history-size` is on; otherwise these texts go to the ordinary parser
//! (and `since` is ignored as any unknown field).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;

use crate::app::{AppCtx, Output};
use crate::chat::{Command, MemberId, Position, Request, Stored, normalize_room};

/// Rooms one `since` may name; more are ignored.
pub const MAX_SINCE_ROOMS: usize = 64;
/// The most messages one `history` answer carries (the ring bounds it too).
pub const MAX_PAGE: usize = 1000;

#[derive(Deserialize)]
struct HistoryRequest<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    room: Option<String>,
    #[serde(borrow)]
    id: Option<&'a serde_json::value::RawValue>,
    since: Option<u64>,
    limit: Option<u64>,
}

#[derive(Deserialize)]
struct HelloSince {
    #[serde(rename = "type")]
    kind: String,
    since: Option<BTreeMap<String, WirePosition>>,
}

#[derive(Deserialize)]
struct WirePosition {
    epoch: String,
    offset: u64,
}

fn message(room: &str, epoch: &str, m: &Stored) -> serde_json::Value {
    json!({"type": "message", "room": room, "from": &*m.from, "text": &*m.text, "offset": m.offset, "epoch": epoch})
}

fn send(out: &mut dyn Output, value: &serde_json::Value) {
    out.send_text(value.to_string().as_bytes());
}

/// Answers `text` if it is a `history` request of a registered member;
/// `false` leaves it to the ordinary parser.
pub fn handle_history(member: MemberId, text: &str, cx: &mut AppCtx<'_>, out: &mut dyn Output) -> bool {
    if !text.contains("\"history\"") || !cx.hub.is_registered(member) {
        return false;
    }
    let Ok(request) = serde_json::from_str::<HistoryRequest<'_>>(text) else { return false };
    if request.kind != "history" {
        return false;
    }
    let id = request.id.map(|id| id.get()).and_then(|id| serde_json::from_str::<serde_json::Value>(id).ok());
    let mut fail = |code: &str, message: &str| {
        let mut error = json!({"type": "error", "code": code, "message": message});
        if let Some(id) = &id {
            error["id"] = id.clone();
        }
        send(out, &error);
        true
    };
    let Some(room) = request.room.as_deref().and_then(normalize_room) else {
        return fail("missing_field", "room");
    };
    if !cx.hub.in_room(member, &room) {
        return fail("not_in_room", &room);
    }
    let limit = usize::try_from(request.limit.unwrap_or(MAX_PAGE as u64)).unwrap_or(MAX_PAGE).min(MAX_PAGE);
    let Some(namespace) = cx.hub.namespace_of(member) else { return true };
    let Some(page) = cx.hub.history_page(&namespace, &room, request.since, limit) else {
        return fail("no_such_room", &room);
    };
    let messages: Vec<serde_json::Value> =
        page.messages.iter().map(|m| json!({"offset": m.offset, "from": &*m.from, "text": &*m.text})).collect();
    let mut answer = json!({"type": "history", "room": &*page.room, "epoch": &*page.epoch, "messages": messages});
    if let Some(id) = id {
        answer["id"] = id;
    }
    send(out, &answer);
    true
}

/// The `since` of a `hello`, if it has one (at most [`MAX_SINCE_ROOMS`] rooms).
pub fn since_of(text: &str) -> Vec<(String, Position)> {
    if !text.contains("\"since\"") {
        return Vec::new();
    }
    let Ok(hello) = serde_json::from_str::<HelloSince>(text) else { return Vec::new() };
    if hello.kind != "hello" {
        return Vec::new();
    }
    let rooms = hello.since.unwrap_or_default().into_iter().take(MAX_SINCE_ROOMS);
    rooms
        .filter_map(|(room, p)| Some((normalize_room(&room)?, Position { epoch: p.epoch, offset: p.offset })))
        .collect()
}

/// After the `welcome`: joins each room again and sends what was missed
/// there, then `recovered` (true, with the position reached, or false).
pub fn recover(member: MemberId, since: Vec<(String, Position)>, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
    if !cx.hub.is_registered(member) {
        return;
    }
    for (room, position) in since {
        if !cx.hub.in_room(member, &room) {
            cx.hub.handle(member, Request::new(Command::Join { room: room.clone().into() }), cx.outbox);
            if !cx.hub.in_room(member, &room) {
                continue;
            }
        }
        match cx.hub.missed(member, &room, &position) {
            Ok(recovery) => {
                for m in &recovery.messages {
                    send(out, &message(&room, &recovery.epoch, m));
                }
                let done = json!({"type": "recovered", "room": room, "recovered": true,
                    "epoch": &*recovery.epoch, "offset": recovery.last});
                send(out, &done);
            }
            Err(epoch) => {
                let mut done = json!({"type": "recovered", "room": room, "recovered": false});
                if let Some(epoch) = epoch {
                    done["epoch"] = json!(&*epoch);
                }
                send(out, &done);
            }
        }
    }
}
