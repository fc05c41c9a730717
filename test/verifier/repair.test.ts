import { Registry } from 'prom-client';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AgentTask } from '../../src/stores/agent-task/agent-task-model.js';
import type { Asset, Contributor, DependencyEdge, Project } from '../../src/stores/graph/graph-model.js';
import type { Side } from '../../src/ports/stage.js';
import { MemoryAgentTaskStore } from '../../src/stores/agent-task/memory-agent-task-store.js';
import { MemoryGraphStore } from '../../src/stores/graph/memory-graph-store.js';
import { PostgresAgentTaskStore } from '../../src/stores/agent-task/postgres-agent-task-store.js';
import { PostgresGraphStore } from '../../src/stores/graph/postgres-graph-store.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import type { AgentTaskStore } from '../../src/stores/agent-task/agent-task-store.js';
import type { GraphStore } from '../../src/stores/graph/graph-store.js';
import type { RecordKey, RecordPort } from '../../src/ports/record-port.js';
import { readAll } from '../../src/ports/record-scan.js';
import { applySampleWrite, sampleWrites } from '../../src/cli/demo/sample-data.js';
import { AGENT_TASK_DEFINITION } from '../../src/stores/agent-task/agent-task-store-definition.js';
import { GRAPH_DEFINITION } from '../../src/stores/graph/graph-store-definition.js';
import { verifyTarget, type AnyTarget } from '../../verifier/verify-target.js';
import { VERIFY_METRIC, VerifierMetrics } from '../../verifier/metrics.js';
import { repair, type RepairOutcome } from '../../verifier/repair.js';
import { verify, type Difference, type DifferenceKind } from '../../verifier/verify.js';
import { metricSample } from '../support/metrics.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { eventually } from '../support/eventually.js';

/**
 * Fenced repair: the authoritative side's version is copied onto the other side only if
 * the other side still holds exactly what verify compared; a write that landed after the
 * comparison is kept (skipped_newer). Every attempt is recorded in dualwrite_repairs and
 * counted in dualwrite_repairs_total.
 */

// ---------------------------------------------------------------------------------------
// Harness

type AnyPort = RecordPort<Record<string, object>>;
type Store = 'graph' | 'tasks';
type SideStores = { readonly graph: GraphStore; readonly tasks: AgentTaskStore };

interface Sides {
  readonly db: SqlExecutor;
  readonly memory: { readonly graph: MemoryGraphStore; readonly tasks: MemoryAgentTaskStore };
  readonly postgres: { readonly graph: PostgresGraphStore; readonly tasks: PostgresAgentTaskStore };
  readonly targets: AnyTarget[];
  readonly registry: Registry;
  readonly metrics: VerifierMetrics;
}

const ENTITIES = ['projects', 'dependencies', 'contributors', 'assets', 'contributions', 'agent_tasks'] as const;
const storeOf = (entity: string): Store => (entity === 'agent_tasks' ? 'tasks' : 'graph');
const other = (side: Side): Side => (side === 'memory' ? 'postgres' : 'memory');
const port = (sides: Sides, side: Side, store: Store) => sides[side][store] as unknown as AnyPort;
const stores = (sides: Sides, side: Side) => sides[side] as unknown as SideStores;
const LATER = '2030-01-01T00:00:00.000Z';
const VERIFY = { graceMs: 0, rangeRows: 7, leafRows: 3, fanout: 3 };

/** Both sides given the same sample workload through their store APIs. */
async function seededSides(db: SqlExecutor): Promise<Sides> {
  const memory = { graph: new MemoryGraphStore(), tasks: new MemoryAgentTaskStore() };
  const postgres = { graph: new PostgresGraphStore(db), tasks: new PostgresAgentTaskStore(db) };
  for (const write of sampleWrites({ projects: 30 })) {
    await applySampleWrite(write, memory);
    await applySampleWrite(write, postgres);
  }
  const registry = new Registry();
  return {
    db,
    memory,
    postgres,
    targets: [
      verifyTarget(GRAPH_DEFINITION, memory.graph, postgres.graph),
      verifyTarget(AGENT_TASK_DEFINITION, memory.tasks, postgres.tasks),
    ],
    registry,
    metrics: new VerifierMetrics(registry),
  };
}

