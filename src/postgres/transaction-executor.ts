import type { PoolStats } from '../ports/database-health.js';
import type { SqlExecutor, SqlTransaction } from './sql-executor.js';

/**
 * A SqlExecutor bound to one open transaction, so stores can run inside a caller's
 * transaction (the mirror applies a batch of writes in one). Their own transactions
 * become savepoints.
 */
export class TransactionExecutor implements SqlExecutor {
  private savepoints = 0;

  constructor(
    private readonly tx: SqlTransaction,
    readonly engine: SqlExecutor['engine'],
  ) {}

  query<Row>(text: string, params?: readonly unknown[]): Promise<Row[]> {
    return this.tx.query<Row>(text, params);
  }

  async transaction<T>(work: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    const name = `dualwrite_${++this.savepoints}`;
    await this.tx.query(`SAVEPOINT ${name}`);
    try {
      const result = await work(this.tx);
      await this.tx.query(`RELEASE SAVEPOINT ${name}`);
      return result;
    } catch (error) {
      await this.tx.query(`ROLLBACK TO SAVEPOINT ${name}`);
      throw error;
    }
  }

  execScript(sql: string): Promise<void> {
    return this.tx.execScript(sql);
  }

  poolStats(): PoolStats {
    return { total: 1, idle: 0, waiting: 0, max: 1 };
  }

  /** The transaction belongs to its opener, who commits or rolls it back. */
  async close(): Promise<void> {}
}
