//! The JSON event protocol at `/ws` and `/ws/NAMESPACE` (PROTOCOL.md §3):
//! one JSON object per text frame, answered through the hub.

use super::{App, AppCtx, CloseRequest, Input, Output, WireFormat};
use crate::chat::ClientKind;
use crate::ids::ConnId;
use crate::proto::ws::CloseCode;

/// One `/ws` connection's membership in the hub.
pub struct JsonChat {
    conn: ConnId,
}

impl JsonChat {
    /// Joins `namespace` (already normalised by the router), registering
    /// `name` at once when the upgrade URL carried `?name=`.
    pub fn open(conn: ConnId, namespace: &str, name: Option<&str>, cx: &mut AppCtx<'_>) -> JsonChat {
        cx.hub.attach(conn, ClientKind::Json, namespace);
        if let Some(name) = name {
            cx.hub.hello_from_query(conn, name, cx.outbox);
        }
        JsonChat { conn }
    }
}

impl App for JsonChat {
    fn handle_input(&mut self, input: Input<'_>, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        match input {
            Input::Text(text) => cx.hub.handle_json(self.conn, text, cx.outbox),
            // PROTOCOL.md §3: the event protocol speaks text only.
            Input::Binary(_) | Input::Line(_) | Input::LineTooLarge => {
                out.close(CloseRequest { code: CloseCode::UNSUPPORTED, reason: "binary frames are not accepted here" })
            }
        }
    }

    fn on_close(&mut self, cx: &mut AppCtx<'_>) {
        cx.hub.detach(self.conn, cx.outbox);
    }

    fn wire_format(&self) -> Option<WireFormat> {
        Some(ClientKind::Json)
    }
}
