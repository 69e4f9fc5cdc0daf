"""The cluster scenarios of issue 11 with real clients of every protocol on
three soket nodes joined through a real redis-server: room messages,
private messages and custom events across nodes and protocols; a name taken
on one node refused on another; presence and `who` identical from every
node; kill -9 of a node drops its users everywhere within the node timeout
+ 1 s; Redis killed and restarted while clients chat (everyone recovers,
messages said meanwhile arrive exactly once in per-sender order, the backlog
drains); a node restarted with the same node id re-registers nobody twice.
Each check prints `ok: ...`; a failure exits non-zero saying what was
missing. Every wait is bounded.

Usage: python tests/cluster/scenarios.py path/to/soket [--single]
(--single: one node without Redis behind every handle; the cluster-only
checks are skipped, saying so.) Needs tests/cluster/requirements.txt and
redis-server.
"""

import asyncio
import json
import sys
import time

from clients import Ws, attempt, user
from harness import NODE_TIMEOUT_S, Cluster, Failure, check, fail, ok, parse_args, skip

# kill -9 of a node: its users gone from every other node's presence within this.
DROP_BOUND_S = NODE_TIMEOUT_S + 1.0
ROOM = "r1"


def names(clients):
    return [c.name for c in clients]


async def register_all(specs):
    """Registers [(kind, node, name)] one after the other (their order is the
    registration order presence lists follow)."""
    return [await user(kind, node, name) for kind, node, name in specs]


async def presence_everywhere(clients, expected, timeout=None, what="presence"):
    """Every client's latest presence list is `expected` less itself, in order."""
    kw = {} if timeout is None else {"timeout": timeout}
    await asyncio.gather(*(c.wait_users(expected, **kw) for c in clients))


async def chat_across(cl, users):
    by = {c.name: c for c in users}
    A, B, C = cl.nodes
    everyone = names(users)

    await presence_everywhere(users, everyone)
    ok(f"presence: all {len(users)} users listed in registration order by every client on every node: {everyone}")

    # Joins one after the other: `who` then has one right order, the join order.
    for c in users:
        await c.join(ROOM)
    last = users[-1].name
    for c in users:
        if c.kind != "stomp" and c is not users[-1]:
            await c.expect(lambda i: i == ("joined", ROOM, last), f"joined {ROOM} {last}")
    whos = {}
    for c in users:
        got = await c.who(ROOM)
        if got is not None:
            whos[c.label] = got
    for label, got in whos.items():
        check(got == everyone, f"who {ROOM} from {label}: {got}, expected the join order {everyone}")
    lobby = {}
    for c in users:
        got = await c.who("lobby")
        if got is not None:
            lobby[c.label] = got
            check(got == everyone, f"who lobby from {c.label}: {got}, expected {everyone}")
    rooms = {}
    for c in users:
        got = await c.rooms()
        if got is not None:
            rooms[c.label] = got
    want_rooms = [{"name": "lobby", "members": len(users)}, {"name": ROOM, "members": len(users)}]
    for label, got in rooms.items():
        if "legacy" in label:
            check(got == ["lobby", ROOM], f"/rooms from {label}: {got}")
        else:
            check(sorted(got, key=lambda r: r["name"]) == want_rooms, f"rooms from {label}: {got}, want {want_rooms}")
    ok(f"who {ROOM}, who lobby and rooms identical from {len(whos)} clients on {len(set(c.node.id for c in users))} node(s)")

    # A room message from each user reaches every other member, whatever it speaks and wherever it is.
    for sender in users:
        text = f"hello from {sender.name}"
        await sender.say(ROOM, text)
        receivers = [c for c in users if c is not sender or c.kind == "stomp"]
        await asyncio.gather(*(c.expect_message(ROOM, sender.name, text) for c in receivers))
        others = ", ".join(f"{c.kind}@{c.node.id}" for c in receivers if c is not sender)
        ok(f"room message from {sender.kind} {sender.name}@{sender.node.id} reached {others}")

    # Private messages in a ring that crosses a node and a protocol at every hop.
    ring = ["leg_a", "ws_b", "sio_c", "sto_a", "leg_b", "sto_c", "sio_b", "ws_a", "leg_a"]
    for frm, to in zip(ring, ring[1:]):
        s, r = by[frm], by[to]
        text = f"psst {frm} to {to}"
        await s.private(to, text)
        await r.expect_private(frm, text)
        ok(f"private message {s.kind}@{s.node.id} -> {r.kind}@{r.node.id}")

    # Custom events: a /ws emit to the room, to a user, a Socket.IO emit to a
    # user, and a Socket.IO relay to the whole namespace.
    data = {"on": True, "n": [1, 2]}
    await by["ws_b"].emit("typing", data, room=ROOM)
    for c in users:
        if c.kind in ("ws", "stomp") and c.name != "ws_b":
            await c.expect(lambda i: i == ("event", "typing", data, "ws_b", ROOM), f"typing from ws_b in {ROOM}")
        elif c.kind == "sio":
            await c.expect(lambda i: i[:3] == ("event", "typing", data), "the typing event")
    ok("custom event: /ws emit to a room reached /ws, Socket.IO and STOMP members on every node")
    await by["ws_a"].emit("poke", {"x": 1}, to="sio_c")
    await by["sio_c"].expect(lambda i: i[:3] == ("event", "poke", {"x": 1}), "poke from ws_a")
    await by["sio_c"].emit("wave", [3, 4], to="sto_a")
    await by["sto_a"].expect(lambda i: i[:4] == ("event", "wave", [3, 4], "sio_c"), "wave from sio_c")
    ok("custom event to a user: /ws@A -> Socket.IO@C, Socket.IO@C -> STOMP@A")
    await by["sio_c"].relay("greet", "hi", 42)
    for c in users:
        if c.kind == "sio":
            await c.expect(lambda i: i[:3] == ("event", "greet", ["hi", 42]), "the relayed greet")
        elif c.kind in ("ws", "stomp"):
            await c.expect(lambda i: i[:4] == ("event", "greet", ["hi", 42], "sio_c"), "the relayed greet")
    for c in users:
        check(not c.inbox.has(lambda i: i[0] == "event") or c.kind != "legacy", f"{c.label} got a custom event")
    ok("Socket.IO relay from C reached Socket.IO on B and C (sender included), /ws and STOMP on A and B")


