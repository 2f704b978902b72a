// The review UI of `assay serve` in a real headless Chromium (playwright-core, the system's /usr/bin/chromium).
// Run by crates/assay/tests/serve_browser.rs, which starts the server on a store with two projects and then checks
// the store for exactly the answers this script reports. By hand:
//
//   ASSAY_URL=http://127.0.0.1:7878 ASSAY_TOKEN=… ASSAY_OTHER_TOKEN=… ASSAY_CLASSIFY_PROJECT=sms \
//   ASSAY_COMPARE_PROJECT=pairs node tests/browser/review.mjs
//
// Environment:
//   ASSAY_URL               the server's base URL
//   ASSAY_TOKEN             the annotator who reviews in the browser
//   ASSAY_OTHER_TOKEN       a second annotator: claims an item whose page the first must not open
//   ASSAY_CLASSIFY_PROJECT  name of a classify project with two labels (key 1, key 2) and at least 7 items
//   ASSAY_COMPARE_PROJECT   name of a compare project with at least 3 pairs
//   ASSAY_ADMIN_TOKEN       an admin (optional): adds an annotator and creates a project in the admin screens
//   ASSAY_ADMIN_TASK        with it: the absolute path of a task file (on the server) to create a project from
//   ASSAY_SCREENSHOT        where to write the PNG of the review screen (optional)
//   ASSAY_RESULT            where to write the JSON summary (optional; it is printed as the last stdout line too)
//   CHROMIUM                the browser (default /usr/bin/chromium)
//
// What it does: a wrong token is refused in plain words; the annotator logs in, answers classify items with the
// number keys (and one with the mouse), takes one answer back with `u` and answers it again, skips one with `s`;
// answers three pairs with `1`, `2` and `t`; opens the other annotator's assignment (the API says 403 and the
// page says so). With an admin token, the admin screens add an annotator (the token shown once logs in), refuse a
// taken name, create a project from a task file and show the first annotator's progress. Every step is checked in
// the page; any failure exits non-zero with the reason.

import { chromium } from 'playwright-core';
import { writeFileSync } from 'node:fs';
import assert from 'node:assert/strict';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`set ${name} (see the top of tests/browser/review.mjs)`);
  return v;
};
const base = env('ASSAY_URL').replace(/\/$/, '');
const token = env('ASSAY_TOKEN');
const otherToken = env('ASSAY_OTHER_TOKEN');
const classifyName = env('ASSAY_CLASSIFY_PROJECT');
const compareName = env('ASSAY_COMPARE_PROJECT');
const screenshotPath = process.env.ASSAY_SCREENSHOT;
const resultPath = process.env.ASSAY_RESULT;
const adminToken = process.env.ASSAY_ADMIN_TOKEN;
const adminTask = adminToken ? env('ASSAY_ADMIN_TASK') : null;

const step = (text) => console.error(`[review.mjs] ${text}`);

