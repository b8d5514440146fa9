// Browser test of what the page shows of a job's results and inputs (issue 14), in Debian's
// headless Chromium against the stacks run-stack.mjs starts: the agent's main report rendered
// in a sandboxed frame whose scripts do not run, a CSV output previewed as a table of text, when
// the job expires, the inputs with their downloads and a re-run, a folder picked and a folder
// dropped (the tree, and the paths the server keeps), and the parameter form an agent's schema
// gives (LABBOX_TEST_SCHEMA_URL: the same agent with tests/browser/schema/params.schema.json).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { validateApi, watchBrowser } from '../integration/harness.mjs';

const BASE = (process.env.LABBOX_TEST_URL ?? '').replace(/\/+$/, '');
const SCHEMA_BASE = (process.env.LABBOX_TEST_SCHEMA_URL ?? '').replace(/\/+$/, '');
// Every answer from the stacks' /api/, to the test's fetch and to the page, is checked against
// docs/openapi.yaml.
for (const u of [BASE, SCHEMA_BASE]) if (u) validateApi(u);
const ACCESS_LOG = process.env.LABBOX_TEST_ACCESS_LOG ?? '';
const IN_CI = process.env.CI === 'true';
const CHROMIUM = process.env.LABBOX_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
const TERMINAL = ['succeeded', 'failed', 'timed_out', 'canceled'];
const DATA = `group,value\n${Array.from({ length: 40 }, (_, i) => `${i % 2 ? 'b' : 'a'},${(i * 1.7 + 3).toFixed(2)}`).join('\n')}\n`;

async function api(base, p) {
  const res = await fetch(`${base}${p}`);
  assert.equal(res.status, 200, `GET ${p}: ${res.status}`);
  return res.json();
}

async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });
}

/** Wait for the page's badge to show a terminal state; returns it. */
async function ended(page) {
  await page.waitForFunction((states) => states.includes(document.querySelector('#job-badge')?.dataset.state),
    TERMINAL, { timeout: 120000, polling: 250 });
  return page.$eval('#job-badge', (b) => b.dataset.state);
}

function jobIdOf(page) {
  return new URL(page.url()).hash.slice('#/jobs/'.length);
}

/** A folder on disk: run1/a.csv, run1/day 2/b.csv, run1/.DS_Store. */
function makeFolder() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'labbox-browser-folder-'));
  fs.mkdirSync(path.join(dir, 'run1/day 2'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'run1/a.csv'), DATA);
  fs.writeFileSync(path.join(dir, 'run1/day 2/b.csv'), DATA);
  fs.writeFileSync(path.join(dir, 'run1/.DS_Store'), 'junk');
  return dir;
}

