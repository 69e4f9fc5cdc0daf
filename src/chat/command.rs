//! Client requests: a legacy line or a JSON event parsed into one [`Command`].
//! Parsing only checks shape (which command, which fields, their JSON types);
//! names, rooms and membership are the hub's business.

use serde_json::{Map, Value};

use super::error::{ChatError, Failure};
use super::names::normalize_name;

/// The room every user is in and plain legacy lines go to.
pub(crate) const LOBBY: &str = "lobby";

/// One request, borrowing from the line or the parsed JSON.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Command<'a> {
    /// Register under `name` (JSON `hello`; a legacy user's first message).
    Hello {
        name: &'a str,
    },
    /// A message to the other members of `room`.
    Say {
        room: &'a str,
        text: &'a str,
    },
    /// A private message to the user `to`.
    Private {
        to: &'a str,
        text: &'a str,
    },
    Join {
        room: &'a str,
    },
    Leave {
        room: &'a str,
    },
    /// A custom event for JSON receivers only (section 3 `emit`).
    Emit {
        event: &'a str,
        data: Option<&'a Value>,
        target: EmitTarget<'a>,
    },
    Who {
        room: &'a str,
    },
    Rooms,
    Quit,
}

/// Where an `emit` goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EmitTarget<'a> {
    /// Every JSON user of the namespace but the sender.
    Namespace,
    Room(&'a str),
    User(&'a str),
}

/// The separator of a legacy private message: `TARGET..444..REST`.
const PRIVATE_MARK: &str = "..444..";
/// Separates a spoofable sender prefix from the text in a private REST.
const SENDER_MARK: &str = " : ";

/// Parses one registered user's legacy message (non-empty, already UTF-8).
///
/// Precedence: `TARGET..444..REST` with a valid TARGET name is a private
/// message (a valid name never starts with `/`); then `/command`; anything
/// else goes to `lobby`.
pub(crate) fn parse_legacy(line: &str) -> Result<Command<'_>, Failure> {
    if let Some((target, rest)) = line.split_once(PRIVATE_MARK)
        && normalize_name(target).is_some()
    {
        // Section 2: the part before the first " : " is replaced by the
        // sender's registered name (no spoofing).
        let text = rest.split_once(SENDER_MARK).map_or(rest, |(_, text)| text);
        return Ok(Command::Private { to: target, text });
    }
    if line.starts_with('/') {
        return parse_legacy_command(line);
    }
    Ok(Command::Say { room: LOBBY, text: line })
}

/// Whether a not-yet-registered legacy user's message is `/quit`, the only
/// thing that is not a name attempt.
pub(crate) fn is_legacy_quit(line: &str) -> bool {
    split_word(line).0 == "/quit"
}

fn parse_legacy_command(line: &str) -> Result<Command<'_>, Failure> {
    let (word, arg) = split_word(line);
    let arg = arg.trim_matches(is_blank);
    let missing = || Failure::bare(ChatError::MissingField);
    match word {
        "/join" | "/leave" | "/who" if arg.is_empty() => Err(missing()),
        "/join" => Ok(Command::Join { room: arg }),
        "/leave" => Ok(Command::Leave { room: arg }),
        "/who" => Ok(Command::Who { room: arg }),
        "/msg" => {
            let (room, text) = split_word(arg);
            if room.is_empty() || text.is_empty() {
                return Err(missing());
            }
            Ok(Command::Say { room, text })
        }
        "/rooms" => Ok(Command::Rooms),
        "/quit" => Ok(Command::Quit),
        _ => Err(Failure::with(ChatError::UnknownCommand, word)),
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits at the first blank: (`/cmd`, the rest after that one blank).
fn split_word(s: &str) -> (&str, &str) {
    s.split_once(is_blank).unwrap_or((s, ""))
}

/// The `type` of a JSON request, checked before registration so that
/// malformed requests get their own error whatever the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JsonType {
    Hello,
    Say,
    Private,
    Join,
    Leave,
    Emit,
    Who,
    Rooms,
}

/// A JSON request before its fields are read: its type, its `id` (a number
/// or a string; any other `id` is ignored) and the object itself.
#[derive(Debug)]
pub(crate) struct JsonRequest<'a> {
    pub kind: JsonType,
    pub id: Option<&'a Value>,
    pub object: &'a Map<String, Value>,
}

