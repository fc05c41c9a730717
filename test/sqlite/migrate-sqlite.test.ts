import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DISPATCH_ENTITY_NAMES,
  type DispatchEntity,
  type DispatchRecords,
} from '../../src/stores/dispatch/dispatch-records.js';
import { PostgresDispatchStore } from '../../src/stores/dispatch/postgres-dispatch-store.js';
import { readAll } from '../../src/ports/record-scan.js';
import { type SqliteDatabase } from '../../src/sqlite/better-sqlite3.js';
import { openDispatchDatabase } from '../../src/stores/dispatch/sqlite-dispatch-database.js';
import { generateDispatchDb } from '../support/generate-dispatch-db.js';
import { migrateSqlite } from '../../src/stores/dispatch/migrate-sqlite.js';
import { SqliteDispatchStore } from '../../src/stores/dispatch/sqlite-dispatch-store.js';
import { openTestDatabase, postgresAvailable, runCli, type TestDatabase } from '../cli/cli-harness.js';
import { availableDispatchBackends, DISPATCH_TABLE_LIST, useDispatchBackend } from '../support/dispatch-backends.js';

const TASKS = 60;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dw-migrate-sqlite-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let files = 0;
/** A dispatch.db file with TASKS generated tasks, plus whatever `damage` does to it. */
function dispatchFile(damage: (db: SqliteDatabase) => void = () => {}): string {
  const path = join(dir, `dispatch-${files++}.db`);
  const db = openDispatchDatabase(path);
  generateDispatchDb(db, { tasks: TASKS, firstEventId: 1000 });
  damage(db);
  db.close();
  return path;
}

/** Cells PostgreSQL cannot take as they are, one kind per row. */
function injectInvalidCells(db: SqliteDatabase): void {
  db.prepare(`UPDATE tasks SET started_at = '2026-13-01 00:00:00' WHERE id = 'T0000001'`).run();
  db.prepare(`UPDATE tasks SET depends_on = '["T0000001",' WHERE id = 'T0000002'`).run();
  db.prepare(`UPDATE tasks SET completed_at = 'yesterday', modifies = '{not json}' WHERE id = 'T0000003'`).run();
  db.prepare(`UPDATE events SET timestamp = 'now' WHERE id = 1005`).run();
  db.prepare(`UPDATE nodes SET slots = 1099511627776 WHERE name = 'node-2'`).run();
  db.prepare(`UPDATE file_locks SET locked_at = '2026-01-01T00:00:00.1234567Z' WHERE task_id = 'T0000003'`).run();
}

async function sides(path: string, postgres: PostgresDispatchStore) {
  const sqlite = openDispatchDatabase(path, { readonly: true });
  try {
    const store = new SqliteDispatchStore(sqlite);
    const out: Record<string, { sqlite: unknown[]; postgres: unknown[] }> = {};
    for (const entity of DISPATCH_ENTITY_NAMES) {
      out[entity] = {
        sqlite: await readAll<DispatchRecords, DispatchEntity>(store, entity),
        postgres: await readAll<DispatchRecords, DispatchEntity>(postgres, entity),
      };
    }
    return out;
  } finally {
    sqlite.close();
  }
}

