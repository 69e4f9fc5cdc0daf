"""The cluster scenarios of issue 11 with real clients of every protocol on
three soket nodes joined through a real redis-server: room messages,
private messages and custom events across nodes and protocols; a name taken
on one node refused on another; presence and `who` identical from every
node; kill -9 of a node drops its users everywhere within the node timeout
+ 1 s; Redis killed and restarted while clients chat (everyone recovers,
messages said meanwhile arrive exactly once in per-sender order, the backlog
drains); a node restarted with the same node id re-registers nobody twice.
The server API (docs/SERVER.md) of one node reaching users of every
protocol on the others: a room publish (each member gets it once), private
messages, custom events, a disconnect everyone sees; /api/presence and
/api/info the same from every node; the same in a namespace where the API's
node has nobody. Each check prints `ok: ...`; a failure exits non-zero
saying what was missing. Every wait is bounded.

Usage: python tests/cluster/scenarios.py path/to/soket [--single]
(--single: one node without Redis behind every handle; the cluster-only
checks are skipped, saying so.) Needs tests/cluster/requirements.txt and
redis-server.
"""

import asyncio
import json
import sys
import time

from clients import Sio, Ws, attempt, user
from harness import NODE_TIMEOUT_S, WAIT_S, Cluster, Failure, check, fail, ok, parse_args, skip, until

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


async def api_ok(node, endpoint, body=None):
    status, answer = await node.api(endpoint, body)
    check(status == 200 and answer.get("ok") is True, f"{node.id} /api/{endpoint} {body}: {status} {answer}")
    return answer


async def presence_is(node, room, want, ns="/"):
    """Whether `node`'s /api/presence of `room` is `want`."""
    status, answer = await node.api("presence", {"namespace": ns, "room": room})
    return status == 200 and answer.get("members") == want


async def api_across(cl, users):
    """The server API (docs/SERVER.md) of one node reaching users of every
    protocol on the others: a room publish, private messages, custom events,
    a disconnect; presence and info the same from every node."""
    A, B, C = cl.nodes
    by = {c.name: c for c in users}
    room = "apiroom"
    # Two more users, to be closed by another node's API (the others stay for the later scenarios).
    kick_b, kick_c = await register_all([("sio", B, "kick_b"), ("ws", C, "kick_c")])
    everyone = users + [kick_b, kick_c]
    await presence_everywhere(everyone, names(everyone))
    members = [by["ws_b"], by["sio_c"], by["leg_b"], by["sto_c"], by["sio_b"], kick_b, kick_c]
    for c in members:
        await c.join(room)
    for c in members[:-1]:
        if c.kind != "stomp":
            await c.expect(lambda i: i == ("joined", room, "kick_c"), f"joined {room} kick_c")
    order = names(members)

    for node in cl.distinct:
        # A has no member in the room: only polling shows when the joins reached it.
        await until(lambda node=node: presence_is(node, room, order), f"/api/presence {room} on {node.id}: {order}")
    ok(f"/api/presence {room} on every node: {order} in join order (members on B and C only)")

    for node in cl.distinct:
        info = await api_ok(node, "info")
        local = sum(1 for c in everyone if c.node is node)
        want = (len(everyone), local, len(everyone) - local)
        check((info["users"], info["local_users"], info["remote_users"]) == want, f"{node.id} /api/info: {info}")
        if not cl.single:
            others = sorted(n.id for n in cl.distinct if n is not node)
            check(info["node"] == node.id and info["nodes"] == others, f"{node.id} /api/info nodes: {info}")
        check(info["namespaces"] == [{"name": "/", "users": len(everyone)}], f"{node.id} /api/info: {info}")
    ok(f"/api/info on every node: {len(everyone)} users cluster-wide, each node's own and the others' counted")

    text = "from A's API"
    answer = await api_ok(A, "publish", {"room": room, "text": text})
    check(answer["delivered"] == len(members), f"A's publish to {room}: {answer}")
    await asyncio.gather(*(c.expect_message(room, "server", text) for c in members))
    # Fences (the members' room, r1 for the others) after which nobody gets more of the first.
    await api_ok(A, "publish", {"room": room, "text": "fence"})
    await api_ok(A, "publish", {"room": ROOM, "text": "fence"})
    await asyncio.gather(*(c.expect_message(room if c in members else ROOM, "server", "fence") for c in everyone))
    for c in everyone:
        n = sum(1 for i in c.messages if i == ("message", room, "server", text))
        check(n == (1 if c in members else 0), f"{c.label} got A's room publish {n} times")
    ok(f"A's /api/publish to {room} reached each of {len(members)} members on B and C once, in every protocol")

    for name in ("sto_c", "sio_c", "leg_b", "kick_c"):
        answer = await api_ok(A, "publish", {"user": name, "text": f"for {name}", "from": "admin"})
        check(answer["delivered"] == 1, f"A's private publish to {name}: {answer}")
        await {**by, "kick_c": kick_c}[name].expect_private("admin", f"for {name}")
    ok("A's /api/publish to a user on C (STOMP, Socket.IO, /ws) and on B (legacy): a private message")

    data = {"from": "A"}
    answer = await api_ok(A, "publish", {"room": room, "event": "alert", "data": data})
    speakers = [c for c in members if c.kind != "legacy"]
    check(answer["delivered"] == len(speakers), f"A's event to {room}: {answer}")
    for c in speakers:
        await c.expect(lambda i: i[:3] == ("event", "alert", data), "A's alert")
    answer = await api_ok(A, "publish", {"event": "tick", "data": 7})
    all_speakers = [c for c in everyone if c.kind != "legacy"]
    check(answer["delivered"] == len(all_speakers), f"A's event to the namespace: {answer}")
    for c in all_speakers:
        await c.expect(lambda i: i[:3] == ("event", "tick", 7), "A's tick")
    await api_ok(A, "publish", {"user": "sto_c", "event": "poke", "data": [1]})
    await by["sto_c"].expect(lambda i: i[:3] == ("event", "poke", [1]), "A's poke")
    ok(f"A's custom events: to {room} ({len(speakers)} on B and C), to the namespace "
       f"({len(all_speakers)} on every node), to a STOMP user on C")  # fmt: skip

    # Closed by another node's API: A closes kick_b (on B), B closes kick_c (on C).
    for api_node, victim in ((A, kick_b), (B, kick_c)):
        await api_ok(api_node, "disconnect", {"user": victim.name, "reason": f"by {api_node.id}"})
        error = await victim.expect(lambda i: i[0] in ("error", "closed"), "the disconnected error")
        check(error[:2] == ("error", "disconnected") and f"by {api_node.id}" in (error[2] or ""),
              f"{victim.label}: {error}")  # fmt: skip
        await victim.inbox.until(lambda: victim.closed, "the close after the disconnected error")
        everyone.remove(victim)
        members.remove(victim)
        await presence_everywhere(everyone, names(everyone))
        for c in members:
            if c.kind != "stomp":
                await c.expect(lambda i: i == ("left", room, victim.name), f"left {room} {victim.name}")
        for node in cl.distinct:
            check(await presence_is(node, room, names(members)), f"{node.id} /api/presence {room} after {victim.name}")
            info = await api_ok(node, "info")
            check(info["users"] == len(everyone), f"{node.id} /api/info after {victim.name}: {info}")
        ok(f"{api_node.id}'s /api/disconnect of {victim.kind} {victim.name}@{victim.node.id}: the error, the close; "
           f"it left presence and {room} for every client on every node and every node's API")  # fmt: skip
    status, answer = await A.api("disconnect", {"user": "kick_b"})
    check((status, answer.get("error")) == (404, "no_such_user"), f"kick_b again: {status} {answer}")
    for c in members:
        await c.leave(room)
    await api_other_namespace(cl)


