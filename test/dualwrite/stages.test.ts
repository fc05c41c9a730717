import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ManualFlagSource } from '../../flags/manual-flags.js';
import { DEFAULT_ROLLOUT_GROUP } from '../../flags/migration-flags.js';
import type { AgentTask } from '../../src/stores/agent-task/agent-task-model.js';
import { METRIC } from '../../src/dualwrite/metrics.js';
import type { MirrorMode } from '../../src/dualwrite/mirror.js';
import { routesToPostgres } from '../../src/dualwrite/routing.js';
import type { DualWriteRuntime } from '../../src/runtime/dual-write-runtime.js';
import { STAGE_POLICIES, STAGES, type Side, type Stage } from '../../src/ports/stage.js';
import type { RecordKey } from '../../src/ports/record-port.js';
import { availableBackends, useBackend, type Backend } from '../support/backends.js';
import { eventually } from '../support/eventually.js';
import { metricSum } from '../support/metrics.js';
import { dumpSide, useTestRuntimes } from '../support/runtimes.js';

/**
 * The stage table end to end: for every stage, which side a write reaches and which side
 * a read is answered by, on PGlite and on a real PostgreSQL server.
 */

const SIDES: readonly Side[] = ['memory', 'postgres'];
const MODES: readonly MirrorMode[] = ['sync', 'async'];
const T0 = '2025-06-01T00:00:00.000Z';
const T1 = '2025-06-01T01:00:00.000Z';

// ---------------------------------------------------------------------------------------
// Runtime harness: one runtime per test over the backend's migrated database.

interface Harness {
  readonly rt: DualWriteRuntime;
  readonly source: ManualFlagSource;
  /** Every line the runtime logged, prefixed with its level. */
  readonly logs: string[];
}

interface HarnessOptions {
  readonly stage?: Stage;
  readonly readPercent?: number;
  readonly mode?: MirrorMode;
  /** Open the flag layer from this environment (openFlags) instead of a ManualFlagSource. */
  readonly env?: NodeJS.ProcessEnv;
}

function useRuntimes(backend: { current: Backend }): (options?: HarnessOptions) => Promise<Harness> {
  const runtimes = useTestRuntimes();
  return (options = {}) => {
    const { db, clock, ids } = backend.current;
    return runtimes.open({ ...options, db: db!, context: { clock, ids }, mirror: { mode: options.mode ?? 'sync' } });
  };
}

// ---------------------------------------------------------------------------------------
// Records, planted with putRecord; `label` makes the two sides' versions tell apart.

const APP = { ecosystem: 'npm', name: 'app' };
const LIB = { ecosystem: 'npm', name: 'lib' };
const EXTRA = { ecosystem: 'npm', name: 'extra' };
const CONTRIBUTOR = '10000000-0000-4000-8000-0000000000c1';
const ASSET = '20000000-0000-4000-8000-0000000000a1';
const CONTRIBUTION = '30000000-0000-4000-8000-0000000000b1';
const TASK = 'task_seeded';

const project = (ref: { ecosystem: string; name: string }, label: string) => ({
  ...ref,
  description: `${label} ${ref.name}`,
  homepageUrl: null,
  repositoryUrl: null,
  dependencyCount: 0,
  createdAt: T0,
  updatedAt: T0,
});
const contributor = (id: string, label: string) => ({
  id,
  name: `${label} contributor`,
  email: null,
  githubUsername: null,
  walletAddress: null,
  metadata: { side: label },
  createdAt: T0,
  updatedAt: T0,
});
const asset = (id: string, label: string) => ({
  id,
  name: `${label} asset`,
  description: null,
  assetType: 'code',
  totalCost: '1.00',
  metadata: {},
  createdAt: T0,
  updatedAt: T0,
});
const contribution = (label: string) => ({
  id: CONTRIBUTION,
  contributorId: CONTRIBUTOR,
  assetId: ASSET,
  costAmount: '1.00',
  coherenceScore: '0.50',
  metadata: { side: label },
  timestamp: T0,
});
const task = (id: string, label: string, status: AgentTask['status'] = 'pending'): AgentTask => ({
  id,
  direction: `${label} direction`,
  taskType: 'impl',
  status,
  model: 'm',
  command: 'c',
  output: null,
  context: {},
  progressPct: null,
  currentStep: null,
  decisionPrompt: null,
  decision: null,
  tier: null,
  startedAt: status === 'pending' ? null : T0,
  createdAt: T0,
  updatedAt: T0,
});

