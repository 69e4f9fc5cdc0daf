//! What each fuzz target checks, as plain functions of the input bytes.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`, nightly) and by
//! `tests/fuzz_corpus.rs`, which replays every checked-in corpus file and
//! regression through the same functions on stable. A check panics when an
//! invariant breaks; that panic is the finding.

pub mod cluster_wire;
pub mod connection;
pub mod deflate;
pub mod frame_decoder;
pub mod handshake;
pub mod json_events;
pub mod line_decoder;
pub mod resp;
pub mod socketio_packets;
pub mod sockjs_bodies;
pub mod stomp_frames;
pub mod unmask_differential;

/// A target's check: panics when an invariant breaks.
pub type Check = fn(&[u8]);

/// Every target: its name (the directory under `fuzz/corpus/` and
/// `fuzz/regressions/`) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("frame_decoder", frame_decoder::run),
    ("handshake", handshake::run),
    ("line_decoder", line_decoder::run),
    ("json_events", json_events::run),
    ("unmask_differential", unmask_differential::run),
    ("connection", connection::run),
    ("socketio_packets", socketio_packets::run),
    ("stomp_frames", stomp_frames::run),
    ("sockjs_bodies", sockjs_bodies::run),
    ("deflate", deflate::run),
    ("resp", resp::run),
    ("cluster_wire", cluster_wire::run),
];

/// Cuts `data` into consecutive non-empty pieces as `schedule` says, so one
/// input byte lets the fuzzer choose how a stream arrives:
///
/// - top bits `00`: pieces of `n` bytes, `n = 1 + schedule % 64`;
/// - `01`: pseudo-random sizes in `1..=2n` (a small LCG seeded by `schedule`);
/// - `10`: two pieces, cut at `n/64` of the length;
/// - `11`: one byte at a time.
pub fn pieces(schedule: u8, data: &[u8]) -> Vec<&[u8]> {
    let n = 1 + usize::from(schedule & 63);
    let mut out = Vec::new();
    match schedule >> 6 {
        0 => out.extend(data.chunks(n)),
        1 => {
            let mut state = u32::from(schedule).wrapping_mul(2_654_435_761) | 1;
            let mut rest = data;
            while !rest.is_empty() {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let size = 1 + (state >> 16) as usize % (2 * n);
                let (piece, tail) = rest.split_at(size.min(rest.len()));
                out.push(piece);
                rest = tail;
            }
        }
        2 => {
            let (a, b) = data.split_at(data.len() * (n - 1) / 64);
            out.extend([a, b].into_iter().filter(|p| !p.is_empty()));
        }
        _ => out.extend(data.chunks(1)),
    }
    out
}
