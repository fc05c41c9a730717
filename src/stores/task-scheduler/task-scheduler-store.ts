import type { ExecutionState, LockHandle, TaskExecution, TaskLock } from './task-scheduler-model.js';

/**
 * Where background jobs keep their executions and locks. One port for both because a
 * fenced write checks a lock and writes an execution as one step. Times are decided by the
 * caller (ISO-8601 UTC) and compared as given, so tests drive expiry with a clock.
 */
export interface TaskSchedulerStore {
  /**
   * Takes `request.lockKey` for its holder unless an active lock on the key is unexpired at
   * `request.acquiredAt`. An active lock past its expiry becomes `expired` first, and the
   * executions left running under it `interrupted`. Undefined when the key is held.
   */
  acquireLock(request: TaskLock): Promise<TaskLock | undefined>;
  /**
   * Moves the expiry of `handle`'s lock to `expiresAt` while that lock is still active (no
   * other holder took it over, it was not released or swept), even past its expiry: until
   * another holder takes the key, the lock is still its holder's. Undefined otherwise.
   */
  renewLock(handle: LockHandle, expiresAt: string): Promise<TaskLock | undefined>;
  /** Releases `handle`'s lock if it is still active; false when it was not (wrong holder or token, taken over, already released). */
  releaseLock(handle: LockHandle, at: string): Promise<boolean>;
  /** The active lock on `lockKey` (expired or not), if any. */
  activeLock(lockKey: string): Promise<TaskLock | undefined>;
  /**
   * Stores a new execution. With `fence`, only while that lock is still active: false when
   * it is not (the holder lost it), and nothing is written.
   */
  insertExecution(execution: TaskExecution, fence?: LockHandle): Promise<boolean>;
  /**
   * Replaces the execution with the same id, only while it is still in state `expected`
   * and, with `fence`, while that lock is still active; false (nothing written) otherwise.
   */
  updateExecution(execution: TaskExecution, expected: ExecutionState, fence?: LockHandle): Promise<boolean>;
  getExecution(id: string): Promise<TaskExecution | undefined>;
  /** The newest executions first (by the time they started, else were created), optionally of one task. */
  listExecutions(query?: ExecutionQuery): Promise<TaskExecution[]>;
  /**
   * After a restart: active locks of holders other than `holderId` become `expired` (all of
   * them when `everyOtherHolder`, because no other holder is alive; else those past their
   * expiry at `at`), then every execution still running without an active lock becomes
   * `interrupted`. Returns the executions interrupted.
   */
  interruptAbandoned(
    at: string,
    scope: { readonly holderId: string; readonly everyOtherHolder: boolean },
  ): Promise<TaskExecution[]>;
  /** Deletes ended executions that finished before `executionsBefore` and released or expired locks last changed before `locksBefore`. */
  purge(cutoff: {
    readonly executionsBefore: string;
    readonly locksBefore: string;
  }): Promise<{ readonly executions: number; readonly locks: number }>;
}

export interface ExecutionQuery {
  /** Default 50, at most 1000. */
  readonly limit?: number;
  readonly taskName?: string;
}
