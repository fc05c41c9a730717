import type { Registry } from 'prom-client';
import { METRIC } from '../dualwrite/metrics.js';
import type { Side } from '../ports/stage.js';
import type { Evidence } from './evidence-gate.js';

/** Options of EvidenceWindow. */
export interface EvidenceWindowOptions {
  /** The runtime's metrics registry. Required. */
  readonly registry: Registry;
  /** How far back the figures reach. Default 5 minutes. */
  readonly windowMs?: number;
  /** How often counters are sampled while started. Default 15 s. */
  readonly sampleMs?: number;
  /** Now, in ms; injected so tests move time. Default Date.now. */
  readonly now?: () => number;
}

/** The counters the gate needs, summed over stores and operations, at one moment. */
export interface Sample {
  readonly at: number;
  readonly calls: Record<Side, { total: number; failed: number }>;
  /** Mirror writes to PostgreSQL that were tried or refused by its open circuit, those that did not land, and of those the ones it rejected for their data. */
  readonly mirrorToPostgres: { total: number; failed: number; rejected: number };
  readonly shadow: { compared: number; mismatched: number };
  /** Cumulative count per bucket upper bound, per side. */
  readonly latency: Record<Side, Map<number, number>>;
}

type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];

/**
 * Windowed figures for the evidence gate, read from the runtime's own metrics: counters are
 * sampled every sampleMs, and a figure is the difference between now and the oldest sample
 * inside the window, as Prometheus' increase() would compute it.
 */
export class EvidenceWindow {
  private readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(private readonly options: EvidenceWindowOptions) {
    this.windowMs = options.windowMs ?? 5 * 60_000;
    this.now = options.now ?? Date.now;
  }

  start(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.options.sampleMs ?? 15_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Takes a sample now and forgets those older than the window (keeping one at or before its start). */
  async sample(): Promise<void> {
    this.samples.push(await sampleMetrics(this.options.registry, this.now()));
    const start = this.now() - this.windowMs;
    while (this.samples.length > 2 && this.samples[1]!.at <= start) this.samples.shift();
  }

  /** The figures over the window, up to a sample taken now; the outbox, verification and whether shadow reads are off come from their owners. */
  async evidence(
    current: Pick<Evidence, 'outbox' | 'lastVerification' | 'shadowReadsOff' | 'unverified'>,
  ): Promise<Evidence> {
    await this.sample();
    const start = this.now() - this.windowMs;
    const first = this.samples.find((sample) => sample.at >= start) ?? this.samples[0]!;
    const last = this.samples.at(-1)!;
    const postgresTotal =
      last.calls.postgres.total -
      first.calls.postgres.total +
      last.mirrorToPostgres.total -
      first.mirrorToPostgres.total;
    const postgresFailed =
      last.calls.postgres.failed -
      first.calls.postgres.failed +
      last.mirrorToPostgres.failed -
      first.mirrorToPostgres.failed;
    const p95Ms: Partial<Record<Side, number>> = {};
    for (const side of ['memory', 'postgres'] as const) {
      const p95 = quantile(0.95, last.latency[side], first.latency[side]);
      if (p95 !== undefined) p95Ms[side] = p95 * 1000;
    }
    return {
      ...current,
      shadow: {
        compared: last.shadow.compared - first.shadow.compared,
        mismatched: last.shadow.mismatched - first.shadow.mismatched,
      },
      postgresCalls: {
        total: postgresTotal,
        failed: postgresFailed,
        rejected: last.mirrorToPostgres.rejected - first.mirrorToPostgres.rejected,
      },
      p95Ms,
    };
  }
}

/**
 * The gate's counters in `registry` now, as EvidenceWindow samples them; exported so other
 * figures (the status page's history) are computed from the same sample.
 */
export async function sampleMetrics(registry: Pick<Registry, 'getSingleMetric'>, at: number): Promise<Sample> {
  // Only the metrics the gate reads: collecting every metric would also query PostgreSQL for its health gauges.
  const wanted = [METRIC.operations, METRIC.mirrorWrites, METRIC.shadowCompares, METRIC.duration];
  const metrics = await Promise.all(wanted.map((name) => registry.getSingleMetric(name)?.get()));
  return read(metrics.filter((metric) => metric !== undefined) as MetricJson[], at);
}

function read(metrics: readonly MetricJson[], at: number): Sample {
  const byName = new Map(metrics.map((metric) => [metric.name, metric.values]));
  const sample: Sample = {
    at,
    calls: { memory: { total: 0, failed: 0 }, postgres: { total: 0, failed: 0 } },
    mirrorToPostgres: { total: 0, failed: 0, rejected: 0 },
    shadow: { compared: 0, mismatched: 0 },
    latency: { memory: new Map(), postgres: new Map() },
  };
  for (const { labels, value } of byName.get(METRIC.operations) ?? []) {
    const calls = sample.calls[labels.side as Side];
    if (!calls) continue;
    calls.total += value;
    if (labels.outcome === 'error') calls.failed += value;
  }
  for (const { labels, value } of byName.get(METRIC.mirrorWrites) ?? []) {
    // Writes journaled behind earlier ones never reached PostgreSQL: they say nothing of it.
    if (labels.target !== 'postgres' || labels.outcome === 'behind_journal') continue;
    sample.mirrorToPostgres.total += value;
    if (labels.outcome !== 'applied') sample.mirrorToPostgres.failed += value;
    if (labels.outcome === 'rejected') sample.mirrorToPostgres.rejected += value;
  }
  for (const { labels, value } of byName.get(METRIC.shadowCompares) ?? []) {
    if (labels.outcome === 'match' || labels.outcome === 'mismatch') sample.shadow.compared += value;
    if (labels.outcome === 'mismatch') sample.shadow.mismatched += value;
  }
  for (const entry of byName.get(METRIC.duration) ?? []) {
    const { labels, value } = entry as { labels: Record<string, string | number>; value: number; metricName?: string };
    if ((entry as { metricName?: string }).metricName !== `${METRIC.duration}_bucket`) continue;
    const buckets = sample.latency[labels.side as Side];
    if (!buckets) continue;
    const bound = labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + value);
  }
  return sample;
}

/** The q-quantile of the observations between two cumulative histograms, interpolated inside its bucket as Prometheus does. */
export function quantile(q: number, last: Map<number, number>, first: Map<number, number>): number | undefined {
  const bounds = [...last.keys()].sort((a, b) => a - b);
  const counts = bounds.map((bound) => (last.get(bound) ?? 0) - (first.get(bound) ?? 0));
  const total = counts.at(-1) ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  const index = counts.findIndex((count) => count >= rank);
  const upper = bounds[index]!;
  const lower = index === 0 ? 0 : bounds[index - 1]!;
  // Above the largest finite bucket there is nothing to interpolate toward: report that bound.
  if (upper === Number.POSITIVE_INFINITY) return lower;
  const below = index === 0 ? 0 : counts[index - 1]!;
  return lower + ((upper - lower) * (rank - below)) / (counts[index]! - below || 1);
}
