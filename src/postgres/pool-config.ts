/** libpq's sslmode values node-postgres can honour: require encrypts and trusts any certificate, verify-ca checks the chain, verify-full the chain and host name. */
export type SslMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

/**
 * PostgreSQL pool settings, named after asyncpg's create_pool (seed 004) and read from
 * the environment by the config module (src/runtime/config.ts). Each default is what that plan asks for.
 */
export interface PostgresPoolOptions {
  /** DATABASE_URL: postgresql://user:password@host:port/database. Required. */
  readonly connectionString: string;
  /** POSTGRES_POOL_SIZE: connections kept for steady load. Default 20. */
  readonly poolSize: number;
  /** POSTGRES_MAX_OVERFLOW: extra connections allowed under bursts; max = poolSize + maxOverflow. Default 10. */
  readonly maxOverflow: number;
  /** POSTGRES_POOL_MIN_SIZE: connections opened at start and never evicted (asyncpg min_size). Default 10, at most poolSize. */
  readonly minSize: number;
  /** POSTGRES_MAX_QUERIES: a connection is replaced after this many checkouts (asyncpg max_queries). Default 50000. */
  readonly maxQueriesPerConnection: number;
  /** POSTGRES_IDLE_LIFETIME_SECONDS: idle connections above minSize close after this (asyncpg max_inactive_connection_lifetime). Default 300. */
  readonly idleLifetimeSeconds: number;
  /** POSTGRES_STATEMENT_TIMEOUT_MS: server-side statement_timeout; 0 disables. Default 30000. */
  readonly statementTimeoutMs: number;
  /** POSTGRES_CONNECT_TIMEOUT_MS: wait for a connection (new or from the pool). Default 10000. */
  readonly connectTimeoutMs: number;
  /** sslmode in DATABASE_URL, else PGSSLMODE. Default disable. */
  readonly sslMode: SslMode;
  /** POSTGRES_SCHEMA: schema for dualwrite's tables (created by openDatabase if missing); public stays on the path for pg_trgm. Default: the server's search_path. */
  readonly schema?: string;
}

export const SSL_MODES: readonly SslMode[] = ['disable', 'require', 'verify-ca', 'verify-full'];
