import { createRequire } from 'node:module';
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
