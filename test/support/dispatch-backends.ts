import {
  DISPATCH_ENTITY_NAMES,
  DISPATCH_TABLES,
  type DispatchRecords,
} from '../../src/stores/dispatch/dispatch-records.js';
import { loadMigrations, migrate } from '../../src/postgres/migrations.js';
import { openPglite } from './pglite.js';
import { PostgresDispatchStore } from '../../src/stores/dispatch/postgres-dispatch-store.js';
import type { SqlExecutor } from '../../src/postgres/sql-executor.js';
import type { DispatchStore } from '../../src/stores/dispatch/dispatch-store.js';
import type { RecordPort } from '../../src/ports/record-port.js';
import { SqliteDispatchStore } from '../../src/stores/dispatch/sqlite-dispatch-store.js';
import { BACKENDS, openPostgresSchema, useBackend } from './backends.js';
import { ManualClock, SequenceIds } from './clock.js';
import { canRun } from './service-available.js';

export type DispatchBackendName = 'sqlite' | 'pglite' | 'postgres';

/** One implementation of the DispatchStore under test, with a controlled clock. */
export interface DispatchBackend {
  readonly name: DispatchBackendName;
  store: DispatchStore & RecordPort<DispatchRecords>;
  readonly clock: ManualClock;
  /** The database behind a PostgreSQL backend. */
  readonly db?: SqlExecutor;
  /** Empties every dispatch table and rewinds the clock. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** Every dispatch table, for TRUNCATE. */
export const DISPATCH_TABLE_LIST = DISPATCH_ENTITY_NAMES.map((entity) => DISPATCH_TABLES[entity].table).join(', ');

async function postgresBackend(
  name: DispatchBackendName,
  db: SqlExecutor,
  drop: () => Promise<void>,
): Promise<DispatchBackend> {
  await migrate(db, await loadMigrations());
  const clock = new ManualClock();
  return {
    name,
    store: new PostgresDispatchStore(db, { clock, ids: new SequenceIds() }),
    clock,
    db,
    async reset() {
      clock.reset();
      await db.query(`TRUNCATE ${DISPATCH_TABLE_LIST} RESTART IDENTITY`);
    },
    close: drop,
  };
}

export interface DispatchBackendFactory {
  readonly name: DispatchBackendName;
  readonly unavailable?: string;
  open(): Promise<DispatchBackend>;
}

export const DISPATCH_BACKENDS: readonly DispatchBackendFactory[] = [
  {
    name: 'sqlite',
    open: async () => {
      const clock = new ManualClock();
      const backend: DispatchBackend = {
        name: 'sqlite',
        store: SqliteDispatchStore.createMemory({ clock, ids: new SequenceIds() }),
        clock,
        async reset() {
          clock.reset();
          (backend.store as SqliteDispatchStore).db.close();
          backend.store = SqliteDispatchStore.createMemory({ clock, ids: new SequenceIds() });
        },
        async close() {
          (backend.store as SqliteDispatchStore).db.close();
        },
      };
      return backend;
    },
  },
  {
    name: 'pglite',
    open: async () => {
      const db = await openPglite();
      return postgresBackend('pglite', db, () => db.close());
    },
  },
  {
    name: 'postgres',
    unavailable: BACKENDS.find((b) => b.name === 'postgres')!.unavailable,
    open: async () => {
      const { db, drop } = await openPostgresSchema('dw_dispatch');
      return postgresBackend('postgres', db, drop);
    },
  },
];

/** The dispatch backends that can run here; in CI a missing one is an error. */
export function availableDispatchBackends(
  names: readonly DispatchBackendName[] = ['sqlite', 'pglite', 'postgres'],
): DispatchBackendFactory[] {
  return DISPATCH_BACKENDS.filter((f) => names.includes(f.name)).filter((f) =>
    canRun(`dispatch backend ${f.name}`, f.unavailable),
  );
}

/** Opens `factory` for the enclosing describe block and resets it before each test. */
export const useDispatchBackend = (factory: DispatchBackendFactory): { current: DispatchBackend } =>
  useBackend(factory);
