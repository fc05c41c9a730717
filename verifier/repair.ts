import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { SqlExecutor } from '../src/postgres/sql-executor.js';
import type { FencedOutcome } from '../src/ports/fenced-writes.js';
import type { RecordKey } from '../src/ports/record-port.js';
import { DualWriteError } from '../src/domain/errors.js';
import type { Side } from '../src/ports/stage.js';
import type { VerifierMetrics } from './metrics.js';
import type { Difference } from './verify-report.js';
import type { AnyTarget } from './verify-target.js';

/** What became of one difference: withheld_delete is a deletion the run was not allowed to make. */
export type RepairOutcome = FencedOutcome | 'withheld_delete';

export interface RepairResult {
  readonly difference: Difference;
  readonly target: Side;
  readonly outcome: RepairOutcome;
}

export interface RepairOptions {
  /** The side whose version is copied (the authoritative side of the stage in force). */
  readonly authoritative: Side;
  readonly db: SqlExecutor;
  readonly targets: readonly AnyTarget[];
  readonly metrics?: VerifierMetrics;
  /** Names this run in dualwrite_repairs, for `undoRepair`. Default: a new UUID. */
  readonly runId?: string;
  /** Why the run was made, kept with each repair. */
  readonly reason?: string;
  /**
   * How many rows the run may delete from the side that holds them (a record the
   * authoritative side lacks). More deletions than this and none is made: each is
   * withheld_delete, so an operator confirms the number. Default 0.
   */
  readonly allowDeletes?: number;
}

/** Whether repairing `difference` deletes a record from the side that holds it. */
export function deletes(difference: Difference, authoritative: Side): boolean {
  return difference.kind === `missing_in_${authoritative}`;
}

/**
 * Copies the authoritative side's current version of each differing record onto the
 * other side, fenced: the other side's record is locked and written only if it is still
 * exactly what the verifier compared, so a write that landed after the comparison is
 * never overwritten (the failure Cassandra Data Migrator's AutoCorrect users hit). Every
 * attempt is recorded in dualwrite_repairs.
 */
export async function repair(differences: readonly Difference[], options: RepairOptions): Promise<RepairResult[]> {
  const results: RepairResult[] = [];
  const target: Side = options.authoritative === 'memory' ? 'postgres' : 'memory';
  const runId = options.runId ?? randomUUID();
  const deletions = differences.filter((difference) => deletes(difference, options.authoritative)).length;
  const deleting = deletions <= (options.allowDeletes ?? 0);
  for (const difference of differences) {
    if (!deleting && deletes(difference, options.authoritative)) {
      results.push({ difference, target, outcome: 'withheld_delete' });
      continue;
    }
    const sides = sidesOf(options, difference.store);
    const expected = difference[target];
    const source = (await sides[options.authoritative].records.getRecord(difference.entity, difference.key)) as
      object | null;
    const outcome = isDeepStrictEqual(source, expected)
      ? 'already_equal'
      : await sides[target].fenced.writeIfUnchanged(difference.entity, difference.key, expected, source);
    await recordRepair(options.db, {
      runId,
      reason: options.reason,
      difference,
      target,
      outcome,
      before: expected,
      after: source,
    });
    options.metrics?.repairs.inc({ entity: `${difference.store}.${difference.entity}`, outcome });
    results.push({ difference, target, outcome });
  }
  return results;
}

/** One row of dualwrite_repairs: what a repair (or its undo) found on the target and wrote there. */
interface RepairRow {
  readonly runId: string;
  readonly reason: string | undefined;
  readonly difference: Pick<Difference, 'store' | 'entity' | 'key' | 'kind'>;
  readonly target: Side;
  readonly outcome: RepairOutcome;
  readonly before: unknown;
  readonly after: unknown;
}

async function recordRepair(db: SqlExecutor, row: RepairRow): Promise<void> {
  await db.query(
    `INSERT INTO dualwrite_repairs (run_id, reason, store, entity, record_key, difference, target, outcome, before, after) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9::jsonb, $10::jsonb)`,
    [
      row.runId,
      row.reason ?? null,
      row.difference.store,
      row.difference.entity,
      JSON.stringify(row.difference.key),
      row.difference.kind,
      row.target,
      row.outcome,
      JSON.stringify(row.before),
      JSON.stringify(row.after),
    ],
  );
}

/** What undoing a repair run did: each repaired record put back, or left because it changed since. */
export interface UndoResult {
  /** The undo's own run id (its rows in dualwrite_repairs). */
  readonly runId: string;
  readonly undone: number;
  /** Records written again since the repair: left as they are. */
  readonly skippedNewer: number;
}

/**
 * Puts back what a repair run changed, newest first, fenced the same way: a record is
 * restored only while it is still exactly what the repair wrote. Rows that a deleted
 * record's ON DELETE CASCADE removed are not in the run and are not restored.
 */
export async function undoRepair(
  runId: string,
  options: Pick<RepairOptions, 'db' | 'targets' | 'metrics'> & { readonly reason: string },
): Promise<UndoResult> {
  const rows = await options.db.query<{
    store: string;
    entity: string;
    record_key: RecordKey;
    difference: string;
    target: Side;
    before: object | null;
    after: object | null;
  }>(
    `SELECT store, entity, record_key, difference, target, before, after FROM dualwrite_repairs WHERE run_id = $1 AND outcome = 'repaired' ORDER BY id DESC`,
    [runId],
  );
  if (rows.length === 0) throw new RepairRunNotFoundError(runId);
  const undo = randomUUID();
  let undone = 0;
  for (const row of rows) {
    const sides = sidesOf(options, row.store);
    const difference = {
      store: row.store,
      entity: row.entity,
      key: row.record_key,
      kind: row.difference as Difference['kind'],
    };
    // The repair turned `before` into `after`: the undo expects `after` and writes `before`.
    const outcome = await sides[row.target].fenced.writeIfUnchanged(row.entity, row.record_key, row.after, row.before);
    await recordRepair(options.db, {
      runId: undo,
      reason: `undo of ${runId}: ${options.reason}`,
      difference,
      target: row.target,
      outcome,
      before: row.after,
      after: row.before,
    });
    options.metrics?.repairs.inc({
      entity: `${row.store}.${row.entity}`,
      outcome: outcome === 'repaired' ? 'undone' : outcome,
    });
    if (outcome !== 'skipped_newer') undone++;
  }
  return { runId: undo, undone, skippedNewer: rows.length - undone };
}

/** No repairs were recorded under the run id given to undoRepair. */
export class RepairRunNotFoundError extends DualWriteError {
  constructor(readonly runId: string) {
    super(`no repairs were made in run ${runId} (dualwrite_repairs has none with that run_id and outcome repaired)`);
  }
}

/** The sides of the target of `store`, PostgreSQL's on the run's executor. */
function sidesOf(options: Pick<RepairOptions, 'db' | 'targets'>, store: string) {
  const target = options.targets.find((t) => t.store === store);
  if (!target) throw new TypeError(`no verify target for store ${store}`);
  return target.sidesOn(options.db);
}
