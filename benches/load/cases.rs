//! The load cases. Each runs against one freshly started server, measures a window after a
//! warm-up, and validates every byte the server sends back. Every loop is bounded in time.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::engine::{Engine, Ev, Out, Proto};
use crate::server::{self, Flavor, Running};
use crate::sio;
use crate::stomp;
use crate::ws::{self, DeflateOffer, Rng};

/// Poll timeout of the loops: short, so that the clock is looked at often.
const TICK: Duration = Duration::from_millis(5);
/// Connections being set up at once: below the listen backlog of 128 that mio and std use, so a
/// briefly descheduled server never overflows its accept queue (a dropped SYN costs 1 s).
const SETUP_IN_FLIGHT: usize = 100;

#[derive(Clone)]
pub struct Timing {
    pub warmup: Duration,
    pub measure: Duration,
}

/// One measured window.
#[derive(Clone, Debug, Default)]
pub struct Measure {
    /// Messages echoed, handshakes completed, connections opened or deliveries made.
    pub ops: u64,
    /// Payload bytes of those operations (one direction).
    pub bytes: u64,
    pub secs: f64,
    pub server_cpu: f64,
    pub client_cpu: f64,
    /// CPU time of everything else on the machine during the window (noise), in seconds.
    pub other_cpu: f64,
    pub rss_per_conn: Option<f64>,
    pub note: String,
    /// soket's fan-out cases: delivery latency, and what crossed Redis in a cluster.
    pub fan: Option<FanStats>,
}

/// What a soket fan-out measured beside the rate and CPU.
#[derive(Clone, Debug, Default)]
pub struct FanStats {
    /// Per node (node 1, the sender's, first): p50 and p99 of the time from queueing the
    /// sender's frame to reading a delivery, in microseconds, over the window's deliveries.
    pub latency: Vec<(f64, f64)>,
    /// The same for rounds sent one at a time after the window (each after the last one's
    /// every delivery): no queueing behind earlier rounds.
    pub single: Vec<(f64, f64)>,
    /// Of those rounds, the first delivery on each node: what the path to the node costs,
    /// without the client's turn through that node's other receivers.
    pub single_first: Vec<(f64, f64)>,
    pub cluster: Option<ClusterStats>,
}

/// soket's one-round-at-a-time latency phase: at most this many rounds, for at most this long.
pub const PROBE_ROUNDS: usize = 200;
const PROBE_SPAN: Duration = Duration::from_millis(1500);

/// A cluster fan-out's window, seen from the nodes' /metrics and Redis's INFO.
#[derive(Clone, Debug, Default)]
pub struct ClusterStats {
    /// Messages the sender said (rounds sent) between the two /metrics reads.
    pub said: u64,
    /// Per node: `soket_backplane_messages_total{direction="out"}` growth per message said.
    pub out_per_msg: Vec<f64>,
    /// Per node: `soket_backplane_messages_total{direction="in"}` growth per message said.
    pub in_per_msg: Vec<f64>,
    /// Growth of Redis's `total_commands_processed` per message said.
    pub redis_cmds_per_msg: f64,
    /// Redis's CPU time in the window, in seconds.
    pub redis_cpu: f64,
}

/// The nodes of a cluster under a fan-out: connection `i` goes to `nodes[i % nodes.len()]`.
pub struct ClusterSpec {
    pub nodes: Vec<SocketAddr>,
    pub redis: SocketAddr,
}

/// One read of the backplane counters of every node, and of Redis's command count.
struct BackplaneSnap {
    said: u64,
    out: Vec<f64>,
    inn: Vec<f64>,
    redis_cmds: f64,
}

fn backplane_snap(spec: &ClusterSpec, said: u64) -> Result<BackplaneSnap, String> {
    let mut snap = BackplaneSnap { said, out: Vec::new(), inn: Vec::new(), redis_cmds: f64::NAN };
    for addr in &spec.nodes {
        let text = server::fetch_metrics(*addr)?;
        let get = |dir: &str| {
            server::metric(&text, &format!("soket_backplane_messages_total{{direction=\"{dir}\"}}"))
                .ok_or_else(|| format!("{addr}: no soket_backplane_messages_total{{direction=\"{dir}\"}} in /metrics"))
        };
        snap.out.push(get("out")?);
        snap.inn.push(get("in")?);
    }
    snap.redis_cmds = server::redis_stat(spec.redis, "total_commands_processed")? as f64;
    Ok(snap)
}

/// Whether every node counts `nodes` live nodes and `users` users in the cluster.
fn cluster_settled(spec: &ClusterSpec, users: usize) -> Result<bool, String> {
    for addr in &spec.nodes {
        let text = server::fetch_metrics(*addr)?;
        let nodes = server::metric(&text, "soket_cluster_nodes");
        let seen = server::metric(&text, "soket_cluster_users");
        if nodes != Some(spec.nodes.len() as f64) || seen != Some(users as f64) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// p50 and p99 of latencies in microseconds.
fn percentiles(mut v: Vec<u32>) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_unstable();
    let at = |q: f64| f64::from(v[((v.len() - 1) as f64 * q).round() as usize]);
    (at(0.50), at(0.99))
}

struct Snap {
    at: Instant,
    ops: u64,
    server: f64,
    client: f64,
    machine: f64,
}

fn snap(srv: &Running, ops: u64) -> Snap {
    Snap { at: Instant::now(), ops, server: srv.cpu_secs(), client: server::self_cpu_secs(), machine: machine_busy() }
}

/// Busy CPU seconds of the whole machine (user, nice, system, irq, softirq, steal) from /proc/stat.
fn machine_busy() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return f64::NAN };
    let Some(line) = stat.lines().next() else { return f64::NAN };
    let fields: Vec<f64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    if fields.len() < 8 {
        return f64::NAN;
    }
    (fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]) / server::clock_ticks()
}

fn window(a: &Snap, b: &Snap, bytes_per_op: u64) -> Measure {
    let ops = b.ops - a.ops;
    let server_cpu = b.server - a.server;
    let client_cpu = b.client - a.client;
    Measure {
        ops,
        bytes: ops * bytes_per_op,
        secs: (b.at - a.at).as_secs_f64(),
        server_cpu,
        client_cpu,
        other_cpu: (b.machine - a.machine - server_cpu - client_cpu).max(0.0),
        rss_per_conn: None,
        note: String::new(),
        fan: None,
    }
}

