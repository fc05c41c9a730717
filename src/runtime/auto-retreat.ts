import type { EffectiveFlags } from '../ports/flags.js';
import { STAGE_POLICIES } from '../ports/stage.js';
import type { Evidence } from './evidence-gate.js';

/** When PostgreSQL is failing badly enough to retreat. */
export interface RetreatThresholds {
  /** Share of PostgreSQL calls and mirror writes that failed over the window. Default 0.05 (5%). */
  readonly errorRateMax: number;
  /** PostgreSQL's p95 latency over the window, in ms. Default 1000. */
  readonly p95MsMax: number;
  /** Fewer PostgreSQL calls than this in the window say nothing either way. Default 20. */
  readonly minCalls: number;
}

export const DEFAULT_RETREAT_THRESHOLDS: RetreatThresholds = { errorRateMax: 0.05, p95MsMax: 1000, minCalls: 20 };

/** Options of AutoRetreat. */
export interface AutoRetreatOptions {
  /**
   * The figures over the retreat window (an EvidenceWindow's, typically over the last minute);
   * the failures that were mirror writes PostgreSQL rejected for their data
   * (`postgresCalls.rejected`) say nothing of its health. Required.
   */
  readonly evidence: () => Promise<Pick<Evidence, 'postgresCalls' | 'p95Ms'>>;
  /** The stage in force. Required. */
  readonly current: () => EffectiveFlags;
  /** Moves reads back to memory and stops the mirror waiting on PostgreSQL; `reason` carries the figures. Required. */
  readonly retreat: (reason: string) => Promise<void>;
  readonly thresholds?: Partial<RetreatThresholds>;
  /** How often the figures are judged. Default 5000 ms. */
  readonly checkMs?: number;
  readonly logger?: Pick<Console, 'warn'>;
}

/**
 * Opt-in automatic retreat: while memory is authoritative, a PostgreSQL whose error rate or
 * p95 latency crosses its threshold sends reads back to memory before callers feel it (the
 * caller gets memory's answer either way, but a slow PostgreSQL read still costs its time).
 * It only ever steps back; going forward again is an operator's move, through the
 * evidence gate.
 */
export class AutoRetreat {
  private timer: NodeJS.Timeout | undefined;
  private readonly thresholds: RetreatThresholds;
  private checking: Promise<string | undefined> | undefined;

  constructor(private readonly options: AutoRetreatOptions) {
    this.thresholds = { ...DEFAULT_RETREAT_THRESHOLDS, ...options.thresholds };
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), this.options.checkMs ?? 5000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Judges the figures now and retreats when they call for it; resolves to the reason, or undefined. */
  check(): Promise<string | undefined> {
    this.checking ??= this.judge().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async judge(): Promise<string | undefined> {
    const flags = this.options.current();
    // Only reads that PostgreSQL answers while memory is authoritative can be moved back.
    if (STAGE_POLICIES[flags.stage].authoritative !== 'memory' || flags.readPercent === 0) return undefined;
    const { postgresCalls, p95Ms } = await this.options.evidence();
    if (postgresCalls.total < this.thresholds.minCalls) return undefined;
    // Data PostgreSQL refused is no reason to retreat (retreating opens the mirror's circuit, as if it were down): only its failures count.
    const failed = postgresCalls.failed - (postgresCalls.rejected ?? 0);
    const errorRate = failed / postgresCalls.total;
    const reasons = [
      ...(errorRate > this.thresholds.errorRateMax
        ? [`${failed} of ${postgresCalls.total} PostgreSQL calls failed (over ${this.thresholds.errorRateMax * 100}%)`]
        : []),
      ...((p95Ms.postgres ?? 0) > this.thresholds.p95MsMax
        ? [`PostgreSQL p95 ${p95Ms.postgres!.toFixed(0)} ms (over ${this.thresholds.p95MsMax} ms)`]
        : []),
    ];
    if (reasons.length === 0) return undefined;
    const reason = `automatic retreat from ${flags.stage} ${flags.readPercent}%: ${reasons.join('; ')}`;
    try {
      await this.options.retreat(reason);
    } catch (error) {
      this.options.logger?.warn(
        `dualwrite: ${reason}, but the retreat failed: ${error instanceof Error ? error.message : String(error)}`,
      );
      return undefined;
    }
    return reason;
  }
}
