import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import { openDatabase, type DatabaseConfig } from '../postgres/open-database.js';
import { isPool } from '../postgres/pg-pool-executor.js';
import { RuntimeLease } from '../postgres/runtime-state/runtime-lease.js';
import type { ServerHealth } from '../ports/database-health.js';
import { readServerHealth } from '../postgres/operations/server-health.js';
import type { SqlExecutor } from '../postgres/sql-executor.js';
import { withTimeout } from '../shared/with-timeout.js';
import type { Closers } from './closers.js';
import { poolOptionsFromEnv, type DualWriteConfig } from './config.js';
import type { DualWriteRuntimeOptions } from './runtime-options.js';

/** The runtime's database: the executor passed in as it is, else opened here (and closed with the runtime). */
export async function openRuntimeDatabase(
  given: DualWriteRuntimeOptions['db'],
  config: DualWriteConfig,
  env: NodeJS.ProcessEnv,
  closers: Closers,
): Promise<SqlExecutor> {
  if (isExecutor(given)) return given;
  const { db } = await openDatabase(databaseOf(given, config, env));
  closers.push(() => db.close());
  return db;
}

/**
 * Names this process (as the runtime lease and the background jobs' locks and executions
 * name it) and, unless the lease is off, waits for the runtime lease that keeps a second
 * process off the database.
 */
export async function takeLease(
  db: SqlExecutor,
  options: DualWriteRuntimeOptions['lease'],
  config: DualWriteConfig,
  logger: Pick<Console, 'error'>,
  closers: Closers,
): Promise<string> {
  const holder = (options !== false && options?.holder) || `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  if (options === false) return holder;
  const lease = new RuntimeLease(db, { ttlMs: config.leaseTtlMs, ...options, holder, logger });
  await lease.acquire();
  closers.push(() => lease.release());
  return holder;
}

/** What PostgreSQL says of itself for the metrics, or undefined when it does not answer within `ms`. */
export async function serverHealthWithin(db: SqlExecutor, ms: number): Promise<ServerHealth | undefined> {
  return withTimeout<ServerHealth | undefined>(readServerHealth(db), ms, () => undefined).catch(() => undefined);
}

/** Whether the caller passed an open SqlExecutor (rather than a pool, a connection string or nothing). */
function isExecutor(db: DualWriteRuntimeOptions['db']): db is SqlExecutor {
  return typeof db === 'object' && db !== null && !isPool(db);
}

/** Where to open the database: the application's pool, a connection string (opened as DATABASE_URL would be, with the POSTGRES_* settings of `env`), or the configuration's. */
function databaseOf(db: pg.Pool | string | undefined, config: DualWriteConfig, env: NodeJS.ProcessEnv): DatabaseConfig {
  if (db === undefined) return config.database;
  if (typeof db !== 'string') return { kind: 'application-pool', pool: db };
  return { kind: 'postgres', pool: poolOptionsFromEnv({ ...env, DATABASE_URL: db }) };
}
