"""Processes for the cluster tests (issue 11): one real redis-server and N soket
nodes joined through it, all on 127.0.0.1, every wait bounded, every process
this module started killed at exit (by its own PID, never by name).

`--single` (or SOKET_CLUSTER_SINGLE=1) starts ONE soket without any Redis
flag and hands it out as every node, so that the scenarios can be checked
against a binary that has no cluster yet; checks that only make sense for a
cluster (its metrics, kill -9 of a node, Redis restarts) are skipped there,
saying so.

Used by scenarios.py and soak.py; see their docstrings for how to run them.
"""

import asyncio
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from checks import Failure, check, fail, ok, skip  # noqa: E402

# What the cluster and API scripts import from here, the checks of
# tests/support/checks.py among them.
__all__ = [
    "WAIT_S", "NODE_TIMEOUT_S", "Cluster", "Node", "parse_args", "until",
    "Failure", "check", "fail", "ok", "skip",
]  # fmt: skip

WAIT_S = 10.0
# The cluster timings the tests run with (CLUSTER.md): short, so that a dead
# node is noticed within 1.5 s and a lost Redis is retried every 0.5 s at most.
HEARTBEAT = "300ms"
NODE_TIMEOUT_S = 1.5
RECONNECT_MAX = "500ms"
PREFIX = "soket"
# The server API's key (docs/SERVER.md) every node of these tests is started with.
API_KEY = "cluster-test-api-key"


# Every process started here, killed at exit whatever happens.
_started = []


def _kill_started():
    for proc in _started:
        if proc.poll() is None:
            try:
                proc.kill()
                proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass


atexit.register(_kill_started)


def _on_signal(signum, _frame):
    _kill_started()
    sys.exit(128 + signum)


for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


