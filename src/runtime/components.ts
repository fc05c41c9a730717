import { Registry } from 'prom-client';
import { FlagState } from '../../flags/flag-state.js';
import type { FileFlagSource } from '../../flags/file-flags.js';
import { openFlags } from '../../flags/open-flags.js';
import { RedisLock } from '../../verifier/lock.js';
import { VerifierMetrics } from '../../verifier/metrics.js';
import { VerifierLoop } from '../../verifier/verifier-loop.js';
import { verifyTarget, type AnyTarget } from '../../verifier/verify-target.js';
import type { WriteContext } from '../domain/write-context.js';
import { DualWriteMetrics } from '../dualwrite/metrics.js';
import { Mirror } from '../dualwrite/mirror.js';
import type { Outbox } from '../dualwrite/outbox.js';
import type { OutboxReplayer } from '../dualwrite/replayer.js';
import { ShadowReads } from '../dualwrite/shadow.js';
import { StageGate } from '../dualwrite/stage-gate.js';
import { otherSide, STAGE_POLICIES } from '../ports/stage.js';
import { AuditLog } from '../postgres/runtime-state/audit-log.js';
import { LineageStore } from '../postgres/runtime-state/lineage-store.js';
import type { SqlExecutor } from '../postgres/sql-executor.js';
import { BUILT_IN_STORES } from '../stores/built-in-stores.js';
import { storeEntities, type AnyStoreDefinition } from '../stores/store-definition.js';
import { startBackgroundJobs, type BackgroundJobs } from './background-jobs.js';
import type { Closers } from './closers.js';
import { loadConfig, type DualWriteConfig } from './config.js';
import { LineageRecorder } from './lineage-recorder.js';
import { LossRecovery } from './loss-recovery.js';
import type { MemoryAtStart, RebuildReport } from './memory-rebuild.js';
import { prepareMemory } from './prepare-memory.js';
import { RecordedOutboxReplayer } from './recorded-replayer.js';
import { lazyRedis } from './redis-connection.js';
import { RolloutAudit, type ChangeRequest } from './rollout-audit.js';
import { openRuntimeDatabase, serverHealthWithin, takeLease } from './runtime-database.js';
import type { DualWriteRuntimeOptions } from './runtime-options.js';
import { openIntentLog, openOutbox } from './runtime-outbox.js';
import { StageChangeLog } from './stage-change-log.js';
import { memorySides, postgresBatches, sideResolver, storeSides, type Sides } from './store-sides.js';

/** Everything openDualWrite wires together, before the use cases and the stores the application calls. */
export interface Components {
  readonly config: DualWriteConfig;
  readonly definitions: readonly AnyStoreDefinition[];
  readonly logger: Pick<Console, 'info' | 'warn' | 'error'>;
  readonly registry: Registry;
  readonly metrics: DualWriteMetrics;
  readonly db: SqlExecutor;
  readonly jobs: BackgroundJobs;
  readonly auditLog: AuditLog;
  readonly audit: RolloutAudit;
  readonly flags: FlagState;
  /** The flags file this process writes an operator's change to; undefined when the application gave the flags. */
  readonly flagsFile: FileFlagSource | undefined;
  readonly outbox: Outbox;
  /** Each store's two sides, by store name. */
  readonly sides: Readonly<Record<string, Sides>>;
  readonly mirror: Mirror;
  readonly replayer: OutboxReplayer;
  readonly lineage: LineageRecorder;
  readonly stageChanges: StageChangeLog;
  readonly gate: StageGate;
  /** What this process did with its memory at start. */
  readonly atStart: MemoryAtStart & { readonly rebuilt?: RebuildReport };
  readonly shadow: ShadowReads;
  readonly verifierMetrics: VerifierMetrics;
  readonly verifyTargets: readonly AnyTarget[];
  readonly verifier: VerifierLoop;
  readonly recovery: LossRecovery;
  /** How the stores decide the ids and times their callers leave out. Default: random ids, the system clock. */
  readonly context: WriteContext | undefined;
}

/** Components that call others built after them: each is set once built, and read only when called. */
interface LateBound {
  gate?: StageGate;
  mirror?: Mirror;
  recovery?: LossRecovery;
}

/**
 * Wires the runtime's components in dependency order; what is opened is added to `closers`.
 * The stage in force is settled and memory made whole before this returns.
 */
