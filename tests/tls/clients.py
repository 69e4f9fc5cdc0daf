"""Python `websockets` (PyPI, its defaults: permessage-deflate offered) over
wss against a real soket, the test certificate verified: /echo (text, binary,
a 1 MiB message, through SNI `localhost` and by IP) and /ws chat between a
wss user and a plaintext ws user on the same port. Every wait is bounded; a
failure exits non-zero saying what was missing.

Usage: python tests/tls/clients.py path/to/soket CERT.pem KEY.pem
(needs tests/tls/requirements.txt installed)
"""

import json
import os
import ssl
import sys

import websockets
from websockets.sync.client import connect

from tlscommon import WAIT_S, fail, run, start_daemon


def recv(ws, who, what):
    try:
        return ws.recv(timeout=WAIT_S)
    except TimeoutError:
        fail(f"{who} never got {what}")
    except websockets.ConnectionClosed as e:
        fail(f"{who} was closed ({e}) while waiting for {what}")


def recv_json(ws, who, test, what):
    """Takes JSON events until one passes `test` (pushes may come first)."""
    had = []
    for _ in range(20):
        event = json.loads(recv(ws, who, what))
        if test(event):
            return event
        had.append(event)
    fail(f"{who} never got {what}; had {had!r}")


def echo(url, context, what):
    with connect(url, ssl=context, open_timeout=WAIT_S, close_timeout=WAIT_S, max_size=4 << 20) as ws:
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "none")
        text = "h\u00e9llo over wss \U0001f600"
        ws.send(text)
        if recv(ws, "echo", "the text back") != text:
            fail(f"echo {what}: the text came back changed")
        blob = os.urandom(1 << 20)
        ws.send(blob)
        back = recv(ws, "echo", "the 1 MiB binary message back")
        if back != blob:
            fail(f"echo {what}: the 1 MiB binary message came back changed ({len(back)} bytes)")
    if ws.close_code != 1000 or ws.protocol.close_rcvd is None:
        fail(f"echo {what}: the close handshake did not complete (code {ws.close_code})")
    print(f"tls websockets: wss /echo {what}: text and 1 MiB binary echoed, clean close (extensions: {extensions})")


def chat(host, port, context):
    with connect(f"ws://{host}:{port}/ws?name=plainpaula", open_timeout=WAIT_S, close_timeout=WAIT_S) as plain:
        with connect(f"wss://{host}:{port}/ws", ssl=context, open_timeout=WAIT_S, close_timeout=WAIT_S) as tls:
            chat_between(plain, tls)
        recv_json(plain, "plainpaula", lambda e: e == {"type": "users", "users": []}, "the users push after tlsted left")
    print("tls websockets: /ws chat: wss user and plaintext ws user, welcome, users pushes, lobby and private both ways")


def chat_between(plain, tls):
    recv_json(plain, "plainpaula", lambda e: e.get("type") == "welcome", "her welcome")
    tls.send(json.dumps({"type": "hello", "name": "tlsted", "id": 1}))
    welcome = recv_json(tls, "tlsted", lambda e: e.get("type") == "welcome", "his welcome")
    if welcome.get("users") != ["plainpaula"] or welcome.get("id") != 1:
        fail(f"tlsted's welcome: {welcome!r}")
    recv_json(plain, "plainpaula", lambda e: e == {"type": "users", "users": ["tlsted"]}, "the users push naming tlsted")

    tls.send(json.dumps({"type": "say", "text": "hi from wss"}))
    recv_json(
        plain,
        "plainpaula",
        lambda e: e == {"type": "message", "room": "lobby", "from": "tlsted", "text": "hi from wss"},
        "tlsted's lobby message",
    )
    plain.send(json.dumps({"type": "private", "to": "tlsted", "text": "psst, plain here", "id": "p1"}))
    recv_json(plain, "plainpaula", lambda e: e == {"type": "ack", "id": "p1"}, "the ack of her private message")
    recv_json(
        tls,
        "tlsted",
        lambda e: e == {"type": "private", "from": "plainpaula", "text": "psst, plain here"},
        "plainpaula's private message",
    )


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: python tests/tls/clients.py path/to/soket CERT.pem KEY.pem")
    binary, cert, key = sys.argv[1:4]
    child, host, port = start_daemon(binary, cert, key)
    context = ssl.create_default_context(cafile=cert)
    echo(f"wss://localhost:{port}/echo", context, "by name (SNI localhost)")
    echo(f"wss://{host}:{port}/echo", context, "by IP")
    chat(host, port, context)
    child.terminate()
    if child.wait(timeout=WAIT_S) != 0:
        fail("soket did not exit 0 after SIGTERM")
    print(f"tls websockets: ok (websockets {websockets.version.version})")


if __name__ == "__main__":
    run("tls websockets", main)
