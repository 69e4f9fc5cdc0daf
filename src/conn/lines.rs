//! The connection's line framing for the legacy protocol over raw TCP: bytes
//! to lines (by newline or the flush delay), each handed to the app. The
//! line codec itself is [`crate::proto::line`].

use std::time::Instant;

use super::app_io::Carrier;
use super::{Conn, Ctx, Framing, Lifecycle, Transport, run_app};
use crate::app::Input;
use crate::app::line_chat::LineChat;
use crate::metrics::Protocol;
use crate::proto::line::{LineDecoder, LineEvent};

impl<S: Transport> Conn<S> {
    /// Becomes a legacy line connection in the hub's default namespace.
    pub(super) fn open_lines(&mut self, ctx: &mut Ctx<'_>) {
        self.switch_protocol(Protocol::Legacy, ctx);
        let decoder = LineDecoder::new(ctx.limits.chat.max_line_bytes, ctx.timeouts.legacy_flush);
        self.lifecycle = Lifecycle::Open(Framing::Lines(Box::new(decoder)));
        self.app = Some(Box::new(LineChat::open(self.id, &mut ctx.app())));
    }

    /// Frames `input` into lines for the app; with `None`, ends a held
    /// partial line whose flush delay passed by `now`.
    pub(super) fn decode_lines(&mut self, input: Option<&[u8]>, now: Instant, ctx: &mut Ctx<'_>) {
        let Conn { lifecycle, app, out, .. } = self;
        let Lifecycle::Open(Framing::Lines(lines)) = lifecycle else {
            return;
        };
        let mut close = None;
        let mut on_line = |event: LineEvent<'_>| {
            let input = match event {
                LineEvent::Message(line) => Input::Line(line),
                LineEvent::TooLarge => Input::LineTooLarge,
            };
            if let Some(request) = run_app(app, out, Carrier::Lines, input, None, ctx) {
                close.get_or_insert(request);
            }
        };
        match input {
            Some(bytes) => lines.decode(bytes, now, &mut on_line),
            None => lines.on_deadline(now, &mut on_line),
        }
        if lines.is_idle() {
            lines.release_idle_memory();
        }
        if let Some(request) = close {
            self.close(request, ctx);
        }
    }
}
