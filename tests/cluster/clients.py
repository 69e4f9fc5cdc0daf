"""Real clients for the cluster tests, one per protocol, behind one asyncio
interface: legacy lines on raw TCP (asyncio streams), `/ws` JSON events
(websockets), Socket.IO (python-socketio's AsyncClient) and STOMP over raw
TCP (stomp.py, whose receiver thread hands frames to the event loop).

What each receives is normalised to tuples in its inbox, so a test awaits
"the next item matching P" (bounded) instead of sleeping:

    ("users", [others, oldest first])      presence (STOMP's list less itself)
    ("welcome", [others])                  /ws, Socket.IO
    ("message", room, sender, text)        a room message
    ("private", sender, text)
    ("event", name, data, sender, room)    a custom event (Socket.IO: sender and room None)
    ("joined", room, name) / ("left", room, name)
    ("members", room, [names])
    ("error", code, detail)
    ("receipt", id) / ("ack", id) / ("rooms", ...) / ("closed",)

A client made with `sink=callable` hands each item to it first; what the
sink takes (returns true for) is not kept (the soak's receivers count room
messages, they do not store them).
"""

import asyncio
import itertools
import json
import time

import socketio
import stomp
from websockets.asyncio.client import connect as ws_connect

from harness import WAIT_S, Failure, check, fail

KINDS = ("legacy", "ws", "sio", "stomp")


