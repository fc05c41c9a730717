import { performance } from 'node:perf_hooks';
import type { PostgresEntity } from '../src/postgres/entity-sql.js';
import type { SqlExecutor, SqlQueryable } from '../src/postgres/sql-executor.js';
import type { RangeChecksums } from '../src/ports/range-checksums.js';
import type { RecordKey, RecordPort, ScanOptions } from '../src/ports/record-port.js';
import { DualWriteError } from '../src/domain/errors.js';
import { rowHashesOf } from '../src/stores/compared-sides.js';
import type { MemoryStoreOf, StoreDefinition } from '../src/stores/store-definition.js';

/**
 * Backfill: copies what the in-memory stores hold into PostgreSQL before reads move
 * there (seed 004, phase 2). Safe while dual-write is on: a row already in PostgreSQL
 * (put there by a mirrored write or an earlier run) is never overwritten. Batched (one
 * INSERT ... SELECT FROM unnest(...) per batch), resumable (a checkpoint per entity,
 * committed with each batch) and idempotent (a re-run copies nothing twice). Stores are
 * copied in the order given, each store's entities in its catalog's (dependency) order.
 */

/** One store to copy: its definition, and where its records come from (the application's in-memory store, or one loaded from a snapshot file). */
export interface BackfillStore<Records extends object = Record<string, object>> {
  readonly definition: Pick<StoreDefinition<unknown, Records>, 'name' | 'catalog' | 'postgres'>;
  readonly source: RecordPort<Records>;
}

/** A BackfillStore, its record types checked against each other. */
export function backfillStore<Records extends object>(
  definition: BackfillStore<Records>['definition'],
  source: RecordPort<Records>,
): BackfillStore {
  return { definition, source } as unknown as BackfillStore;
}

export interface BackfillOptions {
  /** The stores to copy, in order. */
  readonly stores: readonly BackfillStore[];
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
  readonly store: string;
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
  readonly store: string;
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
  /** Records referencing rows PostgreSQL lacks, e.g. dependency edges whose projects it lacks (not copied; 0 for most entities). */
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
export class BackfillConflictError extends DualWriteError {
  constructor(entity: string) {
    super(`backfill of ${entity}: the checkpoint moved under this run; is another backfill running?`);
  }
}

export const PROGRESS_TABLE = 'dualwrite_backfill_progress';

interface EntityPlan {
  readonly store: string;
  readonly entity: string;
  /** The entity's checkpoint row: `${store}.${entity}`. */
  readonly checkpoint: string;
  readonly port: ScanPort;
  /** The source's own counts, where it keeps them; otherwise it is counted by scanning. */
  readonly counts: RangeChecksums | undefined;
  readonly postgres: PostgresEntity;
}

/** The checkpoint row of an entity of a store. */
export function checkpointName(store: string, entity: string): string {
  return `${store}.${entity}`;
}

/** Every entity of the stores in copy order: the stores in the order given, each in dependency order. */
function plansOf(stores: readonly BackfillStore[]): EntityPlan[] {
  const plans: EntityPlan[] = [];
  for (const { definition, source } of stores) {
    const counts = countsOf(definition, source);
    for (const entity of Object.keys(definition.catalog)) {
      const postgres = definition.postgres[entity];
      if (!postgres) throw new TypeError(`store ${definition.name} defines no PostgreSQL SQL for entity ${entity}`);
      const checkpoint = checkpointName(definition.name, entity);
      if (plans.some((plan) => plan.checkpoint === checkpoint))
        throw new TypeError(`backfill: store ${definition.name} is given twice`);
      plans.push({
        store: definition.name,
        entity,
        checkpoint,
        port: source as unknown as ScanPort,
        counts,
        postgres,
      });
    }
  }
  return plans;
}

/** The range checksums of a source that is an old side of a runtime (it counts its rows without reading them). */
function countsOf(definition: BackfillStore['definition'], source: RecordPort<object>): RangeChecksums | undefined {
  const side = source as Partial<Pick<MemoryStoreOf<unknown, Record<string, object>>, 'rangeChecksums'>>;
  return typeof side.rangeChecksums === 'function' ? side.rangeChecksums(rowHashesOf(definition)) : undefined;
}

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
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new TypeError(`batchSize must be a positive integer, got ${JSON.stringify(options.batchSize)}`);
  const plans = plansOf(options.stores);
  const started = performance.now();

  await adoptLegacyCheckpoints(db, plans);
  let checkpoints = await loadCheckpoints(db);
  const startedOver = options.restart === true || plans.every((plan) => checkpoints.get(plan.checkpoint)?.completed);
  if (startedOver) {
    // Only these stores' checkpoints: a run over other stores keeps its own.
    await db.query(`DELETE FROM ${PROGRESS_TABLE} WHERE entity = ANY($1::text[])`, [
      plans.map((plan) => plan.checkpoint),
    ]);
    checkpoints = new Map();
  }

  const runs: { plan: EntityPlan; run: Omit<EntityBackfillReport, 'memoryCount' | 'postgresCount' | 'countsMatch'> }[] =
    [];
  let interrupted = false;
  for (const plan of plans) {
    const checkpoint = checkpoints.get(plan.checkpoint);
    const resumedAfter = checkpoint && !checkpoint.completed ? checkpoint.lastKey : null;
    const idle = {
      store: plan.store,
      entity: plan.entity,
      resumedAfter,
      scanned: 0,
      copied: 0,
      skippedExisting: 0,
      unresolved: 0,
      seconds: 0,
    };
    if (checkpoint?.completed) runs.push({ plan, run: { ...idle, status: 'already-complete' } });
    else if (interrupted || signal?.aborted) {
      interrupted = true;
      runs.push({ plan, run: { ...idle, status: 'not-reached' } });
    } else {
      const run = await copyEntity(plan, db, batchSize, resumedAfter, onProgress, signal);
      if (run.status === 'interrupted') interrupted = true;
      runs.push({ plan, run });
    }
  }

