import { ValidationError } from './errors.js';
import { assertStorableText, compareText, describe } from './text.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Deepest nesting of arrays and objects accepted, counting the top-level object as 1. */
export const JSON_MAX_DEPTH = 100;

/**
 * Validates a JSON object for a JSONB column and returns its canonical form: keys
 * sorted by code point at every level (JavaScript still enumerates integer-like keys
 * such as "2" and "10" first, in numeric order, whatever the insertion order), -0 as 0.
 * JSONB reorders keys, so both stores return this form and records compare equal with
 * deep equality or JSON text. Sparse arrays and nesting deeper than JSON_MAX_DEPTH are
 * rejected (a hole has no JSON form; deep nesting would exhaust the stack of either
 * store). Absent (undefined or null) means the column default, {}. The result is deeply frozen.
 */
export function canonicalJsonObject(field: string, value: unknown): JsonObject {
  if (value === undefined || value === null) return {};
  if (!isPlainObject(value)) throw new ValidationError(field, `must be a JSON object, got ${describe(value)}`);
  return canonicalJson(field, value, 1) as JsonObject;
}

/** Like canonicalJsonObject, for a column holding any JSON value; undefined and null are null. */
export function canonicalJsonValue(field: string, value: unknown): JsonValue {
  return value === undefined ? null : canonicalJson(field, value, 1);
}

function canonicalJson(path: string, value: unknown, depth: number): JsonValue {
  switch (typeof value) {
    case 'string':
      assertStorableText(path, value);
      return value;
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new ValidationError(path, `must be a finite number, got ${value}`);
      return value === 0 ? 0 : value;
    case 'object':
      if (value === null) return null;
      if (depth > JSON_MAX_DEPTH) throw new ValidationError(path, `nests deeper than ${JSON_MAX_DEPTH} levels`);
      if (Array.isArray(value)) {
        const items: JsonValue[] = [];
        for (let index = 0; index < value.length; index++) {
          if (!(index in value))
            throw new ValidationError(
              `${path}[${index}]`,
              'is a hole in a sparse array (JSON has no empty array slots)',
            );
          items.push(canonicalJson(`${path}[${index}]`, value[index], depth + 1));
        }
        return Object.freeze(items) as JsonValue[];
      }
      if (isPlainObject(value)) {
        const sorted: JsonObject = {};
        for (const key of Object.keys(value).sort(compareText)) {
          assertStorableText(`${path} key`, key);
          // defineProperty, not assignment: a "__proto__" key must stay an ordinary key.
          Object.defineProperty(sorted, key, {
            value: canonicalJson(`${path}.${key}`, value[key], depth + 1),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        // Frozen so a caller holding a returned record cannot change what a store holds.
        return Object.freeze(sorted);
      }
  }
  throw new ValidationError(path, `is not JSON-serializable (${describe(value)})`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}
