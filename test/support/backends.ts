import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import type { AgentTaskRecords } from '../../src/stores/agent-task/agent-task-records.js';
import type { GraphRecords } from '../../src/stores/graph/graph-records.js';
import { MemoryAgentTaskStore } from '../../src/stores/agent-task/memory-agent-task-store.js';
import { MemoryGraphStore } from '../../src/stores/graph/memory-graph-store.js';
import { loadMigrations, migrate } from '../../src/postgres/migrations.js';
import { PgPoolExecutor } from '../../src/postgres/pg-pool-executor.js';
import { openPglite } from './pglite.js';
import { poolOptionsFromEnv } from '../../src/runtime/config.js';
import { PostgresAgentTaskStore } from '../../src/stores/agent-task/postgres-agent-task-store.js';
import { PostgresGraphStore } from '../../src/stores/graph/postgres-graph-store.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import type { AgentTaskStore } from '../../src/stores/agent-task/agent-task-store.js';
import type { GraphStore } from '../../src/stores/graph/graph-store.js';
import type { RecordPort } from '../../src/ports/record-port.js';
import { ManualClock, SequenceIds } from './clock.js';
import { canRun } from './service-available.js';

export type BackendName = 'memory' | 'pglite' | 'postgres';

/** One store backend under test, with a controlled clock and id sequence. */
export interface Backend {
  readonly name: BackendName;
  graph: GraphStore & RecordPort<GraphRecords>;
  tasks: AgentTaskStore & RecordPort<AgentTaskRecords>;
  readonly clock: ManualClock;
  readonly ids: SequenceIds;
  /** The database behind a PostgreSQL backend. */
  readonly db?: SqlExecutor;
  /** Empties every table and rewinds the clock and ids. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

export interface BackendFactory {
  readonly name: BackendName;
  /** Why this backend cannot run here, if it cannot. */
  readonly unavailable?: string;
  open(): Promise<Backend>;
}

const TABLES =
  'contributions, assets, contributors, project_dependencies, projects, agent_tasks, dualwrite_runtime_lease, dualwrite_lineage, task_executions, task_locks';

function memoryBackend(): Backend {
  const clock = new ManualClock();
  const ids = new SequenceIds();
  const backend: Backend = {
    name: 'memory',
    graph: new MemoryGraphStore({ clock, ids }),
    tasks: new MemoryAgentTaskStore({ clock, ids }),
    clock,
    ids,
    async reset() {
      clock.reset();
      ids.reset();
      backend.graph = new MemoryGraphStore({ clock, ids });
      backend.tasks = new MemoryAgentTaskStore({ clock, ids });
    },
    async close() {},
  };
  return backend;
}

/** Stores over a migrated database; `drop` undoes whatever isolated it. */
async function sqlBackend(name: BackendName, db: SqlExecutor, drop: () => Promise<void>): Promise<Backend> {
  await migrate(db, await loadMigrations());
  const clock = new ManualClock();
  const ids = new SequenceIds();
  return {
    name,
    graph: new PostgresGraphStore(db, { clock, ids }),
    tasks: new PostgresAgentTaskStore(db, { clock, ids }),
    clock,
    ids,
    db,
    async reset() {
      clock.reset();
      ids.reset();
      await db.query(`TRUNCATE ${TABLES} RESTART IDENTITY CASCADE`);
    },
    async close() {
      await drop();
    },
  };
}

/** A fresh schema in the DATABASE_URL database, dropped on close, so test files never collide. */
export async function openPostgresSchema(
  prefix = 'dw_test',
): Promise<{ db: PgPoolExecutor; schema: string; drop(): Promise<void> }> {
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new PgPoolExecutor({ ...poolOptionsFromEnv(), poolSize: 1, maxOverflow: 0, minSize: 0 });
  await admin.query(`CREATE SCHEMA ${schema}`);
  const db = new PgPoolExecutor({ ...poolOptionsFromEnv(), poolSize: 10, maxOverflow: 0, minSize: 0, schema });
  return {
    db,
    schema,
    async drop() {
      await db.close();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.close();
    },
  };
}

export const BACKENDS: readonly BackendFactory[] = [
  { name: 'memory', open: async () => memoryBackend() },
  {
    name: 'pglite',
    open: async () => {
      const db = await openPglite();
      return sqlBackend('pglite', db, () => db.close());
    },
  },
  {
    name: 'postgres',
    unavailable: process.env.DATABASE_URL ? undefined : 'DATABASE_URL is not set (CI sets it; see README)',
    open: async () => {
      const { db, drop } = await openPostgresSchema();
      return sqlBackend('postgres', db, drop);
    },
  },
];

/** Backends that can run here. In CI a missing one is an error, never a silent skip. */
export function availableBackends(names: readonly BackendName[] = ['memory', 'pglite', 'postgres']): BackendFactory[] {
  return BACKENDS.filter((factory) => names.includes(factory.name)).filter((factory) =>
    canRun(`backend ${factory.name}`, factory.unavailable),
  );
}

/**
 * Opens `factory` once for the enclosing describe block and resets it before each test.
 * Returns a handle whose `current` is the open backend.
 */
export function useBackend<B extends { reset(): Promise<void>; close(): Promise<void> } = Backend>(factory: {
  open(): Promise<B>;
}): { current: B } {
  const handle = {} as { current: B };
  beforeAll(async () => {
    handle.current = await factory.open();
  }, 60_000);
  beforeEach(async () => {
    await handle.current.reset();
  });
  afterAll(async () => {
    await handle.current?.close();
  });
  return handle;
}
