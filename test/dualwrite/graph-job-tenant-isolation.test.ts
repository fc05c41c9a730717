import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StoreError } from '../../src/domain/errors.js';
import {
  GRAPH_JOB_KINDS,
  GRAPH_JOB_STATUSES,
  NEXT_GRAPH_JOB_STATUSES,
  type GraphJobStatus,
} from '../../src/stores/graph-job/graph-job-model.js';
import { type GraphJobRecords } from '../../src/stores/graph-job/graph-job-records.js';
import { MemoryGraphJobStore } from '../../src/stores/graph-job/memory-graph-job-store.js';
import type { GraphJobStore } from '../../src/stores/graph-job/graph-job-store.js';
import type { RecordPort } from '../../src/ports/record-port.js';
import { readAll } from '../../src/ports/record-scan.js';
import { STAGE_POLICIES, STAGES, type Side, type Stage } from '../../src/ports/stage.js';
import type { DualWriteRuntime, RuntimeStore } from '../../src/runtime/dual-write-runtime.js';
import { GRAPH_JOB_DEFINITION } from '../../src/stores/graph-job/graph-job-store-definition.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { useTestRuntimes } from '../support/runtimes.js';

/**
 * Tenant isolation through the whole runtime: random programs of calls by two tenants,
 * with stage changes (and the resyncs a stage needs) in between, run through the
 * DualWriteStore and through a plain in-memory store (the model). Every call answers what
 * the model answers; no call of one tenant returns, changes or lists a record of the other,
 * on either side, in any stage; and every side that is written holds the model's records.
 * B's name extends A's, so a key-range scan that ran past its tenant would show; the two
 * share one pool of job ids, so a lookup that forgot the tenant would find the other's job.
 */

const TENANTS = ['A', 'AB'] as const;
type Tenant = (typeof TENANTS)[number];
const IDS = [1, 2, 3].map((n) => `30000000-0000-4000-8000-00000000000${n}`);

type Command =
  | {
      readonly op: 'insert';
      readonly tenant: Tenant;
      readonly kind: (typeof GRAPH_JOB_KINDS)[number];
      readonly id: string;
      readonly n: number;
    }
  | {
      readonly op: 'tryReplace';
      readonly tenant: Tenant;
      readonly id: string;
      readonly expected: (typeof GRAPH_JOB_STATUSES)[number];
      readonly status: (typeof GRAPH_JOB_STATUSES)[number];
      readonly n: number | null;
    }
  | { readonly op: 'get'; readonly tenant: Tenant; readonly id: string }
  | {
      readonly op: 'list';
      readonly tenant: Tenant;
      readonly status?: (typeof GRAPH_JOB_STATUSES)[number];
      readonly kind?: (typeof GRAPH_JOB_KINDS)[number];
      readonly limit: number;
    }
  | {
      readonly op: 'appendEvent';
      readonly tenant: Tenant;
      readonly id: string;
      readonly status: (typeof GRAPH_JOB_STATUSES)[number];
    }
  | { readonly op: 'listEvents'; readonly tenant: Tenant; readonly id: string; readonly afterSeq: number }
  | { readonly op: 'stage'; readonly stage: Stage; readonly percent: number };

const tenant = fc.constantFrom(...TENANTS);
const id = fc.constantFrom(...IDS);
const status = fc.constantFrom(...GRAPH_JOB_STATUSES);
const kind = fc.constantFrom(...GRAPH_JOB_KINDS);
/** Mostly moves the lifecycle allows (so compare-and-sets succeed as often as they lose), sometimes any pair. */
const move = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      ...GRAPH_JOB_STATUSES.flatMap((from) =>
        [from, ...NEXT_GRAPH_JOB_STATUSES[from]].map((to): [GraphJobStatus, GraphJobStatus] => [from, to]),
      ),
    ),
  },
  { weight: 1, arbitrary: fc.tuple(status, status) },
);
/** Mostly unfiltered, so lists hold jobs. */
const maybe = <T>(value: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: value });
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('insert' as const), tenant, kind, id, n: fc.nat(9) }) },
  {
    weight: 5,
    arbitrary: fc
      .record({ tenant, id, move, n: fc.option(fc.nat(9)) })
      .map(({ move: [expected, to], ...rest }) => ({ op: 'tryReplace' as const, ...rest, expected, status: to })),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('get' as const), tenant, id }) },
  {
    weight: 2,
    arbitrary: fc.record(
      {
        op: fc.constant('list' as const),
        tenant,
        status: maybe(status),
        kind: maybe(kind),
        limit: fc.integer({ min: 1, max: 4 }),
      },
      { requiredKeys: ['op', 'tenant', 'limit'] },
    ),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('appendEvent' as const), tenant, id, status }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('listEvents' as const), tenant, id, afterSeq: fc.nat(2) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('stage' as const),
      stage: fc.constantFrom(...STAGES),
      percent: fc.constantFrom(0, 50, 100),
    }),
  },
);

/** A call's outcome, comparable across stores: its value, or its error's class and field. */
type Outcome = { readonly value: unknown } | { readonly error: string };

async function outcome(call: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { value: await call() };
  } catch (error) {
    if (error instanceof StoreError) return { error: `${error.name}:${error.field}` };
    throw error;
  }
}

