import { isDeepStrictEqual } from 'node:util';
import { diffString } from 'json-diff';
import type { DualWriteMetrics, ShadowOutcome } from './metrics.js';
import { STAGE_POLICIES, type Side, type Stage } from '../ports/stage.js';

/**
 * The share of reads shadowed where no rate is configured, in the stages whose advance the
 * evidence gate judges on shadow comparisons. 5%: the gate wants 100 comparisons in its
 * 5-minute window, which 2,000 reads make (7 a second), while the extra PostgreSQL reads
 * stay a twentieth of the reads served, run after the caller has its answer.
 */
export const DEFAULT_SHADOW_SAMPLE_RATE = 0.05;

/**
 * The rate in `stage` when none is configured: DEFAULT_SHADOW_SAMPLE_RATE while memory is
 * authoritative and PostgreSQL mirrored (dual-write, read-shift), where advancing needs shadow
 * comparisons; 0 elsewhere, where nothing needs them.
 */
export function defaultShadowSampleRate(stage: Stage): number {
  const policy = STAGE_POLICIES[stage];
  return policy.authoritative === 'memory' && policy.mirror === 'postgres' ? DEFAULT_SHADOW_SAMPLE_RATE : 0;
}

/** Options of shadow reads. */
export interface ShadowOptions {
  /**
   * Fraction of reads (0-1) also run on the other side and compared, in every stage that
   * writes both sides; 0 turns shadow reads off. Default: defaultShadowSampleRate of the
   * stage in force (5% in dual-write and read-shift, else 0).
   */
  readonly sampleRate?: number;
  /** Decides whether two results are equal. Default: deep equality. */
  readonly compare?: (served: unknown, shadow: unknown) => boolean;
  /** Mismatches kept for inspection (newest last). Default 20. */
  readonly keepMismatches?: number;
  /** Source of randomness for sampling. Default Math.random. */
  readonly random?: () => number;
}

/** One observed difference between the two sides (frozen, like Scientist's results). */
export interface ShadowMismatch {
  readonly store: string;
  readonly operation: string;
  readonly key: string;
  readonly served: Side;
  readonly at: string;
  /** json-diff's description of what differs, served side first. */
  readonly diff: string;
}

/**
 * Runs sampled reads on the side that did not serve them, after the caller has its
 * answer, and records whether the two agree. It never delays or fails the caller.
 */
export class ShadowReads {
  readonly mismatches: ShadowMismatch[] = [];
  /** The configured rate; undefined for each stage's default. */
  private readonly sampleRate: number | undefined;
  private readonly random: () => number;
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly options: ShadowOptions = {},
    private readonly metrics?: DualWriteMetrics,
  ) {
    this.sampleRate = options.sampleRate;
    if (this.sampleRate !== undefined && !(this.sampleRate >= 0 && this.sampleRate <= 1))
      throw new TypeError(`shadow sampleRate must be between 0 and 1, got ${JSON.stringify(options.sampleRate)}`);
    this.random = options.random ?? Math.random;
  }

  /** Whether shadow reads were turned off (a configured rate of 0): no stage compares anything then. */
  get off(): boolean {
    return this.sampleRate === 0;
  }

  /** The share of reads compared in `stage`: the configured rate, else the stage's default. */
  rateIn(stage: Stage): number {
    return this.sampleRate ?? defaultShadowSampleRate(stage);
  }

  /** Whether to compare a read made in `stage`. */
  sampled(stage: Stage): boolean {
    const rate = this.rateIn(stage);
    return rate > 0 && this.random() < rate;
  }

  /** Starts a comparison in the background; `shadowRead` runs the read on the other side. */
  schedule(
    store: string,
    operation: string,
    key: string,
    served: Side,
    servedResult: unknown,
    shadowRead: () => Promise<unknown>,
    pending: () => boolean,
  ): void {
    const run = (async () => {
      let outcome: ShadowOutcome;
      try {
        const shadowResult = await shadowRead();
        // A key with a mirror write in flight may legitimately differ for a moment.
        if (pending()) outcome = 'skipped_pending';
        else if ((this.options.compare ?? isDeepStrictEqual)(servedResult, shadowResult)) outcome = 'match';
        else {
          outcome = 'mismatch';
          this.remember({
            store,
            operation,
            key,
            served,
            at: new Date().toISOString(),
            diff: diffString(servedResult, shadowResult, { color: false }) ?? '',
          });
        }
      } catch {
        outcome = 'error';
      }
      this.metrics?.shadowCompares.inc({ store, operation, outcome });
    })();
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
  }

  /** Resolves when every started comparison has finished (tests, shutdown). */
  async settle(): Promise<void> {
    await Promise.all(this.running);
  }

  private remember(mismatch: ShadowMismatch): void {
    this.mismatches.push(Object.freeze(mismatch));
    if (this.mismatches.length > (this.options.keepMismatches ?? 20)) this.mismatches.shift();
  }
}