/** Every record of every entity on one side. */
async function snapshot(sides: Sides, side: Side): Promise<Record<string, object[]>> {
  const all: Record<string, object[]> = {};
  for (const entity of ENTITIES) all[entity] = await readAll(port(sides, side, storeOf(entity)), entity);
  return all;
}

const first = async <R>(sides: Sides, side: Side, entity: string, index = 0) =>
  (await readAll(port(sides, side, storeOf(entity)), entity))[index] as R;

interface RepairRow {
  store: string;
  entity: string;
  record_key: RecordKey;
  difference: DifferenceKind;
  target: Side;
  outcome: RepairOutcome;
  before: unknown;
  after: unknown;
}

const repairRows = (db: SqlExecutor) =>
  db.query<RepairRow>(
    'SELECT store, entity, record_key, difference, target, outcome, before, after FROM dualwrite_repairs ORDER BY id',
  );

const metricValue = metricSample;

const json = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;
const cents = (total: string) => Math.round(Number(total) * 100);

/**
 * Drift of every kind, written on `stale` (the side to be repaired): records only on the
 * authoritative side (a contributor with a contribution, a project, a task), records only
 * on the stale side (an asset, an edge, a task), and a changed field in every entity,
 * among them an asset total one cent off.
 */
async function injectDrift(sides: Sides, authoritative: Side): Promise<number> {
  const stale = other(authoritative);
  const put = (side: Side, entity: string, record: object) =>
    port(sides, side, storeOf(entity)).putRecord(entity, record);
  const contributor = await first<Contributor>(sides, authoritative, 'contributors');
  const asset = await first<Asset>(sides, authoritative, 'assets');
  const project = await first<Project>(sides, authoritative, 'projects', 3);
  const task = await first<AgentTask>(sides, authoritative, 'agent_tasks', 4);
  const projects = (await readAll(port(sides, authoritative, 'graph'), 'projects')) as Project[];
  const edges = (await readAll(port(sides, authoritative, 'graph'), 'dependencies')) as DependencyEdge[];
  const edgeKeys = new Set(edges.map((e) => JSON.stringify([e.from, e.to])));
  const [from, to] = [
    projects[0]!,
    projects.find(
      (p, i) =>
        i > 0 &&
        !edgeKeys.has(
          JSON.stringify([
            { ecosystem: projects[0]!.ecosystem, name: projects[0]!.name },
            { ecosystem: p.ecosystem, name: p.name },
          ]),
        ),
    )!,
  ];

  // Only on the authoritative side: to be inserted, parents before children.
  const newContributor = { ...contributor, id: 'aaaaaaaa-0000-4000-8000-000000000001', name: 'new' };
  await put(authoritative, 'contributors', newContributor);
  await put(authoritative, 'contributions', {
    id: 'aaaaaaaa-0000-4000-8000-0000000000c1',
    contributorId: newContributor.id,
    assetId: asset.id,
    costAmount: '5.00',
    coherenceScore: '0.25',
    metadata: {},
    timestamp: LATER,
  });
  await put(authoritative, 'projects', { ...project, name: 'only-authoritative', dependencyCount: 0 });
  await put(authoritative, 'agent_tasks', { ...task, id: 'task_only_authoritative' });
  // Only on the stale side: to be deleted.
  await put(stale, 'assets', { ...asset, id: 'bbbbbbbb-0000-4000-8000-000000000001' });
  await put(stale, 'dependencies', {
    from: { ecosystem: from.ecosystem, name: from.name },
    to: { ecosystem: to.ecosystem, name: to.name },
    createdAt: LATER,
  });
  await put(stale, 'agent_tasks', { ...task, id: 'task_only_stale' });
  // Changed fields on the stale side: to be overwritten.
  await put(stale, 'projects', { ...project, description: 'stale' });
  await put(stale, 'dependencies', { ...edges[2]!, createdAt: LATER });
  await put(stale, 'contributors', { ...contributor, metadata: { ...contributor.metadata, stale: true } });
  const total = await first<Asset>(sides, stale, 'assets', 1);
  await put(stale, 'assets', { ...total, totalCost: ((cents(total.totalCost) + 1) / 100).toFixed(2) });
  const contribution = await first<{ coherenceScore: string }>(sides, stale, 'contributions', 5);
  await put(stale, 'contributions', {
    ...contribution,
    coherenceScore: contribution.coherenceScore === '1.00' ? '0.99' : '1.00',
  });
  await put(stale, 'agent_tasks', { ...task, status: task.status === 'failed' ? 'completed' : 'failed' });
  return 13;
}

