// Signing in and out of the console, the messages a wrong password and a locked account
// get, and ending a session from another browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO_PASSWORD } from '../support/server.mjs';
import { suite } from '../support/suite.mjs';
import { checkPage, newPage, signIn } from '../support/browser.mjs';

const ctx = suite();

test('signing in leads to the page asked for, and signing out ends the session', async () => {
  const page = await newPage(ctx.browser);
  await page.goto(`${ctx.server.base}/console/account/sessions`);
  assert.match(new URL(page.url()).pathname, /^\/console\/sign-in$/);
  await checkPage(page, 'sign-in');
  await signIn(page, ctx.server.base, 'olivia@acme.example', DEMO_PASSWORD, '/console/account/sessions');
  await page.getByRole('heading', { name: 'Your sessions' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/console/account/sessions');
  await checkPage(page, 'account-sessions');

  await page.getByRole('button', { name: 'Sign out' }).first().click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.goto(`${ctx.server.base}/console`);
  assert.equal(new URL(page.url()).pathname, '/console/sign-in', 'the cookie no longer signs in');
  await page.context().close();
});

test('a wrong password and a locked account are told clearly, without saying which', async () => {
  const page = await newPage(ctx.browser);
  await page.goto(`${ctx.server.base}/console`);
  for (let attempt = 0; attempt < 5; attempt++) {
    await signIn(page, ctx.server.base, 'max@acme.example', 'not the password', '/console');
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /e-mail address or the password is not right/);
  }
  await checkPage(page, 'sign-in-wrong-password');
  // Locked now: the right password is refused with the same words and the lockout rule.
  await signIn(page, ctx.server.base, 'max@acme.example', DEMO_PASSWORD, '/console');
  const alert = await page.getByRole('alert').innerText();
  assert.match(alert, /not right/);
  assert.match(alert, /After 5 failed attempts in a row the account is locked/);
  assert.equal(new URL(page.url()).pathname, '/console/sign-in');
  await page.context().close();
});

test('a session ended from another browser signs that browser out', async () => {
  const laptop = await newPage(ctx.browser);
  const phone = await newPage(ctx.browser, { viewport: { width: 390, height: 844 }, userAgent: 'Plinth test phone' });
  await signIn(phone, ctx.server.base, 'adam@acme.example', DEMO_PASSWORD);
  await phone.getByRole('heading', { name: /Welcome/ }).waitFor();
  await checkPage(phone, 'overview-phone');
  await signIn(laptop, ctx.server.base, 'adam@acme.example', DEMO_PASSWORD, '/console/account/sessions');
  const row = laptop.getByRole('row').filter({ hasText: 'Plinth test phone' });
  await row.getByRole('button', { name: 'End session' }).click();
  await laptop.getByRole('heading', { name: 'Your sessions' }).waitFor();
  assert.equal(await laptop.getByRole('row').filter({ hasText: 'Plinth test phone' }).count(), 0);

  await phone.reload();
  assert.equal(new URL(phone.url()).pathname, '/console/sign-in');
  await laptop.context().close();
  await phone.context().close();
});

test('the keyboard reaches everything in order, starting with a skip link, with a visible focus', async () => {
  const page = await newPage(ctx.browser);
  await signIn(page, ctx.server.base, 'mia@acme.example', DEMO_PASSWORD, '/console/account/profile');
  await page.getByRole('heading', { name: 'Profile and password' }).waitFor();
  await page.keyboard.press('Tab');
  const skip = page.getByRole('link', { name: 'Skip to content' });
  assert.equal(await skip.evaluate((element) => element === document.activeElement), true);
  assert.notEqual(await skip.evaluate((element) => getComputedStyle(element).outlineStyle), 'none', 'the focus shows');
  // The order follows the page: banner controls, then the navigation, then the content.
  const order = [];
  for (let i = 0; i < 14; i++) {
    await page.keyboard.press('Tab');
    order.push(await page.evaluate(() => {
      const element = document.activeElement;
      const region = element.closest('header') ? 'banner' : element.closest('nav') ? 'nav' : element.closest('main') ? 'main' : 'other';
      return region;
    }));
  }
  const firstNav = order.indexOf('nav');
  const firstMain = order.indexOf('main');
  assert.ok(order.indexOf('banner') < firstNav && firstNav < firstMain, order.join(' → '));
  assert.ok(!order.slice(firstMain).includes('banner') && !order.slice(firstMain).includes('nav'), order.join(' → '));
  await page.context().close();
});
