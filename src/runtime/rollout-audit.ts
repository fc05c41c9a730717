import { totalPersistentDifferences, type VerifyReport } from '../../verifier/verify.js';
import type { BackfillReport } from '../../verifier/backfill.js';
import type { RepairResult, UndoResult } from '../../verifier/repair.js';
import { errorText } from '../domain/error-text.js';
import type { OutboxEntry } from '../dualwrite/outbox.js';
import type { ReplayRound } from '../dualwrite/replayer.js';
import type { EffectiveFlags, MigrationFlags } from '../ports/flags.js';
import {
  PROCESS_PRINCIPAL,
  type AuditEvent,
  type AuditEventInput,
  type AuditLog,
  type Principal,
} from '../postgres/runtime-state/audit-log.js';
import type { GateVerdict } from './evidence-gate.js';

/** Who asked for a change and why (an operator through the admin API or CLI). */
export interface ChangeRequest {
  readonly principal: Principal;
  readonly reason: string;
  readonly requestId?: string;
  readonly clientIp?: string;
}

/** Options of RolloutAudit. */
export interface RolloutAuditOptions {
  /** How often events PostgreSQL did not take are tried again. Default 5000 ms. */
  readonly retryMs?: number;
  /** Events kept for retry at most; older ones are dropped, loudly. Default 10000. */
  readonly maxPending?: number;
}

/**
 * The rollout's events as audit entries: one place decides what each looks like. Writing
 * an entry never fails the operation it records (the operation already happened). An entry
 * PostgreSQL cannot take now (an outage is when retreats and refusals happen) is kept, with
 * its id and time already decided, and inserted when PostgreSQL answers again.
 */
export class RolloutAudit {
  private readonly pending: AuditEvent[] = [];
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;
  /** Set while PostgreSQL does not take events: said once when it starts, not at every retry. */
  private failing = false;

  constructor(
    private readonly log: AuditLog,
    private readonly logger: Pick<Console, 'warn'>,
    private readonly options: RolloutAuditOptions = {},
  ) {
    this.timer = setInterval(() => void this.flush(), options.retryMs ?? 5000);
    this.timer.unref();
  }

  /** Tries the kept events once more, then stops retrying. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  /** Events waiting for PostgreSQL. */
  get waiting(): number {
    return this.pending.length;
  }

  /**
   * A stage change in force: by `request` when an operator (or the automatic retreat, as
   * action stage.retreat) asked for it, else seen by this process (Unleash, a file edit, env).
   */
  stageChanged(
    from: EffectiveFlags,
    to: EffectiveFlags,
    request: ChangeRequest | undefined,
    action: 'stage.change' | 'stage.retreat' = 'stage.change',
  ): Promise<void> {
    return this.write({
      action,
      resourceType: 'stage',
      resourceId: 'dualwrite.stage',
      principal: request?.principal ?? PROCESS_PRINCIPAL,
      from: describe(from),
      to: describe(to),
      reason: request?.reason ?? `flags changed in ${to.source}`,
      ...requestFields(request),
      before: from,
      after: to,
    });
  }

  /** An advance the evidence gate refused, made anyway with --force. */
  forced(from: MigrationFlags, to: MigrationFlags, verdict: GateVerdict, request: ChangeRequest): Promise<void> {
    return this.write({
      action: 'stage.forced',
      resourceType: 'stage',
      resourceId: 'dualwrite.stage',
      principal: request.principal,
      from: describe(from),
      to: describe(to),
      reason: request.reason,
      ...requestFields(request),
      data: { refusal: verdict.refusal, checks: verdict.checks },
    });
  }

  /** A completed verification, and the repairs it made. */
  async verified(
    report: VerifyReport,
    repairs: readonly RepairResult[],
    request: ChangeRequest | undefined,
    repairRunId?: string,
  ): Promise<void> {
    const persistent = totalPersistentDifferences(report);
    await this.write({
      action: 'verify.run',
      resourceType: 'verification',
      resourceId: report.startedAt,
      principal: request?.principal ?? PROCESS_PRINCIPAL,
      reason: request?.reason ?? 'background verification',
      ...requestFields(request),
      data: {
        consistent: report.consistent,
        persistentDifferences: persistent,
        seconds: report.seconds,
        incomplete: report.incomplete,
      },
    });
    if (repairs.length === 0) return;
    const outcomes: Record<string, number> = {};
    for (const repair of repairs) outcomes[repair.outcome] = (outcomes[repair.outcome] ?? 0) + 1;
    await this.write({
      action: 'repair',
      resourceType: 'verification',
      resourceId: report.startedAt,
      principal: request?.principal ?? PROCESS_PRINCIPAL,
      reason: request?.reason ?? 'repair after the background verification',
      ...requestFields(request),
      data: { target: repairs[0]!.target, outcomes, runId: repairRunId },
    });
  }

