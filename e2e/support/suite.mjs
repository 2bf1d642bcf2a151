// What every test file shares: one seeded server and one browser, for all its tests.
import { after, before } from 'node:test';
import { startServer } from './server.mjs';
import { launch } from './browser.mjs';

/** Starts the server and the browser before the file's tests, and stops them after. */
export function suite(env = {}) {
  const context = { server: null, browser: null };
  before(async () => {
    context.server = await startServer(env);
    context.browser = await launch();
  });
  after(async () => {
    await context.browser?.close();
    await context.server?.stop();
  });
  return context;
}
