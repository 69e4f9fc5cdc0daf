//! `socketio_packets`: arbitrary bytes through the Engine.IO and Socket.IO
//! decoders (`proto::engineio::decode_payload` / `decode_text`,
//! `proto::socketio::decode` / `event_name` / `arguments` /
//! `inline_attachments`).
//!
//! The whole input is a long-polling POST body; when it is UTF-8 it is also
//! one WebSocket text message, one Socket.IO packet and one event payload.
//! Invariants: no panic; a payload decodes to at most the packet cap, no
//! text record holds the separator, and a binary record re-encodes to
//! base64 that decodes back; a decoded Socket.IO packet announces at most
//! 10 attachments (none unless binary), an ack id of at most 2^53 - 1, a
//! namespace that is `/` or starts with it, a payload its type allows (an
//! event's name is a non-empty string), placeholders that inline away
//! completely; and its header written back decodes to the same packet.

use serde_json::Value;
use soket::proto::engineio::{self, Packet as EnginePacket};
use soket::proto::socketio::{self, Kind, MAX_ACK_ID};

/// socket.io-parser's default, as the server uses.
const MAX_ATTACHMENTS: usize = 10;
/// The packet cap of a decoded payload here (small, so it is reachable).
const MAX_PACKETS: usize = 16;

pub fn run(data: &[u8]) {
    if let Ok(packets) = engineio::decode_payload(data, MAX_PACKETS) {
        assert!(!packets.is_empty() && packets.len() <= MAX_PACKETS, "{} packets", packets.len());
        for packet in packets {
            match packet {
                EnginePacket::Text(text) | EnginePacket::Ping(text) | EnginePacket::Pong(text) => {
                    assert!(!text.contains('\u{1e}'), "a record holds the separator");
                    socket_io(text);
                }
                EnginePacket::Binary(bytes) => {
                    let mut record = Vec::new();
                    engineio::push_binary_record(&mut record, &bytes);
                    let again = engineio::decode_payload(&record, 1).expect("a binary record decodes");
                    assert_eq!(again, vec![EnginePacket::Binary(bytes)]);
                }
                EnginePacket::Control(_) => {}
            }
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(EnginePacket::Text(inner)) = engineio::decode_text(text) {
        assert_eq!(inner, &text[1..]);
    }
    socket_io(text);
    if let Ok((name, start)) = socketio::event_name(text) {
        assert!(!name.is_empty());
        let _ = socketio::arguments(text, start);
    }
    let _ = socketio::inline_attachments(text, &[&b"ab"[..], &b""[..]]);
}

/// One Socket.IO packet and its invariants.
fn socket_io(text: &str) {
    let Ok(packet) = socketio::decode(text, MAX_ATTACHMENTS) else {
        return;
    };
    assert!(packet.attachments <= MAX_ATTACHMENTS, "{} attachments", packet.attachments);
    if !packet.kind.is_binary() {
        assert_eq!(packet.attachments, 0);
    }
    assert!(packet.id.is_none_or(|id| id <= MAX_ACK_ID));
    assert!(packet.namespace.starts_with('/'), "namespace {:?}", packet.namespace);
    match (packet.kind, packet.data) {
        (Kind::Event | Kind::BinaryEvent, Some(data)) => {
            let (name, start) = socketio::event_name(data).expect("a decoded event has a name");
            assert!(!name.is_empty());
            let _ = socketio::arguments(data, start);
        }
        (Kind::Event | Kind::BinaryEvent | Kind::Ack | Kind::BinaryAck | Kind::ConnectError, None) => {
            panic!("{:?} without a payload decoded", packet.kind)
        }
        (Kind::Disconnect, Some(_)) => panic!("a DISCONNECT with a payload decoded"),
        _ => {}
    }
    if packet.kind.is_binary()
        && let Some(data) = packet.data
    {
        let buffers: Vec<Vec<u8>> = (0..packet.attachments).map(|i| vec![i as u8; i]).collect();
        let inlined = socketio::inline_attachments(data, &buffers).expect("a decoded payload is JSON");
        let value: Value = serde_json::from_str(&inlined).expect("inlining writes JSON");
        assert!(!has_placeholder(&value), "a placeholder survived inlining: {inlined}");
    }
    let mut again = Vec::new();
    socketio::write_header(&mut again, packet.kind, packet.attachments, packet.namespace, packet.id);
    again.extend_from_slice(packet.data.unwrap_or("").as_bytes());
    let again = String::from_utf8(again).expect("header and payload are UTF-8");
    assert_eq!(socketio::decode(&again, MAX_ATTACHMENTS), Ok(packet.clone()), "{text:?} written back as {again:?}");
}

fn has_placeholder(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.get("_placeholder") == Some(&Value::Bool(true)) || map.values().any(has_placeholder),
        Value::Array(items) => items.iter().any(has_placeholder),
        _ => false,
    }
}
