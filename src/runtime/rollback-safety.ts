import type { VerifyReport } from '../../verifier/verify.js';
import type { EffectiveFlags } from '../ports/flags.js';
import { STAGE_POLICIES } from '../ports/stage.js';

/** Whether a rollback now would lose anything. */
export interface RollbackSafety {
  readonly safe: boolean;
  readonly detail: string;
}

/**
 * The rollback rehearsal: while memory is authoritative a rollback never loses a write.
 * In postgres-primary memory is mirrored, so a rollback loses nothing once the mirror
 * writes toward memory have landed (none journaled) and a recent verification found
 * memory equal to PostgreSQL. In postgres-only memory is not written at all.
 */
export function rollbackSafety(
  inForce: EffectiveFlags,
  memoryStale: boolean,
  journaledToMemory: number,
  lastReport: VerifyReport | undefined,
  now: Date,
  maxReportAgeMs: number,
): RollbackSafety {
  const incomplete = lastReport?.incomplete.filter((side) => side.side === 'memory') ?? [];
  if (incomplete.length > 0) {
    const missing = incomplete.map((side) => `${side.missing} of ${side.of} ${side.store}.${side.entity}`).join(', ');
    return {
      safe: false,
      detail: `the last verification found memory incomplete (it misses ${missing}): a rollback would serve what memory lacks as missing; find out why before rolling back`,
    };
  }
  if (STAGE_POLICIES[inForce.stage].authoritative === 'memory')
    return { safe: true, detail: `memory is authoritative in ${inForce.stage}: a rollback loses nothing` };
  if (inForce.stage === 'postgres-only') {
    return {
      safe: false,
      detail:
        'memory is not written in postgres-only: roll back to postgres-primary (memory is mirrored again), then dualwrite resync --to memory, before rolling back further',
    };
  }
  if (memoryStale) {
    return {
      safe: false,
      detail:
        'memory missed the writes made in postgres-only: dualwrite resync --to memory --reason ... rebuilds it, then rolling back further is safe',
    };
  }
  if (journaledToMemory > 0)
    return {
      safe: false,
      detail: `${journaledToMemory} mirror writes toward memory wait in the outbox: a rollback waits for them (and is refused while they cannot land)`,
    };
  if (!lastReport)
    return {
      safe: false,
      detail: 'unknown: no verification has compared memory with PostgreSQL in this stage yet (dualwrite verify)',
    };
  const minutes = ((now.getTime() - Date.parse(lastReport.startedAt)) / 60_000).toFixed(1);
  if (!lastReport.consistent)
    return {
      safe: false,
      detail: `the last verification (${minutes} min ago) found memory and PostgreSQL different: repair before rolling back`,
    };
  if (now.getTime() - Date.parse(lastReport.startedAt) > maxReportAgeMs)
    return { safe: false, detail: `unknown: the last clean verification is ${minutes} min old (dualwrite verify)` };
  return {
    safe: true,
    detail: `memory matched PostgreSQL ${minutes} min ago and no mirror write toward it waits: a rollback loses nothing`,
  };
}
