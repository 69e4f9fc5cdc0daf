//! What a connection borrows from the reactor while it handles an event,
//! and what the reactor owns to lend: one place for both, so the reactor and
//! the in-memory harness build connections' surroundings the same way.

use std::time::Instant;

use crate::app::AppCtx;
use crate::app::api::ApiState;
use crate::app::session::SessionTable;
use crate::chat::{Hub, Outbox};
use crate::config::{Config, Limits, Timeouts};
use crate::ids::ConnId;
use crate::metrics::{Metrics, QueueGauges};
use crate::proto::http::HttpConfig;
use crate::proto::ws::deflate::DeflateShared;
use crate::write_queue::BufPool;

/// What a connection borrows from the reactor while it handles an event.
pub struct Ctx<'a> {
    pub now: Instant,
    pub limits: &'a Limits,
    pub timeouts: &'a Timeouts,
    pub http: &'a HttpConfig,
    pub metrics: &'a mut Metrics,
    pub pool: &'a mut BufPool,
    pub hub: &'a mut Hub,
    /// Where the hub's deliveries collect; the reactor routes them after each event.
    pub outbox: &'a mut Outbox,
    pub sessions: &'a mut SessionTable,
    /// Connections whose held HTTP request may answer now.
    pub wakes: &'a mut Vec<ConnId>,
    /// The zlib state shared by permessage-deflate connections.
    pub deflate: &'a mut DeflateShared,
    pub api: &'a mut ApiState,
}

/// What the reactor lends every connection, owned in one place: the reactor
/// for all its connections, the harness for its one.
pub struct Shared {
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub http: HttpConfig,
    pub metrics: Metrics,
    pub pool: BufPool,
    pub hub: Hub,
    pub outbox: Outbox,
    pub sessions: SessionTable,
    pub wakes: Vec<ConnId>,
    pub deflate: DeflateShared,
    pub api: ApiState,
}

impl Shared {
    /// Everything fresh, under `config`.
    pub fn new(config: &Config) -> Shared {
        Shared {
            limits: config.limits(),
            timeouts: config.timeouts(),
            http: config.http(),
            metrics: Metrics::default(),
            pool: BufPool::default(),
            hub: {
                let mut hub = Hub::new(config.chat());
                if let Some(verifier) = &config.token_verifier {
                    hub.require_tokens(verifier.clone());
                }
                hub
            },
            outbox: Outbox::default(),
            sessions: SessionTable::default(),
            wakes: Vec::new(),
            deflate: DeflateShared::new(config.deflate()),
            api: ApiState::new(&config.server),
        }
    }

    /// What a connection borrows to handle one event at `now`.
    pub fn ctx(&mut self, now: Instant) -> Ctx<'_> {
        let Shared { limits, timeouts, http, metrics, pool, hub, outbox, sessions, wakes, deflate, api } = self;
        Ctx { now, limits, timeouts, http, metrics, pool, hub, outbox, sessions, wakes, deflate, api }
    }
}

impl Ctx<'_> {
    pub(crate) fn app(&mut self) -> AppCtx<'_> {
        self.split().2
    }

    /// The buffer pool (for the app's output) and what the app may use.
    pub(super) fn split(&mut self) -> (&mut BufPool, &mut DeflateShared, AppCtx<'_>) {
        self.hub.set_now(self.now);
        let cx = AppCtx {
            now: self.now,
            limits: self.limits,
            metrics: self.metrics,
            hub: self.hub,
            outbox: self.outbox,
            sessions: self.sessions,
            wakes: self.wakes,
            queues: QueueGauges {
                queued_bytes: self.pool.queued_total() as u64,
                high_water_bytes: self.pool.high_water() as u64,
            },
            api: self.api,
        };
        (self.pool, self.deflate, cx)
    }
}
