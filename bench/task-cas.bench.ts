import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { setImmediate } from 'node:timers/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  applyTaskUpdate,
  decideTask,
  decideTaskUpdate,
  newTask,
  type AgentTask,
  type TaskInput,
  type TaskPatch,
  type TaskUpdateOptions,
} from '../src/stores/agent-task/agent-task-model.js';
import { writeContext } from '../src/domain/write-context.js';
import type { MirrorMode } from '../src/dualwrite/mirror.js';
import { MemoryAgentTaskStore } from '../src/stores/agent-task/memory-agent-task-store.js';
import type { PgPoolExecutor } from '../src/postgres/pg-pool-executor.js';
import type { AgentTaskStore } from '../src/stores/agent-task/agent-task-store.js';
import { withBenchSchema } from './bench-database.js';
import { openBenchRuntime, verifiedDifferences } from './bench-runtime.js';
import type { BenchResult } from './dualwrite.bench.js';
import { format, rate, withConcurrency, type Rate } from './measure.js';

/** The agent runners' workload. */
export interface TaskCasSize {
  /** Tasks in the queue. Default 2000. */
  readonly tasks: number;
  /** Runners working the queue at once. Default 32. */
  readonly runners?: number;
  /** Progress updates each task gets between its claim and its completion. Default 3. */
  readonly progressSteps?: number;
  /** A runner claims one of this many oldest pending tasks (where runners collide). Default 8. */
  readonly queueHead?: number;
}

const EPOCH = Date.parse('2026-01-01T00:00:00.000Z');
/** Write times decided by the workload, so the sequential model's records match the stored ones field for field. */
const at = (task: number, step: number) => new Date(EPOCH + task * 60_000 + step * 1000).toISOString();
const taskIdOf = (i: number) => `task_cas_${i}`;
const taskInput = (i: number): TaskInput => ({
  id: taskIdOf(i),
  direction: `queued task ${i}`,
  taskType: 'impl',
  model: 'bench-model',
  command: `run ${i}`,
  at: at(i, 0),
});

/** One lifecycle update of task `i`, as a runner sends it and the model applies it. */
interface Step {
  readonly patch: TaskPatch;
  readonly options: TaskUpdateOptions;
}

/** Task `i`'s updates after runner `runner` claimed it: claim (CAS on pending), progress and completion (CAS on running). */
function lifecycle(i: number, runner: number, progressSteps: number): Step[] {
  const steps: Step[] = [
    {
      patch: { status: 'running', output: `claimed by runner ${runner}`, progressPct: 0, currentStep: 'claimed' },
      options: { expectedStatus: 'pending', at: at(i, 1) },
    },
  ];
  for (let s = 1; s <= progressSteps; s++) {
    steps.push({
      patch: { progressPct: Math.floor((s * 100) / (progressSteps + 1)), currentStep: `step ${s}` },
      options: { expectedStatus: 'running', at: at(i, 1 + s) },
    });
  }
  steps.push({
    patch: { status: 'completed', progressPct: 100, currentStep: 'done', output: `done by runner ${runner}` },
    options: { expectedStatus: 'running', at: at(i, 2 + progressSteps) },
  });
  return steps;
}

/** Task `i` as a single runner applying its lifecycle in order would leave it. */
function sequentialModel(i: number, runner: number, progressSteps: number): AgentTask {
  const context = writeContext({});
  let task = newTask(decideTask(taskInput(i), context));
  for (const { patch, options } of lifecycle(i, runner, progressSteps)) {
    const result = applyTaskUpdate(task, decideTaskUpdate(task.id, patch, options, context));
    if (!result.updated) throw new Error(`the model refused its own update of ${task.id}`);
    task = result.task;
  }
  return task;
}

/** What the runners did. */
interface QueueRun {
  readonly rate: Rate;
  /** Claims refused because another runner's claim of the same task won. */
  readonly conflicts: number;
  /** Runners whose claim of each task succeeded, by task number (exactly one each when CAS holds). */
  readonly winners: number[][];
  /** Updates of a task by the runner that claimed it that CAS refused: another runner changed a task it had not claimed. */
  readonly lostCas: number;
}

/**
 * `runners` runners, each claiming one of the `queueHead` oldest pending tasks with a CAS and
 * running it to completion, until the queue is empty. The rate counts successful updates,
 * timed until `settle` (the mirror's drain) resolves.
 */
async function workQueue(
  tasks: AgentTaskStore,
  { tasks: count, runners, progressSteps, queueHead }: Required<TaskCasSize>,
  settle = async () => {},
): Promise<QueueRun> {
  const pending = Array.from({ length: count }, (_, i) => i);
  const winners: number[][] = Array.from({ length: count }, () => []);
  let conflicts = 0;
  let lostCas = 0;
  const updates = count * (progressSteps + 2);
  const measured = await rate(updates, async () => {
    await withConcurrency(runners, runners, async (runner) => {
      while (pending.length > 0) {
        const i = pending[Math.floor(Math.random() * Math.min(queueHead, pending.length))]!;
        const [claim, ...rest] = lifecycle(i, runner, progressSteps);
        const claimed = await tasks.updateTask(taskIdOf(i), claim!.patch, claim!.options);
        if (!claimed.updated) {
          conflicts++;
          // A refused claim may answer without leaving the microtask queue; back off to the event loop so the winner can go on.
          await setImmediate();
          continue;
        }
        winners[i]!.push(runner);
        const position = pending.indexOf(i);
        if (position >= 0) pending.splice(position, 1);
        for (const step of rest) {
          if (!(await tasks.updateTask(taskIdOf(i), step.patch, step.options)).updated) lostCas++;
        }
      }
    });
    await settle();
  });
  return { rate: measured, conflicts, winners, lostCas };
}

