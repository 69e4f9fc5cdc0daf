"""Connection tokens (docs/AUTH.md) with real clients against a real soket
started with --token-secret: python-socketio (both transport settings),
stomp.py over raw TCP, websocket-client on /ws, and a raw TCP legacy
client. A valid token on each; expired, wrongly signed, `alg: none`,
wrong-room and over-long tokens refused with each protocol's answer while a
/ws neighbour stays served; `exp` cutting live connections, and a refresh
keeping one past its first `exp` while a refused refresh leaves the old
cutoff (Socket.IO's `call("refresh")`, a SEND to /soket/token, a legacy
`token:` line). Tokens are
signed here (HS256 with the standard library). Every wait is bounded; a
failure exits non-zero saying what was missing.

Usage: python tests/tokens/clients.py path/to/soket
(needs tests/socketio/requirements.txt and tests/stomp/requirements.txt)
"""

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time

import socketio
import stomp
import websocket

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from checks import Inbox, check, fail, run_main, step  # noqa: E402

WAIT_S = 10.0
SECRET = b"clients-test-secret"
children = []


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(claims, secret=SECRET, alg="HS256"):
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    if alg == "none":
        return f"{head}.{body}."
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def token(sub, ttl=600, **extra):
    return sign({"sub": sub, "exp": int(time.time()) + ttl, **extra})


def until(sub, exp):
    return sign({"sub": sub, "exp": exp})


def bad_tokens():
    now = int(time.time())
    return [
        ("expired", sign({"sub": "eve", "exp": now - 30})),
        ("wrongly signed", sign({"sub": "eve", "exp": now + 600}, secret=b"another secret")),
        ("alg none", sign({"sub": "eve", "exp": now + 600}, alg="none")),
        ("over-long", token("eve", pad="x" * 9000)),
    ]


def start_daemon(binary):
    args = [binary, "--listen", "127.0.0.1:0", "--token-secret", SECRET.decode(), "--token-leeway", "0s",
            "--shutdown-timeout", "1s"]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    children.append(child)
    line = child.stdout.readline()
    if not line.startswith("soket listening on "):
        fail(f"soket did not start (got {line!r})")
    host, port = line.strip().removeprefix("soket listening on ").rsplit(":", 1)
    return child, host, int(port)


class Json:
    """A /ws client (websocket-client)."""

    def __init__(self, host, port, query=""):
        self.ws = websocket.create_connection(f"ws://{host}:{port}/ws{query}", timeout=WAIT_S)

    def send(self, obj):
        self.ws.send(json.dumps(obj))

    def next(self, kind):
        while True:
            opcode, data = self.ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                fail(f"/ws closed while waiting for {kind}")
            if opcode == websocket.ABNF.OPCODE_TEXT:
                event = json.loads(data)
                if event.get("type") == kind:
                    return event

    def close_code(self):
        while True:
            opcode, data = self.ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(data[:2], "big") if len(data) >= 2 else None


def still_served(neighbour):
    neighbour.send({"type": "who", "room": "lobby", "id": 42})
    check(neighbour.next("members").get("id") == 42, "the neighbour is answered")


class Sio:
    def __init__(self, label, transports):
        self.inbox = Inbox(label, WAIT_S)
        self.transports = transports
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", lambda event, *args: self.inbox.push((event, args)))
        for event in ("connect", "disconnect", "connect_error"):
            self.sio.on(event, lambda *args, event=event: self.inbox.push((event, args)))

    def connect(self, url, auth):
        try:
            self.sio.connect(url, transports=self.transports, auth=auth, wait_timeout=WAIT_S)
            return True
        except socketio.exceptions.ConnectionError:
            return False


