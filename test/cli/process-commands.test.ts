import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from '../api/api-harness.js';
import { ADMIN_TOKEN, openTestDatabase, postgresAvailable, runCli, runtimeEnv, startCli, type TestDatabase } from './cli-harness.js';

/** `dualwrite serve` and `dualwrite demo` as child processes on real PostgreSQL, each in a schema of its own. */
describe.skipIf(!postgresAvailable())('dualwrite serve and demo', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  const database = async (): Promise<TestDatabase> => {
    const opened = await openTestDatabase();
    cleanups.push(() => opened.drop());
    return opened;
  };
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('serve runs the example API until SIGTERM, then exits 0; the CLI talks to it', async () => {
    const { env } = await database();
    const dir = await mkdtemp(join(tmpdir(), 'dw-cli-serve-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const server = startCli(['serve', '--port', '0'], { ...env, ...runtimeEnv(dir) });
    cleanups.push(async () => void server.child.kill('SIGKILL'));
    const url = await new Promise<string>((resolve) => {
      server.child.stdout!.on('data', (chunk: Buffer) => {
        const found = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(chunk.toString())?.[1];
        if (found) resolve(found);
      });
    });
    expect((await request(url, 'GET', '/readyz')).body).toMatchObject({ status: 'ready', stage: 'dual-write' });
    expect(await runCli(['stage', 'show', '--json'], { DUALWRITE_URL: url, DUALWRITE_ADMIN_TOKEN: ADMIN_TOKEN })).toMatchObject({ code: 0, stdout: expect.stringContaining('"inForce": "dual-write"') });

    server.child.kill('SIGTERM');
    const stopped = await server.result;
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain('SIGTERM: shutting down');
    expect(stopped.stdout).not.toContain(ADMIN_TOKEN);
  }, 60_000);

  it('demo walks the sample workload through the stages and back with both sides equal (--json)', async () => {
    const { env } = await database();
    const demo = await runCli(['demo', '--projects', '10', '--json'], env);
    expect(demo.code, demo.stderr).toBe(0);
    expect(JSON.parse(demo.stdout)).toMatchObject({ equal: true, consistentAfterBackfill: true, keptAfterRollback: true, consistentAtEnd: true });
  }, 60_000);
});
