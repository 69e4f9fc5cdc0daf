//! RFC 6455 §5.3 client-to-server masking, word-wide in safe code.
//! Masking and unmasking are the same XOR.

/// XORs `buf` with `key`, as if `buf` started at byte `offset` of the payload.
///
/// RFC 6455 §5.3: "Octet i of the transformed data is the XOR of octet i of the
/// original data with octet at index i modulo 4 of the masking key." `offset`
/// lets a payload that arrives in pieces be unmasked piece by piece.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let mut key = key;
    // buf[0] is payload octet `offset`, so it pairs with key[offset % 4].
    key.rotate_left(offset % 4);
    let [k0, k1, k2, k3] = key;
    // Spelled out bytewise so the word is right on either endianness.
    let key_word = u64::from_ne_bytes([k0, k1, k2, k3, k0, k1, k2, k3]);
    let (words, rest) = buf.as_chunks_mut::<8>();
    for word in words {
        *word = (u64::from_ne_bytes(*word) ^ key_word).to_ne_bytes();
    }
    // The remainder starts at a multiple of 8, so the rotated key lines up again.
    for (byte, k) in rest.iter_mut().zip(key.iter().cycle()) {
        *byte ^= *k;
    }
}

/// Byte-at-a-time reference for [`apply_mask`], for differential tests and fuzzing.
pub fn apply_mask_naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[(offset.wrapping_add(i)) % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_for_all_offsets_and_short_lengths() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for offset in 0..4 {
            for len in 0..70 {
                let original: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut fast = original.clone();
                let mut naive = original.clone();
                apply_mask(&mut fast, key, offset);
                apply_mask_naive(&mut naive, key, offset);
                assert_eq!(fast, naive, "offset {offset} len {len}");
            }
        }
    }

    #[test]
    fn offset_continues_across_pieces() {
        let key = [1, 2, 3, 4];
        let original: Vec<u8> = (0..50u8).collect();
        let mut whole = original.clone();
        apply_mask(&mut whole, key, 0);
        for split in 0..original.len() {
            let mut pieces = original.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            assert_eq!(pieces, whole, "split {split}");
        }
    }

    #[test]
    fn large_offsets_wrap() {
        let mut a = [0u8; 9];
        let mut b = [0u8; 9];
        apply_mask(&mut a, [9, 8, 7, 6], usize::MAX);
        apply_mask_naive(&mut b, [9, 8, 7, 6], usize::MAX);
        // usize::MAX % 4 == 3; the naive loop wraps to 0 after it, which is also
        // the next key index, so both agree.
        assert_eq!(a, b);
    }

    #[test]
    fn rfc_hello_example() {
        // RFC 6455 §5.7: masked "Hello" with key 37 fa 21 3d.
        let mut payload = *b"Hello";
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(payload, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }
}
