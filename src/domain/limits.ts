import { ValidationError } from './errors.js';

/**
 * Validates an integer in min..max. -0 comes back as 0: PostgreSQL has no negative zero,
 * so a store that kept it would differ from one that cannot.
 */
export function integerIn(field: string, value: unknown, min: number, max: number, description: string): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    throw new ValidationError(field, `must be ${description}, got ${JSON.stringify(value)}`);
  }
  return (value as number) + 0;
}

/** Validates a page size: an integer in 1..max, or the default when absent. */
export function pageLimit(field: string, value: unknown, fallback: number, max = 1000): number {
  return value === undefined ? fallback : integerIn(field, value, 1, max, `an integer from 1 to ${max}`);
}

/** Validates an offset: a non-negative integer that PostgreSQL's bigint and JavaScript both hold exactly, 0 when absent. */
export function pageOffset(field: string, value: unknown): number {
  return value === undefined
    ? 0
    : integerIn(field, value, 0, Number.MAX_SAFE_INTEGER, 'a non-negative integer no larger than 9007199254740991');
}

/** Validates a count: a non-negative integer a 32-bit INTEGER column holds. */
export function nonNegativeInteger(field: string, value: unknown): number {
  return integerIn(field, value, 0, 2147483647, 'a non-negative 32-bit integer');
}