/** Runs a store call of `command`; `step` orders the times the writes carry. */
function call(store: GraphJobStore, command: Exclude<Command, { op: 'stage' }>, step: number): Promise<unknown> {
  const at = new Date(Date.UTC(2026, 0, 1) + Math.floor(step / 3) * 1000).toISOString();
  switch (command.op) {
    case 'insert': {
      const input = { id: command.id, payload: { n: command.n }, at };
      return command.kind === 'build'
        ? store.insertBuildJob(command.tenant, input)
        : store.insertOverlayJob(command.tenant, input);
    }
    case 'tryReplace':
      return store.tryReplace(
        command.tenant,
        command.id,
        { status: command.status, ...(command.n === null ? {} : { payload: { n: command.n } }) },
        { expectedStatus: command.expected, at },
      );
    case 'get':
      return store.get(command.tenant, command.id);
    case 'list':
      return store.list(command.tenant, { status: command.status, kind: command.kind, limit: command.limit });
    case 'appendEvent':
      return store.appendEvent(command.tenant, command.id, { status: command.status, payload: { step }, at });
    case 'listEvents':
      return store.listEvents(command.tenant, command.id, { afterSeq: command.afterSeq });
  }
}

/** Tenant ids of the records in a call's result. */
function tenantsIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(tenantsIn);
  return typeof value === 'object' && value !== null && 'tenantId' in value ? [String(value.tenantId)] : [];
}

/** Every record of one tenant on one side. */
async function recordsOf(port: RecordPort<GraphJobRecords>, of: string) {
  return {
    jobs: (await readAll<GraphJobRecords, 'graph_jobs'>(port, 'graph_jobs')).filter((job) => job.tenantId === of),
    events: (await readAll<GraphJobRecords, 'graph_job_events'>(port, 'graph_job_events')).filter(
      (event) => event.tenantId === of,
    ),
  };
}

async function everything(port: RecordPort<GraphJobRecords>) {
  return {
    jobs: await readAll<GraphJobRecords, 'graph_jobs'>(port, 'graph_jobs'),
    events: await readAll<GraphJobRecords, 'graph_job_events'>(port, 'graph_job_events'),
  };
}

/**
 * Sides the stage writes that missed no write (a side is stale from the moment the other
 * ran alone until it is resynced): their records are the model's after every call, the
 * mirror being synchronous.
 */
function currentSides(rt: DualWriteRuntime): Side[] {
  const policy = STAGE_POLICIES[rt.stage.current.stage];
  return [policy.authoritative, ...(policy.mirror ? [policy.mirror] : [])].filter((side) => !rt.flags.stale[side]);
}

/** Moves to `stage`, resyncing the side that missed writes when the safety rules ask for it. */
async function moveTo(
  rt: DualWriteRuntime,
  set: (stage: Stage, percent: number) => void,
  stage: Stage,
  percent: number,
): Promise<void> {
  set(stage, stage === 'read-shift' ? percent : 0);
  for (let attempt = 0; attempt < 3; attempt++) {
    const { flags } = await rt.stage.settled();
    if (flags.refused === 'postgres-stale-after-memory-only') await rt.resyncPostgres();
    else if (flags.refused === 'memory-stale-after-postgres-only') await rt.resyncMemory();
    else break;
  }
  expect((await rt.stage.settled()).flags.stage).toBe(stage);
}

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`tenant isolation of graph jobs through the runtime on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const runtimes = useTestRuntimes();

    it("answers every call as one in-memory store would, and never lets a tenant reach the other tenant's jobs, on either side, in any stage", async () => {
      const db = () => backend.current.db!;
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom<Stage>('memory-only', 'dual-write'),
          fc.array(command, { minLength: 15, maxLength: 40 }),
          async (initial, commands) => {
            await db().query('TRUNCATE graph_jobs, graph_job_events');
            const { rt, source } = await runtimes.open({
              db: db(),
              stage: initial,
              stores: [GRAPH_JOB_DEFINITION],
              mirror: { mode: 'sync' },
              verifier: { graceMs: 0 },
            });
            const jobs: RuntimeStore<GraphJobStore, GraphJobRecords> = rt.store(GRAPH_JOB_DEFINITION);
            const model = new MemoryGraphJobStore();
            try {
              for (const [step, command] of commands.entries()) {
                if (command.op === 'stage') {
                  await moveTo(
                    rt,
                    (stage, readPercent) => source.set({ stage, readPercent }),
                    command.stage,
                    command.percent,
                  );
                  continue;
                }
                const stage = rt.stage.current.stage;
                const sides = currentSides(rt);
                expect(sides).toContain(STAGE_POLICIES[stage].authoritative);
                const other = TENANTS.find((t) => t !== command.tenant)!;
                const othersBefore = await Promise.all(sides.map((side) => recordsOf(jobs[side], other)));

                const expected = await outcome(() => call(model, command, step));
                const actual = await outcome(() => call(jobs.dual, command, step));
                expect(actual, `${stage}: ${JSON.stringify(command)}`).toEqual(expected);
                if ('value' in actual) expect(tenantsIn(actual.value).every((t) => t === command.tenant)).toBe(true);

                // The other tenant's records are untouched on every written side.
                expect(await Promise.all(sides.map((side) => recordsOf(jobs[side], other)))).toEqual(othersBefore);
                const state = await everything(model);
                for (const side of sides) {
                  expect(await everything(jobs[side]), `${side} in ${stage}`).toEqual(state);
                  // Each written side, asked directly, answers reads as the model does.
                  if (command.op === 'get' || command.op === 'list' || command.op === 'listEvents') {
                    expect(await outcome(() => call(jobs[side], command, step))).toEqual(expected);
                  }
                }
              }
              // Wherever it ended, a verification finds nothing when both sides are current.
              const report = await rt.verifier.runOnce();
              if (currentSides(rt).length === 2) expect(report!.consistent).toBe(true);
            } finally {
              await rt.close();
            }
          },
        ),
        { numRuns: factory.name === 'postgres' ? 20 : 30 },
      );
    }, 600_000);
  });
}
