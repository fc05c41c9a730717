import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { FlagState } from '../flags/flag-state.js';
import { ManualFlagSource } from '../flags/manual-flags.js';
import { createDualWriteStore } from '../src/dualwrite/dual-write-store.js';
import { FileOutbox } from '../src/dualwrite/file-outbox.js';
import { GRAPH_STORE_METHODS } from '../src/stores/graph/graph-store-definition.js';
import { DualWriteMetrics } from '../src/dualwrite/metrics.js';
import { Mirror } from '../src/dualwrite/mirror.js';
import { StageGate } from '../src/dualwrite/stage-gate.js';
import { openDualWrite } from '../src/runtime/open-dual-write.js';
import { MemoryGraphStore } from '../src/stores/graph/memory-graph-store.js';
import { PgPoolExecutor } from '../src/postgres/pg-pool-executor.js';
import type { GraphStore } from '../src/stores/graph/graph-store.js';
import { formatTable } from '../src/cli/table.js';
import { withBenchSchema } from './bench-database.js';
import { compareRates, format, rate, withConcurrency } from './measure.js';

export interface BenchResult {
  readonly name: string;
  readonly rows: (string | number)[][];
  readonly headers: string[];
  readonly summary: Record<string, number>;
  /** What the bench's own correctness checks found wrong (not timings); any makes the run exit 1. */
  readonly failures?: readonly string[];
}

/** How `npm run bench` was asked to run the benches. */
export interface BenchOptions {
  /** A size that finishes in seconds (CI proves the benches run; the figures mean nothing). */
  readonly small: boolean;
  /** The benches that have one run their sustained-load variant instead (http: a fixed rate for 10 minutes). */
  readonly long: boolean;
}

/**
 * getProject throughput through a DualWriteStore at dual-write (0% of reads to
 * PostgreSQL, metrics on) against the raw in-memory store, in the same run.
 */
export async function benchReadOverhead(projects = 10_000, reads = 200_000): Promise<BenchResult> {
  const memory = new MemoryGraphStore();
  for (let i = 0; i < projects; i++) await memory.upsertProject({ ecosystem: 'npm', name: `package-${i}` });
  const dir = await mkdtemp(join(tmpdir(), 'dw-bench-'));
  const outbox = await FileOutbox.open({ path: join(dir, 'outbox.jsonl') });
  const metrics = new DualWriteMetrics(new Registry());
  const flags = new FlagState([new ManualFlagSource({ stage: 'dual-write', readPercent: 0 })]);
  const mirror = new Mirror(() => memory, { outbox, metrics });
  const gate = new StageGate({ flags, mirror, drainFor: async () => undefined });
  await gate.open();
  // The read path never touches the PostgreSQL side at this stage, so a second memory store stands in for it.
  const dual = createDualWriteStore<GraphStore>({
    name: 'graph',
    description: GRAPH_STORE_METHODS,
    memory,
    postgres: new MemoryGraphStore(),
    gate,
    mirror,
    metrics,
  });
  const refs = Array.from({ length: reads }, (_, i) => ({
    ecosystem: 'npm',
    name: `package-${(i * 7919) % projects}`,
  }));
  const loop = (store: GraphStore) => () =>
    rate(reads, async () => {
      for (const ref of refs) await store.getProject(ref);
    });
  const result = await compareRates(5, { raw: loop(memory), dual: loop(dual) });
  await outbox.close();
  await rm(dir, { recursive: true, force: true });
  const overhead = result.raw!.perSecond / result.dual!.perSecond;
  return {
    name: 'read overhead: getProject, dual-write stage, 0% to PostgreSQL',
    headers: ['store', 'gets/s (median of 5)', 'relative'],
    rows: [
      ['raw MemoryGraphStore', format(result.raw!.perSecond), '1.00'],
      ['DualWriteStore', format(result.dual!.perSecond), (result.dual!.perSecond / result.raw!.perSecond).toFixed(2)],
    ],
    summary: { rawPerSecond: result.raw!.perSecond, dualPerSecond: result.dual!.perSecond, slowdown: overhead },
  };
}

/**
 * Mirrored writes per second into real PostgreSQL (createContributor through the
 * DualWriteStore, async mirror with its defaults, 64 concurrent callers, timed until the mirror drained)
 * against naive mirroring: one awaited INSERT per write, in the same run and schema.
 */
