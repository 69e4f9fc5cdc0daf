//! SockJS protocol 0.3, server side: the URL scheme under a service prefix,
//! the frames (`o`, `h`, `a[...]`, `c[code,"reason"]`) and how each HTTP
//! transport wraps them, the bodies clients send, the static answers
//! (greeting, `/info`, the iframe page, CORS preflights, 404/405/500) and
//! [`SessionCore`], one session's state machine. Sans-IO: no sockets, no
//! clocks (every `Instant` is a parameter); which connection carries which
//! session is the caller's business.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use percent_encoding::percent_decode;
use serde_json::error::Category;

/// The answer to the service's root URL.
pub const GREETING: &str = "Welcome to SockJS!\n";

/// The bytes a streaming response may carry before the server ends it, so
/// the browser can drop what it has buffered (the protocol's default).
pub const DEFAULT_RESPONSE_LIMIT_BYTES: usize = 128 * 1024;

/// How long a receiving request may stay silent before it gets `h`.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(25);

/// How long a session without a receiving request lives on.
pub const DEFAULT_DISCONNECT_DELAY: Duration = Duration::from_secs(5);

/// One year, the cache lifetime of the static answers (the suite wants a
/// seven-digit `max-age`).
pub const CACHE_SECONDS: u64 = 365 * 24 * 3600;

/// The exact `Cache-Control` of an answer that must never be cached.
pub const NO_CACHE: &str = "no-store, no-cache, no-transform, must-revalidate, max-age=0";

/// The close the application asks for when it ends a session.
pub const GO_AWAY: CloseReason = CloseReason { code: 3000, reason: "Go away!" };
/// The answer to a second receiving request while one is attached.
pub const ANOTHER_CONNECTION: CloseReason = CloseReason { code: 2010, reason: "Another connection still open" };
/// The close a session gets when its receiving request dies mid-answer.
pub const INTERRUPTED: CloseReason = CloseReason { code: 1002, reason: "Connection interrupted" };

const TEXT_PLAIN: &str = "text/plain; charset=UTF-8";
const TEXT_HTML: &str = "text/html; charset=UTF-8";
const JAVASCRIPT: &str = "application/javascript; charset=UTF-8";
const JSON: &str = "application/json; charset=UTF-8";
const EVENT_STREAM: &str = "text/event-stream";

// Routing

/// A transport named by the last segment of a session URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    Xhr,
    XhrSend,
    XhrStreaming,
    EventSource,
    HtmlFile,
    Jsonp,
    JsonpSend,
}

impl Transport {
    pub fn from_name(name: &str) -> Option<Transport> {
        Some(match name {
            "websocket" => Transport::WebSocket,
            "xhr" => Transport::Xhr,
            "xhr_send" => Transport::XhrSend,
            "xhr_streaming" => Transport::XhrStreaming,
            "eventsource" => Transport::EventSource,
            "htmlfile" => Transport::HtmlFile,
            "jsonp" => Transport::Jsonp,
            "jsonp_send" => Transport::JsonpSend,
            _ => return None,
        })
    }

    /// The one method that uses the transport.
    pub fn method(self) -> &'static str {
        match self {
            Transport::WebSocket | Transport::EventSource | Transport::HtmlFile | Transport::Jsonp => "GET",
            Transport::Xhr | Transport::XhrSend | Transport::XhrStreaming | Transport::JsonpSend => "POST",
        }
    }

    /// Whether browsers reach it cross-origin with XMLHttpRequest, so it
    /// answers CORS preflights and carries CORS headers.
    pub fn is_xhr(self) -> bool {
        matches!(self, Transport::Xhr | Transport::XhrSend | Transport::XhrStreaming)
    }

    /// Whether a request on it carries messages to the server (and must
    /// find an existing session) rather than waiting for frames.
    pub fn is_send(self) -> bool {
        matches!(self, Transport::XhrSend | Transport::JsonpSend)
    }

    /// How a receiving request on it is answered; `None` for the send ones.
    pub fn receiving(self, response_limit_bytes: usize) -> Option<Receiving> {
        Some(match self {
            Transport::WebSocket => Receiving::WebSocket,
            Transport::Xhr | Transport::Jsonp => Receiving::Polling,
            Transport::XhrStreaming | Transport::EventSource | Transport::HtmlFile => {
                Receiving::Streaming { limit_bytes: response_limit_bytes }
            }
            Transport::XhrSend | Transport::JsonpSend => return None,
        })
    }

    /// The `Allow` list of a 405 on this transport.
    fn allow(self) -> &'static str {
        if self.is_xhr() { "OPTIONS, POST" } else { self.method() }
    }
}

/// What a request under the service prefix asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET /` (or the bare prefix): [`greeting`].
    Greeting,
    /// `GET /info`: [`info`].
    Info,
    /// `GET /iframe.html` or `/iframe-<version>.html`: [`iframe`].
    Iframe,
    /// `GET /websocket`: a plain WebSocket, each text message one
    /// application message, no SockJS frames.
    RawWebSocket,
    /// `/<server>/<session>/<transport>` with the transport's method. The
    /// server id is for load balancers and must not matter to the session.
    Session { server: &'a str, session: &'a str, transport: Transport },
    /// `OPTIONS` on `/info` or an xhr transport: [`preflight`] with `allow`.
    Preflight { allow: &'static str },
    /// A known URL with the wrong method: [`method_not_allowed`].
    MethodNotAllowed { allow: &'static str },
    /// [`not_found`].
    NotFound,
}

/// Routes a request by its path below the prefix (no query string) and its
/// method. WebSocket routes come back even when the service disables
/// WebSocket: the caller answers those with [`not_found`] then.
pub fn route<'a>(path: &'a str, method: &str) -> Route<'a> {
    let only = |wanted: &'static str, route: Route<'a>| {
        if method == wanted { route } else { Route::MethodNotAllowed { allow: wanted } }
    };
    match path {
        "" | "/" => return only("GET", Route::Greeting),
        "/info" => {
            return match method {
                "GET" => Route::Info,
                "OPTIONS" => Route::Preflight { allow: "OPTIONS, GET" },
                _ => Route::MethodNotAllowed { allow: "OPTIONS, GET" },
            };
        }
        "/websocket" => return only("GET", Route::RawWebSocket),
        _ if is_iframe_path(path) => return only("GET", Route::Iframe),
        _ => {}
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Route::NotFound;
    };
    let mut parts = rest.split('/');
    let (Some(server), Some(session), Some(name), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::NotFound;
    };
    let Some(transport) = Transport::from_name(name) else {
        return Route::NotFound;
    };
    if !is_valid_id(server) || !is_valid_id(session) {
        return Route::NotFound;
    }
    if method == transport.method() {
        Route::Session { server, session, transport }
    } else if method == "OPTIONS" && transport.is_xhr() {
        Route::Preflight { allow: "OPTIONS, POST" }
    } else {
        Route::MethodNotAllowed { allow: transport.allow() }
    }
}

/// Server and session ids: anything but empty, and no dot (the split on `/`
/// already keeps slashes out). Percent escapes stay as sent.
fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && !id.contains('.')
}

