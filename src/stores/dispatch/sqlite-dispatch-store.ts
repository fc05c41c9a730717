import { DISPATCH_ENTITIES, DISPATCH_ENTITY_NAMES, DISPATCH_TABLES, type DispatchRecords } from './dispatch-records.js';
import {
  applyDispatchUpdate,
  claimUpdate,
  decideClaim,
  decideDispatchTask,
  decideDispatchUpdate,
  decideTaskQuery,
  dispatchTaskId,
  newDispatchTask,
  type DecidedDispatchUpdate,
  type DispatchClaim,
  type DispatchTask,
  type DispatchTaskInput,
  type DispatchTaskPatch,
  type DispatchTaskQuery,
  type DispatchUpdateOptions,
  type DispatchUpdateResult,
} from './dispatch-model.js';
import { ConflictError, NotFoundError } from '../../domain/errors.js';
import { writeContext, type WriteContext } from '../../domain/write-context.js';
import type { DispatchStore } from './dispatch-store.js';
import type { RowHashes } from '../../postgres/row-hash.js';
import type { RangeChecksums } from '../../ports/range-checksums.js';
import type { RecordKey, RecordPort, ScanOptions } from '../../ports/record-port.js';
import { type SqliteDatabase } from '../../sqlite/better-sqlite3.js';
import { StatementCache } from '../../sqlite/statement-cache.js';
import { applyDispatchSchema, openDispatchDatabase } from './sqlite-dispatch-database.js';
import { SqliteRangeChecksums } from './sqlite-range-checksums.js';
import { SqliteTable } from './sqlite-table.js';

const SQL = Object.fromEntries(
  DISPATCH_ENTITY_NAMES.map((entity) => [entity, new SqliteTable(DISPATCH_TABLES[entity] as never)]),
) as {
  readonly [E in keyof DispatchRecords]: SqliteTable<DispatchRecords[E]>;
};

/**
 * DispatchStore on a SQLite database (better-sqlite3): the dispatch app's own dispatch.db,
 * as the old side of a migration. SQLite answers every read and computes the verifier's
 * range checksums (SqliteRangeChecksums); the store keeps no copy of the rows.
 */
export class SqliteDispatchStore implements DispatchStore, RecordPort<DispatchRecords> {
  private readonly context: WriteContext;
  private readonly statements: StatementCache;

  /**
   * A store on `db`, an open better-sqlite3 database (the caller's file; it stays the
   * caller's to close). Creates the dispatch tables it lacks, then reads every row once; a
   * row that is not a valid record throws an InvalidRowError naming its table, key and
   * column (`dualwrite migrate-sqlite` lists all of them).
   */
  constructor(
    readonly db: SqliteDatabase,
    options: Partial<WriteContext> = {},
  ) {
    this.context = writeContext(options);
    this.statements = new StatementCache(db);
    applyDispatchSchema(db);
    for (const entity of DISPATCH_ENTITY_NAMES) this.validate(entity);
  }

  /** A store on a new in-memory SQLite database. */
  static createMemory(options: Partial<WriteContext> = {}): SqliteDispatchStore {
    return new SqliteDispatchStore(openDispatchDatabase(':memory:'), options);
  }

  /** Removes every row of every dispatch table (a resync of this side from PostgreSQL starts with it). */
  clear(): void {
    this.db.transaction(() => {
      for (const entity of DISPATCH_ENTITY_NAMES) this.db.prepare(`DELETE FROM ${DISPATCH_TABLES[entity].table}`).run();
    })();
  }

  async createTask(input: DispatchTaskInput): Promise<DispatchTask> {
    const task = newDispatchTask(decideDispatchTask(input, this.context));
    if (this.statements.get(SQL.tasks.insertSql('skip')).run(...SQL.tasks.insertParams(task)).changes === 0)
      throw new ConflictError('id', task.id);
    return task;
  }

  async getTask(id: string): Promise<DispatchTask | null> {
    return this.getRecord('tasks', [dispatchTaskId('id', id)]);
  }

  async claimTask(id: string, claim: DispatchClaim): Promise<DispatchUpdateResult> {
    const [taskId, decided] = decideClaim(id, claim, this.context);
    return this.apply(claimUpdate(taskId, decided));
  }

  async updateTask(
    id: string,
    patch: DispatchTaskPatch,
    options?: DispatchUpdateOptions,
  ): Promise<DispatchUpdateResult> {
    return this.apply(decideDispatchUpdate(id, patch, options, this.context));
  }

