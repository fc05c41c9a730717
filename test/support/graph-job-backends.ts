import { afterAll, beforeAll, beforeEach } from 'vitest';
import type { GraphJobRecords } from '../../src/stores/graph-job/graph-job-records.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import type { GraphJobStore } from '../../src/stores/graph-job/graph-job-store.js';
import type { RecordPort } from '../../src/ports/record-port.js';
import { GRAPH_JOB_DEFINITION } from '../../src/stores/graph-job/graph-job-store-definition.js';
import type { Backend, BackendFactory, BackendName } from './backends.js';
import type { ManualClock, SequenceIds } from './clock.js';

/** A GraphJobStore backend under test, with the controlled clock and id sequence of its Backend. */
export interface GraphJobBackend {
  readonly name: BackendName;
  readonly jobs: GraphJobStore & RecordPort<GraphJobRecords>;
  readonly clock: ManualClock;
  readonly ids: SequenceIds;
  /** The database behind a PostgreSQL backend (migrated, graph job tables included). */
  readonly db?: SqlExecutor;
}

/**
 * Opens `factory` for the enclosing describe block (test/support/backends.ts, whose
 * migrations include the graph job tables) and, before each test, rewinds its clock and
 * ids, empties the graph job tables (only those: the other stores' are never written here)
 * and builds a fresh GraphJobStore on it.
 */
export function useGraphJobBackend(factory: BackendFactory): { current: GraphJobBackend } {
  let backend: Backend;
  const handle = {} as { current: GraphJobBackend };
  beforeAll(async () => {
    backend = await factory.open();
  }, 60_000);
  afterAll(async () => {
    await backend?.close();
  });
  beforeEach(async () => {
    const { clock, ids, db } = backend;
    clock.reset();
    ids.reset();
    if (db) await db.query('TRUNCATE graph_jobs, graph_job_events');
    const jobs = db
      ? GRAPH_JOB_DEFINITION.createPostgres(db, { clock, ids })
      : GRAPH_JOB_DEFINITION.createMemory({ clock, ids });
    handle.current = { name: factory.name, jobs, clock, ids, db };
  });
  return handle;
}
