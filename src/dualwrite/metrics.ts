import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LocalCounter, LocalHistogram } from './local-metrics.js';
import type { PoolStats, ServerHealth } from '../ports/database-health.js';
import type { EffectiveFlags, FlagRecorder } from '../ports/flags.js';
import { STAGES, type Side, type Stage } from '../ports/stage.js';

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
  stageTransitions: 'dualwrite_stage_transitions_total',
  stageTransitionPause: 'dualwrite_stage_transition_pause_seconds',
  outboxFenced: 'dualwrite_outbox_fenced_total',
  intentLogFailures: 'dualwrite_intent_log_failures_total',
  outboxLost: 'dualwrite_outbox_lost_total',
  sideUnverified: 'dualwrite_side_unverified',
  pgDatabaseSize: 'dualwrite_pg_database_size_bytes',
  pgServerConnections: 'dualwrite_pg_server_connections',
  pgReplicationLag: 'dualwrite_pg_replication_lag_seconds',
  pgDisk: 'dualwrite_pg_disk_bytes',
  pgUp: 'dualwrite_pg_up',
  retreats: 'dualwrite_retreats_total',
  mirrorWrites: 'dualwrite_mirror_writes_total',
} as const;

/**
 * What became of a mirror write: applied; failed (tried, and the target failed: an outage,
 * a timeout); rejected (tried, and the target refused its data: a constraint, a value it
 * cannot take; the target answered, so this says nothing of its health); unreachable
 * (journaled untried while the target's circuit was open); behind_journal (journaled behind
 * earlier journaled writes of its keys, the target not being at fault).
 */
export type MirrorWriteOutcome = 'applied' | 'failed' | 'rejected' | 'unreachable' | 'behind_journal';

/** Every MirrorWriteOutcome, for starting their series. */
export const MIRROR_WRITE_OUTCOMES: readonly MirrorWriteOutcome[] = [
  'applied',
  'failed',
  'rejected',
  'unreachable',
  'behind_journal',
];

export interface CallRecorder {
  record(seconds: number, ok: boolean): void;
}

export type ShadowOutcome = 'match' | 'mismatch' | 'error' | 'skipped_pending';

/** Live values the gauges read at scrape time. */
export interface MetricSources {
  mirrorDepth?: () => number;
  outbox?: () => { depth: number; oldestAgeSeconds: number };
  /** The side that may miss writes an outbox lost, until a verification proves the sides equal. */
  unverified?: () => Side | undefined;
  flags?: () => { stage: Stage; readPercent: number };
  pool?: () => PoolStats;
  /** What PostgreSQL says about itself; undefined when it does not answer. */
  server?: () => Promise<ServerHealth | undefined>;
}

/**
 * Every dualwrite metric family, registered on an injected prom-client registry.
 * Gauges are computed at scrape time from `sources`, so the hot path only counts.
 */
export class DualWriteMetrics implements FlagRecorder {
  readonly operations: LocalCounter<{ store: string; operation: string; side: Side; outcome: 'ok' | 'error' }>;
  readonly duration: LocalHistogram<{ store: string; operation: string; side: Side }>;
  readonly reads: LocalCounter<{ store: string; source: Side | 'fallback' }>;
  readonly mirrorWrites: LocalCounter<{ store: string; target: Side; outcome: MirrorWriteOutcome }>;
  readonly mirrorFailures: Counter<'store' | 'operation' | 'target'>;
  readonly mirrorLost: Counter<'store' | 'target'>;
  readonly outboxReplayed: Counter<'store' | 'outcome'>;
  readonly outboxDeadLettered: Counter<'store'>;
  readonly shadowCompares: Counter<'store' | 'operation' | 'outcome'>;
  readonly flagRefusals: Counter<'reason'>;
  readonly flagSourceErrors: Counter<'source'>;
  readonly stageTransitions: Counter<'outcome'>;
  readonly stageTransitionPause: Histogram;
  readonly outboxFenced: Counter<'store'>;
  readonly intentLogFailures: Counter;
  readonly outboxLost: Counter;
  readonly retreats: Counter;
  private readonly sources: MetricSources = {};

