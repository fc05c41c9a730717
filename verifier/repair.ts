import { isDeepStrictEqual } from 'node:util';
import type { Side } from '../src/ports/stage.js';
import { EDGE_KEY, EDGE_SELECT, PostgresGraphStore, toEdge } from '../src/postgres/postgres-graph-store.js';
import { PostgresAgentTaskStore } from '../src/postgres/postgres-agent-task-store.js';
import type { SqlExecutor, SqlTransaction } from '../src/postgres/sql-executor.js';
import { AGENT_TASKS, ASSETS, CONTRIBUTIONS, CONTRIBUTORS, PROJECTS, type TableMapping } from '../src/postgres/table-mapping.js';
import { TransactionExecutor } from '../src/postgres/transaction-executor.js';
import type { RecordKey, RecordPort } from '../src/ports/record-port.js';
import type { AnyTarget } from './entities.js';
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

const MAPPED: Record<string, TableMapping<unknown>> = {
  projects: PROJECTS as TableMapping<unknown>,
  contributors: CONTRIBUTORS as TableMapping<unknown>,
  assets: ASSETS as TableMapping<unknown>,
  contributions: CONTRIBUTIONS as TableMapping<unknown>,
  agent_tasks: AGENT_TASKS as TableMapping<unknown>,
};

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
        ? await repairPostgres(options.db, difference, expected, source)
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
async function repairPostgres(db: SqlExecutor, difference: Difference, expected: unknown, source: object | null): Promise<RepairOutcome> {
  return db.transaction(async (tx) => {
    const bound = new TransactionExecutor(tx, db.engine);
    const port = (difference.store === 'tasks' ? new PostgresAgentTaskStore(bound) : new PostgresGraphStore(bound)) as unknown as RecordPort<Record<string, object>>;
    const current = await lockedRecord(tx, difference.entity, difference.key);
    // Already what the source holds (a cascade of an earlier repair, or a late mirror write): nothing to do.
    if (isDeepStrictEqual(current, source)) return 'already_equal';
    if (!isDeepStrictEqual(current, expected)) return 'skipped_newer';
    if (source === null) {
      await port.deleteRecord(difference.entity, difference.key);
      return 'repaired';
    }
    if (current === null) {
      // Absent rows cannot be locked: insert only if still absent, so a concurrent insert wins.
      if (difference.entity === 'contributions') await tx.query(`SELECT set_config('dualwrite.raw_put', 'on', true)`);
      const inserted = await insertIfAbsent(tx, difference.entity, source);
      return inserted ? 'repaired' : 'skipped_newer';
    }
    await port.putRecord(difference.entity, source);
    return 'repaired';
  });
}

async function lockedRecord(tx: SqlTransaction, entity: string, key: RecordKey): Promise<unknown> {
  if (entity === 'dependencies') {
    const [row] = await tx.query(`${EDGE_SELECT} WHERE (${EDGE_KEY}) = ($1, $2, $3, $4) FOR UPDATE OF d`, [...key]);
    return row ? toEdge(row) : null;
  }
  const mapping = MAPPED[entity]!;
  const [row] = await tx.query(`${mapping.getSql()} FOR UPDATE`, mapping.keyValues(key));
  return row ? mapping.toRecord(row) : null;
}

async function insertIfAbsent(tx: SqlTransaction, entity: string, record: object): Promise<boolean> {
  if (entity === 'dependencies') {
    const edge = record as { from: { ecosystem: string; name: string }; to: { ecosystem: string; name: string }; createdAt: string };
    const rows = await tx.query(
      `INSERT INTO project_dependencies (from_project_id, to_project_id, created_at)
       SELECT f.id, t.id, $5::timestamptz FROM projects f, projects t
       WHERE f.ecosystem = $1 AND f.name = $2 AND t.ecosystem = $3 AND t.name = $4
       ON CONFLICT (from_project_id, to_project_id) DO NOTHING RETURNING 1`,
      [edge.from.ecosystem, edge.from.name, edge.to.ecosystem, edge.to.name, edge.createdAt],
    );
    return rows.length > 0;
  }
  const mapping = MAPPED[entity]!;
  return (await tx.query(mapping.insertSql('skip'), mapping.insertParams(record))).length > 0;
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
