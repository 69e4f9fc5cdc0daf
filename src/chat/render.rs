//! Rendering of server messages: JSON events (serde, field order as in
//! PROTOCOL.md section 3) and legacy lines (section 2, without the `\n`).
//! Each function renders one content; the hub shares it between recipients.

use std::borrow::Cow;
use std::ops::Range;
use std::rc::Rc;

use serde::Serialize;
use serde::ser::Serializer;
use serde_json::Value;

use super::Format;
use super::error::Failure;

/// `data` of an `emit` that had none.
static NULL: Value = Value::Null;

/// Every JSON message the server sends. Variant names are the `type`.
#[derive(Serialize, Debug)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum JsonEvent<'a> {
    Welcome {
        name: &'a str,
        namespace: &'a str,
        users: NameList<'a>,
        rooms: Vec<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
    },
    Message {
        room: &'a str,
        from: &'a str,
        text: &'a str,
    },
    Private {
        from: &'a str,
        text: &'a str,
    },
    Joined {
        room: &'a str,
        name: &'a str,
    },
    Left {
        room: &'a str,
        name: &'a str,
    },
    Event {
        event: &'a str,
        data: &'a Value,
        from: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
    },
    Members {
        room: &'a str,
        names: NameList<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
    },
    Rooms {
        rooms: Vec<RoomCount<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
    },
    Ack {
        id: &'a Value,
    },
    Error {
        code: &'a str,
        message: Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
    },
}

/// One entry of a `rooms` reply.
#[derive(Serialize, Debug)]
pub(crate) struct RoomCount<'a> {
    pub name: &'a str,
    pub members: usize,
}

/// Names in order, optionally without one of them (a presence list leaves out
/// its receiver), serialised without building a filtered copy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NameList<'a> {
    pub names: &'a [Rc<str>],
    pub skip: Option<usize>,
}

impl<'a> NameList<'a> {
    /// All of `names`.
    pub fn all(names: &'a [Rc<str>]) -> NameList<'a> {
        NameList { names, skip: None }
    }

    fn iter(self) -> impl Iterator<Item = &'a str> {
        self.names.iter().enumerate().filter(move |&(i, _)| Some(i) != self.skip).map(|(_, name)| &**name)
    }
}

impl Serialize for NameList<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl JsonEvent<'_> {
    /// The JSON text of this event.
    pub fn render(&self) -> Rc<str> {
        // Only string keys and plain values: serde_json cannot fail here.
        serde_json::to_string(self).expect("chat events always serialise").into()
    }
}

/// A JSON `error` for `failure`, with the request's `id` if it had one.
pub(crate) fn json_error(failure: &Failure, id: Option<&Value>) -> Rc<str> {
    let message = if failure.detail.is_empty() {
        Cow::Borrowed(failure.error.message())
    } else {
        Cow::Owned(format!("{}: {}", failure.error.message(), failure.detail))
    };
    JsonEvent::Error { code: failure.error.code(), message, id }.render()
}

/// `data` as sent: null when the `emit` had none.
pub(crate) fn event_data(data: Option<&Value>) -> &Value {
    data.unwrap_or(&NULL)
}

/// Section 2: text reaching a legacy user has each `\n` and `\r` replaced by
/// a space, so one message stays one line.
pub(crate) fn one_line(text: &str) -> Cow<'_, str> {
    if text.contains(['\n', '\r']) { Cow::Owned(text.replace(['\n', '\r'], " ")) } else { Cow::Borrowed(text) }
}

/// Everyone's online list in `format`, once, with where each name's entry
/// lies, so that each receiver's list (everyone but itself) is the whole
/// without that entry. Receivers are oldest first, as `names`.
pub(crate) fn presence_lists(names: &[Rc<str>], format: Format) -> (Rc<str>, Vec<Range<usize>>) {
    let mut omit = Vec::with_capacity(names.len());
    let whole = match format {
        Format::Legacy => {
            // `3$*$*3` then `name$` per user: an entry is its name and `$`.
            let mut line = String::from("3$*$*3");
            for name in names {
                let start = line.len();
                line.push_str(name);
                line.push('$');
                omit.push(start..line.len());
            }
            line
        }
        Format::Json => {
            // `{"type":"users","users":[...]}`: an entry is its string plus
            // the comma after it (the one before it, for the last one).
            let mut text = String::from(r#"{"type":"users","users":["#);
            let mut spans = Vec::with_capacity(names.len());
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                let start = text.len();
                text.push_str(&serde_json::to_string(&**name).unwrap_or_default());
                spans.push(start..text.len());
            }
            text.push_str("]}");
            for (i, span) in spans.iter().enumerate() {
                omit.push(match (spans.get(i + 1), i.checked_sub(1).and_then(|p| spans.get(p))) {
                    (Some(next), _) => span.start..next.start,
                    (None, Some(previous)) => previous.end..span.end,
                    (None, None) => span.clone(),
                });
            }
            text
        }
    };
    (whole.into(), omit)
}

/// The legacy online list: `3$*$*3` then each listed name and a `$`.
pub(crate) fn legacy_users(list: NameList<'_>) -> Rc<str> {
    let mut line = String::from("3$*$*3");
    for name in list.iter() {
        line.push_str(name);
        line.push('$');
    }
    line.into()
}

/// A room message as legacy users see it: `#ROOM alice : text`.
pub(crate) fn legacy_message(room: &str, from: &str, text: &str) -> Rc<str> {
    format!("#{room} {from} : {}", one_line(text)).into()
}

