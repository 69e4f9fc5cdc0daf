// Node's `ws` client (perMessageDeflate offered, its default) over wss
// against a real soket, the test certificate passed as the CA: /echo (text,
// a 1 MiB binary message, a ping) and /ws chat between a wss user and a
// plaintext ws user on the same port; then a client with rejectUnauthorized
// false, as a developer against a self-signed certificate would use it.
// Every wait is bounded; a failure exits non-zero saying what was missing.
// Usage: node tests/tls/clients.js path/to/soket CERT.pem KEY.pem
// (after `npm ci` in tests/tls)
'use strict';
const { spawn } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const readline = require('readline');
const WebSocket = require('ws');
const { WAIT_MS, failWith } = require('../support/waiting');

const fail = failWith('tls ws');

const daemons = new Set();
process.on('exit', () => {
  for (const child of daemons) child.kill('SIGKILL');
});

function startDaemon(binary, cert, key) {
  const child = spawn(binary, ['--listen', '127.0.0.1:0', '--tls-cert', cert, '--tls-key', key], { stdio: ['ignore', 'pipe', 'inherit'] });
  daemons.add(child);
  child.once('exit', () => daemons.delete(child));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('soket did not start')), WAIT_MS);
    readline.createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      const [host, port] = line.replace('soket listening on ', '').split(':');
      resolve({ child, host, port: Number(port) });
    });
  });
}

// A client whose messages queue up; `next` waits (bounded) for one passing `test`.
function open(url, options, who) {
  const ws = new WebSocket(url, { handshakeTimeout: WAIT_MS, maxPayload: 4 << 20, ...options });
  const queue = [];
  const waiters = [];
  let closed = null;
  const wake = () => { for (const w of waiters.splice(0)) w(); };
  ws.on('message', (data, isBinary) => { queue.push({ data, isBinary }); wake(); });
  ws.on('close', (code) => { closed = code; wake(); });
  ws.on('error', (e) => fail(`${who}: ${e.message}`));
  const opened = new Promise((resolve) => ws.once('open', resolve));
  const client = {
    ws,
    who,
    async opened() {
      const timer = setTimeout(() => fail(`${who} did not open`), WAIT_MS);
      await opened;
      clearTimeout(timer);
    },
    async next(test, what) {
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        const i = queue.findIndex(test);
        if (i >= 0) return queue.splice(0, i + 1).pop();
        if (closed !== null) fail(`${who} was closed (${closed}) while waiting for ${what}`);
        if (Date.now() > deadline) fail(`${who} never got ${what}; had ${JSON.stringify(queue.map((m) => String(m.data).slice(0, 200)))}`);
        await new Promise((r) => { waiters.push(r); setTimeout(r, 100); });
      }
    },
    async json(test, what) {
      const m = await client.next((m) => !m.isBinary && test(JSON.parse(m.data)), what);
      return JSON.parse(m.data);
    },
    async close() {
      if (closed === null) {
        ws.close(1000);
        const deadline = Date.now() + WAIT_MS;
        while (closed === null && Date.now() < deadline) await new Promise((r) => { waiters.push(r); setTimeout(r, 100); });
      }
      if (closed !== 1000) fail(`${who}: the close handshake ended with ${closed}`);
    },
  };
  return client;
}

async function echo(url, options, what) {
  const c = open(url, options, `echo ${what}`);
  await c.opened();
  const extensions = c.ws.extensions || 'none';
  const text = 'h\u00e9llo over wss \u{1f600}';
  c.ws.send(text);
  const t = await c.next(() => true, 'the text back');
  if (t.isBinary || t.data.toString('utf8') !== text) fail(`echo ${what}: the text came back changed`);
  const blob = crypto.randomBytes(1 << 20);
  c.ws.send(blob);
  const b = await c.next(() => true, 'the 1 MiB binary message back');
  if (!b.isBinary || !blob.equals(b.data)) fail(`echo ${what}: the 1 MiB binary message came back changed`);
  const pong = new Promise((resolve) => c.ws.once('pong', resolve));
  c.ws.ping('are you there');
  const timer = setTimeout(() => fail(`echo ${what}: no pong`), WAIT_MS);
  const payload = await pong;
  clearTimeout(timer);
  if (payload.toString() !== 'are you there') fail(`echo ${what}: the pong carried ${JSON.stringify(payload.toString())}`);
  await c.close();
  console.log(`tls ws: wss /echo ${what}: text, 1 MiB binary, ping/pong, close 1000 (extensions: ${extensions})`);
}

async function chat(host, port, tlsOptions) {
  const plain = open(`ws://${host}:${port}/ws?name=plainpia`, {}, 'plainpia');
  await plain.json((e) => e.type === 'welcome', 'her welcome');
  const tls = open(`wss://${host}:${port}/ws`, tlsOptions, 'tlstia');
  await tls.opened();
  tls.ws.send(JSON.stringify({ type: 'hello', name: 'tlstia', id: 1 }));
  const welcome = await tls.json((e) => e.type === 'welcome', 'her welcome');
  if (JSON.stringify(welcome.users) !== '["plainpia"]' || welcome.id !== 1) fail(`tlstia's welcome: ${JSON.stringify(welcome)}`);
  await plain.json((e) => e.type === 'users' && JSON.stringify(e.users) === '["tlstia"]', 'the users push naming tlstia');

  tls.ws.send(JSON.stringify({ type: 'say', text: 'hi from wss' }));
  await plain.json((e) => e.type === 'message' && e.from === 'tlstia' && e.text === 'hi from wss' && e.room === 'lobby', "tlstia's lobby message");
  plain.ws.send(JSON.stringify({ type: 'join', room: 'r1' }));
  tls.ws.send(JSON.stringify({ type: 'join', room: 'r1', id: 'j' }));
  await tls.json((e) => e.type === 'ack' && e.id === 'j', 'the ack of her join');
  plain.ws.send(JSON.stringify({ type: 'emit', event: 'move', data: { x: [1, 2] }, room: 'r1' }));
  const ev = await tls.json((e) => e.type === 'event', "plainpia's event");
  if (ev.event !== 'move' || ev.from !== 'plainpia' || ev.room !== 'r1' || JSON.stringify(ev.data) !== '{"x":[1,2]}') fail(`tlstia got ${JSON.stringify(ev)}`);
  await tls.close();
  await plain.json((e) => e.type === 'users' && e.users.length === 0, 'the users push after tlstia left');
  await plain.close();
  console.log('tls ws: /ws chat: wss user and plaintext ws user, welcome, users pushes, lobby message, room event');
}

(async () => {
  const [binary, cert, key] = process.argv.slice(2);
  if (!key) fail('usage: node tests/tls/clients.js path/to/soket CERT.pem KEY.pem');
  const daemon = await startDaemon(binary, cert, key);
  const ca = fs.readFileSync(cert);
  await echo(`wss://localhost:${daemon.port}/echo`, { ca }, 'by name, CA passed');
  await echo(`wss://${daemon.host}:${daemon.port}/echo`, { rejectUnauthorized: false }, 'by IP, rejectUnauthorized false');
  await chat(daemon.host, daemon.port, { ca });
  const exited = new Promise((resolve) => daemon.child.once('exit', resolve));
  daemon.child.kill('SIGTERM');
  const timer = setTimeout(() => fail('soket did not exit after SIGTERM'), WAIT_MS);
  const code = await exited;
  clearTimeout(timer);
  if (code !== 0) fail(`soket exited ${code} after SIGTERM`);
  console.log(`tls ws: ok (ws ${require('ws/package.json').version})`);
})().catch((e) => fail(e.stack || String(e)));
