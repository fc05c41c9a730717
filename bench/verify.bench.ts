import { performance } from 'node:perf_hooks';
import { diff } from 'json-diff';
import { TASK_STATUSES, TASK_TYPES, type AgentTask } from '../src/stores/agent-task/agent-task-model.js';
import type { Asset, Contribution, Contributor, DependencyEdge, Project } from '../src/stores/graph/graph-model.js';
import { encodeKey } from '../src/memory/memory-tables.js';
import { loadMigrations, migrate } from '../src/postgres/migrations.js';
import { PgPoolExecutor } from '../src/postgres/pg-pool-executor.js';
import { type PostgresPoolOptions } from '../src/postgres/pool-config.js';
import { poolOptionsFromEnv } from '../src/runtime/config.js';
import { AGENT_TASK_DEFINITION } from '../src/stores/agent-task/agent-task-store-definition.js';
import { GRAPH_DEFINITION } from '../src/stores/graph/graph-store-definition.js';
import type { AnyStoreDefinition } from '../src/stores/store-definition.js';
import type { RecordKey, RecordPort } from '../src/ports/record-port.js';
import { verifyTarget, type AnyTarget } from '../verifier/verify-target.js';
import { verify, type VerifyReport } from '../verifier/verify.js';
import type { BenchResult } from './dualwrite.bench.js';
import { format, rate } from './measure.js';

/** Rows per entity in the large benches: BENCH_ROWS, default one million. */
export function benchRows(): number {
  const rows = Number(process.env.BENCH_ROWS ?? 1_000_000);
  if (!Number.isInteger(rows) || rows < 1)
    throw new TypeError(`BENCH_ROWS must be a positive integer, got ${JSON.stringify(process.env.BENCH_ROWS)}`);
  return rows;
}

const EPOCH = Date.parse('2026-01-01T00:00:00.000Z');
const at = (i: number) => new Date(EPOCH + i * 1000).toISOString();
const uuid = (kind: number, i: number) =>
  `${kind.toString(16).padStart(8, '0')}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const packageName = (i: number) => `package-${String(i).padStart(7, '0')}`;
const cents = (i: number) => `${Math.floor(i / 100)}.${String(i % 100).padStart(2, '0')}`;
/** Text needing escapes in COPY and JSON: tab, newline, carriage return, backslash, quote. */
const AWKWARD = 'tab\there, line\nbreak, cr\rhere, back\\slash, "quoted"';

/** Contributors and assets the contributions refer to (round-robin). */
const CONTRIBUTION_PARTIES = 100;

/** Projects needed for `edges` distinct dependency edges without self-edges: p * (p - 1) >= edges. */
function projectsFor(edges: number): number {
  return Math.ceil((1 + Math.sqrt(1 + 4 * edges)) / 2);
}

/**
 * The i-th record of each entity, canonical (as the stores return it) and deterministic,
 * so memory and PostgreSQL can be loaded with the same rows. `rows` is how many of the
 * entity are made (dependencies spread their edges over projectsFor(rows) projects).
 */
export const BENCH_RECORDS = {
  projects: (i: number): Project => ({
    ecosystem: 'npm',
    name: packageName(i),
    description: i % 3 === 0 ? null : `Bench project ${i}: ${AWKWARD}`,
    homepageUrl: null,
    repositoryUrl: `https://example.com/package-${i}`,
    dependencyCount: 0,
    createdAt: at(i),
    updatedAt: at(i + 1),
  }),
  dependencies: (i: number, rows: number): DependencyEdge => {
    const others = projectsFor(rows) - 1;
    const from = Math.floor(i / others);
    const to = i % others >= from ? (i % others) + 1 : i % others;
    return {
      from: { ecosystem: 'npm', name: packageName(from) },
      to: { ecosystem: 'npm', name: packageName(to) },
      createdAt: at(i),
    };
  },
  contributors: (i: number): Contributor => ({
    id: uuid(1, i),
    name: `Contributor ${i}`,
    email: i % 2 === 0 ? `contributor-${i}@example.com` : null,
    githubUsername: `user-${i}`,
    walletAddress: i % 5 === 0 ? `0x${i.toString(16).padStart(40, '0')}` : null,
    metadata: { i, note: AWKWARD, tags: ['bench', 'verify'] },
    createdAt: at(i),
    updatedAt: at(i + 1),
  }),
  assets: (i: number): Asset => ({
    id: uuid(3, i),
    name: `Asset ${i}`,
    description: i % 2 === 0 ? AWKWARD : null,
    assetType: i % 2 === 0 ? 'code' : 'docs',
    totalCost: cents(i),
    metadata: { i },
    createdAt: at(i),
    updatedAt: at(i + 1),
  }),
  contributions: (i: number): Contribution => ({
    id: uuid(4, i),
    contributorId: uuid(1, i % CONTRIBUTION_PARTIES),
    assetId: uuid(3, i % CONTRIBUTION_PARTIES),
    costAmount: cents(i % 100_000),
    coherenceScore: `0.${String(i % 100).padStart(2, '0')}`,
    metadata: i % 2 === 0 ? {} : { i, source: 'bench' },
    timestamp: at(i),
  }),
  agent_tasks: (i: number): AgentTask => ({
    id: `task_${i.toString(16).padStart(16, '0')}`,
    direction: `Direction ${i}: ${AWKWARD}`,
    taskType: TASK_TYPES[i % TASK_TYPES.length]!,
    status: TASK_STATUSES[i % TASK_STATUSES.length]!,
    model: 'bench-model',
    command: `run --task ${i}`,
    output: i % 3 === 0 ? `output ${i}` : null,
    context: { i },
    progressPct: i % 4 === 0 ? null : i % 101,
    currentStep: null,
    decisionPrompt: null,
    decision: null,
    tier: i % 2 === 0 ? 'standard' : null,
    startedAt: i % 4 === 0 ? null : at(i + 1),
    createdAt: at(i),
    updatedAt: at(i + 2),
  }),
} satisfies Record<string, (i: number, rows: number) => object>;

