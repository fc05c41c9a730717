import {
  lockRequest,
  newExecution,
  plusMs,
  transitionExecution,
  withProgress,
  type ExecutionOutcome,
  type ExecutionState,
  type LockHandle,
  type ScheduledTask,
  type TaskExecution,
  type TriggerType,
} from './task-scheduler-model.js';
import type { Clock, IdGenerator } from '../../domain/time.js';
import type { TaskSchedulerStore } from './task-scheduler-store.js';

/** Options of TaskRunner. */
export interface TaskRunnerOptions {
  readonly store: TaskSchedulerStore;
  /** Who runs the tasks (this process), as executions and locks name it. Required. */
  readonly holderId: string;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  /** A lock's lifetime without renewal; renewed every third of it while held. Default 30000 ms. */
  readonly lockTtlMs?: number;
  readonly logger?: Pick<Console, 'warn'>;
}

/** Who asked for a run. Default: the schedule. */
export interface RunTrigger {
  readonly type: TriggerType;
  readonly by?: string;
}

/** What a run's work is given: a way to report how far it got (0-100; written when it grows by a whole percent, resolved once written). */
export interface RunContext {
  progress(percent: number): Promise<void>;
}

/** A lock a holder keeps across many runs (renewed until released), and the handle its fenced writes present. */
export interface HeldLock {
  readonly handle: LockHandle;
  release(): Promise<void>;
}

/**
 * Runs scheduled tasks as executions under task locks: a run takes the task's lock
 * (`task:<name>`), or does not run; its execution is written running, its progress and
 * its end (success with the result, failure with the error, timeout past maxDuration plus
 * the grace period) through the lock's token, so a holder that lost the lock cannot
 * overwrite what the new holder decided; the lock is renewed while the work runs and
 * released after. Timers are unref'd and never throw.
 */
export class TaskRunner {
  private readonly ttlMs: number;
  private readonly recurring = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(private readonly options: TaskRunnerOptions) {
    this.ttlMs = options.lockTtlMs ?? 30_000;
  }

  get holderId(): string {
    return this.options.holderId;
  }

  /** Now, on the runner's clock. */
  now(): string {
    return this.options.clock.now();
  }

  /**
   * Runs `work` as one execution of `task`: `{ ran: false }` when another holder has the
   * task's lock. A failing `work` is recorded as a failure and its error rethrown.
   * `resultOf` turns the work's value into the stored result (default: the value).
   */
  async run<T>(
    task: ScheduledTask,
    work: (context: RunContext) => Promise<T>,
    options: { readonly trigger?: RunTrigger; readonly resultOf?: (value: T) => unknown } = {},
  ): Promise<{ ran: false } | { ran: true; value: T }> {
    const held = await this.acquire(task);
    if (!held) return { ran: false };
    try {
      const at = this.options.clock.now();
      const started = transitionExecution(
        newExecution(
          {
            id: this.options.ids.uuid(),
            task,
            runBy: this.holderId,
            triggerType: options.trigger?.type,
            triggerBy: options.trigger?.by,
            lock: held.handle,
          },
          at,
        ),
        'running',
        at,
      );
      if (!(await this.options.store.insertExecution(started, held.handle))) return { ran: false };
      const execution = new TrackedExecution(started, held.handle, this.options);
      const timeout = setTimeout(
        () =>
          void execution.end('timeout', {
            error: new Error(
              `ran longer than ${task.maxDurationSeconds} s and the ${task.timeoutGracePeriodSeconds} s grace period`,
            ),
          }),
        (task.maxDurationSeconds + task.timeoutGracePeriodSeconds) * 1000,
      );
      timeout.unref();
      try {
        const value = await work({ progress: (percent) => execution.progress(percent) });
        await execution.end('success', { result: options.resultOf ? options.resultOf(value) : value });
        return { ran: true, value };
      } catch (error) {
        await execution.end('failure', { error });
        throw error;
      } finally {
        clearTimeout(timeout);
      }
    } finally {
      await held.release();
    }
  }

