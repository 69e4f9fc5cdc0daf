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
        HttpReply::Respond(HttpResponse::ok("text/plain; version=0.0.4; charset=utf-8", body.into_bytes()))
    }
}
