//! End-to-end load benchmark: soket's release binary against peer servers built from their
//! published crates (`benches/peers`: fastwebsockets, tokio-tungstenite, a raw TCP echo,
//! socketioxide) and on Node from npm lock files (uWebSockets.js in `benches/peers/uws`, socket.io
//! in `benches/peers/socketio`), all driven by one lean mio load client (this binary) with the
//! same cases: plain WebSocket cases, and `sio-*` cases for the servers that speak Socket.IO.
//!
//! ```sh
//! cargo bench --bench load                         # all servers, all cases, median of 3 runs
//! cargo bench --bench load -- --quick              # one short run of everything (smoke test)
//! cargo bench --bench load -- soket fastwebsockets echo-16B --runs 5
//! cargo bench --bench load -- --help
//! ```
//!
//! With two or more CPUs the server runs on CPU 0 (`taskset -c 0`) and the client on CPU 1.
//! Server CPU per operation is utime+stime from /proc/PID/stat over the measured window; RSS per
//! idle connection is the growth of VmRSS. The table goes to stdout and, with every run's
//! numbers, to `target/load-bench.json`.

mod cases;
mod engine;
mod server;
mod sio;
mod stomp;
mod tls;
mod ws;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cases::{EchoSpec, Measure, Timing};
use crate::engine::Proto;
use crate::server::Flavor;
use crate::server::{BASELINE, BASELINE_ENV, Launch, RABBITMQ, SERVERS, SOCKETIO, SOCKETIOXIDE, SOKET_TLS, UWS};
use crate::ws::DeflateOffer;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Echo {
        conns: usize,
        size: usize,
        depth: usize,
    },
    Handshake,
    Idle,
    Fanout,
    SioConnect,
    SioIdle,
    SioFanout,
    StompFanout,
    /// `fanout` with every connection offering permessage-deflate (soket only).
    DeflateFanout,
    /// `idle` with every connection agreeing to permessage-deflate (soket only);
    /// `client_no_context_takeover` offered or not (then soket keeps a decompressor per connection).
    DeflateIdle {
        client_no_context_takeover: bool,
    },
    /// `fanout` over three soket nodes joined through a Redis the case starts (soket only).
    ClusterFanout,
    /// `fanout` with `--history-size` (soket only): every message is also stored in the room's
    /// history and carries its offset and epoch.
    HistoryFanout,
}

/// Nodes of the `cluster-fanout` case.
const CLUSTER_NODES: usize = 3;

impl Kind {
    /// A Socket.IO case: only for the servers that speak Socket.IO.
    fn is_sio(self) -> bool {
        matches!(self, Kind::SioConnect | Kind::SioIdle | Kind::SioFanout)
    }
}

struct CaseDef {
    name: &'static str,
    kind: Kind,
    /// What one operation is.
    unit: &'static str,
}

const CASES: [CaseDef; 16] = [
    CaseDef { name: "echo-16B", kind: Kind::Echo { conns: 100, size: 16, depth: 1 }, unit: "msg" },
    CaseDef { name: "echo-16B-pipe8", kind: Kind::Echo { conns: 100, size: 16, depth: 8 }, unit: "msg" },
    CaseDef { name: "echo-4KiB", kind: Kind::Echo { conns: 100, size: 4096, depth: 1 }, unit: "msg" },
    CaseDef { name: "echo-64KiB", kind: Kind::Echo { conns: 10, size: 65536, depth: 1 }, unit: "msg" },
    CaseDef { name: "handshake", kind: Kind::Handshake, unit: "hs" },
    CaseDef { name: "idle", kind: Kind::Idle, unit: "conn" },
    CaseDef { name: "fanout", kind: Kind::Fanout, unit: "deliv" },
    CaseDef { name: "sio-connect", kind: Kind::SioConnect, unit: "sess" },
    CaseDef { name: "sio-idle", kind: Kind::SioIdle, unit: "sess" },
    CaseDef { name: "sio-fanout", kind: Kind::SioFanout, unit: "deliv" },
    CaseDef { name: "stomp-fanout", kind: Kind::StompFanout, unit: "deliv" },
    CaseDef { name: "deflate-fanout", kind: Kind::DeflateFanout, unit: "deliv" },
    CaseDef { name: "deflate-idle", kind: Kind::DeflateIdle { client_no_context_takeover: true }, unit: "conn" },
    CaseDef { name: "deflate-idle-ctx", kind: Kind::DeflateIdle { client_no_context_takeover: false }, unit: "conn" },
    CaseDef { name: "cluster-fanout", kind: Kind::ClusterFanout, unit: "deliv" },
    CaseDef { name: "history-fanout", kind: Kind::HistoryFanout, unit: "deliv" },
];

/// Whether `server` takes part in `case`: the WebSocket cases skip the Socket.IO-only peers, the
/// Socket.IO cases the plain WebSocket ones, the STOMP case all but the STOMP broker, the
/// permessage-deflate cases all but soket; soket does them all.
fn takes_part(case: &CaseDef, server: &str) -> bool {
    match case.kind {
        Kind::StompFanout => server::speaks_stomp(server),
        Kind::DeflateFanout | Kind::DeflateIdle { .. } => server::is_soket(server),
        // This soket binary only: the cluster flags are newer than any baseline.
        Kind::ClusterFanout | Kind::HistoryFanout => server == "soket",
        kind if kind.is_sio() => server::speaks_sio(server),
        _ => server::speaks_ws(server),
    }
}

const HELP: &str = "\
usage: cargo bench --bench load -- [NAMES...] [OPTIONS]

