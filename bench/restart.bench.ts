import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { to as copyTo } from 'pg-copy-streams';
import { FlagState } from '../flags/flag-state.js';
import { ManualFlagSource } from '../flags/manual-flags.js';
import { MemoryGraphStore } from '../src/stores/graph/memory-graph-store.js';
import { LineageStore } from '../src/postgres/runtime-state/lineage-store.js';
import type { PgPoolExecutor } from '../src/postgres/pg-pool-executor.js';
import { quote } from '../src/postgres/table-mapping.js';
import { CONTRIBUTORS } from '../src/stores/graph/graph-table-mappings.js';
import { openDualWrite } from '../src/runtime/open-dual-write.js';
import { copyAll } from './backfill.bench.js';
import type { BenchResult } from './dualwrite.bench.js';
import { format } from './measure.js';
import { BENCH_RECORDS, benchRows, openBenchSchema, since } from './verify.bench.js';

/** Drains a COPY ... TO STDOUT of every contributor's mapped columns: what PostgreSQL alone takes to hand the rows out. */
async function copyOut(db: PgPoolExecutor): Promise<number> {
  const client = await db.pool.connect();
  let bytes = 0;
  try {
    const columns = CONTRIBUTORS.columns.map((c) => quote(c.column)).join(', ');
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        done();
      },
    });
    await pipeline(client.query(copyTo(`COPY (SELECT ${columns} FROM ${CONTRIBUTORS.table}) TO STDOUT`)), sink);
  } finally {
    client.release();
  }
  return bytes;
}

/**
 * A restart in dual-write with `rows` contributors in PostgreSQL: openDualWrite rebuilds
 * memory from PostgreSQL before it serves. Its rebuild against the baseline of PostgreSQL
 * handing the same rows out with COPY TO STDOUT (no parsing, no memory store), in the same run;
 * the rebuilt memory is checked against PostgreSQL.
 */
export async function benchRestart(rows = benchRows()): Promise<BenchResult | string> {
  if (!process.env.DATABASE_URL) return 'skipped restart bench: DATABASE_URL is not set (it needs a real PostgreSQL)';
  const started = performance.now();
  const source = new MemoryGraphStore();
  for (let i = 0; i < rows; i++) await source.putRecord('contributors', BENCH_RECORDS.contributors(i));
  const { db, drop } = await openBenchSchema(`dw_bench_restart_${process.pid}`);
  const failures: string[] = [];
  try {
    await copyAll(db, source, 'contributors', CONTRIBUTORS);
    // As a table weeks into a migration is: autovacuum has analyzed it (a fresh COPY leaves the planner guessing).
    await db.query(`ANALYZE ${CONTRIBUTORS.table}`);
    // What the process before the restart left: PostgreSQL mirrored in dual-write.
    await new LineageStore(db).apply({
      stage: 'dual-write',
      bumps: 1,
      memoryOnlyRan: false,
      postgresComplete: true,
      by: 'bench',
    });
    console.log(`  restart: ${format(rows)} contributors in PostgreSQL after ${since(started)}`);

    const copyStarted = performance.now();
    const bytes = await copyOut(db);
    const copySeconds = (performance.now() - copyStarted) / 1000;

    const openStarted = performance.now();
    const rt = await openDualWrite({
      db,
      env: {},
      flags: new FlagState([new ManualFlagSource({ stage: 'dual-write' })]),
      intentLog: false,
      lease: false,
      verifier: { enabled: false },
      logger: { info() {}, warn() {}, error: console.error },
    });
    const openSeconds = (performance.now() - openStarted) / 1000;
    try {
      const rebuilt = rt.lineage.atStart.rebuilt;
      if (!rebuilt) failures.push(`memory was not rebuilt: ${rt.lineage.atStart.reason}`);
      const inMemory = rt.memory.graph.tables.size('contributors');
      if (inMemory !== rows)
        failures.push(`memory holds ${inMemory} contributors after the rebuild, PostgreSQL ${rows}`);
      for (const i of [0, Math.floor(rows / 2), rows - 1]) {
        const key = source.keyOf('contributors', BENCH_RECORDS.contributors(i));
        const [fromPostgres, fromMemory] = [
          await rt.postgres.graph.getRecord('contributors', key),
          await rt.memory.graph.getRecord('contributors', key),
        ];
        if (JSON.stringify(fromMemory) !== JSON.stringify(fromPostgres))
          failures.push(`contributor ${i} differs after the rebuild`);
      }
      const rebuildSeconds = rebuilt?.seconds ?? Number.NaN;
      return {
        name: `restart in dual-write: memory rebuilt from ${format(rows)} contributors in PostgreSQL, against COPY TO STDOUT of the same rows (${format(bytes)} bytes)`,
        headers: ['path', 'seconds', 'rows/s', 'x COPY out'],
        rows: [
          ['COPY TO STDOUT (baseline)', copySeconds.toFixed(2), format(rows / copySeconds), '1.00'],
          [
            'rebuild (openDualWrite)',
            rebuildSeconds.toFixed(2),
            format(rows / rebuildSeconds),
            (rebuildSeconds / copySeconds).toFixed(2),
          ],
          [
            'openDualWrite in all',
            openSeconds.toFixed(2),
            format(rows / openSeconds),
            (openSeconds / copySeconds).toFixed(2),
          ],
        ],
        summary: { rows, copySeconds, rebuildSeconds, openSeconds, ratio: rebuildSeconds / copySeconds },
        failures,
      };
    } finally {
      await rt.close();
    }
  } finally {
    await drop();
  }
}
