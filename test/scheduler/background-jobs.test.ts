import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  lockRequest,
  newExecution,
  transitionExecution,
  validateScheduledTasks,
  type ScheduledTask,
} from '../../src/stores/task-scheduler/task-scheduler-model.js';
import { MemoryTaskSchedulerStore } from '../../src/stores/task-scheduler/memory-task-scheduler-store.js';
import { PostgresTaskSchedulerStore } from '../../src/stores/task-scheduler/postgres-task-scheduler-store.js';
import { TaskRunner } from '../../src/stores/task-scheduler/task-runner.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { ManualClock, SequenceIds } from '../support/clock.js';
import { FaultySql } from '../support/faulty-sql.js';
import { useTestRuntimes } from '../support/runtimes.js';

/**
 * Background jobs at work: the TaskRunner's lifecycle (lock, progress, result, failure,
 * timeout, a lost lock), and the runtime's own jobs recorded as executions under task
 * locks: verifier runs, outbox replay rounds that did work, and runs a stopped process left
 * running, marked interrupted at the next start.
 */

const [TASK] = validateScheduledTasks(
  [{ name: 'job', type: 'test', intervalMs: 1000, maxDurationSeconds: 2, timeoutGracePeriodSeconds: 1 }],
  ['test'],
) as [ScheduledTask];

function runnerOn(store = new MemoryTaskSchedulerStore(), holderId = 'me', ids = new SequenceIds()) {
  const clock = new ManualClock();
  const warnings: string[] = [];
  const runner = new TaskRunner({
    store,
    holderId,
    clock,
    ids,
    lockTtlMs: 3000,
    logger: { warn: (line: string) => void warnings.push(line) },
  });
  return { store, clock, runner, warnings, ids };
}

