//! Counters and gauges of the daemon, rendered in the Prometheus text format.
//! Single-threaded, so plain integers: the reactor owns the only copy.

use std::fmt::Write as _;

/// Which protocol a connection speaks, for the connection gauge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Not yet known (waiting for the first bytes) or plain HTTP.
    Http,
    WebSocket,
    Legacy,
    /// STOMP over raw TCP.
    Stomp,
}

#[derive(Default, Debug, Clone)]
pub struct Metrics {
    pub connections_http: u64,
    pub connections_websocket: u64,
    pub connections_legacy: u64,
    pub connections_stomp: u64,
    pub connections_accepted_total: u64,
    pub connections_refused_total: u64,
    pub messages_in_total: u64,
    pub messages_out_total: u64,
    pub bytes_in_total: u64,
    pub bytes_out_total: u64,
    pub handshake_failures_total: u64,
    pub slow_consumer_disconnects_total: u64,
    /// Silent connections closed at the connection cap to make room.
    pub silent_evictions_total: u64,
    pub accept_errors_total: u64,
    /// Engine.IO sessions opened (polling or WebSocket).
    pub engineio_sessions_total: u64,
    /// Engine.IO sessions open now.
    pub engineio_sessions: u64,
    /// SockJS sessions opened (any transport, the raw WebSocket excepted).
    pub sockjs_sessions_total: u64,
    /// SockJS sessions open now.
    pub sockjs_sessions: u64,
    /// The Redis backplane's figures, when the node is part of a cluster
    /// (copied in by the reactor, which owns the backplane).
    pub cluster: Option<ClusterGauges>,
    /// Connection tokens the verifier accepted, refreshes included.
    pub tokens_accepted_total: u64,
    /// Tokens refused, by [`TokenRefusal`] (its `as usize`).
    pub tokens_refused_total: [u64; TokenRefusal::ALL.len()],
    /// Live connections cut at their token's expiry.
    pub tokens_expired_total: u64,
}

/// Why a connection token was refused: the `reason` label of
/// `soket_tokens_refused_total`, a fixed set so a flood of bad tokens
/// adds no series (docs/AUTH.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRefusal {
    /// Over `--token-max-bytes`.
    TooLarge,
    /// Not a JWT, or one naming another algorithm than the key's (`alg: none`,
    /// HS256 under a public key).
    Malformed,
    /// Signed with another key.
    BadSignature,
    /// No `exp` claim.
    MissingExp,
    Expired,
    NotYetValid,
    /// A `sub` that is no valid name, or a bad `rooms` claim.
    BadClaims,
    /// A refresh for another name than the connection's.
    WrongName,
}

impl TokenRefusal {
    pub const ALL: [TokenRefusal; 8] = [
        TokenRefusal::TooLarge,
        TokenRefusal::Malformed,
        TokenRefusal::BadSignature,
        TokenRefusal::MissingExp,
        TokenRefusal::Expired,
        TokenRefusal::NotYetValid,
        TokenRefusal::BadClaims,
        TokenRefusal::WrongName,
    ];

    /// The sample's labels, written out so rendering builds none.
    fn labels(self) -> &'static str {
        match self {
            TokenRefusal::TooLarge => "{reason=\"too_large\"}",
            TokenRefusal::Malformed => "{reason=\"malformed\"}",
            TokenRefusal::BadSignature => "{reason=\"bad_signature\"}",
            TokenRefusal::MissingExp => "{reason=\"missing_exp\"}",
            TokenRefusal::Expired => "{reason=\"expired\"}",
            TokenRefusal::NotYetValid => "{reason=\"not_yet_valid\"}",
            TokenRefusal::BadClaims => "{reason=\"bad_claims\"}",
            TokenRefusal::WrongName => "{reason=\"wrong_name\"}",
        }
    }
}

/// The backplane's link, traffic and view of the cluster.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterGauges {
    pub link_up: bool,
    pub reconnects_total: u64,
    pub published_total: u64,
    pub received_total: u64,
    pub backlog_bytes: u64,
    pub dropped_total: u64,
    pub duplicates_total: u64,
    pub nodes: u64,
}

/// Gauges owned by the chat hub, passed in when rendering.
#[derive(Default, Debug, Clone, Copy)]
pub struct ChatGauges {
    pub users: u64,
    pub rooms: u64,
    /// Users connected to other nodes of the cluster.
    pub remote_users: u64,
}

