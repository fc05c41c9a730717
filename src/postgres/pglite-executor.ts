import { PGlite, types } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import type { PoolStats } from '../ports/database-health.js';
import type { SqlExecutor, SqlTransaction } from './sql-executor.js';

export interface PgliteOptions {
  /** Directory to persist the database in; in memory when absent. */
  readonly dataDir?: string;
}

/** SqlExecutor over embedded PGlite (PostgreSQL in WebAssembly), with pg_trgm loaded. */
export class PgliteExecutor implements SqlExecutor {
  readonly engine = 'pglite';

  private constructor(readonly db: PGlite) {}

  static async open(options: PgliteOptions = {}): Promise<PgliteExecutor> {
    // Timestamps come back as text (see timestampText): PGlite's own parser misreads years below 100.
    const db = await PGlite.create({
      dataDir: options.dataDir,
      extensions: { pg_trgm },
      parsers: { [types.TIMESTAMPTZ]: (text: string) => text },
    });
    await db.exec("SET TIME ZONE 'UTC'");
    return new PgliteExecutor(db);
  }

  async query<Row>(text: string, params: readonly unknown[] = []): Promise<Row[]> {
    return (await this.db.query<Row>(text, params as unknown[])).rows;
  }

  async transaction<T>(work: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) =>
      work({
        query: async <Row>(text: string, params: readonly unknown[] = []) =>
          (await tx.query<Row>(text, params as unknown[])).rows,
        execScript: async (sql: string) => {
          await tx.exec(sql);
        },
      }),
    );
  }

  async execScript(sql: string): Promise<void> {
    await this.db.exec(sql);
  }

  /** PGlite is one connection. */
  poolStats(): PoolStats {
    return { total: 1, idle: 1, waiting: 0, max: 1 };
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
