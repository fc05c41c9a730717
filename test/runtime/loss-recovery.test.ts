import { describe, expect, it } from 'vitest';
import type { RepairRequest } from '../../verifier/verifier-loop.js';
import type { VerifyReport } from '../../verifier/verify.js';
import { convergence } from '../../src/runtime/convergence.js';
import { LossRecovery } from '../../src/runtime/loss-recovery.js';
import type { Unverified } from '../../src/postgres/runtime-state/lineage-store.js';
import type { Side } from '../../src/ports/stage.js';

const AT = '2026-12-01T12:00:00.000Z';
const report = (consistent: boolean, startedAt = AT, persistent = consistent ? 0 : 3) =>
  ({
    startedAt,
    consistent,
    incomplete: [],
    differences: [],
    seconds: 0,
    entities: [
      {
        store: 'graph',
        entity: 'projects',
        differences: { missing_in_postgres: persistent, missing_in_memory: 0, fields_differ: 0 },
      },
    ],
  }) as unknown as VerifyReport;

describe('convergence: converged means equal', () => {
  const clean = { outbox: { depth: 0 }, lastReport: report(true) };
  it.each<[string, Parameters<typeof convergence>[0], boolean, RegExp]>([
    [
      'empty outbox and a clean verification',
      clean,
      true,
      /^the outbox is empty and the sides were verified equal at /,
    ],
    ['entries in the outbox', { ...clean, outbox: { depth: 4 } }, false, /^4 mirror writes wait in the outbox$/],
    ['no verification yet', { outbox: { depth: 0 } }, false, /no verification has compared the sides yet/],
    [
      'a verification from before the last failed mirror write',
      { ...clean, lastFailureAt: Date.parse(AT) + 1000 },
      false,
      /no verification has run since a mirror write last failed/,
    ],
    [
      'a verification after the last failed mirror write',
      { ...clean, lastFailureAt: Date.parse(AT) - 1000 },
      true,
      /verified equal/,
    ],
    ['a verification with differences', { ...clean, lastReport: report(false) }, false, /found differences/],
    [
      'a side unverified after an outbox loss, whatever the outbox says',
      {
        ...clean,
        unverified: { side: 'postgres', since: AT, reason: 'Redis restarted empty', attempts: 2, differences: 7 },
      },
      false,
      /^postgres unverified since .* \(Redis restarted empty\), 7 differences at the last check/,
    ],
  ])('%s', (_what, input, converged, detail) => {
    const verdict = convergence(input);
    expect(verdict.converged).toBe(converged);
    expect(verdict.detail).toMatch(detail);
  });
});

describe('LossRecovery', () => {
  /** A recovery over scripted answers; what it recorded and told is kept. */
  function recoveryWith(answers: { drain?: (string | undefined)[]; verify?: (VerifyReport | undefined | Error)[] }) {
    const recorded: (Unverified | null)[] = [];
    const changes: [Side, boolean][] = [];
    const requests: (RepairRequest | false)[] = [];
    const recovery = new LossRecovery({
      drainFor: async () => answers.drain?.shift(),
      verify: async (repair) => {
        requests.push(repair);
        const answer = answers.verify?.shift();
        if (answer instanceof Error) throw answer;
        return answer;
      },
      record: async (unverified) => void recorded.push(unverified),
      onChange: (side, unverified) => void changes.push([side, unverified]),
      // Attempts are driven by the test, not by timers.
      retryMs: 3_600_000,
      now: () => new Date(AT),
    });
    return { recovery, recorded, changes, requests };
  }

  it('marks the side unverified and keeps it so until an attempt proves the sides equal, repairing toward it without deleting', async () => {
    const { recovery, recorded, changes, requests } = recoveryWith({
      drain: ['1 journaled writes for postgres cannot be replayed yet (ECONNREFUSED)', undefined, undefined],
      verify: [new Error('connect ECONNREFUSED'), report(false), report(true)],
    });
    recovery.lost('postgres', 'Redis restarted empty');
    expect(recovery.current).toMatchObject({ side: 'postgres', since: AT, reason: 'Redis restarted empty' });
    expect(recorded).toEqual([{ side: 'postgres', since: AT, reason: 'Redis restarted empty' }]);
    expect(changes).toEqual([['postgres', true]]);

    // PostgreSQL still down: the outbox cannot drain.
    expect(await recovery.attempt()).toBe(false);
    expect(recovery.current).toMatchObject({
      attempts: 1,
      lastProblem: expect.stringContaining('cannot be replayed yet'),
    });
    // The verification fails.
    expect(await recovery.attempt()).toBe(false);
    expect(recovery.current).toMatchObject({ attempts: 2, lastProblem: 'Error: connect ECONNREFUSED' });
    // Differences found and repaired; the verification after the repairs is clean.
    expect(await recovery.attempt()).toBe(true);
    expect(recovery.current).toBeUndefined();
    expect(requests).toEqual([
      { reason: expect.stringContaining('Redis restarted empty'), allowDeletes: 0, unlessIncomplete: 'authoritative' },
      expect.objectContaining({ allowDeletes: 0 }),
      false,
    ]);
    expect(recorded.at(-1)).toBeNull();
    expect(changes.at(-1)).toEqual(['postgres', false]);
  });

  it('stays unverified while differences remain after its repairs, saying how many', async () => {
    const { recovery } = recoveryWith({ drain: [undefined], verify: [report(false), report(false)] });
    recovery.lost('postgres', 'Redis restarted empty');
    expect(await recovery.attempt()).toBe(false);
    expect(recovery.current).toMatchObject({
      attempts: 1,
      differences: 3,
      lastProblem: expect.stringMatching(/^3 differences remain/),
    });
  });

  it('a skipped verification proves nothing', async () => {
    const { recovery } = recoveryWith({ drain: [undefined], verify: [undefined] });
    recovery.lost('memory', 'a failover');
    expect(await recovery.attempt()).toBe(false);
    expect(recovery.current).toMatchObject({ side: 'memory', lastProblem: expect.stringContaining('skipped') });
  });

  it("a second loss before the first is proven keeps the first one's time and both reasons", async () => {
    const { recovery, recorded } = recoveryWith({});
    recovery.lost('postgres', 'Redis restarted empty');
    recovery.lost('postgres', 'a failover');
    expect(recovery.current).toMatchObject({ since: AT, reason: 'Redis restarted empty; then a failover' });
    expect(recorded.at(-1)).toEqual({ side: 'postgres', since: AT, reason: 'Redis restarted empty; then a failover' });
    recovery.stop();
  });
});