def socketio_scenarios(host, port, neighbour, transports):
    url = f"http://{host}:{port}"
    label = "+".join(transports)
    step(f"socket.io ({label}): a valid token, no name")
    alice = Sio("alice", transports)
    check(alice.connect(url, {"token": token("alice")}), "alice connects")
    welcome = alice.inbox.next(lambda i: i[0] == "welcome", "welcome")
    check(welcome[1][0]["name"] == "alice", f"welcome as alice: {welcome}")
    for what, bad in bad_tokens() + [("no token", None)]:
        step(f"socket.io ({label}): {what} refused with CONNECT_ERROR")
        eve = Sio("eve", transports)
        auth = {"name": "eve"} if bad is None else {"token": bad}
        check(not eve.connect(url, auth), f"{what}: refused")
        err = eve.inbox.next(lambda i: i[0] == "connect_error", "connect_error")
        check(err[1][0].get("message") == "unauthorized", f"{what}: {err}")
        eve.sio.disconnect()
        still_served(neighbour)
    step(f"socket.io ({label}): a room the token does not list")
    limited = Sio("limited", transports)
    check(limited.connect(url, {"token": token("limited", rooms=["news"])}), "limited connects")
    limited.sio.emit("join", {"room": "secret"})
    err = limited.inbox.next(lambda i: i[0] == "error", "error")
    check(err[1][0].get("code") == "forbidden", f"forbidden: {err}")
    step(f"socket.io ({label}): refresh acked; a refused one keeps the old exp")
    exp = int(time.time()) + 2
    kept, cut = Sio("kept", transports), Sio("cut", transports)
    check(kept.connect(url, {"token": until("siokept", exp)}), "kept connects")
    check(cut.connect(url, {"token": until("siocut", exp)}), "cut connects")
    ack = kept.sio.call("refresh", {"token": token("siokept")}, timeout=WAIT_S)
    check(ack.get("type") == "ack", f"refresh acked: {ack}")
    answer = kept.sio.call("refresh", {"token": token("other")}, timeout=WAIT_S)
    check(answer.get("code") == "forbidden", f"another sub is forbidden: {answer}")
    answer = cut.sio.call("refresh", {"token": "a.b.c"}, timeout=WAIT_S)
    check(answer.get("code") == "unauthorized", f"a bad token is unauthorized: {answer}")
    cut.sio.emit("refresh", {})
    err = cut.inbox.next(lambda i: i[0] == "error", "the error event of a refresh without a token")
    check(err[1][0].get("code") == "missing_field", f"missing_field: {err}")
    cut.inbox.next(lambda i: i[0] == "disconnect", "the server's disconnect at the old exp")
    members = kept.sio.call("who", {"room": "lobby"}, timeout=WAIT_S)
    check("siokept" in members.get("names", []), f"kept is still served past the old exp: {members}")
    kept.sio.disconnect()
    step(f"socket.io ({label}): exp cuts the connection")
    brief = Sio("brief", transports)
    check(brief.connect(url, {"token": token("brief", ttl=2)}), "brief connects")
    brief.inbox.next(lambda i: i[0] == "disconnect", "the server's disconnect at exp")
    still_served(neighbour)
    for client in (alice, limited, brief):
        client.sio.disconnect()


class StompListener(stomp.ConnectionListener):
    def __init__(self, inbox):
        self.inbox = inbox

    def on_connected(self, frame):
        self.inbox.push(("CONNECTED", frame))

    def on_error(self, frame):
        self.inbox.push(("ERROR", frame))

    def on_receipt(self, frame):
        self.inbox.push(("RECEIPT", frame))

    def on_message(self, frame):
        self.inbox.push(("MESSAGE", frame))

    def on_disconnected(self):
        self.inbox.push(("DISCONNECTED", None))


def stomp_client(host, port, label, **headers):
    inbox = Inbox(label, WAIT_S)
    conn = stomp.Connection12([(host, port)], heartbeats=(0, 0), auto_content_length=False)
    conn.set_listener("", StompListener(inbox))
    threading.Thread(target=lambda: conn.connect(wait=False, **headers), daemon=True).start()
    return conn, inbox


