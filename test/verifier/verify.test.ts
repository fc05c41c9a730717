import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { FlagState } from '../../flags/flag-state.js';
import { ManualFlagSource } from '../../flags/manual-flags.js';
import type { TaskStatus } from '../../src/stores/agent-task/agent-task-model.js';
import type { Contributor } from '../../src/stores/graph/graph-model.js';
import { FileOutbox } from '../../src/dualwrite/file-outbox.js';
import { openDualWrite } from '../../src/runtime/open-dual-write.js';
import type { DualWriteRuntime } from '../../src/runtime/dual-write-runtime.js';
import { MemoryAgentTaskStore } from '../../src/stores/agent-task/memory-agent-task-store.js';
import { MemoryGraphStore } from '../../src/stores/graph/memory-graph-store.js';
import { PostgresAgentTaskStore } from '../../src/stores/agent-task/postgres-agent-task-store.js';
import { PostgresGraphStore } from '../../src/stores/graph/postgres-graph-store.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import type { RecordKey, RecordPort } from '../../src/ports/record-port.js';
import { readAll } from '../../src/ports/record-scan.js';
import { applySampleWrite, mulberry32, sampleWrites } from '../../src/cli/demo/sample-data.js';
import { AGENT_TASK_DEFINITION } from '../../src/stores/agent-task/agent-task-store-definition.js';
import { GRAPH_DEFINITION } from '../../src/stores/graph/graph-store-definition.js';
import { verifyTarget, type AnyTarget } from '../../verifier/verify-target.js';
import { formatVerifyReport } from '../../src/cli/verify-report.js';
import { verify, type DifferenceKind, type VerifyOptions, type VerifyReport } from '../../verifier/verify.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { eventually } from '../support/eventually.js';

/**
 * verify() against injected drift in every entity (found, classified, nothing else
 * reported), on equal sides (checksums alone prove equality), at 100k rows (bisection
 * descends only into the differing range), and under live dual writes (differences of
 * writes in flight are re-checked away, never reported).
 */

// ---------------------------------------------------------------------------------------
// Harness

type AnyPort = RecordPort<Record<string, object>>;
type Store = 'graph' | 'tasks';

interface Sides {
  readonly db: SqlExecutor;
  readonly memory: { readonly graph: MemoryGraphStore; readonly tasks: MemoryAgentTaskStore };
  readonly postgres: { readonly graph: PostgresGraphStore; readonly tasks: PostgresAgentTaskStore };
  readonly targets: AnyTarget[];
}

function sidesOver(
  db: SqlExecutor,
  memory = { graph: new MemoryGraphStore(), tasks: new MemoryAgentTaskStore() },
  postgres = { graph: new PostgresGraphStore(db), tasks: new PostgresAgentTaskStore(db) },
): Sides {
  return {
    db,
    memory,
    postgres,
    targets: [
      verifyTarget(GRAPH_DEFINITION, memory.graph, postgres.graph),
      verifyTarget(AGENT_TASK_DEFINITION, memory.tasks, postgres.tasks),
    ],
  };
}

/** Both sides given the same sample workload through their store APIs (triggers and all). */
async function seededSides(db: SqlExecutor, projects = 60): Promise<Sides> {
  const sides = sidesOver(db);
  for (const write of sampleWrites({ projects })) {
    await applySampleWrite(write, sides.memory);
    await applySampleWrite(write, sides.postgres);
  }
  return sides;
}

const port = (sides: Sides, side: 'memory' | 'postgres', store: Store) => sides[side][store] as unknown as AnyPort;
const storeOf = (entity: string): Store => (entity === 'agent_tasks' ? 'tasks' : 'graph');
const ENTITIES = ['projects', 'dependencies', 'contributors', 'assets', 'contributions', 'agent_tasks'] as const;
const NO_DIFFERENCES = { missing_in_postgres: 0, missing_in_memory: 0, fields_differ: 0 };
const plusMs = (iso: string, ms = 1) => new Date(Date.parse(iso) + ms).toISOString();

/** A difference as the tests expect it. */
interface Expected {
  readonly entity: string;
  readonly key: RecordKey;
  readonly kind: DifferenceKind;
  readonly fields?: readonly string[];
}

const describeDifference = (d: Expected) =>
  `${d.entity} ${JSON.stringify(d.key)} ${d.kind}${d.fields ? ` [${d.fields.join(',')}]` : ''}`;

