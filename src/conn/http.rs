//! The connection's HTTP framing, before any upgrade: request heads,
//! request bodies for the endpoints that read one, answers an app holds
//! (long-polling), keep-alive and pipelining. Which path serves what is the
//! router's business ([`crate::app::router`]).

use std::time::Instant;

use log::{Level, debug, log_enabled};

use crate::logging::quote;

use super::app_io::{Carrier, run_app_start};
use super::websocket::WsFraming;
use super::{Conn, Ctx, Framing, Lifecycle, Transport};
use crate::app::router::{self, Outcome};
use crate::app::{Chunks, HttpHandler, HttpReply, HttpResponse};
use crate::metrics::Protocol;
use crate::proto::http::body::BodyDecoder;
use crate::proto::http::head::HeadScanner;
use crate::proto::http::response::error_response;

/// Where the HTTP framing is between requests.
pub(super) enum HttpState {
    /// Reading (the rest of) a request head.
    Head { scanner: HeadScanner, deadline: Instant },
    /// Reading the body of a request an app serves (boxed: rare, and large
    /// beside the other states).
    Body(Box<BodyInProgress>),
    /// The app holds the answer; pipelined requests wait in the read buffer.
    Held { request: Served },
}

/// A request body on its way.
pub(super) struct BodyInProgress {
    decoder: BodyDecoder,
    body: Vec<u8>,
    request: Served,
    deadline: Instant,
}

/// A request an app serves, and how its answer is written.
pub(super) struct Served {
    handler: Box<dyn HttpHandler>,
    head_only: bool,
    close: bool,
    /// `method=... path=...` for the answer's log line, kept only when
    /// debug logging is on.
    request_line: Option<Box<str>>,
    /// The head of a streamed answer is out: `Some(chunked)`. Without
    /// chunking the body ends with the connection.
    streaming: Option<bool>,
}

/// `method=GET path=/x` from a request head (or as much of its first line
/// as there is), for the log.
fn request_fields(head: &[u8]) -> Box<str> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line.get(..line.len().min(256)).unwrap_or_default());
    let mut words = line.split_ascii_whitespace();
    let method = words.next().unwrap_or("");
    let path = words.next().unwrap_or("");
    format!("method={} path={}", quote(method), quote(path)).into()
}

/// `status=404 reason=...` from an encoded answer: the status line's code,
/// and for a refusal the start of its text body (soket's refusals say why there).
fn answer_fields(response: &[u8]) -> String {
    let status = response.get(9..12).and_then(|s| std::str::from_utf8(s).ok()).unwrap_or("?");
    let body = response.windows(4).position(|w| w == b"\r\n\r\n").and_then(|at| response.get(at + 4..));
    let refused = !status.starts_with(['1', '2', '3']);
    status_fields(status, body.filter(|_| refused))
}

/// `status=... reason=...` for an app's answer.
fn response_fields(response: &HttpResponse) -> String {
    status_fields(response.status, Some(response.body.as_slice()).filter(|_| response.status >= 400))
}

/// `status=S`, and `reason=` the start of a refusal's non-empty body.
fn status_fields(status: impl std::fmt::Display, refusal_body: Option<&[u8]>) -> String {
    match refusal_body.filter(|body| !body.is_empty()) {
        Some(body) => {
            let text = String::from_utf8_lossy(body.get(..body.len().min(160)).unwrap_or_default());
            format!("status={status} reason={}", quote(text.trim()))
        }
        None => format!("status={status}"),
    }
}

impl HttpState {
    pub(super) fn new(ctx: &Ctx<'_>) -> HttpState {
        HttpState::Head { scanner: HeadScanner::default(), deadline: ctx.now + ctx.timeouts.handshake }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        match self {
            HttpState::Head { deadline, .. } => Some(*deadline),
            HttpState::Body(progress) => Some(progress.deadline),
            HttpState::Held { request } => request.handler.poll_timeout(),
        }
    }

