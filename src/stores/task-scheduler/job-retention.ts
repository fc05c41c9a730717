import { plusMs } from './task-scheduler-model.js';
import type { TaskSchedulerStore } from './task-scheduler-store.js';

/** How long ended executions are kept: 90 days. */
export const EXECUTION_RETENTION_DAYS = 90;
/** How long released and expired locks are kept: 7 days. */
export const LOCK_RETENTION_DAYS = 7;

const DAY_MS = 86_400_000;

/** Deletes executions that ended 90+ days before `at` and locks released or expired 7+ days before it. */
export function purgeOldJobs(
  store: TaskSchedulerStore,
  at: string,
): Promise<{ readonly executions: number; readonly locks: number }> {
  return store.purge({
    executionsBefore: plusMs(at, -EXECUTION_RETENTION_DAYS * DAY_MS),
    locksBefore: plusMs(at, -LOCK_RETENTION_DAYS * DAY_MS),
  });
}
