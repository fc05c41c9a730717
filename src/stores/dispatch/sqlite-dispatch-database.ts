import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadBetterSqlite3, type SqliteDatabase } from '../../sqlite/better-sqlite3.js';

/** The dispatch app's SQLite schema, shipped as schema/sqlite/dispatch.sql. */
export const SQLITE_DISPATCH_SCHEMA = fileURLToPath(new URL('../../../schema/sqlite/dispatch.sql', import.meta.url));

/** Creates the dispatch tables and indexes that `db` lacks (every statement is IF NOT EXISTS). */
export function applyDispatchSchema(db: SqliteDatabase): void {
  db.exec(readFileSync(SQLITE_DISPATCH_SCHEMA, 'utf8'));
}

/** Opens (creating if needed) a SQLite file, or ':memory:', with the dispatch schema applied. */
export function openDispatchDatabase(path: string, options: { readonly readonly?: boolean } = {}): SqliteDatabase {
  const Database = loadBetterSqlite3();
  const db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  if (!options.readonly) applyDispatchSchema(db);
  return db;
}
