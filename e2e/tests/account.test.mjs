// The account pages in a real browser: two-step verification with an authenticator app,
// passkeys through Chromium's virtual authenticator, API keys, the tenant switcher with
// branding, the profile, and the theme.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO_PASSWORD } from '../support/server.mjs';
import { suite } from '../support/suite.mjs';
import { checkPage, newPage, signIn } from '../support/browser.mjs';
import { totp } from '../support/totp.mjs';

const ctx = suite();

async function signOut(page) {
  await page.getByRole('banner').getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
}

test('an authenticator app is enrolled with its QR code, then signs in with a code', async () => {
  const page = await newPage(ctx.browser);
  await signIn(page, ctx.server.base, 'mia@acme.example', DEMO_PASSWORD, '/console/account/security');
  await page.getByRole('heading', { name: 'Two-step verification and passkeys' }).waitFor();
  await checkPage(page, 'account-security');
  await page.getByLabel('Your password, to confirm it is you').first().fill(DEMO_PASSWORD);
  await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
  await page.getByRole('img', { name: /QR code/ }).waitFor();
  const secret = (await page.locator('[data-totp-secret]').innerText()).trim();
  await checkPage(page, 'account-totp-enrol');
  // A wrong first code keeps the same key on the page.
  await page.getByLabel('Code from the app').fill('000000' === totp(secret) ? '111111' : '000000');
  await page.getByRole('button', { name: 'Turn on two-step verification' }).click();
  await page.getByRole('alert').waitFor();
  assert.equal((await page.locator('[data-totp-secret]').innerText()).trim(), secret);
  await page.getByLabel('Code from the app').fill(totp(secret));
  await page.getByRole('button', { name: 'Turn on two-step verification' }).click();
  const codes = page.getByRole('list', { name: 'Recovery codes' }).getByRole('listitem');
  await codes.first().waitFor();
  assert.equal(await codes.count(), 10);
  await checkPage(page, 'account-recovery-codes');

  await signOut(page);
  await signIn(page, ctx.server.base, 'mia@acme.example', DEMO_PASSWORD);
  await page.getByRole('heading', { name: 'Two-step verification' }).waitFor();
  await checkPage(page, 'sign-in-second-step');
  // The enrolment's code is spent; the next one is accepted.
  await page.getByLabel('Code').fill(totp(secret, 1));
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.getByRole('heading', { name: /Welcome/ }).waitFor();
  await page.context().close();
});

test('a passkey is registered in the browser and signs in without a password', async () => {
  const page = await newPage(ctx.browser);
  const devtools = await page.context().newCDPSession(page);
  await devtools.send('WebAuthn.enable');
  const { authenticatorId } = await devtools.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  await signIn(page, ctx.server.base, 'vera@acme.example', DEMO_PASSWORD, '/console/account/security');
  await page.getByLabel('Name (to tell it apart').fill('Test laptop');
  await page.locator('#passkey-password').fill(DEMO_PASSWORD);
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await page.getByText('The passkey is added').waitFor();
  const row = page.getByRole('row').filter({ hasText: 'Test laptop' });
  await row.waitFor();
  await checkPage(page, 'account-passkeys');
  await row.getByLabel('New name for Test laptop').fill('Desk laptop');
  await row.getByRole('button', { name: 'Rename' }).click();
  await page.getByText('The passkey is renamed').waitFor();
  const { credentials } = await devtools.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.equal(credentials[0].isResidentCredential, true, 'discoverable: it signs in without an e-mail address');

  await signOut(page);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await page.getByRole('heading', { name: /Welcome, Vera Viewer/ }).waitFor();
  await page.goto(`${ctx.server.base}/console/account/sessions`);
  assert.equal(await page.getByRole('row').filter({ hasText: 'this browser' }).count(), 1);
  await page.context().close();
});

