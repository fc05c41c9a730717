import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MirrorMode } from '../src/dualwrite/mirror.js';
import { MemoryGraphStore } from '../src/stores/graph/memory-graph-store.js';
import type { PgPoolExecutor } from '../src/postgres/pg-pool-executor.js';
import type { GraphStore } from '../src/stores/graph/graph-store.js';
import { GRAPH_DEFINITION } from '../src/stores/graph/graph-store-definition.js';
import { withBenchSchema } from './bench-database.js';
import { openBenchRuntime, verifiedDifferences } from './bench-runtime.js';
import type { BenchResult } from './dualwrite.bench.js';
import { format, rate, withConcurrency, type Rate } from './measure.js';

/** How much the indexing run writes. */
export interface BulkIndexSize {
  /** Projects indexed. Default 10000. */
  readonly projects: number;
  /** Dependencies of each project (on earlier ones, fewer for the first few). Default 3. */
  readonly dependenciesPerProject?: number;
  /** Writes in flight at once, as an indexer's workers would send them. Default 16. */
  readonly concurrency?: number;
}

const project = (i: number) => ({ ecosystem: 'npm', name: `indexed-${i}` });

/** Project i's dependencies: distinct earlier projects, spread by a multiplicative hash. */
function dependenciesOf(i: number, count: number): number[] {
  const targets = new Set<number>();
  for (let k = 0; k < count && targets.size < i; k++) {
    let target = Math.imul(i * (k + 7), 0x9e3779b1) >>> 0;
    target %= i;
    while (targets.has(target)) target = (target + 1) % i;
    targets.add(target);
  }
  return [...targets];
}

/** An indexing run through `graph`: every project upserted, then every dependency edge added, `concurrency` calls in flight. */
async function indexAll(
  graph: GraphStore,
  projects: number,
  edges: readonly [number, number][],
  concurrency: number,
): Promise<void> {
  await withConcurrency(projects, concurrency, (i) =>
    graph.upsertProject({
      ...project(i),
      description: `indexed package ${i}`,
      repositoryUrl: `https://example.com/indexed-${i}`,
    }),
  );
  await withConcurrency(edges.length, concurrency, (e) =>
    graph.addDependency(project(edges[e]![0]), project(edges[e]![1])),
  );
}

/**
 * Bulk indexing of `projects` projects with their dependencies through the dual-write
 * GraphStore (sync mirror; async mirror, timed until drained) into a real PostgreSQL,
 * against the raw in-memory store and the raw PostgreSQL store, in the same run. Each
 * dual-write run must leave both sides equal (verify) holding every project and edge.
 */
export async function benchBulkIndex(
  { projects, dependenciesPerProject = 3, concurrency = 16 }: BulkIndexSize = { projects: 10_000 },
): Promise<BenchResult | string> {
  if (!process.env.DATABASE_URL)
    return 'skipped bulk-index bench: DATABASE_URL is not set (it needs a real PostgreSQL)';
  const edges = Array.from({ length: projects }, (_, i) =>
    dependenciesOf(i, dependenciesPerProject).map((to) => [i, to] as [number, number]),
  ).flat();
  const dir = await mkdtemp(join(tmpdir(), 'dw-bench-index-'));
  try {
    return await withBenchSchema('dw_bench_index', async (db) => {
      const failures: string[] = [];
      const expectStored = async (path: string) => {
        const [counts] = await db.query<{ projects: string; edges: string }>(
          'SELECT (SELECT count(*) FROM projects) AS projects, (SELECT count(*) FROM project_dependencies) AS edges',
        );
        if (Number(counts!.projects) !== projects || Number(counts!.edges) !== edges.length) {
          failures.push(
            `${path}: PostgreSQL holds ${counts!.projects} projects and ${counts!.edges} edges, expected ${projects} and ${edges.length}`,
          );
        }
        await db.query('TRUNCATE projects, project_dependencies CASCADE');
      };
      console.log(
        `  bulk-index: ${format(projects)} projects, ${format(edges.length)} edges, ${concurrency} in flight`,
      );
      const writes = projects + edges.length;
      const memory = await rate(writes, () => indexAll(new MemoryGraphStore(), projects, edges, concurrency));
      const postgres = await rate(writes, () =>
        indexAll(GRAPH_DEFINITION.createPostgres(db), projects, edges, concurrency),
      );
      await expectStored('raw PostgreSQL');
      console.log(
        `  bulk-index: raw memory ${memory.seconds.toFixed(2)} s, raw PostgreSQL ${postgres.seconds.toFixed(1)} s`,
      );
      const dualWrite = async (mode: MirrorMode) => {
        const run = await dualWriteRun(db, dir, mode, projects, edges, concurrency);
        console.log(
          `  bulk-index: dual-write ${mode} ${run.rate.seconds.toFixed(1)} s, verify: ${run.differences} differences`,
        );
        if (run.differences !== 0)
          failures.push(
            `dual-write ${mode}: verify found ${run.differences} records differing between memory and PostgreSQL`,
          );
        await expectStored(`dual-write ${mode}`);
        return run;
      };
      const dual = { sync: await dualWrite('sync'), async: await dualWrite('async') };
      const row = (path: string, measured: Rate, differences: string) => [
        path,
        format(measured.perSecond),
        measured.seconds.toFixed(2),
        (measured.perSecond / memory.perSecond).toFixed(3),
        (measured.perSecond / postgres.perSecond).toFixed(2),
        differences,
      ];
      return {
        name: `bulk-index: ${format(projects)} projects + ${format(edges.length)} dependencies (upsertProject, then addDependency, ${concurrency} in flight), real PostgreSQL`,
        headers: ['path', 'writes/s', 'seconds', 'vs raw memory', 'vs raw PostgreSQL', 'verify differences'],
        rows: [
          row('raw MemoryGraphStore', memory, '-'),
          row('raw PostgresGraphStore', postgres, '-'),
          row('DualWriteStore, dual-write, sync mirror', dual.sync.rate, String(dual.sync.differences)),
          row(
            'DualWriteStore, dual-write, async mirror (until drained)',
            dual.async.rate,
            String(dual.async.differences),
          ),
        ],
        summary: {
          projects,
          edges: edges.length,
          memoryPerSecond: memory.perSecond,
          postgresPerSecond: postgres.perSecond,
          syncPerSecond: dual.sync.rate.perSecond,
          asyncPerSecond: dual.async.rate.perSecond,
          syncVsMemory: dual.sync.rate.perSecond / memory.perSecond,
          syncVsPostgres: dual.sync.rate.perSecond / postgres.perSecond,
          asyncVsPostgres: dual.async.rate.perSecond / postgres.perSecond,
          syncDifferences: dual.sync.differences ?? -1,
          asyncDifferences: dual.async.differences ?? -1,
        },
        failures,
      };
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function dualWriteRun(
  db: PgPoolExecutor,
  dir: string,
  mode: MirrorMode,
  projects: number,
  edges: readonly [number, number][],
  concurrency: number,
) {
  const { runtime, close } = await openBenchRuntime(db, dir, mode);
  try {
    const measured = await rate(projects + edges.length, async () => {
      await indexAll(runtime.graph, projects, edges, concurrency);
      await runtime.mirror.drain();
    });
    return { rate: measured, differences: await verifiedDifferences(runtime) };
  } finally {
    await close();
  }
}
