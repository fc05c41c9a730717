import { isDeepStrictEqual } from 'node:util';
import type { FencedOutcome, FencedWrites } from '../ports/fenced-writes.js';
import type { RecordKey, RecordPort } from '../ports/record-port.js';
import type { PostgresEntity } from './entity-sql.js';
import type { SqlExecutor } from './sql-executor.js';
import { TransactionExecutor } from './transaction-executor.js';

/** Fenced writes in PostgreSQL: the row is locked (or inserted only if still absent) and written in one transaction. */
export class PostgresFencedWrites implements FencedWrites {
  constructor(
    private readonly db: SqlExecutor,
    private readonly entities: Readonly<Record<string, PostgresEntity>>,
    /** The store's RecordPort on another executor (the transaction). */
    private readonly storeOn: (db: SqlExecutor) => RecordPort<Record<string, object>>,
  ) {}

  async writeIfUnchanged(
    entity: string,
    key: RecordKey,
    expected: unknown,
    record: object | null,
  ): Promise<FencedOutcome> {
    const sql = this.entities[entity];
    if (!sql) throw new TypeError(`no PostgreSQL SQL for entity ${entity}`);
    return this.db.transaction(async (tx) => {
      const port = this.storeOn(new TransactionExecutor(tx, this.db.engine));
      const current = await sql.lockForUpdate(tx, key);
      // Already what is wanted (a cascade of an earlier write, or a late mirror write): nothing to do.
      if (isDeepStrictEqual(current, record)) return 'already_equal';
      if (!isDeepStrictEqual(current, expected)) return 'skipped_newer';
      if (record === null) {
        await port.deleteRecord(entity, key);
        return 'repaired';
      }
      if (current === null) {
        // Absent rows cannot be locked: insert only if still absent, so a concurrent insert wins.
        return (await sql.insertIfAbsent(tx, record)) ? 'repaired' : 'skipped_newer';
      }
      await port.putRecord(entity, record);
      return 'repaired';
    });
  }
}
