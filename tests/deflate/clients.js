// The Node `ws` client with perMessageDeflate against a real soket: its
// default offer (client context kept: the server's dedicated decompressor)
// and one with clientNoContextTakeover (shared state), compressed echoes on
// /echo, and a /ws user chatting with a legacy TCP user. Every wait is
// bounded; a failure exits non-zero saying what.
// Usage: node tests/deflate/clients.js path/to/soket   (after `npm ci` in tests/web, for ws)
'use strict';
const { spawn } = require('child_process');
const net = require('net');
const path = require('path');
const WebSocket = require(path.join(__dirname, '..', 'web', 'node_modules', 'ws'));

const WAIT_MS = 10000;
const fail = (what) => { console.error('FAIL: ' + what); process.exit(1); };
setTimeout(() => fail('timed out'), 60000).unref();

function start(binary) {
  return new Promise((resolve) => {
    const proc = spawn(binary, ['--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/soket listening on (\S+)/);
      if (m) resolve({ proc, addr: m[1] });
    });
  });
}

function open(url, perMessageDeflate) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate, handshakeTimeout: WAIT_MS });
    const queue = [];
    const waiters = [];
    ws.on('message', (data, isBinary) => {
      const m = isBinary ? Buffer.from(data) : data.toString();
      const w = waiters.shift();
      if (w) w(m); else queue.push(m);
    });
    ws.next = () => new Promise((res) => { const m = queue.shift(); if (m !== undefined) res(m); else waiters.push(res); });
    ws.on('upgrade', (res) => { ws.ext = res.headers['sec-websocket-extensions']; });
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

async function echoes(addr, offer, label) {
  const ws = await open(`ws://${addr}/echo`, offer);
  if (!ws.ext || !ws.ext.startsWith('permessage-deflate')) fail(`${label}: deflate agreed (got ${ws.ext})`);
  for (const m of ['hi', 'y'.repeat(2000), JSON.stringify({ k: [...Array(30000).keys()] }), Buffer.alloc(100000, 7)]) {
    ws.send(m);
    const got = await ws.next();
    if (Buffer.isBuffer(m) ? !m.equals(got) : got !== m) fail(`${label}: echo of ${m.length} bytes`);
  }
  ws.close();
  return ws.ext;
}

async function chat(addr) {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  const legacy = net.connect(port, host);
  let lines = '';
  legacy.on('data', (d) => { lines += d; });
  legacy.write('lena\n');
  const ws = await open(`ws://${addr}/ws?name=nodey`, true);
  if (!ws.ext) fail('/ws: deflate agreed');
  const text = 'hello from node, '.repeat(20);
  ws.send(JSON.stringify({ type: 'say', text }));
  const deadline = Date.now() + WAIT_MS;
  while (!lines.includes(text.trim())) {
    if (Date.now() > deadline) fail('legacy: node\'s message');
    await new Promise((r) => setTimeout(r, 20));
  }
  legacy.write('hello from legacy, '.repeat(20) + '\n');
  for (;;) {
    const e = JSON.parse(await ws.next());
    if (e.type === 'message' && e.from === 'lena') break;
  }
  ws.close();
  legacy.end();
}

(async () => {
  const { proc, addr } = await start(process.argv[2]);
  try {
    const dflt = await echoes(addr, true, 'default offer');
    const nct = await echoes(addr, { clientNoContextTakeover: true }, 'clientNoContextTakeover');
    await chat(addr);
    console.log(`node ws: /echo (${dflt} | ${nct}) and /ws with a legacy user: ok`);
  } finally {
    proc.kill('SIGTERM');
  }
  process.exit(0);
})().catch((e) => fail(e.stack || String(e)));
