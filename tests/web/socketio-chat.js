// The Socket.IO chat example's page (tests/web/socketio-chat/index.html,
// unchanged client code: io(), emit('chat message'), on('chat message')),
// served by soket with --static-dir and --socketio-client, in headless
// Chromium: two browser users see each other's messages and their own
// (io.emit semantics), and a legacy TCP user on the same port stays
// connected, gets no custom events, and its lines do not disturb the pages.
// Usage: node tests/web/socketio-chat.js path/to/soket
'use strict';
const path = require('path');
const { WAIT_MS, failWith, startDaemon, stopDaemon, legacyUser, launchBrowser, expectMessages } = require('./helpers');

const fail = failWith('socket.io chat e2e');
const SITE = path.join(__dirname, 'socketio-chat');
const CLIENT_DIST = path.join(__dirname, 'node_modules', 'socket.io-client', 'dist');

// One browser user: its page, what it asked of /socket.io/, and its errors.
async function openUser(browser, url, who) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const transport = [];
  const errors = [];
  page.on('pageerror', (e) => errors.push(`${who}: ${e.message}`));
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/socket.io/')) transport.push(`${r.request().method()} ${u.pathname}${u.search} -> ${r.status()}`);
  });
  page.on('requestfailed', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/socket.io/')) transport.push(`${r.method()} ${u.pathname}${u.search} -> failed`);
  });
  // The client's first Engine.IO request, set up before the page loads it.
  const handshake = page.waitForRequest((r) => /\/socket\.io\/\?EIO=4&transport=polling/.test(r.url()), { timeout: WAIT_MS });
  const bundle = page.waitForResponse((r) => new URL(r.url()).pathname === '/socket.io/socket.io.js', { timeout: WAIT_MS });
  const response = await page.goto(url);
  if (!response || response.status() !== 200) fail(`${who}: the page answered ${response && response.status()}`);
  const script = await bundle;
  if (script.status() !== 200) fail(`${who}: /socket.io/socket.io.js answered ${script.status()}`);
  await page.waitForFunction(() => typeof io === 'function', null, { timeout: WAIT_MS });
  await handshake;
  try {
    await page.waitForFunction(() => socket.connected, null, { timeout: WAIT_MS });
  } catch (e) {
    fail(`${who}: the Socket.IO client did not connect; /socket.io/ traffic: ${JSON.stringify(transport)}`);
  }
  return { page, errors, transport, who };
}

async function say(user, text) {
  await user.page.fill('#input', text);
  await user.page.press('#input', 'Enter');
}

(async () => {
  const binary = process.argv[2];
  if (!binary) fail('usage: node socketio-chat.js path/to/soket');
  const daemon = await startDaemon(binary, ['--static-dir', SITE, '--socketio-client', CLIENT_DIST]);
  const url = `http://${daemon.host}:${daemon.port}/`;
  const browser = await launchBrowser();
  try {
    const carol = legacyUser(daemon.host, daemon.port, 'carol', fail);
    await carol.lineWhere((l) => l.startsWith('3$*$*3'), 'her online list');

    const alice = await openUser(browser, url, 'alice');
    const bob = await openUser(browser, url, 'bob');

    // io.emit: every Socket.IO client of the namespace, the sender included.
    const first = 'hello from alice';
    const second = 'hi alice, bob here \u2013 \u00e7a va?';
    await say(alice, first);
    await expectMessages(alice, [first], fail);
    await expectMessages(bob, [first], fail);
    await say(bob, second);
    await expectMessages(bob, [first, second], fail);
    await expectMessages(alice, [first, second], fail);

    // The legacy user's own lines, a lobby message and a command, reach the
    // server in order: the command's reply proves the events before it were
    // handled, so anything delivered to her would already be there.
    carol.send('plain line from carol');
    carol.send('/rooms');
    await carol.lineWhere((l) => l.startsWith('!ROOMS'), 'the reply to /rooms');

    const third = 'still talking after carol';
    await say(alice, third);
    await expectMessages(bob, [first, second, third], fail);
    await expectMessages(alice, [first, second, third], fail);

    carol.send('/rooms');
    await carol.lineWhere((l) => l.startsWith('!ROOMS'), 'the second reply to /rooms');
    if (carol.isClosed()) fail('the legacy user was disconnected');
    const leaked = carol.seen().filter((l) => [first, second, third].some((t) => l.includes(t)) || l.includes('chat message'));
    if (leaked.length) fail(`the legacy user got custom events: ${JSON.stringify(leaked)}`);

    const errors = [...alice.errors, ...bob.errors];
    if (errors.length) fail(`page errors: ${JSON.stringify(errors)}`);
    carol.close();
    console.log('socket.io chat e2e: ok (the example page unchanged, two browsers, io.emit to all, a legacy user alongside)');
  } catch (e) {
    fail(e.stack || e.message);
  } finally {
    await browser.close();
    await stopDaemon(daemon);
  }
})().catch((e) => fail(e.stack || String(e)));
