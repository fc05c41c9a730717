import type { RecordKey } from './record-port.js';

/** Keys in (after, until]; an absent bound is open. */
export interface KeyRange {
  readonly after?: RecordKey;
  readonly until?: RecordKey;
}

/** The rows of a key range and the sum of their row hashes. */
export interface RangeChecksum {
  readonly rows: number;
  readonly sum: bigint;
}

/**
 * What the verifier needs of one side to compare an entity with another side without
 * moving rows: counts and checksums of key ranges, and keys to split a range at. A range's
 * checksum is the exact sum of its rows' 64-bit row hashes (src/postgres/row-hash.ts), which
 * every side computes identically for equal records, so equal ranges have equal checksums
 * whichever side computed them. The records of a range whose checksums differ are read
 * through the side's RecordPort. Entities are named as in the side's RecordPort.
 */
export interface RangeChecksums {
  /** How many records of `entity` the range holds now. */
  count(entity: string, range: KeyRange): Promise<number>;
  checksum(entity: string, range: KeyRange): Promise<RangeChecksum>;
  /**
   * The keys at positions every, 2·every, ... (1-based, in key order) of the range's records,
   * below position `rows`: ranges ending at them and one open after the last hold about
   * `every` records each. Empty when the range holds `every` records or fewer.
   */
  splitKeys(entity: string, range: KeyRange, every: number, rows: number): Promise<RecordKey[]>;
}
