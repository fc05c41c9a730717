import { TableMapping } from '../../postgres/table-mapping.js';
import { GRAPH_JOB_KINDS, GRAPH_JOB_STATUSES, type GraphJob, type GraphJobEvent } from './graph-job-model.js';

/** The graph-job tables in PostgreSQL (schema/006_graph_jobs.sql), column for column; kinds and statuses as SMALLINT codes. */
export const GRAPH_JOBS = new TableMapping<GraphJob>(
  'graph_jobs',
  [
    { column: 'tenant_id', field: 'tenantId', type: 'text' },
    { column: 'id', field: 'id', type: 'uuid' },
    { column: 'type', field: 'kind', type: 'integer', codes: GRAPH_JOB_KINDS },
    { column: 'status', field: 'status', type: 'integer', codes: GRAPH_JOB_STATUSES },
    { column: 'payload', field: 'payload', type: 'jsonb' },
    { column: 'correlation_id', field: 'correlationId', type: 'text' },
    { column: 'created_at', field: 'createdAt', type: 'timestamptz' },
    { column: 'updated_at', field: 'updatedAt', type: 'timestamptz' },
  ],
  ['tenant_id', 'id'],
);

export const GRAPH_JOB_EVENTS = new TableMapping<GraphJobEvent>(
  'graph_job_events',
  [
    { column: 'tenant_id', field: 'tenantId', type: 'text' },
    { column: 'job_id', field: 'jobId', type: 'uuid' },
    { column: 'seq', field: 'seq', type: 'integer' },
    { column: 'status', field: 'status', type: 'integer', codes: GRAPH_JOB_STATUSES },
    { column: 'payload', field: 'payload', type: 'jsonb' },
    { column: 'created_at', field: 'createdAt', type: 'timestamptz' },
  ],
  ['tenant_id', 'job_id', 'seq'],
);
