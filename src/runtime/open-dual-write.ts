import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { FlagState, type EffectiveFlags, type FlagStateOptions } from '../../flags/flag-state.js';
import { saveLastKnownFlags } from '../../flags/last-known-flags.js';
import { FlagSourceConflictError, parsePercent, parseStage } from '../../flags/migration-flags.js';
import { openFlags } from '../../flags/open-flags.js';
import { ValidationError } from '../domain/errors.js';
import { validateScheduledTasks, type ScheduledTask } from '../stores/task-scheduler/task-scheduler-model.js';
import { randomIds, systemClock, type Clock, type IdGenerator } from '../domain/time.js';
import { PostgresTaskSchedulerStore } from '../stores/task-scheduler/postgres-task-scheduler-store.js';
import type { TaskSchedulerStore } from '../stores/task-scheduler/task-scheduler-store.js';
import { purgeOldJobs } from '../stores/task-scheduler/job-retention.js';
import { TaskRunner } from '../stores/task-scheduler/task-runner.js';
import { RecordedOutboxReplayer } from './recorded-replayer.js';
import type { WriteContext } from '../domain/write-context.js';
import type { MemoryAgentTaskStore } from '../stores/agent-task/memory-agent-task-store.js';
import type { MemoryGraphStore } from '../stores/graph/memory-graph-store.js';
import type pg from 'pg';
import { openDatabase, type DatabaseConfig } from '../postgres/open-database.js';
import { isPool } from '../postgres/pg-pool-executor.js';
import { loadConfig, poolOptionsFromEnv, type DualWriteConfig } from './config.js';
import { redactUrl } from '../postgres/redact.js';
import { RuntimeLease, type RuntimeLeaseOptions } from '../postgres/runtime-state/runtime-lease.js';
import type { PostgresAgentTaskStore } from '../stores/agent-task/postgres-agent-task-store.js';
import type { PostgresGraphStore } from '../stores/graph/postgres-graph-store.js';
import type { SqlExecutor } from '../postgres/sql-executor.js';
import { TransactionExecutor } from '../postgres/transaction-executor.js';
import type { AgentTaskStore } from '../stores/agent-task/agent-task-store.js';
import type { GraphStore } from '../stores/graph/graph-store.js';
import type { RecordKey } from '../ports/record-port.js';
import { AGENT_TASK_DEFINITION } from '../stores/agent-task/agent-task-store-definition.js';
import { BUILT_IN_STORES } from '../stores/built-in-stores.js';
import { GRAPH_DEFINITION } from '../stores/graph/graph-store-definition.js';
import {
  assertUniqueNames,
  storeEntities,
  type AnyStoreDefinition,
  type MemoryStoreOf,
  type PostgresStoreOf,
  type StoreDefinition,
} from '../stores/store-definition.js';
import { createDualWriteStore } from '../dualwrite/dual-write-store.js';
import { FallbackOutbox } from '../dualwrite/fallback-outbox.js';
import { FileOutbox } from '../dualwrite/file-outbox.js';
import { IntentLog } from '../dualwrite/intent-log.js';
import { DualWriteMetrics } from '../dualwrite/metrics.js';
import { Mirror, type MirrorOptions } from '../dualwrite/mirror.js';
import { errorText } from '../domain/error-text.js';
import type { Outbox } from '../dualwrite/outbox.js';
import { RedisOutbox } from '../dualwrite/redis-outbox.js';
import type { OutboxReplayer, ReplayerOptions } from '../dualwrite/replayer.js';
import { ShadowReads, type ShadowOptions } from '../dualwrite/shadow.js';
import { StageGate, type StageGateOptions } from '../dualwrite/stage-gate.js';
import { otherSide, STAGE_POLICIES, type Side } from '../ports/stage.js';
import { sameMove, type MigrationFlags } from '../ports/flags.js';
import { AuditLog, PROCESS_PRINCIPAL, type Principal } from '../postgres/runtime-state/audit-log.js';
import { readServerHealth, type ServerHealth } from '../postgres/operations/server-health.js';
import type { ReplayRound } from '../dualwrite/replayer.js';
import {
  DEFAULT_EVIDENCE_THRESHOLDS,
  EvidenceRefusedError,
  judgeMove,
  type Evidence,
  type EvidenceThresholds,
  type GateVerdict,
} from './evidence-gate.js';
import { EvidenceWindow } from './evidence-window.js';
import { AutoRetreat, type RetreatThresholds } from './auto-retreat.js';
import { rollbackSafety, type RollbackSafety } from './rollback-safety.js';
import { RolloutAudit, type ChangeRequest } from './rollout-audit.js';
import { describeMove, StageChangeRefusedError } from './stage-change-refused.js';
import { LineageStore, type LineageState } from '../postgres/runtime-state/lineage-store.js';
import { LineageRecorder } from './lineage-recorder.js';
import { LossRecovery } from './loss-recovery.js';
import { convergence, type Convergence } from './convergence.js';
import {
  memoryAtStart,
  rebuildMemory,
  type MemoryAtStart,
  type RebuildReport,
  type RebuildStore,
} from './memory-rebuild.js';
import { verifyTarget } from '../../verifier/verify-target.js';
import { RedisLock } from '../../verifier/lock.js';
import { VerifierMetrics } from '../../verifier/metrics.js';
import { VerifierLoop, type VerifierLoopOptions } from '../../verifier/verifier-loop.js';
import { backfill, backfillStore, type BackfillOptions, type BackfillReport } from '../../verifier/backfill.js';
import { repair, undoRepair, type UndoResult } from '../../verifier/repair.js';
import { verify, type VerifyReport } from '../../verifier/verify.js';
import { withTimeout } from '../shared/with-timeout.js';

