import { DISPATCH_ENTITIES, DISPATCH_TABLES, dispatchKeyValues, type DispatchRecords } from './dispatch-records.js';
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
import { lastOfEachKey } from '../../domain/records.js';
import type { DispatchStore } from './dispatch-store.js';
import type { RecordKey, RecordPort, ScanOptions } from '../../ports/record-port.js';
import { DISPATCH_MAPPINGS } from './dispatch-table-mappings.js';
import type { PostgresStoreOptions } from '../../postgres/postgres-store-options.js';
import type { SqlExecutor } from '../../postgres/sql-executor.js';
import type { TableMapping } from '../../postgres/table-mapping.js';

const TASKS = DISPATCH_MAPPINGS.tasks;

/** DispatchStore on PostgreSQL (a pg pool or PGlite), with schema/007_dispatch.sql applied. */
export class PostgresDispatchStore implements DispatchStore, RecordPort<DispatchRecords> {
  private readonly context: WriteContext;

  constructor(
    readonly db: SqlExecutor,
    options: PostgresStoreOptions = {},
  ) {
    this.context = writeContext(options);
  }

  async createTask(input: DispatchTaskInput): Promise<DispatchTask> {
    const task = newDispatchTask(decideDispatchTask(input, this.context));
    const rows = await this.db.query(TASKS.insertSql('skip'), TASKS.insertParams(task));
    if (rows.length === 0) throw new ConflictError('id', task.id);
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
    const rows = await this.db.query(
      `SELECT ${TASKS.selectList} FROM tasks WHERE ($1::text IS NULL OR status = $1::text) AND ($2::text IS NULL OR project = $2::text) ORDER BY id LIMIT $3`,
      [status, project, limit],
    );
    return rows.map((row) => TASKS.toRecord(row));
  }

  /** Locks the row, applies the shared rules, writes the whole row back. */
  private async apply(update: DecidedDispatchUpdate): Promise<DispatchUpdateResult> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx.query(`${TASKS.getSql()} FOR UPDATE`, [update.id]);
      if (!row) throw new NotFoundError('id', update.id);
      const result = applyDispatchUpdate(TASKS.toRecord(row), update);
      if (result.updated) await tx.query(TASKS.insertSql('overwrite'), TASKS.insertParams(result.task));
      return result;
    });
  }

  keyOf<E extends keyof DispatchRecords>(entity: E, record: DispatchRecords[E]): RecordKey {
    return DISPATCH_ENTITIES[entity].keyOf(record);
  }

  async scanRecords<E extends keyof DispatchRecords>(entity: E, options: ScanOptions): Promise<DispatchRecords[E][]> {
    const { after, until } = options;
    const table = mappingOf(entity);
    const rows = await this.db.query(table.scanSql(after !== undefined, until !== undefined), [
      ...(after ? keyParams(entity, after) : []),
      ...(until ? keyParams(entity, until) : []),
      options.limit,
    ]);
    return rows.map((row) => table.toRecord(row));
  }

  async getRecord<E extends keyof DispatchRecords>(entity: E, key: RecordKey): Promise<DispatchRecords[E] | null> {
    const table = mappingOf(entity);
    const [row] = await this.db.query(table.getSql(), keyParams(entity, key));
    return row ? table.toRecord(row) : null;
  }

  async putRecord<E extends keyof DispatchRecords>(entity: E, record: DispatchRecords[E]): Promise<void> {
    const table = mappingOf(entity);
    await this.db.query(table.insertSql('overwrite'), table.insertParams(DISPATCH_ENTITIES[entity].normalize(record)));
  }

  async putRecords<E extends keyof DispatchRecords>(entity: E, records: readonly DispatchRecords[E][]): Promise<void> {
    const { keyOf, normalize } = DISPATCH_ENTITIES[entity];
    const unique = lastOfEachKey(
      records.map((record) => normalize(record)),
      keyOf,
    );
    const table = mappingOf(entity);
    if (unique.length > 0) await this.db.query(table.bulkInsertSql('overwrite'), table.bulkInsertParams(unique));
  }

  async deleteRecord<E extends keyof DispatchRecords>(entity: E, key: RecordKey): Promise<boolean> {
    return (await this.db.query(mappingOf(entity).deleteSql(), keyParams(entity, key))).length > 0;
  }
}

function mappingOf<E extends keyof DispatchRecords>(entity: E): TableMapping<DispatchRecords[E]> {
  const table = DISPATCH_MAPPINGS[entity];
  if (!table) throw new Error(`unknown entity ${String(entity)}`);
  return table;
}

/** Key parts as parameters: serial ids as numbers, which the mapping's ::integer casts take as they are. */
function keyParams(entity: keyof DispatchRecords, key: RecordKey): (string | number)[] {
  return dispatchKeyValues(DISPATCH_TABLES[entity] as never, key);
}