test('an API key is made for the selected tenant, works once, and stops when revoked', async () => {
  const page = await newPage(ctx.browser);
  await signIn(page, ctx.server.base, 'adam@acme.example', DEMO_PASSWORD, '/console/account/api-keys');
  await page.getByRole('heading', { name: 'API keys' }).waitFor();
  await checkPage(page, 'account-api-keys');
  await page.getByLabel('Name', { exact: true }).fill('Deploy script');
  await page.getByLabel('members:read').check();
  await page.getByRole('button', { name: 'Make the key' }).click();
  const key = (await page.locator('[data-new-key]').innerText()).trim();
  assert.match(key, /^plk_/);
  await checkPage(page, 'account-api-key-made');
  const members = () =>
    fetch(`${ctx.server.base}/api/v1/tenants/acme/members`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal((await members()).status, 200);
  // The key was given members:read only.
  const refused = await fetch(`${ctx.server.base}/api/v1/tenants/acme/workspaces`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ slug: 'nope', name: 'Nope' }),
  });
  assert.equal(refused.status, 403);

  page.once('dialog', (dialog) => dialog.accept());
  await page.getByRole('button', { name: 'Revoke Deploy script' }).click();
  await page.getByText('The key is revoked').waitFor();
  assert.equal((await members()).status, 401);
  await page.context().close();
});

test('the tenant switcher changes the tenant, its branding, and what keys can get', async () => {
  const page = await newPage(ctx.browser);
  await signIn(page, ctx.server.base, 'casey@consulting.example', DEMO_PASSWORD, '/console/account/tenants');
  await page.getByRole('heading', { name: 'Your tenants' }).waitFor();
  assert.equal(await page.getByRole('banner').getByRole('link').first().innerText(), 'Plinth');
  await checkPage(page, 'account-tenants');
  await page.getByRole('button', { name: 'Work here in Acme Corporation' }).click();
  await page.getByText('Working here').waitFor();
  const banner = page.getByRole('banner');
  assert.equal(await banner.getByRole('link').first().innerText(), 'Acme Corporation');
  const brand = await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--brand').trim());
  assert.equal(brand, '#c2410c');

  // The switcher in the header works with the script: choosing submits.
  await page.goto(`${ctx.server.base}/console/account/api-keys`);
  assert.ok(await page.getByLabel('members:invite').count(), 'an admin of acme may grant members:invite');
  await banner.getByLabel('Tenant').selectOption('globex');
  await page.waitForURL(`${ctx.server.base}/console/account/api-keys`);
  await page.getByText('For Globex').waitFor();
  assert.equal(await page.getByLabel('members:invite').count(), 0, 'a member of globex may not');
  assert.equal(await banner.getByRole('link').first().innerText(), 'Globex');
  await checkPage(page, 'account-api-keys-globex');
  await page.context().close();
});

test('the profile and password forms save, and the dark theme is kept per browser', async () => {
  const page = await newPage(ctx.browser);
  await signIn(page, ctx.server.base, 'victor@acme.example', DEMO_PASSWORD, '/console/account/profile');
  await page.getByLabel('Display name').fill('Victor V.');
  await page.getByRole('button', { name: 'Save name' }).click();
  await page.getByText('Your name is saved.').waitFor();
  assert.equal(await page.getByRole('banner').getByText('Victor V.').count(), 1);
  await page.getByLabel('Current password').fill('wrong password here');
  await page.getByLabel('New password', { exact: false }).first().fill('a new long passphrase');
  await page.getByLabel('New password, again').fill('a new long passphrase');
  await page.getByRole('button', { name: 'Change password' }).click();
  assert.match(await page.getByRole('alert').innerText(), /The current password is not correct\./);
  await checkPage(page, 'account-profile-refused');
  await page.getByLabel('Current password').fill(DEMO_PASSWORD);
  await page.locator('#new_password').fill('a new long passphrase');
  await page.getByLabel('New password, again').fill('a new long passphrase');
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('Your password is changed.').waitFor();

  await page.getByRole('banner').getByLabel('Theme').selectOption('dark');
  await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
  await page.reload();
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
  await checkPage(page, 'account-profile-dark');
  await signOut(page);
  await signIn(page, ctx.server.base, 'victor@acme.example', 'a new long passphrase');
  await page.getByRole('heading', { name: /Welcome, Victor V./ }).waitFor();
  await page.context().close();
});
