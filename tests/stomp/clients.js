// The real @stomp/stompjs (npm, over the `ws` package) against a real soket
// at /stomp: heart-beats negotiated and kept (and a silent client cut off),
// subscriptions, SEND, receipts, client and client-individual acks (proved
// by --stomp-max-unacked), transactions committed and aborted, unsubscribe,
// DISCONNECT with a receipt, a taken login and non-fatal refusals, STOMP
// 1.0 and 1.1 as well as 1.2, and chat with a legacy TCP user and a /ws
// JSON user. Every wait is bounded; a negative ("never arrives") is proved
// by a later message arriving first. A failure exits non-zero.
// The same scenarios run over WebSocket at /stomp, then over sockjs-client
// at /stomp/sockjs (its first choice, WebSocket) and over SockJS's
// xhr-streaming fallback; what only a WebSocket can carry (binary frames,
// a close code) is checked over WebSocket alone.
// Usage: node tests/stomp/clients.js path/to/soket
'use strict';
const { spawn } = require('child_process');
const readline = require('readline');
const assert = require('assert');
const WebSocket = require('ws');
const SockJS = require('sockjs-client');
const { Client, Versions } = require('@stomp/stompjs');
const { WAIT_MS, withTimeout, failWith, inbox, legacyUser: legacyLineUser } = require('../support/waiting');

// How the clients reach the broker in the current round: `websocket` is
// /stomp itself; the others are sockjs-client with that transport list.
const TRANSPORTS = { websocket: null, 'sockjs (websocket)': ['websocket'], 'sockjs (xhr-streaming)': ['xhr-streaming'] };
let transport = 'websocket';

// stompjs opens `brokerURL` with the global WebSocket, which Node 20 lacks.
Object.assign(global, { WebSocket });

// soket offers 500 ms both ways; the clients below ask for 1000 ms, so the
// negotiated period is 1000 ms each way (the larger of the two).
const SERVER_HEARTBEAT = '500ms,500ms';
const CLIENT_HEARTBEAT_MS = 1000;
const MAX_UNACKED = 4;
// --max-message: a WebSocket message (and a STOMP frame) may be this large;
// --max-line: a chat text may be this large (legacy users must receive it).
const MAX_MESSAGE = 256 * 1024;
const MAX_LINE = 128 * 1024;

let current = 'setup';
let daemon = null;

const fail = failWith('stompjs', () => `${transport}: ${current}`, () => {
  if (daemon) daemon.child.kill('SIGKILL');
});

function step(name) {
  current = name;
}

function startDaemon(binary) {
  const args = [
    '--listen', '127.0.0.1:0',
    '--stomp-heartbeat', SERVER_HEARTBEAT,
    '--stomp-max-unacked', String(MAX_UNACKED),
    '--max-message', String(MAX_MESSAGE),
    '--max-line', String(MAX_LINE),
    '--shutdown-timeout', '1s',
  ];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const d = { child, exited };
  return withTimeout(new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`soket exited (${code}) before listening`)));
    readline.createInterface({ input: child.stdout }).once('line', (line) => {
      const addr = line.replace('soket listening on ', '');
      d.host = addr.split(':')[0];
      d.port = Number(addr.split(':')[1]);
      d.addr = addr;
      resolve(d);
    });
  }), 'soket to listen');
}

function summary(items) {
  const text = JSON.stringify(items.map((i) => (i.kind === 'message'
    ? ['message', i.message.headers.destination, i.message.headers.from, i.message.body]
    : [i.kind, i.frame ? (i.frame.headers.message || i.frame.headers['receipt-id']) : i.detail])));
  return text.length > 800 ? text.slice(0, 800) + '...' : text;
}

// An inbox (tests/support/waiting.js) of STOMP client events or chat lines.
const stompInbox = (label) => inbox(label, fail, summary);