    pub(super) fn is_reading_head(&self) -> bool {
        matches!(self, HttpState::Head { .. })
    }

    pub(super) fn is_held(&self) -> bool {
        matches!(self, HttpState::Held { .. })
    }

    /// The app's side of a request still in progress, told the connection ends.
    pub(super) fn on_close(&mut self, ctx: &mut Ctx<'_>) {
        let request = match self {
            HttpState::Body(progress) => &mut progress.request,
            HttpState::Held { request } => request,
            HttpState::Head { .. } => return,
        };
        request.handler.on_close(&mut ctx.app());
    }
}

impl<S: Transport> Conn<S> {
    /// Runs the HTTP framing over `buf`. Returns the bytes consumed, and
    /// whether the caller should go on with the rest (in whatever the
    /// lifecycle is now: an upgrade hands the rest to WebSocket framing).
    pub(super) fn process_http(&mut self, buf: &mut [u8], ctx: &mut Ctx<'_>) -> (usize, bool) {
        let Lifecycle::Http(state) = &mut self.lifecycle else {
            return (0, true);
        };
        match state {
            HttpState::Head { scanner, .. } => match scanner.scan(buf, ctx.http.max_head_bytes) {
                Ok(Some(head_len)) => {
                    scanner.reset();
                    let head = buf.get(..head_len).expect("the scanner reports a length within its input");
                    let outcome = router::handle_head(head, ctx.http);
                    let request_line = log_enabled!(Level::Debug).then(|| request_fields(head));
                    self.on_outcome(outcome, request_line, ctx);
                    if self.out.queued() >= ctx.limits.read_pause_bytes() {
                        // A peer pipelining requests without reading the
                        // answers: leave the rest until it catches up.
                        self.pending_input = true;
                        return (head_len, false);
                    }
                    (head_len, true)
                }
                Ok(None) => (0, false),
                Err(e) => {
                    debug!(
                        "event=http conn={} {} status={} reason={}",
                        self.id,
                        request_fields(buf),
                        e.status(),
                        quote(&e.to_string())
                    );
                    self.out.push_bytes(ctx.pool, &error_response(e, false, true));
                    self.finish(ctx);
                    (buf.len(), false)
                }
            },
            HttpState::Body(progress) => match progress.decoder.decode(buf, &mut progress.body) {
                Ok((used, None)) => (used, false),
                Ok((used, Some(_))) => {
                    let state = std::mem::replace(state, HttpState::new(ctx));
                    if let HttpState::Body(progress) = state {
                        let BodyInProgress { body, request, .. } = *progress;
                        self.run_handler(request, &body, ctx);
                    }
                    (used, true)
                }
                Err(e) => {
                    debug!(
                        "event=http conn={} status=400 reason={}",
                        self.id,
                        quote(&format!("bad request body: {e}"))
                    );
                    self.out.push_bytes(ctx.pool, &error_response(e.into(), false, true));
                    self.finish(ctx);
                    (buf.len(), false)
                }
            },
            // HTTP/1.1 answers in order: what follows a held request waits.
            HttpState::Held { .. } => (0, false),
        }
    }

