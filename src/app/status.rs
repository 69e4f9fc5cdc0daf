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
        let body = cx.metrics.render(chat, cx.queues);
        HttpReply::Respond(HttpResponse::ok("text/plain; version=0.0.4; charset=utf-8", body.into_bytes()))
    }
}