NAMES select servers (soket fastwebsockets tokio-tungstenite uWebSockets.js raw-tcp
socket.io socketioxide RabbitMQ; also fws, tt, uws, raw, sio or node-socketio, sxd, rabbitmq
or rmq; soket-baseline,
another soket binary named by SOKET_BASELINE_BIN, which the default selection includes when
that variable is set)
and cases (echo-16B echo-16B-pipe8 echo-4KiB echo-64KiB handshake idle fanout, the
Socket.IO cases sio-connect sio-idle sio-fanout, stomp-fanout, and the permessage-deflate
cases deflate-fanout deflate-idle deflate-idle-ctx, and cluster-fanout: the fan-out over three
soket nodes joined through a redis-server the case starts, and history-fanout: fanout with
--history-size 1000; a prefix such as `echo` selects
several; `sio` selects the socket.io server and the sio-* cases). Default: everything. A
server runs only the cases it speaks: socket.io and socketioxide the sio-* cases, RabbitMQ
(Debian's rabbitmq-server with its web_stomp plugin) stomp-fanout, soket alone the deflate-*
cases, history-fanout and cluster-fanout (skipped when /usr/bin/redis-server is missing), the WebSocket peers
the others, soket all of them.

  --runs N                 runs per case and server; the table shows medians (default 3)
  --quick                  one short run with smaller counts: a smoke test
  --duration SECS          measured window per case (default 3)
  --warmup SECS            load before the window (default 0.5)
  --servers a,b  --cases a,b   the same as NAMES
  --idle-conns N           idle connections, and idle Socket.IO sessions (default 5000)
  --fanout-conns N         fan-out connections, Socket.IO sessions and STOMP subscribers, one
                           sender (default 1000)
  --fanout-window N        fan-out rounds in flight (default 16)
  --handshake-parallel N   handshakes in parallel (default 32)
  --handshake-cap N        most handshakes per case (default 100000)
  --no-pin                 do not pin server and client to CPUs 0 and 1
  --nice N                 renice the client and the servers it starts (and their session's
                           autogroup, restored at the end) to N: -10 on a machine shared with
                           other work (negative values need root)
  --no-build               do not (re)build benches/peers, nor `npm ci` a Node peer
                           (uWebSockets.js, socket.io) whose node_modules is missing (it is
                           then skipped)
  --json PATH              where to write the results (default target/load-bench.json)
";

#[derive(Clone)]
struct Args {
    runs: usize,
    quick: bool,
    timing: Timing,
    servers: Vec<&'static str>,
    cases: Vec<&'static CaseDef>,
    idle_conns: usize,
    fanout_conns: usize,
    fanout_window: usize,
    hs_parallel: usize,
    hs_cap: u64,
    pin: bool,
    nice: Option<i32>,
    build: bool,
    json: Option<PathBuf>,
}

fn server_named(word: &str) -> Option<&'static str> {
    let name = match word {
        "fws" | "fastws" => "fastwebsockets",
        "tt" | "tungstenite" => "tokio-tungstenite",
        "raw" | "tcp" => "raw-tcp",
        "uws" | "uwebsockets" | "uwebsockets.js" | "uws.js" => UWS,
        "sio" | "socketio" | "node-socketio" => SOCKETIO,
        "sxd" => SOCKETIOXIDE,
        "rabbitmq" | "rmq" | "rabbit" => RABBITMQ,
        other => other,
    };
    SERVERS.iter().copied().find(|s| *s == name)
}

fn cases_named(word: &str) -> Vec<&'static CaseDef> {
    let word = word.to_ascii_lowercase();
    if let Some(exact) = CASES.iter().find(|c| c.name.to_ascii_lowercase() == word) {
        return vec![exact];
    }
    CASES.iter().filter(|c| c.name.to_ascii_lowercase().starts_with(&word)).collect()
}

fn parse_args() -> Result<Option<Args>, String> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.iter().any(|a| a == "--help" || a == "-h") {
        print!("{HELP}");
        return Ok(None);
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then do nothing heavy.
    if !raw.iter().any(|a| a == "--bench") {
        println!("load: end-to-end load benchmark; run it with `cargo bench --bench load` (see --help)");
        return Ok(None);
    }
    let quick = raw.iter().any(|a| a == "--quick");
    let mut args = Args {
        runs: if quick { 1 } else { 3 },
        quick,
        timing: Timing {
            warmup: Duration::from_millis(if quick { 200 } else { 500 }),
            measure: Duration::from_millis(if quick { 700 } else { 3000 }),
        },
        servers: Vec::new(),
        cases: Vec::new(),
        idle_conns: if quick { 1000 } else { 5000 },
        fanout_conns: if quick { 200 } else { 1000 },
        fanout_window: 16,
        hs_parallel: 32,
        hs_cap: if quick { 30_000 } else { 100_000 },
        pin: true,
        nice: None,
        build: true,
        json: None,
    };
    let mut it = raw.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        let num = |v: String, name: &str| v.parse::<f64>().map_err(|_| format!("{name}: `{v}` is not a number"));
        match arg.as_str() {
            "--bench" | "--quick" => {}
            "--runs" => args.runs = num(value("--runs")?, "--runs")?.max(1.0) as usize,
            "--duration" => args.timing.measure = Duration::from_secs_f64(num(value(arg)?, arg)?.max(0.1)),
            "--warmup" => args.timing.warmup = Duration::from_secs_f64(num(value(arg)?, arg)?.max(0.0)),
            "--idle-conns" => args.idle_conns = num(value(arg)?, arg)?.max(1.0) as usize,
            "--fanout-conns" => args.fanout_conns = num(value(arg)?, arg)?.max(2.0) as usize,
            "--fanout-window" => args.fanout_window = num(value(arg)?, arg)?.max(1.0) as usize,
            "--handshake-parallel" => args.hs_parallel = num(value(arg)?, arg)?.max(1.0) as usize,
            "--handshake-cap" => args.hs_cap = num(value(arg)?, arg)?.max(1.0) as u64,
            "--no-pin" => args.pin = false,
            "--nice" => args.nice = Some(num(value(arg)?, arg)? as i32),
            "--no-build" => args.build = false,
            "--json" => args.json = Some(PathBuf::from(value(arg)?)),
            "--servers" | "--cases" => {
                for word in value(arg)?.split(',').filter(|w| !w.is_empty()) {
                    select(&mut args, word)?;
                }
            }
            word if !word.starts_with('-') => select(&mut args, word)?,
            other => return Err(format!("unknown option {other} (see --help)")),
        }
    }
    if args.servers.is_empty() {
        let with_baseline = std::env::var_os(BASELINE_ENV).is_some();
        args.servers = SERVERS.into_iter().filter(|s| *s != BASELINE || with_baseline).collect();
    }
    if args.cases.is_empty() {
        args.cases = CASES.iter().collect();
    }
    args.servers.sort_by_key(|s| SERVERS.iter().position(|x| x == s));
    args.cases.sort_by_key(|c| CASES.iter().position(|x| x.name == c.name));
    Ok(Some(args))
}

