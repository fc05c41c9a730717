import type { Clock, IdGenerator } from '../domain/time.js';
import type { EntityCatalog, RecordKey } from '../domain/records.js';
import { compareText } from '../domain/text.js';
import type { RowHashes } from '../postgres/row-hash.js';
import type { RangeChecksums } from '../ports/range-checksums.js';
import { MemoryRangeChecksums } from './memory-range-checksums.js';
import type { MemoryTables } from './memory-tables.js';
import { readSnapshot, writeSnapshot } from './snapshot-file.js';

/** Options of the in-memory stores. */
export interface MemoryStoreOptions {
  /** Decides write times the caller leaves out. Default: the system clock. */
  readonly clock?: Clock;
  /** Decides ids the caller leaves out. Default: random UUIDs. */
  readonly ids?: IdGenerator;
  /** JSON snapshot file: loaded by open() if it exists, written by saveSnapshot(). Default: none. */
  readonly snapshotPath?: string;
}

/** What the in-memory stores share: their tables, what the verifier and a repair read of them, and snapshot persistence. */
export abstract class MemorySnapshotStore<Records extends object> {
  abstract readonly tables: MemoryTables<Records>;

  protected constructor(protected readonly options: MemoryStoreOptions) {}

  /** Range checksums of the tables, computed in JavaScript, records hashed as `rowHashes` says. */
  rangeChecksums(rowHashes: RowHashes<Records>): RangeChecksums {
    return new MemoryRangeChecksums(this.tables, rowHashes);
  }

  /** The record under `key`, read synchronously, for a fenced repair. */
  recordNow<E extends keyof Records>(entity: E, key: RecordKey): Records[E] | null {
    return this.tables.get(entity, key) ?? null;
  }

  /** Stores a record as given (validated, references checked); snapshots load through it. */
  abstract putRecord<E extends keyof Records & string>(entity: E, record: Records[E]): Promise<void>;

  async putRecords<E extends keyof Records & string>(entity: E, records: readonly Records[E][]): Promise<void> {
    for (const record of records) await this.putRecord(entity, record);
  }

  /** Writes the snapshot file (atomically) to `path`, default options.snapshotPath. */
  async saveSnapshot(path = this.options.snapshotPath): Promise<void> {
    if (!path) throw new Error('saveSnapshot: no path given and no snapshotPath configured');
    await writeSnapshot(path, this.tables);
  }

  /** Loads options.snapshotPath if it is set and the file exists. */
  protected async loadSnapshot(catalog: EntityCatalog<Records>): Promise<this> {
    if (this.options.snapshotPath)
      await readSnapshot(this.options.snapshotPath, catalog, (entity, raw) => this.putRecord(entity, raw as never));
    return this;
  }
}

/** Newest first by createdAt, ties by id ascending: the list order of every store. */
export function byNewest(a: { createdAt: string; id: string }, b: { createdAt: string; id: string }): number {
  return a.createdAt === b.createdAt ? compareText(a.id, b.id) : a.createdAt < b.createdAt ? 1 : -1;
}

/** Oldest first by timestamp, ties by id ascending. */
export function byOldest(a: { timestamp: string; id: string }, b: { timestamp: string; id: string }): number {
  return a.timestamp === b.timestamp ? compareText(a.id, b.id) : a.timestamp < b.timestamp ? -1 : 1;
}

/** A one-to-many index: for each key, the set of member ids. */
export class MultiIndex {
  private readonly sets = new Map<string, Set<string>>();

  add(key: string, member: string): void {
    let set = this.sets.get(key);
    if (!set) this.sets.set(key, (set = new Set()));
    set.add(member);
  }

  remove(key: string, member: string): void {
    const set = this.sets.get(key);
    if (set?.delete(member) && set.size === 0) this.sets.delete(key);
  }

  members(key: string): ReadonlySet<string> {
    return this.sets.get(key) ?? EMPTY;
  }

  clear(): void {
    this.sets.clear();
  }

  count(key: string): number {
    return this.sets.get(key)?.size ?? 0;
  }
}

const EMPTY: ReadonlySet<string> = new Set();