    fn on_outcome(&mut self, outcome: Outcome, request_line: Option<Box<str>>, ctx: &mut Ctx<'_>) {
        match outcome {
            Outcome::Respond { response, close, handshake_failure } => {
                if handshake_failure {
                    ctx.metrics.handshake_failures_total += 1;
                }
                if let Some(request_line) = &request_line {
                    debug!("event=http conn={} {request_line} {}", self.id, answer_fields(&response));
                }
                self.out.push_bytes(ctx.pool, &response);
                self.after_response(close, ctx);
            }
            Outcome::Serve { service, body, head_only, close } => {
                let request =
                    Served { handler: router::serve(&service), head_only, close, request_line, streaming: None };
                match BodyDecoder::for_kind(body, ctx.http.max_body_bytes) {
                    Ok(decoder) if decoder.is_done() => self.run_handler(request, &[], ctx),
                    Ok(decoder) => {
                        let deadline = ctx.now + ctx.timeouts.handshake;
                        let progress = BodyInProgress { decoder, body: Vec::new(), request, deadline };
                        self.lifecycle = Lifecycle::Http(HttpState::Body(Box::new(progress)));
                    }
                    Err(e) => {
                        self.out.push_bytes(ctx.pool, &error_response(e.into(), head_only, true));
                        self.finish(ctx);
                    }
                }
            }
            Outcome::Upgrade(mut upgrade) => {
                let agreed = ctx.deflate.negotiate(&upgrade.deflate_offers);
                if let Some(agreed) = agreed {
                    // The 101 ends with its blank line: the answer goes before it.
                    let end = upgrade.response.len().saturating_sub(2);
                    let header = format!("Sec-WebSocket-Extensions: {}\r\n", agreed.response_value());
                    upgrade.response.splice(end..end, header.into_bytes());
                }
                self.out.push_bytes(ctx.pool, &upgrade.response);
                self.switch_protocol(Protocol::WebSocket, ctx);
                if let Some(request_line) = &request_line {
                    debug!(
                        "event=upgrade conn={} {request_line} status=101 subprotocol={} endpoint={}",
                        self.id,
                        quote(upgrade.subprotocol.as_deref().unwrap_or("")),
                        quote(&format!("{:?}", upgrade.endpoint)),
                    );
                }
                self.app = Some(router::open(&upgrade, self.id, &mut ctx.app()));
                let mut ws = WsFraming::new(router::decoder_limits(&upgrade, ctx.limits), ctx.now, ctx.timeouts);
                if let Some(agreed) = agreed {
                    ws.enable_deflate(agreed, ctx.deflate.dedicated(&agreed));
                }
                self.lifecycle = Lifecycle::Open(Framing::WebSocket(Box::new(ws)));
                // An app that speaks first (or closes at once) does it now.
                if let Some(request) = run_app_start(&mut self.app, &mut self.out, Carrier::WebSocket, ctx) {
                    self.close(request, ctx);
                }
            }
        }
    }

    /// Hands a whole request to its handler; writes the answer or holds it.
    fn run_handler(&mut self, mut request: Served, body: &[u8], ctx: &mut Ctx<'_>) {
        let reply = request.handler.handle_request(self.id, body, &mut ctx.app());
        self.on_reply(request, reply, ctx);
    }

    fn on_reply(&mut self, mut request: Served, reply: HttpReply, ctx: &mut Ctx<'_>) {
        match reply {
            HttpReply::Respond(response) if request.streaming.is_none() => {
                if let Some(request_line) = &request.request_line {
                    debug!("event=http conn={} {request_line} {}", self.id, response_fields(&response));
                }
                self.write_http_response(&response, request.head_only, request.close, ctx);
                self.after_response(request.close, ctx);
            }
            // A streaming handler that answers whole ends its stream.
            HttpReply::Respond(_) => self.on_chunks(request, Chunks { chunks: Vec::new(), end: true }, ctx),
            HttpReply::Stream(head, chunks) if request.streaming.is_none() => {
                // Chunked framing needs a connection that outlives the
                // answer; one that closes after it delimits the body itself
                // (and HTTP/1.0, which always closes here, knows no chunks).
                let chunked = !request.close;
                if let Some(request_line) = &request.request_line {
                    debug!("event=http conn={} {request_line} status={} streaming=true", self.id, head.status);
                }
                self.out.push_bytes(ctx.pool, &head.encode_stream_head(chunked, request.close));
                request.streaming = Some(chunked);
                if request.head_only {
                    // A HEAD gets the head only: the stream ends here, and
                    // the handler is told, as when a connection goes.
                    request.streaming = Some(false);
                    request.handler.on_close(&mut ctx.app());
                    return self.on_chunks(request, Chunks { chunks: Vec::new(), end: true }, ctx);
                }
                self.on_chunks(request, chunks, ctx);
            }
            HttpReply::Stream(_, chunks) | HttpReply::More(chunks) if request.streaming.is_some() => {
                self.on_chunks(request, chunks, ctx)
            }
            HttpReply::Park | HttpReply::More(_) | HttpReply::Stream(..) => {
                self.lifecycle = Lifecycle::Http(HttpState::Held { request })
            }
        }
    }

