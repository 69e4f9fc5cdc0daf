// The real socket.io-client (npm) against a real soket, once per transport
// setting: events between clients, acks, rooms, two namespaces kept apart,
// private messages to and from a legacy TCP user, binary attachments, a
// silent client dropped by the heartbeat, an oversized payload refused while
// the others go on, a client that reconnects by itself after a restart, and
// connection state recovery: a client whose transport drops while others
// chat comes back with its id and rooms and gets exactly what it missed, in
// order; one that missed more than the server kept is not recovered.
// Every wait is bounded; a failure exits non-zero with what was missing.
// Usage: node tests/socketio/clients.js path/to/soket
'use strict';
const { spawn } = require('child_process');
const readline = require('readline');
const assert = require('assert');
const { io } = require('socket.io-client');
const { WAIT_MS, withTimeout, failWith, inbox, legacyUser: legacyLineUser } = require('../support/waiting');

const PING_INTERVAL_MS = 400;
const PING_TIMEOUT_MS = 300;
const MAX_PAYLOAD = 100000;

const SETTINGS = [
  { label: 'polling then websocket', transports: ['polling', 'websocket'] },
  { label: 'websocket only', transports: ['websocket'] },
  { label: 'polling only', transports: ['polling'], upgrade: false },
];

let current = 'setup';
const daemons = new Set();

const fail = failWith('socket.io-client', () => current, () => {
  for (const d of daemons) d.child.kill('SIGKILL');
});

function startDaemon(binary, listen = '127.0.0.1:0', extra = []) {
  const args = [
    ...extra,
    '--listen', listen,
    '--engineio-ping-interval', `${PING_INTERVAL_MS}ms`,
    '--engineio-ping-timeout', `${PING_TIMEOUT_MS}ms`,
    // Bounds WebSocket messages (close 1009) and polling bodies (400) alike.
    '--engineio-max-payload', String(MAX_PAYLOAD),
    '--shutdown-timeout', '1s',
  ];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const daemon = { child, exited };
  daemons.add(daemon);
  exited.then(() => daemons.delete(daemon));
  return withTimeout(new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`soket exited (${code}) before listening`)));
    readline.createInterface({ input: child.stdout }).once('line', (line) => {
      const addr = line.replace('soket listening on ', '');
      daemon.host = addr.split(':')[0];
      daemon.port = Number(addr.split(':')[1]);
      daemon.url = `http://${addr}`;
      resolve(daemon);
    });
  }), 'soket to listen');
}

async function stopDaemon(daemon) {
  daemon.child.kill('SIGTERM');
  const code = await withTimeout(daemon.exited, 'soket to exit after SIGTERM');
  if (code !== 0) fail(`soket exited with ${code} after SIGTERM`);
}

// A socket.io-client socket whose every event is recorded, so a test waits
// for "the next event named X matching P" instead of sleeping.
function client(daemon, setting, nsp, options = {}) {
  const socket = io(daemon.url + nsp, {
    transports: setting.transports,
    upgrade: setting.upgrade !== false,
    reconnection: false,
    forceNew: true,
    timeout: WAIT_MS,
    ...options,
  });
  const box = inbox(`${nsp}${options.auth ? ' ' + options.auth.name : ''}`, fail, summary);
  socket.onAny((event, ...args) => box.push({ event, args }));
  for (const event of ['connect', 'connect_error', 'disconnect']) {
    socket.on(event, (...args) => box.push({ event, args }));
  }
  return {
    socket,
    // Every event ever recorded, consumed or not.
    log: box.log,
    // Resolves with the args of the first recorded `event` (a name or a list
    // of names) that `test` accepts, removing it and everything before it.
    next(event, test = () => true, what = String(event)) {
      const names = Array.isArray(event) ? event : [event];
      return box.next((e) => names.includes(e.event) && test(...e.args), what).then((e) => e.args);
    },
    call(event, arg) {
      return withTimeout(new Promise((resolve) => socket.emit(event, arg, resolve)), `the ack to ${event}`)
        .catch((e) => fail(e.message));
    },
    close() {
      socket.disconnect();
    },
  };
}

