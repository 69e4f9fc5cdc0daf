//! `sockjs_bodies`: arbitrary bytes through the SockJS core
//! (`proto::sockjs`): the send-body decoders, the URL router, the callback
//! check, the frame writers and a `SessionCore` driven by a script.
//!
//! The whole input is an xhr_send body, a jsonp_send body (form and raw),
//! and when it is UTF-8 also a WebSocket message, a path (under four
//! methods) and a query. It is also read as a session script, two bytes a
//! step: an operation (attach polling / streaming, poll frames, send, close,
//! lose the receiver, detach, advance the clock) and its argument.
//! Invariants: no panic; decoded messages written back as `a[...]` decode to
//! the same messages, with no character the protocol wants escaped left
//! raw; a session route has non-empty ids without dots and rebuilds its
//! path; an accepted callback is `[A-Za-z0-9_.-]` and htmlfile frames hold
//! no `<` inside their script; the session sends `o` first and once, every
//! message in order and once until it closes, nothing after a close frame
//! but the same close frame to later receivers, never more than its queue
//! cap.

use std::time::{Duration, Instant};

use soket::proto::sockjs::{
    self, BodyError, GO_AWAY, Receiving, Route, SendError, SessionCore, SessionLimits, Transport, Wrap,
};

const MAX_QUEUED: usize = 256;
/// The longest message step 3 queues, encoded: quotes, the counter and 31
/// times an escaped U+2028, `x` and an escaped quote.
const MAX_ENCODED_MESSAGE: usize = 2 + 11 + 31 * 9;

pub fn run(data: &[u8]) {
    bodies(data);
    if let Ok(text) = std::str::from_utf8(data) {
        text_inputs(text);
    }
    session(data);
}

fn bodies(data: &[u8]) {
    let xhr = sockjs::decode_xhr_send(data);
    if let Ok(messages) = &xhr {
        round_trip(messages);
    }
    assert_eq!(sockjs::decode_jsonp_send(data, None), xhr, "a raw jsonp_send body reads as xhr_send");
    if let Ok(messages) = sockjs::decode_jsonp_send(data, Some("application/x-www-form-urlencoded")) {
        round_trip(&messages);
    }
    if data.is_empty() {
        assert_eq!(xhr, Err(BodyError::PayloadExpected));
    }
}

/// Messages written as a frame decode back to themselves.
fn round_trip(messages: &[String]) {
    let frame = sockjs::message_frame(messages);
    assert!(frame.starts_with("a["));
    assert!(
        !frame.chars().any(|c| matches!(c, '\0'..='\x1f' | '\u{2028}' | '\u{2029}' | '\u{fff0}'..='\u{ffff}')),
        "a raw character the protocol escapes in {frame:?}"
    );
    assert_eq!(sockjs::decode_xhr_send(&frame.as_bytes()[1..]).as_deref(), Ok(messages));
    assert_eq!(sockjs::decode_ws_message(&frame[1..]).as_deref(), Ok(messages));
}

fn text_inputs(text: &str) {
    if let Ok(messages) = sockjs::decode_ws_message(text) {
        round_trip(&messages);
    }
    for method in ["GET", "POST", "OPTIONS", "PUT"] {
        let (path, _) = sockjs::split_target(text);
        if let Route::Session { server, session, transport } = sockjs::route(path, method) {
            for id in [server, session] {
                assert!(!id.is_empty() && !id.contains('.') && !id.contains('/'), "id {id:?}");
            }
            assert_eq!(transport.method(), method);
            let name = path.rsplit('/').next().unwrap_or("");
            assert_eq!(Transport::from_name(name), Some(transport));
            assert_eq!(path, format!("/{server}/{session}/{name}"));
        }
    }
    let (_, query) = sockjs::split_target(text);
    for query in [Some(text), query] {
        let Ok(callback) = sockjs::callback(query) else {
            continue;
        };
        assert!(!callback.is_empty() && callback.len() <= sockjs::MAX_CALLBACK_BYTES);
        assert!(callback.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)), "{callback:?}");
        let mut out = Vec::new();
        sockjs::push_prelude(Transport::HtmlFile, &callback, &mut out);
        assert!(out.len() > 1024);
        let frame = sockjs::message_frame(&[text]);
        let mut html = Vec::new();
        Wrap::HtmlFile { callback: &callback }.push_frame(&frame, &mut html);
        let inner = html.strip_prefix(b"<script>\n").and_then(|h| h.strip_suffix(b"\n</script>\r\n"));
        assert!(inner.is_some_and(|i| !i.contains(&b'<')), "a '<' inside an htmlfile script");
        let mut jsonp = Vec::new();
        Wrap::Jsonp { callback: &callback }.push_frame(&frame, &mut jsonp);
        assert!(jsonp.starts_with(format!("/**/{callback}(\"").as_bytes()) && jsonp.ends_with(b"\");\r\n"));
    }
}

