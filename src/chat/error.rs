//! Chat request errors (PROTOCOL.md section 4). Each one becomes a reply to
//! the sender, never a disconnect and never anything seen by anyone else.

use std::fmt;

/// A request the hub refused, named after the rule it broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChatError {
    /// Not JSON, or JSON that is not an object.
    BadJson,
    /// `type` is not one of section 3's.
    UnknownType,
    /// A required field is absent or of the wrong JSON type; a legacy
    /// command without its argument.
    MissingField,
    /// The name breaks the section 1 rules.
    NameInvalid,
    /// The name is taken in this namespace.
    NameTaken,
    /// A second `hello`.
    AlreadyRegistered,
    /// Anything but `hello` before registering.
    NotRegistered,
    /// The target is not online in this namespace (or is legacy, for `emit`).
    NoSuchUser,
    /// The room has no members.
    NoSuchRoom,
    /// The room exists, the sender is not in it.
    NotInRoom,
    /// A bad room name, or leaving `lobby`.
    RoomInvalid,
    /// A legacy message over `--max-line`; a `say`/`private` text over it.
    TooLarge,
    /// A legacy line starting with `/` that is no command.
    UnknownCommand,
    /// The server's API closed the connection (`/api/disconnect`).
    Disconnected,
    /// Tokens are on and the connection has none, or a bad one (docs/AUTH.md).
    Unauthorized,
    /// The token does not allow it: another name than its `sub`, a room its
    /// `rooms` claim does not list.
    Forbidden,
    /// The connection's token expired (it is closed).
    TokenExpired,
}

impl ChatError {
    /// The protocol's code string, as sent in `error.code` and `!ERR CODE`.
    pub fn code(self) -> &'static str {
        match self {
            ChatError::BadJson => "bad_json",
            ChatError::UnknownType => "unknown_type",
            ChatError::MissingField => "missing_field",
            ChatError::NameInvalid => "name_invalid",
            ChatError::NameTaken => "name_taken",
            ChatError::AlreadyRegistered => "already_registered",
            ChatError::NotRegistered => "not_registered",
            ChatError::NoSuchUser => "no_such_user",
            ChatError::NoSuchRoom => "no_such_room",
            ChatError::NotInRoom => "not_in_room",
            ChatError::RoomInvalid => "room_invalid",
            ChatError::TooLarge => "too_large",
            ChatError::UnknownCommand => "unknown_command",
            ChatError::Disconnected => "disconnected",
            ChatError::Unauthorized => "unauthorized",
            ChatError::Forbidden => "forbidden",
            ChatError::TokenExpired => "token_expired",
        }
    }

    /// A human-readable explanation for JSON `error.message`.
    /// The message an error event carries: the code's explanation, then the
    /// offending value when there is one.
    pub fn describe(self, detail: Option<&str>) -> String {
        match detail.filter(|d| !d.is_empty()) {
            Some(detail) => format!("{}: {detail}", self.message()),
            None => self.message().to_owned(),
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            ChatError::BadJson => "expected one JSON object",
            ChatError::UnknownType => "unknown message type",
            ChatError::MissingField => "a required field is missing or has the wrong type",
            ChatError::NameInvalid => {
                "a name is 1 to 32 letters, digits, '_', '-' or '.', without '..' and not starting or ending with '.'"
            }
            ChatError::NameTaken => "that name is taken in this namespace",
            ChatError::AlreadyRegistered => "already registered",
            ChatError::NotRegistered => "send hello first",
            ChatError::NoSuchUser => "no such user online",
            ChatError::NoSuchRoom => "no such room",
            ChatError::NotInRoom => "not a member of that room",
            ChatError::RoomInvalid => {
                "a room is 1 to 64 letters, digits, '_', '-' or '.', without '..' and not starting or ending with '.'; lobby cannot be left"
            }
            ChatError::TooLarge => "message too large",
            ChatError::UnknownCommand => "unknown command",
            ChatError::Disconnected => "disconnected by the server",
            ChatError::Unauthorized => "a valid token is required",
            ChatError::Forbidden => "the token does not allow this",
            ChatError::TokenExpired => "token expired",
        }
    }
}

impl fmt::Display for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::error::Error for ChatError {}

/// A refusal plus the offending value (a name, a room, a command word), if
/// any: `!ERR CODE detail` on legacy, appended to `message` on JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub error: ChatError,
    pub detail: String,
}

impl Failure {
    /// A failure with no detail (the reply is just the code).
    pub fn bare(error: ChatError) -> Failure {
        Failure { error, detail: String::new() }
    }

    /// A failure naming the offending value.
    pub fn with(error: ChatError, detail: &str) -> Failure {
        Failure { error, detail: detail.to_owned() }
    }
}

impl From<ChatError> for Failure {
    fn from(error: ChatError) -> Failure {
        Failure::bare(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_protocol_strings() {
        let all = [
            (ChatError::BadJson, "bad_json"),
            (ChatError::UnknownType, "unknown_type"),
            (ChatError::MissingField, "missing_field"),
            (ChatError::NameInvalid, "name_invalid"),
            (ChatError::NameTaken, "name_taken"),
            (ChatError::AlreadyRegistered, "already_registered"),
            (ChatError::NotRegistered, "not_registered"),
            (ChatError::NoSuchUser, "no_such_user"),
            (ChatError::NoSuchRoom, "no_such_room"),
            (ChatError::NotInRoom, "not_in_room"),
            (ChatError::RoomInvalid, "room_invalid"),
            (ChatError::TooLarge, "too_large"),
            (ChatError::UnknownCommand, "unknown_command"),
            (ChatError::Disconnected, "disconnected"),
            (ChatError::Unauthorized, "unauthorized"),
            (ChatError::Forbidden, "forbidden"),
            (ChatError::TokenExpired, "token_expired"),
        ];
        for (error, code) in all {
            assert_eq!(error.code(), code);
            assert_eq!(error.to_string(), code);
            assert!(!error.message().is_empty());
        }
    }
}
