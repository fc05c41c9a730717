import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FlagState } from '../../flags/flag-state.js';
import { ManualFlagSource } from '../../flags/manual-flags.js';
import { UnavailableError } from '../../src/domain/errors.js';
import { FileOutbox } from '../../src/dualwrite/file-outbox.js';
import type { MirrorMode } from '../../src/dualwrite/mirror.js';
import { openDualWrite } from '../../src/runtime/open-dual-write.js';
import type { Stage } from '../../src/ports/stage.js';
import { loadMigrations, migrate } from '../../src/postgres/migrations.js';
import { PgPoolExecutor } from '../../src/postgres/pg-pool-executor.js';
import { poolOptionsFromEnv } from '../../src/runtime/config.js';
import { privatePostgresUnavailable, startPrivatePostgres } from '../support/private-postgres.js';
import { eventually } from '../support/eventually.js';
import { dumpSide } from '../support/runtimes.js';
import { canRun } from '../support/service-available.js';

/**
 * The PostgreSQL server itself crashes: a private cluster (never the shared one) has its
 * postmaster and every backend SIGKILLed while writers run, and is started again (crash
 * recovery from its WAL). Whatever a caller was told succeeded is on both sides afterwards;
 * callers in a PostgreSQL-authoritative stage see only UnavailableError while it is down.
 */

const available = canRun('the PostgreSQL crash test', privatePostgresUnavailable());

const WRITERS = 8;
const KEYS = 300;

describe.runIf(available)('PostgreSQL SIGKILLed under load (private cluster)', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function crashUnderLoad(stage: Stage, mode: MirrorMode) {
    const server = await startPrivatePostgres();
    cleanups.push(() => server.drop());
    const dir = await mkdtemp(join(tmpdir(), 'dw-pgcrash-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const db = new PgPoolExecutor({
      ...poolOptionsFromEnv({ DATABASE_URL: server.url }),
      poolSize: 8,
      maxOverflow: 0,
      minSize: 0,
      connectTimeoutMs: 500,
    });
    cleanups.push(() => db.close());
    await migrate(db, await loadMigrations());
    const outbox = await FileOutbox.open({ path: join(dir, 'outbox.jsonl') });
    cleanups.push(() => outbox.close());
    const rt = await openDualWrite({
      db,
      env: { DUALWRITE_INTENT_LOG_PATH: join(dir, 'intents.jsonl') },
      flags: new FlagState([new ManualFlagSource({ stage })]),
      outbox,
      lease: false,
      mirror: { mode, breaker: { probeMs: 100 } },
      replayer: { intervalMs: 50 },
      verifier: { enabled: false, repair: true, graceMs: 0 },
      logger: { info() {}, warn() {}, error() {} },
    });
    cleanups.push(() => rt.close());

    /** Per key, the last write acknowledged, and whether a write with an unknown outcome (an error) came after it. */
    const acknowledged = new Map<string, string>();
    const ambiguousAfter = new Set<string>();
    const errors: unknown[] = [];
    let written = 0;
    let running = true;
    const writers = Array.from({ length: WRITERS }, async (_, writer) => {
      for (let n = 0; running; n++) {
        const name = `k${(n * WRITERS + writer) % KEYS}`;
        const description = `writer ${writer} write ${n}`;
        try {
          await rt.graph.upsertProject({ ecosystem: 'npm', name, description });
          acknowledged.set(name, description);
          ambiguousAfter.delete(name);
          written++;
        } catch (error) {
          errors.push(error);
          ambiguousAfter.add(name);
          // A caller that got an error retries later; it does not spin on a dead server.
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    });
    let outboxPeak = 0;
    /** Waits for `condition`, sampling the outbox's depth meanwhile. */
    const until = (condition: () => boolean) =>
      eventually(
        () => {
          outboxPeak = Math.max(outboxPeak, rt.outbox.stats().depth);
          expect(condition()).toBe(true);
        },
        { timeoutMs: 60_000, everyMs: 10 },
      );
    await until(() => written >= 300);
    await server.kill();
    const atKill = written;
    await until(() => written >= atKill + 200 || errors.length >= 20);
    await server.start();
    const atStart = written;
    await until(() => written >= atStart + 300);
    running = false;
    await Promise.all(writers);

    await rt.mirror.drain();
    // The pool may still hold connections the crash broke; replay retries until it is through.
    await eventually(async () => expect(await rt.replayer.drainFor('postgres')).toBeUndefined(), { everyMs: 100 });
    await rt.mirror.settled();
    // A write that failed while the server died may have committed all the same: whether it
    // did is unknown to its caller (UnavailableError), and the verifier brings memory level.
    const report = errors.length > 0 ? await rt.verifier.runOnce() : undefined;
    const postgres = await dumpSide(rt, 'postgres');
    const memory = await dumpSide(rt, 'memory');
    const inPostgres = new Map(
      (postgres.projects as { name: string; description: string }[]).map((p) => [p.name, p.description]),
    );
    const lost = [...acknowledged].filter(
      ([name, description]) => inPostgres.get(name) !== description && !ambiguousAfter.has(name),
    );
    return { errors, lost, memory, postgres, outboxPeak, repaired: report?.differences.length ?? 0 };
  }

  it.each(['sync', 'async'] as const)(
    'dual-write, %s mirror: no caller error, nothing acknowledged lost, the sides equal after replay',
    async (mode) => {
      const { errors, lost, memory, postgres, outboxPeak } = await crashUnderLoad('dual-write', mode);
      expect(outboxPeak).toBeGreaterThan(0);
      expect(errors).toEqual([]);
      expect(lost).toEqual([]);
      expect(postgres).toEqual(memory);
    },
    120_000,
  );

  it('postgres-primary: callers get UnavailableError while it is down, and every acknowledged write survives its crash recovery', async () => {
    const { errors, lost, memory, postgres, repaired } = await crashUnderLoad('postgres-primary', 'sync');
    expect(errors.length).toBeGreaterThan(0);
    expect(repaired).toBeLessThanOrEqual(WRITERS);
    expect(errors.filter((error) => !(error instanceof UnavailableError))).toEqual([]);
    expect(
      errors.every(
        (error) => (error as UnavailableError).dependency === 'postgres' && (error as Error).cause !== undefined,
      ),
    ).toBe(true);
    expect(lost).toEqual([]);
    expect(memory).toEqual(postgres);
  }, 120_000);
});
