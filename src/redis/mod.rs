//! The Redis client pieces the cluster backplane drives from the reactor:
//! the RESP2 codec ([`resp`]) and the `--redis` URL ([`url`]).
//!
//! Sans-IO like [`crate::proto`]: no sockets, no clocks, no threads. The
//! reactor owns the two TCP connections (commands, pub/sub), feeds what it
//! reads into a [`ReplyDecoder`] and writes what [`encode_command`] appends.

pub mod resp;
pub mod url;

pub use resp::{Reply, ReplyDecoder, RespError, RespLimits, encode_command};
pub use url::{RedisUrl, UrlError};
