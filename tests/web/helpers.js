// Shared by the browser end-to-end tests: the daemon on port 0, a legacy
// TCP user, headless Chromium. Every wait is bounded by WAIT_MS.
'use strict';
const { spawn } = require('child_process');
const net = require('net');
const readline = require('readline');
const { chromium } = require('playwright-core');
const { WAIT_MS, failWith } = require('../support/waiting');

// A failure exits at once (process.exit skips `finally`): daemons still
// running are killed on the way out rather than left behind.
const daemons = new Set();
process.on('exit', () => {
  for (const child of daemons) child.kill('SIGKILL');
});

// Starts `binary --listen LISTEN ...args` (LISTEN 127.0.0.1:0 unless given, e.g.
// to restart on a known port); resolves once it prints its address.
function startDaemon(binary, args = [], listen = '127.0.0.1:0') {
  const child = spawn(binary, ['--listen', listen, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  daemons.add(child);
  child.once('exit', () => daemons.delete(child));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('soket did not start')), WAIT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`soket exited with ${code} before listening`));
    });
    readline.createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      const addr = line.replace('soket listening on ', '');
      resolve({ child, host: addr.split(':')[0], port: Number(addr.split(':')[1]) });
    });
  });
}

// Asks the daemon to stop and waits (bounded) for it to exit.
function stopDaemon(daemon) {
  return new Promise((resolve) => {
    if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) return resolve();
    const timer = setTimeout(() => { daemon.child.kill('SIGKILL'); resolve(); }, WAIT_MS);
    daemon.child.once('exit', () => { clearTimeout(timer); resolve(); });
    daemon.child.kill('SIGTERM');
  });
}

// A legacy user: sends `name` as its first line; `lines` is everything
// received since, `lineWhere` waits for (and takes up to) a matching line.
function legacyUser(host, port, name, fail) {
  const socket = net.connect(port, host);
  const lines = [];
  const seen = [];
  const waiters = [];
  let partial = '';
  let closed = false;
  const wake = () => { for (const w of waiters.splice(0)) w(); };
  socket.on('data', (chunk) => {
    partial += chunk.toString('utf8');
    let at;
    while ((at = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, at);
      lines.push(line);
      seen.push(line);
      partial = partial.slice(at + 1);
    }
    wake();
  });
  socket.on('close', () => { closed = true; wake(); });
  socket.on('error', () => {});
  socket.write(name + '\n');
  return {
    send: (line) => socket.write(line + '\n'),
    close: () => socket.destroy(),
    isClosed: () => closed,
    // Every line received so far, taken or not.
    seen: () => seen.slice(),
    async lineWhere(test, what) {
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        const i = lines.findIndex(test);
        if (i >= 0) return lines.splice(0, i + 1).pop();
        if (closed) fail(`legacy ${name} was disconnected while waiting for ${what}; had ${JSON.stringify(lines)}`);
        if (Date.now() > deadline) fail(`legacy ${name} never got ${what}; had ${JSON.stringify(lines)}`);
        await new Promise((r) => { waiters.push(r); setTimeout(r, 100); });
      }
    },
  };
}

function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
}

// Waits until the page of `user` ({ page, who }) lists exactly `want` in
// `#messages > li` (the Socket.IO chat example's list); `fail`s otherwise.
async function expectMessages(user, want, fail) {
  try {
    await user.page.waitForFunction(
      (expected) => JSON.stringify([...document.querySelectorAll('#messages > li')].map((li) => li.textContent)) === expected,
      JSON.stringify(want),
      { timeout: WAIT_MS },
    );
  } catch (e) {
    const have = await user.page.locator('#messages > li').allTextContents();
    fail(`${user.who} shows ${JSON.stringify(have)}, expected ${JSON.stringify(want)}`);
  }
}

module.exports = { WAIT_MS, failWith, startDaemon, stopDaemon, legacyUser, launchBrowser, expectMessages };
