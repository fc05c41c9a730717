import { createHash } from 'node:crypto';
import { canonicalDecimal, MONEY, SCORE } from '../domain/decimal.js';
import { canonicalJsonObject, canonicalJsonValue } from '../domain/json.js';
import type { RecordKey } from '../ports/record-port.js';

/** How a column is typed in SQL and converted between record fields and rows. */
export type ColumnType =
  | 'text'
  | 'uuid'
  | 'jsonb'
  | 'timestamptz'
  | 'money'
  | 'score'
  | 'integer'
  | 'bigint'
  | 'float8'
  | 'boolean'
  | 'task_type'
  | 'task_status'
  /** jsonb holding any JSON value (jsonb is for objects, NULL read as {}); NULL stays null. */
  | 'json';

export interface Column {
  readonly column: string;
  /** The record field it holds; absent for a column derived from other fields. */
  readonly field?: string;
  readonly type: ColumnType;
  /** Computes a derived column from the record. */
  readonly derive?: (record: Record<string, unknown>) => unknown;
  /** The column holds the position of the field's value in this list (a SMALLINT code); the record holds the value. */
  readonly codes?: readonly string[];
}

/**
 * One table's mapping to its entity's records: the SQL for key-ordered scans, gets,
 * upserts and deletes is generated from it, and rows convert to canonical records.
 */
export class TableMapping<R> {
  readonly selectList: string;
  private readonly keyList: string;

  constructor(
    readonly table: string,
    readonly columns: readonly Column[],
    /** Columns of the record key, in key order. */
    readonly keyColumns: readonly string[],
  ) {
    this.selectList = columns
      .filter((c) => c.field)
      .map((c) => quote(c.column))
      .join(', ');
    this.keyList = keyColumns.map(quote).join(', ');
  }

  toRecord(row: Record<string, unknown>): R {
    const record: Record<string, unknown> = {};
    for (const { column, field, type, codes } of this.columns) {
      if (field) record[field] = codes ? codes[Number(row[column])] : fromSql(type, row[column], field);
    }
    return record as R;
  }

  /** SELECT of one page of records in key order within (after, until]; parameters: after's key, until's key, limit. */
  scanSql(after: boolean, until = false): string {
    const { where, next } = this.rangeWhere(after, until, 1);
    return `SELECT ${this.selectList} FROM ${this.table}${where} ORDER BY ${this.keyList} LIMIT $${next}`;
  }

  /** WHERE clause for keys in (after, until], numbering parameters from `first`; `next` is the next free number. */
  rangeWhere(after: boolean, until: boolean, first: number): { where: string; next: number } {
    const conditions: string[] = [];
    let next = first;
    if (after) {
      conditions.push(`(${this.keyList}) > (${this.keyParams(next - 1)})`);
      next += this.keyColumns.length;
    }
    if (until) {
      conditions.push(`(${this.keyList}) <= (${this.keyParams(next - 1)})`);
      next += this.keyColumns.length;
    }
    return { where: conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '', next };
  }

  getSql(): string {
    return `SELECT ${this.selectList} FROM ${this.table} WHERE (${this.keyList}) = (${this.keyParams(0)})`;
  }

  deleteSql(): string {
    return `DELETE FROM ${this.table} WHERE (${this.keyList}) = (${this.keyParams(0)}) RETURNING 1`;
  }

  /**
   * INSERT of one record. On a key conflict, "overwrite" replaces every column of the
   * existing row; "skip" leaves it and returns no row (RETURNING 1 tells which happened).
   */
  insertSql(onConflict: 'overwrite' | 'skip'): string {
    const names = this.columns.map((c) => quote(c.column));
    const values = this.columns.map((c, i) => `$${i + 1}::${sqlType(c.type)}`);
    return `INSERT INTO ${this.table} (${names.join(', ')}) VALUES (${values.join(', ')}) ${this.onConflict(onConflict)} RETURNING 1`;
  }

