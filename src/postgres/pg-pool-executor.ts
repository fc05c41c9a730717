import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import pg from 'pg';
import type { PostgresPoolOptions, SslMode } from './pool-config.js';
import { redactError, secretsOf } from './redact.js';
import type { PoolStats } from '../ports/database-health.js';
import type { SqlExecutor, SqlTransaction } from './sql-executor.js';

const TIMESTAMPTZ_OID = 1184;

/**
 * Timestamps come back as text and are parsed by timestampText, the same on every engine.
 * Given with each query rather than to the pool, so a pool the application passes in keeps
 * its own type parsers.
 */
const TYPES = {
  getTypeParser: (oid: number, format?: string) =>
    oid === TIMESTAMPTZ_OID ? (text: string) => text : pg.types.getTypeParser(oid, format as 'text'),
};

/**
 * SqlExecutor over a node-postgres pool: one it opens, configured like asyncpg's, or the
 * application's own (`new PgPoolExecutor(pool)`), which it uses as it is and never ends.
 * Errors never carry the password.
 */
export class PgPoolExecutor implements SqlExecutor {
  readonly engine = 'postgres';
  readonly pool: pg.Pool;
  private readonly secrets: string[];
  /** The options of a pool this executor opened (and ends on close); undefined for the application's pool. */
  private readonly options: PostgresPoolOptions | undefined;

  constructor(source: PostgresPoolOptions | pg.Pool) {
    if (isPool(source)) {
      this.pool = source;
      this.options = undefined;
      this.secrets = [
        ...secretsOf(source.options.connectionString ?? ''),
        ...(typeof source.options.password === 'string' ? [source.options.password] : []),
      ];
      return;
    }
    const options = source;
    this.options = options;
    this.secrets = secretsOf(options.connectionString);
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize + options.maxOverflow,
      min: options.minSize,
      maxUses: options.maxQueriesPerConnection,
      idleTimeoutMillis: options.idleLifetimeSeconds * 1000,
      connectionTimeoutMillis: options.connectTimeoutMs,
      statement_timeout: options.statementTimeoutMs || undefined,
      ssl: sslOptions(options.sslMode),
      options: ['-c TimeZone=UTC', ...(options.schema ? [`-c search_path=${options.schema},public`] : [])].join(' '),
      allowExitOnIdle: true,
    });
    // An idle client's connection can die (server restart); the pool replaces it. Without a
    // listener that error would crash the process.
    this.pool.on('error', () => {});
  }

  /** Opens minSize connections now, as asyncpg does; node-postgres opens them lazily otherwise. The application's pool is left as it is. */
  async warm(): Promise<void> {
    const clients = await Promise.all(
      Array.from({ length: this.options?.minSize ?? 0 }, () => this.guard(this.pool.connect())),
    );
    for (const client of clients) client.release();
  }

  async query<Row>(text: string, params: readonly unknown[] = []): Promise<Row[]> {
    const result = await this.guard(this.pool.query({ text, values: params as unknown[], types: TYPES }));
    return result.rows as Row[];
  }

  async transaction<T>(work: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    const client = await this.guard(this.pool.connect());
    let broken: unknown;
    // pg-pool drops its own error listener while a client is checked out: without this one
    // a connection cut mid-transaction (a server restart) would crash the process.
    const onError = (error: Error) => (broken = error);
    client.on('error', onError);
    try {
      await this.guard(client.query('BEGIN'));
      const tx: SqlTransaction = {
        query: async <Row>(text: string, params: readonly unknown[] = []) =>
          (await this.guard(client.query({ text, values: params as unknown[], types: TYPES }))).rows as Row[],
        execScript: async (sql: string) => {
          await this.guard(client.query(sql));
        },
        copyFrom: (statement: string, text: string) =>
          this.guard(pipeline(Readable.from([text]), client.query(copyFrom(statement)))),
      };
      const result = await work(tx);
      await this.guard(client.query('COMMIT'));
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        broken = rollbackError;
      }
      throw error;
    } finally {
      client.off('error', onError);
      // A connection that failed or whose rollback failed is in an unknown state: destroy it.
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  async execScript(sql: string): Promise<void> {
    await this.guard(this.pool.query(sql));
  }

  poolStats(): PoolStats {
    const max = this.options ? this.options.poolSize + this.options.maxOverflow : (this.pool.options.max ?? 10);
    return { total: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount, max };
  }

  /** Ends a pool this executor opened; the application's pool is the application's to end. */
  async close(): Promise<void> {
    if (this.options) await this.pool.end();
  }

  private async guard<T>(promise: Promise<T>): Promise<T> {
    try {
      return await promise;
    } catch (error) {
      throw redactError(error, this.secrets);
    }
  }
}

/** node-postgres' TLS settings for a libpq sslmode. */
function sslOptions(mode: SslMode): false | { rejectUnauthorized: boolean; checkServerIdentity?: () => undefined } {
  if (mode === 'disable') return false;
  if (mode === 'require') return { rejectUnauthorized: false };
  // verify-ca checks the certificate chain but not that it names this host.
  return mode === 'verify-ca'
    ? { rejectUnauthorized: true, checkServerIdentity: () => undefined }
    : { rejectUnauthorized: true };
}

/** A node-postgres pool, told apart by shape: the application's `pg` may be another copy than ours, so instanceof cannot. */
export function isPool(value: unknown): value is pg.Pool {
  const candidate = value as Partial<pg.Pool> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.connect === 'function' &&
    typeof candidate.query === 'function' &&
    typeof candidate.totalCount === 'number'
  );
}
