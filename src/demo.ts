import { isDeepStrictEqual } from 'node:util';
import { AGENT_TASK_ENTITIES, entityNames, GRAPH_ENTITIES } from './domain/records.js';
import { MemoryAgentTaskStore } from './memory/memory-agent-task-store.js';
import { MemoryGraphStore } from './memory/memory-graph-store.js';
import { openDatabase } from './postgres/open-database.js';
import { PgPoolExecutor } from './postgres/pg-pool-executor.js';
import { poolOptionsFromEnv } from './postgres/pool-config.js';
import { PostgresAgentTaskStore } from './postgres/postgres-agent-task-store.js';
import { PostgresGraphStore } from './postgres/postgres-graph-store.js';
import type { RecordPort } from './ports/record-port.js';
import { readAll } from './record-scan.js';
import { applySampleWrite, sampleWrites } from './sample-data.js';
import { formatTable } from './cli/table.js';

export interface DemoOptions {
  /** Sample size in projects. Default 50. */
  readonly projects?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly log?: (line: string) => void;
}

export interface DemoReport {
  readonly database: string;
  readonly writes: number;
  readonly entities: { entity: string; memory: number; postgres: number; equal: boolean }[];
  readonly equal: boolean;
}

/**
 * The main job on a fresh machine: open PostgreSQL (embedded PGlite without
 * DATABASE_URL), migrate, apply one sample workload to the in-memory stores and the
 * PostgreSQL stores, and show that both hold identical records.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const log = options.log ?? console.log;
  const env = options.env ?? process.env;
  // On a real server the demo works in its own schema, emptied first, and never touches other data.
  const demoEnv = env.DATABASE_URL ? { ...env, POSTGRES_SCHEMA: env.POSTGRES_SCHEMA ?? 'dualwrite_demo' } : env;
  if (env.DATABASE_URL) await dropSchema(demoEnv);
  const { db, description, migrations } = await openDatabase(demoEnv);
  try {
    log(`database: ${description}; migrations applied now: ${migrations.applied.map((m) => m.name).join(', ') || 'none'}`);
    const memory = { graph: new MemoryGraphStore(), tasks: new MemoryAgentTaskStore() };
    const postgres = { graph: new PostgresGraphStore(db), tasks: new PostgresAgentTaskStore(db) };
    const writes = sampleWrites({ projects: options.projects ?? 50 });
    let done = 0;
    for (const write of writes) {
      await applySampleWrite(write, memory);
      await applySampleWrite(write, postgres);
      if (++done % 100 === 0 || done === writes.length) log(`applied ${done}/${writes.length} writes to both stores`);
    }
    const entities = [
      ...(await compareEntities(entityNames(GRAPH_ENTITIES), memory.graph, postgres.graph)),
      ...(await compareEntities(entityNames(AGENT_TASK_ENTITIES), memory.tasks, postgres.tasks)),
    ];
    log(formatTable(['entity', 'memory', 'postgres', 'equal'], entities.map((e) => [e.entity, e.memory, e.postgres, e.equal ? 'yes' : 'NO'])));
    const query = 'json';
    const [fromMemory, fromPostgres] = await Promise.all([memory.graph.search(query, 5), postgres.graph.search(query, 5)]);
    log(`search "${query}": memory ${JSON.stringify(fromMemory.map((p) => p.name))}, postgres ${isDeepStrictEqual(fromMemory, fromPostgres) ? 'the same' : JSON.stringify(fromPostgres.map((p) => p.name))}`);
    const equal = entities.every((e) => e.equal) && isDeepStrictEqual(fromMemory, fromPostgres);
    log(equal ? 'both stores hold identical records' : 'STORES DIFFER');
    return { database: description, writes: writes.length, entities, equal };
  } finally {
    await db.close();
  }
}

async function dropSchema(env: NodeJS.ProcessEnv): Promise<void> {
  const options = poolOptionsFromEnv(env);
  const admin = new PgPoolExecutor({ ...options, schema: undefined, minSize: 0 });
  try {
    await admin.query(`DROP SCHEMA IF EXISTS ${options.schema} CASCADE`);
  } finally {
    await admin.close();
  }
}

async function compareEntities<Records extends object>(
  names: (keyof Records & string)[],
  memory: RecordPort<Records>,
  postgres: RecordPort<Records>,
): Promise<DemoReport['entities']> {
  const rows: DemoReport['entities'] = [];
  for (const entity of names) {
    const [left, right] = await Promise.all([readAll(memory, entity), readAll(postgres, entity)]);
    rows.push({ entity, memory: left.length, postgres: right.length, equal: isDeepStrictEqual(left, right) });
  }
  return rows;
}
