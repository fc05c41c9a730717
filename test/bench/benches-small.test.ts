import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCHES } from '../../bench/benches.js';
import { canRun, unsetVariable } from '../support/service-available.js';

/**
 * Every bench `npm run bench` knows runs to its end at --small size in a process of its
 * own: exit code 0 (so its own correctness checks passed) and a result file holding its
 * table and these summary figures. Only that they are numbers is checked, never their
 * values: at this size, on a shared machine, timings mean nothing.
 */
const EXPECTED_SUMMARY: Record<string, readonly string[]> = {
  'read-overhead': ['rawPerSecond', 'dualPerSecond', 'slowdown'],
  'mirrored-writes': ['naiveSequential', 'naiveConcurrent', 'mirrored', 'mirroredWithoutIntentLog'],
  verify: ['projects.coldSpeedup', 'dependencies.warmSpeedup', 'contributions.naiveSeconds', 'agent_tasks.coldSeconds'],
  backfill: ['rows', 'copyPerSecond', 'backfillPerSecond', 'ratio'],
  fuzz: ['pglite.sync.programs', 'pglite.async.programs', 'postgres.sync.programs', 'postgres.async.maxPauseMs'],
  transition: ['sync.pauseMedianMs', 'sync.steadyP99Ms', 'async.pauseMaxMs', 'async.duringMaxMs'],
  faults: [
    'outage.sync.lost',
    'outage.async.drainSeconds',
    'outage.sync.redis.slowestMs',
    'outage.sync.redis-volatile.behindWhenEmpty',
    'outage.sync.redis-volatile.provenSeconds',
    'sigkill.lost',
    'sigkill.cut.lost',
    'rollback-in-outage.wait.callerErrors',
    'rollback-in-outage.unavailable-keys.callerErrors',
  ],
  http: [
    'baseline.perSecond',
    'memory-only.p99Ms',
    'dual-write-sync.perSecond',
    'dual-write-sync.differences',
    'dual-write-async.p95Ms',
    'dual-write-async.differences',
    'read-shift-50.relative',
    'read-shift-50.differences',
  ],
  'bulk-index': [
    'projects',
    'edges',
    'memoryPerSecond',
    'postgresPerSecond',
    'syncPerSecond',
    'asyncPerSecond',
    'syncDifferences',
    'asyncDifferences',
  ],
  'task-cas': [
    'tasks',
    'runners',
    'memoryPerSecond',
    'syncPerSecond',
    'asyncPerSecond',
    'syncConflicts',
    'syncDifferences',
    'asyncDifferences',
  ],
  sqlite: ['tasks', 'rows', 'copyPerSecond', 'migratePerSecond', 'rerunPerSecond', 'ratio'],
  restart: ['rows', 'copySeconds', 'rebuildSeconds', 'openSeconds', 'ratio'],
  deploys: ['restarts', 'acknowledged', 'lost', 'deletedByRepair', 'rebuilds', 'rebuildMaxSeconds'],
};

/** Benches whose figures are counts of what went wrong: zero at any size. */
const MUST_BE_ZERO = [
  'deploys.lost',
  'deploys.deletedByRepair',
  'http.dual-write-sync.differences',
  'http.dual-write-async.differences',
  'http.read-shift-50.differences',
  'bulk-index.syncDifferences',
  'bulk-index.asyncDifferences',
  'task-cas.syncDifferences',
  'task-cas.asyncDifferences',
];

function runBench(name: string, out: string): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', name, '--small', `--out=${out}`], {
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => void (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => void (output += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, output })));
}

const available = canRun('the benches at small size', unsetVariable('DATABASE_URL'));

describe.runIf(available)('every bench of bench/run.ts at --small size', () => {
  let out: string;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'dw-bench-small-'));
  });
  afterAll(async () => {
    await rm(out, { recursive: true, force: true });
  });

  it('has expectations for exactly the registered benches', () => {
    expect(Object.keys(EXPECTED_SUMMARY).sort()).toEqual(Object.keys(BENCHES).sort());
  });

  for (const [name, keys] of Object.entries(EXPECTED_SUMMARY)) {
    it(`${name}: exits 0 and writes ${name}.json with its table and summary`, { timeout: 240_000 }, async () => {
      const { code, output } = await runBench(name, out);
      expect(code, output).toBe(0);
      const written = JSON.parse(await readFile(join(out, `${name}.json`), 'utf8'));
      expect(written).toMatchObject({ bench: name, options: { small: true, long: false } });
      const result = written.result;
      expect(typeof result, `${name} was skipped: ${JSON.stringify(result)}`).toBe('object');
      expect(Object.keys(result)).toEqual(expect.arrayContaining(['name', 'headers', 'rows', 'summary']));
      expect(result.rows.length).toBeGreaterThan(0);
      for (const row of result.rows) expect(row).toHaveLength(result.headers.length);
      expect(result.failures ?? []).toEqual([]);
      for (const key of keys)
        expect(Number.isFinite(result.summary[key]), `${name}.summary.${key} = ${result.summary[key]}`).toBe(true);
      for (const key of MUST_BE_ZERO.filter((path) => path.startsWith(`${name}.`)))
        expect(result.summary[key.slice(name.length + 1)], key).toBe(0);
    });
  }
});
