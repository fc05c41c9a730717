import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from './api-harness.js';

const TOKEN = 'serve-test-admin-token-b41c';

/** src/api/serve-main.ts in a child process, with its stdout lines and exit. */
function startServer(env: NodeJS.ProcessEnv) {
  const { DATABASE_URL: _database, REDIS_URL: _redis, UNLEASH_URL: _unleash, ...inherited } = process.env;
  // Embedded PGlite, no Redis, no Unleash; the runtime's files in the test's folder.
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/api/serve-main.ts'], { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      const url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1];
      if (url) resolve(url);
    });
    void exited.then((code) => reject(new Error(`the server exited with ${code} before listening: ${stderr}`)));
  });
  // Handled here too, for tests that expect the server to fail and never wait for it to listen.
  listening.catch(() => {});
  return { child, lines, exited, listening, stderr: () => stderr };
}

describe('serve-main', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('serves the API over a dual-write runtime and exits 0 on SIGTERM after closing it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dw-serve-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const server = startServer({
      PORT: '0',
      DUALWRITE_ADMIN_TOKEN: TOKEN,
      DUAL_WRITE_MODE: 'dual-write',
      DUALWRITE_OUTBOX_PATH: join(dir, 'outbox.jsonl'),
      DUALWRITE_FLAGS_FILE: join(dir, 'flags.json'),
      DUALWRITE_LAST_FLAGS_PATH: join(dir, 'last-flags.json'),
      DUALWRITE_VERIFY_INTERVAL_MS: '0',
    });
    cleanups.push(async () => void server.child.kill('SIGKILL'));
    const url = await server.listening;

    expect((await request(url, 'GET', '/healthz')).status).toBe(200);
    expect((await request(url, 'GET', '/readyz')).body).toMatchObject({ status: 'ready', stage: 'dual-write' });
    expect((await request(url, 'PUT', '/projects/npm/react', { body: { description: 'UI' } })).status).toBe(200);
    expect((await request(url, 'GET', '/admin/status', { token: TOKEN })).body).toMatchObject({ stage: { inForce: 'dual-write' }, outbox: { depth: 0 } });
    expect((await request(url, 'POST', '/admin/verify', { token: TOKEN })).body).toMatchObject({ consistent: true });

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.lines.some((line) => line.includes('SIGTERM: shutting down'))).toBe(true);
    expect(server.lines.filter((line) => line.includes(TOKEN))).toEqual([]);
  }, 60_000);

  it('exits 1 naming the variable when PORT is invalid', async () => {
    const server = startServer({ PORT: 'eighty' });
    expect(await server.exited).toBe(1);
    expect(server.stderr()).toContain('PORT must be an integer from 0 to 65535, got "eighty"');
  }, 30_000);
});
