// A Spring-style chat page (tests/web/stomp-chat/index.html: @stomp/stompjs
// over sockjs-client, as the Spring guides write it) served by soket with
// --static-dir, in headless Chromium, chatting in one room with a legacy TCP
// user, a /ws JSON user and a Socket.IO user, and private messages across
// protocols. Then the same page with WebSocket left out of SockJS's
// transports still chats, over xhr-streaming and over xhr-polling.
// Usage: node tests/web/stomp-chat.js path/to/soket
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const WebSocket = require('ws');
const { io } = require('socket.io-client');
const { WAIT_MS, failWith, startDaemon, stopDaemon, legacyUser, launchBrowser } = require('./helpers');

const fail = failWith('stomp chat e2e');

// The page and the two client libraries from node_modules, in one folder for --static-dir.
function site() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'soket-stomp-chat-'));
  fs.copyFileSync(path.join(__dirname, 'stomp-chat', 'index.html'), path.join(dir, 'index.html'));
  const modules = path.join(__dirname, 'node_modules');
  fs.copyFileSync(path.join(modules, 'sockjs-client', 'dist', 'sockjs.min.js'), path.join(dir, 'sockjs.min.js'));
  fs.copyFileSync(path.join(modules, '@stomp', 'stompjs', 'bundles', 'stomp.umd.min.js'), path.join(dir, 'stomp.umd.min.js'));
  return dir;
}

// Resolves with the first value `take` returns for an item of `items` pushed
// now or later; fails after WAIT_MS saying `what`.
function waitFor(source, take, what) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => fail(`${source.who} never got ${what}; had ${JSON.stringify(source.items)}`), WAIT_MS);
    const check = () => {
      for (const item of source.items) {
        const value = take(item);
        if (value !== undefined && value !== false) {
          clearTimeout(timer);
          source.waiters.delete(check);
          resolve(value);
          return true;
        }
      }
      return false;
    };
    if (!check()) source.waiters.add(check);
  });
}

function collector(who) {
  const source = { who, items: [], waiters: new Set() };
  source.push = (item) => {
    source.items.push(item);
    for (const w of [...source.waiters]) w();
  };
  return source;
}

// A /ws JSON user registered as `name`.
async function jsonUser(host, port, name) {
  const ws = new WebSocket(`ws://${host}:${port}/ws`);
  const got = collector(`/ws ${name}`);
  ws.on('message', (data) => got.push(JSON.parse(data.toString())));
  ws.on('error', (e) => fail(`/ws ${name}: ${e.message}`));
  await new Promise((resolve) => ws.once('open', resolve));
  ws.send(JSON.stringify({ type: 'hello', name }));
  await waitFor(got, (m) => m.type === 'welcome', 'its welcome');
  return { ws, got, send: (obj) => ws.send(JSON.stringify(obj)) };
}

// A Socket.IO user registered as `name` through its auth.
async function socketIoUser(host, port, name) {
  const socket = io(`http://${host}:${port}`, { auth: { name }, reconnection: false });
  const got = collector(`socket.io ${name}`);
  for (const event of ['message', 'private', 'error']) socket.on(event, (data) => got.push({ event, ...data }));
  socket.on('connect_error', (e) => fail(`socket.io ${name}: ${e.message}`));
  await new Promise((resolve) => socket.once('connect', resolve));
  return { socket, got };
}

// One browser user of the page, signed in as `name`.
async function pageUser(browser, url, name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const response = await page.goto(url);
  if (!response || response.status() !== 200) fail(`${name}: the page answered ${response && response.status()}`);
  await page.fill('#name', name);
  await page.press('#name', 'Enter');
  try {
    await page.waitForFunction(() => window.chat.connected, null, { timeout: WAIT_MS });
  } catch (e) {
    fail(`${name}: the page did not connect (errors ${JSON.stringify(errors)}, chat ${JSON.stringify(await page.evaluate(() => window.chat))})`);
  }
  return { page, errors, name, context };
}

async function say(user, text) {
  await user.page.fill('#message', text);
  await user.page.press('#message', 'Enter');
}

async function expectShown(user, text) {
  try {
    await user.page.waitForFunction(
      (want) => [...document.querySelectorAll('#messages > li')].some((li) => li.textContent === want),
      text,
      { timeout: WAIT_MS },
    );
  } catch (e) {
    const shown = await user.page.locator('#messages > li').allTextContents();
    fail(`${user.name}'s page never showed ${JSON.stringify(text)}; it shows ${JSON.stringify(shown)}`);
  }
}

