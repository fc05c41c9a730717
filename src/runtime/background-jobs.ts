import { validateScheduledTasks, type ScheduledTask } from '../stores/task-scheduler/task-scheduler-model.js';
import { randomIds, systemClock, type Clock } from '../domain/time.js';
import { errorText } from '../domain/error-text.js';
import { PostgresTaskSchedulerStore } from '../stores/task-scheduler/postgres-task-scheduler-store.js';
import type { SqlExecutor } from '../postgres/sql-executor.js';
import type { TaskSchedulerStore } from '../stores/task-scheduler/task-scheduler-store.js';
import { purgeOldJobs } from '../stores/task-scheduler/job-retention.js';
import { TaskRunner } from '../stores/task-scheduler/task-runner.js';
import type { Closers } from './closers.js';
import type { DualWriteConfig } from './config.js';
import type { DualWriteRuntimeOptions } from './runtime-options.js';

/** The runtime's background jobs: their record (executions and locks), the runner, and the tasks it runs. */
export interface BackgroundJobs {
  readonly store: TaskSchedulerStore;
  readonly clock: Clock;
  readonly runner: TaskRunner;
  readonly tasks: BackgroundTasks;
}

/** The runtime's background tasks: the verifier, outbox replay rounds and the daily retention of the jobs' own record. */
export interface BackgroundTasks {
  readonly verifier: ScheduledTask;
  readonly replay: ScheduledTask;
  readonly retention: ScheduledTask;
}

/**
 * Starts the background jobs' runner under `holder`. With the runtime lease held, this is the
 * only live runtime on the database, so whatever another holder left running is marked interrupted.
 */
export async function startBackgroundJobs(
  db: SqlExecutor,
  holder: string,
  options: DualWriteRuntimeOptions,
  config: DualWriteConfig,
  logger: Pick<Console, 'info' | 'warn' | 'error'>,
  closers: Closers,
): Promise<BackgroundJobs> {
  const store = options.jobs?.store ?? new PostgresTaskSchedulerStore(db);
  const clock = options.jobs?.clock ?? systemClock;
  const runner = new TaskRunner({
    store,
    holderId: holder,
    clock,
    ids: options.jobs?.ids ?? randomIds,
    lockTtlMs: options.jobs?.lockTtlMs,
    logger,
  });
  closers.push(() => runner.stop());
  await interruptAbandoned(store, clock.now(), holder, options.lease !== false, logger);
  const tasks = backgroundTasks(options, config);
  runner.every(tasks.retention, () => purgeOldJobs(store, clock.now()));
  return { store, clock, runner, tasks };
}

/** The handler types of the runtime's background tasks. */
const JOB_TYPES = ['verify', 'outbox.replay', 'jobs.retention'];

/** The runtime's background tasks, validated: the verifier, outbox replay rounds and the daily retention of the jobs' own record. */
function backgroundTasks(
  options: DualWriteRuntimeOptions,
  config: DualWriteConfig,
): { readonly verifier: ScheduledTask; readonly replay: ScheduledTask; readonly retention: ScheduledTask } {
  const verifyIntervalMs = options.verifier?.intervalMs ?? config.verifyIntervalMs;
  const [verifier, replay, retention] = validateScheduledTasks(
    [
      {
        name: 'verifier',
        type: 'verify',
        description: 'compare memory with PostgreSQL (and repair when DUALWRITE_REPAIR=true)',
        isRecurring: verifyIntervalMs > 0,
        ...(verifyIntervalMs > 0 ? { intervalMs: verifyIntervalMs } : {}),
        enabled: options.verifier?.enabled !== false && verifyIntervalMs > 0,
      },
      {
        name: 'outbox.replay',
        type: 'outbox.replay',
        description: 'outbox replay rounds that replayed or dead-lettered entries',
        intervalMs: options.replayer?.intervalMs ?? 1000,
      },
      {
        name: 'jobs.retention',
        type: 'jobs.retention',
        description: 'delete executions ended 90 days ago and locks released or expired 7 days ago',
        intervalMs: 86_400_000,
        maxDurationSeconds: 600,
      },
    ],
    JOB_TYPES,
  );
  return { verifier: verifier!, replay: replay!, retention: retention! };
}

/** Marks what a stopped process left running as interrupted; a database that does not answer now leaves that to the next start. */
async function interruptAbandoned(
  store: TaskSchedulerStore,
  at: string,
  holderId: string,
  everyOtherHolder: boolean,
  logger: Pick<Console, 'warn'>,
): Promise<void> {
  try {
    const interrupted = await store.interruptAbandoned(at, { holderId, everyOtherHolder });
    if (interrupted.length > 0)
      logger.warn(
        `dualwrite: ${interrupted.length} background job runs of a stopped process were marked interrupted (${[...new Set(interrupted.map((e) => e.taskName))].join(', ')})`,
      );
  } catch (error) {
    logger.warn(
      `dualwrite: could not mark the background job runs of a stopped process interrupted: ${errorText(error)}`,
    );
  }
}