class Inbox:
    def __init__(self, label, sink=None):
        self.label = label
        self.items = []
        self.sink = sink
        self._wake = asyncio.Event()

    def push(self, item):
        # The sink keeps (counts) what it takes; the rest waits here for expect().
        if self.sink is None or not self.sink(item):
            self.items.append(item)
        self._wake.set()

    async def _wait(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), left)
        except asyncio.TimeoutError:
            pass
        return True

    async def next(self, test, what, timeout=WAIT_S):
        """Removes and returns the first item `test` accepts (only that one:
        what came before stays for later waits)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, item in enumerate(self.items):
                if test(item):
                    del self.items[i]
                    return item
            if not await self._wait(deadline):
                shown = repr(self.items[-12:])
                fail(f"{self.label}: no {what} within {timeout:.1f} s; last items {shown[:1500]}")

    async def until(self, test, what, timeout=WAIT_S):
        """Waits until `test()` (on the client's state) holds."""
        deadline = time.monotonic() + timeout
        while not test():
            if not await self._wait(deadline):
                fail(f"{self.label}: {what} not reached within {timeout:.1f} s")

    def has(self, test):
        return any(test(item) for item in self.items)


class Client:
    kind = "?"

    def __init__(self, node, name, sink=None):
        self.node = node
        self.name = name
        self.label = f"{self.kind} {name}@{node.id}"
        self.inbox = Inbox(self.label, sink)
        self.users = None  # the latest presence list (the others, oldest first)
        self.duplicate_presence = []  # any presence list that named someone twice
        self.closed = False
        self.messages = []  # every room message received, kept (expect() consumes the inbox)
        self._ids = itertools.count(1)

    def __repr__(self):
        return self.label

    def push(self, item):
        if item[0] in ("users", "welcome"):
            names = item[1]
            if len(set(names)) != len(names):
                self.duplicate_presence.append(list(names))
            self.users = list(names)
        elif item[0] == "message" and self.inbox.sink is None:
            self.messages.append(item)
        elif item[0] == "closed":
            self.closed = True
        self.inbox.push(item)

    async def expect(self, test, what, timeout=WAIT_S):
        return await self.inbox.next(test, what, timeout)

    async def expect_message(self, room, sender, text, timeout=WAIT_S):
        return await self.expect(
            lambda i: i[0] == "message" and i[1:] == (room, sender, text),
            f"message {text!r} from {sender} in {room}",
            timeout,
        )

    async def expect_private(self, sender, text, timeout=WAIT_S):
        return await self.expect(
            lambda i: i[0] == "private" and i[1:] == (sender, text), f"private {text!r} from {sender}", timeout
        )

    async def wait_users(self, expected, timeout=WAIT_S):
        """Until the latest presence list is exactly `expected` (the others, in order)."""
        expected = [n for n in expected if n != self.name]
        await self.inbox.until(lambda: self.users == expected, f"presence {expected} (have {self.users})", timeout)

    def next_id(self):
        return next(self._ids)

    # Protocols without the feature say so.
    async def who(self, room):
        return None

    async def emit(self, event, data, room=None, to=None):
        fail(f"{self.kind} cannot emit custom events")

    async def rooms(self):
        return None


def parse_json_event(obj):
    """A /ws event object (also what Socket.IO's reserved events carry)."""
    t = obj.get("type")
    if t == "welcome":
        return ("welcome", obj.get("users", []))
    if t == "users":
        return ("users", obj.get("users", []))
    if t == "message":
        return ("message", obj.get("room"), obj.get("from"), obj.get("text"))
    if t == "private":
        return ("private", obj.get("from"), obj.get("text"))
    if t == "event":
        return ("event", obj.get("event"), obj.get("data"), obj.get("from"), obj.get("room"))
    if t in ("joined", "left"):
        return (t, obj.get("room"), obj.get("name"))
    if t == "members":
        return ("members", obj.get("room"), obj.get("names"))
    if t == "error":
        return ("error", obj.get("code"), obj.get("message"))
    if t == "ack":
        return ("ack", obj.get("id"))
    if t == "rooms":
        return ("rooms", obj.get("rooms"))
    return ("other", obj)


# ---------------------------------------------------------------- legacy lines


class Legacy(Client):
    kind = "legacy"

    def __init__(self, node, name, sink=None, presence=True):
        super().__init__(node, name, sink)
        self.presence = presence  # False: presence lines are skipped unparsed (the soak)

    async def open(self):
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.node.host, self.node.port), WAIT_S
        )
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self):
        try:
            while True:
                line = await self.reader.readline()
                if not line.endswith(b"\n"):
                    break
                if line.startswith(b"3$*$*3"):
                    if self.presence:
                        self.push(("users", line[6:-1].decode().split("$")[:-1]))
                    elif self.users is None:
                        # Without presence tracking only the first list (the welcome) counts.
                        self.users = []
                        self.inbox.push(("users", []))
                    continue
                self.push(self.parse(line[:-1].decode()))
        except (OSError, asyncio.IncompleteReadError):
            pass
        self.push(("closed",))

    @staticmethod
    def parse(line):
        if line.startswith("#"):
            room, _, rest = line[1:].partition(" ")
            sender, _, text = rest.partition(" : ")
            return ("message", room, sender, text)
        if line.startswith("!"):
            word, _, rest = line.partition(" ")
            parts = rest.split(" ")
            if word in ("!JOINED", "!LEFT") and len(parts) == 2:
                return (word[1:].lower(), parts[0], parts[1])
            if word == "!MEMBERS":
                return ("members", parts[0], parts[1:])
            if word == "!ERR":
                return ("error", parts[0], " ".join(parts[1:]))
            if word == "!ROOMS":
                return ("rooms", parts)
        sender, sep, text = line.partition(" : ")
        if sep:
            return ("private", sender, text)
        return ("other", line)

    def send(self, line):
        self.writer.write(line.encode() + b"\n")

    async def register(self, timeout=WAIT_S):
        """Sends the name; returns None when in, else the error code."""
        self.send(self.name)
        item = await self.expect(lambda i: i[0] in ("users", "error", "closed"), "the online list", timeout)
        return None if item[0] == "users" else item[1] if item[0] == "error" else "closed"

    async def say(self, room, text):
        self.send(text if room == "lobby" else f"/msg {room} {text}")

    async def private(self, to, text):
        self.send(f"{to}..444..{self.name} : {text}")

    async def join(self, room):
        self.send(f"/join {room}")
        await self.expect(lambda i: i == ("joined", room, self.name), f"!JOINED {room} {self.name}")

    async def leave(self, room):
        self.send(f"/leave {room}")
        await self.expect(lambda i: i == ("left", room, self.name), f"!LEFT {room} {self.name}")

    async def who(self, room):
        self.send(f"/who {room}")
        return (await self.expect(lambda i: i[0] == "members" and i[1] == room, f"!MEMBERS {room}"))[2]

    async def rooms(self):
        self.send("/rooms")
        return (await self.expect(lambda i: i[0] == "rooms", "!ROOMS"))[1]

    async def close(self):
        if not self.closed:
            try:
                self.send("/quit")
                await self.inbox.until(lambda: self.closed, "the end after /quit")
            except (OSError, Failure):
                pass
        self.writer.close()


# ---------------------------------------------------------------- /ws JSON events


