import { performance } from 'node:perf_hooks';
import { AGENT_TASK_ENTITIES, entityNames, GRAPH_ENTITIES, type AgentTaskRecords, type GraphRecords } from '../src/domain/records.js';
import type { DependencyEdge } from '../src/domain/graph.js';
import type { SqlExecutor, SqlQueryable } from '../src/postgres/sql-executor.js';
import { AGENT_TASKS, ASSETS, CONTRIBUTIONS, CONTRIBUTORS, PROJECTS, type TableMapping } from '../src/postgres/table-mapping.js';
import type { RecordKey, RecordPort, ScanOptions } from '../src/ports/record-port.js';

/**
 * Backfill: copies what the in-memory stores hold into PostgreSQL before reads move
 * there (seed 004, phase 2). Safe while dual-write is on: a row already in PostgreSQL
 * (put there by a mirrored write or an earlier run) is never overwritten. Batched (one
 * INSERT ... SELECT FROM unnest(...) per batch), resumable (a checkpoint per entity,
 * committed with each batch) and idempotent (a re-run copies nothing twice).
 */

/** Where the records come from: the application's in-memory stores (or ones loaded from a snapshot file). */
export interface BackfillSource {
  readonly graph: RecordPort<GraphRecords>;
  readonly tasks: RecordPort<AgentTaskRecords>;
}

export interface BackfillOptions {
  readonly source: BackfillSource;
  /** A migrated database. */
  readonly db: SqlExecutor;
  /** Records per batch (one statement, one transaction). Default 5000. */
  readonly batchSize?: number;
  /** Ignore the checkpoints and start over from the first entity. Default false. */
  readonly restart?: boolean;
  /** Called after every committed batch. */
  readonly onProgress?: (event: BackfillProgress) => void;
  /** Stops the run between batches; the report then says interrupted, and the next run resumes. */
  readonly signal?: AbortSignal;
}

export interface BackfillProgress {
  readonly entity: string;
  /** Records read from the source by this run so far, for this entity. */
  readonly scanned: number;
  /** Records this run has to read for this entity (those after the checkpoint when resuming), counted at its start. */
  readonly total: number;
  /** Records inserted by this run so far, for this entity. */
  readonly copied: number;
  readonly rowsPerSecond: number;
}

/**
 * completed: this run copied the entity to its end. already-complete: an earlier run did,
 * so this run skipped it. interrupted: the run stopped inside it. not-reached: the run
 * stopped before it.
 */
export type EntityStatus = 'completed' | 'already-complete' | 'interrupted' | 'not-reached';

export interface EntityBackfillReport {
  readonly entity: string;
  readonly status: EntityStatus;
  /** The checkpoint this run resumed after, or null when it started from the first key. */
  readonly resumedAfter: RecordKey | null;
  /** Records read from the source by this run. */
  readonly scanned: number;
  /** Records this run inserted. */
  readonly copied: number;
  /** Records this run found already in PostgreSQL and left as they were. */
  readonly skippedExisting: number;
  /** Dependency edges whose projects PostgreSQL lacks (not copied; always 0 for other entities). */
  readonly unresolved: number;
  /** Records in the source at the end of the run. */
  readonly memoryCount: number;
  /** Rows in PostgreSQL at the end of the run. */
  readonly postgresCount: number;
  readonly countsMatch: boolean;
  readonly seconds: number;
}

export interface BackfillReport {
  readonly engine: SqlExecutor['engine'];
  readonly batchSize: number;
  /** True when the run ignored earlier checkpoints (restart, or the previous run had completed). */
  readonly startedOver: boolean;
  /** True when the signal stopped the run; run again to resume. */
  readonly interrupted: boolean;
  readonly entities: EntityBackfillReport[];
  readonly totals: {
    readonly scanned: number;
    readonly copied: number;
    readonly skippedExisting: number;
    readonly unresolved: number;
    readonly memoryCount: number;
    readonly postgresCount: number;
  };
  /** Every entity's counts match on both sides. */
  readonly countsMatch: boolean;
  readonly seconds: number;
  /** Records scanned per second over the whole run. */
  readonly rowsPerSecond: number;
}

/** Another backfill moved this entity's checkpoint while this one was copying it. */
export class BackfillConflictError extends Error {
  constructor(entity: string) {
    super(`backfill of ${entity}: the checkpoint moved under this run; is another backfill running?`);
    this.name = 'BackfillConflictError';
  }
}

