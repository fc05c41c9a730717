import { describe, expect, it } from 'vitest';
import type {
  AgentTask,
  TaskInput,
  TaskListQuery,
  TaskPatch,
  TaskStatus,
  TaskUpdateOptions,
} from '../../src/stores/agent-task/agent-task-model.js';
import { availableBackends, useBackend, type Backend } from '../support/backends.js';

const STATUSES: readonly TaskStatus[] = ['pending', 'running', 'completed', 'failed', 'needs_decision'];

/** The lifecycle as specified: these moves, plus staying in the same status, are the only allowed ones. */
const ALLOWED_MOVES = new Set([
  'pending>running',
  'running>completed',
  'running>failed',
  'running>needs_decision',
  'needs_decision>running',
]);

/** Status changes that bring a new (pending) task to each status. */
const PATH_TO: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  pending: [],
  running: ['running'],
  completed: ['running', 'completed'],
  failed: ['running', 'failed'],
  needs_decision: ['running', 'needs_decision'],
};

/** All 25 (from, to) pairs. */
const TRANSITIONS = STATUSES.flatMap((from) =>
  STATUSES.map((to) => ({ from, to, allowed: from === to || ALLOWED_MOVES.has(`${from}>${to}`) })),
);

/** A canonical timestamp `seconds` after a fixed origin. */
function at(seconds: number): string {
  return new Date(Date.UTC(2026, 1, 1) + seconds * 1000).toISOString();
}

function taskInput(overrides: Partial<TaskInput> = {}): TaskInput {
  return { direction: 'write the spec', taskType: 'spec', model: 'model-a', command: 'run --all', ...overrides };
}

/** Every record the task store holds, for "nothing was written" checks. */
async function allTasks(backend: Backend): Promise<AgentTask[]> {
  return backend.tasks.scanRecords('agent_tasks', { limit: 100_000 });
}

/** Creates a task at at(0) and moves it to `status` along PATH_TO, one second per move. */
async function taskIn(backend: Backend, status: TaskStatus, id = 'task_subject'): Promise<AgentTask> {
  let task = await backend.tasks.createTask(taskInput({ id, at: at(0) }));
  for (const [index, next] of PATH_TO[status].entries()) {
    task = (await backend.tasks.updateTask(id, { status: next }, { at: at(index + 1) })).task;
  }
  expect(task.status).toBe(status);
  return task;
}

interface Seeded {
  readonly id: string;
  readonly at: string;
  readonly taskType: TaskInput['taskType'];
  readonly status: TaskStatus;
}

/**
 * Tasks for list/attention/count tests. Several share a createdAt so the id tie-break shows,
 * with ids whose code point order differs from locale order ('Z' < 'b' < 'f' < 'é').
 */
const SEEDED: readonly Seeded[] = [
  { id: 'task_a', at: at(1), taskType: 'spec', status: 'pending' },
  { id: 'task_d', at: at(2), taskType: 'impl', status: 'completed' },
  { id: 'task_é', at: at(3), taskType: 'test', status: 'failed' },
  { id: 'task_f', at: at(3), taskType: 'spec', status: 'pending' },
  { id: 'task_b', at: at(3), taskType: 'spec', status: 'running' },
  { id: 'task_Z', at: at(3), taskType: 'impl', status: 'running' },
  { id: 'task_e', at: at(4), taskType: 'spec', status: 'failed' },
  { id: 'task_c', at: at(5), taskType: 'spec', status: 'needs_decision' },
];
/** SEEDED ids newest first, ties by id in code point order. */
const NEWEST_FIRST = ['task_c', 'task_e', 'task_Z', 'task_b', 'task_f', 'task_é', 'task_d', 'task_a'];

