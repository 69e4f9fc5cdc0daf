//! Frame-level protocol violations, each mapped to exactly one close code.
//! Handshake and chat errors live in their own layers.

use std::fmt;

use super::close::CloseCode;

/// Why the decoder refused the stream. After an error the decoder is spent:
/// every later `decode` call returns the same error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsError {
    /// An RSV bit is set that no negotiated extension defines (1002).
    ReservedBits,
    /// A reserved opcode (0x3-0x7, 0xB-0xF); carries the opcode (1002).
    ReservedOpcode(u8),
    /// A client frame without the MASK bit (1002).
    UnmaskedFrame,
    /// A control frame declaring more than 125 payload bytes (1002).
    ControlFrameTooLong,
    /// A control frame with FIN clear (1002).
    FragmentedControlFrame,
    /// A continuation frame while no fragmented message is in progress (1002).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is in progress (1002).
    ExpectedContinuation,
    /// A 64-bit payload length with the most significant bit set (1002).
    InvalidPayloadLength,
    /// The message would exceed `max_message_bytes` (1009).
    MessageTooBig,
    /// The message would take more than `max_fragments` frames (1009).
    TooManyFragments,
    /// A text message is not valid UTF-8 (1007).
    InvalidUtf8,
    /// A close frame with a 1-byte payload (1002).
    CloseFrameTooShort,
    /// A close frame with a code peers must not send; carries the code (1002).
    InvalidCloseCode(u16),
    /// A close frame whose reason is not valid UTF-8 (1007).
    InvalidCloseReason,
    /// RSV1 on a control or continuation frame under permessage-deflate (1002).
    MisplacedRsv1,
    /// A compressed message that is not valid deflate data (1007).
    BadDeflate,
    /// A compressed message that inflates past `max_message_bytes` (1009).
    InflatedTooBig,
}

impl WsError {
    /// The close code to send before closing the connection.
    pub fn close_code(self) -> CloseCode {
        match self {
            WsError::InvalidUtf8 | WsError::InvalidCloseReason | WsError::BadDeflate => CloseCode::INVALID_PAYLOAD,
            WsError::MessageTooBig | WsError::TooManyFragments | WsError::InflatedTooBig => CloseCode::TOO_BIG,
            WsError::MisplacedRsv1 => CloseCode::PROTOCOL_ERROR,
            WsError::ReservedBits
            | WsError::ReservedOpcode(_)
            | WsError::UnmaskedFrame
            | WsError::ControlFrameTooLong
            | WsError::FragmentedControlFrame
            | WsError::UnexpectedContinuation
            | WsError::ExpectedContinuation
            | WsError::InvalidPayloadLength
            | WsError::CloseFrameTooShort
            | WsError::InvalidCloseCode(_) => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::ReservedBits => f.write_str("reserved RSV bit set without an extension"),
            WsError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            WsError::UnmaskedFrame => f.write_str("unmasked client frame"),
            WsError::ControlFrameTooLong => f.write_str("control frame payload over 125 bytes"),
            WsError::FragmentedControlFrame => f.write_str("fragmented control frame"),
            WsError::UnexpectedContinuation => f.write_str("continuation frame with no message in progress"),
            WsError::ExpectedContinuation => f.write_str("new data frame while a fragmented message is in progress"),
            WsError::InvalidPayloadLength => f.write_str("64-bit payload length with the most significant bit set"),
            WsError::MessageTooBig => f.write_str("message over the size limit"),
            WsError::TooManyFragments => f.write_str("message over the fragment limit"),
            WsError::InvalidUtf8 => f.write_str("text message is not valid UTF-8"),
            WsError::CloseFrameTooShort => f.write_str("close frame with a 1-byte payload"),
            WsError::InvalidCloseCode(code) => {
                write!(f, "close code {code} not allowed on the wire")
            }
            WsError::InvalidCloseReason => f.write_str("close reason is not valid UTF-8"),
            WsError::MisplacedRsv1 => f.write_str("RSV1 on a control or continuation frame"),
            WsError::BadDeflate => f.write_str("compressed message is not valid deflate data"),
            WsError::InflatedTooBig => f.write_str("message inflates over the size limit"),
        }
    }
}

impl std::error::Error for WsError {}
