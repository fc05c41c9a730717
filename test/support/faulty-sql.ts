import type { SqlExecutor, SqlTransaction } from '../../src/postgres/sql-executor.js';

/**
 * A real database behind a switch: while `down`, every statement fails before it reaches
 * the database, as a refused connection would (PGlite has no socket to cut; for a server,
 * the TCP proxy does the same on the wire).
 */
export class FaultySql implements SqlExecutor {
  down = false;
  /** Statements and transactions refused while down: how often the database was tried. */
  refused = 0;
  /** Transactions begun while up. */
  transactions = 0;
  /** Statements run inside transactions while up: how many round trips a batch took. */
  statementsInTransactions = 0;
  /** While set, statements wait for it before they run (a server that stopped answering). */
  private stalled: Promise<void> | undefined;

  constructor(private readonly db: SqlExecutor) {}

  get engine(): SqlExecutor['engine'] {
    return this.db.engine;
  }

  /** Holds every statement from now until the returned function is called. */
  stall(): () => void {
    let release!: () => void;
    this.stalled = new Promise((resolve) => (release = resolve));
    return () => {
      this.stalled = undefined;
      release();
    };
  }

  async query<Row = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<Row[]> {
    await this.stalled;
    this.check();
    return this.db.query<Row>(text, params);
  }

  async transaction<T>(work: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    await this.stalled;
    this.check();
    this.transactions++;
    return this.db.transaction((tx) =>
      work({
        query: async <Row = Record<string, unknown>>(text: string, params?: readonly unknown[]) => {
          this.check();
          this.statementsInTransactions++;
          return tx.query<Row>(text, params);
        },
        execScript: async (sql: string) => {
          this.check();
          await tx.execScript(sql);
        },
      }),
    );
  }

  async execScript(sql: string): Promise<void> {
    this.check();
    await this.db.execScript(sql);
  }

  poolStats(): ReturnType<SqlExecutor['poolStats']> {
    return this.db.poolStats();
  }

  close(): Promise<void> {
    return this.db.close();
  }

  private check(): void {
    if (this.down) this.refused++;
    if (this.down)
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432 (injected outage)'), { code: 'ECONNREFUSED' });
  }
}
