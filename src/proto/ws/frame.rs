//! RFC 6455 §5.2 base framing: opcodes, header layout and client header parsing.
//! Stateless: rules that depend on earlier frames live in the decoder.

use super::error::WsError;

/// FIN bit of byte 0: this is the final fragment of a message.
pub const FIN_BIT: u8 = 0x80;
/// RSV1, RSV2 and RSV3 bits of byte 0, reserved for extensions.
pub const RSV_BITS: u8 = 0x70;
/// Opcode nibble of byte 0.
pub const OPCODE_BITS: u8 = 0x0F;
/// MASK bit of byte 1: the payload is masked (client-to-server frames).
pub const MASK_BIT: u8 = 0x80;
/// 7-bit payload length field of byte 1.
pub const LEN7_BITS: u8 = 0x7F;
/// 7-bit length value announcing a 16-bit extended payload length.
pub const LEN7_EXT16: u8 = 126;
/// 7-bit length value announcing a 64-bit extended payload length.
pub const LEN7_EXT64: u8 = 127;
/// Largest payload a control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD_BYTES: usize = 125;
/// Longest possible header: 2 fixed bytes, 8 length bytes, 4 mask key bytes.
pub const MAX_HEADER_BYTES: usize = 14;

/// A frame opcode (RFC 6455 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCode {
    /// `0x0`: a further fragment of the message in progress.
    Continuation,
    /// `0x1`: first frame of a UTF-8 text message.
    Text,
    /// `0x2`: first frame of a binary message.
    Binary,
    /// `0x8`: connection close.
    Close,
    /// `0x9`: ping.
    Ping,
    /// `0xA`: pong.
    Pong,
}

impl OpCode {
    /// The opcode for the low nibble `value`; `None` for the reserved opcodes
    /// 0x3-0x7 and 0xB-0xF (and anything above 0xF).
    pub const fn from_u8(value: u8) -> Option<OpCode> {
        match value {
            0x0 => Some(OpCode::Continuation),
            0x1 => Some(OpCode::Text),
            0x2 => Some(OpCode::Binary),
            0x8 => Some(OpCode::Close),
            0x9 => Some(OpCode::Ping),
            0xA => Some(OpCode::Pong),
            _ => None,
        }
    }

    /// The 4-bit wire value.
    pub const fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Whether this is a control opcode (Close, Ping, Pong): the most
    /// significant opcode bit is set (RFC 6455 §5.5).
    pub const fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }
}

/// A parsed, masked client frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Final fragment of its message.
    pub fin: bool,
    /// RSV bits as they sit in byte 0 (`0x40` rsv1, `0x20` rsv2, `0x10` rsv3).
    pub rsv: u8,
    /// Frame opcode.
    pub opcode: OpCode,
    /// Masking key for the payload.
    pub mask_key: [u8; 4],
    /// Declared payload length, below 2^63.
    pub payload_len: u64,
    /// Header length in bytes (6 to 14); the payload starts here.
    pub header_len: usize,
}

/// Parses a client-to-server frame header from the front of `buf`.
///
/// Returns `Ok(None)` while the header is incomplete. Every check runs as soon
/// as the byte it looks at is present, in byte order, so a broken header fails
/// early and with the same error however the input was split. `allowed_rsv`
/// holds the RSV bits an extension negotiated (as in byte 0).
pub fn parse_header(buf: &[u8], allowed_rsv: u8) -> Result<Option<FrameHeader>, WsError> {
    let Some(&b0) = buf.first() else {
        return Ok(None);
    };
    // RFC 6455 §5.2: "If a nonzero value is received and none of the negotiated
    // extensions defines the meaning of such a nonzero value, the receiving
    // endpoint MUST _Fail the WebSocket Connection_."
    let rsv = b0 & RSV_BITS;
    if rsv & !allowed_rsv != 0 {
        return Err(WsError::ReservedBits);
    }
    // RFC 6455 §5.2: opcodes %x3-7 and %x B-F are "reserved for further
    // non-control/control frames"; an unknown opcode fails the connection.
    let raw_opcode = b0 & OPCODE_BITS;
    let Some(opcode) = OpCode::from_u8(raw_opcode) else {
        return Err(WsError::ReservedOpcode(raw_opcode));
    };
    let fin = b0 & FIN_BIT != 0;
    // RFC 6455 §5.5: "Control frames themselves MUST NOT be fragmented."
    if opcode.is_control() && !fin {
        return Err(WsError::FragmentedControlFrame);
    }

    let Some(&b1) = buf.get(1) else {
        return Ok(None);
    };
    // RFC 6455 §5.1: "The server MUST close the connection upon receiving a
    // frame that is not masked."
    if b1 & MASK_BIT == 0 {
        return Err(WsError::UnmaskedFrame);
    }
    let len7 = b1 & LEN7_BITS;
    // RFC 6455 §5.5: "All control frames MUST have a payload length of 125
    // bytes or less." 126 and 127 announce longer payloads.
    if opcode.is_control() && usize::from(len7) > MAX_CONTROL_PAYLOAD_BYTES {
        return Err(WsError::ControlFrameTooLong);
    }

    let (payload_len, len_end) = match len7 {
        LEN7_EXT16 => {
            let Some(&[hi, lo]) = buf.get(2..4) else {
                return Ok(None);
            };
            (u64::from(u16::from_be_bytes([hi, lo])), 4)
        }
        LEN7_EXT64 => {
            let Some(&[a, b, c, d, e, f, g, h]) = buf.get(2..10) else {
                return Ok(None);
            };
            let len = u64::from_be_bytes([a, b, c, d, e, f, g, h]);
            // RFC 6455 §5.2: "the most significant bit MUST be 0".
            if len >> 63 != 0 {
                return Err(WsError::InvalidPayloadLength);
            }
            (len, 10)
        }
        short => (u64::from(short), 2),
    };

    let header_len = len_end + 4;
    let Some(&[k0, k1, k2, k3]) = buf.get(len_end..header_len) else {
        return Ok(None);
    };
    Ok(Some(FrameHeader { fin, rsv, opcode, mask_key: [k0, k1, k2, k3], payload_len, header_len }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_round_trips_and_reserved_ones_are_refused() {
        for value in 0u8..=0xFF {
            match OpCode::from_u8(value) {
                Some(op) => {
                    assert_eq!(op.as_u8(), value);
                    assert_eq!(op.is_control(), value >= 0x8);
                }
                None => assert!(matches!(value, 0x3..=0x7 | 0xB..)),
            }
        }
    }

    #[test]
    fn header_waits_for_every_byte() {
        // Masked text frame with a 64-bit length of 70000.
        let mut frame = vec![0x81, 0x80 | 127];
        frame.extend_from_slice(&70_000u64.to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4]);
        for end in 0..frame.len() {
            assert_eq!(parse_header(&frame[..end], 0), Ok(None), "prefix {end}");
        }
        let header = parse_header(&frame, 0).unwrap().unwrap();
        assert_eq!(header.payload_len, 70_000);
        assert_eq!(header.header_len, 14);
        assert_eq!(header.mask_key, [1, 2, 3, 4]);
        assert!(header.fin);
    }

    #[test]
    fn first_byte_errors_need_no_second_byte() {
        assert_eq!(parse_header(&[0xC1], 0), Err(WsError::ReservedBits));
        assert_eq!(parse_header(&[0x83], 0), Err(WsError::ReservedOpcode(3)));
        assert_eq!(parse_header(&[0x09], 0), Err(WsError::FragmentedControlFrame));
        assert_eq!(parse_header(&[0xC1], 0x40), Ok(None));
    }
}
