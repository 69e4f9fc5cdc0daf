"""The server API (docs/SERVER.md) against real clients of every protocol on
one soket: a legacy TCP client, a /ws client (websockets), python-socketio
and stomp.py over raw TCP, all in one room, a /ws bystander outside it and
an anonymous Socket.IO listener.

- `/api/publish` to the room: each member gets it in its own form (`#room
  server : text`, a /ws and a Socket.IO `message`, a STOMP MESSAGE on
  /topic/ROOM); to each user privately; custom events to the room, the
  namespace and a user reach Socket.IO, /ws and STOMP (`/user/queue/events`)
  users, never legacy ones.
- `/api/disconnect` of a user of each protocol: it gets the `disconnected`
  error in its protocol's form and its connection ends; the others see it
  leave (presence, `left`), `/api/presence` and `/api/info` follow, the
  bystander stays served.

The clients are tests/cluster/clients.py's (the same wrappers the cluster
scenarios use); what one must not receive is checked after a later message
that it must receive (one connection's messages arrive in order). Every
wait is bounded; a failure exits non-zero saying what was missing.

Usage: python tests/api/clients.py path/to/soket
(needs tests/cluster/requirements.txt)
"""

import asyncio
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))

from clients import Sio, user  # noqa: E402
from harness import WAIT_S, Failure, Node, check, ok, run_script  # noqa: E402

ROOM = "news"


async def api_ok(node, endpoint, body=None):
    status, answer = await node.api(endpoint, body)
    check(status == 200 and answer.get("ok") is True, f"/api/{endpoint} {body}: {status} {answer}")
    return answer


async def api_refused(node, endpoint, body, status, code):
    got, answer = await node.api(endpoint, body)
    check((got, answer.get("error")) == (status, code), f"/api/{endpoint} {body}: {got} {answer}, want {status} {code}")


async def fence(node, clients, tag):
    """A room message every client in `clients` must get: what it got before
    is all it will get of what was sent before (one connection is ordered)."""
    text = f"fence {tag}"
    await api_ok(node, "publish", {"room": ROOM, "text": text})
    await asyncio.gather(*(c.expect_message(ROOM, "server", text) for c in clients))


def no_item(client, test, what):
    check(not client.inbox.has(test), f"{client.label} got {what}: {client.inbox.items[-5:]}")


async def anonymous_listener(node):
    """A Socket.IO client of `/` that gives no name: in the namespace's audience only."""
    anon = Sio(node, "anonymous")
    connect = anon.sio.connect(node.url, transports=anon.transports, wait_timeout=WAIT_S)
    await asyncio.wait_for(connect, WAIT_S)
    return anon


async def publish(node, members, bystander, anon):
    leg, ws, sio, sto, siop = members
    answer = await api_ok(node, "publish", {"room": ROOM, "text": "extra! extra!"})
    check(answer["delivered"] == 5, f"delivered to the room: {answer}")
    await asyncio.gather(*(c.expect_message(ROOM, "server", "extra! extra!") for c in members))
    await api_ok(node, "publish", {"room": ROOM, "text": "signed", "from": "editor"})
    await asyncio.gather(*(c.expect_message(ROOM, "editor", "signed") for c in members))
    ok("/api/publish to a room: `#news server : ...` (legacy), /ws and Socket.IO `message`, "
       "STOMP MESSAGE on /topic/news; `from` names the sender")  # fmt: skip

    for c in members:
        answer = await api_ok(node, "publish", {"user": c.name, "text": f"for {c.name}", "from": "admin"})
        check(answer["delivered"] == 1, f"private to {c.name}: {answer}")
        await c.expect_private("admin", f"for {c.name}")
    await fence(node, members, "after the private ones")
    for c in members + [bystander]:
        no_item(c, lambda i: i[0] == "private", "another's private message")
    await api_refused(node, "publish", {"user": "ghost", "text": "x"}, 404, "no_such_user")
    ok("/api/publish to a user of each protocol: `admin : ...` (legacy), /ws and Socket.IO `private`, "
       "STOMP /user/queue/private; nobody else gets it")  # fmt: skip

    data = {"level": 2, "tags": ["a", "b"]}
    answer = await api_ok(node, "publish", {"room": ROOM, "event": "alert", "data": data})
    check(answer["delivered"] == 4, f"an event to the room is for its 4 events speakers: {answer}")
    await ws.expect(lambda i: i == ("event", "alert", data, None, ROOM), "the room's alert event")
    await sto.expect(lambda i: i == ("event", "alert", data, None, ROOM), "the room's alert on /user/queue/events")
    for c in (sio, siop):
        await c.expect(lambda i: i == ("event", "alert", data, None, None), "the Socket.IO alert event")
    ok("custom event to a room: /ws `event`, a Socket.IO `alert` event, STOMP /user/queue/events")

    answer = await api_ok(node, "publish", {"event": "tick", "data": [1, "two"], "from": "clock"})
    check(answer["delivered"] == 6, f"a namespace event: 4 members, the bystander, the anonymous listener: {answer}")
    for c in (ws, sto, bystander):
        await c.expect(lambda i: i == ("event", "tick", [1, "two"], "clock", None), "the namespace's tick")
    for c in (sio, siop, anon):
        await c.expect(lambda i: i[:3] == ("event", "tick", [1, "two"]), "the namespace's tick")
    ok("custom event to the namespace: /ws members and bystander, STOMP, a named and an anonymous Socket.IO client")

    for c in (ws, sio, sto, siop):
        answer = await api_ok(node, "publish", {"user": c.name, "event": "poke", "data": {"to": c.name}})
        check(answer["delivered"] == 1, f"an event to {c.name}: {answer}")
        await c.expect(lambda i: i[:3] == ("event", "poke", {"to": c.name}), f"the poke for {c.name}")
    await api_refused(node, "publish", {"user": leg.name, "event": "poke"}, 404, "no_such_user")
    await fence(node, members, "after the events")
    no_item(leg, lambda i: i[0] == "event", "a custom event")
    for c in (ws, sio, sto, siop, bystander, anon):
        no_item(c, lambda i: i[0] == "event" and i[1] == "poke", "another's poke")
    ok("custom event to a user of each events protocol; a legacy user has none (404 no_such_user), "
       "legacy members got no event at all")  # fmt: skip


