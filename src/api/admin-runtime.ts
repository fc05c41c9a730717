import type { Registry } from 'prom-client';
import type { EffectiveFlags } from '../ports/flags.js';
import type { RepairResult, UndoResult } from '../../verifier/repair.js';
import type { BackfillReport } from '../../verifier/backfill.js';
import type { VerifyReport } from '../../verifier/verify.js';
import type { HeldEntry } from '../dualwrite/held-entries.js';
import type { MirrorMode } from '../dualwrite/mirror.js';
import type { ReplayRound } from '../dualwrite/replayer.js';
import type { GateState } from '../dualwrite/stage-gate.js';
import type { Stage } from '../ports/stage.js';
import type { AuditAction, AuditEvent } from '../postgres/runtime-state/audit-log.js';
import type { TaskExecution } from '../stores/task-scheduler/task-scheduler-model.js';
import type { ExecutionQuery } from '../stores/task-scheduler/task-scheduler-store.js';
import type { PoolStats } from '../ports/database-health.js';
import type { GateVerdict } from '../runtime/evidence-gate.js';
import type { RollbackSafety } from '../runtime/rollback-safety.js';
import type { Convergence } from '../runtime/convergence.js';
import type { OperatorRequest } from '../runtime/operator-request.js';

/**
 * The part of the DualWriteRuntime (openDualWrite) that the health, metrics and admin
 * routes use, so the API depends on this small port rather than on the whole runtime.
 * The real runtime satisfies it as it is (src/api/serve.ts passes one).
 */
export interface AdminRuntime {
  /** The flags operators requested, after the safety rules (`refused` says when those overrode them), and their source. */
  readonly flags: { readonly current: EffectiveFlags };
  /** The stage in force (`current`), the last transition's outcome (`state`), and `settled()` once a change is in force or refused. */
  readonly stage: { readonly current: EffectiveFlags; readonly state: GateState; settled(): Promise<GateState> };
  /**
   * Requests a stage (and read percentage) and returns the flags requested now. Throws
   * FlagSourceConflictError when another source owns the flags (Unleash).
   */
  setFlags(
    requested: { readonly stage: Stage; readonly readPercent?: number },
    change: OperatorRequest & { readonly force?: boolean; readonly allowUnavailable?: boolean },
  ): Promise<EffectiveFlags>;
  /** The evidence gate's verdict on moving to `requested` now. */
  judge(requested: { readonly stage: Stage; readonly readPercent?: number }): Promise<GateVerdict>;
  /** A verification now (repairing when asked, deleting at most allowDeletes rows), audited as the operator's; undefined when skipped. */
  verifyNow(
    request: OperatorRequest & { readonly repair?: boolean; readonly allowDeletes?: number },
  ): Promise<VerifyReport | undefined>;
  /** Puts back what a repair run changed, audited. */
  undoRepair(runId: string, request: OperatorRequest): Promise<UndoResult>;
  /** Backfills PostgreSQL from memory, replays the outbox, verifies and repairs (in dual-write), audited. */
  resyncPostgres(options: {
    readonly request: OperatorRequest;
    readonly allowDeletes?: number;
  }): Promise<{ readonly backfill: BackfillReport; readonly verify: VerifyReport }>;
  /** Rebuilds memory from PostgreSQL and verifies (in postgres-primary), audited. */
  resyncMemory(options: { readonly request: OperatorRequest }): Promise<{ readonly verify: VerifyReport }>;
  /** One outbox replay round now, audited. */
  replayOutbox(request: OperatorRequest): Promise<ReplayRound>;
  /** `held`: outbox entries the target refused for their data, with why (absent where a runtime does not say). */
  readonly mirror: { readonly mode: MirrorMode; depth(): number; readonly held?: { list(): readonly HeldEntry[] } };
  readonly outbox: { stats(): { depth: number; oldestAgeSeconds: number } };
  /** `lastReport` and `lastRepairs` are the last completed verification's. */
  readonly verifier: {
    readonly lastReport: VerifyReport | undefined;
    readonly lastRepairs: readonly RepairResult[];
    readonly lastRepairRunId: string | undefined;
  };
  /** Whether rolling back now would lose anything (the rollback rehearsal). */
  rollbackSafety(): RollbackSafety;
  /** Whether the sides are known to be equal now (outbox empty, nothing unverified, verified since the last outage). */
  convergence(): Convergence;
  /** The audit trail, newest first. */
  readonly audit: {
    list(query?: {
      readonly limit?: number;
      readonly action?: AuditAction;
      readonly resourceType?: string;
    }): Promise<AuditEvent[]>;
  };
  /** The background jobs' executions, newest first. */
  readonly jobs: { listExecutions(query?: ExecutionQuery): Promise<TaskExecution[]> };
  readonly db: { query(text: string): Promise<unknown[]>; poolStats(): PoolStats };
  /** The registry /metrics renders, and the status page's history samples (getSingleMetric). */
  readonly metrics: { readonly registry: Pick<Registry, 'contentType' | 'metrics' | 'getSingleMetric'> };
}
