//! Every limit and timeout of the daemon, with its default, validated once at
//! start-up. The cores take the pieces they need ([`Limits`], [`Timeouts`]);
//! nothing reads the environment or a global after this.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::app::static_files::{self, StaticFiles};
use crate::chat::ChatConfig;
use crate::proto::http::HttpConfig;
use crate::proto::ws::DecoderLimits;
use crate::proto::ws::deflate::{DeflateConfig, DeflateMode};

/// Command-line configuration. `soket --help` lists every flag with its default.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "soket",
    version,
    about = "A single-threaded real-time messaging daemon: legacy line protocol, HTTP/1.1 and WebSocket on one port."
)]
pub struct Config {
    /// Address to listen on (0.0.0.0:8888 to serve a network; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8888")]
    pub listen: SocketAddr,

    /// Connections the kernel may hold waiting to be accepted.
    #[arg(long, default_value_t = 1024)]
    pub backlog: u32,

    /// Most simultaneous connections; further ones are accepted and closed at once.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,

    /// Largest HTTP request head (request line and headers) in bytes; over it: 431.
    #[arg(long = "max-head", default_value_t = 8 * 1024)]
    pub max_head_bytes: usize,

    /// Request body an HTTP endpoint that reads one accepts (Content-Length or chunked); over it: 413.
    #[arg(long = "max-body", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Most header fields in one HTTP request; over it: 400.
    #[arg(long, default_value_t = 64)]
    pub max_headers: usize,

    /// Largest WebSocket message (all fragments together) in bytes; over it: close 1009.
    #[arg(long = "max-message", default_value_t = 16 * 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Most frames in one fragmented WebSocket message, empty ones included; over it: close 1009.
    #[arg(long, default_value_t = 131_072)]
    pub max_fragments: usize,

    /// permessage-deflate (RFC 7692): `off` declines it; `shared` (the
    /// default) answers no context takeover wherever the client allows and
    /// shares one zlib compressor and decompressor across all connections
    /// (~0 B per connection); `dedicated` keeps context both ways with zlib
    /// state per connection (~300-430 KB each). See docs/DEFLATE.md.
    #[arg(long, value_enum, default_value_t = DeflateMode::Shared)]
    pub deflate: DeflateMode,

    /// Most connections holding zlib state of their own (a client that keeps
    /// its compression context, ~50 KB each, or `--deflate dedicated`); past
    /// it, such clients get no compression.
    #[arg(long, default_value_t = 1000)]
    pub deflate_max_dedicated: usize,

    /// Messages shorter than this many bytes go out uncompressed under permessage-deflate.
    #[arg(long, default_value_t = 64)]
    pub deflate_min_bytes: usize,

    /// Largest legacy message in bytes (after dropping NULs and the terminator); over it: `!ERR too_large`.
    #[arg(long = "max-line", default_value_t = 64 * 1024)]
    pub max_line_bytes: usize,

    /// Rooms one chat user may be in besides `lobby`; further joins get `room_invalid`.
    #[arg(long, default_value_t = 256)]
    pub max_rooms_per_user: usize,

    /// Unsent bytes queued for one connection before it is cut off as a slow reader (close 1013).
    #[arg(long = "max-queued", default_value_t = 4 * 1024 * 1024)]
    pub max_queued_bytes: usize,

    /// Time allowed from accept (or the end of the previous HTTP response) to a complete request head.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// Time a new connection may stay silent before its first byte; at --max-connections the oldest
    /// silent connection also makes room for a new one, so silent sockets cannot lock others out.
    /// Long enough for a legacy user who types a name by hand.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub first_byte_timeout: Duration,

    /// Silence on a WebSocket after which the server sends a ping.
    #[arg(long, default_value = "25s", value_parser = parse_duration)]
    pub ping_interval: Duration,

    /// Time to wait for any frame after a keepalive ping before dropping the connection.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub ping_timeout: Duration,

    /// Time allowed for a closing handshake (or a final flush) before the socket is dropped.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub close_timeout: Duration,

    /// Time allowed on SIGINT/SIGTERM for clients to receive close 1001 and queues to flush.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Legacy clients send messages without a terminator: bytes followed by this much silence are one message.
    #[arg(long = "legacy-flush-ms", default_value_t = 50)]
    pub legacy_flush_ms: u64,

