import type BetterSqlite3 from 'better-sqlite3';
import { DISPATCH_ENTITY_NAMES, DISPATCH_TABLES, type DispatchTable } from './dispatch-records.js';
import { ValidationError } from '../../domain/errors.js';
import { DISPATCH_COLUMN_TYPES } from './dispatch-table-mappings.js';
import type { SqlExecutor } from '../../postgres/sql-executor.js';
import { quote, sqlType } from '../../postgres/table-mapping.js';
import type { SqliteDatabase } from '../../sqlite/better-sqlite3.js';
import { sqliteCellText } from './sqlite-cells.js';

/** Options of migrateSqlite(). */
export interface MigrateSqliteOptions {
  /** Rows per INSERT statement. Default 1000. */
  readonly batchSize?: number;
  /** Called after each batch and at the end of each table. Default: none. */
  readonly onProgress?: (event: { table: string; rowsDone: number; rows: number }) => void;
}

/** A SQLite cell that PostgreSQL could not hold as it is: its row was not copied. */
export interface InvalidCell {
  readonly table: string;
  /** The row's key, as text. */
  readonly key: readonly string[];
  readonly column: string;
  /** The cell as SQLite holds it, as text (cut at 200 characters). */
  readonly value: string | null;
  readonly problem: string;
}

export interface TableMigration {
  readonly table: string;
  readonly sqliteRows: number;
  /** Rows this run inserted. */
  readonly inserted: number;
  /** Valid rows whose key PostgreSQL already held (an earlier run, or mirrored writes): left as they are. */
  readonly alreadyPresent: number;
  /** Rows not copied because a cell is invalid (listed in invalidCells). */
  readonly invalidRows: number;
  /** SELECT count(*) in PostgreSQL after the copy. */
  readonly postgresRows: number;
  readonly countsMatch: boolean;
}

export interface MigrateSqliteReport {
  readonly tables: readonly TableMigration[];
  readonly invalidCells: readonly InvalidCell[];
  readonly totals: {
    readonly sqliteRows: number;
    readonly inserted: number;
    readonly alreadyPresent: number;
    readonly invalidRows: number;
  };
  /** Every table holds as many rows in PostgreSQL as in SQLite. */
  readonly countsMatch: boolean;
  /** SERIAL sequences moved past the copied ids: `next` is the id the next insert gets. */
  readonly sequences: readonly { readonly table: string; readonly column: string; readonly next: number }[];
  readonly seconds: number;
}

const DEFAULT_BATCH_SIZE = 1000;
const VALUE_CUT = 200;

/**
 * Copies every dispatch table of a SQLite database into PostgreSQL's (schema 007), in key
 * order and batches, each one INSERT ... ON CONFLICT DO NOTHING: rows already there are
 * left as they are, so a re-run inserts nothing. Every cell is checked against its column
 * first (sqliteCellText); a row with an invalid cell is not inserted and each invalid cell
 * is reported with its table, key and column. Then the row counts of both sides are
 * compared and SERIAL sequences set past the copied ids.
 */
export async function migrateSqlite(
  sqlite: SqliteDatabase,
  db: SqlExecutor,
  options: MigrateSqliteOptions = {},
): Promise<MigrateSqliteReport> {
  const started = Date.now();
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new TypeError(`batchSize must be a positive integer, got ${batchSize}`);
  const tables: TableMigration[] = [];
  const invalidCells: InvalidCell[] = [];
  for (const entity of DISPATCH_ENTITY_NAMES) {
    tables.push(
      await migrateTable(
        sqlite,
        db,
        DISPATCH_TABLES[entity] as DispatchTable<unknown>,
        batchSize,
        invalidCells,
        options.onProgress,
      ),
    );
  }
  const sequences = await advanceSequences(db);
  const sum = (field: 'sqliteRows' | 'inserted' | 'alreadyPresent' | 'invalidRows') =>
    tables.reduce((total, table) => total + table[field], 0);
  return {
    tables,
    invalidCells,
    totals: {
      sqliteRows: sum('sqliteRows'),
      inserted: sum('inserted'),
      alreadyPresent: sum('alreadyPresent'),
      invalidRows: sum('invalidRows'),
    },
    countsMatch: tables.every((table) => table.countsMatch),
    sequences,
    seconds: (Date.now() - started) / 1000,
  };
}

