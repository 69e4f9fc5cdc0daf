// The web chat page at `/`, in headless Chromium, against the real daemon and
// a legacy TCP user: the page signs in, sees the legacy user, receives its
// lobby and private messages, and its own message reaches the legacy user.
// Usage: node tests/web/e2e.js path/to/soket
'use strict';
const { spawn } = require('child_process');
const net = require('net');
const readline = require('readline');
const { chromium } = require('playwright-core');

const WAIT_MS = 10000;

function fail(message) {
  console.error('web e2e: FAIL: ' + message);
  process.exit(1);
}

function startDaemon(binary) {
  const child = spawn(binary, ['--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('soket did not start')), WAIT_MS);
    readline.createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      const addr = line.replace('soket listening on ', '');
      resolve({ child, host: addr.split(':')[0], port: Number(addr.split(':')[1]) });
    });
  });
}

// A legacy user: lines in, a promise for the next line matching a test.
function legacyUser(host, port, name) {
  const socket = net.connect(port, host);
  const lines = [];
  const waiters = [];
  let partial = '';
  socket.on('data', (chunk) => {
    partial += chunk.toString('utf8');
    let at;
    while ((at = partial.indexOf('\n')) >= 0) {
      lines.push(partial.slice(0, at));
      partial = partial.slice(at + 1);
    }
    for (const w of waiters.splice(0)) w();
  });
  socket.write(name + '\n');
  return {
    send: (line) => socket.write(line + '\n'),
    close: () => socket.destroy(),
    async lineWhere(test, what) {
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        const i = lines.findIndex(test);
        if (i >= 0) return lines.splice(0, i + 1).pop();
        if (Date.now() > deadline) fail(`legacy ${name} never got ${what}; had ${JSON.stringify(lines)}`);
        await new Promise((r) => { waiters.push(r); setTimeout(r, 100); });
      }
    },
  };
}

(async () => {
  const binary = process.argv[2];
  if (!binary) fail('usage: node e2e.js path/to/soket');
  const daemon = await startDaemon(binary);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`http://${daemon.host}:${daemon.port}/`);
    await page.fill('#nameInput', 'carol');
    await page.press('#nameInput', 'Enter');
    await page.getByText('Signed in as carol').waitFor({ timeout: WAIT_MS });

    const bob = legacyUser(daemon.host, daemon.port, 'bob');
    await bob.lineWhere((l) => l === '3$*$*3carol$', 'the list with carol');
    await page.locator('#userList').getByText('bob').waitFor({ timeout: WAIT_MS });

    bob.send('hello from the legacy side');
    await page.getByText('hello from the legacy side').waitFor({ timeout: WAIT_MS });

    await page.fill('#text', 'hi bob, from the browser');
    await page.press('#text', 'Enter');
    await bob.lineWhere((l) => l === '#lobby carol : hi bob, from the browser', "carol's lobby message");

    bob.send('carol..444..bob : psst');
    await page.locator('#userList').getByText('bob').click();
    await page.getByText('psst').waitFor({ timeout: WAIT_MS });

    await page.getByText('People \u00b7 2 online').waitFor({ timeout: WAIT_MS });
    bob.close();
    // The presence push after bob's disconnect reaches the page.
    await page.getByText('People \u00b7 1 online').waitFor({ timeout: WAIT_MS });
    console.log('web e2e: ok (sign-in, presence, lobby and private messages both ways)');
  } catch (e) {
    fail(e.message);
  } finally {
    await browser.close();
    daemon.child.kill('SIGTERM');
  }
})().catch((e) => fail(e.stack || String(e)));
