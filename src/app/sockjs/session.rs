//! One SockJS session in the reactor's session table: the protocol core's
//! [`SessionCore`] (open frame, queued messages, heartbeats, one receiver at
//! a time, the sticky close frame), the upper app it carries, and the
//! connection of the request receiving for it now, if any.

use std::any::Any;
use std::time::Instant;

use log::debug;

use crate::app::render::Rendered;
use crate::app::session::Session;
use crate::app::{App, AppCtx, CloseRequest, Input, Output, WireFormat};
use crate::chat::{Event, MemberId};
use crate::ids::{ConnId, SessionId};
use crate::proto::sockjs::{Busy, CloseReason, Receiving, SendError, SessionCore, Wrap};

/// The close a session gets when its queue passes `--max-queued`: nobody
/// has fetched its messages for too long (soket's slow-reader code, as a
/// WebSocket would get).
pub const SLOW_READER: CloseReason = CloseReason { code: 1013, reason: "Slow reader" };

pub struct SockJsSession {
    core: SessionCore,
    /// `None` before the upper app is opened and once it has ended (its
    /// `on_close` has run): the session then only repeats its close frame.
    upper: Option<Box<dyn App>>,
    /// The connection of the request receiving frames now.
    receiver: Option<ConnId>,
    /// The disconnect delay passed with no receiver: leave the table.
    expired: bool,
}

/// The upper app's writes: messages into the session's queue (encoded, capped).
struct Queue<'a> {
    core: &'a mut SessionCore,
    close: Option<CloseRequest>,
    full: bool,
    queued: bool,
}

impl Output for Queue<'_> {
    fn send_text(&mut self, payload: &[u8]) {
        match self.core.send(&String::from_utf8_lossy(payload)) {
            Ok(()) => self.queued = true,
            Err(SendError::QueueFull) => self.full = true,
            Err(SendError::Closed) => {}
        }
    }

    /// SockJS frames carry strings only, like a line carries no binary.
    fn send_binary(&mut self, _payload: &[u8]) {}

    fn close(&mut self, request: CloseRequest) {
        self.close.get_or_insert(request);
    }
}

impl SockJsSession {
    pub fn new(core: SessionCore) -> SockJsSession {
        SockJsSession { core, upper: None, receiver: None, expired: false }
    }

    /// Gives the session its upper app and starts it: what it says first
    /// (or its close) follows the open frame.
    pub fn start(&mut self, upper: Box<dyn App>, cx: &mut AppCtx<'_>) {
        self.upper = Some(upper);
        self.run_upper(cx, |upper, cx, out| upper.on_start(cx, out));
    }

    pub fn is_closed(&self) -> bool {
        self.core.close_reason().is_some()
    }

    /// Runs the upper app with the session's queue as its output, then acts
    /// on what it did: a close becomes the close frame, a full queue closes
    /// the session, and the receiver is woken for anything new.
    fn run_upper(&mut self, cx: &mut AppCtx<'_>, act: impl FnOnce(&mut dyn App, &mut AppCtx<'_>, &mut dyn Output)) {
        let Some(upper) = self.upper.as_mut() else {
            return;
        };
        let mut queue = Queue { core: &mut self.core, close: None, full: false, queued: false };
        act(upper.as_mut(), cx, &mut queue);
        let Queue { close, full, queued, .. } = queue;
        if full {
            cx.metrics.slow_consumer_disconnects_total += 1;
            debug!("sockjs session: queue over --max-queued; closing");
            self.core.close(SLOW_READER);
        }
        if let Some(request) = close {
            self.core.close(CloseReason { code: request.code.0, reason: request.reason });
        }
        if self.is_closed() {
            self.end_upper(cx);
        }
        if queued || self.is_closed() {
            self.wake_receiver(cx);
        }
    }

    /// The upper app leaves whatever it joined, once.
    fn end_upper(&mut self, cx: &mut AppCtx<'_>) {
        if let Some(mut upper) = self.upper.take() {
            upper.on_close(cx);
        }
    }

    fn wake_receiver(&self, cx: &mut AppCtx<'_>) {
        if let Some(conn) = self.receiver {
            cx.wakes.push(conn);
        }
    }

    /// Messages a send request carried, in order, to the upper app.
    pub fn receive(&mut self, messages: &[String], cx: &mut AppCtx<'_>) {
        for message in messages {
            if self.upper.is_none() {
                break;
            }
            cx.metrics.messages_in_total += 1;
            self.run_upper(cx, |upper, cx, out| upper.handle_input(Input::Text(message), cx, out));
        }
    }

    /// A request on `conn` wants to receive frames.
    pub fn attach(&mut self, conn: ConnId, mode: Receiving, now: Instant) -> Result<(), Busy> {
        self.core.attach(mode, now)?;
        self.receiver = Some(conn);
        Ok(())
    }

    /// Appends the frames due now for the receiver, each wrapped and as a
    /// piece of its own; returns whether the receiver's answer is complete
    /// (it is detached then).
    pub fn poll(&mut self, now: Instant, wrap: &Wrap<'_>, pieces: &mut Vec<Vec<u8>>) -> bool {
        loop {
            let mut frame = Vec::new();
            match self.core.poll_frame(now, wrap, &mut frame) {
                None => return false,
                Some(last) => {
                    pieces.push(frame);
                    if last {
                        self.receiver = None;
                        return true;
                    }
                }
            }
        }
    }

    /// The receiving request on `conn` ended before its answer was complete
    /// (its connection went): the protocol closes the session with 1002.
    pub fn receiver_gone(&mut self, conn: ConnId, cx: &mut AppCtx<'_>) {
        if self.receiver != Some(conn) {
            return;
        }
        self.receiver = None;
        if self.core.receiver_lost(cx.now) {
            self.end_upper(cx);
        }
    }
}

