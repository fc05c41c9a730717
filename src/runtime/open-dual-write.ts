import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { FlagState, type EffectiveFlags, type FlagStateOptions } from '../../flags/flag-state.js';
import { saveLastKnownFlags } from '../../flags/last-known-flags.js';
import { FlagSourceConflictError, parsePercent, parseStage } from '../../flags/migration-flags.js';
import { openFlags } from '../../flags/open-flags.js';
import { ValidationError } from '../domain/errors.js';
import type { WriteContext } from '../domain/graph.js';
import { AGENT_TASK_ENTITIES, entityNames, GRAPH_ENTITIES } from '../domain/records.js';
import { MemoryAgentTaskStore } from '../memory/memory-agent-task-store.js';
import { MemoryGraphStore } from '../memory/memory-graph-store.js';
import { openDatabase } from '../postgres/open-database.js';
import { loadConfig, type DualWriteConfig } from './config.js';
import { redactUrl } from '../postgres/redact.js';
import { RuntimeLease, type RuntimeLeaseOptions } from '../postgres/runtime-lease.js';
import { PostgresAgentTaskStore } from '../postgres/postgres-agent-task-store.js';
import { PostgresGraphStore } from '../postgres/postgres-graph-store.js';
import type { SqlExecutor } from '../postgres/sql-executor.js';
import { TransactionExecutor } from '../postgres/transaction-executor.js';
import type { AgentTaskStore } from '../ports/agent-task-store.js';
import type { GraphStore } from '../ports/graph-store.js';
import type { RecordKey, RecordPort } from '../ports/record-port.js';
import { scanAll } from '../ports/record-scan.js';
import { AGENT_TASK_STORE_METHODS } from '../dualwrite/agent-task-store-description.js';
import { createDualWriteStore } from '../dualwrite/dual-write-store.js';
import { FallbackOutbox } from '../dualwrite/fallback-outbox.js';
import { FileOutbox } from '../dualwrite/file-outbox.js';
import { IntentLog } from '../dualwrite/intent-log.js';
import { GRAPH_STORE_METHODS } from '../dualwrite/graph-store-description.js';
import { DualWriteMetrics } from '../dualwrite/metrics.js';
import { errorText, Mirror, type MirrorOptions } from '../dualwrite/mirror.js';
import type { Outbox } from '../dualwrite/outbox.js';
import { RedisOutbox } from '../dualwrite/redis-outbox.js';
import { OutboxReplayer, type ReplayerOptions } from '../dualwrite/replayer.js';
import { ShadowReads, type ShadowOptions } from '../dualwrite/shadow.js';
import { StageGate, type StageGateOptions } from '../dualwrite/stage-gate.js';
import { STAGE_POLICIES, type Side } from '../ports/stage.js';
import { graphTarget, taskTarget } from '../../verifier/entities.js';
import { RedisLock } from '../../verifier/lock.js';
import { VerifierMetrics } from '../../verifier/metrics.js';
import { VerifierLoop, type VerifierLoopOptions } from '../../verifier/verifier-loop.js';
import { backfill, type BackfillOptions, type BackfillReport } from '../../verifier/backfill.js';
import { repair } from '../../verifier/repair.js';
import { verify, type VerifyReport } from '../../verifier/verify.js';

/** Options of openDualWrite; everything not given is read from the environment. */
export interface DualWriteRuntimeOptions {
  /** The configuration. Default: loadConfig(env), every environment variable parsed and validated at once. */
  readonly config?: DualWriteConfig;
  /** Where the configuration is read from when `config` is not given. Default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** The application's existing in-memory stores. Default: new empty ones. */
  readonly memory?: { readonly graph: MemoryGraphStore; readonly tasks: MemoryAgentTaskStore };
  /** An open, migrated database. Default: openDatabase(config.database) (DATABASE_URL or embedded PGlite). */
  readonly db?: SqlExecutor;
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
   * Default: on, 15 s lifetime, waiting up to 20 s at start for a crashed holder's to run out.
   */
  readonly lease?: RuntimeLeaseOptions | false;
  /** Stage transitions: how long writes may wait for one (default 5000 ms) and how often a refused one is retried (default 1000 ms). */
  readonly stage?: Pick<StageGateOptions, 'timeoutMs' | 'retryMs' | 'drainQueueLimit'>;
  /** Shadow reads. Default sample rate: DUALWRITE_SHADOW_SAMPLE_RATE or 0. */
  readonly shadow?: ShadowOptions;
  readonly context?: WriteContext;
  readonly logger?: Pick<Console, 'info' | 'warn' | 'error'>;
  /**
   * The background verifier. Default: runs every DUALWRITE_VERIFY_INTERVAL_MS (300000; 0
   * disables), repairs when DUALWRITE_REPAIR=true, locked by Redis when REDIS_URL is set.
   */
  readonly verifier?: Partial<Omit<VerifierLoopOptions, 'db' | 'targets' | 'metrics'>> & { readonly enabled?: boolean };
}

