import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { MemoryGraphStore } from '../src/stores/graph/memory-graph-store.js';
import type { PgPoolExecutor } from '../src/postgres/pg-pool-executor.js';
import { quote, type TableMapping } from '../src/postgres/table-mapping.js';
import { CONTRIBUTORS } from '../src/stores/graph/graph-table-mappings.js';
import type { RecordKey, RecordPort } from '../src/ports/record-port.js';
import { AGENT_TASK_DEFINITION } from '../src/stores/agent-task/agent-task-store-definition.js';
import { GRAPH_DEFINITION } from '../src/stores/graph/graph-store-definition.js';
import { backfill, backfillStore } from '../verifier/backfill.js';
import type { BenchResult } from './dualwrite.bench.js';
import { format, rate } from './measure.js';
import { BENCH_RECORDS, benchRows, openBenchSchema, since } from './verify.bench.js';

/** Records read from memory per COPY chunk and per backfill batch, so both read alike. */
const PAGE = 5000;

/** The records of `entity`, in key order, as COPY text rows of `mapping`'s columns (the values an INSERT would get). */
async function* copyRows<Records extends object>(
  port: RecordPort<Records>,
  entity: keyof Records & string,
  mapping: TableMapping<unknown>,
): AsyncGenerator<string> {
  let after: RecordKey | undefined;
  for (;;) {
    const page = await port.scanRecords(entity, { after, limit: PAGE });
    if (page.length > 0) yield mapping.copyText(page);
    if (page.length < PAGE) return;
    after = port.keyOf(entity, page[page.length - 1]!);
  }
}

/** One COPY ... FROM STDIN of every record of `entity` into `mapping`'s table. */
export async function copyAll<Records extends object>(
  db: PgPoolExecutor,
  port: RecordPort<Records>,
  entity: keyof Records & string,
  mapping: TableMapping<unknown>,
): Promise<void> {
  const client = await db.pool.connect();
  try {
    const columns = mapping.columns.map((c) => quote(c.column)).join(', ');
    await pipeline(
      Readable.from(copyRows(port, entity, mapping)),
      client.query(copyFrom(`COPY ${mapping.table} (${columns}) FROM STDIN`)),
    );
  } finally {
    client.release();
  }
}

async function countRows(db: PgPoolExecutor, table: string): Promise<number> {
  const [row] = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
  return Number(row!.n);
}

/**
 * backfill() of `rows` contributors from the in-memory store into an empty schema,
 * against a raw COPY FROM STDIN of the same records into another empty schema, in the
 * same run. Both read the records from memory in key order, in pages of the same size.
 */
export async function benchBackfill(rows = benchRows()): Promise<BenchResult | string> {
  if (!process.env.DATABASE_URL) return 'skipped backfill bench: DATABASE_URL is not set (it needs a real PostgreSQL)';
  const started = performance.now();
  const graph = new MemoryGraphStore();
  for (let i = 0; i < rows; i++) await graph.putRecord('contributors', BENCH_RECORDS.contributors(i));
  // The store sorts its keys on the first scan; done here so neither path is charged for it.
  graph.tables.sortedKeys('contributors');
  console.log(`  backfill: ${format(rows)} contributors in memory after ${since(started)}`);

  const copyTarget = await openBenchSchema(`dw_bench_copy_${process.pid}`, {
    // One COPY statement carries every row, so it may outlast the pool's default statement timeout.
    statementTimeoutMs: 0,
  });
  try {
    const backfillTarget = await openBenchSchema(`dw_bench_backfill_${process.pid}`);
    try {
      return await compare(graph, rows, copyTarget.db, backfillTarget.db);
    } finally {
      await backfillTarget.drop();
    }
  } finally {
    await copyTarget.drop();
  }
}

async function compare(
  graph: MemoryGraphStore,
  rows: number,
  copyDb: PgPoolExecutor,
  backfillDb: PgPoolExecutor,
): Promise<BenchResult> {
  const copy = await rate(rows, () => copyAll(copyDb, graph, 'contributors', CONTRIBUTORS as TableMapping<unknown>));
  console.log(`  backfill: raw COPY took ${copy.seconds.toFixed(1)} s; backfill() running ...`);
  const backfilled = await rate(rows, async () => {
    const report = await backfill({
      stores: [
        backfillStore(GRAPH_DEFINITION, graph),
        backfillStore(AGENT_TASK_DEFINITION, AGENT_TASK_DEFINITION.createMemory()),
      ],
      db: backfillDb,
      batchSize: PAGE,
    });
    if (!report.countsMatch || report.interrupted)
      throw new Error(`backfill did not complete: ${JSON.stringify(report.totals)}`);
  });
  console.log(`  backfill: backfill() took ${backfilled.seconds.toFixed(1)} s`);

  const counts = {
    copy: await countRows(copyDb, 'contributors'),
    backfill: await countRows(backfillDb, 'contributors'),
  };
  if (counts.copy !== rows || counts.backfill !== rows)
    throw new Error(`expected ${rows} contributors in each schema, got ${JSON.stringify(counts)}`);

  const ratio = backfilled.perSecond / copy.perSecond;
  return {
    name: `backfill: ${format(rows)} contributors from memory into an empty schema, vs raw COPY of the same records`,
    headers: ['path', 'rows/s', 'vs raw COPY'],
    rows: [
      ['raw COPY FROM STDIN (text format, one statement)', format(copy.perSecond), '1.00'],
      [
        `backfill() (COPY into staging, INSERT ... ON CONFLICT DO NOTHING, batches of ${format(PAGE)}, checkpointed)`,
        format(backfilled.perSecond),
        ratio.toFixed(2),
      ],
    ],
    summary: { rows, copyPerSecond: copy.perSecond, backfillPerSecond: backfilled.perSecond, ratio },
  };
}