  /** An operator undid a repair run. */
  repairUndone(undo: UndoResult, of: string, request: ChangeRequest): Promise<void> {
    return this.write({
      action: 'repair.undo',
      resourceType: 'repair',
      resourceId: of,
      principal: request.principal,
      reason: request.reason,
      ...requestFields(request),
      data: { ...undo },
    });
  }

  /** Memory was rebuilt from PostgreSQL (after postgres-only), and verified. */
  memoryResynced(report: VerifyReport, request: ChangeRequest | undefined): Promise<void> {
    return this.write({
      action: 'resync.memory',
      resourceType: 'verification',
      resourceId: report.startedAt,
      principal: request?.principal ?? PROCESS_PRINCIPAL,
      reason: request?.reason ?? 'resync memory',
      ...requestFields(request),
      data: {
        consistent: report.consistent,
        persistentDifferences: totalPersistentDifferences(report),
      },
    });
  }

  backfilled(report: BackfillReport, request: ChangeRequest | undefined): Promise<void> {
    return this.write({
      action: 'backfill',
      resourceType: 'backfill',
      resourceId: report.entities.map((entity) => `${entity.store}.${entity.entity}`).join(','),
      principal: request?.principal ?? PROCESS_PRINCIPAL,
      reason: request?.reason ?? 'backfill',
      ...requestFields(request),
      data: {
        copied: report.totals.copied,
        scanned: report.totals.scanned,
        countsMatch: report.countsMatch,
        interrupted: report.interrupted,
      },
    });
  }

  outboxReplayed(round: ReplayRound, request: ChangeRequest): Promise<void> {
    return this.write({
      action: 'outbox.replay',
      resourceType: 'outbox',
      resourceId: 'outbox',
      principal: request.principal,
      reason: request.reason,
      ...requestFields(request),
      data: { ...round },
    });
  }

  deadLettered(entry: OutboxEntry, reason: string): Promise<void> {
    return this.write({
      action: 'outbox.dead_letter',
      resourceType: 'outbox',
      resourceId: entry.id,
      principal: PROCESS_PRINCIPAL,
      reason,
      data: { store: entry.store, method: entry.method, key: entry.key, target: entry.target, epoch: entry.epoch },
    });
  }

  private async write(input: AuditEventInput): Promise<void> {
    this.pending.push(this.log.prepare(input));
    const max = this.options.maxPending ?? 10000;
    if (this.pending.length > max) {
      const dropped = this.pending.splice(0, this.pending.length - max);
      this.logger.warn(
        `dualwrite: dropped ${dropped.length} audit events PostgreSQL did not take (oldest ${dropped[0]!.action} at ${dropped[0]!.occurredAt})`,
      );
    }
    await this.flush();
  }

  /** Inserts the kept events in order, stopping at the first PostgreSQL does not take; one flush at a time. */
  private flush(): Promise<void> {
    // Cleared in a callback, which runs after the assignment even when there was nothing to insert.
    this.flushing ??= this.insertPending().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async insertPending(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        await this.log.insert(this.pending[0]!);
        this.pending.shift();
      }
      this.failing = false;
    } catch (error) {
      if (!this.failing)
        this.logger.warn(
          `dualwrite: audit events wait for PostgreSQL (${errorText(error)}); retried every ${(this.options.retryMs ?? 5000) / 1000} s`,
        );
      this.failing = true;
    }
  }
}

function describe(flags: MigrationFlags): string {
  return flags.stage === 'read-shift' ? `read-shift ${flags.readPercent}%` : flags.stage;
}

function requestFields(request: ChangeRequest | undefined): Pick<AuditEventInput, 'requestId' | 'clientIp'> {
  return {
    ...(request?.requestId ? { requestId: request.requestId } : {}),
    ...(request?.clientIp ? { clientIp: request.clientIp } : {}),
  };
}
