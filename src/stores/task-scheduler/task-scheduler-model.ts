import { TransitionError, ValidationError } from '../../domain/errors.js';
import { integerIn } from '../../domain/limits.js';
import { optionalText, requireText } from '../../domain/text.js';

/**
 * The background jobs' model: a ScheduledTask says what runs and how often, each run is a
 * TaskExecution with a lifecycle, and a TaskLock row keeps a task to one holder at a time,
 * its token fencing the writes of a holder that lost it.
 */

// ---------------------------------------------------------------------------------------
// States

export const EXECUTION_STATES = [
  'pending',
  'running',
  'success',
  'failure',
  'timeout',
  'cancelled',
  'interrupted',
] as const;
export type ExecutionState = (typeof EXECUTION_STATES)[number];

/**
 * The execution lifecycle: the states each state may move to. A run ends once; `interrupted`
 * is what a restart (or a holder that took an expired lock) makes of a run left running.
 */
export const EXECUTION_TRANSITIONS: Readonly<Record<ExecutionState, readonly ExecutionState[]>> = {
  pending: ['running'],
  running: ['success', 'failure', 'timeout', 'cancelled', 'interrupted'],
  success: [],
  failure: [],
  timeout: [],
  cancelled: [],
  interrupted: [],
};

export const LOCK_STATES = ['active', 'released', 'expired'] as const;
export type LockState = (typeof LOCK_STATES)[number];

/** The lock lifecycle: an active lock is released by its holder or expires; either is final. */
export const LOCK_TRANSITIONS: Readonly<Record<LockState, readonly LockState[]>> = {
  active: ['released', 'expired'],
  released: [],
  expired: [],
};

export const TRIGGER_TYPES = ['scheduled', 'manual'] as const;
export type TriggerType = (typeof TRIGGER_TYPES)[number];

export function parseExecutionState(field: string, value: unknown): ExecutionState {
  return oneOf(field, value, EXECUTION_STATES);
}

export function parseLockState(field: string, value: unknown): LockState {
  return oneOf(field, value, LOCK_STATES);
}

export function isTerminal(state: ExecutionState): boolean {
  return EXECUTION_TRANSITIONS[state].length === 0;
}

