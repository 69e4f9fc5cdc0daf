//! Which answer a request head gets and which app an upgrade runs: the path
//! table of PROTOCOL.md §5, plain responses, and hand-off to the upgrade
//! validator. A protocol served over HTTP adds its rows here. No sockets.

use super::echo::Echo;
use super::engineio::{self, EngineWebSocket, Flavor, PollRequest, Polling};
use super::json_chat::JsonChat;
use super::line_chat::LineChat;
use super::sockjs::{self as sockjs_app, SessionHandler, SessionRequest, SockJsWebSocket};
use super::static_files::{CLIENT_PREFIX, StaticFile};
use super::status::MetricsPage;
use super::stomp::{Carried, Stomp};
use super::{App, AppCtx, HttpHandler, HttpResponse};
use crate::chat::normalize_namespace;
use crate::config::Limits;
use crate::ids::{ConnId, Endpoint};
use crate::proto::engineio::{Query, RequestError, Transport, check_protocol, check_transport};
use crate::proto::http::HttpConfig;
use crate::proto::http::body::BodyKind;
use crate::proto::http::request::{HttpError, Request};
use crate::proto::http::response::{error_response, write_response};
use crate::proto::http::upgrade::accept_upgrade;
use crate::proto::sockjs::{self, RequestHeaders};
use crate::proto::ws::DecoderLimits;

/// The built-in web chat page served at `/`: one self-contained file that
/// speaks the JSON event protocol at `/ws`.
pub const INDEX_HTML: &str = include_str!("../web/index.html");

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const TEXT_HTML: &str = "text/html; charset=utf-8";

/// A known path.
enum Route<'a> {
    Index,
    /// A file of `--static-dir` or `--socketio-client`.
    File(&'a StaticFile),
    Healthz,
    Metrics,
    Ws(WsEndpoint),
    #[cfg(test)]
    Test(Service),
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
    /// `/socket.io/` (or the test suite's `/engine.io/`) with
    /// `transport=websocket`: a new session, or the upgrade of `sid`.
    Engine { flavor: Flavor, sid: Option<String> },
    /// `/stomp`: STOMP frames in WebSocket messages.
    Stomp,
    /// A SockJS service's WebSocket: its session transport
    /// (`/<server>/<session>/websocket`, SockJS frames), or with `raw` the
    /// plain `/websocket` straight to the service's app.
    SockJs { service: sockjs_app::Service, raw: bool },
}

impl WsEndpoint {
    /// Whether the endpoint answers a permessage-deflate offer. Engine.IO's
    /// declines, as the reference server does (`perMessageDeflate: false`):
    /// clients such as Node's `ws` then queue even short messages behind
    /// their compressor, which reorders the upgrade's `5` packet against the
    /// polling requests the protocol expects it to precede.
    pub fn compresses(&self) -> bool {
        !matches!(self, WsEndpoint::Engine { .. })
    }

    /// The subprotocols this endpoint speaks, most preferred first.
    pub fn subprotocols(&self) -> &'static [&'static str] {
        match self {
            // The highest STOMP version the client offers (stompjs offers all three).
            WsEndpoint::Stomp => &["v12.stomp", "v11.stomp", "v10.stomp"],
            WsEndpoint::Echo
            | WsEndpoint::Events { .. }
            | WsEndpoint::Legacy
            | WsEndpoint::Engine { .. }
            | WsEndpoint::SockJs { .. } => &[],
        }
    }
}

/// An accepted upgrade: the 101 to write and what to speak afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgrade {
    /// The complete `101 Switching Protocols` response.
    pub response: Vec<u8>,
    pub endpoint: WsEndpoint,
    /// `?name=` from the request target, percent-decoded.
    pub name: Option<String>,
    /// `Authorization: Bearer` or `?token=` (docs/AUTH.md), unchecked.
    pub token: Option<String>,
    /// The subprotocol the 101 selects.
    pub subprotocol: Option<String>,
    /// The valid permessage-deflate offers (the connection answers them).
    pub deflate_offers: Vec<crate::proto::ws::deflate::DeflateOffer>,
}

/// A request an app serves: the connection reads its body (under
/// `--max-body`), then hands both to the app's [`HttpHandler`], which may
/// answer at once or hold the answer (long-polling).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Service {
    /// `GET /metrics`: the counters at the moment of the request.
    Metrics,
    /// An Engine.IO long-polling request.
    Engine(PollRequest),
    /// A request on a SockJS session transport (sends, polling, streaming).
    SockJs(SessionRequest),
    /// `/api/*`: the server API (its handler answers 404 when it is off).
    Api(super::api::ApiRequest),
    /// Test-only: answers with the request body.
    #[cfg(test)]
    EchoBody,
    /// Test-only: holds the answer until woken or until its deadline.
    #[cfg(test)]
    Park,
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
    /// Read the body `body` announces, then let the [`Service`]'s handler
    /// ([`serve`]) answer; close after the answer when `close`.
    Serve { service: Service, body: BodyKind, head_only: bool, close: bool },
    /// Write `Upgrade::response` and switch the connection to WebSocket.
    Upgrade(Upgrade),
}

