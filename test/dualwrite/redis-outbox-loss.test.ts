import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FlagState } from '../../flags/flag-state.js';
import { ManualFlagSource } from '../../flags/manual-flags.js';
import { METRIC } from '../../src/dualwrite/metrics.js';
import { openDualWrite } from '../../src/runtime/open-dual-write.js';
import { loadMigrations, migrate } from '../../src/postgres/migrations.js';
import { PgliteExecutor } from '../../src/postgres/pglite-executor.js';
import { FaultySql } from '../support/faulty-sql.js';
import { metricSum } from '../support/metrics.js';
import { startPrivateRedis } from '../support/private-redis.js';
import { canRun, unsetVariable } from '../support/service-available.js';

/**
 * A Redis outbox whose server restarts without persistence loses its entries: that is
 * noticed (sentinel), counted and logged, the pending set is rebuilt from what the stream
 * really holds (so healthy writes stop queueing behind ghosts), and a verification finds
 * what the lost entries would have written. Runs its own redis-server on a free port; the
 * shared one is never touched.
 */

const available = canRun('the Redis outbox loss test', unsetVariable('REDIS_URL'));

describe.runIf(available)('Redis outbox loss and outage', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A dual-write runtime on PGlite (behind a switch) whose outbox is a private redis-server's stream. */
  async function open(prefix: string, persistent: boolean) {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const redis = await startPrivateRedis(dir, persistent);
    cleanups.push(() => redis.kill());
    const pglite = await PgliteExecutor.open();
    cleanups.push(() => pglite.close());
    await migrate(pglite, await loadMigrations());
    const db = new FaultySql(pglite);
    const logs: string[] = [];
    const rt = await openDualWrite({
      db,
      env: { REDIS_URL: redis.url, DUALWRITE_INTENT_LOG_PATH: join(dir, 'intents.jsonl'), DUALWRITE_OUTBOX_PATH: join(dir, 'local-outbox.jsonl') },
      flags: new FlagState([new ManualFlagSource({ stage: 'dual-write' })]),
      mirror: { breaker: { probeMs: 0 } },
      verifier: { enabled: false, graceMs: 0 },
      logger: { info() {}, warn: (line: string) => void logs.push(`warn ${line}`), error: (line: string) => void logs.push(`error ${line}`) },
    });
    cleanups.push(() => rt.close());
    await rt.replayer.stop();
    return { rt, db, logs, redis };
  }

  it('is detected after a restart without persistence: counted, logged, pending keys rebuilt, the lost writes verified', async () => {
    const { rt, db, logs, redis } = await open('dw-redis-loss-', false);
    expect(logs.filter((line) => line.includes('keeps no data across a restart'))).toHaveLength(1);

    db.down = true;
    const lost = [];
    for (let n = 0; n < 5; n++) lost.push(await rt.graph.upsertProject({ ecosystem: 'npm', name: `lost-${n}` }));
    expect(rt.outbox.stats().depth).toBe(5);
    expect(rt.mirror.isPending('project:npm/lost-0')).toBe(true);

    await redis.kill();
    await redis.restart();
    db.down = false;

    // The next replay round reads the stream: nothing there, and the sentinel is gone.
    expect(await rt.replayer.replayOnce()).toMatchObject({ replayed: 0 });
    const report = (await rt.verifier.runOnce())!;
    expect(await metricSum(rt.metrics.registry, METRIC.outboxLost)).toBe(1);
    expect(logs.filter((line) => line.startsWith('error') && line.includes('the Redis outbox lost entries'))).toHaveLength(1);
    expect(rt.mirror.isPending('project:npm/lost-0')).toBe(false);
    expect(report.differences.filter((d) => d.kind === 'missing_in_postgres').map((d) => d.key).sort()).toEqual(lost.map((p) => [p.ecosystem, p.name]).sort());

    // Healthy writes to those keys are mirrored directly again, not queued behind lost entries.
    const fresh = await rt.graph.upsertProject({ ecosystem: 'npm', name: 'lost-0', description: 'after the loss' });
    expect(await rt.postgres.graph.getProject(fresh)).toEqual(fresh);
  }, 60_000);

  it('while Redis is down, mirror failures go to a local journal without waiting on it, and are replayed after the older ones once it is back', async () => {
    const { rt, db, logs, redis } = await open('dw-redis-down-', true);
    const K = { ecosystem: 'npm', name: 'k' };

    db.down = true;
    await rt.graph.upsertProject({ ...K, description: 'older, journaled in Redis' });
    await redis.kill();
    const newer = await rt.graph.upsertProject({ ...K, description: 'newer, journaled locally' });
    const other = await rt.graph.upsertProject({ ecosystem: 'npm', name: 'other' });
    expect(rt.mirror.journaledFor('postgres')).toBe(3);
    expect(logs.filter((line) => line.includes('journaled to the local outbox'))).toHaveLength(1);
    expect(logs.some((line) => line.includes('LOST'))).toBe(false);

    await redis.restart();
    db.down = false;
    expect(await rt.replayer.drainFor('postgres')).toBeUndefined();
    expect(await rt.postgres.graph.getProject(K)).toEqual(newer);
    expect(await rt.postgres.graph.getProject(other)).toEqual(other);
    expect(rt.outbox.stats().depth).toBe(0);
    expect(await metricSum(rt.metrics.registry, METRIC.outboxLost)).toBe(0);
  }, 60_000);
});
