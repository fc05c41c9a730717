import { randomUUID } from 'node:crypto';
import { ValidationError } from './errors.js';
import { describe } from './text.js';

/** Source of write timestamps; injected so tests and mirrored writes decide time once. */
export interface Clock {
  /** The current time as an ISO-8601 UTC string with milliseconds. */
  now(): string;
}

export const systemClock: Clock = { now: () => new Date().toISOString() };

/** Source of new record ids; injected for the same reason as Clock. */
export interface IdGenerator {
  /** A new lowercase UUID (v4). */
  uuid(): string;
}

export const randomIds: IdGenerator = { uuid: () => randomUUID() };

/**
 * Canonical timestamp: ISO-8601 UTC with exactly millisecond precision. Both stores keep
 * milliseconds (PostgreSQL's microseconds are never used), so values round-trip exactly.
 */
export function canonicalTimestamp(field: string, value: unknown): string {
  if (typeof value === 'string' && isCanonical(value)) return value;
  const date =
    value instanceof Date ? value : typeof value === 'string' && ISO_PATTERN.test(value) ? new Date(value) : undefined;
  if (date === undefined) {
    throw new ValidationError(
      field,
      `must be an ISO-8601 timestamp with a time zone, got ${describe(value)} ${JSON.stringify(value)}`,
    );
  }
  const time = date.getTime();
  if (!Number.isFinite(time) || date.getUTCFullYear() < 1 || date.getUTCFullYear() > 9999 || !isCalendarDate(value)) {
    throw new ValidationError(field, `is not a valid timestamp in years 1-9999: ${JSON.stringify(value)}`);
  }
  return date.toISOString();
}

export function optionalTimestamp(field: string, value: unknown): string | null {
  return value === undefined || value === null ? null : canonicalTimestamp(field, value);
}

/** Whether `value` is already canonical (what the stores and canonicalTimestamp produce): a real moment of years 1-9999, read digit by digit. */
function isCanonical(value: string): boolean {
  if (value.length !== 24 || !CANONICAL_PATTERN.test(value)) return false;
  const year = digits(value, 0, 4);
  const month = digits(value, 5, 2);
  const day = digits(value, 8, 2);
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const days = month === 2 ? (isLeapYear(year) ? 29 : 28) : DAYS_IN_MONTH[month - 1]!;
  return day <= days && digits(value, 11, 2) < 24 && digits(value, 14, 2) < 60 && digits(value, 17, 2) < 60;
}

/** The number written by the `count` ASCII digits of `text` from `from`. */
function digits(text: string, from: number, count: number): number {
  let n = 0;
  for (let i = from; i < from + count; i++) n = n * 10 + text.charCodeAt(i) - 48;
  return n;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Date rolls "2026-02-30" over to March 2; PostgreSQL rejects it, so we do too. */
function isCalendarDate(value: unknown): boolean {
  if (typeof value !== 'string') return true;
  const [year, month, day] = value.slice(0, 10).split('-').map(Number) as [number, number, number];
  const daysInMonth = new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && !isLeapYear(year) ? 1 : 0);
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

const ISO_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;
const CANONICAL_PATTERN = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Validates a UUID and returns it lowercased (PostgreSQL prints uuid in lowercase). */
export function canonicalUuid(field: string, value: unknown): string {
  const lowered = typeof value === 'string' ? value.toLowerCase() : undefined;
  if (lowered === undefined || !UUID_PATTERN.test(lowered)) {
    throw new ValidationError(field, `must be a UUID, got ${JSON.stringify(value) ?? describe(value)}`);
  }
  return lowered;
}