/** Options of openDualWrite; everything not given is read from the environment. */
export interface DualWriteRuntimeOptions {
  /** The configuration. Default: loadConfig(env), every environment variable parsed and validated at once. */
  readonly config?: DualWriteConfig;
  /** Where the configuration is read from when `config` is not given. Default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * The stores to wrap, each given by its definition, in dependency order (a store whose
   * records reference another's comes after it). Default: the GraphStore and the
   * AgentTaskStore (BUILT_IN_STORES).
   */
  readonly stores?: readonly AnyStoreDefinition[];
  /**
   * The application's existing in-memory stores, by store name (built by the store's
   * definition, or compatible with it). Default: for each store not given, a new empty one
   * (definition.createMemory()).
   */
  readonly memory?: {
    readonly graph?: MemoryGraphStore;
    readonly tasks?: MemoryAgentTaskStore;
    readonly [store: string]: object | undefined;
  };
  /**
   * The lineage generation the given memory was saved at (`runtime.lineage.generation`,
   * read after close() and kept with the snapshot). A process that starts where memory is
   * written after PostgreSQL has been mirrored rebuilds memory from PostgreSQL before it
   * serves, unless this equals the lineage's generation (no process started or moved
   * authority since the memory was saved). Default: none, so such a start rebuilds.
   */
  readonly memoryGeneration?: number;
  /**
   * The database: an open, migrated SqlExecutor (used as it is); the application's
   * node-postgres pool (migrated, used as it is, never ended: its search_path must reach
   * dualwrite's tables); or a connection string (opened with the POSTGRES_* pool settings).
   * Default: openDatabase(config.database) (DATABASE_URL or embedded PGlite).
   */
  readonly db?: SqlExecutor | pg.Pool | string;
  /** Metrics registry. Default: a new Registry. */
  readonly registry?: Registry;
  /**
   * Flags, or a function building them with the runtime's metrics and logger (so refusals
   * and the stage gauge are exported). Default: openFlags(config.flags) (Unleash, the flags file, env, last known).
   */
  readonly flags?: FlagState | ((options: FlagStateOptions) => FlagState);
  /**
   * Outbox. Default: when REDIS_URL is set, the RedisOutbox, falling back to a FileOutbox at
   * DUALWRITE_OUTBOX_PATH while Redis cannot be written; else that FileOutbox
   * (.dualwrite/outbox.jsonl).
   */
  readonly outbox?: Outbox;
  /**
   * The async mirror's write-ahead log (IntentLog): where it lives, or false to do without
   * it (an async write then survives a crash only once mirrored or journaled). Default path:
   * intents.jsonl beside a file outbox, else DUALWRITE_INTENT_LOG_PATH or .dualwrite/intents.jsonl.
   */
  readonly intentLog?: { readonly path?: string } | false;
  /** Mirror settings. Default mode: DUALWRITE_MIRROR_MODE or "sync". */
  readonly mirror?: Omit<MirrorOptions, 'outbox' | 'metrics' | 'logger' | 'transactions' | 'fence' | 'intentLog'>;
  readonly replayer?: Omit<ReplayerOptions, 'metrics' | 'logger'>;
  /**
   * The lease that keeps a second process off this database (each keeps its own memory).
   * Default: on, DUALWRITE_LEASE_TTL_MS (15 s) lifetime, waiting that plus 5 s at start for a crashed holder's to run out.
   */
  readonly lease?: RuntimeLeaseOptions | false;
  /** Stage transitions: how long writes may wait for one (default 5000 ms) and how often a refused one is retried (default 1000 ms). */
  readonly stage?: Pick<StageGateOptions, 'timeoutMs' | 'retryMs' | 'drainQueueLimit'>;
  /** Shadow reads. Default sample rate: DUALWRITE_SHADOW_SAMPLE_RATE, else each stage's default (5% in dual-write and read-shift, where the evidence gate needs comparisons). */
  readonly shadow?: ShadowOptions;
  readonly context?: WriteContext;
  readonly logger?: Pick<Console, 'info' | 'warn' | 'error'>;
  /**
   * The background verifier. Default: runs every DUALWRITE_VERIFY_INTERVAL_MS (300000; 0
   * disables), repairs when DUALWRITE_REPAIR=true, locked by Redis when REDIS_URL is set.
   */
  readonly verifier?: Partial<Omit<VerifierLoopOptions, 'db' | 'targets' | 'metrics'>> & { readonly enabled?: boolean };
  /**
   * Proving the sides equal after an outbox loss: the first pause before a failed attempt is
   * made again (default 2000 ms, doubling) and the longest (default 30000 ms); an attempt is
   * also made as soon as a mirror target answers again.
   */
  readonly recovery?: { readonly retryMs?: number; readonly maxRetryMs?: number };
  /**
   * The evidence an operator's advance needs (setFlags): thresholds (DEFAULT_EVIDENCE_THRESHOLDS)
   * and the window figures are measured over (default 5 minutes).
   */
  readonly evidence?: Partial<EvidenceThresholds> & { readonly windowMs?: number };
  /**
   * Automatic retreat: while memory is authoritative, reads go back to memory (dual-write)
   * and the mirror journals instead of waiting when PostgreSQL's error rate or p95 crosses
   * its threshold over the window (default 60 s). Default: DUALWRITE_AUTO_RETREAT (off).
   */
  readonly autoRetreat?:
    boolean | (Partial<RetreatThresholds> & { readonly windowMs?: number; readonly checkMs?: number });
  /**
   * The background jobs' record: each verifier run, each outbox replay round that did work
   * and each daily retention run is an execution under a task lock. Default: kept in
   * PostgreSQL (task_executions, task_locks), times from the system clock, random ids,
   * locks of 30 s renewed every 10 s.
   */
  readonly jobs?: {
    readonly store?: TaskSchedulerStore;
    readonly clock?: Clock;
    readonly ids?: IdGenerator;
    readonly lockTtlMs?: number;
  };
}

/** Who asks for an operator action and why; the principal is a name (e.g. "admin-token") or a full Principal. */
export interface OperatorRequest {
  readonly reason: string;
  readonly principal: string | Principal;
  readonly requestId?: string;
  readonly clientIp?: string;
}

/** One store of a runtime: its definition, the dual-write store the application calls, and both sides. */
export interface RuntimeStore<Store = unknown, Records extends object = Record<string, object>> {
  readonly definition: StoreDefinition<Store, Records>;
  /** Drop-in implementation of the store's interface that follows the stage in force. */
  readonly dual: Store;
  readonly memory: MemoryStoreOf<Store, Records>;
  readonly postgres: PostgresStoreOf<Store, Records>;
}