/**
 * Injects drift of every kind into every entity, at the first and last keys and inside
 * ranges, and returns the differences verify must report (and nothing else).
 */
async function injectDrift(sides: Sides): Promise<Expected[]> {
  const expected: Expected[] = [];
  const all = async (entity: string) =>
    readAll(port(sides, 'memory', storeOf(entity)), entity) as Promise<Record<string, unknown>[]>;
  const keyOf = (entity: string, record: object) => port(sides, 'memory', storeOf(entity)).keyOf(entity, record);
  const onlyIn = async (side: 'memory' | 'postgres', entity: string, record: object) => {
    await port(sides, side, storeOf(entity)).putRecord(entity, record);
    expected.push({
      entity,
      key: keyOf(entity, record),
      kind: side === 'memory' ? 'missing_in_postgres' : 'missing_in_memory',
    });
  };
  const dropFrom = async (side: 'memory' | 'postgres', entity: string, record: object) => {
    expect(await port(sides, side, storeOf(entity)).deleteRecord(entity, keyOf(entity, record))).toBe(true);
    expected.push({
      entity,
      key: keyOf(entity, record),
      kind: side === 'postgres' ? 'missing_in_postgres' : 'missing_in_memory',
    });
  };
  const change = async (
    side: 'memory' | 'postgres',
    entity: string,
    record: Record<string, unknown>,
    changes: Record<string, unknown>,
  ) => {
    await port(sides, side, storeOf(entity)).putRecord(entity, { ...record, ...changes });
    expected.push({ entity, key: keyOf(entity, record), kind: 'fields_differ', fields: Object.keys(changes) });
  };

  const projects = await all('projects');
  await onlyIn('memory', 'projects', { ...projects[0]!, ecosystem: 'npm', name: 'only-in-memory', dependencyCount: 0 });
  await onlyIn('postgres', 'projects', {
    ...projects[0]!,
    ecosystem: 'zzz',
    name: 'only-in-postgres',
    dependencyCount: 0,
  });
  await change('postgres', 'projects', projects[10]!, { updatedAt: plusMs(projects[10]!.updatedAt as string) });
  await change('memory', 'projects', projects[20]!, { description: 'changed in memory' });

  const edges = await all('dependencies');
  await dropFrom('postgres', 'dependencies', edges[0]!);
  await dropFrom('memory', 'dependencies', edges.at(-1)!);
  await change('postgres', 'dependencies', edges[30]!, { createdAt: plusMs(edges[30]!.createdAt as string) });

  const contributors = (await all('contributors')) as unknown as Contributor[];
  await onlyIn('memory', 'contributors', { ...contributors[0]!, id: '00000000-0000-4000-8000-000000000001' });
  // Three PostgreSQL-only rows past memory's last key: that open range holds more rows in PostgreSQL.
  for (const n of [1, 2, 3])
    await onlyIn('postgres', 'contributors', { ...contributors[0]!, id: `ffffffff-0000-4000-8000-00000000000${n}` });
  const c5 = contributors[5]!;
  await change('postgres', 'contributors', c5 as never, {
    metadata: { ...c5.metadata, level: (c5.metadata.level as number) + 1 },
  });

  const assets = await all('assets');
  await onlyIn('memory', 'assets', { ...assets[0]!, id: '00000001-0000-4000-8001-000000000000' });
  await onlyIn('postgres', 'assets', { ...assets[0]!, id: '00000001-0000-4000-8000-000000000000' });
  // One cent, changed inside PostgreSQL.
  await sides.db.query('UPDATE assets SET total_cost = total_cost + 0.01 WHERE id = $1', [assets[2]!.id]);
  expected.push({ entity: 'assets', key: [assets[2]!.id as string], kind: 'fields_differ', fields: ['totalCost'] });

  const contributions = await all('contributions');
  await dropFrom('postgres', 'contributions', contributions[60]!);
  await dropFrom('memory', 'contributions', contributions[61]!);
  await change('memory', 'contributions', contributions[0]!, {
    timestamp: plusMs(contributions[0]!.timestamp as string),
  });
  const last = contributions.at(-1)!;
  await change('postgres', 'contributions', last, { metadata: { ...(last.metadata as object), extra: 1 } });

  const tasks = await all('agent_tasks');
  await onlyIn('memory', 'agent_tasks', { ...tasks[0]!, id: 'task_0' });
  await onlyIn('postgres', 'agent_tasks', { ...tasks[0]!, id: 'task_zzz' });
  const statuses: TaskStatus[] = ['pending', 'running', 'completed', 'failed', 'needs_decision'];
  await change('postgres', 'agent_tasks', tasks[7]!, { status: statuses.find((s) => s !== tasks[7]!.status) });
  await change('memory', 'agent_tasks', tasks[8]!, { context: { ...(tasks[8]!.context as object), note: 'x' } });
  return expected;
}

