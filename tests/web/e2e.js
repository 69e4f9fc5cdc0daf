// The web chat page at `/`, in headless Chromium, against the real daemon and
// a legacy TCP user: the page signs in, sees the legacy user, receives its
// lobby and private messages, and its own message reaches the legacy user.
// Then, with a second browser user: the typing indicator, links made
// clickable while markup stays text, the "reconnecting in N s" label while
// the daemon is down, and what the page says when its upgrade is refused
// (403 from --allow-origin, 404 for a bad namespace, a full server).
// Usage: node tests/web/e2e.js path/to/soket [--static-dir DIR]
'use strict';
const { WAIT_MS, failWith, startDaemon, stopDaemon, legacyUser, launchBrowser } = require('./helpers');

const fail = failWith('web e2e');

// A page in a context of its own (its own localStorage), signed in as `name`.
async function signIn(browser, base, name) {
  const page = await (await browser.newContext()).newPage();
  await page.goto(base + '/');
  await page.fill('#nameInput', name);
  await page.press('#nameInput', 'Enter');
  await page.getByText('Signed in as ' + name).waitFor({ timeout: WAIT_MS });
  return page;
}

// soket_handshake_failures_total from the daemon's /metrics.
async function handshakeFailures(daemon) {
  const text = await (await fetch(`http://${daemon.host}:${daemon.port}/metrics`)).text();
  const m = /^soket_handshake_failures_total (\d+)$/m.exec(text);
  if (!m) fail('no soket_handshake_failures_total in /metrics');
  return Number(m[1]);
}

async function stateIs(page, pattern, what, timeout = WAIT_MS) {
  try {
    await page.waitForFunction((re) => new RegExp(re).test(document.getElementById('state').textContent),
      pattern.source, { timeout });
  } catch (_) {
    fail(`${what}: the state label says ${JSON.stringify(await page.textContent('#state'))}, ` +
      `the banner ${JSON.stringify(await page.textContent('#banner'))}`);
  }
}

