import type { VerifyReport } from '../../verifier/verify.js';
import type { BackfillReport } from '../../verifier/backfill.js';
import type { RepairResult } from '../../verifier/repair.js';
import { errorText } from '../dualwrite/mirror.js';
import type { OutboxEntry } from '../dualwrite/outbox.js';
import type { ReplayRound } from '../dualwrite/replayer.js';
import type { EffectiveFlags, MigrationFlags } from '../ports/flags.js';
import { PROCESS_PRINCIPAL, type AuditEventInput, type AuditLog, type Principal } from '../postgres/audit-log.js';
import type { GateVerdict } from './evidence-gate.js';

/** Who asked for a change and why (an operator through the admin API or CLI). */
export interface ChangeRequest {
  readonly principal: Principal;
  readonly reason: string;
  readonly requestId?: string;
  readonly clientIp?: string;
}

/**
 * The rollout's events as audit entries: one place decides what each looks like. Writing
 * an entry never fails the operation it records (the operation already happened); a failed
 * write is logged instead.
 */
export class RolloutAudit {
  constructor(
    private readonly log: AuditLog,
    private readonly logger: Pick<Console, 'warn'>,
  ) {}

  /** A stage change in force: by `request` when an operator asked for it, else seen by this process (Unleash, a file edit, env). */
  stageChanged(from: EffectiveFlags, to: EffectiveFlags, request: ChangeRequest | undefined): Promise<void> {
    return this.write({
      action: 'stage.change',
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
  async verified(report: VerifyReport, repairs: readonly RepairResult[], request: ChangeRequest | undefined): Promise<void> {
    const persistent = report.entities.reduce((sum, e) => sum + e.differences.missing_in_postgres + e.differences.missing_in_memory + e.differences.fields_differ, 0);
    await this.write({
      action: 'verify.run',
      resourceType: 'verification',
      resourceId: report.startedAt,
      principal: request?.principal ?? PROCESS_PRINCIPAL,
      reason: request?.reason ?? 'background verification',
      ...requestFields(request),
      data: { consistent: report.consistent, persistentDifferences: persistent, seconds: report.seconds },
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
      data: { target: repairs[0]!.target, outcomes },
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
      data: { copied: report.totals.copied, scanned: report.totals.scanned, countsMatch: report.countsMatch, interrupted: report.interrupted },
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

  private async write(event: AuditEventInput): Promise<void> {
    try {
      await this.log.record(event);
    } catch (error) {
      this.logger.warn(`dualwrite: could not write the audit event ${event.action} (${event.resourceId}): ${errorText(error)}`);
    }
  }
}

function describe(flags: MigrationFlags): string {
  return flags.stage === 'read-shift' ? `read-shift ${flags.readPercent}%` : flags.stage;
}

function requestFields(request: ChangeRequest | undefined): Pick<AuditEventInput, 'requestId' | 'clientIp'> {
  return { ...(request?.requestId ? { requestId: request.requestId } : {}), ...(request?.clientIp ? { clientIp: request.clientIp } : {}) };
}
