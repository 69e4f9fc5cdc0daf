//! Incremental RFC 6455 frame decoder for the server side.

use super::close::CloseCode;
use super::error::WsError;

/// Caps the decoder enforces.
#[derive(Clone, Copy, Debug)]
pub struct DecoderLimits {
    /// Largest reassembled message payload; over it: 1009.
    pub max_message_bytes: usize,
    /// Most frames in one fragmented message, empty ones included; over it: 1009.
    pub max_fragments: usize,
}

/// A whole message or control frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    /// `None` when the close frame had no payload.
    Close(Option<CloseFrame<'a>>),
}

#[derive(Debug, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    pub code: CloseCode,
    pub reason: &'a str,
}

pub struct Decoder {
    limits: DecoderLimits,
}

impl Decoder {
    pub fn new(limits: DecoderLimits) -> Self {
        Decoder { limits }
    }

    /// Decodes from the front of `buf`, unmasking in place.
    ///
    /// Returns how many bytes of `buf` were consumed and the message completed
    /// by them, if any. `(0, None)` means more input is needed; the caller
    /// keeps the unconsumed bytes and calls again with them plus more.
    pub fn decode<'a>(
        &'a mut self,
        buf: &'a mut [u8],
    ) -> Result<(usize, Option<Message<'a>>), WsError> {
        let _ = (buf, self.limits);
        todo!()
    }
}
