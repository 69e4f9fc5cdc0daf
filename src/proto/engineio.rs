//! Engine.IO protocol 4 packets (the transport under Socket.IO): the packet
//! types, the long-polling payload (records joined by `\x1e`, binary as `b`
//! and base64) and the open packet. Sans-IO: text in, packets out, and back.

use std::borrow::Cow;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The protocol revision this module speaks (`EIO=4`).
pub const PROTOCOL: u8 = 4;

/// The byte that separates packets in a long-polling payload.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// A packet's type, the digit that starts its text form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketType {
    Open,
    Close,
    Ping,
    Pong,
    Message,
    Upgrade,
    Noop,
}

impl PacketType {
    pub fn digit(self) -> u8 {
        match self {
            PacketType::Open => b'0',
            PacketType::Close => b'1',
            PacketType::Ping => b'2',
            PacketType::Pong => b'3',
            PacketType::Message => b'4',
            PacketType::Upgrade => b'5',
            PacketType::Noop => b'6',
        }
    }

    fn from_digit(digit: u8) -> Option<PacketType> {
        Some(match digit {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            _ => return None,
        })
    }
}

/// One packet from a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A packet without data of its own, or whose data the server ignores
    /// (`1` close, `5` upgrade, `6` noop, and `0` open, which no client sends).
    Control(PacketType),
    /// `2` with its data (`probe` during an upgrade).
    Ping(&'a str),
    /// `3` with its data.
    Pong(&'a str),
    /// `4`: a text message.
    Text(&'a str),
    /// A binary message: a WebSocket binary frame, or a `b` record.
    Binary(Cow<'a, [u8]>),
}

/// Input that is not an Engine.IO packet: the reference server closes the
/// session ("parse error").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadPacket;

/// One packet in text form: a WebSocket text frame, or one record of a
/// long-polling payload that does not start with `b`.
pub fn decode_text(text: &str) -> Result<Packet<'_>, BadPacket> {
    let (&digit, _) = text.as_bytes().split_first().ok_or(BadPacket)?;
    let data = text.get(1..).ok_or(BadPacket)?;
    Ok(match PacketType::from_digit(digit).ok_or(BadPacket)? {
        PacketType::Ping => Packet::Ping(data),
        PacketType::Pong => Packet::Pong(data),
        PacketType::Message => Packet::Text(data),
        other => Packet::Control(other),
    })
}

/// The packets of a long-polling POST body, at most `max_packets` of them
/// (more is an error: a flood of tiny packets is refused whole).
pub fn decode_payload(body: &[u8], max_packets: usize) -> Result<Vec<Packet<'_>>, BadPacket> {
    let text = std::str::from_utf8(body).map_err(|_| BadPacket)?;
    let mut packets = Vec::new();
    for record in text.split(char::from(RECORD_SEPARATOR)) {
        if packets.len() == max_packets {
            return Err(BadPacket);
        }
        let packet = match record.strip_prefix('b') {
            Some(encoded) => Packet::Binary(Cow::Owned(STANDARD.decode(encoded).map_err(|_| BadPacket)?)),
            None => decode_text(record)?,
        };
        packets.push(packet);
    }
    Ok(packets)
}

/// Appends one packet to a long-polling payload being built: the separator
/// when it is not the first, then the text packet as is.
pub fn push_text_record(payload: &mut Vec<u8>, packet: &[u8]) {
    if !payload.is_empty() {
        payload.push(RECORD_SEPARATOR);
    }
    payload.extend_from_slice(packet);
}

/// Appends one binary message to a long-polling payload: `b` and base64.
pub fn push_binary_record(payload: &mut Vec<u8>, data: &[u8]) {
    if !payload.is_empty() {
        payload.push(RECORD_SEPARATOR);
    }
    payload.push(b'b');
    let start = payload.len();
    payload.resize(start + base64::encoded_len(data.len(), true).unwrap_or(0), 0);
    let written = STANDARD.encode_slice(data, &mut payload[start..]).unwrap_or(0);
    payload.truncate(start + written);
}

/// What the open packet tells a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenParams<'a> {
    pub sid: &'a str,
    /// Whether the client may upgrade to WebSocket (it came by polling).
    pub upgrade_to_websocket: bool,
    pub ping_interval_ms: u64,
    pub ping_timeout_ms: u64,
    pub max_payload: u64,
}

/// The open packet: `0` and its JSON object.
pub fn open_packet(params: &OpenParams<'_>) -> String {
    let upgrades = if params.upgrade_to_websocket { r#"["websocket"]"# } else { "[]" };
    let mut text = String::with_capacity(128);
    // The sid is ours (URL-safe base64), so it needs no JSON escaping.
    let _ = write!(
        text,
        r#"0{{"sid":"{}","upgrades":{upgrades},"pingInterval":{},"pingTimeout":{},"maxPayload":{}}}"#,
        params.sid, params.ping_interval_ms, params.ping_timeout_ms, params.max_payload
    );
    text
}

/// The reference server's error answers to a request it cannot serve:
/// HTTP 400 (403 for `Forbidden`) with `{"code":N,"message":"..."}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    UnknownTransport,
    UnknownSid,
    BadHandshakeMethod,
    BadRequest,
    Forbidden,
    UnsupportedProtocolVersion,
}

