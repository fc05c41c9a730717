import { isDeepStrictEqual } from 'node:util';
import { diffString } from 'json-diff';
import type { DualWriteMetrics, ShadowOutcome } from './metrics.js';
import type { Side } from '../ports/stage.js';

/** Options of shadow reads. */
export interface ShadowOptions {
  /** Fraction of reads (0-1) also run on the other side and compared. Default 0. */
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
  private readonly sampleRate: number;
  private readonly random: () => number;
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly options: ShadowOptions = {},
    private readonly metrics?: DualWriteMetrics,
  ) {
    this.sampleRate = options.sampleRate ?? 0;
    if (!(this.sampleRate >= 0 && this.sampleRate <= 1)) throw new TypeError(`shadow sampleRate must be between 0 and 1, got ${JSON.stringify(options.sampleRate)}`);
    this.random = options.random ?? Math.random;
  }

  sampled(): boolean {
    return this.sampleRate > 0 && this.random() < this.sampleRate;
  }

  /** Starts a comparison in the background; `shadowRead` runs the read on the other side. */
  schedule(store: string, operation: string, key: string, served: Side, servedResult: unknown, shadowRead: () => Promise<unknown>, pending: () => boolean): void {
    const run = (async () => {
      let outcome: ShadowOutcome;
      try {
        const shadowResult = await shadowRead();
        // A key with a mirror write in flight may legitimately differ for a moment.
        if (pending()) outcome = 'skipped_pending';
        else if ((this.options.compare ?? isDeepStrictEqual)(servedResult, shadowResult)) outcome = 'match';
        else {
          outcome = 'mismatch';
          this.remember({ store, operation, key, served, at: new Date().toISOString(), diff: diffString(servedResult, shadowResult, { color: false }) ?? '' });
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