async def api_other_namespace(cl):
    """A's API in a namespace where A has nobody: an anonymous Socket.IO
    listener on C alone, then /ws users on B and C."""
    A, B, C = cl.nodes
    ns = "/games"
    anon = Sio(C, "anonymous")
    anon.sio.on("*", anon._any, namespace=ns)
    await asyncio.wait_for(anon.sio.connect(C.url, namespaces=[ns], transports=anon.transports), WAIT_S)
    answer = await api_ok(A, "publish", {"namespace": ns, "event": "hello", "data": "anyone?"})
    # Anonymous listeners elsewhere are not counted (docs/CLUSTER.md: not listed anywhere).
    check(answer["delivered"] == (1 if cl.single else 0), f"A's event to the empty {ns}: {answer}")
    await anon.expect(lambda i: i[:3] == ("event", "hello", "anyone?"), f"A's event to {ns}")
    g_b = await Ws(B, "g_b", path=f"/ws{ns}").open()
    g_c = await Ws(C, "g_c", path=f"/ws{ns}").open()
    for c in (g_b, g_c):
        check(await c.register() is None, f"{c.label} in {ns}")
        await c.join("arena")
    await g_b.expect(lambda i: i == ("joined", "arena", "g_c"), "g_c's join")
    await until(lambda: presence_is(A, "arena", ["g_b", "g_c"], ns), f"A's /api/presence of arena in {ns}")
    answer = await api_ok(A, "publish", {"namespace": ns, "room": "arena", "text": "round 1"})
    check(answer["delivered"] == 2, f"A's publish to arena in {ns}: {answer}")
    await asyncio.gather(*(c.expect_message("arena", "server", "round 1") for c in (g_b, g_c)))
    await api_ok(A, "publish", {"namespace": ns, "user": "g_c", "text": "you next"})
    await g_c.expect_private("server", "you next")
    answer = await api_ok(A, "publish", {"namespace": ns, "event": "score", "data": {"g_b": 1}})
    for c in (g_b, g_c, anon):
        await c.expect(lambda i: i[:3] == ("event", "score", {"g_b": 1}), f"A's score event in {ns}")
    status, answer = await A.api("disconnect", {"user": "g_b"})
    check(status == 404, f"g_b is in {ns}, not in /: {status} {answer}")
    await api_ok(A, "disconnect", {"namespace": ns, "user": "g_c", "reason": "game over"})
    await g_c.expect(lambda i: i[:2] == ("error", "disconnected"), "the disconnected error")
    await g_c.inbox.until(lambda: g_c.closed, "the close")
    await g_b.expect(lambda i: i == ("left", "arena", "g_c"), "g_c leaving arena")
    await g_b.wait_users([])

    async def one_left():
        return {"name": ns, "users": 1} in (await api_ok(A, "info"))["namespaces"]

    await until(one_left, f"A's /api/info to count 1 user in {ns}")
    ok(f"A's API in {ns}, where A has nobody: an event to an anonymous listener on C, then presence, a room "
       "publish, a private message, a namespace event and a disconnect reaching /ws users on B and C")  # fmt: skip
    for c in (g_b, anon):
        await c.close()


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
        await api_across(cl, users)
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
