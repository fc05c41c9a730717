import { rowHash, type RowHashes } from '../../postgres/row-hash.js';
import type { RecordKey } from '../../ports/record-port.js';
import type { KeyRange, RangeChecksum, RangeChecksums } from '../../ports/range-checksums.js';
import type { SqliteDatabase } from '../../sqlite/better-sqlite3.js';
import type { SqliteTable } from './sqlite-table.js';
import { StatementCache } from '../../sqlite/statement-cache.js';

/** The exact sum of 64-bit row hashes, as text: SQLite's sum() fails on overflow and total() rounds. */
const HASH_SUM = 'dualwrite_hash_sum';

/** The row hash function registered for a table. */
const rowHashFunction = (table: string) => `dualwrite_row_hash_${table}`;

/**
 * Range checksums computed inside SQLite, one statement per call, so the store keeps no copy
 * of its rows. SQLite has no 64-bit text hash of its own, so each table's row hash is a
 * deterministic function registered on the connection: it reads the row's cells into the
 * record the store would return and hashes that with rowHash, so a record hashes here as it
 * does in memory and in PostgreSQL.
 */
export class SqliteRangeChecksums implements RangeChecksums {
  private readonly statements: StatementCache;

  constructor(
    db: SqliteDatabase,
    private readonly tables: Readonly<Record<string, SqliteTable<object>>>,
    rowHashes: RowHashes,
  ) {
    this.statements = new StatementCache(db);
    db.aggregate(HASH_SUM, {
      start: 0n,
      step: (sum: bigint, hash: bigint) => sum + hash,
      result: (sum: bigint) => String(sum),
      safeIntegers: true,
      deterministic: true,
    });
    for (const [entity, table] of Object.entries(tables)) {
      const columns = rowHashes[entity];
      if (!columns) throw new TypeError(`no row hash for entity ${entity}`);
      registerRowHash(db, table, columns);
    }
  }

  async count(entity: string, range: KeyRange): Promise<number> {
    const { from, params } = this.within(entity, range);
    return (this.statements.get(`SELECT count(*) AS n FROM ${from}`).get(...params) as { n: number }).n;
  }

  async checksum(entity: string, range: KeyRange): Promise<RangeChecksum> {
    const { table, from, params } = this.within(entity, range);
    const hash = `${rowHashFunction(table.spec.table)}(${table.selectList})`;
    const row = this.statements.get(`SELECT count(*) AS n, ${HASH_SUM}(${hash}) AS s FROM ${from}`).get(...params) as {
      n: number;
      s: string;
    };
    return { rows: row.n, sum: BigInt(row.s) };
  }

  async splitKeys(entity: string, range: KeyRange, every: number, rows: number): Promise<RecordKey[]> {
    const { table, from, params } = this.within(entity, range);
    const keys = table.keyList;
    const found = this.statements
      .get(
        `SELECT ${keys} FROM (SELECT ${keys}, row_number() OVER (ORDER BY ${keys}) AS rn FROM ${from}) WHERE rn % ? = 0 AND rn < ? ORDER BY rn`,
      )
      .all(...params, every, rows) as Record<string, unknown>[];
    return found.map((row) => table.keyOfRow(row));
  }

  /** The entity's table, its rows in `range` as a FROM clause, and the clause's parameters. */
  private within(entity: string, range: KeyRange) {
    const table = this.tableOf(entity);
    const { after, until } = range;
    const from = `${table.spec.table}${table.rangeWhere(after !== undefined, until !== undefined)}`;
    return { table, from, params: table.rangeParams(after, until) };
  }

  private tableOf(entity: string): SqliteTable<object> {
    const table = this.tables[entity];
    if (!table) throw new TypeError(`unknown entity ${entity}`);
    return table;
  }
}

/** Registers `table`'s row hash: its cells read into the record the store returns, hashed as rowHash does. */
function registerRowHash(db: SqliteDatabase, table: SqliteTable<object>, columns: RowHashes[string]): void {
  const cells = table.spec.columns;
  db.function(rowHashFunction(table.spec.table), { deterministic: true, varargs: true }, (...values: unknown[]) => {
    const row: Record<string, unknown> = {};
    for (let index = 0; index < cells.length; index++) row[cells[index]!.column] = values[index];
    return rowHash(columns, table.toRecord(row));
  });
}
