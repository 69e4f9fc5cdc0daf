//! The legacy line protocol (PROTOCOL.md §2), one app for both carriers:
//! lines over raw TCP and one text frame per message at `/legacy`.

use super::{App, AppCtx, CloseRequest, Input, Output, WireFormat};
use crate::chat::ClientKind;
use crate::ids::ConnId;
use crate::proto::ws::CloseCode;

/// One legacy user's membership in the hub.
pub struct LineChat {
    conn: ConnId,
    kind: ClientKind,
}

/// What carries the lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carrier {
    Tcp,
    WebSocket,
}

impl LineChat {
    /// Joins the default namespace `/`, where every legacy user lives.
    pub fn open(conn: ConnId, carrier: Carrier, cx: &mut AppCtx<'_>) -> LineChat {
        let kind = match carrier {
            Carrier::Tcp => ClientKind::LegacyTcp,
            Carrier::WebSocket => ClientKind::LegacyWs,
        };
        cx.hub.attach(conn, kind, "/");
        LineChat { conn, kind }
    }
}

impl App for LineChat {
    fn handle_input(&mut self, input: Input<'_>, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        match input {
            Input::Line(line) => cx.hub.handle_legacy(self.conn, line, cx.outbox),
            Input::LineTooLarge => cx.hub.legacy_too_large(self.conn, cx.outbox),
            // PROTOCOL.md §2: one text frame is one message, under the same
            // --max-line as a TCP line.
            Input::Text(text) if text.len() > cx.limits.chat.max_line_bytes => {
                cx.hub.legacy_too_large(self.conn, cx.outbox)
            }
            Input::Text(text) => cx.hub.handle_legacy(self.conn, text.as_bytes(), cx.outbox),
            Input::Binary(_) => {
                out.close(CloseRequest { code: CloseCode::UNSUPPORTED, reason: "binary frames are not accepted here" })
            }
        }
    }

    fn on_close(&mut self, cx: &mut AppCtx<'_>) {
        cx.hub.detach(self.conn, cx.outbox);
    }

    fn wire_format(&self) -> Option<WireFormat> {
        Some(self.kind)
    }
}