class Ws(Client):
    kind = "ws"

    def __init__(self, node, name, sink=None, compression="deflate", presence=True, path="/ws"):
        super().__init__(node, name, sink)
        self.compression = compression
        self.presence = presence
        self.path = path  # /ws/NAME: the namespace /NAME

    async def open(self):
        url = f"ws://{self.node.host}:{self.node.port}{self.path}"
        self.ws = await asyncio.wait_for(
            ws_connect(url, compression=self.compression, max_size=None, ping_interval=None, open_timeout=WAIT_S),
            WAIT_S,
        )
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self):
        try:
            async for text in self.ws:
                if not self.presence and text.startswith('{"type":"users"'):
                    continue
                self.push(parse_json_event(json.loads(text)))
        except Exception:  # the connection's end, however it ends
            pass
        self.close_code = self.ws.close_code
        self.push(("closed",))

    async def send(self, obj):
        await self.ws.send(json.dumps(obj))

    async def register(self, timeout=WAIT_S):
        await self.send({"type": "hello", "name": self.name, "id": self.next_id()})
        item = await self.expect(lambda i: i[0] in ("welcome", "error", "closed"), "welcome", timeout)
        return None if item[0] == "welcome" else item[1] if item[0] == "error" else "closed"

    async def say(self, room, text):
        await self.send({"type": "say", "room": room, "text": text})

    async def private(self, to, text):
        await self.send({"type": "private", "to": to, "text": text})

    async def emit(self, event, data, room=None, to=None):
        msg = {"type": "emit", "event": event, "data": data}
        if room is not None:
            msg["room"] = room
        if to is not None:
            msg["to"] = to
        ident = self.next_id()
        msg["id"] = ident
        await self.send(msg)
        item = await self.expect(lambda i: i in (("ack", ident),) or i[0] == "error", f"the ack of emit {event}")
        check(item[0] == "ack", f"{self.label}: emit {event} refused: {item}")

    async def join(self, room):
        await self.send({"type": "join", "room": room})
        await self.expect(lambda i: i == ("joined", room, self.name), f"joined {room} {self.name}")

    async def leave(self, room):
        await self.send({"type": "leave", "room": room})
        await self.expect(lambda i: i == ("left", room, self.name), f"left {room} {self.name}")

    async def who(self, room):
        await self.send({"type": "who", "room": room, "id": self.next_id()})
        return (await self.expect(lambda i: i[0] == "members" and i[1] == room, f"members of {room}"))[2]

    async def rooms(self):
        await self.send({"type": "rooms", "id": self.next_id()})
        return (await self.expect(lambda i: i[0] == "rooms", "rooms"))[1]

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), WAIT_S)
        except (OSError, asyncio.TimeoutError):
            pass


# ---------------------------------------------------------------- Socket.IO


class Sio(Client):
    kind = "sio"
    RESERVED = ("welcome", "users", "message", "private", "joined", "left", "members", "rooms", "error")

    def __init__(self, node, name, sink=None, transports=("websocket",)):
        super().__init__(node, name, sink)
        self.transports = list(transports)
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("*", self._any)
        self.sio.on("connect_error", self._connect_error)
        self.sio.on("disconnect", self._disconnect)

    async def _any(self, event, *args):
        if event in self.RESERVED and len(args) == 1 and isinstance(args[0], dict):
            self.push(parse_json_event(args[0]))
        else:
            self.push(("event", event, args[0] if len(args) == 1 else list(args), None, None))

    async def _connect_error(self, data=None):
        data = data if isinstance(data, dict) else {}
        code = (data.get("data") or {}).get("code") if isinstance(data.get("data"), dict) else None
        self.push(("error", code, data.get("message")))

    async def _disconnect(self, *args):
        self.push(("closed",))

    async def open(self):
        return self

    async def register(self, timeout=WAIT_S):
        try:
            await asyncio.wait_for(
                self.sio.connect(
                    self.node.url, auth={"name": self.name}, transports=self.transports, wait_timeout=timeout
                ),
                timeout,
            )
        except socketio.exceptions.ConnectionError:
            item = await self.expect(lambda i: i[0] == "error", "connect_error", timeout)
            return item[1] or "refused"
        await self.expect(lambda i: i[0] == "welcome", "welcome", timeout)
        return None

    async def say(self, room, text):
        await self.sio.emit("say", {"room": room, "text": text})

    async def private(self, to, text):
        await self.sio.emit("private", {"to": to, "text": text})

    async def emit(self, event, data, room=None, to=None):
        msg = {"event": event, "data": data}
        if room is not None:
            msg["room"] = room
        if to is not None:
            msg["to"] = to
        reply = await self.sio.call("emit", msg, timeout=WAIT_S)
        check(reply.get("type") == "ack", f"{self.label}: emit {event} refused: {reply}")

    async def relay(self, event, *args):
        """Any other event name: relayed to the namespace (the sender included)."""
        await self.sio.emit(event, args if len(args) != 1 else args[0])

    async def join(self, room):
        await self.sio.emit("join", {"room": room})
        await self.expect(lambda i: i == ("joined", room, self.name), f"joined {room} {self.name}")

    async def leave(self, room):
        await self.sio.emit("leave", {"room": room})
        await self.expect(lambda i: i == ("left", room, self.name), f"left {room} {self.name}")

    async def who(self, room):
        reply = await self.sio.call("who", {"room": room}, timeout=WAIT_S)
        check(reply.get("type") == "members", f"{self.label}: who {room}: {reply}")
        return reply["names"]

    async def rooms(self):
        reply = await self.sio.call("rooms", {}, timeout=WAIT_S)
        check(reply.get("type") == "rooms", f"{self.label}: rooms: {reply}")
        return reply["rooms"]

    async def close(self):
        try:
            await asyncio.wait_for(self.sio.disconnect(), WAIT_S)
        except (OSError, asyncio.TimeoutError):
            pass


