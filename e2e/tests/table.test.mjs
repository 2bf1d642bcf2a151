// The server-driven table on the tenant's members: navigation by role, search, filters,
// sorting, column choice, saved views, presets, CSV export, and the error state; and a
// tenant the user is not in stays closed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO_PASSWORD } from '../support/server.mjs';
import { suite } from '../support/suite.mjs';
import { SCREENSHOTS, checkPage, newPage, signIn } from '../support/browser.mjs';
import { totp } from '../support/totp.mjs';

const ctx = suite();

const emails = async (page) => page.locator('tbody tr td:nth-child(2)').allInnerTexts();

test('members are searched, filtered, sorted, chosen by column, saved as a view and exported', async () => {
  const page = await newPage(ctx.browser);
  await signIn(page, ctx.server.base, 'olivia@acme.example', DEMO_PASSWORD);
  const nav = page.getByRole('navigation', { name: 'Console' });
  await nav.getByRole('link', { name: 'Members' }).click();
  await page.getByRole('heading', { name: 'Members of Acme Corporation' }).waitFor();
  assert.equal(await page.locator('tbody tr').count(), 7);
  assert.deepEqual(await emails(page), [...(await emails(page))].sort(), 'by e-mail address');
  await checkPage(page, 'tenant-members');

  await page.getByLabel('Role', { exact: true }).selectOption('viewer');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/role=viewer/);
  assert.deepEqual(await emails(page), ['vera@acme.example', 'victor@acme.example']);

  // The sorted column turns around.
  await page.getByRole('columnheader', { name: /E-mail/ }).getByRole('link').click();
  await page.waitForURL(/sort=-email/);
  assert.deepEqual(await emails(page), ['victor@acme.example', 'vera@acme.example']);
  assert.equal(await page.getByRole('columnheader', { name: /E-mail/ }).getAttribute('aria-sort'), 'descending');

  await page.getByText('Columns', { exact: true }).click();
  await page.getByRole('checkbox', { name: 'Joined' }).uncheck();
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/cols=/);
  assert.equal(await page.getByRole('columnheader', { name: 'Joined' }).count(), 0);

  await page.getByLabel('Save this view as').fill('Viewers, newest mail');
  await page.getByRole('button', { name: 'Save view' }).click();
  const views = page.getByRole('navigation', { name: 'Views' });
  await views.getByRole('link', { name: 'Viewers, newest mail' }).waitFor();
  assert.equal(await views.getByRole('link', { name: 'Viewers, newest mail' }).getAttribute('aria-current'), 'true');
  await checkPage(page, 'tenant-members-saved-view');

  // The view follows the user: a new browser finds it on the server.
  const other = await newPage(ctx.browser);
  await signIn(other, ctx.server.base, 'olivia@acme.example', DEMO_PASSWORD, '/console/t/acme/members');
  await other.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: 'Viewers, newest mail' }).click();
  await other.waitForURL(/sort=-email/);
  assert.deepEqual(await emails(other), ['victor@acme.example', 'vera@acme.example']);
  await other.context().close();

  const csvHref = await page.getByRole('link', { name: 'Export this view as CSV' }).getAttribute('href');
  const csv = await (await page.request.get(`${ctx.server.base}${csvHref}`)).text();
  assert.equal(csv, 'Name,E-mail,Roles,Status\r\nVictor Viewer,victor@acme.example,viewer,active\r\nVera Viewer,vera@acme.example,viewer,active\r\n');

  await page.getByRole('button', { name: /Delete view/ }).click();
  await page.waitForLoadState();
  assert.equal(await page.getByRole('link', { name: 'Viewers, newest mail' }).count(), 0);

  await page.getByRole('searchbox', { name: 'Search' }).fill('max');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/q=max/);
  assert.deepEqual(await emails(page), ['max@acme.example']);
  await page.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: 'Administrators' }).click();
  await page.waitForURL(/role=admin/);
  assert.deepEqual(await emails(page), ['adam@acme.example', 'casey@consulting.example']);

  await page.goto(`${ctx.server.base}/console/t/acme/members?q=nobody-here`);
  await page.getByText('Nothing matches these filters.').waitFor();
  await checkPage(page, 'tenant-members-empty');
  await page.goto(`${ctx.server.base}/console/t/acme/members?cursor=not-a-cursor`);
  await page.getByRole('alert').getByText('This list could not be read').waitFor();
  await page.context().close();
});

