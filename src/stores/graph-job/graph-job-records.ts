import { canonicalJsonObject } from '../../domain/json.js';
import { integerIn } from '../../domain/limits.js';
import { assertObject } from '../../domain/object.js';
import type { EntityCatalog } from '../../domain/records.js';
import { oneOf, optionalText } from '../../domain/text.js';
import { canonicalTimestamp } from '../../domain/time.js';
import {
  eventSeqKey,
  graphJobId,
  graphTenantId,
  GRAPH_JOB_KINDS,
  GRAPH_JOB_STATUSES,
  MAX_EVENT_SEQ,
  type GraphJob,
  type GraphJobEvent,
} from './graph-job-model.js';

/** The graph-job store's records, by entity. */
export interface GraphJobRecords {
  graph_jobs: GraphJob;
  graph_job_events: GraphJobEvent;
}

/** Jobs first: an event references its job. */
export const GRAPH_JOB_ENTITIES: EntityCatalog<GraphJobRecords> = {
  graph_jobs: {
    keyOf: (job) => [job.tenantId, job.id],
    normalize: (raw) => {
      assertObject('graph_jobs', raw);
      const r = raw as Record<string, unknown>;
      return {
        tenantId: graphTenantId(r.tenantId),
        id: graphJobId('id', r.id),
        kind: oneOf('kind', r.kind, GRAPH_JOB_KINDS),
        status: oneOf('status', r.status, GRAPH_JOB_STATUSES),
        payload: canonicalJsonObject('payload', r.payload),
        correlationId: optionalText('correlationId', r.correlationId),
        createdAt: canonicalTimestamp('createdAt', r.createdAt),
        updatedAt: canonicalTimestamp('updatedAt', r.updatedAt),
      };
    },
  },
  graph_job_events: {
    keyOf: (event) => [event.tenantId, event.jobId, eventSeqKey(event.seq)],
    normalize: (raw) => {
      assertObject('graph_job_events', raw);
      const r = raw as Record<string, unknown>;
      return {
        tenantId: graphTenantId(r.tenantId),
        jobId: graphJobId('jobId', r.jobId),
        seq: integerIn('seq', r.seq, 1, MAX_EVENT_SEQ, `an integer from 1 to ${MAX_EVENT_SEQ}`),
        status: oneOf('status', r.status, GRAPH_JOB_STATUSES),
        payload: canonicalJsonObject('payload', r.payload),
        createdAt: canonicalTimestamp('createdAt', r.createdAt),
      };
    },
  },
};