    /// Accept WebSocket upgrades only from these Origins (repeatable or comma-separated); requests without Origin are allowed.
    #[arg(long = "allow-origin", value_delimiter = ',')]
    pub allow_origins: Vec<String>,

    /// Do not serve the `/echo` WebSocket endpoint.
    #[arg(long)]
    pub no_echo: bool,

    /// Engine.IO (Socket.IO's transport): time between the server's heartbeat pings.
    #[arg(long, default_value = "25s", value_parser = parse_duration)]
    pub engineio_ping_interval: Duration,

    /// Engine.IO: time to wait for the pong to a heartbeat ping before the session is closed.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub engineio_ping_timeout: Duration,

    /// Engine.IO: largest message, and largest long-polling request body, in bytes (`maxPayload`).
    #[arg(long, default_value_t = 1_000_000)]
    pub engineio_max_payload: usize,

    /// Socket.IO: time a new session has to connect a namespace before it is closed.
    #[arg(long, default_value = "45s", value_parser = parse_duration)]
    pub socketio_connect_timeout: Duration,

    /// Serve the behaviour the official Engine.IO and Socket.IO protocol test suites expect
    /// (an Engine.IO echo at `/engine.io/`, Socket.IO's test handlers at `/socket.io/`) instead of
    /// the chat world. For conformance runs only, like `/echo` for Autobahn.
    #[arg(long)]
    pub socketio_test_suite: bool,
    /// STOMP: the heart-beats the broker offers, `SEND,RECEIVE` (it sends one at least every SEND
    /// and wants one from the client every RECEIVE; 0 = none). The client's CONNECT negotiates them.
    #[arg(long, default_value = "10s,10s", value_parser = parse_heart_beats)]
    pub stomp_heartbeat: (Duration, Duration),

    /// STOMP: most subscriptions one connection may hold; over it: an ERROR frame.
    #[arg(long, default_value_t = 64)]
    pub stomp_max_subscriptions: usize,

    /// STOMP: most unacknowledged messages a `client`/`client-individual` subscription may hold;
    /// a consumer past it is cut off like a slow reader (ERROR frame).
    #[arg(long, default_value_t = 1024)]
    pub stomp_max_unacked: usize,

    /// STOMP: most transactions open at once on one connection.
    #[arg(long, default_value_t = 16)]
    pub stomp_max_transactions: usize,

    /// STOMP: most SEND/ACK/NACK frames one transaction may hold before its COMMIT.
    #[arg(long, default_value_t = 256)]
    pub stomp_max_transaction_frames: usize,

    /// STOMP: time a transaction may stay open before the connection is cut off.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub stomp_transaction_timeout: Duration,

    /// STOMP: most header lines in one frame; over it: an ERROR frame.
    #[arg(long, default_value_t = 64)]
    pub stomp_max_headers: usize,

    /// STOMP: longest header line in bytes; over it: an ERROR frame.
    #[arg(long, default_value_t = 8 * 1024)]
    pub stomp_max_header_line: usize,

    /// SockJS: silence on a receiving request (or the SockJS WebSocket) after which the server sends `h`.
    #[arg(long, default_value = "25s", value_parser = parse_duration)]
    pub sockjs_heartbeat: Duration,

    /// SockJS: how long a session lives on without a receiving request (its messages wait that long).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub sockjs_disconnect_delay: Duration,

    /// SockJS: bytes of frames a streaming response (xhr_streaming, eventsource, htmlfile) carries
    /// before it ends, so the browser can free what it buffered; the client opens the next one.
    #[arg(long, default_value_t = 128 * 1024)]
    pub sockjs_response_limit: usize,

    /// SockJS: most sessions open at once (their ids are the clients' choice); further ones get 503.
    #[arg(long, default_value_t = 10_000)]
    pub sockjs_max_sessions: usize,

    /// Serve the four services of the SockJS protocol test suite under /sockjs-test/ (echo,
    /// disabled_websocket_echo, cookie_needed_echo, close). For conformance runs only.
    #[arg(long)]
    pub sockjs_test_suite: bool,

