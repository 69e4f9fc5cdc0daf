//! The servers under load: soket's release binary, the cargo peers of `benches/peers` and the
//! Node peers of `benches/peers/uws` (uWebSockets.js) and `benches/peers/socketio` (socket.io),
//! each started fresh for every case (pinned to CPU 0, `ulimit -n` raised), and what /proc says
//! about them.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The servers, in table order: soket first, then the peers it is compared with.
pub const SERVERS: [&str; 10] = [
    "soket",
    SOKET_TLS,
    BASELINE,
    "fastwebsockets",
    "tokio-tungstenite",
    UWS,
    "raw-tcp",
    SOCKETIO,
    SOCKETIOXIDE,
    RABBITMQ,
];

/// The same soket binary with `--tls-cert` and `--tls-key` (a certificate made at bench time),
/// every client over TLS: the WebSocket cases over wss beside the plaintext ones.
pub const SOKET_TLS: &str = "soket-tls";

/// Another soket binary (an earlier commit's release build, named by the
/// environment variable [`BASELINE_ENV`]), run beside this one to measure a
/// change in one run. Selected only when that variable is set.
pub const BASELINE: &str = "soket-baseline";

/// Names the baseline binary.
pub const BASELINE_ENV: &str = "SOKET_BASELINE_BIN";

/// The uWebSockets.js peer: not built by cargo, run with `node` from its [`node_dir`].
pub const UWS: &str = "uWebSockets.js";

/// The Node socket.io peer: not built by cargo, run with `node` from its [`node_dir`].
pub const SOCKETIO: &str = "socket.io";

/// The socketioxide peer (a cargo peer).
pub const SOCKETIOXIDE: &str = "socketioxide";

/// The STOMP broker peer: Debian's `rabbitmq-server` package with its `rabbitmq_web_stomp` plugin.
pub const RABBITMQ: &str = "RabbitMQ";

/// Whether `server` is built by `cargo build` in `benches/peers`.
pub fn is_cargo_peer(server: &str) -> bool {
    !matches!(server, "soket" | SOKET_TLS | BASELINE | UWS | SOCKETIO | RABBITMQ)
}

/// Whether `server` runs on Node from an npm project of its own.
pub fn is_node_peer(server: &str) -> bool {
    matches!(server, UWS | SOCKETIO)
}

/// Whether `server` speaks plain WebSocket at `/echo` and `/broadcast` (or raw TCP): the
/// WebSocket cases.
pub fn speaks_ws(server: &str) -> bool {
    !matches!(server, SOCKETIO | SOCKETIOXIDE | RABBITMQ)
}

/// Whether `server` is a soket binary (the cases of soket's own features: permessage-deflate).
pub fn is_soket(server: &str) -> bool {
    matches!(server, "soket" | SOKET_TLS | BASELINE)
}

/// Whether `server` speaks STOMP over WebSocket: the `stomp-fanout` case.
pub fn speaks_stomp(server: &str) -> bool {
    matches!(server, "soket" | BASELINE | RABBITMQ)
}

/// Whether `server` speaks Socket.IO at `/socket.io/`: the `sio-*` cases.
pub fn speaks_sio(server: &str) -> bool {
    matches!(server, "soket" | BASELINE | SOCKETIO | SOCKETIOXIDE)
}

/// A Node peer's npm project (`server.js`, `package-lock.json`, `node_modules`).
pub fn node_dir(server: &str) -> PathBuf {
    let dir = if server == SOCKETIO { "socketio" } else { "uws" };
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peers").join(dir)
}

/// What the client speaks to a server in the fan-out case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Soket,
    WsPeer,
    Raw,
    /// Socket.IO at `/socket.io/` (the `sio-fanout` case, whatever the server).
    Sio,
    /// STOMP over WebSocket at `path` (the `stomp-fanout` case). `named`: each connection logs in
    /// as its own user `rN` (soket, where the login is the chat name); else as `guest`/`guest`.
    Stomp {
        path: &'static str,
        named: bool,
    },
}

