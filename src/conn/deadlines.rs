//! A connection's deadlines: which one is next, and what happens when it
//! passes (the first byte, the flush delay, a request head, the keepalive, a
//! held answer, the closing handshake).

use std::time::Instant;

use log::debug;

use super::app_io::run_app_timeout;
use super::websocket::Keepalive;
use super::{AfterClose, Conn, Ctx, Framing, Lifecycle, Transport};
use crate::proto::http::response::write_response;
use crate::proto::ws::encoder::encode_frame;
use crate::proto::ws::{CloseCode, OpCode};

impl<S: Transport> Conn<S> {
    /// The earliest instant at which [`Conn::on_deadline`] has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let own = match &self.lifecycle {
            Lifecycle::Sniffing { first_byte, flush } => {
                let sniffing = flush.unwrap_or(*first_byte);
                Some(self.transport.handshake_deadline().map_or(sniffing, |tls| tls.min(sniffing)))
            }
            Lifecycle::Http(state) => state.deadline(),
            Lifecycle::Draining { deadline, .. } | Lifecycle::Closing { deadline, .. } => Some(*deadline),
            Lifecycle::Open(Framing::WebSocket(ws)) => Some(ws.keepalive_deadline()),
            Lifecycle::Open(Framing::Lines(lines)) => lines.deadline(),
            Lifecycle::Open(Framing::Stream) | Lifecycle::PeerFinished | Lifecycle::Closed => None,
        };
        let app = self.app.as_ref().and_then(|app| app.poll_timeout());
        own.into_iter().chain(app).min()
    }

    /// Acts on whatever deadline has passed by `ctx.now`.
    pub fn on_deadline(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        match &mut self.lifecycle {
            Lifecycle::Sniffing { .. } if self.transport.handshake_deadline().is_some_and(|d| d <= now) => {
                debug!("conn {:?}: TLS handshake not done within --handshake-timeout", self.id);
                self.close_now(ctx);
            }
            Lifecycle::Sniffing { flush: Some(flush), .. } if *flush <= now => {
                // A proper prefix of a method name that stayed alone for the
                // flush delay is a legacy message (a user may be called GET).
                self.open_lines(ctx);
                let mut pending = std::mem::take(&mut self.rbuf);
                self.feed(&mut pending, ctx);
            }
            Lifecycle::Sniffing { flush: None, first_byte } if *first_byte <= now => {
                debug!("event=timeout conn={} limit=first-byte-timeout", self.id);
                self.close_now(ctx);
            }
            Lifecycle::Http(state) if state.is_held() && state.deadline().is_some_and(|d| d <= now) => {
                self.poll_held(ctx);
            }
            Lifecycle::Http(state) if state.is_held() => {}
            Lifecycle::Http(state) if state.deadline().is_some_and(|d| d <= now) => {
                debug!("event=timeout conn={} limit=handshake-timeout status=408", self.id);
                // A connection that never started a request just goes.
                if !self.rbuf.is_empty() || !state.is_reading_head() {
                    let body = b"request head timeout\n";
                    let response = write_response(408, &[], "text/plain; charset=utf-8", body, false, true);
                    self.out.push_bytes(ctx.pool, &response);
                }
                self.finish(ctx);
            }
            Lifecycle::Open(Framing::Lines(lines)) if lines.deadline().is_some_and(|d| d <= now) => {
                self.decode_lines(None, now, ctx);
            }
            Lifecycle::Draining { deadline, .. } | Lifecycle::Closing { deadline, .. } if *deadline <= now => {
                debug!("event=timeout conn={} limit=close-timeout", self.id);
                self.close_now(ctx);
            }
            Lifecycle::Open(Framing::WebSocket(ws)) => match ws.on_deadline(now, ctx.timeouts) {
                Keepalive::Wait => {}
                Keepalive::Ping => self.out.append_with(ctx.pool, |v| encode_frame(v, OpCode::Ping, b"")),
                Keepalive::TimedOut => {
                    debug!("event=timeout conn={} limit=ping-timeout code=1001", self.id);
                    self.send_close(Some(CloseCode::GOING_AWAY), "ping timeout", AfterClose::Finish, ctx);
                }
            },
            _ => {}
        }
        if self.app.as_ref().and_then(|app| app.poll_timeout()).is_some_and(|at| at <= now) {
            let carrier = self.carrier();
            if let Some(request) = run_app_timeout(&mut self.app, &mut self.out, carrier, ctx) {
                self.close(request, ctx);
            }
        }
    }
}