  private onConflict(onConflict: 'overwrite' | 'skip'): string {
    const updates = this.columns
      .filter((c) => !this.keyColumns.includes(c.column))
      .map((c) => `${quote(c.column)} = EXCLUDED.${quote(c.column)}`);
    return `ON CONFLICT (${this.keyList}) ${onConflict === 'overwrite' ? `DO UPDATE SET ${updates.join(', ')}` : 'DO NOTHING'}`;
  }

  /** Parameters of insertSql for `record`. */
  insertParams(record: R): unknown[] {
    const fields = record as Record<string, unknown>;
    return this.columns.map((c) => toSql(c.type, storedValue(c, fields)));
  }

  /**
   * INSERT of many records in one statement: each column travels as one array parameter
   * and unnest() turns the arrays into rows. On a key conflict, as insertSql ("skip" for the
   * backfill, "overwrite" for copies; the keys of one batch must differ). Returns one row,
   * { n }: how many records were written. Derived columns are included.
   */
  bulkInsertSql(onConflict: 'overwrite' | 'skip'): string {
    const names = this.columns.map((c) => quote(c.column));
    const arrays = this.columns.map((c, i) => `$${i + 1}::${arrayType(c.type)}`);
    return (
      `WITH inserted AS (INSERT INTO ${this.table} (${names.join(', ')}) SELECT * FROM unnest(${arrays.join(', ')}) ` +
      `${this.onConflict(onConflict)} RETURNING 1) SELECT count(*)::int AS n FROM inserted`
    );
  }

  /**
   * Statements that insert many records through COPY, which PostgreSQL parses several
   * times faster than array parameters: `prepare` makes this session's temporary staging
   * table of the mapped columns (once per connection), `copy` loads it (COPY FROM STDIN, with
   * copyText), and `insert` empties it into the table with the conflict rule COPY lacks,
   * returning { n } as bulkInsertSql does. Staging is emptied by each insert, so several
   * batches may share a transaction.
   */
  stagedCopySql(onConflict: 'overwrite' | 'skip'): {
    readonly prepare: string;
    readonly copy: string;
    readonly insert: string;
  } {
    const names = this.columns.map((c) => quote(c.column)).join(', ');
    // Named after the column list, so a session that outlives a migration never copies into an old shape.
    const staging = quote(
      `dualwrite_staging_${this.table}_${createHash('sha256').update(names).digest('hex').slice(0, 8)}`,
    );
    return {
      prepare: `CREATE TEMPORARY TABLE IF NOT EXISTS ${staging} ON COMMIT DELETE ROWS AS SELECT ${names} FROM ${this.table} WITH NO DATA`,
      copy: `COPY ${staging} (${names}) FROM STDIN`,
      insert:
        `WITH staged AS (DELETE FROM ${staging} RETURNING ${names}), inserted AS (INSERT INTO ${this.table} (${names}) ` +
        `SELECT ${names} FROM staged ${this.onConflict(onConflict)} RETURNING 1) SELECT count(*)::int AS n FROM inserted`,
    };
  }

  /** `records` in COPY's text format, one line each, columns as insertParams gives them. */
  copyText(records: readonly R[]): string {
    let text = '';
    for (const record of records) text += `${this.insertParams(record).map(copyField).join('\t')}\n`;
    return text;
  }

  /** Parameters of bulkInsertSql for `records`: one array per column, in column order. */
  bulkInsertParams(records: readonly R[]): unknown[][] {
    const arrays = this.columns.map(() => new Array<unknown>(records.length));
    records.forEach((record, row) => {
      this.insertParams(record).forEach((value, column) => {
        arrays[column]![row] = value;
      });
    });
    return arrays;
  }

  keyParams(offset: number): string {
    return this.keyColumns.map((c, i) => `$${offset + i + 1}::${sqlType(this.columnType(c))}`).join(', ');
  }

  /** Key values as query parameters. */
  keyValues(key: RecordKey): string[] {
    if (key.length !== this.keyColumns.length)
      throw new TypeError(`${this.table} keys have ${this.keyColumns.length} parts, got ${key.length}`);
    return [...key];
  }

  private columnType(column: string): ColumnType {
    return this.columns.find((c) => c.column === column)!.type;
  }
}

