import { MIGRATIONS_TABLE } from './dualwrite-tables.js';
import type { Migration } from '../migrations.js';
import type { SqlQueryable } from '../sql-executor.js';

/** Which of the shipped migrations a database has, and which it still lacks. */
export interface SchemaVersion {
  /** Versions recorded in dualwrite_schema_migrations, ascending. */
  readonly applied: readonly number[];
  /** Versions of the migration files shipped (loadMigrations()). */
  readonly available: readonly number[];
  /** Shipped migrations not applied yet, by file name. */
  readonly pending: readonly string[];
  /** The highest applied version, 0 for none. */
  readonly current: number;
}

/** Compares dualwrite_schema_migrations with `available`; a database never migrated has applied nothing. */
export async function readSchemaVersion(db: SqlQueryable, available: readonly Migration[]): Promise<SchemaVersion> {
  const [exists] = await db.query<{ present: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS present`, [
    MIGRATIONS_TABLE,
  ]);
  const applied = exists!.present
    ? (await db.query<{ version: number }>(`SELECT version FROM ${MIGRATIONS_TABLE} ORDER BY version`)).map((row) =>
        Number(row.version),
      )
    : [];
  const appliedSet = new Set(applied);
  return {
    applied,
    available: available.map((migration) => migration.version),
    pending: available.filter((migration) => !appliedSet.has(migration.version)).map((migration) => migration.name),
    current: applied.at(-1) ?? 0,
  };
}
