import type { Side } from '../ports/stage.js';
import type { SqlExecutor } from '../postgres/sql-executor.js';
import { TransactionExecutor } from '../postgres/transaction-executor.js';
import {
  assertUniqueNames,
  storeEntities,
  type AnyStoreDefinition,
  MEMORY_STORE_METHODS,
  type MemoryStoreOf,
  type PostgresStoreOf,
} from '../stores/store-definition.js';
import type { RebuildStore } from './memory-rebuild.js';
import type { DualWriteRuntimeOptions } from './runtime-options.js';

/** Both sides of a store, its types erased. */
export interface Sides {
  readonly memory: MemoryStoreOf<object, Record<string, object>>;
  readonly postgres: PostgresStoreOf<object, Record<string, object>>;
}

/** Each store's in-memory side: the application's where given, else a new one; checked before anything is opened. */
export function memorySides(
  definitions: readonly AnyStoreDefinition[],
  given: NonNullable<DualWriteRuntimeOptions['memory']>,
): Record<string, Sides['memory']> {
  if (definitions.length === 0) throw new TypeError('openDualWrite: stores is empty');
  assertUniqueNames(definitions);
  const names = definitions.map((definition) => definition.name);
  for (const [name, store] of Object.entries(given)) {
    if (!names.includes(name))
      throw new TypeError(`openDualWrite: memory.${name} names no store of this runtime (stores: ${names.join(', ')})`);
    if (
      store !== undefined &&
      !MEMORY_STORE_METHODS.every((method) => typeof (store as Record<string, unknown>)[method] === 'function')
    ) {
      throw new TypeError(
        `openDualWrite: memory.${name} is not an in-memory store (it needs ${MEMORY_STORE_METHODS.map((m) => `${m}()`).join(', ')}, as definition.createMemory() builds)`,
      );
    }
  }
  const sides: Record<string, Sides['memory']> = {};
  for (const definition of definitions)
    sides[definition.name] = (given[definition.name] as Sides['memory'] | undefined) ?? definition.createMemory();
  return sides;
}

/** Each store's two sides: its in-memory side (see memorySides) and its PostgreSQL side on `db`. */
export function storeSides(
  definitions: readonly AnyStoreDefinition[],
  memory: Readonly<Record<string, Sides['memory']>>,
  db: SqlExecutor,
): Record<string, Sides> {
  return Object.fromEntries(
    definitions.map((definition) => [
      definition.name,
      { memory: memory[definition.name]!, postgres: definition.createPostgres(db) },
    ]),
  );
}

/** Finds a store's side by name, as the mirror and the replayer address them. */
export function sideResolver(sides: Readonly<Record<string, Sides>>): (store: string, side: Side) => object {
  return (store, side) => {
    const target = sides[store]?.[side];
    if (!target) throw new TypeError(`no store named ${store}`);
    return target;
  };
}

/** Runs a batch of mirror writes to PostgreSQL in one transaction, through each store's PostgreSQL side bound to it. */
export function postgresBatches(
  definitions: readonly AnyStoreDefinition[],
  sides: Readonly<Record<string, Sides>>,
  db: SqlExecutor,
): (work: (resolve: (store: string, side: Side) => object) => Promise<void>) => Promise<void> {
  return (work) =>
    db.transaction(async (tx) => {
      const bound = new TransactionExecutor(tx, db.engine);
      const memory = Object.fromEntries(
        definitions.map((definition) => [definition.name, sides[definition.name]!.memory]),
      );
      await work(sideResolver(storeSides(definitions, memory, bound)));
    });
}

/** Each store's PostgreSQL side as the source of a rebuild of its memory side. */
export function rebuildStores(
  definitions: readonly AnyStoreDefinition[],
  sides: Readonly<Record<string, Sides>>,
): RebuildStore[] {
  return definitions.map((definition) => ({
    name: definition.name,
    entities: storeEntities(definition),
    from: sides[definition.name]!.postgres,
    to: sides[definition.name]!.memory,
  }));
}