// A stompjs Client whose every callback lands in one inbox.
function stompClient(login, options = {}) {
  const box = stompInbox(`stomp ${login}`);
  const state = { heartbeats: [], closed: null, client: null, since: Date.now() };
  const headers = login === undefined ? {} : { login };
  const sockjs = TRANSPORTS[transport];
  const reach = sockjs
    ? { webSocketFactory: () => new SockJS(`http://${daemon.addr}/stomp/sockjs`, null, { transports: sockjs }) }
    : { brokerURL: `ws://${daemon.addr}/stomp` };
  const client = new Client({
    ...reach,
    connectHeaders: headers,
    heartbeatIncoming: CLIENT_HEARTBEAT_MS,
    heartbeatOutgoing: CLIENT_HEARTBEAT_MS,
    reconnectDelay: 0,
    debug: () => {},
    onConnect: (frame) => box.push({ kind: 'connected', frame }),
    onStompError: (frame) => box.push({ kind: 'error', frame }),
    onWebSocketClose: (event) => {
      state.closed = event;
      box.push({ kind: 'close', detail: event.code });
    },
    onDisconnect: (frame) => box.push({ kind: 'disconnected', frame }),
    onUnhandledMessage: (message) => box.push({ kind: 'unhandled', detail: message.body }),
    onUnhandledReceipt: (frame) => box.push({ kind: 'receipt', frame }),
    onHeartbeatReceived: () => state.heartbeats.push(Date.now()),
    onHeartbeatLost: () => box.push({ kind: 'heartbeat-lost' }),
    ...options,
  });
  state.client = client;
  client.activate();
  const c = {
    client,
    box,
    state,
    // Resolves with the next MESSAGE for which `test` holds.
    message(test, what) {
      return box.next((i) => i.kind === 'message' && test(i.message), what).then((i) => i.message);
    },
    // Subscribes and waits for its RECEIPT, so what follows happens after it.
    async subscribe(destination, headers = {}) {
      const receipt = `sub-${destination}-${headers.id || ''}`;
      const done = receiptOf(c, receipt);
      const sub = client.subscribe(destination, (message) => box.push({ kind: 'message', message }),
        { ...headers, receipt });
      await done;
      return sub;
    },
    // A SEND whose RECEIPT is awaited (soket answers frames in order).
    async publish(destination, body, headers = {}) {
      const receipt = `send-${++sends}`;
      const done = receiptOf(c, receipt);
      client.publish({ destination, body, headers: { ...headers, receipt } });
      await done;
    },
  };
  return c;
}

let sends = 0;

function receiptOf(c, receipt) {
  return withTimeout(new Promise((resolve) => c.client.watchForReceipt(receipt, resolve)),
    `the RECEIPT ${receipt}`).catch((e) => fail(e.message));
}

// Deactivates (DISCONNECT with a receipt when connected) and waits for the close.
function stop(c) {
  return withTimeout(c.client.deactivate(), 'the client to close').catch((e) => fail(e.message));
}

async function connected(c, what) {
  const item = await c.box.next((i) => ['connected', 'error', 'close'].includes(i.kind), `CONNECTED of ${what}`);
  if (item.kind !== 'connected') fail(`${what} did not connect: ${item.kind} ${summary([item])}`);
  const sockjs = TRANSPORTS[transport];
  if (sockjs && c.client.webSocket.transport !== sockjs[0]) {
    fail(`${what} went over SockJS's ${c.client.webSocket.transport}, not ${sockjs[0]}`);
  }
  return item.frame;
}

function legacyUser(name) {
  return legacyLineUser(daemon.host, daemon.port, name, stompInbox(`legacy ${name}`));
}

async function jsonUser(name) {
  const ws = new WebSocket(`ws://${daemon.addr}/ws?name=${encodeURIComponent(name)}`);
  const box = stompInbox(`/ws ${name}`);
  ws.on('message', (data) => box.push(JSON.parse(data.toString())));
  await withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  }), `/ws ${name} to open`).catch((e) => fail(e.message));
  await box.next((m) => m.type === 'welcome', 'welcome');
  return {
    box,
    send: (obj) => ws.send(JSON.stringify(obj)),
    close: () => ws.close(),
    next: (test, what) => box.next(test, what),
  };
}