/// Checks a parsed JSON text's shape. `Err` carries the `id` to answer with
/// when there is one.
///
/// Precedence: not an object → `bad_json` (no id); `type` absent or not a
/// string → `missing_field`; a string that is no request type →
/// `unknown_type`.
pub(crate) fn parse_json_request(value: &Value) -> Result<JsonRequest<'_>, (Failure, Option<&Value>)> {
    let Value::Object(object) = value else {
        return Err((Failure::bare(ChatError::BadJson), None));
    };
    let id = object.get("id").filter(|id| id.is_number() || id.is_string());
    let kind = match object.get("type") {
        Some(Value::String(kind)) => match kind.as_str() {
            "hello" => JsonType::Hello,
            "say" => JsonType::Say,
            "private" => JsonType::Private,
            "join" => JsonType::Join,
            "leave" => JsonType::Leave,
            "emit" => JsonType::Emit,
            "who" => JsonType::Who,
            "rooms" => JsonType::Rooms,
            other => return Err((Failure::with(ChatError::UnknownType, other), id)),
        },
        _ => return Err((Failure::with(ChatError::MissingField, "type"), id)),
    };
    Ok(JsonRequest { kind, id, object })
}

impl<'a> JsonRequest<'a> {
    /// Reads the fields of the request's type. A required field absent, null
    /// or not a string is `missing_field`; an optional one (`room`, `to`)
    /// may be absent or null but, when present, must be a string.
    pub(crate) fn command(&self) -> Result<Command<'a>, Failure> {
        Ok(match self.kind {
            JsonType::Hello => Command::Hello { name: self.required("name")? },
            JsonType::Say => {
                Command::Say { room: self.optional("room")?.unwrap_or(LOBBY), text: self.required("text")? }
            }
            JsonType::Private => Command::Private { to: self.required("to")?, text: self.required("text")? },
            JsonType::Join => Command::Join { room: self.required("room")? },
            JsonType::Leave => Command::Leave { room: self.required("room")? },
            JsonType::Emit => {
                let event = self.required("event")?;
                let room = self.optional("room")?;
                let to = self.optional("to")?;
                // Both given: the single user is the narrower, more deliberate target.
                let target = match (to, room) {
                    (Some(to), _) => EmitTarget::User(to),
                    (None, Some(room)) => EmitTarget::Room(room),
                    (None, None) => EmitTarget::Namespace,
                };
                Command::Emit { event, data: self.object.get("data"), target }
            }
            JsonType::Who => Command::Who { room: self.required("room")? },
            JsonType::Rooms => Command::Rooms,
        })
    }

    fn required(&self, key: &str) -> Result<&'a str, Failure> {
        match self.object.get(key) {
            Some(Value::String(s)) => Ok(s),
            _ => Err(Failure::with(ChatError::MissingField, key)),
        }
    }

    fn optional(&self, key: &str) -> Result<Option<&'a str>, Failure> {
        match self.object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Failure::with(ChatError::MissingField, key)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn legacy(line: &str) -> Result<Command<'_>, ChatError> {
        parse_legacy(line).map_err(|f| f.error)
    }

    #[test]
    fn legacy_private_messages() {
        assert_eq!(legacy("bob..444..alice : hello"), Ok(Command::Private { to: "bob", text: "hello" }));
        assert_eq!(legacy("bob..444..hello"), Ok(Command::Private { to: "bob", text: "hello" }));
        assert_eq!(legacy("bob..444..x : y : z"), Ok(Command::Private { to: "bob", text: "y : z" }));
        assert_eq!(legacy("bob..444..a..444..b"), Ok(Command::Private { to: "bob", text: "a..444..b" }));
        assert_eq!(legacy("bob..444.."), Ok(Command::Private { to: "bob", text: "" }));
        // An invalid TARGET makes it an ordinary line.
        assert_eq!(legacy("no one..444..hi"), Ok(Command::Say { room: LOBBY, text: "no one..444..hi" }));
        assert_eq!(legacy("..444..hi"), Ok(Command::Say { room: LOBBY, text: "..444..hi" }));
    }

    #[test]
    fn legacy_commands() {
        assert_eq!(legacy("/join r1"), Ok(Command::Join { room: "r1" }));
        assert_eq!(legacy("/join  r1 "), Ok(Command::Join { room: "r1" }));
        assert_eq!(legacy("/leave r1"), Ok(Command::Leave { room: "r1" }));
        assert_eq!(legacy("/who r1"), Ok(Command::Who { room: "r1" }));
        assert_eq!(legacy("/msg r1 hi there"), Ok(Command::Say { room: "r1", text: "hi there" }));
        assert_eq!(legacy("/rooms"), Ok(Command::Rooms));
        assert_eq!(legacy("/quit"), Ok(Command::Quit));
        assert_eq!(legacy("/quit now"), Ok(Command::Quit));
        assert_eq!(legacy("hello /join"), Ok(Command::Say { room: LOBBY, text: "hello /join" }));
    }

    #[test]
    fn legacy_command_errors() {
        for line in ["/join", "/join ", "/leave", "/who  ", "/msg", "/msg r1", "/msg r1 "] {
            assert_eq!(legacy(line), Err(ChatError::MissingField), "{line:?}");
        }
        for line in ["/", "/JOIN r1", "/joinr1", "/nope", "/x..444..y"] {
            assert_eq!(legacy(line), Err(ChatError::UnknownCommand), "{line:?}");
        }
        assert_eq!(parse_legacy("/nope a b").map_err(|f| f.detail), Err("/nope".to_owned()));
    }

    #[test]
    fn quit_detection_before_registration() {
        assert!(is_legacy_quit("/quit"));
        assert!(is_legacy_quit("/quit bye"));
        assert!(!is_legacy_quit("/quitter"));
        assert!(!is_legacy_quit("quit"));
    }

    fn json(value: Value) -> Result<Command<'static>, ChatError> {
        let value: &'static Value = Box::leak(Box::new(value));
        parse_json_request(value).map_err(|(f, _)| f.error)?.command().map_err(|f| f.error)
    }

    #[test]
    fn json_shapes() {
        assert_eq!(json(json!([1])), Err(ChatError::BadJson));
        assert_eq!(json(json!("hello")), Err(ChatError::BadJson));
        assert_eq!(json(json!({})), Err(ChatError::MissingField));
        assert_eq!(json(json!({"type": 3})), Err(ChatError::MissingField));
        assert_eq!(json(json!({"type": "dance"})), Err(ChatError::UnknownType));
        assert_eq!(json(json!({"type": "welcome"})), Err(ChatError::UnknownType));
        assert_eq!(json(json!({"type": "say"})), Err(ChatError::MissingField));
        assert_eq!(json(json!({"type": "say", "text": 5})), Err(ChatError::MissingField));
        assert_eq!(json(json!({"type": "say", "text": "x", "room": 5})), Err(ChatError::MissingField));
        assert_eq!(
            json(json!({"type": "say", "text": "x", "room": null})),
            Ok(Command::Say { room: LOBBY, text: "x" })
        );
        assert_eq!(json(json!({"type": "hello", "name": null})), Err(ChatError::MissingField));
        assert_eq!(json(json!({"type": "emit"})), Err(ChatError::MissingField));
    }

    #[test]
    fn json_ids() {
        for (value, id) in [
            (json!({"type": "rooms", "id": 7}), Some(json!(7))),
            (json!({"type": "rooms", "id": "a"}), Some(json!("a"))),
            (json!({"type": "rooms", "id": 1.5}), Some(json!(1.5))),
            (json!({"type": "rooms", "id": true}), None),
            (json!({"type": "rooms", "id": null}), None),
            (json!({"type": "rooms", "id": [1]}), None),
            (json!({"type": "rooms", "id": {"a": 1}}), None),
        ] {
            assert_eq!(parse_json_request(&value).ok().and_then(|r| r.id.cloned()), id);
        }
        let bad = json!({"type": "nope", "id": 3});
        assert_eq!(parse_json_request(&bad).err().and_then(|(_, id)| id.cloned()), Some(json!(3)));
    }

    #[test]
    fn json_emit_targets() {
        let cmd = json(json!({"type": "emit", "event": "e"}));
        assert_eq!(cmd, Ok(Command::Emit { event: "e", data: None, target: EmitTarget::Namespace }));
        let Ok(Command::Emit { target, .. }) = json(json!({"type": "emit", "event": "e", "room": "r"})) else {
            panic!("emit to a room");
        };
        assert_eq!(target, EmitTarget::Room("r"));
        let Ok(Command::Emit { target, .. }) = json(json!({"type": "emit", "event": "e", "room": "r", "to": "u"}))
        else {
            panic!("emit to a user");
        };
        assert_eq!(target, EmitTarget::User("u"));
    }
}