/// The API with a bearer token (no browser): to look up project ids and to act as the other annotator.
async function bearer(tokenValue, path) {
  const r = await fetch(base + path, { headers: { Authorization: `Bearer ${tokenValue}` } });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const result = { answers: [], skipped: [], undone: null, forbidden: null, order: [] };
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') step(`console: ${m.text()}`); });
  // Nothing may come from outside the server: no CDN, no fonts.
  const outside = [];
  page.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith(base) && !url.startsWith('data:')) outside.push(url);
  });

  const projects = (await bearer(token, '/api/projects')).body.projects;
  const project = (name) => {
    const p = projects.find((x) => x.name === name);
    assert.ok(p, `no project ${name} in ${JSON.stringify(projects.map((x) => x.name))}`);
    return p;
  };
  const classify = project(classifyName);
  const compare = project(compareName);

  step('login: a wrong token is refused in plain words');
  await page.goto(`${base}/`);
  await page.waitForSelector('#login');
  await page.fill('#token', 'not-a-real-token');
  await page.press('#token', 'Enter');
  await page.waitForSelector('#login-status .message.error');
  assert.match(await page.textContent('#login-status'), /not valid/);

  step('login with the real token');
  await page.fill('#token', token);
  await page.press('#token', 'Enter');
  await page.waitForSelector('#projects');
  const row = page.locator(`#projects tr[data-project="${classify.id}"]`);
  assert.match(await row.textContent(), new RegExp(classifyName));

  /// The assignment on screen once it is not `previous` (and has drawn), as the page shows it.
  async function current(previous = null) {
    await page.waitForFunction((prev) => {
      const el = document.querySelector('#review');
      return el && el.dataset.assignment !== String(prev) && !document.querySelector('#choices button:disabled');
    }, previous);
    return page.evaluate(() => {
      const el = document.querySelector('#review');
      const conf = document.querySelector('#suggested-confidence');
      return {
        id: Number(el.dataset.assignment),
        status: el.dataset.status,
        kind: el.dataset.kind,
        suggestion: document.querySelector('#suggested-label')?.textContent ?? null,
        confidence: conf ? Number(conf.textContent.replace('%', '')) / 100 : null,
        answered: Number(document.querySelector('#answered-count')?.textContent.match(/\d+/)?.[0] ?? NaN),
        remaining: Number(document.querySelector('#remaining-count')?.textContent.match(/\d+/)?.[0] ?? NaN),
        fields: [...document.querySelectorAll('[data-field]')].map((f) => f.dataset.field),
      };
    });
  }
  async function toast(pattern) {
    await page.waitForFunction((p) => {
      const t = document.querySelector('#toast');
      return t && !t.hidden && new RegExp(p).test(t.textContent);
    }, pattern.source);
  }
  // A person takes a moment to read: the time sent with each answer must cover it.
  const read = () => page.waitForTimeout(250);

  step(`classify project ${classifyName}: answer by keyboard`);
  await page.click(`#projects tr[data-project="${classify.id}"] a`);
  let item = await current();
  assert.equal(item.kind, 'classify');
  assert.deepEqual(item.fields, ['input']);
  const start = { answered: item.answered, remaining: item.remaining };
  const seen = new Set();
  const note = (it) => { if (!seen.has(it.id)) { seen.add(it.id); result.order.push({ id: it.id, confidence: it.confidence }); } };
  note(item);
  const labels = { 1: 'ham', 2: 'spam' };
  for (const [i, key] of ['2', '1', '1'].entries()) {
    if (i === 2 && screenshotPath) {
      // The review screen for docs/review-screen.png: two answers in, the toast of the last one still up.
      await page.screenshot({ path: screenshotPath });
    }
    await read();
    await page.keyboard.press(key);
    await toast(new RegExp(`Saved: ${labels[key]}`));
    result.answers.push({ assignment_id: item.id, value: labels[key], project: classifyName, by: 'key' });
    item = await current(item.id);
    note(item);
  }
  const after3 = item;
  assert.equal(after3.answered, start.answered + 3, 'the progress counts the answers');

  step('undo the last answer with u, then answer it again');
  const last = result.answers.pop();
  await page.keyboard.press('u');
  await toast(/Undone/);
  item = await current(after3.id);
  assert.equal(item.id, last.assignment_id, 'undo brings back the item answered last');
  assert.equal(item.status, 'claimed');
  assert.equal(item.answered, start.answered + 2, 'the undone answer no longer counts');
  result.undone = { assignment_id: last.assignment_id, value: last.value };
  await read();
  await page.keyboard.press('2');
  await toast(/Saved: spam/);
  result.answers.push({ assignment_id: item.id, value: 'spam', project: classifyName, by: 'key' });
  item = await current(item.id);
  assert.equal(item.id, after3.id, 'after the re-answer the queue goes on where it was');

  step('answer one with the mouse, skip one with s');
  await read();
  await page.click('#choices button[data-value="ham"]');
  await toast(/Saved: ham/);
  result.answers.push({ assignment_id: item.id, value: 'ham', project: classifyName, by: 'mouse' });
  item = await current(item.id);
  note(item);
  await read();
  await page.keyboard.press('s');
  await toast(/Skipped/);
  result.skipped.push(item.id);
  item = await current(item.id);
  note(item);
  await read();
  await page.keyboard.press('1');
  await toast(/Saved: ham/);
  result.answers.push({ assignment_id: item.id, value: 'ham', project: classifyName, by: 'key' });
  item = await current(item.id);
  assert.equal(item.answered, start.answered + 5);

  // Lowest machine confidence first (items the machine did not label, or whose suggestion is hidden, have none).
  const shown = result.order.filter((o) => o.confidence !== null).map((o) => o.confidence);
  for (let i = 1; i < shown.length; i++) {
    assert.ok(shown[i] >= shown[i - 1] - 0.005, `queue order by confidence: ${JSON.stringify(shown)}`);
  }

  step(`compare project ${compareName}: 1, 2, t`);
  await page.goto(`${base}/#/review/${compare.id}`);
  item = await current();
  assert.equal(item.kind, 'compare');
  assert.deepEqual(item.fields, ['context', 'response_1', 'response_2']);
  const sides = await page.evaluate(() => {
    const [a, b] = [...document.querySelectorAll('.pair > .panel')].map((el) => el.getBoundingClientRect());
    return { sideBySide: Math.abs(a.top - b.top) < 2 && a.right <= b.left, widths: [a.width, b.width] };
  });
  assert.ok(sides.sideBySide, `responses side by side: ${JSON.stringify(sides)}`);
  const pairValues = { 1: '1', 2: '2', t: 'tie' };
  const pairLabels = { 1: /Saved: .*1/, 2: /Saved: .*2/, t: /Saved: .*[Tt]ie/ };
  for (const key of ['1', '2', 't']) {
    await read();
    await page.keyboard.press(key);
    await toast(pairLabels[key]);
    result.answers.push({ assignment_id: item.id, value: pairValues[key], project: compareName, by: 'key' });
    const before = item.id;
    await page.waitForFunction((prev) => {
      const el = document.querySelector('#review');
      return document.querySelector('#done') || (el && el.dataset.assignment !== String(prev) && !document.querySelector('#choices button:disabled'));
    }, before);
    if (await page.$('#done')) break;
    item = await current(before);
  }
  assert.equal(result.answers.filter((a) => a.project === compareName).length, 3, 'three pairs answered');

  step("another annotator's assignment: 403 from the API, a clear message on the page");
  const claimed = await bearer(otherToken, `/api/projects/${classify.id}/next`);
  assert.equal(claimed.status, 200, `the other annotator claims an item: ${JSON.stringify(claimed)}`);
  const otherId = claimed.body.assignment_id;
  const status = await page.evaluate((id) => fetch(`/api/assignments/${id}`).then((r) => r.status), otherId);
  assert.equal(status, 403);
  await page.goto(`${base}/#/assignment/${otherId}`);
  await page.waitForSelector('.message.error');
  const text = await page.textContent('#app');
  assert.match(text, /belongs to another annotator/);
  assert.match(text, /cannot open or answer it/);
  assert.equal(await page.$('#review'), null, 'no item is shown');
  result.forbidden = { assignment_id: otherId, status };

  // A state-changing request without the CSRF header is refused even with the session cookie.
  const csrf = await page.evaluate((id) => fetch(`/api/assignments/${id}/skip`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}',
  }).then((r) => r.status), otherId);
  assert.equal(csrf, 403, 'POST without X-CSRF-Token');

  if (adminToken) {
    step('admin: add an annotator with skills (token shown once), create a project from a task file, see progress');
    const admin = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    admin.setDefaultTimeout(30_000);
    admin.on('pageerror', (e) => pageErrors.push(String(e)));
    await admin.goto(`${base}/`);
    await admin.fill('#token', adminToken);
    await admin.press('#token', 'Enter');
    await admin.waitForSelector('#projects');
    await admin.click('#nav a[href="#/admin"]');
    await admin.waitForSelector('#add-annotator');
    await admin.fill('#new-name', 'carol');
    await admin.fill('#new-skills', 'medical, legal');
    await admin.click('#add-annotator button[type=submit]');
    const newToken = (await (await admin.waitForSelector('#new-token')).textContent()).trim();
    assert.match(await admin.textContent('#new-annotator-result'), /shown only this once/);
    assert.match(await admin.textContent('#annotators tr[data-annotator="carol"]'), /legal, medical|medical, legal/);
    const login = await fetch(`${base}/api/login`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: newToken }),
    });
    assert.equal(login.status, 200, 'the token the page showed logs carol in');
    assert.equal((await login.json()).annotator.name, 'carol');
    // The name is taken now: said in plain words.
    await admin.fill('#new-name', 'carol');
    await admin.click('#add-annotator button[type=submit]');
    await admin.waitForSelector('#new-annotator-result .message.error');
    assert.match(await admin.textContent('#new-annotator-result'), /taken/);

    await admin.fill('#task-path', adminTask);
    await admin.fill('#project-name', 'created-in-the-browser');
    await admin.click('#create-project button[type=submit]');
    await admin.waitForSelector('#new-project-result .message.ok');
    const created = await admin.textContent('#new-project-result');
    assert.match(created, /created-in-the-browser created/);
    await admin.waitForSelector('#admin-projects tr[data-project] >> text=created-in-the-browser');

    await admin.goto(`${base}/#/admin/project/${classify.id}`);
    await admin.waitForSelector('#project-annotators tr[data-annotator="alice"]');
    const cells = await admin.$$eval('#project-annotators tr[data-annotator="alice"] td', (tds) => tds.map((td) => td.textContent));
    assert.equal(cells[1], '5', `alice's answers on the progress page: ${cells}`);
    assert.equal(cells[2], '1', `alice's skips on the progress page: ${cells}`);
    result.admin = { created_annotator: 'carol', created_project: 'created-in-the-browser', progress: cells };
  }

  assert.deepEqual(pageErrors, [], 'no script errors in the page');
  assert.deepEqual(outside, [], 'no requests outside the server');
  step(`ok: ${result.answers.length} answers`);
} catch (err) {
  if (page) {
    try {
      const text = await page.textContent('body');
      step(`page at failure (${page.url()}):\n${text.replace(/\s+\n/g, '\n').slice(0, 3000)}`);
      if (process.env.ASSAY_FAILURE_SCREENSHOT) await page.screenshot({ path: process.env.ASSAY_FAILURE_SCREENSHOT });
    } catch { /* the page may be gone */ }
  }
  await browser.close();
  console.error(err);
  process.exit(1);
}
await browser.close();
const json = JSON.stringify(result);
if (resultPath) writeFileSync(resultPath, json);
console.log(json);
