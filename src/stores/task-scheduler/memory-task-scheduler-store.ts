import {
  lockHeld,
  sameHolder,
  transitionExecution,
  transitionLock,
  type ExecutionState,
  type LockHandle,
  type TaskExecution,
  type TaskLock,
} from './task-scheduler-model.js';
import { pageLimit } from '../../domain/limits.js';
import type { ExecutionQuery, TaskSchedulerStore } from './task-scheduler-store.js';

/**
 * Executions and locks in process memory, for tests and runtimes without PostgreSQL. Each
 * method checks and writes in one synchronous step, which is what makes a fenced write
 * atomic here.
 */
export class MemoryTaskSchedulerStore implements TaskSchedulerStore {
  private readonly executions = new Map<string, TaskExecution>();
  /** Every lock row, in the order taken (history kept, as PostgreSQL keeps it). */
  private locks: TaskLock[] = [];

  async acquireLock(request: TaskLock): Promise<TaskLock | undefined> {
    const current = this.active(request.lockKey);
    if (current) {
      if (lockHeld(current, request.acquiredAt)) return undefined;
      this.replaceLock(current, transitionLock(current, 'expired', request.acquiredAt));
      this.interruptUnder(
        current.token,
        request.acquiredAt,
        `the lock ${current.lockKey} expired and ${request.holderId} took it`,
      );
    }
    this.locks.push(request);
    return request;
  }

  async renewLock(handle: LockHandle, expiresAt: string): Promise<TaskLock | undefined> {
    const current = this.active(handle.lockKey);
    if (!current || !sameHolder(current, handle)) return undefined;
    const renewed = { ...current, expiresAt };
    this.replaceLock(current, renewed);
    return renewed;
  }

  async releaseLock(handle: LockHandle, at: string): Promise<boolean> {
    const current = this.active(handle.lockKey);
    if (!current || !sameHolder(current, handle)) return false;
    this.replaceLock(current, transitionLock(current, 'released', at));
    return true;
  }

  async activeLock(lockKey: string): Promise<TaskLock | undefined> {
    return this.active(lockKey);
  }

  async insertExecution(execution: TaskExecution, fence?: LockHandle): Promise<boolean> {
    if (this.executions.has(execution.id)) throw new Error(`execution ${execution.id} exists already`);
    if (fence && !this.fenceHolds(fence)) return false;
    this.executions.set(execution.id, execution);
    return true;
  }

  async updateExecution(execution: TaskExecution, expected: ExecutionState, fence?: LockHandle): Promise<boolean> {
    if (this.executions.get(execution.id)?.state !== expected) return false;
    if (fence && !this.fenceHolds(fence)) return false;
    this.executions.set(execution.id, execution);
    return true;
  }

  async getExecution(id: string): Promise<TaskExecution | undefined> {
    return this.executions.get(id);
  }

  async listExecutions(query: ExecutionQuery = {}): Promise<TaskExecution[]> {
    const limit = pageLimit('limit', query.limit, 50);
    const newest = (e: TaskExecution) => e.startedAt ?? e.createdAt;
    return [...this.executions.values()]
      .filter((e) => query.taskName === undefined || e.taskName === query.taskName)
      .sort((a, b) => newest(b).localeCompare(newest(a)) || a.id.localeCompare(b.id))
      .slice(0, limit);
  }

  async interruptAbandoned(
    at: string,
    scope: { readonly holderId: string; readonly everyOtherHolder: boolean },
  ): Promise<TaskExecution[]> {
    for (const lock of this.locks) {
      if (
        lock.state === 'active' &&
        lock.holderId !== scope.holderId &&
        (scope.everyOtherHolder || !lockHeld(lock, at))
      )
        this.replaceLock(lock, transitionLock(lock, 'expired', at));
    }
    const live = new Set(this.locks.filter((lock) => lock.state === 'active').map((lock) => lock.token));
    const abandoned = [...this.executions.values()].filter(
      (e) => e.state === 'running' && !(e.lockToken !== null && live.has(e.lockToken)),
    );
    return abandoned.map((e) => this.interrupt(e, at, 'the process running it stopped (found running at a restart)'));
  }

  async purge(cutoff: {
    readonly executionsBefore: string;
    readonly locksBefore: string;
  }): Promise<{ readonly executions: number; readonly locks: number }> {
    let executions = 0;
    for (const [id, e] of this.executions) {
      if (e.finishedAt !== null && e.finishedAt < cutoff.executionsBefore) {
        this.executions.delete(id);
        executions++;
      }
    }
    const before = this.locks.length;
    this.locks = this.locks.filter(
      (lock) => lock.state === 'active' || (lock.releasedAt ?? lock.expiresAt) >= cutoff.locksBefore,
    );
    return { executions, locks: before - this.locks.length };
  }

  private active(lockKey: string): TaskLock | undefined {
    return this.locks.find((lock) => lock.lockKey === lockKey && lock.state === 'active');
  }

  private fenceHolds(fence: LockHandle): boolean {
    const current = this.active(fence.lockKey);
    return current !== undefined && sameHolder(current, fence);
  }

  private replaceLock(from: TaskLock, to: TaskLock): void {
    this.locks[this.locks.indexOf(from)] = to;
  }

  private interruptUnder(token: string, at: string, reason: string): void {
    for (const e of this.executions.values())
      if (e.state === 'running' && e.lockToken === token) this.interrupt(e, at, reason);
  }

  private interrupt(execution: TaskExecution, at: string, reason: string): TaskExecution {
    const interrupted = transitionExecution(execution, 'interrupted', at, { error: reason });
    this.executions.set(execution.id, interrupted);
    return interrupted;
  }
}