export const PROGRESS_TABLE = 'dualwrite_backfill_progress';

/** Inserts one batch; returns how many were inserted and how many could be resolved (edges whose projects exist). */
type BatchInsert = (tx: SqlQueryable, records: readonly unknown[]) => Promise<{ inserted: number; resolved: number }>;

interface EntityPlan {
  readonly entity: string;
  readonly table: string;
  readonly port: 'graph' | 'tasks';
  readonly insert: BatchInsert;
  /** Skip the asset-total trigger: assets are copied with their totals. */
  readonly rawPut?: boolean;
}

const mapped =
  (mapping: TableMapping<unknown>): BatchInsert =>
  async (tx, records) => {
    const [row] = await tx.query<{ n: number }>(mapping.bulkInsertSql('skip'), mapping.bulkInsertParams(records));
    return { inserted: Number(row!.n), resolved: records.length };
  };

/** Edges are keyed by project keys; the rows need project ids, so the batch joins projects twice. */
const DEPENDENCIES_BULK_INSERT = `WITH batch AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
      AS b(from_ecosystem, from_name, to_ecosystem, to_name, created_at)),
  resolved AS (
    SELECT f.id AS from_id, t.id AS to_id, batch.created_at FROM batch
      JOIN projects f ON f.ecosystem = batch.from_ecosystem COLLATE "C" AND f.name = batch.from_name COLLATE "C"
      JOIN projects t ON t.ecosystem = batch.to_ecosystem COLLATE "C" AND t.name = batch.to_name COLLATE "C"),
  inserted AS (
    INSERT INTO project_dependencies (from_project_id, to_project_id, created_at)
    SELECT from_id, to_id, created_at FROM resolved
    ON CONFLICT (from_project_id, to_project_id) DO NOTHING RETURNING 1)
  SELECT (SELECT count(*) FROM resolved)::int AS resolved, (SELECT count(*) FROM inserted)::int AS n`;

const insertDependencies: BatchInsert = async (tx, records) => {
  const edges = records as readonly DependencyEdge[];
  const [row] = await tx.query<{ n: number; resolved: number }>(DEPENDENCIES_BULK_INSERT, [
    edges.map((e) => e.from.ecosystem),
    edges.map((e) => e.from.name),
    edges.map((e) => e.to.ecosystem),
    edges.map((e) => e.to.name),
    edges.map((e) => e.createdAt),
  ]);
  return { inserted: Number(row!.n), resolved: Number(row!.resolved) };
};

const GRAPH_PLANS: Record<keyof GraphRecords, EntityPlan> = {
  projects: { entity: 'projects', table: 'projects', port: 'graph', insert: mapped(PROJECTS as TableMapping<unknown>) },
  dependencies: { entity: 'dependencies', table: 'project_dependencies', port: 'graph', insert: insertDependencies },
  contributors: { entity: 'contributors', table: 'contributors', port: 'graph', insert: mapped(CONTRIBUTORS as TableMapping<unknown>) },
  assets: { entity: 'assets', table: 'assets', port: 'graph', insert: mapped(ASSETS as TableMapping<unknown>) },
  contributions: { entity: 'contributions', table: 'contributions', port: 'graph', insert: mapped(CONTRIBUTIONS as TableMapping<unknown>), rawPut: true },
};
const TASK_PLANS: Record<keyof AgentTaskRecords, EntityPlan> = {
  agent_tasks: { entity: 'agent_tasks', table: 'agent_tasks', port: 'tasks', insert: mapped(AGENT_TASKS as TableMapping<unknown>) },
};

/** Every entity in copy order: the graph in dependency order, then agent tasks. */
export const BACKFILL_ENTITIES: readonly string[] = [...entityNames(GRAPH_ENTITIES), ...entityNames(AGENT_TASK_ENTITIES)];
const PLANS: readonly EntityPlan[] = [
  ...entityNames(GRAPH_ENTITIES).map((entity) => GRAPH_PLANS[entity]),
  ...entityNames(AGENT_TASK_ENTITIES).map((entity) => TASK_PLANS[entity]),
];

/** The part of a RecordPort the backfill uses, with the entity as a plain string. */
interface ScanPort {
  keyOf(entity: string, record: unknown): RecordKey;
  scanRecords(entity: string, options: ScanOptions): Promise<unknown[]>;
}

