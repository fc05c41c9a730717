import { describe, expect, it } from 'vitest';
import { ManualFlagSource } from '../../flags/manual-flags.js';
import type { AgentTask } from '../../src/stores/agent-task/agent-task-model.js';
import { METRIC } from '../../src/dualwrite/metrics.js';
import type { MirrorOptions } from '../../src/dualwrite/mirror.js';
import type { ReplayerOptions } from '../../src/dualwrite/replayer.js';
import type { DualWriteRuntime } from '../../src/runtime/dual-write-runtime.js';
import type { Stage } from '../../src/ports/stage.js';
import { loadMigrations, migrate } from '../../src/postgres/migrations.js';
import { PgPoolExecutor } from '../../src/postgres/pg-pool-executor.js';
import { poolOptionsFromEnv } from '../../src/runtime/config.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import { availableBackends, openPostgresSchema, useBackend, type Backend } from '../support/backends.js';
import { metricSum } from '../support/metrics.js';
import { dumpSide, useTestRuntimes } from '../support/runtimes.js';
import { ManualClock, SequenceIds } from '../support/clock.js';
import { eventually } from '../support/eventually.js';
import { FaultySql } from '../support/faulty-sql.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

/**
 * The mirror under load and under failure: per-key order with many concurrent writes,
 * bounded queues, and PostgreSQL going away mid-run and coming back (through a TCP proxy
 * the test cuts), after which the outbox replay must leave both sides equal.
 */

