import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadMigrations, migrate } from '../../src/postgres/migrations.js';
import { PgPoolExecutor } from '../../src/postgres/pg-pool-executor.js';
import { poolOptionsFromEnv } from '../../src/runtime/config.js';
import { openDualWrite } from '../../src/runtime/open-dual-write.js';
import { openPostgresSchema } from '../support/backends.js';
import { canRun, unsetVariable } from '../support/service-available.js';

/**
 * schema/roles/least-privilege.sql: the application runs as a role that can read and write
 * dualwrite's tables and nothing else; the owner runs the migrations. The runtime's write,
 * read, verify, repair and audit paths work as that role; DDL, TRUNCATE and rewriting the
 * audit trail are refused by PostgreSQL.
 */
const available = canRun('the least-privilege test', unsetVariable('DATABASE_URL'));

describe.runIf(available)('the least-privilege application role', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('runs the write, read, verify, repair, backfill and audit paths, and is refused DDL, TRUNCATE and audit rewrites', async () => {
    const owned = await openPostgresSchema('dw_lp');
    cleanups.push(() => owned.drop());
    await migrate(owned.db, await loadMigrations());
    const role = `dw_app_${randomBytes(4).toString('hex')}`;
    cleanups.push(() =>
      owned.db
        .query(`DROP OWNED BY ${role}; DROP ROLE IF EXISTS ${role}`)
        .catch(() => owned.db.execScript(`DROP OWNED BY ${role}; DROP ROLE IF EXISTS ${role}`)),
    );
    const script = await readFile('schema/roles/least-privilege.sql', 'utf8');
    await owned.db.transaction(async (tx) => {
      await tx.query(`SELECT set_config('dualwrite.app_role', $1, true)`, [role]);
      await tx.execScript(script);
    });

    const url = new URL(process.env.DATABASE_URL!);
    url.username = role;
    url.password = '';
    const dir = await mkdtemp(join(tmpdir(), 'dw-lp-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const rt = await openDualWrite({
      db: url.toString(),
      env: {
        POSTGRES_SCHEMA: owned.schema,
        DUAL_WRITE_MODE: 'dual-write',
        DUALWRITE_FLAGS_FILE: join(dir, 'flags.json'),
        DUALWRITE_LAST_FLAGS_PATH: join(dir, 'last.json'),
        DUALWRITE_OUTBOX_PATH: join(dir, 'outbox.jsonl'),
        DUALWRITE_VERIFY_INTERVAL_MS: '0',
      },
      logger: { info() {}, warn() {}, error() {} },
    });
    cleanups.push(() => rt.close());
    const react = await rt.graph.upsertProject({ ecosystem: 'npm', name: 'react', description: 'UI' });
    const ada = await rt.graph.createContributor({ name: 'Ada' });
    expect(await rt.postgres.graph.getProject(react)).toEqual(react);
    await owned.db.query(`UPDATE contributors SET name = 'Not Ada'`);
    const repaired = await rt.verifyNow({ reason: 'least privilege', principal: 'test', repair: true });
    expect(repaired!.consistent).toBe(false);
    expect(await rt.postgres.graph.getContributor(ada.id)).toEqual(ada);
    expect((await rt.verifyNow({ reason: 'after the repair', principal: 'test' }))!.consistent).toBe(true);
    // The backfill copies through a temporary staging table: the role may create those.
    await owned.db.query('DELETE FROM contributors');
    const { backfill } = await rt.resyncPostgres();
    expect(backfill.totals.copied).toBe(1);
    expect(await rt.postgres.graph.getContributor(ada.id)).toEqual(ada);
    expect((await rt.audit.list()).map((event) => event.reason)).toContain('least privilege');
    // The purge runs with the owner's rights: allowed, and nothing is old enough to go.
    expect(await rt.audit.purge(90, { uid: 'test', username: 'test', type: 'user' }, 'retention')).toBe(0);

    const app = new PgPoolExecutor({
      ...poolOptionsFromEnv({ DATABASE_URL: url.toString() }),
      schema: owned.schema,
      minSize: 0,
      poolSize: 1,
      maxOverflow: 0,
    });
    cleanups.push(() => app.close());
    for (const sql of [
      'DROP TABLE projects',
      'TRUNCATE projects',
      'CREATE TABLE smuggled (id INTEGER)',
      'ALTER TABLE projects ADD COLUMN smuggled TEXT',
      "UPDATE dualwrite_audit_events SET reason = 'rewritten'",
      'DELETE FROM dualwrite_audit_events',
      'TRUNCATE dualwrite_audit_events',
      "INSERT INTO dualwrite_schema_migrations (version, name, checksum) VALUES (99, 'x', 'x')",
    ]) {
      await expect(app.query(sql), sql).rejects.toMatchObject({ code: '42501' });
    }
    expect((await owned.db.query<{ n: string }>('SELECT count(*) AS n FROM projects'))[0]!.n).toBe('1');
  }, 60_000);
});
