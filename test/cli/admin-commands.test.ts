import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/free-port.js';
import { request } from '../api/api-harness.js';
import { readForEvidence } from '../support/runtimes.js';
import { ADMIN_TOKEN, postgresAvailable, runCli, startExampleApi, type ExampleApi } from './cli-harness.js';

/**
 * The commands that act on a running process, end to end: the CLI as a child process
 * against the example API (src/api/serve.ts) over a dual-write runtime on real PostgreSQL,
 * through the admin API with the token from the environment.
 */
describe.skipIf(!postgresAvailable())('dualwrite commands against a running example API', () => {
  let api: ExampleApi;
  const cli = (...args: string[]) => runCli(args, api.cliEnv);
  const inForce = () => api.served.runtime.stage.current;

  beforeAll(async () => {
    // Every read compared with PostgreSQL: the evidence gate's shadow comparisons come from the reads the tests make.
    api = await startExampleApi({ DUALWRITE_SHADOW_SAMPLE_RATE: '1' });
    const ada = await request(api.served.url, 'POST', '/contributors', { body: { name: 'Ada' } });
    expect(ada.status).toBe(201);
    await request(api.served.url, 'PUT', '/projects/npm/react', { body: { description: 'UI' } });
    await request(api.served.url, 'POST', '/tasks', {
      body: { direction: 'd', taskType: 'impl', model: 'm', command: 'c' },
    });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('status prints a table for people and the admin API answer with --json', async () => {
    const table = await cli('status');
    expect(table).toMatchObject({ code: 0, stderr: '' });
    expect(table.stdout).toMatch(/^stage in force +dual-write, epoch \d+$/m);
    expect(table.stdout).toMatch(/^outbox +empty$/m);
    expect(table.stdout).toMatch(/^last verification +none in this process yet/m);

    const json = await cli('status', '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      stage: { inForce: 'dual-write', readPercent: 0 },
      flags: { stage: 'dual-write', source: 'env' },
      mirror: { mode: 'sync' },
      outbox: { depth: 0 },
    });
  });

  it('verify exits 0 while the sides are equal, 1 once PostgreSQL differs; repair fixes it and verify exits 0 again', async () => {
    const consistent = await cli('verify');
    expect(consistent.code, consistent.stderr).toBe(0);
    expect(consistent.stdout).toContain('CONSISTENT');

    // Changed in PostgreSQL behind the runtime's back: a persistent difference.
    await api.database.db.query(`UPDATE contributors SET name = 'Not Ada' WHERE name = 'Ada'`);
    const differs = await cli('verify', '--json');
    expect(differs.code).toBe(1);
    expect(differs.stderr).toBe('');
    expect(JSON.parse(differs.stdout)).toMatchObject({
      consistent: false,
      differences: [{ store: 'graph', entity: 'contributors', kind: 'fields_differ', fields: ['name'] }],
    });

    // A repair changes data: it says why.
    expect(await cli('repair')).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("required option '--reason <text>' not specified"),
    });
    const repaired = await cli('repair', '--reason', 'contributor renamed behind our back');
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.stdout).toContain('repairs: 1 repaired, 0 skipped');
    const runId = /dualwrite repair undo ([0-9a-f-]{36})/.exec(repaired.stdout)?.[1];
    expect(runId).toBeDefined();
    expect(
      (await api.database.db.query<{ name: string }>('SELECT name FROM contributors')).map((row) => row.name),
    ).toEqual(['Ada']);
    expect((await cli('verify')).code).toBe(0);
    expect((await cli('repair', '--reason', 'check', '--json')).stdout).toContain('"consistent": true');

    // The repair was right only if memory was: undo puts PostgreSQL's version back, and verify sees the difference again.
    const undone = await cli('repair', 'undo', runId!, '--reason', 'memory was wrong');
    expect(undone).toMatchObject({ code: 0, stdout: expect.stringMatching(/^undid 1 repairs of run /) });
    expect(
      (await api.database.db.query<{ name: string }>('SELECT name FROM contributors')).map((row) => row.name),
    ).toEqual(['Not Ada']);
    expect((await cli('repair', '--reason', 'memory is right after all')).code).toBe(0);
    expect((await cli('verify')).code).toBe(0);
  });

  it('stage show, stage set and rollback move the running process and say what is in force', async () => {
    const shown = await cli('stage', 'show', '--json');
    expect(JSON.parse(shown.stdout)).toMatchObject({
      stage: { inForce: 'dual-write' },
      flags: { stage: 'dual-write' },
    });

    expect(await cli('stage', 'set', 'dual-write', '--reason', 'start of the migration')).toMatchObject({
      code: 0,
      stdout: 'dual-write is in force\n',
    });
    // The evidence the advances below need: PostgreSQL calls and shadow comparisons (verify left a clean verification).
    await readForEvidence(api.served.runtime);
    const shifted = await cli('stage', 'set', 'read-shift', '--percent', '20', '--reason', 'ticket 7: first reads');
    expect(shifted).toMatchObject({ code: 0, stdout: 'read-shift (20% of keyed reads from PostgreSQL) is in force\n' });
    expect(inForce()).toMatchObject({ stage: 'read-shift', readPercent: 20, source: 'file' });
    expect((await cli('stage', 'show')).stdout).toMatch(
      /^requested +read-shift \(20% of keyed reads from PostgreSQL\), from file$/m,
    );

    const back = await cli('rollback', '--reason', 'reads look wrong', '--json');
    expect(back.code).toBe(0);
    expect(JSON.parse(back.stdout)).toMatchObject({ inForce: { stage: 'dual-write', readPercent: 0 } });
    expect(inForce().stage).toBe('dual-write');

    expect((await cli('stage', 'set', 'postgres-primary', '--reason', 'cutover')).code).toBe(0);
    expect(inForce().stage).toBe('postgres-primary');
    expect(await cli('rollback', '--to', 'dual-write', '--reason', 'cutover rehearsal over')).toMatchObject({
      code: 0,
      stdout: 'rollback from postgres-primary: dual-write is in force\n',
    });
    expect(inForce().stage).toBe('dual-write');
  });

  it('refuses stage changes it cannot make with exit 2, before asking the process', async () => {
    const cases: [string[], string][] = [
      [['stage', 'set', 'read-shift', '--reason', 'x'], 'read-shift needs --percent'],
      [['stage', 'set', 'postgres-primary', '--percent', '5', '--reason', 'x'], '--percent applies to read-shift only'],
      [['stage', 'set', 'postgres-primary'], "required option '--reason <text>' not specified"],
      [['stage', 'set', 'postgres-primary', '--reason', '  '], 'must not be blank'],
      [['stage', 'set', 'sideways', '--reason', 'x'], 'Allowed choices are memory-only, dual-write'],
      [['stage', 'set', 'read-shift', '--percent', '101', '--reason', 'x'], 'must be an integer from 0 to 100'],
      [['rollback', '--to', 'postgres-only', '--reason', 'x'], '--to must name a stage before dual-write'],
      [['rollback', '--to', 'dual-write'], "required option '--reason <text>' not specified"],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(...args)));
    for (const [index, [args, message]] of cases.entries()) {
      expect({ args, code: results[index]!.code }).toEqual({ args, code: 2 });
      expect(results[index]!.stderr).toContain(message);
    }
    expect(inForce().stage).toBe('dual-write');
  });

  it('rollback from the first stage has nothing to go back to: exit 1', async () => {
    expect((await cli('stage', 'set', 'memory-only', '--reason', 'pause the migration')).code).toBe(0);
    const result = await cli('rollback', '--reason', 'x');
    expect(result).toMatchObject({
      code: 1,
      stderr: 'dualwrite rollback: memory-only is the first stage: there is nothing to roll back to\n',
    });
    // Only memory is written: the process refuses to verify (409), which is exit 1 with its reason.
    expect(await cli('verify')).toMatchObject({
      code: 1,
      stderr:
        'dualwrite verify: verification skipped: only one side is written in memory-only, so there is nothing to compare\n',
    });
    // After memory-only, PostgreSQL missed writes: a safety rule keeps reads in memory (exit 1, saying so).
    expect((await cli('stage', 'set', 'dual-write', '--reason', 'resume')).code).toBe(0);
    const refused = await cli('stage', 'set', 'read-shift', '--percent', '10', '--reason', 'x');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^dualwrite stage set: REFUSED: staying in dual-write, not moving to read-shift 10%: .*resync PostgreSQL first/,
    );
    expect(inForce()).toMatchObject({ stage: 'dual-write', readPercent: 0 });
  });

  it('stage gate shows the evidence check by check, and audit lists who moved the stage and why', async () => {
    const gate = await cli('stage', 'gate', 'read-shift', '--percent', '30', '--json');
    const verdict = JSON.parse(gate.stdout) as { allowed: boolean; checks: { name: string; ok: boolean }[] };
    expect(verdict.checks.map((check) => check.name)).toEqual([
      'verification',
      'outbox',
      'shadow-mismatches',
      'postgres-errors',
      'postgres-latency',
    ]);
    expect(gate.code).toBe(verdict.allowed ? 0 : 1);
    const table = await cli('stage', 'gate', 'read-shift', '--percent', '30');
    expect(table.stdout).toMatch(/^(ok  |FAIL) verification: /m);
    expect(table.stdout).toMatch(/^(ALLOWED|REFUSED \(stage set --force overrides, audited as forced\))$/m);

    const audit = await cli('audit', '--action', 'stage.change', '--json');
    expect(audit.code).toBe(0);
    const events = (
      JSON.parse(audit.stdout) as {
        events: { action: string; reason: string; principal: { username: string }; to: string }[];
      }
    ).events;
    expect(
      events.find((event) => event.reason === 'ticket 7: first reads'),
      JSON.stringify(events.map((e) => [e.action, e.reason])),
    ).toMatchObject({ action: 'stage.change', principal: { username: 'admin-token' }, to: 'read-shift 20%' });
    expect((await cli('audit', '--limit', '5')).stdout).toMatch(/^when +action +who +from +to +reason$/m);
  });

  it('resync copies what memory holds into PostgreSQL, verifies, and lets reads move there again after memory-only', async () => {
    expect(inForce().stage).toBe('dual-write');
    // Memory gained a record PostgreSQL never saw (written while memory-only ran, or before dual-write began).
    await api.served.runtime.memory.graph.upsertProject({
      ecosystem: 'npm',
      name: 'left-behind',
      description: 'memory only',
    });
    const resynced = await cli('resync', '--reason', 'dual-write began on a full memory', '--json');
    expect(resynced.code, resynced.stderr).toBe(0);
    expect(JSON.parse(resynced.stdout)).toMatchObject({
      backfill: { countsMatch: true },
      verify: { consistent: true },
    });
    expect(await api.served.runtime.postgres.graph.getProject({ ecosystem: 'npm', name: 'left-behind' })).toMatchObject(
      { description: 'memory only' },
    );
    // PostgreSQL is level again: the safety rule that kept reads in memory no longer refuses.
    const shifted = await cli('stage', 'set', 'read-shift', '--percent', '10', '--reason', 'after the resync');
    expect(shifted.code, shifted.stdout + shifted.stderr).toBe(0);
    expect(await cli('resync', '--reason', 'x')).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('a resync of postgres runs in dual-write, not in read-shift'),
    });
    expect((await cli('rollback', '--to', 'dual-write', '--reason', 'back for the next tests')).code).toBe(0);
  });

  it('outbox show and outbox replay', async () => {
    expect(await cli('outbox', 'show')).toMatchObject({ code: 0, stdout: 'outbox  empty\n' });
    expect(JSON.parse((await cli('outbox', 'show', '--json')).stdout)).toEqual({
      outbox: { depth: 0, oldestAgeSeconds: 0 },
    });
    const replayed = await cli('outbox', 'replay', '--json');
    expect(replayed.code).toBe(0);
    expect(JSON.parse(replayed.stdout)).toEqual({
      replayed: 0,
      deadLettered: 0,
      outbox: { depth: 0, oldestAgeSeconds: 0 },
    });
    expect((await cli('outbox', 'replay')).stdout).toBe('replayed 0, dead-lettered 0\noutbox  empty\n');
  });

  it('a wrong or missing token exits 3 saying so, and the token never appears in the output', async () => {
    const wrong = await runCli(['status'], { ...api.cliEnv, DUALWRITE_ADMIN_TOKEN: 'not-the-token-31c9' });
    expect(wrong).toMatchObject({ code: 3, stdout: '' });
    expect(wrong.stderr).toContain(
      `the admin API at ${api.served.url} refused the token in DUALWRITE_ADMIN_TOKEN: the admin token is wrong`,
    );
    const missing = await runCli(['stage', 'set', 'memory-only', '--reason', 'x'], { DUALWRITE_URL: api.served.url });
    expect(missing).toMatchObject({ code: 3, stdout: '' });
    expect(missing.stderr).toContain('needs a token: set DUALWRITE_ADMIN_TOKEN');
    for (const output of [wrong.stdout, wrong.stderr, missing.stderr]) {
      expect(output).not.toContain(ADMIN_TOKEN);
      expect(output).not.toContain('not-the-token-31c9');
    }
    expect(inForce().stage).toBe('dual-write');
  });

  it('an admin API that is not there exits 3 naming the URL (--url over DUALWRITE_URL)', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    for (const args of [
      ['status', '--url', url],
      ['verify', '--url', url],
      ['outbox', 'replay', '--url', url],
    ]) {
      const result = await cli(...args);
      expect(result).toMatchObject({ code: 3, stdout: '' });
      expect(result.stderr).toContain(`cannot reach the admin API at ${url}: connection refused`);
    }
  });
});
