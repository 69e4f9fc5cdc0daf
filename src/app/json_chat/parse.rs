//! JSON texts into hub requests (PROTOCOL.md section 3). Shape only: which
//! type, which fields, their JSON types; names, rooms and membership are
//! the hub's.
//!
//! The text is size-checked before anything else, then deserialised in one
//! pass into a typed, borrowing [`Wire`]: no `serde_json::Value` tree is
//! built, strings without escapes are borrowed, `id` and `data` are kept as
//! raw JSON text. A text that is not an object fails at its first byte.
//! Every value is still checked as `serde_json::Value` would (string escapes,
//! number range, nesting depth), so what is `bad_json` did not change.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::chat::{ChatError, Command, EmitTarget, LOBBY, Rejection, Request, Tag};

/// One JSON text from a client.
///
/// `max_bytes` bounds the work per message: a longer text is `too_large`
/// before a byte of it is parsed. The caller passes the largest request it
/// accepts (the connection layer: `--max-message`; a JSON `say`/`private`
/// text is further held to `--max-line` by the hub). `registered` is the
/// sender's state, for the registration gate.
///
/// Precedence: `too_large`; `bad_json` (not JSON, or not an object; no tag);
/// `missing_field` for `type` (absent or not a string); `unknown_type`;
/// `already_registered` / `not_registered`; `missing_field` for the type's
/// own fields in the order of the protocol's table. An `id` that is a number
/// or a string is the request's tag, carried by every later error; any other
/// `id` is ignored.
pub fn parse<'a>(text: &'a str, max_bytes: usize, registered: bool) -> Result<Request<'a>, Rejection> {
    if text.len() > max_bytes {
        return Err(Rejection::bare(ChatError::TooLarge));
    }
    let wire: Wire<'a> = serde_json::from_str(text).map_err(|_| Rejection::bare(ChatError::BadJson))?;
    let tag = wire.id.and_then(tag_of);
    let fail = |error: ChatError, detail: &str| Rejection { error, detail: Some(detail.to_owned()), tag: tag.clone() };
    let kind = match &wire.kind {
        Some(Field::Str(kind)) => match &**kind {
            "hello" => Kind::Hello,
            "say" => Kind::Say,
            "private" => Kind::Private,
            "join" => Kind::Join,
            "leave" => Kind::Leave,
            "emit" => Kind::Emit,
            "who" => Kind::Who,
            "rooms" => Kind::Rooms,
            other => return Err(fail(ChatError::UnknownType, other)),
        },
        _ => return Err(fail(ChatError::MissingField, "type")),
    };
    let gate = match (kind == Kind::Hello, registered) {
        (true, true) => Some(ChatError::AlreadyRegistered),
        (false, false) => Some(ChatError::NotRegistered),
        _ => None,
    };
    if let Some(error) = gate {
        return Err(Rejection { error, detail: None, tag });
    }
    // A required field absent, null or not a string is missing; an optional
    // one (`room`, `to`) may be absent or null but, when present, a string.
    let required = |field: Option<Field<'a>>, key: &str| match field {
        Some(Field::Str(value)) => Ok(value),
        _ => Err(fail(ChatError::MissingField, key)),
    };
    let optional = |field: Option<Field<'a>>, key: &str| match field {
        None | Some(Field::Null) => Ok(None),
        Some(Field::Str(value)) => Ok(Some(value)),
        Some(Field::Other) => Err(fail(ChatError::MissingField, key)),
    };
    let Wire { name, text, room, to, event, data, .. } = wire;
    let command = match kind {
        Kind::Hello => Command::Hello { name: required(name, "name")? },
        Kind::Say => {
            let room = optional(room, "room")?.unwrap_or(Cow::Borrowed(LOBBY));
            Command::Say { room, text: required(text, "text")? }
        }
        Kind::Private => {
            let to = required(to, "to")?;
            Command::Private { to, text: required(text, "text")? }
        }
        Kind::Join => Command::Join { room: required(room, "room")? },
        Kind::Leave => Command::Leave { room: required(room, "room")? },
        Kind::Emit => {
            let event = required(event, "event")?;
            let room = optional(room, "room")?;
            let to = optional(to, "to")?;
            // Both given: the single user is the narrower, more deliberate target.
            let target = match (to, room) {
                (Some(to), _) => EmitTarget::User(to),
                (None, Some(room)) => EmitTarget::Room(room),
                (None, None) => EmitTarget::Namespace,
            };
            Command::Emit { event, data: data.map(|raw| Cow::Borrowed(raw.get())), target }
        }
        Kind::Who => Command::Who { room: required(room, "room")? },
        Kind::Rooms => Command::Rooms,
    };
    Ok(Request { command, tag })
}

