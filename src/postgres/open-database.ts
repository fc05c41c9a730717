import type pg from 'pg';
import { loadMigrations, migrate, type MigrationReport } from './migrations.js';
import { PgPoolExecutor } from './pg-pool-executor.js';
import { PgliteExecutor } from './pglite-executor.js';
import type { PostgresPoolOptions } from './pool-config.js';
import { redactConnectionStrings, redactUrl } from './redact.js';
import type { SqlExecutor } from './sql-executor.js';
import { DualWriteError } from '../domain/errors.js';

/**
 * Where the database is: a PostgreSQL server (a pool opened with these options), the
 * application's own node-postgres pool (used as it is: its search_path must reach
 * dualwrite's tables), or embedded PGlite (in memory, or in dataDir).
 */
export type DatabaseConfig =
  | { readonly kind: 'postgres'; readonly pool: PostgresPoolOptions }
  | { readonly kind: 'application-pool'; readonly pool: pg.Pool }
  | { readonly kind: 'pglite'; readonly dataDir?: string };

export interface OpenedDatabase {
  readonly db: SqlExecutor;
  /** Where it is, safe to print: the redacted DATABASE_URL, or the PGlite location. */
  readonly description: string;
  readonly migrations: MigrationReport;
}

/** The PostgreSQL server of DATABASE_URL could not be reached, or refused the login; `cause` is the driver's error. */
export class DatabaseUnreachableError extends DualWriteError {
  constructor(
    /** The connection string, its password hidden. */
    readonly where: string,
    cause: unknown,
  ) {
    super(
      `dualwrite: cannot reach PostgreSQL at ${where} (DATABASE_URL): ${redactConnectionStrings(cause instanceof Error ? cause.message : String(cause))}`,
      { cause },
    );
  }
}

/** Opens the database (a PostgreSQL pool, or embedded PGlite) and applies pending migrations from schema/. */
export async function openDatabase(config: DatabaseConfig): Promise<OpenedDatabase> {
  let db: SqlExecutor;
  let description: string;
  if (config.kind === 'postgres') {
    const options = config.pool;
    const pool = new PgPoolExecutor(options);
    description = `PostgreSQL ${redactUrl(options.connectionString)}${options.schema ? ` schema ${options.schema}` : ''}`;
    try {
      // Created only when missing: a role without CREATE on the database may use an existing schema.
      if (
        options.schema &&
        (await pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [options.schema])).length === 0
      )
        await pool.query(`CREATE SCHEMA ${options.schema}`);
      await pool.warm();
    } catch (error) {
      await pool.close().catch(() => {});
      throw new DatabaseUnreachableError(redactUrl(options.connectionString), error);
    }
    db = pool;
  } else if (config.kind === 'application-pool') {
    db = new PgPoolExecutor(config.pool);
    description = "PostgreSQL through the application's pool";
  } else {
    db = await PgliteExecutor.open({ dataDir: config.dataDir });
    description = config.dataDir ? `embedded PGlite in ${config.dataDir}` : 'embedded PGlite (in memory)';
  }
  try {
    return { db, description, migrations: await migrate(db, await loadMigrations()) };
  } catch (error) {
    await db.close();
    throw error;
  }
}