function countsByEntity(differences: readonly Expected[]): Record<string, Record<DifferenceKind, number>> {
  const counts = Object.fromEntries(ENTITIES.map((e) => [e, { ...NO_DIFFERENCES }]));
  for (const d of differences) counts[d.entity]![d.kind]++;
  return counts;
}

const SMALL: VerifyOptions = { rangeRows: 5, leafRows: 2, fanout: 3, graceMs: 0 };
const DEFAULTS: VerifyOptions = { graceMs: 0 };
const OPTION_SETS = [
  ['small ranges and leaves (bisection)', SMALL],
  ['default ranges and leaves', DEFAULTS],
] as const;

// ---------------------------------------------------------------------------------------

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`verify on ${factory.name}`, () => {
    const backend = useBackend(factory);

    it.each(OPTION_SETS)('reports equal sides as consistent from checksums alone, with %s', async (_name, options) => {
      const sides = await seededSides(backend.current.db!);
      const report = await verify(sides.db, sides.targets, options);
      expect(report.consistent).toBe(true);
      expect(report.differences).toEqual([]);
      expect(report.entities.map((e) => e.entity)).toEqual([...ENTITIES]);
      for (const e of report.entities) {
        expect({
          entity: e.entity,
          rowsFetched: e.rowsFetched,
          transient: e.transient,
          ratio: e.consistencyRatio,
          differences: e.differences,
        }).toEqual({
          entity: e.entity,
          rowsFetched: 0,
          transient: 0,
          ratio: 1,
          differences: NO_DIFFERENCES,
        });
        expect(e.rowsMemory).toBeGreaterThan(5);
        expect(e.rowsPostgres).toBe(e.rowsMemory);
      }
      const text = formatVerifyReport(report);
      expect(text).toContain('CONSISTENT');
      expect(text).not.toContain('DIFFERENCES FOUND');
      for (const entity of ENTITIES) expect(text).toContain(entity);
    });

    it.each(OPTION_SETS)(
      'finds and classifies drift in every entity and nothing else, with %s',
      async (_name, options) => {
        const sides = await seededSides(backend.current.db!);
        const expected = await injectDrift(sides);
        const report = await verify(sides.db, sides.targets, options);

        expect(report.consistent).toBe(false);
        expect(Object.fromEntries(report.entities.map((e) => [e.entity, e.differences]))).toEqual(
          countsByEntity(expected),
        );
        expect(report.differences.map(describeDifference).sort()).toEqual(expected.map(describeDifference).sort());
        for (const e of report.entities) {
          expect(e.transient).toBe(0);
          const rowsMemory = sides.memory[storeOf(e.entity)].tables.size(e.entity as never);
          const [{ n }] = (await sides.db.query<{ n: string }>(
            `SELECT count(*)::text AS n FROM ${e.entity === 'dependencies' ? 'project_dependencies' : e.entity}`,
          )) as [{ n: string }];
          expect([e.rowsMemory, e.rowsPostgres]).toEqual([rowsMemory, Number(n)]);
          const persistent =
            e.differences.missing_in_postgres + e.differences.missing_in_memory + e.differences.fields_differ;
          // Over the union of both sides' keys: every row of memory plus those only PostgreSQL holds.
          expect(e.consistencyRatio).toBeCloseTo(1 - persistent / (e.rowsMemory + e.differences.missing_in_memory), 12);
          expect(e.consistencyRatio).toBeGreaterThanOrEqual(0);
          if (options === SMALL) {
            // Bisection: more ranges than the initial ones, and only a part of the rows fetched.
            expect(e.rangesCompared).toBeGreaterThan(Math.ceil(e.rowsMemory / SMALL.rangeRows!));
            if (e.rowsMemory > 50) expect(e.rowsFetched).toBeLessThan((e.rowsMemory + e.rowsPostgres) / 2);
          }
        }
        // Each difference carries both sides' records as compared, and a diff for changed fields.
        for (const d of report.differences) {
          const store = storeOf(d.entity);
          expect({ key: d.key, store: d.store, memory: d.memory, postgres: d.postgres }).toEqual({
            key: d.key,
            store,
            memory: await port(sides, 'memory', store).getRecord(d.entity, d.key),
            postgres: await port(sides, 'postgres', store).getRecord(d.entity, d.key),
          });
          if (d.kind === 'fields_differ') for (const field of d.fields!) expect(d.diff).toContain(field);
        }
        const asset = report.differences.find((d) => d.entity === 'assets' && d.kind === 'fields_differ')!;
        const [memoryTotal, postgresTotal] = [
          (asset.memory as { totalCost: string }).totalCost,
          (asset.postgres as { totalCost: string }).totalCost,
        ];
        expect(Math.round(Number(postgresTotal) * 100) - Math.round(Number(memoryTotal) * 100)).toBe(1);

        const text = formatVerifyReport(report);
        expect(text).toContain('DIFFERENCES FOUND');
        expect(text).not.toContain('CONSISTENT');
        for (const entity of ENTITIES) expect(text).toContain(`${storeOf(entity)}.${entity} [`);
        expect(text).toContain(`${JSON.stringify(asset.key)}: fields_differ (totalCost)`);
      },
    );

    it('keeps at most maxReported differences but counts them all', async () => {
      const sides = await seededSides(backend.current.db!);
      const expected = await injectDrift(sides);
      const report = await verify(sides.db, sides.targets, { ...SMALL, maxReported: 3 });
      expect(report.differences).toHaveLength(3);
      const counted = report.entities.reduce(
        (n, e) => n + e.differences.missing_in_postgres + e.differences.missing_in_memory + e.differences.fields_differ,
        0,
      );
      expect(counted).toBe(expected.length);
      expect(formatVerifyReport(report, 2)).toContain('... and 1 more');
    });

    it('finds the one difference among 100k rows, fetching only rows of the differing range', async () => {
      const sides = sidesOver(backend.current.db!);
      const base = Date.parse('2026-01-01T00:00:00.000Z');
      const id = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
      await sides.db.query(
        `INSERT INTO contributors (id, name, email, github_username, wallet_address, metadata, created_at, updated_at)
         SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'c' || i, NULL, NULL, NULL, jsonb_build_object('n', i, 'tag', 'x'),
                '2026-01-01T00:00:00Z'::timestamptz + i * interval '1 millisecond', '2026-01-01T00:00:00Z'::timestamptz + i * interval '1 millisecond'
         FROM generate_series(1, 100000) AS i`,
      );
      for (let i = 1; i <= 100_000; i++) {
        const at = new Date(base + i).toISOString();
        await sides.memory.graph.putRecord('contributors', {
          id: id(i),
          name: `c${i}`,
          email: null,
          githubUsername: null,
          walletAddress: null,
          metadata: { tag: 'x', n: i },
          createdAt: at,
          updatedAt: at,
        });
      }
      const clean = await verify(sides.db, sides.targets, DEFAULTS);
      const contributors = () => clean.entities.find((e) => e.entity === 'contributors')!;
      expect(clean.consistent).toBe(true);
      expect([contributors().rowsMemory, contributors().rowsPostgres, contributors().rowsFetched]).toEqual([
        100_000, 100_000, 0,
      ]);

      // One field of one row, then one row gone: each is found by descending into one range.
      const cases = [
        {
          row: 54_321,
          kind: 'fields_differ',
          fields: ['name'],
          sql: `UPDATE contributors SET name = 'changed' WHERE id = $1`,
          undo: `UPDATE contributors SET name = 'c54321' WHERE id = $1`,
        },
        {
          row: 77_777,
          kind: 'missing_in_postgres',
          fields: undefined,
          sql: `DELETE FROM contributors WHERE id = $1`,
          undo: undefined,
        },
      ] as const;
      for (const { sql, undo, row, kind, fields } of cases) {
        await sides.db.query(sql, [id(row)]);
        const report = await verify(sides.db, sides.targets, DEFAULTS);
        const entity = report.entities.find((e) => e.entity === 'contributors')!;
        expect(report.differences.map(describeDifference)).toEqual([
          describeDifference({ entity: 'contributors', key: [id(row)], kind, fields }),
        ]);
        expect(entity.differences).toEqual({ ...NO_DIFFERENCES, [kind]: 1 });
        // Default leaves hold at most 256 rows a side: one leaf fetched, not 200k rows.
        expect(entity.rowsFetched).toBeGreaterThan(0);
        expect(entity.rowsFetched).toBeLessThanOrEqual(2 * 256);
        expect(entity.rangesCompared).toBeLessThan(60);
        expect(entity.consistencyRatio).toBeCloseTo(1 - 1 / 100_000, 12);
        if (undo) await sides.db.query(undo, [id(row)]);
      }
    }, 180_000);

    it('reports no false alarm while a writer keeps writing through async dual-write, only transient differences', async () => {
      await withRuntime(backend.current.db!, async (runtime, logs, startWriting) => {
        const sides = sidesOver(runtime.db, runtime.memory, runtime.postgres);
        // Paced below what the mirror applies per second, so it catches up between bursts.
        const writer = startWriting(11, { burst: 5, pauseMs: 10 });
        await writer.warm();
        const settle = () => runtime.mirror.settled();
        const options: VerifyOptions[] = [
          { settle, graceMs: 5, rangeRows: 40, leafRows: 8, fanout: 4, onProgress: () => writer.nudge() },
          { settle, graceMs: 5, onProgress: () => writer.nudge() },
        ];
        const reports: VerifyReport[] = [];
        for (let run = 0; run < 16; run++) {
          reports.push(await verify(sides.db, sides.targets, options[run % options.length]));
          if (run >= 5 && reports.some((r) => transientOf(r) > 0)) break;
        }
        const written = await writer.stop();
        await runtime.mirror.drain();

        expect(reports.map((r) => r.differences.map(describeDifference))).toEqual(reports.map(() => []));
        expect(reports.map((r) => r.consistent)).toEqual(reports.map(() => true));
        // The writer really raced the verifier: some difference was seen and re-checked away.
        expect(reports.map(transientOf).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
        expect(written).toBeGreaterThan(100);
        // Once writes stop and the mirror drains, the sides are equal by checksum alone.
        const settled = await verify(sides.db, sides.targets, { graceMs: 0 });
        expect(settled.consistent).toBe(true);
        expect(settled.entities.map((e) => [e.entity, e.rowsFetched, e.transient])).toEqual(
          ENTITIES.map((e) => [e, 0, 0]),
        );
        expect(logs).toEqual([]);
      });
    }, 180_000);

    it('finishes a run while writes keep the mirror busy: settle waits for the writes in flight, not for an idle mirror', async () => {
      await withRuntime(backend.current.db!, async (runtime, _logs, startWriting) => {
        const sides = sidesOver(runtime.db, runtime.memory, runtime.postgres);
        // Writes only while fewer than 50 wait in the mirror: it keeps up, but is never idle.
        const limit = 5_000;
        const writer = startWriting(12, { keepQueued: 50, limit });
        await writer.warm();
        // One real difference, so differences are re-checked and settle() is called.
        const planted = {
          ...(await sides.memory.graph.scanRecords('contributors', { limit: 1 }))[0]!,
          id: 'ffffffff-0000-4000-8000-000000000001',
        };
        await sides.postgres.graph.putRecord('contributors', planted);
        const report = await verify(sides.db, sides.targets, {
          settle: () => runtime.mirror.settled(),
          graceMs: 5,
          onProgress: () => writer.nudge(),
        });
        const writesWhenReported = writer.count();
        await writer.stop();
        await runtime.mirror.drain();
        expect(report.differences.map(describeDifference)).toEqual([
          describeDifference({ entity: 'contributors', key: [planted.id], kind: 'missing_in_memory' }),
        ]);
        // The run ended while the writer was still writing, not only once it ran out of writes.
        expect(writesWhenReported).toBeLessThan(limit);
      });
    }, 180_000);
  });
}

