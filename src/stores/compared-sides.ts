import { SynchronousFencedWrites, type SynchronousSide } from '../memory/synchronous-fenced-writes.js';
import type { PostgresEntity } from '../postgres/entity-sql.js';
import { PostgresFencedWrites } from '../postgres/postgres-fenced-writes.js';
import { PostgresRangeChecksums } from '../postgres/postgres-range-checksums.js';
import type { RowHashes } from '../postgres/row-hash.js';
import type { SqlExecutor } from '../postgres/sql-executor.js';
import type { ComparedSide } from '../ports/compared-side.js';
import type { RecordPort } from '../ports/record-port.js';
import type { MemoryStoreOf, StoreDefinition } from './store-definition.js';

/** What the sides of a store are built from: its name, its entities and their PostgreSQL SQL. */
type Described<Records extends object> = Pick<StoreDefinition<unknown, Records>, 'name' | 'catalog' | 'postgres'>;

/**
 * The old side of a store as the verifier and the repair see it: checksums computed where
 * its records are, fenced writes made synchronously. Build it once: its checksums remember
 * the row hashes they computed.
 */
export function memorySide<Records extends object>(
  definition: Described<Records>,
  store: MemoryStoreOf<unknown, Records>,
): ComparedSide<Records> {
  return {
    records: store,
    checksums: store.rangeChecksums(rowHashesOf(definition)),
    fenced: new SynchronousFencedWrites(store as unknown as SynchronousSide),
  };
}

/** PostgreSQL's side of a store: its records read through `records`, checksums and fenced writes run on `db`. */
export function postgresSide<Records extends object>(
  definition: Described<Records> & Pick<StoreDefinition<unknown, Records>, 'createPostgres'>,
  records: RecordPort<Records>,
  db: SqlExecutor,
): ComparedSide<Records> {
  const entities = postgresEntities(definition);
  return {
    records,
    checksums: new PostgresRangeChecksums(
      db,
      Object.fromEntries(Object.entries(entities).map(([entity, sql]) => [entity, sql.checksum])),
    ),
    fenced: new PostgresFencedWrites(
      db,
      entities,
      (tx) => definition.createPostgres(tx) as unknown as RecordPort<Record<string, object>>,
    ),
  };
}

/** How each entity of a store hashes its records: the columns its PostgreSQL SQL hashes, which every side hashes alike. */
export function rowHashesOf<Records extends object>(definition: Described<Records>): RowHashes<Records> {
  return Object.fromEntries(
    Object.entries(postgresEntities(definition)).map(([entity, sql]) => [entity, sql.checksum.columns]),
  ) as RowHashes<Records>;
}

/** Each entity's PostgreSQL SQL, in catalog order; every entity must have some. */
function postgresEntities<Records extends object>(definition: Described<Records>): Record<string, PostgresEntity> {
  const sql = definition.postgres as Readonly<Record<string, PostgresEntity | undefined>>;
  return Object.fromEntries(
    Object.keys(definition.catalog).map((entity) => {
      const entitySql = sql[entity];
      if (!entitySql) throw new TypeError(`store ${definition.name} defines no PostgreSQL SQL for entity ${entity}`);
      return [entity, entitySql];
    }),
  );
}
