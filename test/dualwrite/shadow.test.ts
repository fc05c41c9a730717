import { describe, expect, it } from 'vitest';
import { METRIC } from '../../src/dualwrite/metrics.js';
import type { MirrorMode } from '../../src/dualwrite/mirror.js';
import { ShadowReads } from '../../src/dualwrite/shadow.js';
import type { DualWriteRuntime } from '../../src/runtime/dual-write-runtime.js';
import { STAGES, type Stage } from '../../src/ports/stage.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import { availableBackends, useBackend, type Backend } from '../support/backends.js';
import { useTestRuntimes } from '../support/runtimes.js';

/**
 * Shadow reads: a sampled read also runs on the side that did not serve it, after the
 * caller has its answer, and the two results are compared and counted.
 */

interface Options {
  readonly stage?: Stage;
  readonly sampleRate?: number;
  readonly mode?: MirrorMode;
}

function useRuntimes(backend: { current: Backend }): (options?: Options) => Promise<DualWriteRuntime> {
  const runtimes = useTestRuntimes();
  return async (options = {}) => {
    const { db, clock, ids } = backend.current;
    const { rt } = await runtimes.open({
      db: db!,
      stage: options.stage,
      context: { clock, ids },
      mirror: { mode: options.mode ?? 'sync' },
      shadow: { sampleRate: options.sampleRate ?? 1 },
    });
    return rt;
  };
}

/** Shadow comparisons counted so far, by outcome (only outcomes seen). */
async function compares(rt: DualWriteRuntime, operation?: string): Promise<Record<string, number>> {
  await rt.shadow.settle();
  const { values } = await rt.metrics.registry.getSingleMetric(METRIC.shadowCompares)!.get();
  const counts: Record<string, number> = {};
  for (const sample of values) {
    if (operation !== undefined && sample.labels.operation !== operation) continue;
    if (sample.value > 0)
      counts[sample.labels.outcome as string] = (counts[sample.labels.outcome as string] ?? 0) + sample.value;
  }
  return counts;
}

async function calls(rt: DualWriteRuntime, side: string, operation: string): Promise<number> {
  const { values } = await rt.metrics.registry.getSingleMetric(METRIC.operations)!.get();
  return values
    .filter((sample) => sample.labels.side === side && sample.labels.operation === operation)
    .reduce((sum, sample) => sum + sample.value, 0);
}

const T0 = '2025-06-01T00:00:00.000Z';