/// What a receiver saw, frame by frame (xhr framing: one per line).
fn frames(out: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(out).expect("frames are UTF-8");
    assert!(text.ends_with('\n') || text.is_empty());
    text.lines().map(str::to_owned).collect()
}

fn session(data: &[u8]) {
    let t0 = Instant::now();
    let mut now = t0;
    let limits = SessionLimits {
        heartbeat: Duration::from_secs(25),
        disconnect_delay: Duration::from_secs(5),
        max_queued_bytes: MAX_QUEUED,
    };
    let mut core = SessionCore::new(limits, now);
    let mut sent: Vec<String> = Vec::new();
    let mut received: Vec<String> = Vec::new();
    let mut opened = false;
    let mut close_seen: Option<String> = None;
    let mut counter = 0u32;
    for step in data.chunks(2) {
        let arg = step.get(1).copied().unwrap_or(0);
        match step[0] % 8 {
            0 => {
                let _ = core.attach(Receiving::Polling, now);
            }
            1 => {
                let _ = core.attach(Receiving::Streaming { limit_bytes: usize::from(arg) * 4 }, now);
            }
            2 => {
                let mut out = Vec::new();
                while let Some(end) = core.poll_frame(now, &Wrap::Xhr, &mut out) {
                    if end {
                        assert!(!core.has_receiver(), "an ended answer leaves its receiver attached");
                        break;
                    }
                }
                for frame in frames(&out) {
                    if let Some(close) = &close_seen {
                        assert_eq!(&frame, close, "after a close frame only the close frame again");
                        continue;
                    }
                    match frame.as_str() {
                        "o" => {
                            assert!(!opened, "a second open frame");
                            opened = true;
                        }
                        "h" => assert!(opened),
                        f if f.starts_with("a[") => {
                            assert!(opened);
                            let messages = sockjs::decode_xhr_send(&f.as_bytes()[1..]).expect("a[...] is JSON");
                            assert!(!messages.is_empty(), "an empty message frame");
                            received.extend(messages);
                        }
                        f => {
                            assert!(opened && f.starts_with("c["), "unknown frame {f:?}");
                            close_seen = Some(f.to_owned());
                        }
                    }
                }
            }
            3 => {
                counter += 1;
                let message = format!("{counter}:{}", "\u{2028}x\"".repeat(usize::from(arg % 32)));
                match core.send(&message) {
                    Ok(()) => sent.push(message),
                    Err(SendError::Closed) => assert!(core.close_reason().is_some()),
                    Err(SendError::QueueFull) => {}
                }
            }
            4 => core.close(GO_AWAY),
            5 => {
                let _ = core.receiver_lost(now);
            }
            6 => core.detach(now),
            _ => now += Duration::from_secs(u64::from(arg % 32)),
        }
        // One message may pass the cap, alone in the queue.
        assert!(core.queued_bytes() <= MAX_QUEUED.max(MAX_ENCODED_MESSAGE));
    }
    // Every message that went out went out in order, once; after a close
    // (which drops the queue only when the receiver was lost) some may not
    // have been delivered.
    assert!(received.len() <= sent.len());
    assert_eq!(received[..], sent[..received.len()], "messages out of order or changed");
    if close_seen.is_none() && core.close_reason().is_none() && core.queued_bytes() == 0 {
        assert_eq!(received, sent, "a message was lost");
    }
}
