import { ValidationError } from './errors.js';

/** Rules for one text column. Lengths count code points, as PostgreSQL's VARCHAR(n) does. */
export interface TextRule {
  /** VARCHAR(n) limit; absent for TEXT. */
  readonly maxLength?: number;
  /** Reject strings that are empty after trimming whitespace. */
  readonly nonBlank?: boolean;
}

/**
 * Validates a required string. Rejects what PostgreSQL would store differently from
 * memory: NUL characters (TEXT cannot hold them) and lone surrogates (not valid UTF-8).
 */
export function requireText(field: string, value: unknown, rule: TextRule = {}): string {
  if (typeof value !== 'string') throw new ValidationError(field, `must be a string, got ${describe(value)}`);
  assertStorableText(field, value);
  if (rule.nonBlank && value.trim().length === 0) throw new ValidationError(field, 'must not be empty');
  if (rule.maxLength !== undefined && codePointLength(value) > rule.maxLength) {
    throw new ValidationError(field, `must be at most ${rule.maxLength} characters, got ${codePointLength(value)}`);
  }
  return value;
}

/** Like requireText, but undefined and null both mean "no value" (stored as NULL). */
export function optionalText(field: string, value: unknown, rule: TextRule = {}): string | null {
  return value === undefined || value === null ? null : requireText(field, value, rule);
}

/** Throws if PostgreSQL could not store `value` byte for byte as given. */
export function assertStorableText(field: string, value: string): void {
  if (value.includes('\u0000')) throw new ValidationError(field, 'must not contain NUL characters');
  if (!value.isWellFormed()) throw new ValidationError(field, 'must not contain unpaired surrogates');
}

/** Number of Unicode code points, the unit PostgreSQL counts VARCHAR lengths in. */
export function codePointLength(value: string): number {
  let length = 0;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff) i++;
    length++;
  }
  return length;
}

/**
 * Orders strings by code point, which is the order of PostgreSQL's "C" collation over
 * UTF-8. JavaScript's default comparison orders UTF-16 units, which differs for
 * characters above U+FFFF.
 */
export function compareText(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x = surrogateOrder(x);
        y = surrogateOrder(y);
      }
      return x < y ? -1 : 1;
    }
  }
  return a.length - b.length;
}

/** Moves surrogates (D800-DFFF) above E000-FFFF so UTF-16 units sort by code point. */
function surrogateOrder(unit: number): number {
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/**
 * Case folding shared by both stores: decided here, in JavaScript, because PostgreSQL's
 * lower() depends on the server's locale (lower('İ') differs between them).
 */
export function foldCase(value: string): string {
  return value.toLowerCase();
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** Validates a value that must be one of `allowed`. */
export function oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new ValidationError(
      field,
      `must be one of ${allowed.join(', ')}, got ${JSON.stringify(value) ?? describe(value)}`,
    );
  }
  return value as T;
}
