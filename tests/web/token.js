// The web chat page with connection tokens on (--token-secret): opened as
// /?token=JWT, it signs in as the token's `sub` without asking, and chats;
// a page with a wrongly signed token says its token was refused and does not
// keep retrying; a token that expires while the page is open ends the session
// with a message saying so.
// Usage: node tests/web/token.js path/to/soket
'use strict';
const crypto = require('crypto');
const { WAIT_MS, failWith, startDaemon, stopDaemon, launchBrowser } = require('./helpers');

const fail = failWith('web token');
const SECRET = 'web-token-test-secret';

function b64url(data) {
  return Buffer.from(data).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

// An HS256 JWT for `sub`, valid for `seconds`, signed with `secret`.
function token(sub, seconds, secret = SECRET) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + seconds }));
  const sig = b64url(crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest());
  return `${head}.${body}.${sig}`;
}

async function bannerSays(page, pattern, what) {
  try {
    await page.waitForFunction((re) => new RegExp(re).test(document.getElementById('bannerText').textContent),
      pattern.source, { timeout: WAIT_MS });
  } catch (_) {
    fail(`${what}: the banner says ${JSON.stringify(await page.textContent('#bannerText'))}`);
  }
}

(async () => {
  const binary = process.argv[2];
  if (!binary) fail('usage: node token.js path/to/soket');
  const daemon = await startDaemon(binary, ['--token-secret', SECRET, '--token-leeway', '0s']);
  const base = `http://${daemon.host}:${daemon.port}`;
  const browser = await launchBrowser();
  try {
    const dora = await (await browser.newContext()).newPage();
    await dora.goto(`${base}/?token=${token('dora', 600)}`);
    await dora.getByText('Signed in as dora').waitFor({ timeout: WAIT_MS });
    const eli = await (await browser.newContext()).newPage();
    await eli.goto(`${base}/?token=${token('eli', 600)}`);
    await eli.getByText('Signed in as eli').waitFor({ timeout: WAIT_MS });
    await eli.fill('#text', 'hello dora, signed in by token');
    await eli.press('#text', 'Enter');
    await dora.getByText('hello dora, signed in by token').waitFor({ timeout: WAIT_MS });
    console.log('web token: ok (two pages signed in by their tokens, without being asked a name, and chat)');

    const forged = await (await browser.newContext()).newPage();
    await forged.goto(`${base}/?token=${token('mallory', 600, 'not-the-secret')}`);
    await bannerSays(forged, /refused this page's sign-in token/, 'a wrongly signed token');
    // Stopped, not retrying: no reconnect countdown appears.
    if (/reconnecting/.test(await forged.textContent('#state'))) fail('the refused page keeps reconnecting');
    console.log('web token: ok (a wrongly signed token is refused and the page says so, without retrying)');

    const brief = await (await browser.newContext()).newPage();
    await brief.goto(`${base}/?token=${token('fay', 2)}`);
    await brief.getByText('Signed in as fay').waitFor({ timeout: WAIT_MS });
    await bannerSays(brief, /token has expired/, 'a token expiring while the page is open');
    console.log('web token: ok (an expiring token ends the session with a message saying so)');
  } finally {
    await browser.close();
    await stopDaemon(daemon);
  }
})().catch((e) => fail(e.stack || String(e)));