/// The tag of an `id`: its JSON text if it is a number or a string.
pub(super) fn tag_of(id: &RawValue) -> Option<Tag> {
    let text = id.get();
    match text.as_bytes().first()? {
        b'"' | b'-' | b'0'..=b'9' => Some(Tag::from(text)),
        _ => None,
    }
}

/// The request types of section 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Hello,
    Say,
    Private,
    Join,
    Leave,
    Emit,
    Who,
    Rooms,
}

/// The fields of any request, borrowed from the text where possible.
#[derive(Default)]
struct Wire<'a> {
    kind: Option<Field<'a>>,
    id: Option<&'a RawValue>,
    name: Option<Field<'a>>,
    text: Option<Field<'a>>,
    room: Option<Field<'a>>,
    to: Option<Field<'a>>,
    event: Option<Field<'a>>,
    data: Option<&'a RawValue>,
}

impl<'de> Deserialize<'de> for Wire<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Wire<'de>, D::Error> {
        deserializer.deserialize_map(WireVisitor)
    }
}

struct WireVisitor;

impl<'de> Visitor<'de> for WireVisitor {
    type Value = Wire<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Wire<'de>, A::Error> {
        let mut wire = Wire::default();
        // A repeated key: the last one counts, as with serde_json::Value.
        while let Some(Key(key)) = map.next_key()? {
            match &*key {
                "type" => wire.kind = Some(map.next_value()?),
                "id" => wire.id = Some(checked_raw(map.next_value()?)?),
                "name" => wire.name = Some(map.next_value()?),
                "text" => wire.text = Some(map.next_value()?),
                "room" => wire.room = Some(map.next_value()?),
                "to" => wire.to = Some(map.next_value()?),
                "event" => wire.event = Some(map.next_value()?),
                "data" => wire.data = Some(checked_raw(map.next_value()?)?),
                _ => map.next_value::<Checked>().map(drop)?,
            }
        }
        Ok(wire)
    }
}

/// Raw JSON is only skimmed by serde_json; this holds it to the rules the
/// rest of the message is parsed by (no lone surrogate escape, no number
/// out of range), so that it is safe to send on to any JSON parser.
fn checked_raw<E: de::Error>(raw: &RawValue) -> Result<&RawValue, E> {
    serde_json::from_str::<Checked>(raw.get()).map_err(E::custom)?;
    Ok(raw)
}

/// An object key, borrowed unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }
}

/// A field's value as far as requests care: a string, null, or anything else
/// (checked, then forgotten).
enum Field<'a> {
    Str(Cow<'a, str>),
    Null,
    Other,
}

