import {
  lockHeld,
  parseExecutionState,
  parseLockState,
  transitionExecution,
  type ExecutionState,
  type LockHandle,
  type TaskExecution,
  type TaskLock,
} from './task-scheduler-model.js';
import { pageLimit } from '../../domain/limits.js';
import type { ExecutionQuery, TaskSchedulerStore } from './task-scheduler-store.js';
import type { SqlExecutor, SqlQueryable } from '../../postgres/sql-executor.js';
import { timestampText } from '../../postgres/table-mapping.js';

/** The columns of task_executions a write sets, in the order executionValues() gives them. */
const EXECUTION_COLUMNS = [
  'execution_uid',
  'task_name',
  'task_type',
  'run_by',
  'trigger_type',
  'trigger_by',
  'scheduled_at',
  'started_at',
  'finished_at',
  'state',
  'result',
  'result_truncated',
  'error_message',
  'error_stack',
  'duration_ms',
  'progress',
  'retry_count',
  'lock_key',
  'lock_token',
  'created_at',
  'updated_at',
] as const;
const EXECUTION_CASTS: Readonly<Record<string, string>> = {
  scheduled_at: 'timestamptz',
  started_at: 'timestamptz',
  finished_at: 'timestamptz',
  created_at: 'timestamptz',
  updated_at: 'timestamptz',
  result_truncated: 'boolean',
  duration_ms: 'bigint',
  progress: 'integer',
  retry_count: 'integer',
};
/** `$n::type` for each execution column, the first at $`from`. */
const executionParams = (from: number) =>
  EXECUTION_COLUMNS.map((column, index) => `$${from + index}::${EXECUTION_CASTS[column] ?? 'text'}`);

const EXECUTION_SELECT = `SELECT execution_uid, task_name, task_type, run_by, trigger_type, trigger_by, scheduled_at::text, started_at::text, finished_at::text,
  state, result, result_truncated, error_message, error_stack, duration_ms::text, progress, retry_count, lock_key, lock_token, created_at::text, updated_at::text
  FROM task_executions`;
const LOCK_SELECT =
  'SELECT lock_key, holder_id, token, state, acquired_at::text, expires_at::text, released_at::text, purpose FROM task_locks';

/**
 * The fence of a write: the lock `handle` presents, still active, share-locked until the
 * write commits, so a holder taking the key over (which updates that row) waits for the
 * write or makes it find no fence. $1-$3 are the handle; a null key means no fence.
 */
const FENCE = `fence AS (SELECT 1 FROM task_locks WHERE lock_key = $1 AND holder_id = $2 AND token = $3 AND state = 'active' FOR SHARE)`;
const FENCE_HOLDS = '($1::text IS NULL OR EXISTS (SELECT 1 FROM fence))';

/**
 * Executions and locks in task_executions and task_locks (schema 008), on the connection's
 * search_path. A fenced write checks its lock and writes in one statement; lock takeovers
 * run in one transaction with the old row locked.
 */
export class PostgresTaskSchedulerStore implements TaskSchedulerStore {
  constructor(private readonly db: SqlExecutor) {}

  async acquireLock(request: TaskLock): Promise<TaskLock | undefined> {
    return this.db.transaction(async (tx) => {
      const [current] = (
        await tx.query<LockRow>(`${LOCK_SELECT} WHERE lock_key = $1 AND state = 'active' FOR UPDATE`, [request.lockKey])
      ).map(toLock);
      if (current) {
        if (lockHeld(current, request.acquiredAt)) return undefined;
        await tx.query(`UPDATE task_locks SET state = 'expired' WHERE token = $1`, [current.token]);
        await interrupt(
          tx,
          `state = 'running' AND lock_token = $1`,
          [current.token],
          request.acquiredAt,
          `the lock ${current.lockKey} expired and ${request.holderId} took it`,
        );
      }
      // A concurrent acquirer that inserted first wins; this one then finds the key taken.
      const inserted = await tx.query(
        `INSERT INTO task_locks (lock_key, holder_id, token, state, acquired_at, expires_at, released_at, purpose)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (lock_key) WHERE state = 'active' DO NOTHING RETURNING token`,
        [
          request.lockKey,
          request.holderId,
          request.token,
          request.state,
          request.acquiredAt,
          request.expiresAt,
          request.releasedAt,
          request.purpose,
        ],
      );
      return inserted.length > 0 ? request : undefined;
    });
  }

