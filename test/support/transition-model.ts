import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { FlagState } from '../../flags/flag-state.js';
import { ManualFlagSource } from '../../flags/manual-flags.js';
import type { TaskStatus } from '../../src/stores/agent-task/agent-task-model.js';
import { StoreError } from '../../src/domain/errors.js';
import { FileOutbox } from '../../src/dualwrite/file-outbox.js';
import type { MirrorMode } from '../../src/dualwrite/mirror.js';
import { openDualWrite } from '../../src/runtime/open-dual-write.js';
import type { DualWriteRuntime } from '../../src/runtime/dual-write-runtime.js';
import { STAGE_POLICIES, type Side, type Stage } from '../../src/ports/stage.js';
import { MemoryAgentTaskStore } from '../../src/stores/agent-task/memory-agent-task-store.js';
import { MemoryGraphStore } from '../../src/stores/graph/memory-graph-store.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import type { AgentTaskStore } from '../../src/stores/agent-task/agent-task-store.js';
import type { GraphStore } from '../../src/stores/graph/graph-store.js';
import { FaultySql } from './faulty-sql.js';
import { metricSum } from './metrics.js';
import { METRIC } from '../../src/dualwrite/metrics.js';
import { dumpSide, dumpStores } from './runtimes.js';

/**
 * A model-based test of the DualWriteStore across stage changes and PostgreSQL outages.
 * A program is a list of steps: groups of store calls run concurrently (on disjoint keys,
 * so their outcome does not depend on their order), each optionally with a stage change
 * issued while the group is in flight, and outages that start or end between groups. Every
 * call's outcome is compared with the same call on one plain in-memory store (the model);
 * at the end, after PostgreSQL is back and everything drained, the authoritative side must
 * hold exactly the model's records, and in programs that only visited mirrored stages the
 * other side too.
 */

/** The CI size: runs per backend and mirror mode, and steps per program; `npm run bench -- fuzz` runs ten times the runs. */
export const CI_RUNS = 25;
export const MAX_STEPS = 40;

const PROJECTS = 4;
const CONTRIBUTORS = 3;
const ASSETS = 2;
const TASKS = 3;
const STAGE_CHOICES: readonly Stage[] = [
  'dual-write',
  'read-shift',
  'postgres-primary',
  'memory-only',
  'postgres-only',
];
const MIRRORED: readonly Stage[] = ['dual-write', 'read-shift', 'postgres-primary'];
const STATUSES: readonly TaskStatus[] = ['pending', 'running', 'completed', 'failed', 'needs_decision'];

export type Call =
  | { readonly op: 'upsertProject'; readonly p: number; readonly description: string }
  | { readonly op: 'addDependency'; readonly from: number; readonly to: number }
  | { readonly op: 'createContributor'; readonly c: number; readonly name: string }
  | { readonly op: 'createAsset'; readonly a: number }
  | { readonly op: 'createContribution'; readonly a: number; readonly c: number; readonly cost: string }
  | { readonly op: 'createTask'; readonly t: number }
  | {
      readonly op: 'updateTask';
      readonly t: number;
      readonly status?: TaskStatus;
      readonly progress?: number;
      readonly expected?: TaskStatus;
    }
  | { readonly op: 'read'; readonly entity: 'project' | 'contributor' | 'asset' | 'task'; readonly n: number };

export type Step =
  | {
      readonly kind: 'calls';
      readonly calls: readonly Call[];
      readonly flip?: { readonly stage: Stage; readonly readPercent: number };
    }
  | { readonly kind: 'outage'; readonly down: boolean };

export interface Program {
  readonly start: Stage;
  readonly steps: readonly Step[];
}

