import type { MigrationFlags } from '../ports/flags.js';
import { STAGE_POLICIES, STAGES, type Side } from '../ports/stage.js';
import { RequestRefusedError } from '../domain/errors.js';

/**
 * What must hold before a stage advances (dual-write -> read-shift -> a higher percentage
 * -> postgres-primary -> postgres-only); a step back never needs evidence. Each figure is
 * measured over the window, and a refusal names the check with its figure. A rate is
 * judged only over enough observations (minPostgresCalls, minShadowComparisons): fewer
 * refuse, saying how many there are and how many are needed.
 */
export interface EvidenceThresholds {
  /** A clean verification no older than this. Default 30 minutes. */
  readonly verifyMaxAgeMs: number;
  /** The outbox empty, or its oldest entry younger than this. Default 60 s. */
  readonly outboxMaxAgeSeconds: number;
  /** Share of shadow comparisons that mismatched; judged on advances while memory is authoritative. Default 0.001 (0.1%). */
  readonly shadowMismatchMax: number;
  /** Share of PostgreSQL calls and mirror writes that failed. Default 0.01 (1%). */
  readonly postgresErrorRateMax: number;
  /**
   * PostgreSQL's p95 latency at most this many times memory's, or under
   * postgresLatencyFloorMs, whichever is higher: an in-process Map answers in microseconds,
   * so a pure factor would refuse any network database. Default 10.
   */
  readonly latencyFactorMax: number;
  /** See latencyFactorMax. Default 50 ms. */
  readonly postgresLatencyFloorMs: number;
  /**
   * PostgreSQL calls (and mirror writes) the window must hold before its error rate and p95
   * are judged; fewer refuse the advance. A few calls prove nothing: the p95 of a few calls
   * is their slowest one, which a single hiccup decides, and right after start there are
   * none at all. Default 100.
   */
  readonly minPostgresCalls: number;
  /**
   * Shadow comparisons (matches and mismatches) the window must hold before their mismatch
   * rate is judged; fewer refuse the advance. Reads are compared only when sampled
   * (DUALWRITE_SHADOW_SAMPLE_RATE, by default 5% in dual-write and read-shift). Default 100.
   */
  readonly minShadowComparisons: number;
}

export const DEFAULT_EVIDENCE_THRESHOLDS: EvidenceThresholds = {
  verifyMaxAgeMs: 30 * 60_000,
  outboxMaxAgeSeconds: 60,
  shadowMismatchMax: 0.001,
  postgresErrorRateMax: 0.01,
  latencyFactorMax: 10,
  postgresLatencyFloorMs: 50,
  minPostgresCalls: 100,
  minShadowComparisons: 100,
};

/** The figures the gate judges, as measured over the window. */
export interface Evidence {
  /** The last completed verification: when it started, and whether it was clean; undefined when none ran. */
  readonly lastVerification?: { readonly startedAt: string; readonly consistent: boolean };
  /** A side that may miss writes the outbox lost, until a verification proves the sides equal (LossRecovery); absent when none. */
  readonly unverified?: { readonly side: Side; readonly since: string; readonly reason: string };
  readonly outbox: { readonly depth: number; readonly oldestAgeSeconds: number };
  /** Shadow comparisons in the window: matches and mismatches (skipped ones do not count). */
  readonly shadow: { readonly compared: number; readonly mismatched: number };
  /**
   * PostgreSQL calls and mirror writes in the window, how many failed, and how many of those
   * failures were mirror writes PostgreSQL rejected for their data (a constraint, a value it
   * refuses; default 0): they count against the rate, as no evidence for moving on, but are
   * named as data rather than as errors of a failing server.
   */
  readonly postgresCalls: { readonly total: number; readonly failed: number; readonly rejected?: number };
  /** p95 call latency per side in the window, in ms; undefined without calls. */
  readonly p95Ms: Readonly<Partial<Record<Side, number>>>;
  /** True when shadow reads are turned off (a sample rate of 0 configured): a refusal then says how to turn them on. */
  readonly shadowReadsOff?: boolean;
}

export interface EvidenceCheck {
  readonly name: 'verification' | 'outbox' | 'shadow-mismatches' | 'postgres-errors' | 'postgres-latency';
  readonly ok: boolean;
  /** The figure and the bar it was held to, for people. */
  readonly detail: string;
}

export interface GateVerdict {
  /** Whether the move is an advance (only advances are judged). */
  readonly advance: boolean;
  readonly allowed: boolean;
  readonly checks: readonly EvidenceCheck[];
  /** The failed checks, joined, for an error message; empty when allowed. */
  readonly refusal: string;
}

