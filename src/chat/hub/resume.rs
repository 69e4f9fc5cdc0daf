//! Socket.IO connection state recovery on the hub's side
//! (docs/SOCKETIO.md): the events a returning session would be given
//! again are logged as they are delivered, a session that dropped is parked
//! with its name and rooms, and one that comes back in time is joined to its
//! rooms again and handed what it missed.

use std::rc::Rc;

use super::{Hub, State};
use crate::chat::recovery::RecoveryLog;
use crate::chat::{Audience, Command, Directory, Event, LOBBY, MemberId, Outbox, Recipient, Request, Unrecovered};

/// A session taken back: the socket id it had and what it missed, oldest
/// first, with each event's offset.
pub struct Resumed {
    pub sid: Box<str>,
    pub missed: Vec<(u64, Event)>,
}

impl<D: Directory> Hub<D> {
    /// Whether Socket.IO sessions may be recovered (`--socketio-recovery`).
    pub fn recovery_on(&self) -> bool {
        self.recovery.is_some()
    }

    /// Delivers `event` and, with recovery on, logs it for `audience` but
    /// `except` first, so receivers learn its offset and a parked session
    /// can be given it later (logged even when nobody here gets it now).
    pub(super) fn push_replayable(
        &mut self,
        namespace: &Rc<str>,
        audience: Audience,
        except: Option<&Rc<str>>,
        event: Event,
        recipients: Vec<Recipient>,
        out: &mut Outbox,
    ) {
        let offset = match (self.recovery.as_mut(), self.history.now) {
            (Some(log), Some(now)) => Some(log.log(namespace, audience, except.cloned(), &event, now)),
            _ => None,
        };
        out.push_at(namespace, event, recipients, offset);
    }

    /// Keeps what `member` (about to be detached) would need to come back
    /// under `pid`, if recovery is on and it is a registered user that did
    /// not quit or get closed by the server.
    pub fn park(&mut self, member: MemberId, pid: &str, sid: &str) {
        let (Some(log), Some(now)) = (self.recovery.as_mut(), self.history.now) else { return };
        let Some(session) = self.members.get(&member) else { return };
        if session.quitting {
            return;
        }
        let State::Registered(user) = &session.state else { return };
        let rooms = user.rooms.iter().filter(|room| ***room != *LOBBY).cloned().collect();
        let parked = RecoveryLog::parked(sid, session.namespace.clone(), user.name.clone(), rooms, now);
        log.park(pid, parked);
    }

    /// Takes back the session parked under `pid` for `member`, registered
    /// again under the same name, which last saw the event at `offset`: it
    /// joins its rooms again and gets the socket id it had and what it missed.
    pub fn resume(
        &mut self,
        member: MemberId,
        pid: &str,
        offset: &str,
        out: &mut Outbox,
    ) -> Result<Resumed, Unrecovered> {
        let Some(now) = self.history.now else { return Err(Unrecovered::UnknownSession) };
        let (namespace, name) = match self.members.get(&member).map(|s| (&s.namespace, &s.state)) {
            Some((namespace, State::Registered(user))) => (namespace.clone(), user.name.clone()),
            _ => return Err(Unrecovered::Mismatch),
        };
        let log = self.recovery.as_mut().ok_or(Unrecovered::UnknownSession)?;
        let (parked, missed) = log.resume(pid, offset, &namespace, &name, now)?;
        for room in parked.rooms {
            if !self.in_room(member, &room) {
                self.handle(member, Request::new(Command::Join { room: room.to_string().into() }), out);
            }
        }
        Ok(Resumed { sid: parked.sid, missed })
    }

    /// Sessions parked, bytes logged, sessions recovered and not, for `/metrics`.
    pub fn recovery_usage(&self) -> (usize, usize, u64, u64) {
        self.recovery.as_ref().map_or((0, 0, 0, 0), |log| {
            let (parked, bytes) = log.usage();
            (parked, bytes, log.recovered, log.unrecovered)
        })
    }
}
