//! Incremental RFC 6455 frame decoder for the server side: client frames in,
//! whole messages out. Sans-IO: the caller owns the read buffer and the socket.
//!
//! A whole unfragmented frame is unmasked in place and returned borrowing the
//! caller's buffer (no copy, no allocation). Anything else (a frame whose
//! payload is still arriving, or a fragmented message) streams into one reused
//! reassembly buffer that grows only as bytes arrive, with text validated as
//! it comes in.

use std::fmt;

use super::close::CloseCode;
use super::error::WsError;
use super::frame::{FrameHeader, OpCode, parse_header};
use super::mask::apply_mask;
use super::utf8::Utf8Validator;

/// Caps the decoder enforces.
#[derive(Clone, Copy, Debug)]
pub struct DecoderLimits {
    /// Largest reassembled message payload; over it: 1009.
    pub max_message_bytes: usize,
    /// Most frames in one fragmented message, empty ones included; over it: 1009.
    pub max_fragments: usize,
}

/// A whole message or control frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A complete text message, valid UTF-8.
    Text(&'a str),
    /// A complete binary message.
    Binary(&'a [u8]),
    /// A ping; the caller answers with a pong carrying the same payload.
    Ping(&'a [u8]),
    /// A pong; the caller may use it as a liveness signal.
    Pong(&'a [u8]),
    /// `None` when the close frame had no payload.
    Close(Option<CloseFrame<'a>>),
    /// A whole data message with RSV1 under permessage-deflate (RFC 7692
    /// §6): still compressed, so text is not validated yet.
    Compressed { text: bool, payload: &'a [u8] },
}

/// The payload of a close frame that carried one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// A code peers may send ([`CloseCode::is_allowed_on_wire`]).
    pub code: CloseCode,
    /// The UTF-8 reason, possibly empty.
    pub reason: &'a str,
}

/// Kind of the data message being reassembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DataKind {
    Text,
    Binary,
}

/// A data frame whose header is consumed but whose payload is still arriving.
#[derive(Clone, Copy, Debug)]
struct PartialFrame {
    /// Payload bytes not yet received.
    remaining: u64,
    mask_key: [u8; 4],
    /// Payload bytes received so far, modulo 4: where the mask key resumes.
    mask_offset: usize,
    fin: bool,
}

/// Decodes masked client frames into messages, one call per message.
pub struct Decoder {
    limits: DecoderLimits,
    /// RSV bits (as in byte 0) an extension negotiated.
    allowed_rsv: u8,
    /// RSV bits of the first frame of the message in progress.
    message_rsv: u8,
    /// permessage-deflate was negotiated: RSV1 marks a compressed message.
    deflate: bool,
    /// RSV bits of what the last call returned (see `last_rsv()`).
    last_rsv: u8,
    /// Payload of the message being reassembled; grows only as bytes arrive.
    assembled: Vec<u8>,
    /// Kind of the message in `assembled`, `None` when no message is in progress.
    message: Option<DataKind>,
    /// Frames of the message in progress so far.
    fragments: usize,
    /// The data frame whose payload is arriving, if any.
    frame: Option<PartialFrame>,
    /// Validates text as it arrives, across frames and reads.
    utf8: Utf8Validator,
    /// `assembled` holds a message returned by the last call: clear it next call.
    delivered: bool,
    /// Set by the first error; the decoder then only repeats it.
    failed: Option<WsError>,
}

impl fmt::Debug for Decoder {
    // By hand: a derived Debug would print the whole reassembly buffer.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("limits", &self.limits)
            .field("allowed_rsv", &self.allowed_rsv)
            .field("assembled_bytes", &self.assembled.len())
            .field("message", &self.message)
            .field("fragments", &self.fragments)
            .field("frame", &self.frame)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder at the start of a connection, enforcing `limits`. Allocates nothing.
    pub fn new(limits: DecoderLimits) -> Self {
        Decoder {
            limits,
            allowed_rsv: 0,
            message_rsv: 0,
            deflate: false,
            last_rsv: 0,
            assembled: Vec::new(),
            message: None,
            fragments: 0,
            frame: None,
            utf8: Utf8Validator::new(),
            delivered: false,
            failed: None,
        }
    }

    /// The caps this decoder enforces.
    pub fn limits(&self) -> DecoderLimits {
        self.limits
    }

    /// Extension hook: RSV bits (0x40 rsv1, 0x20 rsv2, 0x10 rsv3 as in byte 0)
    /// an extension negotiated; default 0 = all RSV bits refused with 1002.
    pub fn set_allowed_rsv(&mut self, bits: u8) {
        self.allowed_rsv = bits;
    }

    /// permessage-deflate was negotiated (RFC 7692): RSV1 is allowed on the
    /// first frame of a data message, which then comes out as
    /// [`Message::Compressed`]; on a control or continuation frame it is
    /// still a protocol error (1002).
    pub fn set_permessage_deflate(&mut self) {
        self.deflate = true;
        self.allowed_rsv |= super::deflate::RSV1;
    }

    /// RSV bits (as in byte 0) of the first frame of the message or control
    /// frame returned last; an extension (e.g. RFC 7692 RSV1 = compressed)
    /// reads them after each message. Always 0 unless `set_allowed_rsv`.
    pub fn last_rsv(&self) -> u8 {
        self.last_rsv
    }

    /// Decodes from the front of `buf` (client frames, masked), unmasking in place.
    ///
    /// Returns how many bytes of `buf` were consumed and the message completed
    /// by them, if any. `(0, None)` means more input is needed; the caller
    /// keeps the unconsumed bytes and calls again with them plus more. Callers
    /// loop until `(0, None)`. `(n, None)` with `n > 0` means part of a message
    /// was taken into the decoder: drop the bytes and call again.
    ///
    /// Control frames are returned only once whole in `buf`; they may come
    /// between the fragments of a data message. A data message is refused with
    /// 1009 as soon as a frame header would take it over
    /// [`DecoderLimits::max_message_bytes`] or
    /// [`DecoderLimits::max_fragments`]. Text fails with 1007 at the first
    /// invalid byte, even mid-frame. The result is the same for any split of
    /// the input. After an error the decoder is spent and returns it again.
    pub fn decode<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<(usize, Option<Message<'a>>), WsError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        if self.delivered {
            // The message handed out last call borrowed `assembled`; it is gone now.
            self.assembled.clear();
            self.delivered = false;
        }

        let header_len = if self.frame.is_some() {
            0
        } else {
            let header = match parse_header(buf, self.allowed_rsv) {
                Ok(Some(header)) => header,
                Ok(None) => return Ok((0, None)),
                Err(err) => return Err(self.fail(err)),
            };
            // RFC 7692 §6.1: RSV1 marks a message, so only its first frame
            // carries it; control frames are never compressed.
            if self.deflate
                && header.rsv & super::deflate::RSV1 != 0
                && (header.opcode.is_control() || header.opcode == OpCode::Continuation)
            {
                return Err(self.fail(WsError::MisplacedRsv1));
            }
            if header.opcode.is_control() {
                return self.decode_control(&header, buf);
            }
            let kind = self.check_data_header(&header)?;
            let compressed = self.deflate && header.rsv & super::deflate::RSV1 != 0;

            if self.message.is_none() && header.fin {
                // Fast path: a whole unfragmented frame borrows `buf`.
                let total = usize::try_from(header.payload_len)
                    .ok()
                    .and_then(|len| len.checked_add(header.header_len))
                    .filter(|&total| total <= buf.len());
                // Test the length before borrowing `buf`: a borrow that is
                // returned on one branch only would outlive the other branch.
                if let Some(total) = total {
                    let payload = buf.get_mut(header.header_len..total).unwrap_or_default();
                    apply_mask(payload, header.mask_key, 0);
                    let message = match kind {
                        _ if compressed => Message::Compressed { text: kind == DataKind::Text, payload },
                        DataKind::Binary => Message::Binary(payload),
                        DataKind::Text => match std::str::from_utf8(payload) {
                            Ok(text) => Message::Text(text),
                            // RFC 6455 §8.1: "When an endpoint is to interpret a
                            // byte stream as UTF-8 but finds that the byte stream
                            // is not, in fact, a valid UTF-8 stream, that endpoint
                            // MUST _Fail the WebSocket Connection_."
                            Err(_) => return Err(self.fail(WsError::InvalidUtf8)),
                        },
                    };
                    self.last_rsv = header.rsv;
                    return Ok((total, Some(message)));
                }
            }

            if self.message.is_none() {
                self.message = Some(kind);
                // Extensions look at the RSV bits of a message's first frame
                // (RFC 7692 §6: RSV1 of the first frame marks it compressed).
                self.message_rsv = header.rsv;
                self.fragments = 0;
                self.utf8.reset();
            }
            self.fragments += 1;
            self.frame = Some(PartialFrame {
                remaining: header.payload_len,
                mask_key: header.mask_key,
                mask_offset: 0,
                fin: header.fin,
            });
            header.header_len
        };

        let rest = buf.get_mut(header_len..).unwrap_or_default();
        let (taken, completed) = self.take_payload(rest)?;
        let consumed = header_len + taken;
        if !completed {
            return Ok((consumed, None));
        }
        self.delivered = true;
        self.last_rsv = self.message_rsv;
        let message = match self.message.take() {
            Some(kind) if self.deflate && self.message_rsv & super::deflate::RSV1 != 0 => {
                Message::Compressed { text: kind == DataKind::Text, payload: &self.assembled }
            }
            Some(DataKind::Text) => match std::str::from_utf8(&self.assembled) {
                Ok(text) => Message::Text(text),
                // Already validated as it arrived; kept as an error, not a panic.
                Err(_) => return Err(WsError::InvalidUtf8),
            },
            _ => Message::Binary(&self.assembled),
        };
        Ok((consumed, Some(message)))
    }

    /// True while a fragmented or partially received message is held (so the
    /// connection is not idle). Bytes of an incomplete header or control frame
    /// stay in the caller's buffer and don't count here.
    pub fn is_mid_message(&self) -> bool {
        self.message.is_some()
    }

    /// Bytes allocated for reassembling messages (kept between messages so a
    /// stream of fragmented messages does not allocate for each one).
    pub fn reassembly_capacity(&self) -> usize {
        self.assembled.capacity()
    }

    /// Drops the reassembly buffer's allocation if no message is in progress
    /// (idle connections must hold ~0 bytes).
    pub fn release_idle_memory(&mut self) {
        if self.message.is_none() {
            self.assembled = Vec::new();
            self.delivered = false;
        }
    }

    /// The message in progress is text to validate as it arrives (a
    /// compressed one is validated once inflated).
    fn validates_text(&self) -> bool {
        self.message == Some(DataKind::Text) && !(self.deflate && self.message_rsv & super::deflate::RSV1 != 0)
    }

    /// Records `err` so later calls repeat it, and hands it back.
    fn fail(&mut self, err: WsError) -> WsError {
        self.failed = Some(err);
        err
    }

    /// Checks a data frame header against the message in progress and the
    /// limits; returns the kind of message it belongs to.
    fn check_data_header(&mut self, header: &FrameHeader) -> Result<DataKind, WsError> {
        let kind = match (header.opcode, self.message) {
            // RFC 6455 §5.4: a fragmented message is "a single frame with the FIN
            // bit clear and an opcode other than 0, followed by zero or more frames
            // with the FIN bit clear and the opcode set to 0", so a continuation
            // needs a message in progress...
            (OpCode::Continuation, None) => {
                return Err(self.fail(WsError::UnexpectedContinuation));
            }
            (OpCode::Continuation, Some(kind)) => kind,
            // ...and "the fragments of one message MUST NOT be interleaved between
            // the fragments of another message".
            (_, Some(_)) => return Err(self.fail(WsError::ExpectedContinuation)),
            (OpCode::Text, None) => DataKind::Text,
            (_, None) => DataKind::Binary,
        };
        // Counting frames, not bytes, stops a stream of empty fragments.
        if self.fragments >= self.limits.max_fragments {
            return Err(self.fail(WsError::TooManyFragments));
        }
        // Refuse on the declared length, before buffering any of it. While no
        // message is in progress `assembled` is empty (cleared lazily above).
        let room = self.limits.max_message_bytes.saturating_sub(self.assembled.len());
        if header.payload_len > room as u64 {
            return Err(self.fail(WsError::MessageTooBig));
        }
        Ok(kind)
    }

    /// Takes the current data frame's payload from the front of `buf`:
    /// unmasks it, validates text, appends it to `assembled`. Returns the
    /// bytes taken and whether they completed the message.
    fn take_payload(&mut self, buf: &mut [u8]) -> Result<(usize, bool), WsError> {
        let Some(mut frame) = self.frame else {
            return Ok((0, false));
        };
        // usize -> u64 never truncates on the targets Rust supports.
        let take_u64 = frame.remaining.min(buf.len() as u64);
        // At most buf.len(), so it fits.
        let take = usize::try_from(take_u64).unwrap_or(buf.len());
        let chunk = buf.get_mut(..take).unwrap_or_default();
        apply_mask(chunk, frame.mask_key, frame.mask_offset);
        if self.validates_text() && self.utf8.feed(chunk).is_err() {
            // RFC 6455 §8.1: fail at once, not when the frame ends (Autobahn 6.4.x).
            return Err(self.fail(WsError::InvalidUtf8));
        }
        self.assembled.extend_from_slice(chunk);
        frame.remaining -= take_u64;
        frame.mask_offset = (frame.mask_offset + take) % 4;

        if frame.remaining != 0 {
            self.frame = Some(frame);
            return Ok((take, false));
        }
        self.frame = None;
        if !frame.fin {
            return Ok((take, false));
        }
        // A code point cut off by the end of the final fragment is invalid.
        if self.validates_text() && self.utf8.finish().is_err() {
            return Err(self.fail(WsError::InvalidUtf8));
        }
        self.fragments = 0;
        Ok((take, true))
    }

    /// Returns a control frame once it is whole in `buf`, unmasked in place.
    fn decode_control<'a>(
        &mut self,
        header: &FrameHeader,
        buf: &'a mut [u8],
    ) -> Result<(usize, Option<Message<'a>>), WsError> {
        // parse_header already capped control payloads at 125 bytes.
        let Some(total) = usize::try_from(header.payload_len).ok().and_then(|len| len.checked_add(header.header_len))
        else {
            return Err(self.fail(WsError::ControlFrameTooLong));
        };
        let Some(frame) = buf.get_mut(..total) else {
            return Ok((0, None));
        };
        let payload = frame.get_mut(header.header_len..).unwrap_or_default();
        self.last_rsv = header.rsv;
        apply_mask(payload, header.mask_key, 0);
        let message = match header.opcode {
            OpCode::Ping => Message::Ping(payload),
            OpCode::Pong => Message::Pong(payload),
            _ => match parse_close(payload) {
                Ok(close) => Message::Close(close),
                Err(err) => return Err(self.fail(err)),
            },
        };
        Ok((total, Some(message)))
    }
}

/// Parses an unmasked close payload (RFC 6455 §5.5.1).
fn parse_close(payload: &[u8]) -> Result<Option<CloseFrame<'_>>, WsError> {
    match payload {
        [] => Ok(None),
        // RFC 6455 §5.5.1: "If there is a body, the first two bytes of the body
        // MUST be a 2-byte unsigned integer".
        [_] => Err(WsError::CloseFrameTooShort),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            // RFC 6455 §7.4: codes reserved or never to be sent are a protocol error.
            if !code.is_allowed_on_wire() {
                return Err(WsError::InvalidCloseCode(code.0));
            }
            // RFC 6455 §5.5.1: the body after the code "is not guaranteed to be
            // human readable" but is UTF-8-encoded data.
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidCloseReason)?;
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ws::encoder::encode_client_frame;
    use proptest::prelude::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn limits() -> DecoderLimits {
        DecoderLimits { max_message_bytes: 1 << 20, max_fragments: 64 }
    }

    fn client(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_client_frame(&mut out, opcode, fin, payload, KEY);
        out
    }

    /// A message detached from the buffers it borrowed.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Owned {
        Text(String),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<(u16, String)>),
        Compressed(bool, Vec<u8>),
    }

    fn to_owned(message: Message<'_>) -> Owned {
        match message {
            Message::Text(text) => Owned::Text(text.to_owned()),
            Message::Binary(bytes) => Owned::Binary(bytes.to_vec()),
            Message::Ping(bytes) => Owned::Ping(bytes.to_vec()),
            Message::Pong(bytes) => Owned::Pong(bytes.to_vec()),
            Message::Close(close) => Owned::Close(close.map(|c| (c.code.0, c.reason.to_owned()))),
            Message::Compressed { text, payload } => Owned::Compressed(text, payload.to_vec()),
        }
    }

    #[test]
    fn permessage_deflate_rsv1() {
        let masked = |b0: u8, payload: &[u8]| {
            let mut out = vec![b0, 0x80 | payload.len() as u8, 1, 2, 3, 4];
            let mut p = payload.to_vec();
            apply_mask(&mut p, [1, 2, 3, 4], 0);
            out.extend(p);
            out
        };
        // Whole and fragmented compressed text: not UTF-8-checked, RSV1 of the first frame only.
        let mut d = Decoder::new(limits());
        d.set_permessage_deflate();
        let mut whole = masked(0xC1, &[0xff, 0xfe]);
        let (_, m) = d.decode(&mut whole).unwrap();
        assert_eq!(m.map(to_owned), Some(Owned::Compressed(true, vec![0xff, 0xfe])));
        let mut parts = masked(0x41, &[0xff]);
        parts.extend(masked(0x80, &[0xfe]));
        let (n, m) = d.decode(&mut parts).unwrap();
        assert_eq!(m, None);
        let (_, m) = d.decode(&mut parts[n..]).unwrap();
        assert_eq!(m.map(to_owned), Some(Owned::Compressed(true, vec![0xff, 0xfe])));
        // Plain messages stay plain and checked.
        let mut plain = masked(0x81, b"ok");
        assert_eq!(d.decode(&mut plain).unwrap().1.map(to_owned), Some(Owned::Text("ok".into())));
        // RSV1 on a continuation or a control frame: 1002.
        let mut bad = masked(0x41, b"a");
        bad.extend(masked(0xC0, b"b"));
        let n = d.decode(&mut bad).unwrap().0;
        assert_eq!(d.decode(&mut bad[n..]), Err(WsError::MisplacedRsv1));
        let mut d = Decoder::new(limits());
        d.set_permessage_deflate();
        assert_eq!(d.decode(&mut masked(0xC9, b"")), Err(WsError::MisplacedRsv1));
        // Without the extension RSV1 is refused as before.
        assert_eq!(Decoder::new(limits()).decode(&mut masked(0xC1, b"x")), Err(WsError::ReservedBits));
    }

    /// What a decode run produced: messages, then the error that ended it, if any.
    #[derive(Debug, PartialEq, Eq)]
    struct Run {
        messages: Vec<Owned>,
        error: Option<WsError>,
        leftover: usize,
        mid_message: bool,
    }

    /// Feeds `stream` in pieces ending at `cuts` (sorted), as a connection
    /// would: unconsumed bytes stay, the next piece is appended.
    fn decode_in_pieces(decoder: &mut Decoder, stream: &[u8], cuts: &[usize]) -> Run {
        let mut pending = Vec::new();
        let mut messages = Vec::new();
        let mut start = 0;
        for end in cuts.iter().copied().chain([stream.len()]) {
            pending.extend_from_slice(&stream[start..end]);
            start = end;
            loop {
                match decoder.decode(&mut pending) {
                    Ok((consumed, message)) => {
                        let message = message.map(to_owned);
                        pending.drain(..consumed);
                        let done = consumed == 0 && message.is_none();
                        messages.extend(message);
                        if done {
                            break;
                        }
                    }
                    Err(err) => {
                        return Run {
                            messages,
                            error: Some(err),
                            leftover: pending.len(),
                            mid_message: decoder.is_mid_message(),
                        };
                    }
                }
            }
        }
        Run { messages, error: None, leftover: pending.len(), mid_message: decoder.is_mid_message() }
    }

    fn decode_whole(stream: &[u8]) -> Run {
        decode_in_pieces(&mut Decoder::new(limits()), stream, &[])
    }

    fn first_error(stream: &[u8]) -> WsError {
        let run = decode_whole(stream);
        run.error.unwrap_or_else(|| panic!("no error, got {:?}", run.messages))
    }

    fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
        frames.concat()
    }

    // RFC 6455 §5.7 examples.

    #[test]
    fn rfc_masked_hello_is_zero_copy() {
        let mut buf = vec![0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let range = buf.as_ptr_range();
        let mut decoder = Decoder::new(limits());
        let (consumed, message) = decoder.decode(&mut buf).unwrap();
        assert_eq!(consumed, 11);
        let Some(Message::Text(text)) = message else {
            panic!("{message:?}");
        };
        assert_eq!(text, "Hello");
        assert!(range.contains(&text.as_ptr()), "borrows the read buffer");
        assert_eq!(decoder.assembled.capacity(), 0, "no allocation");
    }

    #[test]
    fn rfc_fragmented_hello() {
        let stream = concat(&[client(OpCode::Text, false, b"Hel"), client(OpCode::Continuation, true, b"lo")]);
        let run = decode_whole(&stream);
        assert_eq!(run.messages, [Owned::Text("Hello".into())]);
        assert_eq!(run.error, None);
    }

    #[test]
    fn rfc_ping_and_masked_pong() {
        let mut buf = vec![0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let mut decoder = Decoder::new(limits());
        assert_eq!(decoder.decode(&mut buf), Ok((11, Some(Message::Pong(b"Hello")))));
        let mut ping = client(OpCode::Ping, true, b"Hello");
        assert_eq!(ping[0], 0x89);
        assert_eq!(decoder.decode(&mut ping), Ok((11, Some(Message::Ping(b"Hello")))));
    }

    #[test]
    fn rfc_256_byte_and_64_kib_binary() {
        for len in [256usize, 65536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut frame = client(OpCode::Binary, true, &payload);
            let header_len = if len < 65536 { 4 } else { 10 };
            assert_eq!(frame[1] & 0x7F, if len < 65536 { 126 } else { 127 });
            let mut decoder = Decoder::new(limits());
            assert_eq!(decoder.decode(&mut frame), Ok((header_len + 4 + len, Some(Message::Binary(&payload[..])))));
        }
    }

    // Control frames and close payloads.

    #[test]
    fn close_frames() {
        let mut empty = client(OpCode::Close, true, b"");
        let mut decoder = Decoder::new(limits());
        assert_eq!(decoder.decode(&mut empty), Ok((6, Some(Message::Close(None)))));

        let mut payload = 1000u16.to_be_bytes().to_vec();
        payload.extend_from_slice("bye ✓".as_bytes());
        let mut frame = client(OpCode::Close, true, &payload);
        let len = frame.len();
        assert_eq!(
            decoder.decode(&mut frame),
            Ok((len, Some(Message::Close(Some(CloseFrame { code: CloseCode::NORMAL, reason: "bye ✓" })))))
        );
    }

    #[test]
    fn control_frame_waits_until_whole() {
        let mut frame = client(OpCode::Ping, true, b"abcdef");
        let mut decoder = Decoder::new(limits());
        for end in 0..frame.len() {
            assert_eq!(decoder.decode(&mut frame[..end]), Ok((0, None)), "{end}");
        }
        assert_eq!(decoder.decode(&mut frame), Ok((12, Some(Message::Ping(b"abcdef")))));
    }

    #[test]
    fn control_frames_between_fragments() {
        let stream = concat(&[
            client(OpCode::Binary, false, b"ab"),
            client(OpCode::Ping, true, b"p1"),
            client(OpCode::Continuation, false, b""),
            client(OpCode::Pong, true, b""),
            client(OpCode::Continuation, true, b"cd"),
        ]);
        let run = decode_whole(&stream);
        assert_eq!(
            run.messages,
            [Owned::Ping(b"p1".to_vec()), Owned::Pong(Vec::new()), Owned::Binary(b"abcd".to_vec()),]
        );
        assert_eq!(run.error, None);
        assert!(!run.mid_message);
    }

    #[test]
    fn allowed_rsv_bits_pass() {
        let mut frame = client(OpCode::Binary, true, b"x");
        frame[0] |= 0x40;
        let mut decoder = Decoder::new(limits());
        decoder.set_allowed_rsv(0x40);
        assert_eq!(decoder.decode(&mut frame), Ok((7, Some(Message::Binary(b"x")))));
        assert_eq!(decoder.last_rsv(), 0x40);

        // A fragmented message reports its first frame's bits, even with a
        // control frame in between.
        let mut first = client(OpCode::Text, false, b"a");
        first[0] |= 0x40;
        let mut stream = concat(&[first, client(OpCode::Ping, true, b""), client(OpCode::Continuation, true, b"b")]);
        let (n, message) = decoder.decode(&mut stream).unwrap();
        assert_eq!((n, message), (7, None));
        let (m, message) = decoder.decode(&mut stream[n..]).unwrap();
        assert_eq!(message, Some(Message::Ping(b"")));
        assert_eq!(decoder.last_rsv(), 0);
        let (_, message) = decoder.decode(&mut stream[n + m..]).unwrap();
        assert_eq!(message, Some(Message::Text("ab")));
        assert_eq!(decoder.last_rsv(), 0x40);
    }

    // One test per error.

    #[track_caller]
    fn assert_error(stream: &[u8], expected: WsError, code: u16) {
        assert_eq!(first_error(stream), expected);
        assert_eq!(expected.close_code(), CloseCode(code));
    }

    #[test]
    fn error_reserved_bits() {
        for bit in [0x40, 0x20, 0x10] {
            let mut frame = client(OpCode::Text, true, b"x");
            frame[0] |= bit;
            assert_error(&frame, WsError::ReservedBits, 1002);
        }
        // An extension allowing rsv1 doesn't allow rsv2.
        let mut frame = client(OpCode::Text, true, b"x");
        frame[0] |= 0x20;
        let mut decoder = Decoder::new(limits());
        decoder.set_allowed_rsv(0x40);
        assert_eq!(decoder.decode(&mut frame), Err(WsError::ReservedBits));
    }

    #[test]
    fn error_unmasked_frame() {
        let mut frame = Vec::new();
        crate::proto::ws::encoder::encode_frame(&mut frame, OpCode::Text, b"Hello");
        assert_error(&frame, WsError::UnmaskedFrame, 1002);
    }

    #[test]
    fn error_reserved_opcode() {
        for op in (0x3..=0x7).chain(0xB..=0xF) {
            let mut frame = client(OpCode::Text, true, b"x");
            frame[0] = 0x80 | op;
            assert_error(&frame, WsError::ReservedOpcode(op), 1002);
        }
    }

    #[test]
    fn error_control_frame_too_long() {
        assert_error(&client(OpCode::Ping, true, &[0; 126]), WsError::ControlFrameTooLong, 1002);
        let mut close = 1000u16.to_be_bytes().to_vec();
        close.extend_from_slice(&[b'*'; 124]);
        assert_error(&client(OpCode::Close, true, &close), WsError::ControlFrameTooLong, 1002);
        // 125 is the largest allowed.
        assert_eq!(decode_whole(&client(OpCode::Pong, true, &[7; 125])).messages, [Owned::Pong(vec![7; 125])]);
    }

    #[test]
    fn error_fragmented_control_frame() {
        assert_error(&client(OpCode::Ping, false, b"x"), WsError::FragmentedControlFrame, 1002);
    }

    #[test]
    fn error_unexpected_continuation() {
        assert_error(&client(OpCode::Continuation, true, b"x"), WsError::UnexpectedContinuation, 1002);
        // Also right after a complete fragmented message.
        let stream = concat(&[
            client(OpCode::Text, false, b"a"),
            client(OpCode::Continuation, true, b"b"),
            client(OpCode::Continuation, true, b"c"),
        ]);
        let run = decode_whole(&stream);
        assert_eq!(run.messages, [Owned::Text("ab".into())]);
        assert_eq!(run.error, Some(WsError::UnexpectedContinuation));
    }

    #[test]
    fn error_expected_continuation() {
        let stream = concat(&[client(OpCode::Text, false, b"a"), client(OpCode::Binary, true, b"b")]);
        assert_error(&stream, WsError::ExpectedContinuation, 1002);
    }

    #[test]
    fn error_invalid_payload_length() {
        let mut frame = vec![0x82, 0x80 | 127];
        frame.extend_from_slice(&(1u64 << 63).to_be_bytes());
        frame.extend_from_slice(&KEY);
        assert_error(&frame, WsError::InvalidPayloadLength, 1002);
    }

    #[test]
    fn error_message_too_big_before_any_payload_is_buffered() {
        let small = DecoderLimits { max_message_bytes: 100, max_fragments: 64 };
        // One frame declaring 101 bytes: refused on its header alone.
        let frame = client(OpCode::Binary, true, &[0; 101]);
        let mut decoder = Decoder::new(small);
        let mut header = frame[..8].to_vec();
        assert_eq!(decoder.decode(&mut header), Err(WsError::MessageTooBig));
        assert_eq!(decoder.assembled.capacity(), 0);
        assert_eq!(WsError::MessageTooBig.close_code(), CloseCode::TOO_BIG);

        // Fragments adding up to 101.
        let stream =
            concat(&[client(OpCode::Text, false, &[b'a'; 60]), client(OpCode::Continuation, true, &[b'a'; 41])]);
        let mut decoder = Decoder::new(small);
        let run = decode_in_pieces(&mut decoder, &stream, &[]);
        assert_eq!(run.error, Some(WsError::MessageTooBig));
        assert_eq!(decoder.assembled.len(), 60, "second fragment not buffered");

        // Exactly at the limit is fine.
        let stream =
            concat(&[client(OpCode::Text, false, &[b'a'; 60]), client(OpCode::Continuation, true, &[b'a'; 40])]);
        let run = decode_in_pieces(&mut Decoder::new(small), &stream, &[]);
        assert_eq!(run.messages, [Owned::Text("a".repeat(100))]);
    }

    #[test]
    fn error_too_many_fragments_counts_empty_frames() {
        let few = DecoderLimits { max_message_bytes: 1 << 20, max_fragments: 3 };
        let mut frames = vec![client(OpCode::Binary, false, b"")];
        frames.push(client(OpCode::Continuation, false, b""));
        frames.push(client(OpCode::Continuation, true, b"x"));
        let run = decode_in_pieces(&mut Decoder::new(few), &concat(&frames), &[]);
        assert_eq!(run.messages, [Owned::Binary(b"x".to_vec())]);

        frames.insert(1, client(OpCode::Continuation, false, b"y"));
        let run = decode_in_pieces(&mut Decoder::new(few), &concat(&frames), &[]);
        assert_eq!(run.error, Some(WsError::TooManyFragments));
        assert_eq!(WsError::TooManyFragments.close_code(), CloseCode::TOO_BIG);
    }

    #[test]
    fn error_invalid_utf8_single_frame() {
        assert_error(&client(OpCode::Text, true, b"ok \xff"), WsError::InvalidUtf8, 1007);
    }

    #[test]
    fn error_invalid_utf8_across_fragments() {
        // 0xE2 0x82 starts "€" (E2 82 AC); 0x28 can't continue it.
        let stream = concat(&[
            client(OpCode::Text, false, b"a\xe2"),
            client(OpCode::Continuation, false, b"\x82"),
            client(OpCode::Continuation, true, b"\x28"),
        ]);
        assert_error(&stream, WsError::InvalidUtf8, 1007);
        // The same split completed correctly is fine.
        let stream = concat(&[
            client(OpCode::Text, false, b"a\xe2"),
            client(OpCode::Continuation, false, b"\x82"),
            client(OpCode::Continuation, true, b"\xac"),
        ]);
        assert_eq!(decode_whole(&stream).messages, [Owned::Text("a€".into())]);
    }

    #[test]
    fn error_incomplete_code_point_at_end_of_message() {
        let stream = concat(&[client(OpCode::Text, false, b"a"), client(OpCode::Continuation, true, b"\xe2\x82")]);
        assert_error(&stream, WsError::InvalidUtf8, 1007);
        assert_error(&client(OpCode::Text, true, b"\xe2\x82"), WsError::InvalidUtf8, 1007);
    }

    #[test]
    fn error_close_frame_too_short() {
        assert_error(&client(OpCode::Close, true, &[0x03]), WsError::CloseFrameTooShort, 1002);
    }

    #[test]
    fn error_invalid_close_code() {
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000] {
            assert_error(&client(OpCode::Close, true, &code.to_be_bytes()), WsError::InvalidCloseCode(code), 1002);
        }
    }

    #[test]
    fn error_invalid_close_reason() {
        let mut payload = 1000u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited");
        assert_error(&client(OpCode::Close, true, &payload), WsError::InvalidCloseReason, 1007);
    }

    #[test]
    fn spent_decoder_repeats_its_error() {
        let mut decoder = Decoder::new(limits());
        let mut bad = client(OpCode::Continuation, true, b"");
        assert_eq!(decoder.decode(&mut bad), Err(WsError::UnexpectedContinuation));
        let mut good = client(OpCode::Text, true, b"hi");
        assert_eq!(decoder.decode(&mut good), Err(WsError::UnexpectedContinuation));
    }

    // Streaming.

    #[test]
    fn invalid_utf8_mid_frame_fails_before_the_rest_arrives() {
        // Autobahn 6.4.x: a 1000-byte text frame whose 10th payload byte is
        // invalid must fail when that byte arrives, not when the frame ends.
        let mut payload = vec![b'a'; 1000];
        payload[9] = 0xC0;
        let frame = client(OpCode::Text, true, &payload);
        let mut decoder = Decoder::new(limits());
        // Header (8 bytes) plus 9 valid payload bytes: taken, no message yet.
        let mut first = frame[..8 + 9].to_vec();
        assert_eq!(decoder.decode(&mut first), Ok((17, None)));
        assert!(decoder.is_mid_message());
        let mut second = frame[17..18].to_vec();
        assert_eq!(decoder.decode(&mut second), Err(WsError::InvalidUtf8));

        // Mid-message too: the second fragment's first byte breaks "€".
        let stream = concat(&[
            client(OpCode::Text, false, "x€".as_bytes().get(..2).unwrap()),
            client(OpCode::Continuation, true, &[b'z'; 500]),
        ]);
        let mut decoder = Decoder::new(limits());
        let cut = stream.len() - 499;
        let run = decode_in_pieces(&mut decoder, &stream[..cut], &[]);
        assert_eq!(run.error, Some(WsError::InvalidUtf8));
    }

    #[test]
    fn memory_tracks_bytes_received_not_bytes_declared() {
        let payload = vec![b'q'; 1 << 19];
        let frame = client(OpCode::Binary, true, &payload);
        let mut decoder = Decoder::new(limits());
        let mut part = frame[..14 + 100].to_vec();
        assert_eq!(decoder.decode(&mut part), Ok((114, None)));
        assert!(decoder.assembled.capacity() < 4096);
        assert!(decoder.is_mid_message());
        // Not idle: the partial message is kept.
        decoder.release_idle_memory();
        assert_eq!(decoder.assembled.len(), 100);
        let mut rest = frame[114..].to_vec();
        let (consumed, message) = decoder.decode(&mut rest).unwrap();
        assert_eq!(consumed, frame.len() - 114);
        assert_eq!(message, Some(Message::Binary(&payload[..])));
        assert!(!decoder.is_mid_message());
        decoder.release_idle_memory();
        assert_eq!(decoder.assembled.capacity(), 0);
    }

    #[test]
    fn reassembly_buffer_is_reused_and_cleared_lazily() {
        let stream = concat(&[
            client(OpCode::Text, false, b"one"),
            client(OpCode::Continuation, true, b"!"),
            client(OpCode::Binary, false, b"two"),
            client(OpCode::Continuation, true, b""),
        ]);
        let run = decode_whole(&stream);
        assert_eq!(run.messages, [Owned::Text("one!".into()), Owned::Binary(b"two".to_vec())]);
    }

    fn fixed_stream() -> (Vec<u8>, Vec<Owned>) {
        let mut close = 1001u16.to_be_bytes().to_vec();
        close.extend_from_slice("bye".as_bytes());
        let kosme = "κόσμε".as_bytes();
        let binary: Vec<u8> = (0..200u8).collect();
        let stream = concat(&[
            client(OpCode::Text, true, b"Hello"),
            client(OpCode::Text, false, &kosme[..3]),
            client(OpCode::Ping, true, b"ping"),
            client(OpCode::Continuation, false, &kosme[3..7]),
            client(OpCode::Continuation, true, &kosme[7..]),
            client(OpCode::Binary, true, &binary),
            client(OpCode::Text, true, b""),
            client(OpCode::Binary, false, &binary[..130]),
            client(OpCode::Continuation, true, &binary[130..]),
            client(OpCode::Close, true, &close),
        ]);
        let expected = vec![
            Owned::Text("Hello".into()),
            Owned::Ping(b"ping".to_vec()),
            Owned::Text("κόσμε".into()),
            Owned::Binary(binary.clone()),
            Owned::Text(String::new()),
            Owned::Binary(binary),
            Owned::Close(Some((1001, "bye".into()))),
        ];
        (stream, expected)
    }

    #[test]
    fn every_split_point_gives_the_same_messages() {
        let (stream, expected) = fixed_stream();
        let whole = decode_whole(&stream);
        assert_eq!(whole.messages, expected);
        assert_eq!((whole.error, whole.leftover, whole.mid_message), (None, 0, false));
        for split in 0..=stream.len() {
            let run = decode_in_pieces(&mut Decoder::new(limits()), &stream, &[split]);
            assert_eq!(run, whole, "split at {split}");
        }
        let every_byte: Vec<usize> = (1..stream.len()).collect();
        let run = decode_in_pieces(&mut Decoder::new(limits()), &stream, &every_byte);
        assert_eq!(run, whole, "one byte at a time");
    }

    // Property test: random valid streams decode the same however they are split.

    #[derive(Clone, Debug)]
    enum Data {
        Text(String),
        Binary(Vec<u8>),
    }

    #[derive(Clone, Debug)]
    enum Item {
        /// A data message cut at `cuts` (byte offsets, may split code points
        /// and repeat for empty fragments), with control frames between fragments.
        Data {
            data: Data,
            cuts: Vec<prop::sample::Index>,
            between: Vec<Option<(bool, Vec<u8>)>>,
        },
        Ping(Vec<u8>),
        Pong(Vec<u8>),
    }

    fn payload_len() -> impl Strategy<Value = usize> {
        prop_oneof![
            4 => 0..10usize,
            4 => 118..134usize,
            2 => 0..600usize,
            1 => 65530..65542usize,
        ]
    }

    fn control_payload() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..=125)
    }

    fn item() -> impl Strategy<Value = Item> {
        let data = prop_oneof![
            payload_len().prop_flat_map(|len| {
                prop::collection::vec(any::<char>(), len / 3).prop_map(|chars| Data::Text(chars.into_iter().collect()))
            }),
            payload_len().prop_flat_map(|len| { prop::collection::vec(any::<u8>(), len).prop_map(Data::Binary) }),
        ];
        prop_oneof![
            6 => (
                data,
                prop::collection::vec(any::<prop::sample::Index>(), 0..4),
                prop::collection::vec(prop::option::of((any::<bool>(), control_payload())), 4),
            )
                .prop_map(|(data, cuts, between)| Item::Data { data, cuts, between }),
            1 => control_payload().prop_map(Item::Ping),
            1 => control_payload().prop_map(Item::Pong),
        ]
    }

    /// Encodes `items` as masked client frames; returns the stream and the
    /// messages it should decode to.
    fn build(items: &[Item], close: &Option<(u16, String)>, seed: u32) -> (Vec<u8>, Vec<Owned>) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        let mut key_state = seed;
        let mut next_key = || {
            key_state = key_state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            key_state.to_be_bytes()
        };
        for item in items {
            match item {
                Item::Ping(p) => {
                    encode_client_frame(&mut stream, OpCode::Ping, true, p, next_key());
                    expected.push(Owned::Ping(p.clone()));
                }
                Item::Pong(p) => {
                    encode_client_frame(&mut stream, OpCode::Pong, true, p, next_key());
                    expected.push(Owned::Pong(p.clone()));
                }
                Item::Data { data, cuts, between } => {
                    let (opcode, bytes, owned) = match data {
                        Data::Text(t) => (OpCode::Text, t.as_bytes(), Owned::Text(t.clone())),
                        Data::Binary(b) => (OpCode::Binary, &b[..], Owned::Binary(b.clone())),
                    };
                    let mut offsets: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
                    offsets.sort_unstable();
                    offsets.push(bytes.len());
                    let mut start = 0;
                    for (i, &end) in offsets.iter().enumerate() {
                        let fin = i + 1 == offsets.len();
                        let op = if i == 0 { opcode } else { OpCode::Continuation };
                        encode_client_frame(&mut stream, op, fin, &bytes[start..end], next_key());
                        start = end;
                        if let (false, Some(Some((is_ping, p)))) = (fin, between.get(i)) {
                            let op = if *is_ping { OpCode::Ping } else { OpCode::Pong };
                            encode_client_frame(&mut stream, op, true, p, next_key());
                            expected.push(if *is_ping { Owned::Ping(p.clone()) } else { Owned::Pong(p.clone()) });
                        }
                    }
                    expected.push(owned);
                }
            }
        }
        if let Some((code, reason)) = close {
            let mut payload = code.to_be_bytes().to_vec();
            payload.extend_from_slice(reason.as_bytes());
            encode_client_frame(&mut stream, OpCode::Close, true, &payload, next_key());
            expected.push(Owned::Close(Some((*code, reason.clone()))));
        }
        (stream, expected)
    }

    fn close_strategy() -> impl Strategy<Value = Option<(u16, String)>> {
        prop::option::of((prop_oneof![Just(1000u16), Just(1001), 1007..=1014u16, 3000..5000u16], "\\PC{0,30}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn random_streams_decode_the_same_for_any_split(
            items in prop::collection::vec(item(), 0..8),
            close in close_strategy(),
            seed in any::<u32>(),
            splits in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let (stream, expected) = build(&items, &close, seed);
            let whole = decode_whole(&stream);
            prop_assert_eq!(&whole.messages, &expected);
            prop_assert_eq!((whole.error, whole.leftover, whole.mid_message), (None, 0, false));

            let mut cuts: Vec<usize> = splits.iter().map(|s| s.index(stream.len() + 1)).collect();
            cuts.sort_unstable();
            let run = decode_in_pieces(&mut Decoder::new(limits()), &stream, &cuts);
            prop_assert_eq!(run, whole);
        }

        #[test]
        fn junk_frames_fail_the_same_for_any_split(
            frames in prop::collection::vec(
                (0u8..16, any::<bool>(), prop::collection::vec(any::<u8>(), 0..140), any::<[u8; 4]>()),
                1..10,
            ),
            splits in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            // Random opcodes (reserved ones included), FIN bits and payloads
            // (mostly invalid UTF-8, bad close codes): whatever the outcome,
            // it must not depend on how the stream was cut.
            let mut stream = Vec::new();
            for (op, fin, payload, key) in &frames {
                let op_code = OpCode::from_u8(*op).unwrap_or(OpCode::Binary);
                let start = stream.len();
                encode_client_frame(&mut stream, op_code, *fin, payload, *key);
                stream[start] = (stream[start] & 0xF0) | op;
            }
            let whole = decode_whole(&stream);
            let mut cuts: Vec<usize> = splits.iter().map(|s| s.index(stream.len() + 1)).collect();
            cuts.sort_unstable();
            let run = decode_in_pieces(&mut Decoder::new(limits()), &stream, &cuts);
            prop_assert_eq!(run.messages, whole.messages);
            prop_assert_eq!(run.error, whole.error);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..300),
            chunk in 1..20usize,
        ) {
            let cuts: Vec<usize> = (chunk..bytes.len()).step_by(chunk).collect();
            let whole = decode_whole(&bytes);
            let run = decode_in_pieces(&mut Decoder::new(limits()), &bytes, &cuts);
            // Same messages and the same error, whatever the split.
            prop_assert_eq!(run.messages, whole.messages);
            prop_assert_eq!(run.error, whole.error);
        }
    }
}
