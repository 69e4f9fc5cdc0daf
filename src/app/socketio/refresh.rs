//! `refresh` on Socket.IO (docs/AUTH.md): `socket.emit("refresh", { token },
//! ack)` gives that namespace's socket a new token, as `/ws`'s `refresh`
//! does. Reserved only while tokens are on; without them `refresh` is a
//! custom event, relayed as it always was.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::Sockets;
use crate::app::AppCtx;
use crate::app::tokens::{Cutoff, Refused, refresh};
use crate::chat::{ChatError, MemberId, Tag};

/// The reserved event's name.
pub(super) const EVENT: &str = "refresh";

/// The argument's fields; the token is checked for a string afterwards, so
/// a wrong type is `missing_field` as on `/ws`.
#[derive(Deserialize)]
struct Argument<'a> {
    #[serde(borrow, default)]
    token: Option<&'a RawValue>,
}

impl Sockets {
    fn cutoff_of(&mut self, member: MemberId) -> Option<&mut Cutoff> {
        self.as_mut_slice().iter_mut().find(|socket| socket.member == Some(member)).map(|socket| &mut socket.cutoff)
    }
}

/// Handles a `refresh` event from `member` whose first argument is `first`.
/// `false`: tokens are off, and the event is an ordinary one.
pub(super) fn handle(
    sockets: &mut Sockets,
    member: MemberId,
    first: Option<&str>,
    tag: Option<Tag>,
    cx: &mut AppCtx<'_>,
) -> bool {
    if cx.hub.token_verifier().is_none() {
        return false;
    }
    let Some(cutoff) = sockets.cutoff_of(member) else {
        return true;
    };
    let token = match first.map(serde_json::from_str::<Argument<'_>>) {
        Some(Err(_)) => {
            cx.hub.reject(member, ChatError::BadJson, Some("the argument must be an object"), tag, cx.outbox);
            return true;
        }
        Some(Ok(Argument { token: Some(raw) })) => serde_json::from_str::<std::borrow::Cow<'_, str>>(raw.get()).ok(),
        Some(Ok(Argument { token: None })) | None => None,
    };
    match refresh(cx, member, token.as_deref().map(str::as_bytes), cutoff) {
        Ok(()) => {
            if let Some(tag) = tag {
                cx.hub.ack(member, tag, cx.outbox);
            }
        }
        Err(Refused { error, detail }) => cx.hub.reject(member, error, detail, tag, cx.outbox),
    }
    true
}
