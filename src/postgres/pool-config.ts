import { malformedUrlReason, redactUrl } from './redact.js';

export type SslMode = 'disable' | 'require' | 'verify-full';

/**
 * PostgreSQL pool settings, named after asyncpg's create_pool (seed 004) and read from
 * the environment by poolOptionsFromEnv. Each default is what that plan asks for.
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
  /** POSTGRES_SSL_MODE: disable, require (encrypt, trust any certificate) or verify-full. Default disable. */
  readonly sslMode: SslMode;
  /** POSTGRES_SCHEMA: schema for dualwrite's tables (created by openDatabase if missing); public stays on the path for pg_trgm. Default: the server's search_path. */
  readonly schema?: string;
}

const SSL_MODES: readonly SslMode[] = ['disable', 'require', 'verify-full'];

/** Reads PostgresPoolOptions from environment variables; a bad value throws naming the variable. */
export function poolOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): PostgresPoolOptions {
  const connectionString = env.DATABASE_URL;
  if (!connectionString) throw new TypeError('DATABASE_URL is not set');
  if (!/^postgres(ql)?:\/\//.test(connectionString)) {
    throw new TypeError(`DATABASE_URL must start with postgres:// or postgresql://, got ${redactUrl(connectionString)}`);
  }
  const malformed = malformedUrlReason(connectionString);
  if (malformed) throw new TypeError(`DATABASE_URL ${malformed}`);
  const poolSize = integer(env, 'POSTGRES_POOL_SIZE', 20, 1);
  const sslMode = (env.POSTGRES_SSL_MODE || 'disable') as SslMode;
  if (!SSL_MODES.includes(sslMode)) {
    throw new TypeError(`POSTGRES_SSL_MODE must be one of ${SSL_MODES.join(', ')}, got ${JSON.stringify(env.POSTGRES_SSL_MODE)}`);
  }
  return {
    connectionString,
    poolSize,
    maxOverflow: integer(env, 'POSTGRES_MAX_OVERFLOW', 10, 0),
    minSize: Math.min(integer(env, 'POSTGRES_POOL_MIN_SIZE', 10, 0), poolSize),
    maxQueriesPerConnection: integer(env, 'POSTGRES_MAX_QUERIES', 50000, 1),
    idleLifetimeSeconds: integer(env, 'POSTGRES_IDLE_LIFETIME_SECONDS', 300, 1),
    statementTimeoutMs: integer(env, 'POSTGRES_STATEMENT_TIMEOUT_MS', 30000, 0),
    connectTimeoutMs: integer(env, 'POSTGRES_CONNECT_TIMEOUT_MS', 10000, 1),
    sslMode,
    schema: identifier(env, 'POSTGRES_SCHEMA'),
  };
}

function identifier(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(raw)) throw new TypeError(`${name} must be a lowercase SQL identifier, got ${JSON.stringify(raw)}`);
  return raw;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new TypeError(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}
