import {
  DISPATCH_ENTITY_NAMES,
  DISPATCH_TABLES,
  SERIAL_KEY_WIDTH,
  type DispatchColumnKind,
  type DispatchEntity,
  type DispatchRecords,
  type DispatchTable,
} from './dispatch-records.js';
import { mappedEntity, type PostgresEntity } from '../../postgres/entity-sql.js';
import { TableMapping, type ColumnType } from '../../postgres/table-mapping.js';

/** The PostgreSQL column type of each kind of dispatch column (schema/007_dispatch.sql). */
export const DISPATCH_COLUMN_TYPES: Readonly<Record<DispatchColumnKind, ColumnType>> = {
  text: 'text',
  integer: 'integer',
  serial: 'integer',
  bigint: 'bigint',
  real: 'float8',
  timestamp: 'timestamptz',
  json: 'json',
};

function mapping<R>(table: DispatchTable<R>): TableMapping<R> {
  return new TableMapping<R>(
    table.table,
    table.columns.map((c) => ({ column: c.column, field: c.field, type: DISPATCH_COLUMN_TYPES[c.kind] })),
    table.key,
  );
}

/** Each dispatch table's mapping to its records. */
export const DISPATCH_MAPPINGS = Object.fromEntries(
  DISPATCH_ENTITY_NAMES.map((entity) => [entity, mapping(DISPATCH_TABLES[entity] as DispatchTable<unknown>)]),
) as {
  readonly [E in DispatchEntity]: TableMapping<DispatchRecords[E]>;
};

/**
 * Each dispatch table as the verifier, backfill and repair see it. A serial key is
 * compared as the zero-padded text records are keyed by (dispatchKeyOf), so the key
 * ranges PostgreSQL splits at are the keys memory holds.
 */
export const DISPATCH_POSTGRES = Object.fromEntries(
  DISPATCH_ENTITY_NAMES.map((entity) => {
    const table = DISPATCH_TABLES[entity] as DispatchTable<unknown>;
    const entitySql = mappedEntity(DISPATCH_MAPPINGS[entity] as TableMapping<object>);
    // No spaces inside an expression: the verifier splits the key list at ", ".
    const keyList = table.key
      .map((name) =>
        table.columns.find((c) => c.column === name)!.kind === 'serial'
          ? `lpad("${name}"::text,${SERIAL_KEY_WIDTH},'0')`
          : `"${name}"`,
      )
      .join(', ');
    return [entity, { ...entitySql, checksum: { ...entitySql.checksum, keyList } }];
  }),
) as { readonly [E in DispatchEntity]: PostgresEntity<DispatchRecords[E]> };
