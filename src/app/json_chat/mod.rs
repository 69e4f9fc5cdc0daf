//! The JSON event protocol at `/ws` and `/ws/NAMESPACE` (PROTOCOL.md §3):
//! one JSON object per text frame, parsed into hub requests; hub events
//! rendered back as JSON.

pub mod history;
pub mod parse;
pub mod render;
mod tokens;

use super::tokens::Cutoff;
use super::{App, AppCtx, CloseRequest, Input, Output, WireFormat};
use crate::chat::{Command, Dialect, Directory, Endpoint, Hub, MemberId, Outbox, Request};
use crate::ids::ConnId;
use crate::proto::ws::CloseCode;

/// JSON objects, one per WebSocket text frame.
pub const WIRE: WireFormat =
    WireFormat { key: "json", dialect: Dialect::Events, render: |d| render::render(&d.event), per_receiver: false };

/// One JSON text from `member`, parsed (at most `max_bytes`) and handed to
/// the hub, or rejected with the parser's error.
pub fn handle_text<D: Directory>(hub: &mut Hub<D>, member: MemberId, text: &str, max_bytes: usize, out: &mut Outbox) {
    match parse::parse(text, max_bytes, hub.is_registered(member)) {
        Ok(request) => hub.handle(member, request, out),
        Err(r) => hub.reject(member, r.error, r.detail.as_deref(), r.tag, out),
    }
}

/// One `/ws` connection's membership in the hub.
pub struct JsonChat {
    member: MemberId,
    conn: ConnId,
    /// A `hello`'s `since`, answered once the welcome is out ([`App::on_wake`]).
    since: Vec<(String, crate::chat::Position)>,
    /// When its token runs out (docs/AUTH.md).
    cutoff: Cutoff,
}

impl JsonChat {
    /// Joins `namespace` (already normalised by the router), registering
    /// `name` at once when the upgrade URL carried `?name=` (a `hello`
    /// without an id: a bad or taken name is answered, the upgrade stands).
    ///
    /// A `token` from the upgrade (docs/AUTH.md) is checked first; a bad
    /// one ends the connection with `unauthorized` (close 4001) at once.
    pub fn open(
        conn: ConnId,
        namespace: &str,
        name: Option<&str>,
        token: Option<&str>,
        cx: &mut AppCtx<'_>,
    ) -> JsonChat {
        let member = cx.hub.attach(Endpoint::Conn(conn), WIRE.dialect, namespace);
        let mut chat = JsonChat { member, conn, since: Vec::new(), cutoff: Cutoff::default() };
        if !tokens::open(&mut chat.cutoff, member, token, name.is_some(), cx) {
            return chat;
        }
        if let Some(name) = name {
            let hello = Request::new(Command::Hello { name: name.into() });
            cx.hub.handle(member, hello, cx.outbox);
        }
        chat
    }
}

impl App for JsonChat {
    fn handle_input(&mut self, input: Input<'_>, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        let Input::Text(text) = input else {
            // PROTOCOL.md §3: the event protocol speaks text only.
            out.close(CloseRequest { code: CloseCode::UNSUPPORTED, reason: "binary frames are not accepted here" });
            return;
        };
        if cx.hub.history_on() {
            if history::handle_history(self.member, text, cx, out) {
                return;
            }
            if !cx.hub.is_registered(self.member) {
                self.since = history::since_of(text);
                if !self.since.is_empty() {
                    cx.wakes.push(self.conn);
                }
            }
        }
        if cx.hub.token_verifier().is_some() && tokens::intercept(self.member, text, &mut self.cutoff, cx, out) {
            return;
        }
        // The decoder already held the frame to --max-message; the parser
        // checks the size again before it builds anything.
        handle_text(cx.hub, self.member, text, cx.limits.decoder.max_message_bytes, cx.outbox);
    }

    fn on_wake(&mut self, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        let since = std::mem::take(&mut self.since);
        history::recover(self.member, since, cx, out);
    }

    fn poll_timeout(&self) -> Option<std::time::Instant> {
        self.cutoff.deadline()
    }

    fn handle_timeout(&mut self, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        if let Some(error) = self.cutoff.fire(cx.now, cx.metrics) {
            tokens::refuse(error, None, out);
        }
    }

    fn on_close(&mut self, cx: &mut AppCtx<'_>) {
        cx.hub.detach(self.member, cx.outbox);
    }

    fn wire_format(&self) -> Option<WireFormat> {
        Some(WIRE)
    }
}
