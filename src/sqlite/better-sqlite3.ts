import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type BetterSqlite3 from 'better-sqlite3';
import { DualWriteError } from '../domain/errors.js';

/** An open better-sqlite3 database. */
export type SqliteDatabase = BetterSqlite3.Database;

/** better-sqlite3 is missing: an optional peer dependency, needed only for SQLite. */
export class SqliteUnavailableError extends DualWriteError {
  constructor(cause: unknown) {
    super(
      'better-sqlite3 is not installed: it is an optional peer dependency of dualwrite, needed for SQLite (npm install better-sqlite3@12)',
      { cause },
    );
  }
}

/**
 * better-sqlite3's Database constructor, loaded on first use, so that dualwrite itself
 * loads without it: it is needed only by whoever opens a SQLite database.
 */
export function loadBetterSqlite3(): typeof BetterSqlite3 {
  try {
    return createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  } catch (error) {
    throw new SqliteUnavailableError(error);
  }
}

/** The dispatch app's SQLite schema, shipped as schema/sqlite/dispatch.sql. */
export const SQLITE_DISPATCH_SCHEMA = fileURLToPath(new URL('../../schema/sqlite/dispatch.sql', import.meta.url));

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
