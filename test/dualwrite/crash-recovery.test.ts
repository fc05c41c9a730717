import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { FlagState } from '../../flags/flag-state.js';
import { ManualFlagSource } from '../../flags/manual-flags.js';
import { FileOutbox } from '../../src/dualwrite/file-outbox.js';
import { openDualWrite } from '../../src/dualwrite/runtime.js';
import { loadMigrations, migrate } from '../../src/postgres/migrations.js';
import { PgPoolExecutor } from '../../src/postgres/pg-pool-executor.js';
import { poolOptionsFromEnv } from '../../src/postgres/pool-config.js';
import { availableBackends, openPostgresSchema } from '../support/backends.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

/**
 * An async-mirrored process killed with SIGKILL mid-run, with PostgreSQL healthy or cut
 * off at the time (through a TCP proxy; the shared server is never touched): once a new
 * process has started on the same folder and replayed, PostgreSQL holds every write the
 * killed one acknowledged.
 */

const WRITES = 4000;

for (const factory of availableBackends(['postgres'])) {
  describe(`SIGKILL of an async-mirrored process (${factory.name})`, () => {
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
          const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/crash-child.ts'], {
            env: { ...process.env, DATABASE_URL: url.toString(), CRASH_SCHEMA: schema.schema, CRASH_DIR: dir, CRASH_WRITES: String(WRITES) },
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          const acked = new Set<number>();
          const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
          // Cut PostgreSQL off after a quarter of the writes (when asked), kill the process at half.
          await new Promise<void>((resolve, reject) => {
            child.on('exit', () => reject(new Error(`the child exited before it was killed, after ${acked.size} acknowledgements`)));
            createInterface({ input: child.stdout! }).on('line', (line) => {
              const match = /^acked (\d+)$/.exec(line);
              if (!match) return;
              acked.add(Number(match[1]));
              if (outage && acked.size === WRITES / 4) proxy.cut();
              if (acked.size === WRITES / 2) {
                child.kill('SIGKILL');
                resolve();
              }
            });
          });
          expect(await exited).toBe('SIGKILL');
          proxy.restore();

          const db = new PgPoolExecutor({ ...poolOptionsFromEnv(), schema: schema.schema, poolSize: 2, maxOverflow: 0, minSize: 0 });
          const outbox = await FileOutbox.open({ path: join(dir, 'outbox.jsonl') });
          const warnings: string[] = [];
          const rt = await openDualWrite({
            db,
            env: {},
            flags: new FlagState([new ManualFlagSource({ stage: 'dual-write' })]),
            outbox,
            mirror: { mode: 'async' },
            verifier: { enabled: false },
            lease: { ttlMs: 1000 },
            logger: { info() {}, warn: (line: string) => void warnings.push(line), error: (line: string) => void warnings.push(line) },
          });
          try {
            await rt.replayer.stop();
            expect(await rt.replayer.drainFor('postgres')).toBeUndefined();
            const rows = await db.query<{ name: string; description: string }>("SELECT name, description FROM projects WHERE name LIKE 'crash-%'");
            const stored = new Map(rows.map((row) => [row.name, row.description]));
            const missing = [...acked].filter((n) => stored.get(`crash-${n}`) !== `acknowledged ${n}`);
            expect(missing).toEqual([]);
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
}
