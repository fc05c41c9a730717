import { isDeepStrictEqual } from 'node:util';
import type { Side } from '../src/ports/stage.js';
import type { SqlExecutor } from '../src/postgres/sql-executor.js';
import { TransactionExecutor } from '../src/postgres/transaction-executor.js';
import type { AnyTarget } from './verify-target.js';
import type { VerifierMetrics } from './metrics.js';
import type { Difference } from './verify.js';

export type RepairOutcome = 'repaired' | 'skipped_newer' | 'already_equal';

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
  for (const difference of differences) {
    const store = options.targets.find((t) => t.store === difference.store);
    if (!store) throw new TypeError(`no verify target for store ${difference.store}`);
    const expected = target === 'postgres' ? difference.postgres : difference.memory;
    const source = (await store[options.authoritative].getRecord(difference.entity, difference.key)) as object | null;
    const outcome = isDeepStrictEqual(source, expected)
      ? 'already_equal'
      : target === 'postgres'
        ? await repairPostgres(options.db, store, difference, expected, source)
        : await repairMemory(store, difference, expected, source);
    await options.db.query(
      `INSERT INTO dualwrite_repairs (store, entity, record_key, difference, target, outcome, before, after) VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7::jsonb, $8::jsonb)`,
      [difference.store, difference.entity, JSON.stringify(difference.key), difference.kind, target, outcome, JSON.stringify(expected), JSON.stringify(source)],
    );
    options.metrics?.repairs.inc({ entity: `${difference.store}.${difference.entity}`, outcome });
    results.push({ difference, target, outcome });
  }
  return results;
}

/** Fenced write to PostgreSQL: lock the row (or insert only if still absent) inside one transaction. */
async function repairPostgres(db: SqlExecutor, store: AnyTarget, difference: Difference, expected: unknown, source: object | null): Promise<RepairOutcome> {
  const entity = store.entities[difference.entity];
  if (!entity) throw new TypeError(`store ${difference.store} has no entity ${difference.entity}`);
  return db.transaction(async (tx) => {
    const port = store.postgresOn(new TransactionExecutor(tx, db.engine));
    const current = await entity.lockForUpdate(tx, difference.key);
    // Already what the source holds (a cascade of an earlier repair, or a late mirror write): nothing to do.
    if (isDeepStrictEqual(current, source)) return 'already_equal';
    if (!isDeepStrictEqual(current, expected)) return 'skipped_newer';
    if (source === null) {
      await port.deleteRecord(difference.entity, difference.key);
      return 'repaired';
    }
    if (current === null) {
      // Absent rows cannot be locked: insert only if still absent, so a concurrent insert wins.
      return (await entity.insertIfAbsent(tx, source)) ? 'repaired' : 'skipped_newer';
    }
    await port.putRecord(difference.entity, source);
    return 'repaired';
  });
}

/**
 * Fenced write to memory: the read, the comparison and the call happen with no await in
 * between, and the in-memory stores write synchronously inside the call, so no other
 * write can interleave.
 */
async function repairMemory(store: AnyTarget, difference: Difference, expected: unknown, source: object | null): Promise<RepairOutcome> {
  const current = store.memoryTables.get(difference.entity, difference.key) ?? null;
  if (isDeepStrictEqual(current, source)) return 'already_equal';
  if (!isDeepStrictEqual(current, expected)) return 'skipped_newer';
  await (source === null ? store.memory.deleteRecord(difference.entity, difference.key) : store.memory.putRecord(difference.entity, source));
  return 'repaired';
}