async def names_taken(cl, by):
    A, B, C = cl.nodes
    tries = [("legacy", B, "leg_a"), ("ws", C, "sto_a"), ("sio", A, "ws_b"), ("stomp", B, "sio_c")]
    for kind, node, name in tries:
        client, error = await attempt(kind, node, name)
        owner = by[name]
        check(error == "name_taken", f"{kind} on {node.id} asking for {name} (held on {owner.node.id}): got {error}")
        await client.close()
        ok(f"{name} held by {owner.kind}@{owner.node.id} refused to {kind}@{node.id}: name_taken")


async def kill_node(cl, users):
    A, B, C = cl.nodes
    if cl.single:
        skip("kill -9 of a node (single mode)")
        return users
    dead = [c for c in users if c.node is C]
    alive = [c for c in users if c.node is not C]
    start = time.monotonic()
    C.kill9()
    await presence_everywhere(alive, names(alive), timeout=DROP_BOUND_S + 3)
    for c in alive:
        if c.kind != "stomp":
            for d in dead:
                await c.expect(lambda i: i == ("left", ROOM, d.name), f"left {ROOM} {d.name}", timeout=3)
    elapsed = time.monotonic() - start
    check(
        elapsed <= DROP_BOUND_S,
        f"kill -9 of {C.id}: its users left every presence list after {elapsed:.2f} s, over {DROP_BOUND_S} s",
    )
    await cl.wait_metrics({"soket_cluster_nodes": 2}, [A, B])
    ok(f"kill -9 of {C.id}: {names(dead)} dropped from presence and {ROOM} everywhere in {elapsed:.2f} s "
       f"(bound {DROP_BOUND_S:.1f} s); soket_cluster_nodes 2 on the others")  # fmt: skip
    return alive


async def rejoin(specs, patience):
    """Registers each (kind, node, name), retrying name_taken for `patience`
    seconds (a restarted node's old claims may still be settling)."""
    out = []
    for kind, node, name in specs:
        deadline = time.monotonic() + patience
        while True:
            client, error = await attempt(kind, node, name)
            if error is None:
                break
            await client.close()
            check(error == "name_taken", f"{kind} {name} on {node.id}: {error}")
            if time.monotonic() > deadline:
                fail(f"{name} still taken on {node.id} {patience} s after the restart")
            await asyncio.sleep(0.2)
        await client.join(ROOM)
        out.append(client)
    return out


