import { TransitionError, ValidationError } from '../../domain/errors.js';
import { oneOf, optionalText, requireText } from '../../domain/text.js';
import { assertObject } from '../../domain/object.js';
import { decideTime, decideUuid, type WriteContext } from '../../domain/write-context.js';
import { canonicalJsonObject, type JsonObject } from '../../domain/json.js';
import { integerIn, pageLimit } from '../../domain/limits.js';
import { canonicalUuid } from '../../domain/time.js';

/** Job kinds; PostgreSQL stores each as its position here (SMALLINT: 0 = build, 1 = overlay). */
export const GRAPH_JOB_KINDS = ['build', 'overlay'] as const;
/** Job statuses; PostgreSQL stores each as its position here (SMALLINT 0-4). */
export const GRAPH_JOB_STATUSES = ['queued', 'running', 'completed', 'failed', 'canceled'] as const;
export type GraphJobKind = (typeof GRAPH_JOB_KINDS)[number];
export type GraphJobStatus = (typeof GRAPH_JOB_STATUSES)[number];

/** The job lifecycle: the statuses each status may move to. Staying put is always allowed. */
export const NEXT_GRAPH_JOB_STATUSES: Readonly<Record<GraphJobStatus, readonly GraphJobStatus[]>> = {
  queued: ['running', 'canceled'],
  running: ['completed', 'failed', 'canceled'],
  completed: [],
  failed: [],
  canceled: [],
};