impl Flavor {
    /// Whether the sender gets its own message back: Socket.IO's `io.emit` and a STOMP topic
    /// send to every subscriber; the WebSocket broadcasts skip the sender.
    pub fn sender_receives(self) -> bool {
        matches!(self, Flavor::Sio | Flavor::Stomp { .. })
    }
}

/// What the client speaks to `server` in the `stomp-fanout` case.
pub fn stomp_flavor(server: &str) -> Flavor {
    match server {
        RABBITMQ => Flavor::Stomp { path: "/ws", named: false },
        _ => Flavor::Stomp { path: "/stomp", named: true },
    }
}

pub fn flavor(server: &str) -> Flavor {
    match server {
        "soket" | SOKET_TLS | BASELINE => Flavor::Soket,
        "raw-tcp" => Flavor::Raw,
        _ => Flavor::WsPeer,
    }
}

/// The program to run and its arguments, or why it cannot run.
fn command(launch: &Launch<'_>) -> Result<(PathBuf, Vec<String>), String> {
    match launch.server {
        "soket" | BASELINE => {
            let args = ["--listen", "127.0.0.1:0", "--max-connections", "20000"].map(String::from);
            let bin = if launch.server == BASELINE {
                PathBuf::from(std::env::var_os(BASELINE_ENV).ok_or_else(|| format!("{BASELINE_ENV} is not set"))?)
            } else {
                PathBuf::from(env!("CARGO_BIN_EXE_soket"))
            };
            let mut args = args.to_vec();
            args.extend(launch.soket_args.iter().cloned());
            Ok((bin, args))
        }
        SOKET_TLS => {
            let mut args = ["--listen", "127.0.0.1:0", "--max-connections", "20000"].map(String::from).to_vec();
            let (cert, key) = crate::tls::server_files()?;
            args.extend([
                "--tls-cert".into(),
                cert.display().to_string(),
                "--tls-key".into(),
                key.display().to_string(),
            ]);
            args.extend(launch.soket_args.iter().cloned());
            Ok((PathBuf::from(env!("CARGO_BIN_EXE_soket")), args))
        }
        UWS | SOCKETIO => {
            let dir = node_dir(launch.server);
            if !dir.join("node_modules").is_dir() {
                return Err(format!("{} not installed (run `npm ci` in {})", launch.server, dir.display()));
            }
            // `node` itself is the process (`exec`), so /proc/PID is the server, V8 threads included.
            let script = dir.join("server.js").display().to_string();
            Ok((PathBuf::from("node"), vec![script, "0".into()]))
        }
        RABBITMQ => Err("RabbitMQ is started by `start_rabbitmq`".into()),
        other => {
            let bin = launch.peers_bin.join(format!("peer-{other}"));
            if !bin.exists() {
                return Err(format!("{other} not built ({})", bin.display()));
            }
            let mut args = vec!["0".to_string()];
            if launch.broadcast && other == "raw-tcp" {
                args.push("--broadcast".into());
            }
            Ok((bin, args))
        }
    }
}

pub struct Running {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub name: String,
    /// RabbitMQ: its own epmd; `child` is then the leader of a process group (the start script
    /// and the Erlang VM under it), and `pid` the VM's.
    epmd: Option<Child>,
    /// A cluster: the other nodes, whose CPU counts as the server's (this one is node 1).
    pub nodes: Vec<Running>,
    /// A cluster: the Redis server, checked and stopped with the nodes, its CPU counted apart.
    pub redis: Option<Box<Running>>,
}

pub struct Launch<'a> {
    pub server: &'a str,
    pub peers_bin: &'a Path,
    pub pin_cpu: Option<usize>,
    pub nofile: u64,
    pub broadcast: bool,
    /// More flags for a soket binary (the case's needs).
    pub soket_args: Vec<String>,
    pub log: &'a Path,
}

