//! The server API (docs/SERVER.md): what an application backend asks of the
//! chat over HTTP, `POST /api/*` with a JSON body and `Authorization: apikey
//! KEY`. Absent (404, as any unknown path) unless `--api-key` or
//! `--api-key-file` is given.
//!
//! Bodies are bounded twice: the connection reads at most `--max-body`, and
//! an API body over `--api-max-body` is refused (413) before it is parsed.
//! Each body is deserialised into a typed struct; custom event `data` is
//! kept as raw JSON text after serde_json checked it (nesting depth
//! included), never as a `serde_json::Value` tree.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{AppCtx, HttpHandler, HttpReply, HttpResponse};
use crate::chat::{ChatError, HistoryConfig, ServerTarget, normalize_namespace};
use crate::config::{parse_duration, parse_size};
use crate::ids::ConnId;

const JSON: &str = "application/json";

/// The server API's and the history's flags (flattened into the daemon's).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ServerFlags {
    /// Turns on the server API (`/api/*`, docs/SERVER.md): requests must carry
    /// `Authorization: apikey KEY`. Without it (or --api-key-file) the paths are 404.
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,

    /// The API key, read from this file (surrounding whitespace removed), so it stays out of `ps`.
    #[arg(long, value_name = "FILE", conflicts_with = "api_key")]
    pub api_key_file: Option<PathBuf>,

    /// The largest API request body; over it: 413.
    #[arg(long, default_value = "64KiB", value_parser = parse_size)]
    pub api_max_body: usize,

    /// API requests per second (all clients together, a token bucket); over it: 429.
    #[arg(long, default_value_t = 100)]
    pub api_rate: u32,

    /// API requests allowed at once above --api-rate (the bucket's size).
    #[arg(long, default_value_t = 200)]
    pub api_burst: u32,

    /// Messages kept per room for `history` requests and recovery after a reconnect
    /// (docs/SERVER.md). 0: no history, at no cost.
    #[arg(long, default_value_t = 0)]
    pub history_size: usize,

    /// How long a room's message stays in its history (`0`: until pushed out by newer ones).
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub history_ttl: Duration,
}

impl ServerFlags {
    /// The API key, read from --api-key-file if that is how it is given.
    pub fn api_key(&self) -> Result<Option<String>, String> {
        if let Some(key) = &self.api_key {
            return if key.is_empty() { Err("--api-key: empty".into()) } else { Ok(Some(key.clone())) };
        }
        let Some(path) = &self.api_key_file else { return Ok(None) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--api-key-file {}: cannot read it: {e}", path.display()))?;
        let key = text.trim();
        if key.is_empty() {
            return Err(format!("--api-key-file {}: empty", path.display()));
        }
        Ok(Some(key.to_owned()))
    }

    /// Checks the values; run once before serving.
    pub fn validate(&self) -> Result<(), String> {
        self.api_key()?;
        if self.api_rate == 0 || self.api_burst == 0 || self.api_max_body == 0 {
            return Err("--api-rate, --api-burst and --api-max-body must not be 0".into());
        }
        Ok(())
    }

    /// The hub's history settings.
    pub fn history(&self) -> HistoryConfig {
        HistoryConfig { size: self.history_size, ttl: (!self.history_ttl.is_zero()).then_some(self.history_ttl) }
    }
}

/// The API's configuration and rate state, owned beside the hub.
#[derive(Debug)]
pub struct ApiState {
    key: Option<Box<[u8]>>,
    max_body: usize,
    bucket: TokenBucket,
}

impl ApiState {
    /// From the flags; a key that cannot be read leaves the API off
    /// ([`ServerFlags::validate`] refused it before serving).
    pub fn new(flags: &ServerFlags) -> ApiState {
        let key = flags.api_key().ok().flatten().map(|k| k.into_bytes().into_boxed_slice());
        ApiState {
            key,
            max_body: flags.api_max_body,
            bucket: TokenBucket::new(flags.api_rate.max(1), flags.api_burst.max(1)),
        }
    }