function summary(inbox) {
  const text = JSON.stringify(inbox.map((e) => [e.event, ...e.args]), (_, v) =>
    (v && v.type === 'Buffer' ? `<${v.data.length} bytes>` : v));
  return text.length > 600 ? text.slice(0, 600) + '...' : text;
}

async function connected(c, name) {
  const [first] = await c.next(['connect', 'connect_error']);
  if (c.socket.connected) return c;
  return fail(`${name} could not connect: ${first && first.message}`);
}

function legacyUser(daemon, name) {
  return legacyLineUser(daemon.host, daemon.port, name, inbox(`legacy ${name}`, fail));
}

const usersAre = (names) => (m) => JSON.stringify(m.users) === JSON.stringify(names);

async function scenarios(binary, setting) {
  const daemon = await startDaemon(binary);
  const step = (name) => { current = `${setting.label}: ${name}`; };

  step('connect with a name, presence');
  const alice = await connected(client(daemon, setting, '/', { auth: { name: 'alice' } }), 'alice');
  const [welcome] = await alice.next('welcome');
  assert.strictEqual(welcome.name, 'alice');
  assert.strictEqual(welcome.namespace, '/');
  const bob = await connected(client(daemon, setting, '/', { auth: { name: 'bob' } }), 'bob');
  await bob.next('welcome', (w) => JSON.stringify(w.users) === '["alice"]', 'welcome listing alice');
  await alice.next('users', usersAre(['bob']), 'users with bob');
  if (setting.transports.length === 2) {
    // The default setting: polling first, then the upgrade to WebSocket.
    const engine = alice.socket.io.engine;
    if (engine.transport.name !== 'websocket') {
      await withTimeout(new Promise((resolve) => engine.once('upgrade', resolve)), 'the upgrade to websocket')
        .catch((e) => fail(e.message));
    }
  }
  const expected = setting.transports.length === 2 ? 'websocket' : setting.transports[0];
  assert.strictEqual(alice.socket.io.engine.transport.name, expected);

  step('a taken name refused at connect');
  const dup = client(daemon, setting, '/', { auth: { name: 'alice' } });
  const [err] = await dup.next('connect_error');
  if (!err.data || err.data.code !== 'name_taken') fail(`connect_error without code name_taken: ${err.message} ${JSON.stringify(err.data)}`);
  if (!/alice/.test(err.message)) fail(`connect_error message without the name: ${err.message}`);
  dup.close();
  const invalid = client(daemon, setting, '/', { auth: { name: 'bad name!' } });
  const [invalidErr] = await invalid.next('connect_error');
  if (!invalidErr.data || invalidErr.data.code !== 'name_invalid') fail(`bad name: ${JSON.stringify(invalidErr.data)}`);
  invalid.close();

  step('custom events between two clients (several arguments)');
  alice.socket.emit('greet', 'hi', 42, { nested: [1, null, true] });
  for (const c of [bob, alice]) {
    const args = await c.next('greet');
    assert.deepStrictEqual(args, ['hi', 42, { nested: [1, null, true] }]);
  }
  bob.socket.emit('reply', 'back at you');
  assert.deepStrictEqual(await alice.next('reply'), ['back at you']);

  step('an anonymous client relays events and registers later');
  const anon = await connected(client(daemon, setting, '/'), 'anonymous');
  anon.socket.emit('anon-ping', 7);
  assert.deepStrictEqual(await alice.next('anon-ping'), [7]);
  assert.deepStrictEqual(await anon.next('anon-ping'), [7]);
  const late = await anon.call('hello', { name: 'dora' });
  if (late.type !== 'welcome' || late.name !== 'dora') fail(`hello ack: ${JSON.stringify(late)}`);
  await alice.next('users', usersAre(['bob', 'dora']), 'users with dora');

  step('acks');
  const who = await alice.call('who', { room: 'lobby' });
  assert.strictEqual(who.type, 'members');
  assert.deepStrictEqual(who.names, ['alice', 'bob', 'dora']);
  const bad = await alice.call('private', { to: 'nobody', text: 'x' });
  if (bad.type !== 'error' || bad.code !== 'no_such_user') fail(`error ack: ${JSON.stringify(bad)}`);
  const relayAck = await alice.call('relayed-with-ack', 'x');
  if (relayAck.type !== 'ack') fail(`a relayed event's ack: ${JSON.stringify(relayAck)}`);
  await bob.next('relayed-with-ack');
  const notObject = await alice.call('say', 'not an object');
  if (notObject.type !== 'error' || notObject.code !== 'bad_json') fail(`a non-object: ${JSON.stringify(notObject)}`);
  const twice = await alice.call('hello', { name: 'other' });
  if (twice.code !== 'already_registered') fail(`a second hello: ${JSON.stringify(twice)}`);

  step('rooms');
  const joined = await alice.call('join', { room: 'r1' });
  if (joined.type !== 'ack') fail(`join ack: ${JSON.stringify(joined)}`);
  await alice.next('joined', (j) => j.room === 'r1' && j.name === 'alice');
  bob.socket.emit('join', { room: 'r1' });
  await alice.next('joined', (j) => j.room === 'r1' && j.name === 'bob');
  await bob.next('joined', (j) => j.room === 'r1' && j.name === 'bob');
  assert.deepStrictEqual((await alice.call('who', { room: 'r1' })).names, ['alice', 'bob']);
  const rooms = await anon.call('rooms', {});
  assert.deepStrictEqual(rooms.rooms, [{ name: 'lobby', members: 3 }, { name: 'r1', members: 2 }]);
  alice.socket.emit('say', { room: 'r1', text: 'in r1' });
  const [inRoom] = await bob.next('message', (m) => m.room === 'r1');
  assert.deepStrictEqual(inRoom, { type: 'message', room: 'r1', from: 'alice', text: 'in r1' });
  // dora is not in r1: the lobby message sent after it must come first.
  alice.socket.emit('say', { text: 'in the lobby' });
  await anon.next('message', (m) => m.room === 'lobby' && m.text === 'in the lobby');
  if (anon.log.some((e) => e.event === 'message' && e.args[0].room === 'r1')) {
    fail('dora got a message of r1');
  }
  const notIn = await anon.call('say', { room: 'r1', text: 'x' });
  assert.strictEqual(notIn.code, 'not_in_room');
  bob.socket.emit('leave', { room: 'r1' });
  await alice.next('left', (l) => l.room === 'r1' && l.name === 'bob');

  step('two namespaces kept apart');
  // The same name is free in another namespace.
  const galice = await connected(client(daemon, setting, '/games', { auth: { name: 'alice' } }), '/games alice');
  const [gw] = await galice.next('welcome');
  assert.strictEqual(gw.namespace, '/games');
  assert.deepStrictEqual(gw.users, []);
  const gbob = await connected(client(daemon, setting, '/games', { auth: { name: 'gbob' } }), '/games gbob');
  await galice.next('users', usersAre(['gbob']));
  galice.socket.emit('move', 'e4');
  assert.deepStrictEqual(await gbob.next('move'), ['e4']);
  galice.socket.emit('say', { text: 'games lobby' });
  await gbob.next('message', (m) => m.text === 'games lobby' && m.from === 'alice');
  // The main namespace saw none of it: its own event sent now comes first.
  alice.socket.emit('marker', 1);
  await bob.next('marker');
  for (const c of [alice, bob]) {
    if (c.log.some((e) => e.event === 'move' || (e.event === 'message' && e.args[0].text === 'games lobby'))) {
      fail('an event of /games reached /');
    }
  }
  assert.deepStrictEqual((await galice.call('who', { room: 'lobby' })).names, ['alice', 'gbob']);
  const badNsp = client(daemon, setting, '/no..pe');
  const [nspErr] = await badNsp.next('connect_error');
  if (!/namespace/i.test(nspErr.message)) fail(`bad namespace: ${nspErr.message}`);
  badNsp.close();

  step('private messages with a legacy TCP user');
  const carol = legacyUser(daemon, 'carol');
  await carol.line((l) => l.startsWith('3$*$*3') && l.includes('alice$'), 'the online list with alice');
  await alice.next('users', (m) => m.users.includes('carol'), 'users with carol');
  alice.socket.emit('private', { to: 'carol', text: 'hi carol' });
  await carol.line((l) => l === 'alice : hi carol', '"alice : hi carol"');
  // The legacy "carol : " prefix names the sender, carried as `from`.
  carol.send('alice..444..carol : back');
  const [priv] = await alice.next('private', (p) => p.from === 'carol');
  assert.deepStrictEqual(priv, { type: 'private', from: 'carol', text: 'back' });
  bob.socket.emit('say', { text: 'to everyone' });
  await carol.line((l) => l === '#lobby bob : to everyone', 'the lobby message of bob');
  // Custom events never reach legacy users: nothing before the next line.
  bob.socket.emit('custom-for-all', 'x');
  await alice.next('custom-for-all');
  bob.socket.emit('say', { text: 'after the event' });
  const nextLine = await carol.line(() => true, 'any line');
  assert.strictEqual(nextLine, '#lobby bob : after the event');

  step('binary attachments');
  const blob = Buffer.alloc(5000, 0).map((_, i) => i % 251);
  const small = new Uint8Array([0, 255, 1, 254]).buffer;
  alice.socket.emit('file', 'name.bin', blob, { inner: small, list: [Buffer.from('xyz')] });
  for (const c of [bob, alice]) {
    const [name, got, obj] = await c.next('file');
    assert.strictEqual(name, 'name.bin');
    assert.ok(Buffer.from(got).equals(blob), 'the top-level buffer');
    assert.ok(Buffer.from(obj.inner).equals(Buffer.from(small)), 'the nested buffer');
    assert.ok(Buffer.from(obj.list[0]).equals(Buffer.from('xyz')), 'the buffer in an array');
  }
  // An ack-carrying binary event: soket asks no ack of its own for a relay.
  bob.socket.emit('bin-back', Buffer.from([9, 8, 7]));
  const [back] = await alice.next('bin-back');
  assert.ok(Buffer.from(back).equals(Buffer.from([9, 8, 7])));

  step('a silent client is dropped by the heartbeat');
  const sleepy = await connected(client(daemon, setting, '/', { auth: { name: 'sleepy' } }), 'sleepy');
  await alice.next('users', (m) => m.users.includes('sleepy'), 'users with sleepy');
  const engine = sleepy.socket.io.engine;
  if (typeof engine._sendPacket !== 'function') fail('engine.io-client changed: no _sendPacket to silence');
  const send = engine._sendPacket.bind(engine);
  engine._sendPacket = (type, ...rest) => (type === 'pong' ? undefined : send(type, ...rest));
  const since = Date.now();
  await alice.next('users', (m) => !m.users.includes('sleepy'), 'users without sleepy');
  const took = Date.now() - since;
  if (took > 5 * (PING_INTERVAL_MS + PING_TIMEOUT_MS)) fail(`sleepy dropped only after ${took} ms`);
  await sleepy.next('disconnect');
  // The others were answering pings all along: still here and talking.
  bob.socket.emit('still-here', 1);
  await alice.next('still-here');

  step('an oversized payload is refused, the others go on');
  const eve = await connected(client(daemon, setting, '/', { auth: { name: 'eve' } }), 'eve');
  await alice.next('users', (m) => m.users.includes('eve'), 'users with eve');
  eve.socket.emit('huge', 'x'.repeat(MAX_PAYLOAD + 10));
  const [reason] = await eve.next('disconnect');
  if (!/transport (close|error)/.test(reason)) fail(`eve disconnected for ${reason}`);
  await alice.next('users', (m) => !m.users.includes('eve'), 'users without eve');
  if (alice.log.some((e) => e.event === 'huge')) fail('the oversized event was relayed');
  bob.socket.emit('say', { text: 'still chatting' });
  await alice.next('message', (m) => m.text === 'still chatting');
  // Just under the limit still goes through (the frame adds ~20 bytes).
  bob.socket.emit('big', 'y'.repeat(MAX_PAYLOAD - 100));
  const [big] = await alice.next('big');
  assert.strictEqual(big.length, MAX_PAYLOAD - 100);

  step('reconnects by itself after the daemon restarts');
  for (const c of [bob, anon, galice, gbob]) c.close();
  carol.close();
  const phoenix = await connected(client(daemon, setting, '/', {
    auth: { name: 'phoenix' },
    reconnection: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 200,
    randomizationFactor: 0,
  }), 'phoenix');
  await phoenix.next('welcome');
  alice.close();
  await stopDaemon(daemon);
  await phoenix.next('disconnect');
  const again = await startDaemon(binary, `127.0.0.1:${daemon.port}`);
  await phoenix.next('connect', () => true, 'the reconnect');
  const [w2] = await phoenix.next('welcome');
  assert.strictEqual(w2.name, 'phoenix');
  phoenix.socket.emit('reborn', 'yes');
  assert.deepStrictEqual(await phoenix.next('reborn'), ['yes']);
  const who2 = await phoenix.call('who', { room: 'lobby' });
  assert.deepStrictEqual(who2.names, ['phoenix']);
  phoenix.close();
  await stopDaemon(again);
}