def spawn(args, stdout, stderr):
    proc = subprocess.Popen(args, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
    _started.append(proc)
    return proc


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_args(argv, usage):
    """`SCRIPT path/to/soket [--single]`; SOKET_CLUSTER_SINGLE=1 means --single."""
    args = [a for a in argv[1:] if a != "--single"]
    single = "--single" in argv[1:] or os.environ.get("SOKET_CLUSTER_SINGLE") == "1"
    if len(args) != 1:
        print(usage, file=sys.stderr)
        sys.exit(2)
    return args[0], single


def run_script(usage, main_async):
    """A script's main for `SCRIPT path/to/soket`: the exit code of
    `main_async(binary)`, or 2 after `usage` for any other arguments."""
    if len(sys.argv) != 2:
        print(usage, file=sys.stderr)
        return 2
    return asyncio.run(main_async(sys.argv[1]))


async def until(test, what, timeout=WAIT_S, every=0.05):
    """Polls `test` (sync or async, returning a true value when done) for at
    most `timeout` seconds; for state that only polling shows (metrics,
    processes), never for messages, which clients await."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = test()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if time.monotonic() >= deadline:
            fail(f"timed out after {timeout:.1f} s waiting for {what}")
        await asyncio.sleep(every)


# ---------------------------------------------------------------- Redis


def resp_encode(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


async def resp_read(reader):
    line = await reader.readline()
    if not line.endswith(b"\r\n"):
        fail(f"redis: cut reply {line!r}")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        fail(f"redis error: {rest.decode()}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = await reader.readexactly(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [await resp_read(reader) for _ in range(n)]
    fail(f"redis: unexpected reply {line!r}")


class Redis:
    """A redis-server on 127.0.0.1 without persistence, in a temp dir; it can
    be killed with SIGKILL and started again on the same port."""

    def __init__(self, workdir, binary=None, tls=None):
        self.binary = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        self.port = free_port()
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.log = os.path.join(workdir, "redis.log")
        self.proc = None
        # With `tls` (redis-server's --tls-* options as a dict), nodes reach
        # Redis on a TLS port; the plain port stays for this harness's own
        # PING and SCAN.
        self.tls = tls
        self.tls_port = free_port() if tls else None

    @property
    def url(self):
        if self.tls:
            return f"rediss://localhost:{self.tls_port}"
        return f"redis://127.0.0.1:{self.port}"

    async def start(self):
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self.dir,
            "--daemonize", "no",
            "--logfile", self.log,
        ]  # fmt: skip
        if self.tls:
            args += ["--tls-port", str(self.tls_port)]
            for option, value in self.tls.items():
                args += [f"--{option}", value]
        self.proc = spawn(args, subprocess.DEVNULL, subprocess.DEVNULL)

        async def pong():
            if self.proc.poll() is not None:
                fail(f"redis-server exited with {self.proc.returncode}; see {self.log}")
            try:
                return await self.command("PING") == "PONG"
            except (OSError, Failure, asyncio.IncompleteReadError):
                return False

        await until(pong, f"redis-server to answer PING on port {self.port}")

    def kill9(self):
        self.proc.kill()
        self.proc.wait(WAIT_S)

    async def restart(self):
        """Starts again on the same port (redis sets SO_REUSEADDR)."""
        await self.start()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    async def command(self, *args):
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), WAIT_S)
        try:
            writer.write(resp_encode(*args))
            await writer.drain()
            return await asyncio.wait_for(resp_read(reader), WAIT_S)
        finally:
            writer.close()

    async def keys(self, pattern):
        """Every key matching `pattern`, by SCAN (never KEYS on a live server)."""
        found, cursor = [], "0"
        for _ in range(100000):
            cursor, batch = await self.command("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            cursor = cursor.decode()
            found.extend(k.decode() for k in batch)
            if cursor == "0":
                return found
        fail("redis SCAN did not finish")


# ---------------------------------------------------------------- soket nodes


class Node:
    """One soket process; `restart()` starts it again with the same node id
    (and a new port: clients connect to `node.host, node.port` each time)."""

    def __init__(self, binary, node_id, workdir, redis=None, extra=()):
        self.binary = binary
        self.id = node_id
        self.workdir = workdir
        self.redis = redis
        self.extra = list(extra)
        self.proc = None
        self.host = None
        self.port = None
        self.runs = 0

    def __repr__(self):
        return self.id

    @property
    def args(self):
        args = [self.binary, "--listen", "127.0.0.1:0", "--shutdown-timeout", "1s", "--api-key", API_KEY]
        if self.redis is not None:
            args += [
                "--redis", self.redis.url,
                "--node-id", self.id,
                "--redis-heartbeat", HEARTBEAT,
                "--redis-node-timeout", f"{int(NODE_TIMEOUT_S * 1000)}ms",
                "--redis-reconnect-max", RECONNECT_MAX,
            ]  # fmt: skip
        return args + self.extra

    async def start(self):
        self.runs += 1
        out_path = os.path.join(self.workdir, f"{self.id}.{self.runs}.out")
        err_path = os.path.join(self.workdir, f"{self.id}.{self.runs}.log")
        self.log = err_path
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            self.proc = spawn(self.args, out, err)

        def listening():
            if self.proc.poll() is not None:
                tail = open(err_path, "rb").read()[-2000:].decode(errors="replace")
                fail(f"{self.id} exited with {self.proc.returncode} at start: {tail}")
            with open(out_path, "rb") as f:
                for line in f.read().decode(errors="replace").splitlines():
                    if line.startswith("soket listening on "):
                        return line.removeprefix("soket listening on ").strip()
            return None

        addr = await until(listening, f"{self.id} to say where it listens")
        host, port = addr.rsplit(":", 1)
        self.host, self.port = host, int(port)
        return self

    def kill9(self):
        self.proc.kill()
        self.proc.wait(WAIT_S)

    async def terminate(self):
        """SIGTERM, then the exit code (bounded)."""
        self.proc.terminate()
        await until(lambda: self.proc.poll() is not None, f"{self.id} to exit after SIGTERM")
        return self.proc.returncode

    async def restart(self):
        return await self.start()

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    async def exchange(self, request):
        """One HTTP/1.1 request with `Connection: close`: the whole answer's bytes."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), WAIT_S)
        try:
            writer.write(request)
            await writer.drain()
            return await asyncio.wait_for(reader.read(), WAIT_S)
        finally:
            writer.close()

    async def api(self, endpoint, body=None):
        """`POST /api/ENDPOINT` with `body` as JSON and the key: (status, the JSON answer)."""
        data = json.dumps(body or {}).encode()
        head = (
            f"POST /api/{endpoint} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Authorization: apikey {API_KEY}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        raw = await self.exchange(head.encode() + data)
        head, _, answer = raw.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.1 "), f"{self.id} /api/{endpoint}: no HTTP answer: {raw[:100]!r}")
        try:
            return int(head.split(b" ", 2)[1]), json.loads(answer)
        except ValueError:
            fail(f"{self.id} /api/{endpoint}: not JSON: {raw[:300]!r}")

    async def metrics(self):
        """GET /metrics as {"name{labels}": value}."""
        raw = await self.exchange(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.1 200"), f"{self.id} /metrics: {head[:100]!r}")
        values = {}
        for line in body.decode(errors="replace").splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                try:
                    values[key] = float(value)
                except ValueError:
                    pass
        return values


class Cluster:
    """Redis and `n` nodes (node1..nodeN), or in single mode one node behind
    every handle. `nodes[k]` is what a test connects its clients to."""

    def __init__(self, binary, n=3, single=False, extra=()):
        self.binary = binary
        self.n = n
        self.single = single
        self.extra = extra
        self.workdir = tempfile.mkdtemp(prefix="soket-cluster-")
        self.redis = None if single else Redis(self.workdir)
        self.nodes = []

    @property
    def distinct(self):
        """Each process once (one in single mode)."""
        seen = []
        for node in self.nodes:
            if node not in seen:
                seen.append(node)
        return seen

    async def start(self):
        if self.single:
            node = await Node(self.binary, "single", self.workdir, extra=self.extra).start()
            self.nodes = [node] * self.n
            return self
        await self.redis.start()
        self.nodes = [Node(self.binary, f"node{k + 1}", self.workdir, self.redis, self.extra) for k in range(self.n)]
        for node in self.nodes:
            await node.start()
        await self.wait_healthy()
        return self

    async def wait_metrics(self, want, nodes=None, timeout=WAIT_S, what=None):
        """Waits until every node's /metrics has each `name: value` of `want`."""
        nodes = nodes or self.distinct
        seen = {}

        async def all_there():
            for node in nodes:
                try:
                    values = await node.metrics()
                except (OSError, asyncio.TimeoutError):
                    return False
                seen[node.id] = {k: values.get(k) for k in want}
                if any(values.get(k) != v for k, v in want.items()):
                    return False
            return True

        try:
            await until(all_there, what or f"{want} on {nodes}", timeout, every=0.1)
        except Failure as e:
            fail(f"{e}; last seen {seen}")

    async def wait_healthy(self, nodes=None, timeout=WAIT_S):
        """Every node counts every other one and its Redis link is up."""
        if self.single:
            return
        nodes = nodes or self.distinct
        await self.wait_metrics({"soket_cluster_nodes": len(nodes), "soket_redis_link_up": 1}, nodes, timeout)

    async def soket_keys(self):
        return await self.redis.keys(f"{PREFIX}*")

    def close(self):
        for node in self.distinct:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()
                node.proc.wait(WAIT_S)
        if self.redis is not None:
            self.redis.stop()
        _kill_started()

    def logs_hint(self):
        return f"node logs and redis.log in {self.workdir}"
