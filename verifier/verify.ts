import { isDeepStrictEqual } from 'node:util';
import { diffString } from 'json-diff';
import PQueue from 'p-queue';
import { decodeKey } from '../src/memory/memory-tables.js';
import type { SqlExecutor } from '../src/postgres/sql-executor.js';
import type { Side } from '../src/ports/stage.js';
import type { RecordKey } from '../src/ports/record-port.js';
import { rowHash, rowHashSql } from '../src/postgres/row-hash.js';
import type { AnyTarget } from './verify-target.js';

export type DifferenceKind = 'missing_in_postgres' | 'missing_in_memory' | 'fields_differ';

/** One record that differs between the sides (frozen). */
export interface Difference {
  readonly store: string;
  readonly entity: string;
  readonly key: RecordKey;
  readonly kind: DifferenceKind;
  /** Fields whose values differ (fields_differ only). */
  readonly fields?: readonly string[];
  /** json-diff's description, memory first. */
  readonly diff?: string;
  /** Each side's record as last compared (null where missing): what a fenced repair checks against. */
  readonly memory: unknown;
  readonly postgres: unknown;
}

export interface EntityReport {
  readonly store: string;
  readonly entity: string;
  readonly rowsMemory: number;
  readonly rowsPostgres: number;
  /** Ranges whose checksums were compared. */
  readonly rangesCompared: number;
  /** Rows fetched and compared one by one (only in ranges whose checksums differed). */
  readonly rowsFetched: number;
  readonly differences: Readonly<Record<DifferenceKind, number>>;
  /** Differences seen at first that were gone on re-check (writes in flight). */
  readonly transient: number;
  /** 1 - persistent differences / rows on either side (the union of keys), between 0 and 1. */
  readonly consistencyRatio: number;
  /** The side that misses a large share of the other's rows (a restarted or truncated side), when one does. */
  readonly incomplete?: Side;
}

export interface VerifyReport {
  readonly startedAt: string;
  readonly seconds: number;
  readonly consistent: boolean;
  readonly entities: readonly EntityReport[];
  readonly differences: readonly Difference[];
  /**
   * Entities where one side misses a large share of the other's rows. Such a side cannot be
   * trusted to say what should be deleted: this verification is never repaired automatically.
   */
  readonly incomplete: readonly IncompleteSide[];
}

/** A side that misses `missing` of the other side's `of` rows of an entity. */
export interface IncompleteSide {
  readonly store: string;
  readonly entity: string;
  readonly side: Side;
  readonly missing: number;
  readonly of: number;
}

/** Options of verify(). */
export interface VerifyOptions {
  /** Rows per initial key range. Default 20000. */
  readonly rangeRows?: number;
  /** Sub-ranges a differing range is split into. Default 16. */
  readonly fanout?: number;
  /** A differing range with at most this many rows on each side is compared row by row. Default 256. */
  readonly leafRows?: number;
  /** Times a difference is re-checked before it counts. Default 3. */
  readonly recheckRounds?: number;
  /** Pause before each re-check, after `settle`. Default 500 ms. */
  readonly graceMs?: number;
  /** Waits for writes in flight (the mirror's settled()) before re-checks. Default: none. */
  readonly settle?: () => Promise<void>;
  /** The side written first; re-checks read it before settling. Default "memory". */
  readonly authoritative?: 'memory' | 'postgres';
  /** Range checksum queries run at once. Default 4. */
  readonly concurrency?: number;
  /** Differences kept in the report (all are counted). Default 1000. */
  readonly maxReported?: number;
  /**
   * A side is reported incomplete for an entity when the rows it misses are at least this
   * share of the other side's rows, and at least incompleteMinRows. Default 0.05.
   */
  readonly incompleteShare?: number;
  /** See incompleteShare. Default 10. */
  readonly incompleteMinRows?: number;
  readonly onProgress?: (event: { store: string; entity: string; rowsChecked: number; rows: number }) => void;
}

interface Range {
  readonly after?: RecordKey;
  readonly until?: RecordKey;
}

interface Checksum {
  readonly count: number;
  readonly sum: bigint;
}

/** Per-record hash cache: records are immutable objects, so a record's hash never changes. */
const hashCache = new WeakMap<object, bigint>();