/// A private message as a legacy user sees it: `alice : text`.
pub(crate) fn legacy_private(from: &str, text: &str) -> Rc<str> {
    format!("{from} : {}", one_line(text)).into()
}

/// `!JOINED ROOM NAME`.
pub(crate) fn legacy_joined(room: &str, name: &str) -> Rc<str> {
    format!("!JOINED {room} {name}").into()
}

/// `!LEFT ROOM NAME`.
pub(crate) fn legacy_left(room: &str, name: &str) -> Rc<str> {
    format!("!LEFT {room} {name}").into()
}

/// `!MEMBERS ROOM name1 name2 ...`.
pub(crate) fn legacy_members(room: &str, names: &[Rc<str>]) -> Rc<str> {
    let mut line = format!("!MEMBERS {room}");
    for name in names {
        line.push(' ');
        line.push_str(name);
    }
    line.into()
}

/// `!ROOMS room1 room2 ...`.
pub(crate) fn legacy_rooms<'a>(rooms: impl Iterator<Item = &'a str>) -> Rc<str> {
    let mut line = String::from("!ROOMS");
    for room in rooms {
        line.push(' ');
        line.push_str(room);
    }
    line.into()
}

/// `!ERR CODE detail`, or `!ERR CODE` when there is no detail.
pub(crate) fn legacy_error(failure: &Failure) -> Rc<str> {
    if failure.detail.is_empty() {
        format!("!ERR {}", failure.error.code()).into()
    } else {
        format!("!ERR {} {}", failure.error.code(), one_line(&failure.detail)).into()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::error::ChatError;
    use super::*;

    fn names(list: &[&str]) -> Vec<Rc<str>> {
        list.iter().map(|&n| Rc::from(n)).collect()
    }

    #[test]
    fn json_field_order_follows_the_protocol() {
        let all = names(&["bob", "carol"]);
        let welcome = JsonEvent::Welcome {
            name: "alice",
            namespace: "/",
            users: NameList::all(&all),
            rooms: vec!["lobby"],
            id: None,
        };
        assert_eq!(
            &*welcome.render(),
            r#"{"type":"welcome","name":"alice","namespace":"/","users":["bob","carol"],"rooms":["lobby"]}"#
        );
        let msg = JsonEvent::Message { room: "lobby", from: "alice", text: "hi" };
        assert_eq!(&*msg.render(), r#"{"type":"message","room":"lobby","from":"alice","text":"hi"}"#);
        let event = JsonEvent::Event { event: "typing", data: &NULL, from: "alice", room: None };
        assert_eq!(&*event.render(), r#"{"type":"event","event":"typing","data":null,"from":"alice"}"#);
        let id = json!(5);
        let err = json_error(&Failure::bare(ChatError::NotInRoom), Some(&id));
        let parsed: Value = serde_json::from_str(&err).unwrap();
        assert_eq!(parsed["code"], "not_in_room");
        assert_eq!(parsed["id"], 5);
        assert!(err.starts_with(r#"{"type":"error","code":"not_in_room","message":"#));
    }

    #[test]
    fn presence_lists_skip_the_receiver() {
        let all = names(&["alice", "bob", "carol"]);
        assert_eq!(&*legacy_users(NameList { names: &all, skip: Some(1) }), "3$*$*3alice$carol$");
        assert_eq!(&*legacy_users(NameList { names: &all[..1], skip: Some(0) }), "3$*$*3");
    }

    /// Each receiver's list, as the whole without its entry.
    fn cut(all: &[Rc<str>], format: Format) -> Vec<String> {
        let (whole, omit) = presence_lists(all, format);
        omit.iter().map(|range| [&whole[..range.start], &whole[range.end..]].concat()).collect()
    }

    #[test]
    fn presence_lists_are_cut_from_one_rendering() {
        let all = names(&["alice", "bob", "carol"]);
        assert_eq!(cut(&all, Format::Legacy), ["3$*$*3bob$carol$", "3$*$*3alice$carol$", "3$*$*3alice$bob$"]);
        assert_eq!(
            cut(&all, Format::Json),
            [
                r#"{"type":"users","users":["bob","carol"]}"#,
                r#"{"type":"users","users":["alice","carol"]}"#,
                r#"{"type":"users","users":["alice","bob"]}"#,
            ]
        );
        let one = names(&["zoë"]);
        assert_eq!(cut(&one, Format::Json), [r#"{"type":"users","users":[]}"#]);
        assert_eq!(cut(&one, Format::Legacy), ["3$*$*3"]);
        assert_eq!(presence_lists(&[], Format::Json).1.len(), 0);
    }

    #[test]
    fn legacy_lines_stay_one_line() {
        assert_eq!(&*legacy_message("lobby", "carol", "a\nb\r\nc"), "#lobby carol : a b  c");
        assert_eq!(&*legacy_private("carol", "x\ry"), "carol : x y");
        assert_eq!(&*legacy_error(&Failure::bare(ChatError::TooLarge)), "!ERR too_large");
        assert_eq!(&*legacy_error(&Failure::with(ChatError::NameTaken, "bob")), "!ERR name_taken bob");
        assert_eq!(&*legacy_members("r1", &names(&["a", "b"])), "!MEMBERS r1 a b");
        assert_eq!(&*legacy_rooms(["lobby", "r1"].into_iter()), "!ROOMS lobby r1");
    }
}