// Connection state recovery (docs/SOCKETIO.md): with the log held to a few
// KiB, a short outage is recovered and a long chatty one is not.
async function recovery(binary, setting) {
  const daemon = await startDaemon(binary, '127.0.0.1:0',
    ['--socketio-recovery', '1m', '--socketio-recovery-buffer', '4KiB']);
  const step = (name) => { current = `${setting.label}: recovery: ${name}`; };
  step('connect with a pid');
  const alice = await connected(client(daemon, setting, '/', { auth: { name: 'alice' } }), 'alice');
  const bob = await connected(client(daemon, setting, '/', { auth: { name: 'bob' } }), 'bob');
  const lena = legacyUser(daemon, 'lena');
  await alice.next('users', usersAre(['bob', 'lena']), 'users with bob and lena');
  assert.strictEqual(typeof alice.socket._pid, 'string', 'the CONNECT gave a pid');
  await alice.call('join', { room: 'r' });
  await bob.call('join', { room: 'r' });
  bob.socket.emit('say', { room: 'r', text: 'm1' });
  const m1 = await alice.next('message', (m) => m.text === 'm1');
  assert.strictEqual(m1.length, 2, 'a logged event carries its offset');
  assert.strictEqual(typeof m1[1], 'string');
  const firstId = alice.socket.id;

  step('others chat while the transport is down');
  alice.socket.io.engine.close();
  await alice.next('disconnect');
  await bob.next('users', usersAre(['lena']), 'alice gone');
  // Acked, so the order of the senders is the order the server saw.
  await bob.call('say', { room: 'r', text: 'm2' });
  await bob.call('join', { room: 'elsewhere' });
  await bob.call('say', { room: 'elsewhere', text: 'not for alice' });
  lena.send('l1');
  await bob.next('message', (m) => m.text === 'l1');
  bob.socket.emit('news', 'n1');
  await bob.next('news');
  bob.socket.emit('say', { room: 'r', text: 'm3' });

  step('back: same id, same rooms, what was missed in order, once');
  const log = alice.log.length;
  alice.socket.connect();
  await alice.next('connect', () => true, 'the reconnect');
  assert.strictEqual(alice.socket.recovered, true, 'recovered');
  assert.strictEqual(alice.socket.id, firstId, 'the same socket id');
  await alice.next('message', (m) => m.text === 'm3');
  const said = alice.log.slice(log)
    .filter((e) => e.event === 'message' || e.event === 'news')
    .map((e) => (e.event === 'news' ? e.args[0] : e.args[0].text));
  assert.deepStrictEqual(said, ['m2', 'l1', 'n1', 'm3']);
  await bob.next('joined', (j) => j.room === 'r' && j.name === 'alice', 'alice back in r');
  bob.socket.emit('say', { room: 'r', text: 'm4' });
  await alice.next('message', (m) => m.text === 'm4');
  const who = await alice.call('who', { room: 'r' });
  assert.deepStrictEqual(who.names, ['bob', 'alice']);

  step('missed more than the log holds: not recovered, a fresh session');
  alice.socket.io.engine.close();
  await alice.next('disconnect');
  await bob.next('users', usersAre(['lena']), 'alice gone again');
  for (let i = 0; i < 40; i++) bob.socket.emit('say', { room: 'r', text: `flood ${i} ${'x'.repeat(100)}` });
  await bob.call('who', { room: 'r' });
  alice.socket.connect();
  await alice.next('connect', () => true, 'the second reconnect');
  assert.strictEqual(alice.socket.recovered, false, 'not recovered');
  assert.notStrictEqual(alice.socket.id, firstId);
  const fresh = await alice.call('rooms', {});
  assert.ok(fresh.rooms.some((r) => r.name === 'r'), 'r still exists');
  assert.deepStrictEqual((await alice.call('who', { room: 'r' })).names, ['bob'], 'alice not put back in r');
  assert.ok(!alice.log.slice(log).some((e) => e.event === 'message' && e.args[0].text.startsWith('flood')));

  for (const c of [alice, bob]) c.close();
  lena.close();
  await stopDaemon(daemon);
  if (setting.label === 'websocket only') await recoveryWindow(binary, setting);
}

