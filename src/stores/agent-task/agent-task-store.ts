import type {
  AgentTask,
  TaskInput,
  TaskListQuery,
  TaskPatch,
  TaskStatus,
  TaskUpdateOptions,
  TaskUpdateResult,
} from './agent-task-model.js';

/** The AgentTaskStore protocol (table agent_tasks). */
export interface AgentTaskStore {
  /** Creates a task in status pending. */
  createTask(input: TaskInput): Promise<AgentTask>;
  getTask(id: string): Promise<AgentTask | null>;
  /**
   * Applies `patch` under the lifecycle rules (agent-task-model.ts NEXT_STATUSES).
   * With `expectedStatus`, applies it only if the task is in that status (compare-and-set).
   * Throws NotFoundError for an unknown id, TransitionError for a forbidden status change.
   */
  updateTask(id: string, patch: TaskPatch, options?: TaskUpdateOptions): Promise<TaskUpdateResult>;
  /** Newest first (created_at desc, ties by id). */
  listTasks(query?: TaskListQuery): Promise<AgentTask[]>;
  /** Tasks that need a person (needs_decision and failed), newest first. */
  attention(limit?: number): Promise<AgentTask[]>;
  /** Count of tasks in every status, zeros included. */
  countByStatus(): Promise<Record<TaskStatus, number>>;
}
