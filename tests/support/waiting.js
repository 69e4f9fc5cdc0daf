// What the Node client tests share: bounded waits, an inbox a test waits on
// instead of sleeping, a `fail` that says what was missing, and a legacy
// line user. Plain Node: no npm package, so any tests/DIR/*.js can
// require('../support/waiting').
'use strict';
const net = require('net');

const WAIT_MS = 10000;

// Rejects with `timed out after MS ms waiting for WHAT` unless `promise`
// settles first.
function withTimeout(promise, what, ms = WAIT_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// A `fail(message)` that prints `LABEL: FAIL: message` (with `where`, a
// function, `LABEL: FAIL [where()]: message`), runs `cleanup` and exits 1.
function failWith(label, where = null, cleanup = () => {}) {
  return (message) => {
    console.error(`${label}: FAIL${where ? ` [${where()}]` : ''}: ${message}`);
    cleanup();
    process.exit(1);
  };
}

// Recorded items a test waits on ("the next X matching P"); `log` keeps
// everything, consumed or not. `next` resolves with the first item `test`
// accepts, removing it and everything before it; one that does not come in
// WAIT_MS calls `fail` with `LABEL: WHAT; had SUMMARY` (of the items there
// when the wait began).
function inbox(label, fail, summary = JSON.stringify) {
  const items = [];
  const log = [];
  const waiters = new Set();
  return {
    items,
    log,
    push(item) {
      items.push(item);
      log.push(item);
      for (const w of [...waiters]) w();
    },
    next(test, what) {
      return withTimeout(new Promise((resolve) => {
        const check = () => {
          const i = items.findIndex(test);
          if (i < 0) return;
          waiters.delete(check);
          resolve(items.splice(0, i + 1).pop());
        };
        waiters.add(check);
        check();
      }), `${label}: ${what}; had ${summary(items)}`).catch((e) => fail(e.message));
    },
  };
}

// A legacy line-protocol user on a plain TCP socket, signed in as `name`:
// every line it receives goes into `box` (an inbox); `line` waits for one.
function legacyUser(host, port, name, box) {
  const socket = net.connect(port, host);
  let partial = '';
  socket.on('data', (chunk) => {
    partial += chunk.toString('utf8');
    let at;
    while ((at = partial.indexOf('\n')) >= 0) {
      box.push(partial.slice(0, at));
      partial = partial.slice(at + 1);
    }
  });
  socket.write(name + '\n');
  return {
    box,
    send: (line) => socket.write(line + '\n'),
    close: () => socket.destroy(),
    line: (test, what) => box.next(test, what),
  };
}

module.exports = { WAIT_MS, withTimeout, failWith, inbox, legacyUser };