export async function assembleComponents(options: DualWriteRuntimeOptions, closers: Closers): Promise<Components> {
  const base = await openBase(options, closers);
  const later: LateBound = {};
  const losses = new OutboxLossRouter(later);
  const mirroring = await openMirroring(base, options, later, losses, closers);
  const staging = await openStaging(base, mirroring, options, later, closers);
  await staging.gate.open();
  // Before the runtime is handed out, so no write or read meets a memory that is not yet whole.
  const atStart = await prepareMemory(staging.lineage, base.flags, options.memoryGeneration, {
    definitions: base.definitions,
    sides: mirroring.sides,
    replayer: mirroring.replayer,
    logger: base.logger,
  });
  await staging.gate.settled();
  await staging.lineage.start(staging.gate.current.stage);
  mirroring.replayer.start();
  const verification = await openVerification({ ...base, ...mirroring, ...staging }, options);
  const recovery = startRecovery({ ...base, ...mirroring, ...staging, ...verification }, options, closers);
  later.recovery = recovery;
  losses.flush();
  const { config, definitions, logger, registry, metrics, db, jobs, auditLog, audit, flags, flagsFile } = base;
  return {
    config,
    definitions,
    logger,
    registry,
    metrics,
    db,
    jobs,
    auditLog,
    audit,
    flags,
    flagsFile,
    ...mirroring,
    ...staging,
    atStart,
    ...verification,
    recovery,
    context: options.context,
  };
}

/** The configuration, stores' memory sides, metrics, database, lease, background jobs, audit trail and flags. */
async function openBase(options: DualWriteRuntimeOptions, closers: Closers) {
  const env = options.env ?? process.env;
  const config = options.config ?? loadConfig(env);
  const definitions = options.stores ?? BUILT_IN_STORES;
  const memory = memorySides(definitions, options.memory ?? {});
  const logger = options.logger ?? console;
  const registry = options.registry ?? new Registry();
  const metrics = new DualWriteMetrics(registry);
  const redis = lazyRedis(config.redisUrl, logger, closers);
  const db = await openRuntimeDatabase(options.db, config, env, closers);
  const holder = await takeLease(db, options.lease, config, logger, closers);
  const jobs = await startBackgroundJobs(db, holder, options, config, logger, closers);
  metrics.source('pool', () => db.poolStats());
  // Under a 1 s scrape interval's default timeout, so a silent PostgreSQL reads as down rather than failing the scrape.
  metrics.source('server', () => serverHealthWithin(db, 900));
  metrics.startSeries(definitions.map((definition) => definition.name));
  const auditLog = new AuditLog(db);
  const audit = new RolloutAudit(auditLog, logger);
  closers.push(() => audit.close());
  const { flags, flagsFile } = openFlagState(options, config, { metrics, logger }, closers);
  return {
    config,
    definitions,
    memory,
    logger,
    registry,
    metrics,
    redis,
    db,
    holder,
    jobs,
    auditLog,
    audit,
    flags,
    flagsFile,
  };
}

type Base = Awaited<ReturnType<typeof openBase>>;

/** The flags: the application's, else from the environment (with the flags file an operator's change is written to). */
function openFlagState(
  options: DualWriteRuntimeOptions,
  config: DualWriteConfig,
  recorders: { readonly metrics: DualWriteMetrics; readonly logger: Pick<Console, 'warn'> },
  closers: Closers,
): { readonly flags: FlagState; readonly flagsFile: FileFlagSource | undefined } {
  if (options.flags instanceof FlagState) return { flags: options.flags, flagsFile: undefined };
  const fromEnv = options.flags ? undefined : openFlags(config.flags, recorders);
  const flags = options.flags ? options.flags(recorders) : fromEnv!.flags;
  closers.push(() => flags.close());
  return { flags, flagsFile: fromEnv?.flagsFile };
}

/** The outbox, the intent log, each store's sides, the mirror between them and the outbox's replayer. */
async function openMirroring(
  base: Base,
  options: DualWriteRuntimeOptions,
  later: LateBound,
  losses: OutboxLossRouter,
  closers: Closers,
) {
  const { config, definitions, db, metrics, logger } = base;
  const loss = {
    rebuildPending: async () => later.mirror?.loadJournaled(),
    lost: (detail: string) => losses.lost(detail),
  };
  const outbox = await openOutbox(options, config, base.redis, loss, { metrics, logger }, closers);
  metrics.source('outbox', () => outbox.stats());
  const intentLog = await openIntentLog(options, config, outbox, logger, closers);
  const sides = storeSides(definitions, base.memory, db);
  const mirror = new Mirror(sideResolver(sides), {
    mode: config.mirrorMode,
    ...options.mirror,
    breaker: {
      ...options.mirror?.breaker,
      onChange: (state, outageMs) => {
        options.mirror?.breaker?.onChange?.(state, outageMs);
        // A side that answers again is the moment to prove it equal, rather than the next retry.
        if (state === 'closed') void later.recovery?.attempt();
      },
    },
    // A batch of mirror writes to PostgreSQL runs in one transaction, through stores bound to it.
    transactions: { postgres: postgresBatches(definitions, sides, db) },
    fence: (op) => later.gate!.fence(op),
    intentLog,
    entityOrder: Object.fromEntries(definitions.map((definition) => [definition.name, storeEntities(definition)])),
    outbox,
    metrics,
    logger,
  });
  later.mirror = mirror;
  await mirror.loadJournaled();
  const replayer = new RecordedOutboxReplayer(
    outbox,
    mirror,
    {
      onDeadLetter: (entry, reason) => void base.audit.deadLettered(entry, reason),
      ...options.replayer,
      metrics,
      logger,
    },
    { runner: base.jobs.runner, task: base.jobs.tasks.replay, logger },
  );
  return { outbox, sides, mirror, replayer };
}

