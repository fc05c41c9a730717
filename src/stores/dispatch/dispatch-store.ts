import type {
  DispatchClaim,
  DispatchTask,
  DispatchTaskInput,
  DispatchTaskPatch,
  DispatchTaskQuery,
  DispatchUpdateOptions,
  DispatchUpdateResult,
} from './dispatch-model.js';

/** What the dispatch app does with its tasks (table tasks of schema/007_dispatch.sql). */
export interface DispatchStore {
  /** Creates a task in status pending. Throws ConflictError if the id is taken. */
  createTask(input: DispatchTaskInput): Promise<DispatchTask>;
  getTask(id: string): Promise<DispatchTask | null>;
  /**
   * Claims a pending task for a node (compare-and-set on status pending): status claimed,
   * the node and its lease, one attempt more. `updated: false` when the task is not pending.
   * Throws NotFoundError for an unknown id.
   */
  claimTask(id: string, claim: DispatchClaim): Promise<DispatchUpdateResult>;
  /**
   * Applies `patch`; with `expectedStatus`, only if the task is in that status now
   * (compare-and-set). Throws NotFoundError for an unknown id.
   */
  updateTask(id: string, patch: DispatchTaskPatch, options?: DispatchUpdateOptions): Promise<DispatchUpdateResult>;
  /** Tasks in id order (code point), filtered by status and project. */
  listTasks(query?: DispatchTaskQuery): Promise<DispatchTask[]>;
}
