import type { VerifyReport } from '../../verifier/verify.js';
import type { UnverifiedState } from './loss-recovery.js';

/** Whether the sides are known to be equal now, and what says so or stands in the way. */
export interface Convergence {
  readonly converged: boolean;
  readonly detail: string;
}

/** What the verdict is drawn from. */
export interface ConvergenceInput {
  readonly outbox: { readonly depth: number };
  /** A side that may miss writes the outbox lost (LossRecovery). */
  readonly unverified?: UnverifiedState;
  /** When a mirror write last failed to reach its target (ms since the epoch). */
  readonly lastFailureAt?: number;
  readonly lastReport?: Pick<VerifyReport, 'startedAt' | 'consistent'>;
}

/**
 * Converged means equal: nothing waits in the outbox, no side is unverified, and a
 * verification that started after the last failed mirror write found the sides equal. An
 * empty outbox alone proves nothing: what a lost entry would have written is not in it.
 */
export function convergence(input: ConvergenceInput): Convergence {
  const { unverified, lastReport } = input;
  if (unverified) {
    const found =
      unverified.differences !== undefined ? `, ${unverified.differences} differences at the last check` : '';
    return {
      converged: false,
      detail: `${unverified.side} unverified since ${unverified.since} (${unverified.reason})${found}; retried until a verification proves the sides equal`,
    };
  }
  if (input.outbox.depth > 0)
    return { converged: false, detail: `${input.outbox.depth} mirror writes wait in the outbox` };
  if (!lastReport)
    return { converged: false, detail: 'the outbox is empty, but no verification has compared the sides yet' };
  const failedAt = input.lastFailureAt;
  if (failedAt !== undefined && Date.parse(lastReport.startedAt) <= failedAt) {
    return {
      converged: false,
      detail: `the outbox is empty, but no verification has run since a mirror write last failed (${new Date(failedAt).toISOString()})`,
    };
  }
  if (!lastReport.consistent)
    return { converged: false, detail: `the last verification (${lastReport.startedAt}) found differences` };
  return {
    converged: true,
    detail: `the outbox is empty and the sides were verified equal at ${lastReport.startedAt}`,
  };
}
