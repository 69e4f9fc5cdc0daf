//! The connection's byte-stream framing, for a protocol that delimits its
//! own messages over raw TCP (STOMP): the bytes go to the app as they come,
//! and its answers go out as they are.

use super::app_io::Carrier;
use super::{Conn, Ctx, Framing, Lifecycle, Transport, run_app};
use crate::app::Input;
use crate::app::stomp::{Carried, Stomp};
use crate::ids::Endpoint;
use crate::metrics::Protocol;

impl<S: Transport> Conn<S> {
    /// Becomes a STOMP connection over raw TCP.
    pub(super) fn open_stream(&mut self, ctx: &mut Ctx<'_>) {
        self.switch_protocol(Protocol::Stomp, ctx);
        self.lifecycle = Lifecycle::Open(Framing::Stream);
        self.app = Some(Box::new(Stomp::open(Endpoint::Conn(self.id), Carried::RawTcp, &mut ctx.app())));
    }

    /// Hands `input` to the app; returns the bytes consumed (all of them:
    /// the app's decoder keeps what it needs).
    pub(super) fn process_stream(&mut self, input: &[u8], ctx: &mut Ctx<'_>) -> usize {
        let Conn { app, out, .. } = self;
        if let Some(request) = run_app(app, out, Carrier::Stream, Input::Bytes(input), None, ctx) {
            self.close(request, ctx);
        }
        input.len()
    }
}