const T0 = '2025-06-01T00:00:00.000Z';
const CONTRIBUTOR = '10000000-0000-4000-8000-0000000000c1';
const assetId = (n: number) => `20000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const taskId = (n: number) => `task_${n}`;

// ---------------------------------------------------------------------------------------
// Harness

interface RuntimeOptions {
  readonly db: SqlExecutor;
  readonly stage?: Stage;
  readonly readPercent?: number;
  readonly mirror?: Omit<MirrorOptions, 'outbox' | 'metrics' | 'logger'>;
  readonly replayer?: Omit<ReplayerOptions, 'metrics' | 'logger'>;
}

interface Harness {
  readonly rt: DualWriteRuntime;
  readonly source: ManualFlagSource;
  readonly logs: string[];
}

/**
 * Opens runtimes over a given database; each is closed (and its outbox removed) after the
 * test, in reverse order with whatever else was deferred.
 */
function useRuntimes(): {
  open(options: RuntimeOptions): Promise<Harness>;
  defer(cleanup: () => Promise<unknown>): void;
} {
  const runtimes = useTestRuntimes();
  return {
    open: (options) => runtimes.open({ ...options, context: { clock: new ManualClock(), ids: new SequenceIds() } }),
    defer: runtimes.defer,
  };
}

const dump = dumpSide;

/** Both sides hold the same records, entity by entity, record for record. */
async function expectSidesEqual(rt: DualWriteRuntime): Promise<Record<string, unknown[]>> {
  const memory = await dump(rt, 'memory');
  const postgres = await dump(rt, 'postgres');
  for (const entity of Object.keys(memory)) expect(postgres[entity], entity).toEqual(memory[entity]);
  return memory;
}

const metricValue = (rt: DualWriteRuntime, name: string, labels: Record<string, string> = {}) =>
  metricSum(rt.metrics.registry, name, labels);

const task = (id: string): AgentTask => ({
  id,
  direction: `do ${id}`,
  taskType: 'impl',
  status: 'running',
  model: 'm',
  command: 'c',
  output: null,
  context: {},
  progressPct: 0,
  currentStep: null,
  decisionPrompt: null,
  decision: null,
  tier: null,
  startedAt: T0,
  createdAt: T0,
  updatedAt: T0,
});

/** The same starting records on both sides: tasks 0-3, projects p4-p7, assets 8-9 and a contributor. */
async function seedBoth(rt: DualWriteRuntime): Promise<void> {
  for (const side of ['memory', 'postgres'] as const) {
    const { graph, tasks } = rt[side];
    for (let k = 0; k < 4; k++) await tasks.putRecord('agent_tasks', task(taskId(k)));
    for (let k = 4; k < 8; k++) {
      await graph.putRecord('projects', {
        ecosystem: 'npm',
        name: `p${k}`,
        description: null,
        homepageUrl: null,
        repositoryUrl: null,
        dependencyCount: 0,
        createdAt: T0,
        updatedAt: T0,
      });
    }
    await graph.putRecord('contributors', {
      id: CONTRIBUTOR,
      name: 'Ada',
      email: null,
      githubUsername: null,
      walletAddress: null,
      metadata: {},
      createdAt: T0,
      updatedAt: T0,
    });
    for (let k = 8; k < 10; k++) {
      await graph.putRecord('assets', {
        id: assetId(k),
        name: `a${k}`,
        description: null,
        assetType: 'code',
        totalCost: '0.00',
        metadata: {},
        createdAt: T0,
        updatedAt: T0,
      });
    }
  }
}

/** Write number i of an interleaved workload over 10 keys: tasks 0-3, projects p4-p7, assets 8-9. */
function keyedWrite(rt: DualWriteRuntime, i: number): Promise<unknown> {
  const k = i % 10;
  if (k < 4) return rt.tasks.updateTask(taskId(k), { progressPct: i % 101, currentStep: `step ${i}` });
  if (k < 8) return rt.graph.upsertProject({ ecosystem: 'npm', name: `p${k}`, description: `v${i}` });
  return rt.graph.createContribution({
    contributorId: CONTRIBUTOR,
    assetId: assetId(k),
    costAmount: `${i}.01`,
    coherenceScore: 0.5,
  });
}

/**
 * Holds the target database: PGlite is one connection, so an open transaction stalls every
 * other query; on PostgreSQL a lock on `projects` stalls every statement on that table.
 */
async function holdTarget(db: SqlExecutor): Promise<() => Promise<void>> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const holding = db.transaction(async (tx) => {
    await tx.query('LOCK TABLE projects IN ACCESS EXCLUSIVE MODE');
    locked();
    await released;
  });
  await Promise.race([isLocked, holding]);
  return async () => {
    release();
    await holding;
  };
}

const upsert = (rt: DualWriteRuntime, n: number) =>
  rt.graph.upsertProject({ ecosystem: 'npm', name: `queued-${n}`, description: `d${n}` });

// ---------------------------------------------------------------------------------------

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`mirror on ${factory.name}`, () => {
    const backend: { current: Backend } = useBackend(factory);
    const { open } = useRuntimes();

    it('applies 200 interleaved concurrent writes over 10 keys in per-key order, leaving both sides equal', async () => {
      const { rt } = await open({ db: backend.current.db!, mirror: { mode: 'async', concurrency: 8 } });
      await seedBoth(rt);

      await Promise.all(Array.from({ length: 200 }, (_, i) => keyedWrite(rt, i)));
      await rt.mirror.drain();

      const memory = await expectSidesEqual(rt);
      expect(rt.outbox.stats().depth).toBe(0);
      // The last write of every key won on both sides.
      for (let k = 0; k < 4; k++)
        expect((await rt.postgres.tasks.getTask(taskId(k)))!.currentStep).toBe(`step ${190 + k}`);
      for (let k = 4; k < 8; k++)
        expect((await rt.postgres.graph.getProject({ ecosystem: 'npm', name: `p${k}` }))!.description).toBe(
          `v${190 + k}`,
        );
      for (let k = 8; k < 10; k++) {
        const cents = Array.from({ length: 20 }, (_, j) => (j * 10 + k) * 100 + 1).reduce((a, b) => a + b, 0);
        expect((await rt.postgres.graph.getAsset(assetId(k)))!.totalCost).toBe((cents / 100).toFixed(2));
      }
      expect(memory.contributions).toHaveLength(40);
    });

    it('applies a queued batch as one multi-row statement per entity in one transaction, the last copy of each key winning', async () => {
      const db = new FaultySql(backend.current.db!);
      const { rt } = await open({ db, mirror: { mode: 'async', concurrency: 1, batchSize: 200 } });
      const release = db.stall();
      // 150 writes queue behind the stall: 100 projects, then 50 rewrites of the first 50.
      const writes = Array.from({ length: 150 }, (_, i) =>
        rt.graph.upsertProject({ ecosystem: 'npm', name: `batched-${i % 100}`, description: `v${i}` }),
      );
      await Promise.all(writes);
      const before = { transactions: db.transactions, statements: db.statementsInTransactions };
      release();
      await rt.mirror.drain();

      await expectSidesEqual(rt);
      for (const n of [0, 49, 50, 99])
        expect((await rt.postgres.graph.getProject({ ecosystem: 'npm', name: `batched-${n}` }))!.description).toBe(
          `v${n < 50 ? n + 100 : n}`,
        );
      // The first write went alone; the 149 queued behind it share one transaction and one INSERT.
      expect(db.transactions - before.transactions).toBeLessThanOrEqual(2);
      expect(db.statementsInTransactions - before.statements).toBeLessThanOrEqual(3);
    });

    describe('a bounded queue (async, maxQueued 5) while the target is stalled', () => {
      it('with whenFull "wait" holds callers so no more than 5 mirror writes are ever accepted', async () => {
        const { rt } = await open({
          db: backend.current.db!,
          mirror: { mode: 'async', concurrency: 8, maxQueued: 5, whenFull: 'wait' },
        });
        let maxDepth = 0;
        const sample = () => void (maxDepth = Math.max(maxDepth, rt.mirror.depth()));
        const sampler = setInterval(sample, 1);
        const release = await holdTarget(backend.current.db!);
        try {
          let resolved = 0;
          const writes = Array.from({ length: 12 }, (_, n) =>
            upsert(rt, n).then((project) => {
              resolved++;
              sample();
              return project;
            }),
          );
          await eventually(() => expect(rt.mirror.depth(), 'mirror writes in flight').toBe(5));
          // Time passing is the point: 100 ms more, and still no sixth write is accepted.
          await new Promise((resolve) => setTimeout(resolve, 100));
          expect(rt.mirror.depth()).toBe(5);
          expect(await metricValue(rt, METRIC.mirrorQueueDepth)).toBe(5);
          expect(resolved).toBe(5);
          expect(rt.outbox.stats().depth).toBe(0);

          await release();
          await Promise.all(writes);
          await rt.mirror.drain();
          sample();
          expect(maxDepth).toBe(5);
          expect(await metricValue(rt, METRIC.mirrorQueueDepth)).toBe(0);
          expect(rt.outbox.stats().depth).toBe(0);
          const memory = await expectSidesEqual(rt);
          expect(memory.projects).toHaveLength(12);
        } finally {
          clearInterval(sampler);
          await release();
        }
      });

      it('with whenFull "journal" answers every caller while the target is stalled and journals the excess', async () => {
        const { rt } = await open({
          db: backend.current.db!,
          mirror: { mode: 'async', concurrency: 8, maxQueued: 5, whenFull: 'journal' },
        });
        // Replay by hand, so the outbox keeps what was journaled until it is inspected.
        await rt.replayer.stop();
        const release = await holdTarget(backend.current.db!);
        let answered = 0;
        let depthWhileStalled: number;
        let gaugeWhileStalled: number;
        const writes = Promise.all(Array.from({ length: 12 }, (_, n) => upsert(rt, n).then(() => answered++)));
        try {
          await eventually(() => expect(answered, 'callers answered while the target was stalled').toBe(12), {
            timeoutMs: 3000,
          });
          depthWhileStalled = rt.mirror.depth();
          gaugeWhileStalled = await metricValue(rt, METRIC.mirrorQueueDepth);
        } finally {
          await release();
        }
        await writes;
        await rt.mirror.drain();

        expect(gaugeWhileStalled).toBe(depthWhileStalled);
        const journaled = await rt.outbox.peek(100);
        expect(journaled).toHaveLength(7);
        expect(journaled.every((entry) => entry.reason === 'mirror queue full')).toBe(true);
        expect(await metricValue(rt, METRIC.outboxDepth)).toBe(7);
        // The first five were applied once the target answered; the replayer applies the rest.
        expect(await rt.postgres.graph.countProjects()).toBe(5);
        expect(await rt.replayer.replayOnce()).toEqual({ replayed: 7, deadLettered: 0 });
        const memory = await expectSidesEqual(rt);
        expect(memory.projects).toHaveLength(12);
      });
    });
  });
}

// ---------------------------------------------------------------------------------------
// Faults: PostgreSQL made unreachable mid-run through a TCP proxy.

for (const factory of availableBackends(['postgres'])) {
  describe(`mirror with ${factory.name} cut off mid-run`, () => {
    const { open, defer } = useRuntimes();

    /** A migrated schema reached through a proxy the test can cut. */
    async function proxiedDatabase(): Promise<{ db: PgPoolExecutor; proxy: TcpProxy }> {
      const schema = await openPostgresSchema('dw_fault');
      defer(() => schema.drop());
      const url = new URL(process.env.DATABASE_URL!);
      const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
      defer(() => proxy.close());
      url.hostname = '127.0.0.1';
      url.port = String(proxy.port);
      const db = new PgPoolExecutor({
        ...poolOptionsFromEnv({ DATABASE_URL: url.toString() }),
        schema: schema.schema,
        poolSize: 5,
        maxOverflow: 0,
        minSize: 0,
        connectTimeoutMs: 1000,
        statementTimeoutMs: 5000,
      });
      defer(() => db.close());
      await migrate(db, await loadMigrations());
      return { db, proxy };
    }

    async function openCut(stage: Stage, mode: 'sync' | 'async', readPercent = 0) {
      const { db, proxy } = await proxiedDatabase();
      const harness = await open({
        db,
        stage,
        readPercent,
        mirror: { mode },
        replayer: { intervalMs: 100, maxIntervalMs: 1000 },
      });
      return { ...harness, proxy };
    }

    it.each(['sync', 'async'] as const)(
      '%s mirror: writes during the outage go to the outbox, callers see no error, and replay makes both sides equal',
      async (mode) => {
        const { rt, proxy } = await openCut('dual-write', mode);
        const c = await rt.graph.createContributor({ name: 'Ada' });
        const asset = await rt.graph.createAsset({ name: 'Doc', assetType: 'code' });
        const tasks = await Promise.all(
          [0, 1, 2].map((n) =>
            rt.tasks.createTask({ id: taskId(n), direction: `d${n}`, taskType: 'impl', model: 'm', command: 'c' }),
          ),
        );
        await rt.graph.upsertProject({ ecosystem: 'npm', name: 'app' });
        await rt.graph.upsertProject({ ecosystem: 'npm', name: 'lib' });
        await rt.mirror.drain();
        // Before the cut, writes reach PostgreSQL.
        expect(await rt.postgres.graph.getContributor(c.id)).toEqual(c);
        expect(await rt.postgres.tasks.getTask(tasks[2]!.id)).toEqual(tasks[2]);

        proxy.cut();
        const outcomes: PromiseSettledResult<unknown>[] = [];
        for (let i = 0; i < 50; i++) {
          const write = (() => {
            switch (i % 6) {
              case 0:
                return rt.graph.createContribution({
                  contributorId: c.id,
                  assetId: asset.id,
                  costAmount: `${i}.25`,
                  coherenceScore: 0.5,
                });
              case 1:
                return rt.tasks.updateTask(
                  tasks[0]!.id,
                  i === 1 ? { status: 'running' } : { progressPct: i, currentStep: `step ${i}` },
                );
              case 2:
                return rt.graph.upsertProject({ ecosystem: 'npm', name: 'app', description: `v${i}` });
              case 3:
                return rt.graph.createContributor({ name: `c${i}` });
              case 4:
                return i === 4
                  ? rt.graph.addDependency({ ecosystem: 'npm', name: 'app' }, { ecosystem: 'npm', name: 'lib' })
                  : rt.tasks.createTask({ direction: `t${i}`, taskType: 'test', model: 'm', command: 'c' });
              default:
                return rt.graph.createAsset({ name: `a${i}`, assetType: 'data' });
            }
          })();
          outcomes.push(...(await Promise.allSettled([write])));
        }
        await rt.mirror.drain();

        expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
        expect(rt.outbox.stats().depth).toBe(50);
        expect(await metricValue(rt, METRIC.outboxDepth)).toBe(50);
        expect(await metricValue(rt, METRIC.mirrorFailures)).toBeGreaterThan(0);
        // Reads are answered from memory, which has every write.
        const total = Array.from({ length: 50 }, (_, i) => i)
          .filter((i) => i % 6 === 0)
          .reduce((sum, i) => sum + i + 0.25, 0);
        expect((await rt.graph.getAsset(asset.id))!.totalCost).toBe(total.toFixed(2));
        expect((await rt.tasks.getTask(tasks[0]!.id))!.currentStep).toBe('step 49');
        expect(await metricValue(rt, METRIC.reads, { source: 'fallback' })).toBe(0);

        proxy.restore();
        await eventually(() => expect(rt.outbox.stats().depth, 'the outbox after the restore').toBe(0), {
          timeoutMs: 20_000,
        });
        await rt.replayer.stop(); // lets the round that emptied the outbox finish its bookkeeping

        const memory = await expectSidesEqual(rt);
        expect(memory.assets!.find((a) => (a as { id: string }).id === asset.id)).toMatchObject({
          totalCost: total.toFixed(2),
        });
        expect(await metricValue(rt, METRIC.outboxReplayed, { outcome: 'applied' })).toBe(50);
        expect(await metricValue(rt, METRIC.outboxDepth)).toBe(0);
      },
    );

    it('read-shift at 100%: with PostgreSQL cut, reads fall back to memory without errors and are counted as fallback', async () => {
      const { rt, proxy } = await openCut('read-shift', 'sync', 100);
      const c = await rt.graph.createContributor({ name: 'Ada' });
      expect(await rt.graph.getContributor(c.id)).toEqual(c);
      expect(await metricValue(rt, METRIC.reads, { source: 'postgres' })).toBe(1);

      proxy.cut();
      const reads = [
        () => rt.graph.getContributor(c.id),
        () => rt.graph.listContributors(),
        () => rt.tasks.countByStatus(),
      ];
      const results = await Promise.allSettled(reads.map((read) => read()));
      expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
      expect((results[0] as PromiseFulfilledResult<unknown>).value).toEqual(c);
      expect((results[1] as PromiseFulfilledResult<unknown>).value).toEqual([c]);
      expect(await metricValue(rt, METRIC.reads, { source: 'fallback' })).toBe(3);
      expect(await metricValue(rt, METRIC.reads, { source: 'postgres' })).toBe(1);
      proxy.restore();
    });

    it.each(['dual-write', 'read-shift'] as const)(
      '%s in sync mode: no write throws to the caller while PostgreSQL is cut',
      async (stage) => {
        const { rt, proxy } = await openCut(stage, 'sync', stage === 'read-shift' ? 50 : 0);
        const c = await rt.graph.createContributor({ name: 'Ada' });
        const a = await rt.graph.createAsset({ name: 'Doc', assetType: 'code' });
        const t = await rt.tasks.createTask({ direction: 'd', taskType: 'impl', model: 'm', command: 'c' });
        await rt.graph.upsertProject({ ecosystem: 'npm', name: 'lib' });

        proxy.cut();
        const writes = [
          () => rt.graph.upsertProject({ ecosystem: 'npm', name: 'app' }),
          () => rt.graph.addDependency({ ecosystem: 'npm', name: 'app' }, { ecosystem: 'npm', name: 'lib' }),
          () => rt.graph.createContributor({ name: 'Bob' }),
          () => rt.graph.createAsset({ name: 'Img', assetType: 'image' }),
          () =>
            rt.graph.createContribution({ contributorId: c.id, assetId: a.id, costAmount: '1.50', coherenceScore: 1 }),
          () => rt.tasks.createTask({ direction: 'd2', taskType: 'spec', model: 'm', command: 'c' }),
          () => rt.tasks.updateTask(t.id, { status: 'running' }),
        ];
        const results = await Promise.allSettled(writes.map((write) => write()));
        expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
        expect(rt.outbox.stats().depth).toBe(writes.length);
        expect((await rt.memory.graph.getAsset(a.id))!.totalCost).toBe('1.50');

        proxy.restore();
        await eventually(() => expect(rt.outbox.stats().depth, 'the outbox after the restore').toBe(0), {
          timeoutMs: 20_000,
        });
        await expectSidesEqual(rt);
      },
    );
  });
}
