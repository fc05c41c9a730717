import { beforeEach, describe, expect, it } from 'vitest';
import type { GraphJob, GraphJobEvent } from '../../src/stores/graph-job/graph-job-model.js';
import type { GraphJobRecords } from '../../src/stores/graph-job/graph-job-records.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import type { GraphJobStore } from '../../src/stores/graph-job/graph-job-store.js';
import { readAll } from '../../src/ports/record-scan.js';
import type { Side, Stage } from '../../src/ports/stage.js';
import type { RuntimeStore } from '../../src/runtime/dual-write-runtime.js';
import { BUILT_IN_STORES } from '../../src/stores/built-in-stores.js';
import { GRAPH_JOB_DEFINITION } from '../../src/stores/graph-job/graph-job-store-definition.js';
import { PROGRESS_TABLE } from '../../verifier/backfill.js';
import type { VerifyReport } from '../../verifier/verify.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { useTestRuntimes, type TestRuntime, type TestRuntimeOptions } from '../support/runtimes.js';

type Jobs = RuntimeStore<GraphJobStore, GraphJobRecords>;

const uuid = (n: number) => `20000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

/** Every graph job record of one side. */
async function sideState(jobs: Jobs, side: Side): Promise<{ jobs: GraphJob[]; events: GraphJobEvent[] }> {
  return {
    jobs: await readAll<GraphJobRecords, 'graph_jobs'>(jobs[side], 'graph_jobs'),
    events: await readAll<GraphJobRecords, 'graph_job_events'>(jobs[side], 'graph_job_events'),
  };
}

/** The graph job entities of a verification, by name. */
function jobEntities(report: VerifyReport) {
  return Object.fromEntries(
    report.entities
      .filter((e) => e.store === 'graph_jobs')
      .map((e) => [e.entity, { rowsMemory: e.rowsMemory, rowsPostgres: e.rowsPostgres, differences: e.differences }]),
  );
}

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`graph jobs through the dual-write runtime on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const runtimes = useTestRuntimes();
    let db: SqlExecutor;
    beforeEach(async () => {
      db = backend.current.db!;
      await db.query('TRUNCATE graph_jobs, graph_job_events');
      await db.query(`DELETE FROM ${PROGRESS_TABLE}`);
      await db.query('TRUNCATE dualwrite_repairs');
    });

    const open = async (options: Partial<TestRuntimeOptions> = {}): Promise<TestRuntime & { jobs: Jobs }> => {
      const { clock, ids } = backend.current;
      const opened = await runtimes.open({
        db,
        context: { clock, ids },
        stores: [...BUILT_IN_STORES, GRAPH_JOB_DEFINITION],
        mirror: { mode: 'sync' },
        verifier: { graceMs: 0 },
        ...options,
      });
      return { ...opened, jobs: opened.rt.store(GRAPH_JOB_DEFINITION) };
    };
    const flip = async ({ rt, source }: TestRuntime, stage: Stage, readPercent = 0) => {
      source.set({ stage, readPercent });
      const { flags } = await rt.stage.settled();
      expect(flags.stage).toBe(stage);
      if (stage === 'read-shift') expect(flags.readPercent).toBe(readPercent);
    };

    /** Writes of both tenants: a new job each, a status change, an event, and a lost compare-and-set. */
    const writeRound = async (jobs: Jobs, round: number) => {
      const build = await jobs.dual.insertBuildJob('tenant-a', { id: uuid(round * 10 + 1), payload: { round } });
      const overlay = await jobs.dual.insertOverlayJob('tenant-b', {
        id: uuid(round * 10 + 1),
        payload: { round },
        correlationId: `r${round}`,
      });
      expect(
        await jobs.dual.tryReplace('tenant-a', build.id, { status: 'running' }, { expectedStatus: 'queued' }),
      ).toBe(true);
      expect(
        await jobs.dual.tryReplace('tenant-b', overlay.id, { status: 'running' }, { expectedStatus: 'running' }),
      ).toBe(false);
      await jobs.dual.appendEvent('tenant-a', build.id, { status: 'running', payload: { round } });
      await jobs.dual.appendEvent('tenant-b', overlay.id, { status: 'queued' });
      return { build, overlay };
    };

    it('rolls out memory-only -> dual-write -> read-shift -> postgres-primary -> back to dual-write, writing in each, the verifier clean at each step', async () => {
      const opened = await open({ stage: 'memory-only' });
      const { rt, jobs } = opened;
      const written: GraphJob[] = [];
      const keep = ({ build, overlay }: { build: GraphJob; overlay: GraphJob }) => void written.push(build, overlay);

      keep(await writeRound(jobs, 1));
      // Only memory is written: nothing to compare, and PostgreSQL has none of it.
      expect(await rt.verifier.runOnce()).toBeUndefined();
      expect(await sideState(jobs, 'postgres')).toEqual({ jobs: [], events: [] });

      await flip(opened, 'dual-write');
      keep(await writeRound(jobs, 2));
      const { backfill, verify } = await rt.resyncPostgres();
      expect(
        backfill.entities.filter((e) => e.store === 'graph_jobs').map((e) => [e.entity, e.copied, e.skippedExisting]),
      ).toEqual([
        ['graph_jobs', 2, 2],
        ['graph_job_events', 2, 2],
      ]);
      expect(verify.consistent).toBe(true);
      const steps: [Stage, number][] = [
        ['dual-write', 0],
        ['read-shift', 50],
        ['read-shift', 100],
        ['postgres-primary', 0],
        ['dual-write', 0],
      ];
      for (const [index, [stage, percent]] of steps.entries()) {
        await flip(opened, stage, percent);
        keep(await writeRound(jobs, index + 3));
        const report = (await rt.verifier.runOnce())!;
        expect(report.consistent, `${stage} ${percent}%`).toBe(true);
        const rows = written.length;
        expect(jobEntities(report)).toEqual({
          graph_jobs: {
            rowsMemory: rows,
            rowsPostgres: rows,
            differences: { missing_in_postgres: 0, missing_in_memory: 0, fields_differ: 0 },
          },
          graph_job_events: {
            rowsMemory: rows,
            rowsPostgres: rows,
            differences: { missing_in_postgres: 0, missing_in_memory: 0, fields_differ: 0 },
          },
        });
        // Reads through the runtime answer what was written, wherever they are routed.
        for (const job of written) expect((await jobs.dual.get(job.tenantId, job.id))!.id).toBe(job.id);
        expect((await jobs.dual.list('tenant-a', { limit: 1000 })).map((job) => job.id)).toEqual(
          written
            .filter((job) => job.tenantId === 'tenant-a')
            .map((job) => job.id)
            .reverse(),
        );
      }
      expect(await sideState(jobs, 'postgres')).toEqual(await sideState(jobs, 'memory'));
    });

    it('finds drift per tenant (keys start with the tenant) and repairs it, fenced', async () => {
      const { rt, jobs } = await open({ verifier: { graceMs: 0, repair: true } });
      for (let round = 1; round <= 3; round++) await writeRound(jobs, round);
      expect((await rt.verifier.runOnce())!.consistent).toBe(true);

      await db.query(`UPDATE graph_jobs SET status = 4 WHERE tenant_id = 'tenant-b' AND id = $1`, [uuid(21)]);
      await db.query(`DELETE FROM graph_job_events WHERE tenant_id = 'tenant-a' AND job_id = $1 AND seq = 1`, [
        uuid(11),
      ]);
      // The same id under a tenant memory has never seen.
      await db.query(
        `INSERT INTO graph_jobs (tenant_id, id, type, status, payload) VALUES ('tenant-c', $1, 0, 0, '{}')`,
        [uuid(11)],
      );

      const found = (await rt.verifier.runOnce())!;
      expect(found.consistent).toBe(false);
      expect(found.differences.map((d) => [d.entity, d.key, d.kind])).toEqual([
        ['graph_jobs', ['tenant-b', uuid(21)], 'fields_differ'],
        ['graph_jobs', ['tenant-c', uuid(11)], 'missing_in_memory'],
        ['graph_job_events', ['tenant-a', uuid(11), '0000000001'], 'missing_in_postgres'],
      ]);
      expect(found.differences[0]!.fields).toEqual(['status']);
      // Per tenant: the differences' keys name it first.
      expect(new Set(found.differences.map((d) => d.key[0]))).toEqual(new Set(['tenant-a', 'tenant-b', 'tenant-c']));
      // The loop deletes nothing by itself: tenant-c's stray job waits for an operator's confirmation.
      expect(rt.verifier.lastRepairs.map((r) => r.outcome)).toEqual(['repaired', 'withheld_delete', 'repaired']);
      await rt.verifyNow({ repair: true, allowDeletes: 1, reason: 'not a tenant of ours', principal: 'test' });
      expect(await sideState(jobs, 'postgres')).toEqual(await sideState(jobs, 'memory'));
      expect((await rt.verifier.runOnce())!.consistent).toBe(true);
    });

    it('splits differing event ranges at keys PostgreSQL returns padded, so both sides bound the same range', async () => {
      const { rt, jobs } = await open({ verifier: { graceMs: 0, leafRows: 4, fanout: 4 } });
      await jobs.dual.insertBuildJob('t', { id: uuid(1) });
      for (let i = 0; i < 5; i++) await jobs.dual.appendEvent('t', uuid(1), { status: 'running' });
      // Events 6..40 only in PostgreSQL: it holds more rows, so the ranges are split at its keys.
      await db.query(
        `INSERT INTO graph_job_events (tenant_id, job_id, seq, status, payload, created_at)
        SELECT 't', $1, s, 1, '{}', '2026-01-01T00:00:00Z' FROM generate_series(6, 40) s`,
        [uuid(1)],
      );
      const report = (await rt.verifier.runOnce())!;
      const events = report.entities.find((e) => e.entity === 'graph_job_events')!;
      expect(events).toMatchObject({
        rowsMemory: 5,
        rowsPostgres: 40,
        transient: 0,
        differences: { missing_in_postgres: 0, missing_in_memory: 35, fields_differ: 0 },
      });
      expect(events.rangesCompared).toBeGreaterThan(1);
      // Ranges are compared concurrently: the differences come in the order their ranges finished.
      expect(report.differences.map((d) => Number(d.key[2])).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 35 }, (_, i) => i + 6),
      );
    });

    /** One workload of decided ids and times: the same calls must leave the same records whichever side decides. */
    const workload = async (jobs: Jobs) => {
      const results: unknown[] = [];
      for (const tenant of ['t1', 't2']) {
        const a = await jobs.dual.insertBuildJob(tenant, { payload: { tenant } });
        const b = await jobs.dual.insertOverlayJob(tenant, {});
        results.push(a, b);
        results.push(
          await jobs.dual.tryReplace(
            tenant,
            a.id,
            { status: 'running', payload: { started: true } },
            { expectedStatus: 'queued' },
          ),
        );
        results.push(await jobs.dual.tryReplace(tenant, b.id, { status: 'completed' }, { expectedStatus: 'running' }));
        results.push(
          await jobs.dual.tryReplace(
            tenant,
            b.id,
            { status: 'canceled', correlationId: 'stop' },
            { expectedStatus: 'queued' },
          ),
        );
        for (const [i, id] of [a.id, b.id, a.id, a.id, b.id].entries())
          results.push(await jobs.dual.appendEvent(tenant, id, { status: 'running', payload: { i } }));
      }
      return results;
    };

    it('gives identical states and event logs on both sides, and the same ones whichever side is authoritative', async () => {
      const outcomes: { results: unknown[]; memory: unknown; postgres: unknown; logs: unknown }[] = [];
      for (const stage of ['dual-write', 'postgres-primary'] as const) {
        await backend.current.reset();
        await db.query('TRUNCATE graph_jobs, graph_job_events');
        const { rt, jobs } = await open({ stage, mirror: { mode: 'async' } });
        const results = await workload(jobs);
        await rt.mirror.drain();
        const memory = await sideState(jobs, 'memory');
        const postgres = await sideState(jobs, 'postgres');
        const logs = await Promise.all(
          memory.jobs.map(async (job) => [
            await jobs.memory.listEvents(job.tenantId, job.id),
            await jobs.postgres.listEvents(job.tenantId, job.id),
          ]),
        );
        outcomes.push({ results, memory, postgres, logs });
      }
      for (const { memory, postgres, logs } of outcomes) {
        expect(postgres).toEqual(memory);
        for (const [inMemory, inPostgres] of logs as [GraphJobEvent[], GraphJobEvent[]][])
          expect(inPostgres).toEqual(inMemory);
      }
      expect(outcomes[1]).toEqual(outcomes[0]);
      expect((outcomes[0]!.memory as { events: GraphJobEvent[] }).events).toHaveLength(10);
    });

    it.each(['dual-write', 'postgres-primary'] as const)(
      'numbers concurrent appends on the authoritative side and copies those numbers (%s, async mirror)',
      async (stage) => {
        const { rt, jobs } = await open({ stage, mirror: { mode: 'async' } });
        const ids = [uuid(1), uuid(2), uuid(3)];
        for (const id of ids) await jobs.dual.insertBuildJob('t', { id });
        const appended = await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            jobs.dual.appendEvent('t', ids[i % 3]!, { status: 'running', payload: { i } }),
          ),
        );
        await rt.mirror.drain();
        for (const id of ids) {
          const seqs = appended
            .filter((event) => event.jobId === id)
            .map((event) => event.seq)
            .sort((a, b) => a - b);
          expect(seqs).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
          expect(await jobs.postgres.listEvents('t', id)).toEqual(await jobs.memory.listEvents('t', id));
        }
        expect(await sideState(jobs, 'postgres')).toEqual(await sideState(jobs, 'memory'));
        expect((await rt.verifier.runOnce())!.consistent).toBe(true);
      },
    );
  });
}