    /// Serve the files under DIR for GET and HEAD (`/` is DIR/index.html when it exists); soket's own paths win.
    #[arg(long, value_name = "DIR")]
    pub static_dir: Option<PathBuf>,

    /// The dist folder of the npm package socket.io-client (node_modules/socket.io-client/dist):
    /// serve /socket.io/socket.io.js and its siblings from it.
    #[arg(long, value_name = "DIR")]
    pub socketio_client: Option<PathBuf>,

    /// Most bytes of --static-dir and --socketio-client files together, all held in memory; over it soket does not start.
    #[arg(long, default_value_t = static_files::DEFAULT_MAX_BYTES)]
    pub static_max_bytes: usize,

    /// The files of --static-dir and --socketio-client, read by [`Config::load_files`].
    #[arg(skip)]
    pub files: Arc<StaticFiles>,
}

/// Parses `250ms`, `10s`, `2m` (any humantime duration) or a bare number of
/// seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(Duration::from_secs).map_err(|_| format!("`{text}` is too long"));
    }
    humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration like 250ms, 10s or 2m: {e}"))
}

/// Parses STOMP's `SEND,RECEIVE` heart-beat pair, each a duration as
/// [`parse_duration`] takes it (`10s,10s`, `0,0`).
pub fn parse_heart_beats(text: &str) -> Result<(Duration, Duration), String> {
    let (send, receive) = text.split_once(',').ok_or_else(|| format!("`{text}` is not two durations like 10s,10s"))?;
    let period = |part: &str| {
        let period = parse_duration(part)?;
        // STOMP carries milliseconds in a u32 (about 49 days).
        if period.as_millis() > u128::from(u32::MAX) {
            return Err(format!("`{part}` is longer than STOMP's heart-beat can say"));
        }
        Ok(period)
    };
    Ok((period(send)?, period(receive)?))
}

impl Default for Config {
    fn default() -> Self {
        Config::parse_from(["soket"])
    }
}

impl Config {
    /// Checks the values against each other; run once before serving.
    pub fn validate(&self) -> Result<(), String> {
        let nonzero = [
            ("--max-connections", self.max_connections),
            ("--max-head", self.max_head_bytes),
            ("--max-body", self.max_body_bytes),
            ("--max-headers", self.max_headers),
            ("--max-message", self.max_message_bytes),
            ("--max-fragments", self.max_fragments),
            ("--max-line", self.max_line_bytes),
            ("--max-queued", self.max_queued_bytes),
            ("--stomp-max-subscriptions", self.stomp_max_subscriptions),
            ("--stomp-max-unacked", self.stomp_max_unacked),
            ("--stomp-max-transaction-frames", self.stomp_max_transaction_frames),
            ("--stomp-max-headers", self.stomp_max_headers),
            ("--stomp-max-header-line", self.stomp_max_header_line),
            ("--sockjs-response-limit", self.sockjs_response_limit),
            ("--sockjs-max-sessions", self.sockjs_max_sessions),
        ];
        for (flag, value) in nonzero {
            if value == 0 {
                return Err(format!("{flag} must be at least 1"));
            }
        }
        // A head must at least hold a request line and the upgrade headers.
        if self.max_head_bytes < 256 {
            return Err("--max-head must be at least 256".into());
        }
        let timeouts = [
            ("--handshake-timeout", self.handshake_timeout),
            ("--first-byte-timeout", self.first_byte_timeout),
            ("--ping-interval", self.ping_interval),
            ("--ping-timeout", self.ping_timeout),
            ("--close-timeout", self.close_timeout),
            ("--sockjs-heartbeat", self.sockjs_heartbeat),
            ("--sockjs-disconnect-delay", self.sockjs_disconnect_delay),
        ];
        for (flag, value) in timeouts {
            if value.is_zero() {
                return Err(format!("{flag} must be longer than zero"));
            }
        }
        if self.files.sources() != (self.static_dir.as_deref(), self.socketio_client.as_deref()) {
            return Err("--static-dir or --socketio-client given but not loaded (Config::load_files)".into());
        }
        Ok(())
    }

