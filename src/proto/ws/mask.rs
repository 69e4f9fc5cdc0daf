//! RFC 6455 §5.3 client-to-server masking.

/// XORs `buf` with `key`, as if `buf` started at byte `offset` of the payload.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let _ = (buf, key, offset);
    todo!()
}