async function seedTasks(backend: Backend): Promise<void> {
  for (const seed of SEEDED) {
    await backend.tasks.createTask(taskInput({ id: seed.id, taskType: seed.taskType, at: seed.at }));
    for (const [index, next] of PATH_TO[seed.status].entries()) {
      await backend.tasks.updateTask(seed.id, { status: next }, { at: at(100 + index) });
    }
  }
}

const ids = (tasks: readonly AgentTask[]): string[] => tasks.map((task) => task.id);

for (const factory of availableBackends()) {
  describe(`AgentTaskStore contract on ${factory.name}`, () => {
    const backend = useBackend(factory);

    describe('createTask', () => {
      it('creates a pending task with a task_ + 16 hex id and the clock time when id and at are absent', async () => {
        const task = await backend.current.tasks.createTask(taskInput());
        expect(task).toStrictEqual({
          id: expect.stringMatching(/^task_[0-9a-f]{16}$/),
          direction: 'write the spec',
          taskType: 'spec',
          status: 'pending',
          model: 'model-a',
          command: 'run --all',
          output: null,
          context: {},
          progressPct: null,
          currentStep: null,
          decisionPrompt: null,
          decision: null,
          tier: null,
          startedAt: null,
          createdAt: '2026-01-01T00:00:00.000Z',
          updatedAt: '2026-01-01T00:00:00.000Z',
        });
        expect(await backend.current.tasks.getTask(task.id)).toStrictEqual(task);
      });

      it('gives consecutive tasks created without an id distinct ids', async () => {
        const created = [];
        for (let i = 0; i < 3; i++) created.push(await backend.current.tasks.createTask(taskInput()));
        expect(new Set(ids(created)).size).toBe(3);
        expect(ids(await allTasks(backend.current)).sort()).toEqual(ids(created).sort());
      });

      it('honours an explicit id, tier and time, and stores context in canonical key order', async () => {
        const task = await backend.current.tasks.createTask(
          taskInput({
            id: 'task_custom',
            tier: 'gold',
            context: { b: 1, a: { d: [true, null], c: 'x' } },
            at: '2026-03-01T12:00:00+02:00',
          }),
        );
        expect(task).toMatchObject({
          id: 'task_custom',
          tier: 'gold',
          createdAt: '2026-03-01T10:00:00.000Z',
          updatedAt: '2026-03-01T10:00:00.000Z',
        });
        const stored = await backend.current.tasks.getTask('task_custom');
        expect(stored).toStrictEqual(task);
        expect(JSON.stringify(stored!.context)).toBe('{"a":{"c":"x","d":[true,null]},"b":1}');
      });

      it('rejects a duplicate id with ConflictError on id and keeps the first task', async () => {
        const first = await backend.current.tasks.createTask(taskInput({ id: 'task_dup', at: at(1) }));
        await expect(
          backend.current.tasks.createTask(taskInput({ id: 'task_dup', direction: 'other', at: at(2) })),
        ).rejects.toMatchObject({
          name: 'ConflictError',
          field: 'id',
        });
        expect(await allTasks(backend.current)).toStrictEqual([first]);
      });

      it('treats ids as case-sensitive', async () => {
        await backend.current.tasks.createTask(taskInput({ id: 'task_A', at: at(1) }));
        await backend.current.tasks.createTask(taskInput({ id: 'task_a', at: at(2) }));
        expect(ids(await allTasks(backend.current))).toEqual(['task_A', 'task_a']);
      });

      it('returns null from getTask for an unknown id', async () => {
        expect(await backend.current.tasks.getTask('task_missing')).toBeNull();
      });

      it.each([
        { value: 'a model of 100 emoji (100 code points, 200 UTF-16 units)', input: { model: '😀'.repeat(100) } },
        { value: 'an id of 50 characters', input: { id: 'i'.repeat(50) } },
        { value: 'a tier of 50 characters', input: { tier: 't'.repeat(50) } },
        { value: 'a direction with surrounding whitespace', input: { direction: ' x ' } },
      ])('accepts $value and stores it unchanged', async ({ input }) => {
        const task = await backend.current.tasks.createTask(taskInput(input));
        expect(task).toMatchObject(input);
        expect(await backend.current.tasks.getTask(task.id)).toStrictEqual(task);
      });

      it.each([
        { problem: 'an unknown taskType', field: 'taskType', input: { taskType: 'deploy' } },
        { problem: 'an empty direction', field: 'direction', input: { direction: '' } },
        { problem: 'a whitespace-only direction', field: 'direction', input: { direction: ' \t\n ' } },
        { problem: 'a model over 100 code points', field: 'model', input: { model: '😀'.repeat(101) } },
        { problem: 'a blank model', field: 'model', input: { model: '  ' } },
        { problem: 'an id over 50 characters', field: 'id', input: { id: 'i'.repeat(51) } },
        { problem: 'a NUL in command', field: 'command', input: { command: 'echo \u0000' } },
        { problem: 'a lone surrogate in direction', field: 'direction', input: { direction: 'a\uD800b' } },
        { problem: 'a context that is an array', field: 'context', input: { context: [1] } },
        { problem: 'a tier over 50 characters', field: 'tier', input: { tier: 't'.repeat(51) } },
        { problem: 'an unparseable at', field: 'at', input: { at: 'yesterday' } },
      ])('rejects $problem with ValidationError on $field and writes nothing', async ({ field, input }) => {
        await backend.current.tasks.createTask(taskInput({ id: 'task_existing', at: at(0) }));
        const before = await allTasks(backend.current);
        const bad = { ...taskInput({ id: 'task_new' }), ...input } as unknown as TaskInput;
        await expect(backend.current.tasks.createTask(bad)).rejects.toMatchObject({ name: 'ValidationError', field });
        expect(await allTasks(backend.current)).toStrictEqual(before);
      });
    });

    describe('lifecycle', () => {
      it.each(TRANSITIONS.filter((t) => t.allowed))('allows moving a task from $from to $to', async ({ from, to }) => {
        const before = await taskIn(backend.current, from);
        const result = await backend.current.tasks.updateTask(before.id, { status: to }, { at: at(50) });
        const startedAt = before.startedAt ?? (to === 'running' ? at(50) : null);
        expect(result).toStrictEqual({ updated: true, task: { ...before, status: to, startedAt, updatedAt: at(50) } });
        expect(await backend.current.tasks.getTask(before.id)).toStrictEqual(result.task);
      });

      it.each(TRANSITIONS.filter((t) => !t.allowed))(
        'rejects moving a task from $from to $to with TransitionError and leaves it unchanged',
        async ({ from, to }) => {
          const before = await taskIn(backend.current, from);
          await expect(
            backend.current.tasks.updateTask(before.id, { status: to, output: 'lost' }, { at: at(50) }),
          ).rejects.toMatchObject({
            name: 'TransitionError',
            field: 'status',
            from,
            to,
          });
          expect(await allTasks(backend.current)).toStrictEqual([before]);
        },
      );

      it('sets startedAt on the first move to running and keeps it through later moves', async () => {
        const { tasks } = backend.current;
        await tasks.createTask(taskInput({ id: 'task_life', at: at(0) }));
        const steps: { patch: TaskPatch; startedAt: string | null }[] = [
          { patch: { progressPct: 5 }, startedAt: null },
          { patch: { status: 'running' }, startedAt: at(2) },
          { patch: { status: 'running', progressPct: 50 }, startedAt: at(2) },
          { patch: { status: 'needs_decision', decisionPrompt: 'which?' }, startedAt: at(2) },
          { patch: { status: 'running', decision: 'this one' }, startedAt: at(2) },
          { patch: { status: 'completed', progressPct: 100 }, startedAt: at(2) },
        ];
        for (const [index, step] of steps.entries()) {
          const { task } = await tasks.updateTask('task_life', step.patch, { at: at(index + 1) });
          expect(task).toMatchObject({ startedAt: step.startedAt, updatedAt: at(index + 1), createdAt: at(0) });
          expect(await tasks.getTask('task_life')).toStrictEqual(task);
        }
      });

      it('sets updatedAt to the store clock time when at is absent', async () => {
        const task = await backend.current.tasks.createTask(taskInput({ id: 'task_clock', at: at(0) }));
        backend.current.clock.set('2026-05-05T05:05:05.005Z');
        const result = await backend.current.tasks.updateTask(task.id, { output: 'done' });
        expect(result.task).toStrictEqual({ ...task, output: 'done', updatedAt: '2026-05-05T05:05:05.005Z' });
      });

      it('changes only the patched fields, and null clears a nullable field', async () => {
        const { tasks } = backend.current;
        const created = await tasks.createTask(
          taskInput({ id: 'task_patch', tier: 'gold', context: { keep: 1 }, at: at(0) }),
        );
        const patch: TaskPatch = {
          output: 'out',
          progressPct: 40,
          currentStep: 'step 2',
          decisionPrompt: 'pick',
          decision: 'a',
          context: { z: 1, a: 2 },
        };
        const filled = await tasks.updateTask('task_patch', patch, { at: at(1) });
        expect(filled.task).toStrictEqual({ ...created, ...patch, context: { a: 2, z: 1 }, updatedAt: at(1) });
        const cleared = await tasks.updateTask(
          'task_patch',
          { output: null, progressPct: null, currentStep: null, decisionPrompt: null, decision: null, context: null },
          { at: at(2) },
        );
        expect(cleared.task).toStrictEqual({ ...created, updatedAt: at(2), context: {} });
        expect(await tasks.getTask('task_patch')).toStrictEqual(cleared.task);
      });
    });

    describe('compare-and-set', () => {
      it('applies the update when expectedStatus matches the current status', async () => {
        const before = await taskIn(backend.current, 'running');
        const result = await backend.current.tasks.updateTask(
          before.id,
          { status: 'completed', output: 'ok' },
          { expectedStatus: 'running', at: at(50) },
        );
        expect(result).toStrictEqual({
          updated: true,
          task: { ...before, status: 'completed', output: 'ok', updatedAt: at(50) },
        });
        expect(await backend.current.tasks.getTask(before.id)).toStrictEqual(result.task);
      });

      it.each([
        { current: 'pending', expected: 'running', patch: { status: 'completed' } },
        { current: 'running', expected: 'pending', patch: { status: 'running', output: 'x' } },
        { current: 'completed', expected: 'running', patch: { status: 'failed' } },
        { current: 'needs_decision', expected: 'running', patch: { decision: 'go' } },
      ] as const)(
        'returns updated false with the current task when a $current task is expected to be $expected, and changes nothing',
        async ({ current, expected, patch }) => {
          const before = await taskIn(backend.current, current);
          const result = await backend.current.tasks.updateTask(before.id, patch, {
            expectedStatus: expected,
            at: at(50),
          });
          expect(result).toStrictEqual({ updated: false, task: before });
          expect(await allTasks(backend.current)).toStrictEqual([before]);
        },
      );

      it.each([
        { from: 'pending', a: { status: 'running', output: 'A' }, b: { status: 'running', output: 'B' } },
        { from: 'running', a: { status: 'completed' }, b: { status: 'failed' } },
        { from: 'needs_decision', a: { status: 'running', decision: 'A' }, b: { status: 'running', decision: 'B' } },
      ] as const)(
        'lets exactly one of two concurrent compare-and-set updates from $from win',
        async ({ from, a, b }) => {
          const { tasks } = backend.current;
          for (const id of ['task_r1', 'task_r2', 'task_r3']) {
            const subject = await taskIn(backend.current, from, id);
            const options = (seconds: number): TaskUpdateOptions => ({ expectedStatus: from, at: at(seconds) });
            const results = await Promise.all([
              tasks.updateTask(subject.id, a, options(60)),
              tasks.updateTask(subject.id, b, options(61)),
            ]);
            const winners = results.filter((result) => result.updated);
            expect(winners).toHaveLength(1);
            const [winner] = winners;
            const loser = results.find((result) => !result.updated)!;
            expect(loser.task).toStrictEqual(winner!.task);
            expect(await tasks.getTask(subject.id)).toStrictEqual(winner!.task);
          }
        },
      );
    });

    describe('updateTask errors', () => {
      it.each([{ options: undefined }, { options: { expectedStatus: 'pending' } as const }])(
        'rejects an unknown id with NotFoundError on id (options: $options)',
        async ({ options }) => {
          await backend.current.tasks.createTask(taskInput({ id: 'task_known', at: at(0) }));
          const before = await allTasks(backend.current);
          await expect(
            backend.current.tasks.updateTask('task_unknown', { status: 'running' }, options),
          ).rejects.toMatchObject({
            name: 'NotFoundError',
            field: 'id',
          });
          expect(await allTasks(backend.current)).toStrictEqual(before);
        },
      );

      it.each(['id', 'startedAt', 'createdAt', 'updatedAt', 'taskType', 'model', 'bogus'])(
        'rejects a patch with the non-updatable field %s with ValidationError naming it',
        async (field) => {
          const before = await taskIn(backend.current, 'running');
          const patch = { output: 'x', [field]: field.endsWith('At') ? at(9) : 'value' } as unknown as TaskPatch;
          await expect(backend.current.tasks.updateTask(before.id, patch, { at: at(50) })).rejects.toMatchObject({
            name: 'ValidationError',
            field,
          });
          expect(await allTasks(backend.current)).toStrictEqual([before]);
        },
      );

      it.each([
        { problem: 'an unknown status', field: 'status', patch: { status: 'done' }, options: {} },
        { problem: 'progressPct -1', field: 'progressPct', patch: { progressPct: -1 }, options: {} },
        { problem: 'progressPct 101', field: 'progressPct', patch: { progressPct: 101 }, options: {} },
        { problem: 'progressPct 1.5', field: 'progressPct', patch: { progressPct: 1.5 }, options: {} },
        { problem: 'a string progressPct', field: 'progressPct', patch: { progressPct: '5' }, options: {} },
        { problem: 'a NUL in output', field: 'output', patch: { output: 'a\u0000' }, options: {} },
        { problem: 'a context that is not an object', field: 'context', patch: { context: 'x' }, options: {} },
        {
          problem: 'an unknown expectedStatus',
          field: 'expectedStatus',
          patch: { output: 'x' },
          options: { expectedStatus: 'done' },
        },
        { problem: 'an unparseable at', field: 'at', patch: { output: 'x' }, options: { at: '2026-02-30' } },
      ])(
        'rejects an update with $problem with ValidationError on $field and writes nothing',
        async ({ field, patch, options }) => {
          const before = await taskIn(backend.current, 'running');
          await expect(
            backend.current.tasks.updateTask(
              before.id,
              patch as unknown as TaskPatch,
              options as unknown as TaskUpdateOptions,
            ),
          ).rejects.toMatchObject({ name: 'ValidationError', field });
          expect(await allTasks(backend.current)).toStrictEqual([before]);
        },
      );

      it.each([0, 100])('accepts progressPct %i', async (progressPct) => {
        const before = await taskIn(backend.current, 'running');
        const result = await backend.current.tasks.updateTask(before.id, { progressPct }, { at: at(50) });
        expect((await backend.current.tasks.getTask(before.id))!.progressPct).toBe(progressPct);
        expect(result.task.progressPct).toBe(progressPct);
      });
    });

    describe('listTasks, attention and countByStatus', () => {
      const queries: { query: TaskListQuery; expected: string[] }[] = [
        { query: {}, expected: NEWEST_FIRST },
        { query: { status: 'running' }, expected: ['task_Z', 'task_b'] },
        { query: { taskType: 'spec' }, expected: ['task_c', 'task_e', 'task_b', 'task_f', 'task_a'] },
        { query: { status: 'failed', taskType: 'spec' }, expected: ['task_e'] },
        { query: { status: 'pending', taskType: 'impl' }, expected: [] },
        { query: { limit: 3 }, expected: NEWEST_FIRST.slice(0, 3) },
        { query: { limit: 3, offset: 3 }, expected: NEWEST_FIRST.slice(3, 6) },
        { query: { offset: 7 }, expected: ['task_a'] },
        { query: { offset: 8 }, expected: [] },
        { query: { taskType: 'spec', limit: 2, offset: 1 }, expected: ['task_e', 'task_b'] },
      ];

      it.each(queries)('lists $query newest first with ties by id', async ({ query, expected }) => {
        await seedTasks(backend.current);
        expect(ids(await backend.current.tasks.listTasks(query))).toEqual(expected);
      });

      it('returns stored records from listTasks', async () => {
        await seedTasks(backend.current);
        const listed = await backend.current.tasks.listTasks({ limit: 1000 });
        for (const task of listed) expect(await backend.current.tasks.getTask(task.id)).toStrictEqual(task);
      });

      it.each([1, 2, 3])('visits every task exactly once when paging with limit %i and offset', async (pageSize) => {
        await seedTasks(backend.current);
        const seen: string[] = [];
        for (let offset = 0; ; offset += pageSize) {
          const page = await backend.current.tasks.listTasks({ limit: pageSize, offset });
          seen.push(...ids(page));
          if (page.length < pageSize) break;
        }
        expect(seen).toEqual(NEWEST_FIRST);
      });

      it('limits listTasks to 50 tasks by default', async () => {
        for (let i = 0; i < 52; i++)
          await backend.current.tasks.createTask(taskInput({ id: `task_${String(i).padStart(2, '0')}`, at: at(i) }));
        const listed = await backend.current.tasks.listTasks();
        expect(listed).toHaveLength(50);
        expect(listed[0]!.id).toBe('task_51');
      });

      it.each([
        { query: { limit: 0 }, field: 'limit' },
        { query: { limit: 1001 }, field: 'limit' },
        { query: { limit: 1.5 }, field: 'limit' },
        { query: { offset: -1 }, field: 'offset' },
        { query: { status: 'done' }, field: 'status' },
        { query: { taskType: 'deploy' }, field: 'taskType' },
      ])('rejects listTasks($query) with ValidationError on $field', async ({ query, field }) => {
        await expect(backend.current.tasks.listTasks(query as unknown as TaskListQuery)).rejects.toMatchObject({
          name: 'ValidationError',
          field,
        });
      });

      it('lists only needs_decision and failed tasks in attention, newest first', async () => {
        await seedTasks(backend.current);
        expect(ids(await backend.current.tasks.attention())).toEqual(['task_c', 'task_e', 'task_é']);
        expect(ids(await backend.current.tasks.attention(2))).toEqual(['task_c', 'task_e']);
      });

      it('rejects an attention limit of 0 with ValidationError on limit', async () => {
        await expect(backend.current.tasks.attention(0)).rejects.toMatchObject({
          name: 'ValidationError',
          field: 'limit',
        });
      });

      it('counts every status, zeros included', async () => {
        expect(await backend.current.tasks.countByStatus()).toStrictEqual({
          pending: 0,
          running: 0,
          completed: 0,
          failed: 0,
          needs_decision: 0,
        });
        await seedTasks(backend.current);
        expect(await backend.current.tasks.countByStatus()).toStrictEqual({
          pending: 2,
          running: 2,
          completed: 1,
          failed: 2,
          needs_decision: 1,
        });
      });
    });
  });
}
