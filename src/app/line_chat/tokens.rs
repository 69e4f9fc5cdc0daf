//! Tokens for legacy clients (docs/AUTH.md): a first line `token:JWT`
//! signs in as the token's `sub`; a plain name is let in only under
//! `--legacy-anonymous` (or after a `/legacy` upgrade that carried a token,
//! when it must be the token's name, which the hub checks). Once signed in
//! with a token, a line `token:JWT` is a refresh; without tokens on, or for
//! an anonymous user, it stays a chat line.

use super::render::render;
use crate::app::tokens::{Cutoff, Refused, admit, refresh};
use crate::app::{AppCtx, CloseRequest, Input, Output};
use crate::chat::{ChatError, Command, Event, MemberId, Request};
use crate::proto::ws::CloseCode;

/// The prefix of a sign-in line carrying a token.
const PREFIX: &[u8] = b"token:";

/// Handles the input of a member not registered yet when tokens are on.
/// `false`: the normal line handling takes it (the member holds a pass).
pub(super) fn sign_in(
    member: MemberId,
    input: Input<'_>,
    cutoff: &mut Cutoff,
    cx: &mut AppCtx<'_>,
    out: &mut dyn Output,
) -> bool {
    let line = match input {
        Input::Line(line) | Input::Bytes(line) => line,
        Input::Text(text) => text.as_bytes().strip_suffix(b"\n").unwrap_or(text.as_bytes()),
        // Over --max-line before signing in: a 1 MB `token:` line, say.
        Input::LineTooLarge if !cx.hub.is_admitted(member) => {
            refuse(ChatError::Unauthorized, out);
            return true;
        }
        Input::Binary(_) | Input::LineTooLarge => return false,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if let Some(token) = line.strip_prefix(PREFIX) {
        if let Err(failure) = admit(cx, member, token.trim_ascii(), cutoff) {
            cutoff.clear();
            refuse(failure.error(), out);
            return true;
        }
        let Some(name) = cx.hub.granted_name(member).map(str::to_owned) else {
            return true;
        };
        cx.hub.handle(member, Request::new(Command::Hello { name: name.into() }), cx.outbox);
        return true;
    }
    if cx.hub.is_admitted(member) {
        return false;
    }
    if cx.limits.legacy_anonymous {
        cx.hub.admit_anonymous(member);
        return false;
    }
    refuse(ChatError::Unauthorized, out);
    true
}

/// Handles `line` from a signed-in member if it is a refresh (`token:JWT`
/// from a member its token let in). Nothing answers a good one (the line
/// protocol has no acks); a bad one is `!ERR unauthorized` or `!ERR
/// forbidden` and the connection stays, with its old token. `false`: an
/// ordinary line.
pub(super) fn refresh_line(member: MemberId, line: &[u8], cutoff: &mut Cutoff, cx: &mut AppCtx<'_>) -> bool {
    let Some(token) = line.strip_prefix(PREFIX) else {
        return false;
    };
    if cx.hub.granted_name(member).is_none() {
        return false;
    }
    if let Err(Refused { error, detail }) = refresh(cx, member, Some(token.trim_ascii()), cutoff) {
        cx.hub.reject(member, error, detail, None, cx.outbox);
    }
    true
}

/// `!ERR unauthorized` (or `!ERR token_expired`), then close (4001 on `/legacy`).
pub(super) fn refuse(error: ChatError, out: &mut dyn Output) {
    if let Some(rendered) = render(&Event::Error { error, detail: None, tag: None }) {
        out.send_text(&rendered.body);
    }
    let reason = if error == ChatError::TokenExpired { "token expired" } else { "unauthorized" };
    out.close(CloseRequest { code: CloseCode(4001), reason });
}
