import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase } from './better-sqlite3.js';

/** A SQLite statement, prepared once per SQL text. */
export type Statement = BetterSqlite3.Statement<unknown[]>;

/** Prepared statements of one database by SQL text: preparing costs more than running most of these statements. */
export class StatementCache {
  private readonly statements = new Map<string, Statement>();

  constructor(private readonly db: SqliteDatabase) {}

  get(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) this.statements.set(sql, (statement = this.db.prepare<unknown[]>(sql)));
    return statement;
  }
}