fn io_err(e: std::io::Error) -> String {
    e.to_string()
}

fn server_ok(srv: &mut Running) -> Result<(), String> {
    srv.check_alive()
}

/// The per-case state the engine's events go to.
trait Case {
    fn handle(&mut self, slot: usize, ev: Ev<'_>, out: &mut Out) -> Result<usize, String>;
    /// Connections fully set up (open, upgraded, joined: what the case needs).
    fn ready(&self) -> usize;
}

/// Services every slot reported ready by the last `wait`.
fn service_ready(eng: &mut Engine, case: &mut impl Case) -> Result<(), String> {
    for i in 0..eng.ready_len() {
        let slot = eng.ready_at(i);
        eng.service(slot, &mut |s, ev, out| case.handle(s, ev, out))?;
    }
    Ok(())
}

/// Opens `n` connections, at most `in_flight` of them being set up at once, and services all of
/// them until the case says all `n` are ready. Slot `i` is connection `i`.
fn open_all(
    eng: &mut Engine,
    srv: &mut Running,
    proto: Proto,
    n: usize,
    in_flight: usize,
    limit: Duration,
    case: &mut impl Case,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut started = 0;
    loop {
        let up = case.ready();
        if up >= n {
            return Ok(());
        }
        while started < n && started - up.min(started) < in_flight {
            let slot = eng.connect(proto).map_err(|e| format!("connect #{started}: {e}"))?;
            if slot != started {
                return Err(format!("slot {slot} for connection #{started}"));
            }
            started += 1;
        }
        if Instant::now() > deadline {
            server_ok(srv)?;
            return Err(format!("only {up} of {n} connections ready after {limit:?}"));
        }
        eng.wait(TICK).map_err(io_err)?;
        service_ready(eng, case)?;
    }
}

/// Services events for `span` (connections stay drained meanwhile).
fn idle_for(eng: &mut Engine, case: &mut impl Case, span: Duration) -> Result<(), String> {
    let until = Instant::now() + span;
    while Instant::now() < until {
        eng.wait(TICK).map_err(io_err)?;
        service_ready(eng, case)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Echo

pub struct EchoSpec {
    pub conns: usize,
    pub size: usize,
    /// Messages in flight per connection (1: closed loop).
    pub depth: usize,
}

/// Distinct messages per connection, sent in rotation, so that order and identity are checked.
const VARIANTS: u64 = 4;

struct EchoConn {
    frames: Vec<Rc<[u8]>>,
    expect: Vec<Rc<[u8]>>,
    sent: u64,
    recv: u64,
    off: usize,
}

struct Echo {
    conns: Vec<EchoConn>,
    opcode: u8,
    sending: bool,
    recv_total: u64,
    in_flight: u64,
    opened: usize,
}

impl Echo {
    /// Checks echoed bytes (`head`: one WebSocket frame; `None`: raw stream bytes) against
    /// what the connection sent, and answers each complete echo with the next message.
    fn check(&mut self, slot: usize, head: Option<ws::Head>, data: &[u8], out: &mut Out) -> Result<(), String> {
        let mut data = data;
        loop {
            let c = &mut self.conns[slot];
            if c.recv >= c.sent {
                return Err(format!("conn {slot}: {} bytes with no message outstanding", data.len()));
            }
            let exp = &c.expect[(c.recv % VARIANTS) as usize];
            if let Some(head) = head {
                let want = if c.off == 0 { self.opcode } else { ws::OP_CONT };
                if head.opcode != want {
                    return Err(format!("conn {slot}: echo opcode {} instead of {want}", head.opcode));
                }
            }
            let take = if head.is_some() { data.len() } else { data.len().min(exp.len() - c.off) };
            if c.off + take > exp.len() || data[..take] != exp[c.off..c.off + take] {
                return Err(format!("conn {slot}: echo #{} differs from what was sent", c.recv));
            }
            c.off += take;
            data = &data[take..];
            let done = match head {
                Some(head) if head.fin => {
                    if c.off != exp.len() {
                        return Err(format!("conn {slot}: echo of {} bytes for {} sent", c.off, exp.len()));
                    }
                    true
                }
                Some(_) => false,
                None => c.off == exp.len(),
            };
            if done {
                c.off = 0;
                c.recv += 1;
                self.recv_total += 1;
                if self.sending {
                    out.push(c.frames[(c.sent % VARIANTS) as usize].clone());
                    c.sent += 1;
                } else {
                    self.in_flight -= 1;
                }
            }
            if data.is_empty() {
                return Ok(());
            }
        }
    }
}

impl Case for Echo {
    fn handle(&mut self, slot: usize, ev: Ev<'_>, out: &mut Out) -> Result<usize, String> {
        match ev {
            Ev::Open => {
                self.opened += 1;
                Ok(0)
            }
            Ev::Frame { head, payload } => self.check(slot, Some(head), payload, out).map(|_| 0),
            Ev::Bytes(data) => self.check(slot, None, data, out).map(|_| data.len()),
            Ev::Close => Err(format!("conn {slot}: server sent close")),
            Ev::Gone(why) => Err(format!("conn {slot}: {why}")),
        }
    }

    fn ready(&self) -> usize {
        self.opened
    }
}

pub fn echo(
    addr: SocketAddr,
    proto: Proto,
    spec: &EchoSpec,
    timing: &Timing,
    srv: &mut Running,
) -> Result<Measure, String> {
    let mut eng = Engine::new(addr).map_err(io_err)?;
    let mut rng = Rng::from_time();
    let opcode = ws::OP_BINARY;
    let conns = (0..spec.conns)
        .map(|_| {
            let mut frames = Vec::new();
            let mut expect = Vec::new();
            for _ in 0..VARIANTS {
                let mut payload = vec![0u8; spec.size];
                rng.fill(&mut payload);
                let frame: Rc<[u8]> = Rc::from(ws::client_frame(opcode, &payload, rng.mask()));
                frames.push(frame.clone());
                // The raw server echoes bytes: it must send back the very frame it got.
                expect.push(if proto == Proto::Raw { frame } else { Rc::from(payload) });
            }
            EchoConn { frames, expect, sent: 0, recv: 0, off: 0 }
        })
        .collect();
    let mut st = Echo { conns, opcode, sending: false, recv_total: 0, in_flight: 0, opened: 0 };
    open_all(&mut eng, srv, proto, spec.conns, SETUP_IN_FLIGHT, Duration::from_secs(20), &mut st)?;
    // Go: every connection sends `depth` messages; each echo is answered by the next message.
    st.sending = true;
    for (slot, c) in st.conns.iter_mut().enumerate() {
        let out = eng.out(slot).ok_or("connection lost before the start")?;
        for _ in 0..spec.depth {
            out.push(c.frames[(c.sent % VARIANTS) as usize].clone());
            c.sent += 1;
        }
        eng.flush(slot);
    }
    let t0 = Instant::now();
    let warm_end = t0 + timing.warmup;
    let end = warm_end + timing.measure;
    let drain_deadline = end + Duration::from_secs(10);
    let (mut a, mut b) = (None, None);
    loop {
        eng.wait(TICK).map_err(io_err)?;
        service_ready(&mut eng, &mut st)?;
        let now = Instant::now();
        if a.is_none() && now >= warm_end {
            a = Some(snap(srv, st.recv_total));
        }
        if b.is_none() && now >= end {
            b = Some(snap(srv, st.recv_total));
            st.sending = false;
            st.in_flight = st.conns.iter().map(|c| c.sent - c.recv).sum();
        }
        if b.is_some() && st.in_flight == 0 {
            break;
        }
        if now > drain_deadline {
            server_ok(srv)?;
            return Err(format!("{} echoes still missing 10 s after the end", st.in_flight));
        }
    }
    server_ok(srv)?;
    let (a, b) = (a.expect("warm-up snapshot"), b.expect("end snapshot"));
    Ok(window(&a, &b, spec.size as u64))
}

// ---------------------------------------------------------------------------------------------
// Handshakes

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hs {
    Pending,
    /// Socket.IO: upgraded, the session being set up.
    Session(sio::Phase),
    Closing {
        got: usize,
    },
    Done,
}

struct Handshakes {
    raw: bool,
    /// Socket.IO connects: the session joins the namespace `/` before the close.
    sio: bool,
    state: Vec<Hs>,
    raw_request: Rc<[u8]>,
    done: u64,
    errors: u64,
    first_error: Option<String>,
    finished: Vec<usize>,
    rng: Rng,
}

impl Case for Handshakes {
    fn handle(&mut self, slot: usize, ev: Ev<'_>, out: &mut Out) -> Result<usize, String> {
        let state = self.state[slot];
        match ev {
            Ev::Open if self.sio => {
                self.state[slot] = Hs::Session(sio::Phase::default());
                Ok(0)
            }
            Ev::Frame { head, payload } if self.sio => {
                match state {
                    Hs::Session(mut phase) => {
                        let got = sio::on_frame(&mut phase, head, payload, out, &mut self.rng)
                            .map_err(|e| format!("conn {slot}: {e}"))?;
                        self.state[slot] = if got == sio::Got::Connected {
                            out.push_vec(ws::client_close(self.rng.mask()));
                            Hs::Closing { got: 0 }
                        } else {
                            Hs::Session(phase)
                        };
                    }
                    // A packet sent before the server saw the close frame (a ping, say).
                    Hs::Closing { .. } => {}
                    _ => return Err(format!("conn {slot}: a frame before the upgrade")),
                }
                Ok(0)
            }
            Ev::Open => {
                // WebSocket: upgraded; now the closing handshake. Raw: connected; one round trip of
                // a request-sized message stands in for the upgrade.
                if self.raw {
                    out.push(self.raw_request.clone());
                } else {
                    out.push_vec(ws::client_close(self.rng.mask()));
                }
                self.state[slot] = Hs::Closing { got: 0 };
                Ok(0)
            }
            Ev::Close if matches!(state, Hs::Closing { .. }) => {
                self.done += 1;
                self.state[slot] = Hs::Done;
                self.finished.push(slot);
                Ok(0)
            }
            Ev::Bytes(data) => {
                let Hs::Closing { got } = state else { return Err(format!("conn {slot}: bytes before open")) };
                let got = got + data.len();
                if data.iter().zip(&self.raw_request[got - data.len()..]).any(|(a, b)| a != b) {
                    return Err(format!("conn {slot}: raw echo differs"));
                }
                if got >= self.raw_request.len() {
                    self.done += 1;
                    self.state[slot] = Hs::Done;
                    self.finished.push(slot);
                } else {
                    self.state[slot] = Hs::Closing { got };
                }
                Ok(data.len())
            }
            Ev::Gone(_) if state == Hs::Done => Ok(0),
            Ev::Gone(why) => {
                self.errors += 1;
                self.first_error.get_or_insert(format!("conn {slot}: {why}"));
                self.state[slot] = Hs::Done;
                Ok(0)
            }
            Ev::Frame { head, .. } => Err(format!("conn {slot}: unexpected frame with opcode {}", head.opcode)),
            Ev::Close => Err(format!("conn {slot}: close before the upgrade finished")),
        }
    }

    fn ready(&self) -> usize {
        0
    }
}

/// Connect, upgrade, close (WebSocket: client close frame, server close frame); `concurrency`
/// of them in parallel; at most `cap` in all. With `sio`, between the upgrade and the close, the
/// Engine.IO open packet, the client's Socket.IO CONNECT and the server's answer.
#[allow(clippy::too_many_arguments)]
pub fn handshakes(
    addr: SocketAddr,
    proto: Proto,
    sio: bool,
    concurrency: usize,
    cap: u64,
    timing: &Timing,
    srv: &mut Running,
) -> Result<Measure, String> {
    let mut eng = Engine::new(addr).map_err(io_err)?;
    let raw_request: Rc<[u8]> = match proto {
        // Same bytes as a real upgrade request, echoed by the raw server.
        Proto::Raw => Rc::from(ws::upgrade_request(&addr.to_string(), "/echo", "dGhlIHNhbXBsZSBub25jZQ==", None, None)),
        Proto::Ws(_) | Proto::Stomp(_) => Rc::from(Vec::new()),
    };
    let mut st = Handshakes {
        raw: proto == Proto::Raw,
        sio,
        state: Vec::new(),
        raw_request,
        done: 0,
        errors: 0,
        first_error: None,
        finished: Vec::new(),
        rng: Rng::from_time(),
    };
    let t0 = Instant::now();
    let warm_end = t0 + timing.warmup;
    let end = warm_end + timing.measure;
    let drain_deadline = end + Duration::from_secs(10);
    let (mut a, mut b) = (None, None);
    let mut started = 0u64;
    loop {
        while b.is_none() && eng.live() < concurrency && started < cap {
            let slot = eng.connect(proto).map_err(|e| format!("connect #{started}: {e}"))?;
            if st.state.len() <= slot {
                st.state.resize(slot + 1, Hs::Done);
            }
            st.state[slot] = Hs::Pending;
            started += 1;
        }
        eng.wait(TICK).map_err(io_err)?;
        for i in 0..eng.ready_len() {
            let slot = eng.ready_at(i);
            eng.service(slot, &mut |s, ev, out| st.handle(s, ev, out))?;
            for slot in st.finished.drain(..) {
                eng.drop_conn(slot);
            }
        }
        if st.errors > 100 {
            return Err(format!("{} failed handshakes, first: {}", st.errors, st.first_error.unwrap_or_default()));
        }
        let now = Instant::now();
        if a.is_none() && now >= warm_end {
            a = Some(snap(srv, st.done));
        }
        if b.is_none() && (now >= end || started >= cap) {
            b = Some(snap(srv, st.done));
        }
        if b.is_some() && eng.live() == 0 {
            break;
        }
        if now > drain_deadline {
            server_ok(srv)?;
            return Err(format!("{} handshakes unfinished 10 s after the end", eng.live()));
        }
    }
    server_ok(srv)?;
    let Some(a) = a else { return Err(format!("the cap of {cap} handshakes was reached during the warm-up")) };
    let mut m = window(&a, &b.expect("end snapshot"), 0);
    if st.errors > 0 {
        m.note = format!("{} failed: {}", st.errors, st.first_error.unwrap_or_default());
    }
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// Idle connections

struct Idle {
    opened: usize,
    raw: bool,
}

impl Case for Idle {
    fn handle(&mut self, slot: usize, ev: Ev<'_>, out: &mut Out) -> Result<usize, String> {
        match ev {
            // Raw: one echoed byte proves the server accepted the connection (as the upgrade does).
            Ev::Open if self.raw => {
                out.push_vec(vec![b'x']);
                Ok(0)
            }
            Ev::Open => {
                self.opened += 1;
                Ok(0)
            }
            Ev::Bytes(b"x") if self.raw => {
                self.opened += 1;
                Ok(1)
            }
            Ev::Frame { head, .. } => Err(format!("conn {slot}: unexpected frame with opcode {}", head.opcode)),
            Ev::Bytes(data) => Err(format!("conn {slot}: {} unexpected bytes", data.len())),
            Ev::Close => Err(format!("conn {slot}: server sent close")),
            Ev::Gone(why) => Err(format!("conn {slot}: {why}")),
        }
    }

    fn ready(&self) -> usize {
        self.opened
    }
}

/// Socket.IO sessions joined to the namespace `/` and then silent (but for the pongs).
struct SioIdle {
    phases: Vec<sio::Phase>,
    rng: Rng,
    connected: usize,
}

impl Case for SioIdle {
    fn handle(&mut self, slot: usize, ev: Ev<'_>, out: &mut Out) -> Result<usize, String> {
        match ev {
            Ev::Open => Ok(0),
            Ev::Frame { head, payload } => {
                let phase = self.phases.get_mut(slot).ok_or_else(|| format!("conn {slot}: no such session"))?;
                match sio::on_frame(phase, head, payload, out, &mut self.rng)
                    .map_err(|e| format!("conn {slot}: {e}"))?
                {
                    sio::Got::Connected => self.connected += 1,
                    sio::Got::Event(p) => {
                        return Err(format!("conn {slot}: unexpected event {:?}", String::from_utf8_lossy(p)));
                    }
                    sio::Got::Opened | sio::Got::Nothing => {}
                }
                Ok(0)
            }
            Ev::Bytes(data) => Err(format!("conn {slot}: {} unexpected bytes", data.len())),
            Ev::Close => Err(format!("conn {slot}: server sent close")),
            Ev::Gone(why) => Err(format!("conn {slot}: {why}")),
        }
    }

    fn ready(&self) -> usize {
        self.connected
    }
}

/// `n` upgraded, silent connections: server RSS per connection. With `deflate`, every upgrade
/// offers permessage-deflate and the 101 must accept it.
pub fn idle(
    addr: SocketAddr,
    proto: Proto,
    n: usize,
    deflate: Option<DeflateOffer>,
    srv: &mut Running,
) -> Result<Measure, String> {
    idle_with(addr, proto, n, deflate, srv, &mut Idle { opened: 0, raw: proto == Proto::Raw })
}

/// `n` Socket.IO sessions over WebSocket, joined to the namespace `/`, then idle: server RSS per
/// session. The client answers the server's Engine.IO pings, so sessions live on past the ping
/// interval (25 s by default) however long the setup takes.
pub fn sio_idle(addr: SocketAddr, n: usize, srv: &mut Running) -> Result<Measure, String> {
    let mut st = SioIdle { phases: vec![sio::Phase::default(); n], rng: Rng::from_time(), connected: 0 };
    idle_with(addr, Proto::Ws(sio::PATH), n, None, srv, &mut st)
}

fn idle_with(
    addr: SocketAddr,
    proto: Proto,
    n: usize,
    deflate: Option<DeflateOffer>,
    srv: &mut Running,
    st: &mut impl Case,
) -> Result<Measure, String> {
    let mut eng = Engine::new(addr).map_err(io_err)?;
    if let Some(offer) = deflate {
        eng.offer_deflate(offer);
    }
    std::thread::sleep(Duration::from_millis(200));
    let rss0 = srv.rss_bytes().ok_or("no VmRSS")?;
    let a = snap(srv, 0);
    open_all(&mut eng, srv, proto, n, SETUP_IN_FLIGHT, Duration::from_secs(60), st)?;
    let b = snap(srv, n as u64);
    // Let the server settle (lazy frees, deferred work), keep the sockets serviced meanwhile.
    idle_for(&mut eng, st, Duration::from_millis(1000))?;
    server_ok(srv)?;
    let rss1 = srv.rss_bytes().ok_or("no VmRSS")?;
    let mut m = window(&a, &b, 0);
    m.rss_per_conn = Some((rss1 as f64 - rss0 as f64) / n as f64);
    m.note = format!("RSS {} KiB -> {} KiB", rss0 / 1024, rss1 / 1024);
    if let Some(offer) = deflate {
        m.note += &format!(", every 101 accepted `{}`", offer.header());
    }
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// Fan-out

struct FanConn {
    joined: bool,
    /// Socket.IO: how far the session is.
    sio: sio::Phase,
    /// soket: `users` pushes still to come (one per later joiner).
    presence_left: i64,
    /// STOMP: the server's byte stream, and whether CONNECTED came (then SUBSCRIBE went out).
    stomp: stomp::Stream,
    stomp_connected: bool,
    got: u64,
}

struct Round {
    expect: Vec<u8>,
    count: u32,
    /// permessage-deflate: the first receiver's compressed message (length, hash).
    wire: Option<(usize, u64)>,
    /// When the sender's frame was queued: the start of every delivery's latency.
    sent: Instant,
    /// Bit `k`: a receiver on node `k` has it (the first receipt per node is timed apart).
    nodes_reached: u64,
}

struct Fanout {
    flavor: Flavor,
    n: usize,
    conns: Vec<FanConn>,
    joined: usize,
    presence_left: i64,
    rounds: VecDeque<Round>,
    first_round: u64,
    delivered: u64,
    rng: Rng,
    /// permessage-deflate agreed: every delivery must come compressed.
    deflate: bool,
    /// soket with `--history-size`: every delivery carries its offset and epoch.
    history: bool,
    /// Compressed deliveries whose bytes differ from the round's first receiver's.
    wire_differs: u64,
    /// Compressed length of the last round's message.
    wire_len: usize,
    /// Nodes the connections are spread over (connection `i` on node `i % nodes`); 1 alone.
    nodes: usize,
    /// While the window is open: each delivery's latency in microseconds, per node.
    latency: Option<Vec<Vec<u32>>>,
    /// While the window is open: per node, the latency of each round's first delivery there.
    first: Option<Vec<Vec<u32>>>,
    /// When the last `users` push came (a cluster waits for them to stop).
    last_push: Instant,
}

/// Length of every delivered fan-out payload (so that the raw reference can
/// cut its byte stream): soket's JSON `message` event for a 16-byte text.
const FAN_PAYLOAD: usize = 71;

fn fan_text(round: u64) -> String {
    format!("fan-out {round:08}")
}

/// The Socket.IO EVENT `bench` with the fan-out payload as its one argument, as the sender sends
/// it and every session (the sender's too) receives it.
fn sio_event(payload: &str) -> Vec<u8> {
    format!(r#"42["bench",{payload}]"#).into_bytes()
}

/// What every receiver gets in `round`, from every server: soket's JSON
/// event, which the peers are sent and broadcast as it is, so all servers
/// deliver the same bytes and CPU per delivery compares like with like.
fn fan_payload(round: u64) -> String {
    let payload = format!(r#"{{"type":"message","room":"lobby","from":"r0","text":"{}"}}"#, fan_text(round));
    assert_eq!(payload.len(), FAN_PAYLOAD, "the raw reference cuts deliveries at this length");
    payload
}

/// Whether `payload` is `expect` (a JSON object) with the history fields soket adds to a room
/// message when `--history-size` is on: `,"offset":N,"epoch":"E"` before the closing brace.
fn with_history_mark(payload: &[u8], expect: &[u8]) -> bool {
    let Some(open) = expect.strip_suffix(b"}") else { return false };
    let Some(rest) = payload.strip_prefix(open).and_then(|r| r.strip_prefix(b",\"offset\":")) else { return false };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && rest[digits..].starts_with(b",\"epoch\":\"") && rest.ends_with(b"\"}")
}

impl Fanout {
    /// permessage-deflate: a delivery must come compressed, in the very bytes every other
    /// receiver of its round got (the server compressed it once, or at least identically).
    fn check_wire(&mut self, slot: usize, deflated: Option<(usize, u64)>) -> Result<(), String> {
        let Some(wire) = deflated else {
            return Err(format!("conn {slot}: delivery #{} came uncompressed", self.conns[slot].got));
        };
        let idx = self.conns[slot].got.checked_sub(self.first_round).map(|i| i as usize);
        let Some(round) = idx.and_then(|i| self.rounds.get_mut(i)) else { return Ok(()) };
        match round.wire {
            None => round.wire = Some(wire),
            Some(first) if first != wire => self.wire_differs += 1,
            Some(_) => {}
        }
        self.wire_len = wire.0;
        Ok(())
    }

    fn delivery(&mut self, slot: usize, payload: &[u8]) -> Result<(), String> {
        // Socket.IO's `io.emit` and STOMP topics go to the sender too; the others' broadcasts skip it.
        if slot == 0 && !self.flavor.sender_receives() {
            return Err("the sender received its own message".into());
        }
        let c = &mut self.conns[slot];
        let idx = c.got.checked_sub(self.first_round).map(|i| i as usize);
        let Some(round) = idx.and_then(|i| self.rounds.get_mut(i)) else {
            return Err(format!("conn {slot}: message #{} of a round never sent", c.got));
        };
        let expected =
            if self.history { with_history_mark(payload, &round.expect) } else { payload == round.expect.as_slice() };
        if !expected {
            return Err(format!(
                "conn {slot}: delivery #{} is {:?}, expected {:?}",
                c.got,
                String::from_utf8_lossy(payload),
                String::from_utf8_lossy(&round.expect)
            ));
        }
        round.count += 1;
        c.got += 1;
        self.delivered += 1;
        if let Some(latency) = &mut self.latency {
            let us = round.sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
            let node = slot % self.nodes;
            latency[node].push(us);
            if round.nodes_reached & (1 << node) == 0 {
                round.nodes_reached |= 1 << node;
                if let Some(first) = &mut self.first {
                    first[node].push(us);
                }
            }
        }
        Ok(())
    }

    /// The frame the sender sends for `round` and the payload receivers must get.
    fn make_round(&mut self, round: u64) -> (Vec<u8>, Vec<u8>) {
        let payload = fan_payload(round);
        match self.flavor {
            Flavor::Soket => {
                let say = format!(r#"{{"type":"say","text":"{}"}}"#, fan_text(round));
                (ws::client_frame(ws::OP_TEXT, say.as_bytes(), self.rng.mask()), payload.into_bytes())
            }
            Flavor::WsPeer => {
                (ws::client_frame(ws::OP_TEXT, payload.as_bytes(), self.rng.mask()), payload.into_bytes())
            }
            Flavor::Raw => (payload.clone().into_bytes(), payload.into_bytes()),
            Flavor::Sio => {
                // The sender's EVENT and every delivery are the same Socket.IO packet.
                let event = sio_event(&payload);
                (ws::client_frame(ws::OP_TEXT, &event, self.rng.mask()), event)
            }
            Flavor::Stomp { .. } => {
                // The JSON text is the body: every MESSAGE must carry it byte for byte.
                let headers = [("destination", STOMP_TOPIC), ("content-type", "text/plain")];
                let send = stomp::frame("SEND", &headers, payload.as_bytes());
                (ws::client_frame(ws::OP_TEXT, &send, self.rng.mask()), payload.into_bytes())
            }
        }
    }

    /// STOMP: the CONNECT of connection `slot`.
    fn stomp_connect(&mut self, slot: usize, out: &mut Out) {
        let Flavor::Stomp { named, .. } = self.flavor else { return };
        let login = format!("r{slot}");
        let mut headers = vec![("accept-version", "1.2"), ("host", "/"), ("heart-beat", "0,0")];
        if named {
            headers.push(("login", &login));
        } else {
            headers.extend([("login", "guest"), ("passcode", "guest")]);
        }
        let connect = stomp::frame("CONNECT", &headers, b"");
        out.push_vec(ws::client_frame(ws::OP_TEXT, &connect, self.rng.mask()));
    }

    /// STOMP: the bytes of one WebSocket frame of connection `slot`, as part of its stream.
    fn stomp_bytes(&mut self, slot: usize, data: &[u8], out: &mut Out) -> Result<(), String> {
        let mut stream = std::mem::take(&mut self.conns[slot].stomp);
        let result = stream.feed(data, &mut |frame| self.stomp_frame(slot, &frame, out));
        self.conns[slot].stomp = stream;
        result
    }

    fn stomp_frame(&mut self, slot: usize, frame: &stomp::Frame<'_>, out: &mut Out) -> Result<(), String> {
        let c = &mut self.conns[slot];
        match frame.command {
            b"MESSAGE" if c.joined => {
                // Headers differ between brokers; these two every STOMP 1.2 broker must set.
                if frame.header("subscription") != Some(STOMP_SUB.as_bytes())
                    || frame.header("destination") != Some(STOMP_TOPIC.as_bytes())
                {
                    return Err(format!(
                        "conn {slot}: MESSAGE for subscription {} destination {}",
                        frame.header_text("subscription"),
                        frame.header_text("destination")
                    ));
                }
                self.delivery(slot, frame.body)
            }
            b"CONNECTED" if !c.stomp_connected => {
                c.stomp_connected = true;
                let receipt = format!("sub-{slot}");
                let headers = [("id", STOMP_SUB), ("destination", STOMP_TOPIC), ("ack", "auto"), ("receipt", &receipt)];
                let subscribe = stomp::frame("SUBSCRIBE", &headers, b"");
                out.push_vec(ws::client_frame(ws::OP_TEXT, &subscribe, self.rng.mask()));
                Ok(())
            }
            b"RECEIPT" if c.stomp_connected && !c.joined => {
                let want = format!("sub-{slot}");
                if frame.header("receipt-id") != Some(want.as_bytes()) {
                    return Err(format!("conn {slot}: RECEIPT for {}", frame.header_text("receipt-id")));
                }
                c.joined = true;
                self.joined += 1;
                Ok(())
            }
            b"ERROR" => Err(format!(
                "conn {slot}: STOMP ERROR {}: {:?}",
                frame.header_text("message"),
                String::from_utf8_lossy(&frame.body[..frame.body.len().min(200)])
            )),
            other => Err(format!(
                "conn {slot}: unexpected {} frame (connected {}, subscribed {})",
                String::from_utf8_lossy(other),
                c.stomp_connected,
                c.joined
            )),
        }
    }
}

/// Where the STOMP fan-out goes, and the one subscription of every connection.
const STOMP_TOPIC: &str = "/topic/lobby";
const STOMP_SUB: &str = "sub-0";

impl Case for Fanout {
    fn handle(&mut self, slot: usize, ev: Ev<'_>, out: &mut Out) -> Result<usize, String> {
        match ev {
            // The server speaks first: Engine.IO's open packet.
            Ev::Open if self.flavor == Flavor::Sio => Ok(0),
            Ev::Frame { head, payload } if self.flavor == Flavor::Sio => {
                let c = &mut self.conns[slot];
                match sio::on_frame(&mut c.sio, head, payload, out, &mut self.rng)
                    .map_err(|e| format!("conn {slot}: {e}"))?
                {
                    sio::Got::Connected => {
                        c.joined = true;
                        self.joined += 1;
                    }
                    sio::Got::Event(event) => self.delivery(slot, event)?,
                    sio::Got::Opened | sio::Got::Nothing => {}
                }
                Ok(0)
            }
            Ev::Open if matches!(self.flavor, Flavor::Stomp { .. }) => {
                self.stomp_connect(slot, out);
                Ok(0)
            }
            // STOMP frames are a byte stream over the messages: any data frame, fragments too.
            Ev::Frame { head, payload } if matches!(self.flavor, Flavor::Stomp { .. }) => {
                if !matches!(head.opcode, ws::OP_TEXT | ws::OP_BINARY | ws::OP_CONT) {
                    return Err(format!("conn {slot}: frame with opcode {}", head.opcode));
                }
                self.stomp_bytes(slot, payload, out).map(|_| 0)
            }
            Ev::Open => {
                if self.flavor == Flavor::Soket {
                    let hello = format!(r#"{{"type":"hello","name":"r{slot}"}}"#);
                    out.push_vec(ws::client_frame(ws::OP_TEXT, hello.as_bytes(), self.rng.mask()));
                } else {
                    self.conns[slot].joined = true;
                    self.joined += 1;
                }
                Ok(0)
            }
            Ev::Frame { head, payload } => {
                if head.opcode != ws::OP_TEXT || !head.fin {
                    return Err(format!("conn {slot}: frame with opcode {} fin {}", head.opcode, head.fin));
                }
                if self.flavor == Flavor::Soket {
                    if !self.conns[slot].joined {
                        let v: serde_json::Value = serde_json::from_slice(payload)
                            .map_err(|e| format!("conn {slot}: bad JSON before welcome: {e}"))?;
                        if v["type"] != "welcome" {
                            return Err(format!("conn {slot}: {v} instead of welcome"));
                        }
                        let others = v["users"].as_array().map_or(0, Vec::len) as i64;
                        let c = &mut self.conns[slot];
                        c.joined = true;
                        c.presence_left = self.n as i64 - 1 - others;
                        self.presence_left += c.presence_left;
                        self.joined += 1;
                        return Ok(0);
                    }
                    if payload.starts_with(br#"{"type":"users""#) {
                        self.last_push = Instant::now();
                        self.conns[slot].presence_left -= 1;
                        self.presence_left -= 1;
                        return Ok(0);
                    }
                }
                if self.deflate {
                    self.check_wire(slot, head.deflated)?;
                }
                self.delivery(slot, payload).map(|_| 0)
            }
            Ev::Bytes(data) => {
                let whole = data.len() / FAN_PAYLOAD * FAN_PAYLOAD;
                for chunk in data[..whole].chunks(FAN_PAYLOAD) {
                    self.delivery(slot, chunk)?;
                }
                Ok(whole)
            }
            Ev::Close => Err(format!("conn {slot}: server sent close")),
            Ev::Gone(why) => Err(format!("conn {slot}: {why}")),
        }
    }

    fn ready(&self) -> usize {
        self.joined
    }
}

/// One room message from connection 0 fanned out to the `n - 1` others, `window` rounds in flight;
/// Socket.IO (`Flavor::Sio`): one `bench` event to all `n`, connection 0 included; STOMP
/// (`Flavor::Stomp`): one SEND to `/topic/lobby`, a MESSAGE to all `n` subscribers. With
/// `deflate` (soket's `/ws`), every upgrade offers permessage-deflate, and every delivery must
/// come compressed, inflate to the round's text, and be the same bytes for every receiver.
/// With `cluster` (soket's `/ws`), the connections are spread over its nodes (the sender on
/// node 1), and the case waits for every node to know every node and user before it starts.
#[allow(clippy::too_many_arguments)]
pub fn fanout(
    addr: SocketAddr,
    flavor: Flavor,
    n: usize,
    window_rounds: usize,
    deflate: Option<DeflateOffer>,
    cluster: Option<&ClusterSpec>,
    history: bool,
    timing: &Timing,
    srv: &mut Running,
) -> Result<Measure, String> {
    let proto = match flavor {
        Flavor::Soket => Proto::Ws("/ws"),
        Flavor::WsPeer => Proto::Ws("/broadcast"),
        Flavor::Raw => Proto::Raw,
        Flavor::Sio => Proto::Ws(sio::PATH),
        Flavor::Stomp { path, .. } => Proto::Stomp(path),
    };
    let mut eng = Engine::new(addr).map_err(io_err)?;
    if let Some(offer) = deflate {
        eng.offer_deflate(offer);
    }
    if let Some(cluster) = cluster {
        eng.spread_over(&cluster.nodes);
    }
    let conns = (0..n)
        .map(|_| FanConn {
            joined: false,
            sio: sio::Phase::default(),
            presence_left: 0,
            stomp: stomp::Stream::default(),
            stomp_connected: false,
            got: 0,
        })
        .collect();
    let mut st = Fanout {
        flavor,
        n,
        conns,
        joined: 0,
        presence_left: 0,
        rounds: VecDeque::new(),
        first_round: 0,
        delivered: 0,
        rng: Rng::from_time(),
        deflate: deflate.is_some(),
        history,
        wire_differs: 0,
        wire_len: 0,
        nodes: cluster.map_or(1, |c| c.nodes.len()),
        latency: None,
        first: None,
        last_push: Instant::now(),
    };
    let setup = Instant::now();
    open_all(&mut eng, srv, proto, n, 64, Duration::from_secs(120), &mut st)?;
    // soket: wait out the presence pushes (each join is pushed to everyone online); peers: let
    // the servers register the last connections (they do it after sending the 101).
    let quiet_limit = Instant::now() + Duration::from_secs(120);
    if let Some(cluster) = cluster {
        // Presence crosses nodes as events, so the count of pushes to come is not exact: wait
        // until every node knows the whole cluster, then until the pushes have stopped for 1 s.
        let mut settled = false;
        let mut checked = Instant::now();
        while !settled || st.last_push.elapsed() < Duration::from_secs(1) {
            if Instant::now() > quiet_limit {
                server_ok(srv)?;
                return Err(format!(
                    "the cluster did not settle in 120 s ({} nodes and {n} users on every node: {settled})",
                    cluster.nodes.len()
                ));
            }
            eng.wait(TICK).map_err(io_err)?;
            service_ready(&mut eng, &mut st)?;
            if !settled && checked.elapsed() >= Duration::from_millis(200) {
                settled = cluster_settled(cluster, n)?;
                checked = Instant::now();
            }
        }
    } else if flavor == Flavor::Soket {
        while st.presence_left > 0 {
            if Instant::now() > quiet_limit {
                return Err(format!("{} presence pushes still missing after 120 s", st.presence_left));
            }
            eng.wait(TICK).map_err(io_err)?;
            service_ready(&mut eng, &mut st)?;
        }
    }
    idle_for(&mut eng, &mut st, Duration::from_millis(200))?;
    server_ok(srv)?;
    let setup_secs = setup.elapsed().as_secs_f64();
    let receivers = if flavor.sender_receives() { n } else { n - 1 } as u32;
    let t0 = Instant::now();
    let warm_end = t0 + timing.warmup;
    let end = warm_end + timing.measure;
    let drain_deadline = end + Duration::from_secs(10);
    let (mut a, mut b) = (None, None);
    let (mut bp_a, mut bp_b) = (None, None);
    let (mut redis_a, mut redis_b) = (f64::NAN, f64::NAN);
    let mut latency = None;
    let mut next_round = 0u64;
    let mut sync_done = false;
    loop {
        // Round 0 is a sync round: nothing more is sent until every receiver has it.
        let in_flight_limit = if sync_done { window_rounds } else { 1 };
        let mut sent = false;
        while b.is_none() && st.rounds.len() < in_flight_limit {
            let (frame, expect) = st.make_round(next_round);
            st.rounds.push_back(Round { expect, count: 0, wire: None, sent: Instant::now(), nodes_reached: 0 });
            eng.out(0).ok_or("the sender's connection is gone")?.push_vec(frame);
            next_round += 1;
            sent = true;
        }
        if sent {
            eng.flush(0);
        }
        eng.wait(TICK).map_err(io_err)?;
        service_ready(&mut eng, &mut st)?;
        while st.rounds.front().is_some_and(|r| r.count == receivers) {
            st.rounds.pop_front();
            st.first_round += 1;
            sync_done = true;
        }
        let now = Instant::now();
        if !sync_done && now > t0 + Duration::from_secs(5) {
            server_ok(srv)?;
            let first = usize::from(!flavor.sender_receives());
            let missing = st.conns.iter().skip(first).filter(|c| c.got == 0).count();
            return Err(format!("{missing} receivers did not get the first message within 5 s"));
        }
        if a.is_none() && now >= warm_end && sync_done {
            // Read /metrics before the CPU snapshot, so serving it stays out of the window.
            if let Some(cluster) = cluster {
                bp_a = Some(backplane_snap(cluster, next_round)?);
            }
            a = Some(snap(srv, st.delivered));
            redis_a = srv.redis_cpu_secs();
            if flavor == Flavor::Soket {
                st.latency = Some(vec![Vec::new(); st.nodes]);
            }
        }
        if b.is_none() && a.is_some() && now >= end {
            b = Some(snap(srv, st.delivered));
            redis_b = srv.redis_cpu_secs();
            latency = st.latency.take();
            if let Some(cluster) = cluster {
                bp_b = Some(backplane_snap(cluster, next_round)?);
            }
        }
        if b.is_some() && st.rounds.is_empty() {
            break;
        }
        if now > drain_deadline {
            server_ok(srv)?;
            return Err(format!("{} rounds incomplete 10 s after the end", st.rounds.len()));
        }
    }
    server_ok(srv)?;
    // soket: after the window, one round at a time for a while: latency without queueing behind
    // earlier rounds (the windowed figures include that).
    let (mut single, mut single_first) = (Vec::new(), Vec::new());
    if flavor == Flavor::Soket {
        st.latency = Some(vec![Vec::new(); st.nodes]);
        st.first = Some(vec![Vec::new(); st.nodes]);
        let probe_end = Instant::now() + PROBE_SPAN;
        let mut probes = 0;
        loop {
            if st.rounds.is_empty() {
                if probes >= PROBE_ROUNDS || Instant::now() >= probe_end {
                    break;
                }
                let (frame, expect) = st.make_round(next_round);
                st.rounds.push_back(Round { expect, count: 0, wire: None, sent: Instant::now(), nodes_reached: 0 });
                eng.out(0).ok_or("the sender's connection is gone")?.push_vec(frame);
                eng.flush(0);
                next_round += 1;
                probes += 1;
            }
            eng.wait(TICK).map_err(io_err)?;
            service_ready(&mut eng, &mut st)?;
            while st.rounds.front().is_some_and(|r| r.count == receivers) {
                st.rounds.pop_front();
                st.first_round += 1;
            }
            if Instant::now() > probe_end + Duration::from_secs(10) {
                server_ok(srv)?;
                return Err("a one-at-a-time round incomplete after 10 s".into());
            }
        }
        single = st.latency.take().unwrap_or_default().into_iter().map(percentiles).collect();
        single_first = st.first.take().unwrap_or_default().into_iter().map(percentiles).collect();
    }
    let (a, b) = (a.expect("warm-up snapshot"), b.expect("end snapshot"));
    let mut m = window(&a, &b, FAN_PAYLOAD as u64);
    m.note = format!("{n} conns, {window_rounds} rounds in flight, setup {setup_secs:.1} s");
    if let Some(latency) = latency {
        let latency: Vec<(f64, f64)> = latency.into_iter().map(percentiles).collect();
        let mut fan = FanStats { latency, single, single_first, cluster: None };
        if let (Some(cluster), Some(x), Some(y)) = (cluster, bp_a, bp_b) {
            let said = y.said - x.said;
            let per = |a: &[f64], b: &[f64]| -> Vec<f64> {
                a.iter().zip(b).map(|(a, b)| (b - a) / said.max(1) as f64).collect()
            };
            let stats = ClusterStats {
                said,
                out_per_msg: per(&x.out, &y.out),
                in_per_msg: per(&x.inn, &y.inn),
                redis_cmds_per_msg: (y.redis_cmds - x.redis_cmds) / said.max(1) as f64,
                redis_cpu: redis_b - redis_a,
            };
            m.note += &format!(
                "; {} nodes; {said} messages said: backplane out/msg {}, in/msg {}, Redis commands/msg {:.3}, \
                 Redis CPU {:.2} us/msg",
                cluster.nodes.len(),
                fmt_list(&stats.out_per_msg),
                fmt_list(&stats.in_per_msg),
                stats.redis_cmds_per_msg,
                stats.redis_cpu / said.max(1) as f64 * 1e6,
            );
            fan.cluster = Some(stats);
        }
        let lat =
            |v: &[(f64, f64)]| v.iter().map(|(p50, p99)| format!("{p50:.0}/{p99:.0}")).collect::<Vec<_>>().join(", ");
        m.note += &format!(
            "; latency p50/p99 us by node: {} ({window_rounds} in flight), {} (one at a time), {} (first per node)",
            lat(&fan.latency),
            lat(&fan.single),
            lat(&fan.single_first)
        );
        m.fan = Some(fan);
    }
    if deflate.is_some() {
        if st.wire_differs > 0 {
            return Err(format!("{} compressed deliveries differ from their round's first", st.wire_differs));
        }
        m.note += &format!(
            "; every delivery compressed, {} B on the wire for {FAN_PAYLOAD} B, the same bytes to all \
             receivers of a round; one deflate of it costs {:.2} us (client, zlib-rs)",
            st.wire_len,
            deflate_cost_us(fan_payload(0).as_bytes()),
        );
    }
    Ok(m)
}

/// What compressing `payload` once costs, as a shared-mode server does it (a reset raw-deflate
/// state, level 6, 15-bit window), timed here: what soket would spend per delivery if it
/// compressed per receiver instead of once per message.
fn deflate_cost_us(payload: &[u8]) -> f64 {
    let mut c = flate2::Compress::new_with_window_bits(flate2::Compression::default(), false, 15);
    const N: u32 = 20_000;
    let t = Instant::now();
    let mut bytes = 0;
    for _ in 0..N {
        bytes += std::hint::black_box(ws::deflate(&mut c, payload)).len();
    }
    std::hint::black_box(bytes);
    t.elapsed().as_secs_f64() * 1e6 / f64::from(N)
}

fn fmt_list(v: &[f64]) -> String {
    v.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join("/")
}
