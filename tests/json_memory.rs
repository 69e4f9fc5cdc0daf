//! Memory the daemon spends on one huge JSON text on `/ws` (issue 7,
//! defect 2): the text is size-checked and parsed without building a
//! `serde_json::Value`, so its peak resident set grows by about the frame
//! it must buffer, not by a tree of millions of values (which took a 16 MiB
//! `[0,0,...]` from 6 MiB to 279 MiB).

mod common;

use common::*;

/// Just under the default `--max-message` (16 MiB), so the text reaches the parser.
const TEXT: usize = (16 << 20) - 64;

/// `prefix`, then `0,0,...,0` up to `TEXT` bytes in all, then `suffix`.
fn zeros_between(prefix: &str, suffix: &str) -> String {
    let zeros = TEXT - prefix.len() - suffix.len();
    let mut text = String::with_capacity(TEXT);
    text.push_str(prefix);
    // An odd count of bytes: `0` then `,0` pairs.
    text.push('0');
    text.push_str(&",0".repeat((zeros - 1) / 2));
    if text.len() - prefix.len() < zeros {
        text.push(' ');
    }
    text.push_str(suffix);
    assert_eq!(text.len(), TEXT);
    text
}

/// Sends `text` in one frame as a registered `/ws` user of a fresh daemon,
/// expects an error with one of `expected_code`, and returns how far the
/// daemon's peak RSS rose over its peak before the text (KiB). A fresh
/// daemon each time: the high-water mark never comes down.
fn peak_growth_for(text: &str, expected_code: &[&str]) -> u64 {
    let daemon = Daemon::spawn("", &[]);
    let pid = daemon.child.id();
    let mut ws = RawWs::connect(daemon.addr, "/ws");
    ws.send_text(r#"{"type":"hello","name":"big"}"#);
    let welcome = ws.next_frame().expect("a welcome");
    assert!(welcome.is_text_starting(r#"{"type":"welcome""#), "{welcome:?}");
    // Everything before the big text (start-up, handshake, registration) is in the baseline.
    let baseline = peak_rss_kib(pid);

    ws.send_text(text);
    let answer = ws.next_frame().expect("an answer to the big text");
    let answer_text = String::from_utf8_lossy(&answer.payload).into_owned();
    assert!(
        expected_code.iter().any(|code| answer_text.starts_with(&format!(r#"{{"type":"error","code":"{code}""#))),
        "expected an error with a code of {expected_code:?}, got {answer_text}"
    );
    let peak = peak_rss_kib(pid);
    // The connection is still served.
    ws.send_text(r#"{"type":"rooms"}"#);
    let rooms = ws.next_frame().expect("rooms");
    assert!(rooms.is_text_starting(r#"{"type":"rooms""#), "{rooms:?}");
    eprintln!("peak RSS {baseline} KiB before, {peak} KiB after a {} KiB text", TEXT >> 10);
    peak - baseline
}

fn assert_bounded(growth_kib: u64, what: &str) {
    let bound = 2 * (TEXT as u64 >> 10);
    assert!(
        growth_kib < bound,
        "{what}: peak RSS rose by {growth_kib} KiB for a {} KiB text (bound {bound} KiB: twice the frame)",
        TEXT >> 10
    );
}

#[test]
fn a_16_mib_json_array_raises_peak_rss_by_less_than_twice_the_frame() {
    let text = zeros_between("[", "]");
    assert!(text.starts_with("[0,0,") && text.ends_with(']'));
    let growth = peak_growth_for(&text, &["bad_json"]);
    assert_bounded(growth, "a top-level array");
}

#[test]
fn a_16_mib_array_inside_a_field_raises_peak_rss_by_less_than_twice_the_frame() {
    let text = zeros_between(r#"{"type":"say","text":["#, "]}");
    let growth = peak_growth_for(&text, &["missing_field", "bad_json"]);
    assert_bounded(growth, "an array as a say's text");
}
