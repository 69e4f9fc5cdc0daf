//! Socket.IO protocol 5 packets, carried in Engine.IO messages: the packet
//! header (type, attachment count, namespace, ack id), the JSON payload each
//! type may carry, and the binary placeholders. Sans-IO. A packet that does
//! not decode is a parse error, after which the reference server closes the
//! whole connection; the checks follow its decoder, and refuse what its
//! security advisories were about (non-string event names, attachment
//! counts and indexes out of range, ack ids past a safe integer).

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::Value;
use serde_json::value::RawValue;

/// The largest ack id: JavaScript's largest safe integer, as clients count.
pub const MAX_ACK_ID: u64 = (1 << 53) - 1;

/// Event names the reference server keeps for itself.
const RESERVED_EVENTS: [&str; 6] =
    ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

/// A packet's type, the digit that starts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    BinaryEvent,
    BinaryAck,
}

impl Kind {
    fn digit(self) -> u8 {
        match self {
            Kind::Connect => b'0',
            Kind::Disconnect => b'1',
            Kind::Event => b'2',
            Kind::Ack => b'3',
            Kind::ConnectError => b'4',
            Kind::BinaryEvent => b'5',
            Kind::BinaryAck => b'6',
        }
    }

    fn from_digit(digit: u8) -> Option<Kind> {
        Some(match digit {
            b'0' => Kind::Connect,
            b'1' => Kind::Disconnect,
            b'2' => Kind::Event,
            b'3' => Kind::Ack,
            b'4' => Kind::ConnectError,
            b'5' => Kind::BinaryEvent,
            b'6' => Kind::BinaryAck,
            _ => return None,
        })
    }

    /// Whether binary attachments follow the packet.
    pub fn is_binary(self) -> bool {
        matches!(self, Kind::BinaryEvent | Kind::BinaryAck)
    }
}

/// One decoded packet. `data` is the payload's raw JSON text, already
/// checked to be what the type allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub kind: Kind,
    /// Binary messages that follow (binary types only).
    pub attachments: usize,
    /// `/` when the packet names none.
    pub namespace: &'a str,
    pub id: Option<u64>,
    pub data: Option<&'a str>,
}

/// Why a packet did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    UnknownType,
    /// The attachment count is not a number followed by `-`.
    IllegalAttachments,
    TooManyAttachments,
    /// An ack id past [`MAX_ACK_ID`].
    BadAckId,
    /// The payload is not JSON.
    BadJson,
    /// The payload is JSON but not what the type allows (an event that is
    /// not an array starting with a usable name, a placeholder out of range).
    InvalidPayload,
}

/// Decodes one packet (the text of an Engine.IO message). Binary packets
/// may announce at most `max_attachments` attachments, and each placeholder
/// in their payload must name one of them.
pub fn decode(text: &str, max_attachments: usize) -> Result<Packet<'_>, DecodeError> {
    let bytes = text.as_bytes();
    let kind = bytes.first().and_then(|&d| Kind::from_digit(d)).ok_or(DecodeError::UnknownType)?;
    let mut rest = text.get(1..).unwrap_or("");
    let mut attachments = 0;
    if kind.is_binary() {
        let (count, after) = rest.split_once('-').ok_or(DecodeError::IllegalAttachments)?;
        if count.is_empty() || count.len() > 9 || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DecodeError::IllegalAttachments);
        }
        attachments = count.parse().map_err(|_| DecodeError::IllegalAttachments)?;
        if attachments > max_attachments {
            return Err(DecodeError::TooManyAttachments);
        }
        rest = after;
    }
    let mut namespace = "/";
    if rest.starts_with('/') {
        // Up to the comma, or to the end: `40/custom` names `/custom` too.
        let (name, after) = rest.split_once(',').unwrap_or((rest, ""));
        namespace = name;
        rest = after;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let mut id = None;
    if digits > 0 {
        let (number, after) = rest.split_at(digits);
        let value = if digits <= 16 { number.parse::<u64>().ok() } else { None };
        id = Some(value.filter(|&v| v <= MAX_ACK_ID).ok_or(DecodeError::BadAckId)?);
        rest = after;
    }
    let data = if rest.is_empty() { None } else { Some(rest) };
    check_payload(kind, data, attachments)?;
    Ok(Packet { kind, attachments, namespace, id, data })
}

