//! The legacy line protocol (PROTOCOL.md §2), one app for both carriers:
//! lines over raw TCP and one text frame per message at `/legacy`.

pub mod parse;
pub mod render;
mod tokens;

use super::tokens::{Cutoff, admit};
use super::{App, AppCtx, CloseRequest, Input, Output, WireFormat};
use crate::chat::{ChatError, Dialect, Directory, Endpoint, Hub, MemberId, Outbox};
use crate::ids::ConnId;
use crate::proto::ws::CloseCode;

/// Legacy lines: `\n`-terminated on TCP, one text frame each on WebSocket.
pub const WIRE: WireFormat =
    WireFormat { key: "lines", dialect: Dialect::Lines, render: |d| render::render(&d.event), per_receiver: false };

/// One legacy user's membership in the hub.
pub struct LineChat {
    member: MemberId,
    /// When its token runs out (docs/AUTH.md).
    cutoff: Cutoff,
}

impl LineChat {
    /// Joins the default namespace `/`, where every legacy user lives.
    pub fn open(conn: ConnId, cx: &mut AppCtx<'_>) -> LineChat {
        LineChat::open_with_token(conn, None, cx)
    }

    /// Like [`LineChat::open`], with the token of a `/legacy` upgrade
    /// (docs/AUTH.md): a bad one ends the connection at once.
    pub fn open_with_token(conn: ConnId, token: Option<&str>, cx: &mut AppCtx<'_>) -> LineChat {
        let member = cx.hub.attach(Endpoint::Conn(conn), WIRE.dialect, "/");
        let mut chat = LineChat { member, cutoff: Cutoff::default() };
        if let Some(token) = token.filter(|_| cx.hub.token_verifier().is_some())
            && let Err(failure) = admit(cx, member, token.as_bytes(), &mut chat.cutoff)
        {
            chat.cutoff.now(cx.now, failure.error());
        }
        chat
    }
}

/// One legacy message from `member` (a TCP line, or one `/legacy` frame),
/// parsed and handed to the hub, or rejected with the parser's error.
pub fn handle_line<D: Directory>(hub: &mut Hub<D>, member: MemberId, line: &[u8], out: &mut Outbox) {
    match parse::parse(line, hub.is_registered(member)) {
        Ok(Some(request)) => hub.handle(member, request, out),
        Ok(None) => {}
        Err(r) => hub.reject(member, r.error, r.detail.as_deref(), r.tag, out),
    }
}

/// A `/legacy` text frame without the one line end that line-oriented
/// WebSocket tools (websocat) send after each line; a line end inside the
/// frame stays, as the frame is one message.
fn without_line_end(frame: &[u8]) -> &[u8] {
    match frame.strip_suffix(b"\n") {
        Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
        None => frame,
    }
}

impl App for LineChat {
    fn handle_input(&mut self, input: Input<'_>, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        if cx.hub.token_verifier().is_some()
            && !cx.hub.is_registered(self.member)
            && tokens::sign_in(self.member, input, &mut self.cutoff, cx, out)
        {
            return;
        }
        let line = match input {
            Input::Line(line) | Input::Bytes(line) => Some(line),
            // Over --max-line it is `too_large`, whatever it holds.
            Input::Text(text) if text.len() <= cx.limits.chat.max_line_bytes => Some(without_line_end(text.as_bytes())),
            Input::Text(_) | Input::Binary(_) | Input::LineTooLarge => None,
        };
        if let Some(line) = line
            && cx.hub.token_verifier().is_some()
            && tokens::refresh_line(self.member, line, &mut self.cutoff, cx)
        {
            return;
        }
        match input {
            Input::Line(line) | Input::Bytes(line) => handle_line(cx.hub, self.member, line, cx.outbox),
            // PROTOCOL.md §2: one text frame is one message, under the same
            // --max-line as a TCP line.
            Input::LineTooLarge => cx.hub.reject(self.member, ChatError::TooLarge, None, None, cx.outbox),
            Input::Text(text) if text.len() > cx.limits.chat.max_line_bytes => {
                cx.hub.reject(self.member, ChatError::TooLarge, None, None, cx.outbox)
            }
            Input::Text(text) => handle_line(cx.hub, self.member, without_line_end(text.as_bytes()), cx.outbox),
            Input::Binary(_) => {
                out.close(CloseRequest { code: CloseCode::UNSUPPORTED, reason: "binary frames are not accepted here" })
            }
        }
    }

    fn poll_timeout(&self) -> Option<std::time::Instant> {
        self.cutoff.deadline()
    }

    fn handle_timeout(&mut self, cx: &mut AppCtx<'_>, out: &mut dyn Output) {
        if let Some(error) = self.cutoff.fire(cx.now, cx.metrics) {
            tokens::refuse(error, out);
        }
    }

    fn on_close(&mut self, cx: &mut AppCtx<'_>) {
        cx.hub.detach(self.member, cx.outbox);
    }

    fn wire_format(&self) -> Option<WireFormat> {
        Some(WIRE)
    }
}

#[cfg(test)]
mod tests {
    use super::without_line_end;

    #[test]
    fn one_trailing_line_end_is_dropped() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"alice\n", b"alice"),
            (b"alice\r\n", b"alice"),
            (b"alice", b"alice"),
            (b"alice\r", b"alice\r"),
            (b"two\nlines\n", b"two\nlines"),
            (b"blank\n\n", b"blank\n"),
            (b"\n", b""),
        ];
        for (frame, want) in cases {
            assert_eq!(without_line_end(frame), *want, "{:?}", String::from_utf8_lossy(frame));
        }
    }
}
