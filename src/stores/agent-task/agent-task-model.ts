import { TransitionError, ValidationError } from '../../domain/errors.js';
import { canonicalJsonObject, type JsonObject } from '../../domain/json.js';
import { integerIn } from '../../domain/limits.js';
import { oneOf, optionalText, requireText } from '../../domain/text.js';
import { assertObject } from '../../domain/object.js';
import { decideTime, type Decided, type WriteContext } from '../../domain/write-context.js';

export const TASK_TYPES = ['spec', 'test', 'impl', 'review', 'heal'] as const;
export const TASK_STATUSES = ['pending', 'running', 'completed', 'failed', 'needs_decision'] as const;
export type TaskType = (typeof TASK_TYPES)[number];
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** The task lifecycle: the statuses each status may move to. Staying put is always allowed. */
export const NEXT_STATUSES: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  pending: ['running'],
  running: ['completed', 'failed', 'needs_decision'],
  needs_decision: ['running'],
  completed: [],
  failed: [],
};

/** Statuses that need a person: what attention() lists. */
export const ATTENTION_STATUSES: readonly TaskStatus[] = ['needs_decision', 'failed'];

export interface AgentTask {
  readonly id: string;
  readonly direction: string;
  readonly taskType: TaskType;
  readonly status: TaskStatus;
  readonly model: string;
  readonly command: string;
  readonly output: string | null;
  readonly context: JsonObject;
  readonly progressPct: number | null;
  readonly currentStep: string | null;
  readonly decisionPrompt: string | null;
  readonly decision: string | null;
  readonly tier: string | null;
  /** Set the first time the task moves to running. */
  readonly startedAt: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface TaskInput {
  /** Decided as `task_` + 16 hex digits when absent. */
  readonly id?: string;
  readonly direction: string;
  readonly taskType: TaskType;
  readonly model: string;
  readonly command: string;
  readonly context?: JsonObject | null;
  readonly tier?: string | null;
  readonly at?: string;
}

/** Fields an update may change; null clears a nullable field. */
export interface TaskPatch {
  readonly status?: TaskStatus;
  readonly output?: string | null;
  readonly progressPct?: number | null;
  readonly currentStep?: string | null;
  readonly decisionPrompt?: string | null;
  readonly decision?: string | null;
  readonly context?: JsonObject | null;
}

export interface TaskUpdateOptions {
  /** Compare-and-set: apply the update only if the task is in this status now. */
  readonly expectedStatus?: TaskStatus;
  readonly at?: string;
}

/** Outcome of an update: `updated: false` means expectedStatus did not match; `task` is as stored now. */
export type TaskUpdateResult =
  { readonly updated: true; readonly task: AgentTask } | { readonly updated: false; readonly task: AgentTask };

export interface TaskListQuery {
  readonly status?: TaskStatus;
  readonly taskType?: TaskType;
  /** Default 50, at most 1000. */
  readonly limit?: number;
  /** Default 0. */
  readonly offset?: number;
}

export interface DecidedTaskUpdate {
  readonly id: string;
  readonly patch: Omit<TaskPatch, 'context'> & { readonly context?: JsonObject };
  readonly expectedStatus: TaskStatus | null;
  readonly at: string;
}

export function decideTask(input: TaskInput, context: WriteContext): Decided<TaskInput> {
  assertObject('task', input);
  return {
    id: taskId('id', input.id ?? `task_${randomHex16(context)}`),
    direction: requireText('direction', input.direction, { nonBlank: true }),
    taskType: oneOf('taskType', input.taskType, TASK_TYPES),
    model: requireText('model', input.model, { maxLength: 100, nonBlank: true }),
    command: requireText('command', input.command),
    context: canonicalJsonObject('context', input.context),
    tier: optionalText('tier', input.tier, { maxLength: 50 }),
    at: decideTime('at', input.at, context),
  };
}

export function newTask(write: Decided<TaskInput>): AgentTask {
  return {
    id: write.id,
    direction: write.direction,
    taskType: write.taskType,
    status: 'pending',
    model: write.model,
    command: write.command,
    output: null,
    context: write.context,
    progressPct: null,
    currentStep: null,
    decisionPrompt: null,
    decision: null,
    tier: write.tier,
    startedAt: null,
    createdAt: write.at,
    updatedAt: write.at,
  };
}

const PATCH_FIELDS = [
  'status',
  'output',
  'progressPct',
  'currentStep',
  'decisionPrompt',
  'decision',
  'context',
] as const;

export function decideTaskUpdate(
  id: unknown,
  patch: TaskPatch,
  options: TaskUpdateOptions | undefined,
  context: WriteContext,
): DecidedTaskUpdate {
  assertObject('patch', patch);
  for (const key of Object.keys(patch)) {
    if (!(PATCH_FIELDS as readonly string[]).includes(key)) {
      throw new ValidationError(key, `cannot be updated; updatable fields are ${PATCH_FIELDS.join(', ')}`);
    }
  }
  const decided: { -readonly [K in keyof DecidedTaskUpdate['patch']]: DecidedTaskUpdate['patch'][K] } = {};
  if (patch.status !== undefined) decided.status = oneOf('status', patch.status, TASK_STATUSES);
  if (patch.output !== undefined) decided.output = optionalText('output', patch.output);
  if (patch.progressPct !== undefined) decided.progressPct = progress(patch.progressPct);
  if (patch.currentStep !== undefined) decided.currentStep = optionalText('currentStep', patch.currentStep);
  if (patch.decisionPrompt !== undefined) decided.decisionPrompt = optionalText('decisionPrompt', patch.decisionPrompt);
  if (patch.decision !== undefined) decided.decision = optionalText('decision', patch.decision);
  if (patch.context !== undefined) decided.context = canonicalJsonObject('context', patch.context);
  const expected = options?.expectedStatus;
  return {
    id: taskId('id', id),
    patch: decided,
    expectedStatus: expected === undefined ? null : oneOf('expectedStatus', expected, TASK_STATUSES),
    at: decideTime('at', options?.at, context),
  };
}

/**
 * Applies a decided update to the stored task: the one place the lifecycle is enforced,
 * shared by every store so they accept and reject exactly the same updates.
 */
export function applyTaskUpdate(current: AgentTask, update: DecidedTaskUpdate): TaskUpdateResult {
  if (update.expectedStatus !== null && current.status !== update.expectedStatus)
    return { updated: false, task: current };
  const next = update.patch.status ?? current.status;
  if (next !== current.status && !NEXT_STATUSES[current.status].includes(next)) {
    throw new TransitionError(current.status, next);
  }
  const startsRunning = next === 'running' && current.startedAt === null;
  return {
    updated: true,
    task: {
      ...current,
      ...update.patch,
      status: next,
      startedAt: startsRunning ? update.at : current.startedAt,
      updatedAt: update.at,
    },
  };
}

export function taskId(field: string, value: unknown): string {
  return requireText(field, value, { maxLength: 50, nonBlank: true });
}

function progress(value: unknown): number | null {
  return value === null ? null : integerIn('progressPct', value, 0, 100, 'an integer from 0 to 100');
}

function randomHex16(context: WriteContext): string {
  return context.ids.uuid().replaceAll('-', '').slice(-16);
}
