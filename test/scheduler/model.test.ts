import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TransitionError, ValidationError } from '../../src/domain/errors.js';
import {
  cutResult,
  EXECUTION_STATES,
  EXECUTION_TRANSITIONS,
  lockRequest,
  MAX_RESULT_BYTES,
  newExecution,
  parseExecutionState,
  parseLockState,
  transitionExecution,
  validateScheduledTasks,
  withProgress,
  type ExecutionState,
  type ScheduledTaskInput,
  type TaskExecution,
} from '../../src/stores/task-scheduler/task-scheduler-model.js';

/**
 * The scheduler model on its own: task definitions validated rule by rule (each refusal
 * names its field), the execution lifecycle as a table no sequence of moves can leave,
 * results cut at 64 KB with a flag, progress and duration.
 */

const HANDLERS = ['verify', 'outbox.replay'];
const VALID: ScheduledTaskInput = { name: 'verifier', type: 'verify', intervalMs: 300_000 };

function refusal(inputs: readonly ScheduledTaskInput[]): ValidationError {
  try {
    validateScheduledTasks(inputs, HANDLERS);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('the definitions were accepted');
}

describe('ScheduledTask validation', () => {
  it('accepts a valid set and fills in the documented defaults', () => {
    const [task] = validateScheduledTasks([VALID], HANDLERS);
    expect(task).toEqual({
      name: 'verifier',
      type: 'verify',
      description: null,
      isRecurring: true,
      cronExpr: null,
      intervalMs: 300_000,
      enabled: true,
      maxDurationSeconds: 3600,
      maxRetries: 3,
      timeoutGracePeriodSeconds: 30,
      maxConcurrent: 1,
      priority: 0,
      data: null,
    });
  });

  it.each<[string, readonly ScheduledTaskInput[], string]>([
    ['a name used twice', [VALID, { ...VALID, type: 'outbox.replay' }], 'name'],
    ['a blank name', [{ ...VALID, name: '  ' }], 'name'],
    ['a name over 255 characters', [{ ...VALID, name: 'n'.repeat(256) }], 'name'],
    ['a type no handler is registered for', [{ ...VALID, type: 'mail' }], 'type'],
    ['a recurring task with neither cron nor interval', [{ name: 'x', type: 'verify' }], 'cronExpr'],
    ['a cron expression with four fields', [{ ...VALID, cronExpr: '0 2 * *' }], 'cronExpr'],
    ['a minute out of range', [{ ...VALID, cronExpr: '60 2 * * *' }], 'cronExpr'],
    ['an hour range running backwards', [{ ...VALID, cronExpr: '0 5-2 * * *' }], 'cronExpr'],
    ['a step of zero', [{ ...VALID, cronExpr: '*/0 * * * *' }], 'cronExpr'],
    ['an unknown month name', [{ ...VALID, cronExpr: '0 0 1 FOO *' }], 'cronExpr'],
    ['a zero interval', [{ ...VALID, intervalMs: 0 }], 'intervalMs'],
    ['a fractional interval', [{ ...VALID, intervalMs: 1.5 }], 'intervalMs'],
    ['a zero max duration', [{ ...VALID, maxDurationSeconds: 0 }], 'maxDurationSeconds'],
    ['a negative grace period', [{ ...VALID, timeoutGracePeriodSeconds: -1 }], 'timeoutGracePeriodSeconds'],
    [
      'a grace period equal to the max duration',
      [{ ...VALID, maxDurationSeconds: 30, timeoutGracePeriodSeconds: 30 }],
      'timeoutGracePeriodSeconds',
    ],
    ['a grace period above the max duration', [{ ...VALID, maxDurationSeconds: 10 }], 'timeoutGracePeriodSeconds'],
    ['data over 10 KB', [{ ...VALID, data: 'x'.repeat(10 * 1024 + 1) }], 'data'],
    ['no concurrent run allowed', [{ ...VALID, maxConcurrent: 0 }], 'maxConcurrent'],
  ])('refuses %s, naming %s', (_case, inputs, field) => {
    expect(refusal(inputs).field).toBe(field);
  });

  it.each([
    '21 */4 * * *',
    '0 2 * * *',
    '*/15 9-17 * JAN-MAR MON-FRI',
    '0,30 0 1,15 * 7',
    '@daily',
    '5-55/10 * * * sun',
  ])('accepts the cron expression %s', (cronExpr) => {
    expect(validateScheduledTasks([{ name: 'job', type: 'verify', cronExpr }], HANDLERS)[0]!.cronExpr).toBe(cronExpr);
  });

  it('takes a one-off task without a schedule, and a grace period just below the max duration', () => {
    const [task] = validateScheduledTasks(
      [{ name: 'once', type: 'verify', isRecurring: false, maxDurationSeconds: 30, timeoutGracePeriodSeconds: 29 }],
      HANDLERS,
    );
    expect(task).toMatchObject({ isRecurring: false, cronExpr: null, intervalMs: null, timeoutGracePeriodSeconds: 29 });
  });

  it('takes state values only from their enums, naming the field', () => {
    for (const state of EXECUTION_STATES) expect(parseExecutionState('state', state)).toBe(state);
    expect(() => parseExecutionState('state', 'done')).toThrow(expect.objectContaining({ field: 'state' }));
    expect(parseLockState('state', 'expired')).toBe('expired');
    expect(() => parseLockState('state', 'held')).toThrow(ValidationError);
    expect(() => transitionExecution(started(), 'finished' as ExecutionState, AT)).toThrow(
      expect.objectContaining({ field: 'state' }),
    );
  });

  it('refuses a lock that would expire when it is taken, naming ttlMs', () => {
    expect(() => lockRequest({ lockKey: 'task:x', holderId: 'a', token: 't', ttlMs: 0 }, AT)).toThrow(
      expect.objectContaining({ field: 'ttlMs' }),
    );
    expect(() => lockRequest({ lockKey: ' ', holderId: 'a', token: 't', ttlMs: 1 }, AT)).toThrow(
      expect.objectContaining({ field: 'lockKey' }),
    );
  });
});

const AT = '2026-01-01T00:00:00.000Z';
const TASK = { name: 'verifier', type: 'verify' };
const pending = () => newExecution({ id: 'e-1', task: TASK, runBy: 'host:1' }, AT);
const started = () => transitionExecution(pending(), 'running', AT);

describe('TaskExecution lifecycle', () => {
  it('random sequences of moves only ever follow the transition table', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...EXECUTION_STATES), { maxLength: 12 }),
        fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 12, maxLength: 12 }),
        (moves, gaps) => {
          let execution: TaskExecution = pending();
          let time = Date.parse(AT);
          const path: ExecutionState[] = [execution.state];
          moves.forEach((to, index) => {
            time += gaps[index]!;
            const at = new Date(time).toISOString();
            const allowed = EXECUTION_TRANSITIONS[execution.state].includes(to);
            if (!allowed) {
              expect(() => transitionExecution(execution, to, at)).toThrow(TransitionError);
              return;
            }
            execution = transitionExecution(execution, to, at);
            path.push(to);
            if (to === 'running') expect(execution.startedAt).toBe(at);
            else
              expect({ finishedAt: execution.finishedAt, durationMs: execution.durationMs }).toEqual({
                finishedAt: at,
                durationMs: Date.parse(at) - Date.parse(execution.startedAt!),
              });
          });
          // The path taken is a walk on the table: pending, running, then at most one end.
          for (let n = 1; n < path.length; n++) expect(EXECUTION_TRANSITIONS[path[n - 1]!]).toContain(path[n]);
          expect(path.length).toBeLessThanOrEqual(3);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('names the field and both states when a move is refused', () => {
    const ended = transitionExecution(started(), 'success', AT);
    expect(() => transitionExecution(ended, 'interrupted', AT)).toThrow(
      'state: cannot move an execution from success to interrupted',
    );
    expect(() => transitionExecution(pending(), 'interrupted', AT)).toThrow(
      expect.objectContaining({ field: 'state', from: 'pending', to: 'interrupted' }),
    );
  });

  it('keeps progress from 0 to 100 while running, sets it to 100 on success, and times the run', () => {
    const running = withProgress(started(), 40, '2026-01-01T00:00:01.000Z');
    expect(running.progress).toBe(40);
    expect(() => withProgress(running, 101, AT)).toThrow(expect.objectContaining({ field: 'progress' }));
    expect(() => withProgress(running, -1, AT)).toThrow(expect.objectContaining({ field: 'progress' }));
    expect(() => withProgress(pending(), 10, AT)).toThrow(expect.objectContaining({ field: 'state' }));
    const failed = transitionExecution(running, 'failure', '2026-01-01T00:00:02.500Z', { error: new Error('boom') });
    expect(failed).toMatchObject({
      state: 'failure',
      progress: 40,
      durationMs: 2500,
      errorMessage: 'boom',
      errorStack: expect.stringContaining('Error: boom'),
    });
    expect(transitionExecution(running, 'success', '2026-01-01T00:00:03.000Z', { result: { ok: true } })).toMatchObject(
      { progress: 100, result: '{"ok":true}', resultTruncated: false, durationMs: 3000 },
    );
  });
});

describe('results cut at 64 KB', () => {
  it('keeps a result up to exactly 64 KB whole, and cuts one byte more, flagging it', () => {
    const exact = 'a'.repeat(MAX_RESULT_BYTES);
    expect(cutResult(exact)).toEqual({ result: exact, truncated: false });
    const over = cutResult(`${exact}b`);
    expect(over).toEqual({ result: exact, truncated: true });
    const ended = transitionExecution(started(), 'success', AT, { result: `${exact}b` });
    expect([ended.result!.length, ended.resultTruncated]).toEqual([MAX_RESULT_BYTES, true]);
  });

  it('never splits a character: the cut is a prefix within the limit, as long as it can be', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 300 }),
        fc.integer({ min: 1, max: 400 }),
        (text, maxBytes) => {
          const { result, truncated } = cutResult(text, maxBytes);
          expect(text.startsWith(result)).toBe(true);
          expect(Buffer.byteLength(result)).toBeLessThanOrEqual(maxBytes);
          expect(truncated).toBe(result !== text);
          if (truncated) {
            // One more code point would not fit.
            const next = String.fromCodePoint(text.codePointAt(result.length)!);
            expect(Buffer.byteLength(result + next)).toBeGreaterThan(maxBytes);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
