import { describe, expect, it } from 'vitest';
import { DEFAULT_EVIDENCE_THRESHOLDS, isAdvance, judgeMove, type Evidence } from '../../src/runtime/evidence-gate.js';
import type { MigrationFlags } from '../../src/ports/flags.js';
import type { Stage } from '../../src/ports/stage.js';
import type { ShadowOptions } from '../../src/dualwrite/shadow.js';
import { availableBackends, useBackend } from '../support/backends.js';
import { readForEvidence, useTestRuntimes } from '../support/runtimes.js';

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
    expect(judgeMove(flags('postgres-primary', 100), flags('dual-write'), bad, NOW)).toEqual({
      advance: false,
      allowed: true,
      checks: [],
      refusal: '',
    });
  });

  it.each<[string, Partial<Evidence>, RegExp]>([
    ['no verification', { lastVerification: undefined }, /^verification: no verification has completed/],
    [
      'a stale verification',
      { lastVerification: { startedAt: minutesAgo(45), consistent: true } },
      /^verification: last clean verification 45\.0 min ago \(at most 30\.0 min\)$/,
    ],
    [
      'a verification with differences',
      { lastVerification: { startedAt: minutesAgo(1), consistent: false } },
      /^verification: the last verification \(1\.0 min ago\) found differences$/,
    ],
    [
      'an old outbox entry',
      { outbox: { depth: 12, oldestAgeSeconds: 300 } },
      /^outbox: 12 entries, the oldest 300 s old \(under 60 s allowed\)$/,
    ],
    [
      'shadow mismatches',
      { shadow: { compared: 1000, mismatched: 5 } },
      /^shadow-mismatches: 5 of 1000 shadow reads mismatched \(0\.50%; at most 0\.10%\)$/,
    ],
    [
      'PostgreSQL errors',
      { postgresCalls: { total: 1000, failed: 20 } },
      /^postgres-errors: 20 of 1000 PostgreSQL calls failed \(2\.0%; at most 1\.0%\)$/,
    ],
    [
      'slow PostgreSQL',
      { p95Ms: { memory: 0.02, postgres: 80 } },
      /^postgres-latency: PostgreSQL p95 80\.00 ms \(at most 50\.00 ms/,
    ],
  ])('refuses an advance on %s, naming the check and its figure', (_what, spoiled, refusal) => {
    const verdict = judgeMove(flags('dual-write'), flags('read-shift', 10), { ...GOOD, ...spoiled }, NOW);
    expect(verdict.allowed).toBe(false);
    expect(verdict.refusal).toMatch(refusal);
  });

  it('judges the latency against memory times the factor when that is above the floor', () => {
    const slowMemory: Evidence = { ...GOOD, p95Ms: { memory: 10, postgres: 90 } };
    expect(judgeMove(flags('dual-write'), flags('read-shift', 10), slowMemory, NOW).allowed).toBe(true);
    expect(
      judgeMove(
        flags('dual-write'),
        flags('read-shift', 10),
        { ...slowMemory, p95Ms: { memory: 10, postgres: 101 } },
        NOW,
      ).allowed,
    ).toBe(false);
  });

  it('judges the latency only over enough calls: the p95 of a few calls is their slowest one', () => {
    const slow = { memory: 0.02, postgres: 90 };
    const few: Evidence = { ...GOOD, postgresCalls: { total: 99, failed: 0 }, p95Ms: slow };
    const verdict = judgeMove(flags('dual-write'), flags('read-shift', 10), few, NOW);
    expect(verdict.allowed).toBe(false);
    expect(verdict.checks.find((check) => check.name === 'postgres-latency')!.detail).toBe(
      "99 of 100 PostgreSQL calls needed to judge a p95; so far PostgreSQL p95 90.00 ms (at most 50.00 ms: 10x memory's 0.020 ms, or 50 ms)",
    );
    expect(
      judgeMove(flags('dual-write'), flags('read-shift', 10), { ...few, postgresCalls: { total: 100, failed: 0 } }, NOW)
        .refusal,
    ).toMatch(/^postgres-latency: PostgreSQL p95 90\.00 ms \(at most 50\.00 ms/);
  });

  it('refuses the latency check on calls none of which was timed (mirror writes only)', () => {
    const verdict = judgeMove(flags('dual-write'), flags('read-shift', 10), { ...GOOD, p95Ms: { memory: 0.02 } }, NOW);
    expect(verdict.refusal).toBe(
      'postgres-latency: no PostgreSQL read was timed in the window (mirror writes are not; reads served or shadowed by PostgreSQL are)',
    );
  });

  it('an advance right after start is refused for lack of PostgreSQL calls and shadow comparisons, naming the counts', () => {
    const start: Evidence = {
      outbox: { depth: 0, oldestAgeSeconds: 0 },
      shadow: { compared: 0, mismatched: 0 },
      postgresCalls: { total: 0, failed: 0 },
      p95Ms: {},
    };
    const verdict = judgeMove(flags('dual-write'), flags('read-shift', 10), start, NOW);
    expect(verdict.allowed).toBe(false);
    expect(Object.fromEntries(verdict.checks.map((check) => [check.name, check.ok ? 'ok' : check.detail]))).toEqual({
      verification: 'no verification has completed (one no older than 30.0 min is needed)',
      outbox: 'ok',
      'shadow-mismatches':
        '0 of 100 shadow comparisons needed; so far 0 of 0 shadow reads mismatched (0.00%; at most 0.10%)',
      'postgres-errors':
        '0 of 100 PostgreSQL calls needed; so far 0 of 0 PostgreSQL calls failed (0.00%; at most 1.0%)',
      'postgres-latency': '0 of 100 PostgreSQL calls needed to judge a p95',
    });
    // A few observations are still too few, and the refusal says how many there are.
    const early: Evidence = {
      ...GOOD,
      shadow: { compared: 3, mismatched: 0 },
      postgresCalls: { total: 12, failed: 0 },
    };
    const refusal = judgeMove(flags('dual-write'), flags('read-shift', 10), early, NOW).refusal;
    expect(refusal).toContain('shadow-mismatches: 3 of 100 shadow comparisons needed;');
    expect(refusal).toContain('postgres-errors: 12 of 100 PostgreSQL calls needed;');
    expect(refusal).toContain('postgres-latency: 12 of 100 PostgreSQL calls needed to judge a p95;');
    expect(refusal).not.toContain('shadow reads are off');
  });

  it('an explicit shadow rate of 0 refuses with how to turn it on', () => {
    const unshadowed: Evidence = { ...GOOD, shadow: { compared: 0, mismatched: 0 } };
    const off = judgeMove(flags('dual-write'), flags('read-shift', 10), { ...unshadowed, shadowReadsOff: true }, NOW);
    expect(off.allowed).toBe(false);
    expect(off.refusal).toBe(
      "shadow-mismatches: 0 of 100 shadow comparisons needed: shadow reads are off (a sample rate of 0 is configured): set DUALWRITE_SHADOW_SAMPLE_RATE (or openDualWrite's shadow.sampleRate) above 0, e.g. 0.05, or leave it unset for 5% in dual-write and read-shift",
    );
    // Only a rate of 0 gets the hint: at the default rate the comparisons are still to come.
    expect(judgeMove(flags('dual-write'), flags('read-shift', 10), unshadowed, NOW).refusal).toMatch(
      /^shadow-mismatches: 0 of 100 shadow comparisons needed; so far /,
    );
  });

  it('with enough clean observations the advance is allowed', () => {
    const enough: Evidence = {
      ...GOOD,
      shadow: { compared: 100, mismatched: 0 },
      postgresCalls: { total: 100, failed: 1 },
    };
    const verdict = judgeMove(flags('dual-write'), flags('read-shift', 10), enough, NOW);
    expect(verdict).toMatchObject({ allowed: true, refusal: '' });
    expect(verdict.checks.every((check) => check.ok)).toBe(true);
    expect(
      judgeMove(
        flags('dual-write'),
        flags('read-shift', 10),
        { ...enough, shadow: { compared: 99, mismatched: 0 } },
        NOW,
      ).refusal,
    ).toMatch(/^shadow-mismatches: 99 of 100 shadow comparisons needed/);
    expect(
      judgeMove(
        flags('dual-write'),
        flags('read-shift', 10),
        { ...enough, postgresCalls: { total: 99, failed: 0 } },
        NOW,
      ).allowed,
    ).toBe(false);
    // Lower minimums (openDualWrite({ evidence })) are honoured.
    const few: Evidence = { ...GOOD, shadow: { compared: 10, mismatched: 0 }, postgresCalls: { total: 10, failed: 0 } };
    expect(
      judgeMove(flags('dual-write'), flags('read-shift', 10), few, NOW, {
        ...DEFAULT_EVIDENCE_THRESHOLDS,
        minPostgresCalls: 10,
        minShadowComparisons: 10,
      }).allowed,
    ).toBe(true);
  });

  it('needs shadow comparisons only on advances while memory is authoritative (none are sampled by default from postgres-primary on)', () => {
    const unshadowed: Evidence = { ...GOOD, shadow: { compared: 0, mismatched: 0 } };
    const cutover = judgeMove(flags('postgres-primary', 100), flags('postgres-only', 100), unshadowed, NOW);
    expect(cutover.allowed).toBe(true);
    expect(cutover.checks.map((check) => check.name)).toEqual([
      'verification',
      'outbox',
      'postgres-errors',
      'postgres-latency',
    ]);
    expect(judgeMove(flags('read-shift', 100), flags('postgres-primary', 100), unshadowed, NOW).allowed).toBe(false);
  });

  it('lets dual-write start on no evidence: memory stays authoritative, and the evidence comes from dual-write', () => {
    const none: Evidence = {
      outbox: { depth: 0, oldestAgeSeconds: 0 },
      shadow: { compared: 0, mismatched: 0 },
      postgresCalls: { total: 0, failed: 0 },
      p95Ms: {},
    };
    expect(judgeMove(flags('memory-only'), flags('dual-write'), none, NOW, DEFAULT_EVIDENCE_THRESHOLDS)).toEqual({
      advance: true,
      allowed: true,
      checks: [],
      refusal: '',
    });
    expect(judgeMove(flags('memory-only'), flags('read-shift', 10), none, NOW).allowed).toBe(false);
  });
});