type BenchEntity = keyof typeof BENCH_RECORDS;

interface Fixture {
  readonly store: AnyStoreDefinition;
  /** Rows of other entities that must exist first, on both sides (not verified themselves). */
  readonly requires?: (rows: number) => Partial<Record<BenchEntity, number>>;
}

/** The entities benched, in order. */
const FIXTURES: Record<BenchEntity, Fixture> = {
  projects: { store: GRAPH_DEFINITION },
  dependencies: { store: GRAPH_DEFINITION, requires: (rows) => ({ projects: projectsFor(rows) }) },
  contributors: { store: GRAPH_DEFINITION },
  assets: { store: GRAPH_DEFINITION },
  contributions: {
    store: GRAPH_DEFINITION,
    requires: () => ({ contributors: CONTRIBUTION_PARTIES, assets: CONTRIBUTION_PARTIES }),
  },
  agent_tasks: { store: AGENT_TASK_DEFINITION },
};

const LOAD_BATCH = 10_000;

/** One store's two sides on a bench schema, and the verify target comparing them. */
interface BenchSides {
  readonly definition: AnyStoreDefinition;
  readonly memory: RecordPort<Record<string, object>>;
  readonly postgres: RecordPort<Record<string, object>>;
  readonly target: AnyTarget;
}

/**
 * Loads records 0..count-1 of `entity` into both sides: memory through putRecord (which
 * keeps the store's indexes), PostgreSQL in batches of LOAD_BATCH rows, as the backfill
 * copies them (the asset-total trigger skipped, as record-level copies do).
 */
async function loadBoth(
  sides: BenchSides,
  db: PgPoolExecutor,
  entity: BenchEntity,
  count: number,
  rows: number,
): Promise<void> {
  for (let start = 0; start < count; start += LOAD_BATCH) {
    const batch = Array.from({ length: Math.min(LOAD_BATCH, count - start) }, (_, k) =>
      BENCH_RECORDS[entity](start + k, rows),
    );
    for (const record of batch) await sides.memory.putRecord(entity, record);
    await db.transaction((tx) => sides.definition.postgres[entity]!.bulkInsertSkippingExisting(tx, batch));
  }
}

/** A fresh, migrated schema for one bench; drop() closes the pool and removes the schema. */
export async function openBenchSchema(
  name: string,
  options: Partial<PostgresPoolOptions> = {},
): Promise<{ db: PgPoolExecutor; drop: () => Promise<void> }> {
  const admin = new PgPoolExecutor({ ...poolOptionsFromEnv(), minSize: 0 });
  await admin.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
  await admin.query(`CREATE SCHEMA ${name}`);
  const db = new PgPoolExecutor({ ...poolOptionsFromEnv(), schema: name, minSize: 0, ...options });
  const drop = async () => {
    await db.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
    await admin.close();
  };
  try {
    await migrate(db, await loadMigrations());
  } catch (error) {
    await drop();
    throw error;
  }
  return { db, drop };
}

/** Seconds since `started`, for progress lines. */
export function since(started: number): string {
  return `${((performance.now() - started) / 1000).toFixed(1)} s`;
}

const NAIVE_PAGE = 10_000;

/**
 * The naive verifier: reads every record of both sides, a page of NAIVE_PAGE memory
 * records at a time with the PostgreSQL rows of the same key range, and json-diffs
 * each pair. Returns how many records differ or are missing on one side.
 */
