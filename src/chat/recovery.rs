//! Socket.IO connection state recovery (docs/SOCKETIO.md), in the hub's
//! terms: a log of the events a returning session may have missed (room
//! messages, private messages, custom events), each numbered by an offset
//! that only grows, and the sessions that dropped and may come back, parked
//! under their private id (`pid`). Sans-IO: times are given.
//!
//! Both are bounded by the window (`maxDisconnectionDuration`) and by a cap
//! of their own, so a busy namespace or a reconnect storm costs a known
//! amount of memory. Off (`--socketio-recovery 0`) the hub holds none of it.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::Event;

/// `--socketio-recovery`, `--socketio-recovery-sessions` and
/// `--socketio-recovery-buffer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// How long a dropped session may come back (`maxDisconnectionDuration`);
    /// `None` turns recovery off.
    pub window: Option<Duration>,
    /// Parked sessions held at once; past it the oldest is forgotten.
    pub max_sessions: usize,
    /// Bytes of logged events held at once; past it the oldest are dropped
    /// (and a session that missed them is not recovered).
    pub max_log_bytes: usize,
}

impl Default for RecoveryConfig {
    fn default() -> RecoveryConfig {
        RecoveryConfig { window: None, max_sessions: 10_000, max_log_bytes: 16 << 20 }
    }
}

/// Whom a logged event was for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    /// The members of a room.
    Room(Rc<str>),
    /// One user, by name.
    User(Rc<str>),
    /// Everyone in the namespace who takes custom events.
    Namespace,
}

struct Logged {
    offset: u64,
    at: Instant,
    namespace: Rc<str>,
    audience: Audience,
    /// The user who did not get it (a sender never hears its own `say`).
    except: Option<Rc<str>>,
    event: Event,
    bytes: usize,
}

/// What a dropped session was, kept for its return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parked {
    /// The Socket.IO socket id it had (given back on recovery).
    pub sid: Box<str>,
    pub namespace: Rc<str>,
    pub name: Rc<str>,
    /// Its rooms besides the lobby, in the order it joined them.
    pub rooms: Vec<Rc<str>>,
    at: Instant,
}

/// Why a session was not recovered (counted in `/metrics`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unrecovered {
    /// No such `pid`: never parked here, already taken back, or forgotten.
    UnknownSession,
    /// Parked longer ago than the window.
    Expired,
    /// Another namespace or another name than the parked session's.
    Mismatch,
    /// The offset is not one this process gave, or events after it are gone.
    OffsetGone,
}

/// The log and the parked sessions.
pub struct RecoveryLog {
    config: RecoveryConfig,
    window: Duration,
    log: VecDeque<Logged>,
    log_bytes: usize,
    /// The offset of the last event logged (0 before any).
    last_offset: u64,
    /// Every event up to this offset has left the log.
    dropped_through: u64,
    parked: HashMap<Box<str>, Parked>,
    /// Parking order, oldest first, for expiry; entries whose session was
    /// taken back (or parked again) are skipped when they come up.
    parking_order: VecDeque<(Instant, Box<str>)>,
    pub recovered: u64,
    pub unrecovered: u64,
}

impl RecoveryLog {
    /// `None` when recovery is off.
    pub fn new(config: RecoveryConfig) -> Option<RecoveryLog> {
        let window = config.window.filter(|w| !w.is_zero())?;
        Some(RecoveryLog {
            config,
            window,
            log: VecDeque::new(),
            log_bytes: 0,
            last_offset: 0,
            dropped_through: 0,
            parked: HashMap::new(),
            parking_order: VecDeque::new(),
            recovered: 0,
            unrecovered: 0,
        })
    }