/** Everything an API needs to embed dualwrite: the wrapped stores and their machinery. */
export interface DualWriteRuntime {
  /** Drop-in GraphStore and AgentTaskStore for the API. */
  readonly graph: GraphStore;
  readonly tasks: AgentTaskStore;
  readonly memory: { readonly graph: MemoryGraphStore; readonly tasks: MemoryAgentTaskStore };
  readonly postgres: { readonly graph: PostgresGraphStore; readonly tasks: PostgresAgentTaskStore };
  readonly db: SqlExecutor;
  /** The flags operators set; `stage` is what is in force. */
  readonly flags: FlagState;
  /**
   * Sets the stage (and read percentage) in the flags file, where it outlives a restart, and
   * returns the flags in force (the safety rules may refuse them: see `refused`). Bad values
   * are a ValidationError naming the field. Throws FlagSourceConflictError when Unleash owns
   * the flags (change them there) or the caller passed its own flags to openDualWrite.
   */
  setFlags(requested: { readonly stage: unknown; readonly readPercent?: unknown }, change: { readonly reason: string; readonly principal: string }): Promise<EffectiveFlags>;
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
  /**
   * Brings PostgreSQL level with memory after memory-only ran (when PostgreSQL-reading
   * stages are refused): backfills, replays the outbox, verifies, repairs what differs and, once a verification
   * comes back clean, allows read-shift and the PostgreSQL stages again. Run it in
   * dual-write; returns the backfill's report and the last verification's.
   */
  resyncPostgres(options?: Pick<BackfillOptions, 'batchSize' | 'onProgress' | 'signal'>): Promise<{ readonly backfill: BackfillReport; readonly verify: VerifyReport }>;
  /**
   * Replaces memory's contents with PostgreSQL's, for a rollback after postgres-only.
   * Run it in postgres-primary (memory is being mirrored again), then roll back.
   */
  resyncMemory(): Promise<void>;
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

  const db = options.db ?? (await openDatabase(config.database)).db;
  if (!options.db) opened.push(() => db.close());
  if (options.lease !== false) {
    const lease = new RuntimeLease(db, { ...options.lease, logger });
    await lease.acquire();
    opened.push(() => lease.release());
  }
  metrics.source('pool', () => db.poolStats());

  const fromEnv = options.flags ? undefined : openFlags(config.flags, { metrics, logger });
  const flags = options.flags instanceof FlagState ? options.flags : options.flags ? options.flags({ metrics, logger }) : fromEnv!.flags;
  if (!(options.flags instanceof FlagState)) opened.push(() => flags.close());

