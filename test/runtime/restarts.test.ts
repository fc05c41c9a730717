import { describe, expect, it } from 'vitest';
import { MemoryGraphStore } from '../../src/stores/graph/memory-graph-store.js';
import { memoryAtStart } from '../../src/runtime/memory-rebuild.js';
import type { LineageState } from '../../src/postgres/runtime-state/lineage-store.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { dumpSide, useTestRuntimes } from '../support/runtimes.js';

/**
 * A process restarted in the middle of a migration: memory comes back empty, and whatever
 * it was, the runtime rebuilds it from PostgreSQL wherever PostgreSQL has received every
 * acknowledged write, so nothing acknowledged is forgotten and no repair deletes on the
 * word of an emptied memory.
 */

const lineage = (over: Partial<LineageState> = {}): LineageState => ({
  generation: 4,
  stage: 'dual-write',
  postgresCurrentSince: '2026-12-01 10:00:00+00',
  postgresComplete: true,
  changedAt: '2026-12-01 10:00:00+00',
  changedBy: 'test',
  ...over,
});

describe('what a starting process does with its memory (memoryAtStart)', () => {
  const cases: [string, LineageState | undefined, Parameters<typeof memoryAtStart>[1], number | undefined, boolean][] =
    [
      ['no lineage yet: keeps memory', undefined, 'dual-write', undefined, false],
      ['memory-only last in force: keeps memory', lineage({ stage: 'memory-only' }), 'dual-write', undefined, false],
      ['dual-write: rebuilds', lineage(), 'dual-write', undefined, true],
      ['read-shift: rebuilds', lineage({ stage: 'read-shift' }), 'read-shift', undefined, true],
      [
        'postgres-primary: rebuilds the mirrored memory',
        lineage({ stage: 'postgres-primary' }),
        'postgres-primary',
        undefined,
        true,
      ],
      ['postgres-only: memory is not written', lineage({ stage: 'postgres-only' }), 'postgres-only', undefined, false],
      [
        'a rollback across a restart, postgres-only -> dual-write: rebuilds',
        lineage({ stage: 'postgres-only' }),
        'dual-write',
        undefined,
        true,
      ],
      ['memory saved at the current generation: keeps it', lineage(), 'dual-write', 4, false],
      ['memory saved at an older generation: rebuilds', lineage(), 'dual-write', 3, true],
    ];
  for (const [name, state, stage, generation, rebuild] of cases) {
    it(name, () => {
      const decision = memoryAtStart(state, stage, generation);
      expect(decision.rebuild).toBe(rebuild);
      expect(decision.reason).not.toBe('');
    });
  }
});

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`restarts (${factory.name})`, () => {
    const backend = useBackend(factory);
    const runtimes = useTestRuntimes();
    const db = () => backend.current.db!;

    async function writeProjects(rt: Awaited<ReturnType<typeof runtimes.open>>['rt'], count: number): Promise<void> {
      for (let i = 0; i < count; i++)
        await rt.graph.upsertProject({ ecosystem: 'npm', name: `p${i}`, description: `written ${i}` });
    }

    async function postgresProjects(): Promise<number> {
      const [row] = await db().query<{ count: string }>('SELECT count(*) AS count FROM projects');
      return Number(row!.count);
    }

    it('a restart in dual-write rebuilds memory from PostgreSQL before serving, and repair deletes nothing', async () => {
      const first = await runtimes.open({ db: db(), stage: 'dual-write' });
      await writeProjects(first.rt, 20);
      await first.rt.close();

      const second = await runtimes.open({ db: db(), stage: 'dual-write' });
      expect(second.rt.lineage.atStart.rebuild).toBe(true);
      expect(second.rt.lineage.atStart.rebuilt?.records).toBe(20);
      expect(second.logs.some((line) => line.includes('memory rebuilt from PostgreSQL: 20 records'))).toBe(true);
      expect((await second.rt.graph.getProject({ ecosystem: 'npm', name: 'p7' }))?.description).toBe('written 7');
      const report = await second.rt.verifyNow({ reason: 'after the restart', principal: 'test', repair: true });
      expect(report?.consistent).toBe(true);
      expect(await postgresProjects()).toBe(20);
      expect(second.rt.rollbackSafety().safe).toBe(true);
    });

    it('the background verifier with repair on, right after a restart, leaves PostgreSQL whole', async () => {
      const first = await runtimes.open({ db: db(), stage: 'read-shift', readPercent: 50 });
      await writeProjects(first.rt, 20);
      await first.rt.close();
      const second = await runtimes.open({
        db: db(),
        stage: 'read-shift',
        readPercent: 50,
        verifier: { repair: true },
      });
      await second.rt.verifier.runOnce();
      expect(second.rt.verifier.lastReport?.consistent).toBe(true);
      expect(await postgresProjects()).toBe(20);
      expect(await dumpSide(second.rt, 'memory')).toEqual(await dumpSide(second.rt, 'postgres'));
    });

    it('a restart in postgres-primary rebuilds the memory a rollback would go back to', async () => {
      const first = await runtimes.open({ db: db(), stage: 'dual-write' });
      await writeProjects(first.rt, 5);
      first.source.set({ stage: 'postgres-primary' });
      await first.rt.stage.settled();
      await first.rt.graph.upsertProject({
        ecosystem: 'npm',
        name: 'p0',
        description: 'rewritten in postgres-primary',
      });
      await first.rt.close();

      const second = await runtimes.open({ db: db(), stage: 'postgres-primary' });
      expect(second.rt.lineage.atStart.rebuild).toBe(true);
      expect((await second.rt.memory.graph.getProject({ ecosystem: 'npm', name: 'p0' }))?.description).toBe(
        'rewritten in postgres-primary',
      );
      second.source.set({ stage: 'dual-write' });
      await second.rt.stage.settled();
      expect(second.rt.stage.current.stage).toBe('dual-write');
      expect((await second.rt.graph.getProject({ ecosystem: 'npm', name: 'p0' }))?.description).toBe(
        'rewritten in postgres-primary',
      );
    });

    it('memory proven current by its generation is kept; one saved before another start is rebuilt', async () => {
      const saved = new MemoryGraphStore();
      const first = await runtimes.open({ db: db(), stage: 'dual-write', memory: { graph: saved } });
      await writeProjects(first.rt, 3);
      await first.rt.close();
      const generation = first.rt.lineage.current!.generation;
      // The saved memory also holds a record PostgreSQL lacks (kept on purpose: the proof says memory is current).
      await saved.putRecord('projects', {
        ...(await saved.getProject({ ecosystem: 'npm', name: 'p0' }))!,
        description: 'only in the snapshot',
      });

      const proven = await runtimes.open({
        db: db(),
        stage: 'dual-write',
        memory: { graph: saved },
        memoryGeneration: generation,
      });
      expect(proven.rt.lineage.atStart.rebuild).toBe(false);
      expect((await proven.rt.graph.getProject({ ecosystem: 'npm', name: 'p0' }))?.description).toBe(
        'only in the snapshot',
      );
      await proven.rt.close();

      const stale = await runtimes.open({
        db: db(),
        stage: 'dual-write',
        memory: { graph: saved },
        memoryGeneration: generation,
      });
      expect(stale.rt.lineage.atStart.rebuild).toBe(true);
      expect((await stale.rt.graph.getProject({ ecosystem: 'npm', name: 'p0' }))?.description).toBe('written 0');
    });

    it("never deletes on an incomplete side's word: the background repair leaves it alone, an operator's repair withholds deletions until confirmed, and undo puts them back", async () => {
      const { rt, logs } = await runtimes.open({
        db: db(),
        stage: 'dual-write',
        verifier: { repair: true, graceMs: 0 },
      });
      await writeProjects(rt, 20);
      // Memory emptied behind the runtime's back (what a restart without the rebuild did).
      rt.memory.graph.clear();

      const found = (await rt.verifier.runOnce())!;
      expect(found.incomplete).toEqual([{ store: 'graph', entity: 'projects', side: 'memory', missing: 20, of: 20 }]);
      expect(rt.verifier.lastRepairs).toEqual([]);
      expect(
        logs.some((line) =>
          line.startsWith('warn dualwrite: not repairing automatically: memory misses 20 of 20 graph.projects'),
        ),
      ).toBe(true);
      expect(await rt.metrics.registry.getSingleMetricAsString('dualwrite_verify_side_incomplete')).toContain(
        'dualwrite_verify_side_incomplete{entity="graph.projects",side="memory"} 1',
      );
      expect(rt.rollbackSafety()).toMatchObject({ safe: false, detail: expect.stringContaining('memory incomplete') });
      expect(await postgresProjects()).toBe(20);

      await rt.verifyNow({ repair: true, reason: 'try', principal: 'ops' });
      expect(rt.verifier.lastRepairs.map((r) => r.outcome)).toEqual(Array(20).fill('withheld_delete'));
      expect(await postgresProjects()).toBe(20);

      await rt.verifyNow({ repair: true, allowDeletes: 20, reason: 'memory is right', principal: 'ops' });
      expect(await postgresProjects()).toBe(0);
      const undone = await rt.undoRepair(rt.verifier.lastRepairRunId!, { reason: 'it was not', principal: 'ops' });
      expect(undone).toMatchObject({ undone: 20, skippedNewer: 0 });
      expect(await postgresProjects()).toBe(20);
      expect((await rt.postgres.graph.getProject({ ecosystem: 'npm', name: 'p3' }))?.description).toBe('written 3');
    });

    it('after memory-only ran, a restarted process still refuses PostgreSQL reads until a resync', async () => {
      const first = await runtimes.open({ db: db(), stage: 'memory-only' });
      await writeProjects(first.rt, 3);
      first.source.set({ stage: 'dual-write' });
      await first.rt.stage.settled();
      await first.rt.close();

      await first.rt.graph.upsertProject({ ecosystem: 'npm', name: 'mirrored', description: 'written in dual-write' });
      await first.rt.close();

      // What memory-only alone held went with the process; what dual-write mirrored comes back.
      const second = await runtimes.open({ db: db(), stage: 'read-shift', readPercent: 100 });
      expect(second.rt.lineage.atStart.rebuilt?.records).toBe(1);
      expect(second.rt.stage.current).toMatchObject({
        stage: 'dual-write',
        refused: 'postgres-stale-after-memory-only',
      });
      await second.rt.resyncPostgres();
      await second.rt.stage.settled();
      expect(second.rt.stage.current.stage).toBe('read-shift');
      expect(second.rt.lineage.current?.postgresComplete).toBe(true);
    });
  });
}