async def restart_node(cl, alive):
    A, B, C = cl.nodes
    specs = [("sio", C, "sio_c"), ("stomp", C, "sto_c")]
    if cl.single:
        skip("a node restarted with the same node id (single mode)")
        return alive
    await C.restart()
    await cl.wait_healthy()
    started = time.monotonic()
    back = await rejoin(specs, NODE_TIMEOUT_S + 3)
    took = time.monotonic() - started
    users = alive + back
    await presence_everywhere(users, names(users))
    ok(f"{C.id} restarted with its node id after a kill -9: {names(back)} registered again in {took:.2f} s, "
       "presence has each once")  # fmt: skip

    # At once this time: the node comes back before the others declared it dead.
    C.kill9()
    started = time.monotonic()
    await C.restart()
    back2 = await rejoin(specs, NODE_TIMEOUT_S + 3)
    took = time.monotonic() - started
    users = alive + back2
    await presence_everywhere(users, names(users), timeout=NODE_TIMEOUT_S + 5)
    await cl.wait_healthy()
    for c in users:
        check(not c.duplicate_presence, f"{c.label} saw a name twice in presence: {c.duplicate_presence[:2]}")
    ok(f"{C.id} killed and restarted at once: its users registered again in {took:.2f} s, "
       "nobody listed twice by anyone at any time")  # fmt: skip
    return users


async def redis_outage(cl, users):
    """Every sender says numbered messages before, during and after a Redis
    outage; every other member of the room gets each exactly once, in order."""
    A, B, C = cl.nodes
    senders = [c for c in users if c.name in ("leg_a", "ws_b", "sio_c", "sto_a", "leg_b")]
    rounds = {"before": 5, "during": 5, "after": 5}
    seq = {s.name: 0 for s in senders}

    async def say_round():
        for s in senders:
            await s.say(ROOM, f"seq {s.name} {seq[s.name]}")
            seq[s.name] += 1

    def got(c, sender, n):
        return sum(1 for i in c.messages if i[1] == ROOM and i[2] == sender and i[3].startswith("seq ")) >= n

    for _ in range(rounds["before"]):
        await say_round()
    late = None
    if cl.single:
        skip("Redis killed and restarted (single mode): the numbered chat runs without the outage")
        for _ in range(rounds["during"]):
            await say_round()
    else:
        cl.redis.kill9()
        down_at = time.monotonic()
        await cl.wait_metrics({"soket_redis_link_up": 0}, what="soket_redis_link_up 0 everywhere after the kill")
        # A hello while Redis is away waits for it.
        late = await Ws(B, "late_b").open()
        await late.send({"type": "hello", "name": "late_b", "id": 1})
        # Chat through the outage, past the node timeout (remote users vanish meanwhile).
        for _ in range(rounds["during"]):
            await say_round()
            await asyncio.sleep(0.4)
        # Local users are served all along: each sender's same-node receivers have it all already.
        for s in senders:
            for c in users:
                if c.node is s.node and (c is not s or c.kind == "stomp"):
                    n = rounds["before"] + rounds["during"]
                    await c.inbox.until(lambda: got(c, s.name, n), f"{s.name}'s outage messages on its own node")
        backlog = {n.id: (await n.metrics()).get("soket_backplane_backlog_bytes") for n in cl.distinct}
        down_for = time.monotonic() - down_at
        check(not late.inbox.has(lambda i: i[0] == "welcome"), "a hello was answered while Redis was down")
        ok(f"Redis down {down_for:.1f} s: local users kept chatting on each node; backlog bytes {backlog}; "
           "a new hello waits")  # fmt: skip
        await cl.redis.restart()
        up_at = time.monotonic()
        await cl.wait_healthy(timeout=15)
        ok(f"Redis restarted: link up and 3 nodes on every node after {time.monotonic() - up_at:.2f} s")
        await late.expect(lambda i: i[0] == "welcome", "the welcome once Redis is back", timeout=10)
        users = users + [late]
    await presence_everywhere(users, names(users), timeout=15)
    ok(f"presence complete again on every client: {names(users)}")
    if late is not None:
        await late.join(ROOM)
    for _ in range(rounds["after"]):
        await say_round()
    total = sum(rounds.values())
    for s in senders:
        await s.say(ROOM, f"end {s.name}")
    for c in users:
        for s in senders:
            if c is s and c.kind != "stomp":
                continue
            await c.expect_message(ROOM, s.name, f"end {s.name}", timeout=15)
            got_seq = [i[3] for i in c.messages if i[1] == ROOM and i[2] == s.name and i[3].startswith("seq ")]
            want = [f"seq {s.name} {k}" for k in range(total)]
            if c is late:
                # late_b joined the room after the outage: a suffix, each once, in order.
                want = want[len(want) - len(got_seq) :] if len(got_seq) <= len(want) else want
            check(got_seq == want, f"{c.label} from {s.name}: got {got_seq}, expected {want}")
    ok(f"{len(senders)} senders x {total} numbered messages (before, during, after the outage): "
       f"each exactly once and in order at every member of {ROOM}")  # fmt: skip
    if not cl.single:
        await cl.wait_metrics({"soket_backplane_backlog_bytes": 0, "soket_backplane_dropped_total": 0})
        m = await A.metrics()
        check(m.get("soket_redis_reconnects_total", 0) >= 1, f"soket_redis_reconnects_total on {A.id}: {m}")
        ok("soket_backplane_backlog_bytes 0 and soket_backplane_dropped_total 0 on every node; reconnects counted")
    return users