// Back after the window (`maxDisconnectionDuration`): not recovered. The one
// wait on the clock here is the window itself.
async function recoveryWindow(binary, setting) {
  const WINDOW_MS = 1000;
  const daemon = await startDaemon(binary, '127.0.0.1:0', ['--socketio-recovery', `${WINDOW_MS}ms`]);
  current = `${setting.label}: recovery: back after the window`;
  const alice = await connected(client(daemon, setting, '/', { auth: { name: 'alice' } }), 'alice');
  const bob = await connected(client(daemon, setting, '/', { auth: { name: 'bob' } }), 'bob');
  await alice.next('users', usersAre(['bob']));
  bob.socket.emit('say', { room: 'lobby', text: 'before' });
  await alice.next('message', (m) => m.text === 'before');
  alice.socket.io.engine.close();
  await alice.next('disconnect');
  await bob.next('users', usersAre([]), 'alice gone');
  await new Promise((resolve) => setTimeout(resolve, WINDOW_MS + 300));
  alice.socket.connect();
  await alice.next('connect', () => true, 'the late reconnect');
  assert.strictEqual(alice.socket.recovered, false, 'not recovered after the window');
  for (const c of [alice, bob]) c.close();
  await stopDaemon(daemon);
}

(async () => {
  const binary = process.argv[2];
  if (!binary) fail('usage: node clients.js path/to/soket');
  for (const setting of SETTINGS) {
    const started = Date.now();
    await scenarios(binary, setting);
    await recovery(binary, setting);
    console.log(`socket.io-client (${setting.label}): all scenarios pass (${Date.now() - started} ms)`);
  }
  process.exit(0);
})().catch((e) => fail(e && e.stack ? e.stack : String(e)));
