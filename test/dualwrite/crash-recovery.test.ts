import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMigrations, migrate } from '../../src/postgres/migrations.js';
import { PgPoolExecutor } from '../../src/postgres/pg-pool-executor.js';
import { poolOptionsFromEnv } from '../../src/runtime/config.js';
import { availableBackends, openPostgresSchema } from '../support/backends.js';
import { lostWrites, reopenAfterCrash, writeUntilKilled } from '../support/crash-run.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

/**
 * An async-mirrored process killed with SIGKILL mid-run, with PostgreSQL healthy or cut
 * off at the time (through a TCP proxy; the shared server is never touched): once a new
 * process has started on the same folder and replayed, PostgreSQL holds every write the
 * killed one acknowledged.
 */

const WRITES = 4000;

// runIf rather than a loop over the backends: without PostgreSQL the file still has a (skipped) suite, which vitest requires.
describe.runIf(availableBackends(['postgres']).length > 0)('SIGKILL of an async-mirrored process (postgres)', () => {
  for (const outage of [false, true]) {
    it(`loses no acknowledged write${outage ? ' while PostgreSQL is unreachable' : ''}`, async () => {
      const schema = await openPostgresSchema('dw_crash');
      const dir = await mkdtemp(join(tmpdir(), 'dw-crash-'));
      const url = new URL(process.env.DATABASE_URL!);
      const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
      try {
        await migrate(schema.db, await loadMigrations());
        url.hostname = '127.0.0.1';
        url.port = String(proxy.port);
        const acked = await writeUntilKilled({
          url: url.toString(),
          schema: schema.schema,
          dir,
          writes: WRITES,
          cut: outage ? proxy : undefined,
        });
        proxy.restore();

        const db = new PgPoolExecutor({
          ...poolOptionsFromEnv(),
          schema: schema.schema,
          poolSize: 2,
          maxOverflow: 0,
          minSize: 0,
        });
        const { rt, outbox } = await reopenAfterCrash(db, dir);
        try {
          await rt.replayer.stop();
          expect(await rt.replayer.drainFor('postgres')).toBeUndefined();
          expect(await lostWrites(db, acked)).toEqual([]);
          expect(acked.size).toBeGreaterThanOrEqual(WRITES / 2);
        } finally {
          await rt.close();
          await outbox.close();
          await db.close();
        }
      } finally {
        await proxy.close();
        await schema.drop();
        await rm(dir, { recursive: true, force: true });
      }
    }, 120_000);
  }
});
