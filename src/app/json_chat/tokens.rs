//! Tokens on `/ws` (docs/AUTH.md): in the upgrade, in `hello`'s `token`,
//! and `refresh` to extend a live connection. Only looked at when tokens
//! are on; the normal parser never sees a `token` field.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::render::render;
use crate::app::tokens::{Cutoff, Refused, admit, refresh};
use crate::app::{AppCtx, CloseRequest, Output};
use crate::chat::{ChatError, Command, Event, MemberId, Request, Tag};
use crate::proto::ws::CloseCode;

/// The close code of a connection refused or cut off for its token.
pub const UNAUTHORIZED: CloseCode = CloseCode(4001);

/// The fields a `hello` or `refresh` may carry; every other field is skipped.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
}

/// Checks the upgrade's token, if any. `false`: refused, the connection
/// ends at once with `unauthorized` (armed on `cutoff`); also when the
/// upgrade asks for a name (`?name=`) without a token.
pub(super) fn open(
    cutoff: &mut Cutoff,
    member: MemberId,
    token: Option<&str>,
    wants_name: bool,
    cx: &mut AppCtx<'_>,
) -> bool {
    if cx.hub.token_verifier().is_none() {
        return true;
    }
    let Some(token) = token else {
        if wants_name {
            cutoff.now(cx.now, ChatError::Unauthorized);
        }
        return !wants_name;
    };
    match admit(cx, member, token.as_bytes(), cutoff) {
        Ok(()) => true,
        Err(failure) => {
            cutoff.now(cx.now, failure.error());
            false
        }
    }
}

/// Handles `text` if it is a token's business: a `hello` before
/// registering (its `token`, or the token's name when it names none) or a
/// `refresh`. `false`: the normal parser takes it.
pub(super) fn intercept(
    member: MemberId,
    text: &str,
    cutoff: &mut Cutoff,
    cx: &mut AppCtx<'_>,
    out: &mut dyn Output,
) -> bool {
    let registered = cx.hub.is_registered(member);
    // A registered member's only token business is a refresh: its chat
    // traffic is not parsed twice.
    if registered && !text.contains("\"refresh\"") {
        return false;
    }
    let max = cx.hub.token_verifier().map_or(0, |v| v.max_bytes());
    // A hello or refresh is a token and a little more: a longer text is
    // left to the parser (and, if it is a hello, refused as unauthorized).
    if text.len() > max.saturating_add(4096) {
        // Before signing in, nothing that long is welcome (a hello with a
        // 1 MB token): refused without being parsed.
        if !registered && !cx.hub.is_admitted(member) {
            cx.metrics.token_refused(crate::metrics::TokenRefusal::TooLarge);
            refuse(ChatError::Unauthorized, None, out);
            return true;
        }
        return false;
    }
    let Ok(probe) = serde_json::from_str::<Probe<'_>>(text) else {
        return false;
    };
    let tag: Option<Tag> = probe.id.and_then(super::parse::tag_of);
    match probe.kind.as_deref() {
        Some("refresh") => {
            match refresh(cx, member, probe.token.as_deref().map(str::as_bytes), cutoff) {
                Ok(()) => {
                    if let Some(tag) = tag {
                        reply(Event::Ack { tag }, out);
                    }
                }
                Err(Refused { error, detail }) => {
                    reply(Event::Error { error, detail: detail.map(Into::into), tag }, out)
                }
            }
            true
        }
        Some("hello") if !registered => {
            if let Some(token) = probe.token
                && let Err(failure) = admit(cx, member, token.as_bytes(), cutoff)
            {
                refuse(failure.error(), tag, out);
                cutoff.clear();
                return true;
            }
            if !cx.hub.is_admitted(member) {
                refuse(ChatError::Unauthorized, tag, out);
                return true;
            }
            let name = match (probe.name, cx.hub.granted_name(member)) {
                (Some(name), _) => name.into_owned(),
                (None, Some(granted)) => granted.to_owned(),
                (None, None) => return false,
            };
            let request = Request { command: Command::Hello { name: name.into() }, tag };
            cx.hub.handle(member, request, cx.outbox);
            true
        }
        _ => false,
    }
}

/// An `error` event with `error`, then close 4001 (the token is missing,
/// bad, or expired).
pub(super) fn refuse(error: ChatError, tag: Option<Tag>, out: &mut dyn Output) {
    reply(Event::Error { error, detail: None, tag }, out);
    let reason = if error == ChatError::TokenExpired { "token expired" } else { "unauthorized" };
    out.close(CloseRequest { code: UNAUTHORIZED, reason });
}

fn reply(event: Event, out: &mut dyn Output) {
    if let Some(rendered) = render(&event) {
        out.send_text(&rendered.body);
    }
}
