import { AGENT_TASK_ENTITIES, type AgentTaskRecords } from './agent-task-records.js';
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
import type { AgentTaskStore } from './agent-task-store.js';
import type { RecordKey, RecordPort, ScanOptions } from '../../ports/record-port.js';
import { byNewest, MemorySnapshotStore, type MemoryStoreOptions } from '../../memory/memory-common.js';
import { MemoryTables } from '../../memory/memory-tables.js';

/** AgentTaskStore in process memory, optionally persisted to a JSON snapshot file. */
export class MemoryAgentTaskStore
  extends MemorySnapshotStore<AgentTaskRecords>
  implements AgentTaskStore, RecordPort<AgentTaskRecords>
{
  readonly tables = new MemoryTables(AGENT_TASK_ENTITIES);
  private readonly context: WriteContext;

  constructor(options: MemoryStoreOptions = {}) {
    super(options);
    this.context = writeContext(options);
  }

  /** Creates a store and loads options.snapshotPath if that file exists. */
  static async open(options: MemoryStoreOptions = {}): Promise<MemoryAgentTaskStore> {
    return new MemoryAgentTaskStore(options).loadSnapshot(AGENT_TASK_ENTITIES);
  }

  /** Removes every record. */
  clear(): void {
    this.tables.clear();
  }

  async createTask(input: TaskInput): Promise<AgentTask> {
    const task = newTask(decideTask(input, this.context));
    if (this.tables.get('agent_tasks', [task.id])) throw new ConflictError('id', task.id);
    this.tables.put('agent_tasks', task);
    return task;
  }

  async getTask(id: string): Promise<AgentTask | null> {
    return this.tables.get('agent_tasks', [taskId('id', id)]) ?? null;
  }

  async updateTask(id: string, patch: TaskPatch, options?: TaskUpdateOptions): Promise<TaskUpdateResult> {
    const update = decideTaskUpdate(id, patch, options, this.context);
    const current = this.tables.get('agent_tasks', [update.id]);
    if (!current) throw new NotFoundError('id', update.id);
    const result = applyTaskUpdate(current, update);
    if (result.updated) this.tables.put('agent_tasks', result.task);
    return result;
  }

  async listTasks(query: TaskListQuery = {}): Promise<AgentTask[]> {
    const status = query.status === undefined ? undefined : oneOf('status', query.status, TASK_STATUSES);
    const taskType = query.taskType === undefined ? undefined : oneOf('taskType', query.taskType, TASK_TYPES);
    const limit = pageLimit('limit', query.limit, 50);
    const offset = pageOffset('offset', query.offset);
    return [...this.tables.values('agent_tasks')]
      .filter(
        (task) =>
          (status === undefined || task.status === status) && (taskType === undefined || task.taskType === taskType),
      )
      .sort(byNewest)
      .slice(offset, offset + limit);
  }

  async attention(limit?: number): Promise<AgentTask[]> {
    const max = pageLimit('limit', limit, 50);
    return [...this.tables.values('agent_tasks')]
      .filter((task) => ATTENTION_STATUSES.includes(task.status))
      .sort(byNewest)
      .slice(0, max);
  }

  async countByStatus(): Promise<Record<TaskStatus, number>> {
    const counts = Object.fromEntries(TASK_STATUSES.map((status) => [status, 0])) as Record<TaskStatus, number>;
    for (const task of this.tables.values('agent_tasks')) counts[task.status]++;
    return counts;
  }

  keyOf<E extends keyof AgentTaskRecords>(entity: E, record: AgentTaskRecords[E]): RecordKey {
    return AGENT_TASK_ENTITIES[entity].keyOf(record);
  }

  async scanRecords<E extends keyof AgentTaskRecords>(entity: E, options: ScanOptions): Promise<AgentTaskRecords[E][]> {
    return this.tables.scan(entity, options);
  }

  async getRecord<E extends keyof AgentTaskRecords>(entity: E, key: RecordKey): Promise<AgentTaskRecords[E] | null> {
    return this.tables.get(entity, key) ?? null;
  }

  async putRecord<E extends keyof AgentTaskRecords>(entity: E, record: AgentTaskRecords[E]): Promise<void> {
    this.tables.put(entity, AGENT_TASK_ENTITIES[entity].normalize(record));
  }

  async deleteRecord<E extends keyof AgentTaskRecords>(entity: E, key: RecordKey): Promise<boolean> {
    return this.tables.delete(entity, key);
  }
}
