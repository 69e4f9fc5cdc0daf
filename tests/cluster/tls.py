"""The cluster over TLS to Redis (`rediss://`, docs/CLUSTER.md), against a
real redis-server whose TLS port asks every client for a certificate
(`tls-auth-clients yes`, Redis's own default), all signed by a test CA made
here with openssl:

- two nodes given the CA and a client certificate are one world over it:
  presence and room messages both ways between a legacy TCP user and a /ws
  user on different nodes;
- Redis killed with SIGKILL and started again: the nodes come back over TLS
  and chat again;
- a node without a client certificate, and one trusting another CA, stay out
  (`event=redis_tls_failed` in their logs saying why at every attempt,
  `soket_redis_link_up` 0), and the cluster keeps its two nodes;
- SIGHUP reloads the TLS files: a node refused for the wrong CA gets in once
  its CA file holds the right one; a broken file is refused and the link
  stays up;
- TLS flags given wrong stop soket at start with a message naming them.

Every wait is bounded; a failure exits non-zero saying what was missing.

Usage: python tests/cluster/tls.py path/to/soket
(needs tests/cluster/requirements.txt, openssl, and a redis-server built with
TLS, as Debian's is)
"""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time

from clients import user
from harness import WAIT_S, Cluster, Failure, Node, Redis, check, ok, run_script, until

ROOM = "tls-room"


def openssl(*args):
    done = subprocess.run(["openssl", *args], capture_output=True, timeout=WAIT_S)
    check(done.returncode == 0, f"openssl {' '.join(args[:2])}: {done.stderr.decode(errors='replace')[-500:]}")


