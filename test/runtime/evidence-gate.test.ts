import { describe, expect, it } from 'vitest';
import { DEFAULT_EVIDENCE_THRESHOLDS, isAdvance, judgeMove, type Evidence } from '../../src/runtime/evidence-gate.js';
import type { MigrationFlags } from '../../src/ports/flags.js';
import type { Stage } from '../../src/ports/stage.js';

const flags = (stage: Stage, readPercent = 0): MigrationFlags => ({ stage, readPercent, rolloutGroup: 'g' });
const NOW = new Date('2026-12-01T12:00:00.000Z');
const minutesAgo = (minutes: number) => new Date(NOW.getTime() - minutes * 60_000).toISOString();

/** Evidence every check accepts; each test spoils one figure. */
const GOOD: Evidence = {
  lastVerification: { startedAt: minutesAgo(5), consistent: true },
  outbox: { depth: 0, oldestAgeSeconds: 0 },
  shadow: { compared: 10_000, mismatched: 0 },
  postgresCalls: { total: 50_000, failed: 10 },
  p95Ms: { memory: 0.02, postgres: 4 },
};

describe('the evidence gate', () => {
  it.each([
    [flags('memory-only'), flags('dual-write'), true],
    [flags('dual-write'), flags('read-shift', 10), true],
    [flags('read-shift', 10), flags('read-shift', 50), true],
    [flags('read-shift', 50), flags('read-shift', 10), false],
    [flags('read-shift', 100), flags('postgres-primary', 100), true],
    [flags('postgres-primary', 100), flags('postgres-only', 100), true],
    [flags('postgres-only', 100), flags('postgres-primary', 100), false],
    [flags('postgres-primary', 100), flags('dual-write'), false],
    [flags('dual-write'), flags('dual-write'), false],
  ])('%j -> %j is an advance: %s', (from, to, advance) => {
    expect(isAdvance(from, to)).toBe(advance);
  });

  it('lets an advance through on good evidence, listing every check', () => {
    const verdict = judgeMove(flags('read-shift', 10), flags('read-shift', 50), GOOD, NOW);
    expect(verdict).toMatchObject({ advance: true, allowed: true, refusal: '' });
    expect(verdict.checks.map((check) => [check.name, check.ok])).toEqual([
      ['verification', true],
      ['outbox', true],
      ['shadow-mismatches', true],
      ['postgres-errors', true],
      ['postgres-latency', true],
    ]);
  });

  it('never judges a step back, whatever the evidence', () => {
    const bad: Evidence = { ...GOOD, lastVerification: undefined, postgresCalls: { total: 10, failed: 10 } };
    expect(judgeMove(flags('postgres-primary', 100), flags('dual-write'), bad, NOW)).toEqual({ advance: false, allowed: true, checks: [], refusal: '' });
  });

  it.each<[string, Partial<Evidence>, RegExp]>([
    ['no verification', { lastVerification: undefined }, /^verification: no verification has completed/],
    ['a stale verification', { lastVerification: { startedAt: minutesAgo(45), consistent: true } }, /^verification: last clean verification 45\.0 min ago \(at most 30\.0 min\)$/],
    ['a verification with differences', { lastVerification: { startedAt: minutesAgo(1), consistent: false } }, /^verification: the last verification \(1\.0 min ago\) found differences$/],
    ['an old outbox entry', { outbox: { depth: 12, oldestAgeSeconds: 300 } }, /^outbox: 12 entries, the oldest 300 s old \(under 60 s allowed\)$/],
    ['shadow mismatches', { shadow: { compared: 1000, mismatched: 5 } }, /^shadow-mismatches: 5 of 1000 shadow reads mismatched \(0\.50%; at most 0\.10%\)$/],
    ['PostgreSQL errors', { postgresCalls: { total: 1000, failed: 20 } }, /^postgres-errors: 20 of 1000 PostgreSQL calls failed \(2\.0%; at most 1\.0%\)$/],
    ['slow PostgreSQL', { p95Ms: { memory: 0.02, postgres: 80 } }, /^postgres-latency: PostgreSQL p95 80\.00 ms \(at most 50\.00 ms/],
  ])('refuses an advance on %s, naming the check and its figure', (_what, spoiled, refusal) => {
    const verdict = judgeMove(flags('dual-write'), flags('read-shift', 10), { ...GOOD, ...spoiled }, NOW);
    expect(verdict.allowed).toBe(false);
    expect(verdict.refusal).toMatch(refusal);
  });

  it('judges the latency against memory times the factor when that is above the floor', () => {
    const slowMemory: Evidence = { ...GOOD, p95Ms: { memory: 10, postgres: 90 } };
    expect(judgeMove(flags('dual-write'), flags('read-shift', 10), slowMemory, NOW).allowed).toBe(true);
    expect(judgeMove(flags('dual-write'), flags('read-shift', 10), { ...slowMemory, p95Ms: { memory: 10, postgres: 101 } }, NOW).allowed).toBe(false);
  });

  it('judges the latency only over enough calls: the p95 of a few calls is their slowest one', () => {
    const slow = { memory: 0.02, postgres: 90 };
    const few: Evidence = { ...GOOD, postgresCalls: { total: 99, failed: 0 }, p95Ms: slow };
    const verdict = judgeMove(flags('dual-write'), flags('read-shift', 10), few, NOW);
    expect(verdict.allowed).toBe(true);
    expect(verdict.checks.find((check) => check.name === 'postgres-latency')!.detail).toBe('99 PostgreSQL calls in the window: too few to judge a p95 (needs 100)');
    expect(judgeMove(flags('dual-write'), flags('read-shift', 10), { ...few, postgresCalls: { total: 100, failed: 0 } }, NOW).allowed).toBe(false);
  });

  it('lets dual-write start on no evidence: memory stays authoritative, and the evidence comes from dual-write', () => {
    const none: Evidence = { outbox: { depth: 0, oldestAgeSeconds: 0 }, shadow: { compared: 0, mismatched: 0 }, postgresCalls: { total: 0, failed: 0 }, p95Ms: {} };
    expect(judgeMove(flags('memory-only'), flags('dual-write'), none, NOW, DEFAULT_EVIDENCE_THRESHOLDS)).toEqual({ advance: true, allowed: true, checks: [], refusal: '' });
    expect(judgeMove(flags('memory-only'), flags('read-shift', 10), none, NOW).allowed).toBe(false);
  });
});
