// A real `plinth serve` for one test file: its own data directory, seeded with `plinth
// demo`, on a free port, reached as `localhost` (browsers refuse WebAuthn on addresses).
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { promisify } from 'node:util';

const root = path.resolve(import.meta.dirname, '..', '..');

/** The binary under test: `cargo build` (or `cargo test`) leaves it here. */
export const BIN = path.resolve(process.env.PLINTH_BIN ?? path.join(root, 'target', 'debug', 'plinth'));

/** Every demo account signs in with this password (`plinth demo`). */
export const DEMO_PASSWORD = 'plinth demo password';

/** Starts a seeded server; `env` adds settings (PLINTH_…). */
export async function startServer(env = {}) {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'plinth-e2e-'));
  const environment = { PATH: process.env.PATH, PLINTH_DATA_DIR: dataDir, PLINTH_LOG: 'warn', ...env };
  await promisify(execFile)(BIN, ['demo'], { env: environment, cwd: dataDir });
  const child = spawn(BIN, ['serve', '--bind', '127.0.0.1:0'], {
    env: environment,
    cwd: dataDir,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout });
  const first = await Promise.race([
    once(lines, 'line').then(([line]) => line),
    once(child, 'exit').then(([code]) => Promise.reject(new Error(`plinth serve exited with ${code}`))),
    new Promise((_, reject) => setTimeout(() => reject(new Error('plinth serve printed nothing in 60 s')), 60_000).unref()),
  ]);
  // Drain the rest so the server never writes into a full pipe.
  lines.on('line', () => {});
  const port = /^Plinth listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(first)?.[1];
  if (!port) throw new Error(`unexpected first line: ${first}`);
  return {
    base: `http://localhost:${port}`,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