/**
 * Compares the in-memory side with PostgreSQL, entity by entity: checksums of key ranges
 * (PostgreSQL's computed inside PostgreSQL), descending only into ranges that differ
 * (data-diff's bisection), then comparing the few rows of each differing leaf. Every
 * difference found is re-checked after writes in flight settle; only persistent ones count.
 */
export async function verify(
  db: SqlExecutor,
  targets: readonly AnyTarget[],
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const started = Date.now();
  const entities: EntityReport[] = [];
  const differences: Difference[] = [];
  for (const target of targets) {
    for (const entity of Object.keys(target.catalog) as string[]) {
      const found = await verifyEntity(db, target, entity, options);
      const persistent = await recheck(target, entity, found.differences, options);
      const counts = { missing_in_postgres: 0, missing_in_memory: 0, fields_differ: 0 };
      for (const difference of persistent) counts[difference.kind]++;
      const union = found.rowsMemory + counts.missing_in_memory;
      const incomplete = incompleteSide(found, counts, options);
      entities.push({
        store: target.store,
        entity,
        rowsMemory: found.rowsMemory,
        rowsPostgres: found.rowsPostgres,
        rangesCompared: found.rangesCompared,
        rowsFetched: found.rowsFetched,
        differences: counts,
        transient: found.differences.length - persistent.length,
        consistencyRatio: union === 0 ? 1 : 1 - persistent.length / union,
        ...(incomplete ? { incomplete } : {}),
      });
      differences.push(...persistent.slice(0, Math.max(0, (options.maxReported ?? 1000) - differences.length)));
    }
  }
  const consistent = entities.every((e) => persistentDifferences(e) === 0);
  const incomplete = entities.flatMap((e) =>
    e.incomplete
      ? [
          {
            store: e.store,
            entity: e.entity,
            side: e.incomplete,
            missing: e.differences[`missing_in_${e.incomplete}`],
            of: e.incomplete === 'memory' ? e.rowsPostgres : e.rowsMemory,
          },
        ]
      : [],
  );
  return {
    startedAt: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    consistent,
    entities,
    differences,
    incomplete,
  };
}

/** The side that misses a large share of the other's rows, if either does. */
function incompleteSide(
  found: { readonly rowsMemory: number; readonly rowsPostgres: number },
  counts: Readonly<Record<DifferenceKind, number>>,
  options: VerifyOptions,
): Side | undefined {
  const share = options.incompleteShare ?? 0.05;
  const minRows = options.incompleteMinRows ?? 10;
  const misses = (missing: number, of: number) => missing >= minRows && missing >= share * of;
  if (misses(counts.missing_in_memory, found.rowsPostgres)) return 'memory';
  if (misses(counts.missing_in_postgres, found.rowsMemory)) return 'postgres';
  return undefined;
}

