import { backfill, backfillStore, type BackfillReport } from '../../verifier/backfill.js';
import { undoRepair, type UndoResult } from '../../verifier/repair.js';
import type { VerifyReport } from '../../verifier/verify.js';
import type { RepairRequest } from '../../verifier/verifier-loop.js';
import type { ReplayRound } from '../dualwrite/replayer.js';
import type { RecordKey } from '../ports/record-port.js';
import type { Components } from './components.js';
import type { DualWriteRuntime } from './dual-write-runtime.js';
import { rebuildMemory } from './memory-rebuild.js';
import { changeRequest, type OperatorRequest } from './operator-request.js';
import type { ChangeRequest } from './rollout-audit.js';
import { rebuildStores } from './store-sides.js';

/** A record a mirror write touched, by store. */
interface TouchedRecord {
  readonly store: string;
  readonly entity: string;
  readonly key: RecordKey;
}

/**
 * The operator's ways of bringing the sides together, each audited: a verification (with
 * repair) through the verifier loop, undoing a repair, an outbox replay round, and the two
 * resyncs that a rollout needs after a side was left behind.
 */
export class ResyncAndRepair {
  constructor(private readonly c: Components) {}

  /** A verification now, with repair when asked, recorded as the operator's. */
  verifyNow(
    request: OperatorRequest & { readonly repair?: boolean; readonly allowDeletes?: number },
  ): Promise<VerifyReport | undefined> {
    const change = changeRequest(request);
    // Without `repair`, the loop repairs as configured (DUALWRITE_REPAIR).
    const repairing = request.repair
      ? { reason: change.reason, allowDeletes: request.allowDeletes ?? 0 }
      : request.repair;
    return this.verifyAs(change, repairing);
  }

  async undoRepair(runId: string, request: OperatorRequest): Promise<UndoResult> {
    const change = changeRequest(request);
    const { db, verifyTargets, verifierMetrics, audit } = this.c;
    const undone = await undoRepair(runId, {
      db,
      targets: verifyTargets,
      metrics: verifierMetrics,
      reason: change.reason,
    });
    await audit.repairUndone(undone, runId, change);
    return undone;
  }

  async replayOutbox(request: OperatorRequest): Promise<ReplayRound> {
    const round = await this.c.replayer.replayOnce();
    await this.c.audit.outboxReplayed(round, changeRequest(request));
    return round;
  }

  /**
   * PostgreSQL brought level with memory in dual-write: the backfill first, so journaled copies
   * find the rows they reference; then the journal, whose copies are older than what the repair
   * writes; then the verifier loop's verification and repair, and a verification after it.
   */
  async resyncPostgres({
    request,
    allowDeletes,
    ...backfillOptions
  }: Parameters<DualWriteRuntime['resyncPostgres']>[0] = {}): Promise<{
    readonly backfill: BackfillReport;
    readonly verify: VerifyReport;
  }> {
    const { gate, definitions, sides, db, audit, mirror, replayer, lineage, flags } = this.c;
    if (gate.current.stage !== 'dual-write')
      throw new Error(
        `resyncPostgres runs in dual-write (memory authoritative, PostgreSQL mirrored), not in ${gate.current.stage}`,
      );
    const change = request && changeRequest(request);
    const stores = definitions.map((definition) => backfillStore(definition, sides[definition.name]!.memory));
    const filled = await backfill({ ...backfillOptions, stores, db, restart: true });
    await audit.backfilled(filled, change);
    await mirror.settled();
    const stuck = await replayer.drainFor('postgres');
    if (stuck) throw new Error(`resyncPostgres: ${stuck}`);
    const repair = { reason: request?.reason ?? 'resync PostgreSQL', allowDeletes: allowDeletes ?? 0 };
    let report = await this.mustVerify('resyncPostgres', change, repair);
    if (!report.consistent) report = await this.mustVerify('resyncPostgres', change, false);
    if (report.consistent) {
      await lineage.postgresResynced(gate.current.stage);
      flags.postgresResynced();
    }
    return { backfill: filled, verify: report };
  }

  /**
   * Memory's contents replaced with PostgreSQL's in postgres-primary, then verified. The copy
   * runs while writes go on; a mirror write of a record may land before the copy's older
   * version of it, so those records are copied again with writes held.
   */
  async resyncMemory({ request }: { readonly request?: OperatorRequest } = {}): Promise<{
    readonly verify: VerifyReport;
  }> {
    const { gate, definitions, sides, mirror, audit, flags } = this.c;
    if (gate.current.stage !== 'postgres-primary')
      throw new Error(
        `resyncMemory runs in postgres-primary (PostgreSQL authoritative, memory mirrored), not in ${gate.current.stage}`,
      );
    const change = request && changeRequest(request);
    const touched = new Map<string, TouchedRecord>();
    const stopObserving = mirror.observe((op) => {
      for (const { entity, key } of op.records)
        touched.set(JSON.stringify([op.store, entity, key]), { store: op.store, entity, key });
    });
    try {
      await rebuildMemory(rebuildStores(definitions, sides));
    } finally {
      stopObserving();
    }
    await gate.exclusive(() => this.copyAgain(touched.values()));
    const report = await this.mustVerify('resyncMemory', change, false);
    await audit.memoryResynced(report, change);
    if (!report.consistent)
      throw new Error(
        `resyncMemory: memory still differs from PostgreSQL after the copy (${report.differences.length} differences); run it again`,
      );
    flags.memoryResynced();
    return { verify: report };
  }

  /** Copies each record from PostgreSQL to memory again (deleting it from memory where PostgreSQL has none). */
  private async copyAgain(records: Iterable<TouchedRecord>): Promise<void> {
    for (const { store, entity, key } of records) {
      const record = await this.c.sides[store]!.postgres.getRecord(entity, key);
      const into = this.c.sides[store]!.memory;
      await (record ? into.putRecord(entity, record) : into.deleteRecord(entity, key));
    }
  }

  /** A run of the verifier loop (repairing as asked) whose audit entry names `change`; undefined when it was skipped. */
  private async verifyAs(
    change: ChangeRequest | undefined,
    repair: boolean | RepairRequest | undefined,
    by = change?.principal.username ?? 'operator',
  ): Promise<VerifyReport | undefined> {
    const { verifier, verifyRequest } = this.c;
    verifyRequest.current = change;
    try {
      return await verifier.runOnce({ repair, trigger: { type: 'manual', by } });
    } finally {
      verifyRequest.current = undefined;
    }
  }

  /** A verification a resync cannot go on without. */
  private async mustVerify(
    action: string,
    change: ChangeRequest | undefined,
    repair: false | RepairRequest,
  ): Promise<VerifyReport> {
    const report = await this.verifyAs(change, repair, change?.principal.username ?? action);
    if (!report)
      throw new Error(
        `${action}: the verifier did not run (another process holds its lock, or no side is mirrored in ${this.c.gate.current.stage}); run it again`,
      );
    return report;
  }
}
