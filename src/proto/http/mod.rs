//! HTTP/1.1 on the shared port: request heads, plain endpoints and the
//! RFC 6455 §4.2 opening handshake. No sockets, no clocks.
//!
//! The caller feeds received bytes to [`HeadScanner::scan`], parses the head
//! it finds with [`Request::parse`](request::Request::parse), and validates
//! an upgrade with [`upgrade::accept_upgrade`]. Which path serves what is
//! the router's business ([`crate::app::router`]).

pub mod body;
pub mod head;
pub mod request;
pub mod response;
pub mod upgrade;

pub use body::{BodyDecoder, BodyError, BodyKind};
pub use head::HeadScanner;
pub use request::HttpError;
pub use response::{accept_key, error_response, write_response};
/// What the HTTP layer needs from the daemon's configuration.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Request line plus headers, in bytes. Over it: 431.
    pub max_head_bytes: usize,
    /// A request body, for the endpoints that read one. Over it: 413.
    pub max_body_bytes: usize,
    /// Most header fields in one request. Over it: 400.
    pub max_headers: usize,
    /// When non-empty, an upgrade whose `Origin` is not listed gets 403.
    pub allow_origins: Vec<String>,
    /// Whether `/echo` is served.
    pub echo_enabled: bool,
    /// Whether the Engine.IO echo for the protocol test suite is served at `/engine.io/`.
    pub engineio_test_suite: bool,
    /// Whether the SockJS test suite's services are served under `/sockjs-test/`.
    pub sockjs_test_suite: bool,
    /// `--static-dir` and `--socketio-client`, loaded at start-up.
    pub files: std::sync::Arc<crate::app::static_files::StaticFiles>,
}

/// A valid opening handshake: the 101 to write and what the request asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The complete `101 Switching Protocols` response.
    pub response: Vec<u8>,
    /// `?name=` from the request target, percent-decoded.
    pub name: Option<String>,
    /// The subprotocol the 101 selects (none until a protocol asks for one).
    pub subprotocol: Option<String>,
    /// The valid permessage-deflate offers, in the client's order; the
    /// connection chooses among them (its choice depends on the reactor's
    /// zlib state) and adds its answer to the 101.
    pub deflate_offers: Vec<crate::proto::ws::deflate::DeflateOffer>,
}