type Mirroring = Awaited<ReturnType<typeof openMirroring>>;

/** The lineage, the log of stage changes and the stage gate that applies them. */
async function openStaging(
  base: Base,
  mirroring: Mirroring,
  options: DualWriteRuntimeOptions,
  later: LateBound,
  closers: Closers,
) {
  const { config, flags, metrics, logger } = base;
  const lineage = new LineageRecorder(new LineageStore(base.db), base.holder, logger);
  // Flags built here from the environment are saved as they come into force, for a restart with the flag service down.
  const lastFlagsPath = options.flags ? undefined : config.flags.lastFlagsPath;
  const stageChanges = new StageChangeLog(lineage, base.audit, lastFlagsPath, logger);
  const gate = new StageGate({
    ...options.stage,
    flags,
    mirror: mirroring.mirror,
    drainFor: (side) => mirroring.replayer.drainFor(side),
    metrics,
    logger,
    onApplied: stageChanges.applied,
  });
  later.gate = gate;
  closers.push(async () => {
    await gate.stop();
    await stageChanges.settled();
    await lineage.close();
  });
  return { lineage, stageChanges, gate };
}

type Staging = Awaited<ReturnType<typeof openStaging>>;

/** Shadow reads and the background verifier (started unless disabled), its targets and metrics. */
async function openVerification(built: Base & Mirroring & Staging, options: DualWriteRuntimeOptions) {
  const { config, definitions, sides, registry, metrics, mirror, gate, audit } = built;
  const shadow = new ShadowReads({ sampleRate: config.shadowSampleRate, ...options.shadow }, metrics);
  const verifierMetrics = new VerifierMetrics(registry);
  const verifierOptions = options.verifier ?? {};
  const verifyTargets = definitions.map((definition) =>
    verifyTarget(definition, sides[definition.name]!.memory, sides[definition.name]!.postgres),
  );
  const verifier: VerifierLoop = new VerifierLoop({
    db: built.db,
    targets: verifyTargets,
    metrics: verifierMetrics,
    intervalMs: config.verifyIntervalMs,
    repair: config.repair,
    lock: config.redisUrl ? new RedisLock(await built.redis()) : undefined,
    // Writes in flight when a difference was seen settle before it is re-checked.
    settle: () => mirror.settled(),
    // Only stages that write both sides have two sides to compare.
    stage: () => {
      const policy = STAGE_POLICIES[gate.current.stage];
      return policy.mirror ? { authoritative: policy.authoritative } : null;
    },
    logger: built.logger,
    jobs: { runner: built.jobs.runner, task: built.jobs.tasks.verifier },
    ...verifierOptions,
    // A run an operator asked for names them (the requester is their ChangeRequest); the schedule's names the process.
    onReport: (report, repairs, requester) => {
      verifierOptions.onReport?.(report, repairs, requester);
      void audit.verified(report, repairs, requester as ChangeRequest | undefined, verifier.lastRepairRunId);
    },
  });
  if (verifierOptions.enabled !== false && config.verifyIntervalMs !== 0) verifier.start();
  return { shadow, verifierMetrics, verifyTargets, verifier };
}

/** Proving the sides equal after an outbox loss, resumed where the lineage says a side is still unverified. */
function startRecovery(
  built: Base & Mirroring & Staging & Awaited<ReturnType<typeof openVerification>>,
  options: DualWriteRuntimeOptions,
  closers: Closers,
): LossRecovery {
  const { replayer, verifier, lineage, gate, flags, metrics } = built;
  const recovery = new LossRecovery({
    drainFor: (side) => replayer.drainFor(side),
    verify: (repair) => verifier.runOnce({ repair, trigger: { type: 'manual', by: 'loss-recovery' } }),
    record: (unverified) => lineage.unverified(unverified, gate.current.stage),
    onChange: (side, unverified) => flags.unverified(side, unverified),
    logger: built.logger,
    ...options.recovery,
  });
  closers.push(async () => recovery.stop());
  metrics.source('unverified', () => recovery.current?.side);
  if (lineage.last?.unverified) recovery.resume(lineage.last.unverified);
  return recovery;
}

/**
 * Routes outbox losses to the loss recovery: the side the lost entries were for (the mirrored
 * side of the stage in force) is unverified. A loss noticed before the recovery exists (the
 * outbox is read at start) waits for it.
 */
class OutboxLossRouter {
  private readonly early: string[] = [];

  constructor(private readonly later: LateBound) {}

  lost(detail: string): void {
    const { recovery, gate } = this.later;
    if (!recovery || !gate) return void this.early.push(detail);
    const policy = STAGE_POLICIES[gate.current.stage];
    recovery.lost(policy.mirror ?? otherSide(policy.authoritative), detail);
  }

  /** Hands the losses noticed so far to the recovery, now that it exists. */
  flush(): void {
    for (const detail of this.early.splice(0)) this.lost(detail);
  }
}