  const entities: EntityBackfillReport[] = [];
  for (const { plan, run } of runs) {
    const memoryCount = await countRecords(plan);
    const postgresCount = await countRows(db, plan.postgres.table);
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
  db: SqlExecutor,
  batchSize: number,
  resumedAfter: RecordKey | null,
  onProgress: BackfillOptions['onProgress'],
  signal: AbortSignal | undefined,
): Promise<Omit<EntityBackfillReport, 'memoryCount' | 'postgresCount' | 'countsMatch'>> {
  const { port } = plan;
  const started = performance.now();
  await db.query(`INSERT INTO ${PROGRESS_TABLE} (entity) VALUES ($1) ON CONFLICT (entity) DO NOTHING`, [
    plan.checkpoint,
  ]);
  const total = await countRecords(plan, resumedAfter ?? undefined);
  let after = resumedAfter;
  let scanned = 0;
  let copied = 0;
  let unresolved = 0;
  let status: EntityStatus = 'completed';
  const result = () => ({
    store: plan.store,
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
      await claimCheckpoint(tx, plan.checkpoint, expected);
      const batch =
        page.length > 0
          ? await plan.postgres.bulkInsertSkippingExisting(tx, page as object[])
          : { inserted: 0, resolved: 0 };
      await tx.query(
        `UPDATE ${PROGRESS_TABLE} SET last_key = $2::jsonb, copied = copied + $3, completed = $4, updated_at = now() WHERE entity = $1`,
        [plan.checkpoint, lastKey === null ? null : JSON.stringify(lastKey), batch.inserted, done],
      );
      return batch;
    });
    after = lastKey;
    scanned += page.length;
    copied += outcome.inserted;
    unresolved += page.length - outcome.resolved;
    if (page.length > 0) {
      onProgress?.({
        store: plan.store,
        entity: plan.entity,
        scanned,
        total,
        copied,
        rowsPerSecond: rate(scanned, (performance.now() - started) / 1000),
      });
    }
    if (done) return result();
  }
}

/** Locks the entity's checkpoint row for this batch and checks no other run moved it. */
async function claimCheckpoint(tx: SqlQueryable, checkpoint: string, expected: RecordKey | null): Promise<void> {
  const [row] = await tx.query<{ last_key: unknown; completed: boolean }>(
    `SELECT last_key, completed FROM ${PROGRESS_TABLE} WHERE entity = $1 FOR UPDATE`,
    [checkpoint],
  );
  if (!row || row.completed || JSON.stringify(parseKey(row.last_key)) !== JSON.stringify(expected))
    throw new BackfillConflictError(checkpoint);
}

/**
 * Creates the checkpoint table if needed. Checkpoints of earlier versions, which were
 * keyed by entity name alone, are renamed to `${store}.${entity}` so an interrupted run
 * still resumes (for entity names no other store of the run shares).
 */
async function adoptLegacyCheckpoints(db: SqlExecutor, plans: readonly EntityPlan[]): Promise<void> {
  const legacy = plans.filter((plan) => plans.filter((other) => other.entity === plan.entity).length === 1);
  if (legacy.length === 0) return;
  await db.transaction(async (tx) => {
    // Two runs starting at once must not both rename.
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [PROGRESS_TABLE]);
    await tx.query(
      `UPDATE ${PROGRESS_TABLE} p SET entity = m.checkpoint FROM unnest($1::text[], $2::text[]) AS m(entity, checkpoint)
       WHERE p.entity = m.entity AND NOT EXISTS (SELECT 1 FROM ${PROGRESS_TABLE} q WHERE q.entity = m.checkpoint)`,
      [legacy.map((plan) => plan.entity), legacy.map((plan) => plan.checkpoint)],
    );
  });
}

/** Every checkpoint, by `${store}.${entity}` (checkpointName). */
export async function loadCheckpoints(db: SqlQueryable): Promise<Map<string, Checkpoint>> {
  const rows = await db.query<{ entity: string; last_key: unknown; copied: string | number; completed: boolean }>(
    `SELECT entity, last_key, copied, completed FROM ${PROGRESS_TABLE}`,
  );
  return new Map(
    rows.map((row) => [
      row.entity,
      { lastKey: parseKey(row.last_key), copied: Number(row.copied), completed: row.completed },
    ]),
  );
}

function parseKey(value: unknown): RecordKey | null {
  if (value === null || value === undefined) return null;
  const key = typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
  if (!Array.isArray(key) || !key.every((part) => typeof part === 'string'))
    throw new TypeError(`${PROGRESS_TABLE}.last_key is not a key: ${JSON.stringify(value)}`);
  return key;
}

/** Records of the plan's entity in the source (after `after` when given): counted by the source where it can, else by scanning keys. */
async function countRecords(plan: EntityPlan, after?: RecordKey): Promise<number> {
  const { port, entity } = plan;
  if (plan.counts) return plan.counts.count(entity, { after });
  let count = 0;
  let cursor = after;
  for (;;) {
    const page = await port.scanRecords(entity, { after: cursor, limit: 10_000 });
    count += page.length;
    if (page.length < 10_000) return count;
    cursor = port.keyOf(entity, page[page.length - 1]);
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