async function expectOnline(user, names) {
  try {
    await user.page.waitForFunction(
      (want) => want.every((n) => document.getElementById('users').textContent.split(', ').includes(n)),
      names,
      { timeout: WAIT_MS },
    );
  } catch (e) {
    fail(`${user.name}'s online list is ${await user.page.textContent('#users')}, wanted ${names}`);
  }
}

async function transportOf(user) {
  return user.page.evaluate(() => window.chat.transport);
}

(async () => {
  const binary = process.argv[2];
  if (!binary) fail('usage: node stomp-chat.js path/to/soket');
  const dir = site();
  const daemon = await startDaemon(binary, ['--static-dir', dir]);
  const { host, port } = daemon;
  const url = `http://${host}:${port}/`;
  const browser = await launchBrowser();
  try {
    const carol = legacyUser(host, port, 'carol', fail);
    await carol.lineWhere((l) => l.startsWith('3$*$*3'), 'her online list');
    const dave = await jsonUser(host, port, 'dave');
    const erin = await socketIoUser(host, port, 'erin');

    // The page over SockJS's first choice, WebSocket.
    const alice = await pageUser(browser, url, 'alice');
    if ((await transportOf(alice)) !== 'websocket') fail(`alice's SockJS transport is ${await transportOf(alice)}`);
    await expectOnline(alice, ['carol', 'dave', 'erin', 'alice']);

    await say(alice, 'hello from spring');
    await expectShown(alice, 'alice: hello from spring');
    await carol.lineWhere((l) => l === '#lobby alice : hello from spring', "alice's message");
    await waitFor(dave.got, (m) => m.type === 'message' && m.from === 'alice' && m.text === 'hello from spring', "alice's message");
    await waitFor(erin.got, (m) => m.event === 'message' && m.from === 'alice' && m.text === 'hello from spring', "alice's message");

    carol.send('hi from telnet');
    await expectShown(alice, 'carol: hi from telnet');
    dave.send({ type: 'say', room: 'lobby', text: 'hi from json' });
    await expectShown(alice, 'dave: hi from json');
    erin.socket.emit('say', { room: 'lobby', text: 'hi from socket.io' });
    await expectShown(alice, 'erin: hi from socket.io');

    // Private messages across protocols, both ways.
    await say(alice, '/msg carol psst carol');
    await carol.lineWhere((l) => l.includes('alice') && l.includes('psst carol'), "alice's private message");
    await say(alice, '/msg erin psst erin');
    await waitFor(erin.got, (m) => m.event === 'private' && m.from === 'alice' && m.text === 'psst erin', "alice's private message");
    dave.send({ type: 'private', to: 'alice', text: 'psst alice' });
    await expectShown(alice, '(private) dave: psst alice');
    carol.send('/msg lobby back at you');
    await expectShown(alice, 'carol: back at you');

    // A refusal the page subscribed to: a private message to nobody.
    await say(alice, '/msg nobody hello?');
    await alice.page.waitForFunction(() => window.chat.errors.includes('no_such_user'), null, { timeout: WAIT_MS })
      .catch(() => fail('the refusal never reached /user/queue/errors'));

    // SockJS without WebSocket: the fallbacks carry the same chat.
    for (const [name, transports] of [['bob', 'xhr-streaming'], ['frank', 'xhr-polling']]) {
      const user = await pageUser(browser, `${url}?transports=${transports}`, name);
      const used = await transportOf(user);
      if (used !== transports) fail(`${name} asked for ${transports} and got ${used}`);
      await expectOnline(alice, [name]);
      await say(user, `hello over ${transports}`);
      await expectShown(alice, `${name}: hello over ${transports}`);
      await carol.lineWhere((l) => l === `#lobby ${name} : hello over ${transports}`, `${name}'s message`);
      await expectShown(user, `${name}: hello over ${transports}`);
      await say(alice, `welcome ${name}`);
      await expectShown(user, `alice: welcome ${name}`);
      dave.send({ type: 'private', to: name, text: `psst ${name}` });
      await expectShown(user, `(private) dave: psst ${name}`);
      if (user.errors.length) fail(`${name}'s page raised ${JSON.stringify(user.errors)}`);
    }
    if (alice.errors.length) fail(`alice's page raised ${JSON.stringify(alice.errors)}`);
    if (carol.isClosed()) fail('the legacy user was disconnected');
    console.log('stomp chat e2e: ok (SockJS websocket, xhr-streaming, xhr-polling; legacy, /ws and Socket.IO users)');
    erin.socket.close();
    dave.ws.close();
    carol.close();
  } finally {
    await browser.close();
    await stopDaemon(daemon);
    fs.rmSync(dir, { recursive: true, force: true });
  }
})().catch((e) => fail(e.stack || String(e)));
