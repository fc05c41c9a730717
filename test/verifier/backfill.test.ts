import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FlagState } from '../../flags/flag-state.js';
import { ManualFlagSource } from '../../flags/manual-flags.js';
import type { Contribution, Project } from '../../src/stores/graph/graph-model.js';
import { entityNames } from '../../src/domain/records.js';
import { AGENT_TASK_ENTITIES, type AgentTaskRecords } from '../../src/stores/agent-task/agent-task-records.js';
import { GRAPH_ENTITIES, type GraphRecords } from '../../src/stores/graph/graph-records.js';
import { FileOutbox } from '../../src/dualwrite/file-outbox.js';
import { openDualWrite } from '../../src/runtime/open-dual-write.js';
import type { DualWriteRuntime } from '../../src/runtime/dual-write-runtime.js';
import { MemoryAgentTaskStore } from '../../src/stores/agent-task/memory-agent-task-store.js';
import { MemoryGraphStore } from '../../src/stores/graph/memory-graph-store.js';
import { PostgresAgentTaskStore } from '../../src/stores/agent-task/postgres-agent-task-store.js';
import { PostgresGraphStore } from '../../src/stores/graph/postgres-graph-store.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import type { RecordKey, RecordPort, ScanOptions } from '../../src/ports/record-port.js';
import { readAll } from '../../src/ports/record-scan.js';
import { applySampleWrite, sampleWrites } from '../../src/cli/demo/sample-data.js';
import {
  backfill,
  backfillStore,
  checkpointName,
  loadCheckpoints,
  PROGRESS_TABLE,
  type BackfillOptions,
  type BackfillProgress,
  type BackfillReport,
} from '../../verifier/backfill.js';
import { AGENT_TASK_DEFINITION } from '../../src/stores/agent-task/agent-task-store-definition.js';
import { GRAPH_DEFINITION } from '../../src/stores/graph/graph-store-definition.js';
import { createProgressReporter } from '../../verifier/progress.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { ManualClock, SequenceIds } from '../support/clock.js';
import { formatBackfillReport } from '../../src/cli/backfill-report.js';

/**
 * The backfill end to end on PGlite and a real PostgreSQL server: a full copy is
 * record-for-record equal, a re-run copies nothing, an interrupted run resumes exactly
 * where it stopped, it never overwrites what dual-write already put in PostgreSQL, and it
 * reads snapshot files. Memory is the source; scans of both sides are compared with readAll.
 */

type Snapshot = Record<string, unknown[]>;
interface Sides {
  graph: RecordPort<GraphRecords>;
  tasks: RecordPort<AgentTaskRecords>;
}

const GRAPH = entityNames(GRAPH_ENTITIES);
const TASKS = entityNames(AGENT_TASK_ENTITIES);
/** Every entity in copy order: the graph's, then the tasks'. */
const BACKFILL_ENTITIES: string[] = [...GRAPH, ...TASKS];

/** Memory stores holding the sample workload (every entity, asset totals and dependency counts included). */
async function sampleSource(projects = 30): Promise<{ graph: MemoryGraphStore; tasks: MemoryAgentTaskStore }> {
  const source = { graph: new MemoryGraphStore(), tasks: new MemoryAgentTaskStore() };
  for (const write of sampleWrites({ projects })) await applySampleWrite(write, source);
  return source;
}

function postgresSides(db: SqlExecutor): { graph: PostgresGraphStore; tasks: PostgresAgentTaskStore } {
  return { graph: new PostgresGraphStore(db), tasks: new PostgresAgentTaskStore(db) };
}

/** Every record of one graph entity, in key order. */
const graphRecords = <E extends keyof GraphRecords & string>(port: RecordPort<GraphRecords>, entity: E) =>
  readAll(port, entity);
const taskRecords = (port: RecordPort<AgentTaskRecords>) => readAll(port, 'agent_tasks');

/** Every record of every entity, in key order. */
async function snapshot(sides: Sides): Promise<Snapshot> {
  const all: Snapshot = {};
  for (const entity of GRAPH) all[entity] = await readAll(sides.graph, entity);
  for (const entity of TASKS) all[entity] = await readAll(sides.tasks, entity);
  return all;
}

function entityReport(report: BackfillReport, entity: string) {
  const found = report.entities.find((e) => e.entity === entity);
  if (!found) throw new Error(`no ${entity} in report`);
  return found;
}

