// Debian's Chromium driven by playwright-core, and what every page must pass: axe-core
// with no serious or critical violation in the light and the dark theme, and a
// screenshot kept for people to look at.
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.PLINTH_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOTS = path.resolve(import.meta.dirname, '..', 'screenshots');

const axeSource = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export async function launch() {
  // Root in a container has no user namespaces for Chromium's sandbox.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

/** A new browser profile (its own cookies) with a page in it. */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, ...options });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    // A refused page (a 401 after a wrong password) is logged too; the document's own
    // status is the test's business, a failing stylesheet or script is not.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      errors.push(message.text());
    }
  });
  page.on('response', (response) => {
    if (response.status() >= 400 && response.request().resourceType() !== 'document' && response.request().resourceType() !== 'fetch') {
      errors.push(`${response.status()} for ${response.url()}`);
    }
  });
  page.scriptErrors = errors;
  return page;
}

async function violations(page) {
  // Evaluated through the DevTools protocol, so the page's CSP (script-src 'self') is
  // not loosened for the check.
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    await page.evaluate(axeSource);
  }
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** A page's weight as a first visit would download it: the document and every
 *  sub-resource, compressed as sent (`encodedBodySize` counts cached ones too) and as read. */
async function weight(page) {
  return page.evaluate(() => {
    const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
    return {
      sent: entries.reduce((sum, e) => sum + e.encodedBodySize, 0),
      read: entries.reduce((sum, e) => sum + e.decodedBodySize, 0),
      requests: entries.length,
    };
  });
}

/** A phone's screen, in CSS pixels. */
const PHONE = { width: 390, height: 844 };

/** The most a console page may weigh (the budget). */
const PAGE_BUDGET = 100 * 1024;

/** The checks every page gets: accessibility in both themes, its weight within budget
 *  (recorded in `screenshots/weights.tsv`), nothing off the side of a phone's screen, no
 *  script error, and screenshots (light, dark, phone). */
export async function checkPage(page, name) {
  await mkdir(SCREENSHOTS, { recursive: true });
  const { sent, read, requests } = await weight(page);
  assert.ok(read < PAGE_BUDGET, `${name} weighs ${read} bytes uncompressed, over the ${PAGE_BUDGET}-byte budget`);
  await appendFile(path.join(SCREENSHOTS, 'weights.tsv'), `${name}\t${requests}\t${sent}\t${read}\n`);
  for (const colorScheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme });
    assert.deepEqual(await violations(page), [], `${name} (${colorScheme}) has accessibility violations`);
    await page.screenshot({ path: path.join(SCREENSHOTS, `${name}-${colorScheme}.png`), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: null });
  // At a phone's width nothing may run off the side (wide tables scroll inside their box).
  const wide = page.viewportSize();
  await page.setViewportSize(PHONE);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${name} runs ${overflow} px off a phone's screen`);
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(wide);
  assert.deepEqual(page.scriptErrors, [], `${name} logged script errors`);
}

/** Signs in through the console's form; lands on `next` (the overview by default). */
export async function signIn(page, base, email, password, next = '/console') {
  await page.goto(`${base}${next}`);
  await page.getByLabel('E-mail address').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}
