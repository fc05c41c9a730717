import type { RecordKey } from '../src/ports/record-port.js';
import type { Side } from '../src/ports/stage.js';

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

/** The differences of every entity of a report that stayed after the re-checks. */
export function totalPersistentDifferences(report: VerifyReport): number {
  return report.entities.reduce((sum, entity) => sum + persistentDifferences(entity), 0);
}

/** The differences of an entity that stayed after the re-checks, of every kind. */
export function persistentDifferences(entity: EntityReport): number {
  return (
    entity.differences.missing_in_postgres + entity.differences.missing_in_memory + entity.differences.fields_differ
  );
}
