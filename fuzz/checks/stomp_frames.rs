//! `stomp_frames`: arbitrary bytes through `proto::stomp::Decoder`.
//!
//! Byte 0 chooses how the rest is cut (`pieces`); byte 1 chooses the version
//! (bits 0-1: 1.0, 1.1, 1.2, 1.2) and the limits (`max_frame_bytes` 16 to 1,024,
//! `max_headers` 0 to 7, `max_header_line` 4 to 67). The decoder accepts client and
//! server commands. Invariants: no panic; the split stream gives the same frames,
//! heart-beats and error as the whole one; the buffer never holds or allocates more
//! than `max_frame_bytes`; a frame has at most `max_headers` headers; and each frame
//! written back with `write_frame` at the same version decodes to the same frame
//! (its `content-length` replaced by the true one).

use soket::proto::stomp::{Decoder, Event, Limits, OwnedFrame, StompError, Version, write_frame};

use super::pieces;

pub fn run(data: &[u8]) {
    let [schedule, config, stream @ ..] = data else {
        return;
    };
    let version = match config & 3 {
        0 => Version::V1_0,
        1 => Version::V1_1,
        _ => Version::V1_2,
    };
    let limits = Limits {
        max_frame_bytes: 16 + usize::from(config >> 2) * 16,
        max_headers: usize::from(config >> 5),
        max_header_line: 4 + usize::from(config >> 2),
    };
    let whole = decode(limits, version, &[stream]);
    let split = decode(limits, version, &pieces(*schedule, stream));
    assert_eq!(split, whole, "a split changed the outcome");
    for frame in whole.0.iter().flatten() {
        assert!(frame.headers.len() <= limits.max_headers);
        assert!(frame.body.len() < limits.max_frame_bytes);
        round_trip(frame, version);
    }
}

type Outcome = (Vec<Option<OwnedFrame>>, Result<(), StompError>);

/// Frames (`None` for a heart-beat) and the result, checking the buffer bound as it goes.
fn decode(limits: Limits, version: Version, chunks: &[&[u8]]) -> Outcome {
    let mut decoder = Decoder::new_client(limits);
    decoder.set_version(version);
    let mut events = Vec::new();
    for chunk in chunks {
        let result = decoder.decode(chunk, |event| match event {
            Event::Frame(frame) => events.push(Some(frame.to_owned())),
            Event::HeartBeat => events.push(None),
        });
        assert!(decoder.buffered_bytes() <= limits.max_frame_bytes, "{} held", decoder.buffered_bytes());
        assert!(decoder.buffer_capacity() <= limits.max_frame_bytes, "{} allocated", decoder.buffer_capacity());
        if let Err(error) = result {
            assert_eq!(decoder.finish(), Err(error), "a failed decoder repeats its error");
            return (events, Err(error));
        }
    }
    (events, Ok(()))
}

fn round_trip(frame: &OwnedFrame, version: Version) {
    let headers: Vec<(&str, &str)> = frame.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let mut wire = Vec::new();
    write_frame(&mut wire, frame.command, &headers, &frame.body, version).expect("a decoded frame is representable");
    let roomy = Limits { max_frame_bytes: 1 << 24, max_headers: 1 << 16, max_header_line: 1 << 24 };
    let (events, result) = decode(roomy, version, &[&wire]);
    assert_eq!(result, Ok(()), "{wire:?}");
    let [Some(again)] = events.as_slice() else {
        panic!("{wire:?} decoded to {events:?}");
    };
    let without_length = |f: &OwnedFrame| {
        f.headers.iter().filter(|(n, _)| n != "content-length").cloned().collect::<Vec<(String, String)>>()
    };
    assert_eq!(again.command, frame.command);
    assert_eq!(again.body, frame.body);
    assert_eq!(without_length(again), without_length(frame), "{wire:?}");
    let length = frame.body.len().to_string();
    assert_eq!(again.header("content-length"), (!frame.body.is_empty()).then_some(length.as_str()));
}
