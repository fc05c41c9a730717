import { ValidationError } from './errors.js';

/** Validates a page size: an integer in 1..max, or the default when absent. */
export function pageLimit(field: string, value: unknown, fallback: number, max = 1000): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > max) {
    throw new ValidationError(field, `must be an integer from 1 to ${max}, got ${JSON.stringify(value)}`);
  }
  return value as number;
}

/** Validates an offset: a non-negative integer, 0 when absent. */
export function pageOffset(field: string, value: unknown): number {
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || (value as number) < 0) {
    throw new ValidationError(field, `must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return value as number;
}