    /// Logs `event` for `audience` but `except` at `now`: its offset.
    pub fn log(
        &mut self,
        namespace: &Rc<str>,
        audience: Audience,
        except: Option<Rc<str>>,
        event: &Event,
        now: Instant,
    ) -> u64 {
        self.last_offset += 1;
        let bytes = std::mem::size_of::<Logged>() + event_bytes(event);
        self.log.push_back(Logged {
            offset: self.last_offset,
            at: now,
            namespace: namespace.clone(),
            audience,
            except,
            event: event.clone(),
            bytes,
        });
        self.log_bytes += bytes;
        self.trim(now);
        self.last_offset
    }

    /// Drops what is older than the window, then the oldest past the byte cap.
    fn trim(&mut self, now: Instant) {
        while let Some(front) = self.log.front() {
            let too_old = now.saturating_duration_since(front.at) > self.window;
            if !too_old && self.log_bytes <= self.config.max_log_bytes {
                break;
            }
            self.dropped_through = front.offset;
            self.log_bytes -= front.bytes;
            self.log.pop_front();
        }
        while let Some((at, pid)) = self.parking_order.front() {
            let too_old = now.saturating_duration_since(*at) > self.window;
            if !too_old && self.parked.len() <= self.config.max_sessions {
                break;
            }
            if self.parked.get(pid).is_some_and(|p| p.at == *at) {
                self.parked.remove(pid);
            }
            self.parking_order.pop_front();
        }
    }

    /// Keeps `parked` under `pid` until the window closes.
    pub fn park(&mut self, pid: &str, parked: Parked) {
        let at = parked.at;
        self.parked.insert(pid.into(), parked);
        self.parking_order.push_back((at, pid.into()));
        self.trim(at);
    }

    /// Takes back the session parked under `pid`, for `name` in `namespace`
    /// that last saw the event at `offset`: the session, and the events
    /// after `offset` it would have got, oldest first (offset and event).
    pub fn resume(
        &mut self,
        pid: &str,
        offset: &str,
        namespace: &str,
        name: &str,
        now: Instant,
    ) -> Result<(Parked, Vec<(u64, Event)>), Unrecovered> {
        self.trim(now);
        let Some(parked) = self.parked.get(pid) else {
            return Err(self.refuse(Unrecovered::UnknownSession));
        };
        if now.saturating_duration_since(parked.at) > self.window {
            self.parked.remove(pid);
            return Err(self.refuse(Unrecovered::Expired));
        }
        if *parked.namespace != *namespace || *parked.name != *name {
            return Err(self.refuse(Unrecovered::Mismatch));
        }
        // An offset is one this process gave (digits only, no sign, no
        // leading zero) and nothing after it may have been dropped.
        let offset = match offset.parse::<u64>() {
            Ok(n) if n.to_string() == offset => n,
            _ => return Err(self.refuse(Unrecovered::OffsetGone)),
        };
        if offset > self.last_offset || offset < self.dropped_through {
            return Err(self.refuse(Unrecovered::OffsetGone));
        }
        let Some(parked) = self.parked.remove(pid) else {
            return Err(self.refuse(Unrecovered::UnknownSession));
        };
        let start = self.log.partition_point(|logged| logged.offset <= offset);
        let missed = self
            .log
            .iter()
            .skip(start)
            .filter(|logged| *logged.namespace == *parked.namespace && was_for(&parked, logged))
            .map(|logged| (logged.offset, logged.event.clone()))
            .collect();
        self.recovered += 1;
        Ok((parked, missed))
    }

    fn refuse(&mut self, why: Unrecovered) -> Unrecovered {
        self.unrecovered += 1;
        why
    }

    /// A new parked session's record.
    pub fn parked(sid: &str, namespace: Rc<str>, name: Rc<str>, rooms: Vec<Rc<str>>, now: Instant) -> Parked {
        Parked { sid: sid.into(), namespace, name, rooms, at: now }
    }

    /// Sessions parked and bytes logged, for `/metrics`.
    pub fn usage(&self) -> (usize, usize) {
        (self.parked.len(), self.log_bytes)
    }
}