async def http(node, request):
    """One raw HTTP/1.1 exchange with `node`: (status, body)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(node.host, node.port), 5)
    try:
        writer.write(request.encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def sessions_stay_on_their_node(cl):
    """A Socket.IO polling sid or a SockJS session opened on one node, asked
    for on another, gets the reference servers' answer for an unknown
    session (docs/CLUSTER.md: load balancers must be sticky)."""
    A, B, _ = cl.nodes
    if cl.single:
        skip("sessions on the wrong node (single mode): one node holds them all")
        return
    get = "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    status, body = await http(A, get.format("/socket.io/?EIO=4&transport=polling"))
    check(status == 200 and body.startswith(b"0{"), f"Engine.IO open on A: {status} {body[:80]!r}")
    sid = json.loads(body[1:])["sid"]
    status, body = await http(B, get.format(f"/socket.io/?EIO=4&transport=polling&sid={sid}"))
    check(status == 400 and json.loads(body) == {"code": 1, "message": "Session ID unknown"},
          f"A's sid polled on B: {status} {body[:80]!r}")  # fmt: skip
    status, body = await http(A, get.format("/stomp/sockjs/000/wrongnode/xhr").replace("GET", "POST", 1))
    check(status == 200 and body.startswith(b"o"), f"SockJS session opened on A: {status} {body[:40]!r}")
    send = ("POST /stomp/sockjs/000/wrongnode/xhr_send HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            "Content-Type: text/plain\r\nContent-Length: 8\r\n\r\n[\"ping\"]")  # fmt: skip
    status, _ = await http(B, send)
    check(status == 404, f"A's SockJS session sent to on B: {status}")
    ok("sessions stay on their node: A's Engine.IO sid on B is 400 Session ID unknown, A's SockJS send on B is 404")


async def main_async(binary, single):
    started = time.monotonic()
    cl = Cluster(binary, 3, single)
    try:
        await cl.start()
        A, B, C = cl.nodes
        ok(f"started {'one node (single mode)' if single else '3 nodes and redis-server on port %d' % cl.redis.port}")
        specs = [
            ("legacy", A, "leg_a"),
            ("ws", B, "ws_b"),
            ("sio", C, "sio_c"),
            ("stomp", A, "sto_a"),
            ("legacy", B, "leg_b"),
            ("stomp", C, "sto_c"),
            ("sio", B, "sio_b"),
            ("ws", A, "ws_a"),
        ]
        users = await register_all(specs)
        by = {c.name: c for c in users}
        await chat_across(cl, users)
        await names_taken(cl, by)
        await sessions_stay_on_their_node(cl)
        alive = await kill_node(cl, users)
        users = await restart_node(cl, alive)
        users = await redis_outage(cl, users)
        for c in users:
            check(not c.duplicate_presence, f"{c.label} saw a name twice in presence: {c.duplicate_presence[:2]}")
        for c in users:
            await c.close()
        await cl.wait_metrics({"soket_users": 0}, what="soket_users 0 on every node")
        if not single:
            await cl.wait_metrics({"soket_cluster_users": 0}, what="soket_cluster_users 0 on every node")
        ok("every client gone: soket_users 0 on every node")
        for node in cl.distinct:
            code = await node.terminate()
            check(code == 0, f"{node.id} exited with {code} after SIGTERM")
        if not single:
            keys = await cl.soket_keys()
            check(keys == [], f"Redis still holds {keys[:20]} after every node stopped")
            ok("every node stopped on SIGTERM with 0; Redis holds no soket* key")
        print(f"cluster scenarios: all pass ({time.monotonic() - started:.1f} s)", flush=True)
    except Failure as e:
        print(f"cluster scenarios: FAIL: {e}\n({cl.logs_hint()})", file=sys.stderr, flush=True)
        return 1
    finally:
        cl.close()
    return 0


def main():
    binary, single = parse_args(sys.argv, "usage: scenarios.py path/to/soket [--single]")
    return asyncio.run(main_async(binary, single))


if __name__ == "__main__":
    sys.exit(main())