export async function benchMirroredWrites(writes = 20_000): Promise<BenchResult | string> {
  if (!process.env.DATABASE_URL)
    return 'skipped mirrored-writes bench: DATABASE_URL is not set (it needs a real PostgreSQL)';
  const dir = await mkdtemp(join(tmpdir(), 'dw-bench-'));
  try {
    return await withBenchSchema('dw_bench', (db) => mirroredWrites(db, dir, writes));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function mirroredWrites(db: PgPoolExecutor, dir: string, writes: number): Promise<BenchResult> {
  const contributor = (i: number, run: string) => ({ id: uuid(run, i), name: `contributor ${i}`, metadata: { i } });
  const naiveSequential = await rate(writes, async () => {
    for (let i = 0; i < writes; i++) {
      const c = contributor(i, '1');
      await db.query(
        'INSERT INTO contributors (id, name, metadata, created_at, updated_at) VALUES ($1, $2, $3, now(), now())',
        [c.id, c.name, JSON.stringify(c.metadata)],
      );
    }
  });
  const naiveConcurrent = await rate(writes, () =>
    withConcurrency(writes, 64, async (i) => {
      const c = contributor(i, '2');
      await db.query(
        'INSERT INTO contributors (id, name, metadata, created_at, updated_at) VALUES ($1, $2, $3, now(), now())',
        [c.id, c.name, JSON.stringify(c.metadata)],
      );
    }),
  );
  /** 64 callers through an async-mirrored runtime, timed until PostgreSQL holds every write. */
  const mirrored = async (run: string, intentLog: boolean) => {
    const outbox = await FileOutbox.open({ path: join(dir, `outbox-${run}.jsonl`) });
    const runtime = await openDualWrite({
      db,
      env: {},
      flags: new FlagState([new ManualFlagSource({ stage: 'dual-write' })]),
      outbox,
      verifier: { enabled: false },
      mirror: { mode: 'async' },
      ...(intentLog ? {} : { intentLog: false as const }),
    });
    const measured = await rate(writes, async () => {
      await withConcurrency(writes, 64, (i) => runtime.graph.createContributor(contributor(i, run)));
      await runtime.mirror.drain();
    });
    const inPostgres = Number(
      (
        await db.query<{ n: string }>(`SELECT count(*) AS n FROM contributors WHERE id::text LIKE '0000000${run}-%'`)
      )[0]!.n,
    );
    if (inPostgres !== writes || runtime.outbox.stats().depth !== 0)
      throw new Error(
        `mirrored writes incomplete: ${inPostgres} in PostgreSQL, outbox ${runtime.outbox.stats().depth}`,
      );
    await runtime.close();
    await outbox.close();
    return measured;
  };
  const durable = await mirrored('3', true);
  const volatile = await mirrored('4', false);
  const ratio = (r: { perSecond: number }) => (r.perSecond / naiveSequential.perSecond).toFixed(2);
  return {
    name: `mirrored writes into PostgreSQL (${writes} createContributor)`,
    headers: ['path', 'writes/s', 'vs naive sequential'],
    rows: [
      ['naive: one awaited INSERT per write', format(naiveSequential.perSecond), '1.00'],
      ['naive, 64 concurrent callers', format(naiveConcurrent.perSecond), ratio(naiveConcurrent)],
      [
        'DualWriteStore async mirror, intent log (acknowledged after fsync), drained',
        format(durable.perSecond),
        ratio(durable),
      ],
      ['DualWriteStore async mirror without intent log, drained', format(volatile.perSecond), ratio(volatile)],
    ],
    summary: {
      naiveSequential: naiveSequential.perSecond,
      naiveConcurrent: naiveConcurrent.perSecond,
      mirrored: durable.perSecond,
      mirroredWithoutIntentLog: volatile.perSecond,
    },
  };
}

function uuid(run: string, i: number): string {
  return `0000000${run}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
}

export function printResult(result: BenchResult | string): void {
  if (typeof result === 'string') return console.log(`\n${result}`);
  console.log(`\n${result.name}\n${formatTable(result.headers, result.rows)}`);
}
