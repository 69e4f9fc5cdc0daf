"""What the Python client tests share: a failure that says what was missing,
the step a run is at (named in its FAIL line), an inbox a test waits on
instead of sleeping, and a main that turns any exception into one FAIL line
and exit code 1.

A script run as `python tests/DIR/NAME.py` puts this folder on `sys.path`
itself (its own folder is the only one Python adds), then imports from here.
"""

import sys
import threading
import time


class Failure(Exception):
    pass


def fail(message):
    raise Failure(message)


def check(condition, message):
    if not condition:
        fail(message)


def ok(message):
    print(f"ok: {message}", flush=True)


def skip(message):
    print(f"skip: {message}", flush=True)


# The step the run is at: a FAIL line names it.
current = "setup"


def step(name):
    global current
    current = name


def run_main(label, usage, body, children=()):
    """A script's main, for `SCRIPT path/to/soket`: runs `body(binary)`, 0
    when it returns; on any exception (a failed check, an assertion, a
    client's error) `LABEL: FAIL [step]: Type: why` on stderr, every process
    in `children` killed, and 1. Any other arguments: `usage: USAGE`, and 2."""
    if len(sys.argv) != 2:
        print(f"usage: {usage}", file=sys.stderr)
        return 2
    try:
        body(sys.argv[1])
    except Exception as e:  # any failure, assertion or client error, fails the run
        print(f"{label}: FAIL [{current}]: {type(e).__name__}: {e}", file=sys.stderr)
        for child in children:
            child.kill()
        return 1
    return 0


class Inbox:
    """Recorded items a test waits on ("the next X matching P") instead of
    sleeping; `log` keeps everything, consumed or not. `show` renders what
    was there when a wait runs out."""

    def __init__(self, label, wait_s, show=lambda items: repr(items)[:600]):
        self.label = label
        self.wait_s = wait_s
        self.show = show
        self.items = []
        self.log = []
        self.cond = threading.Condition()

    def push(self, item):
        with self.cond:
            self.items.append(item)
            self.log.append(item)
            self.cond.notify_all()

    def next(self, test, what, only=False):
        """Removes the first item `test` accepts and everything before it
        (with `only`, just that item), and returns it."""
        deadline = time.monotonic() + self.wait_s
        with self.cond:
            while True:
                for i, item in enumerate(self.items):
                    if test(item):
                        del self.items[i if only else 0 : i + 1]
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    fail(f"{self.label}: no {what} in {self.wait_s} s; had {self.show(self.items)}")
                self.cond.wait(left)
