//! Sessions that outlive a TCP connection (Engine.IO, SockJS): a session is
//! created by an app on one connection, may be carried by another later (a
//! held long-polling GET, then a WebSocket), and ends on its own deadline or
//! when its protocol says so. The reactor owns the one [`SessionTable`]; its
//! deadlines share the reactor's timer heap with the connections'.

use std::collections::HashMap;
use std::time::Instant;

use slab::Slab;

use super::render::Rendered;
use super::{AppCtx, WireFormat};
use crate::chat::{Event, MemberId};
use crate::ids::{ConnId, SessionId};

/// A protocol session kept apart from any socket.
pub trait Session: std::any::Any {
    /// The earliest instant at which [`Session::handle_timeout`] has work.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Called once `cx.now` has reached [`Session::poll_timeout`] (a missed
    /// heartbeat, a carrier that did not come back in time).
    fn handle_timeout(&mut self, cx: &mut AppCtx<'_>);

    /// The session is over; the reactor removes it and calls
    /// [`Session::on_close`].
    fn is_finished(&self) -> bool;

    /// The session leaves the table (finished, or the server shuts down):
    /// leave whatever it joined. Called exactly once.
    fn on_close(&mut self, cx: &mut AppCtx<'_>);

    /// The hub ends `member`, one of this session's, as [`App::close_member`]
    /// asks of a connection. `false`: the whole session ends.
    ///
    /// [`App::close_member`]: super::App::close_member
    fn close_member(&mut self, _member: MemberId, _cx: &mut AppCtx<'_>) -> bool {
        false
    }

    /// The format hub deliveries to this session are rendered in, while no
    /// carrier takes them directly (see [`SessionTable::set_carrier`]).
    fn wire_format(&self) -> Option<WireFormat> {
        None
    }

    /// A hub delivery of `event` to `member`, one of this session's members,
    /// rendered in [`Session::wire_format`]; `omit` as [`Rendered::parts`] takes it.
    fn deliver(
        &mut self,
        _member: MemberId,
        _event: &Event,
        _rendered: &Rendered,
        _omit: Option<u32>,
        _cx: &mut AppCtx<'_>,
    ) {
    }
}

struct Entry {
    id: SessionId,
    /// `None` while the session is lent out to run (see [`SessionTable::lend`]).
    session: Option<Box<dyn Session>>,
    /// The connection that takes the session's hub deliveries directly
    /// (a WebSocket it was upgraded to), if any.
    carrier: Option<ConnId>,
    /// What the protocol handed out with the id, so that an id cannot be
    /// guessed from another (Engine.IO's sid carries both).
    secret: u128,
    /// The session's earliest entry in the reactor's timer heap.
    scheduled: Option<Instant>,
    /// The name it is found by, for protocols whose clients choose the id
    /// (SockJS).
    name: Option<Box<str>>,
}

/// Every live session, by [`SessionId`]. Slots are reused; the generation in
/// the id keeps a stale id (a timer entry, a late request) from reaching the
/// slot's next tenant.
#[derive(Default)]
pub struct SessionTable {
    entries: Slab<Entry>,
    next_generation: u64,
    /// Sessions lent out since the reactor last settled them: their
    /// deadlines may have moved, or they may have finished.
    touched: Vec<SessionId>,
    /// The sessions added with [`SessionTable::insert_named`], by name.
    names: HashMap<Box<str>, SessionId>,
}

impl SessionTable {
    /// Adds a session; its deadline is armed when the reactor next settles.
    pub fn insert(&mut self, session: Box<dyn Session>) -> SessionId {
        self.insert_with(0, |_| session)
    }

    /// Adds the session `make` builds knowing its id, findable by
    /// [`SessionTable::find`] with `secret`.
    pub fn insert_with(&mut self, secret: u128, make: impl FnOnce(SessionId) -> Box<dyn Session>) -> SessionId {
        self.next_generation += 1;
        let entry = self.entries.vacant_entry();
        let id = SessionId { slot: entry.key(), generation: self.next_generation };
        entry.insert(Entry { id, session: Some(make(id)), carrier: None, secret, scheduled: None, name: None });
        self.touched.push(id);
        id
    }

    /// Adds the session `make` builds, findable by [`SessionTable::find_named`]
    /// with `name` until it leaves the table. `None` if the name is taken.
    /// The caller bounds the names' length and count.
    pub fn insert_named(&mut self, name: &str, make: impl FnOnce(SessionId) -> Box<dyn Session>) -> Option<SessionId> {
        if self.names.contains_key(name) {
            return None;
        }
        let id = self.insert_with(0, make);
        let name: Box<str> = name.into();
        if let Some(entry) = self.entry_mut(id) {
            entry.name = Some(name.clone());
        }
        self.names.insert(name, id);
        Some(id)
    }

    /// The live session added with `name`.
    pub fn find_named(&self, name: &str) -> Option<SessionId> {
        self.names.get(name).copied().filter(|&id| self.contains(id))
    }

    /// How many sessions have names.
    pub fn named_len(&self) -> usize {
        self.names.len()
    }

    /// The live session in `slot` whose generation ends in the low 32 bits
    /// `generation` and whose secret is `secret`.
    pub fn find(&self, slot: usize, generation: u32, secret: u128) -> Option<SessionId> {
        let entry = self.entries.get(slot)?;
        (entry.id.generation as u32 == generation && entry.secret == secret).then_some(entry.id)
    }

    fn entry_mut(&mut self, id: SessionId) -> Option<&mut Entry> {
        self.entries.get_mut(id.slot).filter(|e| e.id == id)
    }

    pub fn contains(&self, id: SessionId) -> bool {
        self.entries.get(id.slot).is_some_and(|e| e.id == id)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes the session out to run it with a context that may include this
    /// table; give it back with [`SessionTable::restore`]. `None` if the id
    /// is stale or the session is already lent out.
    pub fn lend(&mut self, id: SessionId) -> Option<Box<dyn Session>> {
        let session = self.entry_mut(id)?.session.take()?;
        self.touched.push(id);
        Some(session)
    }

    /// Puts a lent session back.
    pub fn restore(&mut self, id: SessionId, session: Box<dyn Session>) {
        if let Some(entry) = self.entry_mut(id) {
            entry.session = Some(session);
        }
    }

    /// Removes a session (the caller calls its `on_close`).
    pub fn remove(&mut self, id: SessionId) -> Option<Box<dyn Session>> {
        if !self.contains(id) {
            return None;
        }
        let entry = self.entries.remove(id.slot);
        if let Some(name) = entry.name {
            self.names.remove(&name);
        }
        entry.session
    }

    /// The connection taking `id`'s deliveries directly.
    pub fn carrier(&self, id: SessionId) -> Option<ConnId> {
        self.entries.get(id.slot).filter(|e| e.id == id)?.carrier
    }

    /// Makes `conn` the connection that takes the session's deliveries
    /// directly, in its own app's format (`None`: the session takes them).
    pub fn set_carrier(&mut self, id: SessionId, conn: Option<ConnId>) {
        if let Some(entry) = self.entry_mut(id) {
            entry.carrier = conn;
        }
    }

    /// The sessions touched since the last call, for the reactor to settle.
    pub fn take_touched(&mut self) -> Vec<SessionId> {
        std::mem::take(&mut self.touched)
    }

    /// Every session's id (for shutdown).
    pub fn ids(&self) -> Vec<SessionId> {
        self.entries.iter().map(|(_, e)| e.id).collect()
    }

    /// The session's next deadline and its timer bookkeeping, while it is in
    /// the table (not lent out).
    pub fn timer_state(&mut self, id: SessionId) -> Option<(Option<Instant>, bool, &mut Option<Instant>)> {
        let entry = self.entry_mut(id)?;
        let session = entry.session.as_ref()?;
        Some((session.poll_timeout(), session.is_finished(), &mut entry.scheduled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Countdown {
        at: Instant,
        fired: bool,
    }

    impl Session for Countdown {
        fn poll_timeout(&self) -> Option<Instant> {
            (!self.fired).then_some(self.at)
        }
        fn handle_timeout(&mut self, cx: &mut AppCtx<'_>) {
            self.fired = cx.now >= self.at;
        }
        fn is_finished(&self) -> bool {
            self.fired
        }
        fn on_close(&mut self, _cx: &mut AppCtx<'_>) {}
    }

    #[test]
    fn stale_ids_miss_a_reused_slot() {
        let t0 = Instant::now();
        let mut table = SessionTable::default();
        let first = table.insert(Box::new(Countdown { at: t0, fired: false }));
        assert!(table.remove(first).is_some());
        let second = table.insert(Box::new(Countdown { at: t0, fired: false }));
        assert_eq!(first.slot, second.slot, "the slot is reused");
        assert!(!table.contains(first));
        assert!(table.lend(first).is_none());
        assert!(table.remove(first).is_none());
        assert!(table.contains(second));
    }

    #[test]
    fn a_lent_session_is_touched_and_comes_back() {
        let t0 = Instant::now();
        let mut table = SessionTable::default();
        let id = table.insert(Box::new(Countdown { at: t0 + Duration::from_secs(1), fired: false }));
        assert_eq!(table.take_touched(), vec![id]);
        let session = table.lend(id).expect("in the table");
        assert!(table.lend(id).is_none(), "lent once at a time");
        assert!(table.timer_state(id).is_none(), "no deadline while lent");
        table.restore(id, session);
        assert_eq!(table.take_touched(), vec![id]);
        let (deadline, finished, _) = table.timer_state(id).expect("back");
        assert_eq!((deadline, finished), (Some(t0 + Duration::from_secs(1)), false));
    }

    #[test]
    fn named_sessions_are_found_until_removed() {
        let t0 = Instant::now();
        let mut table = SessionTable::default();
        let id = table.insert_named("svc/abc", |_| Box::new(Countdown { at: t0, fired: false })).expect("new name");
        assert!(table.insert_named("svc/abc", |_| Box::new(Countdown { at: t0, fired: false })).is_none());
        assert_eq!(table.find_named("svc/abc"), Some(id));
        assert_eq!(table.find_named("svc/abd"), None);
        assert_eq!(table.named_len(), 1);
        assert!(table.remove(id).is_some());
        assert_eq!(table.find_named("svc/abc"), None);
        assert_eq!(table.named_len(), 0);
    }

    #[test]
    fn a_session_outlives_its_carriers() {
        let t0 = Instant::now();
        let mut table = SessionTable::default();
        let id = table.insert(Box::new(Countdown { at: t0, fired: false }));
        let (a, b) = (ConnId { slot: 1, generation: 1 }, ConnId { slot: 2, generation: 2 });
        table.set_carrier(id, Some(a));
        assert_eq!(table.carrier(id), Some(a));
        table.set_carrier(id, None);
        assert!(table.contains(id), "no carrier, still alive");
        table.set_carrier(id, Some(b));
        assert_eq!(table.carrier(id), Some(b));
    }
}
