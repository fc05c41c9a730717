import type { FastifyBaseLogger } from 'fastify';
import {
  elapsedMs,
  executionSummary,
  type ExecutionState,
  type TriggerType,
} from '../stores/task-scheduler/task-scheduler-model.js';
import type { AuditAction } from '../postgres/runtime-state/audit-log.js';
import type { GateVerdict } from '../runtime/evidence-gate.js';
import type { AdminRuntime } from './admin-runtime.js';
import { adminStatus, type AdminStatus } from './admin-routes.js';
import { nextStep, type NextStep } from './next-step.js';
import type { StatusHistory, StatusHistorySnapshot } from './status-history.js';
import { persistentDifferences } from '../../verifier/verify.js';

/** Audit events the page lists, newest first. */
export const AUDIT_EVENTS_SHOWN = 20;
/** Background job runs the page lists, newest first. */
export const JOBS_SHOWN = 20;

/** GET /status/data: everything the page draws. */
export interface StatusData {
  readonly generatedAt: string;
  /** Stage in force and requested, mirror, outbox, last verification, pool: what GET /admin/status answers. */
  readonly status: AdminStatus;
  /** The next move toward PostgreSQL from the stage in force and the evidence gate's verdict on it now; null at postgres-only. */
  readonly nextStep: (NextStep & { readonly verdict: GateVerdict }) | null;
  /** The last verification's figures per entity (empty before the first one). */
  readonly consistency: readonly EntityConsistency[];
  readonly history: StatusHistorySnapshot;
  /** The newest audit events; `unavailable` says why there are none when the trail could not be read. */
  readonly audit: { readonly events: readonly AuditRow[]; readonly unavailable?: string };
  /** The newest background job runs (verifier, outbox replay rounds that did work, retention); `unavailable` says why there are none when they could not be read. */
  readonly jobs: { readonly executions: readonly JobRow[]; readonly unavailable?: string };
}

export interface EntityConsistency {
  readonly store: string;
  readonly entity: string;
  readonly consistencyRatio: number;
  readonly persistentDifferences: number;
  readonly transientDifferences: number;
  readonly rowsMemory: number;
  readonly rowsPostgres: number;
}

export interface JobRow {
  readonly id: string;
  readonly task: string;
  readonly state: ExecutionState;
  readonly trigger: TriggerType;
  readonly startedAt: string | null;
  /** Its duration once ended, else how long it has run so far. */
  readonly durationMs: number;
  readonly progress: number;
  /** One line: the error of a run that did not succeed, else its result. */
  readonly summary: string;
  /** Whether the stored result was cut at 64 KB. */
  readonly resultTruncated: boolean;
}

export interface AuditRow {
  readonly occurredAt: string;
  readonly action: AuditAction;
  readonly who: string;
  readonly from: string | null;
  readonly to: string | null;
  readonly reason: string | null;
}

/** What the status page draws, now (GET /status/data). */
export async function statusData(
  runtime: AdminRuntime,
  history: StatusHistory,
  log: FastifyBaseLogger,
): Promise<StatusData> {
  const next = nextStep(runtime.stage.current);
  const [verdict, audit, jobs] = await Promise.all([
    next ? runtime.judge(next) : undefined,
    auditRows(runtime, log),
    jobRows(runtime, log),
  ]);
  return {
    generatedAt: new Date().toISOString(),
    status: adminStatus(runtime),
    nextStep: next && verdict ? { ...next, verdict } : null,
    consistency: (runtime.verifier.lastReport?.entities ?? []).map((entity) => ({
      store: entity.store,
      entity: entity.entity,
      consistencyRatio: entity.consistencyRatio,
      persistentDifferences: persistentDifferences(entity),
      transientDifferences: entity.transient,
      rowsMemory: entity.rowsMemory,
      rowsPostgres: entity.rowsPostgres,
    })),
    history: history.snapshot(),
    audit,
    jobs,
  };
}

/** The newest audit events as the page lists them. */
async function auditRows(runtime: AdminRuntime, log: FastifyBaseLogger): Promise<StatusData['audit']> {
  const events = await readOrUnavailable(
    'the audit trail',
    () => runtime.audit.list({ limit: AUDIT_EVENTS_SHOWN }),
    log,
  );
  if ('unavailable' in events) return { events: [], unavailable: events.unavailable };
  return {
    events: events.map((event) => ({
      occurredAt: event.occurredAt,
      action: event.action,
      who: event.principal.username,
      from: event.from ?? null,
      to: event.to ?? null,
      reason: event.reason ?? null,
    })),
  };
}

/** The newest background job runs as the page lists them. */
async function jobRows(runtime: AdminRuntime, log: FastifyBaseLogger): Promise<StatusData['jobs']> {
  const executions = await readOrUnavailable(
    'the background jobs',
    () => runtime.jobs.listExecutions({ limit: JOBS_SHOWN }),
    log,
  );
  if ('unavailable' in executions) return { executions: [], unavailable: executions.unavailable };
  const now = new Date().toISOString();
  return {
    executions: executions.map((execution) => ({
      id: execution.id,
      task: execution.taskName,
      state: execution.state,
      trigger: execution.triggerType,
      startedAt: execution.startedAt,
      durationMs: elapsedMs(execution, now),
      progress: execution.progress,
      summary: executionSummary(execution),
      resultTruncated: execution.resultTruncated,
    })),
  };
}

/** What `read` gives, or why it could not be read; the rest of the page is shown when PostgreSQL cannot be read. */
async function readOrUnavailable<T>(
  what: string,
  read: () => Promise<T[]>,
  log: FastifyBaseLogger,
): Promise<T[] | { readonly unavailable: string }> {
  try {
    return await read();
  } catch (error) {
    // The reason may name hosts: it goes to the log, not to the page.
    log.warn({ err: error }, `status page: ${what} could not be read`);
    return { unavailable: `${what} could not be read (PostgreSQL did not answer; see the log)` };
  }
}