/** A path's figures and what its checks found. */
interface Checked {
  readonly run: QueueRun;
  /** Tasks whose stored record (each side) is not the sequential model's. */
  readonly mismatches: number;
  readonly doubleClaims: number;
  readonly differences: number | undefined;
}

/** Compares every task on each of `sides` with the sequential model of its winner's lifecycle. */
async function check(
  run: QueueRun,
  sides: readonly AgentTaskStore[],
  progressSteps: number,
  differences: number | undefined,
): Promise<Checked> {
  let mismatches = 0;
  let doubleClaims = 0;
  for (const [i, claimedBy] of run.winners.entries()) {
    if (claimedBy.length !== 1) {
      doubleClaims++;
      continue;
    }
    const model = sequentialModel(i, claimedBy[0]!, progressSteps);
    for (const side of sides) if (!isDeepStrictEqual(await side.getTask(taskIdOf(i)), model)) mismatches++;
  }
  return { run, mismatches, doubleClaims, differences };
}

/**
 * Agent runners (32) working one task queue through the dual-write AgentTaskStore into a
 * real PostgreSQL (sync mirror; async mirror, timed until drained), against the same
 * workload on the raw in-memory store in the same run: each runner claims one of the 8
 * oldest pending tasks with a compare-and-set (pending -> running; runners that picked the
 * same task conflict), then reports progress and completes it, each a CAS on running.
 * Checked at the end (FAIL and exit 1, not a timing): every task claimed exactly once, no
 * claimer's update refused, every task on each side equal to a sequential model of its
 * lifecycle, and a verification finding both sides equal.
 */
export async function benchTaskCas(
  { tasks, runners = 32, progressSteps = 3, queueHead = 8 }: TaskCasSize = { tasks: 2000 },
): Promise<BenchResult | string> {
  if (!process.env.DATABASE_URL) return 'skipped task-cas bench: DATABASE_URL is not set (it needs a real PostgreSQL)';
  const size = { tasks, runners, progressSteps, queueHead };
  const dir = await mkdtemp(join(tmpdir(), 'dw-bench-cas-'));
  try {
    return await withBenchSchema('dw_bench_cas', async (db) => {
      const memoryStore = new MemoryAgentTaskStore();
      await withConcurrency(tasks, 16, (i) => memoryStore.createTask(taskInput(i)));
      const memoryRun = await workQueue(memoryStore, size);
      const paths: [string, Checked][] = [
        ['raw MemoryAgentTaskStore', await check(memoryRun, [memoryStore], progressSteps, undefined)],
      ];
      for (const mode of ['sync', 'async'] as MirrorMode[]) {
        const checked = await dualWriteRun(db, dir, mode, size);
        console.log(
          `  task-cas: dual-write ${mode}: ${checked.run.rate.seconds.toFixed(1)} s, ${checked.run.conflicts} CAS conflicts, verify: ${checked.differences} differences`,
        );
        paths.push([
          `DualWriteStore, dual-write, ${mode} mirror${mode === 'async' ? ' (until drained)' : ''}`,
          checked,
        ]);
      }
      const baseline = memoryRun.rate.perSecond;
      const failures = paths.flatMap(([path, { run, mismatches, doubleClaims, differences }]) => [
        ...(doubleClaims > 0 ? [`${path}: ${doubleClaims} tasks not claimed exactly once`] : []),
        ...(run.lostCas > 0
          ? [`${path}: ${run.lostCas} updates by a task's claimer were refused (another runner changed it)`]
          : []),
        ...(mismatches > 0 ? [`${path}: ${mismatches} stored tasks differ from the sequential model`] : []),
        ...(differences
          ? [`${path}: verify found ${differences} records differing between memory and PostgreSQL`]
          : []),
      ]);
      const [, sync] = paths[1]!;
      const [, async] = paths[2]!;
      return {
        name: `task-cas: ${runners} agent runners, ${format(tasks)} tasks (claim, ${progressSteps} progress updates, complete; each a CAS on expectedStatus), real PostgreSQL`,
        headers: [
          'path',
          'updates/s',
          'vs raw memory',
          'CAS conflicts',
          'double claims',
          'claimer updates refused',
          'tasks unlike the model',
          'verify differences',
        ],
        rows: paths.map(([path, { run, mismatches, doubleClaims, differences }]) => [
          path,
          format(run.rate.perSecond),
          (run.rate.perSecond / baseline).toFixed(3),
          format(run.conflicts),
          String(doubleClaims),
          String(run.lostCas),
          String(mismatches),
          differences === undefined ? '-' : String(differences),
        ]),
        summary: {
          tasks,
          runners,
          memoryPerSecond: baseline,
          syncPerSecond: sync.run.rate.perSecond,
          asyncPerSecond: async.run.rate.perSecond,
          memoryConflicts: memoryRun.conflicts,
          syncConflicts: sync.run.conflicts,
          asyncConflicts: async.run.conflicts,
          syncDifferences: sync.differences ?? -1,
          asyncDifferences: async.differences ?? -1,
        },
        failures,
      };
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function dualWriteRun(
  db: PgPoolExecutor,
  dir: string,
  mode: MirrorMode,
  size: Required<TaskCasSize>,
): Promise<Checked> {
  await db.query('TRUNCATE agent_tasks');
  const { runtime, close } = await openBenchRuntime(db, dir, mode);
  try {
    await withConcurrency(size.tasks, 16, (i) => runtime.tasks.createTask(taskInput(i)));
    await runtime.mirror.drain();
    const run = await workQueue(runtime.tasks, size, () => runtime.mirror.drain());
    return await check(
      run,
      [runtime.memory.tasks, runtime.postgres.tasks],
      size.progressSteps,
      await verifiedDifferences(runtime),
    );
  } finally {
    await close();
  }
}
