//! soket: a single-threaded real-time messaging daemon.
//!
//! One mio reactor serves one TCP port: the legacy line protocol of the
//! original chat server, HTTP/1.1, and RFC 6455 WebSocket. The protocol cores
//! under [`proto`] are sans-IO (bytes and events in, bytes and events out) so
//! they are unit-tested, fuzzed and benchmarked without sockets; only
//! [`reactor`] and [`conn`] touch the network.
#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod chat;
pub mod cluster;
pub mod config;
pub mod conn;
#[cfg(any(test, feature = "harness"))]
pub mod harness;
pub mod ids;
pub mod logging;
pub mod metrics;
pub mod proto;
pub mod reactor;
pub mod redis;
pub mod timers;
pub mod tls;
pub mod write_queue;

pub use config::{Config, Limits, Timeouts};
pub use reactor::{ReloadHandle, Server, ShutdownHandle};