async function verifyEntity(db: SqlExecutor, target: AnyTarget, entity: string, options: VerifyOptions) {
  const entityInPostgres = target.entities[entity];
  if (!entityInPostgres) throw new TypeError(`store ${target.store} defines no PostgreSQL SQL for entity ${entity}`);
  const sql = entityInPostgres.checksum;
  const keys = target.memoryTables.sortedKeys(entity);
  const rangeRows = options.rangeRows ?? 20000;
  const leafRows = options.leafRows ?? 256;
  const fanout = options.fanout ?? 16;
  const concurrency = options.concurrency ?? 4;
  let rangesCompared = 0;
  let rowsFetched = 0;
  let rowsChecked = 0;
  let rowsPostgres = 0;
  const differences: Difference[] = [];

  /** Memory's checksum of a range, with the key list its positions refer to (memory may gain keys during the run). */
  const memoryChecksum = (range: Range): Checksum & { start: number; end: number; keys: readonly string[] } => {
    const keys = target.memoryTables.sortedKeys(entity);
    const { start, end } = target.memoryTables.range(entity, range.after, range.until);
    let sum = 0n;
    const columns = sql.columns;
    for (let index = start; index < end; index++) {
      const record = target.memoryTables.getEncoded(entity, keys[index]!)!;
      let hash = hashCache.get(record);
      if (hash === undefined) hashCache.set(record, (hash = rowHash(columns, record)));
      sum += hash;
    }
    return { count: end - start, sum, start, end, keys };
  };

  const postgresChecksum = async (range: Range): Promise<Checksum> => {
    const { where, params } = sql.range(range.after, range.until, 1);
    const [row] = await db.query<{ n: string | number; s: string }>(
      `SELECT count(*) AS n, coalesce(sum(${rowHashSql(sql.columns)}), 0)::text AS s FROM ${sql.from} ${where}`,
      params,
    );
    return { count: Number(row!.n), sum: BigInt(row!.s) };
  };

  /** Keys splitting a range into about `fanout` parts, taken from the side holding more of its rows. */
  const splitPoints = async (
    range: Range,
    memory: { start: number; end: number; keys: readonly string[] },
    postgresCount: number,
  ): Promise<RecordKey[]> => {
    const memoryCount = memory.end - memory.start;
    if (memoryCount >= postgresCount) {
      const step = Math.max(1, Math.floor(memoryCount / fanout));
      const points: RecordKey[] = [];
      for (let index = memory.start + step - 1; index < memory.end - 1; index += step)
        points.push(decodeKey(memory.keys[index]!));
      return points;
    }
    const { where, params } = sql.range(range.after, range.until, 1);
    const step = Math.max(1, Math.floor(postgresCount / fanout));
    const rows = await db.query<Record<string, string>>(
      `SELECT * FROM (SELECT ${sql.keyList
        .split(', ')
        .map((k, i) => `${k} AS k${i}`)
        .join(', ')}, row_number() OVER (ORDER BY ${sql.keyList}) AS rn FROM ${sql.from} ${where}) q
       WHERE rn % $${params.length + 1} = 0 AND rn < $${params.length + 2} ORDER BY rn`,
      [...params, step, postgresCount],
    );
    return rows.map((row) => sql.keyList.split(', ').map((_, i) => String(row[`k${i}`])));
  };

  const compareLeaf = async (range: Range) => {
    const [memoryRecords, postgresRecords] = await Promise.all([
      target.memory.scanRecords(entity, { ...range, limit: Number.MAX_SAFE_INTEGER }),
      target.postgres.scanRecords(entity, { ...range, limit: Number.MAX_SAFE_INTEGER }),
    ]);
    rowsFetched += memoryRecords.length + postgresRecords.length;
    const byKey = new Map<string, { memory: unknown; postgres: unknown; key: RecordKey }>();
    for (const record of memoryRecords) {
      const key = target.memory.keyOf(entity, record);
      byKey.set(key.join('\u0000'), { memory: record, postgres: null, key });
    }
    for (const record of postgresRecords) {
      const key = target.postgres.keyOf(entity, record);
      const entry = byKey.get(key.join('\u0000'));
      if (entry) entry.postgres = record;
      else byKey.set(key.join('\u0000'), { memory: null, postgres: record, key });
    }
    for (const { memory, postgres, key } of byKey.values()) {
      const difference = describe(target.store, entity, key, memory, postgres);
      if (difference) differences.push(difference);
    }
  };

  // `concurrency` ranges at a time; a differing range queues its sub-ranges, so none waits for a slower sibling.
  const queue = new PQueue({ concurrency });
  let failure: unknown;
  const schedule = (range: Range & { readonly initial?: boolean }) =>
    void queue
      .add(() => compareRange(range))
      .catch((error: unknown) => {
        failure ??= error;
        queue.clear();
      });
  const compareRange = async (range: Range & { readonly initial?: boolean }) => {
    // PostgreSQL hashes its side while JavaScript hashes memory's.
    const postgresPending = postgresChecksum(range);
    const memory = memoryChecksum(range);
    const postgres = await postgresPending;
    rangesCompared++;
    // The initial ranges cover every key once: their counts add up to PostgreSQL's rows.
    if (range.initial) rowsPostgres += postgres.count;
    const isTop = range.after === undefined && range.until === undefined;
    if (memory.count === postgres.count && memory.sum === postgres.sum) {
      rowsChecked += memory.count;
      if (isTop || queue.size % 8 === 0)
        options.onProgress?.({ store: target.store, entity, rowsChecked, rows: keys.length });
      return;
    }
    if (Math.max(memory.count, postgres.count) <= leafRows) {
      rowsChecked += Math.max(memory.count, postgres.count);
      return compareLeaf(range);
    }
    const points = await splitPoints(range, memory, postgres.count);
    if (points.length === 0) return compareLeaf(range);
    const bounds = [range.after, ...points, range.until];
    for (let i = 0; i < bounds.length - 1; i++) schedule({ after: bounds[i], until: bounds[i + 1] });
  };
  for (const range of initialRanges(keys, rangeRows)) schedule({ ...range, initial: true });
  await queue.onIdle();
  if (failure !== undefined) throw failure;
  options.onProgress?.({ store: target.store, entity, rowsChecked, rows: keys.length });
  return { rowsMemory: keys.length, rowsPostgres, rangesCompared, rowsFetched, differences };
}