  let outbox = options.outbox;
  if (!outbox) {
    if (config.redisUrl) {
      const redisOutbox = new RedisOutbox(await redisClient(), {
        // What was lost was still to be mirrored: the pending set is rebuilt from what the
        // stream holds, and a verification finds (and, with DUALWRITE_REPAIR, repairs) the rest.
        onLoss: (detail) => {
          metrics.outboxLost.inc();
          logger.error(`dualwrite: the Redis outbox lost entries (${detail}); rebuilding its pending set and verifying both sides`);
          void mirror
            .loadJournaled()
            .then(() => verifier.runOnce())
            .catch((error: unknown) => logger.warn(`dualwrite: verification after the outbox loss failed: ${errorText(error)}`));
        },
      });
      await redisOutbox.refresh();
      if ((await redisOutbox.persistent()) === false) {
        logger.warn(`dualwrite: Redis at ${redactUrl(config.redisUrl)} keeps no data across a restart (appendonly no, save ""): a restart would lose the outbox`);
      }
      // While Redis cannot be written, failures are journaled locally rather than waiting on it.
      outbox = new FallbackOutbox(redisOutbox, await FileOutbox.open({ path: config.outboxPath }), { logger, breaker: options.mirror?.breaker });
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
    const path = options.intentLog?.path ?? config.intentLogPath ?? (box instanceof FileOutbox ? join(dirname(box.path), 'intents.jsonl') : undefined);
    const { log, recovered } = await IntentLog.open(box, { path });
    opened.push(() => log.close());
    intentLog = log;
    if (recovered > 0) logger.warn(`dualwrite: ${recovered} acknowledged async mirror writes of a process that stopped before mirroring them were moved to the outbox for replay`);
  }

  const memory = options.memory ?? { graph: new MemoryGraphStore(), tasks: new MemoryAgentTaskStore() };
  const postgres = { graph: new PostgresGraphStore(db), tasks: new PostgresAgentTaskStore(db) };
  const targets: Record<string, Record<Side, object>> = {
    graph: { memory: memory.graph, postgres: postgres.graph },
    tasks: { memory: memory.tasks, postgres: postgres.tasks },
  };
  const resolveIn = (stores: Record<string, Record<Side, object>>) => (store: string, side: Side) => {
    const target = stores[store]?.[side];
    if (!target) throw new TypeError(`no store named ${store}`);
    return target;
  };
  // A batch of mirror writes to PostgreSQL runs in one transaction, through stores bound to it.
  const postgresBatch = (work: (resolve: (store: string, side: Side) => object) => Promise<void>) =>
    db.transaction(async (tx) => {
      const bound = new TransactionExecutor(tx, db.engine);
      await work(resolveIn({ graph: { ...targets.graph!, postgres: new PostgresGraphStore(bound) }, tasks: { ...targets.tasks!, postgres: new PostgresAgentTaskStore(bound) } }));
    });
  const mirror = new Mirror(resolveIn(targets), {
    mode: config.mirrorMode,
    ...options.mirror,
    transactions: { postgres: postgresBatch },
    fence: (op) => gate.fence(op),
    intentLog,
    entityOrder: { graph: entityNames(GRAPH_ENTITIES), tasks: entityNames(AGENT_TASK_ENTITIES) },
    outbox: box,
    metrics,
    logger,
  });
  await mirror.loadJournaled();
  const replayer = new OutboxReplayer(box, mirror, { ...options.replayer, metrics, logger });
  // Flags built here from the environment are saved as they come into force, for a restart with the flag service down.
  const lastFlagsPath = options.flags ? undefined : config.flags.lastFlagsPath;
  let saving = Promise.resolve();
  const saveApplied = (applied: EffectiveFlags) => {
    saving = saving.then(() => saveLastKnownFlags(lastFlagsPath!, applied)).catch((error: unknown) => logger.warn(`dualwrite: could not save the flags in force to ${lastFlagsPath}: ${errorText(error)}`));
  };
  const gate: StageGate = new StageGate({ ...options.stage, flags, mirror, drainFor: (side) => replayer.drainFor(side), metrics, logger, onApplied: lastFlagsPath ? saveApplied : undefined });
  opened.push(async () => {
    await gate.stop();
    await saving;
  });
  await gate.open();
  replayer.start();
  const shadow = new ShadowReads({ sampleRate: config.shadowSampleRate, ...options.shadow }, metrics);
  const common = { gate, mirror, metrics, shadow, context: options.context };
  const verifierMetrics = new VerifierMetrics(registry);
  const verifierOptions = options.verifier ?? {};
  const verifyTargets = [graphTarget(memory.graph, postgres.graph), taskTarget(memory.tasks, postgres.tasks)];
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
    ...verifierOptions,
  });
  if (verifierOptions.enabled !== false && config.verifyIntervalMs !== 0) verifier.start();

  return {
    graph: createDualWriteStore<GraphStore>({ name: 'graph', description: GRAPH_STORE_METHODS, memory: memory.graph, postgres: postgres.graph, ...common }),
    tasks: createDualWriteStore<AgentTaskStore>({ name: 'tasks', description: AGENT_TASK_STORE_METHODS, memory: memory.tasks, postgres: postgres.tasks, ...common }),
    memory,
    postgres,
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
    async setFlags(requested, change) {
      if (!fromEnv) throw new FlagSourceConflictError('the flags were given to openDualWrite by the application; change them there');
      if (flags.current.source === 'unleash') throw new FlagSourceConflictError('the flags come from Unleash: change toggle dualwrite.stage (and the rollout of dualwrite.read-from-postgres) there');
      if (requested.stage === undefined || requested.stage === '') throw new ValidationError('stage', 'required');
      const stage = validated('stage', () => parseStage(requested.stage, 'stage'));
      const readPercent = validated('readPercent', () => parsePercent(requested.readPercent ?? 0, 'readPercent'));
      if (change.reason.trim() === '') throw new ValidationError('reason', 'say why the stage changes');
      await fromEnv.flagsFile.write({ stage, readPercent, rolloutGroup: flags.current.rolloutGroup }, { ...change, changedAt: new Date().toISOString() });
      return flags.current;
    },
    async resyncPostgres(backfillOptions = {}) {
      const stage = gate.current.stage;
      if (stage !== 'dual-write') throw new Error(`resyncPostgres runs in dual-write (memory authoritative, PostgreSQL mirrored), not in ${stage}`);
      // The backfill first, so journaled copies find the rows they reference; then the
      // journal, whose copies are older than what the repair below writes.
      const filled = await backfill({ ...backfillOptions, source: memory, db, restart: true });
      await mirror.settled();
      const stuck = await replayer.drainFor('postgres');
      if (stuck) throw new Error(`resyncPostgres: ${stuck}`);
      const options = { ...verifierOptions, authoritative: 'memory' as const, settle: () => mirror.settled(), maxReported: Number.MAX_SAFE_INTEGER };
      let report = await verify(db, verifyTargets, options);
      if (!report.consistent) {
        await repair(report.differences, { authoritative: 'memory', db, targets: verifyTargets, metrics: verifierMetrics });
        report = await verify(db, verifyTargets, options);
      }
      report = { ...report, differences: report.differences.slice(0, verifierOptions.maxReported ?? 1000) };
      if (report.consistent) flags.postgresResynced();
      return { backfill: filled, verify: report };
    },
    async resyncMemory() {
      const stage = gate.current.stage;
      if (stage !== 'postgres-primary') throw new Error(`resyncMemory runs in postgres-primary (PostgreSQL authoritative, memory mirrored), not in ${stage}`);
      // The copy runs while writes go on; a mirror write of a record may land before the
      // copy's older version of it, so those records are copied again with writes held.
      const touched = new Map<string, RecordState>();
      const stopObserving = mirror.observe((op) => {
        for (const { entity, key } of op.records) touched.set(JSON.stringify([op.store, entity, key]), { store: op.store, entity, key });
      });
      try {
        await copyAll(entityNames(GRAPH_ENTITIES), postgres.graph, memory.graph);
        await copyAll(entityNames(AGENT_TASK_ENTITIES), postgres.tasks, memory.tasks);
      } finally {
        stopObserving();
      }
      await gate.exclusive(async () => {
        for (const { store, entity, key } of touched.values()) {
          const record = await (targets[store]!.postgres as RecordPort<Record<string, object>>).getRecord(entity, key);
          const into = targets[store]!.memory as RecordPort<Record<string, object>>;
          await (record ? into.putRecord(entity, record) : into.deleteRecord(entity, key));
        }
      });
      flags.memoryResynced();
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

/** Makes `to` hold exactly `from`'s records: clears it, then copies entity by entity in dependency order. */
async function copyAll<Records extends object>(
  entities: (keyof Records & string)[],
  from: RecordPort<Records>,
  to: RecordPort<Records> & { clear(): void },
): Promise<void> {
  to.clear();
  for (const entity of entities) {
    for await (const page of scanAll(from, entity)) for (const record of page) await to.putRecord(entity, record);
  }
}