# ---------------------------------------------------------------- STOMP


class _StompListener(stomp.ConnectionListener):
    def __init__(self, client, loop):
        self.client = client
        self.loop = loop

    def _hand(self, item):
        self.loop.call_soon_threadsafe(self.client.push, item)

    def on_connected(self, frame):
        self._hand(("connected",))

    def on_receipt(self, frame):
        self._hand(("receipt", frame.headers.get("receipt-id")))

    def on_error(self, frame):
        self._hand(("error", frame.headers.get("code"), frame.headers.get("message")))

    def on_disconnected(self):
        self._hand(("closed",))

    def on_message(self, frame):
        self._hand(self.client.parse(frame))


class Stomp(Client):
    kind = "stomp"

    def __init__(self, node, name, sink=None):
        super().__init__(node, name, sink)
        self.conn = None

    async def open(self):
        self.loop = asyncio.get_running_loop()
        self.conn = stomp.Connection12(
            [(self.node.host, self.node.port)], heartbeats=(0, 0), reconnect_attempts_max=1, timeout=WAIT_S
        )
        self.conn.set_listener("cluster", _StompListener(self, self.loop))
        return self

    def parse(self, frame):
        dest = frame.headers.get("destination", "")
        sender = frame.headers.get("from")
        if dest == "/topic/presence":
            return ("users", [n for n in json.loads(frame.body) if n != self.name])
        if dest.startswith("/topic/"):
            return ("message", dest.removeprefix("/topic/"), sender, frame.body)
        if dest == "/user/queue/private":
            return ("private", sender, frame.body)
        if dest == "/user/queue/events":
            e = json.loads(frame.body)
            return ("event", e.get("event"), e.get("data"), e.get("from"), e.get("room"))
        if dest == "/user/queue/errors":
            e = json.loads(frame.body)
            return ("error", e.get("code"), e.get("message"))
        return ("other", dest, frame.body)

    async def _call(self, fn, what):
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn), WAIT_S)
        except asyncio.TimeoutError:
            fail(f"{self.label}: {what} took over {WAIT_S} s")

    async def receipt(self, send):
        """Calls send(receipt) and awaits that RECEIPT."""
        receipt = f"r{self.next_id()}"
        send(receipt)
        await self.expect(lambda i: i == ("receipt", receipt), f"RECEIPT {receipt}")

    async def register(self, timeout=WAIT_S):
        await self._call(lambda: self.conn.connect(self.name, wait=False), "CONNECT")
        item = await self.expect(lambda i: i[0] in ("connected", "error", "closed"), "CONNECTED", timeout)
        if item[0] != "connected":
            return item[1] if item[0] == "error" else "closed"
        for sub, dest in (
            ("errors", "/user/queue/errors"),
            ("private", "/user/queue/private"),
            ("events", "/user/queue/events"),
            ("lobby", "/topic/lobby"),
            ("presence", "/topic/presence"),
        ):
            await self.receipt(lambda r, sub=sub, dest=dest: self.conn.subscribe(dest, id=sub, receipt=r))
        return None

    async def say(self, room, text):
        self.conn.send(f"/topic/{room}", text)

    async def private(self, to, text):
        self.conn.send(f"/user/{to}", text)

    async def join(self, room):
        await self.receipt(lambda r: self.conn.subscribe(f"/topic/{room}", id=f"room-{room}", receipt=r))

    async def leave(self, room):
        await self.receipt(lambda r: self.conn.unsubscribe(f"room-{room}", receipt=r))

    async def close(self):
        if self.conn is not None and self.conn.is_connected():
            try:
                await self._call(lambda: self.conn.disconnect(receipt="bye"), "DISCONNECT")
            except Failure:
                pass


CLASSES = {"legacy": Legacy, "ws": Ws, "sio": Sio, "stomp": Stomp}


async def attempt(kind, node, name, **kw):
    """A client of `kind` on `node` trying `name`: (client, None) when in,
    (client, error code) when refused."""
    client = await CLASSES[kind](node, name, **kw).open()
    return client, await client.register()


async def user(kind, node, name, **kw):
    client, error = await attempt(kind, node, name, **kw)
    check(error is None, f"{kind} {name}@{node.id} was refused: {error}")
    return client