/// `/iframe.html`, or `/iframe-<version>.html` where the version is made of
/// the characters client versions use; case matters.
fn is_iframe_path(path: &str) -> bool {
    let Some(middle) = path.strip_prefix("/iframe").and_then(|p| p.strip_suffix(".html")) else {
        return false;
    };
    middle.is_empty()
        || middle.strip_prefix('-').is_some_and(|v| v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
}

/// Splits a request target into its path and query.
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

// Frames

/// A close frame's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: &'static str,
}

/// The open frame, the first thing a new session sends.
pub const OPEN_FRAME: &str = "o";
/// The heartbeat frame.
pub const HEARTBEAT_FRAME: &str = "h";

/// `c[code,"reason"]`.
pub fn close_frame(close: CloseReason) -> String {
    let mut frame = String::with_capacity(close.reason.len() + 12);
    let _ = write!(frame, "c[{},", close.code);
    push_json_string(&mut frame, close.reason, false);
    frame.push(']');
    frame
}

/// `a[...]`: the messages as a JSON array of strings.
pub fn message_frame<S: AsRef<str>>(messages: &[S]) -> String {
    let mut frame = String::from("a[");
    for (i, message) in messages.iter().enumerate() {
        if i > 0 {
            frame.push(',');
        }
        push_json_string(&mut frame, message.as_ref(), false);
    }
    frame.push(']');
    frame
}

/// Characters written as `\uXXXX` even though JSON allows them raw: some
/// browsers and proxies mangle them on the way (the protocol's list for
/// servers: C0 controls, zero-width and bidi marks, line and paragraph
/// separators, invisible operators, and the specials block).
fn is_server_escaped(c: char) -> bool {
    matches!(c, '\0'..='\x1f' | '\u{200c}'..='\u{200f}' | '\u{2028}'..='\u{202f}' | '\u{2060}'..='\u{206f}' | '\u{fff0}'..='\u{ffff}')
}

/// Appends `text` as a JSON string literal with SockJS's escaping. With
/// `html`, `<`, `>` and `&` are escaped too, so the literal can sit inside
/// a `<script>` element without ending it.
pub fn push_json_string(out: &mut String, text: &str, html: bool) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' if html => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if is_server_escaped(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// How a receiving transport carries frames in its response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wrap<'a> {
    /// One WebSocket text message per frame.
    WebSocket,
    /// `frame\n` (xhr polling and xhr_streaming).
    Xhr,
    /// `data: frame\r\n\r\n`.
    EventSource,
    /// A `<script>` element calling `p("frame")`.
    HtmlFile { callback: &'a str },
    /// `/**/callback("frame");\r\n`.
    Jsonp { callback: &'a str },
}

impl<'a> Wrap<'a> {
    /// The wrapping of a receiving transport; `callback` is the checked
    /// [`callback`] for htmlfile and jsonp. `None` for the send transports.
    pub fn for_transport(transport: Transport, callback: &'a str) -> Option<Wrap<'a>> {
        Some(match transport {
            Transport::WebSocket => Wrap::WebSocket,
            Transport::Xhr | Transport::XhrStreaming => Wrap::Xhr,
            Transport::EventSource => Wrap::EventSource,
            Transport::HtmlFile => Wrap::HtmlFile { callback },
            Transport::Jsonp => Wrap::Jsonp { callback },
            Transport::XhrSend | Transport::JsonpSend => return None,
        })
    }

    /// Appends one wrapped frame.
    pub fn push_frame(&self, frame: &str, out: &mut Vec<u8>) {
        match self {
            Wrap::WebSocket => out.extend_from_slice(frame.as_bytes()),
            Wrap::Xhr => {
                out.extend_from_slice(frame.as_bytes());
                out.push(b'\n');
            }
            Wrap::EventSource => {
                // Frames are JSON-escaped, so they hold no line break that
                // would end the event early.
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(frame.as_bytes());
                out.extend_from_slice(b"\r\n\r\n");
            }
            Wrap::HtmlFile { .. } => {
                let mut literal = String::with_capacity(frame.len() + 8);
                push_json_string(&mut literal, frame, true);
                out.extend_from_slice(b"<script>\np(");
                out.extend_from_slice(literal.as_bytes());
                out.extend_from_slice(b");\n</script>\r\n");
            }
            Wrap::Jsonp { callback } => {
                let mut literal = String::with_capacity(frame.len() + 8);
                push_json_string(&mut literal, frame, false);
                // `/**/` keeps a callback name from being read as something
                // else at the start of the file (the "Rosetta Flash" trick).
                out.extend_from_slice(b"/**/");
                out.extend_from_slice(callback.as_bytes());
                out.push(b'(');
                out.extend_from_slice(literal.as_bytes());
                out.extend_from_slice(b");\r\n");
            }
        }
    }
}

/// What a streaming transport sends before its first frame. xhr_streaming:
/// 2 KiB of `h` so browsers start handing over the body; eventsource: a
/// line break (an old Opera drops the first event otherwise); htmlfile:
/// the page that relays each `p(...)` to the client in the parent window,
/// padded past 1 KiB so browsers start rendering. Nothing for the others.
pub fn push_prelude(transport: Transport, callback: &str, out: &mut Vec<u8>) {
    match transport {
        Transport::XhrStreaming => {
            out.resize(out.len() + 2048, b'h');
            out.push(b'\n');
        }
        Transport::EventSource => out.extend_from_slice(b"\r\n"),
        Transport::HtmlFile => {
            let start = out.len();
            // The text is what SockJS clients expect, line for line.
            out.extend_from_slice(
                concat!(
                    "<!doctype html>\n",
                    "<html><head>\n",
                    "  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n",
                    "  <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n",
                    "</head><body><h2>Don't panic!</h2>\n",
                    "  <script>\n",
                    "    document.domain = document.domain;\n",
                    "    var c = parent."
                )
                .as_bytes(),
            );
            out.extend_from_slice(callback.as_bytes());
            out.extend_from_slice(
                concat!(
                    ";\n",
                    "    c.start();\n",
                    "    function p(d) {c.message(d);};\n",
                    "    window.onload = function() {c.stop();};\n",
                    "  </script>"
                )
                .as_bytes(),
            );
            let padded = (start + 1024).max(out.len());
            out.resize(padded, b' ');
            out.extend_from_slice(b"\r\n");
        }
        _ => {}
    }
}

/// Why a `c` (callback) query parameter is refused: HTTP 500 with the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackError {
    Required,
    Invalid,
}

/// The longest callback name taken; it is echoed into every htmlfile prelude
/// and jsonp answer.
pub const MAX_CALLBACK_BYTES: usize = 256;

impl CallbackError {
    pub fn message(self) -> &'static str {
        match self {
            CallbackError::Required => "\"callback\" parameter required",
            CallbackError::Invalid => "invalid \"callback\" parameter",
        }
    }

    pub fn answer(self) -> Answer {
        error_answer(self.message(), &[])
    }
}

/// The htmlfile and jsonp callback: the first `c` parameter of the query,
/// percent-decoded, non-empty, of letters, digits, `_`, `-` and `.` only
/// (so it can be written into JavaScript and HTML as is).
pub fn callback(query: Option<&str>) -> Result<String, CallbackError> {
    let raw = query_param(query, "c").ok_or(CallbackError::Required)?;
    let decoded = percent_decode(raw.as_bytes()).collect::<Vec<u8>>();
    if decoded.is_empty() {
        return Err(CallbackError::Required);
    }
    if decoded.len() > MAX_CALLBACK_BYTES || !decoded.iter().all(|&b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        return Err(CallbackError::Invalid);
    }
    String::from_utf8(decoded).map_err(|_| CallbackError::Invalid)
}

/// The raw value of the first `name` parameter of a query (`a&b=` style).
fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

// Incoming bodies

/// Why a send body is refused: HTTP 500 with the text; the session stays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// No body, no `d` form field, or JSON that is not an array of strings.
    PayloadExpected,
    /// Not JSON.
    BrokenJson,
}

