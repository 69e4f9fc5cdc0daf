//! Every limit and timeout of the daemon, with its default, validated once at
//! start-up. The cores take the pieces they need ([`Limits`], [`Timeouts`]);
//! nothing reads the environment or a global after this.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::app::static_files::StaticFiles;
use crate::chat::{ChatConfig, RecoveryConfig};
use crate::proto::http::HttpConfig;
use crate::proto::ws::DecoderLimits;
use crate::proto::ws::deflate::{DeflateConfig, DeflateMode};

/// Command-line configuration. `soket --help` lists every flag with its default.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "soket",
    version,
    about = "A single-threaded real-time messaging daemon: the legacy line protocol, HTTP/1.1, WebSocket, \
             Socket.IO, STOMP and SockJS on one port.",
    after_help = "Sizes take a plain number of bytes or a unit: 64KiB, 16MiB, 1MB. Durations take ms, s or m \
                  (250ms, 10s, 2m; a bare number is seconds).\n\
                  Logging goes to stderr, filtered by RUST_LOG (default: info; RUST_LOG=debug logs every \
                  connection, RUST_LOG=soket=debug only soket's lines)."
)]
pub struct Config {
    /// A TOML file whose keys are these flags' long names (`max-queued = "8MiB"`, `no-echo = true`,
    /// `allow-origin = ["https://a.example"]`); a flag given on the command line wins over the file.
    #[arg(long = "config", value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// How log lines are written: `text` for people, `json` (one object per line) for log collectors.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: crate::logging::LogFormat,

    /// Address to listen on, HOST:PORT: `0.0.0.0:8888` or `[::]:8888` serves a network, a name such
    /// as `localhost:8888` is resolved (every address it has is served), port 0 picks a free port.
    /// Repeat it to listen on several (IPv4 and IPv6).
    #[arg(long, default_value = "127.0.0.1:8888", value_name = "ADDR")]
    pub listen: Vec<String>,

    /// Connections the kernel may hold waiting to be accepted.
    #[arg(long, default_value_t = 1024)]
    pub backlog: u32,

    /// Most simultaneous connections; further ones are accepted and closed at once.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,

    /// Largest HTTP request head (request line and headers) in bytes; over it: 431.
    #[arg(long = "max-head", default_value = "8KiB", value_parser = parse_size)]
    pub max_head_bytes: usize,

    /// Request body an HTTP endpoint that reads one accepts (Content-Length or chunked); over it: 413.
    #[arg(long = "max-body", default_value = "1MiB", value_parser = parse_size)]
    pub max_body_bytes: usize,

    /// Most header fields in one HTTP request; over it: 400.
    #[arg(long, default_value_t = 64)]
    pub max_headers: usize,

    /// Largest WebSocket message (all fragments together) in bytes; over it: close 1009.
    #[arg(long = "max-message", default_value = "16MiB", value_parser = parse_size)]
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
    #[arg(long = "max-line", default_value = "64KiB", value_parser = parse_size)]
    pub max_line_bytes: usize,

    /// Rooms one chat user may be in besides `lobby`; further joins get `room_invalid`.
    #[arg(long, default_value_t = 256)]
    pub max_rooms_per_user: usize,

    /// Unsent bytes queued for one connection before it is cut off as a slow reader (close 1013).
    #[arg(long = "max-queued", default_value = "4MiB", value_parser = parse_size)]
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
    #[arg(long, default_value = "1000000", value_parser = parse_size)]
    pub engineio_max_payload: usize,

    /// Socket.IO: time a new session has to connect a namespace before it is closed.
    #[arg(long, default_value = "45s", value_parser = parse_duration)]
    pub socketio_connect_timeout: Duration,

    /// Socket.IO connection state recovery: how long a dropped session may come back with its
    /// name, rooms and socket id and be given what it missed (the reference
    /// `maxDisconnectionDuration`, e.g. `2m`; `0`: off). Replayed events carry their offset as a
    /// last argument, as the reference server's do (docs/SOCKETIO.md).
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub socketio_recovery: Duration,

    /// Socket.IO recovery: most dropped sessions kept at once; past it the oldest is forgotten.
    #[arg(long, default_value_t = 10_000)]
    pub socketio_recovery_sessions: usize,

