import type { RecordKey } from './record-port.js';

/** What a fenced write did: found the record already as wanted, found another than expected (and left it), or wrote. */
export type FencedOutcome = 'already_equal' | 'skipped_newer' | 'repaired';

/**
 * Writes a side makes only while it still holds what the caller last compared, checked and
 * written with no other write in between, so a write that landed after the comparison is
 * never overwritten (what a repair and its undo need). Records compare deep-equal.
 */
export interface FencedWrites {
  /**
   * Makes the record under `key` `record` (null: deletes it, as RecordPort.deleteRecord),
   * unless the side holds neither `expected` nor `record` there now (null: no record).
   */
  writeIfUnchanged(entity: string, key: RecordKey, expected: unknown, record: object | null): Promise<FencedOutcome>;
}
