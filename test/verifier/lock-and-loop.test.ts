import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Asset } from '../../src/stores/graph/graph-model.js';
import type { Side } from '../../src/ports/stage.js';
import { MemoryAgentTaskStore } from '../../src/stores/agent-task/memory-agent-task-store.js';
import { MemoryGraphStore } from '../../src/stores/graph/memory-graph-store.js';
import { PgPoolExecutor } from '../../src/postgres/pg-pool-executor.js';
import { poolOptionsFromEnv } from '../../src/runtime/config.js';
import { PostgresAgentTaskStore } from '../../src/stores/agent-task/postgres-agent-task-store.js';
import { PostgresGraphStore } from '../../src/stores/graph/postgres-graph-store.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import { applySampleWrite, sampleWrites } from '../../src/cli/demo/sample-data.js';
import { AGENT_TASK_DEFINITION } from '../../src/stores/agent-task/agent-task-store-definition.js';
import { GRAPH_DEFINITION } from '../../src/stores/graph/graph-store-definition.js';
import { verifyTarget, type AnyTarget } from '../../verifier/verify-target.js';
import { AdvisoryLock, RedisLock, type VerifierLock } from '../../verifier/lock.js';
import { VERIFY_METRIC, VerifierMetrics } from '../../verifier/metrics.js';
import type { RepairResult } from '../../verifier/repair.js';
import { VerifierLoop, type VerifierLoopOptions } from '../../verifier/verifier-loop.js';
import { verify, type VerifyReport } from '../../verifier/verify.js';
import { metricSample } from '../support/metrics.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { eventually } from '../support/eventually.js';
import { canRun, unsetVariable } from '../support/service-available.js';

/**
 * The verifier's locks (one run at a time across replicas) and its background loop
 * (metrics published per run, skipped stages, repairs, runs skipped while another holds
 * the lock).
 */

// ---------------------------------------------------------------------------------------
// Harness

const ENTITIES = ['projects', 'dependencies', 'contributors', 'assets', 'contributions', 'agent_tasks'] as const;
const label = (entity: string) => `${entity === 'agent_tasks' ? 'tasks' : 'graph'}.${entity}`;

interface Sides {
  readonly db: SqlExecutor;
  readonly memory: { readonly graph: MemoryGraphStore; readonly tasks: MemoryAgentTaskStore };
  readonly postgres: { readonly graph: PostgresGraphStore; readonly tasks: PostgresAgentTaskStore };
  readonly targets: AnyTarget[];
}

async function seededSides(db: SqlExecutor): Promise<Sides> {
  const memory = { graph: new MemoryGraphStore(), tasks: new MemoryAgentTaskStore() };
  const postgres = { graph: new PostgresGraphStore(db), tasks: new PostgresAgentTaskStore(db) };
  for (const write of sampleWrites({ projects: 20 })) {
    await applySampleWrite(write, memory);
    await applySampleWrite(write, postgres);
  }
  return {
    db,
    memory,
    postgres,
    targets: [
      verifyTarget(GRAPH_DEFINITION, memory.graph, postgres.graph),
      verifyTarget(AGENT_TASK_DEFINITION, memory.tasks, postgres.tasks),
    ],
  };
}

/** Puts one cent on an asset's total in PostgreSQL; returns the asset as memory has it. */
async function driftOneCent(sides: Sides): Promise<Asset> {
  const asset = (await sides.memory.graph.scanRecords('assets', { limit: 1 }))[0]!;
  await sides.db.query('UPDATE assets SET total_cost = total_cost + 0.01 WHERE id = $1', [asset.id]);
  return asset;
}

const metricValue = metricSample;

const runs = (registry: Registry, outcome: string) => metricValue(registry, VERIFY_METRIC.runs, { outcome });

/** A promise with its resolve function, for holding work open until the test lets go. */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/**
 * Runs `holder` holding `lock` until the test lets go, and checks `contender` cannot take
 * it meanwhile (its work never runs); afterwards the contender gets it. `whileHeld` runs
 * between the contender's attempts.
 */
async function expectExclusive(
  holder: VerifierLock,
  contender: VerifierLock,
  whileHeld: () => Promise<void> = async () => {},
): Promise<void> {
  const acquired = gate();
  const release = gate();
  const held = holder.tryRun(async () => {
    acquired.open();
    await release.promise;
    return 'holder';
  });
  await acquired.promise;
  const contenderRan: string[] = [];
  const attempt = () => contender.tryRun(async () => void contenderRan.push('ran'));
  expect(await attempt()).toBeUndefined();
  await whileHeld();
  expect(await attempt()).toBeUndefined();
  expect(contenderRan).toEqual([]);
  release.open();
  expect(await held).toBe('holder');
  expect(await contender.tryRun(async () => 'contender')).toBe('contender');
}