  /** Takes `task`'s lock and renews it until released; undefined when another holder has it. */
  async acquire(task: Pick<ScheduledTask, 'name' | 'description'>): Promise<HeldLock | undefined> {
    const { store, clock, ids, logger } = this.options;
    const request = lockRequest(
      {
        lockKey: `task:${task.name}`,
        holderId: this.holderId,
        token: ids.uuid(),
        ttlMs: this.ttlMs,
        purpose: task.description ?? task.name,
      },
      clock.now(),
    );
    const lock = await store.acquireLock(request);
    if (!lock) return undefined;
    let lost = false;
    const renewal = setInterval(
      () => {
        void store.renewLock(lock, plusMs(clock.now(), this.ttlMs)).then(
          (renewed) => {
            if (!renewed && !lost)
              logger?.warn(
                `dualwrite: the lock ${lock.lockKey} of ${this.holderId} was taken over; this run's writes are refused from now on`,
              );
            lost ||= !renewed;
          },
          (error: unknown) =>
            logger?.warn(
              `dualwrite: renewing the lock ${lock.lockKey} failed: ${error instanceof Error ? error.message : String(error)}`,
            ),
        );
      },
      Math.max(1, Math.floor(this.ttlMs / 3)),
    );
    renewal.unref();
    return {
      handle: lock,
      release: async () => {
        clearInterval(renewal);
        await store
          .releaseLock(lock, clock.now())
          .catch((error: unknown) =>
            logger?.warn(
              `dualwrite: releasing the lock ${lock.lockKey} failed (it expires by itself): ${error instanceof Error ? error.message : String(error)}`,
            ),
          );
      },
    };
  }

  /**
   * Stores a run that has already ended, made under `lock` (held across runs): pending,
   * running from `startedAt`, then `state` now. False when the lock is no longer its holder's.
   */
  async recordEnded(
    task: ScheduledTask,
    lock: LockHandle,
    run: { readonly startedAt: string; readonly state: ExecutionState } & ExecutionOutcome,
  ): Promise<boolean> {
    const pending = newExecution(
      { id: this.options.ids.uuid(), task, runBy: this.holderId, scheduledAt: run.startedAt, lock },
      run.startedAt,
    );
    const ended = transitionExecution(
      transitionExecution(pending, 'running', run.startedAt),
      run.state,
      this.options.clock.now(),
      run,
    );
    return this.options.store.insertExecution(ended, lock);
  }

  /** Runs `work` as `task` every task.intervalMs until stop(); a failed run is logged and the next one comes as planned. */
  every(task: ScheduledTask, work: (context: RunContext) => Promise<unknown>): void {
    if (!task.enabled || task.intervalMs === null) return;
    const next = () => {
      if (this.stopped) return;
      const timer = setTimeout(() => {
        this.recurring.delete(timer);
        const running = this.run(task, work)
          .catch((error: unknown) =>
            this.options.logger?.warn(
              `dualwrite: background job ${task.name} failed: ${error instanceof Error ? error.message : String(error)}`,
            ),
          )
          .finally(() => {
            this.inFlight.delete(running);
            next();
          });
        this.inFlight.add(running);
      }, task.intervalMs!);
      timer.unref();
      this.recurring.add(timer);
    };
    next();
  }

  /** Stops the recurring runs and waits for those in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.recurring) clearTimeout(timer);
    this.recurring.clear();
    await Promise.all(this.inFlight);
  }
}

/**
 * A running execution's writes, one at a time and each through the lock's token and a
 * compare-and-set on the state it moves from: progress while it runs, then one end (a
 * timeout that came first wins, and the late end is not written).
 */
class TrackedExecution {
  private writes: Promise<void> = Promise.resolve();
  private reported = 0;
  /** Set once a write was refused: the lock is lost or the state moved on, and nothing more is tried. */
  private refused = false;

  constructor(
    private current: TaskExecution,
    private readonly fence: LockHandle,
    private readonly options: Pick<TaskRunnerOptions, 'store' | 'clock' | 'logger'>,
  ) {}

  /** Records progress when it grows by a whole percent (at most one write per percent). */
  progress(percent: number): Promise<void> {
    const whole = Math.min(100, Math.max(0, Math.floor(percent)));
    if (whole <= this.reported) return this.writes;
    this.reported = whole;
    return this.write((execution, at) =>
      execution.state === 'running' ? withProgress(execution, whole, at) : undefined,
    );
  }

  end(state: ExecutionState, outcome: ExecutionOutcome): Promise<void> {
    return this.write((execution, at) =>
      execution.state === 'running' ? transitionExecution(execution, state, at, outcome) : undefined,
    );
  }

  private write(next: (execution: TaskExecution, at: string) => TaskExecution | undefined): Promise<void> {
    this.writes = this.writes.then(async () => {
      const from = this.current;
      const to = this.refused ? undefined : next(from, this.options.clock.now());
      if (!to) return;
      try {
        if (await this.options.store.updateExecution(to, from.state, this.fence)) this.current = to;
        else {
          this.refused = true;
          this.options.logger?.warn(
            `dualwrite: execution ${from.id} of ${from.taskName} was not updated to ${to.state}: its lock ${this.fence.lockKey} is no longer this holder's, or its state changed`,
          );
        }
      } catch (error) {
        this.options.logger?.warn(
          `dualwrite: execution ${from.id} of ${from.taskName} could not be updated: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    });
    return this.writes;
  }
}
