//! What each member may do once tokens are on (docs/AUTH.md): the name its
//! token's `sub` gives it and the rooms its `rooms` claim lists. The hub
//! asks [`Grants::check`] before it runs a request; apps hand in tokens
//! through [`Hub::authenticate`] and never decide a name or a room
//! themselves, so every protocol is held to the same rules.

use std::collections::HashMap;
use std::sync::Arc;

use super::Hub;
use crate::auth::{Claims, Refusal, RoomPattern, Verifier};
use crate::chat::error::Failure;
use crate::chat::names::{normalize_name, normalize_room};
use crate::chat::{ChatError, Command, Directory, MemberId};

/// How a member got in.
#[derive(Clone, Debug)]
enum Pass {
    /// A verified token.
    Token { name: String, rooms: Option<Vec<RoomPattern>> },
    /// A legacy client without a token under `--legacy-anonymous`.
    Anonymous,
}

/// The verifier (when tokens are on) and every member's pass.
#[derive(Debug, Default)]
pub(super) struct Grants {
    verifier: Option<Arc<Verifier>>,
    passes: HashMap<MemberId, Pass>,
}

impl Grants {
    /// The rule for `command` from `member`: a `hello` needs a pass and, with
    /// a token, the token's name; a `join` a room the token lists.
    pub(super) fn check(&self, member: MemberId, command: &Command<'_>) -> Result<(), Failure> {
        if self.verifier.is_none() {
            return Ok(());
        }
        match (command, self.passes.get(&member)) {
            (Command::Hello { .. }, None) => Err(Failure::bare(ChatError::Unauthorized)),
            (Command::Hello { name }, Some(Pass::Token { name: granted, .. })) => {
                if normalize_name(name).as_deref() == Some(granted.as_str()) {
                    Ok(())
                } else {
                    Err(Failure::with(ChatError::Forbidden, name))
                }
            }
            (Command::Join { room }, Some(Pass::Token { rooms: Some(patterns), .. })) => {
                // A bad room name is left to the join's own `room_invalid`.
                match normalize_room(room) {
                    Some(room) if !patterns.iter().any(|p| p.matches(&room)) => {
                        Err(Failure::with(ChatError::Forbidden, &room))
                    }
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    pub(super) fn forget(&mut self, member: MemberId) {
        self.passes.remove(&member);
    }
}

impl<D: Directory> Hub<D> {
    /// Turns tokens on: from now on a `hello` needs a pass.
    pub fn require_tokens(&mut self, verifier: Arc<Verifier>) {
        self.grants.verifier = Some(verifier);
    }

    /// The verifier, when tokens are on.
    pub fn token_verifier(&self) -> Option<&Arc<Verifier>> {
        self.grants.verifier.as_ref()
    }

    /// Checks `token` for `member` at `now_ms` (wall clock, ms since the
    /// epoch) and keeps what it grants. A member that holds a token already
    /// (a refresh) must get one for the same name. `Ok` carries the claims
    /// (the caller arms the expiry); a refusal is `unauthorized`, a refresh
    /// for another name `forbidden`. Without tokens on, every token is refused.
    pub fn authenticate(&mut self, member: MemberId, token: &[u8], now_ms: u64) -> Result<Claims, AuthFailure> {
        let verifier = self.grants.verifier.as_ref().ok_or(AuthFailure::Refused(Refusal::Malformed))?;
        let claims = verifier.verify(token, now_ms / 1000).map_err(AuthFailure::Refused)?;
        if let Some(Pass::Token { name, .. }) = self.grants.passes.get(&member)
            && *name != claims.name
        {
            return Err(AuthFailure::OtherName);
        }
        if !self.members.contains_key(&member) {
            return Err(AuthFailure::Refused(Refusal::Malformed));
        }
        let pass = Pass::Token { name: claims.name.clone(), rooms: claims.rooms.clone() };
        self.grants.passes.insert(member, pass);
        Ok(claims)
    }

    /// Lets `member` in without a token (a legacy client under `--legacy-anonymous`).
    pub fn admit_anonymous(&mut self, member: MemberId) {
        if self.members.contains_key(&member) {
            self.grants.passes.insert(member, Pass::Anonymous);
        }
    }

    /// Whether `member` holds a pass (always true with tokens off).
    pub fn is_admitted(&self, member: MemberId) -> bool {
        self.grants.verifier.is_none() || self.grants.passes.contains_key(&member)
    }

    /// The name `member`'s token grants, if it holds one.
    pub fn granted_name(&self, member: MemberId) -> Option<&str> {
        match self.grants.passes.get(&member) {
            Some(Pass::Token { name, .. }) => Some(name),
            _ => None,
        }
    }
}

/// Why [`Hub::authenticate`] did not accept a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// The token is bad: `unauthorized`.
    Refused(Refusal),
    /// A refresh for another name than the connection's: `forbidden`.
    OtherName,
}

impl AuthFailure {
    pub fn error(self) -> ChatError {
        match self {
            AuthFailure::Refused(_) => ChatError::Unauthorized,
            AuthFailure::OtherName => ChatError::Forbidden,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::Refused(refusal) => refusal.reason(),
            AuthFailure::OtherName => "token for another name",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;

    use super::*;
    use crate::chat::{ChatConfig, Dialect, Endpoint, Event, Outbox, Request};
    use crate::ids::ConnId;

    const NOW_MS: u64 = 1_800_000_000_000;

    fn hub() -> Hub {
        let mut hub = Hub::new(ChatConfig::default());
        hub.require_tokens(Arc::new(Verifier::hs256(b"k", 8192, 0)));
        hub
    }

    fn token(claims: serde_json::Value) -> Vec<u8> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(b"k"))
            .expect("signs")
            .into_bytes()
    }

    fn attach(hub: &mut Hub, slot: usize) -> MemberId {
        hub.attach(Endpoint::Conn(ConnId { slot, generation: 1 }), Dialect::Events, "/")
    }

    /// The error `member` got from `command`, if any.
    fn error_of(hub: &mut Hub, member: MemberId, command: Command<'_>) -> Option<ChatError> {
        let mut out = Outbox::default();
        hub.handle(member, Request::new(command), &mut out);
        out.deliveries.iter().find_map(|d| match d.event {
            Event::Error { error, .. } => Some(error),
            _ => None,
        })
    }

    fn hello(name: &str) -> Command<'_> {
        Command::Hello { name: Cow::Borrowed(name) }
    }

    fn join(room: &str) -> Command<'_> {
        Command::Join { room: Cow::Borrowed(room) }
    }

    #[test]
    fn without_a_pass_no_name_and_with_one_only_the_tokens() {
        let mut hub = hub();
        let member = attach(&mut hub, 1);
        assert_eq!(error_of(&mut hub, member, hello("alice")), Some(ChatError::Unauthorized));
        let claims = hub.authenticate(member, &token(json!({"sub": "alice", "exp": 1_800_000_060})), NOW_MS).unwrap();
        assert_eq!(claims.expires, 1_800_000_060);
        assert_eq!(error_of(&mut hub, member, hello("bob")), Some(ChatError::Forbidden));
        assert_eq!(error_of(&mut hub, member, hello("alice")), None);
        assert!(hub.is_registered(member));
    }

    #[test]
    fn rooms_claim_limits_joins_and_a_refresh_keeps_the_name() {
        let mut hub = hub();
        let member = attach(&mut hub, 1);
        let limited = token(json!({"sub": "al", "exp": 1_800_000_060, "rooms": ["team-*"]}));
        hub.authenticate(member, &limited, NOW_MS).unwrap();
        assert_eq!(error_of(&mut hub, member, hello("al")), None);
        assert_eq!(error_of(&mut hub, member, join("team-x")), None);
        assert_eq!(error_of(&mut hub, member, join("other")), Some(ChatError::Forbidden));
        // A bad room name keeps its own error.
        assert_eq!(error_of(&mut hub, member, join("a b")), Some(ChatError::RoomInvalid));
        let other = token(json!({"sub": "bo", "exp": 1_800_000_060}));
        assert_eq!(hub.authenticate(member, &other, NOW_MS), Err(AuthFailure::OtherName));
        let wider = token(json!({"sub": "al", "exp": 1_800_000_600}));
        assert_eq!(hub.authenticate(member, &wider, NOW_MS).map(|c| c.expires), Ok(1_800_000_600));
        assert_eq!(error_of(&mut hub, member, join("other")), None);
    }

    #[test]
    fn anonymous_passes_and_forgetting() {
        let mut hub = hub();
        let member = attach(&mut hub, 1);
        hub.admit_anonymous(member);
        assert!(hub.is_admitted(member));
        assert_eq!(error_of(&mut hub, member, hello("anyone")), None);
        let mut out = Outbox::default();
        hub.detach(member, &mut out);
        assert!(!hub.is_admitted(member));
        assert!(hub.grants.passes.is_empty());
        // An unknown member gets no pass.
        assert!(hub.authenticate(member, &token(json!({"sub": "x", "exp": 1_800_000_060})), NOW_MS).is_err());
        assert!(hub.grants.passes.is_empty());
    }

    #[test]
    fn tokens_off_changes_nothing() {
        let mut hub = Hub::new(ChatConfig::default());
        let member = attach(&mut hub, 1);
        assert!(hub.is_admitted(member));
        assert_eq!(error_of(&mut hub, member, hello("alice")), None);
        assert!(hub.authenticate(member, b"a.b.c", NOW_MS).is_err());
    }
}