/** Whether `to` moves further toward PostgreSQL than `from`. */
export function isAdvance(from: MigrationFlags, to: MigrationFlags): boolean {
  const order = (flags: MigrationFlags) => STAGES.indexOf(flags.stage);
  if (order(to) !== order(from)) return order(to) > order(from);
  return to.stage === 'read-shift' && to.readPercent > from.readPercent;
}

/**
 * Judges a move from `from` to `to` on `evidence`, at time `now`. Starting dual-write is
 * not judged: memory stays authoritative and nothing is read from PostgreSQL yet, and
 * dual-write is where the evidence (verifications, mirror errors, latency) comes from.
 * No check passes on an empty window: too few PostgreSQL calls or shadow comparisons refuse.
 */
export function judgeMove(
  from: MigrationFlags,
  to: MigrationFlags,
  evidence: Evidence,
  now: Date,
  thresholds: EvidenceThresholds = DEFAULT_EVIDENCE_THRESHOLDS,
): GateVerdict {
  if (!isAdvance(from, to) || to.stage === 'dual-write')
    return { advance: isAdvance(from, to), allowed: true, checks: [], refusal: '' };
  const checks: EvidenceCheck[] = [
    verificationCheck(evidence, now, thresholds),
    outboxCheck(evidence, thresholds),
    ...(needsShadowEvidence(from) ? [shadowCheck(evidence, thresholds)] : []),
    errorCheck(evidence, thresholds),
    latencyCheck(evidence, thresholds),
  ];
  const failed = checks.filter((check) => !check.ok);
  return {
    advance: true,
    allowed: failed.length === 0,
    checks,
    refusal: failed.map((check) => `${check.name}: ${check.detail}`).join('; '),
  };
}

/** An advance the evidence does not support; `verdict` says which checks failed, with their figures. */
export class EvidenceRefusedError extends RequestRefusedError {
  constructor(
    readonly from: MigrationFlags,
    readonly to: MigrationFlags,
    readonly verdict: GateVerdict,
  ) {
    super(
      `refusing to advance from ${from.stage} to ${to.stage}${to.stage === 'read-shift' ? ` ${to.readPercent}%` : ''}: ${verdict.refusal} (force overrides, and is audited as forced)`,
    );
  }
}

function verificationCheck(evidence: Evidence, now: Date, thresholds: EvidenceThresholds): EvidenceCheck {
  const last = evidence.lastVerification;
  const minutes = (ms: number) => `${(ms / 60_000).toFixed(1)} min`;
  const lost = evidence.unverified;
  if (lost)
    return {
      name: 'verification',
      ok: false,
      detail: `${lost.side} is unverified since ${lost.since} (${lost.reason}): a verification after the loss must prove the sides equal first (retried by itself)`,
    };
  if (!last)
    return {
      name: 'verification',
      ok: false,
      detail: `no verification has completed (one no older than ${minutes(thresholds.verifyMaxAgeMs)} is needed)`,
    };
  const age = now.getTime() - Date.parse(last.startedAt);
  if (!last.consistent)
    return { name: 'verification', ok: false, detail: `the last verification (${minutes(age)} ago) found differences` };
  return {
    name: 'verification',
    ok: age <= thresholds.verifyMaxAgeMs,
    detail: `last clean verification ${minutes(age)} ago (at most ${minutes(thresholds.verifyMaxAgeMs)})`,
  };
}

function outboxCheck(evidence: Evidence, thresholds: EvidenceThresholds): EvidenceCheck {
  const { depth, oldestAgeSeconds } = evidence.outbox;
  const ok = depth === 0 || oldestAgeSeconds < thresholds.outboxMaxAgeSeconds;
  return {
    name: 'outbox',
    ok,
    detail:
      depth === 0
        ? 'empty'
        : `${depth} entries, the oldest ${oldestAgeSeconds.toFixed(0)} s old (under ${thresholds.outboxMaxAgeSeconds} s allowed)`,
  };
}

/**
 * Shadow comparisons are evidence while memory is authoritative: they check PostgreSQL's
 * answers against memory's before reads, then authority, move to PostgreSQL. From
 * postgres-primary on they would check memory against PostgreSQL, which the verification
 * already does, and shadow reads are not sampled there by default.
 */
function needsShadowEvidence(from: MigrationFlags): boolean {
  return STAGE_POLICIES[from.stage].authoritative === 'memory';
}

