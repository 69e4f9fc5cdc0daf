"""python-socketio's client (PyPI) against a real soket, with both transport
settings: connect with a name, a refused name, events between two python
clients and between python and a socket.io-client peer under Node, acks,
rooms, binary attachments, a silent client dropped by the heartbeat, an
oversized payload refused while the others go on, and a client that
reconnects by itself after the daemon restarts. Every wait is bounded; a
failure exits non-zero saying what was missing.

Usage: python tests/socketio/python_client.py path/to/soket
(needs tests/socketio/requirements.txt installed, and `npm ci` done in
tests/socketio for the Node peer)
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import engineio
import socketio

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

import checks  # noqa: E402
from checks import Inbox, check, fail, run_main  # noqa: E402

WAIT_S = 10.0
PING_INTERVAL_MS = 400
PING_TIMEOUT_MS = 300
MAX_PAYLOAD = 100000

SETTINGS = [
    ("polling then websocket", ["polling", "websocket"]),
    ("websocket only", ["websocket"]),
]

HERE = os.path.dirname(os.path.abspath(__file__))

# A socket.io-client peer under Node (tests/socketio/node_modules): every
# `py-to-node` event it sees comes back as `node-to-py` with the same
# arguments, binary ones included.
NODE_PEER = """
const { io } = require('socket.io-client');
const s = io(process.argv[1], { transports: JSON.parse(process.argv[2]), reconnection: false,
  auth: { name: 'nodey' } });