impl BodyError {
    pub fn message(self) -> &'static str {
        match self {
            BodyError::PayloadExpected => "Payload expected.",
            BodyError::BrokenJson => "Broken JSON encoding.",
        }
    }

    /// The 500 answer, with the CORS headers of the request (xhr_send is
    /// read cross-origin).
    pub fn answer(self, request: &RequestHeaders<'_>) -> Answer {
        error_answer(self.message(), &cors_headers(request.origin))
    }
}

/// An xhr_send body: a JSON array of strings, whatever the Content-Type.
/// `[]` is a valid empty send (clients use it as a keep-alive).
pub fn decode_xhr_send(body: &[u8]) -> Result<Vec<String>, BodyError> {
    if body.is_empty() {
        return Err(BodyError::PayloadExpected);
    }
    serde_json::from_slice::<Vec<String>>(body).map_err(|e| match e.classify() {
        // Well-formed JSON of the wrong shape.
        Category::Data => BodyError::PayloadExpected,
        _ => BodyError::BrokenJson,
    })
}

/// A jsonp_send body: with a form Content-Type the JSON is the `d` field
/// (URL-encoded); with any other, the raw body as in xhr_send.
pub fn decode_jsonp_send(body: &[u8], content_type: Option<&str>) -> Result<Vec<String>, BodyError> {
    let is_form = content_type.is_some_and(|ct| {
        ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    if !is_form {
        return decode_xhr_send(body);
    }
    let field = body.split(|&b| b == b'&').find_map(|pair| pair.strip_prefix(b"d="));
    let Some(field) = field.filter(|f| !f.is_empty()) else {
        return Err(BodyError::PayloadExpected);
    };
    let plus_as_space: Vec<u8> = field.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
    let json: Vec<u8> = percent_decode(&plus_as_space).collect();
    decode_xhr_send(&json)
}

/// One text message on the SockJS WebSocket transport: a JSON array of
/// strings, or one JSON string. An empty message carries nothing. An error
/// means the connection must be dropped without a close frame.
pub fn decode_ws_message(text: &str) -> Result<Vec<String>, BodyError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let broken = |_| BodyError::BrokenJson;
    if text.starts_with('[') {
        serde_json::from_str::<Vec<String>>(text).map_err(broken)
    } else {
        serde_json::from_str::<String>(text).map(|m| vec![m]).map_err(broken)
    }
}

// Static answers and headers

/// A whole HTTP answer but for framing: the caller adds Content-Length (or
/// streams) and the connection headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// Content-Type among them, when there is a body type.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The value of a header, for tests and callers that add to it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The request headers the answers depend on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestHeaders<'a> {
    pub origin: Option<&'a str>,
    pub cookie: Option<&'a str>,
    /// `Access-Control-Request-Headers`.
    pub request_headers: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub content_type: Option<&'a str>,
}

/// A service's settings that show in answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceOptions<'a> {
    pub websocket: bool,
    /// Set `JSESSIONID` on session answers, for load balancers that stick
    /// on it.
    pub cookie_needed: bool,
    /// The SockJS client script the iframe page loads.
    pub sockjs_url: &'a str,
}

/// `Access-Control-Allow-Origin` echoing the Origin (`null` included:
/// browsers send it from `file:` pages and accept it back) with
/// credentials allowed, so cookies flow; `*` without credentials when
/// there is no Origin.
pub fn cors_headers(origin: Option<&str>) -> Vec<(&'static str, String)> {
    match origin.filter(|o| !o.is_empty() && !o.bytes().any(|b| b.is_ascii_control())) {
        Some(origin) => vec![
            ("Access-Control-Allow-Origin", origin.to_owned()),
            ("Access-Control-Allow-Credentials", "true".to_owned()),
            ("Vary", "Origin".to_owned()),
        ],
        None => vec![("Access-Control-Allow-Origin", "*".to_owned())],
    }
}

/// `Cache-Control` and `Expires` for a year; `now_unix_secs` is the time of
/// the answer.
pub fn cache_for_a_year(now_unix_secs: u64) -> Vec<(&'static str, String)> {
    vec![
        ("Cache-Control", format!("public, max-age={CACHE_SECONDS}")),
        ("Expires", http_date(now_unix_secs.saturating_add(CACHE_SECONDS))),
    ]
}

/// The `Set-Cookie` value a session answer carries when the service needs
/// the cookie: the client's own `JSESSIONID` echoed back, or `dummy`.
pub fn session_cookie(cookie_needed: bool, cookie_header: Option<&str>) -> Option<String> {
    if !cookie_needed {
        return None;
    }
    let theirs = cookie_header.and_then(|header| {
        header.split(';').find_map(|pair| pair.trim().strip_prefix("JSESSIONID=")).filter(|value| {
            // Only a value that is safe to write back as a cookie value.
            !value.is_empty()
                && value.len() <= 256
                && value.bytes().all(|b| b.is_ascii_graphic() && !b"\",;\\".contains(&b))
        })
    });
    Some(format!("JSESSIONID={};path=/", theirs.unwrap_or("dummy")))
}

/// An RFC 9110 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    // Days to a civil date, counting in 400-year eras from 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn plain(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Answer {
    Answer { status, headers: vec![("Content-Type", content_type.to_owned())], body: body.into() }
}

