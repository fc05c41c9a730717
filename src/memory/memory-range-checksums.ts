import { rowHash, type RowHashes } from '../postgres/row-hash.js';
import type { RecordKey } from '../ports/record-port.js';
import type { KeyRange, RangeChecksum, RangeChecksums } from '../ports/range-checksums.js';
import { decodeKey, type MemoryTables } from './memory-tables.js';

/**
 * Range checksums of in-memory tables, computed in JavaScript: ranges are positions in each
 * table's sorted keys (found by binary search), and each record's row hash is computed once,
 * since stored records are frozen and replaced, never changed.
 */
export class MemoryRangeChecksums<Records extends object> implements RangeChecksums {
  private readonly hashes = new WeakMap<object, bigint>();

  constructor(
    private readonly tables: MemoryTables<Records>,
    private readonly rowHashes: RowHashes<Records>,
  ) {}

  async count(entity: string, range: KeyRange): Promise<number> {
    const { start, end } = this.positions(entity, range);
    return end - start;
  }

  async checksum(entity: string, range: KeyRange): Promise<RangeChecksum> {
    const name = entity as keyof Records;
    const columns = this.rowHashes[name];
    const keys = this.tables.sortedKeys(name);
    const { start, end } = this.positions(entity, range);
    let sum = 0n;
    for (let index = start; index < end; index++) {
      const record = this.tables.getEncoded(name, keys[index]!)!;
      let hash = this.hashes.get(record);
      if (hash === undefined) this.hashes.set(record, (hash = rowHash(columns, record)));
      sum += hash;
    }
    return { rows: end - start, sum };
  }

  async splitKeys(entity: string, range: KeyRange, every: number, rows: number): Promise<RecordKey[]> {
    const keys = this.tables.sortedKeys(entity as keyof Records);
    const { start, end } = this.positions(entity, range);
    const last = Math.min(end, start + rows) - 1;
    const points: RecordKey[] = [];
    for (let index = start + every - 1; index < last; index += every) points.push(decodeKey(keys[index]!));
    return points;
  }

  private positions(entity: string, range: KeyRange): { start: number; end: number } {
    return this.tables.range(entity as keyof Records, range.after, range.until);
  }
}