for (const factory of availableBackends(['pglite'])) {
  describe(`the evidence gate through the runtime on ${factory.name}`, () => {
    const backend = useBackend(factory);
    const runtimes = useTestRuntimes();
    const CANARY = { stage: 'read-shift', readPercent: 10 } as const;
    const operator = { reason: 'canary', principal: 'ops' };
    /** A runtime in dual-write whose stage setFlags moves (flags from `env`), with a clean verification. */
    const open = async (env: NodeJS.ProcessEnv, shadow: ShadowOptions) => {
      const { rt } = await runtimes.open({
        db: backend.current.db!,
        env: { DUAL_WRITE_MODE: 'dual-write', ...env },
        shadow,
      });
      expect((await rt.verifyNow({ reason: 'evidence', principal: 'ops' }))!.consistent).toBe(true);
      return rt;
    };

    it('an advance right after start is refused for lack of PostgreSQL calls and shadow comparisons, naming the counts; reads at the default shadow rate make the evidence', async () => {
      // No rate configured: the stage's default. Every draw is under it, so each read in dual-write is compared.
      const rt = await open({}, { random: () => 0 });
      const refused = await rt.setFlags(CANARY, operator).then(
        () => undefined,
        (error: unknown) => error as Error,
      );
      expect(refused).toMatchObject({ name: 'EvidenceRefusedError' });
      expect(refused!.message).toMatch(
        /shadow-mismatches: 0 of 100 shadow comparisons needed; .*postgres-errors: 0 of 100 PostgreSQL calls needed; .*postgres-latency: 0 of 100 PostgreSQL calls needed to judge a p95/,
      );
      expect(refused!.message).not.toContain('shadow reads are off');
      expect(rt.stage.current.stage).toBe('dual-write');

      await readForEvidence(rt);
      await rt.setFlags(CANARY, operator);
      expect((await rt.stage.settled()).flags).toMatchObject(CANARY);
    });

    it('an explicit shadow rate of 0 refuses with how to turn it on', async () => {
      // {}: the rate comes from the environment.
      const rt = await open({ DUALWRITE_SHADOW_SAMPLE_RATE: '0' }, {});
      await readForEvidence(rt);
      const shadowCheck = (await rt.judge(CANARY)).checks.find((check) => check.name === 'shadow-mismatches');
      expect(shadowCheck).toEqual({
        name: 'shadow-mismatches',
        ok: false,
        detail: expect.stringMatching(
          /^0 of 100 shadow comparisons needed: shadow reads are off .*set DUALWRITE_SHADOW_SAMPLE_RATE .*above 0/,
        ),
      });
      await expect(rt.setFlags(CANARY, operator)).rejects.toThrow(/shadow reads are off/);
    });
  });
}
