import type { FencedWrites } from './fenced-writes.js';
import type { RangeChecksums } from './range-checksums.js';
import type { RecordPort } from './record-port.js';

/** One side of a store as the verifier and the repair see it: its records, their range checksums, and fenced writes. */
export interface ComparedSide<Records extends object = Record<string, object>> {
  readonly records: RecordPort<Records>;
  readonly checksums: RangeChecksums;
  readonly fenced: FencedWrites;
}