/** A source whose scans are those of `inner`, with `change` applied to every page it returns. */
function alteredSource(
  inner: Sides,
  change: (entity: string, page: unknown[], options: ScanOptions) => unknown[] | Promise<unknown[]>,
): Sides {
  const wrap = <R extends object>(port: RecordPort<R>): RecordPort<R> =>
    ({
      keyOf: (entity: never, record: never) => port.keyOf(entity, record),
      scanRecords: async (entity: string, options: ScanOptions) =>
        change(entity, await port.scanRecords(entity as never, options), options),
      getRecord: (entity: never, key: RecordKey) => port.getRecord(entity, key),
      putRecord: (entity: never, record: never) => port.putRecord(entity, record),
      deleteRecord: (entity: never, key: RecordKey) => port.deleteRecord(entity, key),
    }) as RecordPort<R>;
  return { graph: wrap(inner.graph), tasks: wrap(inner.tasks) };
}

/** A NUMERIC(15,2) string plus `cents`. */
const addCents = (amount: string, cents: number) => ((Math.round(Number(amount) * 100) + cents) / 100).toFixed(2);

const abortAfter = (batches: number) => {
  const controller = new AbortController();
  let seen = 0;
  const onProgress = () => {
    if (++seen === batches) controller.abort();
  };
  return { signal: controller.signal, onProgress };
};