describe('TaskRunner', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs under the task lock: running with progress, then success with the result and duration; the lock released', async () => {
    const { store, clock, runner } = runnerOn();
    let seenWhileRunning: unknown;
    const outcome = await runner.run(TASK, async ({ progress }) => {
      void progress(10.7);
      void progress(10.9);
      await progress(55);
      seenWhileRunning = { lock: await store.activeLock('task:job'), execution: (await store.listExecutions())[0] };
      clock.set('2026-01-01T00:00:05.000Z');
      return { copied: 3 };
    });
    expect(outcome).toEqual({ ran: true, value: { copied: 3 } });
    expect(seenWhileRunning).toMatchObject({
      lock: { holderId: 'me', state: 'active' },
      execution: { state: 'running', progress: 55, runBy: 'me', lockKey: 'task:job' },
    });
    const [execution] = await store.listExecutions();
    expect(execution).toMatchObject({
      state: 'success',
      progress: 100,
      result: '{"copied":3}',
      resultTruncated: false,
      triggerType: 'scheduled',
      durationMs: Date.parse(execution!.finishedAt!) - Date.parse(execution!.startedAt!),
    });
    expect(execution!.durationMs).toBeGreaterThan(4990);
    expect(await store.activeLock('task:job')).toBeUndefined();
  });

  it('does not run while another holder has the lock; records a failure and rethrows it', async () => {
    const { store, runner } = runnerOn();
    await store.acquireLock(
      lockRequest(
        { lockKey: 'task:job', holderId: 'other', token: 'other-token', ttlMs: 60_000 },
        '2026-01-01T00:00:00.000Z',
      ),
    );
    let ran = false;
    expect(await runner.run(TASK, async () => void (ran = true))).toEqual({ ran: false });
    expect([ran, await store.listExecutions()]).toEqual([false, []]);
    const free = runnerOn();
    await expect(
      free.runner.run(TASK, async () => Promise.reject(new Error('disk full')), {
        trigger: { type: 'manual', by: 'ada' },
      }),
    ).rejects.toThrow('disk full');
    expect((await free.store.listExecutions())[0]).toMatchObject({
      state: 'failure',
      errorMessage: 'disk full',
      triggerType: 'manual',
      triggerBy: 'ada',
    });
  });

  it('marks a run that outlasts maxDuration plus the grace period timed out; its late end is not written', async () => {
    // The injected clock only reads the time; the timeout is a timer, so the timers are faked.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    const { store, runner } = runnerOn();
    let finish!: () => void;
    const running = runner.run(TASK, () => new Promise<string>((resolve) => (finish = () => resolve('late'))));
    await vi.advanceTimersByTimeAsync(2999);
    expect((await store.listExecutions())[0]!.state).toBe('running');
    await vi.advanceTimersByTimeAsync(1);
    expect((await store.listExecutions())[0]).toMatchObject({
      state: 'timeout',
      errorMessage: 'ran longer than 2 s and the 1 s grace period',
    });
    finish();
    await running;
    expect((await store.listExecutions())[0]).toMatchObject({ state: 'timeout', result: null });
  });

  it('a holder that lost its lock to another cannot write its result: the run stays as the new holder left it', async () => {
    const { store, clock, runner, warnings, ids } = runnerOn();
    const other = runnerOn(store, 'other', ids);
    const outcome = await runner.run(TASK, async () => {
      // The lock expires (no renewal reached it) and another holder takes the task.
      other.clock.set('2026-01-01T01:00:00.000Z');
      clock.set('2026-01-01T01:00:00.000Z');
      expect((await other.runner.run(TASK, async () => 'theirs')).ran).toBe(true);
      return 'mine';
    });
    expect(outcome).toEqual({ ran: true, value: 'mine' });
    const executions = await store.listExecutions();
    expect(executions.map((e) => [e.runBy, e.state, e.result])).toEqual([
      ['other', 'success', 'theirs'],
      ['me', 'interrupted', null],
    ]);
    expect(warnings.join('\n')).toContain('is no longer this holder');
  });
});

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`the runtime's background jobs on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const runtimes = useTestRuntimes();
    const jobsOf = () => new PostgresTaskSchedulerStore(backend.current.db!);
    const locks = () =>
      backend.current.db!.query<{ lock_key: string; holder_id: string; token: string; state: string }>(
        'SELECT lock_key, holder_id, token, state FROM task_locks ORDER BY id',
      );

    afterEach(async () => {
      await backend.current.db!.query('TRUNCATE task_executions, task_locks');
    });

    it('records each verifier run as an execution with a task lock row: scheduled and manual, with its summary and duration', async () => {
      const { rt } = await runtimes.open({ db: backend.current.db!, verifier: { graceMs: 0 } });
      await rt.graph.upsertProject({ ecosystem: 'npm', name: 'react', description: 'UI' });
      expect((await rt.verifier.runOnce())!.consistent).toBe(true);
      await rt.verifyNow({ reason: 'before the canary', principal: 'ada' });
      const executions = await rt.jobs.listExecutions({ taskName: 'verifier' });
      expect(executions.map((e) => [e.state, e.triggerType, e.triggerBy, e.progress])).toEqual([
        ['success', 'manual', 'ada', 100],
        ['success', 'scheduled', null, 100],
      ]);
      for (const execution of executions) {
        expect(JSON.parse(execution.result!)).toMatchObject({
          consistent: true,
          persistentDifferences: 0,
          rowsMemory: 1,
          repairs: 0,
        });
        expect(execution.durationMs).toBe(Date.parse(execution.finishedAt!) - Date.parse(execution.startedAt!));
        expect(execution.lockKey).toBe('task:verifier');
      }
      // One lock row per run, released, each with the token its execution carries.
      expect((await locks()).map((l) => [l.lock_key, l.state, l.token])).toEqual(
        executions.toReversed().map((e) => ['task:verifier', 'released', e.lockToken]),
      );
    });

    it('a verifier run whose task lock another holder has is skipped, and not recorded', async () => {
      const { rt } = await runtimes.open({ db: backend.current.db!, verifier: { graceMs: 0 }, lease: false });
      await jobsOf().acquireLock(
        lockRequest(
          { lockKey: 'task:verifier', holderId: 'another-replica', token: 'theirs', ttlMs: 60_000 },
          new Date().toISOString(),
        ),
      );
      expect(await rt.verifier.runOnce()).toBeUndefined();
      expect(await rt.jobs.listExecutions()).toEqual([]);
    });

    it('records outbox replay rounds that replayed entries, with their counts, and not the idle rounds', async () => {
      const faulty = new FaultySql(backend.current.db!);
      const { rt } = await runtimes.open({ db: faulty, lease: false });
      faulty.down = true;
      await rt.graph.upsertProject({ ecosystem: 'npm', name: 'vue', description: 'journaled' });
      expect(rt.outbox.stats().depth).toBe(1);
      faulty.down = false;
      expect(await rt.replayer.drainFor('postgres')).toBeUndefined();
      await rt.replayer.replayOnce();
      await vi.waitFor(async () => expect(await rt.jobs.listExecutions({ taskName: 'outbox.replay' })).toHaveLength(1));
      const [round] = await rt.jobs.listExecutions({ taskName: 'outbox.replay' });
      expect(round).toMatchObject({ state: 'success', lockKey: 'task:outbox.replay', runBy: expect.any(String) });
      expect(JSON.parse(round!.result!)).toEqual({ replayed: 1, deadLettered: 0 });
      // The replayer holds its task lock while it records; the idle rounds since wrote nothing.
      expect(await rt.jobs.activeLock('task:outbox.replay')).toMatchObject({ token: round!.lockToken });
    });

    it('at start, marks what a stopped process left running interrupted, and expires its locks', async () => {
      const store = jobsOf();
      const at = new Date(Date.now() - 5000).toISOString();
      const lock = (await store.acquireLock(
        lockRequest({ lockKey: 'task:verifier', holderId: 'crashed-host:1', token: 'crashed', ttlMs: 600_000 }, at),
      ))!;
      const left = transitionExecution(
        newExecution(
          { id: 'left-running', task: { name: 'verifier', type: 'verify' }, runBy: 'crashed-host:1', lock },
          at,
        ),
        'running',
        at,
      );
      await store.insertExecution(left, lock);
      const { rt, logs } = await runtimes.open({ db: backend.current.db!, verifier: { graceMs: 0 } });
      const interrupted = (await rt.jobs.getExecution('left-running'))!;
      expect(interrupted).toMatchObject({ state: 'interrupted', errorMessage: expect.stringContaining('restart') });
      expect(interrupted.durationMs).toBe(Date.parse(interrupted.finishedAt!) - Date.parse(at));
      expect(logs.join('\n')).toContain(
        '1 background job runs of a stopped process were marked interrupted (verifier)',
      );
      expect((await locks()).map((l) => [l.holder_id, l.state])).toEqual([['crashed-host:1', 'expired']]);
      // The task is free again.
      expect((await rt.verifier.runOnce())!.consistent).toBe(true);
    });
  });
}