const hasNames = (names) => (m) => m.headers.destination === '/topic/presence'
  && names.every((n) => JSON.parse(m.body).includes(n));

async function scenarios() {
  step('connect with heart-beats');
  const alice = stompClient('alice');
  const welcome = await connected(alice, 'alice');
  assert.strictEqual(welcome.headers.version, '1.2');
  assert.strictEqual(welcome.headers['heart-beat'], '500,500', 'the server offers its --stomp-heartbeat');
  assert.strictEqual(welcome.headers['user-name'], 'alice');
  if (!/^soket\//.test(welcome.headers.server)) fail(`server header: ${welcome.headers.server}`);
  // A client that promises heart-beats and sends none: soket cuts it off.
  // It runs alongside the rest and is checked at the end.
  const mute = stompClient('mute');
  await connected(mute, 'mute');
  const socketSend = mute.client.webSocket.send.bind(mute.client.webSocket);
  mute.client.webSocket.send = (data) => (data === '\n' ? undefined : socketSend(data));
  const muteSince = Date.now();

  step('a taken login and an invalid one: ERROR, then the connection closes');
  const dup = stompClient('alice');
  const dupError = await dup.box.next((i) => i.kind === 'error', 'the ERROR frame');
  // Headers of a reply to CONNECT are read before any version is agreed:
  // stompjs unescapes nothing until CONNECTED, so soket must not escape them.
  assert.strictEqual(dupError.frame.headers.message, 'that name is taken in this namespace: alice');
  assert.strictEqual(dupError.frame.body, dupError.frame.headers.message);
  await dup.box.next((i) => i.kind === 'close', 'the close after ERROR');
  await stop(dup);
  const bad = stompClient('bad name!');
  const badError = await bad.box.next((i) => i.kind === 'error', 'the ERROR frame');
  if (!/^a name is .*: bad name!$/.test(badError.frame.headers.message)) {
    fail(`invalid login: ${badError.frame.headers.message}`);
  }
  await stop(bad);
  const anonymous = stompClient(undefined);
  const anonError = await anonymous.box.next((i) => i.kind === 'error', 'the ERROR frame');
  if (!/login/.test(anonError.frame.headers.message)) fail(`no login: ${anonError.frame.headers.message}`);
  await stop(anonymous);

  step('presence, subscribe, send, receipts');
  await alice.subscribe('/topic/presence', { id: 'presence' });
  const first = await alice.message((m) => m.headers.destination === '/topic/presence', 'the online list');
  assert.strictEqual(first.headers['content-type'], 'application/json');
  assert.deepStrictEqual(JSON.parse(first.body).filter((n) => n !== 'mute'), ['alice']);
  const bob = stompClient('bob');
  await connected(bob, 'bob');
  await alice.message(hasNames(['alice', 'bob']), 'the online list with bob');
  await alice.subscribe('/topic/r1', { id: 'alice-r1' });
  await bob.subscribe('/topic/r1', { id: 'bob-r1' });
  const text = 'héllo: wörld\nsecond line \u{1F600}';
  await alice.publish('/topic/r1', text);
  for (const [c, id] of [[bob, 'bob-r1'], [alice, 'alice-r1']]) {
    const m = await c.message((x) => x.headers.destination === '/topic/r1', 'the message in r1');
    assert.strictEqual(m.body, text);
    assert.strictEqual(m.headers.from, 'alice');
    assert.strictEqual(m.headers.subscription, id);
    assert.strictEqual(m.headers['content-type'], 'text/plain;charset=UTF-8');
    if (!m.headers['message-id']) fail('a MESSAGE without message-id');
    if ('ack' in m.headers) fail('an auto subscription got an ack header');
  }
  if (transport === 'websocket') {
    // A binary body with a NUL travels by content-length (SockJS carries text only).
    const binary = new TextEncoder().encode('a\0b');
    alice.client.publish({ destination: '/topic/r1', binaryBody: binary, headers: { 'content-type': 'text/plain' } });
    const withNul = await bob.message((x) => x.headers.destination === '/topic/r1', 'the message with a NUL');
    assert.deepStrictEqual([...withNul.binaryBody], [...binary]);
    await alice.message((x) => x.body === 'a\0b', 'its own message with a NUL');
  }
  await bob.subscribe('/topic/lobby', { id: 'bob-lobby' });
  await alice.publish('/topic/lobby', 'in the lobby');
  await bob.message((m) => m.headers.destination === '/topic/lobby' && m.body === 'in the lobby', 'the lobby message');

  step('large bodies, a burst, escaped header values, binary WebSocket frames');
  // Just under --max-line in bytes.
  const large = 'é'.repeat(MAX_LINE / 2 - 1) + '!';
  await alice.publish('/topic/r1', large);
  for (const [c, what] of [[bob, 'the large message'], [alice, 'its own large message']]) {
    const m = await c.message((x) => x.headers.destination === '/topic/r1', what);
    if (m.body !== large) fail(`${what}: ${m.body.length} characters, not the ${large.length} sent`);
  }
  for (let i = 0; i < 100; i++) alice.client.publish({ destination: '/topic/r1', body: `burst ${i}` });
  for (let i = 0; i < 100; i++) {
    const m = await bob.message((x) => x.headers.destination === '/topic/r1', `burst ${i}`);
    assert.strictEqual(m.body, `burst ${i}`, 'a burst arrives whole and in order');
  }
  for (let i = 0; i < 100; i++) await alice.message((x) => x.body === `burst ${i}`, `its own burst ${i}`);
  if (transport === 'websocket') {
    // Binary WebSocket frames and WebSocket close codes exist on /stomp only.
    const binaryFrames = stompClient('binny', { forceBinaryWSFrames: true });
    await connected(binaryFrames, 'binny');
    // 1.2 escapes `:`, `\\` and line ends in header values both ways.
    const oddId = 'sub:1\\x\ny';
    await binaryFrames.subscribe('/topic/r1', { id: oddId });
    await binaryFrames.publish('/topic/r1', 'in binary frames', { 'content-type': 'text/plain' });
    const odd = await binaryFrames.message((m) => m.body === 'in binary frames', 'its own message');
    assert.strictEqual(odd.headers.subscription, oddId);
    await bob.message((m) => m.body === 'in binary frames', 'binny\'s message');
    // No backslash before a `c`, `n` or `r`: stompjs 7.5 reads the `\\c` that
    // soket rightly sends for a backslash and a `c` as a backslash and a colon.
    const oddReceipt = 'r:1\n2\\3';
    const receipted = receiptOf(binaryFrames, oddReceipt);
    binaryFrames.client.publish({ destination: '/topic/r1', body: 'r', headers: { receipt: oddReceipt } });
    assert.strictEqual((await receipted).headers['receipt-id'], oddReceipt);
    await stop(binaryFrames);
    await bob.message((m) => m.body === 'r', 'binny\'s last message');
    // Over --max-message the WebSocket closes (1009); just under goes through.
    const huge = stompClient('huge');
    await connected(huge, 'huge');
    huge.client.publish({ destination: '/topic/lobby', body: 'x'.repeat(MAX_MESSAGE + 1) });
    const hugeClose = await huge.box.next((i) => i.kind === 'close', 'the close of an oversized frame');
    assert.strictEqual(hugeClose.detail, 1009);
    await stop(huge);
  }

  step('non-fatal refusals on /user/queue/errors');
  await bob.subscribe('/user/queue/errors', { id: 'errors' });
  bob.client.publish({ destination: '/topic/nowhere', body: 'x', headers: { receipt: 'refused-1' } });
  const refused = await bob.message((m) => m.headers.destination === '/user/queue/errors', 'the refusal');
  assert.strictEqual(refused.headers['content-type'], 'application/json');
  const why = JSON.parse(refused.body);
  assert.strictEqual(why.code, 'no_such_room');
  assert.strictEqual(why['receipt-id'], 'refused-1');
  bob.client.publish({ destination: '/queue/x', body: 'x' });
  const unknown = JSON.parse((await bob.message((m) => m.headers.destination === '/user/queue/errors',
    'the refusal of /queue/x')).body);
  assert.strictEqual(unknown.code, 'unknown_destination');
  // A frame under --max-message whose text is over --max-line.
  bob.client.publish({ destination: '/topic/r1', body: 'z'.repeat(MAX_LINE + 1) });
  const tooLarge = JSON.parse((await bob.message((m) => m.headers.destination === '/user/queue/errors',
    'the refusal of a text over --max-line')).body);
  assert.strictEqual(tooLarge.code, 'too_large');
  // Still connected and served.
  await bob.publish('/topic/r1', 'bob is fine');
  await alice.message((m) => m.body === 'bob is fine', 'bob\'s message after the refusals');
  await bob.message((m) => m.body === 'bob is fine', 'bob\'s own message after the refusals');
  if (bob.box.log.some((i) => i.kind === 'error' || i.kind === 'close')) fail('a refusal closed bob');

  step('ack mode client: one ACK settles every earlier message');
  await bob.subscribe('/topic/acks', { id: 'client-acks', ack: 'client' });
  await alice.subscribe('/topic/acks', { id: 'alice-acks' });
  await alice.subscribe('/topic/acks2', { id: 'alice-acks2' });
  const round = async (c, id, n, tag, topic = '/topic/acks') => {
    const got = [];
    for (let i = 0; i < n; i++) await alice.publish(topic, `${tag}-${i}`);
    for (let i = 0; i < n; i++) {
      got.push(await c.message((m) => m.headers.subscription === id && m.body === `${tag}-${i}`, `${tag}-${i}`));
    }
    return got;
  };
  let got = await round(bob, 'client-acks', MAX_UNACKED, 'c1');
  for (const m of got) {
    if (m.headers.ack !== m.headers['message-id']) fail(`1.2 ack header: ${JSON.stringify(m.headers)}`);
  }
  // Acknowledging the last one settles all four; had it not, the next
  // messages would pass --stomp-max-unacked and cut bob off.
  got[got.length - 1].ack({ receipt: 'ack-c1' });
  await receiptOf(bob, 'ack-c1');
  got = await round(bob, 'client-acks', MAX_UNACKED, 'c2');
  got[1].nack();
  got[3].ack();
  got = await round(bob, 'client-acks', 2, 'c3');
  got[1].ack();

  step('ack mode client-individual: an ACK settles its message only');
  const carl = stompClient('carl');
  await connected(carl, 'carl');
  // Its own room: bob's client subscription to /topic/acks must not fill up.
  await carl.subscribe('/topic/acks2', { id: 'individual', ack: 'client-individual' });
  await carl.subscribe('/topic/lobby', { id: 'carl-lobby' });
  got = await round(carl, 'individual', MAX_UNACKED, 'i1', '/topic/acks2');
  got[0].ack();
  got[1].nack();
  got[2].ack({ receipt: 'ack-i1' });
  await receiptOf(carl, 'ack-i1');
  // One still unsettled: three more fit, a fourth does not.
  got = await round(carl, 'individual', MAX_UNACKED - 1, 'i2', '/topic/acks2');
  await alice.publish('/topic/acks2', 'one too many');
  const cut = await carl.box.next((i) => i.kind === 'error', 'the ERROR for too many unacknowledged');
  if (!/unacknowledged/.test(cut.frame.headers.message)) fail(`carl's ERROR: ${cut.frame.headers.message}`);
  await carl.box.next((i) => i.kind === 'close', 'carl\'s close');
  await stop(carl);
  // bob settled everything: still here.
  bob.client.publish({ destination: '/topic/r1', body: 'bob after the acks' });
  await alice.message((m) => m.body === 'bob after the acks', 'bob after the acks');
  await bob.message((m) => m.body === 'bob after the acks', 'his own message after the acks');
  if (bob.box.log.some((i) => i.kind === 'error' || i.kind === 'close')) fail('bob was cut off despite his acks');

  step('transactions: a committed SEND arrives at COMMIT, an aborted one never');
  const tx = alice.client.begin();
  alice.client.publish({ destination: '/topic/r1', body: 'in tx', headers: { transaction: tx.id } });
  await alice.publish('/topic/r1', 'outside tx');
  const afterBegin = await bob.message((m) => m.headers.destination === '/topic/r1', 'the next r1 message');
  assert.strictEqual(afterBegin.body, 'outside tx', 'a transaction\'s SEND came before its COMMIT');
  tx.commit();
  assert.strictEqual((await bob.message((m) => m.headers.destination === '/topic/r1', 'the committed')).body, 'in tx');
  const aborted = alice.client.begin();
  alice.client.publish({ destination: '/topic/r1', body: 'aborted', headers: { transaction: aborted.id } });
  aborted.abort();
  await alice.publish('/topic/r1', 'after the abort');
  assert.strictEqual((await bob.message((m) => m.headers.destination === '/topic/r1', 'after the abort')).body,
    'after the abort');
  // An ACK inside a transaction, and a refusal inside one reported at COMMIT.
  await alice.publish('/topic/acks', 'ack in tx');
  const owed = await bob.message((m) => m.body === 'ack in tx', 'ack in tx');
  const bt = bob.client.begin();
  owed.ack({ transaction: bt.id });
  bob.client.publish({ destination: '/topic/nowhere', body: 'x', headers: { transaction: bt.id } });
  bt.commit();
  const atCommit = JSON.parse((await bob.message((m) => m.headers.destination === '/user/queue/errors',
    'the refusal at COMMIT')).body);
  assert.strictEqual(atCommit.code, 'no_such_room');
  if (bob.box.log.some((i) => i.kind === 'message' && i.message.body === 'aborted')) fail('an aborted SEND arrived');
  if (alice.box.log.some((i) => i.kind === 'message' && i.message.body === 'aborted')) fail('an aborted SEND arrived');

  step('cross-protocol: a legacy TCP user and a /ws JSON user in the same room');
  const carol = legacyUser('carol');
  await carol.line((l) => l.startsWith('3$*$*3'), 'the online list');
  const dave = await jsonUser('dave');
  await alice.message(hasNames(['carol', 'dave']), 'the online list with carol and dave');
  carol.send('/join r1');
  await carol.line((l) => l === '!JOINED r1 carol', '!JOINED r1 carol');
  dave.send({ type: 'join', room: 'r1' });
  await dave.next((m) => m.type === 'joined' && m.room === 'r1' && m.name === 'dave', 'joined r1');
  await alice.publish('/topic/r1', 'hello everyone');
  await carol.line((l) => l === '#r1 alice : hello everyone', 'alice\'s message in r1');
  const fromAlice = await dave.next((m) => m.type === 'message' && m.room === 'r1', 'alice\'s message in r1');
  assert.deepStrictEqual(fromAlice, { type: 'message', room: 'r1', from: 'alice', text: 'hello everyone' });
  carol.send('/msg r1 carol here');
  const fromCarol = await alice.message((m) => m.headers.from === 'carol', 'carol\'s message');
  assert.strictEqual(fromCarol.headers.destination, '/topic/r1');
  assert.strictEqual(fromCarol.body, 'carol here');
  dave.send({ type: 'say', room: 'r1', text: 'dave "quoted"\nhere' });
  const fromDave = await bob.message((m) => m.headers.from === 'dave', 'dave\'s message');
  assert.strictEqual(fromDave.headers.destination, '/topic/r1');
  assert.strictEqual(fromDave.body, 'dave "quoted"\nhere');
  carol.send('lobby line');
  assert.strictEqual((await bob.message((m) => m.headers.from === 'carol', 'carol in the lobby')).headers.destination,
    '/topic/lobby');

  step('cross-protocol: private messages and custom events');
  await alice.subscribe('/user/queue/private', { id: 'private' });
  await alice.subscribe('/user/queue/events', { id: 'events' });
  await alice.publish('/user/carol', 'psst carol');
  await carol.line((l) => l === 'alice : psst carol', 'alice\'s private message');
  dave.send({ type: 'private', to: 'alice', text: 'psst alice' });
  const priv = await alice.message((m) => m.headers.destination === '/user/queue/private', 'dave\'s private message');
  assert.strictEqual(priv.headers.from, 'dave');
  assert.strictEqual(priv.body, 'psst alice');
  assert.strictEqual(priv.headers.subscription, 'private');
  carol.send('alice..444..carol : back at you');
  const back = await alice.message((m) => m.headers.destination === '/user/queue/private', 'carol\'s private');
  assert.strictEqual(back.headers.from, 'carol');
  assert.strictEqual(back.body, 'back at you');
  await alice.publish('/user/dave', 'to dave');
  assert.deepStrictEqual(await dave.next((m) => m.type === 'private', 'alice\'s private message'),
    { type: 'private', from: 'alice', text: 'to dave' });
  dave.send({ type: 'emit', event: 'typing', data: { on: true }, to: 'alice' });
  const event = await alice.message((m) => m.headers.destination === '/user/queue/events', 'dave\'s event');
  assert.deepStrictEqual(JSON.parse(event.body), { event: 'typing', data: { on: true }, from: 'dave', room: null });

  step('unsubscribe leaves the room');
  bob.client.unsubscribe('bob-r1', { receipt: 'unsub-r1' });
  await receiptOf(bob, 'unsub-r1');
  await dave.next((m) => m.type === 'left' && m.room === 'r1' && m.name === 'bob', 'bob left r1');
  await alice.publish('/topic/r1', 'bob is gone');
  await alice.publish('/topic/lobby', 'after bob left');
  await bob.message((m) => m.body === 'after bob left', 'the lobby message after leaving r1');
  if (bob.box.log.some((i) => i.kind === 'message' && i.message.body === 'bob is gone')) {
    fail('bob got a message of r1 after unsubscribing');
  }
  bob.client.publish({ destination: '/topic/r1', body: 'x', headers: { receipt: 'not-in' } });
  const notIn = JSON.parse((await bob.message((m) => m.headers.destination === '/user/queue/errors',
    'the refusal of a room left')).body);
  assert.strictEqual(notIn.code, 'not_in_room');

  step('a fatal refusal without /user/queue/errors: ERROR with receipt-id, then close');
  const erin = stompClient('erin');
  await connected(erin, 'erin');
  erin.client.publish({ destination: '/topic/r1', body: 'x', headers: { receipt: 'fatal-1' } });
  const fatal = await erin.box.next((i) => i.kind === 'error', 'the ERROR frame');
  assert.strictEqual(fatal.frame.headers['receipt-id'], 'fatal-1');
  if (!/not a member/.test(fatal.frame.headers.message)) fail(`erin's ERROR: ${fatal.frame.headers.message}`);
  await erin.box.next((i) => i.kind === 'close', 'erin\'s close');
  await stop(erin);

  step('STOMP 1.0 and 1.1 through stompjs');
  for (const version of ['1.1', '1.0']) {
    const name = `v${version.replace('.', '')}`;
    const old = stompClient(name, { stompVersions: new Versions([version]) });
    const frame = await connected(old, name);
    // 1.0's CONNECTED has neither version nor heart-beat.
    assert.strictEqual(frame.headers.version, version === '1.0' ? undefined : version);
    assert.strictEqual(old.client.connectedVersion, version === '1.0' ? undefined : version);
    await alice.message(hasNames([name]), `the online list with ${name}`);
    await old.subscribe('/topic/r1', { id: `${name}-r1`, ack: 'client-individual' });
    await old.publish('/topic/r1', `from ${name}`);
    const own = await old.message((m) => m.body === `from ${name}`, 'its own message');
    if ('ack' in own.headers) fail(`an ack header in ${version}`);
    // 1.0 and 1.1 acknowledge by message-id and subscription.
    own.ack({ receipt: `ack-${name}` });
    await receiptOf(old, `ack-${name}`);
    await alice.message((m) => m.body === `from ${name}`, `${name}'s message`);
    await stop(old);
    await alice.message((m) => m.headers.destination === '/topic/presence' && !JSON.parse(m.body).includes(name),
      `the online list without ${name}`);
  }

  step('heart-beats: the server\'s arrive at the negotiated period, the connection lives');
  await withTimeout(new Promise((resolve) => {
    const check = () => (alice.state.heartbeats.length >= 3 ? resolve() : setTimeout(check, 50));
    check();
  }), 'three heart-beats from soket').catch((e) => fail(e.message));
  // soket beats on its own clock, each at least the negotiated 1000 ms
  // after the last (not the 500 ms it offered), so by now there can be no more
  // than this many however late any of them were seen.
  const most = Math.floor((Date.now() - alice.state.since) / CLIENT_HEARTBEAT_MS);
  if (alice.state.heartbeats.length > most) {
    fail(`${alice.state.heartbeats.length} heart-beats in ${Date.now() - alice.state.since} ms`);
  }
  if (alice.box.log.some((i) => ['error', 'close', 'heartbeat-lost'].includes(i.kind))) fail('alice was cut off');
  const mutedCut = await mute.box.next((i) => i.kind === 'error', 'the ERROR for a silent client');
  if (!/heart-beat/.test(mutedCut.frame.headers.message)) fail(`mute's ERROR: ${mutedCut.frame.headers.message}`);
  const silentFor = Date.now() - muteSince;
  if (silentFor < 2 * CLIENT_HEARTBEAT_MS) fail(`mute was cut off after only ${silentFor} ms`);
  await stop(mute);

  step('DISCONNECT with a receipt');
  bob.client.configure({ disconnectHeaders: { receipt: 'bye-bob' } });
  await stop(bob);
  const bye = await bob.box.next((i) => i.kind === 'disconnected', 'the RECEIPT of DISCONNECT');
  assert.strictEqual(bye.frame.headers['receipt-id'], 'bye-bob');
  await alice.message((m) => m.headers.destination === '/topic/presence' && !JSON.parse(m.body).includes('bob'),
    'the online list without bob');
  await dave.next((m) => m.type === 'users' && !m.users.includes('bob'), 'users without bob');
  carol.close();
  dave.close();
  await stop(alice);
}

(async () => {
  const binary = process.argv[2];
  if (!binary) fail('usage: node clients.js path/to/soket');
  const started = Date.now();
  for (transport of Object.keys(TRANSPORTS)) {
    const round = Date.now();
    daemon = await startDaemon(binary);
    await scenarios();
    daemon.child.kill('SIGTERM');
    const code = await withTimeout(daemon.exited, 'soket to exit after SIGTERM').catch((e) => fail(e.message));
    if (code !== 0) fail(`soket exited with ${code} after SIGTERM`);
    console.log(`@stomp/stompjs over ${transport}: all scenarios pass (${Date.now() - round} ms)`);
  }
  console.log(`@stomp/stompjs: every transport passes (${Date.now() - started} ms)`);
  process.exit(0);
})().catch((e) => fail(e && e.stack ? e.stack : String(e)));