async def disconnect(node, members, bystander):
    everyone = members + [bystander]
    for victim in list(members):
        reason = f"bye {victim.name}"
        await api_ok(node, "disconnect", {"user": victim.name, "reason": reason})
        error = await victim.expect(lambda i: i[0] in ("error", "closed"), "the disconnected error")
        check(error[:2] == ("error", "disconnected"), f"{victim.label}: {error}, want the disconnected error")
        check(error[2] is not None and reason in error[2], f"{victim.label}: the reason in {error}")
        await victim.inbox.until(lambda: victim.closed, "the end of the connection after the error")
        if victim.kind == "ws":
            check(victim.close_code == 1000, f"{victim.label}: close code {victim.close_code}, want 1000")
        members = [c for c in members if c is not victim]
        everyone = [c for c in everyone if c is not victim]
        await asyncio.gather(*(c.wait_users([x.name for x in everyone]) for c in everyone))
        for c in members:
            if c.kind != "stomp":
                await c.expect(lambda i: i == ("left", ROOM, victim.name), f"left {ROOM} {victim.name}")
        if members:
            answer = await api_ok(node, "presence", {"room": ROOM})
            check(answer["members"] == [c.name for c in members], f"presence after {victim.name}: {answer}")
        info = await api_ok(node, "info")
        check(info["users"] == len(everyone), f"/api/info users after {victim.name}: {info}")
        ok(f"/api/disconnect of {victim.kind} {victim.name}: the `disconnected` error with the reason, then "
           f"closed; {len(everyone)} others see it leave presence and the room")  # fmt: skip
    await api_refused(node, "disconnect", {"user": "leg"}, 404, "no_such_user")
    await api_refused(node, "presence", {"room": ROOM}, 404, "no_such_room")
    await api_ok(node, "publish", {"user": bystander.name, "text": "still there?"})
    await bystander.expect_private("server", "still there?")
    check(await bystander.who("lobby") == [bystander.name], "the bystander alone in the lobby")
    no_item(bystander, lambda i: i[0] in ("error", "closed"), "an error or a close")
    ok("the bystander was undisturbed: served after every disconnect")


async def main_async(binary):
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="soket-api-")
    node = Node(binary, "single", workdir)
    try:
        await node.start()
        specs = [("legacy", "leg"), ("ws", "wsu"), ("sio", "sioc"), ("stomp", "sto")]
        members = [await user(kind, node, name) for kind, name in specs]
        # python-socketio's default: long-polling, then the upgrade.
        members.append(await user("sio", node, "siopoll", transports=("polling", "websocket")))
        bystander = await user("ws", node, "bystander")
        anon = await anonymous_listener(node)
        everyone = members + [bystander]
        await asyncio.gather(*(c.wait_users([x.name for x in everyone]) for c in everyone))
        for c in members:
            await c.join(ROOM)
        answer = await api_ok(node, "presence", {"room": ROOM})
        check(answer["members"] == [c.name for c in members], f"/api/presence in join order: {answer}")
        info = await api_ok(node, "info")
        check((info["users"], info["local_users"], info["remote_users"]) == (6, 6, 0), f"/api/info: {info}")
        check(info["node"] is None and info["nodes"] == [], f"/api/info of a node alone: {info}")
        ok(f"/api/presence {answer['members']} in join order; /api/info 6 users")
        await publish(node, members, bystander, anon)
        await disconnect(node, members, bystander)
        for c in (bystander, anon):
            await c.close()
        code = await node.terminate()
        check(code == 0, f"soket exited with {code} after SIGTERM")
        print(f"api clients: all pass ({time.monotonic() - started:.1f} s)", flush=True)
    except (Failure, OSError, asyncio.TimeoutError) as e:
        print(f"api clients: FAIL: {type(e).__name__}: {e}\n(the log is {getattr(node, 'log', workdir)})",
              file=sys.stderr, flush=True)  # fmt: skip
        return 1
    finally:
        if node.proc is not None and node.proc.poll() is None:
            node.proc.kill()
    return 0


def main():
    return run_script("usage: clients.py path/to/soket", main_async)


if __name__ == "__main__":
    sys.exit(main())
