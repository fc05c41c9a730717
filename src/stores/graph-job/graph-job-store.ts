import type {
  GraphJob,
  GraphJobEvent,
  GraphJobEventInput,
  GraphJobEventQuery,
  GraphJobInput,
  GraphJobListQuery,
  GraphJobReplaceOptions,
  GraphJobReplacement,
} from './graph-job-model.js';

/**
 * The GraphJobStore protocol (tables graph_jobs and graph_job_events): graph build and
 * overlay jobs, their status changes by compare-and-set, and their event logs. Every call
 * names its tenant and sees that tenant's jobs only: another tenant's job, even under the
 * same id, is as absent as one never written.
 */
export interface GraphJobStore {
  /** Inserts a queued build job. Throws ConflictError when the tenant has a job with this id. */
  insertBuildJob(tenantId: string, input: GraphJobInput): Promise<GraphJob>;
  /** Inserts a queued overlay job. Throws ConflictError when the tenant has a job with this id. */
  insertOverlayJob(tenantId: string, input: GraphJobInput): Promise<GraphJob>;
  /**
   * Compare-and-set: applies `next` only if the tenant's job is in `options.expectedStatus`
   * now. False, with nothing written, when it is not or the tenant has no such job. A move
   * the lifecycle forbids (graph-job-model.ts NEXT_GRAPH_JOB_STATUSES) is a TransitionError.
   */
  tryReplace(
    tenantId: string,
    id: string,
    next: GraphJobReplacement,
    options: GraphJobReplaceOptions,
  ): Promise<boolean>;
  get(tenantId: string, id: string): Promise<GraphJob | null>;
  /** The tenant's jobs, newest first (createdAt desc, ties by id). */
  list(tenantId: string, query?: GraphJobListQuery): Promise<GraphJob[]>;
  /** Appends to a job's event log with the next seq. Throws NotFoundError when the tenant has no such job. */
  appendEvent(tenantId: string, jobId: string, event: GraphJobEventInput): Promise<GraphJobEvent>;
  /** A job's events in seq order; empty when the tenant has no such job. */
  listEvents(tenantId: string, jobId: string, query?: GraphJobEventQuery): Promise<GraphJobEvent[]>;
}