/// Starts the server and waits for its `... listening on ADDR` line.
pub fn start(launch: &Launch<'_>) -> Result<Running, String> {
    if launch.server == RABBITMQ {
        return start_rabbitmq(launch);
    }
    let (bin, args) = command(launch)?;
    // `ulimit` is a shell builtin; `exec` keeps the pid, so /proc/PID is the server itself.
    let pin = match launch.pin_cpu {
        Some(cpu) => format!("exec taskset -c {cpu} \"$0\" \"$@\""),
        None => "exec \"$0\" \"$@\"".into(),
    };
    let script = format!("ulimit -n {n} 2>/dev/null || ulimit -n \"$(ulimit -Hn)\"; {pin}", n = launch.nofile);
    let log = File::options()
        .create(true)
        .append(true)
        .open(launch.log)
        .map_err(|e| format!("log {}: {e}", launch.log.display()))?;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&bin)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        // Keep draining so the server never blocks on a full pipe.
        for _ in lines {}
    });
    let line = match rx.recv_timeout(Duration::from_secs(15)) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            return Err(format!("{} printed no address ({status}); see {}", launch.server, launch.log.display()));
        }
    };
    let addr = line
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .ok_or_else(|| format!("{}: no address in {line:?}", launch.server))?;
    if !addr.ip().is_loopback() {
        let _ = child.kill();
        return Err(format!("{} listens on {addr}, not loopback", launch.server));
    }
    let pid = child.id();
    Ok(Running { child, pid, addr, name: launch.server.to_string(), epmd: None, nodes: Vec::new(), redis: None })
}

impl Running {
    /// `Err` with the exit status when the server died.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => return Err(format!("{} exited during the case: {status}", self.name)),
            Err(e) => return Err(format!("{}: {e}", self.name)),
        }
        for node in &mut self.nodes {
            node.check_alive()?;
        }
        match &mut self.redis {
            Some(redis) => redis.check_alive(),
            None => Ok(()),
        }
    }

    pub fn stop(mut self) {
        for node in std::mem::take(&mut self.nodes) {
            node.stop();
        }
        if let Some(redis) = self.redis.take() {
            redis.stop();
        }
        let Some(mut epmd) = self.epmd.take() else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return;
        };
        // RabbitMQ: SIGTERM to the group lets the script stop the VM; SIGKILL what is left.
        let group = format!("-{}", self.child.id());
        let signal = |sig: &str| {
            let _ = Command::new("kill").args([sig, "--", &group]).stderr(Stdio::null()).status();
        };
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        signal("-KILL");
        let _ = self.child.wait();
        let _ = epmd.kill();
        let _ = epmd.wait();
    }

    /// utime+stime of the server; of a cluster, the sum over its nodes (Redis apart).
    pub fn cpu_secs(&self) -> f64 {
        let own = cpu_secs(&format!("/proc/{}/stat", self.pid)).unwrap_or(f64::NAN);
        own + self.nodes.iter().map(Running::cpu_secs).sum::<f64>()
    }

    /// utime+stime of a cluster's Redis server (NaN without one).
    pub fn redis_cpu_secs(&self) -> f64 {
        self.redis.as_ref().map_or(f64::NAN, |r| r.cpu_secs())
    }

    pub fn rss_bytes(&self) -> Option<u64> {
        rss_bytes(self.pid)
    }
}

/// Clock ticks per second of /proc/*/stat (USER_HZ).
pub fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// utime + stime of a process (all its threads), in seconds.
pub fn cpu_secs(stat_path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

pub fn self_cpu_secs() -> f64 {
    cpu_secs("/proc/self/stat").unwrap_or(f64::NAN)
}

/// VmRSS of a process in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The soft limit on open files of this process.
pub fn self_nofile() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// Raises this process's open-file limit with util-linux `prlimit` (no libc needed); then checks.
pub fn ensure_nofile(needed: u64) -> Result<u64, String> {
    let current = self_nofile().unwrap_or(0);
    if current >= needed {
        return Ok(current);
    }
    let pid = std::process::id().to_string();
    let _ = Command::new("prlimit").args(["--pid", &pid, &format!("--nofile={needed}:{needed}")]).status();
    if self_nofile().unwrap_or(0) < needed {
        let _ = Command::new("prlimit").args(["--pid", &pid, &format!("--nofile={needed}:")]).status();
    }
    let now = self_nofile().unwrap_or(0);
    if now >= needed {
        Ok(now)
    } else {
        Err(format!(
            "the load client may open {now} files but needs {needed}; run it from a shell with `ulimit -n 20000` \
             (or pass --idle-conns/--fanout-conns smaller values)"
        ))
    }
}

/// Pins this whole process (every thread) to `cpu` with util-linux `taskset`.
pub fn pin_self(cpu: usize) -> Result<(), String> {
    let pid = std::process::id().to_string();
    let status = Command::new("taskset")
        .args(["-a", "-cp", &cpu.to_string(), &pid])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("taskset -a -cp {cpu} {pid}: {status}")) }
}