    /// Socket.IO recovery: most bytes of events kept for returning sessions; past it the oldest
    /// are dropped, and a session that missed them is not recovered.
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    pub socketio_recovery_buffer: usize,

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
    #[arg(long, default_value = "8KiB", value_parser = parse_size)]
    pub stomp_max_header_line: usize,

    /// SockJS: silence on a receiving request (or the SockJS WebSocket) after which the server sends `h`.
    #[arg(long, default_value = "25s", value_parser = parse_duration)]
    pub sockjs_heartbeat: Duration,

    /// SockJS: how long a session lives on without a receiving request (its messages wait that long).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub sockjs_disconnect_delay: Duration,

    /// SockJS: bytes of frames a streaming response (xhr_streaming, eventsource, htmlfile) carries
    /// before it ends, so the browser can free what it buffered; the client opens the next one.
    #[arg(long, default_value = "128KiB", value_parser = parse_size)]
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
    #[arg(long, default_value = "32MiB", value_parser = parse_size)]
    pub static_max_bytes: usize,

    /// Serve TLS too, with this certificate chain (PEM, leaf first): a connection whose first
    /// byte is a TLS handshake record (0x16) gets TLS, with every protocol inside. Reloaded on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1). Reloaded on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Refuse plaintext: a connection whose first byte is not a TLS handshake record is closed
    /// at once, without an answer. Needs --tls-cert and --tls-key.
    #[arg(long, requires = "tls_cert")]
    pub tls_only: bool,

    /// Join a cluster through this Redis server: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`. Nodes
    /// sharing a Redis (and --redis-prefix) are one world: names, rooms, presence, messages. Without
    /// it the node is alone.
    #[arg(long, value_name = "URL", value_parser = parse_redis_url)]
    pub redis: Option<crate::redis::RedisUrl>,

    /// This node's name in the cluster (letters, digits, `-`, `_`, `.`; at most 64). Default: the
    /// host name and 6 random hex digits, new at every start.
    #[arg(long, value_name = "ID", requires = "redis")]
    pub node_id: Option<String>,

    /// The prefix of every Redis key and channel soket uses, so clusters can share one Redis.
    #[arg(long, default_value = "soket", value_name = "PREFIX")]
    pub redis_prefix: String,

    /// How often a node tells the cluster it is alive.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub redis_heartbeat: Duration,

    /// A node not heard from for this long is dead: its users leave everywhere and its names are
    /// free. Also how long a Redis command may wait for its reply before the link is dropped.
    #[arg(long, default_value = "7s", value_parser = parse_duration)]
    pub redis_node_timeout: Duration,

    /// Bytes of messages held while Redis is unreachable, sent once it is back; past it
    /// messages are dropped (and counted in /metrics).
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub redis_backlog: usize,

    /// The longest wait between two attempts to reach Redis (the wait starts at 100ms and doubles).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub redis_reconnect_max: Duration,

    /// PEM certificates to trust for a `rediss://` Redis instead of the system's store (a private
    /// CA, a self-signed Redis). The host of the URL must be named in Redis's certificate.
    #[arg(long, value_name = "FILE", requires = "redis")]
    pub redis_tls_ca: Option<PathBuf>,

    /// A client certificate chain (PEM) for a `rediss://` Redis that asks for one (Redis's own
    /// default, `tls-auth-clients yes`). With --redis-tls-key.
    #[arg(long, value_name = "FILE", requires = "redis")]
    pub redis_tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --redis-tls-cert.
    #[arg(long, value_name = "FILE", requires = "redis")]
    pub redis_tls_key: Option<PathBuf>,

    /// The client configuration toward a `rediss://` Redis, read by [`Config::load_files`].
    #[arg(skip)]
    pub redis_tls: Option<Arc<rustls::ClientConfig>>,

    /// The server API and history flags.
    #[command(flatten)]
    pub server: crate::app::api::ServerFlags,
    /// Turns connection tokens on (docs/AUTH.md): JWTs signed with this HS256 secret. Without
    /// this, --token-secret-file or --token-public-key, anyone connects as today. Fixed until a
    /// restart (--token-secret-file can be reloaded).
    #[arg(long, value_name = "SECRET", conflicts_with_all = ["token_secret_file", "token_public_key"])]
    pub token_secret: Option<String>,