describe('progress reporter', () => {
  const events = (entity: string, total: number, step: number): BackfillProgress[] =>
    Array.from({ length: Math.ceil(total / step) }, (_, i) => {
      const scanned = Math.min(total, (i + 1) * step);
      return { store: 'graph', entity, scanned, total, copied: scanned, rowsPerSecond: 1000 };
    });

  it('writes one line per 10% of an entity when the stream is not a terminal', () => {
    const lines: string[] = [];
    const reporter = createProgressReporter({ write: (text: string) => lines.push(text), isTTY: false });
    for (const event of events('contributors', 1000, 20)) reporter.onProgress(event);
    reporter.finish();
    expect(lines.every((line) => line.endsWith('\n') && !line.includes('\r'))).toBe(true);
    expect(lines.map((line) => /(\d+)%/.exec(line)![1])).toEqual([
      '2',
      '10',
      '20',
      '30',
      '40',
      '50',
      '60',
      '70',
      '80',
      '90',
      '100',
    ]);
    expect(lines.at(-1)).toBe('backfill contributors: 100% (1,000/1,000 scanned, 1,000 copied, 1,000 rows/s)\n');
  });

  it('redraws one bar per entity in place on a terminal and ends each entity on its own line', () => {
    const writes: string[] = [];
    const reporter = createProgressReporter({ write: (text: string) => writes.push(text), isTTY: true });
    for (const event of [...events('projects', 10, 5), ...events('assets', 4, 2)]) reporter.onProgress(event);
    reporter.finish();
    const screen = writes.join('');
    const lines = screen.split('\n');
    expect(lines).toHaveLength(3);
    expect(
      lines[0]!
        .split('\r')
        .filter(Boolean)
        .map((bar) => bar.slice(0, 8)),
    ).toEqual(['projects', 'projects']);
    expect(lines[0]).toContain('100%  10/10 scanned');
    expect(lines[1]).toContain('100%  4/4 scanned');
    expect(lines[2]).toBe('');
  });
});

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`backfill on ${factory.name}`, () => {
    const backend = useBackend(factory);
    let db: SqlExecutor;
    const run = (source: Sides, options: Omit<BackfillOptions, 'stores' | 'db'> = {}) =>
      backfill({
        stores: [backfillStore(GRAPH_DEFINITION, source.graph), backfillStore(AGENT_TASK_DEFINITION, source.tasks)],
        db,
        ...options,
      });
    beforeEach(async () => {
      db = backend.current.db!;
      await db.query(`DELETE FROM ${PROGRESS_TABLE}`);
    });

    it.each([
      { batchSize: 4, name: 'many batches of 4' },
      { batchSize: undefined, name: 'the default batch size' },
    ])('copies every record of every entity exactly as memory holds it, in $name', async ({ batchSize }) => {
      const source = await sampleSource();
      const report = await run(source, { batchSize });

      const copied = await snapshot(postgresSides(db));
      expect(copied).toEqual(await snapshot(source));
      // Derived values travel as they are: the totals and counts are not recomputed (or doubled by the trigger).
      expect((copied.assets as { totalCost: string }[]).some((a) => a.totalCost !== '0.00')).toBe(true);
      expect((copied.projects as Project[]).some((p) => p.dependencyCount > 0)).toBe(true);

      expect(report.entities.map((e) => e.entity)).toEqual(BACKFILL_ENTITIES);
      for (const e of report.entities) {
        expect(e).toMatchObject({
          status: 'completed',
          resumedAfter: null,
          skippedExisting: 0,
          unresolved: 0,
          countsMatch: true,
        });
        expect(e.copied).toBe(copied[e.entity]!.length);
        expect([e.scanned, e.memoryCount, e.postgresCount]).toEqual([e.copied, e.copied, e.copied]);
      }
      expect(report).toMatchObject({
        interrupted: false,
        startedOver: false,
        countsMatch: true,
        batchSize: batchSize ?? 5000,
      });
      expect(report.totals.copied).toBe(Object.values(copied).reduce((n, records) => n + records.length, 0));
      expect(JSON.parse(JSON.stringify(report))).toEqual(report);
    });

    it('copies nothing on a second run, finds every record already there and leaves the data unchanged', async () => {
      const source = await sampleSource();
      await run(source, { batchSize: 8 });
      const before = await snapshot(postgresSides(db));

      const again = await run(source, { batchSize: 8 });

      expect(again.startedOver).toBe(true);
      for (const e of again.entities) {
        expect(e).toMatchObject({ status: 'completed', copied: 0, countsMatch: true });
        expect([e.scanned, e.skippedExisting]).toEqual([e.memoryCount, e.memoryCount]);
      }
      expect(again.totals.copied).toBe(0);
      expect(await snapshot(postgresSides(db))).toEqual(before);
    });

    // For each entity, PostgreSQL already holds one record in a different version (as a
    // mirrored write would leave it); the backfill must keep that version.
    const PRESENT: {
      entity: string;
      prepare: (memory: Sides, pg: Sides) => Promise<{ entity: string; record: unknown }>;
    }[] = [
      {
        entity: 'projects',
        prepare: async (memory, pg) => {
          const [project] = await graphRecords(memory.graph, 'projects');
          const record = { ...project!, description: 'changed in PostgreSQL' };
          await pg.graph.putRecord('projects', record);
          return { entity: 'projects', record };
        },
      },
      {
        entity: 'dependencies',
        prepare: async (memory, pg) => {
          const [edge] = await graphRecords(memory.graph, 'dependencies');
          for (const ref of [edge!.from, edge!.to])
            await pg.graph.putRecord(
              'projects',
              (await memory.graph.getRecord('projects', [ref.ecosystem, ref.name]))!,
            );
          const record = { ...edge!, createdAt: '2030-01-01T00:00:00.000Z' };
          await pg.graph.putRecord('dependencies', record);
          return { entity: 'dependencies', record };
        },
      },
      {
        entity: 'contributors',
        prepare: async (memory, pg) => {
          const [contributor] = await graphRecords(memory.graph, 'contributors');
          const record = { ...contributor!, name: 'changed in PostgreSQL', metadata: { moved: true } };
          await pg.graph.putRecord('contributors', record);
          return { entity: 'contributors', record };
        },
      },
      {
        entity: 'assets',
        prepare: async (memory, pg) => {
          const [asset] = await graphRecords(memory.graph, 'assets');
          const record = { ...asset!, totalCost: '12345.67' };
          await pg.graph.putRecord('assets', record);
          return { entity: 'assets', record };
        },
      },
      {
        entity: 'contributions',
        prepare: async (memory, pg) => {
          const [contribution] = await graphRecords(memory.graph, 'contributions');
          await pg.graph.putRecord(
            'contributors',
            (await memory.graph.getRecord('contributors', [contribution!.contributorId]))!,
          );
          await pg.graph.putRecord('assets', (await memory.graph.getRecord('assets', [contribution!.assetId]))!);
          const record: Contribution = {
            ...contribution!,
            coherenceScore: contribution!.coherenceScore === '0.50' ? '0.51' : '0.50',
          };
          await pg.graph.putRecord('contributions', record);
          return { entity: 'contributions', record };
        },
      },
      {
        entity: 'agent_tasks',
        prepare: async (memory, pg) => {
          const [task] = await taskRecords(memory.tasks);
          const record = { ...task!, currentStep: 'changed in PostgreSQL' };
          await pg.tasks.putRecord('agent_tasks', record);
          return { entity: 'agent_tasks', record };
        },
      },
    ];

    it.each(PRESENT)(
      'keeps a $entity record PostgreSQL already holds instead of overwriting it with memory’s',
      async ({ entity, prepare }) => {
        const source = await sampleSource();
        const pg = postgresSides(db);
        const present = await prepare(source, pg);
        const preexisting = (await snapshot(pg))[entity]!.length;

        const report = await run(source, { batchSize: 5 });

        const expected = await snapshot(source);
        const port =
          entity === 'agent_tasks' ? (source.tasks as RecordPort<object>) : (source.graph as RecordPort<object>);
        const key = JSON.stringify(port.keyOf(entity as never, present.record as never));
        expected[entity] = expected[entity]!.map((record) =>
          JSON.stringify(port.keyOf(entity as never, record as never)) === key ? present.record : record,
        );
        expect(await snapshot(pg)).toEqual(expected);
        expect(entityReport(report, entity)).toMatchObject({
          skippedExisting: preexisting,
          copied: expected[entity]!.length - preexisting,
          countsMatch: true,
        });
      },
    );

    it.each([
      { batches: 3, stoppedIn: 'projects' },
      { batches: 12, stoppedIn: 'dependencies' },
      { batches: 25, stoppedIn: 'contributions' },
    ])(
      'resumes a run stopped in $stoppedIn after its last committed batch and copies the rest exactly once',
      async ({ batches, stoppedIn }) => {
        const source = await sampleSource();
        const batchSize = 5;
        const first = await run(source, { batchSize, ...abortAfter(batches) });

        expect(first.interrupted).toBe(true);
        expect(first.countsMatch).toBe(false);
        const stopped = BACKFILL_ENTITIES.indexOf(stoppedIn);
        expect(first.entities.map((e) => e.status)).toEqual(
          BACKFILL_ENTITIES.map((_, i) => (i < stopped ? 'completed' : i === stopped ? 'interrupted' : 'not-reached')),
        );
        expect(first.totals.copied).toBe(first.totals.scanned);
        expect(entityReport(first, stoppedIn).copied % batchSize).toBe(0);
        expect(entityReport(first, stoppedIn).copied).toBeGreaterThan(0);
        expect(formatBackfillReport(first)).toContain('INTERRUPTED');
        const checkpoint = (await loadCheckpoints(db)).get(checkpointName('graph', stoppedIn))!;
        expect(checkpoint).toMatchObject({ completed: false, copied: entityReport(first, stoppedIn).copied });

        const second = await run(source, { batchSize });

        expect(second).toMatchObject({ interrupted: false, startedOver: false, countsMatch: true });
        expect(second.entities.map((e) => e.status)).toEqual(
          BACKFILL_ENTITIES.map((_, i) => (i < stopped ? 'already-complete' : 'completed')),
        );
        expect(entityReport(second, stoppedIn).resumedAfter).toEqual(checkpoint.lastKey);
        // Resumed after the checkpoint: nothing read twice, so nothing found already there.
        expect(second.totals.skippedExisting).toBe(0);
        for (const entity of BACKFILL_ENTITIES) {
          const [a, b] = [entityReport(first, entity), entityReport(second, entity)];
          expect(a.copied + b.copied).toBe(b.memoryCount);
        }
        expect(await snapshot(postgresSides(db))).toEqual(await snapshot(source));
      },
    );

    it('resumes from checkpoints an earlier version keyed by entity name alone', async () => {
      const source = await sampleSource();
      const first = await run(source, { batchSize: 5, ...abortAfter(12) });
      const checkpoint = (await loadCheckpoints(db)).get(checkpointName('graph', 'dependencies'))!;
      expect(checkpoint.completed).toBe(false);
      // As the earlier version wrote them: "projects", "dependencies".
      await db.query(`UPDATE ${PROGRESS_TABLE} SET entity = split_part(entity, '.', 2)`);

      const second = await run(source, { batchSize: 5 });

      expect(second).toMatchObject({ interrupted: false, startedOver: false, countsMatch: true });
      expect(entityReport(second, 'projects').status).toBe('already-complete');
      expect(entityReport(second, 'dependencies')).toMatchObject({
        status: 'completed',
        resumedAfter: checkpoint.lastKey,
        skippedExisting: 0,
      });
      expect(entityReport(first, 'dependencies').copied + entityReport(second, 'dependencies').copied).toBe(
        entityReport(second, 'dependencies').memoryCount,
      );
      expect([...(await loadCheckpoints(db)).keys()].sort()).toEqual(
        BACKFILL_ENTITIES.map((entity) => checkpointName(entity === 'agent_tasks' ? 'tasks' : 'graph', entity)).sort(),
      );
    });

    it('commits neither the rows nor the checkpoint of a batch that fails, and the next run resumes before it', async () => {
      const source = await sampleSource();
      const batchSize = 5;
      // The third contributions batch refers to a contributor PostgreSQL does not have: the statement fails.
      let batches = 0;
      const broken = alteredSource(source, (entity, page, options) =>
        entity === 'contributions' && options.limit === batchSize && ++batches === 3
          ? page.map((c, i) =>
              i === 2 ? { ...(c as Contribution), contributorId: '99999999-0000-4000-8000-000000000000' } : c,
            )
          : page,
      );

      await expect(run(broken, { batchSize })).rejects.toMatchObject({ code: '23503' });

      const checkpoint = (await loadCheckpoints(db)).get(checkpointName('graph', 'contributions'))!;
      expect(checkpoint).toMatchObject({ completed: false, copied: 2 * batchSize });
      expect(await graphRecords(postgresSides(db).graph, 'contributions')).toEqual(
        (await graphRecords(source.graph, 'contributions')).slice(0, 2 * batchSize),
      );

      const resumed = await run(source, { batchSize });
      expect(entityReport(resumed, 'contributions')).toMatchObject({
        resumedAfter: checkpoint.lastKey,
        skippedExisting: 0,
        copied: resumed.entities[4]!.memoryCount - 2 * batchSize,
      });
      expect(await snapshot(postgresSides(db))).toEqual(await snapshot(source));
    });

    it('scans everything again with restart: true and copies nothing twice', async () => {
      const source = await sampleSource();
      const first = await run(source, { batchSize: 5, ...abortAfter(12) });
      expect(first.interrupted).toBe(true);

      const restarted = await run(source, { batchSize: 5, restart: true });

      expect(restarted).toMatchObject({ startedOver: true, interrupted: false, countsMatch: true });
      for (const e of restarted.entities) {
        expect(e).toMatchObject({ status: 'completed', resumedAfter: null, scanned: e.memoryCount });
        expect(e.skippedExisting).toBe(entityReport(first, e.entity).copied);
      }
      expect(await snapshot(postgresSides(db))).toEqual(await snapshot(source));
    });

    it('reports per-entity counts of both sides and says which entities differ', async () => {
      const source = await sampleSource(10);
      const matching = await run(source);
      expect(formatBackfillReport(matching)).toMatch(/counts match on every entity$/);
      for (const entity of BACKFILL_ENTITIES)
        expect(formatBackfillReport(matching)).toMatch(new RegExp(`^${entity} .* match$`, 'm'));

      // A contributor only PostgreSQL has: the next run (a re-scan) copies nothing and reports the difference.
      const [contributor] = await graphRecords(source.graph, 'contributors');
      await postgresSides(db).graph.putRecord('contributors', {
        ...contributor!,
        id: '99999999-0000-4000-8000-000000000000',
      });
      const report = await run(source);

      const contributors = entityReport(report, 'contributors');
      expect(contributors).toMatchObject({ countsMatch: false, postgresCount: contributors.memoryCount + 1 });
      expect(report.entities.filter((e) => !e.countsMatch).map((e) => e.entity)).toEqual(['contributors']);
      expect(report.countsMatch).toBe(false);
      expect(report.totals.postgresCount).toBe(report.totals.memoryCount + 1);
      expect(formatBackfillReport(report)).toContain(
        `COUNTS DIFFER: contributors (memory ${contributors.memoryCount}, postgres ${contributors.memoryCount + 1})`,
      );
    });

    it('reports dependency edges whose projects PostgreSQL lacks as unresolved instead of copying or counting them as present', async () => {
      const source = await sampleSource();
      const edges = await graphRecords(source.graph, 'dependencies');
      const gone = edges[0]!.to;
      const touching = edges.filter((e) =>
        [e.from, e.to].some((ref) => ref.ecosystem === gone.ecosystem && ref.name === gone.name),
      ).length;
      // Copy the projects only (30 in batches of 7: the 5th batch ends them), then lose one in PostgreSQL.
      expect((await run(source, { batchSize: 7, ...abortAfter(5) })).entities.map((e) => e.status)).toEqual([
        'completed',
        ...Array(5).fill('not-reached'),
      ]);
      expect(await postgresSides(db).graph.deleteRecord('projects', [gone.ecosystem, gone.name])).toBe(true);

      const report = await run(source, { batchSize: 7 });

      const dependencies = entityReport(report, 'dependencies');
      expect(dependencies).toMatchObject({
        unresolved: touching,
        skippedExisting: 0,
        copied: edges.length - touching,
        countsMatch: false,
      });
      expect(dependencies.postgresCount).toBe(edges.length - touching);
      expect(report.totals.unresolved).toBe(touching);
      expect(formatBackfillReport(report)).toMatch(/^entity .* unresolved .*$/m);
    });

    it('copies a snapshot file opened with MemoryGraphStore.open and MemoryAgentTaskStore.open', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'dw-backfill-'));
      try {
        const original = await sampleSource();
        await original.graph.saveSnapshot(join(dir, 'graph.json'));
        await original.tasks.saveSnapshot(join(dir, 'tasks.json'));
        const loaded = {
          graph: await MemoryGraphStore.open({ snapshotPath: join(dir, 'graph.json') }),
          tasks: await MemoryAgentTaskStore.open({ snapshotPath: join(dir, 'tasks.json') }),
        };

        const report = await run(loaded, { batchSize: 16 });

        expect(report.countsMatch).toBe(true);
        expect(report.totals.copied).toBeGreaterThan(0);
        expect(await snapshot(postgresSides(db))).toEqual(await snapshot(original));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('rejects a batch size that is not a positive integer before touching the database', async () => {
      const source = await sampleSource(5);
      for (const batchSize of [0, -1, 2.5]) await expect(run(source, { batchSize })).rejects.toThrow(TypeError);
      expect(await db.query(`SELECT entity FROM ${PROGRESS_TABLE}`)).toEqual([]);
    });

    describe('while dual-write is on', () => {
      const cleanups: (() => Promise<void>)[] = [];
      afterEach(async () => {
        for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
      });

      /** A dual-write runtime over `memory` and the backend's database, as an application runs it. */
      async function openRuntime(
        memory: { graph: MemoryGraphStore; tasks: MemoryAgentTaskStore },
        replayIntervalMs: number,
      ): Promise<DualWriteRuntime> {
        const dir = await mkdtemp(join(tmpdir(), 'dw-backfill-rt-'));
        cleanups.push(() => rm(dir, { recursive: true, force: true }));
        const outbox = await FileOutbox.open({ path: join(dir, 'outbox.jsonl') });
        cleanups.push(() => outbox.close());
        const quiet = { info: () => {}, warn: () => {}, error: () => {} };
        const rt = await openDualWrite({
          db,
          memory,
          env: {},
          flags: new FlagState([new ManualFlagSource({ stage: 'dual-write' })], { logger: quiet }),
          outbox,
          logger: quiet,
          // Later than every sample write, so "newer" is visible in updatedAt.
          context: { clock: new ManualClock('2027-01-01T00:00:00.000Z'), ids: new SequenceIds() },
          replayer: { intervalMs: replayIntervalMs },
        });
        cleanups.push(() => rt.close());
        return rt;
      }

      /** Waits for in-flight mirror writes, then replays the outbox until it is empty. */
      async function settle(rt: DualWriteRuntime): Promise<void> {
        await rt.mirror.drain();
        for (let round = 0; round < 50 && rt.outbox.stats().depth > 0; round++) await rt.replayer.replayOnce();
        expect(rt.outbox.stats().depth).toBe(0);
      }

      it('never overwrites a newer mirrored write, and records written through the runtime end equal on both sides', async () => {
        const memory = await sampleSource(40);
        const rt = await openRuntime(memory, 20);
        const projects = await graphRecords(memory.graph, 'projects');
        const tasks = await taskRecords(memory.tasks);
        const written = { projects: new Set<string>(), contributors: new Set<string>(), tasks: new Set<string>() };

        // Pages of 3 in key order: the writer leaves each page's first project to the racing writes below.
        const rewritten = projects.filter((_, i) => i % 3 !== 0);
        let backfilling = true;
        const writer = (async () => {
          for (let i = 0; backfilling || i < 30; i++) {
            const project = rewritten[(i * 7) % rewritten.length]!;
            await rt.graph.upsertProject({
              ecosystem: project.ecosystem,
              name: project.name,
              description: `rewritten ${i}`,
            });
            written.projects.add(JSON.stringify([project.ecosystem, project.name]));
            written.contributors.add((await rt.graph.createContributor({ name: `newcomer ${i}`, metadata: { i } })).id);
            const task = tasks[(i * 5) % tasks.length]!;
            await rt.tasks.updateTask(task.id, { currentStep: `step ${i}` });
            written.tasks.add(task.id);
          }
        })();
        // And, for certain, a write between the backfill's read of a page and its insert: the
        // first project of every page is rewritten (and mirrored) after the backfill read it.
        let raced = 0;
        const racing = alteredSource(memory, async (entity, page, options) => {
          if (entity !== 'projects' || options.limit !== 3 || page.length === 0) return page;
          const project = page[0] as Project;
          await rt.graph.upsertProject({
            ecosystem: project.ecosystem,
            name: project.name,
            description: `raced ${raced++}`,
          });
          written.projects.add(JSON.stringify([project.ecosystem, project.name]));
          return page;
        });
        const report = await run(racing, { batchSize: 3 }).finally(() => (backfilling = false));
        await writer;
        await settle(rt);

        expect(report.interrupted).toBe(false);
        expect(raced).toBe(Math.ceil(projects.length / 3));
        const pg = await snapshot(rt.postgres);
        const mem = await snapshot(memory);
        const byKey = (records: unknown[], keyOf: (r: never) => string) =>
          new Map(records.map((r) => [keyOf(r as never), r]));
        const pgProjects = byKey(pg.projects!, (p: Project) => JSON.stringify([p.ecosystem, p.name]));
        const memProjects = byKey(mem.projects!, (p: Project) => JSON.stringify([p.ecosystem, p.name]));
        const pgTasks = byKey(pg.agent_tasks!, (t: { id: string }) => t.id);
        const memTasks = byKey(mem.agent_tasks!, (t: { id: string }) => t.id);
        // The newest write of every record written during the run is in PostgreSQL: no older copy replaced it.
        for (const key of written.projects) {
          const [inPg, inMemory] = [pgProjects.get(key) as Project, memProjects.get(key) as Project];
          expect({ key, description: inPg.description, updatedAt: inPg.updatedAt }).toEqual({
            key,
            description: inMemory.description,
            updatedAt: inMemory.updatedAt,
          });
        }
        for (const id of written.tasks) expect(pgTasks.get(id)).toEqual(memTasks.get(id));
        // Created only through the runtime: equal, and the whole entity too.
        expect(written.contributors.size).toBeGreaterThanOrEqual(30);
        expect(pg.contributors).toEqual(mem.contributors);
        // Entities the runtime did not write are copied exactly.
        for (const entity of ['dependencies', 'assets', 'contributions']) expect(pg[entity]).toEqual(mem[entity]);
        expect(pg.agent_tasks).toEqual(mem.agent_tasks);
      });

      // The tests below force, deterministically, the interleavings where copying with ON
      // CONFLICT DO NOTHING meets mirrored writes. Mirroring re-ran operations once, which
      // counted totals and dependencies twice or not at all here; it now copies the records
      // memory holds after each write, so both sides converge.

      it('a project upserted through the runtime before the backfill reaches it arrives whole (createdAt, dependencyCount) in PostgreSQL', async () => {
        const memory = await sampleSource(10);
        const rt = await openRuntime(memory, 3_600_000);
        const project = (await graphRecords(memory.graph, 'projects')).find((p) => p.dependencyCount > 0)!;
        const ref = { ecosystem: project.ecosystem, name: project.name };

        // The mirror copies the project as memory holds it after the upsert, not the upsert's arguments alone.
        await rt.graph.upsertProject({ ...ref, description: 'rewritten before the backfill' });
        const report = await run(memory);
        await settle(rt);

        const inMemory = (await memory.graph.getProject(ref))!;
        expect(inMemory).toMatchObject({
          createdAt: project.createdAt,
          dependencyCount: project.dependencyCount,
          description: 'rewritten before the backfill',
        });
        expect(await rt.postgres.graph.getProject(ref)).toEqual(inMemory);
        expect(entityReport(report, 'projects').skippedExisting).toBe(1);
        // Its edges were copied, and PostgreSQL's count agrees with its own edge rows.
        const edges = (await graphRecords(rt.postgres.graph, 'dependencies')).filter(
          (e) => e.from.ecosystem === ref.ecosystem && e.from.name === ref.name,
        );
        expect(edges).toHaveLength(project.dependencyCount);
      });

      it('a contribution replayed between its asset’s copy and its own leaves the asset total equal to memory’s', async () => {
        const memory = await sampleSource(10);
        const rt = await openRuntime(memory, 3_600_000);
        const [asset] = await graphRecords(memory.graph, 'assets');
        const [contributor] = await graphRecords(memory.graph, 'contributors');

        // Mirrored before the backfill: PostgreSQL has neither contributor nor asset, so it is journaled.
        const contribution = await rt.graph.createContribution({
          contributorId: contributor!.id,
          assetId: asset!.id,
          costAmount: '10.00',
          coherenceScore: '0.50',
        });
        expect(rt.outbox.stats().depth).toBe(1);
        const inMemory = (await memory.graph.getAsset(asset!.id))!;
        expect(inMemory.totalCost).toBe(addCents(asset!.totalCost, 1000));

        // The backfill copies the asset with memory's total (contribution included), then stops.
        const controller = new AbortController();
        const first = await run(memory, {
          signal: controller.signal,
          onProgress: (e) => e.entity === 'assets' && e.scanned === e.total && controller.abort(),
        });
        expect(entityReport(first, 'contributions').status).toBe('not-reached');
        // The replayer copies the asset and the contribution as records: no trigger adds the cost again.
        await settle(rt);
        const resumed = await run(memory);

        expect(entityReport(resumed, 'contributions')).toMatchObject({ skippedExisting: 1, countsMatch: true });
        expect(await rt.postgres.graph.getContribution(contribution.id)).toEqual(contribution);
        expect(await rt.postgres.graph.getAsset(asset!.id)).toEqual(inMemory);
      });

      /** Two projects, `from` first in key order and `to` last, with no edge from one to the other. */
      async function unlinkedPair(memory: Sides): Promise<{ from: Project; to: Project }> {
        const projects = await graphRecords(memory.graph, 'projects');
        const edges = new Set(
          (await graphRecords(memory.graph, 'dependencies')).map((e) => JSON.stringify([e.from, e.to])),
        );
        const from = projects[0]!;
        const to = projects.findLast(
          (p) =>
            !edges.has(
              JSON.stringify([
                { ecosystem: from.ecosystem, name: from.name },
                { ecosystem: p.ecosystem, name: p.name },
              ]),
            ),
        )!;
        return { from, to };
      }
      const ref = (p: Project) => ({ ecosystem: p.ecosystem, name: p.name });

      it('an edge replayed between its source project’s copy and its own leaves dependencyCount equal to memory’s', async () => {
        const memory = await sampleSource(10);
        const rt = await openRuntime(memory, 3_600_000);
        const { from, to } = await unlinkedPair(memory);

        await rt.graph.addDependency(ref(from), ref(to)); // journaled: PostgreSQL has no projects yet
        expect(rt.outbox.stats().depth).toBe(1);
        const inMemory = (await memory.graph.getProject(ref(from)))!;
        expect(inMemory.dependencyCount).toBe(from.dependencyCount + 1);

        const controller = new AbortController();
        await run(memory, {
          signal: controller.signal,
          onProgress: (e) => e.entity === 'projects' && e.scanned === e.total && controller.abort(),
        });
        await settle(rt); // the replay copies the project with memory's count and the edge as a record
        const resumed = await run(memory);

        expect(entityReport(resumed, 'dependencies')).toMatchObject({ skippedExisting: 1, countsMatch: true });
        expect(await rt.postgres.graph.getProject(ref(from))).toEqual(inMemory);
      });

      it('an edge copied before its journaled write is replayed still brings its source project to memory’s dependencyCount', async () => {
        const memory = await sampleSource(10);
        const rt = await openRuntime(memory, 3_600_000);
        const { from, to } = await unlinkedPair(memory);

        // The first batch copies `from` alone (first in key order); `to` (last) is not in PostgreSQL yet.
        const first = await run(memory, { batchSize: 1, ...abortAfter(1) });
        expect(entityReport(first, 'projects').copied).toBe(1);
        await rt.graph.addDependency(ref(from), ref(to)); // journaled: `to` is missing in PostgreSQL
        expect(rt.outbox.stats().depth).toBe(1);
        const inMemory = (await memory.graph.getProject(ref(from)))!;
        await run(memory); // copies `to`, then the edge itself, as a record (no bump)
        await settle(rt); // the replay copies the source project as memory holds it, count included

        expect(inMemory).toMatchObject({ dependencyCount: from.dependencyCount + 1 });
        expect(await rt.postgres.graph.getProject(ref(from))).toEqual(inMemory);
        expect(await rt.postgres.graph.countDependents(ref(to))).toBe(await memory.graph.countDependents(ref(to)));
      });
    });
  });
}