/// Sets this process's nice value (util-linux `renice`; servers started later inherit it). With
/// autogroups on, nice only orders the processes of one session against each other, so the
/// session's autogroup gets `nice` too; its previous value is returned for [`restore_autogroup`].
pub fn renice_self(nice: i32) -> Result<Option<i32>, String> {
    let pid = std::process::id().to_string();
    let status = Command::new("renice")
        .args(["-n", &nice.to_string(), "-p", &pid])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("renice: {e}"))?;
    if !status.success() {
        return Err(format!("renice -n {nice} -p {pid}: {status}"));
    }
    let enabled = std::fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled").is_ok_and(|s| s.trim() == "1");
    if !enabled {
        return Ok(None);
    }
    let old = std::fs::read_to_string("/proc/self/autogroup")
        .ok()
        .and_then(|s| s.split_whitespace().last().and_then(|n| n.parse().ok()));
    std::fs::write("/proc/self/autogroup", nice.to_string()).map_err(|e| format!("/proc/self/autogroup: {e}"))?;
    Ok(old)
}

pub fn restore_autogroup(old: i32) {
    let _ = std::fs::write("/proc/self/autogroup", old.to_string());
}

/// Where Debian's `rabbitmq-server` package puts the broker's start script.
const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const RABBITMQ_LIB: &str = "/usr/lib/rabbitmq/lib";

/// Whether RabbitMQ with the Web STOMP plugin and `epmd` are installed: its version, or why not.
pub fn rabbitmq_check() -> Result<String, String> {
    let install = "install it with `apt-get install rabbitmq-server` (Debian 12: RabbitMQ 3.10, Web STOMP included)";
    if !Path::new(RABBITMQ_SERVER).exists() {
        return Err(format!("{RABBITMQ_SERVER} not found; {install}"));
    }
    let server = std::fs::read_dir(RABBITMQ_LIB)
        .ok()
        .and_then(|dir| dir.flatten().map(|e| e.path()).find(|p| dir_name_starts(p, "rabbitmq_server-")))
        .ok_or_else(|| format!("no {RABBITMQ_LIB}/rabbitmq_server-*; {install}"))?;
    let has_plugin = std::fs::read_dir(server.join("plugins"))
        .is_ok_and(|dir| dir.flatten().any(|e| dir_name_starts(&e.path(), "rabbitmq_web_stomp-")));
    if !has_plugin {
        return Err(format!("no rabbitmq_web_stomp plugin in {}", server.join("plugins").display()));
    }
    let epmd = Command::new("epmd").arg("-names").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if epmd.is_err() {
        return Err(format!("`epmd` (Erlang) not found; {install}"));
    }
    let version = server.file_name().map(|n| n.to_string_lossy().replace("rabbitmq_server-", "")).unwrap_or_default();
    Ok(format!("RabbitMQ {version} with rabbitmq_web_stomp, {RABBITMQ_SERVER}"))
}

fn dir_name_starts(path: &Path, prefix: &str) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix))
}

/// Free loopback ports, all held until every one is picked (so they differ).
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())).collect()
}

