import { ConflictError, NotFoundError } from '../../domain/errors.js';
import { writeContext, type WriteContext } from '../../domain/write-context.js';
import {
  decideGraphJob,
  decideGraphJobEvent,
  decideReplacement,
  GRAPH_JOB_KINDS,
  GRAPH_JOB_STATUSES,
  graphJobEventQuery,
  graphJobId,
  graphJobListQuery,
  graphTenantId,
  newGraphJob,
  newGraphJobEvent,
  replacedGraphJob,
  type GraphJob,
  type GraphJobEvent,
  type GraphJobEventInput,
  type GraphJobEventQuery,
  type GraphJobInput,
  type GraphJobKind,
  type GraphJobListQuery,
  type GraphJobReplaceOptions,
  type GraphJobReplacement,
} from './graph-job-model.js';
import { GRAPH_JOB_ENTITIES, type GraphJobRecords } from './graph-job-records.js';
import { lastOfEachKey } from '../../domain/records.js';
import type { GraphJobStore } from './graph-job-store.js';
import type { RecordKey, RecordPort, ScanOptions } from '../../ports/record-port.js';
import type { PostgresStoreOptions } from '../../postgres/postgres-store-options.js';
import type { SqlExecutor } from '../../postgres/sql-executor.js';
import type { TableMapping } from '../../postgres/table-mapping.js';
import { GRAPH_JOB_EVENTS, GRAPH_JOBS } from './graph-job-table-mappings.js';

const MAPPINGS = { graph_jobs: GRAPH_JOBS, graph_job_events: GRAPH_JOB_EVENTS } as const;

/** GraphJobStore on PostgreSQL (a pg pool or PGlite), with schema/006_graph_jobs.sql applied. */
export class PostgresGraphJobStore implements GraphJobStore, RecordPort<GraphJobRecords> {
  private readonly context: WriteContext;

  constructor(
    readonly db: SqlExecutor,
    options: PostgresStoreOptions = {},
  ) {
    this.context = writeContext(options);
  }

  async insertBuildJob(tenantId: string, input: GraphJobInput): Promise<GraphJob> {
    return this.insert(tenantId, 'build', input);
  }

  async insertOverlayJob(tenantId: string, input: GraphJobInput): Promise<GraphJob> {
    return this.insert(tenantId, 'overlay', input);
  }

  async tryReplace(
    tenantId: string,
    id: string,
    next: GraphJobReplacement,
    options: GraphJobReplaceOptions,
  ): Promise<boolean> {
    const key = [graphTenantId(tenantId), graphJobId('id', id)];
    const decided = decideReplacement(next, options, this.context);
    // Lock the row, apply the shared replacement rule, write the whole row back.
    return this.db.transaction(async (tx) => {
      const [row] = await tx.query(`${GRAPH_JOBS.getSql()} FOR UPDATE`, key);
      const replaced = row && replacedGraphJob(GRAPH_JOBS.toRecord(row), decided.next, decided.options);
      if (!replaced) return false;
      await tx.query(GRAPH_JOBS.insertSql('overwrite'), GRAPH_JOBS.insertParams(replaced));
      return true;
    });
  }

  async get(tenantId: string, id: string): Promise<GraphJob | null> {
    return this.getRecord('graph_jobs', [graphTenantId(tenantId), graphJobId('id', id)]);
  }

  async list(tenantId: string, query: GraphJobListQuery = {}): Promise<GraphJob[]> {
    const tenant = graphTenantId(tenantId);
    const { status, kind, limit } = graphJobListQuery(query);
    // Only the filters given, so idx_graph_jobs_tenant_status / _type_status / _created apply.
    const params: unknown[] = [tenant];
    const where = ['tenant_id = $1'];
    if (kind !== null) where.push(`type = $${params.push(GRAPH_JOB_KINDS.indexOf(kind))}::smallint`);
    if (status !== null) where.push(`status = $${params.push(GRAPH_JOB_STATUSES.indexOf(status))}::smallint`);
    const rows = await this.db.query(
      `SELECT ${GRAPH_JOBS.selectList} FROM graph_jobs WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id LIMIT $${params.push(limit)}`,
      params,
    );
    return rows.map((row) => GRAPH_JOBS.toRecord(row));
  }