/** What a column stores for a record: its derived value, its field's code, or its field's value. */
export function storedValue(column: Column, record: Record<string, unknown>): unknown {
  if (column.derive) return column.derive(record);
  const value = record[column.field!];
  return column.codes ? column.codes.indexOf(value as string) : value;
}

export function quote(identifier: string): string {
  return `"${identifier}"`;
}

/** The SQL type of a column type. */
export function sqlType(type: ColumnType): string {
  switch (type) {
    case 'money':
    case 'score':
      return 'numeric';
    case 'json':
      return 'jsonb';
    default:
      return type;
  }
}

/**
 * Type of a column's array parameter. Enums and jsonb travel as text[] and are cast on
 * the server, so drivers that only know built-in array types (PGlite) can send them.
 */
function arrayType(type: ColumnType): string {
  switch (type) {
    case 'jsonb':
    case 'json':
    case 'task_type':
    case 'task_status':
      return `text[]::${sqlType(type)}[]`;
    default:
      return `${sqlType(type)}[]`;
  }
}

/** COPY text escapes for the characters that delimit fields and rows. */
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** One value in COPY's text format: \N for NULL, delimiters escaped. */
export function copyField(value: unknown): string {
  return value === null || value === undefined ? '\\N' : String(value).replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!);
}

function toSql(type: ColumnType, value: unknown): unknown {
  return (type === 'jsonb' || type === 'json') && value !== null && value !== undefined
    ? JSON.stringify(value)
    : (value ?? null);
}

/** Converts a column value as the driver returns it to the canonical record form. */
export function fromSql(type: ColumnType, value: unknown, field: string): unknown {
  if (value === null || value === undefined) return type === 'jsonb' ? {} : null;
  switch (type) {
    case 'timestamptz':
      return value instanceof Date ? value.toISOString() : timestampText(String(value));
    case 'integer':
    case 'bigint':
    case 'float8':
      return Number(value);
    case 'money':
      return canonicalDecimal(field, String(value), MONEY);
    case 'score':
      return canonicalDecimal(field, String(value), SCORE);
    case 'jsonb':
      return canonicalJsonObject(field, typeof value === 'string' ? JSON.parse(value) : value);
    case 'json':
      // Both drivers parse jsonb, so a string here is a JSON string value.
      return canonicalJsonValue(field, value);
    default:
      return value;
  }
}

const PG_TIMESTAMP = /^(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d(?::?\d\d){0,2})$/;

/**
 * PostgreSQL's timestamptz text ("0099-06-01 00:00:00.123+00") as canonical ISO. Parsed
 * here rather than by Date, which reads years below 100 as 19xx; digits below the
 * millisecond are dropped, as canonicalTimestamp does.
 */
export function timestampText(text: string): string {
  const match = PG_TIMESTAMP.exec(text);
  if (!match) throw new TypeError(`unexpected timestamp text from the database: ${JSON.stringify(text)}`);
  const [, year, month, day, hour, minute, second, fraction = '', zone] = match;
  const millis = fraction.slice(0, 3).padEnd(3, '0');
  // In UTC (the session's time zone) from year 1000 on, the text already holds the ISO fields.
  if (zone === '+00' && year![0] !== '0') return `${year}-${month}-${day}T${hour}:${minute}:${second}.${millis}Z`;
  const utc = new Date(0);
  utc.setUTCFullYear(Number(year), Number(month) - 1, Number(day));
  utc.setUTCHours(Number(hour), Number(minute), Number(second), Number(millis));
  return new Date(utc.getTime() - zoneOffsetMs(zone!)).toISOString();
}

function zoneOffsetMs(zone: string): number {
  if (zone === 'Z') return 0;
  const [hours = 0, minutes = 0, seconds = 0] = zone.slice(1).match(/\d\d/g)!.map(Number);
  return (zone[0] === '-' ? -1 : 1) * ((hours * 60 + minutes) * 60 + seconds) * 1000;
}

/** Timestamp columns holding the record fields `fields`, each named as its field in snake_case. */
export const timestampColumns = (...fields: string[]): Column[] =>
  fields.map((field) => ({
    column: field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
    field,
    type: 'timestamptz',
  }));
