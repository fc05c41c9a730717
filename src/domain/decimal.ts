import { ValidationError } from './errors.js';

/**
 * Exact fixed-point decimals for NUMERIC(p, s) columns, held as canonical strings
 * ("12.30") and summed as bigint minor units, so memory and PostgreSQL agree to the cent.
 *
 * Rounding rule (both stores): a value with more decimal places than the scale is
 * accepted only when the extra digits are zeros ("1.500" is 1.50); otherwise it is
 * rejected, because silently rounding money hides caller bugs.
 */
export interface DecimalType {
  /** Total significant digits, as in NUMERIC(precision, scale). */
  readonly precision: number;
  /** Digits after the point. */
  readonly scale: number;
}

/** NUMERIC(15,2): amounts of money. */
export const MONEY: DecimalType = { precision: 15, scale: 2 };
/** NUMERIC(3,2): scores from 0 to 1. */
export const SCORE: DecimalType = { precision: 3, scale: 2 };

const DECIMAL_PATTERN = /^(-)?(\d+)(?:\.(\d+))?$/;

/** Parses a decimal given as a string or number into minor units, or throws naming `field`. */
export function toMinorUnits(field: string, value: unknown, type: DecimalType): bigint {
  const text = typeof value === 'number' ? numberText(field, value) : value;
  if (typeof text !== 'string') {
    throw new ValidationError(field, `must be a decimal string or number, got ${describe(value)}`);
  }
  const match = DECIMAL_PATTERN.exec(text.trim());
  if (!match) throw new ValidationError(field, `must be a plain decimal like "12.30", got ${JSON.stringify(text)}`);
  const [, sign, whole, fraction = ''] = match;
  const kept = fraction.slice(0, type.scale);
  if (/[^0]/.test(fraction.slice(type.scale))) {
    throw new ValidationError(field, `has more than ${type.scale} decimal places: ${JSON.stringify(text)}`);
  }
  const units = BigInt(whole! + kept.padEnd(type.scale, '0'));
  const signed = sign ? -units : units;
  assertFits(field, signed, type);
  return signed;
}

/** Throws when `units` needs more integer digits than the type allows. */
export function assertFits(field: string, units: bigint, type: DecimalType): void {
  const limit = 10n ** BigInt(type.precision);
  if (units >= limit || units <= -limit) {
    throw new ValidationError(field, `does not fit NUMERIC(${type.precision},${type.scale})`);
  }
}

/** Formats minor units as the canonical string PostgreSQL prints for NUMERIC(p, s). */
export function formatMinorUnits(units: bigint, type: DecimalType): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(type.scale + 1, '0');
  const point = digits.length - type.scale;
  const text = type.scale === 0 ? digits : `${digits.slice(0, point)}.${digits.slice(point)}`;
  return negative ? `-${text}` : text;
}

/** Validates and canonicalizes a decimal in one step. */
export function canonicalDecimal(field: string, value: unknown, type: DecimalType): string {
  return formatMinorUnits(toMinorUnits(field, value, type), type);
}

function numberText(field: string, value: number): string {
  if (!Number.isFinite(value)) throw new ValidationError(field, `must be finite, got ${value}`);
  const text = String(value);
  if (/e/i.test(text)) throw new ValidationError(field, `is out of range: ${text}`);
  return text;
}

function describe(value: unknown): string {
  return value === null ? 'null' : typeof value;
}
