//! What every chat app does with connection tokens (docs/AUTH.md): hand a
//! token to the hub and keep the instant the connection must end. The
//! cutoff is an app deadline ([`super::App::poll_timeout`]), so it lives in
//! the reactor's timer heap like every other deadline: nothing polls.
//! Every token an app hands in goes through [`admit`], which counts it in
//! `/metrics`; the cutoff counts its own firing.

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::AppCtx;
use crate::auth::{Refusal, unix_now_ms};
use crate::chat::{AuthFailure, ChatError, MemberId};
use crate::metrics::{Tally, TokenRefusal};

/// The furthest cutoff armed: a year.
const MAX_CUTOFF: Duration = Duration::from_secs(365 * 24 * 3600);

/// When a connection must end, and why.
#[derive(Debug, Default)]
pub struct Cutoff {
    at: Option<(Instant, ChatError)>,
    /// `soket_tokens_expired_total`, set by [`admit`]: the apps ask
    /// [`Cutoff::due`] from timeout handlers that do not all see the metrics.
    expiries: Option<Tally>,
    /// Whether this expiry is counted already (`due` may be asked again).
    counted: Cell<bool>,
}

impl Cutoff {
    /// The deadline to report from `poll_timeout`.
    pub fn deadline(&self) -> Option<Instant> {
        self.at.map(|(at, _)| at)
    }

    /// The error to send once the deadline is reached, if it is. A token's
    /// expiry is counted the first time it is reported.
    pub fn due(&self, now: Instant) -> Option<ChatError> {
        let error = self.at.filter(|(at, _)| *at <= now).map(|(_, error)| error)?;
        if error == ChatError::TokenExpired
            && !self.counted.replace(true)
            && let Some(expiries) = &self.expiries
        {
            expiries.bump();
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
    cutoff.counted.set(false);
    if cutoff.expiries.is_none() {
        cutoff.expiries = Some(cx.metrics.tokens_expired_total.clone());
    }
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
        let tally = Tally::default();
        let start = Instant::now();
        let mut cutoff = Cutoff {
            at: Some((start + Duration::from_secs(1), ChatError::TokenExpired)),
            expiries: Some(tally.clone()),
            counted: Cell::new(false),
        };
        assert_eq!(cutoff.due(start), None);
        assert_eq!(tally.get(), 0);
        let later = start + Duration::from_secs(2);
        assert_eq!(cutoff.due(later), Some(ChatError::TokenExpired));
        assert_eq!(cutoff.due(later), Some(ChatError::TokenExpired));
        assert_eq!(tally.get(), 1);
        cutoff.now(later, ChatError::Unauthorized);
        assert_eq!(cutoff.due(later), Some(ChatError::Unauthorized));
        assert_eq!(tally.get(), 1);
    }
}
