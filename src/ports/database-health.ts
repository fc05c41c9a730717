// What the database reports about its own health: the process's connection pool, and the server itself.

/** The connection pool's gauges, for metrics and the admin status. */
export interface PoolStats {
  readonly total: number;
  readonly idle: number;
  /** Callers waiting for a connection: above 0 for long, the pool is exhausted. */
  readonly waiting: number;
  /** The most connections the pool opens. */
  readonly max: number;
}

/** What the PostgreSQL server says about itself: for `db health`, the status page and the alert metrics. */
export interface ServerHealth {
  /** server_version, e.g. "15.8 (Debian 15.8-0+deb12u1)". */
  readonly version: string;
  /** pg_database_size of the current database. */
  readonly databaseBytes: number;
  /** Backends connected to the server, and max_connections. */
  readonly connections: { readonly used: number; readonly max: number };
  /** Replay lag of each streaming replica (pg_stat_replication), in seconds; empty without replicas or the right to see them. */
  readonly replicas: readonly { readonly name: string; readonly lagSeconds: number }[];
  /**
   * The disk holding the data directory, when it is visible from this process (the server
   * runs on this machine and the role may read data_directory); undefined otherwise.
   */
  readonly disk?: { readonly totalBytes: number; readonly freeBytes: number };
}