interface Checkpoint {
  readonly lastKey: RecordKey | null;
  readonly copied: number;
  readonly completed: boolean;
}

/** Copies the source's records into PostgreSQL; see the module comment. */
export async function backfill(options: BackfillOptions): Promise<BackfillReport> {
  const { db, signal, onProgress } = options;
  const batchSize = options.batchSize ?? 5000;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new TypeError(`batchSize must be a positive integer, got ${JSON.stringify(options.batchSize)}`);
  const started = performance.now();

  await ensureProgressTable(db);
  let checkpoints = await loadCheckpoints(db);
  const startedOver = options.restart === true || PLANS.every((plan) => checkpoints.get(plan.entity)?.completed);
  if (startedOver) {
    await db.query(`DELETE FROM ${PROGRESS_TABLE}`);
    checkpoints = new Map();
  }

  const runs: Omit<EntityBackfillReport, 'memoryCount' | 'postgresCount' | 'countsMatch'>[] = [];
  let interrupted = false;
  for (const plan of PLANS) {
    const checkpoint = checkpoints.get(plan.entity);
    const resumedAfter = checkpoint && !checkpoint.completed ? checkpoint.lastKey : null;
    const idle = { entity: plan.entity, resumedAfter, scanned: 0, copied: 0, skippedExisting: 0, unresolved: 0, seconds: 0 };
    if (checkpoint?.completed) runs.push({ ...idle, status: 'already-complete' });
    else if (interrupted || signal?.aborted) {
      interrupted = true;
      runs.push({ ...idle, status: 'not-reached' });
    } else {
      const run = await copyEntity(plan, portOf(options.source, plan), db, batchSize, resumedAfter, onProgress, signal);
      if (run.status === 'interrupted') interrupted = true;
      runs.push(run);
    }
  }

  const entities: EntityBackfillReport[] = [];
  for (const run of runs) {
    const plan = PLANS.find((p) => p.entity === run.entity)!;
    const memoryCount = await countRecords(portOf(options.source, plan), plan.entity);
    const postgresCount = await countRows(db, plan.table);
    entities.push({ ...run, memoryCount, postgresCount, countsMatch: memoryCount === postgresCount });
  }
  const seconds = (performance.now() - started) / 1000;
  const sum = (field: 'scanned' | 'copied' | 'skippedExisting' | 'unresolved' | 'memoryCount' | 'postgresCount') =>
    entities.reduce((total, entity) => total + entity[field], 0);
  const totals = {
    scanned: sum('scanned'),
    copied: sum('copied'),
    skippedExisting: sum('skippedExisting'),
    unresolved: sum('unresolved'),
    memoryCount: sum('memoryCount'),
    postgresCount: sum('postgresCount'),
  };
  return {
    engine: db.engine,
    batchSize,
    startedOver,
    interrupted,
    entities,
    totals,
    countsMatch: entities.every((entity) => entity.countsMatch),
    seconds: round(seconds),
    rowsPerSecond: rate(totals.scanned, seconds),
  };
}

async function copyEntity(
  plan: EntityPlan,
  port: ScanPort,
  db: SqlExecutor,
  batchSize: number,
  resumedAfter: RecordKey | null,
  onProgress: BackfillOptions['onProgress'],
  signal: AbortSignal | undefined,
): Promise<Omit<EntityBackfillReport, 'memoryCount' | 'postgresCount' | 'countsMatch'>> {
  const started = performance.now();
  await db.query(`INSERT INTO ${PROGRESS_TABLE} (entity) VALUES ($1) ON CONFLICT (entity) DO NOTHING`, [plan.entity]);
  const total = await countRecords(port, plan.entity, resumedAfter ?? undefined);
  let after = resumedAfter;
  let scanned = 0;
  let copied = 0;
  let unresolved = 0;
  let status: EntityStatus = 'completed';
  const result = () => ({
    entity: plan.entity,
    status,
    resumedAfter,
    scanned,
    copied,
    skippedExisting: scanned - copied - unresolved,
    unresolved,
    seconds: round((performance.now() - started) / 1000),
  });

  for (;;) {
    if (signal?.aborted) {
      status = 'interrupted';
      return result();
    }
    const page = await port.scanRecords(plan.entity, { after: after ?? undefined, limit: batchSize });
    const done = page.length < batchSize;
    const lastKey = page.length > 0 ? port.keyOf(plan.entity, page[page.length - 1]) : after;
    const expected = after;
    const outcome = await db.transaction(async (tx) => {
      await claimCheckpoint(tx, plan.entity, expected);
      // Only this transaction's inserts skip the trigger (set_config(..., true) is transaction-local).
      if (plan.rawPut && page.length > 0) await tx.query(`SELECT set_config('dualwrite.raw_put', 'on', true)`);
      const batch = page.length > 0 ? await plan.insert(tx, page) : { inserted: 0, resolved: 0 };
      await tx.query(
        `UPDATE ${PROGRESS_TABLE} SET last_key = $2::jsonb, copied = copied + $3, completed = $4, updated_at = now() WHERE entity = $1`,
        [plan.entity, lastKey === null ? null : JSON.stringify(lastKey), batch.inserted, done],
      );
      return batch;
    });
    after = lastKey;
    scanned += page.length;
    copied += outcome.inserted;
    unresolved += page.length - outcome.resolved;
    if (page.length > 0) {
      onProgress?.({ entity: plan.entity, scanned, total, copied, rowsPerSecond: rate(scanned, (performance.now() - started) / 1000) });
    }
    if (done) return result();
  }
}

