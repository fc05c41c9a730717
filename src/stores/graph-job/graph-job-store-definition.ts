import {
  decideGraphJob,
  decideGraphJobEvent,
  decideReplacement,
  graphJobId,
  graphTenantId,
  type GraphJobEvent,
} from './graph-job-model.js';
import { GRAPH_JOB_ENTITIES, type GraphJobRecords } from './graph-job-records.js';
import { MemoryGraphJobStore } from './memory-graph-job-store.js';
import { mappedEntity, type PostgresEntity } from '../../postgres/entity-sql.js';
import { PostgresGraphJobStore } from './postgres-graph-job-store.js';
import { GRAPH_JOB_EVENTS, GRAPH_JOBS } from './graph-job-table-mappings.js';
import type { GraphJobStore } from './graph-job-store.js';
import type { StoreDescription, WriteSpec } from '../../ports/store-description.js';
import type { StoreDefinition } from '../store-definition.js';

/**
 * Routing key of a tenant's job: its writes and its events' writes are mirrored in order,
 * and reads of it stick to one side. The tenant is part of it, so two tenants' jobs under
 * one id are independent keys. Read keys see raw arguments, so nothing here throws.
 */
const job = (tenantId: unknown, id: unknown) => `graph_job:${String(tenantId)}\u0000${String(id).toLowerCase()}`;

/** Validates the tenant and decides the job to insert, once, for both sides. */
const insertJob: WriteSpec<Parameters<GraphJobStore['insertBuildJob']>> = {
  kind: 'write',
  key: (tenantId, input) => job(tenantId, input.id),
  decide: (context, tenantId, input) => [graphTenantId(tenantId), decideGraphJob(input, context)],
  affects: ([tenantId, input]) => [{ entity: 'graph_jobs', key: [tenantId, input.id!] }],
};

export const GRAPH_JOB_STORE_METHODS: StoreDescription<GraphJobStore> = {
  insertBuildJob: insertJob,
  insertOverlayJob: insertJob,
  tryReplace: {
    kind: 'write',
    key: job,
    decide: (context, tenantId, id, next, options) => {
      const decided = decideReplacement(next, options, context);
      return [graphTenantId(tenantId), graphJobId('id', id), decided.next, decided.options];
    },
    // The authoritative side decided the compare-and-set: the other side copies the outcome.
    affects: ([tenantId, id], replaced) => (replaced ? [{ entity: 'graph_jobs', key: [tenantId, id] }] : []),
  },
  get: { kind: 'read', key: job },
  list: { kind: 'read' },
  // The authoritative side numbers the event; the other side copies it under that seq.
  appendEvent: {
    kind: 'write',
    key: job,
    decide: (context, tenantId, jobId, event) => [
      graphTenantId(tenantId),
      graphJobId('jobId', jobId),
      decideGraphJobEvent(event, context),
    ],
    affects: (_args, event) => [
      { entity: 'graph_job_events', key: GRAPH_JOB_ENTITIES.graph_job_events.keyOf(event as GraphJobEvent) },
    ],
  },
  listEvents: { kind: 'read', key: job },
};

/**
 * The key-splitting expressions the verifier reads back as key parts: seq zero-padded as
 * its key part is (eventSeqKey), so a split point taken from PostgreSQL bounds the same
 * range in memory. (No ", " inside an expression: the verifier splits the list on it.)
 */
const EVENTS: PostgresEntity<GraphJobEvent> = (() => {
  const entity = mappedEntity(GRAPH_JOB_EVENTS);
  return { ...entity, checksum: { ...entity.checksum, keyList: `"tenant_id", "job_id", lpad("seq"::text,10,'0')` } };
})();

/**
 * The GraphJobStore: tenants' graph build and overlay jobs and their event logs. Not one of
 * BUILT_IN_STORES: open the runtime with `stores: [...BUILT_IN_STORES, GRAPH_JOB_DEFINITION]`.
 */
export const GRAPH_JOB_DEFINITION: StoreDefinition<GraphJobStore, GraphJobRecords> = {
  name: 'graph_jobs',
  methods: GRAPH_JOB_STORE_METHODS,
  catalog: GRAPH_JOB_ENTITIES,
  postgres: { graph_jobs: mappedEntity(GRAPH_JOBS), graph_job_events: EVENTS },
  createMemory: (options) => new MemoryGraphJobStore(options),
  createPostgres: (db, options) => new PostgresGraphJobStore(db, options),
};