/** How to get shadow comparisons when a configured rate of 0 keeps them from ever coming. */
const SHADOW_READS_OFF_HINT =
  "shadow reads are off (a sample rate of 0 is configured): set DUALWRITE_SHADOW_SAMPLE_RATE (or openDualWrite's shadow.sampleRate) above 0, e.g. 0.05, or leave it unset for 5% in dual-write and read-shift";

function shadowCheck(evidence: Evidence, thresholds: EvidenceThresholds): EvidenceCheck {
  const { compared, mismatched } = evidence.shadow;
  const rate = compared === 0 ? 0 : mismatched / compared;
  const figures = `${mismatched} of ${compared} shadow reads mismatched (${percent(rate)}; at most ${percent(thresholds.shadowMismatchMax)})`;
  if (compared < thresholds.minShadowComparisons) {
    const needed = `${compared} of ${thresholds.minShadowComparisons} shadow comparisons needed`;
    return {
      name: 'shadow-mismatches',
      ok: false,
      detail: evidence.shadowReadsOff ? `${needed}: ${SHADOW_READS_OFF_HINT}` : `${needed}; so far ${figures}`,
    };
  }
  return { name: 'shadow-mismatches', ok: rate <= thresholds.shadowMismatchMax, detail: figures };
}

function errorCheck(evidence: Evidence, thresholds: EvidenceThresholds): EvidenceCheck {
  const { total, failed, rejected = 0 } = evidence.postgresCalls;
  const rate = total === 0 ? 0 : failed / total;
  const counted =
    rejected > 0
      ? `${rejected} mirror writes rejected by PostgreSQL (data) and ${failed - rejected} failed, of ${total} PostgreSQL calls`
      : `${failed} of ${total} PostgreSQL calls failed`;
  const where = rejected > 0 ? '; `dualwrite outbox show` says what PostgreSQL refused and how to clear it' : '';
  const figures = `${counted} (${percent(rate)}; at most ${percent(thresholds.postgresErrorRateMax)})${where}`;
  if (total < thresholds.minPostgresCalls)
    return {
      name: 'postgres-errors',
      ok: false,
      detail: `${postgresCallsNeeded(total, thresholds)}; so far ${figures}`,
    };
  return { name: 'postgres-errors', ok: rate <= thresholds.postgresErrorRateMax, detail: figures };
}

function latencyCheck(evidence: Evidence, thresholds: EvidenceThresholds): EvidenceCheck {
  const { postgres, memory } = evidence.p95Ms;
  const calls = evidence.postgresCalls.total;
  if (calls < thresholds.minPostgresCalls) {
    const soFar = postgres === undefined ? '' : `; so far ${latencyFigures(postgres, memory, thresholds)}`;
    return {
      name: 'postgres-latency',
      ok: false,
      detail: `${postgresCallsNeeded(calls, thresholds)} to judge a p95${soFar}`,
    };
  }
  // Mirror writes count as calls but are not timed: only reads served or shadowed by PostgreSQL give a p95.
  if (postgres === undefined)
    return {
      name: 'postgres-latency',
      ok: false,
      detail:
        'no PostgreSQL read was timed in the window (mirror writes are not; reads served or shadowed by PostgreSQL are)',
    };
  return {
    name: 'postgres-latency',
    ok: postgres <= latencyBar(memory, thresholds),
    detail: latencyFigures(postgres, memory, thresholds),
  };
}

/** The p95 PostgreSQL may reach: latencyFactorMax times memory's, or the floor, whichever is higher. */
function latencyBar(memory: number | undefined, thresholds: EvidenceThresholds): number {
  return Math.max((memory ?? 0) * thresholds.latencyFactorMax, thresholds.postgresLatencyFloorMs);
}

function latencyFigures(postgres: number, memory: number | undefined, thresholds: EvidenceThresholds): string {
  return `PostgreSQL p95 ${postgres.toFixed(2)} ms (at most ${latencyBar(memory, thresholds).toFixed(2)} ms: ${thresholds.latencyFactorMax}x memory's ${(memory ?? 0).toFixed(3)} ms, or ${thresholds.postgresLatencyFloorMs} ms)`;
}

function postgresCallsNeeded(calls: number, thresholds: EvidenceThresholds): string {
  return `${calls} of ${thresholds.minPostgresCalls} PostgreSQL calls needed`;
}

function percent(rate: number): string {
  return `${(rate * 100).toFixed(rate < 0.01 ? 2 : 1)}%`;
}
