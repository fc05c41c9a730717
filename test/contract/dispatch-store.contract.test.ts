import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DISPATCH_ENTITIES,
  DISPATCH_ENTITY_NAMES,
  type DispatchEntity,
  type DispatchEvent,
  type DispatchRecords,
  type DispatchTask,
} from '../../src/stores/dispatch/dispatch-records.js';
import type { DispatchTaskInput } from '../../src/stores/dispatch/dispatch-model.js';
import { ConflictError, NotFoundError, ValidationError } from '../../src/domain/errors.js';
import { compareText } from '../../src/domain/text.js';
import { readAll } from '../../src/ports/record-scan.js';
import { availableDispatchBackends, useDispatchBackend, type DispatchBackend } from '../support/dispatch-backends.js';

/** The same contract on SQLite (the old side), embedded PGlite and real PostgreSQL. */

const input = (overrides: Partial<DispatchTaskInput> = {}): DispatchTaskInput => ({
  id: 'S02-postgres-schema',
  project: 'dispatch',
  specFile: 'specs/S02.md',
  ...overrides,
});
const T0 = '2026-01-01T00:00:00.000Z';
const seconds = (iso: string) => Math.floor(Date.parse(iso) / 1000);

async function everything(backend: DispatchBackend): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const entity of DISPATCH_ENTITY_NAMES)
    out[entity] = await readAll<DispatchRecords, DispatchEntity>(backend.store, entity);
  return out;
}

/** Edge values of every column kind: what each side must hold exactly. */
const EDGE_RECORDS: { readonly [E in keyof DispatchRecords]: DispatchRecords[E][] } = {
  tasks: [
    {
      ...taskRecord('t-edge'),
      durationSeconds: 0.1 + 0.2,
      dependsOn: { nested: [1, 'two', null, { '10': true, '2': false, é: -0 }] },
      modifies: 'a JSON string, not an array',
      leaseExpiresAt: Number.MAX_SAFE_INTEGER,
      updatedAt: -1,
      startedAt: '0099-06-01T00:00:00.123Z',
      status: null,
      error: 'tab\there, line\nbreak, quote " and backslash \\ and 😀',
    },
    {
      ...taskRecord('t-big'),
      durationSeconds: 1.7976931348623157e308,
      dependsOn: null,
      modifies: [],
      pid: -2147483648,
      priority: 2147483647,
    },
  ],
  file_locks: [
    { filePath: 'src/a.ts', taskId: 't-edge', lockedAt: T0 },
    { filePath: 'src/a.ts', taskId: 't-big', lockedAt: T0 },
    { filePath: 'src/B.ts', taskId: 't-edge', lockedAt: '2026-06-30T23:59:59.999Z' },
  ],
  nodes: [
    {
      name: 'node-é',
      sshHost: null,
      slots: 8,
      apiMode: 'direct',
      workDir: '~/dispatch',
      runningCount: 0,
      lastSeen: null,
      enabled: 1,
    },
  ],
  events: [9, 10, 100, 2147483647].map((id) => ({
    id,
    timestamp: T0,
    taskId: 't-edge',
    eventType: 'claimed',
    node: null,
    details: `event ${id}`,
  })),
  node_reputation: [
    {
      node: 'node-é',
      score: 100,
      totalTasks: 3,
      passedValidations: 2,
      failedValidations: 1,
      fakeSuccesses: 0,
      lastUpdated: T0,
      quarantined: 0,
      quarantineReason: null,
      quarantineAt: null,
    },
  ],
  peer_validations: [
    {
      id: 1,
      taskId: 't-edge',
      project: 'dispatch',
      executorNode: 'node-é',
      validatorNode: null,
      status: 'pending',
      result: null,
      createdAt: T0,
      completedAt: null,
    },
  ],
};

