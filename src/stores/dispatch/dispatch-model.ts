import {
  canonicalCell,
  columnOfField,
  DISPATCH_STATUSES,
  DISPATCH_TABLES,
  type DispatchStatus,
  type DispatchTask,
} from './dispatch-records.js';
import { ValidationError } from '../../domain/errors.js';
import { assertObject } from '../../domain/object.js';
import { decideTime, type WriteContext } from '../../domain/write-context.js';
import type { JsonValue } from '../../domain/json.js';
import { integerIn, pageLimit } from '../../domain/limits.js';
import { requireText } from '../../domain/text.js';

export { DISPATCH_STATUSES, type DispatchStatus, type DispatchTask } from './dispatch-records.js';

/** A task to create. Left out: the tasks table's defaults (status pending, priority 2, ...); `at` decides updatedAt. */
export interface DispatchTaskInput {
  readonly id: string;
  readonly project: string;
  readonly specFile: string;
  readonly specHash?: string | null;
  /** Task ids this one waits for. Default []. */
  readonly dependsOn?: JsonValue;
  /** Files this one changes. Default []. */
  readonly modifies?: JsonValue;
  readonly exclusive?: number;
  readonly priority?: number;
  readonly maxRetries?: number;
  readonly visibilityTimeout?: number;
  readonly estimatedMinutes?: number;
  readonly idempotencyKey?: string | null;
  /** Default: the write context's clock. */
  readonly at?: string;
}

/** A claim of a pending task by a node. */
export interface DispatchClaim {
  readonly node: string;
  /** Default: the node. */
  readonly leaseOwner?: string;
  /** Seconds the lease lasts. Default 300. */
  readonly leaseSeconds?: number;
  readonly at?: string;
}

/** Fields an update may change; null clears a field. */
export interface DispatchTaskPatch {
  readonly status?: DispatchStatus;
  readonly node?: string | null;
  readonly pid?: number | null;
  readonly error?: string | null;
  readonly logFile?: string | null;
  readonly durationSeconds?: number | null;
  readonly leaseOwner?: string | null;
  readonly leaseExpiresAt?: number | null;
}

export interface DispatchUpdateOptions {
  /** Compare-and-set: apply the update only if the task is in this status now. */
  readonly expectedStatus?: DispatchStatus;
  readonly at?: string;
}

/** `updated: false`: the task was not in the expected status; `task` is as stored now. */
export interface DispatchUpdateResult {
  readonly updated: boolean;
  readonly task: DispatchTask;
}

export interface DispatchTaskQuery {
  readonly status?: DispatchStatus;
  readonly project?: string;
  /** Default 50, at most 1000. */
  readonly limit?: number;
}

/** A claim or update with everything decided. */
export interface DecidedDispatchUpdate {
  readonly id: string;
  readonly patch: DispatchTaskPatch;
  readonly expectedStatus: DispatchStatus | null;
  readonly at: string;
}

const TASKS = DISPATCH_TABLES.tasks;
const taskCell = (field: keyof DispatchTask, value: unknown) => canonicalCell(columnOfField(TASKS, field), value);
const PATCH_FIELDS = [
  'status',
  'node',
  'pid',
  'error',
  'logFile',
  'durationSeconds',
  'leaseOwner',
  'leaseExpiresAt',
] as const;
const DEFAULT_LEASE_SECONDS = 300;
const INPUT_FIELDS = [
  'id',
  'project',
  'specFile',
  'specHash',
  'dependsOn',
  'modifies',
  'exclusive',
  'priority',
  'maxRetries',
  'visibilityTimeout',
  'estimatedMinutes',
  'idempotencyKey',
  'at',
] as const;

export function dispatchTaskId(field: string, value: unknown): string {
  return requireText(field, value, { nonBlank: true });
}

/** Epoch seconds of a canonical timestamp: the unit of updated_at and lease_expires_at. */
export function epochSeconds(at: string): number {
  return Math.floor(Date.parse(at) / 1000);
}

/** The task a create stores, decided once: validated, defaults filled in, `at` decided. */
export function decideDispatchTask(input: DispatchTaskInput, context: WriteContext): Required<DispatchTaskInput> {
  assertObject('task', input);
  const fields = input as unknown as Record<string, unknown>;
  for (const key of Object.keys(fields))
    if (!(INPUT_FIELDS as readonly string[]).includes(key))
      throw new ValidationError(key, `cannot be given when creating a task; its fields are ${INPUT_FIELDS.join(', ')}`);
  const cell = (field: keyof DispatchTaskInput & keyof DispatchTask, fallback: unknown) =>
    taskCell(field, fields[field] ?? fallback);
  return {
    id: dispatchTaskId('id', input.id),
    project: requireText('project', input.project, { nonBlank: true }),
    specFile: requireText('specFile', input.specFile, { nonBlank: true }),
    specHash: cell('specHash', null) as string | null,
    dependsOn: cell('dependsOn', []) as JsonValue,
    modifies: cell('modifies', []) as JsonValue,
    exclusive: cell('exclusive', 0) as number,
    priority: cell('priority', 2) as number,
    maxRetries: cell('maxRetries', 10) as number,
    visibilityTimeout: cell('visibilityTimeout', 300) as number,
    estimatedMinutes: cell('estimatedMinutes', 30) as number,
    idempotencyKey: cell('idempotencyKey', null) as string | null,
    at: decideTime('at', input.at, context),
  };
}