/** A graph build or overlay job of one tenant; (tenantId, id) is its key. */
export interface GraphJob {
  readonly tenantId: string;
  readonly id: string;
  readonly kind: GraphJobKind;
  readonly status: GraphJobStatus;
  /** The job's own description (what to build, which overlay), opaque to the store. */
  readonly payload: JsonObject;
  readonly correlationId: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** One entry of a job's event log; (tenantId, jobId, seq) is its key. */
export interface GraphJobEvent {
  readonly tenantId: string;
  readonly jobId: string;
  /** 1 for a job's first event, then one more than the job's last event. */
  readonly seq: number;
  readonly status: GraphJobStatus;
  readonly payload: JsonObject;
  readonly createdAt: string;
}

/** A job to insert; it starts queued. */
export interface GraphJobInput {
  /** Decided as a new UUID when absent. */
  readonly id?: string;
  /** Absent or null: {}. */
  readonly payload?: JsonObject | null;
  readonly correlationId?: string | null;
  /** Creation time; decided by the clock when absent. */
  readonly at?: string;
}

/** What a compare-and-set replaces: the new status, and the payload and correlation id where given. */
export interface GraphJobReplacement {
  readonly status: GraphJobStatus;
  /** Absent: the job keeps its payload. */
  readonly payload?: JsonObject | null;
  /** Absent: the job keeps its correlation id; null clears it. */
  readonly correlationId?: string | null;
}

export interface GraphJobReplaceOptions {
  /** The status the job must be in now for the replacement to apply. Required. */
  readonly expectedStatus: GraphJobStatus;
  /** Replacement time; decided by the clock when absent. */
  readonly at?: string;
}

export interface GraphJobEventInput {
  readonly status: GraphJobStatus;
  /** Absent or null: {}. */
  readonly payload?: JsonObject | null;
  readonly at?: string;
}

export interface GraphJobListQuery {
  readonly status?: GraphJobStatus;
  readonly kind?: GraphJobKind;
  /** Default 50, at most 1000. */
  readonly limit?: number;
}

export interface GraphJobEventQuery {
  /** Events with a larger seq only. Default 0 (from the first). */
  readonly afterSeq?: number;
  /** Default 50, at most 1000. */
  readonly limit?: number;
}

export interface DecidedGraphJob {
  readonly id: string;
  readonly payload: JsonObject;
  readonly correlationId: string | null;
  readonly at: string;
}

export interface DecidedReplacement {
  readonly status: GraphJobStatus;
  readonly payload?: JsonObject;
  readonly correlationId?: string | null;
}

export interface DecidedReplaceOptions {
  readonly expectedStatus: GraphJobStatus;
  readonly at: string;
}

export interface DecidedGraphJobEvent {
  readonly status: GraphJobStatus;
  readonly payload: JsonObject;
  readonly at: string;
}

/** Largest event sequence number: the INTEGER column's maximum. */
export const MAX_EVENT_SEQ = 2147483647;

/** A tenant id: non-blank text of at most 255 characters (the schema's CHECK). */
export function graphTenantId(value: unknown): string {
  return requireText('tenantId', value, { nonBlank: true, maxLength: 255 });
}

export function graphJobId(field: string, value: unknown): string {
  return canonicalUuid(field, value);
}

export function decideGraphJob(input: GraphJobInput, context: WriteContext): DecidedGraphJob {
  assertObject('job', input);
  return {
    id: decideUuid('id', input.id, context),
    payload: canonicalJsonObject('payload', input.payload),
    correlationId: optionalText('correlationId', input.correlationId),
    at: decideTime('at', input.at, context),
  };
}

export function newGraphJob(tenantId: string, kind: GraphJobKind, write: DecidedGraphJob): GraphJob {
  return {
    tenantId,
    id: write.id,
    kind,
    status: 'queued',
    payload: write.payload,
    correlationId: write.correlationId,
    createdAt: write.at,
    updatedAt: write.at,
  };
}

/**
 * Validates a compare-and-set. The move is checked here, from expectedStatus to the new
 * status, because the replacement applies only to a job in expectedStatus: a forbidden
 * move is a TransitionError before any store sees the call, whatever the stores hold.
 */
export function decideReplacement(
  next: GraphJobReplacement,
  options: GraphJobReplaceOptions,
  context: WriteContext,
): { next: DecidedReplacement; options: DecidedReplaceOptions } {
  assertObject('next', next);
  assertObject('options', options);
  const status = oneOf('status', next.status, GRAPH_JOB_STATUSES);
  const expectedStatus = oneOf('expectedStatus', options.expectedStatus, GRAPH_JOB_STATUSES);
  if (status !== expectedStatus && !NEXT_GRAPH_JOB_STATUSES[expectedStatus].includes(status))
    throw new TransitionError(expectedStatus, status, 'status', 'a graph job');
  return {
    next: {
      status,
      ...(next.payload !== undefined ? { payload: canonicalJsonObject('payload', next.payload) } : {}),
      ...(next.correlationId !== undefined ? { correlationId: optionalText('correlationId', next.correlationId) } : {}),
    },
    options: { expectedStatus, at: decideTime('at', options.at, context) },
  };
}

/** The job after a decided replacement, or null when it is not in the expected status (nothing changes). */
export function replacedGraphJob(
  current: GraphJob,
  next: DecidedReplacement,
  options: DecidedReplaceOptions,
): GraphJob | null {
  if (current.status !== options.expectedStatus) return null;
  return {
    ...current,
    status: next.status,
    payload: next.payload ?? current.payload,
    correlationId: next.correlationId === undefined ? current.correlationId : next.correlationId,
    updatedAt: options.at,
  };
}

export function decideGraphJobEvent(input: GraphJobEventInput, context: WriteContext): DecidedGraphJobEvent {
  assertObject('event', input);
  return {
    status: oneOf('status', input.status, GRAPH_JOB_STATUSES),
    payload: canonicalJsonObject('payload', input.payload),
    at: decideTime('at', input.at, context),
  };
}

export function newGraphJobEvent(
  tenantId: string,
  jobId: string,
  seq: number,
  write: DecidedGraphJobEvent,
): GraphJobEvent {
  if (seq > MAX_EVENT_SEQ) throw new ValidationError('seq', `a job holds at most ${MAX_EVENT_SEQ} events`);
  return { tenantId, jobId, seq, status: write.status, payload: write.payload, createdAt: write.at };
}

export function graphJobListQuery(query: GraphJobListQuery): {
  status: GraphJobStatus | null;
  kind: GraphJobKind | null;
  limit: number;
} {
  assertObject('query', query);
  return {
    status: query.status === undefined ? null : oneOf('status', query.status, GRAPH_JOB_STATUSES),
    kind: query.kind === undefined ? null : oneOf('kind', query.kind, GRAPH_JOB_KINDS),
    limit: pageLimit('limit', query.limit, 50),
  };
}

export function graphJobEventQuery(query: GraphJobEventQuery): { afterSeq: number; limit: number } {
  assertObject('query', query);
  return {
    afterSeq:
      query.afterSeq === undefined
        ? 0
        : integerIn('afterSeq', query.afterSeq, 0, MAX_EVENT_SEQ, `an integer from 0 to ${MAX_EVENT_SEQ}`),
    limit: pageLimit('limit', query.limit, 50),
  };
}

/**
 * An event's seq as a key part: zero-padded to 10 digits, so the code point order of keys
 * is the numeric order PostgreSQL sorts the INTEGER column in.
 */
export function eventSeqKey(seq: number): string {
  return String(seq).padStart(10, '0');
}