/// A word names servers, cases, or both (`sio`: the socket.io server and the sio-* cases).
fn select(args: &mut Args, word: &str) -> Result<(), String> {
    let server = server_named(word);
    if let Some(server) = server
        && !args.servers.contains(&server)
    {
        args.servers.push(server);
    }
    let cases = cases_named(word);
    if server.is_some() && cases.is_empty() {
        return Ok(());
    }
    if cases.is_empty() {
        return Err(format!("`{word}` is neither a server nor a case (see --help)"));
    }
    for case in cases {
        if !args.cases.iter().any(|c| c.name == case.name) {
            args.cases.push(case);
        }
    }
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => return,
        Err(e) => {
            eprintln!("load: {e}");
            std::process::exit(2);
        }
    };
    let mut autogroup_nice = None;
    let result = run(&args, &mut autogroup_nice);
    if let Some(old) = autogroup_nice {
        server::restore_autogroup(old);
    }
    if let Err(e) = result {
        eprintln!("load: {e}");
        std::process::exit(1);
    }
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

fn build_peers(root: &Path) -> Result<PathBuf, String> {
    let manifest = root.join("benches/peers/Cargo.toml");
    let peers_target = root.join("benches/peers/target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("building peers: cargo build --release --manifest-path {}", manifest.display());
    let status = Command::new(cargo)
        .args(["build", "--release", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&peers_target)
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .map_err(|e| format!("cannot run cargo for the peers: {e}"))?;
    if !status.success() {
        return Err(format!("building the peers failed ({status})"));
    }
    Ok(peers_target.join("release"))
}

/// Whether a Node peer (uWebSockets.js, socket.io) can run: `node` is there, and its
/// `node_modules` is installed (by `npm ci` from the committed lock file when missing, unless
/// `--no-build`). `Err` says why it is skipped; a Node-less machine still benchmarks the others.
fn prepare_node(server: &str, build: bool) -> Result<(), String> {
    let dir = server::node_dir(server);
    let version = Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .ok_or("`node` not found (install Node.js 20 and npm to include it)")?;
    if !dir.join("node_modules").is_dir() {
        if !build {
            return Err(format!("--no-build, and {} has no node_modules", dir.display()));
        }
        println!("installing the {server} peer: npm ci in {}", dir.display());
        // Scripts off. uWebSockets.js: the server loads the package's prebuilt addon itself, and
        // the optional packages that want a native build belong to the pure-JS fallback it never
        // uses. socket.io: none of its packages has an install script.
        let status = Command::new("npm")
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .map_err(|e| format!("`npm` not found ({e})"))?;
        if !status.success() {
            return Err(format!("`npm ci` in {} failed ({status})", dir.display()));
        }
    }
    println!("{server} peer: node {version}, {}", dir.join("server.js").display());
    Ok(())
}

/// The fan-out case with `args`' receivers, window and timing.
fn fan(
    args: &Args,
    addr: std::net::SocketAddr,
    flavor: Flavor,
    deflate: Option<DeflateOffer>,
    cluster: Option<&cases::ClusterSpec>,
    history: bool,
    srv: &mut server::Running,
) -> Result<Measure, String> {
    cases::fanout(addr, flavor, args.fanout_conns, args.fanout_window, deflate, cluster, history, &args.timing, srv)
}

/// One case on one server: a fresh server process, the case, the server stopped.
fn run_one(args: &Args, case: &CaseDef, server: &str, peers_bin: &Path, logs: &Path) -> Result<Measure, String> {
    let launch = Launch {
        server,
        peers_bin,
        pin_cpu: args.pin.then_some(0),
        nofile: 20_000,
        broadcast: matches!(case.kind, Kind::Fanout),
        // Room for a dedicated decompressor for every idle connection that keeps its context.
        soket_args: match case.kind {
            Kind::DeflateIdle { client_no_context_takeover: false } => {
                vec!["--deflate-max-dedicated".into(), (args.idle_conns + 100).to_string()]
            }
            Kind::HistoryFanout => vec!["--history-size".into(), "1000".into()],
            _ => Vec::new(),
        },
        log: &logs.join(format!("{server}.log")),
    };
    let mut srv = if matches!(case.kind, Kind::ClusterFanout) {
        start_redis_and_node1(&launch, logs)?
    } else {
        server::start(&launch)?
    };
    let addr = srv.addr;
    // Every engine of this case speaks TLS to soket-tls.
    tls::use_tls(server == SOKET_TLS)?;
    let proto = if server == "raw-tcp" { Proto::Raw } else { Proto::Ws("/echo") };
    let sio_proto = Proto::Ws(sio::PATH);
    let result = match case.kind {
        Kind::Echo { conns, size, depth } => {
            cases::echo(addr, proto, &EchoSpec { conns, size, depth }, &args.timing, &mut srv)
        }
        Kind::Handshake => cases::handshakes(addr, proto, false, args.hs_parallel, args.hs_cap, &args.timing, &mut srv),
        Kind::Idle => cases::idle(addr, proto, args.idle_conns, None, &mut srv),
        Kind::Fanout => {
            let flavor = server::flavor(server);
            fan(args, addr, flavor, None, None, false, &mut srv)
        }
        Kind::DeflateFanout => {
            let offer = Some(DeflateOffer { client_no_context_takeover: true });
            let flavor = server::flavor(server);
            fan(args, addr, flavor, offer, None, false, &mut srv)
        }
        Kind::ClusterFanout => match start_cluster(&launch, &mut srv, logs) {
            Ok(spec) => fan(args, addr, Flavor::Soket, None, Some(&spec), false, &mut srv),
            Err(e) => Err(e),
        },
        Kind::HistoryFanout => fan(args, addr, Flavor::Soket, None, None, true, &mut srv),
        Kind::DeflateIdle { client_no_context_takeover } => {
            let offer = Some(DeflateOffer { client_no_context_takeover });
            cases::idle(addr, proto, args.idle_conns, offer, &mut srv)
        }
        Kind::SioConnect => {
            cases::handshakes(addr, sio_proto, true, args.hs_parallel, args.hs_cap, &args.timing, &mut srv)
        }
        Kind::SioIdle => cases::sio_idle(addr, args.idle_conns, &mut srv),
        Kind::SioFanout => fan(args, addr, Flavor::Sio, None, None, false, &mut srv),
        Kind::StompFanout => {
            let flavor = server::stomp_flavor(server);
            fan(args, addr, flavor, None, None, false, &mut srv)
        }
    };
    srv.stop();
    result.map_err(|e| {
        // soket answers 404 at /socket.io/ until its Socket.IO server is there: say so plainly.
        if case.kind.is_sio() && e.contains("upgrade answered Some(404)") {
            format!("{server} has no Socket.IO server at /socket.io/ (it answered the upgrade with 404)")
        } else {
            e
        }
    })
}

/// The `--redis` flags of cluster node `k` (1-based).
fn node_args(redis: std::net::SocketAddr, k: usize) -> Vec<String> {
    vec!["--redis".into(), format!("redis://{redis}"), "--node-id".into(), format!("n{k}")]
}

/// `launch` for one cluster node: its own flags and log.
fn node_launch<'b>(launch: &Launch<'b>, soket_args: Vec<String>, log: &'b Path) -> Launch<'b> {
    Launch {
        server: launch.server,
        peers_bin: launch.peers_bin,
        pin_cpu: launch.pin_cpu,
        nofile: launch.nofile,
        broadcast: launch.broadcast,
        soket_args,
        log,
    }
}

/// `cluster-fanout`: a fresh Redis, then node 1 (the returned server, Redis held by it).
fn start_redis_and_node1(launch: &Launch<'_>, logs: &Path) -> Result<server::Running, String> {
    let redis = server::start_redis(launch.pin_cpu, &logs.join("redis-server.log"))?;
    let log = logs.join("soket-n1.log");
    match server::start(&node_launch(launch, node_args(redis.addr, 1), &log)) {
        Ok(mut srv) => {
            srv.redis = Some(Box::new(redis));
            Ok(srv)
        }
        Err(e) => {
            redis.stop();
            Err(e)
        }
    }
}

/// `cluster-fanout`: nodes 2.. beside node 1 (`srv`), on the same CPU; the spec of the whole.
fn start_cluster(launch: &Launch<'_>, srv: &mut server::Running, logs: &Path) -> Result<cases::ClusterSpec, String> {
    let redis = srv.redis.as_ref().map(|r| r.addr).ok_or("no Redis under node 1")?;
    for k in 2..=CLUSTER_NODES {
        let log = logs.join(format!("soket-n{k}.log"));
        srv.nodes.push(server::start(&node_launch(launch, node_args(redis, k), &log))?);
    }
    let mut nodes = vec![srv.addr];
    nodes.extend(srv.nodes.iter().map(|n| n.addr));
    Ok(cases::ClusterSpec { nodes, redis })
}

/// The numbers of one run, derived from its window.
#[derive(Clone, Copy, Debug, Default)]
struct Row {
    rate: f64,
    mbps: f64,
    srv_us: f64,
    srv_core: f64,
    cli_core: f64,
    other_core: f64,
    rss: f64,
}

fn row(m: &Measure) -> Row {
    let ops = m.ops.max(1) as f64;
    Row {
        rate: m.ops as f64 / m.secs,
        mbps: m.bytes as f64 / m.secs / 1e6,
        srv_us: m.server_cpu / ops * 1e6,
        srv_core: m.server_cpu / m.secs,
        cli_core: m.client_cpu / m.secs,
        other_core: m.other_cpu / m.secs,
        rss: m.rss_per_conn.unwrap_or(f64::NAN),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn median_row(rows: &[Row]) -> Row {
    let m = |f: fn(&Row) -> f64| median(rows.iter().map(f).collect());
    Row {
        rate: m(|r| r.rate),
        mbps: m(|r| r.mbps),
        srv_us: m(|r| r.srv_us),
        srv_core: m(|r| r.srv_core),
        cli_core: m(|r| r.cli_core),
        other_core: m(|r| r.other_core),
        rss: m(|r| r.rss),
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn run(args: &Args, autogroup_nice: &mut Option<i32>) -> Result<(), String> {
    ws::self_check();
    sio::self_check();
    stomp::self_check();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = target_dir(&root);
    let logs = target.join("load-bench");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let mut servers = args.servers.clone();
    let mut args_cases = args.cases.clone();
    if args_cases.iter().any(|c| matches!(c.kind, Kind::ClusterFanout)) && servers.contains(&"soket") {
        match server::redis_check() {
            Ok(version) => println!("cluster-fanout: {version}, {}", server::REDIS_SERVER),
            Err(why) => {
                println!("skipping cluster-fanout: {why}");
                args_cases.retain(|c| !matches!(c.kind, Kind::ClusterFanout));
            }
        }
    }
    if servers.contains(&RABBITMQ) && args.cases.iter().any(|c| takes_part(c, RABBITMQ)) {
        match server::rabbitmq_check() {
            Ok(version) => println!("{RABBITMQ} peer: {version}"),
            Err(why) => {
                println!("skipping {RABBITMQ}: {why}");
                servers.retain(|s| *s != RABBITMQ);
            }
        }
    }
    for node_peer in args.servers.iter().filter(|s| server::is_node_peer(s)) {
        let runs_a_case = args.cases.iter().any(|c| takes_part(c, node_peer));
        if !runs_a_case {
            continue;
        }
        if let Err(why) = prepare_node(node_peer, args.build) {
            println!("skipping {node_peer}: {why}");
            servers.retain(|s| s != node_peer);
        }
    }
    let needs_peers = servers.iter().any(|s| server::is_cargo_peer(s) && args.cases.iter().any(|c| takes_part(c, s)));
    let peers_bin =
        if needs_peers && args.build { build_peers(&root)? } else { root.join("benches/peers/target/release") };
    let needed_files = args.idle_conns.max(args.fanout_conns) as u64 + 256;
    let nofile = server::ensure_nofile(needed_files)?;
    if let Some(nice) = args.nice {
        *autogroup_nice = server::renice_self(nice)?;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = args.pin && cpus >= 2;
    if pinned {
        server::pin_self(1)?;
    } else if args.pin {
        println!("only {cpus} CPU: server and client share it (numbers are not comparable to a pinned run)");
    }
    let args = &Args { pin: pinned, servers, cases: args_cases, ..args.clone() };
    let load_start = loadavg();
    println!(
        "load bench: servers {:?}, cases {:?}, {} run(s), warm-up {:?}, window {:?}, pinned: {pinned}, \
         open files {nofile}, nice {}, load average {load_start}",
        args.servers,
        args.cases.iter().map(|c| c.name).collect::<Vec<_>>(),
        args.runs,
        args.timing.warmup,
        args.timing.measure,
        args.nice.unwrap_or(0),
    );
    // results[case][server] = one entry per run.
    let mut results: BTreeMap<(usize, usize), Vec<Result<Measure, String>>> = BTreeMap::new();
    for run_no in 1..=args.runs {
        for (ci, case) in args.cases.iter().enumerate() {
            for (si, server) in args.servers.iter().enumerate() {
                if !takes_part(case, server) {
                    continue;
                }
                let result = run_one(args, case, server, &peers_bin, &logs);
                match &result {
                    Ok(m) => {
                        let r = row(m);
                        println!(
                            "run {run_no}/{} {:<15} {:<18} {:>9} {}/s  {:>8} MB/s  srv {:>7.2} us/op ({:>3.0}% core)  \
                             cli {:>3.0}%  other {:>3.0}%{}{}",
                            args.runs,
                            case.name,
                            server,
                            human(r.rate),
                            case.unit,
                            mbps(r.mbps),
                            r.srv_us,
                            r.srv_core * 100.0,
                            r.cli_core * 100.0,
                            r.other_core * 100.0,
                            if r.rss.is_nan() { String::new() } else { format!("  RSS {:.0} B/conn", r.rss) },
                            if m.note.is_empty() { String::new() } else { format!("  [{}]", m.note) },
                        );
                    }
                    Err(e) => println!("run {run_no}/{} {:<15} {:<18} ERROR: {e}", args.runs, case.name, server),
                }
                results.entry((ci, si)).or_default().push(result);
            }
        }
    }
    let load_end = loadavg();
    let report = report(args, &results);
    print!("{}", report.text);
    println!(
        "load average: {load_start} at the start, {load_end} at the end (2 CPUs: above ~2 means other work competed)"
    );
    let json_path = args.json.clone().unwrap_or_else(|| target.join("load-bench.json"));
    let doc = json!({
        "machine": { "cpus": cpus, "pinned": pinned, "loadavg_start": load_start, "loadavg_end": load_end },
        "config": {
            "runs": args.runs, "quick": args.quick,
            "warmup_s": args.timing.warmup.as_secs_f64(), "window_s": args.timing.measure.as_secs_f64(),
            "idle_conns": args.idle_conns, "fanout_conns": args.fanout_conns, "fanout_window": args.fanout_window,
            "handshake_parallel": args.hs_parallel, "handshake_cap": args.hs_cap,
            "nice": args.nice.unwrap_or(0),
        },
        "results": report.json,
        "targets": report.targets,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text + "\n").map_err(|e| format!("{}: {e}", json_path.display()))?;
    println!("wrote {} (server logs in {})", json_path.display(), logs.display());
    Ok(())
}

fn human(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn opt(x: f64, prec: usize) -> String {
    if x.is_nan() { "-".into() } else { format!("{x:.prec$}") }
}

/// MB/s, or `-` for cases that move no payload (handshakes, idle connections).
fn mbps(x: f64) -> String {
    if x > 0.0 { opt(x, 2) } else { "-".into() }
}

struct Report {
    text: String,
    json: Vec<Value>,
    targets: Vec<Value>,
}

fn report(args: &Args, results: &BTreeMap<(usize, usize), Vec<Result<Measure, String>>>) -> Report {
    use std::fmt::Write as _;
    let mut text = String::new();
    let mut json = Vec::new();
    let mut medians: BTreeMap<(&str, &str), Row> = BTreeMap::new();
    let _ = writeln!(
        text,
        "\nmedians of {} run(s). op = one message echoed (msg), one connect+upgrade+close (hs), one idle \
         connection opened (conn), one Socket.IO session connected (sess: to the namespace, then closed in \
         sio-connect, left idle in sio-idle), one message delivered to one receiver (deliv). MB/s = payload, \
         one way.\n\
         srv us/op = server utime+stime per op; srv%/cli%/other% = share of one core used by the server, the load \
         client and the rest of the machine (noise). x = soket / that server: cpu and RSS lower is better, rate \
         higher is better.",
        args.runs
    );
    let _ = writeln!(
        text,
        "{:<15} {:<18} {:>9} {:<5} {:>9} {:>10} {:>5} {:>5} {:>6} {:>10} | {:>7} {:>7} {:>7}",
        "case",
        "server",
        "rate/s",
        "unit",
        "MB/s",
        "srv us/op",
        "srv%",
        "cli%",
        "other%",
        "RSS B/conn",
        "cpu x",
        "rate x",
        "RSS x"
    );
    for (ci, case) in args.cases.iter().enumerate() {
        let soket_row = args.servers.iter().position(|s| *s == "soket").and_then(|si| {
            let rows: Vec<Row> = results.get(&(ci, si))?.iter().filter_map(|r| r.as_ref().ok()).map(row).collect();
            (!rows.is_empty()).then(|| median_row(&rows))
        });
        for (si, server) in args.servers.iter().enumerate() {
            if !takes_part(case, server) {
                continue;
            }
            let runs = results.get(&(ci, si)).map(Vec::as_slice).unwrap_or(&[]);
            let rows: Vec<Row> = runs.iter().filter_map(|r| r.as_ref().ok()).map(row).collect();
            let errors: Vec<&String> = runs.iter().filter_map(|r| r.as_ref().err()).collect();
            let run_json: Vec<Value> = runs
                .iter()
                .map(|r| match r {
                    Ok(m) => {
                        let x = row(m);
                        json!({
                            "ops": m.ops, "secs": m.secs, "bytes": m.bytes, "server_cpu_s": m.server_cpu,
                            "client_cpu_s": m.client_cpu, "other_cpu_s": m.other_cpu, "rate": x.rate,
                            "server_us_per_op": x.srv_us, "rss_per_conn": m.rss_per_conn, "note": m.note,
                            "fanout": m.fan.as_ref().map(|f| fan_json(m, f)),
                        })
                    }
                    Err(e) => json!({ "error": e }),
                })
                .collect();
            if rows.is_empty() {
                let _ = writeln!(
                    text,
                    "{:<15} {:<18} ERROR: {}",
                    case.name,
                    server,
                    errors.first().map_or("no run", |e| e)
                );
                json.push(json!({ "case": case.name, "server": server, "unit": case.unit, "runs": run_json }));
                continue;
            }
            let med = median_row(&rows);
            medians.insert((case.name, server), med);
            let (cpu_x, rate_x, rss_x) = match soket_row {
                Some(s) => (s.srv_us / med.srv_us, s.rate / med.rate, s.rss / med.rss),
                None => (f64::NAN, f64::NAN, f64::NAN),
            };
            let _ = writeln!(
                text,
                "{:<15} {:<18} {:>9} {:<5} {:>9} {:>10} {:>5.0} {:>5.0} {:>6.0} {:>10} | {:>7} {:>7} {:>7}{}",
                case.name,
                server,
                human(med.rate),
                case.unit,
                mbps(med.mbps),
                opt(med.srv_us, 2),
                med.srv_core * 100.0,
                med.cli_core * 100.0,
                med.other_core * 100.0,
                opt(med.rss, 0),
                opt(cpu_x, 2),
                opt(rate_x, 2),
                opt(rss_x, 2),
                if errors.is_empty() { String::new() } else { format!("  ({} failed run(s))", errors.len()) },
            );
            json.push(json!({
                "case": case.name, "server": server, "unit": case.unit,
                "median": {
                    "rate": med.rate, "mb_per_s": med.mbps, "server_us_per_op": med.srv_us,
                    "server_core": med.srv_core, "client_core": med.cli_core, "other_core": med.other_core,
                    "rss_per_conn": if med.rss.is_nan() { Value::Null } else { json!(med.rss) },
                },
                "soket_over_this": { "cpu_per_op": nan_null(cpu_x), "rate": nan_null(rate_x), "rss": nan_null(rss_x) },
                "runs": run_json,
            }));
        }
    }
    fan_report(&mut text, args, results);
    let targets = targets(&medians);
    if !targets.is_empty() {
        let _ = writeln!(text, "\ntargets:");
        for t in &targets {
            let _ = writeln!(
                text,
                "  {} {:<58} soket {:>9} vs limit {:>9}",
                if t["pass"] == true { "PASS" } else { "FAIL" },
                t["target"].as_str().unwrap_or(""),
                opt(t["value"].as_f64().unwrap_or(f64::NAN), 2),
                opt(t["limit"].as_f64().unwrap_or(f64::NAN), 2),
            );
        }
    }
    Report { text, json, targets }
}

fn fan_json(m: &Measure, f: &cases::FanStats) -> Value {
    let lat = |v: &[(f64, f64)]| -> Vec<Value> {
        v.iter().map(|(p50, p99)| json!({ "p50_us": nan_null(*p50), "p99_us": nan_null(*p99) })).collect()
    };
    let cluster = f.cluster.as_ref().map(|c| {
        json!({
            "messages_said": c.said,
            "backplane_out_per_msg": c.out_per_msg,
            "backplane_in_per_msg": c.in_per_msg,
            "redis_commands_per_msg": c.redis_cmds_per_msg,
            "redis_cpu_s": c.redis_cpu,
            "redis_us_per_msg": c.redis_cpu / c.said.max(1) as f64 * 1e6,
            "redis_us_per_delivery": c.redis_cpu / m.ops.max(1) as f64 * 1e6,
        })
    });
    json!({ "latency_by_node": lat(&f.latency), "latency_one_at_a_time_by_node": lat(&f.single),
        "latency_one_at_a_time_first_per_node": lat(&f.single_first), "cluster": cluster })
}

/// soket's fan-out extras, medians over the runs: delivery latency by node, and for the
/// cluster what crossed Redis per message said and what Redis itself spent.
fn fan_report(text: &mut String, args: &Args, results: &BTreeMap<(usize, usize), Vec<Result<Measure, String>>>) {
    use std::fmt::Write as _;
    let Some(si) = args.servers.iter().position(|s| *s == "soket") else { return };
    let mut head = false;
    for (ci, case) in args.cases.iter().enumerate() {
        let runs: Vec<(&Measure, &cases::FanStats)> = results
            .get(&(ci, si))
            .map(|v| v.iter().filter_map(|r| r.as_ref().ok()).filter_map(|m| Some((m, m.fan.as_ref()?))).collect())
            .unwrap_or_default();
        if runs.is_empty() {
            continue;
        }
        if !head {
            head = true;
            let _ = writeln!(
                text,
                "\nsoket fan-out extras (medians of the runs). latency = from queueing the sender's frame to the \
                 client reading the delivery, {} rounds in flight, p50/p99 in us, by the receivers' node \
                 (node 1 holds the sender); then after the window, up to {PROBE} rounds one at a time (each sent \
                 once the last one reached every receiver).",
                args.fanout_window,
                PROBE = cases::PROBE_ROUNDS,
            );
        }
        let nodes = runs.iter().map(|(_, f)| f.latency.len()).max().unwrap_or(0);
        let lat = |which: fn(&cases::FanStats) -> &Vec<(f64, f64)>| -> String {
            (0..nodes)
                .map(|k| {
                    let p = |q: fn(&(f64, f64)) -> f64| {
                        median(runs.iter().filter_map(|(_, f)| which(f).get(k)).map(q).collect())
                    };
                    format!("node {} {}/{}", k + 1, opt(p(|x| x.0), 0), opt(p(|x| x.1), 0))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            text,
            "  {:<15} latency p50/p99 us, {} rounds in flight: {}\n  {:<15} latency p50/p99 us, one round at a \
             time: {}\n  {:<15} the same, first receiver per node only: {}",
            case.name,
            args.fanout_window,
            lat(|f| &f.latency),
            "",
            lat(|f| &f.single),
            "",
            lat(|f| &f.single_first),
        );
        let cl: Vec<(&Measure, &cases::ClusterStats)> =
            runs.iter().filter_map(|(m, f)| Some((*m, f.cluster.as_ref()?))).collect();
        if cl.is_empty() {
            continue;
        }
        let per_node = |get: fn(&cases::ClusterStats) -> &Vec<f64>| -> String {
            (0..nodes)
                .map(|k| opt(median(cl.iter().filter_map(|(_, c)| get(c).get(k).copied()).collect()), 3))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let said = median(cl.iter().map(|(_, c)| c.said as f64).collect());
        let cmds = median(cl.iter().map(|(_, c)| c.redis_cmds_per_msg).collect());
        let redis_msg = median(cl.iter().map(|(_, c)| c.redis_cpu / c.said.max(1) as f64 * 1e6).collect());
        let redis_deliv = median(cl.iter().map(|(m, c)| c.redis_cpu / m.ops.max(1) as f64 * 1e6).collect());
        let nodes_msg = median(cl.iter().map(|(m, c)| m.server_cpu / c.said.max(1) as f64 * 1e6).collect());
        let _ = writeln!(
            text,
            "  {:<15} per message said ({} said in the window): PUBLISH (backplane out) by node {}; \
             taken from Redis (backplane in) by node {}; Redis commands {}\n  {:<15} CPU: the nodes {} us/msg \
             (in srv us/op above: all nodes per delivery); Redis {} us/msg = {} us/delivery",
            case.name,
            opt(said, 0),
            per_node(|c| &c.out_per_msg),
            per_node(|c| &c.in_per_msg),
            opt(cmds, 3),
            "",
            opt(nodes_msg, 1),
            opt(redis_msg, 2),
            opt(redis_deliv, 3),
        );
    }
}

fn nan_null(x: f64) -> Value {
    if x.is_nan() { Value::Null } else { json!(x) }
}

/// The issue's goals, checked against the medians that are there.
fn targets(m: &BTreeMap<(&str, &str), Row>) -> Vec<Value> {
    let mut out = Vec::new();
    // `at_most`: value <= limit (false: value >= limit); `strictly` makes it < (or >).
    let mut check_cmp = |target: String, value: f64, limit: f64, at_most: bool, strictly: bool| {
        let pass = match (at_most, strictly) {
            (true, false) => value <= limit,
            (true, true) => value < limit,
            (false, false) => value >= limit,
            (false, true) => value > limit,
        };
        out.push(json!({ "target": target, "value": value, "limit": limit, "pass": pass }));
    };
    let mut check =
        |target: String, value: f64, limit: f64, at_most: bool| check_cmp(target, value, limit, at_most, false);
    for case in ["echo-16B", "echo-16B-pipe8"] {
        let Some(s) = m.get(&(case, "soket")) else { continue };
        if let Some(tt) = m.get(&(case, "tokio-tungstenite")) {
            check(format!("{case} srv us/msg <= 0.65x tokio-tungstenite"), s.srv_us, 0.65 * tt.srv_us, true);
            check(format!("{case} msg/s >= tokio-tungstenite"), s.rate, tt.rate, false);
        }
        if let Some(f) = m.get(&(case, "fastwebsockets")) {
            check(format!("{case} srv us/msg <= 0.85x fastwebsockets"), s.srv_us, 0.85 * f.srv_us, true);
            check(format!("{case} msg/s >= fastwebsockets"), s.rate, f.rate, false);
        }
    }
    if let (Some(s), Some(tt)) = (m.get(&("echo-64KiB", "soket")), m.get(&("echo-64KiB", "tokio-tungstenite"))) {
        check("echo-64KiB MB/s >= 1.1x tokio-tungstenite".into(), s.mbps, 1.1 * tt.mbps, false);
    }
    if let Some(s) = m.get(&("idle", "soket")) {
        check("idle RSS B/conn <= 512".into(), s.rss, 512.0, true);
    }
    // TLS: wss echo of 64 KiB messages keeps most of the plaintext throughput.
    if let (Some(t), Some(s)) = (m.get(&("echo-64KiB", SOKET_TLS)), m.get(&("echo-64KiB", "soket"))) {
        check("echo-64KiB over TLS MB/s >= 0.8x plaintext".into(), t.mbps, 0.8 * s.mbps, false);
    }
    if let (Some(s), Some(f)) = (m.get(&("fanout", "soket")), m.get(&("fanout", "fastwebsockets"))) {
        check("fanout srv us/delivery <= 1/8 fastwebsockets".into(), s.srv_us, f.srv_us / 8.0, true);
    }
    // The Socket.IO goals: against Node's socket.io (the reference) and socketioxide.
    if let Some(s) = m.get(&("sio-fanout", "soket")) {
        if let Some(n) = m.get(&("sio-fanout", SOCKETIO)) {
            check("sio-fanout srv us/delivery <= 1/10 socket.io".into(), s.srv_us, n.srv_us / 10.0, true);
        }
        if let Some(x) = m.get(&("sio-fanout", SOCKETIOXIDE)) {
            check("sio-fanout srv us/delivery <= 1/2 socketioxide".into(), s.srv_us, x.srv_us / 2.0, true);
        }
    }
    if let Some(s) = m.get(&("sio-idle", "soket")) {
        check("sio-idle RSS B/session <= 1024".into(), s.rss, 1024.0, true);
        if let Some(n) = m.get(&("sio-idle", SOCKETIO)) {
            check("sio-idle RSS B/session <= 1/20 socket.io".into(), s.rss, n.rss / 20.0, true);
        }
        if let Some(x) = m.get(&("sio-idle", SOCKETIOXIDE)) {
            check_cmp("sio-idle RSS B/session < socketioxide".into(), s.rss, x.rss, true, true);
        }
    }
    // The STOMP goal: the broker's fan-out costs about what /ws's does, and less than a real broker's.
    if let Some(s) = m.get(&("stomp-fanout", "soket")) {
        if let Some(w) = m.get(&("fanout", "soket")) {
            let target = "stomp-fanout srv us/delivery <= 1.3x soket fanout (/ws)".into();
            check_cmp(target, s.srv_us, 1.3 * w.srv_us, true, false);
        }
        if let Some(r) = m.get(&("stomp-fanout", RABBITMQ)) {
            check_cmp("stomp-fanout srv us/delivery < RabbitMQ".into(), s.srv_us, r.srv_us, true, true);
        }
    }
    // permessage-deflate (issue 10): a fan-out message is compressed once, not per receiver, and
    // a connection in shared mode holds no zlib state.
    if let (Some(d), Some(p)) = (m.get(&("deflate-fanout", "soket")), m.get(&("fanout", "soket"))) {
        let target = "deflate-fanout srv us/delivery <= 1.5x soket fanout".into();
        check_cmp(target, d.srv_us, 1.5 * p.srv_us, true, false);
    }
    // History (issue 13): storing every message costs at most 10% more CPU per delivery.
    if let (Some(h), Some(p)) = (m.get(&("history-fanout", "soket")), m.get(&("fanout", "soket"))) {
        check_cmp("history-fanout srv us/delivery <= 1.1x soket fanout".into(), h.srv_us, 1.1 * p.srv_us, true, false);
    }
    if let (Some(d), Some(p)) = (m.get(&("deflate-idle", "soket")), m.get(&("idle", "soket"))) {
        check_cmp("deflate-idle RSS B/conn <= soket idle + 64".into(), d.rss, p.rss + 64.0, true, false);
    }
    out
}