/** Ranges of about `rangeRows` memory keys each; the first and last are open-ended so PostgreSQL-only keys fall in one. */
function initialRanges(keys: readonly string[], rangeRows: number): Range[] {
  const ranges: Range[] = [];
  let after: RecordKey | undefined;
  for (let index = rangeRows - 1; index < keys.length - 1; index += rangeRows) {
    const until = decodeKey(keys[index]!);
    ranges.push({ after, until });
    after = until;
  }
  ranges.push({ after });
  return ranges;
}

function describe(
  store: string,
  entity: string,
  key: RecordKey,
  memory: unknown,
  postgres: unknown,
): Difference | undefined {
  if (memory === null && postgres === null) return undefined;
  if (memory === null) return Object.freeze({ store, entity, key, kind: 'missing_in_memory', memory, postgres });
  if (postgres === null) return Object.freeze({ store, entity, key, kind: 'missing_in_postgres', memory, postgres });
  if (isDeepStrictEqual(memory, postgres)) return undefined;
  const left = memory as Record<string, unknown>;
  const right = postgres as Record<string, unknown>;
  const fields = Object.keys(left).filter((field) => !isDeepStrictEqual(left[field], right[field]));
  return Object.freeze({
    store,
    entity,
    key,
    kind: 'fields_differ',
    fields,
    diff: diffString(memory, postgres, { color: false }) ?? '',
    memory,
    postgres,
  });
}

/**
 * Re-checks each difference up to recheckRounds times. A round reads the authoritative
 * side, waits for writes in flight to settle, reads the mirrored side, then the
 * authoritative side again: the mirrored side then holds at least the first state, so a
 * difference counts only if it matches neither the state before nor the state after.
 * Writes that keep coming to the same key are then never mistaken for drift.
 */
async function recheck(
  target: AnyTarget,
  entity: string,
  found: Difference[],
  options: VerifyOptions,
): Promise<Difference[]> {
  const first = options.authoritative ?? 'memory';
  const second = first === 'memory' ? 'postgres' : 'memory';
  const read = (side: 'memory' | 'postgres', differences: readonly Difference[]) =>
    Promise.all(differences.map((difference) => target[side].getRecord(entity, difference.key)));
  let remaining = found;
  for (let round = 0; round < (options.recheckRounds ?? 3) && remaining.length > 0; round++) {
    const before = await read(first, remaining);
    await options.settle?.();
    await new Promise((resolve) => setTimeout(resolve, options.graceMs ?? 500));
    const mirrored = await read(second, remaining);
    const after = await read(first, remaining);
    const next: Difference[] = [];
    remaining.forEach((difference, index) => {
      const sides = (authoritative: unknown) =>
        first === 'memory' ? [authoritative, mirrored[index]] : [mirrored[index], authoritative];
      const [memoryBefore, postgresBefore] = sides(before[index]);
      const [memoryAfter, postgresAfter] = sides(after[index]);
      const still = describe(target.store, entity, difference.key, memoryAfter, postgresAfter);
      if (still && describe(target.store, entity, difference.key, memoryBefore, postgresBefore)) next.push(still);
    });
    remaining = next;
  }
  return remaining;
}

/** The differences of an entity that stayed after the re-checks, of every kind. */
export function persistentDifferences(entity: EntityReport): number {
  return (
    entity.differences.missing_in_postgres + entity.differences.missing_in_memory + entity.differences.fields_differ
  );
}