/// What each type may carry (the reference decoder's `isPayloadValid`,
/// with empty event names refused too).
fn check_payload(kind: Kind, data: Option<&str>, attachments: usize) -> Result<(), DecodeError> {
    let Some(data) = data else {
        return match kind {
            Kind::Connect | Kind::Disconnect => Ok(()),
            _ => Err(DecodeError::InvalidPayload),
        };
    };
    match kind {
        Kind::Connect => {
            let value: &RawValue = serde_json::from_str(data).map_err(|_| DecodeError::BadJson)?;
            if !value.get().starts_with('{') {
                return Err(DecodeError::InvalidPayload);
            }
        }
        Kind::Disconnect => return Err(DecodeError::InvalidPayload),
        Kind::ConnectError => {
            let value: &RawValue = serde_json::from_str(data).map_err(|_| DecodeError::BadJson)?;
            if !matches!(value.get().as_bytes().first(), Some(b'{' | b'"')) {
                return Err(DecodeError::InvalidPayload);
            }
        }
        Kind::Event | Kind::BinaryEvent => {
            event_name(data)?;
        }
        Kind::Ack | Kind::BinaryAck => {
            let _: Vec<&RawValue> = serde_json::from_str(data).map_err(|_| invalid_unless_json(data))?;
        }
    }
    if kind.is_binary() {
        let value: Value = serde_json::from_str(data).map_err(|_| DecodeError::BadJson)?;
        check_placeholders(&value, attachments)?;
    }
    Ok(())
}

/// `BadJson` if `data` is not JSON at all, else `InvalidPayload`.
fn invalid_unless_json(data: &str) -> DecodeError {
    match serde_json::from_str::<&RawValue>(data) {
        Ok(_) => DecodeError::InvalidPayload,
        Err(_) => DecodeError::BadJson,
    }
}

/// The name of an event packet's payload (an array whose first element is
/// a non-empty string that is not reserved), and the byte offset in `data`
/// where its arguments start, if it has any.
pub fn event_name(data: &str) -> Result<(Cow<'_, str>, Option<usize>), DecodeError> {
    let items: Vec<&RawValue> = serde_json::from_str(data).map_err(|_| invalid_unless_json(data))?;
    let first = items.first().ok_or(DecodeError::InvalidPayload)?;
    let name: Cow<'_, str> = serde_json::from_str(first.get()).map_err(|_| DecodeError::InvalidPayload)?;
    if name.is_empty() || RESERVED_EVENTS.contains(&&*name) {
        return Err(DecodeError::InvalidPayload);
    }
    let args_start = items.get(1).map(|second| offset_in(data, second.get()));
    Ok((name, args_start))
}

/// The arguments of an event (or all items of an ack) as the text between
/// the brackets: `data[start..]` up to its closing `]`.
pub fn arguments(data: &str, start: Option<usize>) -> Option<&str> {
    let end = data.rfind(']')?;
    data.get(start?..end)
}

/// Where `part`, a slice of `whole`, starts in it.
fn offset_in(whole: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize).min(whole.len())
}

/// Every `{"_placeholder":true,...}` must carry an integer `num` below the
/// attachment count (the reference decoder's check when it reconstructs).
fn check_placeholders(value: &Value, attachments: usize) -> Result<(), DecodeError> {
    match value {
        Value::Object(map) => {
            if map.get("_placeholder") == Some(&Value::Bool(true)) {
                let num = map.get("num").and_then(Value::as_u64);
                return match num {
                    Some(n) if n < attachments as u64 => Ok(()),
                    _ => Err(DecodeError::InvalidPayload),
                };
            }
            map.values().try_for_each(|v| check_placeholders(v, attachments))
        }
        Value::Array(items) => items.iter().try_for_each(|v| check_placeholders(v, attachments)),
        _ => Ok(()),
    }
}

