//! What an operator asks the daemon over HTTP: `/metrics` in the Prometheus
//! text format.

use super::{AppCtx, HttpHandler, HttpReply, HttpResponse};
use crate::ids::ConnId;
use crate::metrics::ChatGauges;

/// `GET /metrics`.
pub struct MetricsPage;

impl HttpHandler for MetricsPage {
    fn handle_request(&mut self, _conn: ConnId, _body: &[u8], cx: &mut AppCtx<'_>) -> HttpReply {
        let hub = &cx.hub;
        let chat = ChatGauges {
            users: hub.users() as u64,
            rooms: hub.rooms() as u64,
            remote_users: hub.remote_users() as u64,
        };
        let mut body = cx.metrics.render(chat, cx.queues);
        let (bytes, messages) = hub.history_usage();
        body.push_str(&format!(
            "# HELP soket_history_bytes Memory held by the rooms' message histories (--history-size).\n\
             # TYPE soket_history_bytes gauge\nsoket_history_bytes {bytes}\n\
             # HELP soket_history_messages Messages held in the rooms' histories.\n\
             # TYPE soket_history_messages gauge\nsoket_history_messages {messages}\n"
        ));
        if hub.recovery_on() {
            let (parked, log_bytes, recovered, unrecovered) = hub.recovery_usage();
            body.push_str(&format!(
                "# HELP soket_socketio_parked_sessions Dropped Socket.IO sessions that may still be recovered.\n\
                 # TYPE soket_socketio_parked_sessions gauge\nsoket_socketio_parked_sessions {parked}\n\
                 # HELP soket_socketio_recovery_bytes Memory held by events kept for returning sessions.\n\
                 # TYPE soket_socketio_recovery_bytes gauge\nsoket_socketio_recovery_bytes {log_bytes}\n\
                 # HELP soket_socketio_recoveries_total Returning Socket.IO sessions, recovered or not.\n\
                 # TYPE soket_socketio_recoveries_total counter\n\
                 soket_socketio_recoveries_total{{result=\"recovered\"}} {recovered}\n\
                 soket_socketio_recoveries_total{{result=\"not_recovered\"}} {unrecovered}\n"
            ));
        }
        HttpReply::Respond(HttpResponse::ok("text/plain; version=0.0.4; charset=utf-8", body.into_bytes()))
    }
}