/** A dual-write runtime over `db` with memory authoritative and an async mirror of one partition, lagging behind. */
async function withRuntime(
  db: SqlExecutor,
  work: (runtime: DualWriteRuntime, logs: string[], writer: (seed: number, pace: Pace) => Writer) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dw-verify-'));
  const outbox = await FileOutbox.open({ path: join(dir, 'outbox.jsonl') });
  const logs: string[] = [];
  const logger = {
    info: () => {},
    warn: (line: string) => void logs.push(line),
    error: (line: string) => void logs.push(line),
  };
  const runtime = await openDualWrite({
    db,
    env: {},
    flags: new FlagState([new ManualFlagSource({ stage: 'dual-write' })]),
    outbox,
    mirror: { mode: 'async', concurrency: 1 },
    // Writers answered before their mirror write is even on disk, so the mirror really lags.
    intentLog: false,
    verifier: { enabled: false },
    logger,
  });
  const writers: Writer[] = [];
  const writer = (seed: number, pace: Pace) => {
    const started = startWriter(runtime, seed, pace);
    writers.push(started);
    return started;
  };
  try {
    await work(runtime, logs, writer);
  } finally {
    // A failed test must not leave its writer writing into the next test's tables.
    for (const started of writers) await started.stop().catch(() => {});
    await runtime.close();
    await outbox.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const transientOf = (report: VerifyReport) => report.entities.reduce((n, e) => n + e.transient, 0);

/**
 * Writes through the dual-write stores in bursts until stopped (or `limit` writes): new
 * records of every entity and updates of existing ones (asset totals via contributions,
 * task lifecycles, project upserts), so the async mirror has writes in flight.
 */
type Pace = ({ readonly burst: number; readonly pauseMs: number } | { readonly keepQueued: number }) & {
  readonly limit?: number;
};

type Writer = ReturnType<typeof startWriter>;

function startWriter(runtime: DualWriteRuntime, seed: number, pace: Pace) {
  const random = mulberry32(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const contributors: string[] = [];
  const assets: string[] = [];
  const projects: { ecosystem: string; name: string }[] = [];
  const tasks: { id: string; next: TaskStatus[] }[] = [];
  let stopped = false;
  let writes = 0;
  let serial = 0;

  const write = async () => {
    const choice =
      contributors.length === 0 || assets.length === 0 || projects.length < 2
        ? Math.floor(random() * 3)
        : Math.floor(random() * 7);
    switch (choice) {
      case 0:
        contributors.push(
          (
            await runtime.graph.createContributor({
              name: `writer ${serial++}`,
              metadata: { n: serial, tags: ['a', 'é'] },
            })
          ).id,
        );
        break;
      case 1:
        assets.push((await runtime.graph.createAsset({ name: `asset ${serial++}`, assetType: 'code' })).id);
        break;
      case 2: {
        const project = { ecosystem: 'npm', name: `p-${Math.floor(random() * 40)}` };
        await runtime.graph.upsertProject({ ...project, description: `v${serial++}` });
        if (!projects.some((p) => p.name === project.name)) projects.push(project);
        break;
      }
      case 3:
        await runtime.graph.createContribution({
          contributorId: pick(contributors),
          assetId: pick(assets),
          costAmount: '1.25',
          coherenceScore: '0.5',
        });
        break;
      case 4: {
        const from = pick(projects);
        const to = pick(projects);
        if (from !== to) await runtime.graph.addDependency(from, to);
        break;
      }
      case 5:
        tasks.push({
          id: (
            await runtime.tasks.createTask({ direction: `do ${serial++}`, taskType: 'impl', model: 'm', command: 'c' })
          ).id,
          next: ['running', 'completed'],
        });
        break;
      default: {
        const task = tasks.find((t) => t.next.length > 0);
        if (task) await runtime.tasks.updateTask(task.id, { status: task.next.shift()!, progressPct: 50 });
      }
    }
    writes++;
  };

  // Writes run one after another on one chain, fed by the loop's bursts and by nudge().
  let chain: Promise<void> = Promise.resolve();
  let failure: unknown;
  const enqueue = (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) {
      chain = chain
        .then(() => (stopped || writes >= (pace.limit ?? Infinity) ? undefined : write()))
        .catch((error: unknown) => {
          failure ??= error;
        });
    }
    return chain;
  };
  const loop = (async () => {
    while (!stopped && writes < (pace.limit ?? Infinity)) {
      if ('burst' in pace) {
        await enqueue(pace.burst);
        await sleep(pace.pauseMs);
      } else if (runtime.mirror.depth() < pace.keepQueued) {
        await enqueue(1);
      } else {
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  })();
  return {
    /** Resolves once every entity has records. */
    async warm() {
      const warmed = () => contributors.length > 0 && assets.length > 0 && projects.length > 1 && tasks.length > 0;
      await eventually(() => expect(warmed(), 'records of every entity').toBe(true), { everyMs: 5 });
    },
    /**
     * A few more writes now, without waiting for them. PGlite answers queries without
     * yielding to the event loop, so during a verify on PGlite the loop's timer-paced
     * bursts stall; verify's progress callback nudges writes in between its queries.
     */
    nudge(): void {
      void enqueue(3);
    },
    count: () => writes,
    async stop(): Promise<number> {
      stopped = true;
      await loop;
      await chain;
      if (failure) throw failure;
      return writes;
    },
  };
}
