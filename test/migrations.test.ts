import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadMigrations, migrate, MigrationError, SCHEMA_DIR } from '../src/postgres/migrations.js';
import type { PgliteExecutor } from '../src/postgres/pglite-executor.js';
import { openPglite } from './support/pglite.js';
import type { SqlExecutor } from '../src/postgres/sql-executor.js';
import { availableBackends, openPostgresSchema, type BackendName } from './support/backends.js';

const INITIAL = '001_initial_schema.sql';
const SCHEMA_TABLES = [
  'agent_tasks',
  'assets',
  'contributions',
  'contributors',
  'dualwrite_audit_events',
  'dualwrite_backfill_progress',
  'dualwrite_lineage',
  'dualwrite_repairs',
  'dualwrite_runtime_lease',
  'dualwrite_schema_migrations',
  'events',
  'file_locks',
  'graph_job_events',
  'graph_jobs',
  'node_reputation',
  'nodes',
  'peer_validations',
  'project_dependencies',
  'projects',
  'task_executions',
  'task_locks',
  'tasks',
];
/** The migrations shipped in schema/, in order. */
const SHIPPED = [
  { version: 1, name: INITIAL },
  { version: 2, name: '002_repair_log.sql' },
  { version: 3, name: '003_runtime_lease.sql' },
  { version: 4, name: '004_audit_events.sql' },
  { version: 5, name: '005_least_privilege_support.sql' },
  { version: 6, name: '006_graph_jobs.sql' },
  { version: 7, name: '007_dispatch.sql' },
  { version: 8, name: '008_scheduler.sql' },
  { version: 9, name: '009_lineage.sql' },
];
const SHIPPED_VERSIONS = SHIPPED.map((m) => m.version);

/** A database to migrate: a fresh schema in each test, `schema` being where tables land. */
interface Target {
  db: SqlExecutor;
  schema: string;
}

/** PGlite: one instance per describe block, its public schema recreated before each test. */
function usePglite(): { current: Target } {
  const handle = {} as { current: Target };
  let db: PgliteExecutor;
  beforeAll(async () => {
    db = await openPglite();
  });
  beforeEach(async () => {
    await db.execScript('DROP SCHEMA public CASCADE; CREATE SCHEMA public;');
    handle.current = { db, schema: 'public' };
  });
  afterAll(async () => {
    await db?.close();
  });
  return handle;
}

/** PostgreSQL: a new schema (first on the search_path) for each test, dropped after it. */
function usePostgres(): { current: Target } {
  const handle = {} as { current: Target };
  let drop: (() => Promise<void>) | undefined;
  beforeEach(async () => {
    const opened = await openPostgresSchema('dw_migrations');
    drop = opened.drop;
    handle.current = { db: opened.db, schema: opened.schema };
  });
  afterEach(async () => {
    await drop?.();
    drop = undefined;
  });
  return handle;
}

const TARGETS: Partial<Record<BackendName, () => { current: Target }>> = { pglite: usePglite, postgres: usePostgres };