    /// Reads the files of `--static-dir` and `--socketio-client` into
    /// memory, once, before serving: the reactor never reads the disk.
    pub fn load_files(&mut self) -> Result<(), String> {
        let files =
            StaticFiles::load(self.static_dir.as_deref(), self.socketio_client.as_deref(), self.static_max_bytes)
                .map_err(|e| e.to_string())?;
        self.files = Arc::new(files);
        Ok(())
    }

    /// The `--deflate*` flags.
    pub fn deflate(&self) -> DeflateConfig {
        DeflateConfig {
            mode: self.deflate,
            max_dedicated: self.deflate_max_dedicated,
            min_bytes: self.deflate_min_bytes,
        }
    }

    /// The caps of the reactor and connections.
    pub fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections,
            max_queued_bytes: self.max_queued_bytes,
            chat: ChatConfig { max_line_bytes: self.max_line_bytes, max_rooms_per_user: self.max_rooms_per_user },
            decoder: DecoderLimits { max_message_bytes: self.max_message_bytes, max_fragments: self.max_fragments },
            engine: EngineConfig {
                ping_interval: self.engineio_ping_interval,
                ping_timeout: self.engineio_ping_timeout,
                max_payload: self.engineio_max_payload,
                connect_timeout: self.socketio_connect_timeout,
                test_suite: self.socketio_test_suite,
            },
            stomp: StompConfig {
                heartbeat: self.stomp_heartbeat,
                connect_timeout: self.handshake_timeout,
                max_subscriptions: self.stomp_max_subscriptions,
                max_unacked: self.stomp_max_unacked,
                max_transactions: self.stomp_max_transactions,
                max_transaction_frames: self.stomp_max_transaction_frames,
                transaction_timeout: self.stomp_transaction_timeout,
                frames: crate::proto::stomp::Limits {
                    max_frame_bytes: self.max_message_bytes,
                    max_headers: self.stomp_max_headers,
                    max_header_line: self.stomp_max_header_line,
                },
            },
            sockjs: SockJsConfig {
                heartbeat: self.sockjs_heartbeat,
                disconnect_delay: self.sockjs_disconnect_delay,
                response_limit: self.sockjs_response_limit,
                max_sessions: self.sockjs_max_sessions,
            },
        }
    }

    /// Deadlines, as durations from the event that starts them.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            handshake: self.handshake_timeout,
            first_byte: self.first_byte_timeout,
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            close: self.close_timeout,
            shutdown: self.shutdown_timeout,
            legacy_flush: Duration::from_millis(self.legacy_flush_ms),
        }
    }

    /// What the chat hub needs: the chat part of [`Config::limits`].
    pub fn chat(&self) -> ChatConfig {
        self.limits().chat
    }

    /// What the HTTP layer needs.
    pub fn http(&self) -> HttpConfig {
        HttpConfig {
            max_head_bytes: self.max_head_bytes,
            max_body_bytes: self.max_body_bytes,
            max_headers: self.max_headers,
            allow_origins: self.allow_origins.clone(),
            echo_enabled: !self.no_echo,
            engineio_test_suite: self.socketio_test_suite,
            sockjs_test_suite: self.sockjs_test_suite,
            files: Arc::clone(&self.files),
        }
    }
}

/// Every cap of the daemon, each held once: the connections read the line
/// limit from the same [`ChatConfig`] the hub is built from, so the legacy
/// line decoder, the `/legacy` frame check and the hub's JSON text check
/// cannot disagree.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    /// Unsent bytes per connection before it counts as a slow reader (close 1013).
    pub max_queued_bytes: usize,
    /// The hub's caps, `--max-line` among them.
    pub chat: ChatConfig,
    pub decoder: DecoderLimits,
    pub engine: EngineConfig,
    pub stomp: StompConfig,
    pub sockjs: SockJsConfig,
}

/// The STOMP broker's limits (the `--stomp-*` flags; frames are capped by `--max-message`).
#[derive(Clone, Copy, Debug)]
pub struct StompConfig {
    /// The heart-beats offered: sent at least this often, wanted this often (zero: none).
    pub heartbeat: (Duration, Duration),
    /// Time from the connection to its CONNECT frame (`--handshake-timeout`).
    pub connect_timeout: Duration,
    pub max_subscriptions: usize,
    pub max_unacked: usize,
    pub max_transactions: usize,
    pub max_transaction_frames: usize,
    pub transaction_timeout: Duration,
    pub frames: crate::proto::stomp::Limits,
}

