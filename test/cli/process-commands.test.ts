import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from '../api/api-harness.js';
import {
  ADMIN_TOKEN,
  openTestDatabase,
  postgresAvailable,
  runCli,
  runtimeEnv,
  startCli,
  type TestDatabase,
} from './cli-harness.js';

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
    expect(
      await runCli(['stage', 'show', '--json'], { DUALWRITE_URL: url, DUALWRITE_ADMIN_TOKEN: ADMIN_TOKEN }),
    ).toMatchObject({ code: 0, stdout: expect.stringContaining('"inForce": "dual-write"') });

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
    expect(JSON.parse(demo.stdout)).toMatchObject({
      equal: true,
      consistentAfterBackfill: true,
      keptAfterRollback: true,
      consistentAtEnd: true,
      refusedAdvance: expect.stringMatching(
        /^refusing to advance from dual-write to read-shift 10%: shadow-mismatches: \d+ of 100 shadow comparisons needed; .*postgres-errors: \d+ of 100 PostgreSQL calls needed/,
      ),
    });
  }, 60_000);

  it('demo --serve keeps the example API and its status page up with the walked runtime until Ctrl-C, printing their URLs', async () => {
    const { env } = await database();
    const demo = startCli(['demo', '--projects', '10', '--serve', '--port', '0'], env);
    cleanups.push(async () => void demo.child.kill('SIGKILL'));
    const statusLine = await demo.stderrLine(/^status page: /);
    const [, url, statusToken] = /^status page: +(http:\/\/127\.0\.0\.1:\d+)\/status\?token=(\w+)$/.exec(statusLine)!;
    const adminToken = /DUALWRITE_ADMIN_TOKEN=(\w+)/.exec(await demo.stderrLine(/^admin token: /))![1]!;
    expect((await request(url!, 'GET', '/status/data', { token: statusToken })).body).toMatchObject({
      status: { stage: { inForce: 'dual-write' } },
    });
    expect(await runCli(['audit', '--json'], { DUALWRITE_URL: url, DUALWRITE_ADMIN_TOKEN: adminToken })).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('evidence for read-shift'),
    });

    demo.child.kill('SIGINT');
    const stopped = await demo.result;
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain('migration walked forward and back with both sides equal');
  }, 60_000);
});
