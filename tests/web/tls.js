// Headless Chromium against soket over TLS with a self-signed certificate
// (the browser context ignores certificate errors, as a developer clicking
// through the warning would): the built-in page at https://.../ signs in and
// chats over wss://.../ws with a plaintext legacy user on the same port, and
// the Socket.IO chat example page (--static-dir, --socketio-client) served
// over https chats between two browsers, polling over https then upgraded to
// wss. Every wait is bounded by WAIT_MS.
// Usage: node tests/web/tls.js path/to/soket CERT.pem KEY.pem
'use strict';
const path = require('path');
const { WAIT_MS, failWith, startDaemon, stopDaemon, legacyUser, launchBrowser, expectMessages } = require('./helpers');

const fail = failWith('tls browser e2e');
const SITE = path.join(__dirname, 'socketio-chat');
const CLIENT_DIST = path.join(__dirname, 'node_modules', 'socket.io-client', 'dist');

async function newPage(browser, who, sockets, errors) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(`${who}: ${e.message}`));
  page.on('websocket', (ws) => sockets.push(ws.url()));
  return page;
}

async function builtInPage(browser, binary, tlsArgs) {
  const daemon = await startDaemon(binary, tlsArgs);
  try {
    const sockets = [];
    const errors = [];
    const page = await newPage(browser, 'carol', sockets, errors);
    const response = await page.goto(`https://${daemon.host}:${daemon.port}/`);
    if (!response || response.status() !== 200) fail(`the page over https answered ${response && response.status()}`);
    const security = await response.securityDetails();
    if (!security || !security.protocol) fail('the page was not loaded over TLS');
    await page.fill('#nameInput', 'carol');
    await page.press('#nameInput', 'Enter');
    await page.getByText('Signed in as carol').waitFor({ timeout: WAIT_MS });
    if (!sockets.length || !sockets.every((u) => u.startsWith(`wss://${daemon.host}:${daemon.port}/ws`))) {
      fail(`the page's WebSockets were ${JSON.stringify(sockets)}, expected wss://.../ws`);
    }

    const bob = legacyUser(daemon.host, daemon.port, 'bob', fail);
    await bob.lineWhere((l) => l === '3$*$*3carol$', 'the list with carol');
    await page.locator('#userList').getByText('bob').waitFor({ timeout: WAIT_MS });

    bob.send('hello over plaintext to a wss page');
    await page.getByText('hello over plaintext to a wss page').waitFor({ timeout: WAIT_MS });
    await page.fill('#text', 'hi bob, from https');
    await page.press('#text', 'Enter');
    await bob.lineWhere((l) => l === '#lobby carol : hi bob, from https', "carol's lobby message");
    if (errors.length) fail(`page errors: ${JSON.stringify(errors)}`);
    bob.close();
    await page.context().close();
    console.log(`tls browser e2e: built-in page over https (${security.protocol}), /ws over wss, chat with a plaintext legacy user: ok`);
  } finally {
    await stopDaemon(daemon);
  }
}

async function socketIoUser(browser, url, who, errors) {
  const sockets = [];
  const page = await newPage(browser, who, sockets, errors);
  const response = await page.goto(url);
  if (!response || response.status() !== 200) fail(`${who}: the page over https answered ${response && response.status()}`);
  await page.waitForFunction(() => typeof io === 'function', null, { timeout: WAIT_MS });
  try {
    await page.waitForFunction(() => socket.connected && socket.io.engine.transport.name === 'websocket', null, { timeout: WAIT_MS });
  } catch (e) {
    fail(`${who}: the Socket.IO client did not connect and upgrade to websocket; WebSockets: ${JSON.stringify(sockets)}`);
  }
  if (!sockets.some((u) => u.startsWith('wss://') && u.includes('/socket.io/') && u.includes('transport=websocket'))) {
    fail(`${who}: no wss:// Socket.IO WebSocket among ${JSON.stringify(sockets)}`);
  }
  return { page, who };
}

async function socketIoPage(browser, binary, tlsArgs) {
  const daemon = await startDaemon(binary, [...tlsArgs, '--static-dir', SITE, '--socketio-client', CLIENT_DIST]);
  try {
    const errors = [];
    const url = `https://${daemon.host}:${daemon.port}/`;
    const carol = legacyUser(daemon.host, daemon.port, 'carol', fail);
    await carol.lineWhere((l) => l.startsWith('3$*$*3'), 'her online list');
    const alice = await socketIoUser(browser, url, 'alice', errors);
    const bob = await socketIoUser(browser, url, 'bob', errors);
    const first = 'hello from alice over wss';
    const second = 'hi alice \u2013 bob, also over wss';
    await alice.page.fill('#input', first);
    await alice.page.press('#input', 'Enter');
    await expectMessages(bob, [first], fail);
    await expectMessages(alice, [first], fail);
    await bob.page.fill('#input', second);
    await bob.page.press('#input', 'Enter');
    await expectMessages(alice, [first, second], fail);
    await expectMessages(bob, [first, second], fail);
    carol.send('/rooms');
    await carol.lineWhere((l) => l.startsWith('!ROOMS'), 'the reply to /rooms');
    if (errors.length) fail(`page errors: ${JSON.stringify(errors)}`);
    carol.close();
    console.log('tls browser e2e: Socket.IO example page over https, upgraded to wss, two browsers chat, a plaintext legacy user alongside: ok');
  } finally {
    await stopDaemon(daemon);
  }
}

(async () => {
  const [binary, cert, key] = process.argv.slice(2);
  if (!key) fail('usage: node tls.js path/to/soket CERT.pem KEY.pem');
  const tlsArgs = ['--tls-cert', cert, '--tls-key', key];
  const browser = await launchBrowser();
  try {
    await builtInPage(browser, binary, tlsArgs);
    await socketIoPage(browser, binary, tlsArgs);
    console.log('tls browser e2e: ok');
  } catch (e) {
    fail(e.stack || e.message);
  } finally {
    await browser.close();
  }
})().catch((e) => fail(e.stack || String(e)));