  async renewLock(handle: LockHandle, expiresAt: string): Promise<TaskLock | undefined> {
    const [row] = await this.db.query<LockRow>(
      `UPDATE task_locks SET expires_at = $4 WHERE lock_key = $1 AND holder_id = $2 AND token = $3 AND state = 'active'
       RETURNING lock_key, holder_id, token, state, acquired_at::text, expires_at::text, released_at::text, purpose`,
      [...handleParams(handle), expiresAt],
    );
    return row && toLock(row);
  }

  async releaseLock(handle: LockHandle, at: string): Promise<boolean> {
    const rows = await this.db.query(
      `UPDATE task_locks SET state = 'released', released_at = $4 WHERE lock_key = $1 AND holder_id = $2 AND token = $3 AND state = 'active' RETURNING token`,
      [...handleParams(handle), at],
    );
    return rows.length > 0;
  }

  async activeLock(lockKey: string): Promise<TaskLock | undefined> {
    const [row] = await this.db.query<LockRow>(`${LOCK_SELECT} WHERE lock_key = $1 AND state = 'active'`, [lockKey]);
    return row && toLock(row);
  }

  async insertExecution(execution: TaskExecution, fence?: LockHandle): Promise<boolean> {
    const rows = await this.db.query(
      `WITH ${FENCE}
       INSERT INTO task_executions (${EXECUTION_COLUMNS.join(', ')})
       SELECT ${executionParams(4).join(', ')} WHERE ${FENCE_HOLDS}
       RETURNING execution_uid`,
      [...handleParams(fence), ...executionValues(execution)],
    );
    return rows.length > 0;
  }

  async updateExecution(execution: TaskExecution, expected: ExecutionState, fence?: LockHandle): Promise<boolean> {
    const params = [...handleParams(fence), ...executionValues(execution), expected];
    const rows = await this.db.query(
      `WITH ${FENCE}
       ${updateStatement(4)} AND state = $${params.length} AND ${FENCE_HOLDS}
       RETURNING execution_uid`,
      params,
    );
    return rows.length > 0;
  }

  async getExecution(id: string): Promise<TaskExecution | undefined> {
    const [row] = await this.db.query<ExecutionRow>(`${EXECUTION_SELECT} WHERE execution_uid = $1`, [id]);
    return row && toExecution(row);
  }

  async listExecutions(query: ExecutionQuery = {}): Promise<TaskExecution[]> {
    const rows = await this.db.query<ExecutionRow>(
      `${EXECUTION_SELECT} WHERE ($1::text IS NULL OR task_name = $1)
       ORDER BY coalesce(started_at, created_at) DESC, execution_uid LIMIT $2`,
      [query.taskName ?? null, pageLimit('limit', query.limit, 50)],
    );
    return rows.map(toExecution);
  }

  async interruptAbandoned(
    at: string,
    scope: { readonly holderId: string; readonly everyOtherHolder: boolean },
  ): Promise<TaskExecution[]> {
    return this.db.transaction(async (tx) => {
      await tx.query(
        `UPDATE task_locks SET state = 'expired' WHERE state = 'active' AND holder_id <> $1 AND ($2 OR expires_at <= $3)`,
        [scope.holderId, scope.everyOtherHolder, at],
      );
      return interrupt(
        tx,
        `state = 'running' AND NOT EXISTS (SELECT 1 FROM task_locks l WHERE l.token = task_executions.lock_token AND l.state = 'active')`,
        [],
        at,
        'the process running it stopped (found running at a restart)',
      );
    });
  }

  async purge(cutoff: {
    readonly executionsBefore: string;
    readonly locksBefore: string;
  }): Promise<{ readonly executions: number; readonly locks: number }> {
    return this.db.transaction(async (tx) => {
      const executions = await tx.query('DELETE FROM task_executions WHERE finished_at < $1 RETURNING 1', [
        cutoff.executionsBefore,
      ]);
      const locks = await tx.query(
        `DELETE FROM task_locks WHERE state <> 'active' AND coalesce(released_at, expires_at) < $1 RETURNING 1`,
        [cutoff.locksBefore],
      );
      return { executions: executions.length, locks: locks.length };
    });
  }
}