  async appendEvent(tenantId: string, jobId: string, input: GraphJobEventInput): Promise<GraphJobEvent> {
    const tenant = graphTenantId(tenantId);
    const job = graphJobId('jobId', jobId);
    const decided = decideGraphJobEvent(input, this.context);
    // The job's row lock serializes appends to one job; the last seq is read after it is
    // taken, in a statement of its own, so it sees the append that held the lock before.
    return this.db.transaction(async (tx) => {
      const locked = await tx.query(`SELECT 1 FROM graph_jobs WHERE tenant_id = $1 AND id = $2::uuid FOR UPDATE`, [
        tenant,
        job,
      ]);
      if (locked.length === 0) throw new NotFoundError('jobId', job);
      const [{ last }] = (await tx.query<{ last: number }>(
        `SELECT coalesce(max(seq), 0) AS last FROM graph_job_events WHERE tenant_id = $1 AND job_id = $2::uuid`,
        [tenant, job],
      )) as [{ last: number }];
      const event = newGraphJobEvent(tenant, job, Number(last) + 1, decided);
      await tx.query(GRAPH_JOB_EVENTS.insertSql('skip'), GRAPH_JOB_EVENTS.insertParams(event));
      return event;
    });
  }

  async listEvents(tenantId: string, jobId: string, query: GraphJobEventQuery = {}): Promise<GraphJobEvent[]> {
    const { afterSeq, limit } = graphJobEventQuery(query);
    const rows = await this.db.query(
      `SELECT ${GRAPH_JOB_EVENTS.selectList} FROM graph_job_events WHERE tenant_id = $1 AND job_id = $2::uuid AND seq > $3 ORDER BY seq LIMIT $4`,
      [graphTenantId(tenantId), graphJobId('jobId', jobId), afterSeq, limit],
    );
    return rows.map((row) => GRAPH_JOB_EVENTS.toRecord(row));
  }

  keyOf<E extends keyof GraphJobRecords>(entity: E, record: GraphJobRecords[E]): RecordKey {
    return GRAPH_JOB_ENTITIES[entity].keyOf(record);
  }

  async scanRecords<E extends keyof GraphJobRecords>(entity: E, options: ScanOptions): Promise<GraphJobRecords[E][]> {
    const mapping = this.mapping(entity);
    const { after, until } = options;
    const rows = await this.db.query(mapping.scanSql(after !== undefined, until !== undefined), [
      ...(after ? mapping.keyValues(after) : []),
      ...(until ? mapping.keyValues(until) : []),
      options.limit,
    ]);
    return rows.map((row) => mapping.toRecord(row));
  }

  async getRecord<E extends keyof GraphJobRecords>(entity: E, key: RecordKey): Promise<GraphJobRecords[E] | null> {
    const mapping = this.mapping(entity);
    const [row] = await this.db.query(mapping.getSql(), mapping.keyValues(key));
    return row ? mapping.toRecord(row) : null;
  }

  async putRecord<E extends keyof GraphJobRecords>(entity: E, record: GraphJobRecords[E]): Promise<void> {
    const mapping = this.mapping(entity);
    await this.db.query(
      mapping.insertSql('overwrite'),
      mapping.insertParams(GRAPH_JOB_ENTITIES[entity].normalize(record)),
    );
  }

  async putRecords<E extends keyof GraphJobRecords>(entity: E, records: readonly GraphJobRecords[E][]): Promise<void> {
    const mapping = this.mapping(entity);
    const definition = GRAPH_JOB_ENTITIES[entity];
    const normalized = lastOfEachKey(
      records.map((record) => definition.normalize(record)),
      (record) => definition.keyOf(record),
    );
    if (normalized.length > 0)
      await this.db.query(mapping.bulkInsertSql('overwrite'), mapping.bulkInsertParams(normalized));
  }

  async deleteRecord<E extends keyof GraphJobRecords>(entity: E, key: RecordKey): Promise<boolean> {
    const mapping = this.mapping(entity);
    return (await this.db.query(mapping.deleteSql(), mapping.keyValues(key))).length > 0;
  }

  private async insert(tenantId: string, kind: GraphJobKind, input: GraphJobInput): Promise<GraphJob> {
    const job = newGraphJob(graphTenantId(tenantId), kind, decideGraphJob(input, this.context));
    const rows = await this.db.query(GRAPH_JOBS.insertSql('skip'), GRAPH_JOBS.insertParams(job));
    if (rows.length === 0) throw new ConflictError('id', job.id);
    return job;
  }

  private mapping<E extends keyof GraphJobRecords>(entity: E): TableMapping<GraphJobRecords[E]> {
    return MAPPINGS[entity] as unknown as TableMapping<GraphJobRecords[E]>;
  }
}
