import type { SqlExecutor } from '../src/postgres/sql-executor.js';
import type { Side } from '../src/ports/stage.js';
import { EntityComparison, type EntityFindings } from './entity-comparison.js';
import { recheck } from './recheck.js';
import { DEFAULT_MAX_REPORTED, type VerifyOptions } from './verify-options.js';
import {
  persistentDifferences,
  type Difference,
  type DifferenceKind,
  type EntityReport,
  type IncompleteSide,
  type VerifyReport,
} from './verify-report.js';
import type { AnyTarget } from './verify-target.js';

export type { VerifyOptions, VerifyProgress } from './verify-options.js';
export {
  persistentDifferences,
  totalPersistentDifferences,
  type Difference,
  type DifferenceKind,
  type EntityReport,
  type IncompleteSide,
  type VerifyReport,
} from './verify-report.js';

/**
 * Compares the two sides of each target, entity by entity: checksums of key ranges, each
 * computed by its side (EntityComparison), descending only into ranges that differ. Every
 * difference found is re-checked after writes in flight settle; only persistent ones count.
 * PostgreSQL's statements run on `db`.
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
    const sides = target.sidesOn(db);
    for (const entity of Object.keys(target.catalog)) {
      // Memory's keys split the initial ranges: rowsMemory is its count when the comparison starts.
      const found = await new EntityComparison(
        target.store,
        entity,
        { label: 'memory', side: sides.memory },
        { label: 'postgres', side: sides.postgres },
        options,
      ).run();
      const persistent = await recheck(sides, found.differences, options);
      entities.push(entityReport(target.store, entity, found, persistent, options));
      differences.push(
        ...persistent.slice(0, Math.max(0, (options.maxReported ?? DEFAULT_MAX_REPORTED) - differences.length)),
      );
    }
  }
  return {
    startedAt: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    consistent: entities.every((e) => persistentDifferences(e) === 0),
    entities,
    differences,
    incomplete: entities.flatMap(incompleteOf),
  };
}

function entityReport(
  store: string,
  entity: string,
  found: EntityFindings,
  persistent: readonly Difference[],
  options: VerifyOptions,
): EntityReport {
  const counts = { missing_in_postgres: 0, missing_in_memory: 0, fields_differ: 0 };
  for (const difference of persistent) counts[difference.kind]++;
  const union = found.rows.memory + counts.missing_in_memory;
  const incomplete = incompleteSide(found.rows, counts, options);
  return {
    store,
    entity,
    rowsMemory: found.rows.memory,
    rowsPostgres: found.rows.postgres,
    rangesCompared: found.rangesCompared,
    rowsFetched: found.rowsFetched,
    differences: counts,
    transient: found.differences.length - persistent.length,
    consistencyRatio: union === 0 ? 1 : 1 - persistent.length / union,
    ...(incomplete ? { incomplete } : {}),
  };
}

/** The side that misses a large share of the other's rows, if either does. */
function incompleteSide(
  rows: Readonly<Record<Side, number>>,
  counts: Readonly<Record<DifferenceKind, number>>,
  options: VerifyOptions,
): Side | undefined {
  const share = options.incompleteShare ?? 0.05;
  const minRows = options.incompleteMinRows ?? 10;
  const misses = (missing: number, of: number) => missing >= minRows && missing >= share * of;
  if (misses(counts.missing_in_memory, rows.postgres)) return 'memory';
  if (misses(counts.missing_in_postgres, rows.memory)) return 'postgres';
  return undefined;
}

/** The entity's incomplete side, as the report lists it. */
function incompleteOf(e: EntityReport): IncompleteSide[] {
  if (!e.incomplete) return [];
  return [
    {
      store: e.store,
      entity: e.entity,
      side: e.incomplete,
      missing: e.differences[`missing_in_${e.incomplete}`],
      of: e.incomplete === 'memory' ? e.rowsPostgres : e.rowsMemory,
    },
  ];
}