async function migrateTable(
  sqlite: SqliteDatabase,
  db: SqlExecutor,
  spec: DispatchTable<unknown>,
  batchSize: number,
  invalidCells: InvalidCell[],
  onProgress: MigrateSqliteOptions['onProgress'],
): Promise<TableMigration> {
  const columns = spec.columns.map((c) => quote(c.column)).join(', ');
  const sqliteRows = Number((sqlite.prepare(`SELECT count(*) AS n FROM ${spec.table}`).get() as { n: number }).n);
  // safeIntegers: 64-bit integers as bigint, so a value beyond 2^53 is checked, not rounded.
  const rows = sqlite
    .prepare(`SELECT ${columns} FROM ${spec.table} ORDER BY ${spec.key.map(quote).join(', ')}`)
    .safeIntegers(true) as BetterSqlite3.Statement<[], Record<string, unknown>>;
  const insert = insertSql(spec);
  let batch: (string | null)[][] = spec.columns.map(() => []);
  let batched = 0;
  let done = 0;
  let inserted = 0;
  let invalidRows = 0;
  const flush = async () => {
    if (batched > 0) {
      const [row] = await db.query<{ n: number }>(insert, batch);
      inserted += Number(row!.n);
    }
    done += batched;
    batch = spec.columns.map(() => []);
    batched = 0;
    onProgress?.({ table: spec.table, rowsDone: done + invalidRows, rows: sqliteRows });
  };
  for (const row of rows.iterate()) {
    const cells = checkRow(spec, row, invalidCells);
    if (cells === undefined) {
      invalidRows++;
      continue;
    }
    cells.forEach((cell, index) => batch[index]!.push(cell));
    if (++batched === batchSize) await flush();
  }
  await flush();
  const postgresRows = Number(
    (await db.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${spec.table}`))[0]!.n,
  );
  return {
    table: spec.table,
    sqliteRows,
    inserted,
    alreadyPresent: done - inserted,
    invalidRows,
    postgresRows,
    countsMatch: postgresRows === sqliteRows,
  };
}

/** The row's cells as PostgreSQL input text, or undefined (its invalid cells recorded) when one is invalid. */
function checkRow(
  spec: DispatchTable<unknown>,
  row: Record<string, unknown>,
  invalidCells: InvalidCell[],
): (string | null)[] | undefined {
  const cells: (string | null)[] = [];
  let valid = true;
  for (const column of spec.columns) {
    const raw = row[column.column];
    try {
      cells.push(sqliteCellText(column, raw));
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      valid = false;
      invalidCells.push({
        table: spec.table,
        key: spec.key.map((name) => String(row[name])),
        column: column.column,
        value:
          raw === null || raw === undefined
            ? null
            : (Buffer.isBuffer(raw) ? `x'${raw.toString('hex')}'` : String(raw)).slice(0, VALUE_CUT),
        problem: error.message,
      });
    }
  }
  return valid ? cells : undefined;
}

/** One batch as one statement: each column travels as a text[] parameter, cast to its type on the server. */
function insertSql(spec: DispatchTable<unknown>): string {
  const names = spec.columns.map((c) => quote(c.column));
  const casts = spec.columns.map((c, i) => `c${i}::${sqlType(DISPATCH_COLUMN_TYPES[c.kind])}`);
  const arrays = spec.columns.map((_, i) => `$${i + 1}::text[]`);
  return (
    `WITH inserted AS (INSERT INTO ${spec.table} (${names.join(', ')}) SELECT ${casts.join(', ')} FROM unnest(${arrays.join(', ')}) AS u(${spec.columns.map((_, i) => `c${i}`).join(', ')}) ` +
    `ON CONFLICT (${spec.key.map(quote).join(', ')}) DO NOTHING RETURNING 1) SELECT count(*)::int AS n FROM inserted`
  );
}

/** Moves each SERIAL sequence past the largest id its table holds (never back), so inserts without an id do not collide with copied ones. */
async function advanceSequences(db: SqlExecutor): Promise<{ table: string; column: string; next: number }[]> {
  const sequences: { table: string; column: string; next: number }[] = [];
  for (const entity of DISPATCH_ENTITY_NAMES) {
    const spec = DISPATCH_TABLES[entity] as DispatchTable<unknown>;
    for (const column of spec.columns.filter((c) => c.kind === 'serial')) {
      const [row] = await db.query<{ next: string | number }>(
        `WITH s AS (SELECT pg_get_serial_sequence($1, $2)::regclass AS seq),
              moved AS (SELECT setval(s.seq, m.max_id) FROM s, (SELECT max(${quote(column.column)}) AS max_id FROM ${spec.table}) m
                        WHERE m.max_id IS NOT NULL AND m.max_id > coalesce(pg_sequence_last_value(s.seq), 0))
         SELECT coalesce((SELECT setval FROM moved), pg_sequence_last_value(s.seq), 0) + 1 AS next FROM s`,
        [spec.table, column.column],
      );
      sequences.push({ table: spec.table, column: column.column, next: Number(row!.next) });
    }
  }
  return sequences;
}
