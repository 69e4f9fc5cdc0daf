"""The command-line TLS clients against a real soket on one port: `curl
--cacert` fetches /healthz over HTTPS (TLS 1.3, then TLS 1.2), and `openssl
s_client`, verifying the certificate, is a legacy line user: it signs in,
gets the online list, and chats both ways with a plaintext legacy user on the
same port, then leaves with /quit and sees the connection end. Every wait is
bounded; a failure exits non-zero saying what was missing.

Usage: python3 tests/tls/cli.py path/to/soket CERT.pem KEY.pem
(needs only the standard library, curl and openssl)
"""

import queue
import socket
import subprocess
import sys
import threading
import time

from tlscommon import WAIT_S, children, fail, run, start_daemon


class Lines:
    """Lines arriving on a stream, read by a thread; `where` waits (bounded)
    for a matching one and takes everything up to it."""

    def __init__(self, who, read_line):
        self.who = who
        self.queue = queue.Queue()
        self.closed = False
        self.had = []

        def pump():
            for line in iter(read_line, ""):
                self.queue.put(line.rstrip("\n"))
            self.queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def _next(self, deadline, missing):
        """The next line, or None at the end of the stream; fails with
        `missing()` once `deadline` passes."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                fail(missing())
            try:
                line = self.queue.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.closed = True
            else:
                self.had.append(line)
            return line

    def where(self, test, what):
        deadline = time.monotonic() + WAIT_S
        while True:
            line = self._next(deadline, lambda: f"{self.who} never got {what}; had {self.had!r}")
            if line is None:
                fail(f"{self.who} was disconnected while waiting for {what}; had {self.had!r}")
            if test(line):
                return line

    def wait_closed(self):
        deadline = time.monotonic() + WAIT_S
        while not self.closed:
            self._next(deadline, lambda: f"{self.who}: the connection did not end; had {self.had!r}")


def curl_healthz(host, port, cert, extra, what):
    out = subprocess.run(
        ["curl", "-sS", "--cacert", cert, "-w", "\n%{http_code} %{ssl_verify_result}", *extra, f"https://{host}:{port}/healthz"],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    body, _, status = out.stdout.rpartition("\n")
    if out.returncode != 0 or status != "200 0" or body != "ok\n":
        fail(f"curl {what}: exit {out.returncode}, status {status!r}, body {body!r}, stderr {out.stderr.strip()!r}")
    print(f"tls cli: curl --cacert {what}: 200 ok, certificate verified")


def legacy_over_s_client(host, port, cert):
    plain = socket.create_connection((host, port), timeout=WAIT_S)
    # Blocking from here: the reader thread waits as long as it must; the
    # waits on its queue are what is bounded.
    plain.settimeout(None)
    plain_file = plain.makefile("r", encoding="utf-8", newline="\n")
    plain.sendall(b"plainpat\n")
    pat = Lines("plaintext legacy plainpat", plain_file.readline)
    pat.where(lambda l: l == "3$*$*3", "her (empty) online list")

    # -verify_return_error -verify_ip: the handshake fails unless the test
    # certificate is checked and trusted; -quiet keeps stdout to the
    # server's lines and reads stdin as plain text (no Q/R commands).
    s_client = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"{host}:{port}", "-CAfile", cert, "-verify_return_error", "-verify_ip", host, "-quiet"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    children.append(s_client)
    tls = Lines("openssl s_client user tlstom", s_client.stdout.readline)

    def send(line):
        s_client.stdin.write(line + "\n")
        s_client.stdin.flush()

    send("tlstom")
    tls.where(lambda l: l == "3$*$*3plainpat$", "the online list naming plainpat")
    pat.where(lambda l: l == "3$*$*3tlstom$", "the online list naming tlstom")

    send("hello from TLS \u00e7a va")
    pat.where(lambda l: l == "#lobby tlstom : hello from TLS \u00e7a va", "tlstom's lobby line")
    plain.sendall("hi tom, plain here\n".encode())
    tls.where(lambda l: l == "#lobby plainpat : hi tom, plain here", "plainpat's lobby line")
    send("plainpat..444..tlstom : a private one")
    pat.where(lambda l: l == "tlstom : a private one", "tlstom's private line")
    send("/rooms")
    tls.where(lambda l: l == "!ROOMS lobby", "the reply to /rooms")

    send("/quit")
    tls.wait_closed()
    try:
        code = s_client.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        fail("openssl s_client did not exit after /quit")
    if code != 0:
        fail(f"openssl s_client exited {code}: {s_client.stderr.read().strip()!r}")
    pat.where(lambda l: l == "3$*$*3", "the online list after tlstom left")
    plain.close()
    print("tls cli: openssl s_client legacy user: verified handshake, online list, lobby both ways with a plaintext user, private line, /quit, exit 0")


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: python3 tests/tls/cli.py path/to/soket CERT.pem KEY.pem")
    binary, cert, key = sys.argv[1:4]
    child, host, port = start_daemon(binary, cert, key)
    curl_healthz(host, port, cert, [], "TLS 1.3")
    curl_healthz(host, port, cert, ["--tlsv1.2", "--tls-max", "1.2"], "TLS 1.2")
    legacy_over_s_client(host, port, cert)
    child.terminate()
    if child.wait(timeout=WAIT_S) != 0:
        fail("soket did not exit 0 after SIGTERM")
    print("tls cli: ok")


if __name__ == "__main__":
    run("tls cli", main)