/// Answers one complete head, as returned by
/// [`HeadScanner::scan`](crate::proto::http::head::HeadScanner::scan); bytes after it
/// (pipelined requests, frames) are the caller's. Never panics.
///
/// Plain requests keep the connection open unless HTTP/1.0,
/// `Connection: close` or a body the route does not read. Any request offering
/// `Upgrade: websocket` either upgrades or is refused with `close` and
/// `handshake_failure`.
pub fn handle_head(head: &[u8], config: &HttpConfig) -> Outcome {
    let mut headers = vec![httparse::EMPTY_HEADER; config.max_headers];
    let req = match Request::parse(head, &mut headers) {
        Ok(req) => req,
        Err(e) => return refuse(e, false, true, false),
    };
    let head_only = req.method == "HEAD";
    // RFC 7230 §6.7: a server "MAY ignore a received Upgrade header field";
    // we only act on `websocket` (so `h2c` gets the plain answer).
    let wants_ws = req.has_token("Upgrade", "websocket");
    // Before routing: a request without a valid Host is malformed whatever
    // its path. The framing may be as broken as the Host, so close.
    if let Err(e) = check_host(&req) {
        return refuse(e, head_only, true, wants_ws);
    }
    let close_anyway = wants_ws || req.minor_version == 0 || req.has_token("Connection", "close");
    let close = close_anyway || req.has_body();
    let (path, query) = match req.target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (req.target, None),
    };
    if let Some(flavor) = engine_flavor(path, config) {
        return engine_outcome(&req, query, flavor, config, head_only, close);
    }
    if let Some((service, rest)) = sockjs_app::find_service(path, config.sockjs_test_suite) {
        return sockjs_outcome(&req, service, rest, query, config, head_only, close);
    }
    if let Some(endpoint) = super::api::endpoint(path)
        && !wants_ws
    {
        let authorization = req.single("Authorization").ok().flatten().map(<[u8]>::to_vec);
        let request = super::api::ApiRequest { endpoint, post: req.method == "POST", authorization };
        // The body is read, so it need not close the connection.
        return match req.body_kind() {
            Ok(body) => Outcome::Serve { service: Service::Api(request), body, head_only, close: close_anyway },
            Err(e) => refuse(e.into(), head_only, true, false),
        };
    }
    let (content_type, body): (&str, &[u8]) = match route(path, config) {
        None => return refuse(HttpError::NotFound, head_only, close, wants_ws),
        Some(Route::Ws(endpoint)) if wants_ws => {
            return upgrade_to(endpoint, &req, query, config, head_only);
        }
        #[cfg(test)]
        Some(Route::Test(service)) => {
            // The body is read, so it need not close the connection.
            return match req.body_kind() {
                Ok(body) => Outcome::Serve { service, body, head_only, close: close_anyway },
                Err(e) => refuse(e.into(), head_only, true, false),
            };
        }
        // `--allow-origin` guards a WebSocket path whatever the method: a
        // browser's WebSocket cannot read why its upgrade failed, so the web
        // page asks with a same-origin POST (which carries `Origin`): 403 or 405.
        Some(Route::Ws(_)) if origin_refused(&req, config) => {
            return refuse(HttpError::OriginNotAllowed, head_only, close, wants_ws);
        }
        Some(_) if !matches!(req.method, "GET" | "HEAD") => {
            return refuse(HttpError::MethodNotAllowed, head_only, close, wants_ws);
        }
        Some(Route::Ws(_)) => {
            return refuse(HttpError::UpgradeRequired, head_only, close, wants_ws);
        }
        Some(Route::Metrics) => {
            return Outcome::Serve { service: Service::Metrics, body: BodyKind::None, head_only, close };
        }
        Some(Route::File(file)) => {
            let response = file.respond(&req, head_only, close);
            return Outcome::Respond { response, close, handshake_failure: wants_ws };
        }
        Some(Route::Index) => (TEXT_HTML, INDEX_HTML.as_bytes()),
        Some(Route::Healthz) => (TEXT_PLAIN, b"ok\n"),
    };
    Outcome::Respond {
        response: write_response(200, &[], content_type, body, head_only, close),
        close,
        handshake_failure: wants_ws,
    }
}

/// The handler of a served request: one row per [`Service`].
pub fn serve(service: &Service) -> Box<dyn HttpHandler> {
    match service {
        Service::Metrics => Box::new(MetricsPage),
        Service::Api(request) => Box::new(super::api::ApiHandler::new(request.clone())),
        Service::Engine(request) => Box::new(Polling::new(request.clone())),
        Service::SockJs(request) => Box::new(SessionHandler::new(request.clone())),
        #[cfg(test)]
        Service::EchoBody => Box::new(test_services::EchoBody),
        #[cfg(test)]
        Service::Park => Box::new(test_services::Park::default()),
    }
}

/// The WebSocket decoder's limits on an endpoint: `--max-message`, and for
/// Engine.IO no more than its `maxPayload`, so a message past it is refused
/// (close 1009) before it is buffered whole.
pub fn decoder_limits(upgrade: &Upgrade, limits: &Limits) -> DecoderLimits {
    let mut decoder = limits.decoder;
    if let WsEndpoint::Engine { .. } = upgrade.endpoint {
        decoder.max_message_bytes = decoder.max_message_bytes.min(limits.engine.max_payload);
    }
    decoder
}

/// The app an accepted upgrade runs: one row per WebSocket endpoint.
pub fn open(upgrade: &Upgrade, conn: ConnId, cx: &mut AppCtx<'_>) -> Box<dyn App> {
    match &upgrade.endpoint {
        WsEndpoint::Echo => Box::new(Echo),
        WsEndpoint::Events { namespace } => {
            Box::new(JsonChat::open(conn, namespace, upgrade.name.as_deref(), upgrade.token.as_deref(), cx))
        }
        WsEndpoint::Legacy => Box::new(LineChat::open_with_token(conn, upgrade.token.as_deref(), cx)),
        WsEndpoint::Engine { flavor, sid } => Box::new(EngineWebSocket::open(*flavor, sid.as_deref(), conn, cx)),
        WsEndpoint::Stomp => {
            Box::new(Stomp::open(Endpoint::Conn(conn), Carried::WebSocket, cx).with_token(upgrade.token.as_deref()))
        }
        WsEndpoint::SockJs { service, raw: false } => Box::new(SockJsWebSocket::open(*service, conn, cx)),
        WsEndpoint::SockJs { service, raw: true } => service.open_upper(Endpoint::Conn(conn), Carried::WebSocket, cx),
    }
}

/// The Engine.IO path `path` is, if it is one.
fn engine_flavor(path: &str, config: &HttpConfig) -> Option<Flavor> {
    match path {
        "/socket.io/" => Some(Flavor::SocketIo),
        "/engine.io/" if config.engineio_test_suite => Some(Flavor::Echo),
        _ => None,
    }
}