/// SockJS's times and caps (the protocol's defaults).
#[derive(Clone, Copy, Debug)]
pub struct SockJsConfig {
    pub heartbeat: Duration,
    pub disconnect_delay: Duration,
    /// Bytes of frames per streaming response.
    pub response_limit: usize,
    /// Sessions open at once.
    pub max_sessions: usize,
}

/// Engine.IO's and Socket.IO's parameters (the reference server's defaults).
#[derive(Clone, Copy, Debug)]
pub struct EngineConfig {
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// Largest message and polling body (`maxPayload`).
    pub max_payload: usize,
    /// Time to connect a first namespace.
    pub connect_timeout: Duration,
    /// The protocol test suites' behaviour instead of the chat world.
    pub test_suite: bool,
}

impl Limits {
    /// Above this many unsent bytes a connection's own input is paused, so a
    /// peer that writes faster than it reads is slowed by TCP, not cut off.
    pub fn read_pause_bytes(&self) -> usize {
        (self.max_queued_bytes / 4).max(1)
    }
}

/// Every deadline the reactor keeps.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub handshake: Duration,
    /// From accept to the first byte.
    pub first_byte: Duration,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub close: Duration,
    pub shutdown: Duration,
    pub legacy_flush: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_protocol_document() {
        let config = Config::default();
        assert_eq!(config.listen, "127.0.0.1:8888".parse().unwrap());
        assert_eq!(config.max_message_bytes, 16 << 20);
        assert_eq!(config.max_line_bytes, 64 << 10);
        assert_eq!(config.max_queued_bytes, 4 << 20);
        assert_eq!(config.max_head_bytes, 8 << 10);
        assert_eq!(config.ping_interval, Duration::from_secs(25));
        assert_eq!(config.ping_timeout, Duration::from_secs(20));
        assert_eq!(config.legacy_flush_ms, 50);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration(" 7 "), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        for bad in ["soon", "", "-1", "1.5", "10 parsecs", "99999999999999999999s", "99999999999999999999"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flags_override_defaults() {
        let config = Config::parse_from([
            "soket",
            "--listen",
            "0.0.0.0:9000",
            "--max-queued",
            "1024",
            "--allow-origin",
            "https://a.example,https://b.example",
            "--no-echo",
        ]);
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.max_queued_bytes, 1024);
        assert_eq!(config.allow_origins.len(), 2);
        assert!(!config.http().echo_enabled);
    }

    #[test]
    fn the_line_limit_is_held_once() {
        let config = Config::parse_from(["soket", "--max-line", "100", "--max-rooms-per-user", "3"]);
        let limits = config.limits();
        assert_eq!(limits.chat, ChatConfig { max_line_bytes: 100, max_rooms_per_user: 3 });
        assert_eq!(config.chat(), limits.chat);
    }

    #[test]
    fn files_must_be_loaded_before_serving() {
        let dist = std::env::temp_dir().join(format!("soket-config-dist-{}", std::process::id()));
        std::fs::create_dir_all(&dist).unwrap();
        std::fs::write(dist.join("socket.io.js"), "x").unwrap();
        let mut config = Config::parse_from(["soket", "--socketio-client", dist.to_str().unwrap()]);
        assert!(config.validate().unwrap_err().contains("not loaded"));
        config.load_files().unwrap();
        assert!(config.validate().is_ok());
        assert!(config.http().files.client_bundle("/socket.io/socket.io.js").is_some());
        let mut small =
            Config::parse_from(["soket", "--static-dir", dist.to_str().unwrap(), "--static-max-bytes", "0"]);
        assert!(small.load_files().unwrap_err().contains("--static-max-bytes"));
        let _ = std::fs::remove_dir_all(dist);
        // Without the flags there is nothing to load.
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn validate_refuses_zero_limits() {
        let config = Config { max_queued_bytes: 0, ..Config::default() };
        assert!(config.validate().is_err());
    }
}
