//! Hub events as JSON texts (PROTOCOL.md section 3), field order as in the
//! protocol's tables. Written directly rather than through a serde tree:
//! tags and custom `data` are raw JSON already and go out verbatim; strings
//! are escaped by serde_json.

use std::io::Write;
use std::rc::Rc;

use crate::app::render::{ListBuilder, Rendered};
use crate::chat::{Event, Tag};

/// The JSON text of `event`, shared by every JSON receiver. Every event has
/// one (`Some` always; the `Option` matches the other protocols' renderers).
pub fn render(event: &Event) -> Option<Rendered> {
    let mut out = Json::default();
    match event {
        Event::Welcome { name, namespace, users, rooms, tag } => {
            out.start("welcome");
            out.field("name", name);
            out.field("namespace", namespace);
            out.names("users", users);
            out.names("rooms", rooms);
            out.tag(tag.as_ref());
        }
        Event::Message { room, from, text, mark } => {
            out.start("message");
            out.field("room", room);
            out.field("from", from);
            out.field("text", text);
            if let Some(mark) = mark {
                out.raw("offset", itoa::Buffer::new().format(mark.offset));
                out.field("epoch", &mark.epoch);
            }
        }
        Event::Private { from, text } => {
            out.start("private");
            out.field("from", from);
            out.field("text", text);
        }
        Event::Joined { room, name } => {
            out.start("joined");
            out.field("room", room);
            out.field("name", name);
        }
        Event::Left { room, name } => {
            out.start("left");
            out.field("room", room);
            out.field("name", name);
        }
        Event::Custom { event, data, from, room, .. } => {
            out.start("event");
            out.field("event", event);
            out.raw("data", data.as_deref().unwrap_or("null"));
            if let Some(from) = from {
                out.field("from", from);
            }
            if let Some(room) = room {
                out.field("room", room);
            }
        }
        Event::Presence { names } => return Some(presence(names)),
        Event::Members { room, names, tag } => {
            out.start("members");
            out.field("room", room);
            out.names("names", names);
            out.tag(tag.as_ref());
        }
        Event::Rooms { rooms, tag } => {
            out.start("rooms");
            out.key("rooms");
            out.0.push(b'[');
            for (i, (name, members)) in rooms.iter().enumerate() {
                if i > 0 {
                    out.0.push(b',');
                }
                out.0.extend_from_slice(br#"{"name":"#);
                out.string(name);
                write!(out.0, r#","members":{members}}}"#).expect("writing to memory cannot fail");
            }
            out.0.push(b']');
            out.tag(tag.as_ref());
        }
        Event::Ack { tag } => {
            out.start("ack");
            out.raw("id", tag);
        }
        Event::Error { error, detail, tag } => {
            out.start("error");
            out.field("code", error.code());
            out.field("message", &error.describe(detail.as_deref()));
            out.tag(tag.as_ref());
        }
    }
    out.0.push(b'}');
    Some(Rendered::whole(out.0))
}

/// `{"type":"users","users":[...]}` with everyone; a receiver's entry is its
/// string plus the comma after it (the one before it, for the last one).
fn presence(names: &[Rc<str>]) -> Rendered {
    let mut out = Json::default();
    out.start("users");
    out.key("users");
    out.0.push(b'[');
    let mut spans = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.0.push(b',');
        }
        let start = out.0.len();
        out.string(name);
        spans.push(start..out.0.len());
    }
    out.0.extend_from_slice(b"]}");
    let mut list = ListBuilder { body: out.0, entries: Vec::with_capacity(spans.len()) };
    for (i, span) in spans.iter().enumerate() {
        let previous = i.checked_sub(1).and_then(|p| spans.get(p));
        list.entries.push(match (spans.get(i + 1), previous) {
            (Some(next), _) => span.start..next.start,
            (None, Some(previous)) => previous.end..span.end,
            (None, None) => span.clone(),
        });
    }
    list.finish()
}

/// A JSON object being written.
#[derive(Default)]
struct Json(Vec<u8>);

impl Json {
    /// `{"type":"KIND"`.
    fn start(&mut self, kind: &str) {
        self.0.extend_from_slice(br#"{"type":"#);
        self.string(kind);
    }

    fn key(&mut self, key: &str) {
        self.0.push(b',');
        self.string(key);
        self.0.push(b':');
    }

    fn field(&mut self, key: &str, value: &str) {
        self.key(key);
        self.string(value);
    }

    /// A field whose value is JSON text already.
    fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.0.extend_from_slice(json.as_bytes());
    }

    /// `,"id":TAG` when there is a tag.
    fn tag(&mut self, tag: Option<&Tag>) {
        if let Some(tag) = tag {
            self.raw("id", tag);
        }
    }