/** Runs `work` while the contributors table is renamed away, so PostgreSQL fails every statement on it. */
async function withoutContributorsTable<T>(db: SqlExecutor, work: () => Promise<T>): Promise<T> {
  await db.query('ALTER TABLE contributors RENAME TO contributors_away');
  try {
    return await work();
  } finally {
    await db.query('ALTER TABLE contributors_away RENAME TO contributors');
  }
}

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`shadow reads on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const open = useRuntimes(backend);

    it('counts a match when both sides return the same result', async () => {
      const rt = await open();
      const c = await rt.graph.createContributor({ name: 'Ada' });
      expect(await rt.graph.getContributor(c.id)).toEqual(c);
      expect(await rt.graph.listContributors()).toEqual([c]);
      expect(await compares(rt)).toEqual({ match: 2 });
      expect(rt.shadow.mismatches).toEqual([]);
      expect(await calls(rt, 'postgres', 'getContributor')).toBe(1);
    });

    it('counts a mismatch, keeps a json-diff of it, and still answers from memory', async () => {
      const rt = await open();
      const c = await rt.graph.createContributor({ name: 'Ada' });
      await rt.postgres.graph.putRecord('contributors', { ...c, name: 'Only in PostgreSQL' });

      expect(await rt.graph.getContributor(c.id)).toEqual(c);
      expect(await compares(rt)).toEqual({ mismatch: 1 });
      expect(rt.shadow.mismatches).toHaveLength(1);
      const [mismatch] = rt.shadow.mismatches;
      expect(mismatch).toMatchObject({
        store: 'graph',
        operation: 'getContributor',
        key: `contributor:${c.id}`,
        served: 'memory',
      });
      expect(mismatch!.diff).toContain('name');
      expect(mismatch!.diff).toContain('Ada');
      expect(mismatch!.diff).toContain('Only in PostgreSQL');
      expect(mismatch!.diff).not.toContain('email');
    });

    it('counts a shadow read that throws as an error and never lets it reach the caller', async () => {
      const rt = await open();
      const c = await rt.graph.createContributor({ name: 'Ada' });
      await withoutContributorsTable(backend.current.db!, async () => {
        expect(await rt.graph.getContributor(c.id)).toEqual(c);
        expect(await rt.graph.listContributors()).toEqual([c]);
        expect(await compares(rt)).toEqual({ error: 2 });
      });
    });

    it('compares nothing, and never reads the other side, with sampleRate 0', async () => {
      const rt = await open({ sampleRate: 0 });
      const c = await rt.graph.createContributor({ name: 'Ada' });
      await rt.postgres.graph.putRecord('contributors', { ...c, name: 'Only in PostgreSQL' });
      for (let i = 0; i < 10; i++) expect(await rt.graph.getContributor(c.id)).toEqual(c);
      expect(await compares(rt)).toEqual({});
      expect(await calls(rt, 'postgres', 'getContributor')).toBe(0);
    });

    it('skips a key whose mirror write is waiting in the outbox instead of counting a mismatch', async () => {
      const rt = await open();
      await rt.replayer.stop();
      const c = await withoutContributorsTable(backend.current.db!, () => rt.graph.createContributor({ name: 'Ada' }));
      expect(rt.outbox.stats().depth).toBe(1);
      expect(rt.mirror.isPending(`contributor:${c.id}`)).toBe(true);

      expect(await rt.graph.getContributor(c.id)).toEqual(c);
      expect(await compares(rt, 'getContributor')).toEqual({ skipped_pending: 1 });

      // Once replayed, the same read matches.
      expect(await rt.replayer.replayOnce()).toEqual({ replayed: 1, deadLettered: 0 });
      expect(await rt.graph.getContributor(c.id)).toEqual(c);
      expect(await compares(rt, 'getContributor')).toEqual({ skipped_pending: 1, match: 1 });
      expect(rt.shadow.mismatches).toEqual([]);
    });

    // Stalling the target takes a table lock from a second connection, which PGlite (one connection) has not.
    if (factory.name === 'postgres') {
      it('skips a key whose mirror write is still in flight (async mode, stalled target)', async () => {
        const rt = await open({ mode: 'async' });
        const db = backend.current.db!;
        let release!: () => void;
        const released = new Promise<void>((resolve) => (release = resolve));
        let locked!: () => void;
        const isLocked = new Promise<void>((resolve) => (locked = resolve));
        // Stalls writes to contributors; reads of contributions still answer.
        const holding = db.transaction(async (tx) => {
          await tx.query('LOCK TABLE contributors IN ACCESS EXCLUSIVE MODE');
          locked();
          await released;
        });
        await isLocked;
        try {
          const c = await rt.graph.createContributor({ name: 'Ada', at: T0 });
          expect(rt.mirror.isPending(`contributor:${c.id}`)).toBe(true);
          // Same routing key as the contributor's write.
          expect(await rt.graph.listContributionsByContributor(c.id)).toEqual([]);
          expect(await compares(rt, 'listContributionsByContributor')).toEqual({ skipped_pending: 1 });
        } finally {
          release();
          await holding;
        }
        await rt.mirror.drain();
      });
    }

    it.each(['memory-only', 'postgres-only'] as const)('never runs a shadow read in %s', async (stage) => {
      const rt = await open({ stage });
      const c = await rt.graph.createContributor({ name: 'Ada' });
      const other = stage === 'memory-only' ? rt.postgres.graph : rt.memory.graph;
      await other.putRecord('contributors', { ...c, name: 'other side' });
      for (let i = 0; i < 5; i++) expect(await rt.graph.getContributor(c.id)).toEqual(c);
      expect(await compares(rt)).toEqual({});
      expect(await calls(rt, stage === 'memory-only' ? 'postgres' : 'memory', 'getContributor')).toBe(0);
    });
  });
}

describe('the shadow sample rate', () => {
  it('defaults by stage: sampled while memory is authoritative and PostgreSQL mirrored, where the evidence gate needs comparisons', () => {
    // Every draw is under any rate above 0: what is sampled is what has a rate.
    const shadow = new ShadowReads({ random: () => 0 });
    expect(STAGES.map((stage) => [stage, shadow.rateIn(stage), shadow.sampled(stage)])).toEqual([
      ['memory-only', 0, false],
      ['dual-write', 0.05, true],
      ['read-shift', 0.05, true],
      ['postgres-primary', 0, false],
      ['postgres-only', 0, false],
    ]);
    expect(shadow.off).toBe(false);
  });

  it('honours a configured rate as given in every stage, 0 (off) included', () => {
    const off = new ShadowReads({ sampleRate: 0, random: () => 0 });
    expect(STAGES.filter((stage) => off.sampled(stage))).toEqual([]);
    expect(off.off).toBe(true);
    expect(new ShadowReads({ sampleRate: 0.5 }).rateIn('postgres-primary')).toBe(0.5);
  });
});
