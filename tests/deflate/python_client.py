"""The Python `websockets` client (permessage-deflate on by default) against
a real soket: the negotiated answer, compressed echoes of short, long and
large messages on /echo, and a /ws user chatting with a legacy TCP user
with compression on. Then with --deflate-max-dedicated 0: the default offer
(which keeps the client's context) is declined and the connection works
plain. Every wait is bounded; a failure exits non-zero saying what.

Usage: python tests/deflate/python_client.py path/to/soket
(needs tests/deflate/requirements.txt installed)
"""

import json
import socket
import subprocess
import sys
import time

from websockets.sync.client import connect

WAIT_S = 10.0


def start(binary, *args):
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("soket listening on "):
            return proc, line.split()[-1]
    proc.kill()
    sys.exit("soket did not start")


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)


def extensions(ws):
    return ws.response.headers.get("Sec-WebSocket-Extensions")


def echoes(addr):
    with connect("ws://%s/echo" % addr, open_timeout=WAIT_S, max_size=None) as ws:
        ext = extensions(ws)
        check(ext is not None and ext.startswith("permessage-deflate"), "echo: deflate agreed (got %r)" % ext)
        for message in ["hi", "x" * 1000, json.dumps({"k": list(range(30000))}), bytes(range(256)) * 800]:
            ws.send(message)
            got = ws.recv(timeout=WAIT_S)
            check(got == message, "echo of a %d-byte %s" % (len(message), type(message).__name__))
        return ext


def chat(addr):
    legacy = socket.create_connection(tuple(addr.rsplit(":", 1)), timeout=WAIT_S)
    legacy.sendall(b"lenny\n")
    reader = legacy.makefile("rb")
    check(reader.readline().startswith(b"3$*$*3"), "legacy: online list")
    with connect("ws://%s/ws?name=pyth" % addr, open_timeout=WAIT_S) as ws:
        check(extensions(ws) is not None, "/ws: deflate agreed")
        long_text = "hello from python, " * 20
        deadline = time.time() + WAIT_S
        ws.send(json.dumps({"type": "say", "text": long_text}))
        while True:
            check(time.time() < deadline, "legacy: python's message")
            line = reader.readline().decode()
            if long_text.strip() in line:
                break
        legacy.sendall(("hello from legacy, " * 20 + "\n").encode())
        while True:
            event = json.loads(ws.recv(timeout=WAIT_S))
            if event.get("type") == "message" and event.get("from") == "lenny":
                check(event["text"].startswith("hello from legacy"), "/ws: legacy's text")
                break
    legacy.close()


def main():
    binary = sys.argv[1]
    proc, addr = start(binary)
    try:
        ext = echoes(addr)
        chat(addr)
        print("python websockets: /echo and /ws with %r: ok" % ext)
    finally:
        proc.terminate()
        proc.wait(timeout=WAIT_S)
    proc, addr = start(binary, "--deflate-max-dedicated", "0")
    try:
        with connect("ws://%s/echo" % addr, open_timeout=WAIT_S) as ws:
            check(extensions(ws) is None, "no dedicated room: declined")
            ws.send("plain " * 100)
            check(ws.recv(timeout=WAIT_S) == "plain " * 100, "plain echo")
        print("python websockets: declined past --deflate-max-dedicated: ok")
    finally:
        proc.terminate()
        proc.wait(timeout=WAIT_S)


if __name__ == "__main__":
    main()
