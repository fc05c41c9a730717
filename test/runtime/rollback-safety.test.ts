import { describe, expect, it } from 'vitest';
import { rollbackSafety } from '../../src/runtime/rollback-safety.js';
import type { EffectiveFlags } from '../../src/ports/flags.js';
import type { Stage } from '../../src/ports/stage.js';
import type { VerifyReport } from '../../verifier/verify.js';

const NOW = new Date('2026-12-01T12:00:00.000Z');
const flags = (stage: Stage): EffectiveFlags => ({
  stage,
  readPercent: stage === 'read-shift' ? 50 : 0,
  rolloutGroup: 'g',
  source: 'file',
});
const report = (minutesAgo: number, consistent: boolean, incomplete: VerifyReport['incomplete'] = []) =>
  ({ startedAt: new Date(NOW.getTime() - minutesAgo * 60_000).toISOString(), consistent, incomplete }) as VerifyReport;
const memoryMissing: VerifyReport['incomplete'] = [
  { store: 'graph', entity: 'projects', side: 'memory', missing: 20, of: 20 },
];
const HALF_HOUR = 30 * 60_000;

/** The rollback rehearsal: whether rolling back now would lose anything, and why. */
describe('rollbackSafety', () => {
  it.each(['memory-only', 'dual-write', 'read-shift'] as const)(
    'is safe in %s, where memory is authoritative',
    (stage) => {
      expect(rollbackSafety(flags(stage), false, 0, report(1, true), NOW, HALF_HOUR)).toMatchObject({
        safe: true,
        detail: expect.stringContaining('memory is authoritative'),
      });
    },
  );

  it('is safe in postgres-primary once a recent verification found memory equal and nothing waits to reach it', () => {
    expect(rollbackSafety(flags('postgres-primary'), false, 0, report(5, true), NOW, HALF_HOUR)).toEqual({
      safe: true,
      detail: 'memory matched PostgreSQL 5.0 min ago and no mirror write toward it waits: a rollback loses nothing',
    });
  });

  it.each<[string, Parameters<typeof rollbackSafety>, RegExp]>([
    [
      'postgres-only',
      [flags('postgres-only'), false, 0, report(1, true), NOW, HALF_HOUR],
      /roll back to postgres-primary .*then dualwrite resync --to memory/,
    ],
    [
      'memory stale since postgres-only ran',
      [flags('postgres-primary'), true, 0, report(1, true), NOW, HALF_HOUR],
      /^memory missed the writes made in postgres-only: dualwrite resync --to memory/,
    ],
    [
      'memory found incomplete, in dual-write',
      [flags('dual-write'), false, 0, report(1, false, memoryMissing), NOW, HALF_HOUR],
      /found memory incomplete \(it misses 20 of 20 graph.projects\)/,
    ],
    [
      'memory found incomplete, in postgres-primary',
      [flags('postgres-primary'), false, 0, report(1, false, memoryMissing), NOW, HALF_HOUR],
      /found memory incomplete/,
    ],
    [
      'writes toward memory in the outbox',
      [flags('postgres-primary'), false, 12, report(1, true), NOW, HALF_HOUR],
      /^12 mirror writes toward memory wait/,
    ],
    [
      'no verification yet',
      [flags('postgres-primary'), false, 0, undefined, NOW, HALF_HOUR],
      /^unknown: no verification/,
    ],
    [
      'a verification that found differences',
      [flags('postgres-primary'), false, 0, report(2, false), NOW, HALF_HOUR],
      /found memory and PostgreSQL different/,
    ],
    [
      'a stale verification',
      [flags('postgres-primary'), false, 0, report(45, true), NOW, HALF_HOUR],
      /^unknown: the last clean verification is 45\.0 min old/,
    ],
  ])('is not safe (or not known to be) with %s', (_what, args, detail) => {
    const safety = rollbackSafety(...args);
    expect(safety.safe).toBe(false);
    expect(safety.detail).toMatch(detail);
  });
});