impl RequestError {
    pub fn code(self) -> u8 {
        match self {
            RequestError::UnknownTransport => 0,
            RequestError::UnknownSid => 1,
            RequestError::BadHandshakeMethod => 2,
            RequestError::BadRequest => 3,
            RequestError::Forbidden => 4,
            RequestError::UnsupportedProtocolVersion => 5,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            RequestError::UnknownTransport => "Transport unknown",
            RequestError::UnknownSid => "Session ID unknown",
            RequestError::BadHandshakeMethod => "Bad handshake method",
            RequestError::BadRequest => "Bad request",
            RequestError::Forbidden => "Forbidden",
            RequestError::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    pub fn status(self) -> u16 {
        if self == RequestError::Forbidden { 403 } else { 400 }
    }

    /// The JSON body of the answer.
    pub fn body(self) -> String {
        format!(r#"{{"code":{},"message":"{}"}}"#, self.code(), self.message())
    }
}

/// The query parameters Engine.IO reads from a request target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query<'a> {
    pub eio: Option<&'a str>,
    pub transport: Option<&'a str>,
    pub sid: Option<&'a str>,
}

impl<'a> Query<'a> {
    /// The first value of each parameter; others are ignored (cache
    /// busters such as `t=`). Values are used raw: ours never need
    /// percent-decoding, and one that does matches nothing.
    pub fn parse(query: Option<&'a str>) -> Query<'a> {
        let mut parsed = Query::default();
        for pair in query.unwrap_or("").split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match key {
                "EIO" => &mut parsed.eio,
                "transport" => &mut parsed.transport,
                "sid" => &mut parsed.sid,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        parsed
    }
}

/// A transport a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Polling,
    WebSocket,
}

/// The transport a request asks for; a missing or unknown one is the
/// reference server's code 0, checked before anything else.
pub fn check_transport(query: &Query<'_>) -> Result<Transport, RequestError> {
    match query.transport {
        Some("polling") => Ok(Transport::Polling),
        Some("websocket") => Ok(Transport::WebSocket),
        _ => Err(RequestError::UnknownTransport),
    }
}

/// A handshake must ask for protocol 4: the reference server takes any
/// other `EIO` (or none) for protocol 3 and refuses it with code 5, so an
/// old client learns why.
pub fn check_protocol(query: &Query<'_>) -> Result<(), RequestError> {
    if query.eio == Some("4") { Ok(()) } else { Err(RequestError::UnsupportedProtocolVersion) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_packets() {
        assert_eq!(decode_text("4hello"), Ok(Packet::Text("hello")));
        assert_eq!(decode_text("4"), Ok(Packet::Text("")));
        assert_eq!(decode_text("2probe"), Ok(Packet::Ping("probe")));
        assert_eq!(decode_text("3"), Ok(Packet::Pong("")));
        assert_eq!(decode_text("5"), Ok(Packet::Control(PacketType::Upgrade)));
        assert_eq!(decode_text("1"), Ok(Packet::Control(PacketType::Close)));
        assert_eq!(decode_text("6"), Ok(Packet::Control(PacketType::Noop)));
        for bad in ["", "abc", "7", "b", "é"] {
            assert_eq!(decode_text(bad), Err(BadPacket), "{bad:?}");
        }
    }

    #[test]
    fn payloads() {
        let body = b"4hello\x1ebAQIDBA==\x1e3";
        let packets = decode_payload(body, 16).unwrap();
        assert_eq!(
            packets,
            vec![Packet::Text("hello"), Packet::Binary(Cow::Owned(vec![1, 2, 3, 4])), Packet::Pong("")]
        );
        assert_eq!(decode_payload(b"4a\x1e4b\x1e4c", 2), Err(BadPacket), "over the packet cap");
        assert_eq!(decode_payload(b"bnot base64!", 16), Err(BadPacket));
        assert_eq!(decode_payload(b"4a\x1e", 16), Err(BadPacket), "an empty record is no packet");
        assert_eq!(decode_payload(b"", 16), Err(BadPacket));
        assert_eq!(decode_payload(b"4\xff", 16), Err(BadPacket));

        let mut out = Vec::new();
        push_text_record(&mut out, b"4hello");
        push_binary_record(&mut out, &[1, 2, 3, 4]);
        push_text_record(&mut out, b"2");
        assert_eq!(out, b"4hello\x1ebAQIDBA==\x1e2");
    }

    #[test]
    fn open_packet_fields() {
        let params = OpenParams {
            sid: "abc",
            upgrade_to_websocket: true,
            ping_interval_ms: 25000,
            ping_timeout_ms: 20000,
            max_payload: 1_000_000,
        };
        assert_eq!(
            open_packet(&params),
            r#"0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
        let ws = open_packet(&OpenParams { upgrade_to_websocket: false, ..params });
        assert!(ws.contains(r#""upgrades":[]"#));
    }

    #[test]
    fn queries() {
        let q = Query::parse(Some("EIO=4&transport=polling&t=x&sid=s1&sid=s2"));
        assert_eq!(q, Query { eio: Some("4"), transport: Some("polling"), sid: Some("s1") });
        assert_eq!(check_transport(&q), Ok(Transport::Polling));
        assert_eq!(check_protocol(&q), Ok(()));
        let transport = |s: &str| check_transport(&Query::parse(Some(s)));
        assert_eq!(transport("EIO=4&transport=websocket"), Ok(Transport::WebSocket));
        assert_eq!(transport("EIO=4"), Err(RequestError::UnknownTransport));
        assert_eq!(transport("EIO=4&transport=abc"), Err(RequestError::UnknownTransport));
        let protocol = |s: &str| check_protocol(&Query::parse(Some(s)));
        for old in ["transport=polling", "EIO=abc&transport=polling", "EIO=3&transport=polling"] {
            assert_eq!(protocol(old), Err(RequestError::UnsupportedProtocolVersion), "{old}");
        }
        assert_eq!(
            RequestError::UnsupportedProtocolVersion.body(),
            r#"{"code":5,"message":"Unsupported protocol version"}"#
        );
    }
}
