"""The issue 11 soak: three soket nodes and a real redis-server, 600 clients
(/ws and legacy TCP, spread over the nodes) joining, chatting in a few rooms
and leaving in waves, bounded in time.

The check is exact. Half the clients ("stayers") join before any message is
said and stay until every message has arrived; the other half ("churners")
come in waves during the chat: each joins its room, says its numbered
messages, leaves and disconnects, while the stayers say theirs. Every message
is said by a member of the room after its join was confirmed and before its
leave, so every stayer of that room must get every one of them exactly once,
and each sender's in the order said. Churners must get no duplicate and
each sender's messages in increasing order. At the end every node's
/metrics says `soket_users 0` (and `soket_cluster_users 0`); after SIGTERM
every node exits 0 and Redis holds no `soket*` key.

Usage: python tests/cluster/soak.py path/to/soket [--single]
  SOAK_CLIENTS (600), SOAK_ROOMS (6), SOAK_MESSAGES (10 per client), SOAK_WAVES (5)
(--single: everything on one node without Redis.)
"""

import asyncio
import os
import resource
import sys
import time
from collections import defaultdict

from clients import Legacy, Ws
from harness import Cluster, Failure, check, ok, parse_args

CLIENTS = int(os.environ.get("SOAK_CLIENTS", "600"))
ROOMS = int(os.environ.get("SOAK_ROOMS", "6"))
MESSAGES = int(os.environ.get("SOAK_MESSAGES", "10"))
WAVES = int(os.environ.get("SOAK_WAVES", "5"))
# Connections opened at once (a burst of 600 handshakes is not the point here).
CONCURRENCY = 50
DELIVERY_S = 60.0
# The whole run, every phase included, must end within this.
BOUND_S = 150.0


class Member:
    """One soak client and what it received, counted per sender."""

    def __init__(self, index, node):
        self.index = index
        self.name = f"s{index}"
        self.room = f"soak{(index // 6) % ROOMS}"
        self.kind = "ws" if index % 2 else "legacy"
        self.node = node
        self.got = defaultdict(list)  # sender -> message numbers in arrival order
        self.count = 0
        self.foreign = []  # messages of another room: never expected
        self.client = None

    def sink(self, item):
        kind = item[0]
        if kind == "message":
            _, room, sender, text = item
            if room != self.room:
                self.foreign.append(item)
            else:
                try:
                    self.got[sender].append(int(text))
                except ValueError:
                    self.foreign.append(item)
                self.count += 1
            return True
        # Others' joins and leaves are not looked at; one's own are awaited.
        return kind in ("joined", "left") and item[2] != self.name

    async def connect(self):
        cls = Ws if self.kind == "ws" else Legacy
        kw = {"compression": None} if self.kind == "ws" else {}
        client = await cls(self.node, self.name, sink=self.sink, presence=False, **kw).open()
        error = await client.register()
        check(error is None, f"{client.label} was refused: {error}")
        await client.join(self.room)
        self.client = client

    async def say_all(self):
        for k in range(MESSAGES):
            await self.client.say(self.room, str(k))


