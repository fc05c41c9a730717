import type { RecordKey } from '../ports/record-port.js';
import { mappedHashColumns, type HashColumn } from './row-hash.js';
import type { SqlQueryable, SqlTransaction } from './sql-executor.js';
import type { TableMapping } from './table-mapping.js';

/** How one entity is checksummed inside PostgreSQL: its rows, key order, range filter and hashed columns. */
export interface EntitySql {
  /** FROM clause (with joins); key expressions refer to its aliases. */
  readonly from: string;
  /** Key expressions in key order, comma-separated. */
  readonly keyList: string;
  readonly columns: readonly HashColumn[];
  /** WHERE clause for keys in (after, until], parameters numbered from `first`. */
  range(
    after: RecordKey | undefined,
    until: RecordKey | undefined,
    first: number,
  ): { where: string; params: unknown[] };
}

/**
 * What the verifier, the backfill and the repair need of one entity in PostgreSQL, beyond
 * its store's RecordPort: SQL they run inside their own transactions. Every statement
 * copies records exactly as given (no derived side effects, as RecordPort.putRecord).
 */
export interface PostgresEntity<R extends object = object> {
  /** The table holding one row per record (the backfill counts it). */
  readonly table: string;
  /** How the entity is checksummed in key ranges. */
  readonly checksum: EntitySql;
  /**
   * Inserts a batch of records in one statement, leaving every record whose key PostgreSQL
   * already holds as it is. `resolved`: how many of the records could be inserted at all
   * (records referencing rows PostgreSQL lacks cannot; they are neither inserted nor skipped).
   */
  bulkInsertSkippingExisting(
    tx: SqlQueryable & Pick<SqlTransaction, 'copyFrom'>,
    records: readonly R[],
  ): Promise<{ inserted: number; resolved: number }>;
  /** The record under `key`, its row locked until the transaction ends; null when absent. */
  lockForUpdate(tx: SqlQueryable, key: RecordKey): Promise<R | null>;
  /** Inserts the record unless its key is taken (absent rows cannot be locked); true if it was inserted. */
  insertIfAbsent(tx: SqlQueryable, record: R): Promise<boolean>;
}

/** Options of mappedEntity. */
export interface MappedEntityOptions {
  /**
   * A statement run in the transaction before records are copied in, e.g. to switch off a
   * trigger that would derive values the copies already carry. Default: none.
   */
  readonly beforeCopy?: string;
}

/** The PostgresEntity of a table mapped column for column to its records (TableMapping). */
export function mappedEntity<R extends object>(
  mapping: TableMapping<R>,
  options: MappedEntityOptions = {},
): PostgresEntity<R> {
  const { beforeCopy } = options;
  const staged = mapping.stagedCopySql('skip');
  return {
    table: mapping.table,
    checksum: {
      from: mapping.table,
      keyList: mapping.keyColumns.map((c) => `"${c}"`).join(', '),
      columns: mappedHashColumns(mapping as TableMapping<unknown>),
      range(after, until, first) {
        const { where } = mapping.rangeWhere(after !== undefined, until !== undefined, first);
        return {
          where,
          params: [...(after ? mapping.keyValues(after) : []), ...(until ? mapping.keyValues(until) : [])],
        };
      },
    },
    async bulkInsertSkippingExisting(tx, records) {
      if (records.length === 0) return { inserted: 0, resolved: 0 };
      if (beforeCopy) await tx.query(beforeCopy);
      let row: { n: number } | undefined;
      if (tx.copyFrom) {
        await tx.query(staged.prepare);
        await tx.copyFrom(staged.copy, mapping.copyText(records));
        [row] = await tx.query<{ n: number }>(staged.insert);
      } else {
        [row] = await tx.query<{ n: number }>(mapping.bulkInsertSql('skip'), mapping.bulkInsertParams(records));
      }
      return { inserted: Number(row!.n), resolved: records.length };
    },
    async lockForUpdate(tx, key) {
      const [row] = await tx.query(`${mapping.getSql()} FOR UPDATE`, mapping.keyValues(key));
      return row ? mapping.toRecord(row) : null;
    },
    async insertIfAbsent(tx, record) {
      if (beforeCopy) await tx.query(beforeCopy);
      return (await tx.query(mapping.insertSql('skip'), mapping.insertParams(record))).length > 0;
    },
  };
}
