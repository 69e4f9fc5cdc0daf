//! Hub events as Socket.IO packets inside Engine.IO messages, rendered once
//! per delivery for every Socket.IO receiver (all of a delivery's receivers
//! are in its namespace, so the namespace prefix is shared too).
//!
//! A custom event keeps its name and arguments (`42["chat message","hi"]`),
//! binary ones as attachments. Every other event is the `/ws` JSON object
//! under the name of its `type` (`42["message",{...}]`), or, when it answers
//! a request that asked for an ack, that ack (`43<id>[{...}]`).
//!
//! With connection state recovery on, an event a returning session would be
//! given again carries its offset as a last string argument
//! (`42["message",{...},"17"]`), where the reference server puts it and
//! where the client looks for it.

use std::io::Write;
use std::ops::Range;
use std::rc::Rc;

use crate::app::json_chat;
use crate::app::render::Rendered;
use crate::chat::{Event, Tag};
use crate::proto::engineio::PacketType;
use crate::proto::socketio::{Kind, write_header};

/// The Engine.IO message carrying `event` for receivers in `namespace`,
/// logged for recovery at `offset` if it was.
pub fn render(event: &Event, namespace: &str, offset: Option<u64>) -> Option<Rendered> {
    let mut rendered = render_event(event, namespace)?;
    if let Some(offset) = offset
        && let Some(body) = with_offset(&rendered.body, offset)
    {
        rendered.body = body;
    }
    Some(rendered)
}

/// `body`, an event packet ending in its argument array's `]`, with
/// `offset` as one more argument. Per-receiver cuts stay valid: they lie
/// before the end.
fn with_offset(body: &[u8], offset: u64) -> Option<Rc<[u8]>> {
    let (last, head) = body.split_last()?;
    if *last != b']' {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() + 24);
    out.extend_from_slice(head);
    write!(out, ",\"{offset}\"]").ok()?;
    Some(out.into())
}

fn render_event(event: &Event, namespace: &str) -> Option<Rendered> {
    let mut out = Vec::with_capacity(96);
    out.push(PacketType::Message.digit());
    if let Event::Custom { event, data, args, .. } = event {
        match args {
            Some(args) if !args.binary.is_empty() => {
                write_header(&mut out, Kind::BinaryEvent, args.binary.len(), namespace, None);
                out.extend_from_slice(args.json.as_bytes());
                return Some(Rendered { body: out.into(), entries: None, attachments: Some(args.binary.clone()) });
            }
            Some(args) => {
                write_header(&mut out, Kind::Event, 0, namespace, None);
                out.extend_from_slice(args.json.as_bytes());
            }
            None => {
                write_header(&mut out, Kind::Event, 0, namespace, None);
                out.push(b'[');
                out.extend_from_slice(serde_json::to_string(&**event).unwrap_or_default().as_bytes());
                if let Some(data) = data {
                    out.push(b',');
                    out.extend_from_slice(data.as_bytes());
                }
                out.push(b']');
            }
        }
        return Some(Rendered::whole(out));
    }
    let json = json_chat::render::render(event)?;
    match ack_id(event) {
        Some(id) => {
            write_header(&mut out, Kind::Ack, 0, namespace, None);
            out.extend_from_slice(id.as_bytes());
            out.push(b'[');
        }
        None => {
            write_header(&mut out, Kind::Event, 0, namespace, None);
            out.extend_from_slice(b"[\"");
            out.extend_from_slice(event_name(event).as_bytes());
            out.extend_from_slice(b"\",");
        }
    }
    let shift = out.len();
    out.extend_from_slice(&json.body);
    out.push(b']');
    let entries = json.entries.map(|entries| {
        let shifted: Vec<Range<usize>> = entries.iter().map(|r| r.start + shift..r.end + shift).collect();
        Rc::from(shifted)
    });
    Some(Rendered { body: out.into(), entries, attachments: None })
}

/// The ack id an event answers, when its tag is one (Socket.IO's are numbers).
fn ack_id(event: &Event) -> Option<&Tag> {
    let tag = match event {
        Event::Welcome { tag, .. }
        | Event::Members { tag, .. }
        | Event::Rooms { tag, .. }
        | Event::Error { tag, .. } => tag.as_ref(),
        Event::Ack { tag } => Some(tag),
        _ => None,
    }?;
    (!tag.is_empty() && tag.bytes().all(|b| b.is_ascii_digit())).then_some(tag)
}

