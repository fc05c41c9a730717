import { describe, expect, it } from 'vitest';
import { ConflictError } from '../../src/domain/errors.js';
import { METRIC } from '../../src/dualwrite/metrics.js';
import type { MirrorMode } from '../../src/dualwrite/mirror.js';
import type { GateState } from '../../src/dualwrite/stage-gate.js';
import type { Stage } from '../../src/ports/stage.js';
import { FileOutbox } from '../../src/dualwrite/file-outbox.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { availableBackends, useBackend, type Backend } from '../support/backends.js';
import { FaultySql } from '../support/faulty-sql.js';
import { metricSum } from '../support/metrics.js';
import { dumpSide, useTestRuntimes, type TestRuntime } from '../support/runtimes.js';

/**
 * Stage changes made while writes are in flight, queued or journaled: every acknowledged
 * write is what the authoritative side holds afterwards, and the sides end equal. Each
 * test is one race seen with the flag flipped at the worst moment.
 */

const MODES: readonly MirrorMode[] = ['sync', 'async'];
const K = { ecosystem: 'npm', name: 'k' };
const APP = { ecosystem: 'npm', name: 'app' };
const CONTRIBUTOR = '10000000-0000-4000-8000-0000000000c1';
const ASSET = '20000000-0000-4000-8000-0000000000a1';
const task = (id: string) => ({ id, direction: 'd', taskType: 'impl' as const, model: 'm', command: 'c' });
const contributorId = (n: number) => `10000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

interface Scenario extends TestRuntime {
  readonly faulty: FaultySql;
  /** Sets the flags as an operator would and waits for the transition's outcome. */
  flip(stage: Stage, readPercent?: number): Promise<GateState>;
  /** Both sides, record for record. */
  sides(): Promise<{ memory: Record<string, unknown[]>; postgres: Record<string, unknown[]> }>;
}

function useScenarios(backend: { current: Backend }) {
  const runtimes = useTestRuntimes();
  const open = async (
    stage: Stage,
    mode: MirrorMode,
    extra: { outboxPath?: string; timeoutMs?: number; down?: boolean; lease?: false; probeMs?: number } = {},
  ): Promise<Scenario> => {
    const { db, clock, ids } = backend.current;
    const faulty = new FaultySql(db!);
    faulty.down = extra.down ?? false;
    const outbox = extra.outboxPath ? await FileOutbox.open({ path: extra.outboxPath }) : undefined;
    if (outbox) runtimes.defer(() => outbox.close());
    // Retries only when a test asks (stage.retry()), so nothing happens behind its back.
    const opened = await runtimes.open({
      db: faulty,
      stage,
      context: { clock, ids },
      mirror: { mode, ...(extra.probeMs !== undefined ? { breaker: { probeMs: extra.probeMs } } : {}) },
      outbox,
      transitions: { retryMs: 600_000, timeoutMs: extra.timeoutMs },
      lease: extra.lease,
    });
    await opened.rt.replayer.stop();
    return {
      ...opened,
      faulty,
      flip: (next, readPercent = 0) => {
        opened.source.set({ stage: next, readPercent });
        return opened.rt.stage.settled();
      },
      sides: async () => ({
        memory: await dumpSide(opened.rt, 'memory'),
        postgres: await dumpSide(opened.rt, 'postgres'),
      }),
    };
  };
  return { open, defer: runtimes.defer };
}

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`stage transitions on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const { open, defer } = useScenarios(backend);

    for (const mode of MODES) {
      it(`dual-write -> postgres-primary with earlier writes still queued: PostgreSQL keeps the first write after the switch (${mode})`, async () => {
        const s = await open('dual-write', mode);
        await s.rt.graph.upsertProject({ ...K, description: 'v0' });
        const burst = Array.from({ length: 40 }, (_, i) =>
          s.rt.graph.upsertProject({ ...K, description: `v${i + 1}` }),
        );
        s.source.set({ stage: 'postgres-primary' });
        const newest = await s.rt.graph.upsertProject({ ...K, description: 'newest' });
        await Promise.all(burst);
        expect((await s.rt.stage.settled()).flags.stage).toBe('postgres-primary');
        await s.rt.mirror.drain();

        expect(await s.rt.postgres.graph.getProject(K)).toEqual(newest);
        expect(await s.rt.memory.graph.getProject(K)).toEqual(newest);
        expect(await s.rt.graph.getProject(K)).toEqual(newest);
      });

      it(`dual-write -> postgres-primary: a task created just before the switch can be updated right after it (${mode})`, async () => {
        const s = await open('dual-write', mode);
        const created = s.rt.tasks.createTask(task('task_before_switch'));
        s.source.set({ stage: 'postgres-primary' });
        await created;
        const update = await s.rt.tasks.updateTask('task_before_switch', { status: 'running' });

        expect(update.updated).toBe(true);
        await s.rt.stage.settled();
        await s.rt.mirror.drain();
        expect(await s.rt.postgres.tasks.getTask('task_before_switch')).toEqual(update.task);
        expect(await s.rt.memory.tasks.getTask('task_before_switch')).toEqual(update.task);
      });

      it(`dual-write -> postgres-primary: an id taken just before the switch is refused right after it, as one store would (${mode})`, async () => {
        const s = await open('dual-write', mode);
        const first = s.rt.graph.createContributor({ id: CONTRIBUTOR, name: 'first' });
        s.source.set({ stage: 'postgres-primary' });
        const kept = await first;

        await expect(s.rt.graph.createContributor({ id: CONTRIBUTOR, name: 'second' })).rejects.toBeInstanceOf(
          ConflictError,
        );
        await s.rt.stage.settled();
        await s.rt.mirror.drain();
        expect(await s.rt.postgres.graph.getContributor(CONTRIBUTOR)).toEqual(kept);
        expect(await s.rt.memory.graph.getContributor(CONTRIBUTOR)).toEqual(kept);
      });

      it(`postgres-primary -> dual-write (rollback) with writes in flight: the first write after the rollback is kept (${mode})`, async () => {
        const s = await open('postgres-primary', mode);
        await s.rt.graph.upsertProject({ ...K, description: 'v0' });
        const inFlight = Array.from({ length: 30 }, (_, i) =>
          s.rt.graph.upsertProject({ ...K, description: `v${i + 1}` }),
        );
        expect((await s.flip('dual-write')).flags.stage).toBe('dual-write');
        const newest = await s.rt.graph.upsertProject({ ...K, description: 'newest' });
        await Promise.all(inFlight);
        await s.rt.mirror.drain();

        expect(await s.rt.memory.graph.getProject(K)).toEqual(newest);
        expect(await s.rt.postgres.graph.getProject(K)).toEqual(newest);
      });

      it(`postgres-primary: concurrent writes to one key reach memory as PostgreSQL committed them (${mode})`, async () => {
        const s = await open('postgres-primary', mode);
        await s.rt.tasks.createTask(task('task_hot'));
        await s.rt.tasks.updateTask('task_hot', { status: 'running' });
        for (let round = 0; round < 5; round++) {
          await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              s.rt.tasks.updateTask('task_hot', { progressPct: i, currentStep: `round ${round} step ${i}` }),
            ),
          );
        }
        await s.rt.mirror.drain();

        const committed = await s.rt.postgres.tasks.getTask('task_hot');
        expect(committed!.currentStep).toMatch(/^round 4 /);
        expect(await s.rt.memory.tasks.getTask('task_hot')).toEqual(committed);
      });
    }

    it('async dual-write: an edge and a contribution reach PostgreSQL after the rows they reference, never through the outbox', async () => {
      const s = await open('dual-write', 'async');
      await s.rt.graph.upsertProject(APP);
      await s.rt.graph.createAsset({ id: ASSET, name: 'asset', assetType: 'code' });
      await s.rt.mirror.drain();
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 30; i++) {
        const dependency = { ecosystem: 'npm', name: `dep-${i}` };
        writes.push(s.rt.graph.upsertProject(dependency), s.rt.graph.addDependency(APP, dependency));
        writes.push(
          s.rt.graph.createContributor({ id: contributorId(i + 1), name: `c${i}` }),
          s.rt.graph.createContribution({
            assetId: ASSET,
            contributorId: contributorId(i + 1),
            costAmount: '1.00',
            coherenceScore: '0.50',
          }),
        );
      }
      await Promise.all(writes);
      await s.rt.mirror.drain();

      expect(await metricSum(s.rt.metrics.registry, METRIC.mirrorFailures)).toBe(0);
      expect(s.rt.outbox.stats().depth).toBe(0);
      const { memory, postgres } = await s.sides();
      expect(postgres).toEqual(memory);
      expect((await s.rt.postgres.graph.getProject(APP))!.dependencyCount).toBe(30);
      expect((await s.rt.postgres.graph.getAsset(ASSET))!.totalCost).toBe('30.00');
    });

    it('a write journaled in dual-write is replayed before PostgreSQL becomes primary, and never over a newer write; while PostgreSQL is down the switch is refused', async () => {
      const s = await open('dual-write', 'sync');
      s.faulty.down = true;
      await s.rt.graph.upsertProject({ ...K, description: 'older' });
      expect(s.rt.outbox.stats().depth).toBe(1);

      const refused = await s.flip('postgres-primary');
      expect(refused.flags.stage).toBe('dual-write');
      expect(refused.refused).toMatch(/1 journaled writes for postgres cannot be replayed yet/);
      // Writes keep going, to memory, while the switch waits.
      const during = await s.rt.graph.upsertProject({ ...K, description: 'during' });
      expect(await s.rt.memory.graph.getProject(K)).toEqual(during);

      s.faulty.down = false;
      const moved = await s.rt.stage.retry();
      expect(moved).toMatchObject({ flags: { stage: 'postgres-primary' } });
      expect(moved.refused).toBeUndefined();
      expect(s.rt.outbox.stats().depth).toBe(0);
      expect(await s.rt.postgres.graph.getProject(K)).toEqual(during);

      const newer = await s.rt.graph.upsertProject({ ...K, description: 'newer' });
      await s.rt.replayer.replayOnce();
      await s.rt.mirror.drain();
      expect(await s.rt.postgres.graph.getProject(K)).toEqual(newer);
      expect(await s.rt.memory.graph.getProject(K)).toEqual(newer);
      expect(await metricSum(s.rt.metrics.registry, METRIC.stageTransitions, { outcome: 'refused' })).toBe(1);
      expect(
        s.logs.filter((line) => line.startsWith('warn') && line.includes('not moving to postgres-primary')),
      ).toHaveLength(1);
    });

    it('a rollback to memory during a PostgreSQL outage waits for the copies toward memory by default; permitted, it goes through with their keys unavailable until they land', async () => {
      // A circuit that, once open, stays open: copies toward memory are journaled, not tried.
      const s = await open('postgres-primary', 'sync', { probeMs: 600_000 });
      const other = await s.rt.graph.upsertProject({ ...APP, description: 'copied to memory' });
      // Copies toward memory journaled (its circuit open), then PostgreSQL, which they are read from, goes down.
      s.rt.mirror.breakerFor('memory').failed();
      const left = await s.rt.graph.upsertProject({ ...K, description: 'acknowledged by PostgreSQL' });
      expect(s.rt.mirror.journaledFor('memory')).toBe(1);
      s.faulty.down = true;

      const waited = await s.flip('dual-write');
      expect(waited.flags.stage).toBe('postgres-primary');
      expect(waited.refused).toMatch(/1 journaled writes for memory cannot be replayed yet/);

      s.rt.stage.permitUnavailable({
        stage: 'dual-write',
        readPercent: 0,
        rolloutGroup: s.rt.stage.current.rolloutGroup,
      });
      const moved = await s.rt.stage.retry();
      s.rt.stage.permitUnavailable(undefined);
      expect(moved.flags.stage).toBe('dual-write');
      // The key whose copy is behind answers 503 (read or write); every other key is served from memory.
      await expect(s.rt.graph.getProject(K)).rejects.toMatchObject({
        name: 'UnavailableError',
        message: expect.stringContaining('project:npm/k waits for a copy toward memory'),
      });
      await expect(s.rt.graph.upsertProject({ ...K, description: 'too early' })).rejects.toMatchObject({
        name: 'UnavailableError',
      });
      expect(await s.rt.graph.getProject(APP)).toEqual(other);
      const served = await s.rt.graph.upsertProject({ ...APP, description: 'written during the outage' });
      // A read of many keys cannot be answered whole yet.
      await expect(s.rt.graph.countProjects()).rejects.toMatchObject({ name: 'UnavailableError' });

      // PostgreSQL answers again (the circuit's probe, which this test holds back, would find it).
      s.faulty.down = false;
      s.rt.mirror.breakerFor('memory').succeeded();
      s.rt.mirror.breakerFor('postgres').succeeded();
      await s.rt.replayer.replayOnce();
      expect(await s.rt.graph.getProject(K)).toEqual(left);
      const after = await s.rt.graph.upsertProject({ ...K, description: 'after the copy landed' });
      await s.rt.replayer.replayOnce();
      expect(await s.rt.graph.countProjects()).toBe(2);
      expect(await s.rt.postgres.graph.getProject(K)).toEqual(after);
      expect(await s.rt.postgres.graph.getProject(APP)).toEqual(served);
      const { memory, postgres } = await s.sides();
      expect(postgres).toEqual(memory);
    });

    it('an outbox entry for the side that is now authoritative is fenced: set aside, counted, never applied', async () => {
      const s = await open('postgres-primary', 'sync');
      const current = await s.rt.graph.upsertProject({ ...K, description: 'current' });
      const stale = { ...current, description: 'stale copy from an older epoch' };
      await s.rt.outbox.append(
        {
          store: 'graph',
          target: 'postgres',
          method: 'upsertProject',
          key: 'project:npm/k',
          records: [{ entity: 'projects', key: ['npm', 'k'], record: stale }],
          epoch: 0,
        },
        'planted',
      );
      await s.rt.mirror.loadJournaled();

      expect(await s.rt.replayer.replayOnce()).toEqual({ replayed: 0, deadLettered: 1 });
      expect(await s.rt.postgres.graph.getProject(K)).toEqual(current);
      expect(s.rt.outbox.stats().depth).toBe(0);
      expect(await metricSum(s.rt.metrics.registry, METRIC.outboxFenced)).toBe(1);
      expect(s.logs.some((line) => line.startsWith('error') && line.includes('fenced'))).toBe(true);
    });

    it('a restart in postgres-primary replays what the last run journaled for PostgreSQL before taking a write, and refuses to start while it cannot', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'dw-restart-'));
      defer(() => rm(dir, { recursive: true, force: true }));
      const outboxPath = join(dir, 'outbox.jsonl');
      // Without the runtime lease: closed while PostgreSQL is down, it could not give the lease
      // up, and the restart would wait out its 15 s lifetime.
      const first = await open('dual-write', 'sync', { outboxPath, lease: false });
      first.faulty.down = true;
      const acknowledged = await first.rt.graph.upsertProject({ ...K, description: 'acknowledged before the restart' });
      expect(first.rt.outbox.stats().depth).toBe(1);
      await first.rt.close();

      // (Without the runtime lease, whose own start would fail first on an unreachable server.)
      await expect(open('postgres-primary', 'sync', { outboxPath, down: true, lease: false })).rejects.toThrow(
        /cannot start in postgres-primary: 1 journaled writes for postgres cannot be replayed yet/,
      );

      const second = await open('postgres-primary', 'sync', { outboxPath });
      expect(second.rt.outbox.stats().depth).toBe(0);
      expect(await second.rt.postgres.graph.getProject(K)).toEqual(acknowledged);
      const newer = await second.rt.graph.upsertProject({ ...K, description: 'newer' });
      await second.rt.replayer.replayOnce();
      expect(await second.rt.postgres.graph.getProject(K)).toEqual(newer);
    });

    for (const mode of MODES) {
      it(`resyncMemory while writes go on leaves memory equal to PostgreSQL, and the rollback it allows keeps every write (${mode})`, async () => {
        const s = await open('postgres-only', mode);
        // One page of the copy (1000 records); the writes below land while it is being written.
        const ref = (n: number) => ({ ecosystem: 'npm', name: `p${String(n).padStart(4, '0')}` });
        for (let n = 0; n < 1000; n++)
          await s.rt.graph.upsertProject({ ...ref(n), description: 'written in postgres-only' });
        const refused = await s.flip('dual-write');
        expect(refused.flags).toMatchObject({ stage: 'postgres-primary', refused: 'memory-stale-after-postgres-only' });

        const resync = s.rt.resyncMemory();
        await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            s.rt.graph.upsertProject({ ...ref(990 + i), description: 'written during the resync' }),
          ),
        );
        await resync;
        await s.rt.mirror.drain();
        const { memory, postgres } = await s.sides();
        expect(memory).toEqual(postgres);
        expect((await s.rt.memory.graph.getProject(ref(999)))!.description).toBe('written during the resync');

        expect((await s.rt.stage.settled()).flags.stage).toBe('dual-write');
        const last = await s.rt.graph.upsertProject({ ...ref(0), description: 'after the rollback' });
        await s.rt.mirror.drain();
        expect(await s.rt.postgres.graph.getProject(ref(0))).toEqual(last);
      });
    }

    it('a transition whose old writes do not land within timeoutMs is refused, keeps the old stage, and goes through once they have', async () => {
      const s = await open('postgres-primary', 'sync', { timeoutMs: 50 });
      await s.rt.graph.upsertProject({ ...K, description: 'v0' });
      const release = s.faulty.stall();
      const stuck = s.rt.graph.upsertProject({ ...K, description: 'stuck' });
      const refused = await s.flip('dual-write');
      expect(refused.flags.stage).toBe('postgres-primary');
      expect(refused.refused).toMatch(/did not settle within 50 ms/);

      release();
      const landed = await stuck;
      const moved = await s.rt.stage.retry();
      expect(moved.flags.stage).toBe('dual-write');
      await s.rt.mirror.drain();
      expect(await s.rt.memory.graph.getProject(K)).toEqual(landed);
      expect(await s.rt.postgres.graph.getProject(K)).toEqual(landed);
    });
  });
}
