import {
  applyTaskUpdate,
  ATTENTION_STATUSES,
  decideTask,
  decideTaskUpdate,
  newTask,
  TASK_STATUSES,
  TASK_TYPES,
  taskId,
  type AgentTask,
  type TaskInput,
  type TaskListQuery,
  type TaskPatch,
  type TaskStatus,
  type TaskUpdateOptions,
  type TaskUpdateResult,
} from './agent-task-model.js';
import { oneOf } from '../../domain/text.js';
import { ConflictError, NotFoundError } from '../../domain/errors.js';
import { writeContext, type WriteContext } from '../../domain/write-context.js';
import { pageLimit, pageOffset } from '../../domain/limits.js';
import { lastOfEachKey } from '../../domain/records.js';
import { AGENT_TASK_ENTITIES, type AgentTaskRecords } from './agent-task-records.js';
import type { AgentTaskStore } from './agent-task-store.js';
import type { RecordKey, RecordPort, ScanOptions } from '../../ports/record-port.js';
import type { PostgresStoreOptions } from '../../postgres/postgres-store-options.js';
import type { SqlExecutor } from '../../postgres/sql-executor.js';
import { AGENT_TASKS } from './agent-task-table-mappings.js';

// Constants, spelled out so the partial index idx_agent_tasks_attention applies (and PGlite
// does not have to serialize an array parameter, which it gets wrong).
const ATTENTION_LIST = ATTENTION_STATUSES.map((status) => `'${status}'`).join(', ');

/** AgentTaskStore on PostgreSQL (a pg pool or PGlite), with schema/001_initial_schema.sql applied. */
export class PostgresAgentTaskStore implements AgentTaskStore, RecordPort<AgentTaskRecords> {
  private readonly context: WriteContext;

  constructor(
    readonly db: SqlExecutor,
    options: PostgresStoreOptions = {},
  ) {
    this.context = writeContext(options);
  }

  async createTask(input: TaskInput): Promise<AgentTask> {
    const task = newTask(decideTask(input, this.context));
    const rows = await this.db.query(AGENT_TASKS.insertSql('skip'), AGENT_TASKS.insertParams(task));
    if (rows.length === 0) throw new ConflictError('id', task.id);
    return task;
  }

  async getTask(id: string): Promise<AgentTask | null> {
    return this.getRecord('agent_tasks', [taskId('id', id)]);
  }

  async updateTask(id: string, patch: TaskPatch, options?: TaskUpdateOptions): Promise<TaskUpdateResult> {
    const update = decideTaskUpdate(id, patch, options, this.context);
    // Lock the row, apply the shared lifecycle rules, write the whole row back.
    return this.db.transaction(async (tx) => {
      const [row] = await tx.query(`${AGENT_TASKS.getSql()} FOR UPDATE`, [update.id]);
      if (!row) throw new NotFoundError('id', update.id);
      const result = applyTaskUpdate(AGENT_TASKS.toRecord(row), update);
      if (result.updated) await tx.query(AGENT_TASKS.insertSql('overwrite'), AGENT_TASKS.insertParams(result.task));
      return result;
    });
  }

  async listTasks(query: TaskListQuery = {}): Promise<AgentTask[]> {
    const status = query.status === undefined ? null : oneOf('status', query.status, TASK_STATUSES);
    const taskType = query.taskType === undefined ? null : oneOf('taskType', query.taskType, TASK_TYPES);
    const rows = await this.db.query(
      `SELECT ${AGENT_TASKS.selectList} FROM agent_tasks
       WHERE ($1::task_status IS NULL OR status = $1::task_status) AND ($2::task_type IS NULL OR task_type = $2::task_type)
       ORDER BY created_at DESC, id LIMIT $3 OFFSET $4`,
      [status, taskType, pageLimit('limit', query.limit, 50), pageOffset('offset', query.offset)],
    );
    return rows.map((row) => AGENT_TASKS.toRecord(row));
  }

  async attention(limit?: number): Promise<AgentTask[]> {
    const rows = await this.db.query(
      `SELECT ${AGENT_TASKS.selectList} FROM agent_tasks WHERE status IN (${ATTENTION_LIST}) ORDER BY created_at DESC, id LIMIT $1`,
      [pageLimit('limit', limit, 50)],
    );
    return rows.map((row) => AGENT_TASKS.toRecord(row));
  }

  async countByStatus(): Promise<Record<TaskStatus, number>> {
    const counts = Object.fromEntries(TASK_STATUSES.map((status) => [status, 0])) as Record<TaskStatus, number>;
    const rows = await this.db.query<{ status: TaskStatus; n: string | number }>(
      'SELECT status, count(*) AS n FROM agent_tasks GROUP BY status',
    );
    for (const row of rows) counts[row.status] = Number(row.n);
    return counts;
  }

  keyOf<E extends keyof AgentTaskRecords>(entity: E, record: AgentTaskRecords[E]): RecordKey {
    return AGENT_TASK_ENTITIES[entity].keyOf(record);
  }

  async scanRecords<E extends keyof AgentTaskRecords>(
    _entity: E,
    options: ScanOptions,
  ): Promise<AgentTaskRecords[E][]> {
    const { after, until } = options;
    const rows = await this.db.query(AGENT_TASKS.scanSql(after !== undefined, until !== undefined), [
      ...(after ? AGENT_TASKS.keyValues(after) : []),
      ...(until ? AGENT_TASKS.keyValues(until) : []),
      options.limit,
    ]);
    return rows.map((row) => AGENT_TASKS.toRecord(row));
  }

  async getRecord<E extends keyof AgentTaskRecords>(_entity: E, key: RecordKey): Promise<AgentTaskRecords[E] | null> {
    const [row] = await this.db.query(AGENT_TASKS.getSql(), AGENT_TASKS.keyValues(key));
    return row ? AGENT_TASKS.toRecord(row) : null;
  }

  async putRecord<E extends keyof AgentTaskRecords>(entity: E, record: AgentTaskRecords[E]): Promise<void> {
    const task = AGENT_TASK_ENTITIES[entity].normalize(record);
    await this.db.query(AGENT_TASKS.insertSql('overwrite'), AGENT_TASKS.insertParams(task));
  }

  async putRecords<E extends keyof AgentTaskRecords>(
    entity: E,
    records: readonly AgentTaskRecords[E][],
  ): Promise<void> {
    const tasks = lastOfEachKey(
      records.map((record) => AGENT_TASK_ENTITIES[entity].normalize(record)),
      (task) => task.id,
    );
    if (tasks.length > 0)
      await this.db.query(AGENT_TASKS.bulkInsertSql('overwrite'), AGENT_TASKS.bulkInsertParams(tasks));
  }

  async deleteRecord<E extends keyof AgentTaskRecords>(_entity: E, key: RecordKey): Promise<boolean> {
    return (await this.db.query(AGENT_TASKS.deleteSql(), AGENT_TASKS.keyValues(key))).length > 0;
  }
}
