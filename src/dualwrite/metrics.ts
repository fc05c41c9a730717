import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { PoolStats } from '../postgres/sql-executor.js';
import { STAGES, type Side, type Stage } from './stages.js';

/** Metric names, so dashboards, alerts and tests refer to one spelling. */
export const METRIC = {
  operations: 'dualwrite_operations_total',
  duration: 'dualwrite_operation_duration_seconds',
  reads: 'dualwrite_reads_total',
  mirrorFailures: 'dualwrite_mirror_failures_total',
  mirrorLost: 'dualwrite_mirror_lost_total',
  mirrorQueueDepth: 'dualwrite_mirror_queue_depth',
  outboxDepth: 'dualwrite_outbox_depth',
  outboxOldestAge: 'dualwrite_outbox_oldest_age_seconds',
  outboxReplayed: 'dualwrite_outbox_replayed_total',
  outboxDeadLettered: 'dualwrite_outbox_dead_lettered_total',
  shadowCompares: 'dualwrite_shadow_compares_total',
  stage: 'dualwrite_stage',
  readPercent: 'dualwrite_read_postgres_percent',
  flagRefusals: 'dualwrite_flag_refusals_total',
  flagSourceErrors: 'dualwrite_flag_source_errors_total',
  pool: 'dualwrite_pg_pool_connections',
} as const;

export interface CallRecorder {
  record(seconds: number, ok: boolean): void;
}

export type ShadowOutcome = 'match' | 'mismatch' | 'error' | 'skipped_pending';

/** Live values the gauges read at scrape time. */
export interface MetricSources {
  mirrorDepth?: () => number;
  outbox?: () => { depth: number; oldestAgeSeconds: number };
  flags?: () => { stage: Stage; readPercent: number };
  pool?: () => PoolStats;
}

/**
 * Every dualwrite metric family, registered on an injected prom-client registry.
 * Gauges are computed at scrape time from `sources`, so the hot path only counts.
 */
export class DualWriteMetrics {
  readonly operations: Counter<'store' | 'operation' | 'side' | 'outcome'>;
  readonly duration: Histogram<'store' | 'operation' | 'side'>;
  readonly reads: Counter<'store' | 'source'>;
  readonly mirrorFailures: Counter<'store' | 'operation' | 'target'>;
  readonly mirrorLost: Counter<'store' | 'target'>;
  readonly outboxReplayed: Counter<'store' | 'outcome'>;
  readonly outboxDeadLettered: Counter<'store'>;
  readonly shadowCompares: Counter<'store' | 'operation' | 'outcome'>;
  readonly flagRefusals: Counter<'reason'>;
  readonly flagSourceErrors: Counter<'source'>;
  private readonly sources: MetricSources = {};
  private readonly recorders = new Map<string, CallRecorder>();
  private readonly readChildren = new Map<string, { inc(): void }>();

  constructor(readonly registry: Registry) {
    const registers = [registry];
    const sources = this.sources;
    this.operations = new Counter({ name: METRIC.operations, help: 'Store calls by side and outcome (ok or error).', labelNames: ['store', 'operation', 'side', 'outcome'], registers });
    this.duration = new Histogram({
      name: METRIC.duration,
      help: 'Store call latency by side.',
      labelNames: ['store', 'operation', 'side'],
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.reads = new Counter({ name: METRIC.reads, help: 'Reads by the side that answered (fallback: PostgreSQL failed, memory answered).', labelNames: ['store', 'source'], registers });
    this.mirrorFailures = new Counter({ name: METRIC.mirrorFailures, help: 'Mirror writes that failed and went to the outbox.', labelNames: ['store', 'operation', 'target'], registers });
    this.mirrorLost = new Counter({ name: METRIC.mirrorLost, help: 'Mirror writes that failed and could not be journaled either (the verifier must repair).', labelNames: ['store', 'target'], registers });
    this.outboxReplayed = new Counter({ name: METRIC.outboxReplayed, help: 'Outbox entries replayed, by outcome.', labelNames: ['store', 'outcome'], registers });
    this.outboxDeadLettered = new Counter({ name: METRIC.outboxDeadLettered, help: 'Outbox entries given up after repeated rejections.', labelNames: ['store'], registers });
    this.shadowCompares = new Counter({ name: METRIC.shadowCompares, help: 'Shadow read comparisons by outcome.', labelNames: ['store', 'operation', 'outcome'], registers });
    this.flagRefusals = new Counter({ name: METRIC.flagRefusals, help: 'Unsafe flag combinations refused (the safe behaviour was used).', labelNames: ['reason'], registers });
    this.flagSourceErrors = new Counter({ name: METRIC.flagSourceErrors, help: 'Flag source errors (last known flags kept).', labelNames: ['source'], registers });
    new Gauge({
      name: METRIC.mirrorQueueDepth,
      help: 'Mirror writes accepted and not yet applied or journaled.',
      registers,
      collect() {
        this.set(sources.mirrorDepth?.() ?? 0);
      },
    });
    new Gauge({
      name: METRIC.outboxDepth,
      help: 'Failed mirror writes waiting for replay.',
      registers,
      collect() {
        this.set(sources.outbox?.().depth ?? 0);
      },
    });
    new Gauge({
      name: METRIC.outboxOldestAge,
      help: 'Age of the oldest outbox entry (0 when empty).',
      registers,
      collect() {
        this.set(sources.outbox?.().oldestAgeSeconds ?? 0);
      },
    });
    new Gauge({
      name: METRIC.stage,
      help: 'The running migration stage (1 for the current one).',
      labelNames: ['stage'],
      registers,
      collect() {
        const current = sources.flags?.().stage;
        for (const stage of STAGES) this.set({ stage }, stage === current ? 1 : 0);
      },
    });
    new Gauge({
      name: METRIC.readPercent,
      help: 'Percentage of keyed reads routed to PostgreSQL.',
      registers,
      collect() {
        this.set(sources.flags?.().readPercent ?? 0);
      },
    });
    new Gauge({
      name: METRIC.pool,
      help: 'PostgreSQL pool connections by state.',
      labelNames: ['state'],
      registers,
      collect() {
        const stats = sources.pool?.();
        if (!stats) return;
        this.set({ state: 'total' }, stats.total);
        this.set({ state: 'idle' }, stats.idle);
        this.set({ state: 'waiting' }, stats.waiting);
      },
    });
  }

  /** Connects a live value to its gauge. */
  source<K extends keyof MetricSources>(name: K, read: NonNullable<MetricSources[K]>): void {
    this.sources[name] = read;
  }

  /**
   * Recorder of one (store, operation, side)'s calls, with its label children bound once:
   * looking labels up per call would cost more than a memory read itself.
   */
  call(store: string, operation: string, side: Side): CallRecorder {
    const key = `${store}\u0000${operation}\u0000${side}`;
    let recorder = this.recorders.get(key);
    if (!recorder) {
      const ok = this.operations.labels(store, operation, side, 'ok');
      const error = this.operations.labels(store, operation, side, 'error');
      const duration = this.duration.labels(store, operation, side);
      recorder = {
        record(seconds, succeeded) {
          (succeeded ? ok : error).inc();
          duration.observe(seconds);
        },
      };
      this.recorders.set(key, recorder);
    }
    return recorder;
  }

  /** Counts a read answered by `source` (memory, postgres, or fallback). */
  read(store: string, source: Side | 'fallback'): void {
    const key = `${store}\u0000${source}`;
    let child = this.readChildren.get(key);
    if (!child) this.readChildren.set(key, (child = this.reads.labels(store, source)));
    child.inc();
  }
}
