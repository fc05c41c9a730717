import { describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, StoreError, TransitionError, ValidationError } from '../../src/domain/errors.js';
import {
  GRAPH_JOB_STATUSES,
  type GraphJob,
  type GraphJobEvent,
  type GraphJobStatus,
} from '../../src/stores/graph-job/graph-job-model.js';
import { type GraphJobRecords } from '../../src/stores/graph-job/graph-job-records.js';
import { readAll } from '../../src/ports/record-scan.js';
import { availableBackends } from '../support/backends.js';
import { useGraphJobBackend, type GraphJobBackend } from '../support/graph-job-backends.js';

/** The lifecycle as specified: these moves, plus staying in the same status, are the only allowed ones. */
const ALLOWED_MOVES = new Set([
  'queued>running',
  'queued>canceled',
  'running>completed',
  'running>failed',
  'running>canceled',
]);
const TRANSITIONS = GRAPH_JOB_STATUSES.flatMap((from) =>
  GRAPH_JOB_STATUSES.map((to) => ({ from, to, allowed: from === to || ALLOWED_MOVES.has(`${from}>${to}`) })),
);
/** Status changes that bring a queued job to each status. */
const PATH_TO: Readonly<Record<GraphJobStatus, readonly GraphJobStatus[]>> = {
  queued: [],
  running: ['running'],
  completed: ['running', 'completed'],
  failed: ['running', 'failed'],
  canceled: ['canceled'],
};

