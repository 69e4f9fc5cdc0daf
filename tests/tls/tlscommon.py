"""What the TLS client scripts share: a soket started with the test
certificate on 127.0.0.1:0, bounded waits, and a failure that names what was
missing. Python's own directory of the running script is on `sys.path`, so
`import tlscommon` finds this file; it puts tests/support there too.
"""

import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

# The TLS scripts import `fail` from here.
from checks import Failure, fail  # noqa: E402

WAIT_S = 10.0

children = []


def start_daemon(binary, cert, key):
    """soket with `--tls-cert`/`--tls-key` on a free port: (child, host, port)."""
    child = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key],
        stdout=subprocess.PIPE,
        text=True,
    )
    children.append(child)
    found = {}
    # readline blocks: a thread reads it so the wait stays bounded.
    reader = threading.Thread(target=lambda: found.update(line=child.stdout.readline()), daemon=True)
    reader.start()
    reader.join(WAIT_S)
    line = found.get("line", "")
    if not line.startswith("soket listening on "):
        fail(f"soket did not start (said {line!r})")
    host, port = line.strip().rsplit(" ", 1)[1].rsplit(":", 1)
    return child, host, int(port)


def run(name, main):
    """Runs `main`; a failure prints `name: FAIL: why` and exits 1. Every
    soket started is killed on the way out."""
    try:
        main()
    except Failure as e:
        print(f"{name}: FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        for c in children:
            if c.poll() is None:
                c.kill()
