import type { Registry } from 'prom-client';

/**
 * Counters and histograms for the hot path: each series is a plain object updated with
 * a few arithmetic operations, and prom-client reads them only when scraped (it re-hashes
 * labels on every inc/observe, which costs more than an in-memory read). They register on
 * a prom-client Registry like any metric and render in its text and JSON formats.
 */
interface Series<Labels> {
  readonly labels: Labels;
}

abstract class LocalMetric<Labels extends Record<string, string>, S extends Series<Labels>> {
  readonly aggregator = 'sum';
  protected readonly series = new Map<string, S>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    registry: Registry,
  ) {
    registry.registerMetric(this as never);
  }

  /** The series for `labels`, created on first use; keep it and update it directly. */
  protected seriesFor(labels: Labels, create: () => S): S {
    const key = Object.values(labels).join('\u0000');
    let series = this.series.get(key);
    if (!series) this.series.set(key, (series = create()));
    return series;
  }

  reset(): void {
    this.series.clear();
  }

  abstract get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: { labels: Record<string, string | number>; value: number; metricName?: string }[];
  }>;
}

export interface CounterSeries<Labels> extends Series<Labels> {
  value: number;
}

export class LocalCounter<Labels extends Record<string, string>> extends LocalMetric<Labels, CounterSeries<Labels>> {
  constructor(name: string, help: string, registry: Registry) {
    super(name, help, 'counter', registry);
  }

  /** The series for `labels`: increment it with `series.value++`. */
  labels(labels: Labels): CounterSeries<Labels> {
    return this.seriesFor(labels, () => ({ labels, value: 0 }));
  }

  async get() {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: [...this.series.values()].map((s) => ({ labels: s.labels, value: s.value })),
    };
  }
}

export interface HistogramSeries<Labels> extends Series<Labels> {
  observe(value: number): void;
}

export class LocalHistogram<Labels extends Record<string, string>> extends LocalMetric<
  Labels,
  HistogramSeries<Labels> & { counts: number[]; sum: number; count: number }
> {
  constructor(
    name: string,
    help: string,
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    super(name, help, 'histogram', registry);
  }

  labels(labels: Labels): HistogramSeries<Labels> {
    const buckets = this.buckets;
    return this.seriesFor(labels, () => ({
      labels,
      counts: new Array<number>(buckets.length + 1).fill(0),
      sum: 0,
      count: 0,
      observe(value: number) {
        let bucket = 0;
        while (bucket < buckets.length && value > buckets[bucket]!) bucket++;
        this.counts[bucket]!++;
        this.sum += value;
        this.count++;
      },
    }));
  }

  async get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const series of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((bound, index) => {
        cumulative += series.counts[index]!;
        values.push({ labels: { ...series.labels, le: bound }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...series.labels, le: '+Inf' }, value: series.count, metricName: `${this.name}_bucket` });
      values.push({ labels: series.labels, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: series.labels, value: series.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
