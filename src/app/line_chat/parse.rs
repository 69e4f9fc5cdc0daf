//! Legacy lines into hub requests (PROTOCOL.md section 2). Shape only: which
//! command and its arguments; names, rooms and membership are the hub's.

use std::borrow::Cow;

use crate::chat::{ChatError, Command, LOBBY, Rejection, Request, normalize_name};

/// The separator of a legacy private message: `TARGET..444..REST`.
const PRIVATE_MARK: &str = "..444..";
/// Separates a spoofable sender prefix from the text in a private REST.
const SENDER_MARK: &str = " : ";

/// One legacy message, already framed (NULs, terminator and a trailing `\r`
/// removed, at most `--max-line` bytes). Invalid UTF-8 is replaced by U+FFFD.
///
/// Before registration every message but `/quit` is a name attempt (an empty
/// one too: the hub answers `name_invalid`). After it, an empty message is
/// ignored (`Ok(None)`) and any other is a command ([`parse_legacy`]).
pub fn parse(line: &[u8], registered: bool) -> Result<Option<Request<'_>>, Rejection> {
    match String::from_utf8_lossy(line) {
        Cow::Borrowed(text) => parse_text(text, registered),
        Cow::Owned(text) => parse_text(&text, registered).map(|request| request.map(Request::into_owned)),
    }
}

/// [`parse`] of a line already decoded.
pub fn parse_text(line: &str, registered: bool) -> Result<Option<Request<'_>>, Rejection> {
    if !registered {
        let command = if is_legacy_quit(line) { Command::Quit } else { Command::Hello { name: line.into() } };
        return Ok(Some(Request::new(command)));
    }
    if line.is_empty() {
        return Ok(None);
    }
    parse_legacy(line).map(|command| Some(Request::new(command)))
}

/// Parses one registered user's legacy message (non-empty, already UTF-8).
///
/// Precedence: `TARGET..444..REST` with a valid TARGET name is a private
/// message (a valid name never starts with `/`); then `/command`; anything
/// else goes to `lobby`.
pub fn parse_legacy(line: &str) -> Result<Command<'_>, Rejection> {
    if let Some((target, rest)) = line.split_once(PRIVATE_MARK)
        && normalize_name(target).is_some()
    {
        // Section 2: the part before the first " : " is replaced by the
        // sender's registered name (no spoofing).
        let text = rest.split_once(SENDER_MARK).map_or(rest, |(_, text)| text);
        return Ok(Command::Private { to: target.into(), text: text.into() });
    }
    if line.starts_with('/') {
        return parse_legacy_command(line);
    }
    Ok(Command::Say { room: LOBBY.into(), text: line.into() })
}

/// Whether a not-yet-registered legacy user's message is `/quit`, the only
/// thing that is not a name attempt.
pub fn is_legacy_quit(line: &str) -> bool {
    split_word(line).0 == "/quit"
}