type AnyPort = {
  getRecord(entity: string, key: RecordKey): Promise<unknown>;
  putRecord(entity: string, record: unknown): Promise<void>;
};
type StoreName = 'graph' | 'tasks';
const portOf = (rt: DualWriteRuntime, side: Side, store: StoreName) => rt[side][store] as unknown as AnyPort;

/** The standard records of both stores, labelled. */
async function plant(
  rt: DualWriteRuntime,
  side: Side,
  label: string,
  status: AgentTask['status'] = 'pending',
): Promise<void> {
  const graph = portOf(rt, side, 'graph');
  for (const ref of [APP, LIB]) await graph.putRecord('projects', project(ref, label));
  await graph.putRecord('contributors', contributor(CONTRIBUTOR, label));
  await graph.putRecord('assets', asset(ASSET, label));
  await graph.putRecord('contributions', contribution(label));
  await portOf(rt, side, 'tasks').putRecord('agent_tasks', task(TASK, label, status));
}

const dump = dumpSide;

async function dumps(rt: DualWriteRuntime): Promise<Record<Side, Record<string, unknown[]>>> {
  return { memory: await dump(rt, 'memory'), postgres: await dump(rt, 'postgres') };
}

const metricValue = (rt: DualWriteRuntime, name: string, labels: Record<string, string> = {}) =>
  metricSum(rt.metrics.registry, name, labels);

// ---------------------------------------------------------------------------------------
// Writes: each produces one record, found by (store, entity, key).

interface Produced {
  readonly store: StoreName;
  readonly entity: string;
  readonly key: RecordKey;
  readonly record: unknown;
}

interface WriteCase {
  readonly name: string;
  run(rt: DualWriteRuntime): Promise<unknown>;
  produced(result: unknown): Produced;
  /** Reads the produced record back through the wrapped store. */
  readBack(rt: DualWriteRuntime, result: unknown): Promise<unknown>;
}

const rec = (result: unknown) => result as Record<string, string>;
const WRITES: readonly WriteCase[] = [
  {
    name: 'upsertProject',
    run: (rt) => rt.graph.upsertProject({ ecosystem: 'NPM', name: 'Fresh', description: 'a new project' }),
    produced: (r) => ({ store: 'graph', entity: 'projects', key: ['npm', 'fresh'], record: r }),
    readBack: (rt) => rt.graph.getProject({ ecosystem: 'npm', name: 'fresh' }),
  },
  {
    name: 'addDependency',
    run: (rt) => rt.graph.addDependency(APP, { ecosystem: 'npm', name: 'LIB' }),
    produced: (r) => ({ store: 'graph', entity: 'dependencies', key: ['npm', 'app', 'npm', 'lib'], record: r }),
    readBack: async (rt, r) => ((await rt.graph.countDependents(LIB)) === 1 ? r : null),
  },
  {
    name: 'createContributor',
    run: (rt) =>
      rt.graph.createContributor({ name: 'Ada', email: 'ada@example.org', metadata: { b: 1, a: { c: [1, 2] } } }),
    produced: (r) => ({ store: 'graph', entity: 'contributors', key: [rec(r).id!], record: r }),
    readBack: (rt, r) => rt.graph.getContributor(rec(r).id!),
  },
  {
    name: 'createAsset',
    run: (rt) => rt.graph.createAsset({ name: 'Doc', assetType: 'code', description: 'docs' }),
    produced: (r) => ({ store: 'graph', entity: 'assets', key: [rec(r).id!], record: r }),
    readBack: (rt, r) => rt.graph.getAsset(rec(r).id!),
  },
  {
    name: 'createContribution',
    run: (rt) =>
      rt.graph.createContribution({
        contributorId: CONTRIBUTOR,
        assetId: ASSET,
        costAmount: '2.25',
        coherenceScore: 0.75,
      }),
    produced: (r) => ({ store: 'graph', entity: 'contributions', key: [rec(r).id!], record: r }),
    readBack: (rt, r) => rt.graph.getContribution(rec(r).id!),
  },
  {
    name: 'createTask',
    run: (rt) =>
      rt.tasks.createTask({
        direction: 'write tests',
        taskType: 'test',
        model: 'm',
        command: 'vitest',
        context: { z: 1, a: 2 },
      }),
    produced: (r) => ({ store: 'tasks', entity: 'agent_tasks', key: [rec(r).id!], record: r }),
    readBack: (rt, r) => rt.tasks.getTask(rec(r).id!),
  },
  {
    name: 'updateTask',
    run: (rt) => rt.tasks.updateTask(TASK, { status: 'running', progressPct: 10, currentStep: 'starting' }),
    produced: (r) => ({ store: 'tasks', entity: 'agent_tasks', key: [TASK], record: (r as { task: AgentTask }).task }),
    readBack: (rt) => rt.tasks.getTask(TASK),
  },
];

