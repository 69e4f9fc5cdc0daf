//! HTTP/1.1 on the shared port: request heads, plain endpoints and the
//! RFC 6455 §4.2 opening handshake. No sockets, no clocks.
//!
//! The caller feeds received bytes to [`HeadScanner::scan`], passes the head
//! it finds to [`handle_head`], and writes the [`Outcome`].

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
    /// Most header fields in one request. Over it: 400.
    pub max_headers: usize,
    /// When non-empty, an upgrade whose `Origin` is not listed gets 403.
    pub allow_origins: Vec<String>,
    /// Whether `/echo` is served.
    pub echo_enabled: bool,
}

/// The WebSocket endpoint an upgrade lands on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsEndpoint {
    /// `/echo`: every text and binary message sent back.
    Echo,
    /// `/ws` (namespace `/`) or `/ws/NAME` (namespace `/NAME`).
    Events { namespace: String },
    /// `/legacy`: the line protocol, one text frame per message.
    Legacy,
}

/// An accepted upgrade: the 101 to write and what to speak afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgrade {
    /// The complete `101 Switching Protocols` response.
    pub response: Vec<u8>,
    pub endpoint: WsEndpoint,
    /// `?name=` from the request target, percent-decoded.
    pub name: Option<String>,
    /// The subprotocol selected by the negotiation hook.
    pub subprotocol: Option<String>,
}

/// The answer to one complete request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Write `response`. When `close`, close the connection once it is flushed;
    /// otherwise wait for the next request on it (keep-alive).
    Respond {
        response: Vec<u8>,
        close: bool,
        /// The request tried to upgrade and was refused (counted in metrics).
        handshake_failure: bool,
    },
    /// `GET /metrics`: the caller renders the body and writes it with
    /// [`response::write_response`].
    Metrics { head_only: bool, close: bool },
    /// Write `Upgrade::response` and switch the connection to WebSocket.
    Upgrade(Upgrade),
}
