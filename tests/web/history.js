// The web chat page's history, in headless Chromium against the real daemon
// started with --history-size: a newcomer sees the lobby's last messages
// (said by legacy users before it came) above the live ones, once each and
// in order, marked as earlier; a private conversation is kept in the
// browser (localStorage) and shown again after a reload, since the server
// keeps no private history.
// Usage: node tests/web/history.js path/to/soket [SCREENSHOT.png]
'use strict';
const { WAIT_MS, failWith, startDaemon, stopDaemon, legacyUser, launchBrowser } = require('./helpers');

const fail = failWith('web history');

async function signIn(page, base, name) {
  await page.goto(base + '/');
  await page.fill('#nameInput', name);
  await page.press('#nameInput', 'Enter');
  await page.getByText('Signed in as ' + name).waitFor({ timeout: WAIT_MS });
}

// The texts of every earlier-message row, conversation by conversation, top to bottom.
async function earlier(page) {
  return page.evaluate(() => [...document.querySelectorAll('.log .msg.hist .text')].map((t) => t.textContent));
}

(async () => {
  const binary = process.argv[2];
  if (!binary) fail('usage: node history.js path/to/soket [screenshot.png]');
  const shot = process.argv[3];
  const daemon = await startDaemon(binary, ['--history-size', '20']);
  const base = `http://${daemon.host}:${daemon.port}`;
  const browser = await launchBrowser();
  try {
    // eve listens, so we know the daemon has every line before carol comes.
    const eve = legacyUser(daemon.host, daemon.port, 'eve', fail);
    await eve.lineWhere((l) => l.startsWith('3$*$*3'), 'her first list');
    const bob = legacyUser(daemon.host, daemon.port, 'bob', fail);
    await eve.lineWhere((l) => l === '3$*$*3bob$', 'the list with bob');
    const said = ['morning all', 'the build is green again', 'lunch at noon? https://example.com/menu'];
    for (const line of said) bob.send(line);
    await eve.lineWhere((l) => l === '#lobby bob : ' + said[2], "bob's last line");

    const context = await browser.newContext({ viewport: { width: 900, height: 520 } });
    const page = await context.newPage();
    await signIn(page, base, 'carol');
    try {
      await page.waitForFunction((n) => document.querySelectorAll('.msg.hist .text').length >= n, said.length,
        { timeout: WAIT_MS });
    } catch (_) {
      fail(`no earlier messages shown; the lobby shows ${JSON.stringify(await page.locator('.log').first().innerText())}`);
    }
    const shown = await earlier(page);
    if (JSON.stringify(shown) !== JSON.stringify(said)) {
      fail(`earlier messages ${JSON.stringify(shown)}, expected ${JSON.stringify(said)} once each, in order`);
    }
    await page.getByText('Earlier messages (this room):').waitFor({ timeout: WAIT_MS });
    // Live messages follow, and are not marked as history.
    bob.send('welcome carol');
    await page.locator('.msg:not(.hist) .text', { hasText: 'welcome carol' }).waitFor({ timeout: WAIT_MS });
    if (shot) {
      await page.screenshot({ path: shot });
      console.log(`web history: screenshot in ${shot}`);
    }
    console.log('web history: ok (a newcomer sees the lobby\'s last messages, once each, in order, then live ones)');

    // A private conversation, kept by the browser across a reload.
    bob.send('carol..444..bob : our secret plan');
    await page.locator('#userList').getByText('bob').click();
    await page.getByText('our secret plan').waitFor({ timeout: WAIT_MS });
    await page.waitForFunction(() => Object.keys(localStorage).some((k) => k.startsWith('soket.log.') &&
      localStorage.getItem(k).includes('our secret plan')), null, { timeout: WAIT_MS });
    await page.reload();
    await page.fill('#nameInput', 'carol');
    await page.press('#nameInput', 'Enter');
    await page.getByText('Signed in as carol').waitFor({ timeout: WAIT_MS });
    try {
      await page.waitForFunction(() => [...document.querySelectorAll('.msg.hist .text')]
        .some((t) => t.textContent === 'our secret plan'), null, { timeout: WAIT_MS });
    } catch (_) {
      fail('the private conversation was not restored from this browser after a reload');
    }
    // The lobby's history came from the server again, still once each.
    const again = (await earlier(page)).filter((t) => said.includes(t));
    if (JSON.stringify(again) !== JSON.stringify(said)) fail(`after the reload the lobby's earlier messages are ${JSON.stringify(again)}`);
    console.log('web history: ok (the private conversation came back from localStorage after a reload)');
    bob.close();
    eve.close();
  } finally {
    await browser.close();
    await stopDaemon(daemon);
  }
})().catch((e) => fail(e.stack || String(e)));