function oneOf<T extends string>(field: string, value: unknown, values: readonly T[]): T {
  if (!values.includes(value as T))
    throw new ValidationError(field, `must be one of ${values.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

// ---------------------------------------------------------------------------------------
// ScheduledTask

/** Longest task input data, in bytes of UTF-8. */
export const MAX_TASK_DATA_BYTES = 10 * 1024;

/** A background task as declared; what is absent takes the documented default. */
export interface ScheduledTaskInput {
  /** Unique among the tasks, at most 255 characters. */
  readonly name: string;
  /** The handler that runs it: one of the registered handler types. */
  readonly type: string;
  readonly description?: string;
  /** Runs again after each run (on cronExpr or every intervalMs). Default true. */
  readonly isRecurring?: boolean;
  /** Five-field cron expression (minute hour day-of-month month day-of-week) or a macro (@hourly, @daily, ...). */
  readonly cronExpr?: string;
  /** Pause between runs when there is no cron expression, in ms. */
  readonly intervalMs?: number;
  /** Default true. */
  readonly enabled?: boolean;
  /** How long a run may take before it counts as timed out (after the grace period). Default 3600. */
  readonly maxDurationSeconds?: number;
  /** Default 3. */
  readonly maxRetries?: number;
  /** Extra time past maxDurationSeconds before a run is marked timed out. Default 30; below maxDurationSeconds. */
  readonly timeoutGracePeriodSeconds?: number;
  /** Default 1. */
  readonly maxConcurrent?: number;
  /** Higher runs first. Default 0. */
  readonly priority?: number;
  /** Input of the run as JSON text, at most 10 KB. */
  readonly data?: string;
}

export interface ScheduledTask {
  readonly name: string;
  readonly type: string;
  readonly description: string | null;
  readonly isRecurring: boolean;
  readonly cronExpr: string | null;
  readonly intervalMs: number | null;
  readonly enabled: boolean;
  readonly maxDurationSeconds: number;
  readonly maxRetries: number;
  readonly timeoutGracePeriodSeconds: number;
  readonly maxConcurrent: number;
  readonly priority: number;
  readonly data: string | null;
}

/**
 * Validates a set of task definitions: names unique and non-blank, types among `handlers`,
 * a recurring task has a valid cron expression or a positive interval, the duration is
 * positive and the grace period from 0 to below it, data at most 10 KB. Each problem is a
 * ValidationError naming the field.
 */
export function validateScheduledTasks(
  inputs: readonly ScheduledTaskInput[],
  handlers: readonly string[],
): ScheduledTask[] {
  const names = new Set<string>();
  return inputs.map((input) => {
    const task = validateScheduledTask(input, handlers);
    if (names.has(task.name))
      throw new ValidationError('name', `${JSON.stringify(task.name)} is the name of another task; names are unique`);
    names.add(task.name);
    return task;
  });
}

function validateScheduledTask(input: ScheduledTaskInput, handlers: readonly string[]): ScheduledTask {
  const name = requireText('name', input.name, { nonBlank: true, maxLength: 255 });
  const type = requireText('type', input.type, { nonBlank: true, maxLength: 255 });
  if (!handlers.includes(type))
    throw new ValidationError(
      'type',
      `no handler is registered for ${JSON.stringify(type)} (handlers: ${handlers.join(', ')})`,
    );
  const isRecurring = input.isRecurring ?? true;
  const cronExpr = optionalText('cronExpr', input.cronExpr, { maxLength: 255 });
  if (cronExpr !== null) assertCron('cronExpr', cronExpr);
  const intervalMs =
    input.intervalMs === undefined
      ? null
      : integerIn(
          'intervalMs',
          input.intervalMs,
          1,
          Number.MAX_SAFE_INTEGER,
          'a positive whole number of milliseconds',
        );
  if (isRecurring && cronExpr === null && intervalMs === null)
    throw new ValidationError('cronExpr', `task ${name} recurs: give a cron expression or intervalMs`);
  const maxDurationSeconds = integerIn(
    'maxDurationSeconds',
    input.maxDurationSeconds ?? 3600,
    1,
    2_147_483_647,
    'a whole number of seconds above 0',
  );
  const timeoutGracePeriodSeconds = integerIn(
    'timeoutGracePeriodSeconds',
    input.timeoutGracePeriodSeconds ?? 30,
    0,
    2_147_483_647,
    'a whole number of seconds, at least 0',
  );
  if (timeoutGracePeriodSeconds >= maxDurationSeconds) {
    throw new ValidationError(
      'timeoutGracePeriodSeconds',
      `must be below maxDurationSeconds (${maxDurationSeconds}), got ${timeoutGracePeriodSeconds}`,
    );
  }
  const data = optionalText('data', input.data);
  if (data !== null && Buffer.byteLength(data, 'utf8') > MAX_TASK_DATA_BYTES)
    throw new ValidationError(
      'data',
      `must be at most ${MAX_TASK_DATA_BYTES} bytes, got ${Buffer.byteLength(data, 'utf8')}`,
    );
  return {
    name,
    type,
    description: optionalText('description', input.description),
    isRecurring,
    cronExpr,
    intervalMs,
    enabled: input.enabled ?? true,
    maxDurationSeconds,
    maxRetries: integerIn('maxRetries', input.maxRetries ?? 3, 0, 1000, 'a whole number from 0 to 1000'),
    timeoutGracePeriodSeconds,
    maxConcurrent: integerIn('maxConcurrent', input.maxConcurrent ?? 1, 1, 1000, 'a whole number from 1 to 1000'),
    priority: integerIn('priority', input.priority ?? 0, -2_147_483_648, 2_147_483_647, 'a 32-bit whole number'),
    data,
  };
}

const CRON_MACROS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
/** Each cron field's range and, for month and day of week, its names (numbered from the range's start). */
const CRON_FIELDS: readonly {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  // 7 is Sunday too, as in Vixie cron.
  { name: 'day of week', min: 0, max: 7, names: WEEKDAYS },
];

/** Throws a ValidationError naming `field` unless `expression` is a five-field cron expression or a macro. */
export function assertCron(field: string, expression: string): void {
  const trimmed = expression.trim();
  if (CRON_MACROS.has(trimmed)) return;
  const parts = trimmed.split(/\s+/);
  if (parts.length !== CRON_FIELDS.length)
    throw new ValidationError(
      field,
      `must have 5 fields (minute hour day-of-month month day-of-week) or be a macro such as @daily, got ${JSON.stringify(expression)}`,
    );
  parts.forEach((part, index) => {
    const spec = CRON_FIELDS[index]!;
    for (const item of part.split(',')) {
      const problem = cronItemProblem(item, spec);
      if (problem)
        throw new ValidationError(
          field,
          `${spec.name} ${JSON.stringify(item)}: ${problem} (in ${JSON.stringify(expression)})`,
        );
    }
  });
}

/** What is wrong with one comma-separated item of a cron field (`*`, `a`, `a-b`, each optionally `/step`), or undefined. */
function cronItemProblem(item: string, spec: (typeof CRON_FIELDS)[number]): string | undefined {
  const [range, step, ...rest] = item.split('/');
  if (rest.length > 0) return 'has more than one step';
  if (step !== undefined && !/^\d+$/.test(step)) return 'the step must be a whole number';
  if (step !== undefined && (Number(step) < 1 || Number(step) > spec.max))
    return `the step must be from 1 to ${spec.max}`;
  if (range === '*') return undefined;
  const bounds = range!.split('-');
  if (bounds.length > 2) return 'is not a value or a range';
  const values = bounds.map((bound) => cronValue(bound, spec));
  if (values.some((value) => value === undefined))
    return `values run from ${spec.min} to ${spec.max}${spec.names ? ` or ${spec.names[0]}-${spec.names.at(-1)}` : ''}`;
  if (values.length === 2 && values[0]! > values[1]!) return 'the range runs backwards';
  return undefined;
}

function cronValue(text: string, spec: (typeof CRON_FIELDS)[number]): number | undefined {
  const named = spec.names?.indexOf(text.toUpperCase()) ?? -1;
  if (named >= 0) return named + spec.min;
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return value >= spec.min && value <= spec.max ? value : undefined;
}

// ---------------------------------------------------------------------------------------
// TaskExecution

/** Longest result kept, in bytes of UTF-8: a longer one is cut and flagged. */
export const MAX_RESULT_BYTES = 64 * 1024;
/** Longest error stack kept, in bytes of UTF-8: the top of a longer one is kept. */
export const MAX_ERROR_STACK_BYTES = 10 * 1024;

/** One run of a task. Times are ISO-8601 UTC. */
export interface TaskExecution {
  /** The execution's unique id (a UUID). */
  readonly id: string;
  readonly taskName: string;
  readonly taskType: string;
  /** The holder (process) that ran it. */
  readonly runBy: string;
  readonly triggerType: TriggerType;
  /** Who asked for a manual run. */
  readonly triggerBy: string | null;
  readonly scheduledAt: string;
  /** Set when it moves to running. */
  readonly startedAt: string | null;
  /** Set when it ends. */
  readonly finishedAt: string | null;
  readonly state: ExecutionState;
  /** What the run produced (JSON text), at most 64 KB. */
  readonly result: string | null;
  /** Whether `result` was cut to fit 64 KB. */
  readonly resultTruncated: boolean;
  readonly errorMessage: string | null;
  /** The top 10 KB of the error's stack. */
  readonly errorStack: string | null;
  /** finishedAt - startedAt once it ended; 0 before. */
  readonly durationMs: number;
  /** 0-100. */
  readonly progress: number;
  readonly retryCount: number;
  /** The lock it ran under: its writes are refused once that lock is no longer its holder's. */
  readonly lockKey: string | null;
  readonly lockToken: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface NewExecution {
  readonly id: string;
  readonly task: Pick<ScheduledTask, 'name' | 'type'>;
  readonly runBy: string;
  readonly triggerType?: TriggerType;
  readonly triggerBy?: string;
  /** When it was due. Default: `at`. */
  readonly scheduledAt?: string;
  readonly lock?: Pick<TaskLock, 'lockKey' | 'token'>;
}

/** A pending execution, decided at `at`. */
export function newExecution(input: NewExecution, at: string): TaskExecution {
  return {
    id: requireText('id', input.id, { nonBlank: true, maxLength: 255 }),
    taskName: input.task.name,
    taskType: input.task.type,
    runBy: requireText('runBy', input.runBy, { nonBlank: true, maxLength: 255 }),
    triggerType: oneOf('triggerType', input.triggerType ?? 'scheduled', TRIGGER_TYPES),
    triggerBy: optionalText('triggerBy', input.triggerBy, { maxLength: 255 }),
    scheduledAt: input.scheduledAt ?? at,
    startedAt: null,
    finishedAt: null,
    state: 'pending',
    result: null,
    resultTruncated: false,
    errorMessage: null,
    errorStack: null,
    durationMs: 0,
    progress: 0,
    retryCount: 0,
    lockKey: input.lock?.lockKey ?? null,
    lockToken: input.lock?.token ?? null,
    createdAt: at,
    updatedAt: at,
  };
}

/** What ends a run: its result (any JSON value, or text), or its error. */
export interface ExecutionOutcome {
  readonly result?: unknown;
  readonly error?: unknown;
}

/**
 * The execution moved to `to` at `at`, as the lifecycle allows (a TransitionError on
 * `state` otherwise): running sets startedAt; an end sets finishedAt and the duration, and
 * keeps the result (cut at 64 KB, flagged) or the error (its stack cut at 10 KB).
 */
export function transitionExecution(
  execution: TaskExecution,
  to: ExecutionState,
  at: string,
  outcome: ExecutionOutcome = {},
): TaskExecution {
  if (!EXECUTION_TRANSITIONS[execution.state].includes(parseExecutionState('state', to)))
    throw new TransitionError(execution.state, to, 'state', 'an execution');
  if (to === 'running') return { ...execution, state: to, startedAt: at, updatedAt: at };
  const started = execution.startedAt ?? at;
  const cut =
    outcome.result === undefined
      ? { result: execution.result, truncated: execution.resultTruncated }
      : cutResult(outcome.result);
  const error = outcome.error === undefined ? undefined : errorParts(outcome.error);
  return {
    ...execution,
    state: to,
    finishedAt: at,
    durationMs: Math.max(0, Date.parse(at) - Date.parse(started)),
    progress: to === 'success' ? 100 : execution.progress,
    result: cut.result,
    resultTruncated: cut.truncated,
    ...(error ? { errorMessage: error.message, errorStack: error.stack } : {}),
    updatedAt: at,
  };
}

/** The running execution with its progress (0-100) at `at`. */
export function withProgress(execution: TaskExecution, progress: number, at: string): TaskExecution {
  if (execution.state !== 'running')
    throw new ValidationError(
      'state',
      `progress is reported while an execution runs, not when it is ${execution.state}`,
    );
  return {
    ...execution,
    progress: integerIn('progress', progress, 0, 100, 'a whole number from 0 to 100'),
    updatedAt: at,
  };
}

/** A result as stored: JSON text (text as it is), cut to at most 64 KB of UTF-8 and flagged when cut. */
export function cutResult(
  result: unknown,
  maxBytes = MAX_RESULT_BYTES,
): { readonly result: string; readonly truncated: boolean } {
  const text = typeof result === 'string' ? result : (JSON.stringify(result) ?? 'null');
  const kept = utf8Prefix(text, maxBytes);
  return { result: kept, truncated: kept.length < text.length };
}

/** The longest prefix of `text` within `maxBytes` of UTF-8 that does not split a character. */
export function utf8Prefix(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  let kept = Buffer.from(text, 'utf8').subarray(0, maxBytes).toString('utf8');
  // A character cut in two decodes as U+FFFD at the end: drop it.
  if (kept.endsWith('\uFFFD') && !text.startsWith(kept)) kept = kept.slice(0, -1);
  return kept;
}

function errorParts(error: unknown): { message: string; stack: string | null } {
  const message = utf8Prefix(error instanceof Error ? error.message : String(error), MAX_ERROR_STACK_BYTES);
  const stack = error instanceof Error && error.stack ? utf8Prefix(error.stack, MAX_ERROR_STACK_BYTES) : null;
  return { message, stack };
}

// ---------------------------------------------------------------------------------------
// TaskLock

/** A lock row: at most one active per key. */
export interface TaskLock {
  /** e.g. "task:verifier". */
  readonly lockKey: string;
  readonly holderId: string;
  /** Fencing token: a write made through it is refused once the lock is no longer active. */
  readonly token: string;
  readonly state: LockState;
  readonly acquiredAt: string;
  /** Another holder may take the key after this; renewals move it. */
  readonly expiresAt: string;
  readonly releasedAt: string | null;
  readonly purpose: string | null;
}

/** Who holds a lock: what renewals, releases and fenced writes present. */
export type LockHandle = Pick<TaskLock, 'lockKey' | 'holderId' | 'token'>;

export interface LockRequestInput {
  readonly lockKey: string;
  readonly holderId: string;
  readonly token: string;
  /** How long it lasts without renewal, in ms (above 0). */
  readonly ttlMs: number;
  readonly purpose?: string;
}

/** The active lock a holder asks for at `at`, validated (a ValidationError names the field). */
export function lockRequest(input: LockRequestInput, at: string): TaskLock {
  const ttlMs = integerIn('ttlMs', input.ttlMs, 1, Number.MAX_SAFE_INTEGER, 'a whole number of milliseconds above 0');
  return {
    lockKey: requireText('lockKey', input.lockKey, { nonBlank: true, maxLength: 255 }),
    holderId: requireText('holderId', input.holderId, { nonBlank: true, maxLength: 255 }),
    token: requireText('token', input.token, { nonBlank: true, maxLength: 255 }),
    state: 'active',
    acquiredAt: at,
    expiresAt: plusMs(at, ttlMs),
    releasedAt: null,
    purpose: optionalText('purpose', input.purpose, { maxLength: 255 }),
  };
}

/** Whether `lock` keeps others off its key at `at`: active and not past its expiry. */
export function lockHeld(lock: TaskLock, at: string): boolean {
  return lock.state === 'active' && Date.parse(lock.expiresAt) > Date.parse(at);
}

/** Whether `lock` is the one `handle` presents. */
export function sameHolder(lock: TaskLock, handle: LockHandle): boolean {
  return lock.lockKey === handle.lockKey && lock.holderId === handle.holderId && lock.token === handle.token;
}

/** `lock` moved to `to` at `at`, as the lock lifecycle allows (a TransitionError on `state` otherwise). */
export function transitionLock(lock: TaskLock, to: LockState, at: string): TaskLock {
  if (!LOCK_TRANSITIONS[lock.state].includes(to)) throw new TransitionError(lock.state, to, 'state', 'a lock');
  return { ...lock, state: to, ...(to === 'released' ? { releasedAt: at } : {}) };
}

export function plusMs(at: string, ms: number): string {
  return new Date(Date.parse(at) + ms).toISOString();
}

/** How long the execution ran: its duration once ended, else the time since it started (0 before). */
export function elapsedMs(execution: TaskExecution, at: string): number {
  if (execution.finishedAt !== null || execution.startedAt === null) return execution.durationMs;
  return Math.max(0, Date.parse(at) - Date.parse(execution.startedAt));
}

/** One line saying how the run went, for tables: its error when it did not succeed, else its result; cut at `maxChars`. */
export function executionSummary(execution: TaskExecution, maxChars = 100): string {
  const text = ((execution.state !== 'success' && execution.errorMessage) || execution.result || '')
    .replace(/\s+/g, ' ')
    .trim();
  return [...text].length <= maxChars ? text : `${[...text].slice(0, maxChars - 1).join('')}…`;
}
