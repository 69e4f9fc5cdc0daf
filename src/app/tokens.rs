//! What every chat app does with connection tokens (docs/AUTH.md): hand a
//! token to the hub and keep the instant the connection must end. The
//! cutoff is an app deadline ([`super::App::poll_timeout`]), so it lives in
//! the reactor's timer heap like every other deadline: nothing polls.
//! Every token an app hands in goes through [`admit`], which counts it in
//! `/metrics`; [`Cutoff::fire`] counts an expiry.

use std::time::{Duration, Instant};

use super::AppCtx;
use crate::auth::{Refusal, unix_now_ms};
use crate::chat::{AuthFailure, ChatError, MemberId};
use crate::metrics::{Metrics, TokenRefusal};

/// The furthest cutoff armed: a year.
const MAX_CUTOFF: Duration = Duration::from_secs(365 * 24 * 3600);

/// When a connection must end, and why.
#[derive(Debug, Default)]
pub struct Cutoff {
    at: Option<(Instant, ChatError)>,
}

impl Cutoff {
    /// The deadline to report from `poll_timeout`.
    pub fn deadline(&self) -> Option<Instant> {
        self.at.map(|(at, _)| at)
    }

    /// The error to send once the deadline is reached, if it is.
    pub fn due(&self, now: Instant) -> Option<ChatError> {
        self.at.filter(|(at, _)| *at <= now).map(|(_, error)| error)
    }

    /// [`Cutoff::due`], for the app that acts on it now: the clock stops,
    /// and a token's expiry is counted in `/metrics`.
    pub fn fire(&mut self, now: Instant, metrics: &mut Metrics) -> Option<ChatError> {
        let error = self.due(now)?;
        self.at = None;
        if error == ChatError::TokenExpired {
            metrics.tokens_expired_total += 1;
        }
        Some(error)
    }

    /// End at once with `error` (a refusal found while opening, before the
    /// app could write).
    pub fn now(&mut self, now: Instant, error: ChatError) {
        self.at = Some((now, error));
    }

    /// Stop the clock (the connection is closing anyway).
    pub fn clear(&mut self) {
        self.at = None;
    }
}

/// Hands `token` to the hub for `member`; on success arms `cutoff` at the
/// token's expiry (plus the leeway).
pub fn admit(cx: &mut AppCtx<'_>, member: MemberId, token: &[u8], cutoff: &mut Cutoff) -> Result<(), AuthFailure> {
    let now_ms = unix_now_ms();
    let claims = match cx.hub.authenticate(member, token, now_ms) {
        Ok(claims) => claims,
        Err(failure) => {
            log::debug!("event=token_refused member={} reason={:?}", member.0, failure.reason());
            cx.metrics.token_refused(refusal_label(failure));
            return Err(failure);
        }
    };
    cx.metrics.token_accepted();
    let end_ms = cx.hub.token_verifier().map_or(0, |v| v.cutoff_ms(claims.expires));
    let left = Duration::from_millis(end_ms.saturating_sub(now_ms));
    // A token good for more than a year arms no cutoff: no clock
    // arithmetic can overflow on an `exp` in the year 500 000 000.
    cutoff.at = (left <= MAX_CUTOFF).then(|| (cx.now + left, ChatError::TokenExpired));
    Ok(())
}

/// Why a refresh was refused: the error, and the missing field's name when
/// the request carried no token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub error: ChatError,
    pub detail: Option<&'static str>,
}

/// A live connection's new token (docs/AUTH.md, "Expiry while connected,
/// and refresh"), the one rule every protocol's refresh follows: the token
/// must verify and be for the connection's name; its `rooms` replace the
/// old and `cutoff` moves to its expiry. Refused (`unauthorized`,
/// `forbidden`, `missing_field` for no token at all), the connection keeps
/// its old token and cutoff.
pub fn refresh(
    cx: &mut AppCtx<'_>,
    member: MemberId,
    token: Option<&[u8]>,
    cutoff: &mut Cutoff,
) -> Result<(), Refused> {
    let token = token.ok_or(Refused { error: ChatError::MissingField, detail: Some("token") })?;
    admit(cx, member, token, cutoff).map_err(|failure| Refused { error: failure.error(), detail: None })?;
    log::debug!("event=token_refreshed member={}", member.0);
    Ok(())
}

/// The `/metrics` reason of a refusal.
fn refusal_label(failure: AuthFailure) -> TokenRefusal {
    match failure {
        AuthFailure::Refused(refusal) => match refusal {
            Refusal::TooLong => TokenRefusal::TooLarge,
            Refusal::Malformed => TokenRefusal::Malformed,
            Refusal::BadSignature => TokenRefusal::BadSignature,
            Refusal::NoExpiry => TokenRefusal::MissingExp,
            Refusal::Expired => TokenRefusal::Expired,
            Refusal::NotYetValid => TokenRefusal::NotYetValid,
            Refusal::BadClaims => TokenRefusal::BadClaims,
        },
        AuthFailure::OtherName => TokenRefusal::WrongName,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_is_counted_once_and_a_refusal_not_at_all() {
        let mut metrics = Metrics::default();
        let start = Instant::now();
        let mut cutoff = Cutoff { at: Some((start + Duration::from_secs(1), ChatError::TokenExpired)) };
        assert_eq!(cutoff.fire(start, &mut metrics), None);
        let later = start + Duration::from_secs(2);
        assert_eq!(cutoff.fire(later, &mut metrics), Some(ChatError::TokenExpired));
        assert_eq!(cutoff.fire(later, &mut metrics), None, "fired once");
        assert_eq!(metrics.tokens_expired_total, 1);
        cutoff.now(later, ChatError::Unauthorized);
        assert_eq!(cutoff.fire(later, &mut metrics), Some(ChatError::Unauthorized));
        assert_eq!(metrics.tokens_expired_total, 1);
    }
}