function taskRecord(id: string): DispatchTask {
  return {
    id,
    project: 'dispatch',
    specFile: `specs/${id}.md`,
    specHash: null,
    status: 'pending',
    node: null,
    pid: null,
    attempt: 0,
    maxRetries: 10,
    startedAt: null,
    completedAt: null,
    collectedAt: null,
    heartbeatAt: null,
    error: null,
    logFile: null,
    durationSeconds: null,
    dependsOn: [],
    modifies: [],
    exclusive: 0,
    priority: 2,
    leaseOwner: null,
    leaseExpiresAt: null,
    visibilityTimeout: 300,
    idempotencyKey: null,
    updatedAt: seconds(T0),
    estimatedMinutes: 30,
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

for (const factory of availableDispatchBackends()) {
  describe(`DispatchStore contract on ${factory.name}`, () => {
    const backend = useDispatchBackend(factory);

    it('creates a task in status pending with the tasks table defaults, updatedAt in epoch seconds of the decided time', async () => {
      const { store } = backend.current;
      const task = await store.createTask(
        input({
          dependsOn: ['S01-db-abstraction'],
          modifies: ['oyster/infra/dispatch/schema.sql'],
          priority: 0,
          estimatedMinutes: 30,
        }),
      );
      expect(task).toEqual({
        ...taskRecord('S02-postgres-schema'),
        specFile: 'specs/S02.md',
        dependsOn: ['S01-db-abstraction'],
        modifies: ['oyster/infra/dispatch/schema.sql'],
        priority: 0,
      });
      expect(await store.getTask(task.id)).toEqual(task);
      expect(await store.getTask('missing')).toBeNull();
      expect(await store.getRecord('tasks', [task.id])).toEqual(task);
    });

    it('refuses a taken id with ConflictError and leaves the task as it was', async () => {
      const { store } = backend.current;
      const first = await store.createTask(input());
      await expect(store.createTask(input({ project: 'other' }))).rejects.toThrow(ConflictError);
      expect(await store.getTask(first.id)).toEqual(first);
    });

    it('rejects bad input with a ValidationError naming the field, writing nothing', async () => {
      const { store } = backend.current;
      const bad: [Partial<DispatchTaskInput> | Record<string, unknown>, string][] = [
        [{ id: '' }, 'id'],
        [{ project: 7 as unknown as string }, 'project'],
        [{ priority: 1.5 }, 'priority'],
        [{ priority: 2 ** 31 }, 'priority'],
        [{ dependsOn: { x: Number.NaN } }, 'dependsOn.x'],
        [{ modifies: ['a\u0000b'] }, 'modifies[0]'],
        [{ at: '2026-02-30T00:00:00Z' }, 'at'],
        [{ status: 'running' } as Record<string, unknown>, 'status'],
      ];
      for (const [overrides, field] of bad) {
        const error = await store.createTask(input(overrides as Partial<DispatchTaskInput>)).catch((e: unknown) => e);
        expect(error, JSON.stringify(overrides)).toBeInstanceOf(ValidationError);
        expect((error as ValidationError).field).toBe(field);
      }
      await store.createTask(input({ id: 'ok' }));
      await expect(store.claimTask('ok', { node: '' })).rejects.toMatchObject({ field: 'node' });
      await expect(store.updateTask('ok', { attempt: 3 } as never)).rejects.toMatchObject({ field: 'attempt' });
      await expect(store.updateTask('ok', { status: 'done' as never })).rejects.toMatchObject({ field: 'status' });
      await expect(store.updateTask('ok', { pid: 1 }, { expectedStatus: 'nope' as never })).rejects.toMatchObject({
        field: 'expectedStatus',
      });
      await expect(store.listTasks({ limit: 0 })).rejects.toMatchObject({ field: 'limit' });
      expect((await everything(backend.current)).tasks).toEqual([await store.getTask('ok')]);
    });

    it('claims a pending task once: the second claim loses the compare-and-set and changes nothing', async () => {
      const { store } = backend.current;
      await store.createTask(input({ id: 't1', at: T0 }));
      const at = '2026-01-01T00:01:00.000Z';
      const won = await store.claimTask('t1', { node: 'node-a', leaseSeconds: 60, at });
      expect(won).toEqual({
        updated: true,
        task: expect.objectContaining({
          status: 'claimed',
          node: 'node-a',
          leaseOwner: 'node-a',
          leaseExpiresAt: seconds(at) + 60,
          attempt: 1,
          updatedAt: seconds(at),
        }),
      });
      const lost = await store.claimTask('t1', { node: 'node-b', at: '2026-01-01T00:02:00.000Z' });
      expect(lost).toEqual({ updated: false, task: won.task });
      expect(await store.getTask('t1')).toEqual(won.task);
      await expect(store.claimTask('nope', { node: 'node-a' })).rejects.toThrow(NotFoundError);
    });

    it('updates under an expected status, stamping startedAt once and completedAt at the end', async () => {
      const { store } = backend.current;
      await store.createTask(input({ id: 't1', at: T0 }));
      await store.claimTask('t1', { node: 'node-a', at: '2026-01-01T00:01:00.000Z' });
      expect((await store.updateTask('t1', { status: 'running' }, { expectedStatus: 'pending' })).updated).toBe(false);
      const running = await store.updateTask(
        't1',
        { status: 'running', pid: 4242 },
        { expectedStatus: 'claimed', at: '2026-01-01T00:02:00.000Z' },
      );
      expect(running.task).toMatchObject({
        status: 'running',
        pid: 4242,
        startedAt: '2026-01-01T00:02:00.000Z',
        completedAt: null,
      });
      const still = await store.updateTask(
        't1',
        { status: 'running', error: 'retrying' },
        { at: '2026-01-01T00:03:00.000Z' },
      );
      expect(still.task).toMatchObject({ startedAt: '2026-01-01T00:02:00.000Z', error: 'retrying' });
      const done = await store.updateTask(
        't1',
        { status: 'completed', error: null, durationSeconds: 61.25, pid: null },
        { expectedStatus: 'running', at: '2026-01-01T00:04:00.000Z' },
      );
      expect(done.task).toMatchObject({
        status: 'completed',
        error: null,
        durationSeconds: 61.25,
        pid: null,
        completedAt: '2026-01-01T00:04:00.000Z',
        updatedAt: seconds('2026-01-01T00:04:00.000Z'),
      });
      expect(await store.getTask('t1')).toEqual(done.task);
      await expect(store.updateTask('nope', { pid: 1 })).rejects.toThrow(NotFoundError);
    });

    it('lists tasks in code point id order, filtered by status and project', async () => {
      const { store } = backend.current;
      for (const id of ['b', 'é', 'Z', 'a', 'B'])
        await store.createTask(input({ id, project: id === 'a' ? 'other' : 'dispatch' }));
      await store.claimTask('b', { node: 'n' });
      expect((await store.listTasks()).map((t) => t.id)).toEqual(['B', 'Z', 'a', 'b', 'é']);
      expect((await store.listTasks({ status: 'pending', project: 'dispatch' })).map((t) => t.id)).toEqual([
        'B',
        'Z',
        'é',
      ]);
      expect((await store.listTasks({ status: 'claimed' })).map((t) => t.id)).toEqual(['b']);
      expect((await store.listTasks({ limit: 2 })).map((t) => t.id)).toEqual(['B', 'Z']);
    });

    it('holds edge values of every column kind exactly, in every table, and scans them in key order', async () => {
      const { store } = backend.current;
      for (const entity of DISPATCH_ENTITY_NAMES) await store.putRecords(entity, EDGE_RECORDS[entity] as never);
      const held = await everything(backend.current);
      for (const entity of DISPATCH_ENTITY_NAMES) {
        const { keyOf, normalize } = DISPATCH_ENTITIES[entity];
        const expected = (EDGE_RECORDS[entity] as object[])
          .map((r) => normalize(r))
          .sort((a, b) => compareText(keyOf(a as never).join('\u0000'), keyOf(b as never).join('\u0000')));
        expect(held[entity], entity).toEqual(expected);
      }
      // -0 in JSON is 0; serial keys are zero-padded so 9 < 10 < 100 as text and as numbers.
      expect((held.tasks![1] as DispatchTask).dependsOn).toEqual({
        nested: [1, 'two', null, { '10': true, '2': false, é: 0 }],
      });
      expect(await store.scanRecords('events', { after: ['0000000009'], until: ['0000000100'], limit: 10 })).toEqual(
        EDGE_RECORDS.events.slice(1, 3),
      );
      expect(store.keyOf('events', EDGE_RECORDS.events[0]!)).toEqual(['0000000009']);
      expect(await store.deleteRecord('events', ['0000000010'])).toBe(true);
      expect(await store.deleteRecord('events', ['0000000010'])).toBe(false);
      expect(await store.getRecord('events', ['0000000010'])).toBeNull();
      expect(await store.getRecord('file_locks', ['src/a.ts', 't-big'])).toEqual(EDGE_RECORDS.file_locks[1]);
    });

    it('stores any valid event exactly as the domain normalizes it (property)', async () => {
      const { store } = backend.current;
      const text = fc.string({ unit: 'grapheme', maxLength: 12 });
      const event = fc.record({
        id: fc.integer({ min: 1, max: 2147483647 }),
        timestamp: fc
          .date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true })
          .map((d) => d.toISOString()),
        taskId: fc.option(text),
        eventType: fc.option(text),
        node: fc.option(text),
        details: fc.option(text),
      });
      await fc.assert(
        fc.asyncProperty(
          fc.uniqueArray(event, { selector: (e) => e.id, maxLength: 8 }),
          async (events: DispatchEvent[]) => {
            for (const e of await readAll<DispatchRecords, 'events'>(store, 'events'))
              await store.deleteRecord('events', store.keyOf('events', e));
            await store.putRecords('events', events);
            expect(await readAll<DispatchRecords, 'events'>(store, 'events')).toEqual(
              [...events].sort((a, b) => a.id - b.id).map((e) => DISPATCH_ENTITIES.events.normalize(e)),
            );
          },
        ),
        { numRuns: 25 },
      );
    });
  });
}
