import type { RecordKey } from '../domain/records.js';

/**
 * Record-level access for the layers that move and compare data (mirroring, backfill,
 * verification, repair). Records are in one canonical form on every store, so two
 * stores hold the same data exactly when their scans are deep-equal.
 *
 * `Records` maps each entity name to its record type.
 */
export interface RecordPort<Records extends object> {
  /** The key of a record of `entity`. */
  keyOf<E extends keyof Records & string>(entity: E, record: Records[E]): RecordKey;
  /** Records of `entity` with key in (after, until] (unbounded where absent), in key order. */
  scanRecords<E extends keyof Records & string>(entity: E, options: ScanOptions): Promise<Records[E][]>;
  getRecord<E extends keyof Records & string>(entity: E, key: RecordKey): Promise<Records[E] | null>;
  /** Stores the record exactly as given (insert or overwrite), with no derived side effects. */
  putRecord<E extends keyof Records & string>(entity: E, record: Records[E]): Promise<void>;
  /** putRecord of each record in order (the last one of a key wins), in one statement where the store can. */
  putRecords<E extends keyof Records & string>(entity: E, records: readonly Records[E][]): Promise<void>;
  /** Deletes the record and, like ON DELETE CASCADE, records that reference it. True if it existed. */
  deleteRecord<E extends keyof Records & string>(entity: E, key: RecordKey): Promise<boolean>;
}

export type { RecordKey } from '../domain/records.js';

export interface ScanOptions {
  /** Exclusive lower bound. */
  readonly after?: RecordKey;
  /** Inclusive upper bound. */
  readonly until?: RecordKey;
  /** Maximum records returned. */
  readonly limit: number;
}