    pub fn enabled(&self) -> bool {
        self.key.is_some()
    }
}

impl Default for ApiState {
    fn default() -> ApiState {
        ApiState::new(&ServerFlags { api_max_body: 64 << 10, api_rate: 100, api_burst: 200, ..Default::default() })
    }
}

/// Requests allowed at `rate` per second with bursts of `burst`, in
/// thousandths of a request so that refilling needs no floating point.
#[derive(Debug)]
pub struct TokenBucket {
    rate: u64,
    capacity: u64,
    milli_tokens: u64,
    last: Option<Instant>,
}

impl TokenBucket {
    pub fn new(rate: u32, burst: u32) -> TokenBucket {
        let capacity = u64::from(burst) * 1000;
        TokenBucket { rate: u64::from(rate), capacity, milli_tokens: capacity, last: None }
    }

    /// Takes one request's token at `now`, if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let elapsed_us = u64::try_from(now.saturating_duration_since(last).as_micros()).unwrap_or(u64::MAX);
            let refill = elapsed_us.saturating_mul(self.rate) / 1000;
            self.milli_tokens = self.milli_tokens.saturating_add(refill).min(self.capacity);
        }
        self.last = Some(now);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

/// Compares in time that depends on the lengths only, never on where the
/// first difference is.
fn same_secret(given: &[u8], key: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != key.len());
    for (i, k) in key.iter().enumerate() {
        diff |= k ^ given.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// The API's paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Publish,
    Disconnect,
    Presence,
    History,
    Info,
}

/// What the router takes from the request head for the handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiRequest {
    pub endpoint: Endpoint,
    pub post: bool,
    /// The `Authorization` value, if one was sent (only the first).
    pub authorization: Option<Vec<u8>>,
}

/// The endpoint of `path`, if it is an API path.
pub fn endpoint(path: &str) -> Option<Endpoint> {
    Some(match path {
        "/api/publish" => Endpoint::Publish,
        "/api/disconnect" => Endpoint::Disconnect,
        "/api/presence" => Endpoint::Presence,
        "/api/history" => Endpoint::History,
        "/api/info" => Endpoint::Info,
        _ => return None,
    })
}

/// An API error: its HTTP status, code and message.
struct Refusal {
    status: u16,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal { status, code, message: message.into() }
    }

    fn chat(error: ChatError) -> Refusal {
        let status = match error {
            ChatError::NoSuchUser | ChatError::NoSuchRoom => 404,
            ChatError::TooLarge => 413,
            _ => 400,
        };
        Refusal::new(status, error.code(), error.message())
    }

    fn response(&self) -> HttpResponse {
        let body = serde_json::json!({"ok": false, "error": self.code, "message": self.message});
        let mut response = json_response(self.status, &body);
        match self.status {
            401 => response.headers.push(("WWW-Authenticate", "apikey".to_owned())),
            405 => response.headers.push(("Allow", "POST".to_owned())),
            429 => response.headers.push(("Retry-After", "1".to_owned())),
            _ => {}
        }
        response
    }
}

fn json_response(status: u16, body: &impl serde::Serialize) -> HttpResponse {
    // A tree of owned strings and numbers serialises into memory.
    let body = serde_json::to_vec(body).expect("an answer serialises");
    HttpResponse { status, headers: vec![("Cache-Control", "no-store".to_owned())], content_type: JSON, body }
}

/// One API request.
pub struct ApiHandler {
    request: ApiRequest,
}

impl ApiHandler {
    pub fn new(request: ApiRequest) -> ApiHandler {
        ApiHandler { request }
    }
}

impl HttpHandler for ApiHandler {
    fn handle_request(&mut self, _conn: ConnId, body: &[u8], cx: &mut AppCtx<'_>) -> HttpReply {
        let response = match answer(&self.request, body, cx) {
            Ok(response) => response,
            Err(refusal) => refusal.response(),
        };
        HttpReply::Respond(response)
    }
}

