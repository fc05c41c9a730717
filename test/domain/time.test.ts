import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalTimestamp } from '../../src/domain/time.js';
import { timestampText } from '../../src/postgres/table-mapping.js';

const pad = (n: number, width: number) => String(n).padStart(width, '0');
const daysIn = (year: number, month: number) =>
  [31, (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][
    month - 1
  ]!;

/** Timestamps in the canonical shape, with fields a little past their ranges too. */
const shaped = fc.record({
  year: fc.integer({ min: 0, max: 9999 }),
  month: fc.integer({ min: 0, max: 13 }),
  day: fc.integer({ min: 0, max: 32 }),
  hour: fc.integer({ min: 0, max: 24 }),
  minute: fc.integer({ min: 0, max: 60 }),
  second: fc.integer({ min: 0, max: 60 }),
  ms: fc.integer({ min: 0, max: 999 }),
});

describe('canonicalTimestamp on text already in the canonical shape', () => {
  it('returns it unchanged exactly when it is a real moment of years 1-9999, and refuses it naming the field otherwise', () => {
    fc.assert(
      fc.property(shaped, ({ year, month, day, hour, minute, second, ms }) => {
        const text = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}.${pad(ms, 3)}Z`;
        const real =
          year >= 1 &&
          month >= 1 &&
          month <= 12 &&
          day >= 1 &&
          day <= daysIn(year, month) &&
          hour < 24 &&
          minute < 60 &&
          second < 60;
        if (real) expect(canonicalTimestamp('at', text)).toBe(text);
        else
          expect(() => canonicalTimestamp('at', text)).toThrow(
            expect.objectContaining({ name: 'ValidationError', field: 'at' }),
          );
      }),
      { numRuns: 2000 },
    );
  });
});

describe("timestampText (PostgreSQL's timestamptz text)", () => {
  it('reads UTC text of any year and precision, and text at another offset, as the same canonical moment', () => {
    expect(timestampText('2026-12-07 05:19:42.123456+00')).toBe('2026-12-07T05:19:42.123Z');
    expect(timestampText('2026-12-07 05:19:42+00')).toBe('2026-12-07T05:19:42.000Z');
    expect(timestampText('2026-12-07 05:19:42.1+00')).toBe('2026-12-07T05:19:42.100Z');
    expect(timestampText('0099-06-01 00:00:00.123+00')).toBe('0099-06-01T00:00:00.123Z');
    expect(timestampText('2026-12-07 07:19:42.5+02')).toBe('2026-12-07T05:19:42.500Z');
    expect(timestampText('2026-12-07 00:00:00-05:30')).toBe('2026-12-07T05:30:00.000Z');
  });
});
