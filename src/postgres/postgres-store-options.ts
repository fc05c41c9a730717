import type { Clock, IdGenerator } from '../domain/time.js';

/** Options of the PostgreSQL stores. */
export interface PostgresStoreOptions {
  /** Decides write times the caller leaves out. Default: the system clock. */
  readonly clock?: Clock;
  /** Decides ids the caller leaves out. Default: random UUIDs. */
  readonly ids?: IdGenerator;
}
