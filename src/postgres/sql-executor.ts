import type { PoolStats } from '../ports/database-health.js';

/**
 * The subset of a PostgreSQL client the stores use, so they run unchanged on a `pg`
 * pool or on embedded PGlite (as kysely's dialects declare only what they need).
 */
export interface SqlQueryable {
  /** Runs one parameterized statement and returns its rows. */
  query<Row = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<Row[]>;
}

/** A connection inside an open transaction. */
export interface SqlTransaction extends SqlQueryable {
  /** Runs a script of several statements without parameters (migrations). */
  execScript(sql: string): Promise<void>;
  /**
   * Runs `COPY ... FROM STDIN` (`statement`) with `text` as its input, in COPY's text
   * format. Absent where the engine has no COPY protocol (PGlite): callers insert instead.
   */
  copyFrom?(statement: string, text: string): Promise<void>;
}

export interface SqlExecutor extends SqlQueryable {
  /** Which engine this is, for reports: "postgres" or "pglite". */
  readonly engine: 'postgres' | 'pglite';
  /** Runs `work` in one transaction on one connection; commits if it resolves, rolls back if it throws. */
  transaction<T>(work: (tx: SqlTransaction) => Promise<T>): Promise<T>;
  /** Runs a script of several statements without parameters (migrations). */
  execScript(sql: string): Promise<void>;
  /** Connection pool gauges, for metrics. */
  poolStats(): PoolStats;
  close(): Promise<void>;
}

/** The fields of a database error the stores map to their own errors. */
export interface DatabaseErrorFields {
  readonly code?: string;
  readonly constraint?: string;
}