def stomp_scenarios(host, port, neighbour):
    step("stomp.py: a valid token as passcode")
    conn, inbox = stomp_client(host, port, "alice-stomp", passcode=token("stompy"))
    kind, frame = inbox.next(lambda i: i[0] in ("CONNECTED", "ERROR"), "CONNECTED")
    check(kind == "CONNECTED" and frame.headers.get("user-name") == "stompy", f"connected: {frame}")
    conn.disconnect()
    for what, bad in bad_tokens():
        step(f"stomp.py: {what} refused with an ERROR frame")
        conn, inbox = stomp_client(host, port, "eve-stomp", username="eve", passcode=bad)
        kind, frame = inbox.next(lambda i: i[0] in ("CONNECTED", "ERROR"), "ERROR")
        # An over-long token is also past --stomp-max-header-line (8 KiB):
        # the frame codec refuses it before the token is looked at.
        codes = ("unauthorized", "protocol_error") if what == "over-long" else ("unauthorized",)
        check(kind == "ERROR" and frame.headers.get("code") in codes, f"{what}: {kind} {frame}")
        inbox.next(lambda i: i[0] == "DISCONNECTED", "the close after ERROR")
        still_served(neighbour)
    step("stomp.py: a SEND to /soket/token refreshes; a refused one keeps the old exp")
    exp = int(time.time()) + 2
    kept, kept_inbox = stomp_client(host, port, "kept-stomp", passcode=until("stompkept", exp))
    cut, cut_inbox = stomp_client(host, port, "cut-stomp", passcode=until("stompcut", exp))
    for conn, inbox in ((kept, kept_inbox), (cut, cut_inbox)):
        inbox.next(lambda i: i[0] == "CONNECTED", "CONNECTED")
        conn.subscribe("/user/queue/errors", id="errors")

    def refused(inbox, code, what):
        kind, frame = inbox.next(lambda i: i[0] in ("MESSAGE", "ERROR"), what)
        check(kind == "MESSAGE" and json.loads(frame.body).get("code") == code, f"{what}: {kind} {frame}")

    kept.send("/soket/token", "", headers={"token": token("stompkept")}, receipt="fresh")
    kind, frame = kept_inbox.next(lambda i: i[0] in ("RECEIPT", "MESSAGE", "ERROR"), "the refresh's RECEIPT")
    check(kind == "RECEIPT" and frame.headers.get("receipt-id") == "fresh", f"refresh: {kind} {frame}")
    kept.send("/soket/token", "", headers={"token": token("other")})
    refused(kept_inbox, "forbidden", "another sub refused on /user/queue/errors")
    cut.send("/soket/token", "", headers={"token": "a.b.c"})
    refused(cut_inbox, "unauthorized", "a bad token refused on /user/queue/errors")
    kind, frame = cut_inbox.next(lambda i: i[0] == "ERROR", "ERROR at the old exp")
    check(frame.headers.get("code") == "token_expired", f"token_expired: {frame}")
    kept.send("/topic/lobby", "still here", receipt="after")
    kind, frame = kept_inbox.next(lambda i: i[0] in ("RECEIPT", "ERROR"), "a RECEIPT past the old exp")
    check(kind == "RECEIPT" and frame.headers.get("receipt-id") == "after", f"kept: {kind} {frame}")
    kept.disconnect()
    step("stomp.py: exp ends the session with an ERROR")
    conn, inbox = stomp_client(host, port, "brief-stomp", passcode=token("briefstomp", ttl=2))
    inbox.next(lambda i: i[0] == "CONNECTED", "CONNECTED")
    kind, frame = inbox.next(lambda i: i[0] == "ERROR", "ERROR at exp")
    check(frame.headers.get("code") == "token_expired", f"token_expired: {frame}")