/// Replaces each placeholder in `data` by its attachment as a base64
/// string (how receivers without binary frames get binary arguments).
pub fn inline_attachments(data: &str, attachments: &[impl AsRef<[u8]>]) -> Option<String> {
    use base64::Engine as _;
    fn walk(value: &mut Value, attachments: &[impl AsRef<[u8]>]) {
        match value {
            Value::Object(map) => {
                if map.get("_placeholder") == Some(&Value::Bool(true)) {
                    let index = map.get("num").and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok());
                    if let Some(bytes) = index.and_then(|i| attachments.get(i)) {
                        *value = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes.as_ref()));
                    }
                    return;
                }
                map.values_mut().for_each(|v| walk(v, attachments));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, attachments)),
            _ => {}
        }
    }
    let mut value: Value = serde_json::from_str(data).ok()?;
    walk(&mut value, attachments);
    serde_json::to_string(&value).ok()
}

/// Writes a packet header: type, `N-` for binary types, `/ns,` unless the
/// namespace is `/`, then the ack id. The payload follows.
pub fn write_header(out: &mut Vec<u8>, kind: Kind, attachments: usize, namespace: &str, id: Option<u64>) {
    out.push(kind.digit());
    if kind.is_binary() {
        push_number(out, attachments as u64);
        out.push(b'-');
    }
    if namespace != "/" {
        out.extend_from_slice(namespace.as_bytes());
        out.push(b',');
    }
    if let Some(id) = id {
        push_number(out, id);
    }
}

fn push_number(out: &mut Vec<u8>, n: u64) {
    let mut text = String::new();
    let _ = write!(text, "{n}");
    out.extend_from_slice(text.as_bytes());
}