/** Which sides a write reaches in each stage. */
const WRITTEN: Readonly<Record<Stage, readonly Side[]>> = {
  'memory-only': ['memory'],
  'dual-write': ['memory', 'postgres'],
  'read-shift': ['memory', 'postgres'],
  'postgres-primary': ['memory', 'postgres'],
  'postgres-only': ['postgres'],
};

// ---------------------------------------------------------------------------------------
// Reads: each tells from its result which side's planted records answered.

interface ReadCase {
  readonly name: string;
  /** The routing key the DualWriteStore uses for it in read-shift. */
  readonly key: string;
  run(rt: DualWriteRuntime): Promise<Side>;
}

const sideOf = (text: string | null | undefined): Side => {
  if (text?.startsWith('memory')) return 'memory';
  if (text?.startsWith('postgres')) return 'postgres';
  throw new Error(`cannot tell the side from ${JSON.stringify(text)}`);
};

const READS: readonly ReadCase[] = [
  {
    name: 'getProject',
    key: 'project:npm/app',
    run: async (rt) => sideOf((await rt.graph.getProject({ ecosystem: 'NPM', name: 'App' }))?.description),
  },
  {
    name: 'getContributor',
    key: `contributor:${CONTRIBUTOR}`,
    run: async (rt) => sideOf((await rt.graph.getContributor(CONTRIBUTOR.toUpperCase()))?.name),
  },
  { name: 'getAsset', key: `asset:${ASSET}`, run: async (rt) => sideOf((await rt.graph.getAsset(ASSET))?.name) },
  {
    name: 'listContributionsByAsset',
    key: `asset:${ASSET}`,
    run: async (rt) => sideOf((await rt.graph.listContributionsByAsset(ASSET))[0]?.metadata.side as string),
  },
  { name: 'getTask', key: `task:${TASK}`, run: async (rt) => sideOf((await rt.tasks.getTask(TASK))?.direction) },
  {
    name: 'search (keyless)',
    key: 'op:search',
    run: async (rt) => sideOf((await rt.graph.search('app'))[0]?.description),
  },
  {
    name: 'listContributors (keyless)',
    key: 'op:listContributors',
    run: async (rt) => sideOf((await rt.graph.listContributors())[0]?.name),
  },
  {
    name: 'countByStatus (keyless)',
    key: 'op:countByStatus',
    // Memory's task is pending, PostgreSQL's running.
    run: async (rt) => ((await rt.tasks.countByStatus()).running === 1 ? 'postgres' : 'memory'),
  },
];

async function plantDifferent(rt: DualWriteRuntime): Promise<void> {
  await plant(rt, 'memory', 'memory', 'pending');
  await plant(rt, 'postgres', 'postgres', 'running');
}

