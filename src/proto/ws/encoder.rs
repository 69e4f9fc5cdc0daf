//! Server-side frame encoding (unmasked), plus a masked client encoder for
//! tests, benches and fuzzing. Appends to caller-owned buffers; no sockets.

use super::close::CloseCode;
use super::frame::{FIN_BIT, LEN7_EXT16, LEN7_EXT64, MASK_BIT, MAX_CONTROL_PAYLOAD_BYTES, OpCode};
use super::mask::apply_mask;

/// Writes a frame header into `dst` and returns its length (2 to 14 bytes).
///
/// Uses the shortest length encoding, as RFC 6455 §5.2 requires. `payload_len`
/// must be below 2^63 (any real slice length is). With `mask_key` the MASK bit
/// is set and the key follows the length; the payload is not touched here.
pub fn encode_header(
    opcode: OpCode,
    fin: bool,
    payload_len: u64,
    mask_key: Option<[u8; 4]>,
    dst: &mut [u8; 14],
) -> usize {
    dst[0] = if fin { FIN_BIT } else { 0 } | opcode.as_u8();
    let mask_bit = if mask_key.is_some() { MASK_BIT } else { 0 };
    let mut len = if let Ok(short @ 0..=125) = u8::try_from(payload_len) {
        dst[1] = mask_bit | short;
        2
    } else if let Ok(medium) = u16::try_from(payload_len) {
        dst[1] = mask_bit | LEN7_EXT16;
        dst[2..4].copy_from_slice(&medium.to_be_bytes());
        4
    } else {
        dst[1] = mask_bit | LEN7_EXT64;
        dst[2..10].copy_from_slice(&payload_len.to_be_bytes());
        10
    };
    if let Some(key) = mask_key {
        dst[len..len + 4].copy_from_slice(&key);
        len += 4;
    }
    len
}

/// Appends one unmasked FIN frame carrying `payload` (RFC 6455 §5.1: a server
/// MUST NOT mask). Control payloads must be at most 125 bytes; that is the
/// caller's contract, as is a sendable close payload (use [`encode_close`]).
pub fn encode_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    let mut header = [0u8; 14];
    let header_len = encode_header(opcode, true, payload.len() as u64, None, &mut header);
    out.reserve(header_len + payload.len());
    out.extend_from_slice(&header[..header_len]);
    out.extend_from_slice(payload);
}

/// Appends an unmasked close frame with `code` and `reason`.
///
/// RFC 6455 §5.5: control payloads are at most 125 bytes, so the reason is cut
/// to 123 bytes, at a char boundary so it stays valid UTF-8 (§5.5.1). `code`
/// should be one peers may receive ([`CloseCode::is_allowed_on_wire`]).
pub fn encode_close(out: &mut Vec<u8>, code: CloseCode, reason: &str) {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD_BYTES - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    let mut header = [0u8; 14];
    let payload_len = 2 + reason.len();
    let header_len = encode_header(OpCode::Close, true, payload_len as u64, None, &mut header);
    out.reserve(header_len + payload_len);
    out.extend_from_slice(&header[..header_len]);
    out.extend_from_slice(&code.0.to_be_bytes());
    out.extend_from_slice(reason);
}