for (const factory of availableDispatchBackends(['pglite', 'postgres'])) {
  describe(`migrateSqlite into ${factory.name}`, () => {
    const backend = useDispatchBackend(factory);
    let postgres: PostgresDispatchStore;
    beforeEach(() => {
      postgres = backend.current.store as PostgresDispatchStore;
    });
    const migrate = (path: string, batchSize = 25) => {
      const sqlite = openDispatchDatabase(path, { readonly: true });
      return migrateSqlite(sqlite, backend.current.db!, { batchSize }).finally(() => sqlite.close());
    };

    it('copies every table in batches, counts match, records equal on both sides, dates to the microsecond', async () => {
      const path = dispatchFile();
      const progress: string[] = [];
      const sqlite = openDispatchDatabase(path, { readonly: true });
      const report = await migrateSqlite(sqlite, backend.current.db!, {
        batchSize: 25,
        onProgress: (e) => progress.push(`${e.table} ${e.rowsDone}/${e.rows}`),
      }).finally(() => sqlite.close());

      expect(
        report.tables.map((t) => [
          t.table,
          t.sqliteRows,
          t.inserted,
          t.alreadyPresent,
          t.invalidRows,
          t.postgresRows,
          t.countsMatch,
        ]),
      ).toEqual([
        ['tasks', 60, 60, 0, 0, 60, true],
        ['file_locks', 20, 20, 0, 0, 20, true],
        ['nodes', 8, 8, 0, 0, 8, true],
        ['events', 120, 120, 0, 0, 120, true],
        ['node_reputation', 8, 8, 0, 0, 8, true],
        ['peer_validations', 12, 12, 0, 0, 12, true],
      ]);
      expect(report.countsMatch).toBe(true);
      expect(report.invalidCells).toEqual([]);
      expect(progress).toEqual(expect.arrayContaining(['tasks 25/60', 'tasks 50/60', 'tasks 60/60', 'events 120/120']));
      for (const [entity, both] of Object.entries(await sides(path, postgres)))
        expect(both.postgres, entity).toEqual(both.sqlite);
      // Python's isoformat() microseconds survive (records keep milliseconds; the column keeps them all).
      const [row] = await backend.current.db!.query<{ at: string }>(
        `SELECT to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS at FROM tasks WHERE id = 'T0000001'`,
      );
      expect(row!.at).toBe(`2026-01-01 00:00:01.${String(7919).padStart(6, '0')}`);
    });

    it('is idempotent: a re-run inserts nothing and changes nothing', async () => {
      const path = dispatchFile();
      await migrate(path);
      const before = await sides(path, postgres);
      const again = await migrate(path, 7);
      expect(again.totals).toEqual({ sqliteRows: 228, inserted: 0, alreadyPresent: 228, invalidRows: 0 });
      expect(again.countsMatch).toBe(true);
      expect(await sides(path, postgres)).toEqual(before);
    });

    it('sets the SERIAL sequences past the copied ids, never back', async () => {
      const report = await migrate(dispatchFile());
      expect(report.sequences).toEqual([
        { table: 'events', column: 'id', next: 1121 },
        { table: 'peer_validations', column: 'id', next: 13 },
      ]);
      const [event] = await backend.current.db!.query<{ id: number }>(
        `INSERT INTO events (timestamp, event_type) VALUES (now(), 'after') RETURNING id`,
      );
      expect(event!.id).toBe(1121);
      await backend.current.db!.query(`DELETE FROM events WHERE id > 1100`);
      expect((await migrate(dispatchFile())).sequences[0]).toEqual({ table: 'events', column: 'id', next: 1122 });
    });

    it('reports each invalid cell with table, key and column, copies none of their rows, alters nothing, and says the counts differ', async () => {
      const report = await migrate(dispatchFile(injectInvalidCells));
      expect(report.invalidCells.map((c) => [c.table, c.key, c.column, c.value])).toEqual([
        ['tasks', ['T0000001'], 'started_at', '2026-13-01 00:00:00'],
        ['tasks', ['T0000002'], 'depends_on', '["T0000001",'],
        ['tasks', ['T0000003'], 'completed_at', 'yesterday'],
        ['tasks', ['T0000003'], 'modifies', '{not json}'],
        ['file_locks', ['src/module-3.ts', 'T0000003'], 'locked_at', '2026-01-01T00:00:00.1234567Z'],
        ['nodes', ['node-2'], 'slots', '1099511627776'],
        ['events', ['1005'], 'timestamp', 'now'],
      ]);
      expect(report.invalidCells.find((c) => c.column === 'depends_on')!.problem).toMatch(
        /^dependsOn: is not valid JSON/,
      );
      expect(report.invalidCells.find((c) => c.column === 'slots')!.problem).toMatch(/32-bit integer/);
      expect(report.tables.map((t) => [t.table, t.invalidRows, t.countsMatch])).toEqual([
        ['tasks', 3, false],
        ['file_locks', 1, false],
        ['nodes', 1, false],
        ['events', 1, false],
        ['node_reputation', 0, true],
        ['peer_validations', 0, true],
      ]);
      expect(report.countsMatch).toBe(false);
      const ids = (await readAll<DispatchRecords, 'tasks'>(postgres, 'tasks')).map((t) => t.id);
      expect(ids).toHaveLength(57);
      expect(ids).not.toContain('T0000001');
      expect(await postgres.getRecord('nodes', ['node-2'])).toBeNull();
      expect(await postgres.getRecord('events', ['0000001005'])).toBeNull();
      expect(await postgres.getRecord('events', ['0000001006'])).not.toBeNull();
    });
  });
}

describe.runIf(postgresAvailable())('dualwrite migrate-sqlite (the CLI, on PostgreSQL)', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await openTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('copies with a table for people, exits 0; a re-run says nothing was inserted; --json reports invalid cells and exits 1; a missing file is a usage error', async () => {
    const path = dispatchFile();
    const first = await runCli(['migrate-sqlite', '--from', path, '--batch-size', '50'], database.env);
    expect(first.stderr).toMatch(/migrate-sqlite tasks: 100% \(60\/60 rows\)/);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^tasks\s+60\s+60\s+60\s+0\s+0\s+match$/m);
    expect(first.stdout).toMatch(/^events\s+120\s+120\s+120\s+0\s+0\s+match$/m);

    const again = await runCli(['migrate-sqlite', '--from', path], database.env);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('nothing to insert: every row is already in PostgreSQL');

    await database.db.query(`TRUNCATE ${DISPATCH_TABLE_LIST}`);
    const damaged = await runCli(
      ['migrate-sqlite', '--from', dispatchFile(injectInvalidCells), '--json'],
      database.env,
    );
    expect(damaged.code).toBe(1);
    const report = JSON.parse(damaged.stdout) as {
      countsMatch: boolean;
      invalidCells: { table: string; key: string[]; column: string }[];
    };
    expect(report.countsMatch).toBe(false);
    expect(report.invalidCells).toHaveLength(7);
    expect(report.invalidCells[0]).toMatchObject({ table: 'tasks', key: ['T0000001'], column: 'started_at' });
    expect(damaged.stderr).toBe('');

    const missing = await runCli(['migrate-sqlite', '--from', join(dir, 'absent.db')], database.env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no such file');
  }, 120_000);
});
