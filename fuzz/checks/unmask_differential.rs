//! `unmask_differential`: the word-wide mask against the bytewise reference.
//!
//! Input: bytes 0-3 are the key, byte 4 the offset (its full value, so
//! offsets past 3 check the `% 4`; 252 and up stand for offsets near
//! `usize::MAX`, checking the wrap), byte 5 a cut point, the rest the data.
//! Invariants: `apply_mask` and `apply_mask_naive` give identical bytes;
//! masking twice restores the data; masking in two pieces (the second
//! resuming at `offset + cut`) equals masking in one.

use soket::proto::ws::{apply_mask, apply_mask_naive};

pub fn run(data: &[u8]) {
    let [k0, k1, k2, k3, offset, cut, payload @ ..] = data else {
        return;
    };
    let key = [*k0, *k1, *k2, *k3];
    let offset = match *offset {
        near_max @ 252.. => usize::MAX - usize::from(255 - near_max),
        small => usize::from(small),
    };

    let mut fast = payload.to_vec();
    let mut naive = payload.to_vec();
    apply_mask(&mut fast, key, offset);
    apply_mask_naive(&mut naive, key, offset);
    assert_eq!(fast, naive, "apply_mask differs from the reference (offset {offset})");

    let mut twice = fast.clone();
    apply_mask(&mut twice, key, offset);
    assert_eq!(twice, payload, "masking twice does not restore the data");

    let cut = usize::from(*cut).min(payload.len());
    let mut pieces = payload.to_vec();
    let (a, b) = pieces.split_at_mut(cut);
    apply_mask(a, key, offset);
    apply_mask(b, key, offset.wrapping_add(cut));
    assert_eq!(pieces, fast, "masking in two pieces differs (offset {offset}, cut {cut})");
}
