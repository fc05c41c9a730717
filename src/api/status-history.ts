import { persistentDifferences, type VerifyReport } from '../../verifier/verify.js';
import { METRIC } from '../dualwrite/metrics.js';
import type { Side } from '../ports/stage.js';
import { quantile, sampleMetrics, type Sample } from '../runtime/evidence-window.js';
import type { AdminRuntime } from './admin-runtime.js';

/** The side that answered a read; fallback: PostgreSQL failed and memory answered. */
export type ReadSource = Side | 'fallback';

/** What the history reads of the runtime. */
export type StatusHistoryRuntime = Pick<AdminRuntime, 'outbox' | 'mirror' | 'verifier' | 'metrics'>;

/** Options of StatusHistory. */
export interface StatusHistoryOptions {
  /** The runtime whose figures are sampled. Required. */
  readonly runtime: StatusHistoryRuntime;
  /** Pause between samples while started. Default 10 000 ms. */
  readonly intervalMs?: number;
  /** How long samples and verifications are kept. Default 3 600 000 ms (1 h). */
  readonly keepMs?: number;
  /** Now, in ms since the epoch; injected so tests move time. Default Date.now. */
  readonly now?: () => number;
  /** Told when a sample could not be taken (sampling goes on). Default: nothing is told. */
  readonly onError?: (error: unknown) => void;
}

/** One side's store calls between two samples. */
export interface SideFigures {
  /**
   * Share of the calls that failed; for PostgreSQL its mirror writes count as calls, as the
   * evidence gate counts them (in dual-write they are most of what it is asked). Null without calls.
   */
  readonly errorRate: number | null;
  /** Latency quantiles in ms, interpolated in the histogram's buckets as Prometheus does; null without calls. */
  readonly p50Ms: number | null;
  readonly p95Ms: number | null;
  readonly p99Ms: number | null;
}

/** The figures at one moment; rates are over the interval since the sample before. */
export interface StatusSample {
  /** When it was taken, in ms since the epoch. */
  readonly at: number;
  readonly outbox: { readonly depth: number; readonly oldestAgeSeconds: number };
  readonly mirrorQueueDepth: number;
  readonly sides: Readonly<Record<Side, SideFigures>>;
  readonly readsPerSecond: Readonly<Record<ReadSource, number>>;
}

/** One completed verification: the persistent differences it found, per `store/entity`. */
export interface VerificationPoint {
  /** When it started, in ms since the epoch. */
  readonly at: number;
  readonly differences: Readonly<Record<string, number>>;
}

/** What the history holds, oldest first. */
export interface StatusHistorySnapshot {
  readonly intervalMs: number;
  readonly samples: readonly StatusSample[];
  readonly verifications: readonly VerificationPoint[];
}

/** Cumulative counts at one moment, from which the next sample's rates are computed. */
interface Counts {
  readonly metrics: Sample;
  readonly reads: Record<ReadSource, number>;
}

const SIDES: readonly Side[] = ['memory', 'postgres'];

/**
 * The status page's recent past, kept in the API process: every intervalMs it samples the
 * outbox, the mirror queue and the runtime's own counters (computing latency quantiles and
 * error rates over the interval from the same sample the evidence gate uses), and it notes
 * each verification as it completes. It forgets what is older than keepMs.
 */
export class StatusHistory {
  private readonly samples: StatusSample[] = [];
  private readonly verifications: VerificationPoint[] = [];
  private readonly intervalMs: number;
  private readonly keepMs: number;
  private readonly now: () => number;
  private previous: Counts | undefined;
  private lastReport: VerifyReport | undefined;
  private sampling: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: StatusHistoryOptions) {
    this.intervalMs = options.intervalMs ?? 10_000;
    this.keepMs = options.keepMs ?? 60 * 60_000;
    this.now = options.now ?? Date.now;
  }

  /** Samples now (the baseline) and every intervalMs until stop(). */
  start(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * Takes a sample now; the first one is only the baseline the next one's rates are counted
   * from. While a sample is being taken, resolves when it is done instead.
   */
  sample(): Promise<void> {
    this.sampling ??= this.takeSample()
      .catch((error: unknown) => this.options.onError?.(error))
      .finally(() => (this.sampling = undefined));
    return this.sampling;
  }

  /** The samples and verifications kept, including a verification completed since the last sample. */
  snapshot(): StatusHistorySnapshot {
    this.noteVerification();
    this.forgetOld();
    return { intervalMs: this.intervalMs, samples: [...this.samples], verifications: [...this.verifications] };
  }

  private async takeSample(): Promise<void> {
    const { runtime } = this.options;
    const at = this.now();
    const counts: Counts = {
      metrics: await sampleMetrics(runtime.metrics.registry, at),
      reads: await readsBySource(runtime.metrics.registry),
    };
    const previous = this.previous;
    this.previous = counts;
    this.noteVerification();
    if (previous) {
      const seconds = Math.max((at - previous.metrics.at) / 1000, 0.001);
      const sides = Object.fromEntries(
        SIDES.map((side) => [side, sideFigures(side, counts.metrics, previous.metrics)]),
      ) as Record<Side, SideFigures>;
      const readsPerSecond = { memory: 0, postgres: 0, fallback: 0 };
      for (const source of Object.keys(readsPerSecond) as ReadSource[])
        readsPerSecond[source] = (counts.reads[source] - previous.reads[source]) / seconds;
      this.samples.push({
        at,
        outbox: runtime.outbox.stats(),
        mirrorQueueDepth: runtime.mirror.depth(),
        sides,
        readsPerSecond,
      });
    }
    this.forgetOld();
  }

  /** Adds the last verification's differences when it is one not seen yet. */
  private noteVerification(): void {
    const report = this.options.runtime.verifier.lastReport;
    if (!report || report === this.lastReport) return;
    this.lastReport = report;
    const differences = Object.fromEntries(
      report.entities.map((entity) => [`${entity.store}/${entity.entity}`, persistentDifferences(entity)]),
    );
    this.verifications.push({ at: Date.parse(report.startedAt), differences });
  }

  private forgetOld(): void {
    const oldest = this.now() - this.keepMs;
    while (this.samples[0] && this.samples[0].at < oldest) this.samples.shift();
    while (this.verifications[0] && this.verifications[0].at < oldest) this.verifications.shift();
  }
}

/** Differences of an entity that were still there on re-check. */
function sideFigures(side: Side, last: Sample, first: Sample): SideFigures {
  let total = last.calls[side].total - first.calls[side].total;
  let failed = last.calls[side].failed - first.calls[side].failed;
  if (side === 'postgres') {
    total += last.mirrorToPostgres.total - first.mirrorToPostgres.total;
    failed += last.mirrorToPostgres.failed - first.mirrorToPostgres.failed;
  }
  const ms = (q: number) => {
    const seconds = quantile(q, last.latency[side], first.latency[side]);
    return seconds === undefined ? null : seconds * 1000;
  };
  return { errorRate: total === 0 ? null : failed / total, p50Ms: ms(0.5), p95Ms: ms(0.95), p99Ms: ms(0.99) };
}

/** Reads so far by the side that answered, summed over stores. */
async function readsBySource(
  registry: StatusHistoryRuntime['metrics']['registry'],
): Promise<Record<ReadSource, number>> {
  const counts: Record<ReadSource, number> = { memory: 0, postgres: 0, fallback: 0 };
  for (const { labels, value } of (await registry.getSingleMetric(METRIC.reads)?.get())?.values ?? []) {
    const source = labels.source as ReadSource;
    if (source in counts) counts[source] += value;
  }
  return counts;
}
