import { canonicalCell, type DispatchColumn } from './dispatch-records.js';
import { ValidationError } from '../../domain/errors.js';
import { canonicalJsonValue } from '../../domain/json.js';
import { assertStorableText, describe } from '../../domain/text.js';

/**
 * What a SQLite cell means in a dispatch column. SQLite stores whatever it is given (a
 * column's type is only an affinity), so every cell is checked against its column before
 * PostgreSQL or a record sees it; a cell PostgreSQL could not hold exactly is a
 * ValidationError naming the column, never rounded or dropped.
 */

/** Dates as SQLite's date functions and ISO-8601 write them; without a zone they are UTC, as SQLite's datetime('now') is. */
const SQLITE_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/** Digits below the second TIMESTAMPTZ keeps. */
const MICROSECOND_DIGITS = 6;

/**
 * A date cell as ISO-8601 with an explicit zone and every digit it was given, e.g.
 * "2026-01-05 12:34:56.123456" -> "2026-01-05T12:34:56.123456Z".
 */
export function sqliteDateText(field: string, value: unknown): string {
  const match = typeof value === 'string' ? SQLITE_DATE.exec(value) : null;
  if (!match)
    throw new ValidationError(
      field,
      `must be a date as text (YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][zone]), got ${describe(value)} ${JSON.stringify(value)}`,
    );
  const [, year, month, day, hour = '00', minute = '00', second = '00', fraction, zone] = match;
  const days =
    new Date(Date.UTC(2000, Number(month), 0)).getUTCDate() -
    (Number(month) === 2 && !isLeapYear(Number(year)) ? 1 : 0);
  const zoneParts = zone && zone.toUpperCase() !== 'Z' ? zone.slice(1).replace(':', '') : '0000';
  if (
    Number(year) < 1 ||
    Number(month) < 1 ||
    Number(month) > 12 ||
    Number(day) < 1 ||
    Number(day) > days ||
    Number(hour) > 23 ||
    Number(minute) > 59 ||
    Number(second) > 59 ||
    Number(zoneParts.slice(0, 2)) > 15 ||
    Number(zoneParts.slice(2, 4) || '0') > 59
  ) {
    throw new ValidationError(field, `is not a valid date: ${JSON.stringify(value)}`);
  }
  if (fraction !== undefined && fraction.length > MICROSECOND_DIGITS) {
    throw new ValidationError(
      field,
      `has more precision than TIMESTAMPTZ keeps (microseconds): ${JSON.stringify(value)}`,
    );
  }
  const offset =
    zone === undefined || zone.toUpperCase() === 'Z'
      ? 'Z'
      : `${zone[0]}${zoneParts.slice(0, 2)}:${zoneParts.slice(2, 4) || '00'}`;
  return `${year}-${month}-${day}T${hour}:${minute}:${second}${fraction ? `.${fraction}` : ''}${offset}`;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/**
 * A SQLite cell as the text PostgreSQL parses the column from (null for NULL), checked
 * against the column: integers in their PostgreSQL range, finite numbers, dates as
 * sqliteDateText, JSON text that parses (and PostgreSQL can store), text PostgreSQL can
 * hold, values a CHECK allows. Integers may come as numbers or bigints (safeIntegers).
 */
export function sqliteCellText(column: DispatchColumn, raw: unknown): string | null {
  const { field } = column;
  if (raw === null || raw === undefined) {
    if (column.notNull) throw new ValidationError(field, 'is required');
    return null;
  }
  switch (column.kind) {
    case 'text':
      return canonicalCell(column, raw) as string;
    case 'integer':
    case 'serial':
    case 'bigint':
      return integerText(column, raw);
    case 'real':
      if (typeof raw === 'bigint') return String(raw);
      return String(canonicalCell(column, raw));
    case 'timestamp':
      return sqliteDateText(field, raw);
    case 'json': {
      if (typeof raw !== 'string') throw new ValidationError(field, `must be JSON text, got ${describe(raw)}`);
      assertStorableText(field, raw);
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch (error) {
        throw new ValidationError(
          field,
          `is not valid JSON (${(error as Error).message}): ${JSON.stringify(raw.slice(0, 80))}`,
        );
      }
      canonicalJsonValue(field, parsed);
      return raw;
    }
  }
}

const INTEGER_RANGES = {
  integer: [-(2n ** 31n), 2n ** 31n - 1n, 'a 32-bit integer (PostgreSQL INTEGER)'],
  serial: [1n, 2n ** 31n - 1n, 'an integer from 1 to 2147483647 (SERIAL)'],
  bigint: [-(2n ** 63n), 2n ** 63n - 1n, 'a 64-bit integer (BIGINT)'],
} as const;

function integerText(column: DispatchColumn, raw: unknown): string {
  const [min, max, what] = INTEGER_RANGES[column.kind as keyof typeof INTEGER_RANGES];
  const value =
    typeof raw === 'bigint' ? raw : typeof raw === 'number' && Number.isSafeInteger(raw) ? BigInt(raw) : undefined;
  if (value === undefined || value < min || value > max)
    throw new ValidationError(column.field, `must be ${what}, got ${describe(raw)} ${String(raw)}`);
  return String(value);
}

/** A SQLite cell as its record value (canonical), or a ValidationError naming the column. */
export function sqliteCellValue(column: DispatchColumn, raw: unknown): unknown {
  const text = sqliteCellText(column, raw);
  if (text === null) return null;
  switch (column.kind) {
    case 'integer':
    case 'serial':
    case 'bigint':
    case 'real':
      return canonicalCell(column, Number(text));
    case 'json':
      return canonicalCell(column, JSON.parse(text));
    default:
      return canonicalCell(column, text);
  }
}

/** A record value as the SQLite store writes it: dates as canonical ISO text, JSON as its text. */
export function sqliteParam(column: DispatchColumn, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  return column.kind === 'json' ? JSON.stringify(value) : value;
}
