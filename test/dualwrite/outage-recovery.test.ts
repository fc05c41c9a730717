import { describe, expect, it } from 'vitest';
import { StoreError, UnavailableError } from '../../src/domain/errors.js';
import { CircuitBreaker } from '../../src/dualwrite/circuit-breaker.js';
import { METRIC } from '../../src/dualwrite/metrics.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { MemoryTaskSchedulerStore } from '../../src/stores/task-scheduler/memory-task-scheduler-store.js';
import { FaultySql } from '../support/faulty-sql.js';
import { metricSum } from '../support/metrics.js';
import { dumpSide, useTestRuntimes } from '../support/runtimes.js';

/**
 * Recovery from an outage: while PostgreSQL is down the mirror journals without waiting on
 * it (one probe a second), and once it answers the backlog is replayed many entries per
 * transaction, so the outbox empties in a few rounds instead of one entry at a time.
 */

describe('CircuitBreaker', () => {
  it('refuses calls after a failure until probeMs passed, lets one probe through, closes on its success', () => {
    let now = 0;
    const breaker = new CircuitBreaker({ probeMs: 1000, now: () => now });
    expect(breaker.allow()).toBe(true);
    breaker.failed();
    expect([breaker.state, breaker.allow()]).toEqual(['open', false]);
    now = 999;
    expect(breaker.allow()).toBe(false);
    now = 1000;
    expect(breaker.allow()).toBe(true);
    expect([breaker.state, breaker.allow()]).toEqual(['half-open', false]);
    breaker.failed();
    now = 1999;
    expect(breaker.allow()).toBe(false);
    now = 2000;
    expect(breaker.allow()).toBe(true);
    breaker.succeeded();
    expect([breaker.state, breaker.allow(), breaker.allow()]).toEqual(['closed', true, true]);
  });

  it('lets another probe through when one never reported back', () => {
    let now = 0;
    const breaker = new CircuitBreaker({ probeMs: 1000, now: () => now });
    breaker.failed();
    now = 1000;
    expect(breaker.allow()).toBe(true);
    now = 1500;
    expect(breaker.allow()).toBe(false);
    now = 2000;
    expect(breaker.allow()).toBe(true);
  });
});

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`outage and recovery on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const runtimes = useTestRuntimes();

    async function open() {
      let now = 0;
      const faulty = new FaultySql(backend.current.db!);
      // Job runs are recorded apart, so the database's transactions are the mirror's and the replayer's alone.
      const jobs = new MemoryTaskSchedulerStore();
      const opened = await runtimes.open({
        db: faulty,
        stage: 'dual-write',
        mirror: { mode: 'sync', breaker: { now: () => now } },
        jobs: { store: jobs },
      });
      await opened.rt.replayer.stop();
      return { ...opened, faulty, jobs, advance: (ms: number) => void (now += ms) };
    }

    it('journals writes while PostgreSQL is down without trying it again for each, probing once a second', async () => {
      const { rt, faulty, advance, logs } = await open();
      faulty.down = true;
      for (let i = 0; i < 50; i++) await rt.graph.upsertProject({ ecosystem: 'npm', name: `p${i}` });
      expect(rt.outbox.stats().depth).toBe(50);
      expect(faulty.refused).toBe(1);

      advance(1000);
      await rt.graph.upsertProject({ ecosystem: 'npm', name: 'probe' });
      expect(faulty.refused).toBe(2);
      expect(await metricSum(rt.metrics.registry, METRIC.mirrorFailures)).toBe(2);

      faulty.down = false;
      advance(1000);
      const healthy = await rt.graph.upsertProject({ ecosystem: 'npm', name: 'after' });
      expect(await rt.postgres.graph.getProject(healthy)).toEqual(healthy);
      // One line when it stopped answering, one when it answered again: not one per write.
      expect(logs.filter((line) => line.includes('postgres stopped answering'))).toHaveLength(1);
      expect(
        logs.filter((line) => line.includes('postgres answers again after 2.0 s; replaying 51 journaled writes')),
      ).toHaveLength(1);
    });

    it('in read-shift, a key whose mirror write waits in the outbox is read from memory, not the stale PostgreSQL row', async () => {
      const faulty = new FaultySql(backend.current.db!);
      const { rt } = await runtimes.open({
        db: faulty,
        stage: 'read-shift',
        readPercent: 100,
        mirror: { mode: 'sync' },
      });
      await rt.replayer.stop();
      const ref = { ecosystem: 'npm', name: 'ryw' };
      await rt.graph.upsertProject({ ...ref, description: 'old' });
      faulty.down = true;
      const newer = await rt.graph.upsertProject({ ...ref, description: 'new' });
      faulty.down = false;
      expect((await rt.postgres.graph.getProject(ref))!.description).toBe('old');
      expect(await rt.graph.getProject(ref)).toEqual(newer);
      expect(rt.metrics.readsFrom('graph', 'postgres').value).toBe(0);
    });

    it('replays a backlog of 400 writes in one round and one transaction, leaving both sides equal', async () => {
      const { rt, faulty, jobs, advance } = await open();
      faulty.down = true;
      for (let i = 0; i < 400; i++)
        await rt.graph.upsertProject({ ecosystem: 'npm', name: `p${i % 100}`, description: `v${i}` });
      expect(rt.outbox.stats().depth).toBe(400);
      faulty.down = false;
      advance(1000);
      const before = faulty.transactions;

      expect(await rt.replayer.replayOnce()).toEqual({ replayed: 400, deadLettered: 0 });
      expect(faulty.transactions - before).toBe(1);
      expect((await jobs.listExecutions({ taskName: 'outbox.replay' })).map((run) => run.state)).toEqual(['success']);
      expect(rt.outbox.stats().depth).toBe(0);
      expect(rt.mirror.isPending()).toBe(false);
      expect(await dumpSide(rt, 'postgres')).toEqual(await dumpSide(rt, 'memory'));
    });
  });
}

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`PostgreSQL failures reach callers as UnavailableError on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const runtimes = useTestRuntimes();

    it('in postgres-primary, a write and a read fail with UnavailableError carrying the driver error, and nothing is written', async () => {
      const faulty = new FaultySql(backend.current.db!);
      const { rt } = await runtimes.open({ db: faulty, stage: 'postgres-primary' });
      faulty.down = true;
      const write = await rt.graph.upsertProject({ ecosystem: 'npm', name: 'down' }).catch((error: unknown) => error);
      expect(write).toBeInstanceOf(UnavailableError);
      expect(write).toMatchObject({ dependency: 'postgres', cause: { code: 'ECONNREFUSED' } });
      expect(write).not.toBeInstanceOf(StoreError);
      await expect(rt.graph.getProject({ ecosystem: 'npm', name: 'down' })).rejects.toBeInstanceOf(UnavailableError);
      faulty.down = false;
      expect(await rt.memory.graph.getProject({ ecosystem: 'npm', name: 'down' })).toBeNull();
      expect(await rt.postgres.graph.getProject({ ecosystem: 'npm', name: 'down' })).toBeNull();
    });

    it('while memory is authoritative, a read routed to an unreachable PostgreSQL is answered by memory', async () => {
      const faulty = new FaultySql(backend.current.db!);
      const { rt } = await runtimes.open({ db: faulty, stage: 'read-shift', readPercent: 100 });
      const written = await rt.graph.upsertProject({ ecosystem: 'npm', name: 'kept' });
      faulty.down = true;
      expect(await rt.graph.getProject(written)).toEqual(written);
    });
  });
}