    /// Like --token-secret, the secret read from FILE (one trailing line end dropped): keeps it
    /// out of the process list. Reloaded on SIGHUP.
    #[arg(long, value_name = "FILE", conflicts_with = "token_public_key")]
    pub token_secret_file: Option<PathBuf>,

    /// Turns connection tokens on: JWTs signed with the private half of this PEM public key,
    /// RS256 for an RSA key, ES256 for a P-256 key (the only algorithm then accepted). Reloaded
    /// on SIGHUP.
    #[arg(long, value_name = "FILE")]
    pub token_public_key: Option<PathBuf>,

    /// Longest token in bytes; a longer one is refused before any parsing.
    #[arg(long, default_value = "8KiB", value_parser = parse_size)]
    pub token_max_bytes: usize,

    /// Clock skew tolerated on a token's `exp` and `nbf`; a live connection ends this long after `exp`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub token_leeway: Duration,

    /// With tokens on, legacy clients (raw TCP, /legacy) may still sign in with a plain name
    /// and no `token:` line; without it they get `!ERR unauthorized`.
    #[arg(long)]
    pub legacy_anonymous: bool,

    /// The token verifier of --token-secret(-file) or --token-public-key, read by
    /// [`Config::load_files`].
    #[arg(skip)]
    pub token_verifier: Option<Arc<crate::auth::Verifier>>,

    /// The TLS configuration of --tls-cert and --tls-key, read by [`Config::load_files`].
    #[arg(skip)]
    pub tls: Option<Arc<rustls::ServerConfig>>,

    /// The files of --static-dir and --socketio-client, read by [`Config::load_files`].
    #[arg(skip)]
    pub files: Arc<StaticFiles>,
}

/// The host name (up to 32 of its valid characters) and 6 random hex
/// digits: unique per start, recognisable in logs.
fn default_node_id() -> String {
    let host: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(32)
        .collect();
    let mut random = [0u8; 3];
    // Without entropy the id is still unique enough with the process id.
    if getrandom::fill(&mut random).is_err() {
        random = std::process::id().to_be_bytes()[1..].try_into().unwrap_or_default();
    }
    let host = if host.is_empty() { "soket".to_owned() } else { host };
    format!("{host}-{:02x}{:02x}{:02x}", random[0], random[1], random[2])
}

