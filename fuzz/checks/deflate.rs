//! `deflate`: permessage-deflate's hostile inputs (`proto::ws::deflate`):
//! a `Sec-WebSocket-Extensions` value through the offer parser and the
//! negotiation, and the same bytes as a compressed message through the
//! capped inflater.
//!
//! The first byte picks the inflate limit (`64 * (b + 1)` bytes); the rest
//! is both the header value and the message. Invariants: no panic; an
//! agreed answer re-parses to one offer with the same meaning and never
//! asks for what the offer forbade (a window of 8, context kept in shared
//! mode); inflating never yields more than the limit, fails with `TooBig`
//! exactly when the whole message inflates past it (checked against an
//! uncapped inflate of the same bytes), and a message deflated by soket's
//! own compressor inflates back to itself.

use flate2::{Compress, Compression, Decompress};
use soket::proto::http::upgrade::parse_extensions;
use soket::proto::ws::deflate::{self, DeflateMode, DeflateOffer, InflateError, negotiate};

/// Far above any limit the first byte picks: the reference inflate stops here.
const REFERENCE_LIMIT: usize = 1 << 20;

pub fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    offers(rest);
    let limit = 64 * (usize::from(first) + 1);
    inflate_capped(rest, limit);
    round_trip(rest);
}

fn offers(value: &[u8]) {
    let Some(parsed) = parse_extensions([value]) else { return };
    let offers: Vec<DeflateOffer> = parsed
        .iter()
        .filter(|o| o.name.eq_ignore_ascii_case(deflate::NAME))
        .filter_map(|o| DeflateOffer::from_params(&o.params))
        .collect();
    for mode in [DeflateMode::Shared, DeflateMode::Dedicated, DeflateMode::Off] {
        for room in [false, true] {
            let Some(agreed) = negotiate(&offers, mode, room) else { continue };
            assert!(mode != DeflateMode::Off, "off agrees to nothing");
            assert!((9..=15).contains(&agreed.server_window_bits), "{agreed:?}");
            assert!(room || !agreed.is_dedicated(), "no room, yet dedicated: {agreed:?}");
            if mode == DeflateMode::Shared {
                assert!(agreed.server_no_context_takeover, "shared mode keeps no server context");
            }
            let answer = agreed.response_value();
            let reparsed = parse_extensions([answer.as_bytes()]).expect("our answer parses");
            assert_eq!(reparsed.len(), 1, "{answer}");
            let back = DeflateOffer::from_params(&reparsed[0].params).expect("our answer is a valid offer");
            assert_eq!(back.server_no_context_takeover, agreed.server_no_context_takeover, "{answer}");
            assert_eq!(back.client_no_context_takeover, agreed.client_no_context_takeover, "{answer}");
            if let Some(bits) = back.server_max_window_bits {
                assert_eq!(bits, agreed.server_window_bits, "{answer}");
            }
            // The client's own window is never imposed back on it.
            assert_eq!(back.client_max_window_bits, None, "{answer}");
        }
    }
}

fn inflate_capped(message: &[u8], limit: usize) {
    let mut capped = Vec::new();
    let result = deflate::inflate(&mut Decompress::new_with_window_bits(false, 15), message, &mut capped, limit);
    assert!(capped.len() <= limit + 1, "{} bytes held past a limit of {limit}", capped.len());
    let mut whole = Vec::new();
    let reference =
        deflate::inflate(&mut Decompress::new_with_window_bits(false, 15), message, &mut whole, REFERENCE_LIMIT);
    match (result, reference) {
        (Ok(()), Ok(())) => assert_eq!(capped, whole, "the cap changed what a message inflates to"),
        (Err(InflateError::TooBig), Ok(())) => {
            assert!(whole.len() > limit, "TooBig, yet it inflates to {}", whole.len())
        }
        (Ok(()), Err(InflateError::TooBig)) => panic!("inflated under {limit}, yet past {REFERENCE_LIMIT} uncapped"),
        (Err(InflateError::Corrupt), Err(InflateError::Corrupt)) | (Err(_), Err(InflateError::TooBig)) => {}
        (Err(InflateError::Corrupt), Ok(())) => {
            // Corrupt data met after the limit's worth of good output is
            // only seen uncapped; the reverse cannot happen.
            panic!("corrupt under a cap, yet whole it inflates to {} bytes", whole.len());
        }
        (Err(InflateError::TooBig), Err(InflateError::Corrupt)) => {
            assert!(capped.len() > limit, "TooBig with {} bytes of {limit}", capped.len());
        }
        (Ok(()), Err(InflateError::Corrupt)) => panic!("the capped inflate accepted what the uncapped one refused"),
    }
}

fn round_trip(message: &[u8]) {
    let mut compressed = Vec::new();
    deflate::deflate(&mut Compress::new_with_window_bits(Compression::default(), false, 15), message, &mut compressed);
    let mut back = Vec::new();
    let result =
        deflate::inflate(&mut Decompress::new_with_window_bits(false, 15), &compressed, &mut back, message.len());
    assert_eq!(result, Ok(()), "our own deflate of {} bytes", message.len());
    assert_eq!(back, message);
}
