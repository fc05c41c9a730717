import { backfill, backfillStore, type BackfillReport } from '../../verifier/backfill.js';
import { undoRepair, type UndoResult } from '../../verifier/repair.js';
import type { VerifyReport } from '../../verifier/verify.js';
import type { ReplayRound } from '../dualwrite/replayer.js';
import type { RecordKey } from '../ports/record-port.js';
import { PROCESS_PRINCIPAL } from '../postgres/runtime-state/audit-log.js';
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

  /** A verification now through the verifier loop, with repair when asked, recorded as the operator's; undefined when skipped. */
  verifyNow(
    request: OperatorRequest & { readonly repair?: boolean; readonly allowDeletes?: number },
  ): Promise<VerifyReport | undefined> {
    const change = changeRequest(request);
    // Without `repair`, the loop repairs as configured (DUALWRITE_REPAIR).
    const repair = request.repair ? { reason: change.reason, allowDeletes: request.allowDeletes ?? 0 } : request.repair;
    const trigger = { type: 'manual', by: change.principal.username } as const;
    return this.c.verifier.runOnce({ repair, trigger, requester: change });
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
   * writes; then the verifier loop's verification and repair from memory, and a verification after it.
   */
  async resyncPostgres({
    request,
    allowDeletes,
    ...backfillOptions
  }: Parameters<DualWriteRuntime['resyncPostgres']>[0] = {}): Promise<{
    readonly backfill: BackfillReport;
    readonly verify: VerifyReport;
  }> {
    const { gate, definitions, sides, db, audit, mirror, replayer, verifier, lineage, flags } = this.c;
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
    const requester = change ?? processRequest('resync PostgreSQL');
    const repair = { reason: requester.reason, allowDeletes: allowDeletes ?? 0 };
    let report = await verifier.verifyAndRepair('memory', repair, requester);
    if (!report.consistent) report = await verifier.verifyAndRepair('memory', false, requester);
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
    const { gate, definitions, sides, mirror, verifier, audit, flags } = this.c;
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
    const report = await verifier.verifyAndRepair('postgres', false, change ?? processRequest('resync memory'));
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
}

/** A resync nobody named a request for, as the process's own. */
function processRequest(reason: string): ChangeRequest {
  return { principal: PROCESS_PRINCIPAL, reason };
}
