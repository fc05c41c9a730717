import { hash } from 'node:crypto';
import type { JsonValue } from '../domain/json.js';
import { compareText } from '../domain/text.js';
import type { ColumnType, TableMapping } from './table-mapping.js';

/**
 * Row hashes computed identically inside PostgreSQL and in JavaScript, so checksums of
 * key ranges can be compared without moving rows. A row hashes as the first 64 bits of
 * md5 over PostgreSQL's json_build_array(...)::text of its columns; JavaScript renders
 * that exact text (jsonbText reproduces jsonb's key order and number format).
 */
export interface HashColumn {
  /** SQL expression of the value, as rendered in json_build_array. */
  readonly sql: string;
  readonly kind: HashKind;
  /** The record field holding the value. */
  readonly field: (record: Record<string, unknown>) => unknown;
}

export type HashKind = 'text' | 'int' | 'numeric' | 'float8' | 'boolean' | 'timestamp' | 'jsonb';

/** SQL for one row's 64-bit hash as a bigint. */
export function rowHashSql(columns: readonly HashColumn[]): string {
  return `('x' || substr(md5(json_build_array(${columns.map((c) => c.sql).join(', ')})::text), 1, 16))::bit(64)::bigint`;
}

/** The same 64-bit hash computed from a canonical record. */
export function rowHash(columns: readonly HashColumn[], record: object): bigint {
  let text = '[';
  for (let i = 0; i < columns.length; i++) {
    const column = columns[i]!;
    text += (i === 0 ? '' : ', ') + render(column.kind, column.field(record as Record<string, unknown>));
  }
  // crypto.hash (one-shot, hex) is several times cheaper per row than createHash().digest().
  return BigInt.asIntN(64, BigInt(`0x${hash('md5', `${text}]`).slice(0, 16)}`));
}

/** Hash columns of a mapped table: every column holding a record field, in table order. */
export function mappedHashColumns(mapping: TableMapping<unknown>, alias = ''): HashColumn[] {
  return mapping.columns
    .filter((c) => c.field)
    .map((c) => ({ sql: columnSql(`${alias}"${c.column}"`, c.type), kind: KIND[c.type], field: (record) => record[c.field!] }));
}

const KIND: Record<ColumnType, HashKind> = {
  text: 'text',
  uuid: 'text',
  task_type: 'text',
  task_status: 'text',
  integer: 'int',
  bigint: 'int',
  float8: 'float8',
  boolean: 'boolean',
  money: 'numeric',
  score: 'numeric',
  timestamptz: 'timestamp',
  jsonb: 'jsonb',
  json: 'jsonb',
};

export function columnSql(column: string, type: ColumnType): string {
  switch (KIND[type]) {
    case 'timestamp':
      return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
    case 'text':
      return `${column}::text`;
    case 'float8':
      // The IEEE 754 bits: float8's text form varies with extra_float_digits, its bits never.
      return `encode(float8send(${column}), 'hex')`;
    default:
      return column;
  }
}

function render(kind: HashKind, value: unknown): string {
  if (value === null || value === undefined) return 'null';
  switch (kind) {
    case 'int':
    case 'numeric':
    case 'boolean':
      return String(value);
    case 'jsonb':
      return jsonbText(value as JsonValue);
    case 'float8':
      return `"${float8Hex(value as number)}"`;
    default:
      // JSON.stringify escapes exactly as PostgreSQL's escape_json does for well-formed text.
      return JSON.stringify(value);
  }
}

/** float8send's bytes (big-endian IEEE 754) as hex. */
function float8Hex(value: number): string {
  const bytes = Buffer.alloc(8);
  bytes.writeDoubleBE(value);
  return bytes.toString('hex');
}

/** PostgreSQL's jsonb output text: keys by length then bytes, ", " and ": " separators, numeric number text. */
export function jsonbText(value: JsonValue): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return String(value);
    case 'number':
      return numericText(value);
    case 'string':
      return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(jsonbText).join(', ')}]`;
  const keys = Object.keys(value).sort(jsonbKeyOrder);
  return `{${keys.map((key) => `${JSON.stringify(key)}: ${jsonbText(value[key]!)}`).join(', ')}}`;
}

/** jsonb orders object keys by UTF-8 length first, then bytewise (code point order). */
function jsonbKeyOrder(a: string, b: string): number {
  return Buffer.byteLength(a) - Buffer.byteLength(b) || compareText(a, b);
}

/** A JavaScript number as PostgreSQL's numeric prints it after parsing JSON.stringify's text. */
export function numericText(value: number): string {
  const text = String(value);
  const exponentAt = text.indexOf('e');
  if (exponentAt === -1) return text;
  const negative = text.startsWith('-');
  const mantissa = text.slice(negative ? 1 : 0, exponentAt);
  const exponent = Number(text.slice(exponentAt + 1));
  const [whole, fraction = ''] = mantissa.split('.') as [string, string?];
  const digits = whole + fraction;
  const point = whole.length + exponent;
  const plain =
    point <= 0 ? `0.${'0'.repeat(-point)}${digits}` : point >= digits.length ? digits + '0'.repeat(point - digits.length) : `${digits.slice(0, point)}.${digits.slice(point)}`;
  return negative ? `-${plain}` : plain;
}
