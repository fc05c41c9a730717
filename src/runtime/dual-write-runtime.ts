import type { EffectiveFlags, FlagState } from '../../flags/flag-state.js';
import type { BackfillOptions, BackfillReport } from '../../verifier/backfill.js';
import type { UndoResult } from '../../verifier/repair.js';
import type { VerifierLoop } from '../../verifier/verifier-loop.js';
import type { VerifierMetrics } from '../../verifier/metrics.js';
import type { VerifyReport } from '../../verifier/verify.js';
import type { DualWriteMetrics } from '../dualwrite/metrics.js';
import type { Mirror } from '../dualwrite/mirror.js';
import type { Outbox } from '../dualwrite/outbox.js';
import type { OutboxReplayer, ReplayRound } from '../dualwrite/replayer.js';
import type { ShadowReads } from '../dualwrite/shadow.js';
import type { StageGate } from '../dualwrite/stage-gate.js';
import type { MemoryAgentTaskStore } from '../stores/agent-task/memory-agent-task-store.js';
import type { MemoryGraphStore } from '../stores/graph/memory-graph-store.js';
import type { AuditLog } from '../postgres/runtime-state/audit-log.js';
import type { LineageState } from '../postgres/runtime-state/lineage-store.js';
import type { PostgresAgentTaskStore } from '../stores/agent-task/postgres-agent-task-store.js';
import type { PostgresGraphStore } from '../stores/graph/postgres-graph-store.js';
import type { SqlExecutor } from '../postgres/sql-executor.js';
import type { AgentTaskStore } from '../stores/agent-task/agent-task-store.js';
import type { GraphStore } from '../stores/graph/graph-store.js';
import type { TaskSchedulerStore } from '../stores/task-scheduler/task-scheduler-store.js';
import type { MemoryStoreOf, PostgresStoreOf, StoreDefinition } from '../stores/store-definition.js';
import type { AutoRetreat } from './auto-retreat.js';
import type { Convergence } from './convergence.js';
import type { GateVerdict } from './evidence-gate.js';
import type { LossRecovery } from './loss-recovery.js';
import type { MemoryAtStart, RebuildReport } from './memory-rebuild.js';
import type { OperatorRequest } from './operator-request.js';
import type { RollbackSafety } from './rollback-safety.js';

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
   * dual-write; returns the backfill's report and the last verification's. Its verifications
   * and repair are the verifier loop's (`verifier.lastReport`, its metrics, the audit trail).
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
   * in postgres-primary (memory is being mirrored again), then roll back. Audited; its
   * verification is the verifier loop's, as resyncPostgres's are.
   */
  resyncMemory(options?: { readonly request?: OperatorRequest }): Promise<{ readonly verify: VerifyReport }>;
  /** Waits for in-flight mirror writes, stops the replayer and closes what it opened. */
  close(): Promise<void>;
}