fn parse_redis_url(text: &str) -> Result<crate::redis::RedisUrl, String> {
    text.parse().map_err(|e: crate::redis::UrlError| e.to_string())
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

/// The flags a `--config` file's TOML text stands for, leaving out those the
/// command line `cli` gives itself.
fn file_args(text: &str, cli: &[std::ffi::OsString]) -> Result<Vec<String>, String> {
    use clap::CommandFactory;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| format!("not TOML: {}", e.message()))?;
    let command = Config::command();
    let mut args = Vec::new();
    for (key, value) in table {
        let Some(arg) = command.get_arguments().find(|a| a.get_long() == Some(key.as_str())) else {
            return Err(format!("unknown key `{key}`: keys are the long flag names of `soket --help`"));
        };
        if key == "config" {
            return Err("a config file cannot name another one".into());
        }
        let flag = format!("--{key}");
        let on_cli = cli.iter().filter_map(|a| a.to_str()).any(|a| a == flag || a.starts_with(&format!("{flag}=")));
        if on_cli {
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        let scalar = |value: &toml::Value| match value {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(n) => Ok(n.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            other => Err(format!("`{key}` takes a string or a number, not {}", other.type_str())),
        };
        match value {
            toml::Value::Boolean(on) if !takes_value => {
                if on {
                    args.push(flag);
                }
            }
            toml::Value::Boolean(_) => return Err(format!("`{key}` takes a value, not true or false")),
            _ if !takes_value => return Err(format!("`{key}` is a switch: write `{key} = true`")),
            toml::Value::Array(items) => {
                for item in &items {
                    args.push(flag.clone());
                    args.push(scalar(item)?);
                }
            }
            value => {
                args.push(flag);
                args.push(scalar(&value)?);
            }
        }
    }
    Ok(args)
}

/// Parses a size in bytes as the README writes them: a plain number of
/// bytes, or a number with a unit, `KB`/`MB`/`GB` (powers of 1000) or
/// `KiB`/`MiB`/`GiB` (powers of 1024), `B` also accepted; case-insensitive,
/// a space allowed before the unit.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let expected = || format!("`{text}` is not a size like 65536, 64KiB, 16MiB or 1MB");
    let number: u64 = number.parse().map_err(|_| expected())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1000,
        "kib" => 1 << 10,
        "mb" | "m" => 1000 * 1000,
        "mib" => 1 << 20,
        "gb" | "g" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        _ => return Err(expected()),
    };
    number
        .checked_mul(multiplier)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .ok_or_else(|| format!("`{text}` is too large"))
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

/// Why the configuration could not be read.
#[derive(Debug)]
pub enum ConfigError {
    /// The command line (or a key of the file, as a flag) is wrong, or asks
    /// for `--help`/`--version`: clap prints it and exits.
    Flags(clap::Error),
    /// The `--config` file cannot be read or holds something no flag takes.
    File(String),
}

impl Config {
    /// The addresses `--listen` names, resolved, without repeats, in order.
    pub fn listen_addrs(&self) -> Result<Vec<SocketAddr>, String> {
        use std::net::ToSocketAddrs;
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for listen in &self.listen {
            let resolved = listen.to_socket_addrs().map_err(|e| {
                format!(
                    "--listen {listen}: expected HOST:PORT such as 127.0.0.1:8888, [::]:8888 or localhost:8888 ({e})"
                )
            })?;
            let resolved: Vec<SocketAddr> = resolved.collect();
            if resolved.is_empty() {
                return Err(format!("--listen {listen}: the name has no address"));
            }
            for addr in resolved {
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
        }
        if addrs.is_empty() {
            return Err("--listen: no address to serve".into());
        }
        if addrs.len() > crate::reactor::MAX_LISTENERS {
            return Err(format!("--listen: at most {} addresses", crate::reactor::MAX_LISTENERS));
        }
        Ok(addrs)
    }

    /// The configuration from `args` (the program name first), over the keys
    /// of the `--config` file when one is given: each key is a flag's long
    /// name, and a flag on the command line wins over the file's key.
    pub fn from_args<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let config = Config::try_parse_from(&args).map_err(ConfigError::Flags)?;
        let Some(path) = &config.config_file else {
            return Ok(config);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::File(format!("--config {}: cannot read it: {e}", path.display())))?;
        let from_file =
            file_args(&text, &args).map_err(|e| ConfigError::File(format!("--config {}: {e}", path.display())))?;
        let mut merged = args.first().cloned().into_iter().collect::<Vec<_>>();
        merged.extend(from_file.into_iter().map(std::ffi::OsString::from));
        merged.extend(args.iter().skip(1).cloned());
        Config::try_parse_from(merged).map_err(ConfigError::Flags)
    }

    /// Checks the values against each other; run once before serving.
    pub fn validate(&self) -> Result<(), String> {
        self.listen_addrs()?;
        self.server.validate()?;
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
        if let Some(node) = &self.node_id
            && !crate::cluster::valid_node_id(node)
        {
            return Err(format!("--node-id {node}: 1 to 64 letters, digits, `-`, `_` or `.`"));
        }
        if self.redis_prefix.is_empty() || self.redis_prefix.len() > 64 {
            return Err("--redis-prefix must be 1 to 64 bytes".into());
        }
        if self.redis_heartbeat.is_zero() || self.redis_node_timeout <= self.redis_heartbeat {
            return Err("--redis-node-timeout must be longer than --redis-heartbeat, which must be above zero".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("--tls-cert and --tls-key go together".into());
        }
        let redis_tls = self.redis.as_ref().is_some_and(|url| url.tls);
        let redis_tls_files = self.redis_tls_files();
        if !redis_tls && redis_tls_files != crate::tls::RedisTlsFiles::default() {
            return Err("--redis-tls-ca, --redis-tls-cert and --redis-tls-key need a rediss:// URL".into());
        }
        if redis_tls_files.cert.is_some() != redis_tls_files.key.is_some() {
            return Err("--redis-tls-cert and --redis-tls-key go together".into());
        }
        if redis_tls != self.redis_tls.is_some() {
            return Err("rediss:// given but its TLS configuration not loaded (Config::load_files)".into());
        }
        if self.tls_only && self.tls_cert.is_none() {
            return Err("--tls-only needs --tls-cert and --tls-key".into());
        }
        if self.tls_cert.is_some() != self.tls.is_some() {
            return Err("--tls-cert given but not loaded (Config::load_files)".into());
        }
        if self.files.sources() != (self.static_dir.as_deref(), self.socketio_client.as_deref()) {
            return Err("--static-dir or --socketio-client given but not loaded (Config::load_files)".into());
        }
        if self.tokens_on() != self.token_verifier.is_some() {
            return Err("--token-secret or --token-public-key given but not loaded (Config::load_files)".into());
        }
        if self.token_secret.as_deref() == Some("") {
            return Err("--token-secret is empty".into());
        }
        Ok(())
    }

    /// Reads the files of `--static-dir` and `--socketio-client` into
    /// memory, and the TLS certificate and key, once, before serving: the
    /// reactor never reads the disk. The error names the file at fault.
    pub fn load_files(&mut self) -> Result<(), String> {
        self.tls = self.load_tls()?;
        self.redis_tls = self.load_redis_tls()?;
        let files =
            StaticFiles::load(self.static_dir.as_deref(), self.socketio_client.as_deref(), self.static_max_bytes)
                .map_err(|e| e.to_string())?;
        self.files = Arc::new(files);
        self.token_verifier = self.load_token_verifier()?.map(Arc::new);
        Ok(())
    }

    /// Whether a token flag is given.
    pub fn tokens_on(&self) -> bool {
        self.token_secret.is_some() || self.token_secret_file.is_some() || self.token_public_key.is_some()
    }

    /// The verifier of `--token-secret`, `--token-secret-file` or
    /// `--token-public-key`, its file read now; `None` without them.
    pub fn load_token_verifier(&self) -> Result<Option<crate::auth::Verifier>, String> {
        use crate::auth::Verifier;
        let (max, leeway) = (self.token_max_bytes, self.token_leeway.as_secs());
        if let Some(secret) = &self.token_secret {
            return Ok(Some(Verifier::hs256(secret.as_bytes(), max, leeway)));
        }
        if let Some(path) = &self.token_secret_file {
            let text = std::fs::read(path).map_err(|e| format!("--token-secret-file {}: {e}", path.display()))?;
            let secret = text.strip_suffix(b"\n").map_or(&text[..], |s| s.strip_suffix(b"\r").unwrap_or(s));
            if secret.is_empty() {
                return Err(format!("--token-secret-file {}: empty", path.display()));
            }
            return Ok(Some(Verifier::hs256(secret, max, leeway)));
        }
        if let Some(path) = &self.token_public_key {
            let pem = std::fs::read(path).map_err(|e| format!("--token-public-key {}: {e}", path.display()))?;
            let verifier = Verifier::public_key(&pem, max, leeway)
                .map_err(|e| format!("--token-public-key {}: {e}", path.display()))?;
            return Ok(Some(verifier));
        }
        Ok(None)
    }

    /// The TLS configuration of `--tls-cert` and `--tls-key`, read now
    /// (again on a reload); `None` without them.
    pub fn load_tls(&self) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => crate::tls::load_server_config(cert, key).map(Some),
            _ => Ok(None),
        }
    }

    /// The client configuration toward a `rediss://` Redis, its files read
    /// now; `None` for `redis://` or without `--redis`.
    pub fn load_redis_tls(&self) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
        match &self.redis {
            Some(url) if url.tls => crate::tls::load_redis_client_config(&self.redis_tls_files()).map(Some),
            _ => Ok(None),
        }
    }

    /// The `--redis-tls-*` files.
    pub fn redis_tls_files(&self) -> crate::tls::RedisTlsFiles {
        crate::tls::RedisTlsFiles {
            ca: self.redis_tls_ca.clone(),
            cert: self.redis_tls_cert.clone(),
            key: self.redis_tls_key.clone(),
        }
    }

    /// The `--redis*` flags, when the node joins a cluster. A node id is
    /// made up when none is given.
    pub fn cluster(&self) -> Option<crate::cluster::ClusterConfig> {
        let redis = self.redis.clone()?;
        let node_id = self.node_id.clone().unwrap_or_else(default_node_id);
        Some(crate::cluster::ClusterConfig {
            redis,
            node_id,
            prefix: self.redis_prefix.clone(),
            heartbeat: self.redis_heartbeat,
            node_timeout: self.redis_node_timeout,
            backlog_bytes: self.redis_backlog,
            reconnect_max: self.redis_reconnect_max,
        })
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
            chat: ChatConfig {
                max_line_bytes: self.max_line_bytes,
                max_rooms_per_user: self.max_rooms_per_user,
                history: self.server.history(),
                recovery: RecoveryConfig {
                    window: (!self.socketio_recovery.is_zero()).then_some(self.socketio_recovery),
                    max_sessions: self.socketio_recovery_sessions,
                    max_log_bytes: self.socketio_recovery_buffer,
                },
            },
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
            legacy_anonymous: self.legacy_anonymous,
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
    /// `--legacy-anonymous`: with tokens on, legacy clients may still use a plain name.
    pub legacy_anonymous: bool,
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
        assert_eq!(config.listen_addrs(), Ok(vec!["127.0.0.1:8888".parse().unwrap()]));
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
    fn sizes_parse_as_the_readme_writes_them() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("2 gib"), Ok(2 << 30));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("8k"), Ok(8000));
        for bad in ["", "KiB", "1.5MiB", "-1", "64 KiBs", "12 parsecs", "99999999999999999999", "99999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Config::default().static_max_bytes, crate::app::static_files::DEFAULT_MAX_BYTES);
    }

    #[test]
    fn a_bad_value_names_its_flag_and_what_it_expects() {
        let error = Config::try_parse_from(["soket", "--max-queued", "lots"]).expect_err("refused").to_string();
        assert!(error.contains("--max-queued") && error.contains("64KiB"), "{error}");
        let error = Config::try_parse_from(["soket", "--ping-interval", "soon"]).expect_err("refused").to_string();
        assert!(error.contains("--ping-interval") && error.contains("10s"), "{error}");
        let error = Config::default();
        let zero = Config { max_line_bytes: 0, ..error };
        assert_eq!(zero.validate(), Err("--max-line must be at least 1".to_owned()));
    }

    fn config_file(text: &str) -> tempfile_path::Path {
        tempfile_path::Path::with(text)
    }

    /// A file under the system's temporary directory, removed on drop.
    mod tempfile_path {
        pub struct Path(pub std::path::PathBuf);

        impl Path {
            pub fn with(text: &str) -> Path {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                let name = format!("soket-config-{}-{}.toml", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
                let path = std::env::temp_dir().join(name);
                std::fs::write(&path, text).expect("write a temporary config file");
                Path(path)
            }
        }

        impl Drop for Path {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn a_config_file_sets_flags_and_the_command_line_wins() {
        let file = config_file(
            "max-queued = \"8MiB\"\nmax-line = 1024\nno-echo = true\nping-interval = \"40s\"\n\
             allow-origin = [\"https://a.example\", \"https://b.example\"]\nsocketio-test-suite = false\n",
        );
        let path = file.0.to_str().expect("a UTF-8 temp path");
        let config = Config::from_args(["soket", "--config", path, "--max-line", "2KiB"]).expect("loads");
        assert_eq!(config.max_queued_bytes, 8 << 20);
        assert_eq!(config.max_line_bytes, 2048, "the command line wins");
        assert!(config.no_echo);
        assert!(!config.socketio_test_suite);
        assert_eq!(config.ping_interval, Duration::from_secs(40));
        assert_eq!(config.allow_origins, ["https://a.example", "https://b.example"]);
        let config = Config::from_args(["soket", "--config", path, "--allow-origin=https://c.example"]).expect("loads");
        assert_eq!(config.allow_origins, ["https://c.example"], "a list flag on the command line replaces the file's");
    }

    #[test]
    fn a_bad_config_file_says_what_is_wrong() {
        let error = |text: &str| {
            let file = config_file(text);
            match Config::from_args(["soket".as_ref(), "--config".as_ref(), file.0.as_os_str()]) {
                Err(ConfigError::File(message)) => message,
                Err(ConfigError::Flags(e)) => e.to_string(),
                Ok(_) => panic!("{text:?} was accepted"),
            }
        };
        assert!(error("max-qeued = 5").contains("unknown key `max-qeued`"));
        assert!(error("max-queued = [").contains("not TOML"));
        assert!(error("no-echo = \"yes\"").contains("`no-echo` is a switch"));
        assert!(error("max-line = true").contains("`max-line` takes a value"));
        assert!(error("config = \"other.toml\"").contains("cannot name another"));
        let message = error("max-line = \"huge\"");
        assert!(message.contains("--max-line") && message.contains("huge"), "{message}");
        match Config::from_args(["soket", "--config", "/nonexistent/soket.toml"]) {
            Err(ConfigError::File(message)) => assert!(message.contains("/nonexistent/soket.toml"), "{message}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn listen_takes_names_ipv6_and_several_addresses() {
        let config = Config::try_parse_from(["soket", "--listen", "localhost:8888"]).expect("parses");
        let addrs = config.listen_addrs().expect("localhost resolves");
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 8888), "{addrs:?}");
        let config = Config::try_parse_from(["soket", "--listen", "[::]:8888", "--listen", "0.0.0.0:8888"]).unwrap();
        assert_eq!(config.listen_addrs(), Ok(vec!["[::]:8888".parse().unwrap(), "0.0.0.0:8888".parse().unwrap()]));
        let config = Config::try_parse_from(["soket", "--listen", "127.0.0.1:1", "--listen", "127.0.0.1:1"]).unwrap();
        assert_eq!(config.listen_addrs().map(|a| a.len()), Ok(1), "repeats are served once");
        for bad in ["8888", "localhost", "127.0.0.1:99999", "[::1:80"] {
            let config = Config::try_parse_from(["soket", "--listen", bad]).unwrap();
            let error = config.listen_addrs().expect_err(bad);
            assert!(error.starts_with(&format!("--listen {bad}:")), "{error}");
            assert_eq!(config.validate(), Err(error));
        }
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
        assert_eq!(config.listen_addrs().map(|a| a[0].port()), Ok(9000));
        assert_eq!(config.max_queued_bytes, 1024);
        assert_eq!(config.allow_origins.len(), 2);
        assert!(!config.http().echo_enabled);
    }

    #[test]
    fn the_line_limit_is_held_once() {
        let config = Config::parse_from(["soket", "--max-line", "100", "--max-rooms-per-user", "3"]);
        let limits = config.limits();
        assert_eq!(limits.chat, ChatConfig { max_line_bytes: 100, max_rooms_per_user: 3, ..ChatConfig::default() });
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
    fn redis_tls_flags_need_rediss_and_load_their_files() {
        let dir = std::env::temp_dir().join(format!("soket-config-redis-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (ca, key) = (dir.join("ca.pem"), dir.join("key.pem"));
        std::fs::write(&ca, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        let (ca, key) = (ca.to_str().unwrap(), key.to_str().unwrap());

        let mut tls = Config::parse_from(["soket", "--redis", "rediss://localhost:6380", "--redis-tls-ca", ca]);
        assert!(tls.validate().unwrap_err().contains("not loaded"));
        tls.load_files().unwrap();
        assert!(tls.redis_tls.is_some());
        assert!(tls.validate().is_ok());
        let mut with_client =
            Config::parse_from(["soket", "--redis", "rediss://h", "--redis-tls-ca", ca, "--redis-tls-cert", ca]);
        with_client.redis_tls_key = Some(key.into());
        with_client.load_files().unwrap();
        assert!(with_client.validate().is_ok());

        let mut plain = Config::parse_from(["soket", "--redis", "redis://localhost", "--redis-tls-ca", ca]);
        plain.load_files().unwrap();
        assert!(plain.validate().unwrap_err().contains("need a rediss:// URL"));
        let mut half =
            Config::parse_from(["soket", "--redis", "rediss://h", "--redis-tls-ca", ca, "--redis-tls-cert", ca]);
        assert!(half.load_files().unwrap_err().contains("go together"));
        let mut missing =
            Config::parse_from(["soket", "--redis", "rediss://h", "--redis-tls-ca", "/nonexistent/ca.pem"]);
        assert!(missing.load_files().unwrap_err().contains("--redis-tls-ca /nonexistent/ca.pem"));
        let mut not_a_certificate = Config::parse_from(["soket", "--redis", "rediss://h", "--redis-tls-ca", key]);
        assert!(not_a_certificate.load_files().unwrap_err().contains("no PEM certificate"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn validate_refuses_zero_limits() {
        let config = Config { max_queued_bytes: 0, ..Config::default() };
        assert!(config.validate().is_err());
    }
}