/// Appends one masked client frame, as a browser would send it.
///
/// For tests, benches and fuzzing; the server never masks. Any opcode, FIN
/// and length are encoded as given, so broken streams can be built too.
pub fn encode_client_frame(out: &mut Vec<u8>, opcode: OpCode, fin: bool, payload: &[u8], mask_key: [u8; 4]) {
    let mut header = [0u8; 14];
    let header_len = encode_header(opcode, fin, payload.len() as u64, Some(mask_key), &mut header);
    out.reserve(header_len + payload.len());
    out.extend_from_slice(&header[..header_len]);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask_key, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_single_frame_unmasked_hello() {
        // RFC 6455 §5.7: 0x81 0x05 0x48 0x65 0x6c 0x6c 0x6f (contains "Hello").
        let mut out = Vec::new();
        encode_frame(&mut out, OpCode::Text, b"Hello");
        assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    #[test]
    fn rfc_single_frame_masked_hello() {
        // RFC 6455 §5.7: 0x81 0x85 0x37 0xfa 0x21 0x3d 0x7f 0x9f 0x4d 0x51 0x58.
        let mut out = Vec::new();
        encode_client_frame(&mut out, OpCode::Text, true, b"Hello", [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(out, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn rfc_fragmented_unmasked_hello() {
        // RFC 6455 §5.7: 0x01 0x03 0x48 0x65 0x6c ("Hel"), 0x80 0x02 0x6c 0x6f ("lo").
        let mut header = [0u8; 14];
        let mut out = Vec::new();
        let n = encode_header(OpCode::Text, false, 3, None, &mut header);
        out.extend_from_slice(&header[..n]);
        out.extend_from_slice(b"Hel");
        let n = encode_header(OpCode::Continuation, true, 2, None, &mut header);
        out.extend_from_slice(&header[..n]);
        out.extend_from_slice(b"lo");
        assert_eq!(out, [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]);
    }

    #[test]
    fn rfc_unmasked_ping() {
        // RFC 6455 §5.7: 0x89 0x05 0x48 0x65 0x6c 0x6c 0x6f.
        let mut out = Vec::new();
        encode_frame(&mut out, OpCode::Ping, b"Hello");
        assert_eq!(out, [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    #[test]
    fn rfc_masked_pong() {
        // RFC 6455 §5.7: 0x8a 0x85 0x37 0xfa 0x21 0x3d 0x7f 0x9f 0x4d 0x51 0x58.
        let mut out = Vec::new();
        encode_client_frame(&mut out, OpCode::Pong, true, b"Hello", [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(out, [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn rfc_256_byte_binary_uses_16_bit_length() {
        // RFC 6455 §5.7: 0x82 0x7E 0x0100 [256 bytes of binary data].
        let mut out = Vec::new();
        encode_frame(&mut out, OpCode::Binary, &[0xAB; 256]);
        assert_eq!(out[..4], [0x82, 0x7E, 0x01, 0x00]);
        assert_eq!(out.len(), 4 + 256);
    }

    #[test]
    fn rfc_64_kib_binary_uses_64_bit_length() {
        // RFC 6455 §5.7: 0x82 0x7F 0x0000000000010000 [65536 bytes of binary data].
        let mut out = Vec::new();
        encode_frame(&mut out, OpCode::Binary, &vec![0xCD; 65536]);
        assert_eq!(out[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(out.len(), 10 + 65536);
    }

    #[test]
    fn length_encoding_boundaries() {
        let mut header = [0u8; 14];
        for (len, expected_header_len) in [(0u64, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (1 << 40, 10)] {
            assert_eq!(encode_header(OpCode::Binary, true, len, None, &mut header), expected_header_len);
            assert_eq!(
                encode_header(OpCode::Binary, true, len, Some([1, 2, 3, 4]), &mut header),
                expected_header_len + 4
            );
        }
    }

    #[test]
    fn close_reason_is_cut_at_a_char_boundary() {
        let mut out = Vec::new();
        encode_close(&mut out, CloseCode::NORMAL, "bye");
        assert_eq!(out, [0x88, 0x05, 0x03, 0xE8, b'b', b'y', b'e']);

        // 62 two-byte chars = 124 bytes: byte 123 is mid-char, so cut to 122.
        let long = "é".repeat(62);
        let mut out = Vec::new();
        encode_close(&mut out, CloseCode::TOO_BIG, &long);
        assert_eq!(out[1], 2 + 122);
        assert!(std::str::from_utf8(&out[4..]).is_ok());
        assert_eq!(out.len(), 2 + 2 + 122);

        let mut out = Vec::new();
        encode_close(&mut out, CloseCode::PROTOCOL_ERROR, &"x".repeat(500));
        assert_eq!(out[1], 125);
    }
}