const uuid = (n: number) => `10000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const at = (seconds: number) => new Date(Date.UTC(2026, 2, 1) + seconds * 1000).toISOString();

/** Every record of the store, for "nothing was written" checks. */
async function everything(backend: GraphJobBackend): Promise<{ jobs: GraphJob[]; events: GraphJobEvent[] }> {
  return {
    jobs: await readAll<GraphJobRecords, 'graph_jobs'>(backend.jobs, 'graph_jobs'),
    events: await allEvents(backend),
  };
}

async function allEvents(backend: GraphJobBackend): Promise<GraphJobEvent[]> {
  return readAll<GraphJobRecords, 'graph_job_events'>(backend.jobs, 'graph_job_events');
}

async function jobIn(
  backend: GraphJobBackend,
  tenant: string,
  status: GraphJobStatus,
  id = uuid(1),
): Promise<GraphJob> {
  await backend.jobs.insertBuildJob(tenant, { id, payload: { sbom: 'sha256:1' }, at: at(0) });
  let from: GraphJobStatus = 'queued';
  for (const [index, next] of PATH_TO[status].entries()) {
    expect(
      await backend.jobs.tryReplace(tenant, id, { status: next }, { expectedStatus: from, at: at(index + 1) }),
    ).toBe(true);
    from = next;
  }
  return (await backend.jobs.get(tenant, id))!;
}

for (const factory of availableBackends()) {
  describe(`GraphJobStore contract on ${factory.name}`, () => {
    const backend = useGraphJobBackend(factory);

    describe('insert', () => {
      it('inserts queued build and overlay jobs, deciding the id and time left out', async () => {
        const { jobs } = backend.current;
        const build = await jobs.insertBuildJob('tenant-a', {
          payload: { sbomId: 's1', nested: { b: 2, a: 1 } },
          correlationId: 'corr-1',
        });
        const overlay = await jobs.insertOverlayJob('tenant-a', {
          id: uuid(7).toUpperCase(),
          at: '2026-03-01T01:00:00+01:00',
        });
        expect(build).toEqual({
          tenantId: 'tenant-a',
          id: '00000000-0000-4000-8000-000000000001',
          kind: 'build',
          status: 'queued',
          payload: { nested: { a: 1, b: 2 }, sbomId: 's1' },
          correlationId: 'corr-1',
          createdAt: '2026-01-01T00:00:00.000Z',
          updatedAt: '2026-01-01T00:00:00.000Z',
        });
        expect(overlay).toEqual({
          tenantId: 'tenant-a',
          id: uuid(7),
          kind: 'overlay',
          status: 'queued',
          payload: {},
          correlationId: null,
          createdAt: at(0),
          updatedAt: at(0),
        });
        expect(await jobs.get('tenant-a', build.id)).toEqual(build);
        expect(await jobs.get('tenant-a', uuid(7).toUpperCase())).toEqual(overlay);
      });

      it("refuses a tenant's second job under one id, and lets another tenant use that id independently", async () => {
        const { jobs } = backend.current;
        const first = await jobs.insertBuildJob('a', { id: uuid(1), payload: { n: 1 }, at: at(1) });
        await expect(jobs.insertOverlayJob('a', { id: uuid(1), at: at(2) })).rejects.toThrow(ConflictError);
        const other = await jobs.insertOverlayJob('b', { id: uuid(1), payload: { n: 2 }, at: at(3) });
        expect(await jobs.get('a', uuid(1))).toEqual(first);
        expect(await jobs.get('b', uuid(1))).toEqual(other);
        expect(
          await jobs.tryReplace('b', uuid(1), { status: 'running' }, { expectedStatus: 'queued', at: at(4) }),
        ).toBe(true);
        expect(await jobs.get('a', uuid(1))).toEqual(first);
      });

      it.each([
        { field: 'tenantId', call: (g: GraphJobBackend) => g.jobs.insertBuildJob('', {}) },
        { field: 'tenantId', call: (g: GraphJobBackend) => g.jobs.insertBuildJob(' \t', {}) },
        { field: 'tenantId', call: (g: GraphJobBackend) => g.jobs.insertBuildJob('t'.repeat(256), {}) },
        { field: 'tenantId', call: (g: GraphJobBackend) => g.jobs.insertBuildJob(7 as unknown as string, {}) },
        { field: 'tenantId', call: (g: GraphJobBackend) => g.jobs.insertBuildJob('a\u0000b', {}) },
        { field: 'job', call: (g: GraphJobBackend) => g.jobs.insertOverlayJob('a', null as never) },
        { field: 'id', call: (g: GraphJobBackend) => g.jobs.insertBuildJob('a', { id: 'job-1' }) },
        { field: 'payload', call: (g: GraphJobBackend) => g.jobs.insertBuildJob('a', { payload: [] as never }) },
        {
          field: 'payload.x',
          call: (g: GraphJobBackend) => g.jobs.insertBuildJob('a', { payload: { x: Number.NaN } }),
        },
        {
          field: 'correlationId',
          call: (g: GraphJobBackend) => g.jobs.insertBuildJob('a', { correlationId: 5 as never }),
        },
        { field: 'at', call: (g: GraphJobBackend) => g.jobs.insertBuildJob('a', { at: '2026-02-30T00:00:00Z' }) },
      ])('refuses a bad $field with a ValidationError naming it, writing nothing', async ({ field, call }) => {
        const error = await call(backend.current).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ValidationError);
        expect((error as ValidationError).field).toBe(field);
        expect(await everything(backend.current)).toEqual({ jobs: [], events: [] });
      });

      it('accepts a tenant id of 255 characters, counted in code points', async () => {
        const tenant = '𝔊'.repeat(255);
        const job = await backend.current.jobs.insertBuildJob(tenant, { at: at(0) });
        expect(await backend.current.jobs.get(tenant, job.id)).toEqual(job);
      });
    });

    describe('tryReplace', () => {
      it.each(TRANSITIONS)('$from -> $to: allowed=$allowed', async ({ from, to, allowed }) => {
        const { jobs } = backend.current;
        const job = await jobIn(backend.current, 't', from);
        const call = jobs.tryReplace(
          't',
          job.id,
          { status: to, payload: { step: to } },
          { expectedStatus: from, at: at(50) },
        );
        if (!allowed) {
          await expect(call).rejects.toThrow(TransitionError);
          expect(await jobs.get('t', job.id)).toEqual(job);
          return;
        }
        expect(await call).toBe(true);
        expect(await jobs.get('t', job.id)).toEqual({ ...job, status: to, payload: { step: to }, updatedAt: at(50) });
      });

      it('refuses a forbidden move before looking at the job: the same error whatever the job is in, or whether it exists', async () => {
        const { jobs } = backend.current;
        const job = await jobIn(backend.current, 't', 'running');
        const before = await everything(backend.current);
        for (const id of [job.id, uuid(99)]) {
          const error = await jobs
            .tryReplace('t', id, { status: 'running' }, { expectedStatus: 'completed' })
            .catch((e: unknown) => e);
          expect(error).toBeInstanceOf(TransitionError);
          expect(error).toMatchObject({
            field: 'status',
            from: 'completed',
            to: 'running',
            message: 'status: cannot move a graph job from completed to running',
          });
        }
        expect(await everything(backend.current)).toEqual(before);
      });

      it("returns false and writes nothing when the status differs, the job is missing, or it is another tenant's", async () => {
        const { jobs } = backend.current;
        const mine = await jobIn(backend.current, 'mine', 'running');
        const theirs = await jobIn(backend.current, 'theirs', 'queued', uuid(2));
        const before = await everything(backend.current);
        expect(
          await jobs.tryReplace(
            'mine',
            mine.id,
            { status: 'running', payload: { x: 1 } },
            { expectedStatus: 'queued', at: at(60) },
          ),
        ).toBe(false);
        expect(
          await jobs.tryReplace('mine', uuid(3), { status: 'running' }, { expectedStatus: 'queued', at: at(60) }),
        ).toBe(false);
        expect(
          await jobs.tryReplace('mine', theirs.id, { status: 'running' }, { expectedStatus: 'queued', at: at(60) }),
        ).toBe(false);
        expect(await everything(backend.current)).toEqual(before);
      });

      it('keeps the payload and correlation id left out, clears a correlation id set to null', async () => {
        const { jobs } = backend.current;
        const job = await jobs.insertBuildJob('t', {
          id: uuid(1),
          payload: { keep: true },
          correlationId: 'c-1',
          at: at(0),
        });
        expect(await jobs.tryReplace('t', job.id, { status: 'running' }, { expectedStatus: 'queued', at: at(1) })).toBe(
          true,
        );
        expect(await jobs.get('t', job.id)).toEqual({ ...job, status: 'running', updatedAt: at(1) });
        expect(
          await jobs.tryReplace(
            't',
            job.id,
            { status: 'running', correlationId: null, payload: null },
            { expectedStatus: 'running', at: at(2) },
          ),
        ).toBe(true);
        expect(await jobs.get('t', job.id)).toEqual({
          ...job,
          status: 'running',
          payload: {},
          correlationId: null,
          updatedAt: at(2),
        });
      });

      it('decides the replacement time from the clock when left out', async () => {
        const { jobs, clock } = backend.current;
        const job = await jobs.insertBuildJob('t', { id: uuid(1), at: at(0) });
        clock.set('2026-05-05T05:05:05.005Z');
        expect(await jobs.tryReplace('t', job.id, { status: 'canceled' }, { expectedStatus: 'queued' })).toBe(true);
        expect((await jobs.get('t', job.id))!.updatedAt).toBe('2026-05-05T05:05:05.005Z');
      });

      it.each([
        {
          field: 'status',
          call: (g: GraphJobBackend, id: string) =>
            g.jobs.tryReplace('t', id, { status: 'done' as never }, { expectedStatus: 'queued' }),
        },
        {
          field: 'expectedStatus',
          call: (g: GraphJobBackend, id: string) =>
            g.jobs.tryReplace('t', id, { status: 'running' }, { expectedStatus: 'QUEUED' as never }),
        },
        {
          field: 'options',
          call: (g: GraphJobBackend, id: string) =>
            g.jobs.tryReplace('t', id, { status: 'running' }, undefined as never),
        },
        {
          field: 'payload',
          call: (g: GraphJobBackend, id: string) =>
            g.jobs.tryReplace('t', id, { status: 'running', payload: 'x' as never }, { expectedStatus: 'queued' }),
        },
        {
          field: 'id',
          call: (g: GraphJobBackend) =>
            g.jobs.tryReplace('t', 'nope', { status: 'running' }, { expectedStatus: 'queued' }),
        },
        {
          field: 'tenantId',
          call: (g: GraphJobBackend, id: string) =>
            g.jobs.tryReplace('', id, { status: 'running' }, { expectedStatus: 'queued' }),
        },
        {
          field: 'at',
          call: (g: GraphJobBackend, id: string) =>
            g.jobs.tryReplace('t', id, { status: 'running' }, { expectedStatus: 'queued', at: 'soon' }),
        },
      ])('refuses a bad $field with a ValidationError naming it, writing nothing', async ({ field, call }) => {
        const job = await jobIn(backend.current, 't', 'queued');
        const before = await everything(backend.current);
        const error = await call(backend.current, job.id).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ValidationError);
        expect((error as ValidationError).field).toBe(field);
        expect(await everything(backend.current)).toEqual(before);
      });
    });

    describe('list', () => {
      /** Jobs of tenants whose names are prefixes of each other, several created at one time. */
      async function seed(g: GraphJobBackend): Promise<void> {
        const rows: [string, number, 'build' | 'overlay', number, GraphJobStatus][] = [
          ['a', 1, 'build', 1, 'queued'],
          ['a', 5, 'overlay', 3, 'running'],
          ['a', 3, 'build', 3, 'completed'],
          ['a', 4, 'build', 3, 'running'],
          ['a', 2, 'overlay', 4, 'failed'],
          ['ab', 6, 'build', 9, 'queued'],
          ['a b', 7, 'build', 9, 'queued'],
          ['b', 1, 'build', 9, 'queued'],
        ];
        for (const [tenant, n, kind, second, status] of rows) {
          const insert = kind === 'build' ? g.jobs.insertBuildJob.bind(g.jobs) : g.jobs.insertOverlayJob.bind(g.jobs);
          await insert(tenant, { id: uuid(n), at: at(second) });
          let from: GraphJobStatus = 'queued';
          for (const next of PATH_TO[status]) {
            await g.jobs.tryReplace(tenant, uuid(n), { status: next }, { expectedStatus: from, at: at(100) });
            from = next;
          }
        }
      }
      const ids = (jobs: readonly GraphJob[]) => jobs.map((job) => Number.parseInt(job.id.slice(-12), 16));

      it("lists only the tenant's jobs, newest first, ties by id", async () => {
        await seed(backend.current);
        const { jobs } = backend.current;
        expect(ids(await jobs.list('a'))).toEqual([2, 3, 4, 5, 1]);
        expect((await jobs.list('a')).every((job) => job.tenantId === 'a')).toBe(true);
        expect(ids(await jobs.list('ab'))).toEqual([6]);
        expect(ids(await jobs.list('a b'))).toEqual([7]);
        expect(ids(await jobs.list('b'))).toEqual([1]);
        expect(await jobs.list('nobody')).toEqual([]);
      });

      it('filters by status and kind, and limits', async () => {
        await seed(backend.current);
        const { jobs } = backend.current;
        expect(ids(await jobs.list('a', { status: 'running' }))).toEqual([4, 5]);
        expect(ids(await jobs.list('a', { kind: 'overlay' }))).toEqual([2, 5]);
        expect(ids(await jobs.list('a', { kind: 'build', status: 'running' }))).toEqual([4]);
        expect(ids(await jobs.list('a', { limit: 2 }))).toEqual([2, 3]);
        expect(await jobs.list('a', { status: 'canceled' })).toEqual([]);
      });

      it.each([
        { field: 'limit', query: { limit: 0 } },
        { field: 'limit', query: { limit: 1001 } },
        { field: 'status', query: { status: 'done' } },
        { field: 'kind', query: { kind: 'rebuild' } },
      ])('refuses a bad $field', async ({ field, query }) => {
        await expect(backend.current.jobs.list('a', query as never)).rejects.toMatchObject({
          name: 'ValidationError',
          field,
        });
      });
    });

    describe('events', () => {
      it("numbers each job's events from 1, per tenant and job, deciding the time left out", async () => {
        const { jobs } = backend.current;
        await jobs.insertBuildJob('a', { id: uuid(1), at: at(0) });
        await jobs.insertBuildJob('a', { id: uuid(2), at: at(0) });
        await jobs.insertBuildJob('b', { id: uuid(1), at: at(0) });
        const first = await jobs.appendEvent('a', uuid(1), { status: 'queued', payload: { note: 'created' } });
        const second = await jobs.appendEvent('a', uuid(1), { status: 'running', at: at(5) });
        const otherJob = await jobs.appendEvent('a', uuid(2), { status: 'queued', at: at(6) });
        const otherTenant = await jobs.appendEvent('b', uuid(1), { status: 'failed', at: at(7) });
        expect(first).toEqual({
          tenantId: 'a',
          jobId: uuid(1),
          seq: 1,
          status: 'queued',
          payload: { note: 'created' },
          createdAt: '2026-01-01T00:00:00.000Z',
        });
        expect([second.seq, otherJob.seq, otherTenant.seq]).toEqual([1 + 1, 1, 1]);
        expect(await jobs.listEvents('a', uuid(1))).toEqual([first, second]);
        expect(await jobs.listEvents('b', uuid(1))).toEqual([otherTenant]);
      });

      it("refuses an event for a missing job or another tenant's, writing nothing", async () => {
        const { jobs } = backend.current;
        await jobs.insertBuildJob('b', { id: uuid(1), at: at(0) });
        const before = await everything(backend.current);
        for (const [tenant, id] of [
          ['a', uuid(1)],
          ['b', uuid(2)],
        ] as const) {
          const error = await jobs.appendEvent(tenant, id, { status: 'running' }).catch((e: unknown) => e);
          expect(error).toBeInstanceOf(NotFoundError);
          expect((error as StoreError).field).toBe('jobId');
        }
        expect(await everything(backend.current)).toEqual(before);
        expect(await jobs.listEvents('a', uuid(1))).toEqual([]);
      });

      it('keeps seq order past 9 in lists and record scans (keys sort as the numbers do), pages with afterSeq', async () => {
        const { jobs } = backend.current;
        await jobs.insertOverlayJob('t', { id: uuid(1), at: at(0) });
        for (let i = 0; i < 12; i++)
          await jobs.appendEvent('t', uuid(1), { status: 'running', payload: { i }, at: at(i) });
        expect((await jobs.listEvents('t', uuid(1))).map((e) => e.seq)).toEqual([
          1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ]);
        expect((await jobs.listEvents('t', uuid(1), { afterSeq: 9, limit: 2 })).map((e) => e.seq)).toEqual([10, 11]);
        const scanned = await allEvents(backend.current);
        expect(scanned.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        expect(scanned.map((e) => jobs.keyOf('graph_job_events', e)[2])).toEqual(
          scanned.map((e) => String(e.seq).padStart(10, '0')),
        );
        expect(
          await jobs.scanRecords('graph_job_events', {
            after: ['t', uuid(1), '0000000009'],
            until: ['t', uuid(1), '0000000011'],
            limit: 10,
          }),
        ).toEqual(scanned.slice(9, 11));
      });

      it.each([
        {
          field: 'status',
          call: (g: GraphJobBackend) => g.jobs.appendEvent('t', uuid(1), { status: 'paused' as never }),
        },
        {
          field: 'payload',
          call: (g: GraphJobBackend) => g.jobs.appendEvent('t', uuid(1), { status: 'running', payload: 1 as never }),
        },
        { field: 'jobId', call: (g: GraphJobBackend) => g.jobs.appendEvent('t', 'job', { status: 'running' }) },
        { field: 'event', call: (g: GraphJobBackend) => g.jobs.appendEvent('t', uuid(1), undefined as never) },
        { field: 'afterSeq', call: (g: GraphJobBackend) => g.jobs.listEvents('t', uuid(1), { afterSeq: -1 }) },
      ])('refuses a bad $field with a ValidationError naming it', async ({ field, call }) => {
        await backend.current.jobs.insertBuildJob('t', { id: uuid(1), at: at(0) });
        const before = await everything(backend.current);
        const error = await call(backend.current).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ValidationError);
        expect((error as ValidationError).field).toBe(field);
        expect(await everything(backend.current)).toEqual(before);
      });

      it('gives concurrent appends to one job distinct, gapless seqs', async () => {
        const { jobs } = backend.current;
        await jobs.insertBuildJob('t', { id: uuid(1), at: at(0) });
        const events = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            jobs.appendEvent('t', uuid(1), { status: 'running', payload: { i }, at: at(i) }),
          ),
        );
        expect(events.map((e) => e.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        expect((await jobs.listEvents('t', uuid(1))).map((e) => e.seq)).toEqual(
          Array.from({ length: 20 }, (_, i) => i + 1),
        );
      });
    });

    describe('records', () => {
      it("deletes a job's events with it (ON DELETE CASCADE), the other jobs' events stay", async () => {
        const { jobs } = backend.current;
        await jobs.insertBuildJob('t', { id: uuid(1), at: at(0) });
        await jobs.insertBuildJob('t', { id: uuid(2), at: at(0) });
        await jobs.appendEvent('t', uuid(1), { status: 'running', at: at(1) });
        const kept = await jobs.appendEvent('t', uuid(2), { status: 'running', at: at(1) });
        expect(await jobs.deleteRecord('graph_jobs', ['t', uuid(1)])).toBe(true);
        expect(await jobs.deleteRecord('graph_jobs', ['t', uuid(1)])).toBe(false);
        expect(await allEvents(backend.current)).toEqual([kept]);
        // A new job under the deleted id starts its log at 1 again.
        await jobs.insertBuildJob('t', { id: uuid(1), at: at(2) });
        expect((await jobs.appendEvent('t', uuid(1), { status: 'queued', at: at(3) })).seq).toBe(1);
      });

      it('copies records as given (putRecords), and an appended event follows the last copied seq', async () => {
        const { jobs } = backend.current;
        const job: GraphJob = {
          tenantId: 't',
          id: uuid(1),
          kind: 'overlay',
          status: 'failed',
          payload: { a: [1, { b: null }] },
          correlationId: null,
          createdAt: at(0),
          updatedAt: at(9),
        };
        await jobs.putRecords('graph_jobs', [job]);
        const copied: GraphJobEvent = {
          tenantId: 't',
          jobId: uuid(1),
          seq: 41,
          status: 'failed',
          payload: {},
          createdAt: at(9),
        };
        await jobs.putRecords('graph_job_events', [copied]);
        expect(await jobs.getRecord('graph_jobs', ['t', uuid(1)])).toEqual(job);
        expect(await jobs.getRecord('graph_job_events', ['t', uuid(1), '0000000041'])).toEqual(copied);
        expect((await jobs.appendEvent('t', uuid(1), { status: 'failed', at: at(10) })).seq).toBe(42);
        await expect(jobs.putRecord('graph_job_events', { ...copied, jobId: uuid(5) })).rejects.toThrow();
      });
    });
  });
}