fn error_answer(message: &str, extra: &[(&'static str, String)]) -> Answer {
    let mut answer = plain(500, TEXT_PLAIN, message);
    answer.headers.extend_from_slice(extra);
    answer.headers.push(("Cache-Control", NO_CACHE.to_owned()));
    answer
}

/// `GET /`.
pub fn greeting() -> Answer {
    plain(200, TEXT_PLAIN, GREETING)
}

/// An unknown URL: 404, no body.
pub fn not_found() -> Answer {
    Answer { status: 404, headers: Vec::new(), body: Vec::new() }
}

/// A known URL with another method: 405 with `Allow`, no body and no
/// Content-Type.
pub fn method_not_allowed(allow: &'static str) -> Answer {
    Answer { status: 405, headers: vec![("Allow", allow.to_owned())], body: Vec::new() }
}

/// `GET /info`: what the service offers, and a random number for clients
/// without a good entropy source (`entropy` must be fresh each time).
/// Never cached, never sets a cookie.
pub fn info(request: &RequestHeaders<'_>, options: &ServiceOptions<'_>, entropy: u32) -> Answer {
    let body = format!(
        r#"{{"websocket":{},"cookie_needed":{},"origins":["*:*"],"entropy":{entropy}}}"#,
        options.websocket, options.cookie_needed
    );
    let mut answer = plain(200, JSON, body);
    answer.headers.extend(cors_headers(request.origin));
    answer.headers.push(("Cache-Control", NO_CACHE.to_owned()));
    answer
}

/// A CORS preflight (`OPTIONS`): 204, cacheable for a year, the methods in
/// `allow`, and the requested headers echoed when there are any.
pub fn preflight(request: &RequestHeaders<'_>, allow: &'static str, now_unix_secs: u64) -> Answer {
    let mut headers = cors_headers(request.origin);
    headers.extend(cache_for_a_year(now_unix_secs));
    headers.push(("Access-Control-Max-Age", CACHE_SECONDS.to_string()));
    headers.push(("Access-Control-Allow-Methods", allow.to_owned()));
    if let Some(asked) = request.request_headers.filter(|h| !h.trim().is_empty()) {
        headers.push(("Access-Control-Allow-Headers", asked.to_owned()));
    }
    Answer { status: 204, headers, body: Vec::new() }
}

/// The iframe page: SockJS's cross-domain bootstrap, loading the client
/// from `sockjs_url` (HTML-escaped here).
pub fn iframe_page(sockjs_url: &str) -> String {
    let mut url = String::with_capacity(sockjs_url.len());
    for c in sockjs_url.chars() {
        match c {
            '"' => url.push_str("&quot;"),
            '<' => url.push_str("&lt;"),
            '>' => url.push_str("&gt;"),
            '&' => url.push_str("&amp;"),
            c => url.push(c),
        }
    }
    // The text is what SockJS clients expect, line for line.
    format!(
        concat!(
            "<!DOCTYPE html>\n",
            "<html>\n",
            "<head>\n",
            "  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n",
            "  <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n",
            "  <script src=\"{}\"></script>\n",
            "  <script>\n",
            "    document.domain = document.domain;\n",
            "    SockJS.bootstrap_iframe();\n",
            "  </script>\n",
            "</head>\n",
            "<body>\n",
            "  <h2>Don't panic!</h2>\n",
            "  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>\n",
            "</body>\n",
            "</html>"
        ),
        url
    )
}

/// A strong ETag for a page: a 64-bit FNV-1a hash of it, stable across
/// restarts so caches stay warm.
pub fn etag(page: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in page.as_bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("\"{hash:016x}\"")
}

/// Whether an `If-None-Match` header names `etag` (or is `*`).
pub fn if_none_match_hits(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|h| {
        h.split(',').map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
    })
}

/// `GET /iframe*.html`: the page, cacheable for a year with its ETag, or
/// 304 without a body when the client has it.
pub fn iframe(request: &RequestHeaders<'_>, sockjs_url: &str, now_unix_secs: u64) -> Answer {
    let page = iframe_page(sockjs_url);
    let tag = etag(&page);
    let mut headers = cache_for_a_year(now_unix_secs);
    if if_none_match_hits(request.if_none_match, &tag) {
        headers.push(("ETag", tag));
        return Answer { status: 304, headers, body: Vec::new() };
    }
    headers.insert(0, ("Content-Type", TEXT_HTML.to_owned()));
    headers.push(("ETag", tag));
    Answer { status: 200, headers, body: page.into_bytes() }
}

/// The status line and headers of a session transport's answer (200, or
/// 204 for xhr_send), its body empty: a receiving transport's prelude and
/// frames follow ([`push_prelude`], [`SessionCore::poll_frame`]); a send
/// transport's body is already in (`ok` for jsonp_send). Never cached;
/// CORS on the xhr transports; the cookie when the service needs it.
pub fn transport_head(transport: Transport, request: &RequestHeaders<'_>, options: &ServiceOptions<'_>) -> Answer {
    let (status, content_type, body): (u16, &str, &[u8]) = match transport {
        Transport::Xhr | Transport::XhrStreaming | Transport::Jsonp => (200, JAVASCRIPT, b""),
        Transport::XhrSend => (204, TEXT_PLAIN, b""),
        Transport::JsonpSend => (200, TEXT_PLAIN, b"ok"),
        Transport::EventSource => (200, EVENT_STREAM, b""),
        Transport::HtmlFile => (200, TEXT_HTML, b""),
        // Its answer is the 101 of the WebSocket handshake.
        Transport::WebSocket => (101, "", b""),
    };
    let mut answer = Answer { status, headers: Vec::new(), body: body.to_vec() };
    if !content_type.is_empty() {
        answer.headers.push(("Content-Type", content_type.to_owned()));
    }
    if transport == Transport::WebSocket {
        return answer;
    }
    if transport.is_xhr() {
        answer.headers.extend(cors_headers(request.origin));
    }
    answer.headers.push(("Cache-Control", NO_CACHE.to_owned()));
    if let Some(cookie) = session_cookie(options.cookie_needed, request.cookie) {
        answer.headers.push(("Set-Cookie", cookie));
    }
    answer
}

/// Why a GET on a WebSocket URL is not a WebSocket handshake: 400 with the
/// text (proxies that rewrite `Connection` end up here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeRefusal {
    NotWebSocket,
    NotUpgradeConnection,
}

impl UpgradeRefusal {
    pub fn message(self) -> &'static str {
        match self {
            UpgradeRefusal::NotWebSocket => "Not a valid websocket request: Upgrade must be \"websocket\".",
            UpgradeRefusal::NotUpgradeConnection => "Not a valid websocket request: Connection must name \"Upgrade\".",
        }
    }

    pub fn answer(self) -> Answer {
        plain(400, TEXT_PLAIN, self.message())
    }
}

/// Checks `Upgrade` and `Connection` before the WebSocket handshake proper.
pub fn check_upgrade(upgrade: Option<&str>, connection: Option<&str>) -> Result<(), UpgradeRefusal> {
    if !upgrade.is_some_and(|u| u.trim().eq_ignore_ascii_case("websocket")) {
        return Err(UpgradeRefusal::NotWebSocket);
    }
    if !connection.is_some_and(|c| c.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))) {
        return Err(UpgradeRefusal::NotUpgradeConnection);
    }
    Ok(())
}

// Sessions

/// How a receiving request is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receiving {
    /// One frame, then the response ends (xhr, jsonp).
    Polling,
    /// Frames until `limit_bytes` of wrapped frames (prelude not counted)
    /// have gone out, or the close frame (xhr_streaming, eventsource,
    /// htmlfile).
    Streaming { limit_bytes: usize },
    /// Frames until the close frame (the SockJS WebSocket transport).
    WebSocket,
}