/// The answer to a CONNECT: `0`, the namespace, `{"sid":...}`.
pub fn connect_ok(namespace: &str, sid: &str, pid: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + namespace.len());
    write_header(&mut out, Kind::Connect, 0, namespace, None);
    out.extend_from_slice(br#"{"sid":""#);
    out.extend_from_slice(sid.as_bytes());
    if let Some(pid) = pid {
        // The private session id, with connection state recovery on.
        out.extend_from_slice(br#"","pid":""#);
        out.extend_from_slice(pid.as_bytes());
    }
    out.extend_from_slice(br#""}"#);
    out
}

/// A CONNECT_ERROR with `{"message":...}` and, when given, `data`.
pub fn connect_error(namespace: &str, message: &str, data: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + namespace.len());
    write_header(&mut out, Kind::ConnectError, 0, namespace, None);
    out.extend_from_slice(br#"{"message":"#);
    out.extend_from_slice(serde_json::to_string(message).unwrap_or_default().as_bytes());
    if let Some(data) = data {
        out.extend_from_slice(br#","data":"#);
        out.extend_from_slice(data.as_bytes());
    }
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(text: &str) -> Result<Packet<'_>, DecodeError> {
        decode(text, 10)
    }

    #[test]
    fn headers() {
        let p = packet("0").unwrap();
        assert_eq!((p.kind, p.namespace, p.id, p.data), (Kind::Connect, "/", None, None));
        let p = packet(r#"0/custom,{"token":"abc"}"#).unwrap();
        assert_eq!((p.namespace, p.data), ("/custom", Some(r#"{"token":"abc"}"#)));
        assert_eq!(packet("0/random").unwrap().namespace, "/random");
        assert_eq!(packet("1/custom").unwrap().kind, Kind::Disconnect);
        let p = packet(r#"2456["message-with-ack",1]"#).unwrap();
        assert_eq!((p.kind, p.id, p.data), (Kind::Event, Some(456), Some(r#"["message-with-ack",1]"#)));
        let p = packet(r#"2/chat,7["a"]"#).unwrap();
        assert_eq!((p.namespace, p.id), ("/chat", Some(7)));
        let p = packet(r#"52-789["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#).unwrap();
        assert_eq!((p.kind, p.attachments, p.id), (Kind::BinaryEvent, 2, Some(789)));
        let p = packet(r#"61-/a,3[{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!((p.kind, p.attachments, p.namespace, p.id), (Kind::BinaryAck, 1, "/a", Some(3)));
        assert_eq!(packet(r#"3[]"#).unwrap().kind, Kind::Ack);
        assert_eq!(packet(r#"4{"message":"x"}"#).unwrap().kind, Kind::ConnectError);
    }

    #[test]
    fn hostile_packets() {
        use DecodeError::*;
        let cases: &[(&str, DecodeError)] = &[
            ("", UnknownType),
            ("7", UnknownType),
            ("abc", UnknownType),
            ("2", InvalidPayload),
            ("2{}", InvalidPayload),
            ("2[]", InvalidPayload),
            ("2[1]", InvalidPayload),
            (r#"2[""]"#, InvalidPayload),
            (r#"2["connect"]"#, InvalidPayload),
            (r#"2abc["m"]"#, BadJson),
            (r#"299999999999999999999["m"]"#, BadAckId),
            (r#"29007199254740992["m"]"#, BadAckId),
            (r#"5["m"]"#, IllegalAttachments),
            (r#"5x-["m"]"#, IllegalAttachments),
            (r#"5-["m"]"#, IllegalAttachments),
            (r#"511-["m"]"#, TooManyAttachments),
            (r#"5999999999999-["m"]"#, IllegalAttachments),
            (r#"51-["m",{"_placeholder":true,"num":1}]"#, InvalidPayload),
            (r#"51-["m",{"_placeholder":true,"num":"0"}]"#, InvalidPayload),
            (r#"51-["m",{"_placeholder":true,"num":-1}]"#, InvalidPayload),
            (r#"51-["m",{"_placeholder":true,"num":0.5}]"#, InvalidPayload),
            (r#"51-["m",{"a":[{"_placeholder":true}]}]"#, InvalidPayload),
            ("0[]", InvalidPayload),
            ("0x", BadJson),
            ("1{}", InvalidPayload),
            ("3{}", InvalidPayload),
            ("44", InvalidPayload),
        ];
        for (text, error) in cases {
            assert_eq!(packet(text).map(|_| ()), Err(*error), "{text:?}");
        }
        assert_eq!(packet(&format!("2{}", MAX_ACK_ID)).map(|_| ()), Err(DecodeError::InvalidPayload));
        assert_eq!(packet(&format!(r#"2{}["m"]"#, MAX_ACK_ID)).unwrap().id, Some(MAX_ACK_ID));
    }

    #[test]
    fn event_names_and_arguments() {
        let data = r#"["chat message","hi",{"a":1}]"#;
        let (name, start) = event_name(data).unwrap();
        assert_eq!((&*name, &data[start.unwrap()..]), ("chat message", r#""hi",{"a":1}]"#));
        let (name, start) = event_name(r#"["x"]"#).unwrap();
        assert_eq!((&*name, start), ("x", None));
        let (name, _) = event_name(r#"["\u0061b"]"#).unwrap();
        assert_eq!(name, "ab");
    }

    #[test]
    fn attachments_inline_as_base64() {
        let data = r#"["m",{"_placeholder":true,"num":1},[{"_placeholder":true,"num":0}]]"#;
        let inlined = inline_attachments(data, &[vec![1u8, 2, 3], vec![4, 5, 6]]).unwrap();
        assert_eq!(inlined, r#"["m","BAUG",["AQID"]]"#);
    }

    #[test]
    fn encoding() {
        let mut out = Vec::new();
        write_header(&mut out, Kind::BinaryAck, 2, "/", Some(789));
        assert_eq!(out, b"62-789");
        out.clear();
        write_header(&mut out, Kind::Event, 0, "/chat", None);
        assert_eq!(out, b"2/chat,");
        assert_eq!(connect_ok("/", "x", None), br#"0{"sid":"x"}"#);
        assert_eq!(connect_ok("/a", "x", Some("p")), br#"0/a,{"sid":"x","pid":"p"}"#);
        assert_eq!(connect_error("/random", "Invalid namespace", None), br#"4/random,{"message":"Invalid namespace"}"#);
    }
}