fn parse_legacy_command(line: &str) -> Result<Command<'_>, Rejection> {
    let (word, arg) = split_word(line);
    let arg = arg.trim_matches(is_blank);
    let missing = || Rejection::bare(ChatError::MissingField);
    match word {
        "/join" | "/leave" | "/who" if arg.is_empty() => Err(missing()),
        "/join" => Ok(Command::Join { room: arg.into() }),
        "/leave" => Ok(Command::Leave { room: arg.into() }),
        "/who" => Ok(Command::Who { room: arg.into() }),
        "/msg" => {
            let (room, text) = split_word(arg);
            if room.is_empty() || text.is_empty() {
                return Err(missing());
            }
            Ok(Command::Say { room: room.into(), text: text.into() })
        }
        "/rooms" => Ok(Command::Rooms),
        "/quit" => Ok(Command::Quit),
        _ => Err(Rejection::with(ChatError::UnknownCommand, word)),
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits at the first blank: (`/cmd`, the rest after that one blank).
fn split_word(s: &str) -> (&str, &str) {
    s.split_once(is_blank).unwrap_or((s, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy(line: &str) -> Result<Command<'_>, ChatError> {
        parse_legacy(line).map_err(|r| r.error)
    }

    fn private<'a>(to: &'a str, text: &'a str) -> Result<Command<'a>, ChatError> {
        Ok(Command::Private { to: to.into(), text: text.into() })
    }

    fn say<'a>(room: &'a str, text: &'a str) -> Result<Command<'a>, ChatError> {
        Ok(Command::Say { room: room.into(), text: text.into() })
    }

    #[test]
    fn legacy_private_messages() {
        assert_eq!(legacy("bob..444..alice : hello"), private("bob", "hello"));
        assert_eq!(legacy("bob..444..hello"), private("bob", "hello"));
        assert_eq!(legacy("bob..444..x : y : z"), private("bob", "y : z"));
        assert_eq!(legacy("bob..444..a..444..b"), private("bob", "a..444..b"));
        assert_eq!(legacy("bob..444.."), private("bob", ""));
        // An invalid TARGET makes it an ordinary line.
        assert_eq!(legacy("no one..444..hi"), say(LOBBY, "no one..444..hi"));
        assert_eq!(legacy("..444..hi"), say(LOBBY, "..444..hi"));
    }

    #[test]
    fn legacy_commands() {
        assert_eq!(legacy("/join r1"), Ok(Command::Join { room: "r1".into() }));
        assert_eq!(legacy("/join  r1 "), Ok(Command::Join { room: "r1".into() }));
        assert_eq!(legacy("/leave r1"), Ok(Command::Leave { room: "r1".into() }));
        assert_eq!(legacy("/who r1"), Ok(Command::Who { room: "r1".into() }));
        assert_eq!(legacy("/msg r1 hi there"), say("r1", "hi there"));
        assert_eq!(legacy("/rooms"), Ok(Command::Rooms));
        assert_eq!(legacy("/quit"), Ok(Command::Quit));
        assert_eq!(legacy("/quit now"), Ok(Command::Quit));
        assert_eq!(legacy("hello /join"), say(LOBBY, "hello /join"));
    }

    #[test]
    fn legacy_command_errors() {
        for line in ["/join", "/join ", "/leave", "/who  ", "/msg", "/msg r1", "/msg r1 "] {
            assert_eq!(legacy(line), Err(ChatError::MissingField), "{line:?}");
        }
        for line in ["/", "/JOIN r1", "/joinr1", "/nope", "/x..444..y"] {
            assert_eq!(legacy(line), Err(ChatError::UnknownCommand), "{line:?}");
        }
        assert_eq!(parse_legacy("/nope a b").map_err(|r| r.detail), Err(Some("/nope".to_owned())));
        assert_eq!(parse_legacy("/join").map_err(|r| (r.detail, r.tag)), Err((None, None)));
    }

    #[test]
    fn quit_detection_before_registration() {
        assert!(is_legacy_quit("/quit"));
        assert!(is_legacy_quit("/quit bye"));
        assert!(!is_legacy_quit("/quitter"));
        assert!(!is_legacy_quit("quit"));
    }

    fn command(line: &[u8], registered: bool) -> Result<Option<Command<'_>>, ChatError> {
        parse(line, registered).map(|r| r.map(|r| r.command)).map_err(|r| r.error)
    }

    #[test]
    fn registration_decides_what_a_line_is() {
        // Unregistered: a name attempt, whatever it looks like, but /quit.
        assert_eq!(command(b"alice", false), Ok(Some(Command::Hello { name: "alice".into() })));
        assert_eq!(command(b"", false), Ok(Some(Command::Hello { name: "".into() })));
        assert_eq!(command(b"/join r1", false), Ok(Some(Command::Hello { name: "/join r1".into() })));
        assert_eq!(command(b"/quit", false), Ok(Some(Command::Quit)));
        // Registered: empty lines are ignored, the rest are commands.
        assert_eq!(command(b"", true), Ok(None));
        assert_eq!(command(b"/join r1", true), Ok(Some(Command::Join { room: "r1".into() })));
        assert_eq!(command(b"/dance", true), Err(ChatError::UnknownCommand));
        assert_eq!(command(b"/quit", true), Ok(Some(Command::Quit)));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(command(b"caf\xff!", true), say(LOBBY, "caf\u{fffd}!").map(Some));
        assert_eq!(command(b"\xc3", false), Ok(Some(Command::Hello { name: "\u{fffd}".into() })));
        let Ok(Some(request)) = parse(b"bob..444..\xff", true) else { panic!("a private message") };
        assert_eq!(request.command, Command::Private { to: "bob".into(), text: "\u{fffd}".into() });
        assert_eq!(request.tag, None);
    }
}