/// Waits until something accepts on `port`, while `alive` says the process is there.
fn wait_port(port: u16, limit: Duration, mut alive: impl FnMut() -> Result<(), String>) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + limit;
    loop {
        alive()?;
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("nothing listens on {addr} after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pid of the first process named `comm` among the descendants of `root`.
fn find_descendant(root: u32, comm: &str) -> Option<u32> {
    let mut parents = vec![root];
    for _ in 0..4 {
        let mut children = Vec::new();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            let Some(close) = stat.rfind(')') else { continue };
            let ppid = stat[close + 2..].split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
            if ppid.is_some_and(|p| parents.contains(&p)) {
                if stat.get(stat.find('(')? + 1..close) == Some(comm) {
                    return Some(pid);
                }
                children.push(pid);
            }
        }
        parents = children;
    }
    None
}

/// Starts a fresh RabbitMQ node (empty database) with only Web STOMP on a free loopback port,
/// its own epmd on another one (so no daemon of another session is used or left behind), every
/// file under the logs directory, and waits until Web STOMP accepts connections. Its CPU is the
/// Erlang VM's (`beam.smp`, all its threads); the VM and epmd are pinned like the other servers.
fn start_rabbitmq(launch: &Launch<'_>) -> Result<Running, String> {
    static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = launch.log.parent().unwrap_or(Path::new(".")).join("rabbitmq");
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    // A fresh database every time; nothing else is kept but the logs.
    let _ = std::fs::remove_dir_all(dir.join("mnesia"));
    std::fs::create_dir_all(dir.join("home")).map_err(io)?;
    let ports = free_ports(4)?;
    let (amqp, web_stomp, dist, epmd_port) = (ports[0], ports[1], ports[2], ports[3]);
    let conf = dir.join("rabbitmq.conf");
    std::fs::write(
        &conf,
        format!(
            "listeners.tcp.1 = 127.0.0.1:{amqp}\nstomp.listeners.tcp = none\nweb_stomp.tcp.ip = 127.0.0.1\n\
             web_stomp.tcp.port = {web_stomp}\nweb_stomp.max_connections = infinity\n"
        ),
    )
    .map_err(io)?;
    let plugins = dir.join("enabled_plugins");
    std::fs::write(&plugins, "[rabbitmq_web_stomp].\n").map_err(io)?;
    let log = || {
        File::options()
            .create(true)
            .append(true)
            .open(launch.log)
            .map_err(|e| format!("log {}: {e}", launch.log.display()))
    };
    let pinned = |program: &str| match launch.pin_cpu {
        Some(cpu) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", &cpu.to_string(), program]);
            cmd
        }
        None => Command::new(program),
    };
    let mut epmd = pinned("epmd")
        .args(["-port", &epmd_port.to_string()])
        .stdin(Stdio::null())
        .stdout(log()?)
        .stderr(log()?)
        .spawn()
        .map_err(|e| format!("spawn epmd: {e}"))?;
    let epmd_up = wait_port(epmd_port, Duration::from_secs(10), || match epmd.try_wait() {
        Ok(None) => Ok(()),
        _ => Err(format!("epmd exited; see {}", launch.log.display())),
    });
    if let Err(e) = epmd_up {
        let _ = epmd.kill();
        let _ = epmd.wait();
        return Err(e);
    }
    let pin = match launch.pin_cpu {
        Some(cpu) => format!("exec taskset -c {cpu} \"$0\""),
        None => "exec \"$0\"".into(),
    };
    let script = format!("ulimit -n {n} 2>/dev/null || ulimit -n \"$(ulimit -Hn)\"; {pin}", n = launch.nofile);
    let node = format!("soket-bench-{}-{}@localhost", std::process::id(), STARTS.fetch_add(1, Ordering::Relaxed));
    let path = |p: &str| dir.join(p).display().to_string();
    let spawned = {
        use std::os::unix::process::CommandExt;
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(RABBITMQ_SERVER)
            .env("HOME", path("home"))
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", amqp.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("RABBITMQ_CONFIG_FILE", &conf)
            .env("RABBITMQ_CONF_ENV_FILE", path("rabbitmq-env.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", &plugins)
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_PID_FILE", path("rabbitmq.pid"))
            // The epmd above serves the node; the VM must not start a daemon of its own.
            .env("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "-start_epmd false")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log()?)
            .stderr(log()?)
            .spawn()
    };
    let child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let _ = epmd.kill();
            let _ = epmd.wait();
            return Err(format!("spawn {RABBITMQ_SERVER}: {e}"));
        }
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], web_stomp));
    let mut running = Running {
        pid: child.id(),
        child,
        addr,
        name: RABBITMQ.into(),
        epmd: Some(epmd),
        nodes: Vec::new(),
        redis: None,
    };
    let log_path = launch.log.display().to_string();
    let up = wait_port(web_stomp, Duration::from_secs(120), || {
        running.check_alive().map_err(|e| format!("{e}; see {log_path}"))
    });
    let beam = up.and_then(|()| {
        find_descendant(running.child.id(), "beam.smp")
            .ok_or_else(|| format!("no beam.smp under the RabbitMQ script; see {log_path}"))
    });
    match beam {
        Ok(pid) => {
            running.pid = pid;
            Ok(running)
        }
        Err(e) => {
            running.stop();
            Err(e)
        }
    }
}