/// The times and caps a session runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Silence on a receiving request before `h` goes out.
    pub heartbeat: Duration,
    /// Life without a receiving request.
    pub disconnect_delay: Duration,
    /// Encoded bytes of messages waiting for a receiver; past it
    /// [`SessionCore::send`] refuses.
    pub max_queued_bytes: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            heartbeat: DEFAULT_HEARTBEAT,
            disconnect_delay: DEFAULT_DISCONNECT_DELAY,
            max_queued_bytes: 1 << 20,
        }
    }
}

/// A second receiving request while one is attached: answer it (after its
/// prelude, on a streaming transport) with the wrapped
/// `close_frame(ANOTHER_CONNECTION)` and end it; the session is untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy;

/// Why [`SessionCore::send`] dropped a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    Closed,
    /// Over [`SessionLimits::max_queued_bytes`]: the receiver is too slow.
    QueueFull,
}

#[derive(Clone, Copy, Debug)]
struct Receiver {
    mode: Receiving,
    sent_bytes: usize,
    heartbeat_at: Instant,
}

/// One SockJS session: the open frame once, messages queued for whichever
/// request receives next, heartbeats, one receiving request at a time, and
/// the close frame, which every later receiver gets again until the caller
/// drops the session ([`SessionCore::is_expired`]).
#[derive(Debug)]
pub struct SessionCore {
    limits: SessionLimits,
    opened: bool,
    close: Option<CloseReason>,
    /// Queued messages, encoded and joined with commas: the inside of the
    /// next `a[...]`.
    queued: String,
    receiver: Option<Receiver>,
    /// Since when no request receives.
    idle_since: Option<Instant>,
}

impl SessionCore {
    /// A new session, created by its first receiving request (which should
    /// [`attach`](Self::attach) right away).
    pub fn new(limits: SessionLimits, now: Instant) -> SessionCore {
        SessionCore { limits, opened: false, close: None, queued: String::new(), receiver: None, idle_since: Some(now) }
    }

    /// Attaches a receiving request.
    pub fn attach(&mut self, mode: Receiving, now: Instant) -> Result<(), Busy> {
        if self.receiver.is_some() {
            return Err(Busy);
        }
        self.receiver = Some(Receiver { mode, sent_bytes: 0, heartbeat_at: now + self.limits.heartbeat });
        self.idle_since = None;
        Ok(())
    }

