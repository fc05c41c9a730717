import type { EntityCatalog } from '../domain/records.js';
import { compareText } from '../domain/text.js';
import type { RecordKey, ScanOptions } from '../ports/record-port.js';

/**
 * In-memory tables, one Map per entity, with key-ordered scans. The building block of
 * the in-memory stores; it knows keys and order but no domain rules.
 */
export class MemoryTables<Records extends object> {
  private readonly tables = new Map<keyof Records, Table<unknown>>();

  constructor(readonly catalog: EntityCatalog<Records>) {
    for (const entity of Object.keys(catalog) as (keyof Records)[]) this.tables.set(entity, new Table());
  }

  get<E extends keyof Records>(entity: E, key: RecordKey): Records[E] | undefined {
    return this.table(entity).rows.get(encodeKey(key));
  }

  /** Inserts or overwrites; the stored record is frozen. */
  put<E extends keyof Records>(entity: E, record: Records[E]): void {
    this.table(entity).set(encodeKey(this.catalog[entity].keyOf(record)), Object.freeze(record) as Records[E]);
  }

  delete<E extends keyof Records>(entity: E, key: RecordKey): boolean {
    return this.table(entity).delete(encodeKey(key));
  }

  values<E extends keyof Records>(entity: E): IterableIterator<Records[E]> {
    return this.table(entity).rows.values();
  }

  size(entity: keyof Records): number {
    return this.table(entity).rows.size;
  }

  scan<E extends keyof Records>(entity: E, options: ScanOptions): Records[E][] {
    const { start, end } = this.range(entity, options.after, options.until);
    const rows = this.table(entity).rows;
    const keys = this.sortedKeys(entity);
    const page: Records[E][] = [];
    for (let index = start; index < end && page.length < options.limit; index++) page.push(rows.get(keys[index]!)!);
    return page;
  }

  /** Positions in sortedKeys(entity) of the keys in (after, until]: [start, end). */
  range(entity: keyof Records, after?: RecordKey, until?: RecordKey): { start: number; end: number } {
    const keys = this.sortedKeys(entity);
    return {
      start: after === undefined ? 0 : upperBound(keys, encodeKey(after)),
      end: until === undefined ? keys.length : upperBound(keys, encodeKey(until)),
    };
  }

  /** Every key of `entity`, encoded (encodeKey) and in code point order. */
  sortedKeys(entity: keyof Records): readonly string[] {
    return this.table(entity).sortedKeys();
  }

  /** The record under an encoded key. */
  getEncoded<E extends keyof Records>(entity: E, encoded: string): Records[E] | undefined {
    return this.table(entity).rows.get(encoded) as Records[E] | undefined;
  }

  clear(): void {
    for (const table of this.tables.values()) table.clear();
  }

  private table<E extends keyof Records>(entity: E): Table<Records[E]> {
    const table = this.tables.get(entity);
    if (!table) throw new Error(`unknown entity ${String(entity)}`);
    return table as Table<Records[E]>;
  }
}

/**
 * Encodes a key tuple as one string whose code point order is the tuple's order:
 * NUL separates parts because it sorts first and validated text never contains it.
 */
export function encodeKey(key: RecordKey): string {
  return key.join('\u0000');
}

export function decodeKey(encoded: string): RecordKey {
  return encoded.split('\u0000');
}

/** One entity's rows plus a sorted key list, rebuilt lazily after inserts and deletes. */
class Table<R> {
  readonly rows = new Map<string, R>();
  private sorted: string[] = [];
  private added: string[] = [];
  private removed = 0;

  set(key: string, record: R): void {
    if (!this.rows.has(key)) this.added.push(key);
    this.rows.set(key, record);
  }

  delete(key: string): boolean {
    const existed = this.rows.delete(key);
    if (existed) this.removed++;
    return existed;
  }

  clear(): void {
    this.rows.clear();
    this.sorted = [];
    this.added = [];
    this.removed = 0;
  }

  /** Merges keys added since the last call (sorting only those) and drops deleted ones. */
  sortedKeys(): string[] {
    if (this.added.length === 0 && this.removed === 0) return this.sorted;
    const base = this.removed === 0 ? this.sorted : this.sorted.filter((key) => this.rows.has(key));
    const fresh = this.added.filter((key) => this.rows.has(key)).sort(compareText);
    this.sorted = fresh.length === 0 ? base : merge(base, fresh);
    this.added = [];
    this.removed = 0;
    return this.sorted;
  }
}

function merge(a: string[], b: string[]): string[] {
  const out = new Array<string>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = compareText(a[i]!, b[j]!) <= 0 ? a[i++]! : b[j++]!;
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
}

/** Index of the first key greater than `key`. */
function upperBound(keys: readonly string[], key: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (compareText(keys[mid]!, key) <= 0) low = mid + 1;
    else high = mid;
  }
  return low;
}