/** Locks the entity's checkpoint row for this batch and checks no other run moved it. */
async function claimCheckpoint(tx: SqlQueryable, entity: string, expected: RecordKey | null): Promise<void> {
  const [row] = await tx.query<{ last_key: unknown; completed: boolean }>(`SELECT last_key, completed FROM ${PROGRESS_TABLE} WHERE entity = $1 FOR UPDATE`, [entity]);
  if (!row || row.completed || JSON.stringify(parseKey(row.last_key)) !== JSON.stringify(expected)) throw new BackfillConflictError(entity);
}

async function ensureProgressTable(db: SqlExecutor): Promise<void> {
  await db.transaction(async (tx) => {
    // Two runs starting at once must not both try to create it.
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [PROGRESS_TABLE]);
    await tx.query(`CREATE TABLE IF NOT EXISTS ${PROGRESS_TABLE} (
      entity TEXT PRIMARY KEY,
      last_key JSONB,
      copied BIGINT NOT NULL DEFAULT 0,
      completed BOOLEAN NOT NULL DEFAULT false,
      updated_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
  });
}

/** The checkpoints of the entities this backfill knows. */
export async function loadCheckpoints(db: SqlQueryable): Promise<Map<string, Checkpoint>> {
  const rows = await db.query<{ entity: string; last_key: unknown; copied: string | number; completed: boolean }>(
    `SELECT entity, last_key, copied, completed FROM ${PROGRESS_TABLE}`,
  );
  return new Map(rows.map((row) => [row.entity, { lastKey: parseKey(row.last_key), copied: Number(row.copied), completed: row.completed }]));
}

function parseKey(value: unknown): RecordKey | null {
  if (value === null || value === undefined) return null;
  const key = typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
  if (!Array.isArray(key) || !key.every((part) => typeof part === 'string')) throw new TypeError(`${PROGRESS_TABLE}.last_key is not a key: ${JSON.stringify(value)}`);
  return key;
}

function portOf(source: BackfillSource, plan: EntityPlan): ScanPort {
  return (plan.port === 'graph' ? source.graph : source.tasks) as unknown as ScanPort;
}

/**
 * Records of `entity` in the source (after `after` when given): the in-memory stores'
 * table size when available, otherwise counted by scanning keys.
 */
export async function countRecords(port: ScanPort | RecordPort<object>, entity: string, after?: RecordKey): Promise<number> {
  const tables = (port as { tables?: { size?: (entity: string) => number } }).tables;
  if (after === undefined && typeof tables?.size === 'function') return tables.size(entity);
  const scan = port as ScanPort;
  let count = 0;
  let cursor = after;
  for (;;) {
    const page = await scan.scanRecords(entity, { after: cursor, limit: 10_000 });
    count += page.length;
    if (page.length < 10_000) return count;
    cursor = scan.keyOf(entity, page[page.length - 1]);
  }
}

async function countRows(db: SqlQueryable, table: string): Promise<number> {
  const [row] = await db.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${table}`);
  return Number(row!.n);
}

function rate(rows: number, seconds: number): number {
  return seconds > 0 ? Math.round(rows / seconds) : 0;
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