/// A request to an Engine.IO path, checked as the reference server checks
/// it (transport, then Origin, then the protocol of a handshake, then the
/// method); refusals are its JSON errors.
fn engine_outcome(
    req: &Request<'_, '_>,
    query: Option<&str>,
    flavor: Flavor,
    config: &HttpConfig,
    head_only: bool,
    close: bool,
) -> Outcome {
    let wants_ws = req.has_token("Upgrade", "websocket");
    let origin = req.single("Origin").ok().flatten().and_then(|o| std::str::from_utf8(o).ok()).map(str::to_owned);
    // `close` covers an upgrade already: a refused one always closes.
    let fail = |error: RequestError| {
        let response = engineio::error_response(error, origin.as_deref()).encode(head_only, close);
        Outcome::Respond { response, close, handshake_failure: wants_ws }
    };
    let q = Query::parse(query);
    let transport = match check_transport(&q) {
        Ok(transport) => transport,
        Err(e) => return fail(e),
    };
    if let Some(origin) = &origin
        && !config.allow_origins.is_empty()
        && !config.allow_origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    {
        return fail(RequestError::Forbidden);
    }
    if q.sid.is_none()
        && let Err(e) = check_protocol(&q)
    {
        return fail(e);
    }
    let sid = q.sid.map(str::to_owned);
    if wants_ws {
        if transport != Transport::WebSocket {
            return fail(RequestError::BadRequest);
        }
        let endpoint = WsEndpoint::Engine { flavor, sid };
        return upgrade_to(endpoint, req, None, config, head_only);
    }
    if transport == Transport::WebSocket {
        return fail(RequestError::BadRequest);
    }
    let post = match (req.method, &sid) {
        ("GET", _) => false,
        ("POST", Some(_)) => true,
        ("OPTIONS", _) => {
            // A CORS preflight: what the polling requests may use.
            let mut headers = engineio::cors_headers(origin.as_deref());
            headers.push(("Access-Control-Allow-Methods", "GET, POST".to_owned()));
            if let Ok(Some(asked)) = req.single("Access-Control-Request-Headers")
                && let Ok(asked) = std::str::from_utf8(asked)
            {
                headers.push(("Access-Control-Allow-Headers", asked.to_owned()));
            }
            let response = HttpResponse { status: 204, headers, content_type: "", body: Vec::new() };
            return Outcome::Respond { response: response.encode(head_only, close), close, handshake_failure: false };
        }
        (_, None) => return fail(RequestError::BadHandshakeMethod),
        (_, Some(_)) => return fail(RequestError::BadRequest),
    };
    let body = match req.body_kind() {
        Ok(body) => body,
        Err(e) => return refuse(e.into(), head_only, true, false),
    };
    let request = PollRequest { flavor, post, sid, origin };
    // The body is read, so it need not close the connection.
    let close = req.minor_version == 0 || req.has_token("Connection", "close");
    Outcome::Serve { service: Service::Engine(request), body, head_only, close }
}

/// A request under a SockJS service's prefix: the core routes it; static
/// answers are written here, session transports are served
/// ([`SessionHandler`]), WebSocket ones upgrade.
fn sockjs_outcome(
    req: &Request<'_, '_>,
    service: sockjs_app::Service,
    rest: &str,
    query: Option<&str>,
    config: &HttpConfig,
    head_only: bool,
    close: bool,
) -> Outcome {
    let wants_ws = req.has_token("Upgrade", "websocket");
    let header = |name: &'static str| req.single(name).ok().flatten().and_then(|v| std::str::from_utf8(v).ok());
    let headers = RequestHeaders {
        origin: header("Origin"),
        cookie: header("Cookie"),
        request_headers: header("Access-Control-Request-Headers"),
        if_none_match: header("If-None-Match"),
        content_type: header("Content-Type"),
    };
    let options = service.options();
    let answer = |answer: sockjs::Answer| Outcome::Respond {
        response: sockjs_app::response(answer).encode(head_only, close),
        close,
        handshake_failure: wants_ws,
    };
    let websocket = |raw: bool| {
        if !options.websocket {
            return answer(sockjs::not_found());
        }
        if let Err(refusal) = sockjs::check_upgrade(header("Upgrade"), header("Connection")) {
            return answer(refusal.answer());
        }
        let endpoint = WsEndpoint::SockJs { service, raw };
        upgrade_to(endpoint, req, None, config, head_only)
    };
    let (session, transport) = match sockjs::route(rest, req.method) {
        sockjs::Route::Greeting => return answer(sockjs::greeting()),
        sockjs::Route::Info => return answer(sockjs::info(&headers, &options, sockjs_app::entropy())),
        sockjs::Route::Iframe => {
            return answer(sockjs::iframe(&headers, options.sockjs_url, sockjs_app::unix_now()));
        }
        sockjs::Route::Preflight { allow } => {
            return answer(sockjs::preflight(&headers, allow, sockjs_app::unix_now()));
        }
        sockjs::Route::MethodNotAllowed { allow } => return answer(sockjs::method_not_allowed(allow)),
        sockjs::Route::NotFound => return answer(sockjs::not_found()),
        sockjs::Route::RawWebSocket => return websocket(true),
        sockjs::Route::Session { session, transport, .. } => (session, transport),
    };
    if !sockjs_app::is_acceptable_session_id(session) {
        return answer(sockjs::not_found());
    }
    if transport == sockjs::Transport::WebSocket {
        return websocket(false);
    }
    let callback = match transport {
        sockjs::Transport::HtmlFile | sockjs::Transport::Jsonp => match sockjs::callback(query) {
            Ok(callback) => callback,
            Err(e) => return answer(e.answer()),
        },
        _ => String::new(),
    };
    let body = match req.body_kind() {
        Ok(body) => body,
        Err(e) => return refuse(e.into(), head_only, true, wants_ws),
    };
    let request = SessionRequest {
        service,
        session: session.to_owned(),
        transport,
        callback,
        origin: headers.origin.map(str::to_owned),
        cookie: headers.cookie.map(str::to_owned),
        content_type: headers.content_type.map(str::to_owned),
    };
    // The body is read, so it need not close the connection.
    let close = wants_ws || req.minor_version == 0 || req.has_token("Connection", "close");
    Outcome::Serve { service: Service::SockJs(request), body, head_only, close }
}