async def bounded_gather(coros, limit=CONCURRENCY):
    gate = asyncio.Semaphore(limit)

    async def one(c):
        async with gate:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def soak(cl):
    nodes = cl.nodes
    members = [Member(i, nodes[i % len(nodes)]) for i in range(CLIENTS)]
    blocks = (CLIENTS + 5) // 6
    stayers = [m for m in members if m.index // 6 < blocks // 2]
    churners = [m for m in members if m.index // 6 >= blocks // 2]
    waves = [[m for m in churners if (m.index // 6 - blocks // 2) % WAVES == w] for w in range(WAVES)]
    t0 = time.monotonic()

    await bounded_gather(m.connect() for m in stayers)
    kinds = defaultdict(int)
    for m in members:
        kinds[(m.kind, m.node.id)] += 1
    ok(f"{len(stayers)} stayers joined {ROOMS} rooms in {time.monotonic() - t0:.1f} s "
       f"(all {CLIENTS}: {dict(kinds)})")  # fmt: skip

    # Every node lists every stayer of every room before anyone speaks: the
    # joins have crossed the cluster, and the rooms agree from every node.
    for room in sorted({m.room for m in stayers}):
        want = sorted(m.name for m in stayers if m.room == room)
        for node in cl.distinct:
            asker = next(m for m in stayers if m.node is node and m.kind == "ws")
            got = await asker.client.who(room)
            check(sorted(got) == want, f"who {room} from {node.id}: {len(got)} names, want the {len(want)} stayers")
    ok(f"who of each room lists its stayers from every node ({len(cl.distinct)} node(s))")

    t1 = time.monotonic()
    said = defaultdict(list)  # room -> senders that said all their messages

    async def stayers_say():
        # Spread over the churn: one message each per round, a short pause between rounds.
        for k in range(MESSAGES):
            for m in stayers:
                await m.client.say(m.room, str(k))
            await asyncio.sleep(0.3)
        for m in stayers:
            said[m.room].append(m.name)

    async def churn():
        for wave in waves:
            await bounded_gather(m.connect() for m in wave)
            for m in wave:
                await m.say_all()
                said[m.room].append(m.name)
            await bounded_gather(m.client.leave(m.room) for m in wave)
            await bounded_gather(m.client.close() for m in wave)

    await asyncio.gather(stayers_say(), churn())
    sent = sum(len(v) for v in said.values()) * MESSAGES
    ok(f"{sent} messages said by {CLIENTS} clients, {len(churners)} of them in {WAVES} waves that came and "
       f"left meanwhile, in {time.monotonic() - t1:.1f} s")  # fmt: skip

    t2 = time.monotonic()
    deadline = t2 + DELIVERY_S
    for m in stayers:
        want = sum(MESSAGES for s in said[m.room] if s != m.name)
        left = max(0.1, deadline - time.monotonic())
        await m.client.inbox.until(lambda m=m, want=want: m.count >= want, f"{want} messages (have {m.count})", left)
        check(not m.client.closed, f"{m.client.label} was disconnected during the soak")
    deliveries = 0
    expected = list(range(MESSAGES))
    for m in stayers:
        check(not m.foreign, f"{m.name} got messages not meant for it: {m.foreign[:3]}")
        senders = {s for s in said[m.room] if s != m.name}
        extra = set(m.got) - senders
        check(not extra, f"{m.name} in {m.room} got messages from {sorted(extra)[:5]}, not senders there")
        for s in senders:
            check(m.got[s] == expected, f"{m.name} ({m.kind}@{m.node.id}) from {s}: got {m.got[s]}, want {expected}")
        deliveries += m.count
    for m in churners:
        check(not m.foreign, f"{m.name} got messages not meant for it: {m.foreign[:3]}")
        for s, got in m.got.items():
            check(all(a < b for a, b in zip(got, got[1:])), f"churner {m.name} from {s}: {got} (dup or out of order)")
    ok(f"{deliveries} deliveries to {len(stayers)} stayers: every message exactly once and in per-sender order "
       f"(complete {time.monotonic() - t2:.1f} s after the last was said); churners saw no duplicate")  # fmt: skip

    t3 = time.monotonic()
    stay_waves = [stayers[w::WAVES] for w in range(WAVES)]
    for wave in stay_waves:
        await bounded_gather(m.client.close() for m in wave)
    await cl.wait_metrics({"soket_users": 0}, timeout=30, what="soket_users 0 on every node")
    if not cl.single:
        await cl.wait_metrics({"soket_cluster_users": 0}, timeout=30, what="soket_cluster_users 0 on every node")
    ok(f"everyone left in {WAVES} waves: soket_users 0 on every node ({time.monotonic() - t3:.1f} s)")

    for node in cl.distinct:
        code = await node.terminate()
        check(code == 0, f"{node.id} exited with {code} after SIGTERM")
    if cl.single:
        ok("the node stopped on SIGTERM with 0")
    else:
        keys = await cl.soket_keys()
        check(keys == [], f"Redis still holds {len(keys)} soket keys after every node stopped: {keys[:10]}")
        ok("every node stopped on SIGTERM with 0; Redis holds no soket* key")


async def main_async(binary, single):
    started = time.monotonic()
    cl = Cluster(binary, 3, single)
    try:
        await cl.start()
        ok(f"started {'one node (single mode)' if single else '3 nodes and redis-server on port %d' % cl.redis.port}")
        await asyncio.wait_for(soak(cl), BOUND_S)
        print(f"cluster soak: all pass ({time.monotonic() - started:.1f} s)", flush=True)
    except asyncio.TimeoutError:
        print(f"cluster soak: FAIL: not done within {BOUND_S} s\n({cl.logs_hint()})", file=sys.stderr, flush=True)
        return 1
    except Failure as e:
        print(f"cluster soak: FAIL: {e}\n({cl.logs_hint()})", file=sys.stderr, flush=True)
        return 1
    finally:
        cl.close()
    return 0


def main():
    binary, single = parse_args(sys.argv, "usage: soak.py path/to/soket [--single]")
    # 600 sockets here (and as many in the nodes): lift the soft limit to the hard one.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    return asyncio.run(main_async(binary, single))


if __name__ == "__main__":
    sys.exit(main())