/// Gauges of the outgoing queues, passed in when rendering.
#[derive(Default, Debug, Clone, Copy)]
pub struct QueueGauges {
    /// Unsent bytes in all connections' queues.
    pub queued_bytes: u64,
    /// The most unsent bytes one connection's queue has held since start.
    pub high_water_bytes: u64,
}

impl Metrics {
    fn gauge_mut(&mut self, protocol: Protocol) -> &mut u64 {
        match protocol {
            Protocol::Http => &mut self.connections_http,
            Protocol::WebSocket => &mut self.connections_websocket,
            Protocol::Legacy => &mut self.connections_legacy,
            Protocol::Stomp => &mut self.connections_stomp,
        }
    }

    pub fn connection_opened(&mut self, protocol: Protocol) {
        *self.gauge_mut(protocol) += 1;
    }

    pub fn connection_closed(&mut self, protocol: Protocol) {
        let gauge = self.gauge_mut(protocol);
        *gauge = gauge.saturating_sub(1);
    }

    pub fn engineio_session_opened(&mut self) {
        self.engineio_sessions_total += 1;
        self.engineio_sessions += 1;
    }

    pub fn engineio_session_closed(&mut self) {
        self.engineio_sessions = self.engineio_sessions.saturating_sub(1);
    }

    pub fn sockjs_session_opened(&mut self) {
        self.sockjs_sessions_total += 1;
        self.sockjs_sessions += 1;
    }

    pub fn sockjs_session_closed(&mut self) {
        self.sockjs_sessions = self.sockjs_sessions.saturating_sub(1);
    }

    pub fn token_accepted(&mut self) {
        self.tokens_accepted_total += 1;
    }

    pub fn token_refused(&mut self, reason: TokenRefusal) {
        self.tokens_refused_total[reason as usize] += 1;
    }

    pub fn connection_switched(&mut self, from: Protocol, to: Protocol) {
        self.connection_closed(from);
        self.connection_opened(to);
    }