/** Contributors whose two sides differ, for routing many keys. */
const manyIds = (count: number) =>
  Array.from({ length: count }, (_, i) => `40000000-0000-4000-8000-${(i + 1).toString(16).padStart(12, '0')}`);

async function plantContributors(rt: DualWriteRuntime, ids: readonly string[]): Promise<void> {
  for (const side of SIDES)
    for (const id of ids) await portOf(rt, side, 'graph').putRecord('contributors', contributor(id, side));
}

const readSide = async (rt: DualWriteRuntime, id: string): Promise<Side> =>
  sideOf((await rt.graph.getContributor(id))?.name);
const bucketSide = (key: string, percent: number): Side =>
  routesToPostgres(DEFAULT_ROLLOUT_GROUP, key, percent) ? 'postgres' : 'memory';

// ---------------------------------------------------------------------------------------

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`dual-write stages on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const open = useRuntimes(backend);

    describe('writes reach the sides the stage writes', () => {
      const cases = STAGES.flatMap((stage) => MODES.flatMap((mode) => WRITES.map((write) => ({ stage, mode, write }))));
      it.each(cases)('$stage, $mode mirror: $write.name', async ({ stage, mode, write }) => {
        const { rt } = await open({ stage, mode });
        for (const side of SIDES) await plant(rt, side, 'seed');
        const before = await dumps(rt);

        const result = await write.run(rt);
        await rt.mirror.drain();

        const produced = write.produced(result);
        const after = await dumps(rt);
        for (const side of SIDES) {
          if (WRITTEN[stage].includes(side)) {
            expect(after[side], `${side} changed`).not.toEqual(before[side]);
            expect(
              await portOf(rt, side, produced.store).getRecord(produced.entity, produced.key),
              `${side} holds the record`,
            ).toEqual(produced.record);
          } else {
            expect(after[side], `${side} untouched`).toEqual(before[side]);
          }
        }
        if (WRITTEN[stage].length === 2) expect(after.memory).toEqual(after.postgres);
        expect(rt.outbox.stats().depth).toBe(0);
      });
    });

    describe('reads come from the side the stage reads', () => {
      const FIXED: { label: string; stage: Stage; readPercent: number; side: Side }[] = [
        { label: 'memory-only', stage: 'memory-only', readPercent: 0, side: 'memory' },
        { label: 'dual-write', stage: 'dual-write', readPercent: 0, side: 'memory' },
        {
          label: 'dual-write asked for 100% (means read-shift)',
          stage: 'dual-write',
          readPercent: 100,
          side: 'postgres',
        },
        { label: 'postgres-primary', stage: 'postgres-primary', readPercent: 0, side: 'postgres' },
        { label: 'postgres-only', stage: 'postgres-only', readPercent: 0, side: 'postgres' },
      ];
      const fixedCases = FIXED.flatMap((config) => READS.map((read) => ({ ...config, read })));
      it.each(fixedCases)('$label: $read.name reads $side', async ({ stage, readPercent, side, read }) => {
        const { rt } = await open({ stage, readPercent });
        await plantDifferent(rt);
        expect(await read.run(rt)).toBe(side);
      });

      const percentCases = [0, 25, 50, 75, 100].flatMap((percent) => READS.map((read) => ({ percent, read })));
      it.each(percentCases)(
        'read-shift at $percent%: $read.name reads the side of its bucket',
        async ({ percent, read }) => {
          const { rt } = await open({ stage: 'read-shift', readPercent: percent });
          await plantDifferent(rt);
          const expected = percent === 0 ? 'memory' : percent === 100 ? 'postgres' : bucketSide(read.key, percent);
          expect(bucketSide(read.key, percent)).toBe(expected);
          expect(await read.run(rt)).toBe(expected);
        },
      );

      it('read-shift at 50% keeps every key on one side across repeated reads, as its bucket says', async () => {
        const { rt } = await open({ stage: 'read-shift', readPercent: 50 });
        const ids = manyIds(100);
        await plantContributors(rt, ids);
        let toPostgres = 0;
        for (const id of ids) {
          const sides = new Set<Side>();
          for (let i = 0; i < 20; i++) sides.add(await readSide(rt, id));
          expect([...sides], `key ${id}`).toEqual([bucketSide(`contributor:${id}`, 50)]);
          if (sides.has('postgres')) toPostgres++;
        }
        expect(toPostgres).toBeGreaterThanOrEqual(30);
        expect(toPostgres).toBeLessThanOrEqual(70);
      });

      it('raising read-shift from 30% to 60% only moves keys from memory to PostgreSQL', async () => {
        const { rt, source } = await open({ stage: 'read-shift', readPercent: 30 });
        const ids = manyIds(100);
        await plantContributors(rt, ids);
        const at30 = new Map<string, Side>();
        for (const id of ids) at30.set(id, await readSide(rt, id));
        source.set({ stage: 'read-shift', readPercent: 60 });
        let moved = 0;
        for (const id of ids) {
          const at60 = await readSide(rt, id);
          expect(at30.get(id), `key ${id} at 30%`).toBe(bucketSide(`contributor:${id}`, 30));
          expect(at60, `key ${id} at 60%`).toBe(bucketSide(`contributor:${id}`, 60));
          if (at30.get(id) === 'postgres') expect(at60, `key ${id} moved back`).toBe('postgres');
          if (at30.get(id) === 'memory' && at60 === 'postgres') moved++;
        }
        expect(moved).toBeGreaterThan(0);
      });
    });

    describe('rollback', () => {
      it.each(WRITES)(
        'a $name made in postgres-primary is in memory after rolling back to dual-write',
        async (write) => {
          const { rt, source } = await open({ stage: 'postgres-primary' });
          for (const side of SIDES) await plant(rt, side, 'seed');
          const result = await write.run(rt);
          await rt.mirror.drain();

          source.set({ stage: 'dual-write' });
          expect(rt.flags.current.stage).toBe('dual-write');
          const produced = write.produced(result);
          expect(await portOf(rt, 'memory', produced.store).getRecord(produced.entity, produced.key)).toEqual(
            produced.record,
          );
          expect(await write.readBack(rt, result)).toEqual(produced.record);
          expect(await dump(rt, 'memory')).toEqual(await dump(rt, 'postgres'));
        },
      );
    });

    describe('a write the authoritative side rejects', () => {
      interface Rejected {
        readonly name: string;
        /** Plants what makes the authoritative side reject and the other side accept. */
        setup(rt: DualWriteRuntime, authoritative: Side, other: Side): Promise<void>;
        run(rt: DualWriteRuntime): Promise<unknown>;
        readonly error: { name: string; field: string };
      }
      const REJECTED: readonly Rejected[] = [
        {
          name: 'createContribution for an asset only the other side has',
          setup: async (rt, _authoritative, other) => {
            for (const side of SIDES)
              await portOf(rt, side, 'graph').putRecord('contributors', contributor(CONTRIBUTOR, 'seed'));
            await portOf(rt, other, 'graph').putRecord('assets', asset(ASSET, 'seed'));
          },
          run: (rt) =>
            rt.graph.createContribution({
              contributorId: CONTRIBUTOR,
              assetId: ASSET,
              costAmount: '1.00',
              coherenceScore: '0.5',
            }),
          error: { name: 'NotFoundError', field: 'assetId' },
        },
        {
          name: 'addDependency on a project only the other side has',
          setup: async (rt, authoritative, other) => {
            await portOf(rt, authoritative, 'graph').putRecord('projects', project(APP, 'seed'));
            for (const ref of [APP, EXTRA])
              await portOf(rt, other, 'graph').putRecord('projects', project(ref, 'seed'));
          },
          run: (rt) => rt.graph.addDependency(APP, EXTRA),
          error: { name: 'NotFoundError', field: 'to' },
        },
        {
          name: 'createContributor with an id the authoritative side already has',
          setup: (rt, authoritative) =>
            portOf(rt, authoritative, 'graph').putRecord('contributors', contributor(CONTRIBUTOR, 'seed')),
          run: (rt) => rt.graph.createContributor({ id: CONTRIBUTOR, name: 'Twin' }),
          error: { name: 'ConflictError', field: 'id' },
        },
        {
          name: 'updateTask moving a completed task (pending on the other side)',
          setup: async (rt, authoritative, other) => {
            await portOf(rt, authoritative, 'tasks').putRecord('agent_tasks', task(TASK, 'seed', 'completed'));
            await portOf(rt, other, 'tasks').putRecord('agent_tasks', task(TASK, 'seed', 'pending'));
          },
          run: (rt) => rt.tasks.updateTask(TASK, { status: 'running' }),
          error: { name: 'TransitionError', field: 'status' },
        },
      ];
      const cases = STAGES.flatMap((stage) => REJECTED.map((rejected) => ({ stage, rejected })));
      it.each(cases)(
        '$stage: $rejected.name throws to the caller and writes neither side',
        async ({ stage, rejected }) => {
          const { rt } = await open({ stage });
          const authoritative = STAGE_POLICIES[stage].authoritative;
          const other: Side = authoritative === 'memory' ? 'postgres' : 'memory';
          await rejected.setup(rt, authoritative, other);
          const before = await dumps(rt);

          await expect(rejected.run(rt)).rejects.toMatchObject(rejected.error);
          await rt.mirror.drain();

          expect(await dumps(rt)).toEqual(before);
          expect(rt.outbox.stats().depth).toBe(0);
        },
      );
    });

    describe('invalid input', () => {
      const INVALID: readonly {
        name: string;
        method: string;
        run(rt: DualWriteRuntime): Promise<unknown>;
        field: string;
      }[] = [
        {
          name: 'upsertProject with a blank name',
          method: 'upsertProject',
          run: (rt) => rt.graph.upsertProject({ ecosystem: 'npm', name: '  ' }),
          field: 'name',
        },
        {
          name: 'addDependency on itself',
          method: 'addDependency',
          run: (rt) => rt.graph.addDependency(APP, { ecosystem: 'NPM', name: 'APP' }),
          field: 'to',
        },
        {
          name: 'createAsset without a type',
          method: 'createAsset',
          run: (rt) => rt.graph.createAsset({ name: 'x', assetType: '' }),
          field: 'assetType',
        },
        {
          name: 'createContribution with a negative cost',
          method: 'createContribution',
          run: (rt) =>
            rt.graph.createContribution({
              contributorId: CONTRIBUTOR,
              assetId: ASSET,
              costAmount: '-1',
              coherenceScore: 0,
            }),
          field: 'costAmount',
        },
        {
          name: 'createTask of an unknown type',
          method: 'createTask',
          run: (rt) => rt.tasks.createTask({ direction: 'd', taskType: 'bogus' as never, model: 'm', command: 'c' }),
          field: 'taskType',
        },
        {
          name: 'updateTask of a field that cannot change',
          method: 'updateTask',
          run: (rt) => rt.tasks.updateTask(TASK, { createdAt: T1 } as never),
          field: 'createdAt',
        },
      ];
      const cases = STAGES.flatMap((stage) => INVALID.map((invalid) => ({ stage, invalid })));
      it.each(cases)('$stage: $invalid.name is rejected before either side is called', async ({ stage, invalid }) => {
        const { rt } = await open({ stage });
        for (const side of SIDES) await plant(rt, side, 'seed');
        const before = await dumps(rt);

        await expect(invalid.run(rt)).rejects.toMatchObject({ name: 'ValidationError', field: invalid.field });
        await rt.mirror.drain();

        expect(await dumps(rt)).toEqual(before);
        expect(await metricValue(rt, METRIC.operations, { operation: invalid.method })).toBe(0);
      });
    });

    describe('unsafe flags', () => {
      it('memory-only with a read percentage keeps reads in memory, counts the refusal and warns once', async () => {
        const dir = await mkdtemp(join(tmpdir(), 'dw-flags-'));
        try {
          const path = join(dir, 'flags.json');
          await writeFile(path, JSON.stringify({ stage: 'memory-only', readFromPostgresPercent: 50 }));
          const { rt, logs } = await open({ env: { DUALWRITE_FLAGS_FILE: path } });
          expect(rt.flags.current).toMatchObject({
            stage: 'memory-only',
            readPercent: 0,
            source: 'file',
            refused: 'reads-without-dual-write',
          });

          const ids = manyIds(20);
          await plantContributors(rt, ids);
          // Half of these keys would read PostgreSQL if 50% were honoured.
          expect(ids.some((id) => bucketSide(`contributor:${id}`, 50) === 'postgres')).toBe(true);
          for (const id of ids) expect(await readSide(rt, id)).toBe('memory');

          const refusals = rt.metrics.registry.getSingleMetricAsString(METRIC.flagRefusals);
          expect(await refusals).toContain(`${METRIC.flagRefusals}{reason="reads-without-dual-write"} 1`);
          const warnings = () =>
            logs.filter((line) => line.startsWith('warn') && line.includes('reads-without-dual-write'));
          expect(warnings()).toHaveLength(1);

          // The same unsafe request again (another percentage): still refused, not warned again.
          await writeFile(
            path,
            JSON.stringify({ stage: 'memory-only', readFromPostgresPercent: 80, rolloutGroup: 'second' }),
          );
          await eventually(() => expect(rt.flags.current.rolloutGroup).toBe('second'));
          expect(rt.flags.current.refused).toBe('reads-without-dual-write');
          for (const id of ids) expect(await readSide(rt, id)).toBe('memory');
          expect(warnings()).toHaveLength(1);
          expect(await metricValue(rt, METRIC.flagRefusals, { reason: 'reads-without-dual-write' })).toBe(1);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });

      it.each(['memory-only', 'dual-write', 'read-shift'] as const)(
        'after postgres-only, asking for %s gives postgres-primary until memory is resynced',
        async (requested) => {
          const { rt, source } = await open({ stage: 'postgres-only' });
          const only = await rt.graph.createContributor({ name: 'written in postgres-only' });
          expect(await rt.memory.graph.getContributor(only.id)).toBeNull();

          source.set({ stage: requested });
          expect(rt.flags.current).toMatchObject({
            stage: 'postgres-primary',
            refused: 'memory-stale-after-postgres-only',
          });
          const mirrored = await rt.graph.createContributor({ name: 'written while refused' });
          await rt.mirror.drain();
          expect(await rt.memory.graph.getContributor(mirrored.id)).toEqual(mirrored);
          expect(await rt.graph.getContributor(only.id)).toEqual(only);

          await rt.resyncMemory();
          expect(rt.flags.current.stage).toBe(requested);
          expect(rt.flags.current.refused).toBeUndefined();
          expect(await dump(rt, 'memory')).toEqual(await dump(rt, 'postgres'));
          expect(await rt.graph.getContributor(only.id)).toEqual(only);
        },
      );
    });

    describe('compare-and-set updates', () => {
      const mirrored = STAGES.filter((stage) => STAGE_POLICIES[stage].mirror !== null);
      const cases = mirrored.flatMap((stage) => MODES.map((mode) => ({ stage, mode })));
      it.each(cases)(
        '$stage, $mode mirror: an updateTask whose expectedStatus does not match is not mirrored',
        async ({ stage, mode }) => {
          const { rt } = await open({ stage, mode });
          const authoritative = STAGE_POLICIES[stage].authoritative;
          const other = STAGE_POLICIES[stage].mirror!;
          await portOf(rt, authoritative, 'tasks').putRecord('agent_tasks', task(TASK, 'seed', 'running'));
          await portOf(rt, other, 'tasks').putRecord('agent_tasks', task(TASK, 'seed', 'pending'));
          const before = await dumps(rt);

          const result = await rt.tasks.updateTask(TASK, { progressPct: 50 }, { expectedStatus: 'pending' });
          await rt.mirror.drain();

          expect(result).toEqual({ updated: false, task: task(TASK, 'seed', 'running') });
          expect(await dumps(rt)).toEqual(before);
          expect(await metricValue(rt, METRIC.operations, { operation: 'updateTask', side: other })).toBe(0);
        },
      );
    });
  });
}
