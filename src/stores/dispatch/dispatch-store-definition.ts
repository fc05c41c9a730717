import { DISPATCH_ENTITIES, type DispatchRecords } from './dispatch-records.js';
import {
  decideClaim,
  decideDispatchTask,
  decideDispatchUpdate,
  updateOptions,
  type DispatchUpdateResult,
} from './dispatch-model.js';
import { DISPATCH_POSTGRES } from './dispatch-table-mappings.js';
import { PostgresDispatchStore } from './postgres-dispatch-store.js';
import type { DispatchStore } from './dispatch-store.js';
import type { StoreDescription } from '../../ports/store-description.js';
import { SqliteDispatchStore } from './sqlite-dispatch-store.js';
import type { StoreDefinition } from '../store-definition.js';

const task = (id: string) => `task:${id}`;
/** A claim or update changed the task only when the compare-and-set matched: the other side copies that outcome. */
const changedTask = ([id]: readonly unknown[], result: unknown) =>
  (result as DispatchUpdateResult).updated ? [{ entity: 'tasks', key: [id as string] }] : [];

export const DISPATCH_STORE_METHODS: StoreDescription<DispatchStore> = {
  createTask: {
    kind: 'write',
    key: (input) => task(input.id),
    decide: (context, input) => [decideDispatchTask(input, context)],
    affects: ([input]) => [{ entity: 'tasks', key: [input.id] }],
  },
  getTask: { kind: 'read', key: task },
  claimTask: {
    kind: 'write',
    key: task,
    decide: (context, id, claim) => decideClaim(id, claim, context),
    affects: changedTask,
  },
  updateTask: {
    kind: 'write',
    key: task,
    decide: (context, id, patch, options) => {
      const update = decideDispatchUpdate(id, patch, options, context);
      return [update.id, update.patch, updateOptions(update)];
    },
    affects: changedTask,
  },
  listTasks: { kind: 'read' },
};

/**
 * The dispatch app's store: its SQLite database (dispatch.db) is the old side, where the
 * other stores keep memory, and schema/007_dispatch.sql's tables the new one. Not among
 * BUILT_IN_STORES: open the runtime with `stores: [DISPATCH_DEFINITION]` and
 * `memory: { dispatch: new SqliteDispatchStore(db) }` on the app's own file.
 * createMemory() opens an empty in-memory SQLite database (better-sqlite3 is needed).
 */
export const DISPATCH_DEFINITION: StoreDefinition<DispatchStore, DispatchRecords> = {
  name: 'dispatch',
  methods: DISPATCH_STORE_METHODS,
  catalog: DISPATCH_ENTITIES,
  postgres: DISPATCH_POSTGRES,
  createMemory: (options) => SqliteDispatchStore.createMemory(options),
  createPostgres: (db, options) => new PostgresDispatchStore(db, options),
};