  async listTasks(query?: DispatchTaskQuery): Promise<DispatchTask[]> {
    const { status, project, limit } = decideTaskQuery(query);
    const rows = this.statements
      .get(
        `SELECT ${SQL.tasks.selectList} FROM tasks WHERE (? IS NULL OR status = ?) AND (? IS NULL OR project = ?) ORDER BY id LIMIT ?`,
      )
      .all(status, status, project, project, limit) as Record<string, unknown>[];
    return rows.map((row) => SQL.tasks.toRecord(row));
  }

  /** Reads the row, applies the shared rules, writes the whole row back, in one SQLite transaction. */
  private apply(update: DecidedDispatchUpdate): DispatchUpdateResult {
    return this.db.transaction(() => {
      const row = this.statements.get(SQL.tasks.getSql()).get(update.id) as Record<string, unknown> | undefined;
      if (!row) throw new NotFoundError('id', update.id);
      const applied = applyDispatchUpdate(SQL.tasks.toRecord(row), update);
      if (applied.updated)
        this.statements.get(SQL.tasks.insertSql('overwrite')).run(...SQL.tasks.insertParams(applied.task));
      return applied;
    })();
  }

  keyOf<E extends keyof DispatchRecords>(entity: E, record: DispatchRecords[E]): RecordKey {
    return DISPATCH_ENTITIES[entity].keyOf(record);
  }

  async scanRecords<E extends keyof DispatchRecords>(entity: E, options: ScanOptions): Promise<DispatchRecords[E][]> {
    const { after, until } = options;
    const table = sqlOf(entity);
    const rows = this.statements
      .get(table.scanSql(after !== undefined, until !== undefined))
      .all(...table.rangeParams(after, until), Math.min(options.limit, Number.MAX_SAFE_INTEGER)) as Record<
      string,
      unknown
    >[];
    return rows.map((row) => table.toRecord(row));
  }

  async getRecord<E extends keyof DispatchRecords>(entity: E, key: RecordKey): Promise<DispatchRecords[E] | null> {
    return this.recordNow(entity, key);
  }

  /** The record under `key`, read synchronously (better-sqlite3 is), for a fenced repair. */
  recordNow<E extends keyof DispatchRecords>(entity: E, key: RecordKey): DispatchRecords[E] | null {
    const table = sqlOf(entity);
    const row = this.statements.get(table.getSql()).get(...table.keyValues(key)) as Record<string, unknown> | undefined;
    return row ? table.toRecord(row) : null;
  }

  /** Range checksums of the tables, computed in SQLite, records hashed as `rowHashes` says. */
  rangeChecksums(rowHashes: RowHashes<DispatchRecords>): RangeChecksums {
    return new SqliteRangeChecksums(this.db, SQL, rowHashes);
  }

  async putRecord<E extends keyof DispatchRecords>(entity: E, record: DispatchRecords[E]): Promise<void> {
    await this.putRecords(entity, [record]);
  }

  async putRecords<E extends keyof DispatchRecords>(entity: E, records: readonly DispatchRecords[E][]): Promise<void> {
    const table = sqlOf(entity);
    const normalized = records.map((record) => DISPATCH_ENTITIES[entity].normalize(record));
    const upsert = this.statements.get(table.insertSql('overwrite'));
    this.db.transaction(() => {
      for (const record of normalized) upsert.run(...table.insertParams(record));
    })();
  }

  async deleteRecord<E extends keyof DispatchRecords>(entity: E, key: RecordKey): Promise<boolean> {
    const table = sqlOf(entity);
    return this.statements.get(table.deleteSql()).run(...table.keyValues(key)).changes > 0;
  }

  /** Reads every row of the entity's table as a record, so a row that is not one throws when the store opens. */
  private validate<E extends keyof DispatchRecords>(entity: E): void {
    const table = sqlOf(entity);
    for (const row of this.db
      .prepare(`SELECT ${table.selectList} FROM ${table.spec.table}`)
      .iterate() as IterableIterator<Record<string, unknown>>) {
      table.toRecord(row);
    }
  }
}

function sqlOf<E extends keyof DispatchRecords>(entity: E): SqliteTable<DispatchRecords[E]> {
  const table = SQL[entity];
  if (!table) throw new Error(`unknown entity ${String(entity)}`);
  return table;
}