test('a tenant the user is not in, and a permission the user lacks, stay closed', async () => {
  const page = await newPage(ctx.browser);
  await signIn(page, ctx.server.base, 'olivia@acme.example', DEMO_PASSWORD);
  const answer = await page.goto(`${ctx.server.base}/console/t/initech/members`);
  assert.equal(answer.status(), 404);
  assert.equal(await page.getByText('initech.example').count(), 0);
  await checkPage(page, 'not-found');
  await page.context().close();

  // A custom role without members:read: the navigation leaves the page out, and the
  // address typed by hand is refused.
  const api = async (method, path, body) => {
    const response = await fetch(`${ctx.server.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body && JSON.stringify(body),
    });
    assert.ok(response.ok, `${method} ${path} answered ${response.status}: ${await response.clone().text()}`);
    return response.json();
  };
  const login = await fetch(`${ctx.server.base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'olivia@acme.example', password: DEMO_PASSWORD }),
  });
  const token = (await login.json()).access_token;
  await api('POST', '/api/v1/tenants/acme/roles', { key: 'greeter', name: 'Greeter', permissions: ['tenant:read'] });
  const [max] = (await api('GET', '/api/v1/tenants/acme/members?q=max')).items;
  await api('PATCH', `/api/v1/tenants/acme/members/${max.user_id}`, { roles: ['greeter'] });

  const greeter = await newPage(ctx.browser);
  await signIn(greeter, ctx.server.base, 'max@acme.example', DEMO_PASSWORD);
  await greeter.getByRole('heading', { name: /Welcome/ }).waitFor();
  const nav = greeter.getByRole('navigation', { name: 'Console' });
  assert.equal(await nav.getByRole('link', { name: 'Members' }).count(), 0);
  assert.equal(await nav.getByRole('link', { name: 'API keys' }).count(), 1);
  const refused = await greeter.goto(`${ctx.server.base}/console/t/acme/members`);
  assert.equal(refused.status(), 403);
  assert.equal(await greeter.getByText('victor@acme.example').count(), 0);
  await greeter.context().close();
});

test('platform administrators get the platform section once signed in with a second factor', async () => {
  const page = await newPage(ctx.browser);
  await signIn(page, ctx.server.base, 'operator@plinth.example', DEMO_PASSWORD);
  await page.getByRole('status').getByText('must enrol two-step verification').waitFor();
  const platform = page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Tenants' }).last();
  await platform.click();
  assert.equal(new URL(page.url()).pathname, '/console/platform/tenants');
  await page.getByText('must enrol two-step verification').waitFor();

  await page.goto(`${ctx.server.base}/console/account/security`);
  await page.getByLabel('Your password, to confirm it is you').first().fill(DEMO_PASSWORD);
  await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
  const secret = (await page.locator('[data-totp-secret]').innerText()).trim();
  await page.getByLabel('Code from the app').fill(totp(secret));
  await page.getByRole('button', { name: 'Turn on two-step verification' }).click();
  await page.getByRole('list', { name: 'Recovery codes' }).waitFor();
  await page.getByRole('banner').getByRole('button', { name: 'Sign out' }).click();
  await signIn(page, ctx.server.base, 'operator@plinth.example', DEMO_PASSWORD, '/console/platform/tenants');
  await page.getByLabel('Code').fill(totp(secret, 1));
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.getByRole('heading', { name: 'Tenants' }).waitFor();
  const slugs = () => page.locator('tbody tr td:nth-child(2)').allInnerTexts();
  assert.deepEqual(await slugs(), ['initech', 'globex', 'acme'], 'newest first');
  await checkPage(page, 'platform-tenants');
  await page.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: 'On trial' }).click();
  await page.waitForURL(/status=trial/);
  assert.deepEqual(await slugs(), ['globex']);
  const csvHref = await page.getByRole('link', { name: 'Export this view as CSV' }).getAttribute('href');
  const csv = await (await page.request.get(`${ctx.server.base}${csvHref}`)).text();
  assert.match(csv, /^Name,Slug,Status,Trial ends,Created\r\nGlobex,globex,trial,\d{4}-/);
  await page.context().close();

  const owner = await newPage(ctx.browser);
  await signIn(owner, ctx.server.base, 'olivia@acme.example', DEMO_PASSWORD);
  await owner.getByRole('heading', { name: /Welcome/ }).waitFor();
  assert.equal(await owner.getByRole('navigation', { name: 'Console' }).getByText('Platform').count(), 0);
  const refused = await owner.goto(`${ctx.server.base}/console/platform/tenants`);
  assert.equal(refused.status(), 403);
  await owner.context().close();
});

test('without JavaScript the forms and the table still work', async () => {
  const page = await newPage(ctx.browser, { javaScriptEnabled: false });
  await signIn(page, ctx.server.base, 'casey@consulting.example', DEMO_PASSWORD);
  await page.getByRole('heading', { name: /Welcome, Casey/ }).waitFor();
  // The chooser's own button does what the script does on change.
  const banner = page.getByRole('banner');
  await banner.getByLabel('Tenant').selectOption('acme');
  await banner.getByRole('button', { name: 'Switch' }).click();
  await page.waitForLoadState();
  assert.equal(await banner.getByRole('link').first().innerText(), 'Acme Corporation');
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Members' }).click();
  await page.getByLabel('Role', { exact: true }).selectOption('owner');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/role=owner/);
  assert.deepEqual(await emails(page), ['olivia@acme.example']);
  await page.getByRole('columnheader', { name: /E-mail/ }).getByRole('link').click();
  await page.waitForURL(/sort=-email/);
  await page.getByLabel('Save this view as').fill('Owners');
  await page.getByRole('button', { name: 'Save view' }).click();
  await page.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: 'Owners' }).waitFor();
  // The page's own checks need a script in the page; with it, this page passed them above.
  await page.screenshot({ path: `${SCREENSHOTS}/tenant-members-no-script.png`, fullPage: true });
  await page.context().close();
});
