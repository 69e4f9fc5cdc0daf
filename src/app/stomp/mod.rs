//! STOMP 1.0–1.2 as a broker in soket's world (stub while it is built).

use super::{App, AppCtx, Input, Output};
use crate::ids::Endpoint;

/// What carries a STOMP connection's frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carried {
    /// A WebSocket at `/stomp`: frames in text (or binary) messages.
    WebSocket,
    /// Raw TCP on the main port: one byte stream.
    RawTcp,
    /// SockJS messages: text only.
    SockJs,
}

/// One STOMP client.
pub struct Stomp {
    _endpoint: Endpoint,
    _carried: Carried,
}

impl Stomp {
    pub const RAW_TCP: Carried = Carried::RawTcp;

    pub fn open(endpoint: Endpoint, carried: Carried, _cx: &mut AppCtx<'_>) -> Stomp {
        Stomp { _endpoint: endpoint, _carried: carried }
    }
}

impl App for Stomp {
    fn handle_input(&mut self, _input: Input<'_>, _cx: &mut AppCtx<'_>, _out: &mut dyn Output) {}
}
