//! `frame_decoder`: the WebSocket decoder gives the same messages and the same
//! error however its input is cut.
//!
//! Input: byte 0 is the split schedule ([`super::pieces`]), the rest is the
//! client byte stream. The stream is decoded twice, in one buffer and in
//! pieces fed as a connection would (unconsumed bytes kept, the next piece
//! appended, `decode` called until `(0, None)`), with small limits so the
//! 1009 paths are reached. Invariants: no panic; both runs yield the same
//! messages (owned copies) and the same error; without an error, the same
//! leftover and mid-message state; every message respects the limits and
//! RFC 6455 (control payloads <= 125 bytes, close codes allowed on the wire);
//! a failed decoder repeats its error.

use soket::proto::ws::{Decoder, DecoderLimits, Message, WsError};

/// Small, so the message and fragment limits are within the fuzzer's reach.
pub const LIMITS: DecoderLimits = DecoderLimits { max_message_bytes: 64 * 1024, max_fragments: 64 };

/// A message detached from the buffers it borrowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owned {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

/// What one decode run produced.
#[derive(Debug, PartialEq, Eq)]
pub struct Run {
    pub messages: Vec<Owned>,
    pub error: Option<WsError>,
    /// Bytes left unconsumed at the end (a partial header or control frame).
    pub leftover: usize,
    pub mid_message: bool,
}

pub fn run(data: &[u8]) {
    let Some((&schedule, stream)) = data.split_first() else {
        return;
    };
    let whole = decode(&[stream]);
    let cut = decode(&super::pieces(schedule, stream));
    assert_eq!(cut.messages, whole.messages, "messages depend on the split");
    assert_eq!(cut.error, whole.error, "the error depends on the split");
    if whole.error.is_none() {
        assert_eq!(cut.leftover, whole.leftover, "leftover depends on the split");
        assert_eq!(cut.mid_message, whole.mid_message, "mid-message state depends on the split");
    }
}

/// Feeds `pieces` to a fresh decoder as a connection would.
pub fn decode(pieces: &[&[u8]]) -> Run {
    let mut decoder = Decoder::new(LIMITS);
    let mut pending: Vec<u8> = Vec::new();
    let mut messages = Vec::new();
    for piece in pieces {
        pending.extend_from_slice(piece);
        loop {
            let available = pending.len();
            match decoder.decode(&mut pending) {
                Ok((consumed, message)) => {
                    assert!(consumed <= available, "consumed {consumed} of {available} bytes");
                    let message = message.map(owned);
                    pending.drain(..consumed);
                    let done = consumed == 0 && message.is_none();
                    messages.extend(message);
                    if done {
                        break;
                    }
                }
                Err(error) => {
                    // A spent decoder repeats its error, whatever it is given.
                    assert_eq!(decoder.decode(&mut []), Err(error));
                    assert_eq!(decoder.decode(&mut pending), Err(error));
                    return Run { messages, error: Some(error), leftover: pending.len(), mid_message: false };
                }
            }
        }
    }
    Run { messages, error: None, leftover: pending.len(), mid_message: decoder.is_mid_message() }
}

/// Checks one message against the limits and RFC 6455 and copies it out.
fn owned(message: Message<'_>) -> Owned {
    match message {
        Message::Text(text) => {
            assert!(text.len() <= LIMITS.max_message_bytes, "text of {} bytes", text.len());
            Owned::Text(text.to_owned())
        }
        Message::Binary(bytes) => {
            assert!(bytes.len() <= LIMITS.max_message_bytes, "binary of {} bytes", bytes.len());
            Owned::Binary(bytes.to_vec())
        }
        Message::Ping(bytes) => {
            assert!(bytes.len() <= 125, "ping of {} bytes", bytes.len());
            Owned::Ping(bytes.to_vec())
        }
        Message::Pong(bytes) => {
            assert!(bytes.len() <= 125, "pong of {} bytes", bytes.len());
            Owned::Pong(bytes.to_vec())
        }
        // This check never negotiates permessage-deflate.
        Message::Compressed { payload, .. } => Owned::Binary(payload.to_vec()),
        Message::Close(frame) => Owned::Close(frame.map(|frame| {
            assert!(frame.code.is_allowed_on_wire(), "close code {}", frame.code.0);
            assert!(frame.reason.len() <= 123, "close reason of {} bytes", frame.reason.len());
            (frame.code.0, frame.reason.to_owned())
        })),
    }
}
