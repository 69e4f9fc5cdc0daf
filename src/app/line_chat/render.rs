//! Hub events as legacy lines (PROTOCOL.md section 2), without the line's
//! end: TCP adds `\n`, `/legacy` sends each as one text frame.

use std::borrow::Cow;
use std::rc::Rc;

use crate::app::render::{ListBuilder, Rendered};
use crate::chat::Event;

/// The legacy line of `event`, shared by every legacy receiver; `None` for
/// events legacy users never get (custom events, acks).
pub fn render(event: &Event) -> Option<Rendered> {
    let line = match event {
        Event::Welcome { users, .. } => users_line(users),
        Event::Message { room, from, text, .. } => format!("#{room} {from} : {}", one_line(text)),
        Event::Private { from, text } => format!("{from} : {}", one_line(text)),
        Event::Joined { room, name } => format!("!JOINED {room} {name}"),
        Event::Left { room, name } => format!("!LEFT {room} {name}"),
        Event::Presence { names } => return Some(presence(names)),
        Event::Members { room, names, .. } => {
            let mut line = format!("!MEMBERS {room}");
            for name in names.iter() {
                line.push(' ');
                line.push_str(name);
            }
            line
        }
        Event::Rooms { rooms, .. } => {
            let mut line = String::from("!ROOMS");
            for (room, _) in rooms.iter() {
                line.push(' ');
                line.push_str(room);
            }
            line
        }
        Event::Error { error, detail, .. } => match detail.as_deref().filter(|d| !d.is_empty()) {
            Some(detail) => format!("!ERR {} {}", error.code(), one_line(detail)),
            None => format!("!ERR {}", error.code()),
        },
        // Section 2: legacy users never receive custom events; they send no ids.
        Event::Custom { .. } | Event::Ack { .. } => return None,
    };
    Some(Rendered::whole(line.into_bytes()))
}

/// Section 2: text reaching a legacy user has each `\n` and `\r` replaced by
/// a space, so one message stays one line.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if text.contains(['\n', '\r']) { Cow::Owned(text.replace(['\n', '\r'], " ")) } else { Cow::Borrowed(text) }
}

/// `3$*$*3` then each listed name and a `$`.
fn users_line(names: &[Rc<str>]) -> String {
    let mut line = String::from("3$*$*3");
    for name in names {
        line.push_str(name);
        line.push('$');
    }
    line
}

/// Everyone's online list; a receiver's entry is its name and `$`.
fn presence(names: &[Rc<str>]) -> Rendered {
    let mut list = ListBuilder { body: b"3$*$*3".to_vec(), entries: Vec::with_capacity(names.len()) };
    for name in names {
        let start = list.body.len();
        list.body.extend_from_slice(name.as_bytes());
        list.body.push(b'$');
        list.entries.push(start..list.body.len());
    }
    list.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ChatError;

    fn names(list: &[&str]) -> Rc<[Rc<str>]> {
        list.iter().map(|&n| Rc::from(n)).collect()
    }

    fn rc(s: &str) -> Rc<str> {
        Rc::from(s)
    }

    fn line(event: &Event) -> Option<String> {
        let rendered = render(event)?;
        assert!(rendered.entries.is_none());
        Some(String::from_utf8(rendered.body.to_vec()).expect("UTF-8"))
    }

    #[test]
    fn every_event_byte_exact() {
        let welcome = Event::Welcome {
            name: rc("carol"),
            namespace: rc("/"),
            users: names(&["alice", "bob"]),
            rooms: names(&["lobby"]),
            tag: None,
        };
        let cases = [
            (welcome, Some("3$*$*3alice$bob$")),
            (
                Event::Welcome {
                    name: rc("a"),
                    namespace: rc("/"),
                    users: names(&[]),
                    rooms: names(&["lobby"]),
                    tag: None,
                },
                Some("3$*$*3"),
            ),
            (
                Event::Message { room: rc("lobby"), from: rc("carol"), text: rc("a\nb\r\nc"), mark: None },
                Some("#lobby carol : a b  c"),
            ),
            (Event::Private { from: rc("carol"), text: rc("x\ry") }, Some("carol : x y")),
            (Event::Joined { room: rc("r1"), name: rc("bob") }, Some("!JOINED r1 bob")),
            (Event::Left { room: rc("r1"), name: rc("bob") }, Some("!LEFT r1 bob")),
            (Event::Members { room: rc("r1"), names: names(&["a", "b"]), tag: None }, Some("!MEMBERS r1 a b")),
            (Event::Rooms { rooms: Rc::from([(rc("lobby"), 2), (rc("r1"), 1)]), tag: None }, Some("!ROOMS lobby r1")),
            (Event::Error { error: ChatError::TooLarge, detail: None, tag: None }, Some("!ERR too_large")),
            (
                Event::Error { error: ChatError::NameInvalid, detail: Some(rc("")), tag: None },
                Some("!ERR name_invalid"),
            ),
            (
                Event::Error { error: ChatError::NameTaken, detail: Some(rc("bob\nx")), tag: None },
                Some("!ERR name_taken bob x"),
            ),
            (Event::Custom { event: rc("e"), data: None, from: Some(rc("a")), room: None, args: None }, None),
            (Event::Ack { tag: rc("1") }, None),
        ];
        for (event, expected) in cases {
            assert_eq!(line(&event).as_deref(), expected, "{event:?}");
        }
    }

    #[test]
    fn presence_lists_are_cut_from_one_rendering() {
        let rendered = render(&Event::Presence { names: names(&["alice", "bob", "carol"]) }).expect("a list");
        let lists: Vec<Vec<u8>> = (0..3).map(|i| rendered.payload(Some(i))).collect();
        assert_eq!(lists, [&b"3$*$*3bob$carol$"[..], b"3$*$*3alice$carol$", b"3$*$*3alice$bob$"]);
        let one = render(&Event::Presence { names: names(&["zoë"]) }).expect("a list");
        assert_eq!(one.payload(Some(0)), b"3$*$*3");
        assert_eq!(one.payload_len(Some(0)), 6);
    }
}