fn answer(request: &ApiRequest, body: &[u8], cx: &mut AppCtx<'_>) -> Result<HttpResponse, Refusal> {
    let Some(key) = &cx.api.key else {
        // As any unknown path: the API does not exist here.
        return Ok(HttpResponse {
            status: 404,
            headers: Vec::new(),
            content_type: "text/plain; charset=utf-8",
            body: b"404 not found\n".to_vec(),
        });
    };
    let given = request.authorization.as_deref().and_then(|value| {
        let value = value.trim_ascii();
        let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ')?);
        scheme.eq_ignore_ascii_case(b"apikey").then(|| rest.trim_ascii())
    });
    let Some(given) = given else {
        return Err(Refusal::new(401, "unauthorized", "send Authorization: apikey KEY"));
    };
    if !same_secret(given, key) {
        return Err(Refusal::new(403, "forbidden", "wrong API key"));
    }
    if !cx.api.bucket.take(cx.now) {
        return Err(Refusal::new(429, "rate_limited", "too many API requests, see --api-rate"));
    }
    if !request.post {
        return Err(Refusal::new(405, "method_not_allowed", "use POST"));
    }
    if body.len() > cx.api.max_body {
        return Err(Refusal::new(413, "too_large", format!("a body is at most {} bytes", cx.api.max_body)));
    }
    match request.endpoint {
        Endpoint::Publish => publish(parse(body)?, cx),
        Endpoint::Disconnect => disconnect(parse(body)?, cx),
        Endpoint::Presence => presence(parse(body)?, cx),
        Endpoint::History => history(parse(body)?, cx),
        Endpoint::Info => info(cx),
    }
}

/// The deepest nesting a body may have (serde_json's own limit for trees).
const MAX_DEPTH: usize = 128;