async function tablesOf(target: Target): Promise<string[]> {
  const rows = await target.db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name`,
    [target.schema],
  );
  return rows.map((row) => row.table_name);
}

/** Everything a migration run may change: the tables and the rows recording applied migrations. */
async function stateOf(target: Target) {
  const tables = await tablesOf(target);
  const recorded = tables.includes('dualwrite_schema_migrations')
    ? await target.db.query(
        'SELECT version, name, checksum, applied_at FROM dualwrite_schema_migrations ORDER BY version',
      )
    : [];
  return { tables, recorded };
}

const temporaryDirs: string[] = [];
afterAll(async () => {
  await Promise.all(temporaryDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A copy of schema/ plus `extra` files (name → content); `edit` may change the copied 001. */
async function migrationDir(extra: Record<string, string>, edit?: (initial: Buffer) => Buffer): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dw-migrations-'));
  temporaryDirs.push(dir);
  await cp(SCHEMA_DIR, dir, { recursive: true });
  if (edit) await writeFile(join(dir, INITIAL), edit(await readFile(join(dir, INITIAL))));
  for (const [name, sql] of Object.entries(extra)) await writeFile(join(dir, name), sql);
  return dir;
}

const versions = (migrations: readonly { version: number }[]) => migrations.map((m) => m.version);

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`migration runner on ${factory.name}`, () => {
    const target = TARGETS[factory.name]!();

    it('creates every table from schema/ and records each file with the sha256 of its bytes', async () => {
      const report = await migrate(target.current.db, await loadMigrations());
      expect(versions(report.applied)).toEqual(SHIPPED_VERSIONS);
      expect(report.alreadyApplied).toEqual([]);
      expect(await tablesOf(target.current)).toEqual(SCHEMA_TABLES);
      const expected = await Promise.all(
        SHIPPED.map(async ({ version, name }) => ({
          version,
          name,
          checksum: createHash('sha256')
            .update(await readFile(join(SCHEMA_DIR, name)))
            .digest('hex'),
        })),
      );
      expect(
        await target.current.db.query(
          'SELECT version, name, checksum FROM dualwrite_schema_migrations ORDER BY version',
        ),
      ).toEqual(expected);
    });

    it('changes nothing when run again with nothing pending', async () => {
      const migrations = await loadMigrations();
      await migrate(target.current.db, migrations);
      await target.current.db.query(`INSERT INTO projects (ecosystem, name) VALUES ('npm', 'kept')`);
      const before = await stateOf(target.current);
      const report = await migrate(target.current.db, migrations);
      expect(report.applied).toEqual([]);
      expect(versions(report.alreadyApplied)).toEqual(SHIPPED_VERSIONS);
      expect(await stateOf(target.current)).toEqual(before);
      expect(await target.current.db.query('SELECT name FROM projects')).toEqual([{ name: 'kept' }]);
    });

    it('applies only the new migration when a later file is added', async () => {
      await migrate(target.current.db, await loadMigrations());
      const dir = await migrationDir({
        '900_add_notes.sql': 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);',
      });
      const report = await migrate(target.current.db, await loadMigrations(dir));
      expect(versions(report.applied)).toEqual([900]);
      expect(versions(report.alreadyApplied)).toEqual(SHIPPED_VERSIONS);
      expect(await tablesOf(target.current)).toEqual([...SCHEMA_TABLES, 'notes'].sort());
      expect(
        await target.current.db.query('SELECT version, name FROM dualwrite_schema_migrations ORDER BY version'),
      ).toEqual([...SHIPPED, { version: 900, name: '900_add_notes.sql' }]);
    });

    it('refuses to run when an applied file changed by one byte, naming it and changing nothing', async () => {
      await migrate(target.current.db, await loadMigrations());
      const before = await stateOf(target.current);
      // "-- dualwrite" becomes "-- Dualwrite"; a pending 900 must not be applied either.
      const dir = await migrationDir({ '900_add_notes.sql': 'CREATE TABLE notes (id INTEGER);' }, (initial) => {
        const tampered = Buffer.from(initial);
        tampered[3] = tampered[3]! ^ 0x20;
        return tampered;
      });
      const run = migrate(target.current.db, await loadMigrations(dir));
      await expect(run).rejects.toThrow(MigrationError);
      await expect(run).rejects.toThrow(INITIAL);
      expect(await stateOf(target.current)).toEqual(before);
    });

    it('rolls back a failing migration entirely: no row recorded and no partial table', async () => {
      await migrate(target.current.db, await loadMigrations());
      const before = await stateOf(target.current);
      const dir = await migrationDir({
        '900_broken.sql': 'CREATE TABLE partial_table (id INTEGER);\nINSERT INTO no_such_table VALUES (1);',
      });
      await expect(migrate(target.current.db, await loadMigrations(dir))).rejects.toMatchObject({ code: '42P01' });
      expect(await stateOf(target.current)).toEqual(before);
      expect(await tablesOf(target.current)).not.toContain('partial_table');
    });

    it('rolls back the earlier migrations of the same run when a later one fails', async () => {
      const dir = await migrationDir({ '900_broken.sql': 'CREATE TABLE partial_table (id INTEGER);\nSELECT 1/0;' });
      await expect(migrate(target.current.db, await loadMigrations(dir))).rejects.toMatchObject({ code: '22012' });
      expect(await stateOf(target.current)).toEqual({ tables: [], recorded: [] });
    });

    it('applies each migration once when two runners start together', async () => {
      const migrations = await loadMigrations();
      const reports = await Promise.all([
        migrate(target.current.db, migrations),
        migrate(target.current.db, migrations),
      ]);
      expect(reports.map((report) => versions(report.applied)).sort()).toEqual([[], SHIPPED_VERSIONS]);
      expect(await target.current.db.query('SELECT version FROM dualwrite_schema_migrations ORDER BY version')).toEqual(
        SHIPPED_VERSIONS.map((version) => ({ version })),
      );
    });
  });
}

describe('loadMigrations', () => {
  it('reads schema/ as its numbered files, in version order', async () => {
    const migrations = await loadMigrations();
    expect(migrations.map(({ version, name }) => ({ version, name }))).toEqual(SHIPPED);
  });

  it.each([
    ['001_initial_schema.sql', '001_other.sql'],
    ['900_a.sql', '0900_b.sql'],
  ])('rejects two files with the same version (%s and %s), naming both', async (first, second) => {
    const dir = await migrationDir({ [first]: 'SELECT 1;', [second]: 'SELECT 2;' });
    const loading = loadMigrations(dir);
    await expect(loading).rejects.toThrow(MigrationError);
    await expect(loading).rejects.toThrow(new RegExp(`(${first}.*${second})|(${second}.*${first})`));
  });
});
