//! The servers under load: soket's release binary, the cargo peers of `benches/peers` and the
//! Node peers of `benches/peers/uws` (uWebSockets.js) and `benches/peers/socketio` (socket.io),
//! each started fresh for every case (pinned to CPU 0, `ulimit -n` raised), and what /proc says
//! about them.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The servers, in table order: soket first, then the peers it is compared with.
pub const SERVERS: [&str; 8] =
    ["soket", BASELINE, "fastwebsockets", "tokio-tungstenite", UWS, "raw-tcp", SOCKETIO, SOCKETIOXIDE];

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

/// Whether `server` is built by `cargo build` in `benches/peers`.
pub fn is_cargo_peer(server: &str) -> bool {
    !matches!(server, "soket" | BASELINE | UWS | SOCKETIO)
}

/// Whether `server` runs on Node from an npm project of its own.
pub fn is_node_peer(server: &str) -> bool {
    matches!(server, UWS | SOCKETIO)
}

/// Whether `server` speaks plain WebSocket at `/echo` and `/broadcast` (or raw TCP): the
/// WebSocket cases.
pub fn speaks_ws(server: &str) -> bool {
    !matches!(server, SOCKETIO | SOCKETIOXIDE)
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
}

pub fn flavor(server: &str) -> Flavor {
    match server {
        "soket" | BASELINE => Flavor::Soket,
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
            Ok((bin, args.to_vec()))
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
}

pub struct Launch<'a> {
    pub server: &'a str,
    pub peers_bin: &'a Path,
    pub pin_cpu: Option<usize>,
    pub nofile: u64,
    pub broadcast: bool,
    pub log: &'a Path,
}

/// Starts the server and waits for its `... listening on ADDR` line.
pub fn start(launch: &Launch<'_>) -> Result<Running, String> {
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
    Ok(Running { child, pid, addr, name: launch.server.to_string() })
}

impl Running {
    /// `Err` with the exit status when the server died.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited during the case: {status}", self.name)),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn cpu_secs(&self) -> f64 {
        cpu_secs(&format!("/proc/{}/stat", self.pid)).unwrap_or(f64::NAN)
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