if (!BASE || !SCHEMA_BASE) {
  describe('labbox results in the browser', () => {
    it('needs LABBOX_TEST_URL and LABBOX_TEST_SCHEMA_URL', { skip: IN_CI ? false : 'run it through run-stack.mjs' }, () => {
      assert.fail('the stacks are not set, and CI=true: the browser test must run in CI');
    });
  });
} else {
  describe('labbox results in the browser', () => {
    let browser;
    let folder;
    before(async () => {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
      folder = makeFolder();
    });
    after(async () => {
      if (browser) await browser.close();
      if (folder) fs.rmSync(folder, { recursive: true, force: true });
    });

    async function newPage(viewport = { width: 1200, height: 900 }) {
      const context = watchBrowser(await browser.newContext({ viewport }));
      const page = await context.newPage();
      page.errors = [];
      page.on('pageerror', (e) => page.errors.push(e.message));
      return { context, page };
    }

    it('opens the main report in a sandboxed frame where its scripts do not run; previews a CSV; shows the expiry', async () => {
      const { context, page } = await newPage();
      try {
        await page.goto(`${BASE}/#/`);
        await page.setInputFiles('#file-input', [{ name: 'data.csv', mimeType: 'text/csv', buffer: Buffer.from(DATA) }]);
        await page.fill('#params-input', '{"seconds": 0.5}');
        await page.click('#submit-btn');
        await page.waitForURL(/#\/jobs\/[a-z2-7]{26}$/, { timeout: 60000 });
        assert.equal(await ended(page), 'succeeded');
        const id = jobIdOf(page);

        /* The report (summary.json names it) is shown first, in a frame with every sandbox flag. */
        await page.waitForSelector('#report:not([hidden])');
        assert.equal(await page.getAttribute('#report-frame', 'sandbox'), '');
        const src = await page.getAttribute('#report-frame', 'src');
        assert.equal(src, `/api/jobs/${id}/outputs/report.html?view=1`);
        const frame = page.frameLocator('#report-frame');
        await frame.locator('#heading').waitFor();
        assert.equal(await frame.locator('#heading').textContent(), 'Report of the browser test');
        /* Its own picture loads (a relative URL, allowed by the view's CSP); its script does not run. */
        const chart = frame.locator('#chart');
        await chart.waitFor();
        const box = await chart.boundingBox();
        assert.ok(box && box.width > 100, 'the report\'s chart is laid out');
        assert.equal(await frame.locator('body').getAttribute('data-ran'), null, 'the report\'s script did not run');
        const reportFrame = page.frames().find((f) => f.url().includes('/outputs/report.html'));
        assert.ok(reportFrame, 'the frame loaded the report');
        const loaded = await reportFrame.locator('#chart').evaluate((img) => img.complete && img.naturalWidth > 0);
        assert.equal(loaded, true, 'the chart in the report loaded');
        /* The page cannot reach into the frame (an opaque origin), and the frame cannot reach the page. */
        assert.equal(await page.evaluate(() => {
          try {
            return document.querySelector('#report-frame').contentDocument === null;
          } catch {
            return true;
          }
        }), true);
        await page.waitForTimeout(500);
        if (ACCESS_LOG) assert.doesNotMatch(fs.readFileSync(ACCESS_LOG, 'utf8'), /ran-marker/, 'no request from the report\'s script');
        await shot(page, 'report-in-frame');

        /* A CSV output as a table: its first 100 rows, text only. */
        const row = page.locator('#outputs-list .output-item', { hasText: 'table.csv' });
        await row.locator('button', { hasText: 'Preview' }).click();
        const table = row.locator('table.preview-table');
        await table.waitFor();
        assert.deepEqual(await table.locator('thead th').allTextContents(), ['n', 'label', 'value']);
        assert.equal(await table.locator('tbody tr').count(), 100);
        assert.match(await table.locator('caption').textContent(), /first 100 rows/);
        assert.deepEqual(await table.locator('tbody tr').first().locator('td').allTextContents(), ['1', 'a, quoted', '<b>not bold</b>']);
        assert.equal(await table.locator('b').count(), 0, 'markup in a cell stays text');
        /* View links open the server's inline view. */
        const viewHref = await page.locator('#outputs-list .output-item', { hasText: 'report.html' }).locator('a', { hasText: 'View' }).getAttribute('href');
        assert.equal(viewHref, `/api/jobs/${id}/outputs/report.html?view=1`);

        /* When the job goes. */
        const job = await api(BASE, `/api/jobs/${id}`);
        assert.ok(job.expires_at);
        assert.match(await page.textContent('#job-expires'), /\(in \d+ (h|days|min)\)/);
        assert.deepEqual(page.errors, []);
      } finally {
        await context.close();
      }
    });

    it('picks a folder: the tree, hidden files left out, the paths kept; then re-runs with new params', async () => {
      const { context, page } = await newPage();
      try {
        await page.goto(`${BASE}/#/`);
        await page.setInputFiles('#folder-input', path.join(folder, 'run1'));
        await page.waitForSelector('#file-list .file-item.is-folder');
        const rows = await page.$$eval('#file-list .file-item', (lis) => lis.map((li) => ({
          name: li.querySelector('.file-name').textContent, folder: li.classList.contains('is-folder'),
          level: li.style.getPropertyValue('--level'),
        })));
        assert.deepEqual(rows, [
          { name: 'run1/', folder: true, level: '0' },
          { name: 'a.csv', folder: false, level: '1' },
          { name: 'day 2/', folder: true, level: '1' },
          { name: 'b.csv', folder: false, level: '2' },
        ]);
        assert.match(await page.textContent('#files-error'), /1 hidden file .* left out/);
        assert.match(await page.textContent('#file-summary'), /2 files \(1 folder\)/);
        await shot(page, 'folder-tree');
        await page.fill('#params-input', '{"seconds": 0.2}');
        await page.click('#submit-btn');
        await page.waitForURL(/#\/jobs\/[a-z2-7]{26}$/, { timeout: 60000 });
        const id = jobIdOf(page);
        assert.deepEqual((await api(BASE, `/api/jobs/${id}`)).inputs.map((i) => i.name), ['run1/a.csv', 'run1/day 2/b.csv']);
        assert.equal(await ended(page), 'succeeded');

        /* The inputs, downloadable again. */
        await page.waitForSelector('#inputs-card:not([hidden])');
        const hrefs = await page.$$eval('#inputs-list a', (as) => as.map((a) => a.getAttribute('href')));
        assert.deepEqual(hrefs, [`/api/jobs/${id}/inputs/run1/a.csv`, `/api/jobs/${id}/inputs/run1/day%202/b.csv`]);
        for (const h of [...hrefs, await page.getAttribute('#inputs-archive', 'href')]) {
          const res = await fetch(`${BASE}${h}`);
          assert.equal(res.status, 200, h);
          await res.arrayBuffer();
        }
        assert.equal(await (await fetch(`${BASE}${hrefs[0]}`)).text(), DATA);

        /* Run again: the old params to start from, new ones sent, the new job opened. */
        await page.click('#rerun summary');
        await page.waitForFunction(() => document.querySelector('#rerun-input').value.includes('seconds'));
        assert.deepEqual(JSON.parse(await page.inputValue('#rerun-input')), { seconds: 0.2 });
        await page.fill('#rerun-input', '{"seconds": 0.3, "long_line": 20}');
        await page.click('#rerun-submit');
        await page.waitForFunction((old) => /#\/jobs\/[a-z2-7]{26}$/.test(location.hash) && !location.hash.includes(old), id);
        const again = jobIdOf(page);
        assert.notEqual(again, id);
        const params = await api(BASE, `/api/jobs/${again}/inputs/params.json`);
        assert.deepEqual(params, { seconds: 0.3, long_line: 20 });
        assert.deepEqual((await api(BASE, `/api/jobs/${again}`)).inputs.map((i) => i.name), ['run1/a.csv', 'run1/day 2/b.csv']);
        assert.equal(await ended(page), 'succeeded');
        assert.deepEqual(page.errors, []);
      } finally {
        await context.close();
      }
    });

    it('takes a dropped folder (webkitGetAsEntry) with its paths', async () => {
      const { context, page } = await newPage();
      try {
        await page.goto(`${BASE}/#/`);
        await page.waitForSelector('#dropzone');
        /* A real drop of a directory, as the OS hands it to Chromium. */
        const cdp = await context.newCDPSession(page);
        const b = await page.locator('#dropzone').boundingBox();
        const at = { x: b.x + b.width / 2, y: b.y + b.height / 2 };
        const data = { items: [], files: [path.join(folder, 'run1')], dragOperationsMask: 1 };
        for (const type of ['dragEnter', 'dragOver', 'drop']) await cdp.send('Input.dispatchDragEvent', { type, ...at, data });
        await page.waitForSelector('#file-list .file-item.is-folder');
        const names = await page.$$eval('#file-list .file-item', (lis) => lis.map((li) => li.dataset.path));
        assert.deepEqual(names, ['run1', 'run1/a.csv', 'run1/day 2', 'run1/day 2/b.csv']);
        /* A folder goes as a whole with its button. */
        await page.click('#file-list .file-item[data-path="run1/day 2"] button');
        assert.deepEqual(await page.$$eval('#file-list .file-item', (lis) => lis.map((li) => li.dataset.path)), ['run1', 'run1/a.csv']);
        await page.fill('#params-input', '{"seconds": 0.2}');
        await page.click('#submit-btn');
        await page.waitForURL(/#\/jobs\/[a-z2-7]{26}$/, { timeout: 60000 });
        assert.deepEqual((await api(BASE, `/api/jobs/${jobIdOf(page)}`)).inputs.map((i) => i.name), ['run1/a.csv']);
        assert.equal(await ended(page), 'succeeded');
        assert.deepEqual(page.errors, []);
      } finally {
        await context.close();
      }
    });

    it('builds the parameter form from the agent\'s schema: checked fields, empty ones left out', async () => {
      const { context, page } = await newPage();
      try {
        await page.goto(`${SCHEMA_BASE}/#/`);
        await page.waitForSelector('#params-form:not([hidden])');
        assert.equal(await page.isVisible('#params-input'), false, 'no JSON box when the agent has a schema');
        const field = (name) => page.locator(`#params-form .param-field[data-param="${name}"]`);
        assert.equal(await field('seconds').locator('label').textContent(), 'Seconds seconds');
        assert.equal(await field('seconds').locator('input').getAttribute('placeholder'), 'Default: 6');
        assert.match(await field('seconds').locator('.param-help').textContent(), /How long the agent prints progress/);
        assert.deepEqual(await field('style').locator('option').allTextContents(), ['Not set', 'plain', 'fancy']);
        assert.deepEqual(await field('verbose').locator('option').allTextContents(), ['Default (no)', 'Yes', 'No']);
        await page.setInputFiles('#file-input', [{ name: 'data.csv', mimeType: 'text/csv', buffer: Buffer.from(DATA) }]);

        /* What the server would refuse is refused here, in its words, at the field. */
        await field('seconds').locator('input').fill('90');
        await field('long_line').locator('input').fill('2.5');
        await page.click('#submit-btn');
        assert.equal(await field('seconds').locator('.field-error').textContent(), 'Seconds must be from 0 to 60.');
        assert.equal(await field('long_line').locator('.field-error').textContent(), 'Long line must be an integer.');
        assert.equal(await field('seconds').locator('input').getAttribute('aria-invalid'), 'true');
        assert.match(page.url(), /#\/$/, 'nothing was sent');
        await shot(page, 'params-form');

        await field('seconds').locator('input').fill('0.4');
        await field('long_line').locator('input').fill('');
        await field('style').locator('select').selectOption({ label: 'fancy' });
        await field('columns').locator('input').fill('a, b');
        await field('verbose').locator('select').selectOption({ label: 'Yes' });
        await page.click('#submit-btn');
        await page.waitForURL(/#\/jobs\/[a-z2-7]{26}$/, { timeout: 60000 });
        const id = jobIdOf(page);
        /* Only the filled fields, typed; the empty ones are left out, never null. */
        assert.deepEqual(await api(SCHEMA_BASE, `/api/jobs/${id}/inputs/params.json`),
          { seconds: 0.4, style: 'fancy', columns: ['a', 'b'], verbose: true });
        assert.equal(await ended(page), 'succeeded');

        /* The re-run's form starts from this job's params. */
        await page.click('#rerun summary');
        await page.waitForSelector('#rerun-params-form:not([hidden]) .param-field');
        const again = (name) => page.locator(`#rerun-params-form .param-field[data-param="${name}"]`);
        assert.equal(await again('seconds').locator('input').inputValue(), '0.4');
        assert.equal(await again('columns').locator('input').inputValue(), 'a, b');
        await again('style').locator('select').selectOption({ label: 'Not set' });
        await page.click('#rerun-submit');
        await page.waitForFunction((old) => !location.hash.includes(old), id);
        assert.deepEqual(await api(SCHEMA_BASE, `/api/jobs/${jobIdOf(page)}/inputs/params.json`),
          { seconds: 0.4, columns: ['a', 'b'], verbose: true });
        assert.equal(await ended(page), 'succeeded');
        assert.deepEqual(page.errors, []);
      } finally {
        await context.close();
      }
    });
  });
}