    fn names(&mut self, key: &str, names: &[Rc<str>]) {
        self.key(key);
        self.0.push(b'[');
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            self.string(name);
        }
        self.0.push(b']');
    }

    fn string(&mut self, s: &str) {
        serde_json::to_writer(&mut self.0, s).expect("a string always serialises into memory");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ChatError;

    fn names(list: &[&str]) -> Rc<[Rc<str>]> {
        list.iter().map(|&n| Rc::from(n)).collect()
    }

    fn text(event: &Event) -> String {
        let rendered = render(event).expect("every event has JSON");
        assert!(rendered.entries.is_none());
        String::from_utf8(rendered.body.to_vec()).expect("UTF-8")
    }

    fn rc(s: &str) -> Rc<str> {
        Rc::from(s)
    }

    #[test]
    fn every_event_byte_exact() {
        let cases = [
            (
                Event::Welcome {
                    name: rc("alice"),
                    namespace: rc("/"),
                    users: names(&["bob", "carol"]),
                    rooms: names(&["lobby"]),
                    tag: None,
                },
                r#"{"type":"welcome","name":"alice","namespace":"/","users":["bob","carol"],"rooms":["lobby"]}"#,
            ),
            (
                Event::Welcome {
                    name: rc("alice"),
                    namespace: rc("/game"),
                    users: names(&[]),
                    rooms: names(&["lobby"]),
                    tag: Some(rc("1")),
                },
                r#"{"type":"welcome","name":"alice","namespace":"/game","users":[],"rooms":["lobby"],"id":1}"#,
            ),
            (
                Event::Message { room: rc("lobby"), from: rc("alice"), text: rc("hi \"you\"\n"), mark: None },
                r#"{"type":"message","room":"lobby","from":"alice","text":"hi \"you\"\n"}"#,
            ),
            (
                Event::Private { from: rc("alice"), text: rc("psst") },
                r#"{"type":"private","from":"alice","text":"psst"}"#,
            ),
            (Event::Joined { room: rc("r1"), name: rc("bob") }, r#"{"type":"joined","room":"r1","name":"bob"}"#),
            (Event::Left { room: rc("r1"), name: rc("bob") }, r#"{"type":"left","room":"r1","name":"bob"}"#),
            (
                Event::Custom { event: rc("typing"), data: None, from: Some(rc("alice")), room: None, args: None },
                r#"{"type":"event","event":"typing","data":null,"from":"alice"}"#,
            ),
            (
                Event::Custom {
                    event: rc("move"),
                    data: Some(rc(r#"{"x":[1,2]}"#)),
                    from: Some(rc("alice")),
                    room: Some(rc("r1")),
                    args: None,
                },
                r#"{"type":"event","event":"move","data":{"x":[1,2]},"from":"alice","room":"r1"}"#,
            ),
            (
                Event::Members { room: rc("r-b"), names: names(&["alice", "bob"]), tag: Some(rc(r#""w""#)) },
                r#"{"type":"members","room":"r-b","names":["alice","bob"],"id":"w"}"#,
            ),
            (
                Event::Rooms { rooms: Rc::from([(rc("lobby"), 3), (rc("r1"), 1)]), tag: None },
                r#"{"type":"rooms","rooms":[{"name":"lobby","members":3},{"name":"r1","members":1}]}"#,
            ),
            (Event::Ack { tag: rc("2.5") }, r#"{"type":"ack","id":2.5}"#),
            (
                Event::Error { error: ChatError::NoSuchRoom, detail: Some(rc("nope")), tag: Some(rc("7")) },
                r#"{"type":"error","code":"no_such_room","message":"no such room: nope","id":7}"#,
            ),
            (
                Event::Error { error: ChatError::TooLarge, detail: Some(rc("")), tag: None },
                r#"{"type":"error","code":"too_large","message":"message too large"}"#,
            ),
        ];
        for (event, expected) in cases {
            assert_eq!(text(&event), expected);
            serde_json::from_str::<serde_json::Value>(expected).expect("valid JSON");
        }
    }

    /// Each receiver's list, as the body without its entry.
    fn cut(all: &[&str]) -> Vec<String> {
        let rendered = render(&Event::Presence { names: names(all) }).expect("presence has JSON");
        let count = u32::try_from(all.len()).expect("few");
        (0..count).map(|i| String::from_utf8(rendered.payload(Some(i))).expect("UTF-8")).collect()
    }

    #[test]
    fn presence_lists_are_cut_from_one_rendering() {
        assert_eq!(
            cut(&["alice", "bob", "carol"]),
            [
                r#"{"type":"users","users":["bob","carol"]}"#,
                r#"{"type":"users","users":["alice","carol"]}"#,
                r#"{"type":"users","users":["alice","bob"]}"#,
            ]
        );
        assert_eq!(cut(&["zoë"]), [r#"{"type":"users","users":[]}"#]);
        assert_eq!(cut(&["a", "b"]), [r#"{"type":"users","users":["b"]}"#, r#"{"type":"users","users":["a"]}"#]);
        let empty = render(&Event::Presence { names: names(&[]) }).expect("presence has JSON");
        assert_eq!(&*empty.body, br#"{"type":"users","users":[]}"#);
        assert_eq!(empty.entries.map(|e| e.len()), Some(0));
    }
}