/// RFC 7230 §5.4: "A server MUST respond with a 400 (Bad Request) status
/// code to any HTTP/1.1 request message that lacks a Host header field and
/// to any request message that contains more than one Host header field".
/// HTTP/1.0 may omit it; an empty value is allowed here (a target without
/// authority) but not for an upgrade, which [`accept_upgrade`] checks.
fn check_host(req: &Request<'_, '_>) -> Result<(), HttpError> {
    match req.single("Host")? {
        None if req.minor_version >= 1 => Err(HttpError::MissingHeader("Host")),
        _ => Ok(()),
    }
}

/// An `Origin` is given and `--allow-origin` does not list it.
fn origin_refused(req: &Request<'_, '_>, config: &HttpConfig) -> bool {
    matches!(req.single("Origin"), Ok(Some(origin))
        if !config.allow_origins.is_empty()
            && !config.allow_origins.iter().any(|o| o.as_bytes().eq_ignore_ascii_case(origin)))
}

/// An upgrade to `endpoint`, validated (`?name=` read from `query` when
/// given), or its refusal; a refused upgrade always closes.
fn upgrade_to(
    endpoint: WsEndpoint,
    req: &Request<'_, '_>,
    query: Option<&str>,
    config: &HttpConfig,
    head_only: bool,
) -> Outcome {
    match accept_upgrade(req, query, config, endpoint.subprotocols()) {
        Ok(accepted) => Outcome::Upgrade(Upgrade {
            response: accepted.response,
            name: accepted.name,
            token: crate::auth::token_of_upgrade(query, req.single("Authorization").ok().flatten()),
            subprotocol: accepted.subprotocol,
            deflate_offers: if endpoint.compresses() { accepted.deflate_offers } else { Vec::new() },
            endpoint,
        }),
        Err(e) => refuse(e, head_only, true, true),
    }
}

fn refuse(error: HttpError, head_only: bool, close: bool, handshake_failure: bool) -> Outcome {
    Outcome::Respond { response: error_response(error, head_only, close), close, handshake_failure }
}

/// The route for a path (query already stripped); None is 404.
fn route<'a>(path: &str, config: &'a HttpConfig) -> Option<Route<'a>> {
    match path {
        "/" => Some(config.files.index().map_or(Route::Index, Route::File)),
        "/healthz" => Some(Route::Healthz),
        "/metrics" => Some(Route::Metrics),
        "/echo" if config.echo_enabled => Some(Route::Ws(WsEndpoint::Echo)),
        "/legacy" => Some(Route::Ws(WsEndpoint::Legacy)),
        "/stomp" => Some(Route::Ws(WsEndpoint::Stomp)),
        #[cfg(test)]
        "/test/echo-body" => Some(Route::Test(Service::EchoBody)),
        #[cfg(test)]
        "/test/park" => Some(Route::Test(Service::Park)),
        "/ws" => Some(Route::Ws(WsEndpoint::Events { namespace: "/".to_owned() })),
        // The client bundle's exact paths, before anything else under `/socket.io/`.
        _ if path.starts_with(CLIENT_PREFIX) => config.files.client_bundle(path).map(Route::File),
        // Soket's own paths win over files: `/ws/...` is the namespaces'.
        _ if !path.starts_with("/ws/") => config.files.site_file(path).map(Route::File),
        _ => {
            // PROTOCOL.md §1: `/ws/NAME` is `/NAME` where NAME follows the
            // room rules (the chat layer's, NFC included); "any other path
            // under `/ws/` is 404". Browsers percent-encode non-ASCII path
            // bytes, so decode before checking.
            let raw = path.strip_prefix("/ws/")?;
            let bytes = crate::proto::http::request::percent_decode(raw.as_bytes())?;
            let namespace = normalize_namespace(std::str::from_utf8(&bytes).ok()?)?;
            Some(Route::Ws(WsEndpoint::Events { namespace }))
        }
    }
}

/// Handlers that exercise request bodies and held answers in tests.
#[cfg(test)]
pub(crate) mod test_services {
    use std::time::{Duration, Instant};

    use crate::app::{AppCtx, HttpHandler, HttpReply, HttpResponse};
    use crate::ids::ConnId;

    pub struct EchoBody;

    impl HttpHandler for EchoBody {
        fn handle_request(&mut self, _conn: ConnId, body: &[u8], _cx: &mut AppCtx<'_>) -> HttpReply {
            HttpReply::Respond(HttpResponse::ok("application/octet-stream", body.to_vec()))
        }
    }

    /// Holds its answer for up to a second, like a long-polling GET; a wake
    /// answers `woken`, the deadline `timeout`.
    #[derive(Default)]
    pub struct Park {
        deadline: Option<Instant>,
    }

    impl HttpHandler for Park {
        fn handle_request(&mut self, _conn: ConnId, _body: &[u8], cx: &mut AppCtx<'_>) -> HttpReply {
            self.deadline = Some(cx.now + Duration::from_secs(1));
            HttpReply::Park
        }

        fn poll_reply(&mut self, cx: &mut AppCtx<'_>) -> HttpReply {
            let text: &[u8] = if self.deadline.is_some_and(|d| cx.now >= d) { b"timeout" } else { b"woken" };
            HttpReply::Respond(HttpResponse::ok("text/plain", text.to_vec()))
        }

