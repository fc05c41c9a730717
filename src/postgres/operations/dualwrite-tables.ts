import type { Migration } from '../migrations.js';
import { quoteIdentifier } from './connection-target.js';
import type { SqlQueryable } from '../sql-executor.js';

/** The bookkeeping table of applied migrations (created by migrate(), not by a migration file). */
export const MIGRATIONS_TABLE = 'dualwrite_schema_migrations';

/**
 * The tables dualwrite owns: those the migration files create, and the migrations table.
 * Read from the files so a new migration's tables are backed up and checked without a list to keep.
 */
export function dualwriteTables(migrations: readonly Migration[]): string[] {
  const created = migrations.flatMap((migration) =>
    [...migration.sql.matchAll(/CREATE TABLE (?:IF NOT EXISTS )?(\w+)/gi)].map((match) => match[1]!.toLowerCase()),
  );
  return [...new Set([...created, MIGRATIONS_TABLE])].sort();
}

/** Row count of each of `tables` that exists on the search_path; a missing table is left out. */
export async function countRows(db: SqlQueryable, tables: readonly string[]): Promise<Record<string, number>> {
  const present = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c WHERE c.relkind IN ('r', 'p') AND c.relname = ANY($1) AND pg_table_is_visible(c.oid)`,
    [tables],
  );
  const counts: Record<string, number> = {};
  for (const { name } of present.sort((a, b) => a.name.localeCompare(b.name))) {
    const [row] = await db.query<{ count: string }>(`SELECT count(*) AS count FROM ${quoteIdentifier(name)}`);
    counts[name] = Number(row!.count);
  }
  return counts;
}

/** True when any dualwrite table holds data: rows anywhere but the migrations' bookkeeping, which every migrated database has. */
export function holdsData(counts: Record<string, number>): boolean {
  return Object.entries(counts).some(([table, count]) => table !== MIGRATIONS_TABLE && count > 0);
}