(async () => {
  const binary = process.argv[2];
  if (!binary) fail('usage: node e2e.js path/to/soket');
  // Extra daemon flags (e.g. --static-dir src/web to try a page without rebuilding).
  const extra = process.argv.slice(3);
  let daemon = await startDaemon(binary, extra);
  const base = `http://${daemon.host}:${daemon.port}`;
  const browser = await launchBrowser();
  const others = [];
  try {
    const page = await signIn(browser, base, 'carol');
    await stateIs(page, /^connected$/, 'signed in');

    const bob = legacyUser(daemon.host, daemon.port, 'bob', fail);
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
    await page.locator('#roomList').getByText('# lobby').click();

    // Typing: dave types in the lobby, carol sees it; it goes when he sends.
    const dave = await signIn(browser, base, 'dave');
    await dave.locator('#text').pressSequentially('see https://exa', { delay: 20 });
    await page.locator('#typing').getByText('dave is typing\u2026').waitFor({ timeout: WAIT_MS });
    // Links: http(s) only, trailing punctuation left out; markup and other schemes stay text.
    const line = 'see https://example.com/a?b=1&c=(2). <b>x</b> <img src=x onerror=alert(1)> javascript:alert(1)';
    await dave.fill('#text', line);
    await dave.press('#text', 'Enter');
    const row = page.locator('.msg', { hasText: 'see https://example.com' });
    await row.waitFor({ timeout: WAIT_MS });
    const shown = await row.evaluate((r) => ({
      text: r.querySelector('.text').textContent,
      links: [...r.querySelectorAll('a')].map((a) => [a.getAttribute('href'), a.textContent, a.rel, a.target]),
      elements: [...r.querySelector('.text').querySelectorAll('*')].map((e) => e.tagName),
      typing: document.getElementById('typing').textContent,
    }));
    if (shown.text !== line) fail(`the message text is ${JSON.stringify(shown.text)}`);
    const wanted = [['https://example.com/a?b=1&c=(2)', 'https://example.com/a?b=1&c=(2)', 'noopener noreferrer', '_blank']];
    if (JSON.stringify(shown.links) !== JSON.stringify(wanted)) fail(`links: ${JSON.stringify(shown.links)}`);
    if (JSON.stringify(shown.elements) !== '["A"]') fail(`elements in the message: ${JSON.stringify(shown.elements)}`);
    if (shown.typing !== '') fail(`the indicator stayed after dave's message: ${JSON.stringify(shown.typing)}`);
    // An indicator without a message clears itself after a few seconds.
    await dave.locator('#text').pressSequentially('hm', { delay: 20 });
    await page.locator('#typing').getByText('dave is typing\u2026').waitFor({ timeout: WAIT_MS });
    await page.locator('#typing').getByText('dave is typing\u2026').waitFor({ state: 'detached', timeout: WAIT_MS });
    // Clearing the input says so at once.
    await dave.locator('#text').pressSequentially('x', { delay: 20 });
    await page.locator('#typing').getByText('dave is typing\u2026').waitFor({ timeout: WAIT_MS });
    await dave.fill('#text', '');
    await dave.locator('#text').dispatchEvent('input');
    await page.locator('#typing').getByText('dave is typing\u2026').waitFor({ state: 'detached', timeout: 2000 });
    console.log('web e2e: ok (typing indicator; safe clickable links, markup shown as text)');

    // The daemon goes away: the label counts down to the next try; back on
    // the same port, the page signs in again by itself.
    await stopDaemon(daemon);
    await stateIs(page, /^reconnecting in \d+ s$/, 'daemon stopped');
    await page.locator('#banner').getByText('Cannot reach the server').waitFor({ timeout: WAIT_MS });
    const seen = new Set();
    for (let i = 0; i < 100 && seen.size < 2; i++) {
      const m = /^reconnecting in (\d+) s$/.exec(await page.textContent('#state'));
      if (m) seen.add(m[1]);
      await page.waitForTimeout(100);
    }
    if (seen.size < 2) fail(`the countdown did not move: saw ${JSON.stringify([...seen])}`);
    daemon = await startDaemon(binary, extra, `${daemon.host}:${daemon.port}`);
    // The backoff may have reached several seconds by now (at most 16 s after 5 failures).
    await stateIs(page, /^connected$/, 'daemon back', 40000);
    await page.getByText('Welcome, carol!').nth(1).waitFor({ timeout: WAIT_MS });
    if (!(await page.locator('#banner').isHidden())) fail('the banner stayed after reconnecting');
    console.log(`web e2e: ok (reconnecting label counted down ${[...seen].join(', ')} s; signed in again)`);

    // A bad namespace: 404, said once, no retry loop.
    const lost = await (await browser.newContext()).newPage();
    await lost.goto(base + '/?ns=a..b');
    await lost.locator('#banner').getByText('There is no chat at /ws/a..b on this server (HTTP 404)').waitFor({ timeout: WAIT_MS });
    await stateIs(lost, /^not connected$/, '404');

    // A daemon that only allows another origin: the page's own is refused with 403.
    const strict = await startDaemon(binary, [...extra, '--allow-origin', 'https://elsewhere.example']);
    others.push(strict);
    const refused = await (await browser.newContext()).newPage();
    await refused.goto(`http://${strict.host}:${strict.port}/`);
    await refused.locator('#banner').getByText(
      `its origin http://${strict.host}:${strict.port} is not in soket's --allow-origin list (HTTP 403)`,
    ).waitFor({ timeout: WAIT_MS });
    await stateIs(refused, /^not connected$/, '403');
    // No retry loop: no further handshake reaches the daemon.
    const tries = await handshakeFailures(strict);
    await refused.waitForTimeout(2500);
    await stateIs(refused, /^not connected$/, '403, later');
    if ((await handshakeFailures(strict)) !== tries) fail('403: the page kept retrying');
    // Signing in tries again (one more refused handshake), and is told the same.
    const before = await handshakeFailures(strict);
    await refused.fill('#nameInput', 'erin');
    await refused.press('#nameInput', 'Enter');
    for (let i = 0; (await handshakeFailures(strict)) === before; i++) {
      if (i > 50) fail('403: signing in did not try again');
      await refused.waitForTimeout(100);
    }
    await stateIs(refused, /^not connected$/, '403, after signing in');
    if (await refused.locator('#banner').isHidden()) fail('403: the banner went away after signing in');
    console.log('web e2e: ok (refused upgrades: 404 and 403 explained, not retried)');

    // A full daemon: soket closes connections past --max-connections without an answer.
    const full = await startDaemon(binary, [...extra, '--max-connections', '1']);
    others.push(full);
    const crowded = await (await browser.newContext()).newPage();
    await crowded.goto(`http://${full.host}:${full.port}/`);
    await stateIs(crowded, /^reconnecting in \d+ s$/, 'server full');
    const why = await crowded.textContent('#bannerText');
    if (!/connection limit/.test(why)) fail(`server full: the banner says ${JSON.stringify(why)}`);
    console.log(`web e2e: ok (server full: "${why}")`);
  } catch (e) {
    fail(e.message);
  } finally {
    await browser.close();
    for (const d of others) await stopDaemon(d);
    await stopDaemon(daemon);
  }
})().catch((e) => fail(e.stack || String(e)));