// ---------------------------------------------------------------------------------------
// AdvisoryLock on real PostgreSQL

for (const factory of availableBackends(['postgres'])) {
  describe(`AdvisoryLock on ${factory.name}`, () => {
    const backend = useBackend(factory);
    let second: PgPoolExecutor;
    let schema: string;
    beforeAll(async () => {
      // A second replica: another pool on the same schema (the lock is per schema).
      [{ schema }] = (await backend.current.db!.query<{ schema: string }>('SELECT current_schema() AS schema')) as [
        { schema: string },
      ];
      second = new PgPoolExecutor({ ...poolOptionsFromEnv(), schema, poolSize: 2, maxOverflow: 0, minSize: 0 });
    });
    afterAll(async () => {
      await second?.close();
    });

    it('lets one of two pools hold it at a time, and the other take it after release', async () => {
      await expectExclusive(new AdvisoryLock(backend.current.db!), new AdvisoryLock(second));
      // And the other way round.
      await expectExclusive(new AdvisoryLock(second), new AdvisoryLock(backend.current.db!));
    });

    it('does not keep a deployment in another schema of the database waiting', async () => {
      const elsewhere = new PgPoolExecutor({ ...poolOptionsFromEnv(), poolSize: 1, maxOverflow: 0, minSize: 0 });
      try {
        const ran = await new AdvisoryLock(backend.current.db!).tryRun(() =>
          new AdvisoryLock(elsewhere).tryRun(async () => 'ran elsewhere'),
        );
        expect(ran).toBe('ran elsewhere');
      } finally {
        await elsewhere.close();
      }
    });

    it('is released when the work throws', async () => {
      const lock = new AdvisoryLock(backend.current.db!);
      await expect(lock.tryRun(async () => Promise.reject(new Error('run failed')))).rejects.toThrow('run failed');
      expect(await new AdvisoryLock(second).tryRun(async () => 'taken')).toBe('taken');
    });

    it('is held by an open transaction that ends with the run', async () => {
      const acquired = gate();
      const release = gate();
      const held = new AdvisoryLock(backend.current.db!).tryRun(async () => {
        acquired.open();
        await release.promise;
      });
      await acquired.promise;
      const advisory = async () =>
        Number(
          (
            await second.query<{ n: string }>(
              `SELECT count(*)::text AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = hashtext('dualwrite.verifier:' || $1)::oid AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
              [schema],
            )
          )[0]!.n,
        );
      expect(await advisory()).toBe(1);
      release.open();
      await held;
      expect(await advisory()).toBe(0);
    });
  });
}

// ---------------------------------------------------------------------------------------
// RedisLock

const redisUrl = canRun('the RedisLock tests', unsetVariable('REDIS_URL')) ? process.env.REDIS_URL : undefined;

describe.skipIf(!redisUrl)('RedisLock', () => {
  let a: Redis;
  let b: Redis;
  const keys: string[] = [];
  const newKey = () => {
    const key = `dualwrite.verifier:lock:test-${randomBytes(6).toString('hex')}`;
    keys.push(key);
    return key;
  };
  beforeAll(async () => {
    a = new Redis(redisUrl!, { lazyConnect: true });
    b = new Redis(redisUrl!, { lazyConnect: true });
    await Promise.all([a.connect(), b.connect()]);
  });
  afterAll(async () => {
    if (keys.length > 0) await a?.del(...keys);
    a?.disconnect();
    b?.disconnect();
  });

  it('lets one client hold it at a time, and the other take it after release', async () => {
    const key = newKey();
    await expectExclusive(new RedisLock(a, 30_000, key), new RedisLock(b, 30_000, key));
    expect(await a.exists(key)).toBe(0);
  });

  it('stays held past its ttl while the work runs (renewal), and is deleted after', async () => {
    const key = newKey();
    const ttlMs = 300;
    await expectExclusive(new RedisLock(a, ttlMs, key), new RedisLock(b, ttlMs, key), async () => {
      // 1 s of work, more than three ttls: the contender keeps failing and the key keeps a ttl.
      for (let i = 0; i < 5; i++) {
        await sleep(200);
        expect(await new RedisLock(b, ttlMs, key).tryRun(async () => 'stolen')).toBeUndefined();
        const pttl = await b.pttl(key);
        expect(pttl).toBeGreaterThan(0);
        expect(pttl).toBeLessThanOrEqual(ttlMs);
      }
    });
    expect(await a.exists(key)).toBe(0);
  });

  it('is released only by its holder: a key taken over by another holder is left alone', async () => {
    const key = newKey();
    await new RedisLock(a, 30_000, key).tryRun(async () => {
      // As if the lock had expired and another replica had taken it.
      await b.set(key, 'another-holder', 'PX', 30_000);
    });
    expect(await b.get(key)).toBe('another-holder');
  });

  it('is released when the work throws', async () => {
    const key = newKey();
    await expect(
      new RedisLock(a, 30_000, key).tryRun(async () => Promise.reject(new Error('run failed'))),
    ).rejects.toThrow('run failed');
    expect(await a.exists(key)).toBe(0);
    expect(await new RedisLock(b, 30_000, key).tryRun(async () => 'taken')).toBe('taken');
  });

  for (const factory of availableBackends(['pglite', 'postgres'])) {
    describe(`two VerifierLoops locked by Redis on ${factory.name}`, () => {
      const backend = useBackend(factory);
      it('run one at a time: the second is skipped while the first verifies', async () => {
        const key = newKey();
        const sides = await seededSides(backend.current.db!);
        await driftOneCent(sides);
        await expectOneRunsOtherSkipped(sides, new RedisLock(a, 30_000, key), new RedisLock(b, 30_000, key));
      });
    });
  }
});

/**
 * Two loops, each with its own lock object: the first is held inside its run (in settle,
 * which verify calls to re-check the planted difference) while the second runs once.
 */
async function expectOneRunsOtherSkipped(
  sides: Sides,
  first: VerifierLock | undefined,
  second: VerifierLock | undefined,
): Promise<void> {
  const registry = new Registry();
  const metrics = new VerifierMetrics(registry);
  const inSettle = gate();
  const release = gate();
  const common = { db: sides.db, targets: sides.targets, metrics, graceMs: 0, recheckRounds: 1 };
  const holder = new VerifierLoop({
    ...common,
    lock: first,
    settle: async () => {
      inSettle.open();
      await release.promise;
    },
  });
  const contender = new VerifierLoop({ ...common, lock: second });
  const held = holder.runOnce();
  await inSettle.promise;
  expect(await contender.runOnce()).toBeUndefined();
  release.open();
  expect((await held)!.consistent).toBe(false);
  expect([
    await runs(registry, 'differences'),
    await runs(registry, 'skipped'),
    await runs(registry, 'consistent'),
  ]).toEqual([1, 1, undefined]);
}

// ---------------------------------------------------------------------------------------
// VerifierLoop

for (const factory of availableBackends(['pglite', 'postgres'])) {
  describe(`VerifierLoop on ${factory.name}`, () => {
    const backend = useBackend(factory);

    it('runOnce publishes consistency, differences, last success and runs, then updates them on the next run', async () => {
      const sides = await seededSides(backend.current.db!);
      const asset = await driftOneCent(sides);
      const registry = new Registry();
      const reports: VerifyReport[] = [];
      const loop = new VerifierLoop({
        db: sides.db,
        targets: sides.targets,
        metrics: new VerifierMetrics(registry),
        graceMs: 0,
        onReport: (report) => void reports.push(report),
      });

      const before = Date.now() / 1000;
      const report = (await loop.runOnce())!;
      const after = Date.now() / 1000;
      expect(reports).toEqual([report]);
      expect(report.differences.map((d) => [d.entity, d.key, d.fields])).toEqual([
        ['assets', [asset.id], ['totalCost']],
      ]);
      const assets = report.entities.find((e) => e.entity === 'assets')!;
      for (const entity of ENTITIES) {
        const e = report.entities.find((r) => r.entity === entity)!;
        expect(await metricValue(registry, VERIFY_METRIC.consistency, { entity: label(entity) })).toBe(
          entity === 'assets' ? 1 - 1 / assets.rowsMemory : 1,
        );
        expect(await metricValue(registry, VERIFY_METRIC.rowsChecked, { entity: label(entity) })).toBe(e.rowsMemory);
        for (const kind of ['missing_in_postgres', 'missing_in_memory', 'fields_differ']) {
          expect(await metricValue(registry, VERIFY_METRIC.differences, { entity: label(entity), kind })).toBe(
            entity === 'assets' && kind === 'fields_differ' ? 1 : 0,
          );
        }
      }
      const lastSuccess = (await metricValue(registry, VERIFY_METRIC.lastSuccess))!;
      expect(lastSuccess).toBeGreaterThanOrEqual(before);
      expect(lastSuccess).toBeLessThanOrEqual(after);
      expect([await runs(registry, 'differences'), await runs(registry, 'consistent')]).toEqual([1, undefined]);

      // The drift is repaired by hand: the next run clears the gauges and counts a consistent run.
      await sides.postgres.graph.putRecord('assets', asset);
      expect((await loop.runOnce())!.consistent).toBe(true);
      expect(
        await metricValue(registry, VERIFY_METRIC.differences, { entity: 'graph.assets', kind: 'fields_differ' }),
      ).toBe(0);
      expect(await metricValue(registry, VERIFY_METRIC.consistency, { entity: 'graph.assets' })).toBe(1);
      expect(await metricValue(registry, VERIFY_METRIC.rowsChecked, { entity: 'graph.assets' })).toBe(
        2 * assets.rowsMemory,
      );
      expect((await metricValue(registry, VERIFY_METRIC.lastSuccess))!).toBeGreaterThanOrEqual(lastSuccess);
      expect([await runs(registry, 'differences'), await runs(registry, 'consistent')]).toEqual([1, 1]);
    });

    it('skips the run when stage() returns null: nothing verified, nothing published', async () => {
      const sides = await seededSides(backend.current.db!);
      await driftOneCent(sides);
      const registry = new Registry();
      const reports: VerifyReport[] = [];
      const loop = new VerifierLoop({
        db: sides.db,
        targets: sides.targets,
        metrics: new VerifierMetrics(registry),
        graceMs: 0,
        stage: () => null,
        repair: true,
        onReport: (r) => void reports.push(r),
      });
      // Until a run completes, the last success is the start: staleness alerts count from there.
      const atStart = await metricValue(registry, VERIFY_METRIC.lastSuccess);
      expect(atStart).toBeGreaterThan(0);
      expect(await loop.runOnce()).toBeUndefined();
      expect(reports).toEqual([]);
      expect(await metricValue(registry, VERIFY_METRIC.lastSuccess)).toBe(atStart);
      expect([await runs(registry, 'differences'), await runs(registry, 'consistent')]).toEqual([undefined, undefined]);
      expect((await sides.db.query('SELECT 1 FROM dualwrite_repairs')).length).toBe(0);
    });

    it.each(['memory', 'postgres'] as const)(
      'repairs differences after the run when repair is on, %s authoritative',
      async (authoritative: Side) => {
        await backend.current.db!.query('TRUNCATE dualwrite_repairs');
        const sides = await seededSides(backend.current.db!);
        const asset = await driftOneCent(sides);
        const drifted = (await sides.postgres.graph.getAsset(asset.id))!;
        const registry = new Registry();
        const repairs: RepairResult[][] = [];
        const options: VerifierLoopOptions = {
          db: sides.db,
          targets: sides.targets,
          metrics: new VerifierMetrics(registry),
          graceMs: 0,
          repair: true,
          stage: () => ({ authoritative }),
          onReport: (_report, results) => void repairs.push([...results]),
        };
        const report = (await new VerifierLoop(options).runOnce())!;
        expect(report.consistent).toBe(false);
        expect(repairs.map((results) => results.map((r) => [r.difference.entity, r.target, r.outcome]))).toEqual([
          [['assets', authoritative === 'memory' ? 'postgres' : 'memory', 'repaired']],
        ]);
        // Both sides now hold the authoritative side's version.
        const expected = authoritative === 'memory' ? asset : drifted;
        expect([await sides.memory.graph.getAsset(asset.id), await sides.postgres.graph.getAsset(asset.id)]).toEqual([
          expected,
          expected,
        ]);
        expect((await verify(sides.db, sides.targets, { graceMs: 0 })).consistent).toBe(true);
        expect(
          await metricValue(registry, VERIFY_METRIC.repairs, { entity: 'graph.assets', outcome: 'repaired' }),
        ).toBe(1);
        expect(
          (await sides.db.query<{ outcome: string }>('SELECT outcome FROM dualwrite_repairs')).map((r) => r.outcome),
        ).toEqual(['repaired']);
      },
    );

    it('repairs every persistent difference in one run, also those past maxReported, and reports only maxReported', async () => {
      await backend.current.db!.query('TRUNCATE dualwrite_repairs');
      const sides = await seededSides(backend.current.db!);
      const projects = await sides.memory.graph.scanRecords('projects', { limit: 1000 });
      await sides.db.query("UPDATE projects SET description = 'drifted'");
      const loop = new VerifierLoop({ db: sides.db, targets: sides.targets, graceMs: 0, repair: true, maxReported: 5 });
      const report = (await loop.runOnce())!;
      expect(report.differences).toHaveLength(5);
      expect(report.entities.find((e) => e.entity === 'projects')!.differences.fields_differ).toBe(projects.length);
      expect(projects.length).toBeGreaterThan(5);
      expect((await verify(sides.db, sides.targets, { graceMs: 0 })).consistent).toBe(true);
      expect((await sides.db.query('SELECT 1 FROM dualwrite_repairs')).length).toBe(projects.length);
    });

    it('leaves differences alone when repair is off (the default)', async () => {
      await backend.current.db!.query('TRUNCATE dualwrite_repairs');
      const sides = await seededSides(backend.current.db!);
      const asset = await driftOneCent(sides);
      const drifted = await sides.postgres.graph.getAsset(asset.id);
      const loop = new VerifierLoop({ db: sides.db, targets: sides.targets, graceMs: 0 });
      expect((await loop.runOnce())!.differences.map((d) => d.key)).toEqual([[asset.id]]);
      expect([await sides.memory.graph.getAsset(asset.id), await sides.postgres.graph.getAsset(asset.id)]).toEqual([
        asset,
        drifted,
      ]);
      expect((await sides.db.query('SELECT 1 FROM dualwrite_repairs')).length).toBe(0);
    });

    it('two loops sharing one lock: concurrent runOnce runs one and skips the other', async () => {
      const sides = await seededSides(backend.current.db!);
      const registry = new Registry();
      const metrics = new VerifierMetrics(registry);
      const lock = new AdvisoryLock(sides.db);
      const loops = [0, 1].map(
        () => new VerifierLoop({ db: sides.db, targets: sides.targets, metrics, lock, graceMs: 0 }),
      );
      const outcomes = await Promise.all(loops.map((loop) => loop.runOnce()));
      expect(outcomes.filter((o) => o === undefined)).toHaveLength(1);
      expect(outcomes.find((o) => o !== undefined)!.consistent).toBe(true);
      expect([await runs(registry, 'consistent'), await runs(registry, 'skipped')]).toEqual([1, 1]);
      // Once the first run is over, either loop gets the lock again.
      expect((await loops[1]!.runOnce())!.consistent).toBe(true);
      expect([await runs(registry, 'consistent'), await runs(registry, 'skipped')]).toEqual([2, 1]);
    });

    it('two loops on one database with their default locks: one runs, the other is skipped', async () => {
      const sides = await seededSides(backend.current.db!);
      await driftOneCent(sides);
      await expectOneRunsOtherSkipped(sides, undefined, undefined);
    });

    it('concurrent runOnce calls on one loop share one run', async () => {
      const sides = await seededSides(backend.current.db!);
      const registry = new Registry();
      const loop = new VerifierLoop({
        db: sides.db,
        targets: sides.targets,
        metrics: new VerifierMetrics(registry),
        graceMs: 0,
      });
      const [x, y] = await Promise.all([loop.runOnce(), loop.runOnce()]);
      expect(x).toBe(y);
      expect([await runs(registry, 'consistent'), await runs(registry, 'skipped')]).toEqual([1, undefined]);
    });

    it('start() runs on its interval until stop(); a failing run is counted, logged and retried', async () => {
      const sides = await seededSides(backend.current.db!);
      const registry = new Registry();
      const warnings: string[] = [];
      let failing = true;
      const loop = new VerifierLoop({
        db: sides.db,
        targets: sides.targets,
        metrics: new VerifierMetrics(registry),
        graceMs: 0,
        intervalMs: 20,
        jitterMs: 0,
        stage: () => {
          if (failing) throw new Error('flags unavailable');
          return { authoritative: 'memory' };
        },
        logger: { info: () => {}, warn: (line: string) => void warnings.push(line) },
      });
      loop.start();
      await eventually(async () => expect(await runs(registry, 'failed')).toBeGreaterThanOrEqual(2));
      expect(warnings[0]).toContain('flags unavailable');
      failing = false;
      await eventually(async () => expect(await runs(registry, 'consistent')).toBeGreaterThanOrEqual(2));
      await loop.stop();
      const stopped = await runs(registry, 'consistent');
      // Time passing is the point: five intervals on, no run after stop().
      await sleep(100);
      expect(await runs(registry, 'consistent')).toBe(stopped);
    });
  });
}