/** The record of a new task: the decided input and the tasks table's defaults. */
export function newDispatchTask(input: Required<DispatchTaskInput>): DispatchTask {
  return {
    id: input.id,
    project: input.project,
    specFile: input.specFile,
    specHash: input.specHash,
    status: 'pending',
    node: null,
    pid: null,
    attempt: 0,
    maxRetries: input.maxRetries,
    startedAt: null,
    completedAt: null,
    collectedAt: null,
    heartbeatAt: null,
    error: null,
    logFile: null,
    durationSeconds: null,
    dependsOn: input.dependsOn,
    modifies: input.modifies,
    exclusive: input.exclusive,
    priority: input.priority,
    leaseOwner: null,
    leaseExpiresAt: null,
    visibilityTimeout: input.visibilityTimeout,
    idempotencyKey: input.idempotencyKey,
    updatedAt: epochSeconds(input.at),
    estimatedMinutes: input.estimatedMinutes,
    artifactHash: null,
    artifactPatch: null,
    locAdded: 0,
    locRemoved: 0,
    filesChanged: 0,
    peerValidated: 'pending',
    peerNode: null,
    peerResult: null,
  };
}

/** A claim, decided once: the claim arguments as a store takes them again. */
export function decideClaim(
  id: unknown,
  claim: DispatchClaim,
  context: WriteContext,
): [string, Required<DispatchClaim>] {
  assertObject('claim', claim);
  const node = requireText('node', claim.node, { nonBlank: true });
  return [
    dispatchTaskId('id', id),
    {
      node,
      leaseOwner:
        claim.leaseOwner === undefined ? node : requireText('leaseOwner', claim.leaseOwner, { nonBlank: true }),
      leaseSeconds:
        claim.leaseSeconds === undefined
          ? DEFAULT_LEASE_SECONDS
          : integerIn('leaseSeconds', claim.leaseSeconds, 1, 2147483647, 'a positive 32-bit integer'),
      at: decideTime('at', claim.at, context),
    },
  ];
}

/** A claim as the update it is: pending to claimed, the node, its lease, one attempt more (applyDispatchUpdate counts it). */
export function claimUpdate(id: string, claim: Required<DispatchClaim>): DecidedDispatchUpdate {
  return {
    id,
    patch: {
      status: 'claimed',
      node: claim.node,
      leaseOwner: claim.leaseOwner,
      leaseExpiresAt: epochSeconds(claim.at) + claim.leaseSeconds,
    },
    expectedStatus: 'pending',
    at: claim.at,
  };
}

export function decideDispatchUpdate(
  id: unknown,
  patch: DispatchTaskPatch,
  options: DispatchUpdateOptions | undefined,
  context: WriteContext,
): DecidedDispatchUpdate {
  assertObject('patch', patch);
  const decided: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(patch)) {
    if (!(PATCH_FIELDS as readonly string[]).includes(field))
      throw new ValidationError(field, `cannot be updated; updatable fields are ${PATCH_FIELDS.join(', ')}`);
    if (value === undefined) continue;
    decided[field] =
      field === 'status' ? dispatchStatus('status', value) : taskCell(field as keyof DispatchTask, value);
  }
  const expected = options?.expectedStatus;
  return {
    id: dispatchTaskId('id', id),
    patch: decided as DispatchTaskPatch,
    expectedStatus: expected === undefined ? null : dispatchStatus('expectedStatus', expected),
    at: decideTime('at', options?.at, context),
  };
}

/** The update options a decided update is replayed with (the store decides nothing again). */
export function updateOptions(update: DecidedDispatchUpdate): DispatchUpdateOptions {
  return { at: update.at, ...(update.expectedStatus ? { expectedStatus: update.expectedStatus } : {}) };
}

/**
 * Applies a decided update to the stored task, the same on every store: the compare-and-set,
 * then the patch; a claim counts an attempt, moving to running stamps startedAt once, moving
 * to completed, failed or deadletter stamps completedAt; updatedAt is the update's time.
 */
export function applyDispatchUpdate(current: DispatchTask, update: DecidedDispatchUpdate): DispatchUpdateResult {
  if (update.expectedStatus !== null && current.status !== update.expectedStatus)
    return { updated: false, task: current };
  const next = update.patch.status ?? current.status;
  const moved = next !== current.status;
  return {
    updated: true,
    task: {
      ...current,
      ...update.patch,
      status: next,
      attempt: moved && next === 'claimed' ? (current.attempt ?? 0) + 1 : current.attempt,
      startedAt: moved && next === 'running' && current.startedAt === null ? update.at : current.startedAt,
      completedAt:
        moved && (next === 'completed' || next === 'failed' || next === 'deadletter') ? update.at : current.completedAt,
      updatedAt: epochSeconds(update.at),
    },
  };
}

export function dispatchStatus(field: string, value: unknown): DispatchStatus {
  if (typeof value !== 'string' || !(DISPATCH_STATUSES as readonly string[]).includes(value)) {
    throw new ValidationError(field, `must be one of ${DISPATCH_STATUSES.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as DispatchStatus;
}

/** A validated list query: its filters and page size. */
export function decideTaskQuery(query: DispatchTaskQuery = {}): {
  status: DispatchStatus | null;
  project: string | null;
  limit: number;
} {
  assertObject('query', query);
  return {
    status: query.status === undefined ? null : dispatchStatus('status', query.status),
    project: query.project === undefined ? null : requireText('project', query.project),
    limit: pageLimit('limit', query.limit, 50),
  };
}