/// Debian's Redis server, which the `cluster-fanout` case starts for itself.
pub const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// Whether Redis is installed: its version line, or why not.
pub fn redis_check() -> Result<String, String> {
    let install = "install it with `apt-get install redis-server`";
    if !Path::new(REDIS_SERVER).exists() {
        return Err(format!("{REDIS_SERVER} not found; {install}"));
    }
    let out = Command::new(REDIS_SERVER).arg("--version").output().map_err(|e| format!("{REDIS_SERVER}: {e}"))?;
    if !out.status.success() {
        return Err(format!("`{REDIS_SERVER} --version` failed ({}); {install}", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Starts a throwaway Redis on a free loopback port: no persistence, no files, output to the log,
/// pinned like the servers; waits until it accepts connections.
pub fn start_redis(pin_cpu: Option<usize>, log: &Path) -> Result<Running, String> {
    let port = free_ports(1)?[0];
    let log_file =
        || File::options().create(true).append(true).open(log).map_err(|e| format!("log {}: {e}", log.display()));
    // `taskset` execs Redis, so the child's pid is Redis's own.
    let mut cmd = match pin_cpu {
        Some(cpu) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", &cpu.to_string(), REDIS_SERVER]);
            cmd
        }
        None => Command::new(REDIS_SERVER),
    };
    let dir = log.parent().unwrap_or(Path::new("."));
    let child = cmd
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .args(["--daemonize", "no", "--logfile", "", "--dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(log_file()?)
        .stderr(log_file()?)
        .spawn()
        .map_err(|e| format!("spawn {REDIS_SERVER}: {e}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut running = Running {
        pid: child.id(),
        child,
        addr,
        name: "redis-server".into(),
        epmd: None,
        nodes: Vec::new(),
        redis: None,
    };
    let log_path = log.display().to_string();
    let up =
        wait_port(port, Duration::from_secs(20), || running.check_alive().map_err(|e| format!("{e}; see {log_path}")));
    match up {
        Ok(()) => Ok(running),
        Err(e) => {
            running.stop();
            Err(e)
        }
    }
}

/// The text of `GET /metrics` from a soket node (blocking, bounded by timeouts).
pub fn fetch_metrics(addr: SocketAddr) -> Result<String, String> {
    use std::io::{Read, Write};
    let err = |e: std::io::Error| format!("/metrics of {addr}: {e}");
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(err)?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(err)?;
    s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(err)?;
    let mut body = Vec::new();
    s.take(4 << 20).read_to_end(&mut body).map_err(err)?;
    let text = String::from_utf8_lossy(&body).into_owned();
    if !text.starts_with("HTTP/1.1 200") {
        return Err(format!("/metrics of {addr}: {:?}", text.lines().next().unwrap_or("")));
    }
    Ok(text)
}

/// The value of the sample `name` (with its labels, as written) in a Prometheus text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A field of Redis's `INFO stats` (such as `total_commands_processed`), over a plain RESP link.
pub fn redis_stat(addr: SocketAddr, field: &str) -> Result<u64, String> {
    use std::io::{Read, Write};
    let err = |e: std::io::Error| format!("Redis {addr}: {e}");
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(err)?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(err)?;
    // QUIT after INFO: Redis closes the link, so reading to the end takes both replies.
    s.write_all(b"INFO stats\r\nQUIT\r\n").map_err(err)?;
    let mut reply = Vec::new();
    s.take(1 << 20).read_to_end(&mut reply).map_err(err)?;
    let text = String::from_utf8_lossy(&reply);
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().parse().ok())
        .ok_or_else(|| format!("Redis {addr}: no {field} in INFO stats"))
}
