import { ValidationError } from './errors.js';
import { describe } from './text.js';

/** Throws unless `value` is an object (not null, not an array): every input and raw record is one before its fields are read. */
export function assertObject(field: string, value: unknown): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(field, `must be an object, got ${describe(value)}`);
  }
}
