//! Hub events as STOMP MESSAGE frames, rendered once per event for every
//! STOMP receiver: the rendering is the frame from its `destination` header
//! to its NUL, and each receiver puts its own command line, `subscription`,
//! `message-id` (and `ack`) in front of it ([`super::Stomp::deliver`]).
//!
//! What soket puts in headers here (destinations of rooms, user names) is
//! made of letters, digits, `_`, `-`, `.` and `/` only, so it reads the
//! same under every STOMP version's escaping and one rendering serves them all.

use std::rc::Rc;

use crate::app::render::Rendered;
use crate::chat::Event;

/// Where a user's private messages arrive.
pub const PRIVATE: &str = "/user/queue/private";
/// Where the online list arrives, on subscribing and on every change.
pub const PRESENCE: &str = "/topic/presence";
/// Where requests the broker refused are reported, for a client that
/// subscribes (else they are ERROR frames, which end the connection).
pub const ERRORS: &str = "/user/queue/errors";
/// Where custom events (`emit` from `/ws`, Socket.IO relays) arrive.
pub const EVENTS: &str = "/user/queue/events";
/// A SEND here carries the connection's new token in its `token` header
/// (docs/AUTH.md), when tokens are on.
pub const TOKEN: &str = "/soket/token";
/// The header of a SEND to [`TOKEN`] that holds the token.
pub const TOKEN_HEADER: &str = "token";
/// A room's destination is this and the room's name.
pub const TOPIC_PREFIX: &str = "/topic/";
/// A private message to NAME is sent to this and the name.
pub const USER_PREFIX: &str = "/user/";

pub const TEXT_PLAIN: &str = "text/plain;charset=UTF-8";
pub const JSON: &str = "application/json";

/// The payload every STOMP receiver of `event` shares, or `None` if STOMP
/// clients never get it. Replies to one member (welcome, errors) render as
/// an empty payload: the receiving app answers them from the event itself.
pub fn render(event: &Event, _namespace: &str) -> Option<Rendered> {
    let mut tail = Vec::new();
    match event {
        Event::Message { room, from, text, .. } => {
            write_tail(&mut tail, &[TOPIC_PREFIX, room], TEXT_PLAIN, Some(from), text.as_bytes())
        }
        Event::Private { from, text } => write_tail(&mut tail, &[PRIVATE], TEXT_PLAIN, Some(from), text.as_bytes()),
        Event::Presence { names } => write_tail(&mut tail, &[PRESENCE], JSON, None, &presence_body(names)),
        Event::Custom { event, data, from, room, .. } => {
            let body = serde_json::json!({
                "event": &**event,
                "data": data.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()),
                "from": from.as_deref(),
                "room": room.as_deref(),
            });
            let body = serde_json::to_vec(&body).unwrap_or_default();
            write_tail(&mut tail, &[EVENTS], JSON, from.as_deref(), &body)
        }
        Event::Welcome { .. } | Event::Error { .. } | Event::Ack { .. } => {}
        // A broker announces neither subscriptions nor its own bookkeeping.
        Event::Joined { .. } | Event::Left { .. } | Event::Members { .. } | Event::Rooms { .. } => return None,
    }
    Some(Rendered::whole(tail))
}

/// The online list as a MESSAGE body: a JSON array of names, oldest first.
pub fn presence_body(names: &[Rc<str>]) -> Vec<u8> {
    serde_json::to_vec(&names.iter().map(|n| &**n).collect::<Vec<&str>>()).unwrap_or_default()
}

/// A MESSAGE frame from its `destination` header on: `destination` (the
/// concatenation of its pieces), `content-type`, `from`, `content-length`,
/// the blank line, the body and the NUL.
pub fn write_tail(out: &mut Vec<u8>, destination: &[&str], content_type: &str, from: Option<&str>, body: &[u8]) {
    out.reserve(body.len() + 96);
    out.extend_from_slice(b"destination:");
    for piece in destination {
        out.extend_from_slice(piece.as_bytes());
    }
    out.extend_from_slice(b"\ncontent-type:");
    out.extend_from_slice(content_type.as_bytes());
    if let Some(from) = from {
        out.extend_from_slice(b"\nfrom:");
        out.extend_from_slice(from.as_bytes());
    }
    out.extend_from_slice(b"\ncontent-length:");
    out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    out.extend_from_slice(b"\n\n");
    out.extend_from_slice(body);
    out.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_message_is_the_frame_after_its_receivers_own_headers() {
        let event = Event::Message { room: "r1".into(), from: "alice".into(), text: "hi\0there".into(), mark: None };
        let rendered = render(&event, "/").expect("rendered");
        assert_eq!(
            &*rendered.body,
            b"destination:/topic/r1\ncontent-type:text/plain;charset=UTF-8\nfrom:alice\ncontent-length:8\n\nhi\0there\0"
        );
    }

    #[test]
    fn presence_is_the_whole_list_as_json() {
        let event = Event::Presence { names: Rc::from([Rc::from("alice"), Rc::from("bo\"b")]) };
        let rendered = render(&event, "/").expect("rendered");
        assert!(
            rendered.body.ends_with(b"\n\n[\"alice\",\"bo\\\"b\"]\0"),
            "{:?}",
            String::from_utf8_lossy(&rendered.body)
        );
        assert!(rendered.entries.is_none(), "every STOMP receiver gets the whole list");
    }

    #[test]
    fn custom_events_carry_their_json() {
        let event = Event::Custom {
            event: "typing".into(),
            data: Some("{\"on\":true}".into()),
            from: Some("bob".into()),
            room: None,
            args: None,
        };
        let body = render(&event, "/").expect("rendered").body;
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.starts_with("destination:/user/queue/events\ncontent-type:application/json\nfrom:bob\n"),
            "{text}"
        );
        assert!(text.contains("\"data\":{\"on\":true}"), "{text}");
    }

    #[test]
    fn replies_render_empty_and_bookkeeping_not_at_all() {
        let ack = Event::Ack { tag: "1".into() };
        assert_eq!(render(&ack, "/").map(|r| r.body.len()), Some(0));
        let joined = Event::Joined { room: "r".into(), name: "a".into() };
        assert!(render(&joined, "/").is_none());
    }
}