  constructor(readonly registry: Registry) {
    const registers = [registry];
    const sources = this.sources;
    this.operations = new LocalCounter(METRIC.operations, 'Store calls by side and outcome (ok or error).', registry);
    this.duration = new LocalHistogram(
      METRIC.duration,
      'Store call latency by side.',
      [0.00001, 0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registry,
    );
    this.reads = new LocalCounter(
      METRIC.reads,
      'Reads by the side that answered (fallback: PostgreSQL failed, memory answered).',
      registry,
    );
    this.mirrorWrites = new LocalCounter(
      METRIC.mirrorWrites,
      'Mirror writes by outcome: applied, failed (target failed), rejected (target refused the data), unreachable (circuit open, journaled untried), behind_journal.',
      registry,
    );
    this.mirrorFailures = new Counter({
      name: METRIC.mirrorFailures,
      help: 'Mirror writes that failed and went to the outbox.',
      labelNames: ['store', 'operation', 'target'],
      registers,
    });
    this.mirrorLost = new Counter({
      name: METRIC.mirrorLost,
      help: 'Mirror writes that failed and could not be journaled either (the verifier must repair).',
      labelNames: ['store', 'target'],
      registers,
    });
    this.outboxReplayed = new Counter({
      name: METRIC.outboxReplayed,
      help: 'Outbox entries replayed, by outcome.',
      labelNames: ['store', 'outcome'],
      registers,
    });
    this.outboxDeadLettered = new Counter({
      name: METRIC.outboxDeadLettered,
      help: 'Outbox entries given up after repeated rejections.',
      labelNames: ['store'],
      registers,
    });
    this.shadowCompares = new Counter({
      name: METRIC.shadowCompares,
      help: 'Shadow read comparisons by outcome.',
      labelNames: ['store', 'operation', 'outcome'],
      registers,
    });
    this.flagRefusals = new Counter({
      name: METRIC.flagRefusals,
      help: 'Unsafe flag combinations refused (the safe behaviour was used).',
      labelNames: ['reason'],
      registers,
    });
    this.flagSourceErrors = new Counter({
      name: METRIC.flagSourceErrors,
      help: 'Flag source errors (last known flags kept).',
      labelNames: ['source'],
      registers,
    });
    this.stageTransitions = new Counter({
      name: METRIC.stageTransitions,
      help: 'Stage transitions that changed how writes go, by outcome (applied, or refused and retried).',
      labelNames: ['outcome'],
      registers,
    });
    this.stageTransitionPause = new Histogram({
      name: METRIC.stageTransitionPause,
      help: 'How long new writes waited while a stage transition let the old ones land.',
      buckets: [0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.outboxFenced = new Counter({
      name: METRIC.outboxFenced,
      help: 'Outbox entries refused because their target had become authoritative (set aside, never applied).',
      labelNames: ['store'],
      registers,
    });
    this.outboxLost = new Counter({
      name: METRIC.outboxLost,
      help: 'Times the outbox was found to have lost entries (a Redis restart without persistence, a failover).',
      registers,
    });
    this.retreats = new Counter({
      name: METRIC.retreats,
      help: 'Automatic retreats: reads sent back to memory because PostgreSQL failed or slowed past its threshold.',
      registers,
    });
    this.intentLogFailures = new Counter({
      name: METRIC.intentLogFailures,
      help: 'Async mirror writes acknowledged without reaching the intent log (a crash before they land would lose them).',
      registers,
    });
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
      name: METRIC.sideUnverified,
      help: 'Per side, 1 while it may miss acknowledged writes an outbox lost (until a verification after the loss proves the sides equal).',
      labelNames: ['side'],
      registers,
      collect() {
        const side = sources.unverified?.();
        for (const each of ['memory', 'postgres'] as const) this.set({ side: each }, each === side ? 1 : 0);
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
        this.set({ state: 'max' }, stats.max);
      },
    });
    this.serverGauges(registers);
  }

  /** The PostgreSQL server's own figures, read once per scrape (alerts on disk, connections, replication). */
  private serverGauges(registers: Registry[]): void {
    const sources = this.sources;
    let reading: Promise<ServerHealth | undefined> | undefined;
    // One read per scrape, shared by the gauges below (each collect() runs in the same scrape).
    const health = () => {
      reading ??= (sources.server?.() ?? Promise.resolve(undefined)).finally(() =>
        setImmediate(() => (reading = undefined)),
      );
      return reading;
    };
    new Gauge({
      name: METRIC.pgUp,
      help: 'Whether PostgreSQL answered the health query of this scrape (1) or not (0).',
      registers,
      async collect() {
        this.set((await health()) ? 1 : 0);
      },
    });
    new Gauge({
      name: METRIC.pgDatabaseSize,
      help: 'Size of the database (pg_database_size).',
      registers,
      async collect() {
        const found = await health();
        if (found) this.set(found.databaseBytes);
      },
    });
    new Gauge({
      name: METRIC.pgServerConnections,
      help: 'Backends connected to the PostgreSQL server (used) and max_connections (max).',
      labelNames: ['state'],
      registers,
      async collect() {
        const found = await health();
        if (!found) return;
        this.set({ state: 'used' }, found.connections.used);
        this.set({ state: 'max' }, found.connections.max);
      },
    });
    new Gauge({
      name: METRIC.pgReplicationLag,
      help: 'Replay lag of each streaming replica (pg_stat_replication).',
      labelNames: ['replica'],
      registers,
      async collect() {
        const found = await health();
        this.reset();
        for (const replica of found?.replicas ?? []) this.set({ replica: replica.name }, replica.lagSeconds);
      },
    });
    new Gauge({
      name: METRIC.pgDisk,
      help: "The data directory's file system (total and free), when the server runs on this machine.",
      labelNames: ['state'],
      registers,
      async collect() {
        const disk = (await health())?.disk;
        if (!disk) return;
        this.set({ state: 'total' }, disk.totalBytes);
        this.set({ state: 'free' }, disk.freeBytes);
      },
    });
  }

  /**
   * Starts the labelled series of what should never happen at 0 for every store, so that
   * Prometheus' increase() and rate() see the first occurrence (a series first exported
   * at 1 shows no increase).
   */
  startSeries(stores: readonly string[]): void {
    for (const store of stores) {
      this.outboxDeadLettered.inc({ store }, 0);
      this.outboxFenced.inc({ store }, 0);
      for (const target of ['memory', 'postgres'] as const) {
        this.mirrorLost.inc({ store, target }, 0);
        for (const outcome of MIRROR_WRITE_OUTCOMES) this.mirrorWrites.labels({ store, target, outcome });
      }
    }
  }

  /** Connects a live value to its gauge. */
  source<K extends keyof MetricSources>(name: K, read: NonNullable<MetricSources[K]>): void {
    this.sources[name] = read;
  }

  /** The stage and read percentage gauges read the flags in force from `read`. */
  flagsInForce(read: () => EffectiveFlags): void {
    this.source('flags', read);
  }

  flagsRefused(reason: string): void {
    this.flagRefusals.inc({ reason });
  }

  flagSourceFailed(source: string): void {
    this.flagSourceErrors.inc({ source });
  }

  /** Recorder of one (store, operation, side)'s calls; take it once and keep it. */
  call(store: string, operation: string, side: Side): CallRecorder {
    const ok = this.operations.labels({ store, operation, side, outcome: 'ok' });
    const error = this.operations.labels({ store, operation, side, outcome: 'error' });
    const duration = this.duration.labels({ store, operation, side });
    return {
      record(seconds, succeeded) {
        (succeeded ? ok : error).value++;
        duration.observe(seconds);
      },
    };
  }

  /** Counter of reads of `store` answered by `source`; take it once and keep it. */
  readsFrom(store: string, source: Side | 'fallback'): { value: number } {
    return this.reads.labels({ store, source });
  }
}
