// Server render time of the console pages, against the bare `/healthz` of the same server
// in the same run: sequential requests with a signed-in cookie, p50 and p99 per page.
// Usage: PLINTH_BIN=target/release/plinth node bench/render.mjs   (RENDER_ROUNDS=300)
import { performance } from 'node:perf_hooks';
import { DEMO_PASSWORD, startServer } from '../support/server.mjs';

const ROUNDS = Number(process.env.RENDER_ROUNDS ?? 300);
const PAGES = [
  '/console/sign-in',
  '/console',
  '/console/account/profile',
  '/console/account/security',
  '/console/account/sessions',
  '/console/account/api-keys',
  '/console/account/tenants',
  '/console/t/acme/members',
  '/console/t/acme/members?role=viewer&sort=-email',
];

const cookieOf = (response) =>
  response.headers.getSetCookie().map((c) => c.split(';')[0]).filter((c) => !c.endsWith('=')).join('; ');

async function signIn(base) {
  const form = await fetch(`${base}/console/sign-in`);
  const pre = cookieOf(form);
  const csrf = /name="csrf_token" value="([^"]+)"/.exec(await form.text())[1];
  const answer = await fetch(`${base}/console/sign-in`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: pre, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf_token: csrf, email: 'olivia@acme.example', password: DEMO_PASSWORD, next: '/console' }),
  });
  if (answer.status !== 303) throw new Error(`sign-in answered ${answer.status}`);
  return cookieOf(answer);
}

async function time(url, cookie) {
  const samples = [];
  let bytes = 0;
  for (let i = 0; i < ROUNDS + 20; i++) {
    const started = performance.now();
    const response = await fetch(url, { redirect: 'manual', headers: { cookie, 'accept-encoding': 'gzip' } });
    const body = await response.arrayBuffer();
    const took = performance.now() - started;
    if (response.status !== 200) throw new Error(`${url} answered ${response.status}`);
    // The first 20 warm the connection and the caches.
    if (i >= 20) samples.push(took);
    bytes = body.byteLength;
  }
  samples.sort((a, b) => a - b);
  const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
  return { p50: at(0.5), p99: at(0.99), bytes };
}

const server = await startServer();
try {
  const cookie = await signIn(server.base);
  const base = await time(`${server.base}/healthz`, '');
  console.log(`${ROUNDS} sequential requests per page; baseline GET /healthz p50 ${base.p50.toFixed(2)} ms, p99 ${base.p99.toFixed(2)} ms`);
  console.log('page | p50 ms | p99 ms | p50 over /healthz | HTML bytes');
  for (const path of PAGES) {
    // The sign-in page is for visitors; a signed-in browser is sent on.
    const result = await time(`${server.base}${path}`, path === '/console/sign-in' ? '' : cookie);
    console.log(`${path} | ${result.p50.toFixed(2)} | ${result.p99.toFixed(2)} | ${(result.p50 / base.p50).toFixed(1)}× | ${result.bytes}`);
  }
} finally {
  await server.stop();
}