/** Everything an API needs to embed dualwrite: the wrapped stores and their machinery. */
export interface DualWriteRuntime {
  /**
   * Drop-in GraphStore and AgentTaskStore for the API, and their two sides. They throw a
   * TypeError when the runtime was opened without that store (see `stores`).
   */
  readonly graph: GraphStore;
  readonly tasks: AgentTaskStore;
  readonly memory: { readonly graph: MemoryGraphStore; readonly tasks: MemoryAgentTaskStore };
  readonly postgres: { readonly graph: PostgresGraphStore; readonly tasks: PostgresAgentTaskStore };
  /** Every store of the runtime by name, in the order given. */
  readonly stores: Readonly<Record<string, RuntimeStore>>;
  /** One store of the runtime, typed by its definition; throws a TypeError when the runtime was opened without it. */
  store<Store, Records extends object>(definition: StoreDefinition<Store, Records>): RuntimeStore<Store, Records>;
  readonly db: SqlExecutor;
  /** The flags operators set; `stage` is what is in force. */
  readonly flags: FlagState;
  /**
   * Sets the stage (and read percentage) in the flags file, where it outlives a restart, and
   * returns the flags in force (the safety rules may refuse them: see `refused`). Bad values
   * are a ValidationError naming the field. Throws FlagSourceConflictError when Unleash owns
   * the flags (change them there) or the caller passed its own flags to openDualWrite.
   */
  setFlags(
    requested: { readonly stage: unknown; readonly readPercent?: unknown },
    change: OperatorRequest & {
      readonly force?: boolean;
      /**
       * For a move that makes memory authoritative while PostgreSQL is down (a rollback from
       * postgres-primary during an outage): go through now, leaving the copies toward memory
       * that cannot be read from PostgreSQL behind; their keys answer UnavailableError (503)
       * until PostgreSQL answers and the copies land, every other key is served. Default
       * false: the change waits for them, and is refused while they cannot land.
       */
      readonly allowUnavailable?: boolean;
    },
  ): Promise<EffectiveFlags>;
  /**
   * What the evidence gate says of moving to `requested` now (an advance needs a recent clean
   * verification, a draining outbox, few shadow mismatches and PostgreSQL errors, and a
   * PostgreSQL p95 near memory's); setFlags refuses with EvidenceRefusedError when it fails.
   */
  judge(requested: { readonly stage: unknown; readonly readPercent?: unknown }): Promise<GateVerdict>;
  /**
   * Runs a verification now, recorded in the audit trail as the operator's; undefined when
   * skipped. With `repair`, copies the authoritative side's version of each difference
   * onto the other, fenced, even where a side is incomplete; a record the authoritative
   * side lacks is deleted from the other only when there are at most `allowDeletes` of
   * them (default 0: each is withheld_delete). `verifier.lastRepairRunId` names the run for undoRepair.
   */
  verifyNow(
    request: OperatorRequest & { readonly repair?: boolean; readonly allowDeletes?: number },
  ): Promise<VerifyReport | undefined>;
  /** Puts back what a repair run changed (where nothing was written since), audited. */
  undoRepair(runId: string, request: OperatorRequest): Promise<UndoResult>;
  /** Runs one outbox replay round now, recorded in the audit trail. */
  replayOutbox(request: OperatorRequest): Promise<ReplayRound>;
  /** The automatic retreat, when on (`autoRetreat.check()` judges the figures now). */
  readonly autoRetreat: AutoRetreat | undefined;
  /** Whether rolling back now would lose anything, and why (a rollback rehearsal while PostgreSQL is authoritative). */
  rollbackSafety(): RollbackSafety;
  /**
   * Whether the sides are known to be equal now: the outbox empty, no target down, no side
   * unverified after an outbox loss, and a clean verification since the last outage.
   */
  convergence(): Convergence;
  /** After an outbox loss: the side that may miss writes, until a verification proves the sides equal (`recovery.current`); `attempt()` tries now. */
  readonly recovery: Pick<LossRecovery, 'current' | 'attempt'>;
  /**
   * Which side holds every acknowledged write, as recorded in PostgreSQL (dualwrite_lineage),
   * and what this process did with its memory at start (rebuilt from PostgreSQL, or kept, and why).
   */
  readonly lineage: {
    readonly current: LineageState | undefined;
    readonly atStart: MemoryAtStart & { readonly rebuilt?: RebuildReport };
  };
  /** The rollout's append-only audit trail (stage changes, forced advances, verifications, repairs, backfills, replays, dead letters). */
  readonly audit: AuditLog;
  /** The stage in force and its transitions: `stage.current`, `await stage.settled()` after changing flags. */
  readonly stage: StageGate;
  readonly mirror: Mirror;
  readonly outbox: Outbox;
  readonly replayer: OutboxReplayer;
  readonly shadow: ShadowReads;
  readonly metrics: DualWriteMetrics;
  readonly verifierMetrics: VerifierMetrics;
  /** The background verifier (started unless disabled). */
  readonly verifier: VerifierLoop;
  /** The background jobs' executions and locks (`listExecutions()`: the newest runs first). */
  readonly jobs: TaskSchedulerStore;
  /**
   * Brings PostgreSQL level with memory after memory-only ran (when PostgreSQL-reading
   * stages are refused): backfills, replays the outbox, verifies, repairs what differs and, once a verification
   * comes back clean, allows read-shift and the PostgreSQL stages again. Run it in
   * dual-write; returns the backfill's report and the last verification's.
   */
  resyncPostgres(
    options?: Pick<BackfillOptions, 'batchSize' | 'onProgress' | 'signal'> & {
      readonly request?: OperatorRequest;
      /** Rows only PostgreSQL holds that the repair may delete (default 0: they are kept, and the sides stay unequal). */
      readonly allowDeletes?: number;
    },
  ): Promise<{ readonly backfill: BackfillReport; readonly verify: VerifyReport }>;
  /**
   * Replaces memory's contents with PostgreSQL's, for a rollback after postgres-only, then
   * verifies the sides; once equal, memory-authoritative stages are allowed again. Run it
   * in postgres-primary (memory is being mirrored again), then roll back. Audited.
   */
  resyncMemory(options?: { readonly request?: OperatorRequest }): Promise<{ readonly verify: VerifyReport }>;
  /** Waits for in-flight mirror writes, stops the replayer and closes what it opened. */
  close(): Promise<void>;
}

/**
 * Assembles the runtime. A dependency that cannot be reached fails it with an error naming
 * the dependency, after everything already opened has been closed again.
 */
export async function openDualWrite(options: DualWriteRuntimeOptions = {}): Promise<DualWriteRuntime> {
  const opened: (() => Promise<void>)[] = [];
  try {
    return await assemble(options, opened);
  } catch (error) {
    for (const close of opened.reverse()) await close().catch(() => {});
    throw error;
  }
}

