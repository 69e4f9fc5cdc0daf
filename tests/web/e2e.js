// The web chat page at `/`, in headless Chromium, against the real daemon and
// a legacy TCP user: the page signs in, sees the legacy user, receives its
// lobby and private messages, and its own message reaches the legacy user.
// Usage: node tests/web/e2e.js path/to/soket
'use strict';
const { WAIT_MS, failWith, startDaemon, stopDaemon, legacyUser, launchBrowser } = require('./helpers');

const fail = failWith('web e2e');

(async () => {
  const binary = process.argv[2];
  if (!binary) fail('usage: node e2e.js path/to/soket');
  const daemon = await startDaemon(binary);
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    await page.goto(`http://${daemon.host}:${daemon.port}/`);
    await page.fill('#nameInput', 'carol');
    await page.press('#nameInput', 'Enter');
    await page.getByText('Signed in as carol').waitFor({ timeout: WAIT_MS });

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
  } catch (e) {
    fail(e.message);
  } finally {
    await browser.close();
    await stopDaemon(daemon);
  }
})().catch((e) => fail(e.stack || String(e)));