// ---------------------------------------------------------------------------------------

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`repair on ${factory.name}`, () => {
    const backend = useBackend(factory);
    beforeEach(async () => {
      await backend.current.db!.query('TRUNCATE dualwrite_repairs RESTART IDENTITY');
    });

    describe.each(['memory', 'postgres'] as const)('with %s authoritative', (authoritative) => {
      const stale = other(authoritative);

      it(`inserts, deletes and overwrites records on ${stale} until a second verify is consistent, recording each repair`, async () => {
        const sides = await seededSides(backend.current.db!);
        const expectedCount = await injectDrift(sides, authoritative);
        const before = await snapshot(sides, authoritative);
        const found = await verify(sides.db, sides.targets, VERIFY);
        expect(found.differences).toHaveLength(expectedCount);
        const kinds = found.differences.map((d) => d.kind);
        expect(new Set(kinds)).toEqual(new Set(['missing_in_postgres', 'missing_in_memory', 'fields_differ']));

        const results = await repair(found.differences, {
          authoritative,
          db: sides.db,
          targets: sides.targets,
          metrics: sides.metrics,
          allowDeletes: Infinity,
        });
        expect(results.map((r) => [r.difference.entity, r.difference.key, r.target, r.outcome])).toEqual(
          found.differences.map((d) => [d.entity, d.key, stale, 'repaired']),
        );

        const again = await verify(sides.db, sides.targets, VERIFY);
        expect(again.differences).toEqual([]);
        expect(again.consistent).toBe(true);
        // The stale side now holds exactly the authoritative side's records; the authoritative side is untouched.
        expect(await snapshot(sides, stale)).toEqual(before);
        expect(await snapshot(sides, authoritative)).toEqual(before);

        // The asset total is repaired to the cent, and the copied contribution did not add to any total.
        const totals = (side: Side) =>
          before.assets!.map(
            async (a) => ((await port(sides, side, 'graph').getRecord('assets', [(a as Asset).id])) as Asset).totalCost,
          );
        expect(await Promise.all(totals(stale))).toEqual(before.assets!.map((a) => (a as Asset).totalCost));

        // One row per attempt: what the stale side held, what was copied, and the outcome.
        const rows = await repairRows(sides.db);
        const side = (d: Difference, s: Side) => (s === 'memory' ? d.memory : d.postgres);
        expect(rows).toEqual(
          found.differences.map((d) => ({
            store: d.store,
            entity: d.entity,
            record_key: [...d.key],
            difference: d.kind,
            target: stale,
            outcome: 'repaired',
            before: json(side(d, stale)),
            after: json(side(d, authoritative)),
          })),
        );
        for (const entity of ENTITIES) {
          const count = found.differences.filter((d) => d.entity === entity).length;
          expect(
            await metricValue(sides.registry, VERIFY_METRIC.repairs, {
              entity: `${storeOf(entity)}.${entity}`,
              outcome: 'repaired',
            }),
          ).toBe(count);
        }
      });

      /**
       * Fence cases: drift on the stale side, found by verify; then a newer write lands on
       * the stale side (as the mirror would apply it) before repair runs.
       */
      const FENCES: {
        readonly name: string;
        readonly entity: string;
        drift(sides: Sides): Promise<RecordKey>;
        newer(stores: SideStores, key: RecordKey): Promise<unknown>;
      }[] = [
        {
          name: 'a project changed by a later upsertProject',
          entity: 'projects',
          async drift(sides) {
            const p = await first<Project>(sides, stale, 'projects', 2);
            await port(sides, stale, 'graph').putRecord('projects', { ...p, description: 'stale' });
            return [p.ecosystem, p.name];
          },
          newer: (s, [ecosystem, name]) =>
            s.graph.upsertProject({ ecosystem: ecosystem!, name: name!, description: 'newer', at: LATER }),
        },
        {
          name: 'an asset total one cent off, then bumped by a later contribution',
          entity: 'assets',
          async drift(sides) {
            const a = await first<Asset>(sides, stale, 'assets', 1);
            await port(sides, stale, 'graph').putRecord('assets', {
              ...a,
              totalCost: ((cents(a.totalCost) + 1) / 100).toFixed(2),
            });
            return [a.id];
          },
          async newer(s, [assetId]) {
            const contributor = (await s.graph.listContributors(1))[0]!;
            await s.graph.createContribution({
              id: 'cccccccc-0000-4000-8000-000000000001',
              contributorId: contributor.id,
              assetId: assetId!,
              costAmount: '2.50',
              coherenceScore: '1',
              timestamp: LATER,
            });
          },
        },
        {
          name: 'a task status, then a later updateTask',
          entity: 'agent_tasks',
          async drift(sides) {
            const t = await first<AgentTask>(sides, stale, 'agent_tasks', 3);
            await port(sides, stale, 'tasks').putRecord('agent_tasks', {
              ...t,
              status: t.status === 'failed' ? 'completed' : 'failed',
            });
            return [t.id];
          },
          newer: (s, [id]) => s.tasks.updateTask(id!, { progressPct: 42, currentStep: 'newer' }, { at: LATER }),
        },
        {
          name: 'an insert race: missing on the stale side, then inserted there by a newer write',
          entity: 'contributors',
          async drift(sides) {
            const c = await first<Contributor>(sides, authoritative, 'contributors');
            await port(sides, authoritative, 'graph').putRecord('contributors', {
              ...c,
              id: 'dddddddd-0000-4000-8000-000000000001',
              name: 'authoritative',
            });
            return ['dddddddd-0000-4000-8000-000000000001'];
          },
          newer: (s) =>
            s.graph.createContributor({ id: 'dddddddd-0000-4000-8000-000000000001', name: 'newer', at: LATER }),
        },
        {
          name: 'a delete race: only on the stale side, then changed there by a newer write',
          entity: 'agent_tasks',
          async drift(sides) {
            const t = await first<AgentTask>(sides, stale, 'agent_tasks');
            await port(sides, stale, 'tasks').putRecord('agent_tasks', {
              ...t,
              id: 'task_stale_only',
              status: 'pending',
              startedAt: null,
            });
            return ['task_stale_only'];
          },
          newer: (s, [id]) => s.tasks.updateTask(id!, { status: 'running' }, { at: LATER }),
        },
        {
          name: 'an edge only on the stale side, then rewritten there by a newer write',
          entity: 'dependencies',
          async drift(sides) {
            const edge = await first<DependencyEdge>(sides, stale, 'dependencies', 1);
            await port(sides, authoritative, 'graph').deleteRecord('dependencies', [
              edge.from.ecosystem,
              edge.from.name,
              edge.to.ecosystem,
              edge.to.name,
            ]);
            return [edge.from.ecosystem, edge.from.name, edge.to.ecosystem, edge.to.name];
          },
          newer: (s, [fe, fn, te, tn]) =>
            (s.graph as unknown as AnyPort).putRecord('dependencies', {
              from: { ecosystem: fe!, name: fn! },
              to: { ecosystem: te!, name: tn! },
              createdAt: LATER,
            }),
        },
      ];

      it.each(FENCES)(`keeps a newer write on ${stale}: $name`, async ({ entity, drift, newer }) => {
        const sides = await seededSides(backend.current.db!);
        const key = await drift(sides);
        const found = await verify(sides.db, sides.targets, VERIFY);
        const difference = found.differences.find(
          (d) => d.entity === entity && JSON.stringify(d.key) === JSON.stringify(key),
        )!;
        expect(found.differences.map((d) => [d.entity, d.key])).toEqual([[entity, key]]);

        await newer(stores(sides, stale), key);
        const landed = await port(sides, stale, storeOf(entity)).getRecord(entity, key);
        expect(landed).not.toBeNull();
        expect(landed).not.toEqual(stale === 'memory' ? difference.memory : difference.postgres);

        const results = await repair([difference], {
          authoritative,
          db: sides.db,
          targets: sides.targets,
          metrics: sides.metrics,
          allowDeletes: Infinity,
        });
        expect(results.map((r) => r.outcome)).toEqual(['skipped_newer']);
        expect(await port(sides, stale, storeOf(entity)).getRecord(entity, key)).toEqual(landed);
        expect((await repairRows(sides.db)).map((r) => [r.entity, r.record_key, r.target, r.outcome])).toEqual([
          [entity, [...key], stale, 'skipped_newer'],
        ]);
        expect(
          await metricValue(sides.registry, VERIFY_METRIC.repairs, {
            entity: `${storeOf(entity)}.${entity}`,
            outcome: 'skipped_newer',
          }),
        ).toBe(1);
        expect(
          await metricValue(sides.registry, VERIFY_METRIC.repairs, {
            entity: `${storeOf(entity)}.${entity}`,
            outcome: 'repaired',
          }),
        ).toBeUndefined();
      });

      it.each(FENCES)(`repairs the same drift when no newer write lands: $name`, async ({ entity, drift }) => {
        const sides = await seededSides(backend.current.db!);
        const key = await drift(sides);
        const found = await verify(sides.db, sides.targets, VERIFY);
        expect(found.differences.map((d) => [d.entity, d.key])).toEqual([[entity, key]]);
        const results = await repair(found.differences, {
          authoritative,
          db: sides.db,
          targets: sides.targets,
          metrics: sides.metrics,
          allowDeletes: Infinity,
        });
        expect(results.map((r) => r.outcome)).toEqual(['repaired']);
        expect(await port(sides, stale, storeOf(entity)).getRecord(entity, key)).toEqual(
          await port(sides, authoritative, storeOf(entity)).getRecord(entity, key),
        );
        expect((await verify(sides.db, sides.targets, VERIFY)).consistent).toBe(true);
      });

      it(`reports an edge removed by the cascade of its project's repair in the same batch as already_equal, not skipped_newer`, async () => {
        const sides = await seededSides(backend.current.db!);
        // A project and its edge only on the stale side: the project's deletion cascades to the edge.
        const [p, q] = (await readAll(port(sides, stale, 'graph'), 'projects')) as Project[];
        const only = { ...p!, name: 'stale-only-project', dependencyCount: 1 };
        await port(sides, stale, 'graph').putRecord('projects', only);
        await port(sides, stale, 'graph').putRecord('dependencies', {
          from: { ecosystem: only.ecosystem, name: only.name },
          to: { ecosystem: q!.ecosystem, name: q!.name },
          createdAt: LATER,
        });
        const found = await verify(sides.db, sides.targets, VERIFY);
        expect(found.differences.map((d) => [d.entity, d.kind])).toEqual([
          ['projects', authoritative === 'memory' ? 'missing_in_memory' : 'missing_in_postgres'],
          ['dependencies', authoritative === 'memory' ? 'missing_in_memory' : 'missing_in_postgres'],
        ]);
        const results = await repair(found.differences, {
          authoritative,
          db: sides.db,
          targets: sides.targets,
          metrics: sides.metrics,
          allowDeletes: Infinity,
        });
        expect((await verify(sides.db, sides.targets, VERIFY)).consistent).toBe(true);
        // Nothing newer was kept: the edge was gone on both sides when its repair looked.
        expect(results.map((r) => [r.difference.entity, r.outcome])).toEqual([
          ['projects', 'repaired'],
          ['dependencies', 'already_equal'],
        ]);
      });

      it(`leaves ${stale} alone when the authoritative side has since come to equal it (already_equal)`, async () => {
        const sides = await seededSides(backend.current.db!);
        const c = await first<Contributor>(sides, stale, 'contributors', 2);
        const staleVersion = { ...c, name: 'stale name' };
        await port(sides, stale, 'graph').putRecord('contributors', staleVersion);
        const found = await verify(sides.db, sides.targets, VERIFY);
        expect(found.differences.map((d) => [d.entity, d.kind, d.fields])).toEqual([
          ['contributors', 'fields_differ', ['name']],
        ]);
        // A later write on the authoritative side gives it the very version the stale side holds.
        await port(sides, authoritative, 'graph').putRecord('contributors', staleVersion);
        const results = await repair(found.differences, {
          authoritative,
          db: sides.db,
          targets: sides.targets,
          metrics: sides.metrics,
          allowDeletes: Infinity,
        });
        expect(results.map((r) => r.outcome)).toEqual(['already_equal']);
        expect(await port(sides, stale, 'graph').getRecord('contributors', [c.id])).toEqual(staleVersion);
        expect((await repairRows(sides.db)).map((r) => r.outcome)).toEqual(['already_equal']);
        expect(
          await metricValue(sides.registry, VERIFY_METRIC.repairs, {
            entity: 'graph.contributors',
            outcome: 'already_equal',
          }),
        ).toBe(1);
      });
    });
  });
}