def legacy_scenarios(host, port, neighbour):
    def connect():
        sock = socket.create_connection((host, port), timeout=WAIT_S)
        return sock, sock.makefile("rb")

    step("legacy: token: line")
    sock, lines = connect()
    sock.sendall(f"token:{token('oldie')}\n".encode())
    check(lines.readline().startswith(b"3$*$*3"), "the online list")
    for what, bad in bad_tokens() + [("plain name", None)]:
        step(f"legacy: {what} refused")
        eve, eve_lines = connect()
        eve.sendall(b"eve\n" if bad is None else f"token:{bad}\n".encode())
        check(eve_lines.readline() == b"!ERR unauthorized\n", f"{what}: !ERR unauthorized")
        check(eve_lines.readline() == b"", f"{what}: closed")
        still_served(neighbour)
    step("legacy: a token: line refreshes; a refused one keeps the old exp")
    exp = int(time.time()) + 2
    kept, kept_lines = connect()
    kept.sendall(f"token:{until('legacykept', exp)}\n".encode())
    cut, cut_lines = connect()
    cut.sendall(f"token:{until('legacycut', exp)}\n".encode())

    def next_bang(lines, what):
        while True:
            line = lines.readline()
            check(line != b"", f"{what} before the close")
            if line.startswith(b"!"):
                return line

    kept.sendall(f"token:{token('legacykept')}\ntoken:{token('other')}\n".encode())
    check(next_bang(kept_lines, "!ERR forbidden") == b"!ERR forbidden\n", "another sub is forbidden")
    cut.sendall(b"token:a.b.c\n")
    check(next_bang(cut_lines, "!ERR unauthorized") == b"!ERR unauthorized\n", "a bad token is unauthorized")
    check(next_bang(cut_lines, "!ERR token_expired") == b"!ERR token_expired\n", "the old exp still cuts")
    kept.sendall(b"/who lobby\n")
    line = next_bang(kept_lines, "!MEMBERS")
    check(line.startswith(b"!MEMBERS lobby") and b"legacykept" in line, f"kept past the old exp: {line!r}")
    kept.close()
    cut.close()
    step("legacy: exp cuts the connection")
    brief, brief_lines = connect()
    brief.sendall(f"token:{token('brieflegacy', ttl=2)}\n".encode())
    while True:
        line = brief_lines.readline()
        check(line != b"", "!ERR token_expired before the close")
        if line.startswith(b"!ERR"):
            check(line == b"!ERR token_expired\n", f"token_expired: {line!r}")
            break
    check(brief_lines.readline() == b"", "closed after token_expired")
    sock.close()


def ws_scenarios(host, port, neighbour):
    for what, bad in bad_tokens()[:3]:
        step(f"/ws: {what} in hello refused with 4001")
        eve = Json(host, port)
        eve.send({"type": "hello", "name": "eve", "token": bad})
        check(eve.next("error")["code"] == "unauthorized", f"{what}: unauthorized")
        check(eve.close_code() == 4001, f"{what}: close 4001")
        still_served(neighbour)
    step("/ws: exp cuts the connection with 4001")
    brief = Json(host, port, f"?token={token('briefws', ttl=2)}")
    brief.send({"type": "hello"})
    brief.next("welcome")
    check(brief.next("error")["code"] == "token_expired", "token_expired")
    check(brief.close_code() == 4001, "close 4001")


def main():
    return run_main("tokens", "clients.py path/to/soket", run_all, children)


def run_all(binary):
    step("start")
    started = time.monotonic()
    child, host, port = start_daemon(binary)
    step("/ws neighbour")
    neighbour = Json(host, port, f"?token={token('carol')}")
    neighbour.send({"type": "hello", "name": "carol"})
    neighbour.next("welcome")
    ws_scenarios(host, port, neighbour)
    legacy_scenarios(host, port, neighbour)
    stomp_scenarios(host, port, neighbour)
    for transports in (["polling", "websocket"], ["websocket"]):
        socketio_scenarios(host, port, neighbour, transports)
    child.terminate()
    child.wait(WAIT_S)
    print(f"tokens: all scenarios pass with real clients ({time.monotonic() - started:.2f} s)")


if __name__ == "__main__":
    sys.exit(main())
