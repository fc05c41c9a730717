import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DISPATCH_ENTITY_NAMES,
  type DispatchEntity,
  type DispatchRecords,
} from '../../src/stores/dispatch/dispatch-records.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import type { DispatchStore } from '../../src/stores/dispatch/dispatch-store.js';
import type { RecordPort } from '../../src/ports/record-port.js';
import { readAll } from '../../src/ports/record-scan.js';
import type { Stage } from '../../src/ports/stage.js';
import { type SqliteDatabase } from '../../src/sqlite/better-sqlite3.js';
import { openDispatchDatabase } from '../../src/stores/dispatch/sqlite-dispatch-database.js';
import { generateDispatchDb } from '../support/generate-dispatch-db.js';
import { SqliteDispatchStore } from '../../src/stores/dispatch/sqlite-dispatch-store.js';
import { DISPATCH_DEFINITION } from '../../src/stores/dispatch/dispatch-store-definition.js';
import { PROGRESS_TABLE } from '../../verifier/backfill.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { DISPATCH_TABLE_LIST } from '../support/dispatch-backends.js';
import { useTestRuntimes } from '../support/runtimes.js';

/**
 * The dispatch app's SQLite file as the old side of a whole rollout: SQLite authoritative
 * alone, then mirrored to PostgreSQL, reads shifted, PostgreSQL authoritative and back,
 * with writes at every stage and the verifier finding both sides equal after each.
 */

async function dump(port: RecordPort<DispatchRecords>): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const entity of DISPATCH_ENTITY_NAMES)
    out[entity] = await readAll<DispatchRecords, DispatchEntity>(port, entity);
  return out;
}

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`a dispatch.db through the rollout and back, on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const runtimes = useTestRuntimes();
    let dir: string;
    let db: SqlExecutor;
    let file: SqliteDatabase;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'dw-dispatch-rollout-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });
    beforeEach(async () => {
      db = backend.current.db!;
      await db.query(`TRUNCATE ${DISPATCH_TABLE_LIST} RESTART IDENTITY`);
      await db.query(`DELETE FROM ${PROGRESS_TABLE}`);
      file = openDispatchDatabase(join(dir, `dispatch-${Date.now()}.db`));
      generateDispatchDb(file, { tasks: 40 });
      runtimes.defer(async () => file.close());
    });

    it('keeps SQLite and PostgreSQL equal from memory-only to postgres-primary and back to dual-write', async () => {
      const { clock, ids } = backend.current;
      const sqlite = new SqliteDispatchStore(file, { clock, ids });
      const { rt, source } = await runtimes.open({
        db,
        stage: 'memory-only',
        context: { clock, ids },
        stores: [DISPATCH_DEFINITION],
        memory: { dispatch: sqlite },
        mirror: { mode: 'sync' },
        verifier: { graceMs: 0 },
      });
      const dispatch = rt.store(DISPATCH_DEFINITION);
      expect(dispatch.memory).toBe(sqlite);
      const store: DispatchStore = dispatch.dual;
      const flip = async (stage: Stage, readPercent = 0) => {
        source.set({ stage, readPercent });
        expect((await rt.stage.settled()).flags.stage).toBe(stage);
      };
      const clean = async () => {
        const report = (await rt.verifier.runOnce())!;
        expect(report.entities.map((e) => [e.entity, e.rowsMemory === e.rowsPostgres, e.differences])).toEqual(
          DISPATCH_ENTITY_NAMES.map((entity) => [
            entity,
            true,
            { missing_in_postgres: 0, missing_in_memory: 0, fields_differ: 0 },
          ]),
        );
        expect(report.consistent).toBe(true);
        expect(await dump(dispatch.postgres)).toEqual(await dump(sqlite));
      };

      // memory-only: SQLite alone, as the app runs today.
      await store.createTask({
        id: 'N-memory-only',
        project: 'dispatch',
        specFile: 'specs/a.md',
        dependsOn: ['T0000001'],
      });
      await store.claimTask('T0000000', { node: 'node-1' });
      expect(await dispatch.postgres.getTask('N-memory-only')).toBeNull();

      // dual-write: PostgreSQL gets what SQLite held before, then every write.
      await flip('dual-write');
      const { backfill, verify } = await rt.resyncPostgres({ batchSize: 50 });
      expect(backfill.countsMatch).toBe(true);
      expect(verify.consistent).toBe(true);
      await clean();
      await store.createTask({
        id: 'N-dual-write',
        project: 'dispatch',
        specFile: 'specs/b.md',
        modifies: { files: ['x.ts'] },
      });
      expect((await store.claimTask('N-dual-write', { node: 'node-2', leaseSeconds: 30 })).updated).toBe(true);
      expect((await store.claimTask('N-dual-write', { node: 'node-3' })).updated).toBe(false);
      await clean();

      // read-shift: reads from PostgreSQL, SQLite still authoritative.
      await flip('read-shift', 100);
      await db.query(`UPDATE tasks SET error = 'only in PostgreSQL' WHERE id = 'T0000006'`);
      expect((await store.getTask('T0000006'))!.error).toBe('only in PostgreSQL');
      await db.query(`UPDATE tasks SET error = NULL WHERE id = 'T0000006'`);
      await store.updateTask('N-dual-write', { status: 'running', pid: 77 }, { expectedStatus: 'claimed' });
      expect((await store.listTasks({ status: 'running' })).map((t) => t.id)).toContain('N-dual-write');
      await clean();

      // postgres-primary: PostgreSQL authoritative, SQLite mirrored.
      await flip('postgres-primary');
      await store.createTask({ id: 'N-postgres-primary', project: 'dispatch', specFile: 'specs/c.md' });
      await store.updateTask(
        'N-dual-write',
        { status: 'completed', durationSeconds: 12.5 },
        { expectedStatus: 'running' },
      );
      await clean();
      expect(await sqlite.getTask('N-postgres-primary')).toEqual(await dispatch.postgres.getTask('N-postgres-primary'));

      // Rollback: SQLite authoritative again, nothing lost.
      await flip('dual-write');
      await store.createTask({ id: 'N-after-rollback', project: 'dispatch', specFile: 'specs/d.md' });
      await store.claimTask('N-postgres-primary', { node: 'node-4' });
      await clean();

      // The file holds it all: a store opened afresh on it reads what both sides hold.
      const reopened = new SqliteDispatchStore(file);
      expect(await dump(reopened)).toEqual(await dump(dispatch.postgres));
      expect((await reopened.listTasks({ project: 'dispatch', limit: 1000 })).map((t) => t.id)).toEqual([
        'N-after-rollback',
        'N-dual-write',
        'N-memory-only',
        'N-postgres-primary',
      ]);
      expect((await reopened.getTask('N-dual-write'))!).toMatchObject({
        status: 'completed',
        durationSeconds: 12.5,
        attempt: 1,
      });
    });
  });
}