impl<'de> Deserialize<'de> for Field<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Field<'de>, D::Error> {
        deserializer.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Owned(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Field<'de>, E> {
        Ok(Field::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Field<'de>, A::Error> {
        CheckedVisitor.visit_seq(seq).map(|()| Field::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Field<'de>, A::Error> {
        CheckedVisitor.visit_map(map).map(|()| Field::Other)
    }
}

/// Any JSON value, parsed in full (strings decoded, numbers converted,
/// depth limited by serde_json) and kept nowhere.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Checked, D::Error> {
        deserializer.deserialize_any(CheckedVisitor).map(|()| Checked)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<Checked>()?.is_some() {
            map.next_value::<Checked>()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const MAX: usize = 1 << 20;

    fn parse_value(value: Value, registered: bool) -> Result<Command<'static>, ChatError> {
        let text = value.to_string();
        parse(&text, MAX, registered).map(|r| r.command.into_owned()).map_err(|r| r.error)
    }

    fn registered(value: Value) -> Result<Command<'static>, ChatError> {
        parse_value(value, true)
    }

    fn raw(text: &str) -> Result<Request<'_>, Rejection> {
        parse(text, MAX, true)
    }

    #[test]
    fn shapes_and_precedence() {
        for text in ["{not json", "[1,2]", r#""hello""#, "", "null", "3", "{} x", r#"{"type":"rooms"}}"#] {
            assert_eq!(raw(text).map_err(|r| r.error), Err(ChatError::BadJson), "{text:?}");
        }
        assert_eq!(registered(json!({})), Err(ChatError::MissingField));
        assert_eq!(registered(json!({"type": 3})), Err(ChatError::MissingField));
        assert_eq!(registered(json!({"type": null})), Err(ChatError::MissingField));
        assert_eq!(registered(json!({"type": "dance"})), Err(ChatError::UnknownType));
        assert_eq!(registered(json!({"type": "welcome"})), Err(ChatError::UnknownType));
        assert_eq!(registered(json!({"type": "say"})), Err(ChatError::MissingField));
        assert_eq!(registered(json!({"type": "say", "text": 5})), Err(ChatError::MissingField));
        assert_eq!(registered(json!({"type": "say", "text": "x", "room": 5})), Err(ChatError::MissingField));
        assert_eq!(
            registered(json!({"type": "say", "text": "x", "room": null})),
            Ok(Command::Say { room: LOBBY.into(), text: "x".into() })
        );
        assert_eq!(registered(json!({"type": "emit"})), Err(ChatError::MissingField));
        assert_eq!(registered(json!({"type": "rooms", "extra": [1, {"a": null}]})), Ok(Command::Rooms));
    }

    #[test]
    fn the_gate_comes_after_the_type_and_before_the_fields() {
        assert_eq!(parse_value(json!({"type": "hello", "name": null}), false), Err(ChatError::MissingField));
        assert_eq!(parse_value(json!({"type": "hello"}), true), Err(ChatError::AlreadyRegistered));
        assert_eq!(parse_value(json!({"type": "say"}), false), Err(ChatError::NotRegistered));
        assert_eq!(parse_value(json!({"type": "rooms"}), false), Err(ChatError::NotRegistered));
        assert_eq!(parse_value(json!({"type": "fly"}), false), Err(ChatError::UnknownType));
        assert_eq!(parse_value(json!({"name": "x"}), false), Err(ChatError::MissingField));
        assert_eq!(
            parse_value(json!({"type": "hello", "name": "alice"}), false),
            Ok(Command::Hello { name: "alice".into() })
        );
    }

    #[test]
    fn details_name_the_field_or_type() {
        let detail = |text: &str| raw(text).err().and_then(|r| r.detail);
        assert_eq!(detail(r#"{"type":"say","text":1}"#).as_deref(), Some("text"));
        assert_eq!(detail(r#"{"type":"say","room":1}"#).as_deref(), Some("room"), "room is read first");
        assert_eq!(detail(r#"{"type":"private","text":"x"}"#).as_deref(), Some("to"));
        assert_eq!(detail(r#"{"type":"bogus"}"#).as_deref(), Some("bogus"));
        assert_eq!(detail(r#"{"id":1}"#).as_deref(), Some("type"));
        assert_eq!(detail("[]"), None);
    }

    #[test]
    fn ids_number_or_string() {
        for (text, tag) in [
            (r#"{"type":"rooms","id":7}"#, Some("7")),
            (r#"{"type":"rooms","id":"a"}"#, Some(r#""a""#)),
            (r#"{"type":"rooms","id": 1.5 }"#, Some("1.5")),
            (r#"{"type":"rooms","id":-2}"#, Some("-2")),
            (r#"{"type":"rooms","id":true}"#, None),
            (r#"{"type":"rooms","id":null}"#, None),
            (r#"{"type":"rooms","id":[1]}"#, None),
            (r#"{"type":"rooms","id":{"a":1}}"#, None),
        ] {
            assert_eq!(raw(text).ok().and_then(|r| r.tag).as_deref(), tag, "{text}");
        }
        for text in [r#"{"type":"nope","id":3}"#, r#"{"type":"say","id":3}"#] {
            assert_eq!(raw(text).err().and_then(|r| r.tag).as_deref(), Some("3"), "{text}");
        }
        let gate = parse(r#"{"type":"say","id":"g"}"#, MAX, false).err().and_then(|r| r.tag);
        assert_eq!(gate.as_deref(), Some(r#""g""#));
        assert_eq!(raw(r#"{"id":3,"type":"x"} x"#).err().and_then(|r| r.tag), None, "bad_json has no tag");
    }

    #[test]
    fn emit_targets_and_data() {
        assert_eq!(
            registered(json!({"type": "emit", "event": "e"})),
            Ok(Command::Emit { event: "e".into(), data: None, target: EmitTarget::Namespace })
        );
        let Ok(Command::Emit { target, .. }) = registered(json!({"type": "emit", "event": "e", "room": "r"})) else {
            panic!("emit to a room");
        };
        assert_eq!(target, EmitTarget::Room("r".into()));
        let Ok(Command::Emit { target, .. }) =
            registered(json!({"type": "emit", "event": "e", "room": "r", "to": "u"}))
        else {
            panic!("emit to a user");
        };
        assert_eq!(target, EmitTarget::User("u".into()));
        let Ok(Request { command: Command::Emit { data, .. }, .. }) =
            raw(r#"{"type":"emit","event":"e","data": {"x":[1, 2]} }"#)
        else {
            panic!("emit with data");
        };
        assert_eq!(data.as_deref(), Some(r#"{"x":[1, 2]}"#), "raw JSON, verbatim");
        assert_eq!(
            registered(json!({"type": "emit", "event": "e", "room": "r", "to": 7})),
            Err(ChatError::MissingField)
        );
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let Ok(Request { command: Command::Say { room, text }, .. }) =
            raw(r#"{"type":"say","text":"plain","room":"r\u0031"}"#)
        else {
            panic!("a say");
        };
        assert!(matches!(text, Cow::Borrowed("plain")));
        assert!(matches!(room, Cow::Owned(ref r) if r == "r1"));
        // Escaped keys are keys too; the last of a repeated key counts.
        let Ok(Request { command: Command::Say { text, .. }, .. }) =
            raw(r#"{"t\u0079pe":"say","text":"a","text":"b"}"#)
        else {
            panic!("a say");
        };
        assert_eq!(text, "b");
    }

    #[test]
    fn what_value_parsing_refuses_stays_bad_json() {
        for text in [
            r#"{"type":"say","text":"\ud800"}"#,
            r#"{"type":"emit","event":"e","data":"\ud800"}"#,
            r#"{"type":"emit","event":"e","data":1e400}"#,
            r#"{"type":"rooms","junk":["\udc00"]}"#,
            r#"{"type":"rooms","id":1e999}"#,
            r#"{"type":"rooms","x":1,}"#,
        ] {
            assert_eq!(raw(text).map_err(|r| r.error), Err(ChatError::BadJson), "{text}");
        }
        let deep = format!(r#"{{"type":"emit","event":"e","data":{}{}}}"#, "[".repeat(200), "]".repeat(200));
        assert_eq!(raw(&deep).map_err(|r| r.error), Err(ChatError::BadJson), "nesting is limited");
        let shallow = format!(r#"{{"type":"emit","event":"e","data":{}{}}}"#, "[".repeat(100), "]".repeat(100));
        assert!(raw(&shallow).is_ok());
    }

    #[test]
    fn the_size_limit_comes_first() {
        let text = r#"{"type":"say","text":"0123456789"}"#;
        assert!(parse(text, text.len(), true).is_ok(), "exactly the limit is fine");
        let over = parse(text, text.len() - 1, true);
        assert_eq!(over, Err(Rejection::bare(ChatError::TooLarge)));
        assert_eq!(parse("[not even json", 3, true), Err(Rejection::bare(ChatError::TooLarge)));
    }

    #[test]
    fn a_huge_array_fails_at_its_first_byte() {
        // 16 MiB of `[0,0,0,...]`: refused as not an object without being
        // parsed into anything (a Value would hold millions of elements).
        let mut text = String::with_capacity(16 << 20);
        text.push('[');
        while text.len() < (16 << 20) - 2 {
            text.push_str("0,");
        }
        text.push_str("0]");
        let started = std::time::Instant::now();
        assert_eq!(parse(&text, 32 << 20, true), Err(Rejection::bare(ChatError::BadJson)));
        assert!(started.elapsed() < std::time::Duration::from_millis(500), "{:?}", started.elapsed());
    }
}