    /// Writes chunks of a streamed answer, each as one HTTP chunk; ends the
    /// answer after them if they say so, else holds the request on. The
    /// slow-reader rule of every other queue applies: a client that stops
    /// reading a stream is cut off at `--max-queued`.
    fn on_chunks(&mut self, request: Served, chunks: Chunks, ctx: &mut Ctx<'_>) {
        let chunked = request.streaming == Some(true);
        for chunk in chunks.chunks.iter().filter(|c| !c.is_empty()) {
            if self.is_backlogged(chunk.len(), ctx.limits) && !self.write_now(ctx) {
                self.lifecycle = Lifecycle::Http(HttpState::Held { request });
                self.close_now(ctx);
                return;
            }
            if self.is_backlogged(chunk.len(), ctx.limits) {
                // The handler hears of it through `on_close` (finish ends the request).
                self.lifecycle = Lifecycle::Http(HttpState::Held { request });
                self.slow_reader(ctx);
                return;
            }
            if chunked {
                self.out.push_bytes(ctx.pool, format!("{:x}\r\n", chunk.len()).as_bytes());
                self.out.push_bytes(ctx.pool, chunk);
                self.out.push_static(ctx.pool, b"\r\n");
            } else {
                self.out.push_bytes(ctx.pool, chunk);
            }
        }
        if !chunks.end {
            self.lifecycle = Lifecycle::Http(HttpState::Held { request });
            return;
        }
        if chunked {
            self.out.push_static(ctx.pool, b"0\r\n\r\n");
        }
        self.after_response(request.close, ctx);
    }

    fn write_http_response(&mut self, response: &HttpResponse, head_only: bool, close: bool, ctx: &mut Ctx<'_>) {
        self.out.push_bytes(ctx.pool, &response.encode(head_only, close));
    }

    /// A held request may answer now: its handler was woken, or its deadline passed.
    pub(super) fn poll_held(&mut self, ctx: &mut Ctx<'_>) {
        let Lifecycle::Http(HttpState::Held { request }) = &mut self.lifecycle else {
            return;
        };
        let reply = request.handler.poll_reply(&mut ctx.app());
        if matches!(reply, HttpReply::Park) || (request.streaming.is_none() && matches!(reply, HttpReply::More(_))) {
            return;
        }
        let streaming = request.streaming.is_some();
        let Lifecycle::Http(HttpState::Held { request }) =
            std::mem::replace(&mut self.lifecycle, Lifecycle::Http(HttpState::new(ctx)))
        else {
            return;
        };
        let ends = !streaming || matches!(&reply, HttpReply::Respond(_) | HttpReply::More(Chunks { end: true, .. }));
        if ends {
            // What was pipelined behind the held request waits in the read
            // buffer, with no new bytes to wake us.
            self.pending_input = !self.rbuf.is_empty();
            self.read_paused = false;
            self.wants_read = true;
        }
        self.on_reply(request, reply, ctx);
    }

    fn after_response(&mut self, close: bool, ctx: &mut Ctx<'_>) {
        if close {
            self.finish(ctx);
        } else if let Lifecycle::Http(HttpState::Head { deadline, .. }) = &mut self.lifecycle {
            // Keep-alive: the next request gets a fresh handshake allowance.
            *deadline = ctx.now + ctx.timeouts.handshake;
        }
    }
}
