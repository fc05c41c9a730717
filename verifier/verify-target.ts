import type { EntityCatalog } from '../src/domain/records.js';
import type { SqlExecutor } from '../src/postgres/sql-executor.js';
import type { ComparedSide } from '../src/ports/compared-side.js';
import type { RecordPort } from '../src/ports/record-port.js';
import type { Side } from '../src/ports/stage.js';
import { memorySide, postgresSide } from '../src/stores/compared-sides.js';
import type { MemoryStoreOf, StoreDefinition } from '../src/stores/store-definition.js';

/** One store as the verifier and the repair see it: its entities and its two sides. */
export interface VerifyTarget<Records extends object> {
  readonly store: string;
  /** The entities compared, in order. */
  readonly catalog: EntityCatalog<Records>;
  /** Both sides by their names in reports; PostgreSQL's statements run on `db` (a verification's or a repair's). */
  sidesOn(db: SqlExecutor): Readonly<Record<Side, ComparedSide<Records>>>;
}

/** A verify target with its entity types erased. */
export type AnyTarget = VerifyTarget<Record<string, object>>;

/** The verify target of a store: its definition and the two implementations to compare. */
export function verifyTarget<Store, Records extends object>(
  definition: StoreDefinition<Store, Records>,
  memory: MemoryStoreOf<unknown, Records>,
  postgres: RecordPort<Records>,
): AnyTarget {
  const described = definition as unknown as StoreDefinition<unknown, Records>;
  // Built once: the memory side's checksums remember the row hashes they computed.
  const memoryCompared = memorySide(described, memory);
  const target: VerifyTarget<Records> = {
    store: definition.name,
    catalog: definition.catalog,
    sidesOn: (db) => ({ memory: memoryCompared, postgres: postgresSide(described, postgres, db) }),
  };
  return target as unknown as AnyTarget;
}