async function naiveDiff({ memory, postgres }: BenchSides, entity: string): Promise<number> {
  let differences = 0;
  let after: RecordKey | undefined;
  for (;;) {
    const memoryPage = await memory.scanRecords(entity, { after, limit: NAIVE_PAGE });
    // The last page's range is open-ended, so rows only PostgreSQL holds are read too.
    const until =
      memoryPage.length === NAIVE_PAGE ? memory.keyOf(entity, memoryPage[memoryPage.length - 1]!) : undefined;
    const postgresPage = await postgres.scanRecords(entity, { after, until, limit: Number.MAX_SAFE_INTEGER });
    const postgresByKey = new Map(postgresPage.map((record) => [encodeKey(postgres.keyOf(entity, record)), record]));
    for (const record of memoryPage) {
      const key = encodeKey(memory.keyOf(entity, record));
      const other = postgresByKey.get(key);
      if (other === undefined || diff(record, other) !== undefined) differences++;
      postgresByKey.delete(key);
    }
    differences += postgresByKey.size;
    if (until === undefined) return differences;
    after = until;
  }
}

/** New stores of both sides, and a verify target whose catalog holds only `entity`, so verify() checks it alone. */
function singleEntitySides(entity: BenchEntity, db: PgPoolExecutor): BenchSides {
  const definition = FIXTURES[entity].store;
  const [memory, postgres] = [definition.createMemory(), definition.createPostgres(db)];
  const full = verifyTarget(definition, memory, postgres);
  return { definition, memory, postgres, target: { ...full, catalog: { [entity]: full.catalog[entity]! } } };
}

/**
 * verify() on identical sides (range checksums, PostgreSQL's computed inside PostgreSQL)
 * against the naive verifier (fetch every row of both sides and json-diff each pair), per
 * entity, `rows` rows each, in the same run. Each entity gets fresh stores and a fresh schema.
 */
export async function benchVerify(rows = benchRows()): Promise<BenchResult | string> {
  if (!process.env.DATABASE_URL) return 'skipped verify bench: DATABASE_URL is not set (it needs a real PostgreSQL)';
  const table: (string | number)[][] = [];
  const summary: Record<string, number> = {};
  for (const entity of Object.keys(FIXTURES) as BenchEntity[]) {
    const { db, drop } = await openBenchSchema(`dw_bench_verify_${process.pid}`);
    try {
      const sides = singleEntitySides(entity, db);
      const { target } = sides;
      let started = performance.now();
      for (const [required, count] of Object.entries(FIXTURES[entity].requires?.(rows) ?? {})) {
        await loadBoth(sides, db, required as BenchEntity, count, rows);
      }
      await loadBoth(sides, db, entity, rows, rows);
      // The memory store sorts its keys on the first count; done here so neither verifier is charged for it.
      await target.sidesOn(db).memory.checksums.count(entity, {});
      await db.query('ANALYZE projects, project_dependencies, contributors, assets, contributions, agent_tasks');
      console.log(`  verify ${entity}: loaded ${format(rows)} rows into memory and PostgreSQL in ${since(started)}`);

      const verified = async () => {
        let report: VerifyReport | undefined;
        const measured = await rate(rows, async () => {
          report = await verify(db, [target]);
        });
        const [checked] = report!.entities;
        if (
          !report!.consistent ||
          checked!.rowsFetched !== 0 ||
          checked!.rowsMemory !== rows ||
          checked!.rowsPostgres !== rows
        ) {
          throw new Error(
            `verify() on identical ${entity} should find nothing and fetch no rows: ${JSON.stringify(checked)}`,
          );
        }
        return measured;
      };
      // The first run hashes every record in JavaScript; later runs (the background loop) reuse those hashes.
      const fast = await verified();
      const warm = await verified();
      console.log(
        `  verify ${entity}: verify() took ${fast.seconds.toFixed(1)} s cold, ${warm.seconds.toFixed(1)} s warm; naive diff running ...`,
      );

      started = performance.now();
      let differences = -1;
      const naive = await rate(rows, async () => {
        differences = await naiveDiff(sides, entity);
      });
      if (differences !== 0) throw new Error(`naive diff of identical ${entity} found ${differences} differences`);
      console.log(`  verify ${entity}: naive diff took ${since(started)}`);

      const speedup = naive.seconds / fast.seconds;
      const warmSpeedup = naive.seconds / warm.seconds;
      table.push([
        entity,
        format(rows),
        naive.seconds.toFixed(1),
        fast.seconds.toFixed(1),
        `${speedup.toFixed(1)}x`,
        warm.seconds.toFixed(1),
        `${warmSpeedup.toFixed(1)}x`,
      ]);
      Object.assign(summary, {
        [`${entity}.naiveSeconds`]: naive.seconds,
        [`${entity}.coldSeconds`]: fast.seconds,
        [`${entity}.coldSpeedup`]: speedup,
        [`${entity}.warmSeconds`]: warm.seconds,
        [`${entity}.warmSpeedup`]: warmSpeedup,
      });
    } finally {
      await drop();
    }
  }
  return {
    name: `verify: identical sides, ${format(rows)} rows per entity, verify() (range checksums) vs naive fetch-and-json-diff of every row`,
    headers: ['entity', 'rows', 'naive s', 'verify() cold s', 'speedup', 'verify() warm s', 'speedup'],
    rows: table,
    summary,
  };
}
