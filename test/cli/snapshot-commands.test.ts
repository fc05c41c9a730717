import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/free-port.js';
import {
  openTestDatabase,
  postgresAvailable,
  runCli,
  startCli,
  writeSampleSnapshots,
  type TestDatabase,
} from './cli-harness.js';

/**
 * The commands that work on the database directly, end to end on real PostgreSQL: migrate,
 * and backfill, verify and repair of snapshot files (as an API's in-memory stores save
 * them), including a backfill stopped by Ctrl-C and resumed.
 */
describe.skipIf(!postgresAvailable())('dualwrite commands on snapshot files and DATABASE_URL', () => {
  let dir: string;
  let snapshots: { graph: string; tasks: string };
  const databases: TestDatabase[] = [];
  /** A schema of its own for one test. */
  const database = async () => {
    const opened = await openTestDatabase();
    databases.push(opened);
    return opened;
  };
  const snapshotArgs = () => ['--graph-snapshot', snapshots.graph, '--tasks-snapshot', snapshots.tasks];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dw-cli-snapshots-'));
    snapshots = await writeSampleSnapshots(dir, 200);
  });
  afterAll(async () => {
    for (const opened of databases) await opened.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('migrate applies the schema once, then nothing (--json for machines)', async () => {
    const { env } = await database();
    const first = await runCli(['migrate'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(
      /schema dw_cli_\w+: applied \d+ \(001_initial_schema\.sql, .*\), already applied 0\n$/,
    );
    const again = await runCli(['migrate', '--json'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({
      applied: [],
      alreadyApplied: expect.arrayContaining(['001_initial_schema.sql']),
    });
  });

  it('backfill copies the snapshots, verify finds them equal, and after a change in PostgreSQL repair puts it right', async () => {
    const { env, db } = await database();
    // One store at a time: only the stores given are copied and counted.
    const graphOnly = await runCli(['backfill', '--graph-snapshot', snapshots.graph, '--json'], env);
    expect(graphOnly.code, graphOnly.stderr).toBe(0);
    expect(graphOnly.stderr).toBe('');
    const graphReport = JSON.parse(graphOnly.stdout);
    expect(graphReport).toMatchObject({
      countsMatch: true,
      interrupted: false,
      totals: { copied: 1057, postgresCount: 1057 },
    });
    expect(graphReport.entities.map((e: { entity: string }) => e.entity)).toEqual([
      'projects',
      'dependencies',
      'contributors',
      'assets',
      'contributions',
    ]);
    const both = await runCli(['backfill', ...snapshotArgs(), '--json'], env);
    expect(both.code, both.stderr).toBe(0);
    expect(JSON.parse(both.stdout)).toMatchObject({
      countsMatch: true,
      totals: { copied: 200, memoryCount: 1257, postgresCount: 1257 },
    });
    // Each run is in the audit trail, as the person who ran it.
    const audited = await db.query<{ action: string; principal: { type: string } | string }>(
      `SELECT action, principal FROM dualwrite_audit_events WHERE action = 'backfill'`,
    );
    expect(audited).toHaveLength(2);
    expect(
      audited.map((row) => (typeof row.principal === 'string' ? JSON.parse(row.principal) : row.principal).type),
    ).toEqual(['user', 'user']);

    const verified = await runCli(['verify', ...snapshotArgs()], env);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain('CONSISTENT');
    // Progress for people on stderr: each entity's rows checked.
    expect(verified.stderr).toMatch(/^verify graph\.projects: 100% \(200\/200 rows\)$/m);

    await db.query(`DELETE FROM agent_tasks WHERE id IN (SELECT id FROM agent_tasks ORDER BY id LIMIT 2)`);
    await db.query(`UPDATE projects SET description = 'changed' WHERE id = (SELECT min(id) FROM projects)`);
    const differs = await runCli(['verify', ...snapshotArgs(), '--json'], env);
    expect(differs.code).toBe(1);
    const report = JSON.parse(differs.stdout);
    expect(report.database).toMatch(/^PostgreSQL postgres:\/\/.* schema dw_cli_/);
    expect(report.differences.map((d: { entity: string; kind: string }) => `${d.entity} ${d.kind}`).sort()).toEqual([
      'agent_tasks missing_in_postgres',
      'agent_tasks missing_in_postgres',
      'projects fields_differ',
    ]);

    const repaired = await runCli(['repair', '--reason', 'snapshot is the truth', ...snapshotArgs()], env);
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.stdout).toContain('repairs: 3 repaired, 0 skipped');
    expect((await runCli(['verify', '--tasks-snapshot', snapshots.tasks], env)).code).toBe(0);
    expect((await runCli(['verify', ...snapshotArgs()], env)).code).toBe(0);
  });

  it('a backfill stopped by Ctrl-C exits 130 saying how to resume, and the same command resumes it', async () => {
    const { env } = await database();
    // One record per batch, so the run is still copying when the signal comes.
    const args = ['backfill', ...snapshotArgs(), '--batch-size', '1'];
    const running = startCli(args, env);
    await running.stderrLine(/^backfill projects: 10%/);
    running.child.kill('SIGINT');
    const stopped = await running.result;
    expect(stopped.code, stopped.stderr).toBe(130);
    const scannedBefore = /^interrupted after ([\d,]+) rows; run the same command again to resume$/m.exec(
      stopped.stderr,
    )?.[1];
    expect(scannedBefore, stopped.stderr).toBeDefined();
    expect(stopped.stdout).toContain('INTERRUPTED');

    const resumed = await runCli([...args.slice(0, -2), '--json'], env);
    expect(resumed.code, resumed.stderr).toBe(0);
    const report = JSON.parse(resumed.stdout);
    expect(report).toMatchObject({
      interrupted: false,
      startedOver: false,
      countsMatch: true,
      totals: { postgresCount: 1257 },
    });
    // It went on after the last committed batch: it read only what the first run had not, and found none of it there.
    expect(report.totals.scanned).toBe(1257 - Number(scannedBefore!.replaceAll(',', '')));
    expect(report.totals.skippedExisting).toBe(0);
  });

  it('refuses what it cannot work on: no snapshot, a missing file (exit 2), an unreachable database (exit 3)', async () => {
    const { env } = await database();
    const [none, missing, both, unreachable] = await Promise.all([
      runCli(['backfill'], env),
      runCli(['repair', '--reason', 'x', '--graph-snapshot', join(dir, 'nope.json')], env),
      runCli(['verify', '--graph-snapshot', snapshots.graph, '--url', 'http://127.0.0.1:8080'], env),
      freePort().then((port) =>
        runCli(['verify', ...snapshotArgs()], {
          DATABASE_URL: `postgres://postgres:secret-pw@127.0.0.1:${port}/dualwrite_test`,
        }),
      ),
    ]);
    expect(none).toMatchObject({
      code: 2,
      stderr: 'dualwrite backfill: backfill needs --graph-snapshot and/or --tasks-snapshot\n',
    });
    expect(missing).toMatchObject({
      code: 2,
      stderr: `dualwrite repair: snapshot file ${join(dir, 'nope.json')} does not exist or cannot be read\n`,
    });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("option '--graph-snapshot <file>' cannot be used with option '--url <url>'");
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toMatch(
      /^dualwrite verify: cannot reach the database at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/dualwrite_test: .*ECONNREFUSED/,
    );
    expect(unreachable.stderr).not.toContain('secret-pw');
  });
});
