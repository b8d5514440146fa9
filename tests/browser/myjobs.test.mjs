// Browser test of "My jobs": with identity = remote_user (nginx signs in htpasswd users) the home
// page lists the signed-in user's jobs from the server, newest first, a page at a time, the same
// in any browser they sign in from and without anyone else's; an admin may show everyone's.
// Starts its own stack (tests/integration/harness.mjs) and drives Debian's /usr/bin/chromium.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { requireTool, sleep, startStack, stopServices, upload, waitFor, watchBrowser } from '../integration/harness.mjs';

const CHROMIUM = process.env.LABBOX_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const USERS = { alice: 'alice-pw', bob: 'bob-pw', carol: 'carol-pw' };
const CSV = 'group,value\ncontrol,1\ntreated,2\n';

requireTool(fs.existsSync(CHROMIUM), `chromium (${CHROMIUM})`);

describe('My jobs', () => {
  let stack;
  let browser;
  const alices = [];
  let bobs;

  before(async () => {
    // Jobs stay queued (one slot, held by a long job), so the list shows live states too.
    stack = await startStack({
      users: USERS,
      config: { admin_users: 'carol', max_concurrent: 1, user_max_queued: 0 },
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    for (let i = 0; i < 22; i++) {
      const r = await upload(stack, [{ name: `run${String(i).padStart(2, '0')}.csv`, data: CSV }], { mode: i === 0 ? 'sleep' : 'ok', seconds: 120 }, 'alice');
      assert.equal(r.status, 201);
      alices.push(r.body.id);
      if (i === 0) await waitFor(stack, r.body.id, (j) => j.state === 'running', 60000, 'alice');
      await sleep(5); // distinct creation times: the order to check is the order of creation
    }
    const b = await upload(stack, [{ name: 'bobs.csv', data: CSV }], { mode: 'ok' }, 'bob');
    assert.equal(b.status, 201);
    bobs = b.body.id;
  });

  after(async () => {
    if (browser) await browser.close();
    await stack?.stop();
    stopServices();
  });

  async function signedIn(user) {
    const context = watchBrowser(await browser.newContext({
      viewport: { width: 1200, height: 900 },
      httpCredentials: { username: user, password: USERS[user] },
    }));
    const page = await context.newPage();
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(e.message));
    await page.goto(`${stack.url}/#/`);
    await page.waitForFunction(() => document.querySelector('#recent-title').textContent !== 'Recent jobs in this browser');
    return { context, page };
  }

  const listed = (page) => page.$$eval('#recent-list .recent-item', (items) => items.map((li) => li.dataset.id));

  it('lists the signed-in user\'s jobs from the server, newest first, a page at a time', async () => {
    const { context, page } = await signedIn('alice');
    try {
      assert.equal(await page.textContent('#recent-title'), 'My jobs');
      assert.equal(await page.textContent('#recent-who'), 'Signed in as alice');
      assert.equal(await page.isVisible('#recent-all-wrap'), false);
      await page.waitForSelector('#recent-list .recent-item');
      let ids = await listed(page);
      assert.equal(ids.length, 20, 'one page of 20');
      assert.deepEqual(ids, alices.slice(2).reverse(), 'newest first');
      assert.ok(!ids.includes(bobs));
      const first = page.locator(`.recent-item[data-id="${alices[21]}"]`);
      assert.match(await first.textContent(), /run21\.csv/);
      assert.equal(await first.locator('.badge').getAttribute('data-state'), 'queued');
      await page.click('#recent-more');
      await page.waitForFunction(() => document.querySelectorAll('#recent-list .recent-item').length === 22);
      ids = await listed(page);
      assert.deepEqual(ids, [...alices].reverse());
      assert.equal(await page.isVisible('#recent-more'), false, 'no more pages');
      assert.equal(await page.locator(`.recent-item[data-id="${alices[0]}"] .badge`).getAttribute('data-state'), 'running');
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: `${ARTIFACTS}my-jobs.png`, fullPage: true });
      // A job opens from the list.
      await page.click(`.recent-item[data-id="${alices[21]}"] .recent-link`);
      await page.waitForFunction((id) => document.querySelector('#job-id-text')?.textContent === id, alices[21]);
      assert.deepEqual(page.errors, []);
    } finally {
      await context.close();
    }
  });

  it('is the same list in another browser (not localStorage), and nobody else\'s', async () => {
    const { context, page } = await signedIn('bob');
    try {
      await page.waitForSelector('#recent-list .recent-item');
      assert.deepEqual(await listed(page), [bobs]);
      assert.equal(await page.evaluate(() => localStorage.getItem('labbox.recent.v1')), null);
      assert.match(await page.textContent('#footer-note'), /Your jobs are yours/);
    } finally {
      await context.close();
    }
  });

  it('lets an admin show everyone\'s jobs, with their owners', async () => {
    const { context, page } = await signedIn('carol');
    try {
      await page.waitForSelector('#recent-empty:not([hidden])');
      assert.deepEqual(await listed(page), [], 'an admin\'s own list has only theirs');
      assert.equal(await page.isVisible('#recent-all-wrap'), true);
      await page.check('#recent-all');
      await page.waitForFunction(() => document.querySelector('#recent-title').textContent === 'Everyone\'s jobs');
      await page.waitForSelector(`.recent-item[data-id="${bobs}"]`);
      const ids = await listed(page);
      assert.equal(ids[0], bobs, 'bob\'s job is the newest of all');
      assert.ok(ids.includes(alices[21]));
      assert.match(await page.locator(`.recent-item[data-id="${bobs}"]`).textContent(), /bob/);
      assert.deepEqual(page.errors, []);
    } finally {
      await context.close();
    }
  });
});
