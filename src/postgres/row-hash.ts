import type { JsonValue } from '../domain/json.js';
import { compareText } from '../domain/text.js';
import { storedValue, type ColumnType, type TableMapping } from './table-mapping.js';
import { hashTextExtended } from './text-hash.js';

/**
 * Row hashes computed identically inside PostgreSQL and in JavaScript, so checksums of
 * key ranges can be compared without moving rows. A row hashes as hashtextextended(text, 0)
 * of one text made of its columns, each written so the text parses back one way only:
 * text as `<UTF-8 length>:<text>`, numbers, booleans and timestamps (epoch milliseconds)
 * followed by ",", jsonb as jsonb prints it followed by U+0001 (which jsonb text never holds
 * unescaped); NULL is the bare terminator. Cheaper per row than md5 over JSON on both sides.
 */
export interface HashColumn {
  /** SQL expression of the value (see columnSql). */
  readonly sql: string;
  readonly kind: HashKind;
  /** The record field holding the value. */
  readonly field: (record: Record<string, unknown>) => unknown;
}

export type HashKind = 'text' | 'int' | 'numeric' | 'float8' | 'boolean' | 'timestamp' | 'jsonb';

/** How each entity's records hash: the columns of its PostgreSQL rows, in hash order (EntitySql.columns). */
export type RowHashes<Records extends object = Record<string, object>> = {
  readonly [E in keyof Records]: readonly HashColumn[];
};

/** SQL for one row's 64-bit hash as a bigint. */
export function rowHashSql(columns: readonly HashColumn[]): string {
  const parts = columns.map(({ sql, kind }) => {
    switch (kind) {
      case 'text':
        return `octet_length(${sql}), ':', ${sql}`;
      case 'jsonb':
        return `${sql}::text, E'\\x01'`;
      default:
        return `${sql}, ','`;
    }
  });
  return `hashtextextended(concat(${parts.join(', ')}), 0)`;
}

/** The same 64-bit hash computed from a canonical record. */
export function rowHash(columns: readonly HashColumn[], record: object): bigint {
  let text = '';
  for (const column of columns) text += render(column.kind, column.field(record as Record<string, unknown>));
  return hashTextExtended(text);
}

/** Hash columns of a mapped table: every column holding a record field, in table order. */
export function mappedHashColumns(mapping: TableMapping<unknown>, alias = ''): HashColumn[] {
  return mapping.columns
    .filter((c) => c.field)
    .map((c) => ({
      sql: columnSql(`${alias}"${c.column}"`, c.type),
      kind: KIND[c.type],
      field: (record) => storedValue(c, record),
    }));
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

/** SQL of a column's value as rowHashSql expects it for the column's kind. */
export function columnSql(column: string, type: ColumnType): string {
  switch (KIND[type]) {
    case 'timestamp':
      return `floor(extract(epoch FROM ${column}) * 1000)::bigint`;
    case 'float8':
      // The IEEE 754 bits: float8's text form varies with extra_float_digits, its bits never.
      return `encode(float8send(${column}), 'hex')`;
    case 'jsonb':
      return column;
    default:
      return `${column}::text`;
  }
}

function render(kind: HashKind, value: unknown): string {
  switch (kind) {
    case 'text':
      return value === null || value === undefined ? ':' : `${Buffer.byteLength(value as string)}:${value as string}`;
    case 'jsonb':
      return value === null || value === undefined ? '\u0001' : `${jsonbText(value as JsonValue)}\u0001`;
    case 'timestamp':
      return value === null || value === undefined ? ',' : `${Date.parse(value as string)},`;
    case 'float8':
      return value === null || value === undefined ? ',' : `${float8Hex(value as number)},`;
    default:
      return value === null || value === undefined ? ',' : `${String(value)},`;
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
    point <= 0
      ? `0.${'0'.repeat(-point)}${digits}`
      : point >= digits.length
        ? digits + '0'.repeat(point - digits.length)
        : `${digits.slice(0, point)}.${digits.slice(point)}`;
  return negative ? `-${plain}` : plain;
}