/**
 * Races inside the repair's own transaction, on real PostgreSQL: a concurrent writer's
 * transaction holds the row (or the new key) while the repair looks, and commits only once
 * the repair is blocked on it. The repair must then keep the writer's version.
 */
for (const factory of availableBackends(['postgres'])) {
  describe(`repair racing a concurrent transaction on ${factory.name}`, () => {
    const backend = useBackend(factory);
    beforeEach(async () => {
      await backend.current.db!.query('TRUNCATE dualwrite_repairs RESTART IDENTITY');
    });

    const RACES = [
      {
        name: 'an insert of the missing key, uncommitted when the repair looks',
        async drift(sides: Sides) {
          const c = await first<Contributor>(sides, 'memory', 'contributors');
          const record = { ...c, id: 'eeeeeeee-0000-4000-8000-000000000001', name: 'from memory' };
          await sides.memory.graph.putRecord('contributors', record);
          return record;
        },
        racer: (record: Contributor) => ({
          sql: `INSERT INTO contributors (id, name, metadata, created_at, updated_at) VALUES ($1, 'racer', '{}', $2, $2)`,
          params: [record.id, LATER],
        }),
      },
      {
        name: 'an update of the differing row, holding its lock when the repair looks',
        async drift(sides: Sides) {
          const c = await first<Contributor>(sides, 'memory', 'contributors', 1);
          await sides.postgres.graph.putRecord('contributors', { ...c, name: 'stale' });
          return c;
        },
        racer: (record: Contributor) => ({
          sql: `UPDATE contributors SET name = 'racer', updated_at = $2 WHERE id = $1`,
          params: [record.id, LATER],
        }),
      },
    ];

    it.each(RACES)('keeps the concurrent write: $name', async ({ drift, racer }) => {
      const db = backend.current.db!;
      const sides = await seededSides(db);
      const record = await drift(sides);
      const found = await verify(sides.db, sides.targets, VERIFY);
      expect(found.differences.map((d) => [d.entity, d.key])).toEqual([['contributors', [record.id]]]);

      let commit!: () => void;
      const committed = new Promise<void>((resolve) => (commit = resolve));
      let racerPid!: number;
      let started!: () => void;
      const holding = new Promise<void>((resolve) => (started = resolve));
      const race = db.transaction(async (tx) => {
        racerPid = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))[0]!.pid;
        const { sql, params } = racer(record);
        await tx.query(sql, params);
        started();
        await committed;
      });
      await holding;
      const repairing = repair(found.differences, {
        authoritative: 'memory',
        db,
        targets: sides.targets,
        metrics: sides.metrics,
        allowDeletes: Infinity,
      });
      let settled = false;
      void repairing.finally(() => (settled = true)).catch(() => {});
      // Commit only once the repair waits on the racer's transaction (or has, wrongly, finished without waiting).
      await eventually(
        async () => {
          if (settled) return;
          const [{ n }] = (await db.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))',
            [racerPid],
          )) as [{ n: number }];
          expect(n, 'statements blocked by the racer').toBeGreaterThan(0);
        },
        { everyMs: 10 },
      );
      commit();
      await race;
      const results = await repairing;
      expect(results.map((r) => r.outcome)).toEqual(['skipped_newer']);
      expect(await sides.postgres.graph.getContributor(record.id)).toMatchObject({ name: 'racer', updatedAt: LATER });
      expect((await repairRows(db)).map((r) => r.outcome)).toEqual(['skipped_newer']);
    });
  });
}
