import { assertObject } from './object.js';

/** A record's key as a tuple of strings; keys order part by part in code point order (compareText). */
export type RecordKey = readonly string[];

/** How one entity's records are keyed and validated, the same for every store. */
export interface EntityDefinition<R> {
  keyOf(record: R): RecordKey;
  /** Validates a record from outside (snapshot file, other store) and returns its canonical form. */
  normalize(raw: unknown): R;
}

export type EntityCatalog<Records> = { readonly [E in keyof Records]: EntityDefinition<Records[E]> };

/** Entity names of a catalog, in its declared order. */
export function entityNames<Records>(catalog: EntityCatalog<Records>): (keyof Records & string)[] {
  return Object.keys(catalog) as (keyof Records & string)[];
}

/** A raw record of `entity` as an object, or a ValidationError naming the entity. */
export function recordObject(entity: string, raw: unknown): Record<string, unknown> {
  assertObject(entity, raw);
  return raw as Record<string, unknown>;
}

/** The records in first-seen order of their keys, each with the last version given for its key. */
export function lastOfEachKey<R>(records: readonly R[], keyOf: (record: R) => unknown): R[] {
  const byKey = new Map<string, R>();
  for (const record of records) byKey.set(JSON.stringify(keyOf(record)), record);
  return [...byKey.values()];
}
