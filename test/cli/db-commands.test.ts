import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Of } from '../../src/postgres/operations/backup-metadata.js';
import { quoteIdentifier } from '../../src/postgres/operations/connection-target.js';
import { openDatabase } from '../../src/postgres/open-database.js';
import { PostgresAgentTaskStore } from '../../src/stores/agent-task/postgres-agent-task-store.js';
import { PostgresGraphStore } from '../../src/stores/graph/postgres-graph-store.js';
import { poolOptionsFromEnv } from '../../src/runtime/config.js';
import { applySampleWrite, sampleWrites } from '../../src/cli/demo/sample-data.js';
import { freePort } from '../support/free-port.js';
import { postgresAvailable, runCli } from './cli-harness.js';

/**
 * `dualwrite db ...` end to end on the local PostgreSQL, each test in databases of its own
 * (dw_test_db_<run>_<n>, and the <name>_replaced_<time> a restore keeps aside), all dropped at the end.
 */
describe.skipIf(!postgresAvailable())('dualwrite db commands on real PostgreSQL', () => {
  const run = randomBytes(3).toString('hex');
  const prefix = `dw_test_db_${run}`;
  let created = 0;
  let dir: string;
  let admin: pg.Client;

  /** A client of one database (application_name "dw-test", so a restore sees it as another application). */
  const connect = async (database: string) => {
    const client = new pg.Client({ connectionString: urlOf(database), application_name: 'dw-test' });
    await client.connect();
    return client;
  };
  const urlOf = (database: string) => {
    const url = new URL(process.env.DATABASE_URL!);
    url.pathname = `/${database}`;
    return url.toString();
  };
  /** A new empty database; `sample` migrates it and writes the sample workload (20 projects). */
  const database = async (options: { sample?: boolean } = {}) => {
    const name = `${prefix}_${++created}`;
    await admin.query(`CREATE DATABASE ${quoteIdentifier(name)}`);
    if (options.sample) {
      const { db } = await openDatabase({
        kind: 'postgres',
        pool: { ...poolOptionsFromEnv({ DATABASE_URL: urlOf(name) }), minSize: 0 },
      });
      const stores = { graph: new PostgresGraphStore(db), tasks: new PostgresAgentTaskStore(db) };
      for (const write of sampleWrites({ projects: 20 })) await applySampleWrite(write, stores);
      await db.close();
    }
    return { name, env: { DATABASE_URL: urlOf(name) } };
  };
  /** Row counts of a few tables, read and let go (an open connection would make a restore refuse). */
  const counts = async (name: string) => {
    const client = await connect(name);
    try {
      const { rows } = await client.query<{ projects: string; agent_tasks: string; first: string | null }>(
        `SELECT (SELECT count(*) FROM projects) AS projects, (SELECT count(*) FROM agent_tasks) AS agent_tasks, (SELECT description FROM projects ORDER BY id LIMIT 1) AS first`,
      );
      return { projects: Number(rows[0]!.projects), agentTasks: Number(rows[0]!.agent_tasks), first: rows[0]!.first };
    } finally {
      await client.end();
    }
  };
  const change = async (name: string) => {
    const client = await connect(name);
    await client.query(`DELETE FROM agent_tasks`);
    await client.query(
      `UPDATE projects SET description = 'changed' WHERE id = (SELECT id FROM projects ORDER BY id LIMIT 1)`,
    );
    await client.end();
  };
  const databasesLike = async (pattern: string) =>
    (
      await admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY datname`, [
        pattern,
      ])
    ).rows.map((row) => row.datname);
  /** A backup of a sample database in a folder of its own: [database, dump path]. */
  const backedUp = async () => {
    const db = await database({ sample: true });
    const backupDir = await mkdtemp(join(dir, 'backup-'));
    const backup = await runCli(['db', 'backup', '--dir', backupDir, '--json'], db.env);
    expect(backup.code, backup.stderr).toBe(0);
    return { db, backupDir, dump: join(backupDir, JSON.parse(backup.stdout).backup.file as string) };
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dw-db-'));
    admin = new pg.Client({ connectionString: urlOf('postgres') });
    await admin.connect();
  });
  afterAll(async () => {
    for (const name of await databasesLike(`${prefix}\\_%`))
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`);
    await admin.end();
    await rm(dir, { recursive: true, force: true });
  });

  it('backup records the dump in metadata.json; restore puts the data back after a change, keeping the replaced database aside', async () => {
    const { db, backupDir, dump } = await backedUp();
    const metadata = JSON.parse(await readFile(join(backupDir, 'metadata.json'), 'utf8'));
    expect(metadata.backups).toHaveLength(1);
    const [entry] = metadata.backups;
    expect(entry.file).toMatch(new RegExp(`^${db.name}-\\d{8}T\\d{9}Z\\.dump$`));
    expect(entry).toMatchObject({
      schemaVersion: expect.any(Number),
      serverVersion: expect.stringMatching(/^\d+/),
      sha256: await sha256Of(dump),
    });
    expect(entry.rowCounts).toMatchObject({
      projects: 20,
      agent_tasks: 20,
      dualwrite_schema_migrations: entry.schemaVersion,
    });
    const before = await counts(db.name);

    await change(db.name);
    expect(await counts(db.name)).toMatchObject({ agentTasks: 0, first: 'changed' });
    // The database holds data: not replaced without --force.
    const refused = await runCli(['db', 'restore', dump], db.env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/holds data .*add --force/);
    // Another application connected: refused, whatever --force says.
    const other = await connect(db.name);
    const busy = await runCli(['db', 'restore', dump, '--force'], db.env);
    await other.end();
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/1 other session\(s\) are connected to .* \(dw-test\)/);
    expect(await counts(db.name)).toMatchObject({ agentTasks: 0, first: 'changed' });

    const restored = await runCli(['db', 'restore', dump, '--force', '--json'], db.env);
    expect(restored.code, restored.stderr).toBe(0);
    const report = JSON.parse(restored.stdout);
    expect(report).toMatchObject({
      database: db.name,
      rowCounts: entry.rowCounts,
      replacedKeptAs: expect.stringMatching(new RegExp(`^${db.name}_replaced_\\d{14}$`)),
    });
    expect(await counts(db.name)).toEqual(before);
    expect(await counts(report.replacedKeptAs)).toMatchObject({ agentTasks: 0, first: 'changed' });
    expect(await databasesLike('dw\\_restore\\_%')).toEqual([]);
  });

  it('backup applies the retention policy: --keep 2 deletes the oldest file and its metadata entry', async () => {
    const { db, backupDir, dump } = await backedUp();
    for (let i = 0; i < 2; i++) {
      const again = await runCli(['db', 'backup', '--dir', backupDir, '--keep', '2', '--json'], db.env);
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout).deleted).toEqual(i === 0 ? [] : [dump.slice(backupDir.length + 1)]);
    }
    const files = JSON.parse(await readFile(join(backupDir, 'metadata.json'), 'utf8')).backups.map(
      (entry: { file: string }) => entry.file,
    );
    expect(files).toHaveLength(2);
    expect(files).not.toContain(dump.slice(backupDir.length + 1));
    await expect(readFile(dump)).rejects.toThrow(/ENOENT/);
  });

  it('backup fails with exit 2 when the pg_dump found is older than the server', async () => {
    const db = await database();
    const bin = await mkdtemp(join(dir, 'bin-'));
    await writeFile(join(bin, 'pg_dump'), '#!/bin/sh\necho "pg_dump (PostgreSQL) 9.6.24"\n', { mode: 0o755 });
    const old = await runCli(['db', 'backup', '--dir', join(dir, 'never')], {
      ...db.env,
      PATH: `${bin}:${process.env.PATH}`,
    });
    expect(old.code).toBe(2);
    expect(old.stderr).toMatch(
      /pg_dump is version 9, older than the server \(\d+\): install the PostgreSQL \d+ client tools/,
    );
  });

  it('a tampered backup is refused before anything is touched; a restore that fails its checks leaves the database as it was', async () => {
    const { db, backupDir, dump } = await backedUp();
    await change(db.name);
    const changed = await counts(db.name);

    const tamperedDir = await mkdtemp(join(dir, 'tampered-'));
    const tampered = join(tamperedDir, 'copy.dump');
    const bytes = await readFile(dump);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    await writeFile(tampered, bytes);
    const metadata = JSON.parse(await readFile(join(backupDir, 'metadata.json'), 'utf8'));
    metadata.backups[0].file = 'copy.dump';
    await writeFile(join(tamperedDir, 'metadata.json'), JSON.stringify(metadata));
    const refused = await runCli(['db', 'restore', tampered, '--force'], db.env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /copy\.dump has sha256 \w+, but metadata\.json records \w+: the file changed since the backup; nothing was restored/,
    );

    // The file is intact but the metadata expects other counts: the scratch copy fails its checks.
    const mismatchDir = await mkdtemp(join(dir, 'mismatch-'));
    await copyFile(dump, join(mismatchDir, 'copy.dump'));
    metadata.backups[0].rowCounts.projects = 999;
    await writeFile(join(mismatchDir, 'metadata.json'), JSON.stringify(metadata));
    const failed = await runCli(['db', 'restore', join(mismatchDir, 'copy.dump'), '--force'], db.env);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(
      'the restored copy fails its checks (projects has 20 rows, the backup recorded 999); the database was left as it was',
    );

    expect(await counts(db.name)).toEqual(changed);
    expect(await databasesLike(`${db.name}\\_replaced\\_%`)).toEqual([]);
    expect(await databasesLike('dw\\_restore\\_%')).toEqual([]);
  });

  it('reset-test refuses a database not named as a test one, and restores the standard snapshot into a test one, saying how long it took', async () => {
    const refused = await runCli(['db', 'reset-test'], { DATABASE_URL: urlOf(`dw_prod_${run}`) });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`dw_prod_${run} is not named as a test database`);
    expect(await databasesLike(`dw\\_prod\\_${run}%`)).toEqual([]);

    const db = await database({ sample: true });
    await change(db.name);
    const reset = await runCli(['db', 'reset-test', '--json'], db.env);
    expect(reset.code, reset.stderr).toBe(0);
    const report = JSON.parse(reset.stdout);
    const fixture = JSON.parse(await readFile('fixtures/metadata.json', 'utf8')).backups[0];
    expect(report).toMatchObject({ database: db.name, rowCounts: fixture.rowCounts, durationMs: expect.any(Number) });
    expect(await counts(db.name)).toMatchObject({
      projects: fixture.rowCounts.projects,
      agentTasks: fixture.rowCounts.agent_tasks,
    });
    // The test data it replaced is dropped, not kept aside.
    expect(await databasesLike(`${db.name}\\_replaced\\_%`)).toEqual([]);
    const text = await runCli(['db', 'reset-test'], db.env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/reset in \d+\.\d s\n$/);
  });

  it('health: healthy on a migrated database, exit 1 naming the unapplied migrations, exit 3 on a closed port', async () => {
    const migrated = await database({ sample: true });
    const healthy = await runCli(['db', 'health', '--json'], migrated.env);
    expect(healthy.code, healthy.stderr).toBe(0);
    const report = JSON.parse(healthy.stdout);
    expect(report).toMatchObject({
      healthy: true,
      reasons: [],
      migrations: { pending: [] },
      server: { version: expect.stringMatching(/^\d+/), connections: { max: expect.any(Number) } },
    });
    expect(report.server.databaseBytes).toBeGreaterThan(0);
    const table = await runCli(['db', 'health'], migrated.env);
    expect(table.stdout).toMatch(/^status\s+HEALTHY$/m);
    expect(table.stdout).toMatch(/^connections\s+\d+ of \d+$/m);

    const empty = await database();
    const unhealthy = await runCli(['db', 'health'], empty.env);
    expect(unhealthy.code).toBe(1);
    expect(unhealthy.stdout).toMatch(/^status\s+UNHEALTHY$/m);
    expect(unhealthy.stdout).toMatch(
      /^unhealthy: \d+ migration\(s\) not applied: 001_initial_schema\.sql, .*\(run dualwrite migrate\)$/m,
    );

    const port = await freePort();
    const unreachable = await runCli(['db', 'health'], {
      DATABASE_URL: `postgres://postgres:secret-pw@127.0.0.1:${port}/x`,
    });
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toMatch(
      /cannot reach the database at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/x: .*ECONNREFUSED/,
    );
    expect(unreachable.stderr).not.toContain('secret-pw');
  });

  it('info shows where DATABASE_URL points and the pool in force, the password as ***', async () => {
    const env = {
      DATABASE_URL: 'postgresql://app:s3cret-Pa55@db.example:6543/orders?sslmode=require',
      POSTGRES_POOL_SIZE: '7',
      POSTGRES_MAX_OVERFLOW: '3',
    };
    const json = await runCli(['db', 'info', '--json'], env);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      host: 'db.example',
      port: 6543,
      database: 'orders',
      user: 'app',
      password: '***',
      sslMode: 'require',
      pool: { size: 7, maxOverflow: 3, max: 10 },
    });
    const text = await runCli(['db', 'info'], env);
    expect(text.stdout).toMatch(/^password\s+\*\*\*$/m);
    expect(text.stdout).toMatch(/^pool\s+7 \+ 3 overflow = 10 max/m);
    for (const output of [json, text]) expect(output.stdout + output.stderr).not.toContain('s3cret');
  });
});