        fn poll_timeout(&self) -> Option<Instant> {
            self.deadline
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::app::sniff::{Sniff, sniff};
    use crate::proto::http::head::HeadScanner;
    use crate::proto::http::request::list_items;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn config() -> HttpConfig {
        HttpConfig {
            max_head_bytes: 8192,
            max_body_bytes: 1 << 20,
            max_headers: 32,
            allow_origins: vec![],
            echo_enabled: true,
            engineio_test_suite: false,
            sockjs_test_suite: false,
            files: Default::default(),
        }
    }

    fn upgrade_head(path: &str, extra: &str) -> String {
        format!(
            "GET {path} HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    /// A valid upgrade to `path` with header `drop` removed and `extra` lines added.
    fn upgrade_without(path: &str, drop: &str, extra: &str) -> String {
        let full = upgrade_head(path, "");
        let kept: String = full.split_inclusive("\r\n").filter(|l| !l.starts_with(&format!("{drop}:"))).collect();
        format!("{}\r\n{extra}\r\n", kept.trim_end_matches("\r\n"))
    }

    /// (status, close, handshake_failure, response text) of a Respond.
    fn respond(head: &str, config: &HttpConfig) -> (u16, bool, bool, String) {
        match handle_head(head.as_bytes(), config) {
            Outcome::Respond { response, close, handshake_failure } => {
                let text = String::from_utf8(response).unwrap();
                let status = text[9..12].parse().unwrap();
                assert!(text.contains("\r\nContent-Length: "), "{text}");
                (status, close, handshake_failure, text)
            }
            other => panic!("expected Respond, got {other:?}"),
        }
    }

    fn status(head: &str) -> u16 {
        respond(head, &config()).0
    }

    fn upgraded(head: &str, config: &HttpConfig) -> Upgrade {
        match handle_head(head.as_bytes(), config) {
            Outcome::Upgrade(u) => u,
            other => panic!("expected Upgrade, got {other:?}"),
        }
    }

    #[test]
    fn plain_endpoints() {
        let (s, close, hf, text) = respond("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", &config());
        assert_eq!((s, close, hf), (200, false, false));
        assert!(text.ends_with("Content-Length: 3\r\n\r\nok\n"), "{text}");
        assert!(text.contains("Content-Type: text/plain"));
        let (s, _, _, text) = respond("GET /?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", &config());
        assert_eq!(s, 200);
        assert!(text.contains("Content-Type: text/html") && text.ends_with(INDEX_HTML));
        // HEAD: same headers, no body.
        let (s, _, _, text) = respond("HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n", &config());
        assert_eq!(s, 200);
        assert!(text.ends_with("Content-Length: 3\r\n\r\n"), "{text}");
        let (s, _, _, text) = respond("HEAD /nope HTTP/1.1\r\nHost: a\r\n\r\n", &config());
        assert_eq!(s, 404);
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn engine_io_websockets_decline_permessage_deflate_as_the_reference_server_does() {
        let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
        let echo = upgraded(&upgrade_head("/echo", offer), &config());
        assert_eq!(echo.deflate_offers.len(), 1, "other endpoints take the offer");
        let engine = upgraded(&upgrade_head("/socket.io/?EIO=4&transport=websocket", offer), &config());
        assert!(matches!(engine.endpoint, WsEndpoint::Engine { .. }));
        assert!(engine.deflate_offers.is_empty(), "declined");
    }

    #[test]
    fn metrics() {
        let m = |h: &str| handle_head(h.as_bytes(), &config());
        let metrics =
            |head_only, close| Outcome::Serve { service: Service::Metrics, body: BodyKind::None, head_only, close };
        assert_eq!(m("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"), metrics(false, false));
        assert_eq!(m("HEAD /metrics HTTP/1.0\r\n\r\n"), metrics(true, true));
        assert_eq!(status("POST /metrics HTTP/1.1\r\nHost: a\r\n\r\n"), 405);
    }

    #[test]
    fn keep_alive_and_close() {
        let close = |h: &str| respond(h, &config()).1;
        assert!(!close("GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"));
        assert!(close("GET /healthz HTTP/1.0\r\n\r\n"));
        assert!(close("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        assert!(close("GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n"));
        assert!(close("GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n"));
        assert!(close("GET /healthz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"));
        assert!(!close("GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"));
        let (_, _, _, text) = respond("GET /healthz HTTP/1.0\r\n\r\n", &config());
        assert!(text.contains("\r\nConnection: close\r\n"));
    }

    #[test]
    fn host_is_required_once_on_http_1_1() {
        // RFC 7230 §5.4, for every path and method, before routing.
        for target in ["/", "/healthz", "/metrics", "/nope", "/ws"] {
            for method in ["GET", "HEAD", "POST"] {
                let missing = format!("{method} {target} HTTP/1.1\r\nX: 1\r\n\r\n");
                let (s, close, hf, text) = respond(&missing, &config());
                assert_eq!((s, close, hf), (400, true, false), "{missing}");
                // HEAD gets the same head without the reason.
                assert!(method == "HEAD" || text.ends_with("missing or empty Host header\n"), "{text}");
                let twice = format!("{method} {target} HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n");
                let (s, close, _, text) = respond(&twice, &config());
                assert_eq!((s, close), (400, true), "{twice}");
                assert!(method == "HEAD" || text.ends_with("more than one Host header\n"), "{text}");
                // HTTP/1.0 may omit it, but not repeat it.
                let old = format!("{method} {target} HTTP/1.0\r\n\r\n");
                assert_ne!(handle_head(old.as_bytes(), &config()), handle_head(missing.as_bytes(), &config()));
                let (s, ..) = respond(&format!("{method} {target} HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), &config());
                assert_eq!(s, 400);
            }
        }
        assert_eq!(respond("GET /healthz HTTP/1.0\r\n\r\n", &config()).0, 200);
        // An empty Host is allowed on a plain request (a target without authority).
        assert_eq!(respond("GET /healthz HTTP/1.1\r\nHost:\r\n\r\n", &config()).0, 200);
        // A refused upgrade without Host is a handshake failure.
        let (s, close, hf, _) = respond(&upgrade_without("/ws", "Host", ""), &config());
        assert_eq!((s, close, hf), (400, true, true));
    }

    #[test]
    fn routing_statuses() {
        assert_eq!(status("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"), 404);
        assert_eq!(status("POST /nope HTTP/1.1\r\nHost: a\r\n\r\n"), 404);
        assert_eq!(status("DELETE /healthz HTTP/1.1\r\nHost: a\r\n\r\n"), 405);
        let (_, _, _, text) = respond("POST / HTTP/1.1\r\nHost: a\r\n\r\n", &config());
        assert!(text.contains("\r\nAllow: GET, HEAD\r\n"));
        for path in ["/ws", "/ws/room", "/legacy", "/echo", "/ws?name=a"] {
            let (s, close, hf, text) = respond(&format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n"), &config());
            assert_eq!((s, close, hf), (426, false, false), "{path}");
            assert!(text.contains("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"));
        }
        for path in [
            "/ws/",
            "/ws/a/b",
            "/ws/.a",
            "/ws/a.",
            "/ws/a..b",
            "/ws/a%2Fb",
            "/ws/%zz",
            "/ws/a%20b",
            "/wsx",
            "/healthz/",
        ] {
            assert_eq!(status(&format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n")), 404, "{path}");
        }
        let long = "r".repeat(65);
        assert_eq!(status(&format!("GET /ws/{long} HTTP/1.1\r\nHost: a\r\n\r\n")), 404);
        let off = HttpConfig { echo_enabled: false, ..config() };
        assert_eq!(respond("GET /echo HTTP/1.1\r\nHost: a\r\n\r\n", &off).0, 404);
        assert_eq!(respond(&upgrade_head("/echo", ""), &off).0, 404);
    }

    #[test]
    fn malformed_and_too_many_headers() {
        assert_eq!(respond("GARBAGE\r\n\r\n", &config()).0, 400);
        assert_eq!(respond("GET / HTTP/1.1\r\nHost: a\r\nbad header\r\n\r\n", &config()).0, 400);
        assert_eq!(respond("\r\n\r\n", &config()).0, 400);
        assert!(respond("GET / HTTP/3.0\r\n\r\n", &config()).1);
        let few = HttpConfig { max_headers: 2, ..config() };
        let (s, close, _, text) = respond("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", &few);
        assert_eq!((s, close), (400, true));
        assert!(text.ends_with("too many header fields\n"));
    }

    #[test]
    fn upgrade_success() {
        let up = upgraded(&upgrade_head("/ws/caf%C3%A9?name=alice", ""), &config());
        assert_eq!(up.endpoint, WsEndpoint::Events { namespace: "/café".to_owned() });
        assert_eq!(up.name.as_deref(), Some("alice"));
        assert_eq!(up.subprotocol, None);
        assert_eq!(
            up.response,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
        assert_eq!(
            upgraded(&upgrade_head("/ws", ""), &config()).endpoint,
            WsEndpoint::Events { namespace: "/".to_owned() }
        );
        assert_eq!(upgraded(&upgrade_head("/echo", ""), &config()).endpoint, WsEndpoint::Echo);
        assert_eq!(upgraded(&upgrade_head("/legacy", ""), &config()).endpoint, WsEndpoint::Legacy);
        assert_eq!(upgraded(&upgrade_head("/ws?name=%ZZ", ""), &config()).name.as_deref(), Some("%ZZ"));
        // Case-insensitive names and tokens, lists with empty elements, LF-only lines.
        let h = format!(
            "GET /ws HTTP/1.1\nhost: a\nUPGRADE: WebSocket\nconnection: keep-alive, ,Upgrade\n\
             sec-websocket-key: {KEY}\nsec-websocket-version: 13\n\n"
        );
        assert_eq!(upgraded(&h, &config()).endpoint, WsEndpoint::Events { namespace: "/".to_owned() });
        let split = upgrade_without("/ws", "Connection", "Connection: keep-alive\r\nConnection: upgrade\r\n");
        upgraded(&split, &config());
        // Offers we don't take don't appear in the 101.
        let offers =
            "Sec-WebSocket-Protocol: chat, v12.stomp\r\nSec-WebSocket-Extensions: permessage-deflate; x=\"1\r\n";
        let up = upgraded(&upgrade_head("/ws", offers), &config());
        let text = String::from_utf8(up.response).unwrap();
        assert!(!text.contains("Sec-WebSocket-Protocol") && !text.contains("Sec-WebSocket-Extensions"));
    }

    #[test]
    fn upgrade_failures() {
        let cases: Vec<(String, u16, &str)> = vec![
            (upgrade_head("/ws", "").replacen("GET", "POST", 1), 400, "must be a GET"),
            (upgrade_head("/ws", "").replacen("HTTP/1.1", "HTTP/1.0", 1), 400, "requires HTTP/1.1"),
            (upgrade_without("/ws", "Host", ""), 400, "missing or empty Host"),
            (upgrade_without("/ws", "Host", "Host: \r\n"), 400, "missing or empty Host"),
            (upgrade_head("/ws", "Host: b\r\n"), 400, "more than one Host"),
            (upgrade_without("/ws", "Connection", ""), 400, "lacks the upgrade token"),
            (upgrade_without("/ws", "Connection", "Connection: keep-alive\r\n"), 400, "lacks the upgrade token"),
            (upgrade_without("/ws", "Sec-WebSocket-Key", ""), 400, "missing or empty Sec-WebSocket-Key"),
            (upgrade_without("/ws", "Sec-WebSocket-Key", "Sec-WebSocket-Key:\r\n"), 400, "missing or empty"),
            (upgrade_head("/ws", &format!("Sec-WebSocket-Key: {KEY}\r\n")), 400, "more than one Sec-WebSocket-Key"),
            (upgrade_without("/ws", "Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAA\r\n"), 400, "16 bytes"),
            (
                upgrade_without("/ws", "Sec-WebSocket-Key", "Sec-WebSocket-Key: !!!notbase64!!!!!!!!!!!\r\n"),
                400,
                "16 bytes",
            ),
            (upgrade_without("/ws", "Sec-WebSocket-Version", ""), 400, "missing or empty Sec-WebSocket-Version"),
            (upgrade_head("/ws", "Sec-WebSocket-Version: 13\r\n"), 400, "more than one Sec-WebSocket-Version"),
            (upgrade_without("/ws", "Sec-WebSocket-Version", "Sec-WebSocket-Version: 8\r\n"), 426, "use 13"),
            (upgrade_head("/ws", "Content-Length: 3\r\n"), 400, "body"),
            (upgrade_head("/ws", "Origin: a\r\nOrigin: b\r\n"), 400, "more than one Origin"),
            (upgrade_head("/ws/a/b", ""), 404, "not found"),
        ];
        for (head, want, reason) in cases {
            let (s, close, hf, text) = respond(&head, &config());
            assert_eq!((s, close, hf), (want, true, true), "{head}");
            assert!(text.contains(reason), "{reason} not in {text}");
            assert!(text.contains("Content-Type: text/plain"));
        }
        let (_, _, _, text) =
            respond(&upgrade_without("/ws", "Sec-WebSocket-Version", "Sec-WebSocket-Version: 8\r\n"), &config());
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    }

    #[test]
    fn origin_policy() {
        let strict = HttpConfig { allow_origins: vec!["https://Chat.example".to_owned()], ..config() };
        upgraded(&upgrade_head("/ws", "Origin: https://chat.EXAMPLE\r\n"), &strict);
        upgraded(&upgrade_head("/ws", ""), &strict);
        upgraded(&upgrade_head("/ws", "Origin: https://evil.example\r\n"), &config());
        let (s, close, hf, _) = respond(&upgrade_head("/ws", "Origin: https://evil.example\r\n"), &strict);
        assert_eq!((s, close, hf), (403, true, true));
        // The web page's probe: a plain request tells a refused origin (403)
        // from an allowed one (405, 426) without upgrading.
        let post =
            |origin: &str| format!("POST /ws HTTP/1.1\r\nHost: a\r\nOrigin: {origin}\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(respond(&post("https://evil.example"), &strict).0, 403);
        assert_eq!(respond(&post("https://chat.example"), &strict).0, 405);
        assert_eq!(respond(&post("https://evil.example"), &config()).0, 405);
        assert_eq!(respond("GET /ws HTTP/1.1\r\nHost: a\r\nOrigin: https://evil.example\r\n\r\n", &strict).0, 403);
        assert_eq!(respond("GET /ws HTTP/1.1\r\nHost: a\r\n\r\n", &strict).0, 426);
        assert_eq!(respond(&post("https://evil.example").replace("/ws", "/ws/a..b"), &strict).0, 404);
    }

    #[test]
    fn other_upgrades_get_plain_answers() {
        let h2c = |path: &str| {
            format!("GET {path} HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n")
        };
        assert_eq!(respond(&h2c("/ws"), &config()).0, 426);
        assert_eq!(respond(&h2c("/healthz"), &config()).0, 200);
        // A WebSocket upgrade to a plain path is refused with the plain answer.
        let (s, close, hf, _) = respond(&upgrade_head("/healthz", ""), &config());
        assert_eq!((s, close, hf), (200, true, true));
    }

    #[test]
    fn pipelined_requests() {
        let mut input = upgrade_head("/ws", "").into_bytes();
        let head_len = input.len();
        input.extend_from_slice(b"\x81\x85frame");
        let mut scanner = HeadScanner::default();
        assert_eq!(scanner.scan(&input, 8192), Ok(Some(head_len)));
        upgraded(std::str::from_utf8(&input[..head_len]).unwrap(), &config());

        let two = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut scanner = HeadScanner::default();
        let n = scanner.scan(two, 8192).unwrap().unwrap();
        assert_eq!(respond(std::str::from_utf8(&two[..n]).unwrap(), &config()).0, 200);
        scanner.reset();
        let rest = &two[n..];
        let m = scanner.scan(rest, 8192).unwrap().unwrap();
        assert_eq!(m, rest.len());
        assert_eq!(respond(std::str::from_utf8(rest).unwrap(), &config()).0, 404);
    }

    /// Whether `run` costs linear time, measured on inputs built by `input`
    /// of sizes `n` and `8 * n`: the larger must cost under 24 times the
    /// time (linear work costs ~8 times, quadratic ~64). Keep `n` small so
    /// that quadratic work shows as a failed assertion, not a hang.
    ///
    /// Timing is noisy on a shared machine, so the runs alternate sizes
    /// (a burst of load hits both), each size keeps its fastest run (what
    /// the code costs; the rest is other load), and a failed comparison is
    /// measured again: linear code passes one of three, quadratic none.
    fn grows_linearly<T>(n: usize, input: impl Fn(usize) -> T, run: impl Fn(&T)) -> bool {
        let (small, large) = (input(n), input(8 * n));
        let time = |x: &T| {
            let t = Instant::now();
            run(x);
            t.elapsed()
        };
        (0..3).any(|_| {
            let started = Instant::now();
            let (mut t_small, mut t_large) = (Duration::MAX, Duration::MAX);
            // A quadratic case is slow enough to judge from a few runs.
            for _ in 0..15 {
                t_small = t_small.min(time(&small));
                t_large = t_large.min(time(&large));
                if started.elapsed() > Duration::from_millis(500) {
                    break;
                }
            }
            t_large < t_small * 24
        })
    }

    #[test]
    fn hostile_inputs_are_linear() {
        let big = HttpConfig { max_head_bytes: 1 << 20, ..config() };
        type Head = fn(usize) -> String;
        let cases: [(&str, Head); 5] = [
            ("spaces", |n| upgrade_head("/ws", &format!("Sec-WebSocket-Protocol: a{}\r\n", " ".repeat(n)))),
            ("commas", |n| upgrade_head("/ws", &format!("Sec-WebSocket-Protocol: {}\r\n", ", ".repeat(n)))),
            ("escapes", |n| upgrade_head("/ws", &format!("Sec-WebSocket-Extensions: a; b=\"{}\r\n", "\\x".repeat(n)))),
            ("params", |n| upgrade_head("/ws", &format!("Sec-WebSocket-Extensions: a{}\r\n", "; b=c".repeat(n)))),
            ("empty list", |n| {
                upgrade_without("/ws", "Connection", &format!("Connection: {}upgrade\r\n", ",".repeat(n)))
            }),
        ];
        for (name, head) in cases {
            assert!(grows_linearly(2048, head, |h| drop(handle_head(h.as_bytes(), &big))), "{name}");
            // The answer is still right at a size where quadratic work would never finish.
            let up = upgraded(&head(100_000), &big);
            assert_eq!((up.endpoint, up.subprotocol), (WsEndpoint::Events { namespace: "/".to_owned() }, None));
        }
        // The check can fail: a tokenizer that rescans the value from its
        // start for every comma is caught.
        let rescanning = |value: &String| {
            for end in (0..value.len()).filter(|&i| value.as_bytes()[i] == b',') {
                std::hint::black_box(list_items(&value.as_bytes()[..end]).count());
            }
        };
        assert!(!grows_linearly(128, |n| ", ".repeat(n), rescanning));
    }

    #[test]
    fn never_panics_on_prefixes_and_junk() {
        let full = upgrade_head("/ws/x?name=%C3", "Origin: o\r\nSec-WebSocket-Extensions: a;b=\"c\"\r\n");
        for n in 0..full.len() {
            let prefix = &full.as_bytes()[..n];
            // The caller waits for more: the scanner finds no head yet ...
            assert_eq!(HeadScanner::default().scan(prefix, 8192), Ok(None), "{n}");
            // ... and a cut head handed over anyway is malformed, not half-handled.
            let (s, close, hf, text) = respond(std::str::from_utf8(prefix).unwrap(), &config());
            assert_eq!((s, close, hf), (400, true, false), "{n}");
            assert!(text.ends_with("malformed request head\n"), "{n}: {text}");
        }
        assert_eq!(HeadScanner::default().scan(full.as_bytes(), 8192), Ok(Some(full.len())));
        let up = upgraded(&full, &config());
        assert_eq!(up.endpoint, WsEndpoint::Events { namespace: "/x".to_owned() });
        // `%C3` alone is no UTF-8: the chat layer will refuse the name.
        assert_eq!(up.name.as_deref(), Some("\u{fffd}"));

        // Junk: either the legacy protocol takes it (PROTOCOL.md §2; sniffed
        // before HTTP), or HTTP answers 4xx and closes.
        let junk: &[(&[u8], Option<u16>)] = &[
            (b"\0\0\0\0", None),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", None),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", None),
            (b"GET\r\n\r\n", None),
            (b"GET /\xff\xfe HTTP/1.1\r\nHost: a\r\nX: \xff\r\n\r\n", Some(400)),
            (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", Some(400)),
            (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", Some(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX\0: 1\r\n\r\n", Some(400)),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: \0\r\n\r\n", Some(400)),
            (b"GET / HTTP/1.1\r\n: empty name\r\n\r\n", Some(400)),
            (b"GET /\r\n\r\n", Some(400)),
            (b"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n", Some(400)),
            (b"DELETE / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Some(400)),
        ];
        for (input, want) in junk {
            let shown = String::from_utf8_lossy(input);
            match want {
                None => assert_eq!(sniff(input), Sniff::Legacy, "{shown:?}"),
                Some(status) => {
                    assert_eq!(sniff(input), Sniff::Http, "{shown:?}");
                    match handle_head(input, &config()) {
                        Outcome::Respond { response, close, .. } => {
                            assert!(response.starts_with(format!("HTTP/1.1 {status} ").as_bytes()), "{shown:?}");
                            assert!(close, "{shown:?}");
                        }
                        other => panic!("{shown:?}: expected {status}, got {other:?}"),
                    }
                }
            }
        }
        // Junk the sniffer lets through still gets an answer, even with no room for fields.
        let none = HttpConfig { max_headers: 0, ..config() };
        assert_eq!(respond("\0\0\0\0", &none).0, 400);
        let (s, close, _, text) = respond("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &none);
        assert_eq!((s, close), (400, true));
        assert!(text.ends_with("too many header fields\n"));
    }

    #[test]
    fn namespace_paths_follow_the_chat_name_rule() {
        // `²` is No, not Nd: no namespace `/x²`.
        assert_eq!(status("GET /ws/x%C2%B2 HTTP/1.1\r\nHost: x\r\n\r\n"), 404);
        assert_eq!(status(&upgrade_head("/ws/x%C2%B2", "")), 404);
        // Ⅻ is Nl, not L.
        assert_eq!(status("GET /ws/%E2%85%AB HTTP/1.1\r\nHost: x\r\n\r\n"), 404);
        // `e` and a combining acute are `é` after NFC: the same namespace
        // as the composed spelling, stored composed.
        for path in ["/ws/cafe%CC%81", "/ws/caf%C3%A9"] {
            let up = upgraded(&upgrade_head(path, ""), &config());
            assert_eq!(up.endpoint, WsEndpoint::Events { namespace: "/caf\u{e9}".to_owned() }, "{path}");
        }
        let up = upgraded(&upgrade_head("/ws/%E9%83%A8%E5%B1%8B", ""), &config());
        assert_eq!(up.endpoint, WsEndpoint::Events { namespace: "/部屋".to_owned() });
        for bad in ["/ws/a+b", "/ws/%CC%81", "/ws/%C3"] {
            assert_eq!(status(&format!("GET {bad} HTTP/1.1\r\nHost: x\r\n\r\n")), 404, "{bad}");
        }
    }
}
