import { statfs } from 'node:fs/promises';
import type { ServerHealth } from '../../ports/database-health.js';
import type { SqlQueryable } from '../sql-executor.js';

/** Reads ServerHealth with a few catalog queries; throws when PostgreSQL does not answer. */
export async function readServerHealth(db: SqlQueryable): Promise<ServerHealth> {
  const [row] = await db.query<{ version: string; size: string | number; used: string | number; max: string | number }>(
    `SELECT current_setting('server_version') AS version, pg_database_size(current_database()) AS size,
            (SELECT count(*) FROM pg_stat_activity) AS used, current_setting('max_connections') AS max`,
  );
  const replicas = await db
    .query<{ name: string; lag: string | number | null }>(
      `SELECT coalesce(application_name, client_addr::text, pid::text) AS name, coalesce(extract(epoch FROM replay_lag), 0) AS lag FROM pg_stat_replication`,
    )
    .catch(() => []);
  return {
    version: row!.version,
    databaseBytes: Number(row!.size),
    connections: { used: Number(row!.used), max: Number(row!.max) },
    replicas: replicas.map((replica) => ({ name: replica.name, lagSeconds: Number(replica.lag ?? 0) })),
    ...(await dataDisk(db)),
  };
}

/** Size and free space of the data directory's file system, when the server is on this machine and this process can see it. */
async function dataDisk(db: SqlQueryable): Promise<{ disk?: ServerHealth['disk'] }> {
  try {
    const [row] = await db.query<{ dir: string; address: string | null }>(
      `SELECT current_setting('data_directory') AS dir, host(inet_server_addr()) AS address`,
    );
    // A path on this machine says nothing about a server elsewhere (null: a Unix socket, so local).
    if (row!.address !== null && !['127.0.0.1', '::1'].includes(row!.address)) return {};
    const stats = await statfs(row!.dir);
    return { disk: { totalBytes: stats.blocks * stats.bsize, freeBytes: stats.bavail * stats.bsize } };
  } catch {
    // Not allowed to read data_directory, or the server is on another machine: not visible.
    return {};
  }
}