/// The event name a hub event is emitted under: its `/ws` type.
fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Welcome { .. } => "welcome",
        Event::Message { .. } => "message",
        Event::Private { .. } => "private",
        Event::Joined { .. } => "joined",
        Event::Left { .. } => "left",
        Event::Custom { .. } => "event",
        Event::Presence { .. } => "users",
        Event::Members { .. } => "members",
        Event::Rooms { .. } => "rooms",
        Event::Ack { .. } => "ack",
        Event::Error { .. } => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::RawArgs;

    fn rc(s: &str) -> Rc<str> {
        Rc::from(s)
    }

    fn text(event: &Event, namespace: &str) -> String {
        String::from_utf8(render(event, namespace, None).unwrap().payload(None)).unwrap()
    }

    #[test]
    fn chat_events_are_emitted_under_their_type() {
        let message = Event::Message { room: rc("lobby"), from: rc("bob"), text: rc("hi"), mark: None };
        assert_eq!(text(&message, "/"), r#"42["message",{"type":"message","room":"lobby","from":"bob","text":"hi"}]"#);
        assert_eq!(
            text(&message, "/chat"),
            r#"42/chat,["message",{"type":"message","room":"lobby","from":"bob","text":"hi"}]"#
        );
        let ack = Event::Ack { tag: rc("12") };
        assert_eq!(text(&ack, "/"), r#"4312[{"type":"ack","id":12}]"#);
    }

    #[test]
    fn presence_lists_are_cut_per_receiver() {
        let names: Rc<[Rc<str>]> = Rc::from(vec![rc("a"), rc("b"), rc("c")]);
        let rendered = render(&Event::Presence { names }, "/", None).unwrap();
        let cut = |i| String::from_utf8(rendered.payload(Some(i))).unwrap();
        assert_eq!(cut(0), r#"42["users",{"type":"users","users":["b","c"]}]"#);
        assert_eq!(cut(2), r#"42["users",{"type":"users","users":["a","b"]}]"#);
    }

    #[test]
    fn custom_events_keep_their_arguments() {
        let from_ws = Event::Custom { event: rc("typing"), data: Some(rc("1")), from: None, room: None, args: None };
        assert_eq!(text(&from_ws, "/"), r#"42["typing",1]"#);
        let args = Rc::new(RawArgs { json: rc(r#"["chat message","hi",2]"#), binary: Rc::from(Vec::new()) });
        let relayed = Event::Custom { event: rc("chat message"), data: None, from: None, room: None, args: Some(args) };
        assert_eq!(text(&relayed, "/a"), r#"42/a,["chat message","hi",2]"#);
        let binary: Rc<[Rc<[u8]>]> = Rc::from(vec![Rc::from(&[1u8, 2][..])]);
        let args = Rc::new(RawArgs { json: rc(r#"["f",{"_placeholder":true,"num":0}]"#), binary });
        let rendered =
            render(&Event::Custom { event: rc("f"), data: None, from: None, room: None, args: Some(args) }, "/", None)
                .unwrap();
        assert_eq!(&*rendered.body, br#"451-["f",{"_placeholder":true,"num":0}]"#);
        assert_eq!(rendered.attachments.unwrap().len(), 1);
    }

    #[test]
    fn a_logged_event_carries_its_offset_last() {
        let message = Event::Message { room: rc("lobby"), from: rc("bob"), text: rc("hi"), mark: None };
        let body =
            |event: &Event, offset| String::from_utf8(render(event, "/a", offset).unwrap().payload(None)).unwrap();
        assert_eq!(
            body(&message, Some(17)),
            r#"42/a,["message",{"type":"message","room":"lobby","from":"bob","text":"hi"},"17"]"#
        );
        let args = Rc::new(RawArgs { json: rc(r#"["chat message","hi"]"#), binary: Rc::from(Vec::new()) });
        let relayed = Event::Custom { event: rc("chat message"), data: None, from: None, room: None, args: Some(args) };
        assert_eq!(body(&relayed, Some(3)), r#"42/a,["chat message","hi","3"]"#);
        let names: Rc<[Rc<str>]> = Rc::from(vec![rc("a"), rc("b")]);
        let rendered = render(&Event::Presence { names }, "/", Some(9)).unwrap();
        assert_eq!(
            String::from_utf8(rendered.payload(Some(0))).unwrap(),
            r#"42["users",{"type":"users","users":["b"]},"9"]"#
        );
    }
}