/// Whether the JSON text `json` nests arrays and objects deeper than
/// `limit`: raw values (`data`) are checked without that limit, and what
/// clients cannot parse must not be relayed to them.
fn too_deep(json: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The body as `T`; an empty body is `{}`.
fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Refusal> {
    let body: &[u8] = if body.trim_ascii().is_empty() { b"{}" } else { body };
    if too_deep(body, MAX_DEPTH) {
        return Err(Refusal::new(400, "bad_request", format!("nested deeper than {MAX_DEPTH}")));
    }
    serde_json::from_slice(body).map_err(|e| {
        // serde_json's own depth limit (128) stops a nesting bomb here.
        let message = if e.is_syntax() || e.is_eof() { format!("not JSON: {e}") } else { format!("wrong fields: {e}") };
        Refusal::new(400, "bad_request", message)
    })
}

/// The namespace a request names (`/` when absent), normalised as the router does.
fn namespace(raw: Option<&str>) -> Result<String, Refusal> {
    let invalid = || Refusal::new(400, "namespace_invalid", "a namespace is `/` or `/NAME` (room rules)");
    match raw.unwrap_or("/") {
        "/" => Ok("/".to_owned()),
        raw => normalize_namespace(raw.strip_prefix('/').ok_or_else(invalid)?).ok_or_else(invalid),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Publish<'a> {
    #[serde(borrow, default)]
    namespace: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    room: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    user: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    from: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    event: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

/// The sender name of server messages without `from`.
const SERVER: &str = "server";

fn publish(p: Publish<'_>, cx: &mut AppCtx<'_>) -> Result<HttpResponse, Refusal> {
    let ns = namespace(p.namespace.as_deref())?;
    let hub = &mut *cx.hub;
    let out = &mut *cx.outbox;
    let delivered = match (p.event.as_deref(), p.text.as_deref()) {
        (Some(_), Some(_)) => return Err(Refusal::new(400, "bad_request", "give `text` or `event`, not both")),
        (None, None) => return Err(Refusal::new(400, "missing_field", "`text` or `event` is required")),
        (Some(event), None) => {
            if event.is_empty() {
                return Err(Refusal::new(400, "missing_field", "`event` is empty"));
            }
            let target = match (p.user.as_deref(), p.room.as_deref()) {
                (Some(user), _) => ServerTarget::User(user),
                (None, Some(room)) => ServerTarget::Room(room),
                (None, None) => ServerTarget::Namespace,
            };
            let data = p.data.map(RawValue::get).filter(|d| *d != "null");
            hub.server_emit(&ns, target, event, data, p.from.as_deref(), out)
        }
        (None, Some(text)) => {
            let from = p.from.as_deref().unwrap_or(SERVER);
            match (p.user.as_deref(), p.room.as_deref()) {
                (Some(user), _) => hub.server_private(&ns, user, from, text, out),
                (None, Some(room)) => hub.server_say(&ns, room, from, text, out),
                (None, None) => return Err(Refusal::new(400, "missing_field", "`room` or `user` is required")),
            }
        }
    }
    .map_err(Refusal::chat)?;
    Ok(json_response(200, &serde_json::json!({"ok": true, "delivered": delivered})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Disconnect<'a> {
    #[serde(borrow)]
    user: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    namespace: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    reason: Option<std::borrow::Cow<'a, str>>,
}

fn disconnect(d: Disconnect<'_>, cx: &mut AppCtx<'_>) -> Result<HttpResponse, Refusal> {
    let ns = namespace(d.namespace.as_deref())?;
    if d.reason.as_deref().is_some_and(|r| r.len() > 256) {
        return Err(Refusal::new(400, "bad_request", "`reason` is at most 256 bytes"));
    }
    cx.hub.server_disconnect(&ns, &d.user, d.reason.as_deref(), cx.outbox).map_err(Refusal::chat)?;
    Ok(json_response(200, &serde_json::json!({"ok": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Presence<'a> {
    #[serde(borrow)]
    room: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    namespace: Option<std::borrow::Cow<'a, str>>,
}

fn presence(p: Presence<'_>, cx: &mut AppCtx<'_>) -> Result<HttpResponse, Refusal> {
    let ns = namespace(p.namespace.as_deref())?;
    let members = cx.hub.room_members(&ns, &p.room).map_err(Refusal::chat)?;
    let members: Vec<&str> = members.iter().map(|m| &**m).collect();
    Ok(json_response(200, &serde_json::json!({"ok": true, "room": p.room, "members": members})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct History<'a> {
    #[serde(borrow)]
    room: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    namespace: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    since: Option<u64>,
    #[serde(default)]
    limit: Option<u64>,
}

fn history(h: History<'_>, cx: &mut AppCtx<'_>) -> Result<HttpResponse, Refusal> {
    let ns = namespace(h.namespace.as_deref())?;
    let limit = usize::try_from(h.limit.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
    let Some(page) = cx.hub.history_page(&ns, &h.room, h.since, limit) else {
        return Err(Refusal::new(404, "no_history", "history is off, or the room has none"));
    };
    let messages: Vec<serde_json::Value> = page
        .messages
        .iter()
        .map(|m| serde_json::json!({"offset": m.offset, "from": &*m.from, "text": &*m.text}))
        .collect();
    let body = serde_json::json!({
        "ok": true,
        "room": page.room.as_ref(),
        "epoch": page.epoch.as_ref(),
        "messages": messages,
    });
    Ok(json_response(200, &body))
}

fn info(cx: &mut AppCtx<'_>) -> Result<HttpResponse, Refusal> {
    let info = cx.hub.info();
    let namespaces: Vec<serde_json::Value> =
        info.namespaces.iter().map(|(name, users)| serde_json::json!({"name": &**name, "users": users})).collect();
    let nodes: Vec<&str> = info.nodes.iter().map(|n| &**n).collect();
    let body = serde_json::json!({
        "ok": true,
        "node": info.node.as_deref(),
        "nodes": nodes,
        "users": info.local_users + info.remote_users,
        "local_users": info.local_users,
        "remote_users": info.remote_users,
        "rooms": info.rooms,
        "namespaces": namespaces,
    });
    Ok(json_response(200, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 3);
        assert!((0..3).all(|_| bucket.take(t0)));
        assert!(!bucket.take(t0));
        assert!(bucket.take(t0 + Duration::from_millis(100)));
        assert!(!bucket.take(t0 + Duration::from_millis(150)));
        assert!((0..3).all(|_| bucket.take(t0 + Duration::from_secs(60))));
        assert!(!bucket.take(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abd", b"abc"));
        assert!(!same_secret(b"ab", b"abc"));
        assert!(!same_secret(b"abcd", b"abc"));
        assert!(!same_secret(b"", b"abc"));
    }

    #[test]
    fn nesting_bombs_are_bad_requests() {
        let bomb =
            format!("{{\"namespace\":\"/\",\"event\":\"e\",\"data\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse::<Publish<'_>>(bomb.as_bytes()).is_err_and(|r| r.status == 400));
        let fine = br#"{"event":"e","data":[[[{"a":"]]]]]]"}]]]}"#;
        assert!(parse::<Publish<'_>>(fine).is_ok());
        assert!(!too_deep(br#"["[[[[\"[[["]"#, 2));
        assert!(too_deep(b"[[[]]]", 2));
    }
}