def make_certificates(directory):
    """A CA; Redis's certificate for localhost from it; a client certificate
    from it; and a second CA nobody uses. Returns their paths by name."""
    paths = {name: os.path.join(directory, name) for name in (
        "ca.pem", "ca.key", "redis.pem", "redis.key", "client.pem", "client.key", "other-ca.pem", "other-ca.key",
        "redis.ext", "client.ext", "redis.csr", "client.csr",
    )}  # fmt: skip
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca, subject in (("ca", "/CN=soket test CA"), ("other-ca", "/CN=another CA")):
        openssl("req", "-x509", *ec, "-keyout", paths[f"{ca}.key"], "-out", paths[f"{ca}.pem"], "-days", "2",
                "-subj", subject)  # fmt: skip
    with open(paths["redis.ext"], "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    with open(paths["client.ext"], "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    for leaf, subject in (("redis", "/CN=localhost"), ("client", "/CN=soket node")):
        openssl("req", *ec, "-keyout", paths[f"{leaf}.key"], "-out", paths[f"{leaf}.csr"], "-subj", subject)
        openssl("x509", "-req", "-in", paths[f"{leaf}.csr"], "-CA", paths["ca.pem"], "-CAkey", paths["ca.key"],
                "-CAcreateserial", "-out", paths[f"{leaf}.pem"], "-days", "2", "-extfile", paths[f"{leaf}.ext"])  # fmt: skip
    return paths


def log_has(node, text):
    with open(node.log, "rb") as f:
        return text in f.read().decode(errors="replace")


def failure_lines(node):
    with open(node.log, "rb") as f:
        lines = f.read().decode(errors="replace").splitlines()
    return [line for line in lines if "event=redis_tls_failed" in line]


async def outsider(cl, binary, node_id, flags, why):
    """A node Redis's TLS port will not take: it says why, again at each
    retry, and its link stays down while it answers HTTP (a `hello` there
    waits for Redis, as on any node whose Redis is away)."""
    node = await Node(binary, node_id, cl.workdir, cl.redis, flags).start()
    await until(lambda: len(failure_lines(node)) >= 2, f"{node_id} to log event=redis_tls_failed at two attempts")
    lines = failure_lines(node)
    check(all(why in line for line in lines), f"{node_id}: a TLS failure does not say {why!r}: {lines[:2]}")
    await cl.wait_metrics({"soket_redis_link_up": 0}, [node], what=f"{node_id}'s Redis link down")
    node.proc.terminate()
    node.proc.wait(WAIT_S)
    ok(f"{node_id} stays out of the cluster, its link down, saying {why!r} at each attempt")


async def rotated(cl, binary, paths, lena):
    """A node whose CA file first holds the wrong CA stays out; once the file
    holds the right one, a SIGHUP lets its next attempt in. A file broken
    later is refused at the next SIGHUP, and the link stays up."""
    ca_file = os.path.join(cl.workdir, "rotating-ca.pem")
    shutil.copyfile(paths["other-ca.pem"], ca_file)
    flags = ["--redis-tls-ca", ca_file, "--redis-tls-cert", paths["client.pem"], "--redis-tls-key", paths["client.key"]]
    node = await Node(binary, "rotated", cl.workdir, cl.redis, flags).start()
    await until(lambda: failure_lines(node), "rotated to fail its TLS handshake with the wrong CA")
    shutil.copyfile(paths["ca.pem"], ca_file)
    node.proc.send_signal(signal.SIGHUP)
    await until(lambda: log_has(node, "event=redis_tls_reloaded"), "rotated to reload its Redis TLS files")
    nodes = cl.distinct + [node]
    await cl.wait_healthy(nodes)
    rosa = await user("legacy", node, "rosa")
    await rosa.join(ROOM)
    await rosa.say(ROOM, "in after the reload")
    await lena.expect_message(ROOM, "rosa", "in after the reload")
    with open(ca_file, "w") as f:
        f.write("not a certificate\n")
    node.proc.send_signal(signal.SIGHUP)
    await until(lambda: log_has(node, "event=redis_tls_reload_failed"), "rotated to refuse the broken CA file")
    await cl.wait_metrics({"soket_redis_link_up": 1, "soket_cluster_nodes": len(nodes)}, [node])
    await rosa.close()
    node.proc.terminate()
    node.proc.wait(WAIT_S)
    ok("SIGHUP reloads Redis's TLS files: the right CA let a refused node in; a broken file left its link up")


async def bad_flags(binary, paths):
    cases = [
        (["--redis", "redis://127.0.0.1:1", "--redis-tls-ca", paths["ca.pem"]], "need a rediss:// URL"),
        (["--redis", "rediss://localhost:1", "--redis-tls-ca", "/nonexistent/ca.pem"], "--redis-tls-ca /nonexistent/ca.pem"),
        (["--redis", "rediss://localhost:1", "--redis-tls-ca", paths["ca.pem"], "--redis-tls-cert", paths["client.pem"]],
         "--redis-tls-cert and --redis-tls-key go together"),
        (["--redis", "rediss://localhost:1", "--redis-tls-ca", paths["redis.key"]], "no PEM certificate"),
    ]  # fmt: skip
    for flags, want in cases:
        done = subprocess.run([binary, "--listen", "127.0.0.1:0", *flags], capture_output=True, timeout=WAIT_S)
        said = done.stderr.decode(errors="replace")
        check(done.returncode != 0, f"soket {' '.join(flags)} started")
        check(want in said, f"soket {' '.join(flags)}: no {want!r} in {said[-400:]!r}")
    ok(f"{len(cases)} wrong TLS flag sets refused at start, each saying what is wrong")


async def main_async(binary):
    started = time.monotonic()
    cl = Cluster(binary, n=2)
    paths = make_certificates(cl.workdir)
    cl.redis = Redis(cl.workdir, tls={
        "tls-cert-file": paths["redis.pem"],
        "tls-key-file": paths["redis.key"],
        "tls-ca-cert-file": paths["ca.pem"],
        "tls-auth-clients": "yes",
    })  # fmt: skip
    cl.extra = [
        "--redis-tls-ca", paths["ca.pem"],
        "--redis-tls-cert", paths["client.pem"],
        "--redis-tls-key", paths["client.key"],
    ]  # fmt: skip
    try:
        await bad_flags(binary, paths)
        await cl.start()
        check(cl.redis.url.startswith("rediss://localhost:"), f"the nodes use {cl.redis.url}")
        ok(f"2 nodes joined over {cl.redis.url} with a client certificate")
        lena = await user("legacy", cl.nodes[0], "lena")
        wes = await user("ws", cl.nodes[1], "wes")
        for member in (lena, wes):
            await member.wait_users(["lena", "wes"])
            await member.join(ROOM)
        await lena.say(ROOM, "over TLS from node1")
        await wes.expect_message(ROOM, "lena", "over TLS from node1")
        await wes.say(ROOM, "over TLS from node2")
        await lena.expect_message(ROOM, "wes", "over TLS from node2")
        ok("presence and room messages both ways across the nodes")
        # A burst far over the TLS session's 64 KiB buffer: the link's
        # backpressure, in order and whole.
        burst = [f"{k:03d}" + "x" * 60000 for k in range(24)]
        for text in burst:
            await wes.say(ROOM, text)
        for text in burst:
            await lena.expect_message(ROOM, "wes", text)
        arrived = [m[3] for m in lena.messages if m[3] in burst]
        check(arrived == burst, f"the burst arrived out of order: {[t[:3] for t in arrived]}")
        ok(f"a burst of {len(burst)} messages of 60 kB crossed over TLS, in order and whole")

        cl.redis.kill9()
        await cl.wait_metrics({"soket_redis_link_up": 0}, what="both links down with Redis killed")
        await cl.redis.restart()
        await cl.wait_healthy()
        await wes.say(ROOM, "after the restart")
        await lena.expect_message(ROOM, "wes", "after the restart")
        ok("Redis killed and started again: both nodes back over TLS, chatting")

        no_cert = ["--redis-tls-ca", paths["ca.pem"]]
        await outsider(cl, binary, "no-client-cert", no_cert, "CertificateRequired")
        other_ca = ["--redis-tls-ca", paths["other-ca.pem"]]
        await outsider(cl, binary, "other-ca", other_ca, "UnknownIssuer")
        await rotated(cl, binary, paths, lena)
        # The cluster never counted the outsiders, and its users still chat.
        await cl.wait_healthy()
        await lena.say(ROOM, "still two nodes")
        await wes.expect_message(ROOM, "lena", "still two nodes")
        check((lena.users, wes.users) == (["wes"], ["lena"]), f"presence: lena {lena.users}, wes {wes.users}")
        ok("the cluster kept its two nodes and its users")
        print(f"cluster over TLS: all pass ({time.monotonic() - started:.1f} s)", flush=True)
        return 0
    except (Failure, OSError, asyncio.TimeoutError) as e:
        print(f"cluster over TLS: FAIL: {type(e).__name__}: {e}\n({cl.logs_hint()})", file=sys.stderr, flush=True)
        return 1
    finally:
        cl.close()


def main():
    return run_script("usage: tls.py path/to/soket", main_async)


if __name__ == "__main__":
    sys.exit(main())
