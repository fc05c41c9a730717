import { dispatchKeyOf, dispatchKeyValues, type DispatchTable } from './dispatch-records.js';
import { DualWriteError, ValidationError } from '../../domain/errors.js';
import type { RecordKey } from '../../ports/record-port.js';
import { sqliteCellValue, sqliteParam } from './sqlite-cells.js';

const quote = (name: string) => `"${name}"`;

/** A dispatch table's SQL on SQLite, generated from its columns, and row <-> record conversion. */
export class SqliteTable<R> {
  readonly selectList: string;
  readonly keyList: string;
  private readonly keyParams: string;

  constructor(readonly spec: DispatchTable<R>) {
    this.selectList = spec.columns.map((c) => quote(c.column)).join(', ');
    this.keyList = spec.key.map(quote).join(', ');
    this.keyParams = spec.key.map(() => '?').join(', ');
  }

  /** Rows in key order within (after, until]; parameters: after's key, until's key, limit. SQLite's BINARY collation is code point order. */
  scanSql(after: boolean, until: boolean): string {
    return `SELECT ${this.selectList} FROM ${this.spec.table}${this.rangeWhere(after, until)} ORDER BY ${this.keyList} LIMIT ?`;
  }

  /** " WHERE ..." keeping keys in (after, until] (empty when unbounded); parameters: after's key, then until's key (keyValues). */
  rangeWhere(after: boolean, until: boolean): string {
    const conditions = [
      ...(after ? [`(${this.keyList}) > (${this.keyParams})`] : []),
      ...(until ? [`(${this.keyList}) <= (${this.keyParams})`] : []),
    ];
    return conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '';
  }

  /** The parameters of rangeWhere for a range. */
  rangeParams(after: RecordKey | undefined, until: RecordKey | undefined): (string | number)[] {
    return [...(after ? this.keyValues(after) : []), ...(until ? this.keyValues(until) : [])];
  }

  /** The record key of a row holding the key columns (serial ids zero-padded, as records are keyed). */
  keyOfRow(row: Record<string, unknown>): RecordKey {
    return dispatchKeyOf(
      this.spec as DispatchTable<unknown>,
      Object.fromEntries(this.spec.columns.map((c) => [c.field, row[c.column]])),
    );
  }

  getSql(): string {
    return `SELECT ${this.selectList} FROM ${this.spec.table} WHERE (${this.keyList}) = (${this.keyParams})`;
  }

  deleteSql(): string {
    return `DELETE FROM ${this.spec.table} WHERE (${this.keyList}) = (${this.keyParams})`;
  }

  /** INSERT of one row; on a key conflict "overwrite" replaces the row's other columns, "skip" leaves it (changes = 0). */
  insertSql(onConflict: 'overwrite' | 'skip'): string {
    const updates = this.spec.columns
      .filter((c) => !this.spec.key.includes(c.column))
      .map((c) => `${quote(c.column)} = excluded.${quote(c.column)}`);
    return (
      `INSERT INTO ${this.spec.table} (${this.selectList}) VALUES (${this.spec.columns.map(() => '?').join(', ')}) ` +
      `ON CONFLICT (${this.keyList}) ${onConflict === 'overwrite' ? `DO UPDATE SET ${updates.join(', ')}` : 'DO NOTHING'}`
    );
  }

  insertParams(record: R): unknown[] {
    const fields = record as Record<string, unknown>;
    return this.spec.columns.map((c) => sqliteParam(c, fields[c.field]));
  }

  keyValues(key: RecordKey): (string | number)[] {
    return dispatchKeyValues(this.spec, key);
  }

  /** The record of a row, canonical; a cell that is not valid for its column throws a ValidationError naming the column. */
  toRecord(row: Record<string, unknown>): R {
    const record: Record<string, unknown> = {};
    for (const c of this.spec.columns) {
      try {
        record[c.field] = sqliteCellValue(c, row[c.column]);
      } catch (error) {
        if (error instanceof ValidationError)
          throw new InvalidRowError(
            this.spec.table,
            this.spec.key.map((k) => String(row[k])),
            c.column,
            error.message,
          );
        throw error;
      }
    }
    return record as R;
  }
}

/** A SQLite row that is not a valid record: its table, key and column, and what is wrong. */
export class InvalidRowError extends DualWriteError {
  constructor(
    readonly table: string,
    readonly key: readonly string[],
    readonly column: string,
    readonly problem: string,
  ) {
    super(`${table} ${JSON.stringify(key)} ${column}: ${problem}`);
  }
}