/** UPDATE task_executions SET every column from $`from` on, WHERE execution_uid is the first of them. */
function updateStatement(from: number): string {
  const params = executionParams(from);
  return `UPDATE task_executions SET ${EXECUTION_COLUMNS.map((column, index) => `${column} = ${params[index]}`).join(', ')} WHERE execution_uid = ${params[0]}`;
}

/** Marks the running executions `where` selects interrupted at `at` (the domain decides each row), locking them first. */
async function interrupt(
  tx: SqlQueryable,
  where: string,
  params: readonly unknown[],
  at: string,
  reason: string,
): Promise<TaskExecution[]> {
  const running = (await tx.query<ExecutionRow>(`${EXECUTION_SELECT} WHERE ${where} FOR UPDATE`, params)).map(
    toExecution,
  );
  const interrupted = running.map((execution) => transitionExecution(execution, 'interrupted', at, { error: reason }));
  for (const execution of interrupted) await tx.query(updateStatement(1), executionValues(execution));
  return interrupted;
}

function handleParams(handle: LockHandle | undefined): (string | null)[] {
  return [handle?.lockKey ?? null, handle?.holderId ?? null, handle?.token ?? null];
}

function executionValues(e: TaskExecution): unknown[] {
  return [
    e.id,
    e.taskName,
    e.taskType,
    e.runBy,
    e.triggerType,
    e.triggerBy,
    e.scheduledAt,
    e.startedAt,
    e.finishedAt,
    e.state,
    e.result,
    e.resultTruncated,
    e.errorMessage,
    e.errorStack,
    e.durationMs,
    e.progress,
    e.retryCount,
    e.lockKey,
    e.lockToken,
    e.createdAt,
    e.updatedAt,
  ];
}

interface LockRow {
  lock_key: string;
  holder_id: string;
  token: string;
  state: string;
  acquired_at: string;
  expires_at: string;
  released_at: string | null;
  purpose: string | null;
}

function toLock(row: LockRow): TaskLock {
  return {
    lockKey: row.lock_key,
    holderId: row.holder_id,
    token: row.token,
    state: parseLockState('state', row.state),
    acquiredAt: timestampText(row.acquired_at),
    expiresAt: timestampText(row.expires_at),
    releasedAt: row.released_at === null ? null : timestampText(row.released_at),
    purpose: row.purpose,
  };
}

interface ExecutionRow {
  execution_uid: string;
  task_name: string;
  task_type: string;
  run_by: string;
  trigger_type: 'scheduled' | 'manual';
  trigger_by: string | null;
  scheduled_at: string;
  started_at: string | null;
  finished_at: string | null;
  state: string;
  result: string | null;
  result_truncated: boolean;
  error_message: string | null;
  error_stack: string | null;
  duration_ms: string;
  progress: number;
  retry_count: number;
  lock_key: string | null;
  lock_token: string | null;
  created_at: string;
  updated_at: string;
}

function toExecution(row: ExecutionRow): TaskExecution {
  const time = (text: string | null) => (text === null ? null : timestampText(text));
  return {
    id: row.execution_uid,
    taskName: row.task_name,
    taskType: row.task_type,
    runBy: row.run_by,
    triggerType: row.trigger_type,
    triggerBy: row.trigger_by,
    scheduledAt: timestampText(row.scheduled_at),
    startedAt: time(row.started_at),
    finishedAt: time(row.finished_at),
    state: parseExecutionState('state', row.state),
    result: row.result,
    resultTruncated: row.result_truncated,
    errorMessage: row.error_message,
    errorStack: row.error_stack,
    durationMs: Number(row.duration_ms),
    progress: row.progress,
    retryCount: row.retry_count,
    lockKey: row.lock_key,
    lockToken: row.lock_token,
    createdAt: timestampText(row.created_at),
    updatedAt: timestampText(row.updated_at),
  };
}