const projectRef = (n: number) => ({ ecosystem: 'npm', name: `p${n}` });
const uuid = (prefix: number, n: number) => `${prefix}0000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const taskId = (n: number) => `task_${n}`;

/** The keys a call touches; calls of one group touch disjoint keys. */
function touched(call: Call): string[] {
  switch (call.op) {
    case 'upsertProject':
      return [`project:${call.p}`];
    case 'addDependency':
      return [`project:${call.from}`, `project:${call.to}`];
    case 'createContributor':
      return [`contributor:${call.c}`];
    case 'createAsset':
      return [`asset:${call.a}`];
    case 'createContribution':
      return [`asset:${call.a}`, `contributor:${call.c}`];
    case 'createTask':
    case 'updateTask':
      return [`task:${call.t}`];
    case 'read':
      return [`${call.entity}:${call.n}`];
  }
}

const callArbitrary: fc.Arbitrary<Call> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('upsertProject' as const),
      p: fc.nat(PROJECTS - 1),
      description: fc.constantFrom('a', 'b', 'c', 'd'),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('addDependency' as const),
      from: fc.nat(PROJECTS - 1),
      to: fc.nat(PROJECTS - 1),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('createContributor' as const),
      c: fc.nat(CONTRIBUTORS - 1),
      name: fc.constantFrom('ann', 'bob'),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('createAsset' as const), a: fc.nat(ASSETS - 1) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('createContribution' as const),
      a: fc.nat(ASSETS - 1),
      c: fc.nat(CONTRIBUTORS - 1),
      cost: fc.constantFrom('1.00', '2.50', '0.01'),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('createTask' as const), t: fc.nat(TASKS - 1) }) },
  {
    weight: 3,
    arbitrary: fc.record(
      {
        op: fc.constant('updateTask' as const),
        t: fc.nat(TASKS - 1),
        status: fc.constantFrom(...STATUSES),
        progress: fc.nat(100),
        expected: fc.constantFrom(...STATUSES),
      },
      { requiredKeys: ['op', 't'] },
    ),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('read' as const),
      entity: fc.constantFrom('project' as const, 'contributor' as const, 'asset' as const, 'task' as const),
      n: fc.nat(PROJECTS - 1),
    }),
  },
);

/** Keeps the calls whose keys no earlier call of the group touched. */
function disjoint(calls: readonly Call[]): Call[] {
  const taken = new Set<string>();
  return calls.filter((call) => {
    const keys = touched(call);
    if (keys.some((key) => taken.has(key))) return false;
    for (const key of keys) taken.add(key);
    return true;
  });
}

const flipArbitrary = fc.record({ stage: fc.constantFrom(...STAGE_CHOICES), readPercent: fc.constantFrom(0, 50, 100) });

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('calls' as const),
      calls: fc.array(callArbitrary, { minLength: 1, maxLength: 6 }).map(disjoint),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('calls' as const),
      calls: fc.array(callArbitrary, { minLength: 1, maxLength: 6 }).map(disjoint),
      flip: flipArbitrary,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('outage' as const), down: fc.boolean() }) },
);

/** Programs of up to `maxSteps` steps. */
export function programArbitrary(maxSteps: number): fc.Arbitrary<Program> {
  return fc.record({
    start: fc.constantFrom(...MIRRORED),
    steps: fc.array(stepArbitrary, { minLength: 1, maxLength: maxSteps, size: 'max' }),
  });
}

interface Stores {
  readonly graph: GraphStore;
  readonly tasks: AgentTaskStore;
}

const newModel = () => ({ graph: new MemoryGraphStore(), tasks: new MemoryAgentTaskStore() });

type Outcome = { readonly ok: unknown } | { readonly error: string; readonly field?: string; readonly store: boolean };

/** Runs one call with its decided values (ids and times fixed by its position in the program). */
async function invoke(stores: Stores, call: Call, index: number): Promise<Outcome> {
  const at = new Date(Date.UTC(2025, 0, 1) + index * 1000).toISOString();
  try {
    return { ok: await dispatch(stores, call, at, index) };
  } catch (error) {
    const store = error instanceof StoreError;
    return {
      error: error instanceof Error ? error.name : String(error),
      field: store ? (error as StoreError).field : undefined,
      store,
    };
  }
}

function dispatch(stores: Stores, call: Call, at: string, index: number): Promise<unknown> {
  switch (call.op) {
    case 'upsertProject':
      return stores.graph.upsertProject({ ...projectRef(call.p), description: call.description, at });
    case 'addDependency':
      return stores.graph.addDependency(projectRef(call.from), projectRef(call.to), { at });
    case 'createContributor':
      return stores.graph.createContributor({ id: uuid(1, call.c), name: call.name, at });
    case 'createAsset':
      return stores.graph.createAsset({ id: uuid(2, call.a), name: `asset ${call.a}`, assetType: 'code', at });
    case 'createContribution':
      return stores.graph.createContribution({
        id: uuid(3, index),
        assetId: uuid(2, call.a),
        contributorId: uuid(1, call.c),
        costAmount: call.cost,
        coherenceScore: '0.50',
        timestamp: at,
      });
    case 'createTask':
      return stores.tasks.createTask({
        id: taskId(call.t),
        direction: 'd',
        taskType: 'impl',
        model: 'm',
        command: 'c',
        at,
      });
    case 'updateTask': {
      const patch = {
        ...(call.status ? { status: call.status } : {}),
        ...(call.progress !== undefined ? { progressPct: call.progress } : {}),
      };
      return stores.tasks.updateTask(taskId(call.t), patch, {
        at,
        ...(call.expected ? { expectedStatus: call.expected } : {}),
      });
    }
    case 'read':
      switch (call.entity) {
        case 'project':
          return stores.graph.getProject(projectRef(call.n));
        case 'contributor':
          return stores.graph.getContributor(uuid(1, call.n));
        case 'asset':
          return stores.graph.getAsset(uuid(2, call.n));
        case 'task':
          return stores.tasks.getTask(taskId(call.n));
      }
  }
}

export class Divergence extends Error {
  override readonly name = 'Divergence';
}

/** What one program exercised, for the fuzz bench's report. */
export interface ProgramStats {
  readonly calls: number;
  readonly flips: number;
  readonly outages: number;
  /** Transitions that changed how writes go and went through, and those refused (outbox not drainable, timeout). */
  readonly transitions: number;
  readonly refusals: number;
  /** Longest time writes waited in one transition, in milliseconds. */
  readonly maxPauseMs: number;
}

/**
 * Runs `program` through a fresh runtime over `db` (its tables must be empty) and throws a
 * Divergence naming the first call or record where the runtime and the model disagree.
 */
export async function runProgram(db: SqlExecutor, mode: MirrorMode, program: Program): Promise<ProgramStats> {
  const dir = await mkdtemp(join(tmpdir(), 'dw-model-'));
  const faulty = new FaultySql(db);
  const outbox = await FileOutbox.open({ path: join(dir, 'outbox.jsonl') });
  const source = new ManualFlagSource({ stage: program.start });
  const quiet = { info() {}, warn() {}, error() {} };
  let circuitTime = 0;
  const rt = await openDualWrite({
    db: faulty,
    env: {},
    memory: newModel(),
    flags: new FlagState([source]),
    outbox,
    logger: quiet,
    // The circuit's clock moves a second whenever an outage ends, as time would.
    mirror: { mode, breaker: { now: () => circuitTime } },
    stage: { retryMs: 600_000 },
    verifier: { enabled: false, graceMs: 0 },
  });
  const model = newModel();
  let index = 0;
  let maxPauseMs = 0;
  try {
    await rt.replayer.stop();
    for (const [stepIndex, step] of program.steps.entries()) {
      if (step.kind === 'outage') {
        if (faulty.down && !step.down) circuitTime += 1000;
        faulty.down = step.down;
        continue;
      }
      const stage = rt.stage.current.stage;
      const unavailable = faulty.down && STAGE_POLICIES[stage].authoritative === 'postgres';
      const first = index;
      index += step.calls.length;
      const running = step.calls.map((call, offset) => invoke(rt, call, first + offset));
      if (step.flip) source.set(step.flip);
      const outcomes = await Promise.all(running);
      for (const [offset, call] of step.calls.entries()) {
        const actual = outcomes[offset]!;
        // PostgreSQL is authoritative and down: the call fails, with nothing written.
        if (unavailable && 'error' in actual && !actual.store) continue;
        const expected = await invoke(model, call, first + offset);
        if (!isDeepStrictEqual(comparable(actual), comparable(expected))) {
          throw new Divergence(
            `step ${stepIndex} (${stage}${faulty.down ? ', PostgreSQL down' : ''}): ${JSON.stringify(call)} answered ${JSON.stringify(actual)}, a single store ${JSON.stringify(expected)}`,
          );
        }
      }
      if (step.flip) maxPauseMs = Math.max(maxPauseMs, (await rt.stage.settled()).lastPauseMs ?? 0);
      if (!faulty.down) await resyncStale(rt);
    }
    faulty.down = false;
    circuitTime += 1000;
    await settleAll(rt);
    await resyncStale(rt);
    await settleAll(rt);
    const stage = rt.stage.current.stage;
    const policy = STAGE_POLICIES[stage];
    const want = await dumpStores(model);
    await expectSide(rt, policy.authoritative, want, `authoritative ${policy.authoritative} in ${stage}`);
    if (policy.mirror) {
      await expectSide(rt, policy.mirror, want, `mirror side in ${stage}`);
      if (rt.outbox.stats().depth !== 0)
        throw new Divergence(`${rt.outbox.stats().depth} outbox entries left after replay`);
    }
    const registry = rt.metrics.registry;
    return {
      calls: index,
      flips: program.steps.filter((step) => step.kind === 'calls' && step.flip).length,
      outages: program.steps.filter((step) => step.kind === 'outage' && step.down).length,
      transitions: await metricSum(registry, METRIC.stageTransitions, { outcome: 'applied' }),
      refusals: await metricSum(registry, METRIC.stageTransitions, { outcome: 'refused' }),
      maxPauseMs,
    };
  } finally {
    await rt.close();
    await outbox.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * What a user does after a side ran alone (the flags then refuse the stages that would read
 * it): PostgreSQL is resynced from memory in dual-write, memory from PostgreSQL in
 * postgres-primary.
 */
async function resyncStale(rt: DualWriteRuntime): Promise<void> {
  const stale = rt.flags.stale;
  const stage = rt.stage.current.stage;
  if (stale.postgres && stage === 'dual-write') {
    await rt.mirror.drain();
    const report = (await rt.resyncPostgres()).verify;
    if (!report.consistent)
      throw new Divergence(`resyncPostgres left differences: ${JSON.stringify(report.differences.slice(0, 3))}`);
    await rt.stage.settled();
  } else if (stale.memory && stage === 'postgres-primary') {
    await rt.mirror.drain();
    await rt.resyncMemory();
    await rt.stage.settled();
  }
}

/** The requested stage in force where it can be, the mirror and the outbox drained. */
async function settleAll(rt: DualWriteRuntime): Promise<void> {
  await rt.stage.settled();
  for (let attempt = 0; attempt < 5 && rt.stage.state.refused; attempt++) await rt.stage.retry();
  await rt.mirror.drain();
  for (let round = 0; round < 50 && rt.outbox.stats().depth > 0; round++) {
    const replayed = await rt.replayer.replayOnce();
    if (replayed.replayed + replayed.deadLettered === 0) break;
  }
  await rt.mirror.drain();
}

function comparable(outcome: Outcome): unknown {
  return 'ok' in outcome ? { ok: outcome.ok } : { error: outcome.error, field: outcome.field };
}

async function expectSide(
  rt: DualWriteRuntime,
  side: Side,
  want: Record<string, unknown[]>,
  what: string,
): Promise<void> {
  const have = await dumpSide(rt, side);
  for (const entity of Object.keys(want)) {
    if (!isDeepStrictEqual(have[entity], want[entity])) {
      throw new Divergence(
        `${what}: ${entity} differ from a single store's\n  have ${JSON.stringify(have[entity])}\n  want ${JSON.stringify(want[entity])}`,
      );
    }
  }
}
