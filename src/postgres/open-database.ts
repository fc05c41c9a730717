import { loadMigrations, migrate, type MigrationReport } from './migrations.js';
import { PgPoolExecutor } from './pg-pool-executor.js';
import { PgliteExecutor } from './pglite-executor.js';
import { poolOptionsFromEnv } from './pool-config.js';
import { redactUrl } from './redact.js';
import type { SqlExecutor } from './sql-executor.js';

export interface OpenedDatabase {
  readonly db: SqlExecutor;
  /** Where it is, safe to print: the redacted DATABASE_URL, or the PGlite location. */
  readonly description: string;
  readonly migrations: MigrationReport;
}

/**
 * Opens PostgreSQL from DATABASE_URL (a pool configured by the POSTGRES_* variables),
 * or embedded PGlite when DATABASE_URL is unset (in memory, or in PGLITE_DATA_DIR),
 * and applies pending migrations from schema/.
 */
export async function openDatabase(env: NodeJS.ProcessEnv = process.env): Promise<OpenedDatabase> {
  let db: SqlExecutor;
  let description: string;
  if (env.DATABASE_URL) {
    const options = poolOptionsFromEnv(env);
    const pool = new PgPoolExecutor(options);
    if (options.schema) await pool.query(`CREATE SCHEMA IF NOT EXISTS ${options.schema}`);
    await pool.warm();
    db = pool;
    description = `PostgreSQL ${redactUrl(env.DATABASE_URL)}${options.schema ? ` schema ${options.schema}` : ''}`;
  } else {
    db = await PgliteExecutor.open({ dataDir: env.PGLITE_DATA_DIR || undefined });
    description = env.PGLITE_DATA_DIR ? `embedded PGlite in ${env.PGLITE_DATA_DIR}` : 'embedded PGlite (in memory)';
  }
  try {
    return { db, description, migrations: await migrate(db, await loadMigrations()) };
  } catch (error) {
    await db.close();
    throw error;
  }
}