impl Session for SockJsSession {
    fn poll_timeout(&self) -> Option<Instant> {
        if self.expired {
            return None;
        }
        let upper = self.upper.as_ref().and_then(|upper| upper.poll_timeout());
        self.core.poll_timeout().into_iter().chain(upper).min()
    }

    fn handle_timeout(&mut self, cx: &mut AppCtx<'_>) {
        let now = cx.now;
        if self.core.is_expired(now) {
            self.expired = true;
            return;
        }
        // The receiver writes the heartbeat when polled.
        if self.core.has_receiver() && self.core.poll_timeout().is_some_and(|at| at <= now) {
            self.wake_receiver(cx);
        }
        if self.upper.as_ref().and_then(|upper| upper.poll_timeout()).is_some_and(|at| at <= now) {
            self.run_upper(cx, |upper, cx, out| upper.handle_timeout(cx, out));
        }
    }

    fn close_member(&mut self, member: MemberId, cx: &mut AppCtx<'_>) -> bool {
        // As a connection would: the app ends the member, or the session
        // closes with the close frame once what is queued is out.
        self.run_upper(cx, |upper, cx, out| {
            if !upper.close_member(member, cx, out) {
                out.close(CloseRequest { code: crate::proto::ws::CloseCode::NORMAL, reason: "" });
            }
        });
        true
    }

    fn is_finished(&self) -> bool {
        self.expired
    }

    fn on_close(&mut self, cx: &mut AppCtx<'_>) {
        cx.metrics.sockjs_session_closed();
        self.end_upper(cx);
    }

    fn wire_format(&self) -> Option<WireFormat> {
        self.upper.as_ref()?.wire_format()
    }

    fn deliver(
        &mut self,
        _member: MemberId,
        event: &Event,
        rendered: &Rendered,
        omit: Option<u32>,
        cx: &mut AppCtx<'_>,
    ) {
        let per_receiver = self.wire_format().is_some_and(|format| format.per_receiver);
        self.run_upper(cx, |upper, _, out| {
            if per_receiver {
                upper.deliver(event, rendered, omit, out);
            } else {
                out.send_text(&rendered.payload(omit));
            }
        });
    }
}

/// Runs `act` on the SockJS session `id` (lent out of the table and put
/// back); `None` if there is no such session.
pub fn with_session<R>(
    cx: &mut AppCtx<'_>,
    id: SessionId,
    act: impl FnOnce(&mut SockJsSession, &mut AppCtx<'_>) -> R,
) -> Option<R> {
    let mut session = cx.sessions.lend(id)?;
    let any: &mut dyn Any = session.as_mut();
    let result = any.downcast_mut::<SockJsSession>().map(|sockjs| act(sockjs, cx));
    cx.sessions.restore(id, session);
    result
}
