import type { AgentTaskRecords, EntityCatalog, GraphRecords } from '../src/domain/records.js';
import { AGENT_TASK_ENTITIES, GRAPH_ENTITIES } from '../src/domain/records.js';
import type { MemoryAgentTaskStore } from '../src/memory/memory-agent-task-store.js';
import type { MemoryGraphStore } from '../src/memory/memory-graph-store.js';
import type { PostgresAgentTaskStore } from '../src/postgres/postgres-agent-task-store.js';
import type { PostgresGraphStore } from '../src/postgres/postgres-graph-store.js';
import type { MemoryTables } from '../src/memory/memory-tables.js';
import { EDGE_KEY, edgeRange } from '../src/postgres/postgres-graph-store.js';
import { AGENT_TASKS, ASSETS, CONTRIBUTIONS, CONTRIBUTORS, PROJECTS, type TableMapping } from '../src/postgres/table-mapping.js';
import type { RecordKey, RecordPort } from '../src/ports/record-port.js';
import { columnSql, mappedHashColumns, type HashColumn } from './row-hash.js';

/** How one entity is checksummed inside PostgreSQL: its rows, key order, range filter and hashed columns. */
export interface EntitySql {
  /** FROM clause (with joins); key expressions refer to its aliases. */
  readonly from: string;
  /** Key expressions in key order, comma-separated. */
  readonly keyList: string;
  readonly columns: readonly HashColumn[];
  /** WHERE clause for keys in (after, until], parameters numbered from `first`. */
  range(after: RecordKey | undefined, until: RecordKey | undefined, first: number): { where: string; params: unknown[] };
}

/** One store as the verifier sees it: entities, both sides, and the SQL of each entity. */
export interface VerifyTarget<Records extends object> {
  readonly store: string;
  readonly catalog: EntityCatalog<Records>;
  readonly memoryTables: MemoryTables<Records>;
  readonly memory: RecordPort<Records>;
  readonly postgres: RecordPort<Records>;
  readonly sql: { readonly [E in keyof Records]: EntitySql };
}

function mappedSql(mapping: TableMapping<unknown>): EntitySql {
  return {
    from: mapping.table,
    keyList: mapping.keyColumns.map((c) => `"${c}"`).join(', '),
    columns: mappedHashColumns(mapping),
    range(after, until, first) {
      const { where } = mapping.rangeWhere(after !== undefined, until !== undefined, first);
      return { where, params: [...(after ? mapping.keyValues(after) : []), ...(until ? mapping.keyValues(until) : [])] };
    },
  };
}

const DEPENDENCIES_SQL: EntitySql = {
  from: 'project_dependencies d JOIN projects f ON f.id = d.from_project_id JOIN projects t ON t.id = d.to_project_id',
  keyList: EDGE_KEY,
  columns: [
    { sql: 'f.ecosystem::text', kind: 'text', field: (r) => (r.from as { ecosystem: string }).ecosystem },
    { sql: 'f.name::text', kind: 'text', field: (r) => (r.from as { name: string }).name },
    { sql: 't.ecosystem::text', kind: 'text', field: (r) => (r.to as { ecosystem: string }).ecosystem },
    { sql: 't.name::text', kind: 'text', field: (r) => (r.to as { name: string }).name },
    { sql: columnSql('d.created_at', 'timestamptz'), kind: 'timestamp', field: (r) => r.createdAt },
  ],
  range: (after, until, first) => edgeRange(after, until, first),
};

export const GRAPH_SQL: VerifyTarget<GraphRecords>['sql'] = {
  projects: mappedSql(PROJECTS as TableMapping<unknown>),
  dependencies: DEPENDENCIES_SQL,
  contributors: mappedSql(CONTRIBUTORS as TableMapping<unknown>),
  assets: mappedSql(ASSETS as TableMapping<unknown>),
  contributions: mappedSql(CONTRIBUTIONS as TableMapping<unknown>),
};

export const AGENT_TASK_SQL: VerifyTarget<AgentTaskRecords>['sql'] = {
  agent_tasks: mappedSql(AGENT_TASKS as TableMapping<unknown>),
};


/** The verify target of a GraphStore pair. */
export function graphTarget(memory: MemoryGraphStore, postgres: PostgresGraphStore): AnyTarget {
  return erase<GraphRecords>({ store: 'graph', catalog: GRAPH_ENTITIES, memoryTables: memory.tables, memory, postgres, sql: GRAPH_SQL });
}

/** The verify target of an AgentTaskStore pair. */
export function taskTarget(memory: MemoryAgentTaskStore, postgres: PostgresAgentTaskStore): AnyTarget {
  return erase<AgentTaskRecords>({ store: 'tasks', catalog: AGENT_TASK_ENTITIES, memoryTables: memory.tables, memory, postgres, sql: AGENT_TASK_SQL });
}

/** A verify target with its entity types erased. */
export type AnyTarget = VerifyTarget<Record<string, object>>;

function erase<Records extends object>(target: VerifyTarget<Records>): AnyTarget {
  return target as unknown as AnyTarget;
}
