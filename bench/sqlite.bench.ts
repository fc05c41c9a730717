import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { DISPATCH_ENTITY_NAMES, DISPATCH_TABLES } from '../src/stores/dispatch/dispatch-records.js';
import type { PgPoolExecutor } from '../src/postgres/pg-pool-executor.js';
import { quote } from '../src/postgres/table-mapping.js';
import { type SqliteDatabase } from '../src/sqlite/better-sqlite3.js';
import { openDispatchDatabase } from '../src/stores/dispatch/sqlite-dispatch-database.js';
import { generateDispatchDb } from '../test/support/generate-dispatch-db.js';
import { migrateSqlite } from '../src/stores/dispatch/migrate-sqlite.js';
import { copyField } from '../src/postgres/table-mapping.js';
import type { BenchResult } from './dualwrite.bench.js';
import { format, rate } from './measure.js';
import { openBenchSchema, since } from './verify.bench.js';

/** Rows per INSERT of migrate-sqlite, and rows per COPY chunk. */
const BATCH = 5000;

/** Tasks in the generated dispatch.db: BENCH_TASKS, default 100,000 (the other tables get ~2.5 rows per task). */
export function benchTasks(): number {
  const tasks = Number(process.env.BENCH_TASKS ?? 100_000);
  if (!Number.isInteger(tasks) || tasks < 1)
    throw new TypeError(`BENCH_TASKS must be a positive integer, got ${JSON.stringify(process.env.BENCH_TASKS)}`);
  return tasks;
}

/** Every row of one SQLite table as COPY text, cells as SQLite holds them, `BATCH` rows per chunk. */
function* copyRows(sqlite: SqliteDatabase, table: string, columns: string): Generator<string> {
  let chunk = '';
  let rows = 0;
  for (const row of sqlite.prepare(`SELECT ${columns} FROM ${table}`).raw(true).iterate() as IterableIterator<
    unknown[]
  >) {
    chunk += `${row.map(copyField).join('\t')}\n`;
    if (++rows % BATCH === 0) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

/** One COPY ... FROM STDIN per table, dates read as UTC as migrate-sqlite reads them. */
async function rawCopy(sqlite: SqliteDatabase, db: PgPoolExecutor): Promise<void> {
  const client = await db.pool.connect();
  try {
    await client.query(`SET TimeZone = 'UTC'`);
    for (const entity of DISPATCH_ENTITY_NAMES) {
      const { table, columns } = DISPATCH_TABLES[entity];
      const list = columns.map((c) => quote(c.column)).join(', ');
      await pipeline(
        Readable.from(copyRows(sqlite, table, list)),
        client.query(copyFrom(`COPY ${table} (${list}) FROM STDIN`)),
      );
    }
  } finally {
    client.release();
  }
}

async function totalRows(db: PgPoolExecutor): Promise<number> {
  let total = 0;
  for (const entity of DISPATCH_ENTITY_NAMES)
    total += Number(
      (await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${DISPATCH_TABLES[entity].table}`))[0]!.n,
    );
  return total;
}

/**
 * migrateSqlite() of a generated dispatch.db (`tasks` tasks and the other tables' rows)
 * into an empty schema, against a raw COPY FROM STDIN of the same rows (cells as SQLite
 * holds them, unchecked) into another empty schema, in the same run; then the re-run,
 * which finds every row there and inserts nothing.
 */
export async function benchSqlite(tasks = benchTasks()): Promise<BenchResult | string> {
  if (!process.env.DATABASE_URL) return 'skipped sqlite bench: DATABASE_URL is not set (it needs a real PostgreSQL)';
  const dir = await mkdtemp(join(tmpdir(), 'dw-bench-sqlite-'));
  const started = performance.now();
  const sqlite = openDispatchDatabase(join(dir, 'dispatch.db'));
  try {
    const counts = generateDispatchDb(sqlite, { tasks });
    const rows = Object.values(counts).reduce((sum, n) => sum + n, 0);
    console.log(`  sqlite: dispatch.db with ${format(rows)} rows (${format(tasks)} tasks) after ${since(started)}`);
    const copyTarget = await openBenchSchema(`dw_bench_sqlite_copy_${process.pid}`, { statementTimeoutMs: 0 });
    try {
      const migrateTarget = await openBenchSchema(`dw_bench_sqlite_migrate_${process.pid}`, { statementTimeoutMs: 0 });
      try {
        const copy = await rate(rows, () => rawCopy(sqlite, copyTarget.db));
        console.log(`  sqlite: raw COPY took ${copy.seconds.toFixed(1)} s; migrate-sqlite running ...`);
        const migrated = await rate(rows, async () => {
          const report = await migrateSqlite(sqlite, migrateTarget.db, { batchSize: BATCH });
          if (!report.countsMatch || report.invalidCells.length > 0)
            throw new Error(`migrate-sqlite did not copy everything: ${JSON.stringify(report.totals)}`);
        });
        console.log(`  sqlite: migrate-sqlite took ${migrated.seconds.toFixed(1)} s; re-run ...`);
        const rerun = await rate(rows, async () => {
          const report = await migrateSqlite(sqlite, migrateTarget.db, { batchSize: BATCH });
          if (report.totals.inserted !== 0) throw new Error(`the re-run inserted ${report.totals.inserted} rows`);
        });
        const landed = { copy: await totalRows(copyTarget.db), migrate: await totalRows(migrateTarget.db) };
        if (landed.copy !== rows || landed.migrate !== rows)
          throw new Error(`expected ${rows} rows in each schema, got ${JSON.stringify(landed)}`);
        const ratio = migrated.perSecond / copy.perSecond;
        return {
          name: `sqlite: dispatch.db (${format(tasks)} tasks, ${format(rows)} rows in 6 tables) into an empty schema, vs raw COPY of the same rows`,
          headers: ['path', 'rows/s', 'vs raw COPY'],
          rows: [
            ['raw COPY FROM STDIN (cells unchecked, one COPY per table)', format(copy.perSecond), '1.00'],
            [
              `migrate-sqlite (every cell checked, INSERT ... unnest ON CONFLICT DO NOTHING, batches of ${format(BATCH)})`,
              format(migrated.perSecond),
              ratio.toFixed(2),
            ],
            [
              'migrate-sqlite re-run (every row already there: nothing inserted)',
              format(rerun.perSecond),
              (rerun.perSecond / copy.perSecond).toFixed(2),
            ],
          ],
          summary: {
            tasks,
            rows,
            copyPerSecond: copy.perSecond,
            migratePerSecond: migrated.perSecond,
            rerunPerSecond: rerun.perSecond,
            ratio,
          },
        };
      } finally {
        await migrateTarget.drop();
      }
    } finally {
      await copyTarget.drop();
    }
  } finally {
    sqlite.close();
    await rm(dir, { recursive: true, force: true });
  }
}
