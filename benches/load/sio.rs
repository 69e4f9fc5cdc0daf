//! The client side of Socket.IO (protocol 5) over Engine.IO 4 on WebSocket, just enough for the
//! load client. Over WebSocket, Engine.IO sends one packet per text frame, its type a digit in
//! front (`0` open, `1` close, `2` ping, `3` pong, `4` message, `6` noop); a Socket.IO packet is
//! the body of a message packet, its type a digit again (`0` CONNECT, `1` DISCONNECT, `2` EVENT,
//! `4` CONNECT_ERROR), for the main namespace `/` with no namespace written.

use serde_json::Value;

use crate::engine::Out;
use crate::ws::{self, Head, Rng};

/// Where every Socket.IO server of the bench is reached: the default path, WebSocket from the
/// first request on (no long-polling before it).
pub const PATH: &str = "/socket.io/?EIO=4&transport=websocket";

/// How far a session is; it starts once the WebSocket upgrade is done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for Engine.IO's open packet.
    #[default]
    Open,
    /// `40` sent: waiting for the server's CONNECT answer.
    Connect,
    /// Joined the namespace `/`.
    Ready,
}

/// What one server frame meant to the session.
#[derive(Debug, PartialEq, Eq)]
pub enum Got<'a> {
    /// The open packet came, and the Socket.IO CONNECT went out.
    Opened,
    /// The server's CONNECT answer came: the session is in the namespace.
    Connected,
    /// An EVENT: the whole frame payload (`42[...]`).
    Event(&'a [u8]),
    /// Nothing for the case: a ping answered, a noop.
    Nothing,
}

fn text(payload: &[u8]) -> String {
    String::from_utf8_lossy(&payload[..payload.len().min(120)]).into_owned()
}

/// A JSON object with a string `sid`, as the open packet and the CONNECT answer carry.
fn has_sid(json: &[u8]) -> Option<Value> {
    let v: Value = serde_json::from_slice(json).ok()?;
    v.get("sid")?.as_str()?;
    Some(v)
}

/// Handles one server data frame of a session in `phase`: answers the open packet with `40`
/// and a ping with `3` (so that sessions outlive the server's ping interval), and checks the
/// order of the handshake. Any other packet, or one out of place, is an error.
pub fn on_frame<'a>(
    phase: &mut Phase,
    head: Head,
    payload: &'a [u8],
    out: &mut Out,
    rng: &mut Rng,
) -> Result<Got<'a>, String> {
    if head.opcode != ws::OP_TEXT || !head.fin {
        return Err(format!("Engine.IO frame with opcode {} fin {}", head.opcode, head.fin));
    }
    match (*phase, payload) {
        (_, b"2") => {
            out.push_vec(ws::client_frame(ws::OP_TEXT, b"3", rng.mask()));
            Ok(Got::Nothing)
        }
        (_, b"6") => Ok(Got::Nothing),
        (Phase::Open, [b'0', json @ ..]) => {
            let open = has_sid(json).ok_or_else(|| format!("bad Engine.IO open packet {:?}", text(payload)))?;
            if !open.get("pingInterval").is_some_and(Value::is_u64) {
                return Err(format!("Engine.IO open packet without pingInterval: {:?}", text(payload)));
            }
            out.push_vec(ws::client_frame(ws::OP_TEXT, b"40", rng.mask()));
            *phase = Phase::Connect;
            Ok(Got::Opened)
        }
        (Phase::Connect, [b'4', b'0', json @ ..]) => {
            has_sid(json).ok_or_else(|| format!("bad Socket.IO CONNECT answer {:?}", text(payload)))?;
            *phase = Phase::Ready;
            Ok(Got::Connected)
        }
        (Phase::Ready, [b'4', b'2', ..]) => Ok(Got::Event(payload)),
        (_, [b'4', b'4', ..]) => Err(format!("Socket.IO CONNECT_ERROR {:?}", text(payload))),
        (_, [b'4', b'1', ..]) => Err("the server sent Socket.IO DISCONNECT".into()),
        (_, [b'1', ..]) => Err("the server sent Engine.IO close".into()),
        (phase, _) => Err(format!("unexpected Engine.IO packet {:?} in phase {phase:?}", text(payload))),
    }
}

/// Checks of the session logic against the protocol texts, run once before any load.
pub fn self_check() {
    let mut rng = Rng::new(7);
    let mut out = Out::default();
    let mut phase = Phase::default();
    let mut step = |phase: &mut Phase, p: &'static [u8]| {
        let head =
            Head { fin: true, rsv1: false, deflated: None, opcode: ws::OP_TEXT, head_len: 2, payload_len: p.len() };
        on_frame(phase, head, p, &mut out, &mut rng)
    };
    let open = br#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    assert!(step(&mut phase, br#"40{"sid":"x"}"#).is_err(), "CONNECT answer before the open packet");
    assert_eq!(step(&mut phase, open), Ok(Got::Opened));
    assert_eq!(phase, Phase::Connect);
    assert!(step(&mut phase, br#"42["bench",1]"#).is_err(), "an event before CONNECT");
    assert_eq!(step(&mut phase, b"2"), Ok(Got::Nothing));
    assert_eq!(step(&mut phase, br#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#), Ok(Got::Connected));
    let event = br#"42["bench",{"a":1}]"#;
    assert_eq!(step(&mut phase, event), Ok(Got::Event(event)));
    assert!(step(&mut phase, br#"44{"message":"Not authorized"}"#).is_err());
    assert!(step(&mut Phase::Open, b"0{}").is_err(), "open packet without sid");
    assert_eq!(out.queued(), 2, "`40` and one pong");
}
