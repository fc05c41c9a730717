import { isDeepStrictEqual } from 'node:util';
import type { FencedOutcome, FencedWrites } from '../ports/fenced-writes.js';
import type { RecordKey, RecordPort } from '../ports/record-port.js';

/** A side that reads synchronously and writes synchronously inside the call (the in-memory stores, SQLite's). */
export interface SynchronousSide extends RecordPort<Record<string, object>> {
  recordNow(entity: string, key: RecordKey): object | null;
}

/**
 * Fenced writes on a synchronous side: the read, the comparison and the write's call happen
 * with no await in between, and the side writes inside the call, so no other write can
 * interleave.
 */
export class SynchronousFencedWrites implements FencedWrites {
  constructor(private readonly side: SynchronousSide) {}

  async writeIfUnchanged(
    entity: string,
    key: RecordKey,
    expected: unknown,
    record: object | null,
  ): Promise<FencedOutcome> {
    const current = this.side.recordNow(entity, key);
    if (isDeepStrictEqual(current, record)) return 'already_equal';
    if (!isDeepStrictEqual(current, expected)) return 'skipped_newer';
    await (record === null ? this.side.deleteRecord(entity, key) : this.side.putRecord(entity, record));
    return 'repaired';
  }
}
