import type { EntityCatalog } from '../src/domain/records.js';
import type { MemoryTables } from '../src/memory/memory-tables.js';
import type { PostgresEntity } from '../src/postgres/entity-sql.js';
import type { SqlExecutor } from '../src/postgres/sql-executor.js';
import type { RecordPort } from '../src/ports/record-port.js';
import type { StoreDefinition } from '../src/stores/store-definition.js';

/** One store as the verifier and the repair see it: its entities, both sides, and each entity's SQL. */
export interface VerifyTarget<Records extends object> {
  readonly store: string;
  /** The entities compared, in order. */
  readonly catalog: EntityCatalog<Records>;
  readonly memoryTables: MemoryTables<Records>;
  readonly memory: RecordPort<Records>;
  readonly postgres: RecordPort<Records>;
  /** Each entity in PostgreSQL: checksums, fenced locks and inserts. */
  readonly entities: { readonly [E in keyof Records]: PostgresEntity };
  /** The PostgreSQL store on another executor (a transaction, for fenced repairs). */
  readonly postgresOn: (db: SqlExecutor) => RecordPort<Records>;
}

/** A verify target with its entity types erased. */
export type AnyTarget = VerifyTarget<Record<string, object>>;

/** The verify target of a store: its definition and the two implementations to compare. */
export function verifyTarget<Store, Records extends object>(
  definition: StoreDefinition<Store, Records>,
  memory: RecordPort<Records> & { readonly tables: MemoryTables<Records> },
  postgres: RecordPort<Records>,
): AnyTarget {
  const target: VerifyTarget<Records> = {
    store: definition.name,
    catalog: definition.catalog,
    memoryTables: memory.tables,
    memory,
    postgres,
    entities: definition.postgres,
    postgresOn: (db) => definition.createPostgres(db),
  };
  return target as unknown as AnyTarget;
}