s.on('py-to-node', (...args) => s.emit('node-to-py', ...args));
s.on('connect_error', (e) => { console.error('node peer: ' + e.message); process.exit(1); });
s.on('disconnect', () => process.exit(0));
setTimeout(() => process.exit(1), 30000);
"""

children = []


def start_daemon(binary, listen="127.0.0.1:0"):
    args = [
        binary,
        "--listen",
        listen,
        "--engineio-ping-interval",
        f"{PING_INTERVAL_MS}ms",
        "--engineio-ping-timeout",
        f"{PING_TIMEOUT_MS}ms",
        "--shutdown-timeout",
        "1s",
        # Bounds WebSocket messages (close 1009) and polling bodies (400) alike.
        "--engineio-max-payload",
        str(MAX_PAYLOAD),
    ]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    children.append(child)
    found = {}

    def read():
        found["line"] = child.stdout.readline()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(WAIT_S)
    line = found.get("line", "")
    if not line.startswith("soket listening on "):
        fail(f"soket did not start (got {line!r})")
    return child, "http://" + line.strip().removeprefix("soket listening on ")


def stop_daemon(child):
    child.terminate()
    try:
        code = child.wait(WAIT_S)
    except subprocess.TimeoutExpired:
        fail("soket did not exit after SIGTERM")
    if code != 0:
        fail(f"soket exited with {code} after SIGTERM")


class Client:
    """A python-socketio client whose every event is recorded, so a test
    waits for "the next event named X matching P" instead of sleeping."""

    def __init__(self, label, **options):
        self.label = label
        self.sio = socketio.Client(**{"reconnection": False, **options})
        self.inbox = Inbox(label, WAIT_S)
        self.log = self.inbox.log
        self.sio.on("*", lambda event, *args: self.inbox.push((event, args)))
        for event in ("connect", "disconnect", "connect_error"):
            self.sio.on(event, lambda *args, event=event: self.inbox.push((event, args)))

    def connect(self, url, transports, name=None, namespace="/"):
        auth = {"name": name} if name is not None else None
        self.sio.connect(url, transports=transports, auth=auth, namespaces=[namespace], wait_timeout=WAIT_S)
        return self

    def next(self, event, test=lambda *a: True, what=None, only=False):
        return self.inbox.next(lambda i: i[0] == event and test(*i[1]), what or event, only)[1]

    def call(self, event, data):
        try:
            return self.sio.call(event, data, timeout=WAIT_S)
        except socketio.exceptions.TimeoutError:
            fail(f"{self.label}: no ack to {event}")

    def close(self):
        self.sio.disconnect()


def scenarios(binary, label, transports):
    child, url = start_daemon(binary)

    def step(name):
        checks.step(f"{label}: {name}")

    step("connect with a name")
    ann = Client("ann").connect(url, transports, "ann")
    welcome = ann.next("welcome")[0]
    check(welcome["name"] == "ann" and welcome["users"] == [], f"welcome: {welcome}")
    check(ann.sio.transport() in transports, f"transport {ann.sio.transport()}")
    ben = Client("ben").connect(url, transports, "ben")
    ben.next("welcome", lambda w: w["users"] == ["ann"], "welcome listing ann")
    ann.next("users", lambda u: u["users"] == ["ben"], "users with ben")
    if transports == ["polling", "websocket"]:
        # Polling first, then the upgrade: wait (bounded) until it is done.
        deadline = time.monotonic() + WAIT_S
        while ann.sio.transport() != "websocket" and time.monotonic() < deadline:
            time.sleep(0.02)
    check(ann.sio.transport() == transports[-1], f"transport {ann.sio.transport()}, expected {transports[-1]}")

    step("a taken name refused at connect")
    dup = Client("dup")
    try:
        dup.connect(url, transports, "ann")
        fail("a second ann was accepted")
    except socketio.exceptions.ConnectionError:
        pass
    (refusal,) = dup.next("connect_error")
    check(refusal.get("data") == {"code": "name_taken"}, f"refusal data: {refusal}")
    check(refusal.get("message", "").endswith(": ann"), f"refusal message: {refusal}")

    step("custom events between two clients")
    ann.sio.emit("greet", ("hi", 42, {"nested": [1, None, True]}))
    for c in (ben, ann):
        args = c.next("greet")
        check(list(args) == ["hi", 42, {"nested": [1, None, True]}], f"greet args: {args}")

    step("an ack")
    members = ann.call("who", {"room": "lobby"})
    check(members["type"] == "members" and members["names"] == ["ann", "ben"], f"who: {members}")
    error = ann.call("say", {"room": "nowhere", "text": "x"})
    check(error["type"] == "error" and error["code"] == "no_such_room", f"error ack: {error}")

    step("rooms via join and say")
    check(ann.call("join", {"room": "py"})["type"] == "ack", "join ack")
    ben.sio.emit("join", {"room": "py"})
    ann.next("joined", lambda j: j["name"] == "ben" and j["room"] == "py", "ben joining py")
    ann.sio.emit("say", {"room": "py", "text": "in py"})
    msg = ben.next("message", lambda m: m["room"] == "py")[0]
    check(msg == {"type": "message", "room": "py", "from": "ann", "text": "in py"}, f"message: {msg}")
    ben.sio.emit("leave", {"room": "py"})
    ann.next("left", lambda m: m["name"] == "ben", "ben leaving py")

    step("events between python-socketio and socket.io-client")
    node = shutil.which("node")
    if node is None or not os.path.isdir(os.path.join(HERE, "node_modules", "socket.io-client")):
        fail("node and tests/socketio/node_modules are needed (npm ci in tests/socketio)")
    peer = subprocess.Popen([node, "-e", NODE_PEER, url, json.dumps(transports)], cwd=HERE)
    children.append(peer)
    ann.next("users", lambda u: "nodey" in u["users"], "users with the node peer")
    ann.sio.emit("py-to-node", ("from python", b"\x01\x02\x03", {"n": 1}))
    args = ann.next("node-to-py")
    check(list(args) == ["from python", b"\x01\x02\x03", {"n": 1}], f"node-to-py args: {args}")
    members = ann.call("who", {"room": "lobby"})
    check(members["names"] == ["ann", "ben", "nodey"], f"who with the node peer: {members}")

    step("binary attachments")
    blob = bytes(i % 251 for i in range(5000))
    ann.sio.emit("file", ("name.bin", blob, {"inner": b"\x00\xff\x01", "list": [b"xyz"]}))
    for c in (ben, ann):
        name, got, obj = c.next("file")
        check(name == "name.bin" and got == blob, "the top-level buffer")
        check(obj == {"inner": b"\x00\xff\x01", "list": [b"xyz"]}, f"nested buffers: {obj}")

    step("a silent client is dropped by the heartbeat")
    sleepy = Client("sleepy").connect(url, transports, "sleepy")
    ann.next("users", lambda u: "sleepy" in u["users"], "users with sleepy")
    eio = sleepy.sio.eio
    send = eio._send_packet

    def no_pong(pkt):
        if pkt.packet_type != engineio.packet.PONG:
            send(pkt)

    eio._send_packet = no_pong
    since = time.monotonic()
    ann.next("users", lambda u: "sleepy" not in u["users"], "users without sleepy")
    took = time.monotonic() - since
    check(took < 5 * (PING_INTERVAL_MS + PING_TIMEOUT_MS) / 1000, f"sleepy dropped only after {took:.2f} s")
    sleepy.next("disconnect")
    ben.sio.emit("still-here", 1)
    ann.next("still-here")

    step("an oversized payload is refused, the others go on")
    eve = Client("eve").connect(url, transports, "eve")
    ann.next("users", lambda u: "eve" in u["users"], "users with eve")
    eve.sio.emit("huge", "x" * (MAX_PAYLOAD + 10))
    eve.next("disconnect")
    ann.next("users", lambda u: "eve" not in u["users"], "users without eve")
    check(not any(name == "huge" for name, _ in ann.log), "the oversized event was relayed")
    ben.sio.emit("say", {"text": "still chatting"})
    ann.next("message", lambda m: m["text"] == "still chatting", "the message after the oversized one")

    step("reconnects by itself after the daemon restarts")
    ben.close()
    peer.terminate()
    peer.wait(WAIT_S)
    phoenix = Client("phoenix", reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.2)
    phoenix.connect(url, transports, "phoenix")
    phoenix.next("welcome")
    ann.close()
    port = url.rsplit(":", 1)[1]
    stop_daemon(child)
    phoenix.next("disconnect")
    child, _ = start_daemon(binary, f"127.0.0.1:{port}")
    # engineio hands each packet to a thread of its own, so the welcome may
    # be recorded before the connect: take the connect alone.
    phoenix.next("connect", what="the reconnect", only=True)
    check(phoenix.next("welcome")[0]["name"] == "phoenix", "welcome after the reconnect")
    check(phoenix.call("who", {"room": "lobby"})["names"] == ["phoenix"], "who after the reconnect")
    phoenix.close()
    stop_daemon(child)


def main():
    return run_main("python-socketio", "python_client.py path/to/soket", run_all, children)


def run_all(binary):
    for label, transports in SETTINGS:
        started = time.monotonic()
        scenarios(binary, label, transports)
        print(f"python-socketio ({label}): all scenarios pass ({time.monotonic() - started:.2f} s)")


if __name__ == "__main__":
    sys.exit(main())