    /// The whole exposition, one family after another.
    pub fn render(&self, chat: ChatGauges, queues: QueueGauges) -> String {
        let mut out = String::with_capacity(2048);
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        family(
            "soket_connections",
            "gauge",
            "Open connections by protocol.",
            &[
                ("{protocol=\"legacy\"}", self.connections_legacy),
                ("{protocol=\"stomp\"}", self.connections_stomp),
                ("{protocol=\"websocket\"}", self.connections_websocket),
                ("{protocol=\"http\"}", self.connections_http),
            ],
        );
        family("soket_users", "gauge", "Registered chat users.", &[("", chat.users)]);
        family("soket_rooms", "gauge", "Rooms with at least one member.", &[("", chat.rooms)]);
        family(
            "soket_messages_total",
            "counter",
            "WebSocket and legacy messages received and sent.",
            &[("{direction=\"in\"}", self.messages_in_total), ("{direction=\"out\"}", self.messages_out_total)],
        );
        family(
            "soket_bytes_total",
            "counter",
            "Bytes read from and written to sockets.",
            &[("{direction=\"in\"}", self.bytes_in_total), ("{direction=\"out\"}", self.bytes_out_total)],
        );
        family(
            "soket_handshake_failures_total",
            "counter",
            "WebSocket upgrade requests refused.",
            &[("", self.handshake_failures_total)],
        );
        family(
            "soket_slow_consumer_disconnects_total",
            "counter",
            "Connections cut off because their outgoing queue passed --max-queued.",
            &[("", self.slow_consumer_disconnects_total)],
        );
        family("soket_queued_bytes", "gauge", "Unsent bytes in all outgoing queues.", &[("", queues.queued_bytes)]);
        family(
            "soket_queue_high_water_bytes",
            "gauge",
            "The most unsent bytes one connection's queue has held since start (bounded by --max-queued).",
            &[("", queues.high_water_bytes)],
        );
        family(
            "soket_connections_accepted_total",
            "counter",
            "Connections accepted.",
            &[("", self.connections_accepted_total)],
        );
        family(
            "soket_connections_refused_total",
            "counter",
            "Connections closed at once because --max-connections was reached.",
            &[("", self.connections_refused_total)],
        );
        family(
            "soket_engineio_sessions",
            "gauge",
            "Engine.IO (Socket.IO) sessions open, over any transport.",
            &[("", self.engineio_sessions)],
        );
        family(
            "soket_engineio_sessions_total",
            "counter",
            "Engine.IO (Socket.IO) sessions opened.",
            &[("", self.engineio_sessions_total)],
        );
        family(
            "soket_sockjs_sessions",
            "gauge",
            "SockJS sessions open, over any transport.",
            &[("", self.sockjs_sessions)],
        );
        family(
            "soket_sockjs_sessions_total",
            "counter",
            "SockJS sessions opened.",
            &[("", self.sockjs_sessions_total)],
        );
        family(
            "soket_silent_evictions_total",
            "counter",
            "Connections that had sent nothing, closed at --max-connections to make room for a new one.",
            &[("", self.silent_evictions_total)],
        );
        family(
            "soket_accept_errors_total",
            "counter",
            "Failed accept calls (such as running out of file descriptors).",
            &[("", self.accept_errors_total)],
        );
        family(
            "soket_tokens_accepted_total",
            "counter",
            "Connection tokens accepted, refreshes included.",
            &[("", self.tokens_accepted_total)],
        );
        let refused = TokenRefusal::ALL.map(|reason| (reason.labels(), self.tokens_refused_total[reason as usize]));
        family("soket_tokens_refused_total", "counter", "Connection tokens refused, by reason.", &refused);
        family(
            "soket_tokens_expired_total",
            "counter",
            "Live connections cut at their token's expiry.",
            &[("", self.tokens_expired_total)],
        );
        if let Some(cluster) = &self.cluster {
            family(
                "soket_redis_link_up",
                "gauge",
                "1 when both Redis connections are up and this node has resynced with the cluster.",
                &[("", u64::from(cluster.link_up))],
            );
            family(
                "soket_redis_reconnects_total",
                "counter",
                "Attempts to connect to Redis, the first included.",
                &[("", cluster.reconnects_total)],
            );
            family(
                "soket_backplane_messages_total",
                "counter",
                "Messages published to the backplane (out) and taken from other nodes (in).",
                &[("{direction=\"in\"}", cluster.received_total), ("{direction=\"out\"}", cluster.published_total)],
            );
            family(
                "soket_backplane_backlog_bytes",
                "gauge",
                "Bytes of messages held while Redis is unreachable (bounded by --redis-backlog).",
                &[("", cluster.backlog_bytes)],
            );
            family(
                "soket_backplane_dropped_total",
                "counter",
                "Messages not published because the backlog was full.",
                &[("", cluster.dropped_total)],
            );
            family(
                "soket_backplane_duplicates_total",
                "counter",
                "Messages from other nodes taken twice (published again after a lost confirmation) and dropped.",
                &[("", cluster.duplicates_total)],
            );
            family("soket_cluster_nodes", "gauge", "Live nodes known, this one included.", &[("", cluster.nodes)]);
            family(
                "soket_cluster_users",
                "gauge",
                "Registered users on every node, as this node knows them.",
                &[("", chat.users + chat.remote_users)],
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_required_family() {
        let mut metrics = Metrics::default();
        metrics.connection_opened(Protocol::Http);
        metrics.connection_switched(Protocol::Http, Protocol::WebSocket);
        metrics.bytes_in_total = 42;
        metrics.token_refused(TokenRefusal::BadSignature);
        metrics.token_accepted();
        metrics.tokens_expired_total += 1;
        let text = metrics.render(
            ChatGauges { users: 3, rooms: 1, remote_users: 0 },
            QueueGauges { queued_bytes: 5, high_water_bytes: 9 },
        );
        for line in [
            "soket_connections{protocol=\"websocket\"} 1",
            "soket_connections{protocol=\"http\"} 0",
            "soket_connections{protocol=\"legacy\"} 0",
            "soket_users 3",
            "soket_rooms 1",
            "soket_bytes_total{direction=\"in\"} 42",
            "soket_messages_total{direction=\"out\"} 0",
            "soket_handshake_failures_total 0",
            "soket_slow_consumer_disconnects_total 0",
            "# TYPE soket_users gauge",
            "soket_queued_bytes 5",
            "soket_queue_high_water_bytes 9",
            "soket_tokens_accepted_total 1",
            "soket_tokens_refused_total{reason=\"bad_signature\"} 1",
            "soket_tokens_refused_total{reason=\"wrong_name\"} 0",
            "soket_tokens_expired_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn token_refusals_index_their_own_counter() {
        for (index, reason) in TokenRefusal::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, index, "{reason:?}");
        }
    }
}