fn was_for(parked: &Parked, logged: &Logged) -> bool {
    if logged.except.as_ref().is_some_and(|except| *except == parked.name) {
        return false;
    }
    match &logged.audience {
        Audience::Namespace => true,
        Audience::User(name) => *name == parked.name,
        Audience::Room(room) => parked.rooms.contains(room) || **room == *super::LOBBY,
    }
}

/// The bytes an event keeps alive beyond its entry, roughly.
fn event_bytes(event: &Event) -> usize {
    match event {
        Event::Message { room, from, text, .. } => room.len() + from.len() + text.len(),
        Event::Private { from, text } => from.len() + text.len(),
        Event::Custom { event, data, from, room, args } => {
            let args = args.as_ref().map_or(0, |a| a.json.len() + a.binary.iter().map(|b| b.len()).sum::<usize>());
            event.len()
                + data.as_ref().map_or(0, |d| d.len())
                + from.as_ref().map_or(0, |f| f.len())
                + room.as_ref().map_or(0, |r| r.len())
                + args
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(window_secs: u64) -> RecoveryConfig {
        RecoveryConfig { window: Some(Duration::from_secs(window_secs)), ..RecoveryConfig::default() }
    }

    fn message(room: &str, text: &str) -> Event {
        Event::Message { room: room.into(), from: "bob".into(), text: text.into(), mark: None }
    }

    fn texts(missed: &[(u64, Event)]) -> Vec<String> {
        missed
            .iter()
            .map(|(offset, event)| match event {
                Event::Message { text, .. } | Event::Private { text, .. } => format!("{offset}:{text}"),
                Event::Custom { event, .. } => format!("{offset}:{event}"),
                _ => String::new(),
            })
            .collect()
    }

    #[test]
    fn off_without_a_window() {
        assert!(RecoveryLog::new(RecoveryConfig::default()).is_none());
        assert!(
            RecoveryLog::new(RecoveryConfig { window: Some(Duration::ZERO), ..RecoveryConfig::default() }).is_none()
        );
    }

    #[test]
    fn a_parked_session_gets_what_was_for_it_after_its_offset() {
        let t0 = Instant::now();
        let mut r = RecoveryLog::new(config(60)).unwrap();
        let ns: Rc<str> = "/".into();
        let games = Audience::Room("games".into());
        assert_eq!(r.log(&ns, games.clone(), None, &message("games", "a"), t0), 1);
        assert_eq!(r.log(&ns, games.clone(), None, &message("games", "b"), t0), 2);
        let parked = RecoveryLog::parked("sid1", ns.clone(), "alice".into(), vec!["games".into()], t0);
        r.park("pid1", parked);
        r.log(&ns, Audience::Room("other".into()), None, &message("other", "not mine"), t0);
        r.log(
            &ns,
            Audience::User("alice".into()),
            None,
            &Event::Private { from: "bob".into(), text: "psst".into() },
            t0,
        );
        r.log(&ns, Audience::User("carol".into()), None, &Event::Private { from: "bob".into(), text: "no".into() }, t0);
        r.log(&"/x".into(), games.clone(), None, &message("games", "other namespace"), t0);
        r.log(&ns, Audience::Room("lobby".into()), None, &message("lobby", "lobby"), t0);
        let relay = Event::Custom { event: "ping".into(), data: None, from: None, room: None, args: None };
        r.log(&ns, Audience::Namespace, None, &relay, t0);
        r.log(&ns, games.clone(), Some("alice".into()), &message("games", "her own"), t0);
        r.log(&ns, games, None, &message("games", "c"), t0);
        let (back, missed) = r.resume("pid1", "1", "/", "alice", t0 + Duration::from_secs(5)).unwrap();
        assert_eq!(&*back.sid, "sid1");
        assert_eq!(texts(&missed), ["2:b", "4:psst", "7:lobby", "8:ping", "10:c"]);
        assert_eq!(r.resume("pid1", "1", "/", "alice", t0), Err(Unrecovered::UnknownSession), "taken back once");
        assert_eq!((r.recovered, r.unrecovered), (1, 1));
    }

    #[test]
    fn refusals() {
        let t0 = Instant::now();
        let mut r = RecoveryLog::new(config(10)).unwrap();
        let ns: Rc<str> = "/".into();
        r.log(&ns, Audience::Room("lobby".into()), None, &message("lobby", "a"), t0);
        let park = |r: &mut RecoveryLog, pid: &str| {
            r.park(pid, RecoveryLog::parked("s", ns.clone(), "alice".into(), vec![], t0));
        };
        park(&mut r, "p");
        assert_eq!(r.resume("p", "1", "/", "bob", t0), Err(Unrecovered::Mismatch));
        assert_eq!(r.resume("p", "1", "/other", "alice", t0), Err(Unrecovered::Mismatch));
        for bad in ["2", "01", "+1", "-1", "x", "", "18446744073709551616"] {
            assert_eq!(r.resume("p", bad, "/", "alice", t0), Err(Unrecovered::OffsetGone), "{bad}");
        }
        assert_eq!(r.resume("nobody", "1", "/", "alice", t0), Err(Unrecovered::UnknownSession));
        park(&mut r, "q");
        assert_eq!(r.resume("q", "0", "/", "alice", t0).map(|(_, m)| m.len()), Ok(1), "offset 0: before the first");
        assert_eq!(r.resume("p", "1", "/", "alice", t0 + Duration::from_secs(11)), Err(Unrecovered::UnknownSession));
    }

    #[test]
    fn the_log_is_bounded_and_a_gap_is_not_recovered() {
        let t0 = Instant::now();
        let cap = 4 * (std::mem::size_of::<Logged>() + 10);
        let mut r = RecoveryLog::new(RecoveryConfig {
            window: Some(Duration::from_secs(60)),
            max_log_bytes: cap,
            max_sessions: 2,
        })
        .unwrap();
        let ns: Rc<str> = "/".into();
        let lobby = Audience::Room("lobby".into());
        let park = |r: &mut RecoveryLog, pid: &str| {
            r.park(pid, RecoveryLog::parked("s", ns.clone(), "alice".into(), vec![], t0));
        };
        park(&mut r, "p");
        for i in 0..10 {
            r.log(&ns, lobby.clone(), None, &message("lobby", &format!("{i}")), t0);
        }
        assert!(r.usage().1 <= cap);
        assert_eq!(r.resume("p", "2", "/", "alice", t0), Err(Unrecovered::OffsetGone));
        park(&mut r, "p");
        let (_, missed) = r.resume("p", "8", "/", "alice", t0).unwrap();
        assert_eq!(texts(&missed), ["9:8", "10:9"]);
        for pid in ["a", "b", "c"] {
            park(&mut r, pid);
        }
        assert_eq!(r.usage().0, 2, "the oldest parked session is forgotten");
        assert_eq!(r.resume("a", "10", "/", "alice", t0), Err(Unrecovered::UnknownSession));
        assert!(r.resume("c", "10", "/", "alice", t0).is_ok());
    }

    #[test]
    fn old_events_leave_the_log_with_the_window() {
        let t0 = Instant::now();
        let mut r = RecoveryLog::new(config(10)).unwrap();
        let ns: Rc<str> = "/".into();
        r.log(&ns, Audience::Namespace, None, &message("lobby", "old"), t0);
        r.log(&ns, Audience::Namespace, None, &message("lobby", "new"), t0 + Duration::from_secs(8));
        let later = t0 + Duration::from_secs(12);
        r.park("p", RecoveryLog::parked("s", ns.clone(), "alice".into(), vec![], later));
        assert_eq!(r.resume("p", "0", "/", "alice", later), Err(Unrecovered::OffsetGone));
        r.park("p", RecoveryLog::parked("s", ns.clone(), "alice".into(), vec![], later));
        assert_eq!(r.resume("p", "1", "/", "alice", later).map(|(_, m)| texts(&m)), Ok(vec!["2:new".to_owned()]));
    }
}
