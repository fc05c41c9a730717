import pg from 'pg';
import type { ConnectionTarget } from './connection-target.js';
import type { SslMode } from '../pool-config.js';
import { redactError } from '../redact.js';
import type { SqlQueryable } from '../sql-executor.js';

/**
 * application_name of the connections the `dualwrite db` commands open: a restore may end
 * sessions of this name on the database it replaces (its own, left over), and no others.
 */
export const DB_TOOL_APPLICATION_NAME = 'dualwrite-db';

/** One connection to one database of the server, for maintenance work (CREATE/ALTER DATABASE cannot run through a pool's transaction). */
export interface ServerConnection extends SqlQueryable {
  close(): Promise<void>;
}

/** Connects to `database` (default the target's own) on the target's server; errors never carry the password. */
export async function openServerConnection(
  target: ConnectionTarget,
  sslMode: SslMode,
  options: { database?: string; schema?: string; connectTimeoutMs?: number } = {},
): Promise<ServerConnection> {
  const secrets = target.password ? [target.password] : [];
  const client = new pg.Client({
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    database: options.database ?? target.database,
    application_name: DB_TOOL_APPLICATION_NAME,
    connectionTimeoutMillis: options.connectTimeoutMs,
    // POSTGRES_SCHEMA, as the pool sets it, so the tables are found where the application keeps them.
    ...(options.schema ? { options: `-c search_path=${options.schema},public` } : {}),
    ssl: sslMode === 'disable' ? false : { rejectUnauthorized: sslMode !== 'require' },
  });
  // A connection dropped by the server is reported by the next query; without a listener it would crash the process.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    throw redactError(error, secrets);
  }
  return {
    async query<Row>(text: string, params: readonly unknown[] = []) {
      try {
        return (await client.query(text, params as unknown[])).rows as Row[];
      } catch (error) {
        throw redactError(error, secrets);
      }
    },
    close: () => client.end().catch(() => {}),
  };
}
