import { ConflictError, NotFoundError } from '../../domain/errors.js';
import { writeContext, type WriteContext } from '../../domain/write-context.js';
import {
  decideGraphJob,
  decideGraphJobEvent,
  decideReplacement,
  eventSeqKey,
  graphJobEventQuery,
  graphJobId,
  graphJobListQuery,
  graphTenantId,
  MAX_EVENT_SEQ,
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
import type { GraphJobStore } from './graph-job-store.js';
import type { RecordKey, RecordPort, ScanOptions } from '../../ports/record-port.js';
import { byNewest, MemorySnapshotStore, type MemoryStoreOptions } from '../../memory/memory-common.js';
import { encodeKey, MemoryTables } from '../../memory/memory-tables.js';

/** Sorts after every job id (a UUID) and every padded seq: the upper bound of a key prefix. */
const AFTER_ALL = '\uffff';

/** GraphJobStore in process memory, optionally persisted to a JSON snapshot file. */
export class MemoryGraphJobStore
  extends MemorySnapshotStore<GraphJobRecords>
  implements GraphJobStore, RecordPort<GraphJobRecords>
{
  readonly tables = new MemoryTables(GRAPH_JOB_ENTITIES);
  private readonly context: WriteContext;
  /** Per job (encoded key), the seq of its last event: appends find the next seq without a scan. */
  private readonly lastSeqs = new Map<string, number>();

  constructor(options: MemoryStoreOptions = {}) {
    super(options);
    this.context = writeContext(options);
  }

  /** Creates a store and loads options.snapshotPath if that file exists. */
  static async open(options: MemoryStoreOptions = {}): Promise<MemoryGraphJobStore> {
    return new MemoryGraphJobStore(options).loadSnapshot(GRAPH_JOB_ENTITIES);
  }

  /** Removes every record. */
  clear(): void {
    this.tables.clear();
    this.lastSeqs.clear();
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
    const current = this.tables.get('graph_jobs', key);
    const replaced = current && replacedGraphJob(current, decided.next, decided.options);
    if (!replaced) return false;
    this.tables.put('graph_jobs', replaced);
    return true;
  }

  async get(tenantId: string, id: string): Promise<GraphJob | null> {
    return this.tables.get('graph_jobs', [graphTenantId(tenantId), graphJobId('id', id)]) ?? null;
  }

  async list(tenantId: string, query: GraphJobListQuery = {}): Promise<GraphJob[]> {
    const tenant = graphTenantId(tenantId);
    const { status, kind, limit } = graphJobListQuery(query);
    return this.tables
      .scan('graph_jobs', { after: [tenant], until: [tenant, AFTER_ALL], limit: Number.MAX_SAFE_INTEGER })
      .filter((job) => (status === null || job.status === status) && (kind === null || job.kind === kind))
      .sort(byNewest)
      .slice(0, limit);
  }

  async appendEvent(tenantId: string, jobId: string, input: GraphJobEventInput): Promise<GraphJobEvent> {
    const tenant = graphTenantId(tenantId);
    const job = graphJobId('jobId', jobId);
    const decided = decideGraphJobEvent(input, this.context);
    if (!this.tables.get('graph_jobs', [tenant, job])) throw new NotFoundError('jobId', job);
    const event = newGraphJobEvent(tenant, job, (this.lastSeqs.get(encodeKey([tenant, job])) ?? 0) + 1, decided);
    this.storeEvent(event);
    return event;
  }

  async listEvents(tenantId: string, jobId: string, query: GraphJobEventQuery = {}): Promise<GraphJobEvent[]> {
    const tenant = graphTenantId(tenantId);
    const job = graphJobId('jobId', jobId);
    const { afterSeq, limit } = graphJobEventQuery(query);
    return this.tables.scan('graph_job_events', {
      after: [tenant, job, eventSeqKey(afterSeq)],
      until: [tenant, job, eventSeqKey(MAX_EVENT_SEQ)],
      limit,
    });
  }

  keyOf<E extends keyof GraphJobRecords>(entity: E, record: GraphJobRecords[E]): RecordKey {
    return GRAPH_JOB_ENTITIES[entity].keyOf(record);
  }

  async scanRecords<E extends keyof GraphJobRecords>(entity: E, options: ScanOptions): Promise<GraphJobRecords[E][]> {
    return this.tables.scan(entity, options);
  }

  async getRecord<E extends keyof GraphJobRecords>(entity: E, key: RecordKey): Promise<GraphJobRecords[E] | null> {
    return this.tables.get(entity, key) ?? null;
  }

  async putRecord<E extends keyof GraphJobRecords>(entity: E, record: GraphJobRecords[E]): Promise<void> {
    const normalized = GRAPH_JOB_ENTITIES[entity].normalize(record);
    if (entity === 'graph_job_events') {
      const event = normalized as GraphJobEvent;
      if (!this.tables.get('graph_jobs', [event.tenantId, event.jobId])) throw new NotFoundError('jobId', event.jobId);
      this.storeEvent(event);
    } else {
      this.tables.put(entity, normalized);
    }
  }

  async deleteRecord<E extends keyof GraphJobRecords>(entity: E, key: RecordKey): Promise<boolean> {
    if (!this.tables.delete(entity, key)) return false;
    const [tenantId, jobId] = key as [string, string];
    // ON DELETE CASCADE, as in the schema: a job's events go with it.
    if (entity === 'graph_jobs') {
      for (const event of this.eventsOf(tenantId, jobId))
        this.tables.delete('graph_job_events', GRAPH_JOB_ENTITIES.graph_job_events.keyOf(event));
    }
    const last = this.eventsOf(tenantId, jobId).at(-1);
    if (last) this.lastSeqs.set(encodeKey([tenantId, jobId]), last.seq);
    else this.lastSeqs.delete(encodeKey([tenantId, jobId]));
    return true;
  }

  private insert(tenantId: string, kind: GraphJobKind, input: GraphJobInput): GraphJob {
    const job = newGraphJob(graphTenantId(tenantId), kind, decideGraphJob(input, this.context));
    if (this.tables.get('graph_jobs', [job.tenantId, job.id])) throw new ConflictError('id', job.id);
    this.tables.put('graph_jobs', job);
    return job;
  }

  private storeEvent(event: GraphJobEvent): void {
    this.tables.put('graph_job_events', event);
    const job = encodeKey([event.tenantId, event.jobId]);
    this.lastSeqs.set(job, Math.max(this.lastSeqs.get(job) ?? 0, event.seq));
  }

  private eventsOf(tenantId: string, jobId: string): GraphJobEvent[] {
    return this.tables.scan('graph_job_events', {
      after: [tenantId, jobId],
      until: [tenantId, jobId, AFTER_ALL],
      limit: Number.MAX_SAFE_INTEGER,
    });
  }
}
