import type { WriteContext } from '../domain/write-context.js';
import type { EntityCatalog } from '../domain/records.js';
import type { PostgresEntity } from '../postgres/entity-sql.js';
import type { RowHashes } from '../postgres/row-hash.js';
import type { SqlExecutor } from '../postgres/sql-executor.js';
import type { RangeChecksums } from '../ports/range-checksums.js';
import type { RecordKey, RecordPort } from '../ports/record-port.js';
import type { StoreDescription } from '../ports/store-description.js';

/**
 * The old side of a store, in memory (or a database the application already had, as
 * dispatch's SQLite): the interface, its records, and what the verifier and a repair need
 * of it beyond its records.
 */
export type MemoryStoreOf<Store, Records extends object> = Store &
  RecordPort<Records> & {
    /** Checksums of its key ranges, records hashed as `rowHashes` says: the verifier compares them with PostgreSQL's. */
    rangeChecksums(rowHashes: RowHashes<Records>): RangeChecksums;
    /** The record under `key`, read synchronously: a fenced repair compares it and writes with nothing in between. */
    recordNow<E extends keyof Records & string>(entity: E, key: RecordKey): Records[E] | null;
    /** Removes every record (a resync of memory from PostgreSQL starts with it). */
    clear(): void;
  };

/** What MemoryStoreOf adds to a RecordPort, by name: openDualWrite checks a memory side it is given has them. */
export const MEMORY_STORE_METHODS = ['rangeChecksums', 'recordNow', 'clear'] as const;

/** A PostgreSQL implementation of a store: the interface and its records. */
export type PostgresStoreOf<Store, Records extends object> = Store & RecordPort<Records>;

/**
 * Everything the dual-write runtime needs of one store interface: its methods (which read,
 * which write, their keys), its records (entities in dependency order), each entity's SQL,
 * and how to build both implementations. Mirroring, the outbox, shadow reads, the verifier
 * loop, repair and backfill are built from it alone; a new store is one definition plus its
 * two implementations.
 */
export interface StoreDefinition<Store, Records extends object> {
  /** The store's name in outbox entries, metrics, reports and backfill checkpoints, e.g. "graph". Unique in a runtime. */
  readonly name: string;
  /** Which methods read and which write, and their routing keys. */
  readonly methods: StoreDescription<Store>;
  /** Every entity of the store, keyed and validated; declared in dependency order (a record's references first). */
  readonly catalog: EntityCatalog<Records>;
  /** Each entity in PostgreSQL: checksums, batch copies and fenced writes. */
  readonly postgres: { readonly [E in keyof Records]: PostgresEntity<Records[E] & object> };
  /** A new, empty in-memory store. */
  createMemory(options?: StoreOptions): MemoryStoreOf<Store, Records>;
  /** The store on a migrated database, or on a transaction (a TransactionExecutor) to write inside it. */
  createPostgres(db: SqlExecutor, options?: StoreOptions): PostgresStoreOf<Store, Records>;
}

/** How a store decides the ids and times its callers leave out. */
export type StoreOptions = Partial<WriteContext>;

/**
 * A definition with its types erased, for lists of stores of different interfaces. Only
 * the runtime and the verifier hold definitions this way; they reach records by entity name.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- erased on purpose: a store interface is invariant in its definition
export type AnyStoreDefinition = StoreDefinition<any, any>;

/** Entity names of a definition, in dependency order. */
export function storeEntities(definition: AnyStoreDefinition): string[] {
  return Object.keys(definition.catalog);
}

/** Throws unless every store has a name of its own. */
export function assertUniqueNames(definitions: readonly AnyStoreDefinition[]): void {
  const seen = new Set<string>();
  for (const { name } of definitions) {
    if (typeof name !== 'string' || name === '')
      throw new TypeError(`a store definition needs a name, got ${JSON.stringify(name)}`);
    if (seen.has(name)) throw new TypeError(`two store definitions are named ${JSON.stringify(name)}`);
    seen.add(name);
  }
}