async function assemble(options: DualWriteRuntimeOptions, opened: (() => Promise<void>)[]): Promise<DualWriteRuntime> {
  const config = options.config ?? loadConfig(options.env ?? process.env);
  const definitions = options.stores ?? BUILT_IN_STORES;
  const memoryStores = memorySides(definitions, options.memory ?? {});
  const logger = options.logger ?? console;
  const registry = options.registry ?? new Registry();
  const metrics = new DualWriteMetrics(registry);
  let redis: Redis | undefined;
  const redisClient = async () => {
    if (!redis) {
      const where = redactUrl(config.redisUrl!);
      const client = new Redis(config.redisUrl!, { lazyConnect: true, maxRetriesPerRequest: 2 });
      // Every error through the logger (never ioredis' "Unhandled error event"), at most one line a minute.
      let lastLogged = 0;
      client.on('error', (error: unknown) => {
        if (Date.now() - lastLogged < 60_000) return;
        lastLogged = Date.now();
        logger.warn(`dualwrite: Redis at ${where}: ${errorText(error)}`);
      });
      opened.push(async () => void client.disconnect());
      try {
        await client.connect();
      } catch (error) {
        throw new Error(`dualwrite: cannot reach Redis at ${where} (REDIS_URL): ${errorText(error)}`, { cause: error });
      }
      redis = client;
    }
    return redis;
  };

  const db = isExecutor(options.db)
    ? options.db
    : (await openDatabase(databaseOf(options.db, config, options.env ?? process.env))).db;
  if (!isExecutor(options.db)) opened.push(() => db.close());
  // This process, as the runtime lease and the background jobs' locks and executions name it.
  const holder =
    (options.lease !== false && options.lease?.holder) || `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  if (options.lease !== false) {
    const lease = new RuntimeLease(db, { ttlMs: config.leaseTtlMs, ...options.lease, holder, logger });
    await lease.acquire();
    opened.push(() => lease.release());
  }
  const jobStore = options.jobs?.store ?? new PostgresTaskSchedulerStore(db);
  const jobClock = options.jobs?.clock ?? systemClock;
  const jobs = new TaskRunner({
    store: jobStore,
    holderId: holder,
    clock: jobClock,
    ids: options.jobs?.ids ?? randomIds,
    lockTtlMs: options.jobs?.lockTtlMs,
    logger,
  });
  opened.push(() => jobs.stop());
  // Holding the runtime lease, this is the only live runtime on the database: whatever another holder left running was abandoned.
  await interruptAbandoned(jobStore, jobClock.now(), holder, options.lease !== false, logger);
  metrics.source('pool', () => db.poolStats());
  // Under a 1 s scrape interval's default timeout, so a silent PostgreSQL reads as down rather than failing the scrape.
  metrics.source('server', () => serverHealthWithin(db, 900));
  metrics.startSeries(definitions.map((definition) => definition.name));
  const auditLog = new AuditLog(db);
  const audit = new RolloutAudit(auditLog, logger);
  opened.push(() => audit.close());

  const fromEnv = options.flags ? undefined : openFlags(config.flags, { metrics, logger });
  const flags =
    options.flags instanceof FlagState
      ? options.flags
      : options.flags
        ? options.flags({ metrics, logger })
        : fromEnv!.flags;
  if (!(options.flags instanceof FlagState)) opened.push(() => flags.close());

  // A loss may be noticed before the recovery below exists (the outbox is read at start): it waits for it.
  let recovery: LossRecovery | undefined; // eslint-disable-line prefer-const -- assigned below, read by the closure before
  const earlyLosses: string[] = [];
  const outboxLost = (detail: string) => {
    if (!recovery) return void earlyLosses.push(detail);
    const policy = STAGE_POLICIES[gate.current.stage];
    recovery.lost(policy.mirror ?? otherSide(policy.authoritative), detail);
  };
  let outbox = options.outbox;
  if (!outbox) {
    if (config.redisUrl) {
      const redisOutbox = new RedisOutbox(await redisClient(), {
        // What was lost was still to be mirrored: the pending set is rebuilt from what the
        // stream holds, and the side it was for is unverified until a verification proves it equal.
        onLoss: (detail) => {
          metrics.outboxLost.inc();
          logger.error(`dualwrite: the Redis outbox lost entries (${detail}); rebuilding its pending set`);
          void mirror.loadJournaled().then(
            () => outboxLost(`the Redis outbox lost entries: ${detail}`),
            (error: unknown) =>
              logger.warn(`dualwrite: could not rebuild the pending set after the outbox loss: ${errorText(error)}`),
          );
        },
      });
      await redisOutbox.refresh();
      if ((await redisOutbox.persistent()) === false) {
        logger.warn(
          `dualwrite: Redis at ${redactUrl(config.redisUrl)} keeps no data across a restart (appendonly no, save ""): a restart would lose the outbox`,
        );
      }
      // While Redis cannot be written, failures are journaled locally rather than waiting on it.
      outbox = new FallbackOutbox(redisOutbox, await FileOutbox.open({ path: config.outboxPath }), {
        logger,
        breaker: options.mirror?.breaker,
      });
    } else {
      outbox = await FileOutbox.open({ path: config.outboxPath });
    }
    opened.push(() => outbox!.close());
  }
  const box = outbox;
  metrics.source('outbox', () => box.stats());
  let intentLog: IntentLog | undefined;
  if (options.intentLog !== false) {
    // Next to a file outbox, so runtimes in folders of their own never share one.
    const path =
      options.intentLog?.path ??
      config.intentLogPath ??
      (box instanceof FileOutbox ? join(dirname(box.path), 'intents.jsonl') : undefined);
    const { log, recovered } = await IntentLog.open(box, { path });
    opened.push(() => log.close());
    intentLog = log;
    if (recovered > 0)
      logger.warn(
        `dualwrite: ${recovered} acknowledged async mirror writes of a process that stopped before mirroring them were moved to the outbox for replay`,
      );
  }

  const sides: Record<string, Sides> = {};
  for (const definition of definitions)
    sides[definition.name] = { memory: memoryStores[definition.name]!, postgres: definition.createPostgres(db) };
  const resolveIn = (stores: Record<string, Record<Side, object>>) => (store: string, side: Side) => {
    const target = stores[store]?.[side];
    if (!target) throw new TypeError(`no store named ${store}`);
    return target;
  };
  // A batch of mirror writes to PostgreSQL runs in one transaction, through stores bound to it.
  const postgresBatch = (work: (resolve: (store: string, side: Side) => object) => Promise<void>) =>
    db.transaction(async (tx) => {
      const bound = new TransactionExecutor(tx, db.engine);
      const inTransaction: Record<string, Sides> = {};
      for (const definition of definitions)
        inTransaction[definition.name] = {
          memory: sides[definition.name]!.memory,
          postgres: definition.createPostgres(bound),
        };
      await work(resolveIn(inTransaction));
    });
  const mirror = new Mirror(resolveIn(sides), {
    mode: config.mirrorMode,
    ...options.mirror,
    breaker: {
      ...options.mirror?.breaker,
      onChange: (state, outageMs) => {
        options.mirror?.breaker?.onChange?.(state, outageMs);
        // A side that answers again is the moment to prove it equal, rather than the next retry.
        if (state === 'closed') void recovery?.attempt();
      },
    },
    transactions: { postgres: postgresBatch },
    fence: (op) => gate.fence(op),
    intentLog,
    entityOrder: Object.fromEntries(definitions.map((definition) => [definition.name, storeEntities(definition)])),
    outbox: box,
    metrics,
    logger,
  });
  await mirror.loadJournaled();
  const backgroundJobs = backgroundTasks(options, config);
  const replayer = new RecordedOutboxReplayer(
    box,
    mirror,
    { onDeadLetter: (entry, reason) => void audit.deadLettered(entry, reason), ...options.replayer, metrics, logger },
    { runner: jobs, task: backgroundJobs.replay, logger },
  );
  const lineage = new LineageRecorder(new LineageStore(db), holder, logger);
  // Flags built here from the environment are saved as they come into force, for a restart with the flag service down.
  const lastFlagsPath = options.flags ? undefined : config.flags.lastFlagsPath;
  let saving = Promise.resolve();
  const saveApplied = (applied: EffectiveFlags) => {
    saving = saving
      .then(() => saveLastKnownFlags(lastFlagsPath!, applied))
      .catch((error: unknown) =>
        logger.warn(`dualwrite: could not save the flags in force to ${lastFlagsPath}: ${errorText(error)}`),
      );
  };
  // An operator's change waiting to come into force, so its audit entry names them.
  let requestedChange:
    { readonly to: MigrationFlags; readonly request: ChangeRequest; readonly action?: 'stage.retreat' } | undefined;
  let inForce: EffectiveFlags | undefined;
  const onApplied = (applied: EffectiveFlags) => {
    if (lastFlagsPath) saveApplied(applied);
    const from = inForce;
    inForce = applied;
    // The stage at start is not a change, nor is a change of anything but the stage and read percentage.
    if (!from || (from.stage === applied.stage && from.readPercent === applied.readPercent)) return;
    if (from.stage !== applied.stage) lineage.stageApplied(from.stage, applied.stage);
    const requested = requestedChange && sameMove(requestedChange.to, applied) ? requestedChange : undefined;
    if (requested) requestedChange = undefined;
    void audit.stageChanged(from, applied, requested?.request, requested?.action);
  };
  const gate: StageGate = new StageGate({
    ...options.stage,
    flags,
    mirror,
    drainFor: (side) => replayer.drainFor(side),
    metrics,
    logger,
    onApplied,
  });
  opened.push(async () => {
    await gate.stop();
    await saving;
    await lineage.close();
  });
  await gate.open();
  // Before the runtime is handed out, so no write or read meets a memory that is not yet whole.
  const atStart = await prepareMemory(lineage, flags, options.memoryGeneration, {
    definitions,
    sides,
    replayer,
    logger,
  });
  await gate.settled();
  await lineage.start(gate.current.stage);
  replayer.start();
  const shadow = new ShadowReads({ sampleRate: config.shadowSampleRate, ...options.shadow }, metrics);
  const common = { gate, mirror, metrics, shadow, context: options.context };
  const verifierMetrics = new VerifierMetrics(registry);
  const verifierOptions = options.verifier ?? {};
  // The operator's verification in progress, so its audit entry names them.
  let verifyRequest: ChangeRequest | undefined;
  const verifyTargets = definitions.map((definition) =>
    verifyTarget(definition, sides[definition.name]!.memory, sides[definition.name]!.postgres),
  );
  const verifier = new VerifierLoop({
    db,
    targets: verifyTargets,
    metrics: verifierMetrics,
    intervalMs: config.verifyIntervalMs,
    repair: config.repair,
    lock: config.redisUrl ? new RedisLock(await redisClient()) : undefined,
    // Writes in flight when a difference was seen settle before it is re-checked.
    settle: () => mirror.settled(),
    // Only stages that write both sides have two sides to compare.
    stage: () => {
      const policy = STAGE_POLICIES[gate.current.stage];
      return policy.mirror ? { authoritative: policy.authoritative } : null;
    },
    logger,
    jobs: { runner: jobs, task: backgroundJobs.verifier },
    ...verifierOptions,
    onReport: (report, repairs) => {
      verifierOptions.onReport?.(report, repairs);
      void audit.verified(report, repairs, verifyRequest, verifier.lastRepairRunId);
    },
  });
  if (verifierOptions.enabled !== false && config.verifyIntervalMs !== 0) verifier.start();
  recovery = new LossRecovery({
    drainFor: (side) => replayer.drainFor(side),
    verify: (repair) => verifier.runOnce({ repair, trigger: { type: 'manual', by: 'loss-recovery' } }),
    record: (unverified) => lineage.unverified(unverified, gate.current.stage),
    onChange: (side, unverified) => flags.unverified(side, unverified),
    logger,
    ...options.recovery,
  });
  opened.push(async () => recovery?.stop());
  metrics.source('unverified', () => recovery?.current?.side);
  if (lineage.last?.unverified) recovery.resume(lineage.last.unverified);
  for (const detail of earlyLosses.splice(0)) outboxLost(detail);
  jobs.every(backgroundJobs.retention, () => purgeOldJobs(jobStore, jobClock.now()));
  const thresholds: EvidenceThresholds = { ...DEFAULT_EVIDENCE_THRESHOLDS, ...options.evidence };
  const evidenceWindow = new EvidenceWindow({ registry, windowMs: options.evidence?.windowMs });
  evidenceWindow.start();
  opened.push(async () => evidenceWindow.stop());
  const retreatOptions = options.autoRetreat ?? config.autoRetreat;
  const autoRetreat = retreatOptions
    ? new AutoRetreat({
        ...(typeof retreatOptions === 'object' ? { thresholds: retreatOptions, checkMs: retreatOptions.checkMs } : {}),
        evidence: retreatEvidence(
          registry,
          typeof retreatOptions === 'object' ? retreatOptions.windowMs : undefined,
          opened,
        ),
        current: () => gate.current,
        retreat: async (reason) => {
          if (!fromEnv || flags.current.source === 'unleash')
            throw new Error("the flags are not this process's to change (Unleash or the application owns them)");
          // Journal mirror writes at once instead of waiting on a failing PostgreSQL; the circuit probes it again.
          mirror.breakerFor('postgres').failed();
          const to: MigrationFlags = { stage: 'dual-write', readPercent: 0, rolloutGroup: gate.current.rolloutGroup };
          requestedChange = { to, request: { principal: PROCESS_PRINCIPAL, reason }, action: 'stage.retreat' };
          await fromEnv.flagsFile.write(to, {
            reason,
            principal: PROCESS_PRINCIPAL.username,
            changedAt: new Date().toISOString(),
          });
          metrics.retreats.inc();
          logger.warn(
            `dualwrite: ${reason}; reads are back in memory (moving forward again goes through the evidence gate)`,
          );
        },
        logger,
      })
    : undefined;
  autoRetreat?.start();
  if (autoRetreat) opened.push(async () => autoRetreat.stop());
  const judge = async (requested: { readonly stage: unknown; readonly readPercent?: unknown }) => {
    const to = requestedFlags(requested, gate.current.rolloutGroup);
    const last = verifier.lastReport;
    const unverified = recovery?.current;
    const evidence = await evidenceWindow.evidence({
      outbox: box.stats(),
      shadowReadsOff: shadow.off,
      ...(last ? { lastVerification: { startedAt: last.startedAt, consistent: last.consistent } } : {}),
      ...(unverified
        ? { unverified: { side: unverified.side, since: unverified.since, reason: unverified.reason } }
        : {}),
    });
    return { to, verdict: judgeMove(gate.current, to, evidence, new Date(), thresholds) };
  };

  const stores: Record<string, RuntimeStore> = {};
  for (const definition of definitions) {
    const { memory, postgres } = sides[definition.name]!;
    const dual = createDualWriteStore<object>({
      name: definition.name,
      description: definition.methods,
      memory,
      postgres,
      ...common,
    });
    stores[definition.name] = Object.freeze({ definition, dual, memory, postgres });
  }
  // The built-in stores by their definitions: a store of another interface may be named "graph" too.
  const graph = Object.values(stores).find((store) => store.definition === GRAPH_DEFINITION);
  const tasks = Object.values(stores).find((store) => store.definition === AGENT_TASK_DEFINITION);
  const memory = builtIn(
    {},
    { graph: graph?.memory, tasks: tasks?.memory },
    'runtime.memory',
  ) as DualWriteRuntime['memory'];
  const postgres = builtIn(
    {},
    { graph: graph?.postgres, tasks: tasks?.postgres },
    'runtime.postgres',
  ) as DualWriteRuntime['postgres'];

  const runtime: Omit<DualWriteRuntime, 'graph' | 'tasks'> = {
    memory,
    postgres,
    stores: Object.freeze(stores),
    store<Store, Records extends object>(definition: StoreDefinition<Store, Records>): RuntimeStore<Store, Records> {
      const found = stores[definition.name];
      if (!found || found.definition !== definition)
        throw new TypeError(
          `this runtime has no store ${definition.name} of that definition (stores: ${Object.keys(stores).join(', ')})`,
        );
      return found as unknown as RuntimeStore<Store, Records>;
    },
    db,
    flags,
    stage: gate,
    mirror,
    outbox: box,
    replayer,
    shadow,
    metrics,
    verifierMetrics,
    verifier,
    jobs: jobStore,
    audit: auditLog,
    lineage: {
      get current() {
        return lineage.last;
      },
      atStart,
    },
    autoRetreat,
    recovery,
    convergence() {
      return convergence({
        outbox: box.stats(),
        unverified: recovery!.current,
        lastFailureAt: mirror.lastFailureAt,
        lastReport: verifier.lastReport,
      });
    },
    rollbackSafety() {
      return rollbackSafety(
        gate.current,
        flags.stale.memory,
        mirror.journaledFor('memory'),
        verifier.lastReport,
        new Date(),
        thresholds.verifyMaxAgeMs,
      );
    },
    async judge(requested) {
      return (await judge(requested)).verdict;
    },
    async setFlags(requested, change) {
      if (!fromEnv)
        throw new FlagSourceConflictError(
          'the flags were given to openDualWrite by the application; change them there',
        );
      if (flags.current.source === 'unleash')
        throw new FlagSourceConflictError(
          'the flags come from Unleash: change toggle dualwrite.stage (and the rollout of dualwrite.read-from-postgres) there',
        );
      const request = changeRequest(change);
      const { to, verdict } = await judge(requested);
      if (change.allowUnavailable && STAGE_POLICIES[to.stage].authoritative !== 'memory') {
        throw new ValidationError(
          'allowUnavailable',
          `applies to a move that makes memory authoritative (a rollback to dual-write, read-shift or memory-only), not to ${to.stage}`,
        );
      }
      // Checked before anything is written, so a refused change cannot take effect later by itself.
      const safety = flags.preview(to).refusal;
      if (safety) throw new StageChangeRefusedError(gate.current, to, safety);
      if (!verdict.allowed) {
        if (!change.force) throw new EvidenceRefusedError(gate.current, to, verdict);
        // Recorded as the operator's decision even if the barrier then refuses the change (no stage.change follows).
        await audit.forced(gate.current, to, verdict, request);
      }
      const from = gate.current;
      const writeFlags = (flagsToWrite: MigrationFlags, reason: string) =>
        fromEnv.flagsFile.write(flagsToWrite, {
          reason,
          principal: request.principal.username,
          changedAt: new Date().toISOString(),
        });
      requestedChange = { to, request };
      if (change.allowUnavailable) gate.permitUnavailable(to);
      await writeFlags(to, request.reason);
      const state = await gate.settled();
      gate.permitUnavailable(undefined);
      if (!sameMove(to, gate.current)) {
        // The barrier could not complete: the flags file goes back to the stage in force, and the change is over.
        requestedChange = undefined;
        await writeFlags(gate.current, `${describeMove(to)} was refused: ${state.refused ?? 'not in force'}`);
        await gate.settled();
        throw new StageChangeRefusedError(from, to, state.refused ?? 'the change did not come into force');
      }
      return flags.current;
    },
    async verifyNow(request) {
      verifyRequest = changeRequest(request);
      try {
        const repairing = request.repair
          ? { reason: verifyRequest.reason, allowDeletes: request.allowDeletes ?? 0 }
          : request.repair;
        return await verifier.runOnce({
          repair: repairing,
          trigger: { type: 'manual', by: verifyRequest.principal.username },
        });
      } finally {
        verifyRequest = undefined;
      }
    },
    async replayOutbox(request) {
      const round = await replayer.replayOnce();
      await audit.outboxReplayed(round, changeRequest(request));
      return round;
    },
    async resyncPostgres({ request, allowDeletes, ...backfillOptions } = {}) {
      const stage = gate.current.stage;
      if (stage !== 'dual-write')
        throw new Error(
          `resyncPostgres runs in dual-write (memory authoritative, PostgreSQL mirrored), not in ${stage}`,
        );
      // The backfill first, so journaled copies find the rows they reference; then the
      // journal, whose copies are older than what the repair below writes.
      const filled = await backfill({
        ...backfillOptions,
        stores: Object.values(stores).map((store) => backfillStore(store.definition, store.memory)),
        db,
        restart: true,
      });
      await audit.backfilled(filled, request && changeRequest(request));
      await mirror.settled();
      const stuck = await replayer.drainFor('postgres');
      if (stuck) throw new Error(`resyncPostgres: ${stuck}`);
      const options = {
        ...verifierOptions,
        authoritative: 'memory' as const,
        settle: () => mirror.settled(),
        maxReported: Number.MAX_SAFE_INTEGER,
      };
      let report = await verify(db, verifyTargets, options);
      if (!report.consistent) {
        await repair(report.differences, {
          authoritative: 'memory',
          db,
          targets: verifyTargets,
          metrics: verifierMetrics,
          reason: request?.reason ?? 'resync PostgreSQL',
          allowDeletes,
        });
        report = await verify(db, verifyTargets, options);
      }
      report = { ...report, differences: report.differences.slice(0, verifierOptions.maxReported ?? 1000) };
      if (report.consistent) {
        await lineage.postgresResynced(gate.current.stage);
        flags.postgresResynced();
      }
      return { backfill: filled, verify: report };
    },
    async undoRepair(runId, request) {
      const change = changeRequest(request);
      const undone = await undoRepair(runId, {
        db,
        targets: verifyTargets,
        metrics: verifierMetrics,
        reason: change.reason,
      });
      await audit.repairUndone(undone, runId, change);
      return undone;
    },
    async resyncMemory({ request } = {}) {
      const stage = gate.current.stage;
      if (stage !== 'postgres-primary')
        throw new Error(
          `resyncMemory runs in postgres-primary (PostgreSQL authoritative, memory mirrored), not in ${stage}`,
        );
      // The copy runs while writes go on; a mirror write of a record may land before the
      // copy's older version of it, so those records are copied again with writes held.
      const touched = new Map<string, RecordState>();
      const stopObserving = mirror.observe((op) => {
        for (const { entity, key } of op.records)
          touched.set(JSON.stringify([op.store, entity, key]), { store: op.store, entity, key });
      });
      try {
        await rebuildMemory(rebuildStores(Object.values(stores)));
      } finally {
        stopObserving();
      }
      await gate.exclusive(async () => {
        for (const { store, entity, key } of touched.values()) {
          const record = await sides[store]!.postgres.getRecord(entity, key);
          const into = sides[store]!.memory;
          await (record ? into.putRecord(entity, record) : into.deleteRecord(entity, key));
        }
      });
      const report = await verify(db, verifyTargets, {
        ...verifierOptions,
        authoritative: 'postgres',
        settle: () => mirror.settled(),
      });
      await audit.memoryResynced(report, request && changeRequest(request));
      if (!report.consistent)
        throw new Error(
          `resyncMemory: memory still differs from PostgreSQL after the copy (${report.differences.length} differences); run it again`,
        );
      flags.memoryResynced();
      return { verify: report };
    },
    async close() {
      await gate.stop();
      await verifier.stop();
      await mirror.drain();
      await replayer.stop();
      await shadow.settle();
      for (const close of opened.reverse()) await close();
    },
  };
  return builtIn(runtime, { graph: graph?.dual, tasks: tasks?.dual }, 'runtime') as DualWriteRuntime;
}

/** The handler types of the runtime's background tasks. */
const JOB_TYPES = ['verify', 'outbox.replay', 'jobs.retention'];

/** The runtime's background tasks, validated: the verifier, outbox replay rounds and the daily retention of the jobs' own record. */
function backgroundTasks(
  options: DualWriteRuntimeOptions,
  config: DualWriteConfig,
): { readonly verifier: ScheduledTask; readonly replay: ScheduledTask; readonly retention: ScheduledTask } {
  const verifyIntervalMs = options.verifier?.intervalMs ?? config.verifyIntervalMs;
  const [verifier, replay, retention] = validateScheduledTasks(
    [
      {
        name: 'verifier',
        type: 'verify',
        description: 'compare memory with PostgreSQL (and repair when DUALWRITE_REPAIR=true)',
        isRecurring: verifyIntervalMs > 0,
        ...(verifyIntervalMs > 0 ? { intervalMs: verifyIntervalMs } : {}),
        enabled: options.verifier?.enabled !== false && verifyIntervalMs > 0,
      },
      {
        name: 'outbox.replay',
        type: 'outbox.replay',
        description: 'outbox replay rounds that replayed or dead-lettered entries',
        intervalMs: options.replayer?.intervalMs ?? 1000,
      },
      {
        name: 'jobs.retention',
        type: 'jobs.retention',
        description: 'delete executions ended 90 days ago and locks released or expired 7 days ago',
        intervalMs: 86_400_000,
        maxDurationSeconds: 600,
      },
    ],
    JOB_TYPES,
  );
  return { verifier: verifier!, replay: replay!, retention: retention! };
}

/** Marks what a stopped process left running as interrupted; a database that does not answer now leaves that to the next start. */
async function interruptAbandoned(
  store: TaskSchedulerStore,
  at: string,
  holderId: string,
  everyOtherHolder: boolean,
  logger: Pick<Console, 'warn'>,
): Promise<void> {
  try {
    const interrupted = await store.interruptAbandoned(at, { holderId, everyOtherHolder });
    if (interrupted.length > 0)
      logger.warn(
        `dualwrite: ${interrupted.length} background job runs of a stopped process were marked interrupted (${[...new Set(interrupted.map((e) => e.taskName))].join(', ')})`,
      );
  } catch (error) {
    logger.warn(
      `dualwrite: could not mark the background job runs of a stopped process interrupted: ${errorText(error)}`,
    );
  }
}

/** The figures the automatic retreat judges: a window of its own over the last `windowMs` (default 60 s), sampled every 5 s. */
function retreatEvidence(
  registry: Registry,
  windowMs: number | undefined,
  opened: (() => Promise<void>)[],
): () => Promise<Pick<Evidence, 'postgresCalls' | 'p95Ms'>> {
  const window = new EvidenceWindow({ registry, windowMs: windowMs ?? 60_000, sampleMs: 5000 });
  window.start();
  opened.push(async () => window.stop());
  return () => window.evidence({ outbox: { depth: 0, oldestAgeSeconds: 0 } });
}

/** Whether the caller passed an open SqlExecutor (rather than a pool, a connection string or nothing). */
function isExecutor(db: DualWriteRuntimeOptions['db']): db is SqlExecutor {
  return typeof db === 'object' && db !== null && !isPool(db);
}

/** Where to open the database: the application's pool, a connection string (opened as DATABASE_URL would be, with the POSTGRES_* settings of `env`), or the configuration's. */
function databaseOf(db: pg.Pool | string | undefined, config: DualWriteConfig, env: NodeJS.ProcessEnv): DatabaseConfig {
  if (db === undefined) return config.database;
  if (typeof db !== 'string') return { kind: 'application-pool', pool: db };
  return { kind: 'postgres', pool: poolOptionsFromEnv({ ...env, DATABASE_URL: db }) };
}

/** The flags an operator asks for, validated (a ValidationError names the field). */
function requestedFlags(
  requested: { readonly stage: unknown; readonly readPercent?: unknown },
  rolloutGroup: string,
): MigrationFlags {
  if (requested.stage === undefined || requested.stage === '') throw new ValidationError('stage', 'required');
  const stage = validated('stage', () => parseStage(requested.stage, 'stage'));
  const readPercent = validated('readPercent', () => parsePercent(requested.readPercent ?? 0, 'readPercent'));
  return { stage, readPercent, rolloutGroup };
}

/** An operator's request with its principal spelled out; the reason is required. */
function changeRequest(request: OperatorRequest): ChangeRequest {
  if (request.reason.trim() === '') throw new ValidationError('reason', 'say why');
  const principal: Principal =
    typeof request.principal === 'string'
      ? { uid: request.principal, username: request.principal, type: 'service' }
      : request.principal;
  return {
    principal,
    reason: request.reason,
    ...(request.requestId ? { requestId: request.requestId } : {}),
    ...(request.clientIp ? { clientIp: request.clientIp } : {}),
  };
}

/** What PostgreSQL says of itself for the metrics, or undefined when it does not answer within `ms`. */
async function serverHealthWithin(db: SqlExecutor, ms: number): Promise<ServerHealth | undefined> {
  return withTimeout<ServerHealth | undefined>(readServerHealth(db), ms, () => undefined).catch(() => undefined);
}

/** Runs a flag parser, turning its TypeError into a ValidationError naming `field`. */
function validated<T>(field: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new ValidationError(field, (error as Error).message);
  }
}

/** A record a mirror write touched, by store. */
interface RecordState {
  readonly store: string;
  readonly entity: string;
  readonly key: RecordKey;
}

/** Both sides of a store, its types erased. */
interface Sides {
  readonly memory: MemoryStoreOf<object, Record<string, object>>;
  readonly postgres: PostgresStoreOf<object, Record<string, object>>;
}

/** Each store's in-memory side: the application's where given, else a new one; checked before anything is opened. */
function memorySides(
  definitions: readonly AnyStoreDefinition[],
  given: NonNullable<DualWriteRuntimeOptions['memory']>,
): Record<string, Sides['memory']> {
  if (definitions.length === 0) throw new TypeError('openDualWrite: stores is empty');
  assertUniqueNames(definitions);
  const names = definitions.map((definition) => definition.name);
  for (const [name, store] of Object.entries(given)) {
    if (!names.includes(name))
      throw new TypeError(`openDualWrite: memory.${name} names no store of this runtime (stores: ${names.join(', ')})`);
    if (
      store !== undefined &&
      !((store as { tables?: unknown }).tables && typeof (store as { clear?: unknown }).clear === 'function')
    ) {
      throw new TypeError(
        `openDualWrite: memory.${name} is not an in-memory store (it needs tables and clear(), as definition.createMemory() builds)`,
      );
    }
  }
  const sides: Record<string, Sides['memory']> = {};
  for (const definition of definitions)
    sides[definition.name] = (given[definition.name] as Sides['memory'] | undefined) ?? definition.createMemory();
  return sides;
}

/**
 * Adds the built-in stores' entries to `target`: an absent store is a getter that throws
 * (and is left out of enumeration), so a runtime opened without the GraphStore says so
 * instead of handing out undefined.
 */
function builtIn(target: object, entries: { readonly graph: unknown; readonly tasks: unknown }, path: string): object {
  for (const [name, value] of Object.entries(entries)) {
    Object.defineProperty(
      target,
      name,
      value !== undefined
        ? { value, enumerable: true }
        : {
            enumerable: false,
            get() {
              throw new TypeError(
                `${path}.${name}: this runtime was opened without the built-in ${name} store (see runtime.stores)`,
              );
            },
          },
    );
  }
  return target;
}

/**
 * Brings memory up to what the lineage says before the process serves: marks PostgreSQL
 * incomplete when memory-only ran since its last resync, and rebuilds memory from PostgreSQL
 * (after replaying what the outbox holds for it) when memory is written in the stage at start
 * and cannot prove itself current.
 */
async function prepareMemory(
  lineage: LineageRecorder,
  flags: FlagState,
  memoryGeneration: number | undefined,
  runtime: {
    readonly definitions: readonly AnyStoreDefinition[];
    readonly sides: Record<string, Sides>;
    readonly replayer: OutboxReplayer;
    readonly logger: Pick<Console, 'info'>;
  },
): Promise<MemoryAtStart & { readonly rebuilt?: RebuildReport }> {
  const prior = await lineage.read();
  if (prior && !prior.postgresComplete) flags.postgresIncomplete();
  const decision = memoryAtStart(prior, flags.current.stage, memoryGeneration);
  if (!decision.rebuild) return decision;
  const { logger } = runtime;
  logger.info(`dualwrite: rebuilding memory from PostgreSQL before serving: ${decision.reason}`);
  const stuck = await runtime.replayer.drainFor('postgres');
  if (stuck) throw new Error(`dualwrite: cannot rebuild memory from PostgreSQL before serving: ${stuck}`);
  const stores = rebuildStores(
    runtime.definitions.map((definition) => ({ definition, ...runtime.sides[definition.name]! })),
  );
  let lastLogged = Date.now();
  const rebuilt = await rebuildMemory(stores, {
    onProgress: ({ store, entity, records }) => {
      if (Date.now() - lastLogged < 2000) return;
      lastLogged = Date.now();
      logger.info(`dualwrite: rebuilding memory: ${records} records copied (now ${store}.${entity})`);
    },
  });
  logger.info(
    `dualwrite: memory rebuilt from PostgreSQL: ${rebuilt.records} records in ${rebuilt.seconds.toFixed(2)} s`,
  );
  flags.memoryResynced();
  return { ...decision, rebuilt };
}

/** Each store's PostgreSQL side as the source of a rebuild of its memory side. */
function rebuildStores(
  stores: readonly {
    readonly definition: AnyStoreDefinition;
    readonly memory: Sides['memory'];
    readonly postgres: Sides['postgres'];
  }[],
): RebuildStore[] {
  return stores.map(({ definition, memory, postgres }) => ({
    name: definition.name,
    entities: storeEntities(definition),
    from: postgres,
    to: memory,
  }));
}