    /// Appends the next frame for the attached request to `out`, wrapped.
    /// `None`: nothing to send now (or nobody attached); wait for
    /// [`poll_timeout`](Self::poll_timeout) or a [`send`](Self::send).
    /// `Some(true)`: the request's answer is complete and it is detached.
    /// Call in a loop until `None` or `Some(true)`.
    pub fn poll_frame(&mut self, now: Instant, wrap: &Wrap<'_>, out: &mut Vec<u8>) -> Option<bool> {
        let receiver = self.receiver.as_mut()?;
        let mut last = false;
        let frame: Cow<'static, str> = if !self.opened {
            self.opened = true;
            Cow::Borrowed(OPEN_FRAME)
        } else if !self.queued.is_empty() {
            let frame = format!("a[{}]", self.queued);
            self.queued = String::new();
            Cow::Owned(frame)
        } else if let Some(close) = self.close {
            last = true;
            Cow::Owned(close_frame(close))
        } else if now >= receiver.heartbeat_at {
            Cow::Borrowed(HEARTBEAT_FRAME)
        } else {
            return None;
        };
        let before = out.len();
        wrap.push_frame(&frame, out);
        receiver.sent_bytes = receiver.sent_bytes.saturating_add(out.len() - before);
        receiver.heartbeat_at = now + self.limits.heartbeat;
        last |= match receiver.mode {
            Receiving::Polling => true,
            Receiving::Streaming { limit_bytes } => receiver.sent_bytes >= limit_bytes,
            Receiving::WebSocket => false,
        };
        if last {
            self.detach(now);
        }
        Some(last)
    }

    /// The attached request ended without the session closing (a polling
    /// request answered elsewhere, say). No-op when none is attached.
    pub fn detach(&mut self, now: Instant) {
        if self.receiver.take().is_some() {
            self.idle_since = Some(now);
        }
    }

    /// The attached request's connection died before its answer was
    /// complete: messages may be lost, so the session closes with 1002.
    /// Returns whether this closed it (tell the application).
    pub fn receiver_lost(&mut self, now: Instant) -> bool {
        if self.receiver.is_none() {
            return false;
        }
        self.detach(now);
        let closes = self.close.is_none();
        if closes {
            self.close = Some(INTERRUPTED);
            self.queued.clear();
        }
        closes
    }

    /// Queues one application message for the next frame. Past
    /// [`SessionLimits::max_queued_bytes`] it is refused, unless the queue
    /// is empty: as on every soket queue, one message larger than the cap
    /// may wait alone (the message size limits bound it).
    pub fn send(&mut self, message: &str) -> Result<(), SendError> {
        if self.close.is_some() {
            return Err(SendError::Closed);
        }
        let before = self.queued.len();
        if before > 0 {
            self.queued.push(',');
        }
        push_json_string(&mut self.queued, message, false);
        if before > 0 && self.queued.len() > self.limits.max_queued_bytes {
            self.queued.truncate(before);
            return Err(SendError::QueueFull);
        }
        Ok(())
    }

    /// Closes the session: messages already queued still go out, then the
    /// close frame, to this receiver and every later one. The first close
    /// wins.
    pub fn close(&mut self, reason: CloseReason) {
        self.close.get_or_insert(reason);
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close
    }

    pub fn has_receiver(&self) -> bool {
        self.receiver.is_some()
    }

    /// Encoded bytes waiting for a receiver.
    pub fn queued_bytes(&self) -> usize {
        self.queued.len()
    }

    /// When something is due: the attached request's heartbeat, or the
    /// end of an unattached session's life.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (&self.receiver, self.idle_since) {
            (Some(receiver), _) => Some(receiver.heartbeat_at),
            (None, Some(since)) => Some(since + self.limits.disconnect_delay),
            (None, None) => None,
        }
    }

    /// Whether the session has gone without a receiving request for the
    /// disconnect delay: drop it (telling the application if it was not
    /// closed yet).
    pub fn is_expired(&self, now: Instant) -> bool {
        self.receiver.is_none() && self.idle_since.is_some_and(|since| now >= since + self.limits.disconnect_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("", "GET"), Route::Greeting);
        assert_eq!(route("/", "GET"), Route::Greeting);
        assert_eq!(route("/", "POST"), Route::MethodNotAllowed { allow: "GET" });
        assert_eq!(route("/info", "GET"), Route::Info);
        assert_eq!(route("/info", "OPTIONS"), Route::Preflight { allow: "OPTIONS, GET" });
        assert_eq!(route("/websocket", "GET"), Route::RawWebSocket);
        for not_found in ["/a", "/a.html", "//", "///", "/a/a", "/a/a/", "/a/", "/a/a/xhr/", "/a/a/nope", "x"] {
            assert_eq!(route(not_found, "GET"), Route::NotFound, "{not_found}");
        }
        let any = "abcdefgh_i-j%20";
        for (server, session) in [("a", "a1"), ("_", "_"), ("1", "7"), (any, any)] {
            let path = format!("/{server}/{session}/xhr");
            assert_eq!(route(&path, "POST"), Route::Session { server, session, transport: Transport::Xhr });
        }
        for bad in ["//", "/a./a", "/a/a.", "/./.", "/", "///"] {
            let path = format!("{bad}/xhr");
            assert_eq!(route(&path, "GET"), Route::NotFound, "{path}");
            assert_eq!(route(&path, "POST"), Route::NotFound, "{path}");
        }
    }

    #[test]
    fn transport_methods() {
        // Session routes borrow the path, so compare everything else by name.
        let s = |name: &str, method: &str| match route(&format!("/000/abc/{name}"), method) {
            Route::Session { transport, .. } => Ok(transport),
            other => Err(format!("{other:?}")),
        };
        let preflight = || Err(format!("{:?}", Route::Preflight { allow: "OPTIONS, POST" }));
        let not_allowed = |allow: &'static str| Err(format!("{:?}", Route::MethodNotAllowed { allow }));
        for name in ["xhr", "xhr_send", "xhr_streaming"] {
            assert_eq!(s(name, "POST"), Ok(Transport::from_name(name).unwrap()));
            assert_eq!(s(name, "OPTIONS"), preflight());
            assert_eq!(s(name, "GET"), not_allowed("OPTIONS, POST"));
        }
        for name in ["websocket", "eventsource", "htmlfile", "jsonp"] {
            assert_eq!(s(name, "GET"), Ok(Transport::from_name(name).unwrap()));
            assert_eq!(s(name, "POST"), not_allowed("GET"));
        }
        assert_eq!(s("jsonp_send", "POST"), Ok(Transport::JsonpSend));
        assert_eq!(s("jsonp_send", "GET"), not_allowed("POST"));
    }

    #[test]
    fn iframe_paths() {
        for ok in [
            "/iframe.html",
            "/iframe-a.html",
            "/iframe-.html",
            "/iframe-0.1.2.html",
            "/iframe-0.1.2abc-dirty.2144.html",
        ] {
            assert_eq!(route(ok, "GET"), Route::Iframe, "{ok}");
        }
        for bad in
            ["/iframe.htm", "/iframe", "/IFRAME.HTML", "/IFRAME", "/iframe.HTML", "/iframe.xml", "/iframe-/.html"]
        {
            assert_eq!(route(bad, "GET"), Route::NotFound, "{bad}");
        }
        assert_eq!(split_target("/iframe-a.html?t=1234"), ("/iframe-a.html", Some("t=1234")));
    }

    #[test]
    fn frames() {
        assert_eq!(close_frame(GO_AWAY), r#"c[3000,"Go away!"]"#);
        assert_eq!(close_frame(ANOTHER_CONNECTION), r#"c[2010,"Another connection still open"]"#);
        assert_eq!(close_frame(INTERRUPTED), r#"c[1002,"Connection interrupted"]"#);
        assert_eq!(message_frame(&["a", "b\"\\"]), r#"a["a","b\"\\"]"#);
        assert_eq!(message_frame::<&str>(&[]), "a[]");
        assert_eq!(message_frame(&["  \u{0}\n\r "]), r#"a["  \u0000\n\r "]"#);
    }

    #[test]
    fn server_escapes() {
        // Every character past U+00FF the protocol wants escaped comes out
        // as a lowercase \uXXXX, in order.
        let chars: String = (255..=0xffff_u32).filter_map(char::from_u32).filter(|&c| is_server_escaped(c)).collect();
        let expected: String = chars.chars().map(|c| format!("\\u{:04x}", u32::from(c))).collect();
        let mut out = String::new();
        push_json_string(&mut out, &chars, false);
        assert_eq!(out, format!("\"{expected}\""));
        // And the rest of Unicode passes through, readable by any JSON parser.
        let all: String = (0..=0x10ffff_u32).filter_map(char::from_u32).collect();
        let mut out = String::new();
        push_json_string(&mut out, &all, true);
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), all);
        assert!(!out.contains('<') && !out.contains('\u{2028}'));
    }

    #[test]
    fn wrappers() {
        let wrapped = |wrap: Wrap<'_>, frame: &str| {
            let mut out = Vec::new();
            wrap.push_frame(frame, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(wrapped(Wrap::Xhr, "o"), "o\n");
        assert_eq!(wrapped(Wrap::WebSocket, "o"), "o");
        assert_eq!(wrapped(Wrap::EventSource, r#"a["x"]"#), "data: a[\"x\"]\r\n\r\n");
        assert_eq!(
            wrapped(Wrap::HtmlFile { callback: "cb" }, r#"a["x"]"#),
            "<script>\np(\"a[\\\"x\\\"]\");\n</script>\r\n"
        );
        assert_eq!(
            wrapped(Wrap::HtmlFile { callback: "cb" }, r#"a["</script>"]"#),
            "<script>\np(\"a[\\\"\\u003c/script\\u003e\\\"]\");\n</script>\r\n"
        );
        assert_eq!(
            wrapped(Wrap::Jsonp { callback: "x" }, r#"c[3000,"Go away!"]"#),
            "/**/x(\"c[3000,\\\"Go away!\\\"]\");\r\n"
        );

        let prelude = |t: Transport| {
            let mut out = Vec::new();
            push_prelude(t, "callback", &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(prelude(Transport::XhrStreaming), format!("{}\n", "h".repeat(2048)));
        assert_eq!(prelude(Transport::EventSource), "\r\n");
        assert_eq!(prelude(Transport::Xhr), "");
        let html = prelude(Transport::HtmlFile);
        assert!(html.len() > 1024 && html.ends_with("\r\n"));
        assert!(html.starts_with("<!doctype html>\n"));
        assert!(html.trim_end().ends_with("    var c = parent.callback;\n    c.start();\n    function p(d) {c.message(d);};\n    window.onload = function() {c.stop();};\n  </script>"));
    }

    #[test]
    fn callbacks() {
        assert_eq!(callback(Some("c=%63allback")), Ok("callback".to_owned()));
        assert_eq!(callback(Some("t=1&c=a.b_C-9")), Ok("a.b_C-9".to_owned()));
        for missing in [None, Some(""), Some("t=1"), Some("c="), Some("c")] {
            assert_eq!(callback(missing), Err(CallbackError::Required), "{missing:?}");
        }
        for bad in ["%20", "*", "abc(", "abc%28", "%ff", "a%00"] {
            assert_eq!(callback(Some(&format!("c={bad}"))), Err(CallbackError::Invalid), "{bad}");
        }
        assert_eq!(callback(Some(&format!("c={}", "a".repeat(257)))), Err(CallbackError::Invalid));
        let answer = CallbackError::Required.answer();
        assert_eq!((answer.status, &answer.body[..]), (500, &b"\"callback\" parameter required"[..]));
        assert_eq!(CallbackError::Invalid.answer().body, b"invalid \"callback\" parameter");
    }

    #[test]
    fn send_bodies() {
        assert_eq!(decode_xhr_send(br#"["x"]"#), Ok(vec!["x".to_owned()]));
        assert_eq!(decode_xhr_send(b"[]"), Ok(vec![]));
        assert_eq!(decode_xhr_send(br#" [ "a" , "\u00e9\ud83d\ude00" ] "#), Ok(vec!["a".to_owned(), "é😀".to_owned()]));
        assert_eq!(decode_xhr_send(b""), Err(BodyError::PayloadExpected));
        assert_eq!(decode_xhr_send(br#"["x"#), Err(BodyError::BrokenJson));
        assert_eq!(decode_xhr_send(b"\xff"), Err(BodyError::BrokenJson));
        assert_eq!(decode_xhr_send(br#"{"a":1}"#), Err(BodyError::PayloadExpected));
        assert_eq!(decode_xhr_send(br#"[1]"#), Err(BodyError::PayloadExpected));
        let answer = BodyError::BrokenJson.answer(&RequestHeaders { origin: Some("test"), ..Default::default() });
        assert_eq!((answer.status, &answer.body[..]), (500, &b"Broken JSON encoding."[..]));
        assert_eq!(answer.header("Access-Control-Allow-Origin"), Some("test"));

        let form = Some("application/x-www-form-urlencoded");
        assert_eq!(decode_jsonp_send(b"d=%5B%22x%22%5D", form), Ok(vec!["x".to_owned()]));
        assert_eq!(decode_jsonp_send(b"d=%5B%5D", form), Ok(vec![]));
        assert_eq!(
            decode_jsonp_send(b"a=1&d=%5B%22a+b%22%5D", Some("Application/X-WWW-Form-Urlencoded; charset=x")),
            Ok(vec!["a b".to_owned()])
        );
        assert_eq!(decode_jsonp_send(b"d=%5B%22x", form), Err(BodyError::BrokenJson));
        for empty in [&b""[..], b"d=", b"p=p"] {
            assert_eq!(decode_jsonp_send(empty, form), Err(BodyError::PayloadExpected));
        }
        assert_eq!(decode_jsonp_send(br#"["%61bc"]"#, Some("text/plain")), Ok(vec!["%61bc".to_owned()]));
        assert_eq!(decode_jsonp_send(br#"["a"]"#, None), Ok(vec!["a".to_owned()]));
    }

    #[test]
    fn ws_messages() {
        assert_eq!(decode_ws_message(""), Ok(vec![]));
        assert_eq!(decode_ws_message("[]"), Ok(vec![]));
        assert_eq!(decode_ws_message(r#"["a","b"]"#), Ok(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(decode_ws_message(r#""a""#), Ok(vec!["a".to_owned()]));
        for broken in [r#"["a"#, "a", "[1]", "{}", r#""a"x"#] {
            assert_eq!(decode_ws_message(broken), Err(BodyError::BrokenJson), "{broken}");
        }
    }

    #[test]
    fn info_and_cors() {
        let options = ServiceOptions { websocket: true, cookie_needed: false, sockjs_url: "/sockjs.js" };
        let request = RequestHeaders { origin: Some("test"), cookie: Some("JSESSIONID=x"), ..Default::default() };
        let answer = info(&request, &options, 42);
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, br#"{"websocket":true,"cookie_needed":false,"origins":["*:*"],"entropy":42}"#);
        assert_eq!(answer.header("content-type"), Some("application/json; charset=UTF-8"));
        assert_eq!(answer.header("Cache-Control"), Some(NO_CACHE));
        assert_eq!(answer.header("Access-Control-Allow-Credentials"), Some("true"));
        assert_eq!(answer.header("Set-Cookie"), None);
        assert_eq!(answer.header("Expires"), None);

        let star = cors_headers(None);
        assert_eq!(star, vec![("Access-Control-Allow-Origin", "*".to_owned())]);
        assert_eq!(cors_headers(Some("null"))[0].1, "null");

        for origin in [Some("test"), Some("null")] {
            let request = RequestHeaders { origin, request_headers: Some("a, b, c"), ..Default::default() };
            let answer = preflight(&request, "OPTIONS, POST", 0);
            assert_eq!(answer.status, 204);
            assert!(answer.body.is_empty());
            assert_eq!(answer.header("Cache-Control"), Some("public, max-age=31536000"));
            assert_eq!(answer.header("Expires"), Some("Fri, 01 Jan 1971 00:00:00 GMT"));
            assert_eq!(answer.header("Access-Control-Max-Age"), Some("31536000"));
            assert_eq!(answer.header("Access-Control-Allow-Methods"), Some("OPTIONS, POST"));
            assert_eq!(answer.header("Access-Control-Allow-Headers"), Some("a, b, c"));
            assert_eq!(answer.header("Access-Control-Allow-Origin"), origin);
        }
        for asked in [None, Some("")] {
            let request = RequestHeaders { origin: Some("test"), request_headers: asked, ..Default::default() };
            assert_eq!(preflight(&request, "OPTIONS, POST", 0).header("Access-Control-Allow-Headers"), None);
        }
    }

    #[test]
    fn dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
    }

    #[test]
    fn cookies() {
        assert_eq!(session_cookie(false, Some("JSESSIONID=abc")), None);
        assert_eq!(session_cookie(true, None).as_deref(), Some("JSESSIONID=dummy;path=/"));
        assert_eq!(session_cookie(true, Some("a=1; JSESSIONID=abcdef")).as_deref(), Some("JSESSIONID=abcdef;path=/"));
        assert_eq!(session_cookie(true, Some("JSESSIONID=a;b")).as_deref(), Some("JSESSIONID=a;path=/"));
        assert_eq!(session_cookie(true, Some("JSESSIONID=")).as_deref(), Some("JSESSIONID=dummy;path=/"));
        assert_eq!(session_cookie(true, Some("JSESSIONID=\"x\"")).as_deref(), Some("JSESSIONID=dummy;path=/"));

        let options = ServiceOptions { websocket: true, cookie_needed: true, sockjs_url: "/s.js" };
        let request = RequestHeaders { origin: Some("test"), ..Default::default() };
        let xhr = transport_head(Transport::Xhr, &request, &options);
        assert_eq!(xhr.status, 200);
        assert_eq!(xhr.header("Content-Type"), Some("application/javascript; charset=UTF-8"));
        assert_eq!(xhr.header("Set-Cookie"), Some("JSESSIONID=dummy;path=/"));
        assert_eq!(xhr.header("Access-Control-Allow-Origin"), Some("test"));
        let send = transport_head(Transport::XhrSend, &request, &options);
        assert_eq!((send.status, send.header("Content-Type")), (204, Some("text/plain; charset=UTF-8")));
        let jsonp_send = transport_head(Transport::JsonpSend, &request, &options);
        assert_eq!((jsonp_send.status, &jsonp_send.body[..]), (200, &b"ok"[..]));
        assert_eq!(jsonp_send.header("Set-Cookie"), Some("JSESSIONID=dummy;path=/"));
        let es = transport_head(Transport::EventSource, &request, &options);
        assert_eq!(es.header("Content-Type"), Some("text/event-stream"));
        assert_eq!(es.header("Access-Control-Allow-Origin"), None);
        assert_eq!(es.header("Cache-Control"), Some(NO_CACHE));
    }

    #[test]
    fn iframe_caching() {
        let page = iframe_page("https://cdn.example/sockjs.min.js");
        assert!(page.starts_with("<!DOCTYPE html>\n") && page.ends_with("</html>"));
        assert!(page.contains("  <script src=\"https://cdn.example/sockjs.min.js\"></script>\n"));
        assert!(iframe_page("/a\"<").contains("src=\"/a&quot;&lt;\""));
        let first = iframe(&RequestHeaders::default(), "/s.js", 10);
        let second = iframe(&RequestHeaders::default(), "/s.js", 99);
        assert_eq!(first.status, 200);
        assert_eq!(first.header("Content-Type"), Some("text/html; charset=UTF-8"));
        assert_eq!(first.header("ETag"), second.header("ETag"));
        assert!(first.header("Expires").is_some() && first.header("Last-Modified").is_none());
        let tag = first.header("ETag").unwrap();
        let request = RequestHeaders { if_none_match: Some(tag), ..Default::default() };
        let cached = iframe(&request, "/s.js", 10);
        assert_eq!(cached.status, 304);
        assert!(cached.body.is_empty() && cached.header("Content-Type").is_none());
        assert!(if_none_match_hits(Some(&format!("\"x\", W/{tag}")), tag));
        assert!(!if_none_match_hits(Some("\"x\""), tag));
        assert_eq!(method_not_allowed("GET").header("Allow"), Some("GET"));
        assert!(
            method_not_allowed("GET").body.is_empty() && method_not_allowed("GET").header("Content-Type").is_none()
        );
        assert_eq!(greeting().body, b"Welcome to SockJS!\n");
    }

    #[test]
    fn upgrades() {
        assert_eq!(check_upgrade(Some("WebSocket"), Some("keep-alive, Upgrade")), Ok(()));
        assert_eq!(check_upgrade(None, None), Err(UpgradeRefusal::NotWebSocket));
        assert_eq!(check_upgrade(Some("WebSocket"), Some("close")), Err(UpgradeRefusal::NotUpgradeConnection));
        assert_eq!(UpgradeRefusal::NotWebSocket.answer().status, 400);
    }

    fn frames_of(core: &mut SessionCore, now: Instant) -> (Vec<u8>, Option<bool>) {
        let mut out = Vec::new();
        let mut last = None;
        while let Some(end) = core.poll_frame(now, &Wrap::Xhr, &mut out) {
            last = Some(end);
            if end {
                break;
            }
        }
        (out, last)
    }

    #[test]
    fn polling_session() {
        let t0 = Instant::now();
        let limits = SessionLimits::default();
        let mut core = SessionCore::new(limits, t0);
        core.attach(Receiving::Polling, t0).unwrap();
        assert_eq!(frames_of(&mut core, t0), (b"o\n".to_vec(), Some(true)));
        assert!(!core.has_receiver());
        core.send("a").unwrap();
        core.send("b\n").unwrap();
        core.attach(Receiving::Polling, t0).unwrap();
        assert_eq!(frames_of(&mut core, t0), (b"a[\"a\",\"b\\n\"]\n".to_vec(), Some(true)));

        // A poll with nothing to say waits, then gets a heartbeat.
        core.attach(Receiving::Polling, t0).unwrap();
        assert_eq!(core.attach(Receiving::Polling, t0), Err(Busy));
        assert_eq!(frames_of(&mut core, t0), (Vec::new(), None));
        assert_eq!(core.poll_timeout(), Some(t0 + limits.heartbeat));
        let t1 = t0 + limits.heartbeat;
        assert_eq!(frames_of(&mut core, t1), (b"h\n".to_vec(), Some(true)));

        // Unattached, the session expires after the disconnect delay.
        assert_eq!(core.poll_timeout(), Some(t1 + limits.disconnect_delay));
        assert!(!core.is_expired(t1 + limits.disconnect_delay - Duration::from_millis(1)));
        assert!(core.is_expired(t1 + limits.disconnect_delay));
    }

    #[test]
    fn close_is_remembered() {
        let t0 = Instant::now();
        let mut core = SessionCore::new(SessionLimits::default(), t0);
        core.close(GO_AWAY);
        assert_eq!(core.send("late"), Err(SendError::Closed));
        core.attach(Receiving::Polling, t0).unwrap();
        assert_eq!(frames_of(&mut core, t0).0, b"o\n");
        for _ in 0..2 {
            core.attach(Receiving::Polling, t0).unwrap();
            assert_eq!(frames_of(&mut core, t0), (b"c[3000,\"Go away!\"]\n".to_vec(), Some(true)));
        }
        // Streaming: open and close in one answer, which then ends.
        let mut core = SessionCore::new(SessionLimits::default(), t0);
        core.close(GO_AWAY);
        core.close(INTERRUPTED);
        core.attach(Receiving::Streaming { limit_bytes: 4096 }, t0).unwrap();
        assert_eq!(frames_of(&mut core, t0), (b"o\nc[3000,\"Go away!\"]\n".to_vec(), Some(true)));
    }

    #[test]
    fn streaming_budget() {
        let t0 = Instant::now();
        let mut core = SessionCore::new(SessionLimits::default(), t0);
        core.attach(Receiving::Streaming { limit_bytes: 4096 }, t0).unwrap();
        assert_eq!(frames_of(&mut core, t0), (b"o\n".to_vec(), Some(false)));
        let message = "x".repeat(128);
        for i in 0..31 {
            core.send(&message).unwrap();
            let (out, last) = frames_of(&mut core, t0);
            assert_eq!(out.len(), 134);
            assert_eq!(last, Some(i == 30), "message {i}");
        }
        assert!(!core.has_receiver());
    }

    #[test]
    fn lost_receiver_and_limits() {
        let t0 = Instant::now();
        let mut core = SessionCore::new(SessionLimits { max_queued_bytes: 10, ..Default::default() }, t0);
        core.attach(Receiving::Streaming { limit_bytes: 1 << 17 }, t0).unwrap();
        assert_eq!(frames_of(&mut core, t0).0, b"o\n");
        assert_eq!(core.attach(Receiving::Streaming { limit_bytes: 1 << 17 }, t0), Err(Busy));
        core.send("12345678").unwrap();
        assert_eq!(core.send("x"), Err(SendError::QueueFull));
        assert_eq!(core.queued_bytes(), 10);
        assert!(core.receiver_lost(t0));
        assert!(!core.receiver_lost(t0));
        core.attach(Receiving::Polling, t0).unwrap();
        assert_eq!(frames_of(&mut core, t0).0, b"c[1002,\"Connection interrupted\"]\n");

        // One message over the cap waits alone; nothing joins it.
        let mut core = SessionCore::new(SessionLimits { max_queued_bytes: 10, ..Default::default() }, t0);
        core.send(&"x".repeat(20)).unwrap();
        assert_eq!(core.queued_bytes(), 22);
        assert_eq!(core.send(""), Err(SendError::QueueFull));
    }
}
